/* response.c - answering a request: status line and headers, bodies, JSON errors. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <opsc/errors.h>

#include "http_internal.h"
#include "log.h"

/* A JSON body this large is handed to the write as is instead of copied
 * when the socket does not take it at once. */
#define STEAL_BYTES (64 * 1024)
/* A body this small is copied after the head: one buffer to write. */
#define SMALL_BODY  2048

static const char *reason(int status)
{
    switch (status) {
    case 413:
        return "Content Too Large";
    case 422:
        return "Unprocessable Content";
    default:
        return http_status_str((enum http_status)status);
    }
}

static void put_uint(strbuf *sb, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sb_append(sb, tmp + i, sizeof(tmp) - i);
}

static void put_header(strbuf *sb, const char *name, size_t nlen, const char *value)
{
    sb_append(sb, name, nlen);
    sb_puts(sb, value);
    sb_append(sb, "\r\n", 2);
}

static bool no_body_status(int status)
{
    return status < 200 || status == 204 || status == 304;
}

/* True when `h` ("Name: value\r\n" lines) has a header `name`. */
static bool has_header(const strbuf *h, const char *name)
{
    size_t n = strlen(name);
    if (!h->buf) /* nothing set yet: NULL + 0 is undefined behaviour */
        return false;
    for (const char *p = h->buf, *end = h->buf + h->len; p && p + n < end;) {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':')
            return true;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : NULL;
    }
    return false;
}

/* The head of an answer in c->out. `len` < 0: no Content-Length (a stream).
 * `connection`: the Connection header's value, or NULL for none. */
static void build_head(http_conn *c, http_req *req, int status, const char *ctype, int64_t len,
                       const char *connection)
{
    strbuf *o = &c->out;
    sb_reset(o);
    sb_append(o, "HTTP/1.1 ", 9);
    put_uint(o, (uint64_t)status);
    sb_append(o, " ", 1);
    sb_puts(o, reason(status));
    sb_append(o, "\r\n", 2);
    put_header(o, "Date: ", 6, srv_date(c->srv));
    if (ctype)
        put_header(o, "Content-Type: ", 14, ctype);
    if (len >= 0 && !no_body_status(status)) {
        sb_append(o, "Content-Length: ", 16);
        put_uint(o, (uint64_t)len);
        sb_append(o, "\r\n", 2);
    }
    if (connection)
        put_header(o, "Connection: ", 12, connection);
    /* Answers are JSON about secrets-adjacent things: never sniffed as
     * something else, never kept by a proxy or a browser cache, unless a
     * handler says otherwise (static files). */
    if (!has_header(&req->resp_headers, "X-Content-Type-Options"))
        sb_puts(o, "X-Content-Type-Options: nosniff\r\n");
    if (!has_header(&req->resp_headers, "Cache-Control"))
        sb_puts(o, "Cache-Control: no-store\r\n");
    if (req->resp_headers.len)
        sb_append(o, req->resp_headers.buf, req->resp_headers.len);
    sb_append(o, "\r\n", 2);
}

/* Bookkeeping shared by every kind of answer; false for a second answer. */
static bool mark_answered(http_req *req, int status)
{
    if (req->responded) {
        log_error("http", "second answer (%d) to %s %s dropped", status, req->method,
                  http_req_path(req));
        return false;
    }
    req->responded = true;
    req->status = status;
    req->srv->requests++;
    return true;
}

static http_conn *live_conn(http_req *req)
{
    http_conn *c = req->conn;
    return c && c->state == CONN_OPEN && !req->gone ? c : NULL;
}

/* After the answer is queued: the completion hook, then the connection
 * moves on (next request, or end). */
static void answered(http_req *req)
{
    http_server *srv = req->srv;
    if (srv->done)
        srv->done(req, req->route, req->status, srv->done_ud);
    http_conn *c = live_conn(req);
    if (!c || c->req != req)
        return;
    if (req->complete)
        conn_request_finished(c);
    else if (c->close_after)
        conn_end(c);
    else
        req->discard_body = true;
}

static const char *connection_header(http_conn *c, http_req *req)
{
    if (c->close_after || c->srv->closing || c->eof || !req->keep_alive ||
        (!req->complete && c->req == req && conn_early_close(c)))
        c->close_after = true;
    return c->close_after ? "close" : req->http10 ? "keep-alive" : NULL;
}

static void respond(http_req *req, int status, const char *ctype, const char *body, size_t len,
                    char *steal)
{
    if (!mark_answered(req, status)) {
        free(steal);
        return;
    }
    http_conn *c = live_conn(req);
    if (c) {
        if (no_body_status(status) || req->head) {
            len = no_body_status(status) ? 0 : len;
            build_head(c, req, status, ctype, (int64_t)len, connection_header(c, req));
            conn_write(c, c->out.buf, c->out.len, NULL, 0, NULL);
            free(steal);
        } else if (len <= SMALL_BODY && !steal) { /* one buffer, one write(2) */
            build_head(c, req, status, ctype, (int64_t)len, connection_header(c, req));
            sb_append(&c->out, body, len);
            conn_write(c, c->out.buf, c->out.len, NULL, 0, NULL);
        } else {
            build_head(c, req, status, ctype, (int64_t)len, connection_header(c, req));
            conn_write(c, c->out.buf, c->out.len, body, len, steal);
        }
    } else {
        free(steal);
    }
    answered(req);
}

