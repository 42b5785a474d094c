/* fuzz_conn.h - drive one server connection with fuzz bytes over a socketpair.
 *
 * The server is the real one (read path, parser, router, handlers, writes),
 * adopted onto one end of a Unix socketpair; the fuzzer writes its input
 * into the other end, half-closes, drains what comes back, and runs the loop
 * until the connection is gone. A connection that never closes is a bug:
 * the harness aborts so libFuzzer reports it.
 */
#ifndef OPSC_FUZZ_CONN_H
#define OPSC_FUZZ_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

/* The server, created on first use with `routes` (borrowed for the process). */
http_server *fuzz_server(const http_route *routes, size_t n);
/* Feed `head` (may be NULL), then `data`, as one client's bytes. */
void fuzz_feed(http_server *srv, const uint8_t *head, size_t hlen, const uint8_t *data, size_t len);
/* The same on a connection of a TLS listener (the bytes go in as they are). */
void fuzz_feed_tls(http_server *srv, const uint8_t *data, size_t len);
/* A connected non-blocking socketpair whose first end the server serves
 * (as a TLS listener's when `tls`); returns the client's end. */
int fuzz_connect(http_server *srv, bool tls);
/* After the client's end is closed: run the loop until the server let go
 * of every connection (abort if it never does). */
void fuzz_settle(http_server *srv);
uv_loop_t *fuzz_loop(void);
/* A route handler both fuzzers serve: the request becomes an event stream of one event. */
int fuzz_events(http_req *req);

#endif
