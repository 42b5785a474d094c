/* files_dir.c - where the appliance-side files live, which names they may have, their backup. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "config.h"
#include "files.h"
#include "util.h"

#define FILES_SECTION "plugin.steplib-core"

int files_dir_resolve(const struct config *cfg, char *out, size_t n)
{
    /* Only the key this needs: the library binds (and validates) the section. */
    static const opsc_cfg_entry key = {"files_dir", OPSC_CFG_STRING, "", 0, -1, NULL, 0, 0, NULL};
    char origin[512];
    const char *v = cfg->file
                        ? cfg_effective_text(cfg->file, FILES_SECTION, &key, origin, sizeof(origin))
                        : NULL;
    if (v && v[0])
        return (size_t)snprintf(out, n, "%s", v) < n ? 0 : OPSC_E2BIG;
    return fs_join(out, n, cfg->store.data_dir, "files") == 0 ? 0 : OPSC_E2BIG;
}

const char *files_name_check(const char *name, size_t len)
{
    static const char rule[] = "a file name is one path segment of letters, digits, '.', '_' "
                               "and '-', not starting with '.', of 1 to 255 bytes";
    if (len == 0 || len > 255 || name[0] == '.')
        return rule;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (!ok)
            return rule;
    }
    return NULL;
}

/* ---- backup ----------------------------------------------------------------------- */

static int copy_fd(int in, int out)
{
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n == 0)
            return fsync(out) < 0 ? -errno : 0;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno != EINTR)
                return -errno;
            off += w > 0 ? w : 0;
        }
    }
}

static int copy_file(int sdir, int ddir, const char *name, mode_t mode)
{
    int in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0)
        return -errno;
    int out = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0700);
    int rc = out < 0 ? -errno : copy_fd(in, out);
    close(in);
    if (out >= 0)
        close(out);
    return rc;
}

static int copy_tree(int sdir, int ddir, char *err, size_t errlen, const char *where);

/* One entry of a folder: regular files and folders, nothing a link leads to. */
static int copy_entry(int sdir, int ddir, const char *name, char *err, size_t errlen,
                      const char *where)
{
    struct stat st;
    if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno; /* deleted while we copy: not in the backup */
    if (S_ISREG(st.st_mode))
        return copy_file(sdir, ddir, name, st.st_mode);
    if (!S_ISDIR(st.st_mode))
        return 0;
    if (mkdirat(ddir, name, 0700) < 0)
        return -errno;
    int s = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int d = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int rc = s < 0 || d < 0 ? -errno : copy_tree(s, d, err, errlen, where);
    if (s >= 0)
        close(s);
    if (d >= 0)
        close(d);
    return rc;
}

/* Copies from sdir into ddir; closes neither. */
static int copy_tree(int sdir, int ddir, char *err, size_t errlen, const char *where)
{
    int fd = dup(sdir);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -errno;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        rc = copy_entry(sdir, ddir, e->d_name, err, errlen, where);
        if (rc < 0 && err && !err[0])
            snprintf(err, errlen, "copying %s/%s: %s", where, e->d_name, strerror(-rc));
    }
    closedir(d);
    return rc;
}

int files_backup(const char *src, const char *dest, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    int s = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s < 0 && errno == ENOENT)
        return 0;
    if (s < 0) {
        snprintf(err, errlen, "files directory %s: %s", src, strerror(errno));
        return -errno;
    }
    int rc = 0, d = -1;
    if (mkdir(dest, 0700) < 0 ||
        (d = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot create %s: %s", dest, strerror(errno));
    }
    if (rc == 0)
        rc = copy_tree(s, d, err, errlen, src);
    if (rc == 0 && fsync(d) < 0)
        rc = -errno;
    close(s);
    if (d >= 0)
        close(d);
    return rc;
}
