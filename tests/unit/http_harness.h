/* http_harness.h - a real HTTP server on its own loop thread, and a blocking test client.
 *
 * The server runs the test's own uv loop on a second thread, so a test can
 * talk to it over real loopback sockets with plain blocking calls and
 * cmocka asserts. Anything that must touch the server (close it, send SSE
 * events, read stats) runs on the loop thread through hx_on_loop().
 */
#ifndef OPSC_HTTP_HARNESS_H
#define OPSC_HTTP_HARNESS_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "http.h"

typedef struct hx hx;
typedef void (*hx_fn)(hx *x, void *arg);

struct hx {
    uv_loop_t loop;
    http_server *srv;
    uv_async_t wake;
    pthread_t thread;
    sem_t done;
    hx_fn cmd;
    void *cmd_arg;
    int port;
    int loop_close_rc;
    atomic_bool closed; /* http_server_close's callback ran */
    void *user;         /* test data, touched on the loop thread */
};

/* Start a server with `opts` (listen 127.0.0.1:0 unless opts->listen names
 * one) and `routes`. */
hx *hx_start(const http_opts *opts, const http_route *routes, size_t n);
/* The same with the TLS of listeners marked tls (taken over; may be NULL). */
hx *hx_start_tls(const http_opts *opts, http_tls *tls, const http_route *routes, size_t n);
/* Run fn on the loop thread and wait for it. */
void hx_on_loop(hx *x, hx_fn fn, void *arg);
/* Begin a graceful close now (returns at once). */
void hx_close_async(hx *x);
/* Close gracefully (if not yet), wait for the loop to end, free. Returns
 * uv_loop_close()'s result: 0 when the loop closed clean. */
int hx_stop(hx *x);
http_stats hx_stats(hx *x);

/* ---- blocking client ------------------------------------------------------ */

typedef struct hc {
    int fd;
    void *ssl; /* SSL * of a TLS client, else NULL */
    char buf[1 << 16];
    size_t len;
} hc;

typedef struct hresp {
    int status;
    char head[8192];
    char *body; /* heap, NUL-terminated */
    size_t body_len;
} hresp;

hc *hc_connect(int port);
/* A TLS client on the same calls: `ctx` an SSL_CTX *, `session` an
 * SSL_SESSION * to resume or NULL. NULL when the handshake fails. */
hc *hc_connect_tls(int port, void *ctx, void *session);
void hc_close(hc *c);
void hc_send(hc *c, const char *data, size_t len);
void hc_sends(hc *c, const char *text);
/* Read one response (Content-Length or until EOF). 0, or -1 on EOF/timeout
 * before a full head. `head_only` for HEAD answers. */
int hc_read(hc *c, hresp *r, bool head_only);
void hresp_free(hresp *r);
/* Value of a header in r->head (case-insensitive) into out; false if absent. */
bool hresp_header(const hresp *r, const char *name, char *out, size_t n);
/* Read until the peer closes; true when it closed within the receive timeout. */
bool hc_wait_eof(hc *c);
/* Read whatever arrives until `needle` appears; true if it did. */
bool hc_read_until(hc *c, const char *needle);
/* One request on a fresh connection; returns the status, fills r. */
int hx_request(int port, const char *raw, hresp *r);

#endif
