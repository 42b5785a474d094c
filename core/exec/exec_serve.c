/* exec_serve.c - the loop's side of the step API: commands and file copies for a waiting worker,
 * through the target's pooled connection, and the step's log lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "exec_internal.h"
#include "log.h"
#include "util.h"

static uint32_t remaining_ms(const ex_imp *imp)
{
    uint64_t now = clock_mono_ms();
    return imp->deadline_mono > now ? (uint32_t)(imp->deadline_mono - now) : 1;
}

static void log_line(ex_target *t, int level, const char *text)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    const job_step *s = &t->run->plan->steps[t->step];
    strbuf b = STRBUF_INIT;
    if (level >= 0 && level < 2)
        sb_printf(&b, "%s: ", names[level]);
    sb_puts(&b, text);
    if (b.len == 0 || b.buf[b.len - 1] != '\n')
        sb_append(&b, "\n", 1);
    if (!b.oom)
        ex_log(t, s->id, "step", b.buf, b.len);
    sb_free(&b);
}

/* ---- step_exec --------------------------------------------------------------------------------
 */

static char *copy_buf(const strbuf *b)
{
    char *s = malloc(b->len + 1);
    if (s) {
        if (b->len)
            memcpy(s, b->buf, b->len);
        s[b->len] = '\0';
    }
    return s;
}

static void exec_done(ex_cmd *c, const opsc_exec_result *res)
{
    ex_req *q = c->ud;
    ex_imp *imp = q->imp;
    imp->cmd = NULL;
    free(imp->last_out);
    free(imp->last_err);
    free(imp->last_sig);
    imp->last_out = copy_buf(&c->out);
    imp->last_err = copy_buf(&c->err);
    imp->last_sig = res->exit_signal ? strdup(res->exit_signal) : NULL;
    opsc_step_exec_result r = {
        .size = sizeof(r),
        .exit_code = res->exit_code,
        .exit_signal = imp->last_sig,
        .out = imp->last_out,
        .out_len = c->out.len,
        .err = imp->last_err,
        .err_len = c->err.len,
        .truncated = c->truncated,
    };
    size_t n = q->res->size && q->res->size < sizeof(r) ? q->res->size : sizeof(r);
    memcpy(q->res, &r, n);
    q->res->size = n;
    if (res->status < 0 && c->t)
        ex_logf(c->t, "system", "command failed: %s",
                res->error ? res->error : opsc_strerror(res->status));
    int rc = res->status;
    if (rc < 0 && atomic_load(&imp->cancelled))
        rc = OPSC_ECANCELED;
    ex_cmd_free(c);
    ex_req_complete(q, rc);
}

static int start_exec(ex_target *t, ex_req *q)
{
    ex_imp *imp = q->imp;
    const opsc_step_exec_opts *o = &q->opts;
    size_t cap = o->capture_limit ? o->capture_limit : (size_t)1 << 20;
    ex_cmd *c = ex_cmd_new(t, OPSC_OUTPUT_NONE, cap, o->log_output);
    if (!c)
        return OPSC_ENOMEM;
    c->capture_err = true;
    c->done = exec_done;
    c->ud = q;
    opsc_exec_req req = {
        .size = sizeof(req),
        .stdin_open = o->stdin_data != NULL,
        .timeout_ms = o->timeout_ms ? o->timeout_ms : remaining_ms(imp),
    };
    if (o->log_output && !o->sensitive)
        ex_logf(t, "system", "$ %.900s", q->command);
    int rc = ex_cmd_start(t, q->command, &req, c);
    if (rc < 0) {
        ex_cmd_free(c);
        return rc;
    }
    imp->cmd = c;
    if (o->stdin_data && c->tp->exec_write) {
        if (o->stdin_len)
            c->tp->exec_write(c->h, o->stdin_data, o->stdin_len);
        c->tp->exec_write(c->h, "", 0);
    }
    return 0;
}

/* ---- files ----------------------------------------------------------------------------------- */

static void xfer_done(void *ud, const opsc_xfer_result *res)
{
    ex_req *q = ud;
    ex_imp *imp = q->imp;
    imp->xfer = NULL;
    imp->xfer_tp = NULL;
    if (res->status < 0 && imp->t)
        ex_logf(imp->t, "system", "%s %s failed: %s", q->kind == REQ_PUT ? "copy to" : "copy from",
                q->remote, res->error ? res->error : opsc_strerror(res->status));
    ex_req_complete(q,
                    atomic_load(&imp->cancelled) && res->status < 0 ? OPSC_ECANCELED : res->status);
}

static int start_xfer(ex_target *t, ex_req *q)
{
    ex_imp *imp = q->imp;
    const opsc_transport *tp = pool_lease_transport(t->lease);
    int (*fn)(opsc_conn *, const opsc_xfer_req *, opsc_xfer_cb, void *, opsc_xfer **) =
        q->kind == REQ_PUT ? tp->put_file : tp->get_file;
    if (!fn)
        return OPSC_ENOTSUP;
    opsc_xfer_req x = {
        .size = sizeof(x),
        .local_path = q->local,
        .remote_path = q->remote,
        .mode = q->mode,
        .timeout_ms = remaining_ms(imp),
    };
    imp->xfer_tp = tp;
    int rc = fn(pool_lease_conn(t->lease), &x, xfer_done, q, &imp->xfer);
    if (rc < 0) {
        imp->xfer = NULL;
        imp->xfer_tp = NULL;
    }
    return rc;
}

/* ---- dispatch ------------------------------------------------------------------------------- */

static void start_op(ex_target *t, ex_req *q)
{
    int rc = q->kind == REQ_EXEC ? start_exec(t, q) : start_xfer(t, q);
    if (rc < 0)
        ex_req_complete(q, rc);
}

static void on_lease(ex_target *t, int status, const char *error)
{
    ex_req *q = t->imp ? t->imp->inflight : NULL;
    if (!q)
        return;
    if (status < 0) {
        ex_logf(t, "system", "cannot connect to %s: %s",
                json_string_value(json_object_get(t->rec, "name")), error);
        ex_req_complete(q, status);
        return;
    }
    if (atomic_load(&q->imp->cancelled)) {
        ex_req_complete(q, OPSC_ECANCELED);
        return;
    }
    start_op(t, q);
}

void ex_req_serve(exec *ex, ex_req *q)
{
    (void)ex;
    ex_imp *imp = q->imp;
    ex_target *t = imp->t;
    if (q->kind == REQ_LOG) {
        if (t)
            log_line(t, q->level, q->text);
        free(q->text);
        free(q);
        return;
    }
    if (!t || atomic_load(&imp->cancelled)) {
        ex_req_complete(q, OPSC_ECANCELED);
        return;
    }
    imp->inflight = q;
    int rc = ex_target_lease(t, on_lease);
    if (rc == 1)
        start_op(t, q);
    else if (rc < 0)
        on_lease(t, rc, opsc_strerror(rc));
}
