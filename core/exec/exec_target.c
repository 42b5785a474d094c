/* exec_target.c - one target of a run: its steps in order, `when`, retries, timeouts, the lease. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "exec_internal.h"
#include "log.h"
#include "steptype.h"
#include "util.h"

static void next_step(ex_target *t);

static json_t *time_or_null(int64_t ms)
{
    char at[RFC3339_LEN];
    if (ms <= 0)
        return json_null();
    rfc3339_format(ms, at);
    return json_string(at);
}

/* ---- events ------------------------------------------------------------------------------- */

static void publish_target(ex_target *t)
{
    json_t *d = json_pack("{s:s, s:s, s:O}", "target_id", t->id, "state", ex_state_name(t->state),
                          "name", json_object_get(t->rec, "name"));
    if (d && t->error)
        json_object_set_new(d, "error", json_string(t->error));
    ex_publish(t->run, "run.target", d);
    ex_count_target(t);
    ex_mark_target(t);
}

static void publish_step(ex_target *t, uint32_t i)
{
    const ex_stepres *res = &t->steps[i];
    json_t *d =
        json_pack("{s:s, s:s, s:s, s:i}", "target_id", t->id, "step_id", t->run->plan->steps[i].id,
                  "state", ex_state_name(res->state), "attempt", res->attempts);
    if (d && res->has_exit)
        json_object_set_new(d, "exit_code", json_integer(res->exit_code));
    if (d && res->error)
        json_object_set_new(d, "error", json_string(res->error));
    if (d && res->outputs && ex_terminal(res->state))
        json_object_set(d, "outputs", res->outputs);
    ex_publish(t->run, "run.step", d);
    ex_count_step(t->run, res);
    ex_mark_target(t);
}

/* ---- the connection ------------------------------------------------------------------------ */

static void on_acquired(void *ud, int status, pool_lease *lease, const opsc_conn_info *info,
                        const char *error)
{
    ex_target *t = ud;
    t->wait = NULL;
    if (status == 0) {
        t->lease = lease;
        if (info && info->warning && !t->warned) {
            t->warned = true;
            ex_logf(t, "system", "warning: %s", info->warning);
        }
    }
    void (*cb)(ex_target *, int, const char *) = t->on_lease;
    t->on_lease = NULL;
    cb(t, status, error ? error : opsc_strerror(status));
}

int ex_target_lease(ex_target *t, void (*cb)(ex_target *t, int status, const char *error))
{
    if (t->lease)
        return 1;
    t->on_lease = cb;
    int rc = pool_acquire(t->run->ex->pool, t->id, on_acquired, t, &t->wait);
    if (rc < 0)
        t->on_lease = NULL;
    return rc;
}

void ex_target_release(ex_target *t, bool broken)
{
    if (!t->lease)
        return;
    pool_release(t->lease, broken);
    t->lease = NULL;
}

/* ---- the end of a target ------------------------------------------------------------------ */

static void end_target(ex_target *t, int state, const char *error)
{
    const job_plan *p = t->run->plan;
    ex_timer_stop(&t->timer);
    ex_timer_stop(&t->delay);
    ex_target_release(t, false);
    for (uint32_t i = 0; i < p->nsteps; i++)
        if (t->steps[i].state == EX_QUEUED) {
            t->steps[i].state = EX_SKIPPED;
            free(t->steps[i].error);
            t->steps[i].error =
                strdup(state == EX_SUCCEEDED || state == EX_FAILED || state == EX_TIMED_OUT
                           ? "not run: an earlier step failed"
                           : "not run: the target was stopped");
        }
    t->state = (uint8_t)state;
    t->finished_ms = clock_now_ms();
    if (error && !t->error)
        t->error = strdup(error);
    t->act = ACT_NONE;
    publish_target(t);
    ex_target_released(t);
    ex_run_target_ended(t);
}

void ex_target_end_unstarted(ex_target *t, int state, const char *why)
{
    t->state = (uint8_t)state;
    t->finished_ms = clock_now_ms();
    free(t->error);
    t->error = strdup(why);
    for (uint32_t i = 0; i < t->run->plan->nsteps; i++)
        t->steps[i].state = EX_SKIPPED;
    publish_target(t);
    ex_run_target_ended(t);
}

/* ---- a step's end ------------------------------------------------------------------------ */

static void set_steps_ctx(ex_target *t, uint32_t i)
{
    const ex_stepres *res = &t->steps[i];
    json_t *c =
        json_pack("{s:O?, s:s}", "outputs", res->outputs, "state", ex_state_name(res->state));
    if (!c)
        return;
    if (!res->outputs)
        json_object_set_new(c, "outputs", json_object());
    if (res->has_exit)
        json_object_set_new(c, "exit_code", json_integer(res->exit_code));
    json_object_set_new(t->steps_ctx, t->run->plan->steps[i].id, c);
}

