/* http_harness.c - the server thread and blocking client used by test_http. */
#include "http_harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static void on_wake(uv_async_t *a)
{
    hx *x = a->data;
    hx_fn fn = x->cmd;
    if (!fn)
        return;
    x->cmd = NULL;
    fn(x, x->cmd_arg);
    sem_post(&x->done);
}

static void *loop_thread(void *arg)
{
    hx *x = arg;
    uv_run(&x->loop, UV_RUN_DEFAULT);
    x->loop_close_rc = uv_loop_close(&x->loop);
    return NULL;
}

hx *hx_start(const http_opts *opts, const http_route *routes, size_t n)
{
    return hx_start_tls(opts, NULL, routes, n);
}

hx *hx_start_tls(const http_opts *opts, http_tls *tls, const http_route *routes, size_t n)
{
    hx *x = calloc(1, sizeof(*x));
    uv_loop_init(&x->loop);
    sem_init(&x->done, 0, 0);
    uv_async_init(&x->loop, &x->wake, on_wake);
    x->wake.data = x;
    http_opts o = opts ? *opts : (http_opts){0};
    if (!o.listen)
        o.listen = "127.0.0.1:0";
    char err[256] = "";
    if (http_server_new(&x->srv, &x->loop, &o) != 0) {
        fprintf(stderr, "hx_start: cannot create the server\n");
        abort();
    }
    http_server_set_tls(x->srv, tls);
    if (http_add_routes(x->srv, routes, n) != 0 ||
        http_server_listen(x->srv, err, sizeof(err)) != 0) {
        fprintf(stderr, "hx_start: %s\n", err);
        abort();
    }
    http_server_set_app(x->srv, x);
    x->port = http_server_port(x->srv);
    pthread_create(&x->thread, NULL, loop_thread, x);
    return x;
}

void hx_on_loop(hx *x, hx_fn fn, void *arg)
{
    x->cmd_arg = arg;
    x->cmd = fn;
    uv_async_send(&x->wake);
    sem_wait(&x->done);
}

static void on_closed(void *ud)
{
    hx *x = ud;
    x->closed = true;
    uv_close((uv_handle_t *)&x->wake, NULL);
}

static void close_cmd(hx *x, void *arg)
{
    (void)arg;
    http_server_close(x->srv, on_closed, x);
}

void hx_close_async(hx *x)
{
    hx_on_loop(x, close_cmd, NULL);
}

int hx_stop(hx *x)
{
    if (!uv_is_closing((uv_handle_t *)&x->wake))
        hx_on_loop(x, close_cmd, NULL);
    pthread_join(x->thread, NULL);
    int rc = x->loop_close_rc;
    http_server_free(x->srv);
    sem_destroy(&x->done);
    free(x);
    return rc;
}

static void stats_cmd(hx *x, void *arg)
{
    http_server_stats(x->srv, arg);
}

http_stats hx_stats(hx *x)
{
    http_stats st;
    hx_on_loop(x, stats_cmd, &st);
    return st;
}

/* ---- client --------------------------------------------------------------------- */

hc *hc_connect(int port)
{
    hc *c = calloc(1, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("connect");
        abort();
    }
    return c;
}

hc *hc_connect_tls(int port, void *ctx, void *session)
{
    hc *c = hc_connect(port);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, c->fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    if (session)
        SSL_set_session(ssl, session);
    c->ssl = ssl;
    if (SSL_connect(ssl) != 1) {
        ERR_clear_error();
        hc_close(c);
        return NULL;
    }
    return c;
}

void hc_close(hc *c)
{
    if (!c)
        return;
    if (c->ssl && SSL_is_init_finished(c->ssl))
        SSL_shutdown(c->ssl); /* a session closed without close_notify is not resumed */
    ERR_clear_error();
    SSL_free(c->ssl);
    close(c->fd);
    free(c);
}

void hc_send(hc *c, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n =
            c->ssl ? SSL_write(c->ssl, data, (int)len) : send(c->fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

void hc_sends(hc *c, const char *text)
{
    hc_send(c, text, strlen(text));
}

static ssize_t fill(hc *c)
{
    if (c->len == sizeof(c->buf))
        return -1;
    ssize_t n = c->ssl ? SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len))
                       : recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (c->ssl && n <= 0) {
        /* A clean close_notify reads as end of stream; anything else as an error. */
        int e = SSL_get_error(c->ssl, (int)n);
        ERR_clear_error();
        n = e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
    if (n > 0)
        c->len += (size_t)n;
    return n;
}

static void consume(hc *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

bool hresp_header(const hresp *r, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r");
            snprintf(out, n, "%.*s", (int)len, v);
            return true;
        }
    }
    return false;
}

static void read_body(hc *c, hresp *r, long long want)
{
    size_t cap = want >= 0 ? (size_t)want + 1 : 65536;
    r->body = malloc(cap);
    r->body_len = 0;
    for (;;) {
        size_t take = c->len;
        if (want >= 0 && take > (size_t)want - r->body_len)
            take = (size_t)want - r->body_len;
        if (r->body_len + take + 1 > cap) {
            cap = (r->body_len + take + 1) * 2;
            r->body = realloc(r->body, cap);
        }
        memcpy(r->body + r->body_len, c->buf, take);
        r->body_len += take;
        consume(c, take);
        if (want >= 0 && r->body_len == (size_t)want)
            break;
        if (fill(c) <= 0)
            break;
    }
    r->body[r->body_len] = '\0';
}

int hc_read(hc *c, hresp *r, bool head_only)
{
    memset(r, 0, sizeof(*r));
    char *end;
    while (!(c->len && (end = memmem(c->buf, c->len, "\r\n\r\n", 4)))) {
        if (fill(c) <= 0)
            return -1;
    }
    size_t hlen = (size_t)(end - c->buf) + 4;
    snprintf(r->head, sizeof(r->head), "%.*s", (int)hlen, c->buf);
    consume(c, hlen);
    r->status = atoi(r->head + 9);
    char v[64];
    long long want = -1;
    if (hresp_header(r, "Content-Length", v, sizeof(v)))
        want = atoll(v);
    if (head_only || r->status == 204 || r->status < 200 || r->status == 304)
        want = 0;
    read_body(c, r, want);
    return 0;
}

void hresp_free(hresp *r)
{
    free(r->body);
    r->body = NULL;
}

bool hc_wait_eof(hc *c)
{
    for (;;) {
        c->len = 0;
        ssize_t n = fill(c);
        if (n == 0)
            return true;
        if (n < 0)
            return errno == ECONNRESET;
    }
}

bool hc_read_until(hc *c, const char *needle)
{
    for (;;) {
        if (c->len && memmem(c->buf, c->len, needle, strlen(needle)))
            return true;
        if (fill(c) <= 0)
            return false;
    }
}

int hx_request(int port, const char *raw, hresp *r)
{
    hc *c = hc_connect(port);
    hc_sends(c, raw);
    int rc = hc_read(c, r, strncmp(raw, "HEAD ", 5) == 0);
    hc_close(c);
    return rc < 0 ? -1 : r->status;
}
