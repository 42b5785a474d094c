/* conn.c - one client connection: read, parse, dispatch in order, write, end and close. */
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "http_internal.h"
#include "log.h"

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void feed(http_conn *c, const char *data, size_t len, bool from_pending);

int conn_start(http_server *srv, http_conn *c)
{
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->idle_since = uv_now(srv->loop);
    c->write_since = c->idle_since;
    int rc = uv_read_start(&c->h.stream, on_alloc, on_read);
    c->reading = rc == 0;
    return rc;
}

/* One buffer for every connection: what is read is consumed (parsed, or
 * copied to `pending`) before read_cb returns. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    http_conn *c = h->data;
    buf->base = c->srv->rbuf;
    buf->len = sizeof(c->srv->rbuf);
}

static void start_reading(http_conn *c)
{
    if (c->reading || c->eof || c->state == CONN_CLOSING)
        return;
    c->reading = uv_read_start(&c->h.stream, on_alloc, on_read) == 0;
}

static void stop_reading(http_conn *c)
{
    if (c->reading)
        uv_read_stop(&c->h.stream);
    c->reading = false;
}

/* ---- closing ------------------------------------------------------------ */

static void release(http_conn *c)
{
    http_server *srv = c->srv;
    if (c->req) {
        http_req *req = c->req;
        c->req = NULL;
        if (!req->responded)
            req->gone = true;
        if (req->fbody)
            fbody_conn_gone(req->fbody);
        req_detach(req);
    }
    if (c->sse) {
        http_sse *sse = c->sse;
        c->sse = NULL;
        srv->nsse--;
        sse_conn_closed(sse);
    }
    tls_conn_free(c);
    if (c->refusing)
        srv->nrefusing--;
    else if (c->counted)
        srv->nconns--;
    sb_free(&c->pending);
    sb_free(&c->out);
    sb_free(&c->body);
}

static void on_closed(uv_handle_t *h)
{
    http_conn *c = h->data;
    http_server *srv = c->srv;
    release(c);
    srv_conn_closed(srv, c);
    free(c);
}

void conn_close(http_conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    c->reading = false;
    if (c->resume_queued)
        srv_unqueue_resume(c->srv, c);
    if (c->req && !c->req->responded)
        c->req->gone = true;
    uv_close(&c->h.handle, on_closed);
}

static void on_shutdown(uv_shutdown_t *r, int status)
{
    http_conn *c = r->data;
    if (c->state == CONN_CLOSING)
        return;
    c->shut_done = true;
    c->drain_since = uv_now(c->srv->loop);
    if (status < 0 || c->eof || !c->linger)
        conn_close(c);
}

/* No more requests on this connection: flush what is queued, send FIN, and
 * (when the peer may still be sending) read and drop until it closes. */
void conn_end(http_conn *c)
{
    if (c->state != CONN_OPEN)
        return;
    c->state = CONN_DRAIN;
    c->drain_since = uv_now(c->srv->loop);
    if (c->resume_queued)
        srv_unqueue_resume(c->srv, c);
    if (c->pending.len > c->pending_off || (c->req && !c->req->complete) || c->refusing)
        c->linger = true;
    start_reading(c);
    tls_conn_close_notify(c);
    c->shut.data = c;
    if (uv_shutdown(&c->shut, &c->h.stream, on_shutdown) < 0)
        conn_close(c);
}

void conn_server_closing(http_conn *c)
{
    if (c->state != CONN_OPEN)
        return;
    if (c->sse) {
        sse_server_closing(c->sse);
        return;
    }
    c->close_after = true;
    http_req *req = c->req;
    if (req && !req->complete && !req->responded) /* not started: refuse it now */
        http_respond_error(req, 503, "unavailable", NULL, "the server is shutting down");
    else if (!req)
        conn_end(c);
    /* else: its answer goes out with Connection: close, then the end */
}

/* ---- writing ------------------------------------------------------------- */

