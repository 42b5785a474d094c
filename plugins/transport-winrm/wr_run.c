/* wr_run.c - one remote command on a WinRM shell: Command, Receive loop, Send stdin, Signal,
 * result. */
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "wr_internal.h"

enum { P_SHELL_DELETE, P_SHELL_CREATE, P_COMMAND, P_RUNNING, P_DONE };

static void pump(wr_op *op);

static unsigned op_timeout_s(const wr_op *op)
{
    return (unsigned)(op->c->pl->set.operation_timeout_ms / 1000);
}

/* ---- completion --------------------------------------------------------------- */

static void free_env(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

static char **copy_env(const char *const *env, bool *oom)
{
    size_t n = 0;
    while (env && env[n])
        n++;
    if (!n)
        return NULL;
    char **out = calloc(n + 1, sizeof *out);
    for (size_t i = 0; out && i < n; i++) {
        out[i] = strdup(env[i]);
        if (!out[i]) {
            free_env(out);
            out = NULL;
        }
    }
    *oom |= !out;
    return out;
}

static void op_free_handle(uv_handle_t *h)
{
    wr_op *op = h->data;
    opsc_conn *c = op->c;
    free_env(op->env);
    free(op->cwd);
    wr_cmdline_free(&op->cmd);
    wr_buf_wipe(&op->in_q);
    wr_clixml_free(&op->clixml);
    free(op->shell_key);
    free(op);
    c->ops_closing--;
    wr_conn_op_done(c);
}

static void on_complete(uv_timer_t *t)
{
    wr_op *op = t->data;
    opsc_conn *c = op->c;
    int status = op->fail_status ? op->fail_status : op->stop_status;
    if (!status && !op->done_seen)
        status = OPSC_EPROTO;
    if (op->decode_clixml) {
        wr_buf out = {0};
        wr_clixml_feed(&op->clixml, "", 0, true, &out);
        if (out.len)
            op->cb.on_output(op->ud, OPSC_STDERR, out.p, out.len);
        wr_buf_free(&out);
    }
    const char *err = op->fail_err[0] ? op->fail_err : NULL;
    if (!err && op->stop_status == OPSC_ETIMEDOUT)
        err = "the command ran out of time and was terminated";
    if (!err && op->stop_status == OPSC_ECANCELED)
        err = "the command was cancelled and terminated";
    c->op = NULL;
    c->ops_closing++;
    op->cb.on_done(op->ud, status, op->exit_code, err);
    uv_close((uv_handle_t *)&op->timer, op_free_handle);
}

/* Completion always goes through the loop, so no caller sees its callback re-entrantly. */
static void complete_soon(wr_op *op)
{
    if (op->phase == P_DONE)
        return;
    op->phase = P_DONE;
    uv_timer_stop(&op->timer);
    uv_timer_start(&op->timer, on_complete, 0, 0);
}

static void fail(wr_op *op, int status, const char *error)
{
    if (!op->fail_status) {
        op->fail_status = status;
        wr_copy(op->fail_err, sizeof op->fail_err, error ? error : opsc_strerror(status));
    }
}

/* A transport failure: the connection cannot be trusted any more. */
static void broken(wr_op *op, int status, const char *error)
{
    opsc_conn *c = op->c;
    fail(op, status, error);
    c->broken = true;
    for (int i = 0; i < 2; i++)
        wr_chan_abort(&c->ch[i]);
    op->recv_busy = op->send_busy = false;
    complete_soon(op);
}

static bool fault_fails(wr_op *op, wr_resp *resp, const char *what)
{
    if (!resp->fault)
        return false;
    char msg[600], full[700];
    wr_soap_fault_describe(resp, msg, sizeof msg);
    snprintf(full, sizeof full, "%s: %s", what, msg);
    fail(op, resp->fault_code == WR_FAULT_ACCESS_DENIED ? OPSC_EACCES : OPSC_EREMOTE, full);
    return true;
}

/* ---- shell and command ---------------------------------------------------------- */

static int call0(wr_op *op, wr_buf *soap, const wr_hdr *hdr, uint32_t timeout_ms, wr_call_cb cb)
{
    int rc = wr_chan_call(&op->c->ch[0], soap, hdr->message_id, timeout_ms, cb, op);
    wr_buf_free(soap);
    if (rc)
        fail(op, rc, op->c->ch[0].sync_err);
    else
        op->send_busy = true;
    return rc;
}

static void on_command(void *ud, int status, wr_resp *resp, const char *error);
static void on_create(void *ud, int status, wr_resp *resp, const char *error);

/* A reply on the control channel: NULL when the call failed (the op is then ending). */
static wr_op *control_reply(void *ud, int status, const char *error)
{
    wr_op *op = ud;
    op->send_busy = false;
    if (status < 0) {
        broken(op, status, error);
        return NULL;
    }
    return op;
}

static int send_command(wr_op *op)
{
    opsc_conn *c = op->c;
    wr_hdr hdr;
    wr_buf soap = {0};
    wr_conn_hdr(c, &hdr, c->shell_id, 60);
    /* powershell.exe without cmd.exe around it: no cmd parsing of the base64 and the
     * 32767-character CreateProcess limit; POSIX hosts get the line as it is. */
    wr_soap_command(&soap, &hdr, op->cmd.exe.p, op->cmd.args.len ? op->cmd.args.p : NULL, false);
    op->phase = P_COMMAND;
    return call0(op, &soap, &hdr, 120000, on_command);
}

static int send_create(wr_op *op)
{
    opsc_conn *c = op->c;
    wr_hdr hdr;
    wr_buf soap = {0};
    wr_conn_hdr(c, &hdr, NULL, 60);
    wr_soap_create(&soap, &hdr, op->cwd, (const char *const *)op->env,
                   (unsigned)c->pl->set.codepage);
    op->phase = P_SHELL_CREATE;
    return call0(op, &soap, &hdr, 120000, on_create);
}

static void on_delete_old(void *ud, int status, wr_resp *resp, const char *error)
{
    wr_op *op = ud;
    (void)resp;
    op->send_busy = false;
    if (status < 0) {
        broken(op, status, error);
        return;
    }
    if (op->stop_status || send_create(op))
        complete_soon(op);
}

static int ensure_shell(wr_op *op)
{
    opsc_conn *c = op->c;
    bool same = c->shell_id && c->shell_key && !strcmp(c->shell_key, op->shell_key) &&
                c->shell_commands < (unsigned)c->pl->set.commands_per_shell;
    if (same)
        return send_command(op);
    if (!c->shell_id)
        return send_create(op);
    wr_hdr hdr;
    wr_buf soap = {0};
    wr_conn_hdr(c, &hdr, c->shell_id, 30);
    wr_soap_delete(&soap, &hdr);
    free(c->shell_id);
    c->shell_id = NULL;
    op->phase = P_SHELL_DELETE;
    return call0(op, &soap, &hdr, 60000, on_delete_old);
}

static void on_create(void *ud, int status, wr_resp *resp, const char *error)
{
    wr_op *op = control_reply(ud, status, error);
    if (!op)
        return;
    opsc_conn *c = op->c;
    if (fault_fails(op, resp, "creating the remote shell") || !resp->shell_id) {
        fail(op, OPSC_EPROTO, "CreateResponse without a ShellId");
        complete_soon(op);
        return;
    }
    free(c->shell_id);
    free(c->shell_key);
    c->shell_id = strdup(resp->shell_id);
    c->shell_key = strdup(op->shell_key);
    c->shell_commands = 0;
    if (!c->shell_id || !c->shell_key) {
        fail(op, OPSC_ENOMEM, NULL);
        complete_soon(op);
        return;
    }
    if (op->stop_status || send_command(op))
        complete_soon(op);
}

static void on_command(void *ud, int status, wr_resp *resp, const char *error)
{
    wr_op *op = control_reply(ud, status, error);
    if (!op)
        return;
    opsc_conn *c = op->c;
    if (resp->fault && resp->fault_code == WR_FAULT_UNKNOWN_SHELL && !op->shell_retried) {
        /* The shell expired on the host (idle timeout, restart): make a new one, once. */
        op->shell_retried = true;
        free(c->shell_id);
        c->shell_id = NULL;
        if (send_create(op))
            complete_soon(op);
        return;
    }
    if (fault_fails(op, resp, "starting the command") || !resp->command_id) {
        fail(op, OPSC_EPROTO, "CommandResponse without a CommandId");
        complete_soon(op);
        return;
    }
    wr_copy(op->command_id, sizeof op->command_id, resp->command_id);
    c->shell_commands++;
    op->phase = P_RUNNING;
    if (op->cb.on_started)
        op->cb.on_started(op->ud, c->shell_id);
    pump(op);
}

/* ---- running ----------------------------------------------------------------- */

static int on_stream(void *ud, int stream, const uint8_t *data, size_t len)
{
    wr_op *op = ud;
    if (stream == OPSC_STDERR && op->decode_clixml) {
        wr_buf out = {0};
        wr_clixml_feed(&op->clixml, (const char *)data, len, false, &out);
        if (out.len)
            op->cb.on_output(op->ud, OPSC_STDERR, out.p, out.len);
        wr_buf_free(&out);
        return 0;
    }
    op->cb.on_output(op->ud, stream, (const char *)data, len);
    return 0;
}

static void on_receive(void *ud, int status, wr_resp *resp, const char *error)
{
    wr_op *op = ud;
    if (status < 0) {
        op->recv_busy = false;
        broken(op, status, error);
        return;
    }
    /* recv_busy stays set while the output is handed on: a callback that writes stdin
     * or resumes must not start another Receive before this one's CommandState is seen. */
    if (resp->fault && resp->fault_code != WR_FAULT_TIMED_OUT) {
        fault_fails(op, resp, "receiving output");
        op->done_seen = true; /* nothing more will come: terminate and report */
    } else if (!resp->fault) {
        if (wr_soap_streams(resp, op->command_id, on_stream, op)) {
            fail(op, OPSC_EPROTO, "ReceiveResponse with a stream that is not base64");
            op->done_seen = true;
        }
        if (resp->done) {
            op->done_seen = true;
            op->exit_code = resp->has_exit_code ? resp->exit_code : 0;
        }
    }
    op->recv_busy = false; /* a TimedOut fault is the normal "nothing yet": poll again */
    pump(op);
}

static void start_receive(wr_op *op)
{
    opsc_conn *c = op->c;
    wr_hdr hdr;
    wr_buf soap = {0};
    wr_conn_hdr(c, &hdr, c->shell_id, op_timeout_s(op));
    wr_soap_receive(&soap, &hdr, op->command_id);
    uint32_t to = (uint32_t)c->pl->set.operation_timeout_ms + 30000;
    int rc = wr_chan_call(&c->ch[1], &soap, hdr.message_id, to, on_receive, op);
    wr_buf_free(&soap);
    if (rc)
        broken(op, rc, c->ch[1].sync_err);
    else
        op->recv_busy = true;
}

static void on_send(void *ud, int status, wr_resp *resp, const char *error)
{
    wr_op *op = control_reply(ud, status, error);
    if (!op)
        return;
    if (fault_fails(op, resp, "sending stdin")) {
        wr_buf_reset(&op->in_q);
        op->in_open = false;
    } else if (!op->in_q.len && op->notify_drained) {
        /* Everything written so far is on the wire (also after the last, closing Send). */
        op->notify_drained = false;
        if (op->cb.on_drained)
            op->cb.on_drained(op->ud);
        if (op->phase == P_DONE)
            return;
    }
    pump(op);
}

static void send_stdin(wr_op *op)
{
    opsc_conn *c = op->c;
    /* Send as much as fits in one envelope once base64-encoded. */
    size_t room = ((size_t)c->pl->set.max_envelope - 4096) / 4 * 3;
    size_t n = op->in_q.len < room ? op->in_q.len : room;
    bool end = op->in_eof && n == op->in_q.len;
    wr_hdr hdr;
    wr_buf soap = {0};
    wr_conn_hdr(c, &hdr, c->shell_id, 60);
    wr_soap_send(&soap, &hdr, op->command_id, op->in_q.p ? op->in_q.p : "", n, end);
    wr_buf_consume(&op->in_q, n);
    if (end) {
        op->in_sent_eof = true;
        op->in_open = false;
    }
    if (call0(op, &soap, &hdr, 120000, on_send))
        broken(op, op->fail_status, op->fail_err);
}

static void on_signal(void *ud, int status, wr_resp *resp, const char *error)
{
    wr_op *op = control_reply(ud, status, error);
    if (!op)
        return;
    /* A command that already ended may be unknown to the host: not an error. */
    (void)resp;
    pump(op);
}

static void send_signal(wr_op *op)
{
    opsc_conn *c = op->c;
    wr_hdr hdr;
    wr_buf soap = {0};
    wr_conn_hdr(c, &hdr, c->shell_id, 60);
    wr_soap_signal(&soap, &hdr, op->command_id, WR_SIGNAL_TERMINATE);
    op->signal_sent = true;
    if (call0(op, &soap, &hdr, 60000, on_signal))
        broken(op, op->fail_status, op->fail_err);
}

static void pump(wr_op *op)
{
    if (op->phase != P_RUNNING)
        return;
    bool stopping = op->stop_status || op->done_seen;
    if (stopping) {
        if (op->recv_busy && op->stop_status) {
            wr_chan_abort(&op->c->ch[1]);
            op->recv_busy = false;
        }
        if (!op->send_busy && !op->signal_sent) {
            send_signal(op);
            return;
        }
        if (op->signal_sent && !op->send_busy && !op->recv_busy)
            complete_soon(op);
        return;
    }
    if (!op->send_busy && (op->in_q.len || (op->in_eof && !op->in_sent_eof)))
        send_stdin(op);
    if (op->phase == P_RUNNING && !op->recv_busy && !op->paused)
        start_receive(op);
}

/* ---- public ------------------------------------------------------------------ */

static void on_timeout(uv_timer_t *t)
{
    wr_run_stop(t->data, OPSC_ETIMEDOUT);
}

static char *shell_key(const wr_run_req *req)
{
    wr_buf k = {0};
    wr_buf_adds(&k, req->cwd ? req->cwd : "");
    for (size_t i = 0; req->env && req->env[i]; i++) {
        wr_buf_adds(&k, "\x1f");
        wr_buf_adds(&k, req->env[i]);
    }
    if (k.oom || !k.p) {
        wr_buf_free(&k);
        return strdup("");
    }
    return k.p;
}

int wr_run_start(opsc_conn *c, const wr_run_req *req, const wr_run_cb *cb, void *ud, wr_op **out)
{
    if (c->closing || c->broken)
        return OPSC_ESTATE;
    if (c->op)
        return OPSC_EBUSY;
    wr_op *op = calloc(1, sizeof *op);
    if (!op)
        return OPSC_ENOMEM;
    *op = (wr_op){.c = c, .cb = *cb, .ud = ud};
    bool oom = false;
    op->env = copy_env(req->env, &oom);
    op->cwd = req->cwd ? strdup(req->cwd) : NULL;
    oom |= req->cwd && !op->cwd;
    op->in_open = req->stdin_open;
    op->in_eof = !req->stdin_open;
    op->decode_clixml = req->decode_clixml && c->opt.dialect == WR_POWERSHELL;
    op->shell_key = shell_key(req);
    wr_script_command(&op->cmd, c->opt.dialect, req->script);
    if (op->cmd.stdin_prefix.len) {
        wr_buf_add(&op->in_q, op->cmd.stdin_prefix.p, op->cmd.stdin_prefix.len);
        op->in_eof = !req->stdin_open;
    }
    if (oom || !op->shell_key || op->cmd.exe.oom || op->cmd.args.oom || op->in_q.oom) {
        free_env(op->env);
        free(op->cwd);
        wr_cmdline_free(&op->cmd);
        wr_buf_free(&op->in_q);
        free(op->shell_key);
        free(op);
        return OPSC_ENOMEM;
    }
    uv_timer_init(c->pl->api->loop(), &op->timer);
    op->timer.data = op;
    c->op = op;
    int rc = ensure_shell(op);
    if (rc) {
        /* Nothing went out: undo without calling back. */
        c->op = NULL;
        c->ops_closing++;
        op->cb.on_done = NULL;
        uv_close((uv_handle_t *)&op->timer, op_free_handle);
        return rc;
    }
    if (req->timeout_ms)
        uv_timer_start(&op->timer, on_timeout, req->timeout_ms, 0);
    *out = op;
    return 0;
}

int wr_run_write(wr_op *op, const char *data, size_t len)
{
    if (!op->in_open || op->in_eof || op->phase == P_DONE)
        return OPSC_ESTATE;
    if (len == 0) {
        op->in_eof = true;
    } else {
        wr_buf_add(&op->in_q, data, len);
        if (op->in_q.oom)
            return OPSC_ENOMEM;
        op->notify_drained = true;
    }
    pump(op);
    return 0;
}

size_t wr_run_queued(const wr_op *op)
{
    return op->in_q.len;
}

void wr_run_pause(wr_op *op)
{
    op->paused = true;
}

void wr_run_resume(wr_op *op)
{
    if (!op->paused)
        return;
    op->paused = false;
    pump(op);
}

void wr_run_stop(wr_op *op, int status)
{
    if (op->phase == P_DONE || op->stop_status)
        return;
    op->stop_status = status;
    wr_buf_reset(&op->in_q);
    if (op->phase == P_RUNNING)
        pump(op);
    else if (!op->send_busy)
        complete_soon(op);
    /* else: the Create/Command reply comes back and sees stop_status. */
}
