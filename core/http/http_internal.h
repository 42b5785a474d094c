/* http_internal.h - what the files of the HTTP server share: server, connection, request. */
#ifndef OPSC_HTTP_INTERNAL_H
#define OPSC_HTTP_INTERNAL_H

#include <http_parser.h>

#include "http.h"
#include "strbuf.h"

/* After a Connection: close answer given before the request was read whole,
 * keep reading (and discarding) this long so the peer's unread data does
 * not turn our FIN into a RST that destroys the answer. */
#define HTTP_LINGER_MS      2000
/* Input buffered while a request is being handled; more stops reading. */
#define HTTP_PENDING_MAX    (64 * 1024)
/* Output queued on a connection above which no further pipelined request
 * is parsed until the client reads. */
#define HTTP_WRITE_HIGH     (1024 * 1024)
/* Connections being refused with 503 at once; more are closed outright. */
#define HTTP_REFUSING_MAX   64
#define HTTP_MAX_SEGMENTS   32
#define HTTP_MAX_PARAMS     8
/* Idle request objects kept for reuse. */
#define HTTP_REQ_POOL_MAX   256
/* A request object whose buffers grew beyond this is freed, not pooled. */
#define HTTP_REQ_KEEP_BYTES (64 * 1024)

typedef struct http_conn http_conn;
typedef struct tls_conn tls_conn;

/* One address the server listens on. */
typedef struct http_listener {
    uv_tcp_t tcp;
    struct http_server *srv;
    struct sockaddr_storage addr;
    char text[64]; /* the address as configured, without " tls" */
    int port;      /* bound */
    bool tls;
    bool init; /* tcp initialised: closed with the server */
} http_listener;

typedef struct http_hdr {
    uint32_t name, name_len, value, value_len; /* offsets into req->arena */
} http_hdr;

typedef struct http_kv {
    uint32_t key, value; /* offsets of NUL-terminated text in req->arena */
} http_kv;

typedef struct http_param {
    const char *name; /* into the route pattern, not NUL-terminated */
    uint32_t name_len;
    uint32_t value; /* offset in req->arena */
} http_param;

enum hdr_state { HS_URL, HS_FIELD, HS_VALUE };

struct http_req {
    http_server *srv;
    http_conn *conn; /* NULL once the connection let go of the request */
    http_req *next_free;
    int refs;
    const http_route *route;
    /* url, header names and values, decoded path, query and segments, all
     * NUL-terminated, addressed by offset because the arena may move. */
    strbuf arena;
    http_hdr *hdrs;
    uint32_t nhdrs, hdrs_cap;
    http_kv *query;
    uint32_t nquery, query_cap;
    http_param params[HTTP_MAX_PARAMS];
    uint32_t nparams;
    uint32_t url_off, url_len, path_off;
    uint32_t segs[HTTP_MAX_SEGMENTS]; /* decoded path segments */
    uint32_t nsegs;
    enum hdr_state hstate;
    strbuf body;
    json_t *json;
    strbuf resp_headers; /* "Name: value\r\n" set by the handler */
    const char *method;  /* static text */
    uint64_t start_ns;
    int64_t header_bytes;
    int64_t body_limit;
    int status;
    bool head;       /* HEAD served by a GET route */
    bool keep_alive; /* the client allows another request after this one */
    bool http10;
    bool complete; /* the parser saw the whole request */
    bool responded;
    bool discard_body; /* answered early; the rest of the body is dropped */
    bool gone;         /* the client went away before the answer */
    bool dot_segment;  /* the path was refused for a "." or ".." segment */
    void *principal;
    void (*principal_free)(void *);
    bool tls; /* it came over TLS */
    char client[48];
    http_body_sink sink; /* HTTP_ROUTE_STREAM_BODY: where the body goes */
    int64_t body_received;
    struct file_body *fbody; /* http_respond_file: the body still being sent */
};

enum conn_state {
    CONN_OPEN,
    CONN_DRAIN,   /* last answer queued: flush, shut down writes, maybe linger */
    CONN_CLOSING, /* uv_close() called */
};

