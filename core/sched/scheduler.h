/* scheduler.h - the scheduling service: schedules in a heap, one timer, misfire and overlap
 * policies.
 *
 * Every enabled schedule (schedule.h) has its next fire instant in a
 * min-heap; one uv_timer_t sleeps until the earliest (or at most
 * [scheduler] clock_check_interval). Each wake (sched_tick) compares the
 * wall clock's progress with the monotonic clock's since the previous wake,
 * so a wall-clock jump (an NTP step, a suspend) is seen and named; then it
 * takes every due schedule off the heap and decides, per due instant:
 *
 *   MISFIRE  A fire is on time when it is handled at most misfire_threshold
 *            after its planned instant; later, it misfired (daemon stopped,
 *            clock jumped, loop stalled). Misfired fires older than the
 *            schedule's grace period are missed. Within the grace period:
 *              skip      none runs;
 *              run_once  the latest runs (none when an on-time fire runs now);
 *              run_all   the latest run_all_max run, in order.
 *            Every fire not run is recorded as a missed run, one by one up
 *            to missed_max per catch-up, older ones summed up in one record.
 *   OVERLAP  A fire that runs while runs of the same schedule are active:
 *              allow     starts, unless overlap_limit runs are active;
 *              forbid    is missed;
 *              replace   cancels the active runs and starts;
 *              queue     waits (persisted) until the active run ends, unless
 *                        overlap_limit fires already wait.
 *
 * A missed fire becomes exec_run_record_missed() with the reason and a
 * "schedule.missed" event {schedule_id, job_id, run_id, planned_at,
 * reason}; a run started is announced by the executor ("run.state" with
 * its schedule_id) and counted in sched_stats. A fire that cannot start (no executor
 * in this daemon, a job that is gone) is logged and published as
 * "schedule.error" {schedule_id, planned_at, error}, recorded as a missed
 * run when an executor exists, and shown as status.last_error.
 *
 * RETRIES: a fire whose run could not be stored for a reason that passes by
 * itself (a lock or statement timeout, a broken connection, a database that
 * did not answer: sched_transient) is reported the same way ("trying
 * again"), recorded nowhere yet, and tried again, alone, after 0.5 s, 1 s,
 * 2 s ... (at most 16 s apart), each schedule's instants in order, on the
 * scheduler's timer, until it is stored, found a duplicate (another
 * leader's: dropped), or later than the schedule's grace period: then it is
 * recorded missed. A missed record that fails for a passing reason (this one,
 * or any other: a new leader's catch-up waits on the same locks) is kept and
 * tried again the same way for up to 10 minutes, and only then logged as
 * lost. At most 256 wait;
 * past that a fire is refused at once. The handled-through mark stays before
 * the oldest fire waiting, so a scheduler that stops (a step-down, a crash:
 * the list is not kept) leaves it to the next one's misfire policy, unless a
 * later fire of the same schedule was stored (its run is the schedule's
 * progress then).
 *
 * PERSISTENCE: database "schedule_state" holds, per schedule, the instant
 * its count of fires starts after (its anchor: creation, resume, a change of
 * cron, zone, start_at or end_at) and its queued fires; and one mark, "every
 * fire planned at or before T was handled" (run, missed or refused),
 * committed once per wake after its runs started: one durable write whether
 * one schedule fires or ten thousand, and no fsync between a fire's instant
 * and its run. A restart resumes every schedule after the latest of its
 * anchor, T, and the planned_at of the newest run the executor committed for
 * it (runs created since, found by their time-ordered ids: what a crash kept
 * out of the mark), so nothing fires twice and nothing is lost; what fell due
 * while the daemon was stopped is a misfire for the policy. (When the wall
 * clock goes back, T moves back with it and schedules already past the new
 * time save their own progress.) Fires still waiting in a queue are saved
 * with the wake's commit: a crash before it loses them. Fires of a paused
 * schedule are not misfires: resuming restarts the count.
 *
 * CLOCKS: wall time is clock_now_ms() (tests: clock_set_source()), monotonic
 * time sched_opts.mono_ms. Tests drive the service without waiting: move
 * both clocks to sched_next_fire_ms() and call sched_tick().
 *
 * Thread: loop only.
 */
#ifndef OPSC_SCHEDULER_H
#define OPSC_SCHEDULER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "exec/exec.h"
#include "schedule.h"

typedef struct sched sched;
typedef struct store store;
typedef struct store_txn store_txn;
typedef struct events events;

/* The executor as the scheduler calls it: exec.h's functions, through a
 * table so that unit tests can put a recorder in its place. */
