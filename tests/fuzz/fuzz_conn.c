/* fuzz_conn.c - one fuzzed client connection against the real server, over a socketpair. */
#include "fuzz_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_internal.h"
#include "log.h"

static uv_loop_t loop;
static http_server *server;

uv_loop_t *fuzz_loop(void)
{
    return &loop;
}

http_server *fuzz_server(const http_route *routes, size_t n)
{
    if (server)
        return server;
    log_init(OPSC_LOG_ERROR - 1, LOG_FORMAT_TEXT, NULL); /* quiet */
    uv_loop_init(&loop);
    http_opts o = {.max_header_bytes = 4096, .max_body_bytes = 65536, .max_upload_bytes = 65536};
    if (http_server_new(&server, &loop, &o) != 0 || http_add_routes(server, routes, n) != 0)
        abort();
    return server;
}

/* Write what the socket takes; returns bytes written. */
static size_t put(int fd, const uint8_t *p, size_t n)
{
    ssize_t w = n ? write(fd, p, n) : 0;
    return w > 0 ? (size_t)w : 0;
}

/* Drop what the server wrote; true once it shut its side. */
static bool drain(int fd)
{
    char buf[65536];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r == 0)
            return true;
        if (r < 0)
            return errno != EAGAIN && errno != EWOULDBLOCK;
    }
}

int fuzz_events(http_req *req)
{
    http_sse *s = http_sse_start(req, NULL, NULL);
    if (s) {
        http_sse_send(s, "1", "e", http_req_path(req));
        http_sse_end(s);
    }
    return HTTP_DONE;
}

int fuzz_connect(http_server *srv, bool tls)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    if (http_server_adopt_fd(srv, sv[0], tls) < 0)
        abort();
    return sv[1];
}

static void feed_on(http_server *srv, bool tls, const uint8_t *head, size_t hlen,
                    const uint8_t *data, size_t len)
{
    int fd = fuzz_connect(srv, tls);
    size_t hoff = 0, off = 0;
    bool shut = false, gone = false;
    for (long spins = 0; !gone; spins++) {
        if (spins > 1000000) {
            fprintf(stderr, "fuzz_conn: the server never closed the connection\n");
            abort();
        }
        if (hoff < hlen)
            hoff += put(fd, head + hoff, hlen - hoff);
        else if (off < len)
            off += put(fd, data + off, len - off);
        else if (!shut)
            shut = (shutdown(fd, SHUT_WR), true);
        uv_run(&loop, UV_RUN_NOWAIT);
        gone = drain(fd);
    }
    close(fd);
    fuzz_settle(srv);
}

void fuzz_settle(http_server *srv)
{
    for (long spins = 0; srv->conns; spins++) {
        if (spins > 1000000) {
            fprintf(stderr, "fuzz_conn: a connection outlived its client\n");
            abort();
        }
        uv_run(&loop, UV_RUN_NOWAIT);
    }
}

void fuzz_feed(http_server *srv, const uint8_t *head, size_t hlen, const uint8_t *data, size_t len)
{
    feed_on(srv, false, head, hlen, data, len);
}

void fuzz_feed_tls(http_server *srv, const uint8_t *data, size_t len)
{
    feed_on(srv, true, NULL, 0, data, len);
}
