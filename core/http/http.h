/* http.h - the HTTP/1.1 server of the REST API: routes, requests, responses, SSE.
 *
 * libuv + http-parser. Keep-alive and pipelining (responses leave in request
 * order), limits on header bytes, body bytes, connections, idle time and
 * time-to-full-request. Routes are declared in tables: method, path pattern
 * with {params}, the role required, the handler, and the OpenAPI text that
 * /api/v1/openapi.json is generated from, so the document cannot drift from
 * the server.
 *
 * Errors answered by the server itself, always with the JSON error body
 * {"error": {"code": "...", "message": "...", "details": ...}}:
 * 400 bad request line/headers/JSON, 401/403 from the auth hook, 404, 405
 * with Allow, 408 slow request, 413 body too large, 415 wrong content type,
 * 431 headers too large, 503 too many connections / shutting down; 400
 * https_required for plain HTTP on a TLS port, 301/308 to HTTPS from plain
 * addresses with redirect_http.
 *
 * Thread: everything here runs on the loop thread.
 */
#ifndef OPSC_HTTP_H
#define OPSC_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct http_server http_server;
typedef struct http_req http_req;
typedef struct http_sse http_sse;

/* Roles, ordered: a route requiring ROLE_OPERATOR admits operators and admins. */
enum { ROLE_PUBLIC = 0, ROLE_VIEWER = 1, ROLE_OPERATOR = 2, ROLE_ADMIN = 3 };
const char *http_role_name(int role);

/* Handler return values. */
#define HTTP_DONE  0 /* the handler responded */
#define HTTP_ASYNC 1 /* the handler will respond later (exactly once) */

/* Route flags. */
#define HTTP_ROUTE_JSON_BODY   (1u << 0) /* body must be a JSON object (400/415 otherwise) */
#define HTTP_ROUTE_RAW_BODY    (1u << 1) /* any content type; body up to max_upload_bytes */
#define HTTP_ROUTE_HIDDEN      (1u << 2) /* not in the OpenAPI document (the document itself) */
/* The body is not held in memory: route->body_start sets a sink (see
 * http_body_sink) that receives it piece by piece; up to max_upload_bytes. */
#define HTTP_ROUTE_STREAM_BODY (1u << 3)

typedef struct http_route {
    const char *method;  /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *pattern; /* "/api/v1/users/{id}"; a segment "{name}" binds a parameter */
    int role;            /* ROLE_* required; checked by the auth hook before the handler */
    int (*handler)(http_req *req);
    unsigned flags;
    const char *tag;             /* OpenAPI tag ("system", "users"...) */
    const char *summary;         /* OpenAPI summary, one line */
    const char *request_schema;  /* OpenAPI schema (JSON text) of the body, or NULL */
    const char *response_schema; /* OpenAPI schema (JSON text) of a 2xx body, or NULL */
    int status;                  /* success status in the OpenAPI document; 0 means 200 */
    /* HTTP_ROUTE_STREAM_BODY routes: runs once the headers are in and the
     * auth hook admitted the request, before any body byte is read. It
     * either sets a sink with http_req_set_body_sink() or answers (then the
     * body is not read, and `handler` never runs). Returns HTTP_DONE. The
     * handler runs after the last body byte went to the sink. */
    int (*body_start)(http_req *req);
} http_route;

/* Zero members take the defaults of the [server] config section. */
typedef struct http_opts {
    /* One address or several separated by ',', each IPv4:port, [IPv6]:port or
     * localhost:port, followed by " tls" for HTTPS: "127.0.0.1:8080, [::]:8443 tls".
     * At most HTTP_MAX_LISTENERS. */
    const char *listen;
    int max_connections;
    int64_t max_header_bytes;
    int64_t max_body_bytes;
    int64_t max_upload_bytes;   /* HTTP_ROUTE_RAW_BODY routes */
    int64_t idle_timeout_ms;    /* keep-alive connection with no request in progress */
    int64_t request_timeout_ms; /* from first byte to full request (slowloris); also the
                                 * time a TLS handshake may take */
    int64_t hsts_max_age_s;     /* Strict-Transport-Security on TLS answers; 0: none */
    bool redirect_http;         /* plain listeners send clients to the first TLS listener
                                 * (GET/HEAD 301, others 308), except /health and /ready */
} http_opts;

#define HTTP_MAX_LISTENERS 8

