/* tcp_conn.c - one TCP probe: connect (open, closed, filtered), then on an open port either the
 * SSH banner and host key or a WS-Management Identify. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcp_internal.h"

typedef struct twrite {
    uv_write_t req;
    uint8_t *data;
} twrite;

static void on_closed(uv_handle_t *handle)
{
    tconn *c = handle->data;
    tscan *s = c->h->s;
    thost *h = c->h;
    bool quiet = c->quiet;
    tcp_host->free(c->ssh);
    tcp_host->free(c);
    s->inflight--;
    s->handles--;
    h->pending--;
    if (s->ending) {
        tscan_maybe_finish(s);
        return;
    }
    if (quiet)
        return;
    s->fd_wait = false;
    thost_step(h);
    tscan_pump(s);
}

/* Open ports end with a reset (no TIME_WAIT left behind by thousands of probes). */
static void conn_close(tconn *c)
{
    if (c->phase == TC_CLOSING)
        return;
    twait_remove(c->h->s, &c->wait);
    if (c->h->ssh_reader == c)
        c->h->ssh_reader = NULL;
    bool open = c->phase == TC_READING;
    c->phase = TC_CLOSING;
    if (open) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        if (uv_tcp_close_reset(&c->tcp, on_closed) == 0)
            return;
    }
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

void tconn_abort(tconn *c)
{
    conn_close(c);
}

/* What the key exchange learned, kept on the host. */
static void keep_ssh(tconn *c, bool with_key)
{
    thost *h = c->h;
    if (!c->ssh || !tssh_is_ssh(c->ssh))
        return;
    h->svc[c->port] = SVC_SSH;
    if (!h->banner[0] || with_key) {
        snprintf(h->banner, sizeof(h->banner), "%s", c->ssh->banner);
        h->ssh_port = h->s->ports[c->port];
    }
    if (with_key) {
        snprintf(h->key_type, sizeof(h->key_type), "%s", c->ssh->key_type);
        snprintf(h->fingerprint, sizeof(h->fingerprint), "%s", c->ssh->fingerprint);
    }
}

/* True when the socket has news libuv has not delivered yet: the loop was busy past the
 * deadline, and the answer came in time but sits unread. Timers run before I/O in a loop
 * turn; without this look a stalled daemon would call open ports filtered. */
static bool news_waiting(tconn *c)
{
    uv_os_fd_t fd;
    if (c->stalls++ > 0 || uv_fileno((uv_handle_t *)&c->tcp, &fd) < 0)
        return false;
    struct pollfd p = {fd, c->phase == TC_CONNECTING ? POLLOUT : POLLIN, 0};
    return poll(&p, 1, 0) == 1;
}

void tconn_timeout(tconn *c)
{
    if (news_waiting(c)) { /* the callback comes in this turn's I/O; wait once more */
        twait_push(c->h->s, &c->wait);
        return;
    }
    if (c->phase == TC_CONNECTING)
        c->h->state[c->port] = TP_FILTERED;
    else
        keep_ssh(c, false);
    conn_close(c);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    twrite *w = (twrite *)req;
    free(w->data); /* tssh allocates with malloc */
    tcp_host->free(w);
}

static bool send_bytes(tconn *c, uint8_t *data, size_t len)
{
    twrite *w = tcp_host->calloc(1, sizeof(*w));
    if (!w) {
        free(data);
        return false;
    }
    w->data = data;
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written) < 0) {
        free(data);
        tcp_host->free(w);
        return false;
    }
    return true;
}

static void on_alloc(uv_handle_t *handle, size_t size, uv_buf_t *buf)
{
    (void)size;
    tconn *c = handle->data;
    *buf = uv_buf_init((char *)c->h->s->rbuf, sizeof(c->h->s->rbuf));
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    tconn *c = stream->data;
    if (n == 0 || c->phase != TC_READING)
        return;
    if (n < 0) {
        keep_ssh(c, false);
        conn_close(c);
        return;
    }
    uint8_t *out = NULL;
    size_t len = 0;
    int r = tssh_feed(c->ssh, (const uint8_t *)buf->base, (size_t)n, &out, &len);
    thost *h = c->h;
    /* Another port of the host reads (or read) its key: the banner is all this one needs. */
    if (tssh_is_ssh(c->ssh) && ((h->ssh_reader && h->ssh_reader != c) || h->fingerprint[0])) {
        free(out);
        keep_ssh(c, false);
        conn_close(c);
        return;
    }
    if (tssh_is_ssh(c->ssh))
        h->ssh_reader = c;
    while (r == TSSH_SEND) {
        if (!send_bytes(c, out, len))
            r = TSSH_FAIL;
        else
            r = tssh_feed(c->ssh, NULL, 0, &out, &len);
    }
    if (r == TSSH_MORE)
        return;
    keep_ssh(c, r == TSSH_DONE);
    conn_close(c);
}

