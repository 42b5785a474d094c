/* local_exec.c - one command on the appliance: sh started by the host's helper as the local-steps
 * user, in its own session and process group, with pipes for its stdio. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "local_internal.h"

static void ex_maybe_free(opsc_exec *ex);

/* ---- ending --------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    opsc_exec *ex = h->data;
    ex->open_handles--;
    ex_maybe_free(ex);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_handle_closed);
}

static void close_all(opsc_exec *ex)
{
    close_handle((uv_handle_t *)&ex->p_in);
    close_handle((uv_handle_t *)&ex->p_out);
    close_handle((uv_handle_t *)&ex->p_err);
    close_handle((uv_handle_t *)&ex->timer);
}

static void ex_maybe_free(opsc_exec *ex)
{
    if (ex->open_handles > 0 || !ex->done)
        return;
    opsc_conn *c = ex->conn;
    const opsc_host_api *api = c->p->api;
    if (ex->prev)
        ex->prev->next = ex->next;
    else if (c->execs == ex)
        c->execs = ex->next;
    if (ex->next)
        ex->next->prev = ex->prev;
    tp_stdin_free(&ex->in);
    if (ex->proc)
        api->local_release(ex->proc);
    api->free(ex->become_user);
    if (ex->become_pw) {
        memset(ex->become_pw, 0, strlen(ex->become_pw));
        api->free(ex->become_pw);
    }
    api->free(ex);
    if (c->closing && !c->execs)
        local_conn_closed(c);
}

static void report(opsc_exec *ex)
{
    if (ex->done)
        return;
    ex->done = true;
    ex->conn->nexec--;
    opsc_exec_result res = {sizeof(res)};
    char sig[32] = "";
    if (ex->term_signal) {
        const char *abbrev = sigabbrev_np(ex->term_signal);
        snprintf(sig, sizeof(sig), "%s", abbrev ? abbrev : "UNKNOWN");
    }
    res.status = ex->fail_code ? ex->fail_code : ex->stop_code;
    res.exit_code = (int)ex->exit_status;
    res.exit_signal = sig[0] ? sig : NULL;
    res.error = res.status ? ex->err : NULL;
    if (ex->stop_code && !ex->fail_code)
        res.error = ex->stop_code == OPSC_ETIMEDOUT ? "the command timed out and was stopped"
                                                    : "the command was cancelled and stopped";
    if (ex->cb.on_done)
        ex->cb.on_done(ex->ud, &res);
}

/* Done when the process exited and both output pipes reached their end
 * (a background child holding stdout keeps the command running, as over SSH). */
static void maybe_finish(opsc_exec *ex)
{
    if (ex->done || !ex->exited || !ex->out_eof || !ex->err_eof)
        return;
    report(ex);
    close_all(ex);
}

/* ---- output ----------------------------------------------------------------------------- */

static char read_buf[65536]; /* reads are delivered before the next one: one buffer is enough */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h, (void)suggested;
    *buf = uv_buf_init(read_buf, sizeof(read_buf));
}

struct emit_ctx {
    opsc_exec *ex;
    int stream;
};

