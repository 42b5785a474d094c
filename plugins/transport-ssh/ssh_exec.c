/* ssh_exec.c - one command on an SSH channel: open, start, stream, stop, collect the exit status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssh_internal.h"
#include "tp_orphan.h"

enum step { STEP_ADVANCED, STEP_BLOCKED, STEP_IDLE, STEP_FAILED };
enum pending { PC_NONE, PC_WRITE, PC_EOF, PC_READ_OUT, PC_READ_ERR };

/* Terminal modes for a pty: ECHO (53) off, so nothing written to stdin (the
 * sudo password included) comes back in the output. */
static const char pty_modes[] = {53, 0, 0, 0, 0, 0};

static void ex_stop(opsc_exec *ex, int code);

/* ---- stdin queue ----------------------------------------------------------- */

static int queue_push(opsc_exec *ex, const char *data, size_t len, bool front)
{
    const opsc_host_api *api = ex->conn->api;
    ex_chunk *ch = api->alloc(sizeof(*ch) + len);
    if (!ch)
        return OPSC_ENOMEM;
    ch->len = len;
    ch->off = 0;
    memcpy(ch->data, data, len);
    if (front) {
        ch->next = ex->in_head;
        ex->in_head = ch;
        if (!ex->in_tail)
            ex->in_tail = ch;
    } else {
        ch->next = NULL;
        if (ex->in_tail)
            ex->in_tail->next = ch;
        else
            ex->in_head = ch;
        ex->in_tail = ch;
    }
    ex->in_queued += len;
    return 0;
}

/* The password and its newline in one chunk, first in the queue. */
static int push_password(opsc_exec *ex, const char *pw)
{
    size_t n = strlen(pw);
    int rc = queue_push(ex, pw, n + 1, true);
    if (rc == 0) {
        ex->in_head->data[n] = '\n';
        ex->pw_unsent = true;
    }
    return rc;
}

static void queue_pop(opsc_exec *ex)
{
    ex_chunk *ch = ex->in_head;
    ex->in_head = ch->next;
    if (!ex->in_head)
        ex->in_tail = NULL;
    /* The password chunk is the only one that may hold a secret. */
    memset(ch->data, 0, ch->len);
    ex->conn->api->free(ch);
}

/* ---- results ------------------------------------------------------------------ */

static void finish(opsc_exec *ex)
{
    opsc_conn *c = ex->conn;
    if (ex->st == EX_DONE)
        return;
    ex->st = EX_DONE;
    if (c->opener == ex)
        c->opener = NULL;
    if (c->send_owner == ex)
        c->send_owner = NULL;
    if (ex->timer_init)
        uv_timer_stop(&ex->timer);
    if (ex->victim) {      /* a kill helper: the victim goes on by itself */
        if (ex->fail_code) /* could not even start: fall back to closing */
            ex->victim->force_close = true;
        ex->victim->killer = NULL;
    }
    if (ex->killer)
        ex->killer->victim = NULL;
    if (ex->internal)
        return;
    c->nexec--;
    opsc_exec_result res = {sizeof(res)};
    res.status = ex->fail_code ? ex->fail_code : ex->stop_code;
    res.exit_code = ex->exit_code;
    res.exit_signal = ex->exit_signal[0] ? ex->exit_signal : NULL;
    res.error = res.status ? ex->err : NULL;
    if (ex->stop_code && !ex->fail_code)
        res.error = ex->stop_code == OPSC_ETIMEDOUT ? "the command timed out and was stopped"
                                                    : "the command was cancelled and stopped";
    ex->cb.on_done(ex->ud, &res);
}

/* The connection died or is closing: report at once; libssh2_session_free
 * frees the channel later. */
void ssh_exec_fail(opsc_exec *ex, int code, const char *msg)
{
    if (ex->st == EX_DONE)
        return;
    ex->fail_code = code;
    snprintf(ex->err, sizeof(ex->err), "%s", msg);
    ex->ch = NULL;
    finish(ex);
}

static void on_timer_closed(uv_handle_t *h)
{
    opsc_exec *ex = h->data;
    ex->conn->api->free(ex);
}

