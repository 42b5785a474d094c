/* sse_parse.c - the text/event-stream format: lines, fields, events; bounded in memory. */
#include <stdlib.h>
#include <string.h>

#include "sse_parse.h"

void sse_parser_init(sse_parser *p, sse_event_fn fn, void *ud)
{
    memset(p, 0, sizeof(*p));
    p->fn = fn;
    p->ud = ud;
}

static void clear_event(sse_parser *p)
{
    p->event[0] = p->id[0] = '\0';
    p->data_len = 0;
    p->has_data = false;
}

void sse_parser_reset(sse_parser *p)
{
    p->len = 0;
    p->overlong = false;
    clear_event(p);
}

void sse_parser_free(sse_parser *p)
{
    free(p->line);
    free(p->data);
    memset(p, 0, sizeof(*p));
}

static bool grow(char **buf, size_t want)
{
    char *b = realloc(*buf, want);
    if (!b)
        return false;
    *buf = b;
    return true;
}

static void add_data(sse_parser *p, const char *value, size_t n)
{
    size_t extra = (p->has_data ? 1 : 0) + n;
    if (p->data_len + extra > SSE_MAX_DATA || !grow(&p->data, p->data_len + extra + 1)) {
        clear_event(p); /* too big to keep: the event is dropped */
        return;
    }
    if (p->has_data)
        p->data[p->data_len++] = '\n';
    memcpy(p->data + p->data_len, value, n);
    p->data_len += n;
    p->data[p->data_len] = '\0';
    p->has_data = true;
}

static void dispatch(sse_parser *p)
{
    if (p->has_data) { /* an event without data is not one (the spec) */
        if (p->id[0])
            memcpy(p->last_id, p->id, sizeof(p->id));
        p->stopped = p->fn(p->event[0] ? p->event : "message", p->id[0] ? p->id : NULL, p->data,
                           p->data_len, p->ud) != 0;
    }
    clear_event(p);
}

/* "field: value" (one optional space after the colon); ':' starts a comment. */
static void field(sse_parser *p, const char *line, size_t n)
{
    if (n == 0) {
        dispatch(p);
        return;
    }
    if (line[0] == ':')
        return;
    const char *colon = memchr(line, ':', n);
    size_t name_len = colon ? (size_t)(colon - line) : n;
    const char *value = colon ? colon + 1 : line + n;
    if (colon && value < line + n && *value == ' ')
        value++;
    size_t vlen = (size_t)(line + n - value);
    if (name_len == 5 && memcmp(line, "event", 5) == 0 && vlen < sizeof(p->event)) {
        memcpy(p->event, value, vlen);
        p->event[vlen] = '\0';
    } else if (name_len == 2 && memcmp(line, "id", 2) == 0 && vlen < sizeof(p->id) &&
               !memchr(value, '\0', vlen)) {
        memcpy(p->id, value, vlen);
        p->id[vlen] = '\0';
    } else if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        add_data(p, value, vlen);
    }
}

bool sse_feed(sse_parser *p, const char *buf, size_t n)
{
    for (size_t i = 0; i < n && !p->stopped; i++) {
        if (buf[i] != '\n') {
            if (p->overlong || p->len + 1 > SSE_MAX_LINE) {
                p->overlong = true;
                continue;
            }
            if (p->len + 2 > p->cap) {
                size_t cap = p->cap ? p->cap * 2 : 256;
                if (!grow(&p->line, cap)) {
                    p->overlong = true;
                    continue;
                }
                p->cap = cap;
            }
            p->line[p->len++] = buf[i];
            continue;
        }
        size_t len = p->len;
        if (len && p->line[len - 1] == '\r')
            len--;
        if (!p->overlong)
            field(p, p->line ? p->line : "", len);
        p->len = 0;
        p->overlong = false;
    }
    return !p->stopped;
}