static void on_retry(uv_timer_t *h)
{
    ex_target *t = h->data;
    ex_timer_stop(&t->delay);
    t->act = ACT_NONE;
    next_step(t);
}

static bool retry(ex_target *t, const job_step *s, ex_stepres *res)
{
    if (res->attempts > s->retries || t->abort || t->run->ex->stopping)
        return false;
    int64_t delay = s->retry_delay_ms;
    for (int i = 1; i < res->attempts && delay < 3600 * 1000; i++)
        delay *= 2;
    if (delay > 3600 * 1000)
        delay = 3600 * 1000;
    ex_logf(t, "system", "step %s: attempt %d of %d %s: %s; next attempt in %lld ms", s->id,
            res->attempts, s->retries + 1, ex_state_name(res->state), res->error ? res->error : "",
            (long long)delay);
    res->state = EX_RUNNING;
    publish_step(t, t->step);
    t->act = ACT_DELAY;
    ex_timer_start(t->run->ex, &t->delay, (uint64_t)delay, on_retry, t);
    return true;
}

void ex_step_finish(ex_target *t, int state, int exit_code, bool has_exit, json_t *outputs,
                    const char *error)
{
    const job_step *s = &t->run->plan->steps[t->step];
    ex_stepres *res = &t->steps[t->step];
    char why[160];
    ex_timer_stop(&t->timer);
    t->act = ACT_NONE;
    if (t->abort) {
        state = t->abort;
        snprintf(why, sizeof(why), "%s",
                 t->abort == EX_CANCELLED   ? "cancelled"
                 : t->abort == EX_TIMED_OUT ? "the run timed out"
                                            : "interrupted");
        error = why;
    } else if (t->step_timed_out) {
        state = EX_TIMED_OUT;
        snprintf(
            why, sizeof(why), "the step exceeded its timeout of %lld s",
            (long long)((s->timeout_ms ? s->timeout_ms : t->run->ex->opts.default_step_timeout_ms) /
                        1000));
        error = why;
    }
    t->step_timed_out = false;
    res->state = (uint8_t)state;
    res->has_exit = has_exit;
    res->exit_code = exit_code;
    json_decref(res->outputs);
    res->outputs = outputs;
    if (outputs)
        ex_redact_json(t->run, outputs);
    free(res->error);
    res->error = error ? ex_redact(t->run, strdup(error)) : NULL;
    res->finished_ms = clock_now_ms();
    bool failed = state == EX_FAILED || state == EX_TIMED_OUT;
    if (failed && retry(t, s, res))
        return;
    set_steps_ctx(t, t->step);
    publish_step(t, t->step);
    if (t->abort) {
        end_target(t, t->abort, res->error);
        return;
    }
    if (failed && !s->continue_on_failure) {
        char e[640];
        snprintf(e, sizeof(e), "step %s %s%s%.500s", s->id, ex_state_name(state),
                 res->error ? ": " : "", res->error ? res->error : "");
        end_target(t, state, e);
        return;
    }
    if (failed)
        ex_logf(t, "system", "step %s %s; on_failure is continue", s->id, ex_state_name(state));
    t->step++;
    next_step(t);
}

/* ---- stopping what runs now ---------------------------------------------------------------- */

static void stop_activity(ex_target *t)
{
    switch (t->act) {
    case ACT_ACQUIRE:
        if (t->wait)
            pool_acquire_cancel(t->wait);
        break;
    case ACT_EXEC:
        ex_cmd_cancel(t->cmd);
        break;
    case ACT_IMP:
        ex_imp_cancel(t->imp);
        break;
    case ACT_DELAY:
        ex_timer_stop(&t->delay);
        ex_step_finish(t, EX_CANCELLED, 0, false, NULL, NULL);
        break;
    case ACT_NONE:
        break;
    }
}

static void on_step_timeout(uv_timer_t *h)
{
    ex_target *t = h->data;
    ex_timer_stop(&t->timer);
    if (t->act == ACT_NONE || t->act == ACT_DELAY)
        return;
    t->step_timed_out = true;
    stop_activity(t);
}

void ex_target_abort(ex_target *t, int state)
{
    if (t->abort || ex_terminal(t->state))
        return;
    t->abort = (uint8_t)state;
    if (t->act == ACT_NONE)
        end_target(t, state, NULL);
    else
        stop_activity(t);
}

/* ---- the steps in order ------------------------------------------------------------------ */

