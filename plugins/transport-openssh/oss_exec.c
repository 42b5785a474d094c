/* oss_exec.c - one command over a master: pipes handed to the master, stdin, output with its
 * markers, exit status and signal, timeout and cancel that stop the remote process group. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oss_internal.h"
#include "tp_orphan.h"

static void maybe_free(opsc_exec *ex);
static void maybe_finish(opsc_exec *ex);
static void force_close(opsc_exec *ex);
static void stop_when_known(opsc_exec *ex);

/* The remote command: the user's command in tp_shell's wrapper (process group marker, cwd, env,
 * sudo), under /bin/sh, with two markers on stderr that say how it ended. OpenSSH's client drops
 * the exit-signal request, so the shell around it reports: "RC n" from an EXIT trap when the
 * command's shell exits normally, "END n" with the status the outer shell saw. */
static char *remote_command(oss_plugin *p, const opsc_exec_req *req, const char *become, bool pw,
                            char *err, size_t errlen)
{
    static const char trap[] = "trap 'printf \"\\036OPSC-RC %d\\n\" \"$?\" >&2' EXIT\n";
    tp_buf cmd = {.api = p->api};
    tp_buf_adds(&cmd, trap);
    tp_buf_adds(&cmd, req->command);
    char *c = tp_buf_take(&cmd);
    if (!c)
        return NULL;
    char *inner = tp_wrap_command(p->api, c, req->env, req->cwd, become, pw, err, errlen);
    p->api->free(c);
    if (!inner)
        return NULL;
    tp_buf out = {.api = p->api};
    tp_buf_adds(&out, "/bin/sh -c ");
    tp_buf_quote(&out, inner);
    tp_buf_adds(&out, "; s=$?; printf '\\036OPSC-END %d\\n' \"$s\" >&2; exit \"$s\"");
    p->api->free(inner);
    return tp_buf_take(&out);
}

/* ---- ending ---------------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    opsc_exec *ex = h->data;
    ex->handles--;
    maybe_free(ex);
}

static void close_handle(opsc_exec *ex, uv_handle_t *h)
{
    (void)ex; /* h->data is ex: on_handle_closed counts it */
    if (!uv_is_closing(h))
        uv_close(h, on_handle_closed);
}

static void close_mux(opsc_exec *ex)
{
    if (ex->mux.poll_open) {
        ex->mux.poll_open = false;
        close_handle(ex, (uv_handle_t *)&ex->mux.poll);
    }
    oss_mux_release(&ex->mux, ex->conn->p);
}

static void close_all(opsc_exec *ex)
{
    close_mux(ex);
    close_handle(ex, (uv_handle_t *)&ex->p_in);
    close_handle(ex, (uv_handle_t *)&ex->p_out);
    close_handle(ex, (uv_handle_t *)&ex->p_err);
    close_handle(ex, (uv_handle_t *)&ex->timer);
}

static void maybe_free(opsc_exec *ex)
{
    if (ex->handles > 0 || !ex->done)
        return;
    opsc_conn *c = ex->conn;
    oss_plugin *p = c->p;
    if (ex->prev)
        ex->prev->next = ex->next;
    else if (c->execs == ex)
        c->execs = ex->next;
    if (ex->next)
        ex->next->prev = ex->prev;
    tp_stdin_free(&ex->in);
    if (ex->killer)
        ex->killer->victim = NULL;
    if (ex->victim)
        ex->victim->killer = NULL;
    p->api->free(ex->become_user);
    oss_wipe_free(p, ex->become_pw);
    p->api->free(ex);
    if (!c->execs)
        oss_conn_exec_gone(c);
}

static const char *signal_name(int sig)
{
    const char *abbrev = sig > 0 && sig < 65 ? sigabbrev_np(sig) : NULL;
    return abbrev ? abbrev : "UNKNOWN";
}