struct wreq {
    uv_write_t w;
    http_conn *c;
    char *steal;
    char data[];
};

bool conn_output_high(http_conn *c)
{
    return uv_stream_get_write_queue_size(&c->h.stream) > HTTP_WRITE_HIGH;
}

static void on_write(uv_write_t *w, int status)
{
    struct wreq *wr = (struct wreq *)w;
    http_conn *c = wr->c;
    free(wr->steal);
    free(wr);
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    c->write_since = uv_now(c->srv->loop);
    if (c->req && c->req->fbody)
        fbody_drained(c->req->fbody);
    if (c->paused && !c->req && c->state == CONN_OPEN && !conn_output_high(c))
        conn_resume(c);
}

int conn_write(http_conn *c, const char *head, size_t hlen, const char *body, size_t blen,
               char *body_steal)
{
    if (c->tls)
        return tls_conn_write(c, head, hlen, body, blen, body_steal);
    return conn_write_raw(c, head, hlen, body, blen, body_steal);
}

/* The fast path writes in place with uv_try_write(); only what the kernel
 * did not take is copied (or, for a stolen body, handed over). */
int conn_write_raw(http_conn *c, const char *head, size_t hlen, const char *body, size_t blen,
                   char *body_steal)
{
    if (c->state == CONN_CLOSING) {
        free(body_steal);
        return OPSC_EPIPE;
    }
    uv_buf_t bufs[2] = {uv_buf_init((char *)head, (unsigned)hlen),
                        uv_buf_init((char *)body, (unsigned)blen)};
    size_t done = 0, total = hlen + blen;
    bool queue_empty = uv_stream_get_write_queue_size(&c->h.stream) == 0;
    if (queue_empty) {
        int n = uv_try_write(&c->h.stream, bufs, blen ? 2 : 1);
        if (n < 0 && n != UV_EAGAIN) {
            free(body_steal);
            conn_close(c);
            return n;
        }
        done = n > 0 ? (size_t)n : 0;
        c->write_since = uv_now(c->srv->loop);
    }
    if (done == total) {
        free(body_steal);
        return 0;
    }
    size_t hrest = done < hlen ? hlen - done : 0;
    size_t boff = done > hlen ? done - hlen : 0;
    size_t copy = hrest + (body_steal ? 0 : blen - boff);
    struct wreq *wr = malloc(sizeof(*wr) + copy);
    if (!wr) {
        free(body_steal);
        conn_close(c);
        return OPSC_ENOMEM;
    }
    wr->c = c;
    wr->steal = body_steal;
    memcpy(wr->data, head + hlen - hrest, hrest);
    unsigned nb = 0;
    if (body_steal) {
        if (hrest)
            bufs[nb++] = uv_buf_init(wr->data, (unsigned)hrest);
        bufs[nb++] = uv_buf_init((char *)body + boff, (unsigned)(blen - boff));
    } else {
        if (blen > boff)
            memcpy(wr->data + hrest, body + boff, blen - boff);
        bufs[nb++] = uv_buf_init(wr->data, (unsigned)copy);
    }
    int rc = uv_write(&wr->w, &c->h.stream, bufs, nb, on_write);
    if (rc < 0) {
        free(wr->steal);
        free(wr);
        conn_close(c);
        return rc;
    }
    return 0;
}

/* ---- parser callbacks ------------------------------------------------------ */

static int header_bytes(http_conn *c, size_t n)
{
    http_req *req = c->req;
    req->header_bytes += (int64_t)n;
    if (req->header_bytes <= c->srv->opts.max_header_bytes)
        return 0;
    c->close_after = true;
    http_respond_error(req, 431, "headers_too_large", NULL,
                       "request line and headers exceed %lld bytes",
                       (long long)c->srv->opts.max_header_bytes);
    return -1;
}

