/* wr_exec.c - the transport's exec entry points: PowerShell commands with live output and stdin. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "wr_internal.h"

struct opsc_exec {
    wr_op *op;
    opsc_exec_cb cb;
    void *ud;
};

static void ex_output(void *ud, int stream, const char *data, size_t len)
{
    opsc_exec *ex = ud;
    ex->cb.on_output(ex->ud, stream, data, len);
}

static void ex_drained(void *ud)
{
    opsc_exec *ex = ud;
    if (ex->cb.on_stdin_drained)
        ex->cb.on_stdin_drained(ex->ud);
}

static void ex_done(void *ud, int status, int exit_code, const char *error)
{
    opsc_exec *ex = ud;
    opsc_exec_result res = {
        .size = sizeof res,
        .status = status,
        .exit_code = status == 0 ? exit_code : -1,
        .error = status ? error : NULL,
    };
    opsc_exec_cb cb = ex->cb;
    void *hud = ex->ud;
    free(ex);
    cb.on_done(hud, &res);
}

/* The shell names the command's processes for a later daemon (kill_orphan). */
static void ex_started(void *ud, const char *shell_id)
{
    opsc_exec *ex = ud;
    char handle[160];
    if (ex->cb.on_started && shell_id &&
        (size_t)snprintf(handle, sizeof handle, "winrm:%s", shell_id) < sizeof handle)
        ex->cb.on_started(ex->ud, handle);
}

int wr_exec(opsc_conn *conn, const opsc_exec_req *req, const opsc_exec_cb *cb, void *ud,
            opsc_exec **out)
{
    if (!req || !req->command || !cb ||
        cb->size < offsetof(opsc_exec_cb, on_done) + sizeof(void *) || !cb->on_output ||
        !cb->on_done)
        return OPSC_EINVAL;
    /* Windows has no sudo to switch users inside a WinRM shell: the credential
     * decides who runs the command. */
    if (req->become_user && req->become_user[0])
        return OPSC_ENOTSUP;
    opsc_exec *ex = calloc(1, sizeof *ex);
    if (!ex)
        return OPSC_ENOMEM;
    /* A host built with an older SDK passes a smaller table: copy what it has. */
    memcpy(&ex->cb, cb, cb->size < sizeof ex->cb ? cb->size : sizeof ex->cb);
    ex->ud = ud;
    wr_run_req rr = {
        .script = req->command,
        .env = req->env,
        .cwd = req->cwd,
        .stdin_open = req->stdin_open,
        .timeout_ms = req->timeout_ms,
        .decode_clixml = true,
    };
    wr_run_cb rcb = {.on_output = ex_output, .on_done = ex_done, .on_started = ex_started};
    rcb.on_drained = ex_drained;
    int rc = wr_run_start(conn, &rr, &rcb, ex, &ex->op);
    if (rc) {
        free(ex);
        return rc;
    }
    *out = ex;
    return 0;
}

int wr_exec_write(opsc_exec *ex, const char *data, size_t len)
{
    return wr_run_write(ex->op, data, len);
}

void wr_exec_pause(opsc_exec *ex)
{
    wr_run_pause(ex->op);
}

void wr_exec_resume(opsc_exec *ex)
{
    wr_run_resume(ex->op);
}

void wr_exec_cancel(opsc_exec *ex)
{
    wr_run_stop(ex->op, OPSC_ECANCELED);
}
