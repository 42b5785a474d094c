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
 * interrupted; and, for fires the scheduler skipped, missed. Steps whose
 * `when` was false or that an earlier failure kept from running, and
 * targets a failed batch kept from starting, are "skipped". Every event
 * also carries "seq": the run's own event number (log records included),
 * the id of its Server-Sent Events.
 *
 * Storage and reading: run_read.h.
 *
 * Thread: loop only.
 */
#ifndef OPSC_EXEC_H
#define OPSC_EXEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "util.h"

struct opsc_core;
typedef struct exec exec;
typedef struct store_txn store_txn;

typedef struct exec_run_spec {
    const char *job_id;
    int64_t job_version;      /* 0: the current version */
    json_t *params;           /* borrowed; NULL: the job's defaults */
    json_t *targets;          /* borrowed; {"ids","groups","selector"} overriding the job's */
    const char *schedule_id;  /* NULL for runs not started by a schedule */
    int64_t planned_at_ms;    /* the schedule's fire instant; 0 otherwise */
    const char *triggered_by; /* username, "token:<name>", or "scheduler" */
    bool dry_run;             /* render and validate only: nothing runs on targets */
    int actor_role;           /* EXEC_ROLE_* of who starts it, checked against [executor]
                                 local_targets for local targets; 0: the daemon itself */
    const json_t *target_ids; /* borrowed; the run's targets as they are, in order, instead of
                                 resolving `targets` (a queued run rebuilt where it is claimed) */
    json_t **refusal;         /* where the details of a refusal go (a new reference: targets
                                 whose labels route to different nodes); NULL: not wanted */
} exec_run_spec;

/* Roles as http.h numbers them (ROLE_VIEWER 1, ROLE_OPERATOR 2, ROLE_ADMIN 3). */
#define EXEC_ROLE_OPERATOR 2
#define EXEC_ROLE_ADMIN    3
/* True when `role` may run jobs on (and manage) local targets under `policy`
 * (enum exec_local_policy of config.h). */
bool exec_local_allowed(int policy, int role);

/* Create the run (persisted as queued before this returns 0) and start it.
 * Validation failures (unknown job, bad parameters, template or schema
 * errors, a step for the wrong OS family) return OPSC_ESCHEMA / OPSC_ENOENT
 * with the step, field and position in err, and create nothing; a local
 * target that [executor] local_targets keeps from spec->actor_role,
 * OPSC_EACCES. */
int exec_run_start(exec *ex, const exec_run_spec *spec, char run_id[UUID_STR_LEN], char *err,
                   size_t errlen);

/* Persist a run in state "missed" with `reason` (misfire or overlap policy)
 * and publish it, so it can be alerted on. Nothing runs. */
int exec_run_record_missed(exec *ex, const exec_run_spec *spec, const char *reason,
                           char run_id[UUID_STR_LEN]);

/* Cancel a queued or running run: remote processes are stopped for real.
 * OPSC_ENOENT for an unknown run, OPSC_ESTATE when it has already ended. */
int exec_run_cancel(exec *ex, const char *run_id, const char *by);

/* Whether run `run_id` is active in this executor (cluster mode: else it is
 * queued, or runs on another node, or has ended). */
bool exec_runs_here(exec *ex, const char *run_id);

/* Runs of `schedule_id` that are queued or running (overlap policies). */
size_t exec_active_for_schedule(exec *ex, const char *schedule_id);

/* ---- the executor in the daemon and the REST API (appended to the interface above) ---- */

typedef struct exec_opts {
    int max_parallel;                /* targets running at once, all runs together */
    int step_workers;                /* imperative steps running at once (worker threads) */
    int64_t default_step_timeout_ms; /* steps without timeout_s */
    int64_t log_retention_ms;        /* logs of runs that ended longer ago go; 0: kept */
    int64_t log_max_bytes;           /* all run logs together; oldest go first; 0: no limit */
    int64_t log_max_per_target;      /* one target's log in one run; the rest is dropped */
    int64_t log_sweep_interval_ms;   /* how often retention is applied */
    int64_t capture_limit;           /* stdout kept for outputs, per command */
    int64_t abandon_grace_ms;        /* an imperative step ignoring its cancel is left after it */
    /* Called inside the write transaction that stores a run whose state
     * changed (also for runs start-up recovery marks interrupted): `run` is
     * the header as stored (borrowed), `previous` the state stored before.
     * What it writes commits with the run; an error aborts the write. The
     * notification service's outbox (notify_run_persisted). NULL: none. */
    int (*on_run_persisted)(void *ud, store_txn *txn, const json_t *run, const char *previous);
    void *on_run_persisted_ud;
    /* Called inside the write transaction that creates a run (started, or
     * recorded missed), with the header as stored; an error aborts the
     * creation and is returned by exec_run_start / exec_run_record_missed.
     * Cluster mode's exactly-once fires (docs/cluster.md 2.3). NULL: none. */
    int (*on_run_new)(void *ud, store_txn *txn, const json_t *run);
    void *on_run_new_ud;
    /* Cluster mode: the runs this executor starts are marked as this node's
     * (borrowed for the executor's life), and start-up recovery interrupts
     * only this node's runs: other nodes' are still running. NULL: every
     * unfinished run is this process's (one daemon per store). */
    const char *node_id;
    /* Cluster mode, borrowed: this node's labels (an object) and the label
     * keys that route runs (an array; empty: none). A run made here is
     * claimed only by a node whose labels have, for each key, the value
     * its targets have; targets that disagree are refused (docs/cluster.md
     * 2.4). NULL: no labels, no routing. */
    const json_t *labels, *route_by;
    int plan_cache_max; /* compiled job plans kept, one per job (exec_plans.c); 0: 256 */
} exec_opts;