/* ---- HTTPS --------------------------------------------------------------------
 * Listeners marked "tls" speak TLS through OpenSSL over memory BIOs: the
 * loop reads and writes ciphertext, nothing blocks. ALPN offers http/1.1
 * only; sessions resume (tickets, whose keys the server keeps across
 * reloads, and a session cache). A plain HTTP request on a TLS port is
 * answered in plain text: 400 https_required naming the https URL, or with
 * redirect_http the redirect itself. */
typedef struct http_tls http_tls;

typedef struct http_tls_opts {
    const char *cert_file;      /* PEM: the certificate, then its chain */
    const char *key_file;       /* PEM private key, unencrypted, mode 0600 or stricter */
    const char *client_ca_file; /* PEM CAs of client certificates; NULL or "": none asked */
    bool client_required;       /* with client_ca_file: no certificate, no connection */
    int min_version;            /* 12 (default) or 13 */
} http_tls_opts;

/* Which file of http_tls_opts a load error is about. */
enum http_tls_file { HTTP_TLS_CERT = 1, HTTP_TLS_KEY, HTTP_TLS_CLIENT_CA };

/* Load and check everything a TLS listener needs, at start and on reload:
 * the key file must be a regular file that neither group nor others may
 * access, unencrypted, and match the certificate; every certificate of the
 * chain must be valid now (an expired or not-yet-valid one is refused,
 * naming its dates); a client CA file must hold at least one certificate.
 * Returns 0, or a negative code with a message in err (paths and dates,
 * never key material) and *which naming the file at fault. */
int http_tls_load(http_tls **out, const http_tls_opts *opts, char *err, size_t errlen,
                  enum http_tls_file *which);
/* One line about the loaded certificate for the log: subject, issuer, expiry. */
void http_tls_describe(const http_tls *tls, char *buf, size_t n);
/* Seconds until the first certificate of the chain expires. */
int64_t http_tls_expires_in(const http_tls *tls);
void http_tls_free(http_tls *tls);
/* Hand the server the TLS of its "tls" listeners (before http_server_listen,
 * and again on reload). The server takes `tls` over; the one it had is freed
 * once no connection uses it: connections keep the certificate they shook
 * hands with, new ones get the new one. */
void http_server_set_tls(http_server *srv, http_tls *tls);

/* Lifecycle. `opts` is copied. Once created, the server owns loop handles:
 * http_server_close() must run (and its callback fire) before
 * http_server_free(), even when listen failed. */
int http_server_new(http_server **out, uv_loop_t *loop, const http_opts *opts);
/* Bind and listen. Process-wide effects: SIGPIPE is ignored (a peer that
 * goes away mid-write must cost a connection, not the daemon), and the soft
 * RLIMIT_NOFILE is raised toward max_connections + 256 when the hard limit
 * allows. */
int http_server_listen(http_server *srv, char *err, size_t errlen);
/* Port actually bound (when listen said port 0): of the first listener. */
int http_server_port(const http_server *srv);
/* Listeners, in the order of `listen`: the port bound and whether it is TLS;
 * -1 past the last one. */
int http_server_listener_port(const http_server *srv, int i, bool *tls);
/* Stop accepting, finish in-flight requests, close idle and SSE connections;
 * `cb` runs when every connection is closed. Then http_server_free(). */
void http_server_close(http_server *srv, void (*cb)(void *ud), void *ud);
/* Close every connection now, in-flight or not (shutdown deadline); the
 * callback given to http_server_close() still runs. */
void http_server_abort(http_server *srv);
/* Requests still referenced by handlers keep the server's memory until
 * their last http_req_unref(). */
void http_server_free(http_server *srv);
/* Apply new timeouts (SIGHUP reload); <= 0 keeps the current value. */
void http_server_set_timeouts(http_server *srv, int64_t idle_timeout_ms,
                              int64_t request_timeout_ms);

/* Counters for /metrics. */
typedef struct http_stats {
    uint64_t connections_open;     /* now, excluding those being refused */
    uint64_t connections_accepted; /* since start */
    uint64_t connections_refused;  /* answered 503: over max_connections or shutting down */
    uint64_t requests;             /* responses queued since start */
    uint64_t sse_open;             /* event streams now */
    uint64_t tls_handshakes;       /* completed since start */
    uint64_t tls_resumed;          /* of which resumed a session */
    uint64_t tls_failed;           /* handshakes that failed or timed out */
} http_stats;
void http_server_stats(const http_server *srv, http_stats *st);

