/* bench_receiver.c - a loopback HTTP receiver that answers every request 200 at once, for
 * bench_notify.py: libuv + http-parser, so the receiver costs little next to the daemon.
 *
 *   bench_receiver PORT [STAMPS]
 *
 * Counts POST/PUT requests; `GET /count` answers the count as text (the benchmark polls it).
 * With STAMPS, each request's arrival (Unix seconds, microseconds) and the first "finished_at"
 * of its body (the run's end, in a notification) are written there, one line each, when the
 * receiver gets SIGTERM.
 */
#include <http_parser.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

typedef struct conn {
    uv_tcp_t tcp;
    http_parser parser;
    char body[4096]; /* the start of the body: "finished_at" comes early */
    size_t blen;
} conn;

static unsigned long long received;
static FILE *stamps;
static const char *stamps_path;
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

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    size_t room = sizeof(c->body) - 1 - c->blen;
    memcpy(c->body + c->blen, at, len < room ? len : room);
    c->blen += len < room ? len : room;
    c->body[c->blen] = '\0';
    return 0;
}

static void stamp(conn *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const char *f = strstr(c->body, "\"finished_at\":\"");
    if (f)
        fprintf(stamps, "%lld.%06ld %.24s\n", (long long)ts.tv_sec, ts.tv_nsec / 1000, f + 15);
    c->blen = 0;
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    if (stamps && p->method != HTTP_GET)
        stamp(c);
    c->blen = 0;
    if (p->method == HTTP_GET) {
        char body[64], head[160];
        int n = snprintf(body, sizeof(body), "%llu", received);
        int m = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", n,
                         body);
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

static void on_term(uv_signal_t *s, int signum)
{
    (void)signum;
    if (stamps) {
        FILE *out = fopen(stamps_path, "w");
        rewind(stamps);
        char line[128];
        while (out && fgets(line, sizeof(line), stamps))
            fputs(line, out);
        if (out)
            fclose(out);
    }
    uv_stop(s->loop);
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: bench_receiver PORT [STAMPS]\n");
        return 2;
    }
    settings.on_message_complete = on_message_complete;
    settings.on_body = on_body;
    uv_loop_t *loop = uv_default_loop();
    if (argc == 3) { /* kept in memory (a temporary file) until the end */
        stamps_path = argv[2];
        stamps = tmpfile();
    }
    uv_signal_t term;
    uv_signal_init(loop, &term);
    uv_signal_start(&term, on_term, SIGTERM);
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