static void emit(void *ud, const char *data, size_t len)
{
    struct emit_ctx *e = ud;
    if (!e->ex->done && e->ex->cb.on_output)
        e->ex->cb.on_output(e->ex->ud, e->stream, data, len);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    opsc_exec *ex = s->data;
    bool is_err = s == (uv_stream_t *)&ex->p_err;
    struct emit_ctx e = {ex, is_err ? OPSC_STDERR : OPSC_STDOUT};
    if (n > 0) {
        if (is_err && !ex->marker.seen && !ex->marker.gave_up) {
            tp_marker_feed(&ex->marker, buf->base, (size_t)n, emit, &e);
            if (ex->marker.sudo_rejected && !ex->fail_code) {
                ex->fail_code = OPSC_EAUTH;
                snprintf(ex->err, sizeof(ex->err), "sudo rejected the password to become '%s'",
                         ex->become_user ? ex->become_user : "?");
                local_exec_cancel(ex);
            }
            if (ex->marker.seen || ex->marker.gave_up)
                tp_stdin_release(&ex->in);
        } else {
            emit(&e, buf->base, (size_t)n);
        }
        return;
    }
    if (n == 0)
        return;
    /* UV_EOF or an error: this stream is over */
    uv_read_stop(s);
    if (is_err) {
        tp_marker_flush(&ex->marker, emit, &e);
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
    close_handle((uv_handle_t *)&ex->p_in);
}

static void stdin_drained(void *owner)
{
    opsc_exec *ex = owner;
    if (!ex->done && ex->cb.on_stdin_drained)
        ex->cb.on_stdin_drained(ex->ud);
}

/* ---- stopping ----------------------------------------------------------------------------- */

/* The whole group, through the helper: the daemon's user cannot signal the
 * local-steps user's processes, and the leader may be gone while a child
 * still holds the output open. */
static void signal_group(opsc_exec *ex, int sig)
{
    if (ex->proc && (!ex->exited || !ex->out_eof || !ex->err_eof))
        ex->conn->p->api->local_signal(ex->proc, sig);
}

static void kill_cb(uv_timer_t *t)
{
    opsc_exec *ex = t->data;
    ex->killed_hard = true;
    signal_group(ex, SIGKILL);
}

static void stop(opsc_exec *ex, int code)
{
    if (ex->stop_code || ex->done)
        return;
    ex->stop_code = code;
    if (ex->paused) {
        ex->paused = false;
        start_reading(ex); /* let the output drain so the command can end */
    }
    signal_group(ex, SIGTERM);
    uv_timer_start(&ex->timer, kill_cb, (uint64_t)ex->conn->p->cfg.cancel_grace_ms, 0);
}

static void timeout_cb(uv_timer_t *t)
{
    stop(t->data, OPSC_ETIMEDOUT);
}

void local_exec_cancel(opsc_exec *ex)
{
    if (!ex->fail_code || ex->fail_code == OPSC_EAUTH)
        stop(ex, OPSC_ECANCELED);
}

static void on_started(void *ud, long pgid, const char *handle)
{
    (void)pgid;
    opsc_exec *ex = ud;
    if (!ex->done && ex->cb.on_started && handle)
        ex->cb.on_started(ex->ud, handle);
}

static void on_exit(void *ud, int status, int64_t exit_code, int term_signal, const char *error)
{
    opsc_exec *ex = ud;
    ex->exited = true;
    ex->exit_status = exit_code;
    ex->term_signal = term_signal;
    if (status < 0 && !ex->fail_code) {
        ex->fail_code = status;
        snprintf(ex->err, sizeof(ex->err), "%s", error ? error : "the local process failed");
    }
    if (!ex->stop_code)
        uv_timer_stop(&ex->timer);
    if (!ex->done)
        maybe_finish(ex);
}

/* The connection closes: report every command as cancelled and kill it. */
void local_exec_close_all(opsc_conn *c)
{
    for (opsc_exec *ex = c->execs; ex; ex = ex->next) {
        if (ex->done)
            continue;
        ex->fail_code = OPSC_ECANCELED;
        snprintf(ex->err, sizeof(ex->err), "the connection was closed");
        signal_group(ex, SIGKILL);
        report(ex);
        close_all(ex);
    }
}

/* ---- starting ---------------------------------------------------------------------------- */

static const opsc_local_cb local_cb = {sizeof(opsc_local_cb), on_started, on_exit};

static void close_fds(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Pipes: our ends to the loop, theirs to the helper (which passes copies). */
static int open_pipes(opsc_exec *ex, int theirs[3])
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
        int rc = -errno;
        close_fds(in, 2), close_fds(out, 2), close_fds(err, 2);
        return rc;
    }
    uv_pipe_open(&ex->p_in, in[1]);
    uv_pipe_open(&ex->p_out, out[0]);
    uv_pipe_open(&ex->p_err, err[0]);
    theirs[0] = in[0];
    theirs[1] = out[1];
    theirs[2] = err[1];
    return 0;
}

