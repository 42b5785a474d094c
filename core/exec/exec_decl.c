/* exec_decl.c - declarative steps: render the step type's template, run it through the target's
 * transport on the pooled connection, read outputs by the step's rule. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "exec_internal.h"
#include "log.h"
#include "steptype.h"
#include "util.h"

ex_cmd *ex_cmd_new(ex_target *t, opsc_output_rule rule, size_t capture_limit, bool log_output)
{
    ex_cmd *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->t = t;
    c->rule = rule;
    c->capture_limit = capture_limit;
    c->log_output = log_output;
    return c;
}

void ex_cmd_free(ex_cmd *c)
{
    if (!c)
        return;
    sb_free(&c->lines[0].part);
    sb_free(&c->lines[1].part);
    for (int i = 0; i < 2; i++) {
        if (c->held[i].buf)
            secure_zero(c->held[i].buf, c->held[i].len);
        sb_free(&c->held[i]);
    }
    sb_free(&c->out);
    sb_free(&c->err);
    free(c->last_line);
    free(c->command);
    json_decref(c->outputs);
    free(c);
}

/* ---- a command on the lease ------------------------------------------------------------ */

static void on_output(void *ud, int stream, const char *data, size_t len)
{
    ex_cmd_output(ud, stream, data, len);
}

/* The connection is reused unless the transport says it cannot take more. */
static bool conn_broken(ex_target *t, const opsc_exec_result *res)
{
    const opsc_transport *tp = t->lease ? pool_lease_transport(t->lease) : NULL;
    if (!tp)
        return false;
    if (tp->conn_usable)
        return !tp->conn_usable(pool_lease_conn(t->lease));
    return res->status < 0 && res->status != OPSC_ECANCELED && res->status != OPSC_ETIMEDOUT;
}

static void on_done(void *ud, const opsc_exec_result *res)
{
    ex_cmd *c = ud;
    c->h = NULL;
    if (c->t && c->t->process) {
        free(c->t->process);
        c->t->process = NULL;
        ex_mark_target(c->t);
    }
    ex_cmd_end_streams(c);
    if (c->t && conn_broken(c->t, res))
        ex_target_release(c->t, true);
    c->done(c, res);
}

/* Kept in the run target's record while the command runs: a daemon that
 * dies meanwhile finds it at start-up and stops those processes. */
static void on_started(void *ud, const char *handle)
{
    ex_cmd *c = ud;
    if (!c->t || !handle)
        return;
    free(c->t->process);
    c->t->process = strdup(handle);
    ex_mark_target(c->t);
}

static const opsc_exec_cb exec_cb = {
    .size = sizeof(opsc_exec_cb),
    .on_output = on_output,
    .on_done = on_done,
    .on_started = on_started,
};

int ex_cmd_start(ex_target *t, const char *command, const opsc_exec_req *req, ex_cmd *c)
{
    const opsc_transport *tp = pool_lease_transport(t->lease);
    opsc_exec_req r = req ? *req : (opsc_exec_req){0};
    r.size = sizeof(r);
    r.command = command;
    c->tp = tp;
    int rc = tp->exec(pool_lease_conn(t->lease), &r, &exec_cb, c, &c->h);
    if (rc < 0) {
        c->h = NULL;
        if (rc != OPSC_ENOTSUP && rc != OPSC_EINVAL)
            ex_target_release(t, true);
    }
    return rc;
}

void ex_cmd_cancel(ex_cmd *c)
{
    if (c && c->h && c->tp->exec_cancel)
        c->tp->exec_cancel(c->h);
}

/* ---- the declarative step ------------------------------------------------------------------ */

static void decl_done(ex_cmd *c, const opsc_exec_result *res)
{
    ex_target *t = c->t;
    char err[512] = "";
    json_t *outputs = NULL;
    int state = EX_FAILED;
    t->cmd = NULL;
    if (res->status < 0) {
        snprintf(err, sizeof(err), "%s", res->error ? res->error : opsc_strerror(res->status));
    } else if (res->exit_signal) {
        snprintf(err, sizeof(err), "killed by signal %s", res->exit_signal);
    } else {
        outputs = ex_cmd_outputs(c, err, sizeof(err));
        if (res->exit_code != 0)
            snprintf(err, sizeof(err), "exit code %d", res->exit_code);
        else if (outputs && ex_outputs_check(t, outputs, err, sizeof(err)) == 0)
            state = EX_SUCCEEDED;
    }
    bool has_exit = res->status == 0 && !res->exit_signal;
    int code = res->exit_code;
    ex_cmd_free(c);
    ex_step_finish(t, state, code, has_exit, outputs, *err ? err : NULL);
}

static void run_command(ex_target *t)
{
    ex_cmd *c = t->cmd;
    t->act = ACT_EXEC;
    int rc = ex_cmd_start(t, c->command, NULL, c);
    if (rc < 0) {
        char err[160];
        snprintf(err, sizeof(err), "the transport could not start the command: %s",
                 opsc_strerror(rc));
        t->cmd = NULL;
        ex_cmd_free(c);
        ex_step_finish(t, EX_FAILED, 0, false, NULL, err);
    }
}

static void on_lease(ex_target *t, int status, const char *error)
{
    if (status < 0) {
        char err[512];
        snprintf(err, sizeof(err), "cannot connect to %s: %s",
                 json_string_value(json_object_get(t->rec, "name")), error);
        ex_cmd_free(t->cmd);
        t->cmd = NULL;
        ex_step_finish(t, EX_FAILED, 0, false, NULL, err);
        return;
    }
    run_command(t);
}

void ex_decl_start(ex_target *t, json_t *params)
{
    const job_step *s = &t->run->plan->steps[t->step];
    const tpl *tp = steptype_template(s->st, t->os_family);
    json_t *ctx = json_pack("{s:o, s:O, s:O, s:O}", "params", params, "target", t->rec, "steps",
                            t->steps_ctx, "run", t->run->ctx_run);
    char *command = NULL;
    tpl_err te = {0};
    int rc = tp && ctx ? tpl_render_str(tp, ctx, &command, &te) : OPSC_EINVAL;
    json_decref(ctx);
    if (rc < 0) {
        char err[600];
        snprintf(err, sizeof(err), "rendering %s for %s: %d:%d: %s", s->st->name,
                 t->os_family ? t->os_family : "?", te.line, te.col,
                 tp ? te.msg : "no template for this OS family");
        free(command);
        ex_redact_inplace(t->run, err);
        ex_step_finish(t, EX_FAILED, 0, false, NULL, err);
        return;
    }
    ex_cmd *c =
        ex_cmd_new(t, s->st->desc->output_rule, (size_t)t->run->ex->opts.capture_limit, true);
    if (!c) {
        free(command);
        ex_step_finish(t, EX_FAILED, 0, false, NULL, "out of memory");
        return;
    }
    c->command = command;
    c->done = decl_done;
    t->cmd = c;
    t->act = ACT_ACQUIRE;
    rc = ex_target_lease(t, on_lease);
    if (rc == 1)
        run_command(t);
    else if (rc < 0)
        on_lease(t, rc, opsc_strerror(rc));
}