static void free_fields(opsc_exec *ex)
{
    const opsc_host_api *api = ex->conn->api;
    while (ex->in_head)
        queue_pop(ex);
    api->free(ex->cmd);
    api->free(ex->become_user);
    ssh_wipe_free(api, ex->become_pw);
}

void ssh_exec_release(opsc_exec *ex)
{
    opsc_conn *c = ex->conn;
    const opsc_host_api *api = c->api;
    if (ex->prev)
        ex->prev->next = ex->next;
    else
        c->execs = ex->next;
    if (ex->next)
        ex->next->prev = ex->prev;
    free_fields(ex);
    if (ex->timer_init)
        uv_close((uv_handle_t *)&ex->timer, on_timer_closed);
    else
        api->free(ex);
}

/* A channel-level failure: this command fails, the connection lives on. */
static int ex_error(opsc_exec *ex, int rc, const char *what)
{
    opsc_conn *c = ex->conn;
    char msg[256];
    int code = ssh_map_error(c, rc, msg, sizeof(msg));
    if (code == OPSC_ECONNRESET) {
        ssh_conn_broken(c, OPSC_ECONNRESET, "%s:%d: connection lost while %s: %s", c->host, c->port,
                        what, msg);
        return STEP_FAILED;
    }
    if (rc == LIBSSH2_ERROR_CHANNEL_FAILURE)
        snprintf(ex->err, sizeof(ex->err),
                 "%s refused a new channel (%s): too many sessions on one connection? (sshd "
                 "MaxSessions)",
                 c->name, msg);
    else
        snprintf(ex->err, sizeof(ex->err), "%s: %s failed: %s", c->name, what, msg);
    ex->fail_code = code;
    if (ex->ch && ex->st < EX_CLOSE) {
        ex->st = EX_CLOSE;
        ex->force_close = true;
        return STEP_ADVANCED;
    }
    if (ex->ch && ex->st < EX_FREE) {
        ex->st = EX_FREE;
        return STEP_ADVANCED;
    }
    finish(ex); /* a channel that failed to free is freed with the session */
    return STEP_FAILED;
}

/* An EAGAIN: if a packet is left half sent, we own the session's send slot. */
static int blocked(opsc_exec *ex, int call)
{
    opsc_conn *c = ex->conn;
    if (libssh2_session_block_directions(c->s) & LIBSSH2_SESSION_BLOCK_OUTBOUND) {
        c->want_write = true;
        c->send_owner = ex;
        ex->pending_call = call;
    }
    return STEP_BLOCKED;
}

static void call_done(opsc_exec *ex)
{
    if (ex->conn->send_owner == ex)
        ex->conn->send_owner = NULL;
    ex->pending_call = PC_NONE;
}

/* ---- output ---------------------------------------------------------------------- */

struct emit_ctx {
    opsc_exec *ex;
    int stream;
};

static void emit(void *ud, const char *data, size_t len)
{
    struct emit_ctx *e = ud;
    if (!e->ex->internal && e->ex->st != EX_DONE && e->ex->cb.on_output)
        e->ex->cb.on_output(e->ex->ud, e->stream, data, len);
}

static void stop_when_known(opsc_exec *ex);

static void deliver(opsc_exec *ex, int stream, const char *data, size_t len)
{
    struct emit_ctx e = {ex, stream};
    int marker_stream = ex->pty ? OPSC_STDOUT : OPSC_STDERR;
    if (stream != marker_stream || ex->marker.seen || ex->marker.gave_up) {
        emit(&e, data, len);
        return;
    }
    tp_marker_feed(&ex->marker, data, len, emit, &e);
    if (ex->marker.sudo_rejected && !ex->fail_code) {
        ex->fail_code = OPSC_EAUTH;
        snprintf(ex->err, sizeof(ex->err), "sudo rejected the password to become '%s'",
                 ex->become_user ? ex->become_user : "?");
        ex->force_close = true;
    }
    if (ex->marker.seen || ex->marker.gave_up)
        ex->in_hold = false;
    char handle[128];
    if (ex->marker.seen && !ex->internal && ex->cb.on_started &&
        tp_process_handle("ssh", &ex->marker, handle, sizeof(handle)) == 0)
        ex->cb.on_started(ex->ud, handle); /* a later daemon can stop it (kill_orphan) */
    stop_when_known(ex);
}