static int on_message_begin(http_parser *p)
{
    http_conn *c = p->data;
    c->req = req_new(c->srv, c);
    if (!c->req)
        return -1;
    c->req_since = uv_now(c->srv->loop);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_conn *c = p->data;
    if (header_bytes(c, len) < 0)
        return -1;
    sb_append(&c->req->arena, at, len);
    c->req->url_len += (uint32_t)len;
    return 0;
}

static void end_piece(http_req *req)
{
    strbuf *a = &req->arena;
    http_hdr *h = req->nhdrs ? &req->hdrs[req->nhdrs - 1] : NULL;
    if (req->hstate == HS_VALUE) {
        while (h->value_len && (a->buf[a->len - 1] == ' ' || a->buf[a->len - 1] == '\t')) {
            h->value_len--;
            a->len--;
        }
    }
    sb_append(a, "", 1);
    if (req->hstate == HS_FIELD) { /* a header without a value */
        h->value = (uint32_t)a->len - 1;
        h->value_len = 0;
    }
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_conn *c = p->data;
    http_req *req = c->req;
    if (header_bytes(c, len + 4) < 0)
        return -1;
    if (req->hstate != HS_FIELD) {
        end_piece(req);
        if (req->nhdrs == req->hdrs_cap &&
            grow_array((void **)&req->hdrs, &req->hdrs_cap, sizeof(*req->hdrs)) < 0)
            return -1;
        req->hdrs[req->nhdrs++] = (http_hdr){(uint32_t)req->arena.len, 0, 0, 0};
        req->hstate = HS_FIELD;
    }
    sb_append(&req->arena, at, len);
    req->hdrs[req->nhdrs - 1].name_len += (uint32_t)len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_conn *c = p->data;
    http_req *req = c->req;
    if (header_bytes(c, len) < 0)
        return -1;
    http_hdr *h = &req->hdrs[req->nhdrs - 1];
    if (req->hstate != HS_VALUE) {
        sb_append(&req->arena, "", 1);
        h->value = (uint32_t)req->arena.len;
        req->hstate = HS_VALUE;
    }
    sb_append(&req->arena, at, len);
    h->value_len += (uint32_t)len;
    return 0;
}

static bool has_body(const http_parser *p)
{
    return (p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX);
}

/* An answer before the request is in whole (refusal by route, size, type
 * or auth): keep the connection only when the rest of the body is small
 * and will come anyway. */
bool conn_early_close(http_conn *c)
{
    const http_parser *p = &c->parser;
    http_req *req = c->req;
    if (!req || req->hstate != HS_URL || !req->method[0])
        return true; /* still in the headers */
    return has_body(p) && ((p->flags & F_CHUNKED) || http_req_header(req, "Expect") ||
                           p->content_length > (uint64_t)c->srv->opts.max_body_bytes);
}

static int answer_early(http_conn *c, int status, const char *code, const char *msg)
{
    http_respond_error(c->req, status, code, NULL, "%s", msg);
    return c->state == CONN_OPEN ? 0 : -1;
}

static int check_expect(http_conn *c)
{
    const char *expect = http_req_header(c->req, "Expect");
    if (!expect || strcasecmp(expect, "100-continue") == 0)
        return 0;
    c->close_after = true;
    return answer_early(c, 417, "expectation_failed", "only Expect: 100-continue is supported");
}

/* The request will be read: a client waiting for 100 may send its body. */
static void send_continue(http_conn *c)
{
    const char *expect = http_req_header(c->req, "Expect");
    if (expect && c->parser.http_minor >= 1 && has_body(&c->parser))
        resp_continue(c->req);
}

static int check_body(http_conn *c)
{
    http_req *req = c->req;
    const http_parser *p = &c->parser;
    unsigned flags = req->route->flags;
    req->body_limit = (flags & (HTTP_ROUTE_RAW_BODY | HTTP_ROUTE_STREAM_BODY))
                          ? c->srv->opts.max_upload_bytes
                          : c->srv->opts.max_body_bytes;
    if (has_body(p) && !(p->flags & F_CHUNKED) && p->content_length > (uint64_t)req->body_limit) {
        c->close_after = true;
        char msg[96];
        snprintf(msg, sizeof(msg), "request body exceeds %lld bytes", (long long)req->body_limit);
        return answer_early(c, 413, "payload_too_large", msg);
    }
    if ((flags & HTTP_ROUTE_JSON_BODY) && has_body(p) && !req_content_type_json(req))
        return answer_early(c, 415, "unsupported_media_type",
                            "expected Content-Type: application/json");
    return 0;
}

