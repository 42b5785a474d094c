/* uv_ceiling.c - the event loop's ceiling: a bare libuv + http-parser responder answering every
 * request with a fixed 200, so bench_authread.sh can give the daemon's figures as ratios of what
 * one libuv loop on this machine can answer at all.   uv_ceiling PORT
 */
#include <http_parser.h>
#include <stdlib.h>
#include <uv.h>

typedef struct conn {
    uv_tcp_t tcp;
    http_parser parser;
} conn;

static http_parser_settings settings;
static char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                   "15\r\n\r\n{\"status\":\"ok\"}";

static void on_close(uv_handle_t *h)
{
    free(h->data);
}
static void on_written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}
static void on_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    (void)h;
    *b = uv_buf_init(malloc(n), (unsigned)n);
}

static int on_message_complete(http_parser *p)
{
    uv_write_t *w = malloc(sizeof(*w));
    uv_buf_t b = uv_buf_init(ok, sizeof(ok) - 1);
    uv_write(w, p->data, &b, 1, on_written);
    return 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn *c = s->data;
    if (n > 0 && http_parser_execute(&c->parser, &settings, b->base, (size_t)n) != (size_t)n)
        n = UV_EOF; /* a malformed request ends the connection */
    if (n < 0)
        uv_close((uv_handle_t *)s, on_close);
    free(b->base);
}

static void on_connection(uv_stream_t *server, int status)
{
    conn *c = malloc(sizeof(*c));
    if (status < 0 || !c)
        return free(c);
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = &c->tcp;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    else
        uv_close((uv_handle_t *)&c->tcp, on_close);
}

int main(int argc, char **argv)
{
    uv_tcp_t server;
    struct sockaddr_in addr;
    settings.on_message_complete = on_message_complete;
    uv_tcp_init(uv_default_loop(), &server);
    uv_ip4_addr("127.0.0.1", argc > 1 ? atoi(argv[1]) : 8099, &addr);
    if (uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&server, 511, on_connection) != 0)
        return 1;
    return uv_run(uv_default_loop(), UV_RUN_DEFAULT);
}
