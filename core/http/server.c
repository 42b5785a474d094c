/* server.c - the HTTP server's life: listen, accept within limits, timeouts, close, abort. */
#include <arpa/inet.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <opsc/errors.h>

#include "http_internal.h"
#include "log.h"

static const http_opts defaults = {
    .listen = "127.0.0.1:8080",
    .max_connections = 4096,
    .max_header_bytes = 16 * 1024,
    .max_body_bytes = 8 * 1024 * 1024,
    .max_upload_bytes = 256LL * 1024 * 1024,
    .idle_timeout_ms = 60 * 1000,
    .request_timeout_ms = 30 * 1000,
};

#define REFUSED_BODY                                                                               \
    "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections\",\"details\":null}}"
static const char refused_answer[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                     "Content-Type: application/json\r\n"
                                     "Content-Length: 80\r\n"
                                     "Connection: close\r\n"
                                     "Retry-After: 1\r\n"
                                     "\r\n" REFUSED_BODY;
_Static_assert(sizeof(REFUSED_BODY) - 1 == 80, "Content-Length of the 503 answer");

const char *http_role_name(int role)
{
    static const char *const names[] = {"public", "viewer", "operator", "admin"};
    return role >= 0 && role <= ROLE_ADMIN ? names[role] : "unknown";
}

static void apply_defaults(http_opts *o)
{
    if (!o->listen || !*o->listen)
        o->listen = defaults.listen;
    if (o->max_connections <= 0)
        o->max_connections = defaults.max_connections;
    if (o->max_header_bytes <= 0)
        o->max_header_bytes = defaults.max_header_bytes;
    if (o->max_body_bytes <= 0)
        o->max_body_bytes = defaults.max_body_bytes;
    if (o->max_upload_bytes <= 0)
        o->max_upload_bytes = defaults.max_upload_bytes;
    if (o->idle_timeout_ms <= 0)
        o->idle_timeout_ms = defaults.idle_timeout_ms;
    if (o->request_timeout_ms <= 0)
        o->request_timeout_ms = defaults.request_timeout_ms;
}

static void on_resume(uv_idle_t *h);

int http_server_new(http_server **out, uv_loop_t *loop, const http_opts *opts)
{
    http_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return OPSC_ENOMEM;
    srv->loop = loop;
    srv->opts = opts ? *opts : (http_opts){0};
    apply_defaults(&srv->opts);
    srv->listen_text = strdup(srv->opts.listen);
    if (!srv->listen_text) {
        free(srv);
        return OPSC_ENOMEM;
    }
    srv->opts.listen = srv->listen_text;
    if (srv->opts.hsts_max_age_s > 0)
        snprintf(srv->hsts, sizeof(srv->hsts), "Strict-Transport-Security: max-age=%lld\r\n",
                 (long long)srv->opts.hsts_max_age_s);
    conn_init_settings(&srv->settings);
    uv_timer_init(loop, &srv->sweep);
    uv_idle_init(loop, &srv->resume);
    srv->sweep.data = srv;
    srv->resume.data = srv;
    srv->handles_open = 2;
    srv->date_sec = -1;
    *out = srv;
    return 0;
}

static void on_connection(uv_stream_t *ls, int status);
static void on_sweep(uv_timer_t *t);

static uint64_t sweep_interval(const http_server *srv)
{
    int64_t t = srv->opts.idle_timeout_ms;
    if (srv->opts.request_timeout_ms < t)
        t = srv->opts.request_timeout_ms;
    if (HTTP_LINGER_MS < t)
        t = HTTP_LINGER_MS;
    t /= 4;
    return (uint64_t)(t < 10 ? 10 : t > 1000 ? 1000 : t);
}

/* Each connection holds a descriptor: make room for max_connections (plus
 * the store, logs and plugins) when the hard limit allows. */
static void raise_fd_limit(const http_server *srv)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)srv->opts.max_connections + 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
        return;
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= want)
        log_info("http", "open files limit raised from %llu to %llu", (unsigned long long)old,
                 (unsigned long long)rl.rlim_cur);
    else
        log_warn("http",
                 "open files limit %llu is below max_connections %d: connections beyond "
                 "it are refused by the kernel (raise LimitNOFILE)",
                 (unsigned long long)rl.rlim_cur, srv->opts.max_connections);
}

int http_server_listen(http_server *srv, char *err, size_t errlen)
{
    int rc = listeners_parse(srv, err, errlen);
    if (rc < 0)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(srv);
    return listeners_start(srv, on_connection, err, errlen);
}

int http_server_port(const http_server *srv)
{
    return srv->nlisteners ? srv->listeners[0].port : 0;
}

int http_server_listener_port(const http_server *srv, int i, bool *tls)
{
    if (i < 0 || i >= srv->nlisteners)
        return -1;
    if (tls)
        *tls = srv->listeners[i].tls;
    return srv->listeners[i].port;
}

