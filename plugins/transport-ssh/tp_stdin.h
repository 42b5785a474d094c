/* tp_stdin.h - a command's stdin over a libuv pipe, for the transports that run a local
 * process (transport-local: the command itself; transport-openssh: the ssh client).
 *
 * Writes go out in order; each buffer is wiped once written, since it may
 * hold the become password. While `hold` is set (the sudo wrapper has not yet
 * read its password) only the password is sent and the rest waits until
 * tp_stdin_release(). Once EOF was asked and nothing is left to write, the
 * pipe is shut down and closed. After a tp_stdin_write() backlog has been
 * written, `drained` tells the owner (the step API's flow control).
 *
 * Loop thread only. Buffers come from the host's allocator (`api`); the pipe
 * belongs to the owner, who opens it and closes it through `close_pipe` (so
 * the owner's count of open handles stays right).
 */
#ifndef TP_STDIN_H
#define TP_STDIN_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include <opsc/host.h>

typedef struct tp_stdin_buf tp_stdin_buf;

typedef struct tp_stdin {
    const opsc_host_api *api;
    uv_pipe_t *pipe;
    void (*close_pipe)(void *owner);
    void (*drained)(void *owner); /* may be NULL */
    void *owner;
    uv_shutdown_t shut;
    tp_stdin_buf *held_head, *held_tail;
    unsigned pending; /* writes given to libuv, not yet completed */
    bool hold;        /* only the password goes out until tp_stdin_release() */
    bool eof;         /* EOF asked: close once everything is written */
    bool closed;
    bool was_full; /* tp_stdin_write() data in flight: tell `drained` when it is out */
} tp_stdin;

/* Set up `in` for the owner's `pipe` (opened by the owner before anything is written). */
void tp_stdin_init(tp_stdin *in, const opsc_host_api *api, uv_pipe_t *pipe,
                   void (*close_pipe)(void *owner), void (*drained)(void *owner), void *owner);
/* The become password and a newline, ahead of anything held. 0, or OPSC_ENOMEM / OPSC_EPIPE. */
int tp_stdin_password(tp_stdin *in, const char *password);
/* The step's data (len 0: EOF). OPSC_ESTATE after EOF; 0, or OPSC_ENOMEM / OPSC_EPIPE. */
int tp_stdin_write(tp_stdin *in, const char *data, size_t len);
/* The wrapper has its password (or will never ask): send what was held. */
void tp_stdin_release(tp_stdin *in);
/* Ask for EOF (if not yet) and close the pipe once nothing is left to write. */
void tp_stdin_end(tp_stdin *in);
/* When EOF was asked and nothing is left to write, close the pipe now. */
void tp_stdin_settle(tp_stdin *in);
/* Stop writing: close the pipe at once; held data is dropped when the owner frees it. */
void tp_stdin_close_now(tp_stdin *in);
/* Free (wiped) what is still held; the pipe must be closed. */
void tp_stdin_free(tp_stdin *in);

#endif