static void result(opsc_exec *ex, opsc_exec_result *res, char *sig, size_t siglen)
{
    const oss_tail *t = &ex->tail;
    res->status = ex->fail_code ? ex->fail_code : ex->stop_code;
    res->error = res->status ? ex->err : NULL;
    if (ex->stop_code && !ex->fail_code)
        res->error = ex->stop_code == OPSC_ETIMEDOUT ? "the command timed out and was stopped"
                                                     : "the command was cancelled and stopped";
    if (res->status)
        return;
    if (t->have_end) {
        res->exit_code = t->end;
        if (t->end > 128 && !(t->have_rc && t->rc == t->end))
            snprintf(sig, siglen, "%s", signal_name(t->end - 128));
    } else if (ex->mux.exited) {
        res->exit_code = (int)ex->mux.exit_value;
    } else if (!oss_master_up(ex->conn->m)) {
        res->status = OPSC_ECONNRESET;
        snprintf(ex->err, sizeof(ex->err), "%.590s",
                 ex->conn->m->err[0] ? ex->conn->m->err : "the connection was lost");
        res->error = ex->err;
    } else {
        snprintf(sig, siglen, "UNKNOWN"); /* ssh forwards no exit-signal: it died of one */
    }
    res->exit_signal = sig[0] ? sig : NULL;
}

static void report(opsc_exec *ex)
{
    if (ex->done)
        return;
    ex->done = true;
    if (!ex->internal)
        ex->conn->nexec--;
    if (ex->victim && ex->fail_code) /* a kill helper that could not run: close the victim */
        force_close(ex->victim);
    uv_timer_stop(&ex->timer);
    opsc_exec_result res = {sizeof(res)};
    char sig[32] = "";
    result(ex, &res, sig, sizeof(sig));
    if (!ex->internal && ex->cb.on_done)
        ex->cb.on_done(ex->ud, &res);
}

static void maybe_finish(opsc_exec *ex)
{
    if (ex->finished)
        return;
    oss_mux *x = &ex->mux;
    bool ended = x->exited || x->closed;
    if (x->fail_code && !x->opened && !ex->fail_code) {
        ex->fail_code = x->fail_code;
        snprintf(ex->err, sizeof(ex->err),
                 "%s refused a new session (%s): too many sessions on one connection? (sshd "
                 "MaxSessions)",
                 ex->conn->name, x->fail);
    }
    if (!(ended && ex->out_eof && ex->err_eof) && !(ex->fail_code && ended))
        return;
    ex->finished = true;
    report(ex); /* unless a closing connection reported it already */
    close_all(ex);
}

void oss_exec_mux_event(opsc_exec *ex)
{
    if (ex->mux.closed && ex->mux.poll_open) {
        ex->mux.poll_open = false;
        close_handle(ex, (uv_handle_t *)&ex->mux.poll);
        oss_mux_release(&ex->mux, ex->conn->p);
    }
    maybe_finish(ex);
}

/* ---- output --------------------------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h, (void)suggested;
    static char chunk[65536]; /* delivered before the next read */
    *buf = uv_buf_init(chunk, sizeof(chunk));
}

struct emit_ctx {
    opsc_exec *ex;
    int stream;
};

static void emit(void *ud, const char *data, size_t len)
{
    struct emit_ctx *e = ud;
    if (!e->ex->done && !e->ex->internal && e->ex->cb.on_output)
        e->ex->cb.on_output(e->ex->ud, e->stream, data, len);
}

/* After the process group marker: stderr minus the trailer markers. */
static void emit_err(void *ud, const char *data, size_t len)
{
    struct emit_ctx *e = ud;
    oss_tail_feed(&e->ex->tail, data, len, emit, ud);
}

/* The marker was just seen: the command's handle, so a later daemon can stop it (kill_orphan). */
static void started(opsc_exec *ex)
{
    char handle[128];
    if (ex->marker.seen && !ex->done && !ex->internal && ex->cb.on_started &&
        tp_process_handle("openssh", &ex->marker, handle, sizeof(handle)) == 0)
        ex->cb.on_started(ex->ud, handle);
}