void http_server_set_tls(http_server *srv, http_tls *tls)
{
    if (tls)
        tls_set_ticket_keys(srv, tls);
    http_tls_free(srv->tls);
    srv->tls = tls;
}

static void start_sweep(http_server *srv)
{
    if (srv->sweep_running || srv->closing)
        return;
    uint64_t iv = sweep_interval(srv);
    uv_timer_start(&srv->sweep, on_sweep, iv, iv);
    srv->sweep_running = true;
}

static void link_conn(http_server *srv, http_conn *c)
{
    c->srv = srv;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    start_sweep(srv);
}

/* Over the limit or shutting down: answer 503 from a static buffer and
 * close. On a TLS port the answer would cost a handshake first: closed. */
static void refuse(http_server *srv, http_conn *c, bool tls)
{
    srv->refused++;
    if (tls || srv->nrefusing >= HTTP_REFUSING_MAX) {
        conn_close(c);
        return;
    }
    c->refusing = true;
    srv->nrefusing++;
    if (conn_write(c, refused_answer, sizeof(refused_answer) - 1, NULL, 0, NULL) < 0)
        return;
    c->linger = true;
    conn_end(c);
}

static void serve(http_server *srv, http_conn *c, bool tls)
{
    link_conn(srv, c);
    if (srv->closing || srv->nconns >= (uint64_t)srv->opts.max_connections) {
        refuse(srv, c, tls);
        return;
    }
    srv->nconns++;
    srv->accepted++;
    c->counted = true;
    c->tls_port = tls;
    c->https_only = !tls && srv->opts.redirect_http;
    if ((tls && tls_conn_start(c, srv->tls) < 0) || conn_start(srv, c) < 0)
        conn_close(c);
}

static void on_connection(uv_stream_t *ls, int status)
{
    http_listener *lst = ls->data;
    http_server *srv = lst->srv;
    if (status < 0) {
        /* Out of descriptors repeats at every attempt: say it once a minute. */
        uint64_t now = uv_now(srv->loop);
        if (!srv->accept_warned || now - srv->accept_warned > 60000) {
            log_warn("http", "accept: %s", uv_strerror(status));
            srv->accept_warned = now ? now : 1;
        }
        return;
    }
    http_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        log_error("http", "accept: out of memory");
        return;
    }
    uv_tcp_init(srv->loop, &c->h.tcp);
    c->h.handle.data = c;
    if (uv_accept(ls, &c->h.stream) < 0) {
        c->srv = srv;
        link_conn(srv, c);
        conn_close(c);
        return;
    }
    c->lst = lst;
    uv_tcp_nodelay(&c->h.tcp, 1);
    struct sockaddr_storage peer;
    int len = sizeof(peer);
    if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&peer, &len) == 0) {
        if (peer.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&peer, c->client, sizeof(c->client));
        else
            uv_ip4_name((struct sockaddr_in *)&peer, c->client, sizeof(c->client));
    }
    serve(srv, c, lst->tls);
}

int http_server_adopt_fd(http_server *srv, int fd, bool tls)
{
    http_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return OPSC_ENOMEM;
    uv_pipe_init(srv->loop, &c->h.pipe, 0);
    c->h.handle.data = c;
    int rc = uv_pipe_open(&c->h.pipe, fd);
    if (rc < 0) {
        c->srv = srv;
        link_conn(srv, c);
        conn_close(c);
        return rc;
    }
    snprintf(c->client, sizeof(c->client), "local");
    serve(srv, c, tls);
    return 0;
}

static void on_sweep(uv_timer_t *t)
{
    http_server *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    for (http_conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        conn_sweep(c, now);
        if (c->sse && c->state == CONN_OPEN)
            sse_recheck(c->sse);
    }
    if (!srv->conns) {
        uv_timer_stop(&srv->sweep);
        srv->sweep_running = false;
    }
}

void srv_queue_resume(http_server *srv, http_conn *c)
{
    if (c->resume_queued || c->state == CONN_CLOSING)
        return;
    c->resume_queued = true;
    c->resume_next = srv->resume_head;
    srv->resume_head = c;
    if (!srv->resume_running && !uv_is_closing((uv_handle_t *)&srv->resume)) {
        uv_idle_start(&srv->resume, on_resume);
        srv->resume_running = true;
    }
}

/* Parsing resumes from the loop, never from inside the handler's respond
 * call, so a handler's caller is not re-entered by the next request. */
static void on_resume(uv_idle_t *h)
{
    http_server *srv = h->data;
    http_conn *list = srv->resume_head;
    srv->resume_head = NULL;
    uv_idle_stop(&srv->resume);
    srv->resume_running = false;
    while (list) {
        http_conn *c = list;
        list = c->resume_next;
        c->resume_queued = false;
        c->resume_next = NULL;
        conn_resume(c);
    }
}