struct http_conn {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    http_server *srv;
    http_conn *prev, *next; /* srv->conns */
    http_conn *resume_next; /* srv->resume_head */
    http_parser parser;
    http_req *req; /* being parsed or handled; NULL between requests */
    http_sse *sse;
    strbuf pending; /* input not parsed yet because the parser is paused */
    size_t pending_off;
    strbuf out;  /* answer head being built */
    strbuf body; /* JSON answer body being built */
    uv_shutdown_t shut;
    uint64_t idle_since, req_since, drain_since, write_since;
    enum conn_state state;
    bool paused;      /* parser paused: handler running or output backed up */
    bool reading;     /* uv_read_start active */
    bool eof;         /* the client shut its side */
    bool close_after; /* close once the current request is answered */
    bool in_parse;    /* inside http_parser_execute */
    bool refusing;    /* over the limit: 503 and close */
    bool counted;     /* in srv->nconns */
    bool linger;      /* unread input may follow: linger after shutdown */
    bool shut_done;
    bool resume_queued;
    bool https_only; /* plain HTTP that must go to HTTPS: a TLS port, or redirect_http */
    bool tls_port;   /* accepted by a TLS listener */
    tls_conn *tls;   /* NULL on a plain connection */
    http_listener *lst;
    char client[48];
};

/* A route with its pattern cut into segments once, when it is added: matching
 * a request then compares lengths and bytes, never rescans the pattern. */
struct route_entry {
    const http_route *r;
    int method; /* enum http_method */
    uint16_t nsegs;
    bool has_params;
    uint32_t params;                    /* bit i: segment i is a {parameter} */
    uint16_t seg_at[HTTP_MAX_SEGMENTS]; /* offset in the pattern */
    uint16_t seg_len[HTTP_MAX_SEGMENTS];
};

struct http_server {
    uv_loop_t *loop;
    http_opts opts;
    char *listen_text;
    http_listener listeners[HTTP_MAX_LISTENERS];
    int nlisteners;
    uv_timer_t sweep;
    uv_idle_t resume;
    bool sweep_running, resume_running;
    int handles_open;              /* of listeners, sweep, resume: not yet closed */
    http_tls *tls;                 /* of the "tls" listeners; connections hold its SSL_CTX */
    unsigned char ticket_keys[80]; /* session tickets survive a certificate reload */
    bool ticket_keys_set;
    char hsts[64]; /* "Strict-Transport-Security: max-age=N\r\n", or "" */
    uint64_t tls_handshakes, tls_resumed, tls_failed;
    http_conn *conns;
    uint64_t nconns, nrefusing, nsse;
    http_conn *resume_head;
    http_req *free_reqs;
    int nfree_reqs;
    int live_reqs;
    struct route_entry *routes;
    size_t nroutes, routes_cap;
    const http_route *fallback;
    http_auth_fn auth;
    void *auth_ud;
    http_done_fn done;
    void *done_ud;
    http_sse_check_fn sse_check;
    void *sse_check_ud;
    char *full_message; /* the answer to OPSC_ENOSPC (507 store_full) */
    void *app;
    bool closing, close_cb_done, freed;
    void (*close_cb)(void *ud);
    void *close_ud;
    int port;
    http_parser_settings settings;
    int64_t date_sec;
    char date[40];
    uint64_t accepted, refused, requests;
    uint64_t accept_warned; /* uv_now() of the last accept error logged */
    char rbuf[64 * 1024];   /* shared read buffer: input is consumed in read_cb */
};

/* server.c */
void srv_conn_closed(http_server *srv, http_conn *c);
void srv_queue_resume(http_server *srv, http_conn *c);
void srv_unqueue_resume(http_server *srv, http_conn *c);
const char *srv_date(http_server *srv);
/* Serve a connected stream socket as if accepted (tests, fuzzing); `tls`
 * as if on a TLS listener (after http_server_set_tls). */
int http_server_adopt_fd(http_server *srv, int fd, bool tls);

/* listen.c */
/* Parse http_opts.listen into srv->listeners; 0 or OPSC_EINVAL with err. */
int listeners_parse(http_server *srv, char *err, size_t errlen);
int listeners_start(http_server *srv, uv_connection_cb on_connection, char *err, size_t errlen);
void listeners_close(http_server *srv, uv_close_cb cb);
/* Port of the first TLS listener, 0 if none. */
int listeners_tls_port(const http_server *srv);

/* conn.c */
void conn_init_settings(http_parser_settings *s);
int conn_start(http_server *srv, http_conn *c);
void conn_resume(http_conn *c);
void conn_end(http_conn *c);
void conn_close(http_conn *c);
void conn_sweep(http_conn *c, uint64_t now);
void conn_server_closing(http_conn *c);
void conn_request_finished(http_conn *c);
/* Queue bytes: head + body; `body_steal` (or NULL) is a heap block holding
 * `body` that the write takes over. 0 or a negative code. */