static void sudo_check(opsc_exec *ex)
{
    if (!ex->marker.sudo_rejected || ex->fail_code)
        return;
    ex->fail_code = OPSC_EAUTH;
    snprintf(ex->err, sizeof(ex->err), "sudo rejected the password to become '%s'",
             ex->become_user ? ex->become_user : "?");
    oss_exec_cancel(ex);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    opsc_exec *ex = s->data;
    bool is_err = s == (uv_stream_t *)&ex->p_err;
    struct emit_ctx e = {ex, is_err ? OPSC_STDERR : OPSC_STDOUT};
    if (n > 0) {
        if (!is_err) {
            emit(&e, buf->base, (size_t)n);
        } else if (!ex->marker.seen && !ex->marker.gave_up) {
            tp_marker_feed(&ex->marker, buf->base, (size_t)n, emit_err, &e);
            sudo_check(ex);
            if (ex->marker.seen || ex->marker.gave_up)
                tp_stdin_release(&ex->in);
            started(ex);
            stop_when_known(ex);
        } else {
            emit_err(&e, buf->base, (size_t)n);
        }
        return;
    }
    if (n == 0)
        return;
    uv_read_stop(s);
    if (is_err) {
        tp_marker_flush(&ex->marker, emit_err, &e);
        oss_tail_flush(&ex->tail, emit, &e);
        ex->err_eof = true;
    } else {
        ex->out_eof = true;
    }
    maybe_finish(ex);
}

static void start_reading(opsc_exec *ex)
{
    if (!ex->out_eof)
        uv_read_start((uv_stream_t *)&ex->p_out, alloc_cb, on_read);
    if (!ex->err_eof)
        uv_read_start((uv_stream_t *)&ex->p_err, alloc_cb, on_read);
}

/* ---- stdin -------------------------------------------------------------------------------- */

static void close_stdin_pipe(void *owner)
{
    opsc_exec *ex = owner;
    close_handle(ex, (uv_handle_t *)&ex->p_in);
}

static void stdin_drained(void *owner)
{
    opsc_exec *ex = owner;
    if (!ex->done && !ex->internal && ex->cb.on_stdin_drained)
        ex->cb.on_stdin_drained(ex->ud);
}

/* ---- stopping ----------------------------------------------------------------------------------
 */

/* Close our end of the session: the master closes the channel, the remote side sees EOF. */
static void on_deadline(uv_timer_t *t);

static void force_close(opsc_exec *ex)
{
    close_mux(ex);
    ex->mux.closed = true;
    tp_stdin_close_now(&ex->in);
    if (!ex->done && !uv_is_closing((uv_handle_t *)&ex->timer))
        uv_timer_start(&ex->timer, on_deadline, 5000, 0);
    maybe_finish(ex);
}

static void on_deadline(uv_timer_t *t)
{
    opsc_exec *ex = t->data;
    if (!ex->mux.closed) {
        force_close(ex); /* the kill helper did not end it in time */
        uv_timer_start(&ex->timer, on_deadline, 5000, 0);
        return;
    }
    /* The master never closed our pipes: give up on the rest of the output. */
    uv_read_stop((uv_stream_t *)&ex->p_out);
    uv_read_stop((uv_stream_t *)&ex->p_err);
    ex->out_eof = ex->err_eof = true;
    maybe_finish(ex);
}

static int start_exec(opsc_conn *c, const char *command, bool internal, const opsc_exec_cb *cb,
                      void *ud, opsc_exec **out);

static void start_killer(opsc_exec *ex)
{
    opsc_conn *c = ex->conn;
    oss_plugin *p = c->p;
    char *cmd = tp_kill_command(p->api, ex->marker.pgid, (unsigned)p->cfg.cancel_grace_ms,
                                ex->become_user, ex->become_pw != NULL);
    opsc_exec *k = NULL;
    static const opsc_exec_cb none = {sizeof(opsc_exec_cb), NULL, NULL, NULL};
    int rc = cmd ? start_exec(c, cmd, true, &none, NULL, &k) : OPSC_ENOMEM;
    p->api->free(cmd);
    if (rc < 0) {
        force_close(ex);
        return;
    }
    k->victim = ex;
    ex->killer = k;
    if (ex->become_pw)
        tp_stdin_password(&k->in, ex->become_pw);
    tp_stdin_end(&k->in);
}

