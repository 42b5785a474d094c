/* files.c - /api/v1/files: list, upload (streamed to disk), download and delete the
 * appliance-side files that core.file.put and core.file.template read. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <opsc/errors.h>

#include "auth.h"
#include "core.h"
#include "files.h"
#include "http.h"
#include "log.h"
#include "rest.h"
#include "runfiles.h"
#include "util.h"

static const char *dir_of(http_req *req)
{
    return ((struct opsc_core *)http_req_app(req))->files_dir;
}

/* The directory, opened for openat(); answers 500 itself on failure. */
static int open_dir(http_req *req)
{
    int fd = open(dir_of(req), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        log_error("files", "cannot open %s: %s", dir_of(req), strerror(errno));
        http_respond_error(req, 500, "internal", NULL, "the files directory cannot be opened");
    }
    return fd;
}

/* The {name} of the path, or NULL after answering 400 with the rule. */
static const char *name_param(http_req *req)
{
    const char *name = http_req_param(req, "name");
    const char *why = files_name_check(name, strlen(name));
    if (why) {
        http_respond_error(req, 400, "bad_name", json_pack("{s:s}", "rule", why), "%s", why);
        return NULL;
    }
    auth_set_object(req, name);
    return name;
}

static void hex_of(const unsigned char *md, unsigned n, char *out)
{
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static json_t *file_json(const char *name, const struct stat *st, const char *sha256)
{
    char when[RFC3339_LEN];
    rfc3339_format((int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000, when);
    return json_pack("{s:s, s:I, s:s, s:s}", "name", name, "size", (json_int_t)st->st_size,
                     "sha256", sha256, "modified_at", when);
}

/* A regular file of the directory, never through a symlink; -errno otherwise. */
static int open_entry(int dir, const char *name, struct stat *st)
{
    int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ELOOP ? OPSC_ENOENT : -errno;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return OPSC_ENOENT;
    }
    return fd;
}

/* ---- list, download ------------------------------------------------------------ */

static int list_files(http_req *req)
{
    int dir = open_dir(req);
    if (dir < 0)
        return HTTP_DONE;
    DIR *d = fdopendir(dup(dir));
    json_t *items = json_array();
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        struct stat st;
        runfiles_digest dg;
        if (files_name_check(e->d_name, strlen(e->d_name)))
            continue; /* ".", "..", uploads in progress, digests, folders */
        int fd = open_entry(dir, e->d_name, &st);
        if (fd < 0)
            continue;
        if (runfiles_digest_get(dir, e->d_name, fd, &st, &dg) == 0) /* hashed once, kept */
            json_array_append_new(items, file_json(e->d_name, &st, dg.sha256));
        close(fd);
    }
    if (d)
        closedir(d);
    close(dir);
    http_respond_json(req, 200, json_pack("{s:o, s:n}", "items", items, "next_cursor"));
    return HTTP_DONE;
}

static int download_file(http_req *req)
{
    const char *name = name_param(req);
    int dir = name ? open_dir(req) : -1;
    if (dir < 0)
        return HTTP_DONE;
    struct stat st;
    int fd = open_entry(dir, name, &st);
    close(dir);
    if (fd < 0) {
        http_respond_error(req, 404, "not_found", NULL, "no file %s", name);
        return HTTP_DONE;
    }
    files_respond_download(req, name, fd, (int64_t)st.st_size);
    return HTTP_DONE;
}

void files_respond_download(struct http_req *req, const char *name, int fd, int64_t size)
{
    char disp[300];
    snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"", name);
    http_set_header(req, "Content-Disposition", disp);
    http_respond_file(req, 200, "application/octet-stream", fd, size);
}

/* ---- upload: streamed into a hidden temporary file, renamed over the name ---------- */

struct upload {
    http_req *req; /* borrowed: the sink lives no longer than the request */
    int dir, fd;
    char tmp[40]; /* ".upload-<hex>": never a valid name, never listed */
    char name[256];
    EVP_MD_CTX *md;
    int64_t bytes;
    bool tmp_gone; /* renamed into place, removed, or never made */
};

static void discard_tmp(struct upload *u);

/* A full file system is the operator's to fix, and says so; nothing half-written stays. */
static void respond_write_error(struct upload *u, int rc)
{
    if (rc == -ENOSPC || rc == -EDQUOT)
        http_respond_error(u->req, 507, "insufficient_storage", json_pack("{s:s}", "name", u->name),
                           "no room to store %s: the files directory's file system is full",
                           u->name);
    else
        http_respond_error(u->req, 500, "internal", NULL, "the upload of %s could not be stored",
                           u->name);
}

