/* wr_http.h - one pinned HTTP(S) connection on libcurl's multi-socket API, driven by the libuv
 * loop. */
#ifndef WR_HTTP_H
#define WR_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "wr_buf.h"

/* Each wr_http has its own multi handle, so its TCP connection is never shared:
 * NTLM and Kerberos authenticate a connection, not a request. */
typedef struct wr_http_opts {
    const char *url;
    uint32_t connect_timeout_ms;
    bool verify;            /* verify the server certificate (https) */
    const char *ca_bundle;  /* PEM text or a file path; NULL: system store */
    const char *pin_sha256; /* 64 hex digits of the server certificate's SHA-256, or NULL */
    const char *client_pem; /* client certificate + key (PEM), or NULL; copied by curl */
    const char *basic_user; /* Basic authentication, or NULL; copied by curl */
    const char *basic_password;
} wr_http_opts;

typedef struct wr_http_resp {
    int status; /* 0, or a negative OPSC_E* transport error */
    long code;  /* HTTP status */
    const uint8_t *body;
    size_t body_len;
    const char *content_type; /* "" when absent */
    const char *www_auth;     /* WWW-Authenticate values, one per line; "" when absent */
    bool new_connection;      /* the request went out on a newly opened TCP connection */
    bool retried;             /* the connection died after the request went out; curl sent it
                                 again on a new one */
    const char *error;        /* human detail when status < 0 */
} wr_http_resp;

typedef void (*wr_http_cb)(void *ud, const wr_http_resp *resp);

typedef struct wr_http wr_http;

/* NULL with a message on failure (bad options). */
wr_http *wr_http_new(uv_loop_t *loop, const wr_http_opts *o, char *err, size_t errlen);
/* POST one request; `cb` runs once on the loop (never from inside this call).
 * `authorization` (a full header value) and `content_type` may be NULL; `body` is
 * copied. OPSC_EBUSY while a request is in flight. */
int wr_http_post(wr_http *h, const char *authorization, const char *content_type, const void *body,
                 size_t len, uint32_t timeout_ms, wr_http_cb cb, void *ud);
bool wr_http_busy(const wr_http *h);
/* Drop the request in flight (its callback never runs) and its TCP connection. */
void wr_http_abort(wr_http *h);
/* Abort and free; memory goes once libuv has closed the handles, then `freed` (may be
 * NULL) runs on the loop: after it, nothing of this connection is left on the loop. */
void wr_http_free(wr_http *h, void (*freed)(void *ud), void *ud);

/* The tls-server-end-point hash of the TLS connection the last response came on
 * (RFC 5929); 0 when plain HTTP or unknown. */
size_t wr_http_tls_binding(const wr_http *h, uint8_t *out, size_t outlen);

/* Process-wide libcurl initialisation, once (curl_global_init is not thread-safe
 * in older libcurl; the plugin calls this from init on the loop thread). */
int wr_http_global_init(void);

#endif
