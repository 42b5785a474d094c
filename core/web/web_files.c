/* web_files.c - reading the built UI's directory into a sorted in-memory table of files. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include <opsc/errors.h>

#include "util.h"
#include "web_internal.h"

#define MAX_FILES 4096
#define MAX_BYTES (64u << 20)
#define MAX_DEPTH 8

static const struct {
    const char *ext;
    const char *ctype;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
    {".webmanifest", "application/manifest+json"},
};

static const char *content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].ctype;
    return "application/octet-stream";
}

/* A strong tag from the bytes: equal content, equal tag, across restarts. */
static void make_etag(char out[WEB_ETAG_MAX], const char *data, size_t len, const char *suffix)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(out, WEB_ETAG_MAX, "\"%s%s\"", hex, suffix);
}

struct loader {
    web_ui *w;
    size_t cap, bytes;
    char *err;
    size_t errlen;
};

static int add_file(struct loader *l, const char *rel, const char *full, off_t size)
{
    if (l->w->n == MAX_FILES || l->bytes + (size_t)size > MAX_BYTES) {
        snprintf(l->err, l->errlen, "%s: the UI holds more than %d files or %u MiB", full,
                 MAX_FILES, MAX_BYTES >> 20);
        return OPSC_E2BIG;
    }
    if (l->w->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        web_file *v = realloc(l->w->files, cap * sizeof(*v));
        if (!v)
            return OPSC_ENOMEM;
        l->w->files = v;
        l->cap = cap;
    }
    web_file *f = &l->w->files[l->w->n];
    memset(f, 0, sizeof(*f));
    int rc = fs_read_file(full, MAX_BYTES, &f->body, &f->len);
    if (rc < 0) {
        snprintf(l->err, l->errlen, "%s: cannot read: %s", full, opsc_strerror(rc));
        return rc;
    }
    f->path = strdup(rel);
    if (!f->path) {
        free(f->body);
        return OPSC_ENOMEM;
    }
    l->w->n++;
    l->bytes += f->len;
    return 0;
}

static int load_dir(struct loader *l, const char *dir, const char *rel, int depth);

static int load_entry(struct loader *l, const char *dir, const char *rel, const char *name,
                      int depth)
{
    char full[4096], sub[1024];
    if (fs_join(full, sizeof(full), dir, name) < 0 ||
        (size_t)snprintf(sub, sizeof(sub), "%s/%s", rel, name) >= sizeof(sub))
        return 0; /* a name this long is no file of ours */
    struct stat st;
    if (lstat(full, &st) < 0)
        return 0; /* gone meanwhile */
    if (S_ISDIR(st.st_mode))
        return depth < MAX_DEPTH ? load_dir(l, full, sub, depth + 1) : 0;
    if (!S_ISREG(st.st_mode))
        return 0; /* symbolic links and devices are not part of a UI build */
    return add_file(l, sub, full, st.st_size);
}

static int load_dir(struct loader *l, const char *dir, const char *rel, int depth)
{
    DIR *d = opendir(dir);
    if (!d) {
        int rc = -errno;
        snprintf(l->err, l->errlen, "%s: cannot open: %s", dir, strerror(errno));
        return rc;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            rc = load_entry(l, dir, rel, e->d_name, depth);
    closedir(d);
    return rc;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const web_file *)a)->path, ((const web_file *)b)->path);
}

const web_file *web_find(const web_ui *w, const char *path)
{
    web_file key = {.path = (char *)path};
    return bsearch(&key, w->files, w->n, sizeof(web_file), by_path);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* "x.gz" becomes x's precompressed copy and leaves the table; a ".gz"
 * without its original stays an ordinary (downloadable) file. Lookups run
 * on the whole sorted table first, the table is compacted after. */
static void pair_gzip(web_ui *w)
{
    char key[1024];
    for (size_t i = 0; i < w->n; i++) {
        web_file *f = &w->files[i];
        size_t n = strlen(f->path);
        if (!ends_with(f->path, ".gz") || n - 3 >= sizeof(key))
            continue;
        memcpy(key, f->path, n - 3);
        key[n - 3] = '\0';
        web_file *orig = (web_file *)web_find(w, key);
        if (!orig || orig->gz)
            continue;
        orig->gz = f->body;
        orig->gz_len = f->len;
        f->body = NULL;
        f->paired = true;
    }
    size_t out = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (w->files[i].paired)
            free(w->files[i].path);
        else
            w->files[out++] = w->files[i];
    }
    w->n = out;
}

static void finish(web_ui *w)
{
    for (size_t i = 0; i < w->n; i++) {
        web_file *f = &w->files[i];
        f->ctype = content_type(f->path);
        f->immutable = web_name_is_hashed(f->path);
        make_etag(f->etag, f->body, f->len, "");
        if (f->gz)
            make_etag(f->gz_etag, f->gz, f->gz_len, "-gz");
    }
    w->index = web_find(w, "/index.html");
}

int web_ui_open(web_ui **out, const char *dir, char *err, size_t errlen)
{
    web_ui *w = calloc(1, sizeof(*w));
    if (!w)
        return OPSC_ENOMEM;
    struct loader l = {w, 0, 0, err, errlen};
    int rc = load_dir(&l, dir, "", 0);
    if (rc == 0) {
        /* Sorted before pairing: pair_gzip looks originals up by bsearch, and
         * dropping the .gz entries keeps the order. */
        qsort(w->files, w->n, sizeof(web_file), by_path);
        pair_gzip(w);
        finish(w);
        if (!w->index) {
            snprintf(err, errlen, "%s: no index.html (is the UI built?)", dir);
            rc = OPSC_ENOENT;
        }
    }
    if (rc < 0) {
        web_ui_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void web_ui_free(web_ui *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->files[i].path);
        free(w->files[i].body);
        free(w->files[i].gz);
    }
    free(w->files);
    free(w);
}

void web_ui_stats_get(const web_ui *w, web_ui_stats *st)
{
    memset(st, 0, sizeof(*st));
    for (size_t i = 0; i < w->n; i++) {
        st->files++;
        st->bytes += w->files[i].len;
        if (w->files[i].gz) {
            st->gz_files++;
            st->gz_bytes += w->files[i].gz_len;
        }
    }
}
