/* shproto.c - frames between the daemon and opsc-stephost: encoding, checked decoding, blocking
 * I/O. */
#include "shproto.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <opsc/errors.h>

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int shp_decode(const uint8_t *buf, size_t len, shp_frame *f, size_t *used)
{
    if (len < 4)
        return 0;
    uint32_t n = get32(buf);
    if (n < SHP_HEADER - 4 || n - (SHP_HEADER - 4) > SHP_MAX_PAYLOAD)
        return OPSC_EPROTO;
    if (len >= 8 && (buf[4] < SHP_HELLO || buf[4] > SHP_DATA || buf[5] || buf[6] || buf[7]))
        return OPSC_EPROTO;
    if (len < (size_t)n + 4)
        return 0;
    f->type = buf[4];
    f->id = get32(buf + 8);
    f->payload = buf + SHP_HEADER;
    f->len = n - (SHP_HEADER - 4);
    *used = (size_t)n + 4;
    return 1;
}

void shp_header(uint8_t hdr[SHP_HEADER], uint8_t type, uint32_t id, size_t len)
{
    put32(hdr, (uint32_t)(len + SHP_HEADER - 4));
    hdr[4] = type;
    hdr[5] = hdr[6] = hdr[7] = 0;
    put32(hdr + 8, id);
}

int shp_send(int fd, uint8_t type, uint32_t id, const void *payload, size_t len)
{
    if (len > SHP_MAX_PAYLOAD)
        return OPSC_E2BIG;
    uint8_t hdr[SHP_HEADER];
    shp_header(hdr, type, id, len);
    struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)payload, len}};
    int n = len ? 2 : 1;
    struct iovec *v = iov;
    while (n > 0) {
        ssize_t w = writev(fd, v, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        while (n > 0 && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++;
            n--;
        }
        if (n > 0) {
            v->iov_base = (char *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
    return 0;
}

int shp_send_json(int fd, uint8_t type, uint32_t id, const json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    if (!text)
        return OPSC_ENOMEM;
    int rc = shp_send(fd, type, id, text, strlen(text));
    free(text);
    return rc;
}

int shp_next(shp_reader *r, shp_frame *f)
{
    size_t used = 0;
    int rc = shp_decode(r->buf + r->off, r->len - r->off, f, &used);
    if (rc == 1)
        r->off += used;
    return rc;
}

int shp_fill(shp_reader *r, int fd)
{
    if (r->off > 0) { /* keep only the unread part */
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
    }
    if (r->cap - r->len < 65536) {
        size_t cap = r->cap ? r->cap * 2 : 131072;
        if (cap > SHP_MAX_PAYLOAD + 2 * SHP_HEADER + 65536)
            cap = SHP_MAX_PAYLOAD + 2 * SHP_HEADER + 65536;
        if (cap <= r->len)
            return OPSC_E2BIG;
        uint8_t *b = realloc(r->buf, cap);
        if (!b)
            return OPSC_ENOMEM;
        r->buf = b;
        r->cap = cap;
    }
    ssize_t n;
    do
        n = read(fd, r->buf + r->len, r->cap - r->len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    r->len += (size_t)n;
    return n > 0;
}

int shp_read(shp_reader *r, int fd, shp_frame *f)
{
    for (;;) {
        int rc = shp_next(r, f);
        if (rc != 0)
            return rc;
        rc = shp_fill(r, fd);
        if (rc <= 0)
            return rc == 0 && r->len > r->off ? OPSC_EPROTO : rc;
    }
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int shp_poll(int fd, int ms, shp_spin *spin)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    if (spin && spin->skip > 0)
        spin->skip--;
    else if (spin) {
        int64_t until = now_us() + SHP_SPIN_US;
        do {
            int n = poll(&pfd, 1, 0);
            if (n != 0)
                return n;
        } while (now_us() < until);
        spin->skip = SHP_SPIN_SKIP;
    }
    return poll(&pfd, 1, ms);
}

void shp_reader_free(shp_reader *r)
{
    free(r->buf);
    memset(r, 0, sizeof(*r));
}

json_t *shp_json(const shp_frame *f)
{
    if (f->type != SHP_JSON && f->type != SHP_HELLO)
        return NULL;
    json_t *v = json_loadb((const char *)f->payload, f->len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(v) || (f->type == SHP_JSON && !json_is_string(json_object_get(v, "op")))) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Bytes of the UTF-8 sequence starting at p (1-4), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
    size_t n = p[0] < 0x80             ? 1
               : (p[0] & 0xe0) == 0xc0 ? 2
               : (p[0] & 0xf0) == 0xe0 ? 3
               : (p[0] & 0xf8) == 0xf0 ? 4
                                       : 0;
    if (n == 0 || n > left || (n == 2 && p[0] < 0xc2))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

json_t *shp_string(const char *s, size_t len)
{
    if (!s)
        return json_null();
    json_t *v = json_stringn(s, len);
    if (v)
        return v;
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq((const unsigned char *)s + i, len - i);
        if (n == 0 || (n == 1 && s[i] == '\0')) {
            copy[i++] = '?';
            continue;
        }
        memcpy(copy + i, s + i, n);
        i += n;
    }
    v = json_stringn(copy, len);
    if (!v) /* overlong forms and surrogates that passed the quick check */
        v = json_string("?");
    free(copy);
    return v;
}
