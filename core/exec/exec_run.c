/* exec_run.c - a run's course: queued, running, batches, timeout, cancel, the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "events.h"
#include "exec_internal.h"
#include "log.h"
#include "run_read.h"
#include "store.h"
#include "util.h"

static void set_time(json_t *rec, const char *key)
{
    char at[RFC3339_LEN];
    rfc3339_format(clock_now_ms(), at);
    json_object_set_new(rec, key, json_string(at));
}

static void on_run_timeout(uv_timer_t *h)
{
    ex_run *r = h->data;
    char why[96];
    snprintf(why, sizeof(why), "the run exceeded its timeout of %lld s",
             (long long)(r->plan->timeout_ms / 1000));
    ex_run_abort(r, EX_TIMED_OUT, why);
}

void ex_run_set_state(ex_run *r, int state, const char *reason)
{
    int prev = r->state;
    r->state = (uint8_t)state;
    json_object_set_new(r->hdr, "state", json_string(ex_state_name(state)));
    if (state == EX_RUNNING) {
        set_time(r->hdr, "started_at");
        if (r->plan->timeout_ms > 0)
            ex_timer_start(r->ex, &r->timer, (uint64_t)r->plan->timeout_ms, on_run_timeout, r);
    }
    if (ex_terminal(state))
        set_time(r->hdr, "finished_at");
    if (reason)
        json_object_set_new(r->hdr, "reason", json_string(reason));
    ex_count_run_state(r, state);
    ex_mark_run(r);
    json_t *d = json_pack("{s:O, s:O, s:s, s:s}", "job_id", json_object_get(r->hdr, "job_id"),
                          "schedule_id", json_object_get(r->hdr, "schedule_id"), "state",
                          ex_state_name(state), "previous", ex_state_name(prev));
    if (d && reason)
        json_object_set_new(d, "reason", json_string(reason));
    ex_publish(r, "run.state", d);
}

void ex_run_add(exec *ex, ex_run *r)
{
    r->prev = ex->tail;
    r->next_run = NULL;
    if (ex->tail)
        ex->tail->next_run = r;
    else
        ex->head = r;
    ex->tail = r;
    r->listed = true;
    ex->nruns++;
    ex_count_schedule(ex, json_object_get(r->hdr, "schedule_id"), 1);
    ex->stat_started++;
    ex_count_run_started(r);
    int b = r->plan->batch_size;
    r->batch_end = b > 0 && (uint32_t)b < r->ntargets ? (uint32_t)b : r->ntargets;
    json_t *d = json_pack("{s:O, s:O, s:s, s:s}", "job_id", json_object_get(r->hdr, "job_id"),
                          "schedule_id", json_object_get(r->hdr, "schedule_id"), "state", "queued",
                          "previous", "queued");
    ex_publish(r, "run.state", d);
    ex_pump(ex);
}

static void unlink_run(exec *ex, ex_run *r)
{
    if (!r->listed)
        return;
    /* r->next_run stays as it was: a caller walking the list may be on r. */
    if (r->prev)
        r->prev->next_run = r->next_run;
    else
        ex->head = r->next_run;
    if (r->next_run)
        r->next_run->prev = r->prev;
    else
        ex->tail = r->prev;
    r->listed = false;
    ex->nruns--;
    ex_count_schedule(ex, json_object_get(r->hdr, "schedule_id"), -1);
}

static void counts(ex_run *r)
{
    json_t *c = json_object();
    for (uint32_t i = 0; i < r->ntargets; i++) {
        const char *s = ex_state_name(r->targets[i].state);
        json_object_set_new(c, s, json_integer(json_integer_value(json_object_get(c, s)) + 1));
    }
    json_object_set_new(r->hdr, "counts", c);
}