void http_respond_text(http_req *req, int status, const char *content_type, const char *body,
                       size_t len)
{
    respond(req, status, content_type, body, len, NULL);
}

void http_respond_empty(http_req *req, int status)
{
    respond(req, status, NULL, "", 0, NULL);
}

static int dump_cb(const char *buf, size_t size, void *data)
{
    sb_append(data, buf, size);
    return 0;
}

void http_respond_json(http_req *req, int status, json_t *body)
{
    http_conn *c = live_conn(req);
    if (!c || req->responded || !body) {
        respond(req, status, "application/json", "", 0, NULL);
        json_decref(body);
        return;
    }
    sb_reset(&c->body);
    json_dump_callback(body, dump_cb, &c->body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (c->body.oom) {
        sb_free(&c->body);
        respond(req, 500, "application/json", "", 0, NULL);
        return;
    }
    if (c->body.len >= STEAL_BYTES) {
        size_t len;
        char *buf = sb_steal(&c->body, &len);
        respond(req, status, "application/json", buf, len, buf);
    } else {
        respond(req, status, "application/json", c->body.buf, c->body.len, NULL);
    }
}

static void verror(http_req *req, int status, const char *code, json_t *details, const char *fmt,
                   va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    json_t *body = json_pack("{s:{s:s, s:s, s:o}}", "error", "code", code, "message", msg,
                             "details", details ? details : json_null());
    http_respond_json(req, status, body);
}

void http_respond_error(http_req *req, int status, const char *code, json_t *details,
                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(req, status, code, details, fmt, ap);
    va_end(ap);
}

static int opsc_status(int err, const char **code)
{
    switch (err) {
    case OPSC_ENOENT:
        *code = "not_found";
        return 404;
    case OPSC_EEXIST:
        *code = "conflict";
        return 409;
    case OPSC_ECONFLICT:
        *code = "version_conflict";
        return 412;
    case OPSC_EINVAL:
    case OPSC_ESCHEMA:
        *code = "invalid";
        return 400;
    case OPSC_EACCES:
    case OPSC_EPERM:
        *code = "forbidden";
        return 403;
    case OPSC_EAUTH:
        *code = "unauthorized";
        return 401;
    case OPSC_EBUSY:
        *code = "busy";
        return 409;
    case OPSC_E2BIG:
        *code = "payload_too_large";
        return 413;
    case OPSC_ENOSPC:
        *code = "store_full";
        return 507;
    default:
        *code = "internal";
        return 500;
    }
}

void http_respond_opsc_error(http_req *req, int err, const char *fmt, ...)
{
    const char *code;
    int status = opsc_status(err, &code);
    if (status == 500)
        log_error("http", "%s %s: %s (%s)", req->method, http_req_path(req), opsc_strerror(err),
                  opsc_err_name(err));
    if (err == OPSC_ENOSPC && req->srv->full_message) { /* names the data directory */
        http_respond_error(req, status, code, NULL, "%s", req->srv->full_message);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    verror(req, status, code, NULL, fmt, ap);
    va_end(ap);
}

static bool header_text_ok(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return false;
    return true;
}

void http_set_header(http_req *req, const char *name, const char *value)
{
    static const char *const owned[] = {"Content-Length", "Content-Type", "Connection", "Date",
                                        "Transfer-Encoding"};
    if (!*name || !header_text_ok(name) || !header_text_ok(value) || strchr(name, ':')) {
        log_error("http", "header %s dropped: name or value holds a line break", name);
        return;
    }
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
        if (strcasecmp(name, owned[i]) == 0) {
            log_error("http", "header %s is set by the server; dropped", name);
            return;
        }
    }
    strbuf *h = &req->resp_headers;
    sb_puts(h, name);
    sb_append(h, ": ", 2);
    sb_puts(h, value);
    sb_append(h, "\r\n", 2);
}

void resp_continue(http_req *req)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    http_conn *c = live_conn(req);
    if (c)
        conn_write(c, cont, sizeof(cont) - 1, NULL, 0, NULL);
}

/* An event stream's head: no length, the body ends with the connection. */
int resp_stream_head(http_req *req, const char *ctype, const char *extra)
{
    http_conn *c = live_conn(req);
    if (!c || !mark_answered(req, 200))
        return OPSC_EPIPE;
    c->close_after = true;
    build_head(c, req, 200, ctype, -1, "keep-alive");
    c->out.len -= 2; /* reopen the head for the stream's own headers */
    sb_puts(&c->out, extra);
    sb_append(&c->out, "\r\n", 2);
    int rc = conn_write(c, c->out.buf, c->out.len, NULL, 0, NULL);
    if (req->srv->done)
        req->srv->done(req, req->route, 200, req->srv->done_ud);
    return rc;
}

/* ---- a body sent in pieces (file_body.c) ------------------------------------------------ */

int resp_body_head(http_req *req, int status, const char *ctype, int64_t len)
{
    http_conn *c = live_conn(req);
    if (!c || !mark_answered(req, status))
        return OPSC_EPIPE;
    build_head(c, req, status, ctype, len, connection_header(c, req));
    return conn_write(c, c->out.buf, c->out.len, NULL, 0, NULL);
}

void resp_body_done(http_req *req)
{
    answered(req);
}