static int run_read(opsc_exec *ex, bool *more, bool *progress)
{
    static const int streams[2] = {0, SSH_EXTENDED_DATA_STDERR};
    char buf[32768];
    int64_t budget = ex->conn->p->cfg.read_budget;
    bool was_blocked = false;
    for (int i = 0; i < 2; i++) {
        for (;;) {
            if (ex->paused || ex->st != EX_RUN || ex->force_close)
                return STEP_IDLE;
            ssize_t n = libssh2_channel_read_ex(ex->ch, streams[i], buf, sizeof(buf));
            if (n == LIBSSH2_ERROR_EAGAIN) {
                if (blocked(ex, i ? PC_READ_ERR : PC_READ_OUT) == STEP_BLOCKED)
                    was_blocked = true;
                break;
            }
            call_done(ex);
            if (n < 0)
                return ex_error(ex, (int)n, "reading output");
            if (n == 0)
                break;
            *progress = true;
            deliver(ex, i ? OPSC_STDERR : OPSC_STDOUT, buf, (size_t)n);
            budget -= n;
            if (budget <= 0) {
                *more = true;
                return STEP_IDLE;
            }
        }
    }
    if (libssh2_channel_eof(ex->ch)) {
        tp_marker_flush(&ex->marker, emit, &(struct emit_ctx){ex, ex->pty ? 1 : 2});
        ex->st = EX_CLOSE;
        return STEP_ADVANCED;
    }
    return was_blocked ? STEP_BLOCKED : STEP_IDLE;
}

/* ---- stdin ---------------------------------------------------------------------- */

static int run_write(opsc_exec *ex, bool *progress)
{
    bool wrote = false;
    while (ex->in_head) {
        /* Under sudo only the password line goes before sudo is done. */
        if (ex->in_hold && !ex->pw_unsent && ex->pending_call != PC_WRITE)
            break;
        ex_chunk *ch = ex->in_head;
        ssize_t n = libssh2_channel_write_ex(ex->ch, 0, ch->data + ch->off, ch->len - ch->off);
        if (n == LIBSSH2_ERROR_EAGAIN)
            return blocked(ex, PC_WRITE);
        call_done(ex);
        if (n < 0)
            return ex_error(ex, (int)n, "writing stdin");
        ch->off += (size_t)n;
        ex->in_queued -= (size_t)n;
        wrote = true;
        *progress = true;
        if (ch->off == ch->len) {
            queue_pop(ex);
            ex->pw_unsent = false;
        }
    }
    if (wrote && !ex->in_head && ex->in_was_full && !ex->internal) {
        ex->in_was_full = false;
        if (ex->cb.on_stdin_drained)
            ex->cb.on_stdin_drained(ex->ud);
    }
    if (!ex->in_head && ex->in_eof_req && !ex->in_eof_sent) {
        int rc = libssh2_channel_send_eof(ex->ch);
        if (rc == LIBSSH2_ERROR_EAGAIN)
            return blocked(ex, PC_EOF);
        call_done(ex);
        if (rc < 0)
            return ex_error(ex, rc, "closing stdin");
        ex->in_eof_sent = true;
        *progress = true;
    }
    return STEP_IDLE;
}

/* ---- the state machine --------------------------------------------------------- */

static int step_open(opsc_exec *ex)
{
    opsc_conn *c = ex->conn;
    if (c->opener && c->opener != ex)
        return STEP_IDLE; /* another channel is being opened */
    if (ex->force_close && c->opener != ex) {
        finish(ex);
        return STEP_FAILED;
    }
    c->opener = ex;
    ex->ch = libssh2_channel_open_session(c->s);
    if (!ex->ch) {
        int e = libssh2_session_last_errno(c->s);
        if (e == LIBSSH2_ERROR_EAGAIN)
            return blocked(ex, PC_NONE);
        c->opener = NULL;
        call_done(ex);
        return ex_error(ex, e, "opening a channel");
    }
    c->opener = NULL;
    call_done(ex);
    ex->st = ex->force_close ? EX_CLOSE : ex->pty ? EX_PTY : EX_START;
    return STEP_ADVANCED;
}