static void finish(ex_run *r)
{
    exec *ex = r->ex;
    int state = r->abort ? r->abort : r->failed > 0 ? EX_FAILED : EX_SUCCEEDED;
    const char *reason = NULL;
    char why[128];
    if (!r->abort && r->failed > 0) {
        snprintf(why, sizeof(why), "%u of %u targets did not succeed", r->failed, r->ntargets);
        reason = why;
    }
    ex_timer_stop(&r->timer);
    counts(r);
    json_object_set_new(r->hdr, "log_bytes", json_integer((json_int_t)r->log_bytes));
    unlink_run(ex, r);
    ex->stat_finished++;
    /* The reason of an abort was set when it began. */
    ex_run_set_state(r, state, reason);
    ex_pump(ex);
    ex_claim_soon(ex); /* cluster mode: room for another queued run */
    ex_maybe_closed(ex);
}

static void next_batch(ex_run *r)
{
    int b = r->plan->batch_size;
    if (b <= 0 || r->ended < r->batch_end || r->batch_end >= r->ntargets)
        return;
    if (r->failed > 0) {
        char why[128];
        snprintf(why, sizeof(why), "not started: a target of an earlier batch did not succeed");
        for (uint32_t i = r->batch_end; i < r->ntargets; i++)
            if (r->targets[i].state == EX_QUEUED)
                ex_target_end_unstarted(&r->targets[i], EX_SKIPPED, why);
        return;
    }
    r->batch_end =
        r->batch_end + (uint32_t)b < r->ntargets ? r->batch_end + (uint32_t)b : r->ntargets;
}

void ex_run_target_ended(ex_target *t)
{
    ex_run *r = t->run;
    r->ended++;
    if (t->state != EX_SUCCEEDED)
        r->failed++;
    ex_mark_run(r);
    if (r->ended == r->ntargets) {
        finish(r);
        return;
    }
    next_batch(r);
    if (r->ended == r->ntargets) /* the rest was skipped */
        return;
    ex_pump(r->ex);
}

void ex_run_abort(ex_run *r, int state, const char *reason)
{
    if (r->abort || ex_terminal(r->state))
        return;
    r->abort = (uint8_t)state;
    json_object_set_new(r->hdr, "reason", json_string(reason));
    ex_mark_run(r);
    ex_timer_stop(&r->timer);
    /* Ending the last target may finish (and unlink) the run: count first. */
    uint32_t n = r->ntargets;
    for (uint32_t i = 0; i < n && !ex_terminal(r->state); i++) {
        ex_target *t = &r->targets[i];
        if (t->state == EX_QUEUED)
            ex_target_end_unstarted(t, state, reason);
        else if (t->state == EX_RUNNING)
            ex_target_abort(t, state);
    }
}

static ex_run *find_active(exec *ex, const char *run_id)
{
    for (ex_run *r = ex->head; r; r = r->next_run)
        if (strcmp(r->id, run_id) == 0)
            return r;
    return NULL;
}

bool exec_runs_here(exec *ex, const char *run_id)
{
    return ex && find_active(ex, run_id);
}

int exec_run_cancel(exec *ex, const char *run_id, const char *by)
{
    ex_run *r = find_active(ex, run_id);
    char why[160];
    snprintf(why, sizeof(why), "cancelled by %s", by && *by ? by : "an operator");
    if (!r && ex_queued(ex))
        return ex_cancel_elsewhere(ex, run_id, why);
    if (!r) {
        int rc = run_exists(ex->store, run_id);
        return rc == 0 ? OPSC_ESTATE : rc;
    }
    log_info("exec", "run %s %s", r->id, why);
    ex_run_abort(r, EX_CANCELLED, why);
    return 0;
}

void ex_run_free(ex_run *r)
{
    if (!r)
        return;
    for (uint32_t i = 0; i < r->ntargets; i++)
        ex_target_free(&r->targets[i]);
    free(r->targets);
    json_decref(r->route);
    ex_timer_stop(&r->timer);
    for (size_t i = 0; i < r->nredact; i++) {
        secure_zero(r->redact[i], strlen(r->redact[i]));
        free(r->redact[i]);
    }
    free(r->redact);
    if (r->ctx_params) { /* holds secret values */
        const char *k;
        json_t *v;
        json_object_foreach(r->ctx_params, k, v) if (json_is_string(v))
            secure_zero((char *)json_string_value(v), json_string_length(v));
    }
    json_decref(r->ctx_params);
    json_decref(r->ctx_run);
    json_decref(r->hdr);
    job_plan_free(r->plan);
    free(r);
}
