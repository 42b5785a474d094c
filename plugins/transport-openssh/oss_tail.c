/* oss_tail.c - taking the end-of-command markers out of stderr (see oss_tail.h). */
#include <string.h>

#include "oss_tail.h"

static bool parse_marker(const char *s, size_t n, const char *name, int *value)
{
    size_t m = strlen(name);
    if (n < m + 2 || memcmp(s, name, m) != 0)
        return false;
    long v = 0;
    size_t i = m;
    for (; i < n && s[i] >= '0' && s[i] <= '9' && i < m + 6; i++)
        v = v * 10 + (s[i] - '0');
    if (i == m || (i < n && s[i] != '\r' && s[i] != '\n'))
        return false;
    *value = (int)v;
    return true;
}

static void tail_line(oss_tail *t, oss_emit_fn emit, void *ud)
{
    if (parse_marker(t->held, t->n, "\036OPSC-RC ", &t->rc))
        t->have_rc = true;
    else if (parse_marker(t->held, t->n, "\036OPSC-END ", &t->end))
        t->have_end = true;
    else
        emit(ud, t->held, t->n);
    t->n = 0;
    t->holding = false;
}

void oss_tail_feed(oss_tail *t, const char *data, size_t len, oss_emit_fn emit, void *ud)
{
    while (len > 0) {
        if (!t->holding) {
            const char *rs = memchr(data, '\036', len);
            size_t plain = rs ? (size_t)(rs - data) : len;
            if (plain)
                emit(ud, data, plain);
            data += plain;
            len -= plain;
            if (!rs)
                return;
            t->holding = true;
        }
        while (len > 0 && t->holding) {
            char c = *data++;
            len--;
            t->held[t->n++] = c;
            if (c == '\n')
                tail_line(t, emit, ud);
            else if (t->n == sizeof(t->held) || (t->n > 1 && c == '\036')) {
                /* not a marker of ours: give it back, a new one may start here */
                bool again = c == '\036' && t->n > 1;
                emit(ud, t->held, again ? t->n - 1 : t->n);
                t->n = 0;
                t->holding = again;
                if (again)
                    t->held[t->n++] = c;
            }
        }
    }
}

void oss_tail_flush(oss_tail *t, oss_emit_fn emit, void *ud)
{
    if (t->n)
        emit(ud, t->held, t->n);
    t->n = 0;
    t->holding = false;
}