static int step_start(opsc_exec *ex)
{
    int rc;
    if (ex->st == EX_PTY) {
        rc = libssh2_channel_request_pty_ex(ex->ch, "xterm", 5, pty_modes, sizeof(pty_modes), 200,
                                            50, 0, 0);
        if (rc == LIBSSH2_ERROR_EAGAIN)
            return blocked(ex, PC_NONE);
        call_done(ex);
        if (rc < 0)
            return ex_error(ex, rc, "requesting a pty");
        ex->st = EX_START;
        return STEP_ADVANCED;
    }
    rc = libssh2_channel_process_startup(ex->ch, "exec", 4, ex->cmd, (unsigned)strlen(ex->cmd));
    if (rc == LIBSSH2_ERROR_EAGAIN)
        return blocked(ex, PC_NONE);
    call_done(ex);
    if (rc < 0)
        return ex_error(ex, rc, "starting the command");
    ex->st = ex->force_close ? EX_CLOSE : EX_RUN;
    return STEP_ADVANCED;
}

static void collect_exit(opsc_exec *ex)
{
    ex->exit_code = libssh2_channel_get_exit_status(ex->ch);
    char *sig = NULL;
    size_t siglen = 0;
    if (libssh2_channel_get_exit_signal(ex->ch, &sig, &siglen, NULL, NULL, NULL, NULL) == 0 &&
        sig) {
        snprintf(ex->exit_signal, sizeof(ex->exit_signal), "%.*s", (int)siglen, sig);
        libssh2_free(ex->conn->s, sig); /* allocated by the session's allocator (ssh_mem.c) */
    }
}

static int step_close(opsc_exec *ex)
{
    int rc;
    switch (ex->st) {
    case EX_CLOSE:
        rc = libssh2_channel_close(ex->ch);
        if (rc == LIBSSH2_ERROR_EAGAIN)
            return blocked(ex, PC_NONE);
        call_done(ex);
        if (rc < 0)
            return ex_error(ex, rc, "closing the channel");
        /* Waiting for the server's close needs its EOF; a forced close does not wait. */
        ex->st = ex->force_close && !libssh2_channel_eof(ex->ch) ? EX_FREE : EX_WAIT_CLOSED;
        return STEP_ADVANCED;
    case EX_WAIT_CLOSED:
        rc = libssh2_channel_wait_closed(ex->ch);
        if (rc == LIBSSH2_ERROR_EAGAIN)
            return blocked(ex, PC_NONE);
        call_done(ex);
        if (rc < 0)
            return ex_error(ex, rc, "waiting for the channel to close");
        collect_exit(ex);
        ex->st = EX_FREE;
        return STEP_ADVANCED;
    default:
        rc = libssh2_channel_free(ex->ch);
        if (rc == LIBSSH2_ERROR_EAGAIN)
            return blocked(ex, PC_NONE);
        call_done(ex);
        ex->ch = NULL;
        finish(ex);
        return STEP_ADVANCED;
    }
}

static int step_run(opsc_exec *ex, bool *more, bool *progress)
{
    opsc_conn *c = ex->conn;
    /* The owner of a half-sent packet repeats exactly that call first. */
    if (c->send_owner == ex &&
        (ex->pending_call == PC_READ_OUT || ex->pending_call == PC_READ_ERR)) {
        char buf[1];
        int stream = ex->pending_call == PC_READ_ERR ? SSH_EXTENDED_DATA_STDERR : 0;
        ssize_t n = libssh2_channel_read_ex(ex->ch, stream, buf, 0);
        if (n == LIBSSH2_ERROR_EAGAIN)
            return blocked(ex, ex->pending_call);
        call_done(ex);
    }
    if (ex->force_close && c->send_owner != ex) {
        ex->st = EX_CLOSE;
        return STEP_ADVANCED;
    }
    int w = run_write(ex, progress);
    if (w == STEP_FAILED || ex->st != EX_RUN)
        return w;
    if (c->send_owner == ex)
        return STEP_BLOCKED;
    int r = run_read(ex, more, progress);
    if (r == STEP_FAILED || r == STEP_ADVANCED)
        return r;
    return w == STEP_BLOCKED || r == STEP_BLOCKED ? STEP_BLOCKED : STEP_IDLE;
}

