/* bench_receiver.c - a loopback HTTP receiver that answers every request 200 at once, for
 * bench_notify.py: libuv + http-parser, so the receiver costs little next to the daemon.
 *
 *   bench_receiver PORT
 *
 * Counts POST/PUT requests; `GET /count` answers the count as text (the benchmark polls it).
 */
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct conn {
    uv_tcp_t tcp;
    http_parser parser;
    int is_get;
} conn;

static unsigned long long received;
static http_parser_settings settings;
static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

static void on_close(uv_handle_t *h)
{
    free(h->data);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void reply(conn *c, const char *text, size_t len)
{
    uv_write_t *w = malloc(sizeof(*w) + len);
    memcpy(w + 1, text, len);
    uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)len);
    uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written);
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    if (p->method == HTTP_GET) {
        char body[64], head[160];
        int n = snprintf(body, sizeof(body), "%llu", received);
        int m = snprintf(head, sizeof(head),
                         "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", n, body);
        reply(c, head, (size_t)m);
    } else {
        received++;
        reply(c, ok, sizeof(ok) - 1);
    }
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(size);
    buf->len = size;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn *c = s->data;
    if (n > 0 && http_parser_execute(&c->parser, &settings, buf->base, (size_t)n) != (size_t)n)
        n = UV_EOF;
    if (n < 0)
        uv_close((uv_handle_t *)s, on_close);
    free(buf->base);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    conn *c = calloc(1, sizeof(*c));
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bench_receiver PORT\n");
        return 2;
    }
    settings.on_message_complete = on_message_complete;
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t server;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr);
    uv_tcp_init(loop, &server);
    if (uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&server, 1024, on_connection) != 0) {
        fprintf(stderr, "cannot listen on %s\n", argv[1]);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
