/* sse_parse.h - the text/event-stream format: bytes in, events out (no I/O, for the fuzzer too). */
#ifndef OPSCTL_SSE_PARSE_H
#define OPSCTL_SSE_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* One event: its name, id (NULL when none) and data lines joined by '\n'.
 * All borrowed until return. Returns non-zero to stop parsing. */
typedef int (*sse_event_fn)(const char *event, const char *id, const char *data, size_t len,
                            void *ud);

/* A line or an event's data longer than this is dropped, so a broken or
 * hostile server cannot make the client hold unbounded memory. */
#define SSE_MAX_LINE (8u << 20)
#define SSE_MAX_DATA (32u << 20)

typedef struct sse_parser {
    sse_event_fn fn;
    void *ud;
    char *line;
    size_t len, cap;
    bool overlong; /* the current line is being dropped */
    char event[64], id[32];
    char *data;
    size_t data_len;
    bool has_data, stopped;
    char last_id[32]; /* of the last event delivered with an id */
} sse_parser;

void sse_parser_init(sse_parser *p, sse_event_fn fn, void *ud);
/* Feed bytes; returns false once fn asked to stop (the rest is not read). */
bool sse_feed(sse_parser *p, const char *buf, size_t n);
/* Forget a half-read line and event (a new connection starts clean). */
void sse_parser_reset(sse_parser *p);
void sse_parser_free(sse_parser *p);

#endif
