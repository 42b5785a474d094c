/* runfiles.c - where a run's fetched files live, their listing, opening and removal. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "files.h"
#include "runfiles.h"
#include "util.h"

bool runfiles_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

int runfiles_dir(const char *data_dir, const char *run_id, const char *target_id, bool create,
                 char *out, size_t n)
{
    if (!runfiles_id_ok(run_id) || (target_id && !runfiles_id_ok(target_id)))
        return OPSC_EINVAL;
    int len = target_id ? snprintf(out, n, "%s/runs/%s/files/%s", data_dir, run_id, target_id)
                        : snprintf(out, n, "%s/runs/%s", data_dir, run_id);
    if (len < 0 || (size_t)len >= n)
        return OPSC_E2BIG;
    return create ? fs_mkdir_p(out, 0700) : 0;
}

/* A folder below `dir`, never through a symlink. */
static int open_sub(int dir, const char *name)
{
    return openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

static DIR *walk(int dir)
{
    int fd = dup(dir);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d && fd >= 0)
        close(fd);
    return d;
}

/* ---- listing -------------------------------------------------------------------------------- */

static json_t *entry_json(int dir, const char *target_id, const char *name)
{
    struct stat st;
    int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    runfiles_digest d;
    json_t *item = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        runfiles_digest_get(dir, name, fd, &st, &d) == 0) {
        char when[RFC3339_LEN];
        rfc3339_format(d.stored_ms, when);
        item = json_pack("{s:s, s:s, s:I, s:s, s:s}", "target_id", target_id, "name", name, "size",
                         (json_int_t)st.st_size, "sha256", d.sha256, "stored_at", when);
    }
    close(fd);
    return item;
}

/* Files of one target: names that pass the rule, with a sidecar (so a
 * transfer still in progress, which has none yet, is not shown). */
static void list_target(int files, const char *target_id, json_t *items)
{
    int dir = runfiles_id_ok(target_id) ? open_sub(files, target_id) : -1;
    DIR *d = dir >= 0 ? walk(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char side[300];
        snprintf(side, sizeof(side), ".%s.sha256", e->d_name);
        if (files_name_check(e->d_name, strlen(e->d_name)) ||
            faccessat(dir, side, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        json_t *item = entry_json(dir, target_id, e->d_name);
        if (item)
            json_array_append_new(items, item);
    }
    if (d)
        closedir(d);
    if (dir >= 0)
        close(dir);
}

static int by_target_then_name(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(json_string_value(json_object_get(x, "target_id")),
                   json_string_value(json_object_get(y, "target_id")));
    return c ? c
             : strcmp(json_string_value(json_object_get(x, "name")),
                      json_string_value(json_object_get(y, "name")));
}

static json_t *sorted(json_t *items)
{
    size_t n = json_array_size(items);
    json_t **v = calloc(n ? n : 1, sizeof(*v));
    json_t *out = json_array();
    for (size_t i = 0; v && i < n; i++)
        v[i] = json_array_get(items, i);
    if (v)
        qsort(v, n, sizeof(*v), by_target_then_name);
    for (size_t i = 0; v && i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    json_decref(items);
    return out;
}

int runfiles_list(const char *data_dir, const char *run_id, json_t **out)
{
    char path[4096];
    int rc = runfiles_dir(data_dir, run_id, NULL, false, path, sizeof(path));
    if (rc < 0)
        return rc;
    strncat(path, "/files", sizeof(path) - strlen(path) - 1);
    json_t *items = json_array();
    int files = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = files >= 0 ? walk(files) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            list_target(files, e->d_name, items);
    if (d)
        closedir(d);
    if (files >= 0)
        close(files);
    *out = json_pack("{s:o, s:n}", "items", sorted(items), "next_cursor");
    return *out ? 0 : OPSC_ENOMEM;
}

int runfiles_open(const char *data_dir, const char *run_id, const char *target_id, const char *name,
                  struct stat *st)
{
    char path[4096];
    if (!name || files_name_check(name, strlen(name)) ||
        runfiles_dir(data_dir, run_id, target_id, false, path, sizeof(path)) < 0)
        return OPSC_ENOENT;
    int dir = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int fd = dir < 0 ? -1 : openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (dir >= 0)
        close(dir);
    if (fd < 0)
        return OPSC_ENOENT;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return OPSC_ENOENT;
    }
    return fd;
}

/* ---- removal -------------------------------------------------------------------------------- */

/* Empty the folder `dir` (depth-limited: runs/<id>/files/<target>/<file>), closing it. */
static int empty_dir(int dir, int depth)
{
    DIR *d = walk(dir);
    int rc = d ? 0 : -errno;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth > 0) {
            int sub = open_sub(dir, e->d_name);
            int r = sub < 0 ? -errno : empty_dir(sub, depth - 1);
            if (r == 0 && unlinkat(dir, e->d_name, AT_REMOVEDIR) < 0)
                r = -errno;
            rc = rc ? rc : r;
        } else if (!S_ISDIR(st.st_mode) && unlinkat(dir, e->d_name, 0) < 0) {
            rc = rc ? rc : -errno;
        }
    }
    if (d)
        closedir(d);
    close(dir);
    return rc;
}

int runfiles_remove(const char *data_dir, const char *run_id)
{
    char path[4096];
    int rc = runfiles_dir(data_dir, run_id, NULL, false, path, sizeof(path));
    if (rc < 0)
        return rc;
    int dir = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir < 0)
        return errno == ENOENT ? 0 : -errno;
    rc = empty_dir(dir, 3);
    if (rc == 0 && rmdir(path) < 0)
        rc = -errno;
    return rc;
}