static int ex_step(opsc_exec *ex, bool *more, bool *progress)
{
    switch (ex->st) {
    case EX_OPEN:
        return step_open(ex);
    case EX_PTY:
    case EX_START:
        return step_start(ex);
    case EX_RUN:
        return step_run(ex, more, progress);
    case EX_CLOSE:
    case EX_WAIT_CLOSED:
    case EX_FREE:
        return step_close(ex);
    default:
        return STEP_IDLE;
    }
}

void ssh_exec_pump(opsc_exec *ex, bool *more, bool *progress)
{
    opsc_conn *c = ex->conn;
    if (c->state != C_READY)
        return;
    if (c->send_owner && c->send_owner != ex)
        return; /* nothing else may send until the owner's packet is out */
    for (int i = 0; i < 64 && ex->st != EX_DONE; i++) {
        int rc = ex_step(ex, more, progress);
        if (rc != STEP_ADVANCED)
            return;
        *progress = true;
    }
    *more = true;
}

bool ssh_exec_reads(const opsc_exec *ex)
{
    if (ex->st == EX_DONE)
        return false;
    if (ex->st != EX_RUN)
        return true;
    return !ex->paused || ex->in_head || (ex->in_eof_req && !ex->in_eof_sent) || ex->force_close;
}

/* ---- stopping ------------------------------------------------------------------- */

static void on_killer_done(void *ud, const opsc_exec_result *res)
{
    (void)ud, (void)res;
}

static void cancel_deadline_cb(uv_timer_t *t)
{
    opsc_exec *ex = t->data;
    ex->force_close = true; /* the kill helper did not finish the job in time */
    ssh_conn_kick(ex->conn);
}

static void start_killer(opsc_exec *ex)
{
    opsc_conn *c = ex->conn;
    char *cmd = tp_kill_command(c->api, ex->marker.pgid, (unsigned)c->p->cfg.cancel_grace_ms,
                                ex->become_user, ex->become_pw != NULL);
    opsc_exec_req req = {sizeof(req)};
    req.command = "true"; /* replaced below: the kill script runs unwrapped */
    req.stdin_open = false;
    static const opsc_exec_cb kcb = {sizeof(kcb), NULL, on_killer_done, NULL};
    opsc_exec *k = NULL;
    if (!cmd || ssh_exec_start(c, &req, &kcb, NULL, &k) < 0) {
        c->api->free(cmd);
        ex->force_close = true;
        return;
    }
    k->internal = true;
    c->api->free(k->cmd);
    k->cmd = cmd;
    k->marker.gave_up = true; /* no marker in the kill script */
    if (ex->become_pw && push_password(k, ex->become_pw) < 0)
        k->force_close = true;
    k->in_hold = false;
    k->victim = ex;
    ex->killer = k;
}

/* Whatever the kill helper does, the channel closes by this deadline. */
static void arm_cancel_deadline(opsc_exec *ex)
{
    uint64_t deadline = (uint64_t)ex->conn->p->cfg.cancel_grace_ms + 5000;
    if (!ex->timer_init) {
        uv_timer_init(ex->conn->loop, &ex->timer);
        ex->timer.data = ex;
        ex->timer_init = true;
    }
    uv_timer_start(&ex->timer, cancel_deadline_cb, deadline, 0);
}

/* Stop the remote process group: at once when its marker was seen, else as soon as it is.
 * The command's processes may already run while its marker is still in sshd's buffers;
 * closing the channel then would leave them running (sshd does not signal a command whose
 * channel closes). */
static void ex_stop(opsc_exec *ex, int code)
{
    if (ex->stop_code || ex->st == EX_DONE)
        return;
    ex->stop_code = code;
    ex->paused = false; /* drain what is left so the channel can end */
    if (ex->st == EX_RUN && ex->marker.seen && ex->marker.pgid > 1) {
        start_killer(ex);
        arm_cancel_deadline(ex);
    } else if ((ex->st == EX_RUN || ex->st == EX_START) && !ex->marker.seen &&
               !ex->marker.gave_up) { /* EX_START: the exec request may be on its way */
        ex->kill_pending = true;
        arm_cancel_deadline(ex);
    } else {
        ex->force_close = true;
    }
    ssh_conn_kick(ex->conn);
}

