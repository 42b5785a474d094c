/* bundle_tar.c - reading a bundle's .tar.gz without trusting it: inflated in memory within a
 * bound, ustar/pax/GNU headers checked, only plain files and folders with safe relative names,
 * and written out beneath a fresh folder without following anything. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <opsc/errors.h>

#include "bundle_internal.h"

#define BLOCK 512

bool bundle_is_gzip(const void *data, size_t len)
{
    const uint8_t *p = data;
    return len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

/* ---- gzip ------------------------------------------------------------------------------------ */

static int inflate_all(const void *gz, size_t len, size_t max, tar_archive *a, char *err,
                       size_t errlen)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return OPSC_ENOMEM;
    size_t cap = 1 << 16;
    a->raw = malloc(cap);
    z.next_in = (Bytef *)gz;
    z.avail_in = (uInt)len;
    int zr = Z_OK;
    while (a->raw && zr == Z_OK) {
        if (a->rawlen == cap) {
            if (cap >= max + 4 * BLOCK) {
                inflateEnd(&z);
                snprintf(err, errlen, "the bundle unpacks to more than %zu MiB", max >> 20);
                return OPSC_E2BIG;
            }
            cap = cap * 2 < max + 4 * BLOCK ? cap * 2 : max + 4 * BLOCK;
            uint8_t *grown = realloc(a->raw, cap);
            if (!grown)
                break;
            a->raw = grown;
        }
        z.next_out = a->raw + a->rawlen;
        z.avail_out = (uInt)(cap - a->rawlen);
        zr = inflate(&z, Z_NO_FLUSH);
        a->rawlen = cap - z.avail_out;
        if (zr == Z_BUF_ERROR && z.avail_in > 0 && z.avail_out == 0)
            zr = Z_OK; /* only room was missing */
    }
    inflateEnd(&z);
    if (!a->raw)
        return OPSC_ENOMEM;
    if (zr != Z_STREAM_END) {
        snprintf(err, errlen, "not a gzip-compressed tar archive: %s",
                 zr == Z_BUF_ERROR ? "it is cut short"
                 : z.msg           ? z.msg
                                   : "corrupt data");
        return OPSC_EINVAL;
    }
    return 0;
}

/* ---- tar headers ----------------------------------------------------------------------------- */

/* An octal field (NUL- or space-terminated); -1 when it is not one. */
static long long octal(const uint8_t *f, size_t n)
{
    long long v = 0;
    size_t i = 0;
    while (i < n && f[i] == ' ')
        i++;
    size_t digits = 0;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
        if (v > (1LL << 40))
            return -1;
        v = v * 8 + (f[i] - '0');
    }
    for (; i < n; i++)
        if (f[i] != ' ' && f[i] != '\0')
            return -1;
    return digits ? v : -1;
}

