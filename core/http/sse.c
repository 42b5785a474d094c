/* sse.c - Server-Sent Events: a request turned into an event stream. */
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "http_internal.h"

struct http_sse {
    http_conn *conn; /* NULL once the connection is gone */
    void (*on_close)(void *ud);
    void *ud;
    strbuf buf;
    void *principal; /* taken from the request: asked about again while the stream lasts */
    void (*principal_free)(void *);
    int role; /* the route's */
};

/* The head already says "Connection: keep-alive" and "Cache-Control:
 * no-store" (resp_stream_head). */
static const char stream_headers[] = "X-Accel-Buffering: no\r\n";

http_sse *http_sse_start(http_req *req, void (*on_close)(void *ud), void *ud)
{
    http_conn *c = req->conn;
    if (req->responded)
        return NULL;
    if (req->srv->closing) {
        http_respond_error(req, 503, "unavailable", NULL, "the server is shutting down");
        return NULL;
    }
    if (req->head || !c || c->state != CONN_OPEN || req->gone) {
        http_respond_text(req, 200, "text/event-stream", "", 0);
        return NULL;
    }
    http_sse *sse = calloc(1, sizeof(*sse));
    if (!sse) {
        http_respond_error(req, 500, "internal", NULL, "out of memory");
        return NULL;
    }
    /* Building the head into the connection's buffer, then the stream's
     * own lines, keeps one write for the whole head. */
    if (resp_stream_head(req, "text/event-stream", stream_headers) < 0 || c->state != CONN_OPEN) {
        free(sse);
        return NULL;
    }
    sse->conn = c;
    sse->on_close = on_close;
    sse->ud = ud;
    sse->principal = req->principal;
    sse->principal_free = req->principal_free;
    sse->role = req->route ? req->route->role : ROLE_PUBLIC;
    req->principal = NULL;
    req->principal_free = NULL;
    c->sse = sse;
    c->srv->nsse++;
    /* The connection carries nothing else: drop unparsed input and let the
     * request go. */
    sb_reset(&c->pending);
    c->pending_off = 0;
    if (c->resume_queued)
        srv_unqueue_resume(c->srv, c);
    if (c->req == req) {
        c->req = NULL;
        req_detach(req);
    }
    return sse;
}

static bool open_stream(const http_sse *sse)
{
    return sse->conn && sse->conn->state == CONN_OPEN;
}

/* Each line of `text` (split on CRLF, CR or LF) as "<field>: <line>\n". */
static void put_lines(strbuf *b, const char *field, const char *text)
{
    const char *p = text ? text : "";
    for (;;) {
        size_t n = strcspn(p, "\r\n");
        sb_puts(b, field);
        sb_append(b, p, n);
        sb_append(b, "\n", 1);
        p += n;
        if (!*p)
            break;
        p += (p[0] == '\r' && p[1] == '\n') ? 2 : 1;
    }
}

static int64_t flush(http_sse *sse)
{
    http_conn *c = sse->conn;
    if (sse->buf.oom) {
        sb_free(&sse->buf);
        return OPSC_ENOMEM;
    }
    if (conn_write(c, sse->buf.buf, sse->buf.len, NULL, 0, NULL) < 0 || c->state != CONN_OPEN)
        return OPSC_EPIPE;
    return (int64_t)uv_stream_get_write_queue_size(&c->h.stream);
}

int64_t http_sse_send(http_sse *sse, const char *id, const char *event, const char *data)
{
    if (!open_stream(sse))
        return OPSC_EPIPE;
    if ((id && strpbrk(id, "\r\n")) || (event && strpbrk(event, "\r\n")))
        return OPSC_EINVAL;
    strbuf *b = &sse->buf;
    sb_reset(b);
    if (id) {
        sb_append(b, "id: ", 4);
        sb_puts(b, id);
        sb_append(b, "\n", 1);
    }
    if (event) {
        sb_append(b, "event: ", 7);
        sb_puts(b, event);
        sb_append(b, "\n", 1);
    }
    put_lines(b, "data: ", data);
    sb_append(b, "\n", 1);
    return flush(sse);
}

int http_sse_comment(http_sse *sse, const char *text)
{
    if (!open_stream(sse))
        return OPSC_EPIPE;
    sb_reset(&sse->buf);
    put_lines(&sse->buf, ": ", text);
    int64_t rc = flush(sse);
    return rc < 0 ? (int)rc : 0;
}

static void sse_free(http_sse *sse)
{
    if (sse->principal && sse->principal_free)
        sse->principal_free(sse->principal);
    sb_free(&sse->buf);
    free(sse);
}

void sse_recheck(http_sse *sse)
{
    http_server *srv = sse->conn->srv;
    if (!sse->principal || !srv->sse_check)
        return;
    if (srv->sse_check(sse->principal, sse->role, srv->sse_check_ud) != 0)
        conn_end(sse->conn); /* the user is disabled, gone, logged out or demoted */
}

void http_sse_end(http_sse *sse)
{
    if (!sse)
        return;
    http_conn *c = sse->conn;
    if (c) {
        c->sse = NULL;
        c->srv->nsse--;
        conn_end(c);
    }
    sse_free(sse);
}

void sse_conn_closed(http_sse *sse)
{
    sse->conn = NULL;
    if (sse->on_close)
        sse->on_close(sse->ud);
    sse_free(sse);
}

void sse_server_closing(http_sse *sse)
{
    conn_end(sse->conn);
}