/* The process group became known after a stop was asked for. */
static void stop_when_known(opsc_exec *ex)
{
    if (!ex->kill_pending || (!ex->marker.seen && !ex->marker.gave_up))
        return;
    ex->kill_pending = false;
    if (ex->marker.seen && ex->marker.pgid > 1)
        start_killer(ex);
    else
        ex->force_close = true;
    ssh_conn_kick(ex->conn);
}

static void timeout_cb(uv_timer_t *t)
{
    ex_stop(t->data, OPSC_ETIMEDOUT);
}

/* ---- public ----------------------------------------------------------------------- */

static int exec_init(opsc_exec *ex, const opsc_exec_req *req, const opsc_exec_cb *cb, void *ud)
{
    opsc_conn *c = ex->conn;
    const opsc_host_api *api = c->api;
    char err[128];
    memcpy(&ex->cb, cb, cb->size < sizeof(ex->cb) ? cb->size : sizeof(ex->cb));
    ex->cb.size = sizeof(ex->cb);
    ex->ud = ud;
    ex->pty = req->pty;
    const char *become = req->become_user && *req->become_user ? req->become_user : NULL;
    const char *pw = become ? req->become_password : NULL;
    ex->cmd = tp_wrap_command(api, req->command, req->env, req->cwd, become, pw != NULL, err,
                              sizeof(err));
    if (!ex->cmd)
        return OPSC_EINVAL;
    if (become && !(ex->become_user = api->strdup(become)))
        return OPSC_ENOMEM;
    if (pw) {
        if (!(ex->become_pw = api->strdup(pw)))
            return OPSC_ENOMEM;
        if (push_password(ex, pw) < 0)
            return OPSC_ENOMEM;
    }
    ex->in_hold = become != NULL;
    ex->in_eof_req = !req->stdin_open;
    if (req->timeout_ms) {
        uv_timer_init(c->loop, &ex->timer);
        ex->timer.data = ex;
        ex->timer_init = true;
        uv_timer_start(&ex->timer, timeout_cb, req->timeout_ms, 0);
    }
    return 0;
}

int ssh_exec_start(opsc_conn *c, const opsc_exec_req *req, const opsc_exec_cb *cb, void *ud,
                   opsc_exec **out)
{
    if (!c || !req || !req->command || !cb || !cb->on_done || !out)
        return OPSC_EINVAL;
    if (c->state == C_BROKEN)
        return c->err_code ? c->err_code : OPSC_ECONNRESET;
    if (c->closing || c->state != C_READY)
        return OPSC_ESTATE;
    /* One channel stays free for the kill helper of a cancel. */
    if (cb->on_done != on_killer_done && c->nexec + 1 >= (unsigned)c->p->cfg.max_channels)
        return OPSC_EBUSY;
    opsc_exec *ex = c->api->calloc(1, sizeof(*ex));
    if (!ex)
        return OPSC_ENOMEM;
    ex->conn = c;
    int rc = exec_init(ex, req, cb, ud);
    if (rc < 0) {
        free_fields(ex);
        c->api->free(ex);
        return rc;
    }
    /* Append: the pump runs commands in the order they came. */
    opsc_exec **pp = &c->execs;
    opsc_exec *prev = NULL;
    while (*pp) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    ex->prev = prev;
    *pp = ex;
    if (cb->on_done != on_killer_done)
        c->nexec++;
    *out = ex;
    ssh_conn_kick(c);
    return 0;
}

int ssh_exec_write(opsc_exec *ex, const char *data, size_t len)
{
    if (ex->st == EX_DONE || ex->in_eof_req)
        return OPSC_ESTATE;
    if (len == 0) {
        ex->in_eof_req = true;
    } else {
        int rc = queue_push(ex, data, len, false);
        if (rc < 0)
            return rc;
        ex->in_was_full = true;
    }
    ssh_conn_kick(ex->conn);
    return 0;
}

void ssh_exec_pause(opsc_exec *ex)
{
    ex->paused = true;
}

void ssh_exec_resume(opsc_exec *ex)
{
    if (!ex->paused)
        return;
    ex->paused = false;
    ssh_conn_kick(ex->conn);
}

void ssh_exec_cancel(opsc_exec *ex)
{
    ex_stop(ex, OPSC_ECANCELED);
}