static bool checksum_ok(const uint8_t *h)
{
    long long want = octal(h + 148, 8);
    unsigned long sum = 0;
    for (int i = 0; i < BLOCK; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    return want >= 0 && (unsigned long)want == sum;
}

static bool zero_block(const uint8_t *h)
{
    for (int i = 0; i < BLOCK; i++)
        if (h[i])
            return false;
    return true;
}

/* A name as the archive holds it, made relative and checked: no absolute
 * path, no "..", nothing but printable ASCII. "" for the archive's root. */
static int clean_name(const char *in, size_t len, char out[BUNDLE_NAME_MAX + 1], char *err,
                      size_t errlen)
{
    while (len >= 2 && in[0] == '.' && in[1] == '/') {
        in += 2;
        len -= 2;
        while (len && *in == '/') {
            in++;
            len--;
        }
    }
    while (len && in[len - 1] == '/')
        len--;
    if (len == 1 && in[0] == '.')
        len = 0;
    const char *why = len > BUNDLE_NAME_MAX ? "is longer than 200 bytes"
                      : len && in[0] == '/' ? "is an absolute path"
                                            : NULL;
    for (size_t i = 0; i < len && !why; i++)
        if ((unsigned char)in[i] < 0x21 || (unsigned char)in[i] > 0x7e || in[i] == '\\')
            why = "holds a byte that is not printable ASCII (or a space or backslash)";
    for (size_t i = 0; i < len && !why; i++) {
        size_t c = strcspn(in + i, "/");
        c = c > len - i ? len - i : c;
        if ((c == 2 && in[i] == '.' && in[i + 1] == '.') || (c == 1 && in[i] == '.') || c == 0)
            why = "has a '..', '.' or empty component";
        i += c;
    }
    if (why) {
        snprintf(err, errlen, "entry '%.*s' %s", (int)(len > 80 ? 80 : len), in, why);
        return OPSC_EINVAL;
    }
    memcpy(out, in, len);
    out[len] = '\0';
    return 0;
}

/* The "path" record of a pax extended header ("<len> path=<name>\n" records), or NULL. */
static const char *pax_path(const uint8_t *p, size_t len, size_t *plen)
{
    size_t off = 0;
    while (off < len) {
        size_t rec = 0, i = off;
        while (i < len && p[i] >= '0' && p[i] <= '9' && rec <= len)
            rec = rec * 10 + (p[i++] - '0');
        if (rec == 0 || rec > len - off || i >= len || p[i] != ' ' || i + 1 >= off + rec)
            return NULL;
        const char *kv = (const char *)p + i + 1, *stop = (const char *)p + off + rec - 1;
        if (stop - kv > 5 && memcmp(kv, "path=", 5) == 0) {
            *plen = (size_t)(stop - kv - 5);
            return kv + 5;
        }
        off += rec;
    }
    return NULL;
}

static const char *kind_name(char t)
{
    switch (t) {
    case '1':
        return "a hard link";
    case '2':
        return "a symbolic link";
    case '3':
    case '4':
        return "a device";
    case '6':
        return "a fifo";
    default:
        return "of an unsupported kind";
    }
}

static int add_entry(tar_archive *a, const tar_entry *e, char *err, size_t errlen)
{
    if (tar_find(a, e->path)) {
        snprintf(err, errlen, "entry '%s' appears twice", e->path);
        return OPSC_EINVAL;
    }
    if (a->n == BUNDLE_MAX_ENTRIES) {
        snprintf(err, errlen, "the bundle has more than %d entries", BUNDLE_MAX_ENTRIES);
        return OPSC_E2BIG;
    }
    a->entries[a->n++] = *e;
    return 0;
}

/* One header at `off` (and its data): 1 at the end of the archive, 0, or an error. */
static int one_header(tar_archive *a, size_t *off, const char **longname, size_t *longlen,
                      char *err, size_t errlen)
{
    const uint8_t *h = a->raw + *off;
    if (zero_block(h))
        return 1;
    long long size = octal(h + 124, 12), mode = octal(h + 100, 8);
    if (!checksum_ok(h) || size < 0 || mode < 0) {
        snprintf(err, errlen, "not a tar archive (a damaged header at byte %zu)", *off);
        return OPSC_EINVAL;
    }
    size_t data = *off + BLOCK, padded = ((size_t)size + BLOCK - 1) / BLOCK * BLOCK;
    if (padded > a->rawlen - data) {
        snprintf(err, errlen, "the archive is cut short (at byte %zu)", *off);
        return OPSC_EINVAL;
    }
    *off = data + padded;
    char type = (char)h[156];
    if (type == 'x' || type == 'L') { /* the next entry's name */
        *longname = type == 'L' ? (const char *)a->raw + data
                                : pax_path(a->raw + data, (size_t)size, longlen);
        if (type == 'L')
            *longlen = strnlen(*longname, (size_t)size);
        return 0;
    }
    if (type == 'g')
        return 0;
    tar_entry e = {.data = a->raw + data, .len = (size_t)size, .exec = (mode & 0111) != 0};
    char name[256 + 156];
    size_t nlen;
    if (*longname) {
        nlen = *longlen < sizeof(name) ? *longlen : sizeof(name) - 1;
        memcpy(name, *longname, nlen);
        name[nlen] = '\0';
    } else {
        const char *prefix = memcmp(h + 257, "ustar", 5) == 0 ? (const char *)h + 345 : "";
        size_t pl = strnlen(prefix, 155);
        nlen = (size_t)snprintf(name, sizeof(name), "%.*s%s%.*s", (int)pl, prefix, pl ? "/" : "",
                                (int)strnlen((const char *)h, 100), (const char *)h);
    }
    *longname = NULL;
    int rc = clean_name(name, nlen, e.path, err, errlen);
    if (rc < 0)
        return rc;
    if (type != '0' && type != '\0' && type != '7' && type != '5') {
        snprintf(err, errlen, "entry '%s' is %s: a bundle holds only files and folders", e.path,
                 kind_name(type));
        return OPSC_EINVAL;
    }
    e.dir = type == '5';
    if (!e.path[0])
        return 0; /* "./" itself */
    return add_entry(a, &e, err, errlen);
}

int tar_index(tar_archive *a, char *err, size_t errlen)
{
    int rc = (a->entries = calloc(BUNDLE_MAX_ENTRIES, sizeof(*a->entries))) ? 0 : OPSC_ENOMEM;
    size_t off = 0, longlen = 0;
    const char *longname = NULL;
    while (rc == 0) {
        if (a->rawlen - off < BLOCK) {
            if (off == 0) {
                snprintf(err, errlen, "not a tar archive (empty)");
                rc = OPSC_EINVAL;
            }
            break;
        }
        rc = one_header(a, &off, &longname, &longlen, err, errlen);
    }
    if (rc < 0)
        tar_free(a);
    return rc < 0 ? rc : 0;
}

int tar_read(const void *gz, size_t len, size_t max, tar_archive *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    int rc = inflate_all(gz, len, max, a, err, errlen);
    if (rc < 0) {
        tar_free(a);
        return rc;
    }
    return tar_index(a, err, errlen);
}

const tar_entry *tar_find(const tar_archive *a, const char *path)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->entries[i].path, path) == 0)
            return &a->entries[i];
    return NULL;
}

