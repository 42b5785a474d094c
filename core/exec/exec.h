/* exec.h - the executor's face to the rest of the core: start, record, cancel and count runs.
 *
 * A run is a snapshot of a job version + parameters + the resolved target
 * list, executed target by target in parallel up to limits, steps in order
 * on each target. The executor persists every transition and publishes it
 * on the core's event bus:
 *   "run.state"  subject run id, data {run_id, job_id, schedule_id, state, previous}
 *   "run.target" subject run id, data {run_id, target_id, state, ...}
 *   "run.step"   subject run id, data {run_id, target_id, step_id, state, exit_code, ...}
 *   "run.log"    subject run id, data {run_id, target_id, step_id, stream, seq, ts, text}
 * States: queued, running, succeeded, failed, cancelled, timed_out,
 * interrupted; and, for fires the scheduler skipped, missed.
 *
 * Thread: loop only.
 */
#ifndef OPSC_EXEC_H
#define OPSC_EXEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct opsc_core;
typedef struct exec exec;

typedef struct exec_run_spec {
    const char *job_id;
    int64_t job_version;      /* 0: the current version */
    json_t *params;           /* borrowed; NULL: the job's defaults */
    json_t *targets;          /* borrowed; {"ids","groups","selector"} overriding the job's */
    const char *schedule_id;  /* NULL for runs not started by a schedule */
    int64_t planned_at_ms;    /* the schedule's fire instant; 0 otherwise */
    const char *triggered_by; /* username, "token:<name>", or "scheduler" */
    bool dry_run;             /* render and validate only: nothing runs on targets */
} exec_run_spec;

/* Create the run (persisted as queued before this returns 0) and start it.
 * Validation failures (unknown job, bad parameters, template or schema
 * errors, a step for the wrong OS family) return OPSC_ESCHEMA / OPSC_ENOENT
 * with the step, field and position in err, and create nothing. */
int exec_run_start(exec *ex, const exec_run_spec *spec, char run_id[UUID_STR_LEN], char *err,
                   size_t errlen);

/* Persist a run in state "missed" with `reason` (misfire or overlap policy)
 * and publish it, so it can be alerted on. Nothing runs. */
int exec_run_record_missed(exec *ex, const exec_run_spec *spec, const char *reason,
                           char run_id[UUID_STR_LEN]);

/* Cancel a queued or running run: remote processes are stopped for real.
 * OPSC_ENOENT for an unknown run, OPSC_ESTATE when it has already ended. */
int exec_run_cancel(exec *ex, const char *run_id, const char *by);

/* Runs of `schedule_id` that are queued or running (overlap policies). */
size_t exec_active_for_schedule(exec *ex, const char *schedule_id);

#endif