static int route_request(http_conn *c)
{
    http_req *req = c->req;
    char allow[128];
    enum route_result r = router_match(c->srv, req, c->parser.method, allow, sizeof(allow));
    if (r == ROUTE_FOUND)
        return 0;
    if (r == ROUTE_NO_PATH && router_fallback_takes(c->srv, req, c->parser.method)) {
        req->route = c->srv->fallback;
        return 0;
    }
    if (r == ROUTE_NO_METHOD && c->parser.method == HTTP_OPTIONS) {
        http_set_header(req, "Allow", allow);
        http_respond_empty(req, 204);
        return c->state == CONN_OPEN ? 1 : -1;
    }
    if (r == ROUTE_NO_METHOD) {
        http_set_header(req, "Allow", allow);
        char msg[192];
        snprintf(msg, sizeof(msg), "%s is not allowed here; allowed: %s", req->method, allow);
        return answer_early(c, 405, "method_not_allowed", msg) < 0 ? -1 : 1;
    }
    return answer_early(c, 404, "not_found", "no such resource") < 0 ? -1 : 1;
}

static int run_auth(http_conn *c)
{
    http_server *srv = c->srv;
    http_req *req = c->req;
    if (!srv->auth || srv->auth(req, req->route, srv->auth_ud) == 0)
        return 0;
    if (!req->responded) {
        log_error("http", "auth hook refused %s %s without answering", req->method,
                  http_req_path(req));
        return answer_early(c, 500, "internal", "authentication failed unexpectedly") < 0 ? -1 : 1;
    }
    return c->state == CONN_OPEN ? 1 : -1;
}

