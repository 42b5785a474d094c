/* digest.c - SHA-256 sidecars beside stored files, so listings never hash a file twice. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <opsc/errors.h>

#include "runfiles.h"
#include "util.h"

#define SIDECAR_MAX 512

static int sidecar_name(const char *name, char *out, size_t n)
{
    return (size_t)snprintf(out, n, ".%s.sha256", name) < n ? 0 : OPSC_E2BIG;
}

static int hash_fd(int fd, char out[65], uint64_t *size)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return OPSC_ENOMEM;
    }
    char buf[64 * 1024];
    ssize_t n;
    *size = 0;
    while ((n = pread(fd, buf, sizeof(buf), (off_t)*size)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        EVP_DigestUpdate(md, buf, (size_t)n);
        *size += (uint64_t)n;
    }
    int rc = n < 0 ? -errno : 0;
    unsigned char d[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(md, d, &len);
    EVP_MD_CTX_free(md);
    for (unsigned i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    return rc;
}

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* The sidecar's object (new reference), or NULL when absent or unreadable. */
static json_t *sidecar_read(int dir, const char *name)
{
    char side[300], text[SIDECAR_MAX + 1];
    if (sidecar_name(name, side, sizeof(side)) < 0)
        return NULL;
    int fd = openat(dir, side, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, text, SIDECAR_MAX);
    close(fd);
    if (n <= 0)
        return NULL;
    text[n] = '\0';
    json_t *v = json_loads(text, 0, NULL);
    const char *sha = json_string_value(json_object_get(v, "sha256"));
    if (!sha || strlen(sha) != 64) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Written to a temporary name, then renamed over: a reader sees the old one or the new one. */
static int sidecar_write(int dir, const char *name, const char *sha, const struct stat *st,
                         int64_t stored_ms)
{
    char side[300], tmp[320], when[RFC3339_LEN];
    int rc = sidecar_name(name, side, sizeof(side));
    if (rc < 0)
        return rc;
    snprintf(tmp, sizeof(tmp), "%s.%d", side, (int)getpid());
    rfc3339_format(stored_ms, when);
    json_t *v = json_pack("{s:s, s:I, s:I, s:I, s:s}", "sha256", sha, "size",
                          (json_int_t)st->st_size, "mtime_ns", (json_int_t)mtime_ns(st), "ino",
                          (json_int_t)st->st_ino, "stored_at", when);
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!text)
        return OPSC_ENOMEM;
    int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    size_t len = strlen(text);
    rc = fd < 0 ? -errno : write(fd, text, len) == (ssize_t)len ? 0 : errno ? -errno : OPSC_EIO;
    free(text);
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && renameat(dir, tmp, dir, side) < 0)
        rc = -errno;
    if (rc < 0 && fd >= 0)
        unlinkat(dir, tmp, 0);
    return rc;
}

static void fill(runfiles_digest *out, json_t *side)
{
    snprintf(out->sha256, sizeof(out->sha256), "%s",
             json_string_value(json_object_get(side, "sha256")));
    out->size = (uint64_t)json_integer_value(json_object_get(side, "size"));
    const char *when = json_string_value(json_object_get(side, "stored_at"));
    out->stored_ms = 0;
    if (when)
        rfc3339_parse(when, &out->stored_ms);
}

static bool matches(json_t *side, const struct stat *st)
{
    return json_integer_value(json_object_get(side, "size")) == (json_int_t)st->st_size &&
           json_integer_value(json_object_get(side, "mtime_ns")) == (json_int_t)mtime_ns(st) &&
           json_integer_value(json_object_get(side, "ino")) == (json_int_t)st->st_ino;
}

int runfiles_digest_get(int dir, const char *name, int fd, const struct stat *st,
                        runfiles_digest *out)
{
    json_t *side = sidecar_read(dir, name);
    if (side && matches(side, st)) {
        fill(out, side);
        json_decref(side);
        return 0;
    }
    json_decref(side);
    int rc = hash_fd(fd, out->sha256, &out->size);
    out->stored_ms = clock_now_ms();
    if (rc == 0 && out->size == (uint64_t)st->st_size) /* it did not change while we read */
        sidecar_write(dir, name, out->sha256, st, out->stored_ms);
    return rc;
}

int runfiles_digest_put(int dir, const char *name, const char sha256[65], const struct stat *st)
{
    return sidecar_write(dir, name, sha256, st, clock_now_ms());
}

int runfiles_digest_record(int dir, const char *name, runfiles_digest *out, bool *changed)
{
    json_t *before = sidecar_read(dir, name);
    struct stat st;
    int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int rc = fd < 0 ? -errno : fstat(fd, &st) < 0 ? -errno : S_ISREG(st.st_mode) ? 0 : OPSC_EINVAL;
    if (rc == 0)
        rc = hash_fd(fd, out->sha256, &out->size);
    out->stored_ms = clock_now_ms();
    if (rc == 0)
        rc = sidecar_write(dir, name, out->sha256, &st, out->stored_ms);
    if (fd >= 0)
        close(fd);
    *changed =
        !before || strcmp(json_string_value(json_object_get(before, "sha256")), out->sha256) != 0;
    json_decref(before);
    return rc;
}

void runfiles_digest_drop(int dir, const char *name)
{
    char side[300];
    if (sidecar_name(name, side, sizeof(side)) == 0)
        unlinkat(dir, side, 0);
}
