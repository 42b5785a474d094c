/* exec_recorder.h - a test double of exec.h: records starts, misses and cancels; tests end runs.
 *
 * Unit tests and benchmarks of the scheduler link exec_recorder.c instead of
 * the executor. Every run it creates is published on the event bus as the
 * executor does ("run.state": queued, then running; "missed" for recorded
 * misses; "cancelled" on cancel), so the scheduler sees the same events.
 * A test ends a run with exec_recorder_end(), which publishes its end.
 */
#ifndef OPSC_EXEC_RECORDER_H
#define OPSC_EXEC_RECORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "exec/exec.h"
#include "store.h"

typedef struct rec_run {
    bool missed; /* exec_run_record_missed() */
    char run_id[UUID_STR_LEN];
    char schedule_id[40];
    char job_id[40];
    char triggered_by[32];
    int64_t planned_ms;
    int64_t created_ms; /* clock_now_ms() when created */
    int64_t created_us; /* CLOCK_REALTIME in microseconds when created */
    char state[16];
    char *reason;  /* missed: why */
    char *params;  /* compact JSON of spec->params, or NULL */
    char *targets; /* compact JSON of spec->targets, or NULL */
} rec_run;

struct exec {
    events *ev;
    rec_run *runs;
    size_t n, cap;
    size_t *active; /* indexes of queued/running runs */
    size_t n_active, cap_active;
    size_t cancels;
    int fail_start;   /* exec_run_start() answers this (with a message) when non-zero */
    /* The next starts' commits fail with these codes, in order (0: stored), as a
     * database does: nothing of the run is recorded, and exec_run_start_async's
     * callback gets the code at exec_flush(). */
    int commit_fails[16];
    size_t n_commit_fails;
    int missed_fails[16]; /* the same for exec_run_record_missed() */
    size_t n_missed_fails;
    bool end_at_once; /* runs succeed as soon as they start */
    bool quiet;       /* keep no params/targets copies, publish nothing on start (benchmarks) */
    store *store;     /* when set, runs are committed there as the executor does ("runs":
                         id, schedule_id, planned_at, state), before the call returns */
    struct rec_started *started; /* exec_run_start_async: callbacks exec_flush() calls */
    size_t n_started, cap_started;
};

exec *exec_recorder_new(events *ev);
void exec_recorder_free(exec *ex);
/* End an active run in `state` ("succeeded", "failed"...) and publish it; 0 or OPSC_ENOENT. */
int exec_recorder_end(exec *ex, const char *run_id, const char *state);
/* End every active run of `schedule_id` (NULL: all); how many ended. */
size_t exec_recorder_end_all(exec *ex, const char *schedule_id, const char *state);
/* Counts over what was recorded for `schedule_id` (NULL: all). */
size_t exec_recorder_started(const exec *ex, const char *schedule_id);
size_t exec_recorder_missed(const exec *ex, const char *schedule_id);
/* The i-th started (or missed) record of a schedule, in order; NULL past the end. */
const rec_run *exec_recorder_nth(const exec *ex, const char *schedule_id, bool missed, size_t i);
/* The schedule's next started (or missed) record after `prev` (NULL: the
 * first); NULL past the end. Walks a year of runs in one pass. */
const rec_run *exec_recorder_next(const exec *ex, const char *schedule_id, bool missed,
                                  const rec_run *prev);

#endif