/* Stop the remote process group: at once when its marker was seen, else as soon as it is (a
 * cancel right after the start would otherwise leave the command running). The deadline
 * closes the session whatever happens. */
static void stop_remote(opsc_exec *ex)
{
    bool up = oss_master_up(ex->conn->m);
    uint64_t deadline = (uint64_t)ex->conn->p->cfg.cancel_grace_ms + 5000;
    if (ex->paused) {
        ex->paused = false;
        start_reading(ex); /* let what is left drain so the session can end */
    }
    if (up && ex->marker.seen && ex->marker.pgid > 1) {
        start_killer(ex);
        uv_timer_start(&ex->timer, on_deadline, deadline, 0);
    } else if (up && !ex->marker.seen && !ex->marker.gave_up) {
        ex->kill_pending = true;
        uv_timer_start(&ex->timer, on_deadline, deadline, 0);
    } else {
        force_close(ex);
    }
}

/* The process group became known after a stop was asked for. */
static void stop_when_known(opsc_exec *ex)
{
    if (!ex->kill_pending || (!ex->marker.seen && !ex->marker.gave_up))
        return;
    ex->kill_pending = false;
    if (ex->marker.seen && ex->marker.pgid > 1 && oss_master_up(ex->conn->m))
        start_killer(ex);
    else
        force_close(ex);
}

static void stop(opsc_exec *ex, int code)
{
    if (ex->stop_code || ex->done)
        return;
    ex->stop_code = code;
    stop_remote(ex);
}

static void on_timeout(uv_timer_t *t)
{
    stop(t->data, OPSC_ETIMEDOUT);
}

void oss_exec_cancel(opsc_exec *ex)
{
    if (!ex->fail_code || ex->fail_code == OPSC_EAUTH)
        stop(ex, OPSC_ECANCELED);
}

void oss_exec_close_all(opsc_conn *c)
{
    for (opsc_exec *ex = c->execs; ex; ex = ex->next) {
        if (ex->done || ex->internal)
            continue;
        ex->fail_code = OPSC_ECANCELED;
        snprintf(ex->err, sizeof(ex->err), "the connection was closed");
        report(ex);
        stop_remote(ex); /* a closed connection leaves the remote command running */
    }
}

/* ---- starting ----------------------------------------------------------------------------------
 */

static int make_pipes(opsc_exec *ex, int ours[3])
{
    int fds[3][2];
    for (int i = 0; i < 3; i++) {
        if (pipe2(fds[i], O_CLOEXEC) < 0) {
            for (int j = 0; j < i; j++) {
                close(fds[j][0]);
                close(fds[j][1]);
            }
            return OPSC_EIO;
        }
    }
    ex->mux.pass[0] = fds[0][0]; /* the master reads stdin */
    ours[0] = fds[0][1];
    ex->mux.pass[1] = fds[1][1]; /* and writes stdout, stderr */
    ours[1] = fds[1][0];
    ex->mux.pass[2] = fds[2][1];
    ours[2] = fds[2][0];
    return 0;
}

static int open_ends(opsc_exec *ex, int ours[3])
{
    uv_loop_t *loop = ex->conn->p->loop;
    uv_pipe_t *pipes[3] = {&ex->p_in, &ex->p_out, &ex->p_err};
    int rc = 0;
    for (int i = 0; i < 3; i++) {
        uv_pipe_init(loop, pipes[i], 0);
        pipes[i]->data = ex;
        ex->handles++;
        if (rc == 0 && uv_pipe_open(pipes[i], ours[i]) < 0)
            rc = OPSC_EIO;
        if (rc < 0)
            close(ours[i]);
    }
    uv_timer_init(loop, &ex->timer);
    ex->timer.data = ex;
    ex->handles++;
    return rc;
}