static bool step_wanted(ex_target *t, const job_step *s)
{
    if (!s->when)
        return true;
    json_t *ctx = ex_ctx(t);
    bool yes = false;
    char err[320];
    if (!ctx || job_when_eval(s->when, ctx, &yes, err, sizeof(err)) < 0) {
        ex_logf(t, "system", "step %s: %s: the step is skipped", s->id, ctx ? err : "no memory");
        yes = false;
    }
    json_decref(ctx);
    return yes;
}

static void start_attempt(ex_target *t, const job_step *s, ex_stepres *res)
{
    char err[512];
    res->attempts++;
    res->state = EX_RUNNING;
    if (res->attempts == 1)
        res->started_ms = clock_now_ms();
    publish_step(t, t->step);
    json_t *params = ex_step_params(t, s, err, sizeof(err));
    if (!params) {
        ex_step_finish(t, EX_FAILED, 0, false, NULL, err);
        return;
    }
    int64_t timeout = s->timeout_ms ? s->timeout_ms : t->run->ex->opts.default_step_timeout_ms;
    ex_timer_start(t->run->ex, &t->timer, (uint64_t)timeout, on_step_timeout, t);
    if (s->st->desc->run)
        ex_imp_start(t, params);
    else
        ex_decl_start(t, params);
}

static void next_step(ex_target *t)
{
    const job_plan *p = t->run->plan;
    while (t->step < p->nsteps) {
        const job_step *s = &p->steps[t->step];
        ex_stepres *res = &t->steps[t->step];
        if (t->abort) {
            end_target(t, t->abort, NULL);
            return;
        }
        if (res->attempts == 0 && !step_wanted(t, s)) {
            res->state = EX_SKIPPED;
            res->error = strdup("when was false");
            res->started_ms = res->finished_ms = clock_now_ms();
            set_steps_ctx(t, t->step);
            publish_step(t, t->step);
            t->step++;
            continue;
        }
        start_attempt(t, s, res);
        return;
    }
    end_target(t, t->abort ? t->abort : EX_SUCCEEDED, NULL);
}

void ex_target_start(ex_target *t)
{
    t->state = EX_RUNNING;
    t->started_ms = clock_now_ms();
    publish_target(t);
    next_step(t);
}

/* ---- records and context ------------------------------------------------------------------- */

json_t *ex_target_record(const ex_target *t)
{
    json_t *steps = json_array();
    const job_plan *p = t->run->plan;
    for (uint32_t i = 0; i < p->nsteps; i++) {
        const ex_stepres *r = &t->steps[i];
        json_t *js = json_array_get(json_object_get(p->rec, "steps"), i);
        json_t *s =
            json_pack("{s:s, s:s, s:O?, s:O?, s:s?, s:o, s:o, s:i}", "id", p->steps[i].id, "type",
                      p->steps[i].type, "name", json_object_get(js, "name"), "outputs", r->outputs,
                      "error", r->error, "started_at", time_or_null(r->started_ms), "finished_at",
                      time_or_null(r->finished_ms), "attempts", r->attempts);
        if (!s)
            continue;
        json_object_set_new(s, "state", json_string(ex_state_name(r->state)));
        json_object_set_new(s, "exit_code", r->has_exit ? json_integer(r->exit_code) : json_null());
        json_array_append_new(steps, s);
    }
    json_t *rec = json_pack("{s:s, s:O?, s:O?, s:s, s:s?, s:o, s:o, s:o, s:I}", "target_id", t->id,
                            "name", json_object_get(t->rec, "name"), "os_family",
                            json_object_get(t->rec, "os_family"), "state", ex_state_name(t->state),
                            "error", t->error, "started_at", time_or_null(t->started_ms),
                            "finished_at", time_or_null(t->finished_ms), "steps", steps,
                            "log_bytes", (json_int_t)t->log_bytes);
    if (rec && t->process)
        json_object_set_new(rec, "process", json_string(t->process));
    return rec;
}

json_t *ex_target_ctx(ex_target *t)
{
    return t->rec;
}

void ex_target_free(ex_target *t)
{
    ex_timer_stop(&t->timer);
    ex_timer_stop(&t->delay);
    if (t->imp) { /* left running on a worker: it frees itself when run() returns */
        t->imp->t = NULL;
        t->imp = NULL;
    }
    if (t->steps)
        for (uint32_t i = 0; i < t->run->plan->nsteps; i++) {
            json_decref(t->steps[i].outputs);
            free(t->steps[i].error);
        }
    free(t->steps);
    json_decref(t->steps_ctx);
    json_decref(t->rec);
    free(t->error);
    free(t->process);
    sb_free(&t->log);
}