static int upload_write(void *ud, const char *data, size_t len)
{
    struct upload *u = ud;
    EVP_DigestUpdate(u->md, data, len);
    u->bytes += (int64_t)len;
    while (len > 0) {
        ssize_t n = write(u->fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int rc = -errno;
            log_error("files", "writing the upload of %s: %s", u->name, strerror(-rc));
            discard_tmp(u);
            close(u->fd); /* an unlinked file holds its blocks while open: give them back now */
            u->fd = -1;
            respond_write_error(u, rc);
            return rc;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static void discard_tmp(struct upload *u)
{
    if (!u->tmp_gone && unlinkat(u->dir, u->tmp, 0) < 0)
        log_error("files", "cannot remove %s: %s", u->tmp, strerror(errno));
    u->tmp_gone = true;
}

static void upload_close(void *ud, bool whole)
{
    struct upload *u = ud;
    (void)whole; /* either way: what was not renamed goes */
    discard_tmp(u);
    if (u->fd >= 0)
        close(u->fd);
    close(u->dir);
    EVP_MD_CTX_free(u->md);
    free(u);
}

static int upload_start(http_req *req)
{
    const char *name = name_param(req);
    int dir = name ? open_dir(req) : -1;
    if (dir < 0)
        return HTTP_DONE;
    struct upload *u = calloc(1, sizeof(*u));
    char hex[17];
    if (!u || !(u->md = EVP_MD_CTX_new()) || rand_hex(hex, 8) < 0 ||
        EVP_DigestInit_ex(u->md, EVP_sha256(), NULL) != 1) {
        if (u)
            EVP_MD_CTX_free(u->md);
        free(u);
        close(dir);
        http_respond_opsc_error(req, OPSC_ENOMEM, "upload");
        return HTTP_DONE;
    }
    u->dir = dir;
    u->req = req;
    snprintf(u->tmp, sizeof(u->tmp), ".upload-%s", hex);
    snprintf(u->name, sizeof(u->name), "%s", name);
    u->fd = openat(dir, u->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (u->fd < 0) {
        log_error("files", "cannot create %s in %s: %s", u->tmp, dir_of(req), strerror(errno));
        u->tmp_gone = true;
        upload_close(u, false);
        http_respond_error(req, 500, "internal", NULL, "the upload could not be started");
        return HTTP_DONE;
    }
    http_body_sink sink = {upload_write, upload_close, u};
    http_req_set_body_sink(req, &sink);
    return HTTP_DONE;
}

/* The last byte is in: durable, then in place in one rename, so a reader (or
 * a concurrent upload of the same name) sees the old file or the new one. */
static int upload_file(http_req *req)
{
    struct upload *u = http_req_body_sink_ud(req);
    unsigned char md[32];
    unsigned len = 0;
    char sha[65];
    struct stat st, before;
    bool existed = fstatat(u->dir, u->name, &before, AT_SYMLINK_NOFOLLOW) == 0;
    int rc = fsync(u->fd) < 0 || fstat(u->fd, &st) < 0 ? -errno : 0;
    if (rc == 0 && renameat(u->dir, u->tmp, u->dir, u->name) < 0)
        rc = -errno;
    if (rc == 0) {
        u->tmp_gone = true;
        fsync(u->dir);
    }
    if (rc < 0) /* before answering: the client may look right after */
        discard_tmp(u);
    if (rc == -EISDIR || rc == -ENOTEMPTY || rc == -EEXIST) {
        http_respond_error(req, 409, "conflict", NULL, "%s is a folder (file.get's)", u->name);
        return HTTP_DONE;
    }
    if (rc < 0) {
        log_error("files", "storing %s: %s", u->name, strerror(-rc));
        respond_write_error(u, rc);
        return HTTP_DONE;
    }
    EVP_DigestFinal_ex(u->md, md, &len);
    hex_of(md, len, sha);
    if (runfiles_digest_put(u->dir, u->name, sha, &st) < 0) /* the list recomputes it then */
        runfiles_digest_drop(u->dir, u->name);
    log_info("files", "%s stored: %lld bytes, sha256 %s", u->name, (long long)u->bytes, sha);
    http_respond_json(req, existed ? 200 : 201, file_json(u->name, &st, sha));
    return HTTP_DONE;
}

/* ---- delete: refused while a job's step reads the file --------------------------- */

struct users {
    const char *name;
    json_t *jobs;
};

static bool reads_file(json_t *step, const char *name)
{
    const char *type = json_string_value(json_object_get(step, "type"));
    const char *src = json_string_value(json_object_get(json_object_get(step, "params"), "src"));
    if (!type || !src)
        return false;
    size_t tlen = strcspn(type, "@"); /* "core.file.put@1" pins a major */
    bool reader = (tlen == 13 && strncmp(type, "core.file.put", tlen) == 0) ||
                  (tlen == 18 && strncmp(type, "core.file.template", tlen) == 0);
    while (strncmp(src, "./", 2) == 0)
        src += 2;
    return reader && strcmp(src, name) == 0;
}

static int users_job(const char *id, json_t *job, void *ud)
{
    struct users *us = ud;
    size_t i;
    json_t *step;
    json_array_foreach(json_object_get(job, "steps"), i, step)
    {
        if (!reads_file(step, us->name))
            continue;
        const char *jname = json_string_value(json_object_get(job, "name"));
        json_array_append_new(us->jobs,
                              json_pack("{s:s, s:s}", "id", id, "name", jname ? jname : id));
        return 0;
    }
    return 0;
}

static int users_txn(store_txn *txn, void *ud)
{
    return store_scan(txn, "jobs", NULL, false, users_job, ud);
}

static void respond_in_use(http_req *req, const char *name, json_t *jobs)
{
    char names[512] = "";
    size_t o = 0, i;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        if (o < sizeof(names))
            o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s", i ? ", " : "",
                                  json_string_value(json_object_get(j, "name")));
    }
    http_respond_error(req, 409, "in_use", json_pack("{s:O}", "jobs", jobs),
                       "%s is read by the steps of jobs: %s", name, names);
}

static int delete_file(http_req *req)
{
    const char *name = name_param(req);
    int dir = name ? open_dir(req) : -1;
    if (dir < 0)
        return HTTP_DONE;
    struct users us = {name, json_array()};
    int rc = store_read(((struct opsc_core *)http_req_app(req))->store, users_txn, &us);
    struct stat st;
    if (rc < 0)
        rest_error(req, rc, "reading jobs");
    else if (json_array_size(us.jobs) > 0)
        respond_in_use(req, name, us.jobs);
    else if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
        http_respond_error(req, 404, "not_found", NULL, "no file %s", name);
    else if (unlinkat(dir, name, 0) < 0)
        http_respond_opsc_error(req, -errno, "deleting %s", name);
    else {
        runfiles_digest_drop(dir, name);
        fsync(dir);
        log_info("files", "%s deleted", name);
        http_respond_empty(req, 204);
    }
    json_decref(us.jobs);
    close(dir);
    return HTTP_DONE;
}

/* ---- routes ------------------------------------------------------------------------ */

#define FILE_SCHEMA                                                                                \
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"size\":{\"type\":"      \
    "\"integer\"},\"sha256\":{\"type\":\"string\"},\"modified_at\":{\"type\":\"string\","          \
    "\"format\":\"date-time\"}}}"

static const http_route routes[] = {
    {"GET", "/api/v1/files", ROLE_VIEWER, list_files, 0, "files",
     "Files that core.file.put and core.file.template read (files_dir), with their SHA-256", NULL,
     "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":" FILE_SCHEMA
     "},\"next_cursor\":{\"type\":\"null\"}}}"},
    {"GET", "/api/v1/files/{name}", ROLE_VIEWER, download_file, 0, "files",
     "Download a file (application/octet-stream)", NULL, NULL},
    {"PUT", "/api/v1/files/{name}", ROLE_OPERATOR, upload_file, HTTP_ROUTE_STREAM_BODY, "files",
     "Upload a file (raw body, streamed to disk, up to [server] max_upload_size); 201 new, 200 "
     "replaced; name: [A-Za-z0-9._-], not starting with '.', at most 255 bytes",
     NULL, FILE_SCHEMA, 201, upload_start},
    {"DELETE", "/api/v1/files/{name}", ROLE_OPERATOR, delete_file, 0, "files",
     "Delete a file no job reads (409 in_use naming the jobs otherwise)", NULL, NULL, 204},
};

int api_files_register(struct opsc_core *c)
{
    int rc = files_dir_resolve(&c->cfg, c->files_dir, sizeof(c->files_dir));
    if (rc < 0) {
        log_error("files", "files_dir is too long");
        return rc;
    }
    if (mkdir(c->files_dir, 0700) < 0 && errno != EEXIST) {
        log_error("files", "cannot create %s: %s", c->files_dir, strerror(errno));
        return -errno;
    }
    rc = http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
    return rc == 0 ? api_run_files_register(c) : rc;
}