/* Routes: the table is borrowed for the server's lifetime. Checked here, so a
 * bad table fails at start-up: OPSC_EINVAL for an unknown method, a pattern
 * that does not start with '/' or has a malformed {param}, schema text that
 * is not a JSON object; OPSC_EEXIST for a method + pattern already added.
 * When two patterns match a path, the one whose first differing segment is
 * literal wins ("/runs/stats" before "/runs/{id}"). */
int http_add_routes(http_server *srv, const http_route *routes, size_t n);
/* A catch-all GET route (the web UI's files): it answers GET and HEAD
 * requests that no route matches, except when the path's first segment is
 * the first literal segment of some route ("api", "health"...): those keep
 * the JSON 404, so the API never answers with a page. With a fallback, such
 * a path outside the API holding a "." or ".." segment (also
 * percent-encoded) is answered 404 instead of 400: it names nothing. The
 * route is borrowed; the auth hook sees it like any other; it is not in the
 * table (nor in the OpenAPI document). NULL removes it. */
void http_server_set_fallback(http_server *srv, const http_route *route);
/* Walk every route (OpenAPI generation, the role-matrix test). */
void http_foreach_route(http_server *srv, void (*fn)(const http_route *r, void *ud), void *ud);

/* Auth hook: called before every handler whose route role > ROLE_PUBLIC
 * (and for public routes too, to let it attach an optional principal).
 * It runs as soon as the headers are in, before the body is read (so a
 * refused upload is not received), with headers, path, params and query
 * available. Return 0 to continue; otherwise it has responded (401/403/429).
 * Without a hook every route is open. */
typedef int (*http_auth_fn)(http_req *req, const http_route *route, void *ud);
void http_server_set_auth(http_server *srv, http_auth_fn fn, void *ud);
/* Event streams outlive the check made when they started: every sweep
 * (at most 500 ms apart) the server asks `fn` again about each stream's
 * principal (the one the auth hook attached; the stream keeps it) and the
 * role its route needs; a non-zero answer ends the stream (its on_close
 * runs). A stream of a public route without a principal is not asked. */
typedef int (*http_sse_check_fn)(void *principal, int role, void *ud);
void http_server_set_sse_check(http_server *srv, http_sse_check_fn fn, void *ud);
/* Completion hook: after each response is queued (audit, metrics), also for
 * the server's own error answers (route NULL when no route matched). */
typedef void (*http_done_fn)(http_req *req, const http_route *route, int status, void *ud);
void http_server_set_done(http_server *srv, http_done_fn fn, void *ud);

/* The message of every 507 store_full answer (it names the data directory);
 * copied. */
void http_server_set_full_message(http_server *srv, const char *message);

/* Application context reachable from handlers (the core). */
void http_server_set_app(http_server *srv, void *app);
void *http_req_app(http_req *req);

/* Request accessors. Returned strings are owned by the request. */
const char *http_req_method(http_req *req);
const char *http_req_path(http_req *req);                     /* decoded path without query */
const char *http_req_param(http_req *req, const char *name);  /* path {param}; NULL if absent */
const char *http_req_query(http_req *req, const char *name);  /* decoded; NULL if absent */
const char *http_req_header(http_req *req, const char *name); /* case-insensitive */
const char *http_req_body(http_req *req, size_t *len);

/* Where the body of an HTTP_ROUTE_STREAM_BODY request goes. Loop thread. */
typedef struct http_body_sink {
    /* The next `len` bytes of the body (borrowed until return). Return 0,
     * or non-zero after answering the request (507, 500): the rest of the
     * body is refused and the connection closes. */
    int (*write)(void *ud, const char *data, size_t len);
    /* Exactly once, when the server lets go of the request: `whole` is true
     * when the body arrived in full (the route's handler has run by then),
     * false when the connection dropped, the body was too large or write()
     * refused it. Frees `ud` as the sink's owner sees fit. */
    void (*close)(void *ud, bool whole);
    void *ud;
} http_body_sink;
/* Called by route->body_start only; `sink` is copied, `ud` stays the caller's
 * until close() runs. */
void http_req_set_body_sink(http_req *req, const http_body_sink *sink);
/* The ud of the request's sink (the handler reads its result there); NULL
 * when none. */