/* A streaming route picks its sink (or refuses) before the body is read. */
static int start_stream(http_conn *c)
{
    http_req *req = c->req;
    const http_route *r = req->route;
    if (!(r->flags & HTTP_ROUTE_STREAM_BODY))
        return 0;
    if (r->body_start)
        r->body_start(req);
    if (req->responded)
        return c->state == CONN_OPEN ? 1 : -1;
    if (!req->sink.write) {
        log_error("http", "%s %s set no body sink", r->method, r->pattern);
        return answer_early(c, 500, "internal", "the upload could not be started") < 0 ? -1 : 1;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    http_conn *c = p->data;
    http_req *req = c->req;
    end_piece(req);
    req->hstate = HS_URL;
    req->method = http_method_str(p->method);
    req->head = p->method == HTTP_HEAD;
    req->keep_alive = http_should_keep_alive(p);
    req->http10 = p->http_major == 1 && p->http_minor == 0;
    if (p->http_major != 1) {
        c->close_after = true;
        return answer_early(c, 505, "http_version_not_supported", "only HTTP/1.x is served");
    }
    const char *why = NULL;
    int status = req_finish_headers(req, &why);
    if (status == 400 && req->dot_segment && router_fallback_takes(c->srv, req, p->method)) {
        status = 404;
        why = "no such resource";
    }
    if (status)
        return answer_early(c, status, status == 404 ? "not_found" : "bad_request", why);
    if (c->https_only && https_answer(c, req))
        return c->state == CONN_OPEN ? 0 : -1;
    int rc = route_request(c);
    if (rc == 0)
        rc = check_expect(c);
    if (rc == 0 && !req->responded)
        rc = check_body(c);
    if (rc == 0 && !req->responded)
        rc = run_auth(c);
    if (rc == 0 && !req->responded)
        rc = start_stream(c);
    if (rc == 0 && !req->responded)
        send_continue(c);
    return rc < 0 ? -1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http_conn *c = p->data;
    http_req *req = c->req;
    if (req->responded)
        return 0;
    if (req->body_received + (int64_t)len > req->body_limit) {
        c->close_after = true;
        http_respond_error(req, 413, "payload_too_large", NULL, "request body exceeds %lld bytes",
                           (long long)req->body_limit);
        return -1;
    }
    req->body_received += (int64_t)len;
    if (req->sink.write) {
        /* A sink that refuses answers first: that answer must say the connection closes. */
        bool close_after = c->close_after;
        c->close_after = true;
        if (req->sink.write(req->sink.ud, at, len) == 0) {
            c->close_after = close_after;
            return 0;
        }
        if (!req->responded)
            http_respond_error(req, 500, "internal", NULL, "the upload could not be stored");
        return -1;
    }
    sb_append(&req->body, at, len);
    return req->body.oom ? -1 : 0;
}

static void dispatch(http_req *req)
{
    http_req_ref(req);
    if (!(req->route->flags & HTTP_ROUTE_JSON_BODY) || req_parse_json(req) == 0) {
        int rc = req->route->handler(req);
        if (rc != HTTP_ASYNC && !req->responded) {
            log_error("http", "handler of %s %s returned without answering", req->route->method,
                      req->route->pattern);
            http_respond_error(req, 500, "internal", NULL, "the request was not answered");
        }
    }
    http_req_unref(req);
}

static int on_message_complete(http_parser *p)
{
    http_conn *c = p->data;
    http_req *req = c->req;
    req->complete = true;
    c->req_since = 0;
    if (req->responded)
        conn_request_finished(c);
    else
        dispatch(req);
    if (c->state != CONN_OPEN || c->req || c->sse || conn_output_high(c)) {
        /* Answer pending (or the client is not reading): the next request
         * waits, unparsed, so answers leave in order. */
        c->paused = true;
        http_parser_pause(p, 1);
    }
    return 0;
}

void conn_init_settings(http_parser_settings *s)
{
    http_parser_settings_init(s);
    s->on_message_begin = on_message_begin;
    s->on_url = on_url;
    s->on_header_field = on_header_field;
    s->on_header_value = on_header_value;
    s->on_headers_complete = on_headers_complete;
    s->on_body = on_body;
    s->on_message_complete = on_message_complete;
}

/* ---- the request cycle ------------------------------------------------------ */

void conn_request_finished(http_conn *c)
{
    http_req *req = c->req;
    c->req = NULL;
    req_detach(req);
    c->idle_since = uv_now(c->srv->loop);
    if (c->close_after || c->srv->closing) {
        conn_end(c);
        return;
    }
    if (c->paused && !c->in_parse)
        srv_queue_resume(c->srv, c);
}

static void parse_failed(http_conn *c, enum http_errno e)
{
    c->close_after = true;
    if (!c->req)
        c->req = req_new(c->srv, c);
    if (!c->req) {
        conn_close(c);
        return;
    }
    if (c->req->responded) {
        conn_end(c);
        return;
    }
    if (e == HPE_HEADER_OVERFLOW)
        http_respond_error(c->req, 431, "headers_too_large", NULL, "request headers too large");
    else
        http_respond_error(c->req, 400, "bad_request", NULL, "malformed request: %s",
                           http_errno_description(e));
}

static void keep_rest(http_conn *c, const char *rest, size_t n, bool from_pending)
{
    if (from_pending) {
        c->pending_off += (size_t)(rest - (c->pending.buf + c->pending_off));
        return;
    }
    if (c->pending_off && c->pending_off == c->pending.len) {
        sb_reset(&c->pending);
        c->pending_off = 0;
    }
    sb_append(&c->pending, rest, n);
    if (c->pending.oom)
        conn_close(c);
    else if (c->pending.len - c->pending_off > HTTP_PENDING_MAX)
        stop_reading(c);
}

static void feed(http_conn *c, const char *data, size_t len, bool from_pending)
{
    c->in_parse = true;
    size_t n = http_parser_execute(&c->parser, &c->srv->settings, data, len);
    c->in_parse = false;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->state != CONN_OPEN) {
        if (n < len)
            c->linger = true;
        return;
    }
    if (e == HPE_PAUSED) {
        keep_rest(c, data + n, len - n, from_pending);
        return;
    }
    if (e != HPE_OK) {
        parse_failed(c, e);
        return;
    }
    if (from_pending) {
        sb_reset(&c->pending);
        c->pending_off = 0;
    }
    if (c->parser.upgrade) { /* no protocol switch here: what follows is not HTTP */
        c->close_after = true;
        if (!c->req)
            conn_end(c);
    }
}

