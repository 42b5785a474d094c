/* exec_metrics.c - what /metrics says of runs, targets and steps: counters by trigger and
 * outcome, duration histograms. Counted where a run, target or step ends, so a retried
 * attempt is not an outcome and a run counts once. */
#include <string.h>

#include "exec_internal.h"

/* Runs last seconds to hours; steps from milliseconds (a fact read) to minutes. */
static const double run_bounds[] = {1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600};
static const double step_bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600};

static const char *const trigger_names[] = {"api", "schedule", "hook", "retry"};

const char *exec_trigger_name(int trigger)
{
    return trigger >= 0 && trigger < EXEC_TRIGGERS ? trigger_names[trigger] : "api";
}

const char *exec_state_name(int state)
{
    return ex_state_name(state);
}

const exec_counters *exec_counters_get(const exec *ex)
{
    return &ex->counters;
}

void ex_metrics_init(exec *ex)
{
    ex->counters.run_seconds.bounds = run_bounds;
    ex->counters.run_seconds.nbounds = sizeof(run_bounds) / sizeof(run_bounds[0]);
    ex->counters.step_seconds.bounds = step_bounds;
    ex->counters.step_seconds.nbounds = sizeof(step_bounds) / sizeof(step_bounds[0]);
}

static int trigger_of(const json_t *hdr)
{
    const char *by = json_string_value(json_object_get(hdr, "triggered_by"));
    if (json_is_string(json_object_get(hdr, "schedule_id")))
        return EXEC_BY_SCHEDULE;
    if (json_is_string(json_object_get(hdr, "retry_of")))
        return EXEC_BY_RETRY;
    if (by && strncmp(by, "hook:", 5) == 0)
        return EXEC_BY_HOOK;
    return EXEC_BY_API;
}

void ex_count_run_started(ex_run *r)
{
    r->trigger = (uint8_t)trigger_of(r->hdr);
    r->ex->counters.runs_started[r->trigger]++;
}

void ex_count_run_state(ex_run *r, int state)
{
    exec_counters *c = &r->ex->counters;
    if (state == EX_RUNNING) {
        r->running_mono = clock_mono_ms();
        return;
    }
    if (!ex_terminal(state) || state >= EXEC_STATES)
        return;
    c->runs_finished[r->trigger][state]++;
    if (r->running_mono)
        metrics_hist_observe(&c->run_seconds, (double)(clock_mono_ms() - r->running_mono) / 1e3);
}

void ex_count_target(ex_target *t)
{
    if (ex_terminal(t->state) && t->state < EXEC_STATES)
        t->run->ex->counters.targets_finished[t->state]++;
}

void ex_count_step(ex_run *r, const ex_stepres *res)
{
    if (!ex_terminal(res->state) || res->state >= EXEC_STATES)
        return;
    r->ex->counters.steps_finished[res->state]++;
    if (res->state != EX_SKIPPED && res->finished_ms >= res->started_ms && res->started_ms > 0)
        metrics_hist_observe(&r->ex->counters.step_seconds,
                             (double)(res->finished_ms - res->started_ms) / 1e3);
}