/* ---- Identify ----------------------------------------------------------------------------------
 */

static void on_identify(void *ud, int status, const dx_identify *id, const char *cert,
                        const char *error)
{
    (void)error;
    thost *h = ud;
    tscan *s = h->s;
    h->wsman_req = NULL;
    s->inflight--;
    if (status == 0 && !h->winrm) {
        h->winrm = true;
        h->identify = *id;
        snprintf(h->cert_sha256, sizeof(h->cert_sha256), "%s", cert ? cert : "");
    }
    h->pending--;
    thost_step(h);
    tscan_pump(s);
}

static void identify(tconn *c, int kind)
{
    thost *h = c->h;
    tscan *s = h->s;
    int port = s->ports[c->port];
    char url[INET6_ADDRSTRLEN + 96];
    bool v6 = h->sa.ss_family == AF_INET6;
    snprintf(url, sizeof(url), "%s://%s%s%s:%d%s", kind == 2 ? "https" : "http", v6 ? "[" : "",
             h->addr, v6 ? "]" : "", port, s->cfg->wsman_path);
    if (h->wsman_req || !s->wsman) /* one Identify per host at a time */
        return;
    if (twsman_identify(s->wsman, url, s->timeout_ms, on_identify, h, &h->wsman_req) == 0) {
        h->pending++;
        s->inflight++;
        h->winrm_port = port;
        h->https = kind == 2;
        h->svc[c->port] = SVC_WINRM;
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    tconn *c = req->data;
    if (status == UV_ECANCELED || c->phase != TC_CONNECTING)
        return;
    thost *h = c->h;
    twait_remove(h->s, &c->wait);
    if (status < 0) {
        h->state[c->port] = status == UV_ECONNREFUSED ? TP_CLOSED : TP_FILTERED;
        conn_close(c);
        return;
    }
    h->state[c->port] = TP_OPEN;
    c->phase = TC_READING;
    c->stalls = 0;
    int kind = thost_wsman_kind(h->s, c->port);
    if (kind) { /* HTTP servers wait for the client: ask with curl, on its own connection */
        identify(c, kind);
        conn_close(c);
        return;
    }
    c->ssh = tcp_host->alloc(sizeof(tssh));
    if (!c->ssh || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    tssh_init(c->ssh);
    twait_push(h->s, &c->wait); /* the banner has timeout_ms too */
}

int tconn_start(thost *h, int pi)
{
    tscan *s = h->s;
    tconn *c = tcp_host->calloc(1, sizeof(*c));
    if (!c)
        return UV_ENOBUFS;
    c->wait.is_conn = true;
    c->h = h;
    c->port = pi;
    c->req.data = c;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    s->handles++;
    s->inflight++;
    h->pending++;
    struct sockaddr_storage sa = h->sa;
    uint16_t port = htons(s->ports[pi]);
    if (sa.ss_family == AF_INET)
        ((struct sockaddr_in *)&sa)->sin_port = port;
    else
        ((struct sockaddr_in6 *)&sa)->sin6_port = port;
    int rc = uv_tcp_connect(&c->req, &c->tcp, (const struct sockaddr *)&sa, on_connect);
    if (rc == UV_EMFILE || rc == UV_ENFILE || rc == UV_ENOBUFS) {
        c->quiet = true; /* the pump retries this port once a connection closes */
        c->phase = TC_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return rc;
    }
    if (rc < 0) { /* no route, no local address: nothing answers there */
        h->state[pi] = TP_FILTERED;
        c->phase = TC_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return 0;
    }
    twait_push(s, &c->wait);
    return 0;
}