static int spawn(opsc_exec *ex, const char *cmd)
{
    local_plugin *p = ex->conn->p;
    const opsc_host_api *api = p->api;
    uv_loop_t *loop = api->loop();
    uv_pipe_init(loop, &ex->p_in, 0);
    uv_pipe_init(loop, &ex->p_out, 0);
    uv_pipe_init(loop, &ex->p_err, 0);
    uv_timer_init(loop, &ex->timer);
    ex->p_in.data = ex->p_out.data = ex->p_err.data = ex->timer.data = ex;
    ex->open_handles = 4;
    int theirs[3] = {-1, -1, -1};
    int rc = open_pipes(ex, theirs);
    if (rc < 0)
        return rc;
    const char *args[] = {p->cfg.shell, "-c", cmd, NULL};
    opsc_local_spawn req = {sizeof(req), args, NULL, NULL, {theirs[0], theirs[1], theirs[2]}};
    rc = api->local_spawn(&req, &local_cb, ex, &ex->proc, ex->err, sizeof(ex->err));
    close_fds(theirs, 3);
    if (rc < 0) {
        ex->proc = NULL;
        api->log(LOCAL_COMPONENT, OPSC_LOG_WARN, "cannot start a local command: %s", ex->err);
        return rc;
    }
    start_reading(ex);
    return 0;
}

static int exec_prepare(opsc_exec *ex, const opsc_exec_req *req, char **cmd)
{
    const opsc_host_api *api = ex->conn->p->api;
    char err[128];
    const char *become = req->become_user && *req->become_user ? req->become_user : NULL;
    const char *pw = become ? req->become_password : NULL;
    *cmd = tp_wrap_command(api, req->command, req->env, req->cwd, become, pw != NULL, err,
                           sizeof(err));
    if (!*cmd)
        return OPSC_EINVAL;
    if (become && !(ex->become_user = api->strdup(become)))
        return OPSC_ENOMEM;
    tp_stdin_init(&ex->in, api, &ex->p_in, close_stdin_pipe, stdin_drained, ex);
    ex->in.hold = become != NULL;
    ex->in.eof = !req->stdin_open;
    return 0;
}

int local_exec(opsc_conn *c, const opsc_exec_req *req, const opsc_exec_cb *cb, void *ud,
               opsc_exec **out)
{
    if (!c || !req || !req->command || !cb || !cb->on_done || !out)
        return OPSC_EINVAL;
    if (c->closing)
        return OPSC_ESTATE;
    if (req->pty)
        return OPSC_ENOTSUP;
    if (c->nexec >= (unsigned)c->p->cfg.max_commands)
        return OPSC_EBUSY;
    if (!c->p->has_local)
        return OPSC_EPERM;
    const opsc_host_api *api = c->p->api;
    opsc_exec *ex = api->calloc(1, sizeof(*ex));
    if (!ex)
        return OPSC_ENOMEM;
    ex->conn = c;
    memcpy(&ex->cb, cb, cb->size < sizeof(ex->cb) ? cb->size : sizeof(ex->cb));
    ex->ud = ud;
    char *cmd = NULL;
    int rc = exec_prepare(ex, req, &cmd);
    if (rc == 0)
        rc = spawn(ex, cmd);
    api->free(cmd);
    c->nexec++;
    ex->next = c->execs;
    if (c->execs)
        c->execs->prev = ex;
    c->execs = ex;
    if (rc < 0) {
        /* No callback: close what was opened and free quietly. */
        ex->done = true;
        c->nexec--;
        if (ex->open_handles)
            close_all(ex);
        else
            ex_maybe_free(ex);
        return rc;
    }
    if (req->become_password && ex->become_user)
        tp_stdin_password(&ex->in, req->become_password);
    tp_stdin_settle(&ex->in);
    if (req->timeout_ms)
        uv_timer_start(&ex->timer, timeout_cb, req->timeout_ms, 0);
    *out = ex;
    return 0;
}

int local_exec_write(opsc_exec *ex, const char *data, size_t len)
{
    if (ex->done)
        return OPSC_ESTATE;
    return tp_stdin_write(&ex->in, data, len);
}

void local_exec_pause(opsc_exec *ex)
{
    if (ex->paused || ex->done)
        return;
    ex->paused = true;
    uv_read_stop((uv_stream_t *)&ex->p_out);
    uv_read_stop((uv_stream_t *)&ex->p_err);
}

void local_exec_resume(opsc_exec *ex)
{
    if (!ex->paused || ex->done)
        return;
    ex->paused = false;
    start_reading(ex);
}
