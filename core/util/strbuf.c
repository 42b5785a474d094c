/* strbuf.c - growable buffer with sticky out-of-memory state. */
#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(strbuf *sb, size_t extra)
{
    if (sb->oom)
        return false;
    if (sb->len + extra + 1 <= sb->cap)
        return true;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < sb->len + extra + 1) {
        if (cap > ((size_t)-1) / 2) {
            sb->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *buf = realloc(sb->buf, cap);
    if (!buf) {
        sb->oom = true;
        return false;
    }
    sb->buf = buf;
    sb->cap = cap;
    return true;
}

void sb_append(strbuf *sb, const void *data, size_t len)
{
    if (!reserve(sb, len))
        return;
    memcpy(sb->buf + sb->len, data, len);
    sb->len += len;
    sb->buf[sb->len] = '\0';
}

void sb_puts(strbuf *sb, const char *s)
{
    sb_append(sb, s, strlen(s));
}

void sb_vprintf(strbuf *sb, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0 || !reserve(sb, (size_t)n))
        return;
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
}

void sb_printf(strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(sb, fmt, ap);
    va_end(ap);
}

void sb_reset(strbuf *sb)
{
    sb->len = 0;
    if (sb->buf)
        sb->buf[0] = '\0';
}

void sb_free(strbuf *sb)
{
    free(sb->buf);
    *sb = (strbuf)STRBUF_INIT;
}

char *sb_steal(strbuf *sb, size_t *len)
{
    if (sb->oom) {
        sb_free(sb);
        return NULL;
    }
    if (!sb->buf && !reserve(sb, 0))
        return NULL;
    if (sb->len == 0)
        sb->buf[0] = '\0';
    char *out = sb->buf;
    if (len)
        *len = sb->len;
    *sb = (strbuf)STRBUF_INIT;
    return out;
}