int conn_write(http_conn *c, const char *head, size_t hlen, const char *body, size_t blen,
               char *body_steal);
bool conn_output_high(http_conn *c);
/* An answer given before the whole request arrived must close the connection. */
bool conn_early_close(http_conn *c);

void conn_free_unclosed(http_conn *c);
/* Plaintext from the socket (or from TLS): parse it, keep it, or drop it. */
void conn_input(http_conn *c, const char *data, size_t len);
/* Queue bytes on the socket as they are (ciphertext on a TLS connection). */
int conn_write_raw(http_conn *c, const char *head, size_t hlen, const char *body, size_t blen,
                   char *body_steal);
void conn_read_end(http_conn *c, int err);

/* tls_conn.c - the record path of one TLS connection */
/* Start TLS on an accepted connection; 0 or a negative code. */
int tls_conn_start(http_conn *c, http_tls *tls);
/* Ciphertext read from the socket. */
void tls_conn_input(http_conn *c, const char *data, size_t len);
/* Encrypt and queue; same contract as conn_write. */
int tls_conn_write(http_conn *c, const char *head, size_t hlen, const char *body, size_t blen,
                   char *body_steal);
/* Before the socket's write side shuts: close_notify when the session is up. */
void tls_conn_close_notify(http_conn *c);
bool tls_conn_handshaking(const http_conn *c);
/* The handshake took too long: count it and close. */
void tls_conn_timeout(http_conn *c);
const char *tls_conn_peer(const http_conn *c);
void tls_conn_free(http_conn *c);

/* tls.c - certificates and the SSL_CTX */
void *tls_ctx(http_tls *tls); /* SSL_CTX * */
/* Give `tls` the server's session ticket keys (made on first use). */
void tls_set_ticket_keys(http_server *srv, http_tls *tls);

/* https.c - plain HTTP that must go to HTTPS */
/* On https_only connections, once the headers are in: answer (redirect
 * or 400) and return true; false lets the request through (/health). */
bool https_answer(http_conn *c, http_req *req);

/* request.c */
http_req *req_new(http_server *srv, http_conn *c);
void req_free(http_req *req);
/* Double *cap (from 16) and realloc *v to it. 0 or -1. */
int grow_array(void **v, uint32_t *cap, size_t elem);
/* The connection lets go of the request (drops its reference). */
void req_detach(http_req *req);
/* Decode path and query; 0, or a status (400, 404) with a message. */
int req_finish_headers(http_req *req, const char **why);
static inline const char *req_at(const http_req *req, uint32_t off)
{
    return req->arena.buf + off;
}
bool req_content_type_json(http_req *req);
/* Parse the body as a JSON object; 0, or answered 400 and -1. */
int req_parse_json(http_req *req);
void srv_release(http_server *srv);

/* router.c */
enum route_result { ROUTE_FOUND, ROUTE_NO_PATH, ROUTE_NO_METHOD };
/* Match req's segments; on ROUTE_NO_METHOD `allow` lists the methods. */
enum route_result router_match(http_server *srv, http_req *req, int method, char *allow,
                               size_t allowlen);
/* The fallback route takes this request (http_server_set_fallback). */
bool router_fallback_takes(http_server *srv, http_req *req, int method);

/* response.c */
void resp_continue(http_req *req);
/* Queue the head of a streamed answer (200, no length) plus `extra`
 * header lines; counts as the request's answer. */
int resp_stream_head(http_req *req, const char *ctype, const char *extra);

/* Queue the head of an answer whose body follows in pieces (Content-Length
 * `len`); counts as the request's answer, but the connection moves on only
 * at resp_body_done(). */
int resp_body_head(http_req *req, int status, const char *ctype, int64_t len);
void resp_body_done(http_req *req);

/* file_body.c: the connection's output drained (on_write), or the
 * connection is gone (release) while a file body was being sent. */
struct file_body;
void fbody_drained(struct file_body *fb);
void fbody_conn_gone(struct file_body *fb);

/* sse.c */
void sse_conn_closed(http_sse *sse);
void sse_server_closing(http_sse *sse);
/* Ask the server's check about the stream's principal; end it when refused. */
void sse_recheck(http_sse *sse);

#endif
