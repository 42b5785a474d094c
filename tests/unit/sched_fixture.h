/* sched_fixture.h - the scheduler under a virtual clock, a store in tmpfs and the exec recorder
 * (test_scheduler's files share it; include after cmocka.h). */
#ifndef OPSC_SCHED_FIXTURE_H
#define OPSC_SCHED_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "events.h"
#include "exec_recorder.h"
#include "scheduler.h"
#include "store.h"

#define SFX_MAX 32
#define HOUR_MS (3600 * INT64_C(1000))
#define MIN_MS  (60 * INT64_C(1000))

typedef struct sfx {
    char dir[64];
    uv_loop_t loop;
    store *st;
    events *ev;
    exec *ex; /* the recorder; NULL in "no executor" tests */
    sched *s;
    struct sched_cfg cfg;
    int64_t sub;
    char ids[SFX_MAX][40];
    size_t n_ids;
    /* "schedule.*" events seen */
    size_t missed, errors;
    char last_reason[400];
    char last_error[400];
} sfx;

/* The virtual clocks (wall ms, monotonic ms) every fixture runs on. */
extern int64_t sfx_wall;
extern uint64_t sfx_mono;

/* [scheduler] defaults with a few knobs tests change. */
struct sched_cfg sfx_cfg(void);
/* A fixture at wall time `start` (RFC 3339); with_exec: link the recorder. */
sfx *sfx_new(const char *start, const struct sched_cfg *cfg, bool with_exec);
/* Stop the scheduler (the daemon stops) and leave it stopped. */
void sfx_down(sfx *f);
/* Start a new scheduler on the same store and executor (the daemon starts),
 * and let it take its first wake. */
void sfx_up(sfx *f);
/* Close everything, assert the loop closed clean, remove the store. */
void sfx_free(sfx *f);

/* A schedule as the API would create it (validated, stored, armed): its id. */
const char *sfx_add(sfx *f, const char *json_body);
/* PATCH-like change (validated, stored, armed). */
void sfx_change(sfx *f, const char *id, const char *json_changes);
/* Delete it, as the API does. */
void sfx_delete(sfx *f, const char *id);

/* Move both clocks forward by `ms` and wake the scheduler once. */
void sfx_step(sfx *f, int64_t ms);
/* Move the wall clock by `wall_ms` but the monotonic one by `mono_ms` (a
 * jump), then wake once. */
void sfx_jump(sfx *f, int64_t wall_ms, int64_t mono_ms);
/* Wake the scheduler at each of its fire times up to wall time `until_ms`,
 * exactly on time, then at `until_ms`. */
void sfx_run_until(sfx *f, int64_t until_ms);
/* Wall time of an RFC 3339 text. */
int64_t sfx_at(const char *rfc);

#endif