typedef struct sched_exec_ops {
    int (*run_start)(exec *ex, const exec_run_spec *spec, char run_id[UUID_STR_LEN], char *err,
                     size_t errlen);
    int (*run_record_missed)(exec *ex, const exec_run_spec *spec, const char *reason,
                             char run_id[UUID_STR_LEN]);
    int (*run_cancel)(exec *ex, const char *run_id, const char *by);
    size_t (*active_for_schedule)(exec *ex, const char *schedule_id);
    /* Appended: runs of one slice of fires stored by one commit. When both
     * are set, fires start through run_start_async and the scheduler calls
     * flush before it commits its own progress (runs first: exactly once). */
    int (*run_start_async)(exec *ex, const exec_run_spec *spec, char run_id[UUID_STR_LEN],
                           char *err, size_t errlen, exec_started_cb cb, void *ud);
    void (*flush)(exec *ex);
} sched_exec_ops;

/* exec.h's functions as linked into this program (the executor's, or a
 * test's recorder that defines the same names). */
const sched_exec_ops *sched_exec_linked(void);

typedef struct sched_opts {
    uv_loop_t *loop;
    store *store;
    events *events;
    exec *exec; /* NULL: fires are refused with an error until sched_set_exec() */
    const sched_exec_ops *exec_ops; /* sched_exec_linked() in the daemon */
    const struct sched_cfg *cfg;    /* copied; NULL: the [scheduler] defaults */
    uint64_t (*mono_ms)(void);      /* NULL: clock_mono_ms() */
} sched_opts;

/* Create (no I/O yet). The timer handle exists from here: sched_close() must
 * run before the loop closes. */
int sched_new(sched **out, const sched_opts *opts);
/* Load every schedule and its state from the store, subscribe to
 * "run.state", arm the timer (a first wake at once handles what fell due
 * while the daemon was stopped). Schedules whose record no longer parses
 * are kept out of the heap with status.last_error and logged. */
int sched_start(sched *s, char *err, size_t errlen);
void sched_set_exec(sched *s, exec *ex, const sched_exec_ops *ops);
/* Stop firing (shutdown begins); API updates are still accepted. */
void sched_stop(sched *s);
/* Stop, close the timers and free `s` once libuv has closed them. */
void sched_close(sched *s);

/* ---- changes from the API (after the record's transaction committed) ------------------ */

/* Whether a change from `before` (NULL: a new schedule) to `after` restarts
 * the count of fires at the time of the change (see PERSISTENCE): creation,
 * enabling, a new cron, timezone, start_at or end_at (extending an ended
 * schedule does not catch up on the fires after its old end). */
bool sched_change_resets(const json_t *before, const json_t *after);
/* Inside the API's write transaction: the state of a schedule whose count
 * restarts at `anchor_ms` (its queue is dropped), or its removal. */
int sched_state_reset_txn(store_txn *txn, const char *id, int64_t anchor_ms);
int sched_state_delete_txn(store_txn *txn, const char *id);
/* Take the committed record (borrowed) into the heap; `anchor_ms` >= 0 when
 * sched_state_reset_txn() wrote a new anchor. */
void sched_upsert(sched *s, const json_t *rec, int64_t anchor_ms);
void sched_remove(sched *s, const char *id);

/* Read-only status of a schedule: {"next_fire_at", "last_fire_at",
 * "last_run_id", "last_error", "active_runs", "queued"}, or NULL when the
 * scheduler does not know the id. New reference. */
json_t *sched_status(sched *s, const char *id);
/* Its next `count` fires as sched_times_json() answers them: empty when
 * disabled or ended. OPSC_ENOENT for an unknown id. */
int sched_upcoming(sched *s, const char *id, int count, json_t **out);

/* ---- driving (the timer calls this; tests call it directly) --------------------------- */

/* Handle the clocks' progress, queued fires whose turn came, and every due
 * schedule; re-arm the timer. */
void sched_tick(sched *s);
/* The earliest planned fire in the heap (ms), or -1 when none. */
int64_t sched_next_fire_ms(sched *s);

typedef struct sched_stats {
    size_t schedules;     /* known (enabled or not) */
    size_t armed;         /* in the heap */
    uint64_t ticks;       /* wakes */
    uint64_t fired;       /* runs started */
    uint64_t late_ms_sum; /* lateness of those runs: planned instant to start */
    int64_t late_ms_max;
    uint64_t missed;  /* fires recorded missed */
    uint64_t errors;  /* fires that could not start (at once, or at all) */
    uint64_t jumps;   /* wall-clock jumps seen */
    uint64_t tick_ns; /* thread CPU time spent in sched_tick */
    /* Appended: fires whose run could not be stored for a passing reason (sched_retry.c). */
    size_t retrying;  /* waiting for their next try */
    uint64_t retried; /* started on a later try */
    uint64_t lost;    /* given up and not even recorded missed: in no record */
} sched_stats;
void sched_get_stats(sched *s, sched_stats *st);

#endif