void tar_free(tar_archive *a)
{
    free(a->raw);
    free(a->entries);
    memset(a, 0, sizeof(*a));
}

/* ---- writing it out -------------------------------------------------------------------------- */

/* The folder holding `path` beneath `root` (an fd the caller closes unless it is root),
 * creating what is missing, never following a link. */
static int parent_fd(int root, const char *path, const char **base)
{
    int fd = root;
    const char *p = path;
    for (const char *slash; (slash = strchr(p, '/')); p = slash + 1) {
        char part[BUNDLE_NAME_MAX + 1];
        snprintf(part, sizeof(part), "%.*s", (int)(slash - p), p);
        if (mkdirat(fd, part, 0755) < 0 && errno != EEXIST) {
            int e = -errno;
            if (fd != root)
                close(fd);
            return e;
        }
        int next = openat(fd, part, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = -errno;
        if (fd != root)
            close(fd);
        if (next < 0)
            return e;
        fd = next;
    }
    *base = p;
    return fd;
}

static int write_entry(int root, const tar_entry *e)
{
    const char *base = e->path;
    int dir = parent_fd(root, e->path, &base);
    if (dir < 0)
        return dir;
    int rc = 0;
    if (e->dir) {
        if (mkdirat(dir, base, 0755) < 0 && errno != EEXIST)
            rc = -errno;
    } else {
        mode_t mode = e->exec ? 0755 : 0644;
        int fd = openat(dir, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        size_t done = 0;
        while (fd >= 0 && done < e->len) {
            ssize_t n = write(fd, e->data + done, e->len - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            done += (size_t)n;
        }
        if (fd < 0 || done < e->len || fchmod(fd, mode) < 0)
            rc = errno ? -errno : OPSC_EIO;
        if (fd >= 0)
            close(fd);
    }
    if (dir != root)
        close(dir);
    return rc;
}

int tar_extract(const tar_archive *a, const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0755) < 0 || chmod(dir, 0755) < 0) {
        snprintf(err, errlen, "creating %s: %s", dir, strerror(errno));
        return -errno;
    }
    int root = open(dir, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int rc = root < 0 ? -errno : 0;
    for (size_t i = 0; i < a->n && rc == 0; i++) {
        errno = 0;
        rc = write_entry(root, &a->entries[i]);
        if (rc < 0)
            snprintf(err, errlen, "unpacking %s into %s: %s", a->entries[i].path, dir,
                     strerror(-rc));
    }
    if (root >= 0)
        close(root);
    if (rc < 0)
        bundle_rmtree(dir);
    return rc;
}

/* Depth-first, never following a link; folders a step made read-only are opened up first. */
static void rm_beneath(int dirfd)
{
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            fchmodat(dirfd, e->d_name, 0700, 0);
            int sub = openat(dirfd, e->d_name, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                rm_beneath(sub);
            unlinkat(dirfd, e->d_name, AT_REMOVEDIR);
        } else {
            unlinkat(dirfd, e->d_name, 0);
        }
    }
    closedir(d);
}

void bundle_rmtree(const char *dir)
{
    chmod(dir, 0700);
    int fd = open(dir, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0)
        rm_beneath(fd);
    rmdir(dir);
}