/* Create the executor: recovers runs left queued or running by a previous
 * process (they become interrupted, with the reason), starts the step
 * workers and installs the step API into the plugin host. Uses core->loop,
 * store, events, plugins, vault and pool. Zero options take the defaults. */
int exec_new(exec **out, struct opsc_core *c, const exec_opts *o, char *err, size_t errlen);
/* Start no more targets or runs (exec_run_start answers OPSC_ESTATE);
 * queued targets end interrupted. Running ones go on. */
void exec_stop(exec *ex);
/* After exec_stop: give running steps until `deadline_ms` (from now) to end,
 * then cancel them (interrupted), write everything, join idle workers;
 * `cb` runs when no run, lease or handle remains. Then exec_free(). */
void exec_close(exec *ex, int64_t deadline_ms, void (*cb)(void *ud), void *ud);
void exec_free(exec *ex);

/* The job is deleted: drop what the executor keeps of it (its compiled
 * plan). Correctness does not depend on it (a plan is served only for the
 * record it was compiled from); memory does. */
void exec_job_forget(exec *ex, const char *job_id);

/* Dry run: validate and render as exec_run_start() would, without creating
 * a run. *out: {"dry_run": true, "job_id", "job_version", "params",
 * "targets": [{target_id, name, os_family, steps: [{id, type, when,
 * command | imperative params | error}]}]}, secrets redacted. */
int exec_dry_run(exec *ex, const exec_run_spec *spec, json_t **out, char *err, size_t errlen);

/* A new run of the same job version and parameters on the targets of
 * `run_id` that did not succeed, linked by "retry_of". OPSC_ENOENT,
 * OPSC_ESTATE (still active, or nothing failed). */
int exec_run_retry(exec *ex, const char *run_id, const char *by, int actor_role,
                   char new_id[UUID_STR_LEN], char *err, size_t errlen);

/* Write what changed now rather than at the end of the loop turn (a reader
 * is about to read the store). */
void exec_flush(exec *ex);

/* exec_run_start for a caller that can wait for the commit (a REST request):
 * the run is validated and prepared now (failures as exec_run_start's,
 * returned at once; `cb` then never runs) and *run_id is set; it is stored
 * with every other new run and state change of this loop turn in one
 * durable commit at the turn's end, and only then started and `cb` called
 * (loop thread) with 0 and `run`, the run as stored (its header with
 * "targets", as GET /runs/{id} shows it; borrowed for the call; NULL when
 * there was no memory to copy it), or with the
 * store's error and NULL (nothing was created). One fsync for all runs
 * created in a turn instead of one each. */
typedef void (*exec_started_cb)(void *ud, int status, const char *run_id, const json_t *run);
int exec_run_start_async(exec *ex, const exec_run_spec *spec, char run_id[UUID_STR_LEN], char *err,
                         size_t errlen, exec_started_cb cb, void *ud);

/* Figures for tests, benchmarks and /metrics. */
typedef struct exec_stats {
    size_t runs_active;
    size_t targets_running;
    size_t workers_busy;
    size_t targets_queued; /* of active runs, not started yet */
    uint64_t runs_started, runs_finished;
    size_t plans_cached;                   /* compiled job plans kept now */
    uint64_t plans_compiled, plans_reused; /* since start, for runs and dry runs */
} exec_stats;
void exec_stats_get(const exec *ex, exec_stats *st);

/* What started runs: api (a user or token), schedule, hook, retry. */
enum exec_trigger { EXEC_BY_API, EXEC_BY_SCHEDULE, EXEC_BY_HOOK, EXEC_BY_RETRY, EXEC_TRIGGERS };
#define EXEC_STATES 9 /* queued ... missed: the states of runs, targets and steps */

/* Counters since start for /metrics. Labels stay bounded: trigger and state
 * only, never a job or target id. Indexed by enum exec_trigger and by state
 * (exec_state_name()). */
typedef struct exec_counters {
    uint64_t runs_started[EXEC_TRIGGERS];
    uint64_t runs_finished[EXEC_TRIGGERS][EXEC_STATES];
    uint64_t targets_finished[EXEC_STATES];
    uint64_t steps_finished[EXEC_STATES];
    uint64_t log_bytes;        /* written to run logs */
    metrics_hist run_seconds;  /* from running to the end */
    metrics_hist step_seconds; /* the attempt that ended the step */
} exec_counters;
const exec_counters *exec_counters_get(const exec *ex);
const char *exec_trigger_name(int trigger);
const char *exec_state_name(int state); /* "queued" ... "missed" */

/* Cluster mode, on the leader (docs/cluster.md 2.4): runs whose claim's
 * lease lapsed (their node stopped renewing it) are marked interrupted, the
 * reason naming the node. The number marked, or a negative code. */
int exec_reap_leases(exec *ex);
/* The leader: a queued run whose route no node alive within `alive_ms` carries says so in
 * its record ("waiting": {reason, since, route}), logged once per run; the claim that
 * takes it removes the field. The number of runs newly marked, or a negative code. */
int exec_mark_unrouted(exec *ex, int64_t alive_ms);
/* Cluster mode, with each heartbeat: renew the leases of the runs this node runs. */
void exec_renew_leases(exec *ex, int64_t lease_ms);

/* Cluster mode, on the leader (docs/cluster.md 2.4, the reaper): runs that
 * nodes not in `alive` (an array of node ids, borrowed) left queued or
 * running are marked interrupted, the reason naming the node; nothing of
 * them runs again anywhere. Needs exec_opts.node_id. The number of runs
 * marked, or a negative code. */
int exec_reap_nodes(exec *ex, const json_t *alive);

#endif