void srv_unqueue_resume(http_server *srv, http_conn *c)
{
    for (http_conn **p = &srv->resume_head; *p; p = &(*p)->resume_next) {
        if (*p == c) {
            *p = c->resume_next;
            break;
        }
    }
    c->resume_queued = false;
    c->resume_next = NULL;
}

static void on_own_closed(uv_handle_t *h)
{
    http_server *srv = h->data;
    srv->handles_open--;
    if (srv->handles_open == 0 && !srv->close_cb_done) {
        srv->close_cb_done = true;
        if (srv->close_cb)
            srv->close_cb(srv->close_ud);
    }
}

static void close_own(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_own_closed);
}

static void on_listener_closed(uv_handle_t *h)
{
    http_listener *l = h->data;
    h->data = l->srv;
    on_own_closed(h);
}

/* The sweep timer and the resume handle serve connections that are still
 * finishing, so they close with the last connection. */
static void maybe_closed(http_server *srv)
{
    if (!srv->closing || srv->conns)
        return;
    close_own((uv_handle_t *)&srv->sweep);
    close_own((uv_handle_t *)&srv->resume);
}

void srv_conn_closed(http_server *srv, http_conn *c)
{
    if (c->resume_queued)
        srv_unqueue_resume(srv, c);
    if (c->prev)
        c->prev->next = c->next;
    else if (srv->conns == c)
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    maybe_closed(srv);
}

void http_server_close(http_server *srv, void (*cb)(void *ud), void *ud)
{
    if (srv->closing)
        return;
    srv->closing = true;
    srv->close_cb = cb;
    srv->close_ud = ud;
    listeners_close(srv, on_listener_closed);
    for (http_conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        conn_server_closing(c);
    }
    maybe_closed(srv);
}

void http_server_abort(http_server *srv)
{
    if (!srv->closing)
        http_server_close(srv, NULL, NULL);
    for (http_conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        conn_close(c);
    }
}

static void free_req_pool(http_server *srv)
{
    while (srv->free_reqs) {
        http_req *r = srv->free_reqs;
        srv->free_reqs = r->next_free;
        req_free(r);
    }
    srv->nfree_reqs = 0;
}

void srv_release(http_server *srv)
{
    http_tls_free(srv->tls);
    free(srv->routes);
    free(srv->listen_text);
    free(srv->full_message);
    free(srv);
}

void http_server_free(http_server *srv)
{
    if (!srv)
        return;
    /* After a forced stop the loop owner may have closed our handles for
     * us; connections whose close callbacks never ran are freed here. */
    while (srv->conns) {
        http_conn *c = srv->conns;
        srv->conns = c->next;
        conn_free_unclosed(c);
    }
    free_req_pool(srv);
    srv->freed = true;
    if (srv->live_reqs == 0)
        srv_release(srv);
}

void http_server_set_timeouts(http_server *srv, int64_t idle_timeout_ms, int64_t request_timeout_ms)
{
    if (idle_timeout_ms > 0)
        srv->opts.idle_timeout_ms = idle_timeout_ms;
    if (request_timeout_ms > 0)
        srv->opts.request_timeout_ms = request_timeout_ms;
    if (srv->sweep_running) {
        uint64_t iv = sweep_interval(srv);
        uv_timer_start(&srv->sweep, on_sweep, iv, iv);
    }
}

void http_server_stats(const http_server *srv, http_stats *st)
{
    st->connections_open = srv->nconns;
    st->connections_accepted = srv->accepted;
    st->connections_refused = srv->refused;
    st->requests = srv->requests;
    st->sse_open = srv->nsse;
    st->tls_handshakes = srv->tls_handshakes;
    st->tls_resumed = srv->tls_resumed;
    st->tls_failed = srv->tls_failed;
}

void http_server_set_auth(http_server *srv, http_auth_fn fn, void *ud)
{
    srv->auth = fn;
    srv->auth_ud = ud;
}

void http_server_set_full_message(http_server *srv, const char *message)
{
    free(srv->full_message);
    srv->full_message = message ? strdup(message) : NULL;
}

void http_server_set_sse_check(http_server *srv, http_sse_check_fn fn, void *ud)
{
    srv->sse_check = fn;
    srv->sse_check_ud = ud;
}

void http_server_set_done(http_server *srv, http_done_fn fn, void *ud)
{
    srv->done = fn;
    srv->done_ud = ud;
}

void http_server_set_app(http_server *srv, void *app)
{
    srv->app = app;
}

/* IMF-fixdate, recomputed once a second. */
const char *srv_date(http_server *srv)
{
    time_t now = time(NULL);
    if ((int64_t)now != srv->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(srv->date, sizeof(srv->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        srv->date_sec = (int64_t)now;
    }
    return srv->date;
}
