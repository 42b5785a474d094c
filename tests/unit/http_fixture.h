/* http_fixture.h - the routes, limits and assertions test_http runs its server with. */
#ifndef OPSC_HTTP_FIXTURE_H
#define OPSC_HTTP_FIXTURE_H

#include <stdint.h>

#include "http_harness.h"

/* SSE: the stream is kept in x->user for commands run on the loop. */
struct sse_state {
    http_sse *sse;
    atomic_int closed;
    int64_t max_pending;
};

#define BIG_BYTES (8 * 1024 * 1024)

/* What the streaming route's sinks saw (PUT /stream/{name}; "refuse" is
 * answered 400 by body_start, before the body). */
struct stream_seen {
    atomic_int started, handled, closed_whole, closed_cut;
    atomic_llong bytes;    /* written to sinks, all requests */
    atomic_llong last_sum; /* byte sum of the last whole body the handler saw */
};
extern struct stream_seen stream_seen;

/* Limits small enough to reach in a test. */
extern const http_opts small_limits;

/* A server with the test routes (opts NULL: small_limits). */
hx *fx_start(const http_opts *o);
/* Stop it and assert its loop closed clean. */
void fx_stop(hx *x);
/* Poll the server until `want` connections are open (2 s at most); the count. */
uint64_t wait_open_connections(hx *x, uint64_t want);
/* Read one answer: check its status (unless < 0) and body (unless NULL). */
void expect(hc *c, int status, const char *body);
/* Read one answer: the status and the JSON error code. */
void expect_error(hc *c, int status, const char *code);
/* One request on its own connection: the status. */
int status_of(hx *x, const char *raw);
/* The body is {"error": {"code": code, "message": ..., "details": ...}}. */
void assert_error_code(const hresp *r, const char *code);

#endif