void conn_resume(http_conn *c)
{
    if (c->state != CONN_OPEN || c->req || c->sse || !c->paused || conn_output_high(c))
        return;
    c->paused = false;
    http_parser_pause(&c->parser, 0);
    if (c->pending.len > c->pending_off)
        feed(c, c->pending.buf + c->pending_off, c->pending.len - c->pending_off, true);
    if (c->state != CONN_OPEN || c->paused)
        return;
    if (c->eof)
        conn_end(c);
    else
        start_reading(c);
}

void conn_read_end(http_conn *c, int err)
{
    c->reading = false;
    if (err != UV_EOF || c->sse) {
        conn_close(c);
        return;
    }
    c->eof = true;
    if (c->state == CONN_DRAIN) {
        if (c->shut_done)
            conn_close(c);
        return;
    }
    if (c->paused)
        return; /* the answer in progress goes out, then the connection ends */
    conn_end(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    http_conn *c = s->data;
    if (nread == 0 || c->state == CONN_CLOSING)
        return;
    if (nread < 0) {
        conn_read_end(c, (int)nread);
        return;
    }
    if (c->tls)
        tls_conn_input(c, buf->base, (size_t)nread);
    else
        conn_input(c, buf->base, (size_t)nread);
}

void conn_input(http_conn *c, const char *data, size_t len)
{
    if (c->state == CONN_DRAIN) {
        c->linger = true;
        return;
    }
    if (c->sse)
        return; /* an event stream reads nothing more from its client */
    if (c->paused)
        keep_rest(c, data, len, false);
    else
        feed(c, data, len, false);
}

static void request_timeout(http_conn *c)
{
    http_req *req = c->req;
    c->close_after = true;
    c->linger = true;
    if (req->responded) {
        conn_close(c);
        return;
    }
    http_respond_error(req, 408, "request_timeout", NULL,
                       "the request did not arrive whole within %lld ms",
                       (long long)c->srv->opts.request_timeout_ms);
}

void conn_sweep(http_conn *c, uint64_t now)
{
    const http_opts *o = &c->srv->opts;
    if (c->state == CONN_CLOSING)
        return;
    if (uv_stream_get_write_queue_size(&c->h.stream) > 0) {
        /* A client that stopped reading holds memory: same budget as idle. */
        if (now - c->write_since > (uint64_t)o->idle_timeout_ms)
            conn_close(c);
        return;
    }
    if (c->state == CONN_DRAIN) {
        if (now - c->drain_since > HTTP_LINGER_MS)
            conn_close(c);
        return;
    }
    if (c->sse)
        return;
    if (tls_conn_handshaking(c)) {
        if (now - c->idle_since > (uint64_t)o->request_timeout_ms)
            tls_conn_timeout(c);
        return;
    }
    if (c->req) {
        if (!c->req->complete && now - c->req_since > (uint64_t)o->request_timeout_ms)
            request_timeout(c);
        return;
    }
    if (!c->paused && now - c->idle_since > (uint64_t)o->idle_timeout_ms)
        conn_close(c);
}

void conn_free_unclosed(http_conn *c)
{
    release(c);
    free(c);
}