void *http_req_body_sink_ud(http_req *req);
json_t *http_req_json(http_req *req);       /* borrowed; NULL when no JSON body */
const char *http_req_client(http_req *req); /* client IP text */
bool http_req_tls(http_req *req);           /* it came over TLS */
/* The subject CN of the client certificate the TLS handshake verified
 * against the client CA; NULL without one (or once the connection is gone). */
const char *http_req_tls_client(http_req *req);
const http_route *http_req_route(http_req *req); /* NULL when no route matched */
/* Seconds since the request's first byte arrived (latency metrics). */
double http_req_seconds(http_req *req);
/* Opaque principal slot for the auth hook; freed with `free_fn` with the request. */
void http_req_set_principal(http_req *req, void *principal, void (*free_fn)(void *));
void *http_req_principal(http_req *req);
/* Keep the request alive across async work; balanced by http_req_unref().
 * A handler returning HTTP_ASYNC must hold a reference until it has
 * responded. A request whose client went away still accepts a response
 * (dropped). */
void http_req_ref(http_req *req);
void http_req_unref(http_req *req);
bool http_req_client_gone(http_req *req);

/* Responding: exactly once per request, now or later (a second response is
 * logged and dropped; a handler returning HTTP_DONE without responding gets
 * a 500). Responses leave in request order on a pipelined connection: the
 * next request's handler runs only after this one has responded. A HEAD
 * request runs the GET handler; the body is not sent. */
void http_set_header(http_req *req, const char *name, const char *value); /* copied */
void http_respond_json(http_req *req, int status, json_t *body);          /* steals `body` */
void http_respond_text(http_req *req, int status, const char *content_type, const char *body,
                       size_t len);
void http_respond_empty(http_req *req, int status);
/* {"error": {"code", "message", "details"}}; `details` stolen, may be NULL. */
void http_respond_error(http_req *req, int status, const char *code, json_t *details,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Map an OPSC_E* code to a status and code (ENOENT 404 not_found, EEXIST 409
 * conflict, ECONFLICT 412 version_conflict, EINVAL/ESCHEMA 400, EACCES 403,
 * EAUTH 401, EBUSY 409, ENOSPC 507 store_full, other 500 internal) and
 * respond with `message` (for ENOSPC, the server's full message when set). */
void http_respond_opsc_error(http_req *req, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Why `e` (from a failed json_load*) refused a body, without quoting it:
 * jansson's own text shows the bytes "near" the fault, and a body may be a
 * credential. Static text. */
const char *http_json_error_text(const json_error_t *e);
/* 400 invalid_json: "<prefix>: invalid JSON at line L, column C: <reason>",
 * details {line, column, position}; nothing of the body. */
void http_respond_invalid_json(http_req *req, const char *prefix, const json_error_t *e);

/* Answer with the contents of `fd` (a regular file open for reading,
 * transferred: the server closes it), `len` bytes from offset 0, read a
 * chunk at a time on the loop's thread pool and written as the client reads,
 * so memory stays bounded whatever the size. The connection serves its next
 * request once the body is out; a file that shrinks or fails to read cuts
 * the connection (the length was promised). HEAD sends the head alone. */
void http_respond_file(http_req *req, int status, const char *content_type, int fd, int64_t len);

/* Server-Sent Events: turn the request into an event stream (this is its
 * response: 200, text/event-stream, no-cache, keep-alive; the connection
 * carries nothing else and closes when the stream ends). Returns NULL when
 * the client is already gone or the request was HEAD (headers only); the
 * request has been answered either way.
 *
 * `on_close` runs once, later on the loop, when the stream ends by anything
 * but http_sse_end(): the client went away, a write failed, or the server
 * closes. The handle is freed after `on_close` returns: do not use it again.
 * After http_sse_end() the handle is gone and `on_close` never runs. */
http_sse *http_sse_start(http_req *req, void (*on_close)(void *ud), void *ud);
/* Queue one event; `id` and `event` may be NULL. Data lines are split on
 * '\n', '\r\n' or '\r'. Returns bytes queued but not yet written (for
 * back-pressure) or a negative code: OPSC_EPIPE when the stream is closed,
 * OPSC_EINVAL when `id` or `event` holds a line break. */
int64_t http_sse_send(http_sse *sse, const char *id, const char *event, const char *data);
/* A comment line keeps idle streams alive through proxies. 0 or OPSC_EPIPE. */
int http_sse_comment(http_sse *sse, const char *text);
/* Flush what is queued and close the connection; frees `sse`. */
void http_sse_end(http_sse *sse);

#endif