static int start_exec(opsc_conn *c, const char *command, bool internal, const opsc_exec_cb *cb,
                      void *ud, opsc_exec **out)
{
    oss_plugin *p = c->p;
    opsc_exec *ex = p->api->calloc(1, sizeof(*ex));
    if (!ex)
        return OPSC_ENOMEM;
    ex->conn = c;
    ex->internal = internal;
    tp_stdin_init(&ex->in, p->api, &ex->p_in, close_stdin_pipe, stdin_drained, ex);
    ex->mux.fd = -1;
    ex->mux.pass[0] = ex->mux.pass[1] = ex->mux.pass[2] = -1;
    memcpy(&ex->cb, cb, cb->size < sizeof(ex->cb) ? cb->size : sizeof(ex->cb));
    ex->ud = ud;
    if (internal)
        ex->marker.gave_up = true; /* a kill helper prints no marker */
    ex->next = c->execs;
    if (c->execs)
        c->execs->prev = ex;
    c->execs = ex;
    int ours[3] = {-1, -1, -1};
    char path[128];
    int rc = make_pipes(ex, ours);
    if (rc < 0) {
        c->execs = ex->next;
        if (ex->next)
            ex->next->prev = NULL;
        p->api->free(ex);
        return rc;
    }
    rc = open_ends(ex, ours);
    if (rc == 0)
        rc = oss_master_ctl(c->m, path, sizeof(path));
    if (rc == 0)
        rc = oss_mux_start(&ex->mux, ex, path, command);
    if (rc < 0) {
        ex->done = true; /* no callback: close what was opened, quietly */
        close_all(ex);
        return rc;
    }
    if (!internal)
        c->nexec++;
    start_reading(ex);
    *out = ex;
    return 0;
}

int oss_exec(opsc_conn *c, const opsc_exec_req *req, const opsc_exec_cb *cb, void *ud,
             opsc_exec **out)
{
    if (!c || !req || !req->command || !cb || !cb->on_done || !out)
        return OPSC_EINVAL;
    if (c->closing)
        return OPSC_ESTATE;
    if (!oss_master_up(c->m))
        return OPSC_ECONNRESET;
    if (req->pty)
        return OPSC_ENOTSUP;
    /* One session stays free for the kill helper of a cancel. */
    if (c->nexec + 1 >= (unsigned)c->p->cfg.max_channels)
        return OPSC_EBUSY;
    oss_plugin *p = c->p;
    char err[128];
    const char *become = req->become_user && *req->become_user ? req->become_user : NULL;
    const char *pw = become ? req->become_password : NULL;
    char *cmd = remote_command(p, req, become, pw != NULL, err, sizeof(err));
    if (!cmd)
        return OPSC_EINVAL;
    opsc_exec *ex = NULL;
    int rc = start_exec(c, cmd, false, cb, ud, &ex);
    p->api->free(cmd);
    if (rc < 0)
        return rc;
    if (become && !(ex->become_user = p->api->strdup(become)))
        ex->fail_code = OPSC_ENOMEM;
    if (pw && !(ex->become_pw = p->api->strdup(pw)))
        ex->fail_code = OPSC_ENOMEM;
    ex->in.hold = become != NULL;
    ex->in.eof = !req->stdin_open;
    if (pw && ex->become_pw)
        tp_stdin_password(&ex->in, pw);
    tp_stdin_settle(&ex->in);
    if (req->timeout_ms)
        uv_timer_start(&ex->timer, on_timeout, req->timeout_ms, 0);
    *out = ex;
    return 0;
}

int oss_exec_write(opsc_exec *ex, const char *data, size_t len)
{
    if (ex->done)
        return OPSC_ESTATE;
    return tp_stdin_write(&ex->in, data, len);
}

void oss_exec_pause(opsc_exec *ex)
{
    if (ex->paused || ex->done)
        return;
    ex->paused = true;
    uv_read_stop((uv_stream_t *)&ex->p_out);
    uv_read_stop((uv_stream_t *)&ex->p_err);
}

void oss_exec_resume(opsc_exec *ex)
{
    if (!ex->paused || ex->done)
        return;
    ex->paused = false;
    start_reading(ex);
}
