/* tp_stdin.c - a command's stdin over a libuv pipe: ordered, wiped, held for sudo, then EOF. */
#include "tp_stdin.h"

#include <string.h>

#include <opsc/errors.h>

struct tp_stdin_buf {
    uv_write_t req;
    tp_stdin *in;
    tp_stdin_buf *next; /* held until the wrapper has its password */
    size_t len;
    char data[];
};

void tp_stdin_init(tp_stdin *in, const opsc_host_api *api, uv_pipe_t *pipe,
                   void (*close_pipe)(void *owner), void (*drained)(void *owner), void *owner)
{
    memset(in, 0, sizeof(*in));
    in->api = api;
    in->pipe = pipe;
    in->close_pipe = close_pipe;
    in->drained = drained;
    in->owner = owner;
}

static void drop(tp_stdin *in, tp_stdin_buf *b)
{
    memset(b->data, 0, b->len);
    in->api->free(b);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    tp_stdin *in = req->data;
    in->close_pipe(in->owner);
}

void tp_stdin_settle(tp_stdin *in)
{
    if (!in->eof || in->closed || in->pending || in->held_head)
        return;
    in->closed = true;
    in->shut.data = in;
    if (uv_shutdown(&in->shut, (uv_stream_t *)in->pipe, on_shutdown) < 0)
        in->close_pipe(in->owner);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status; /* EPIPE: the command stopped reading; its data is dropped */
    tp_stdin_buf *b = w->data;
    tp_stdin *in = b->in;
    drop(in, b);
    in->pending--;
    if (in->pending == 0 && !in->held_head && in->was_full) {
        in->was_full = false;
        if (in->drained)
            in->drained(in->owner);
    }
    tp_stdin_settle(in);
}

static int send_buf(tp_stdin *in, tp_stdin_buf *b)
{
    uv_buf_t ub = uv_buf_init(b->data, (unsigned)b->len);
    b->req.data = b;
    if (in->closed || uv_write(&b->req, (uv_stream_t *)in->pipe, &ub, 1, on_written) < 0) {
        drop(in, b);
        return OPSC_EPIPE;
    }
    in->pending++;
    return 0;
}

static int queue(tp_stdin *in, const char *data, size_t len, const char *tail, bool password)
{
    size_t tlen = tail ? strlen(tail) : 0;
    tp_stdin_buf *b = in->api->alloc(sizeof(*b) + len + tlen);
    if (!b)
        return OPSC_ENOMEM;
    memset(b, 0, sizeof(*b));
    b->in = in;
    b->len = len + tlen;
    memcpy(b->data, data, len);
    if (tlen)
        memcpy(b->data + len, tail, tlen);
    if (in->hold && !password) {
        if (in->held_tail)
            in->held_tail->next = b;
        else
            in->held_head = b;
        in->held_tail = b;
        return 0;
    }
    return send_buf(in, b);
}

int tp_stdin_password(tp_stdin *in, const char *password)
{
    return queue(in, password, strlen(password), "\n", true);
}

int tp_stdin_write(tp_stdin *in, const char *data, size_t len)
{
    if (in->eof)
        return OPSC_ESTATE;
    if (len == 0) {
        tp_stdin_end(in);
        return 0;
    }
    in->was_full = true;
    return queue(in, data, len, NULL, false);
}

void tp_stdin_release(tp_stdin *in)
{
    in->hold = false;
    while (in->held_head) {
        tp_stdin_buf *b = in->held_head;
        in->held_head = b->next;
        if (!in->held_head)
            in->held_tail = NULL;
        send_buf(in, b);
    }
    tp_stdin_settle(in);
}

void tp_stdin_end(tp_stdin *in)
{
    in->eof = true;
    tp_stdin_settle(in);
}

void tp_stdin_close_now(tp_stdin *in)
{
    if (in->closed)
        return;
    in->closed = true;
    in->close_pipe(in->owner);
}

void tp_stdin_free(tp_stdin *in)
{
    while (in->held_head) {
        tp_stdin_buf *b = in->held_head;
        in->held_head = b->next;
        drop(in, b);
    }
    in->held_tail = NULL;
}
