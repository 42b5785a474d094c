/* sched_internal.h - the scheduler's state shared by its files: entries, heap, map, actions. */
#ifndef OPSC_SCHED_INTERNAL_H
#define OPSC_SCHED_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "events.h"
#include "scheduler.h"
#include "util.h"

#define SCHED_NO_FIRE   ((int64_t)-1)
#define SCHED_NOT_ARMED SIZE_MAX
#define SCHED_ERR_MAX   256
#define SCHED_WHY_MAX   320

typedef char sched_run_id[UUID_STR_LEN];

/* One schedule as the scheduler holds it. */
typedef struct sched_entry {
    sched_def def;
    bool valid;                    /* def parsed; else `error` says why */
    char error[SCHED_ERR_MAX];     /* status.last_error */
    int64_t last_ms;               /* fires are counted strictly after this: the last one handled,
                                      the anchor, or the handled-through mark */
    int64_t last_fire_ms;          /* planned instant of the last fire handled, or SCHED_NO_FIRE */
    int64_t next_ms;               /* SCHED_NO_FIRE when none */
    size_t heap_idx;               /* SCHED_NOT_ARMED when out of the heap */
    uint64_t heap_seq;             /* ties of next_ms: first armed, first fired */
    int64_t hint_after, hint_next; /* cron_next(hint_after) == hint_next (s), or stale */
    struct sched_entry *map_next;
    sched_run_id *active; /* runs started by this schedule, not ended yet */
    size_t n_active, cap_active;
    int64_t *queue; /* planned instants (ms) waiting, oldest first */
    size_t n_queue, cap_queue;
    sched_run_id last_run_id;
    size_t starting; /* runs planned in the current tick */
    size_t storing;  /* runs started through run_start_async, not stored yet */
    bool dirty;      /* state to persist in this tick */
    bool drain;      /* a run ended: the queue may move */
} sched_entry;

/* A fire whose run could not be stored for a passing reason, to try again (sched_retry.c). By
 * id: the schedule may be deleted or changed meanwhile. */
typedef struct sched_retry {
    char sid[40];
    int64_t planned_ms;
    uint64_t due_mono; /* the next try (s->mono_ms) */
    int64_t delay_ms;  /* the backoff that led there */
    unsigned tries;
    int rc;                  /* the last failure */
    char why[SCHED_WHY_MAX]; /* its text; for a missed record, the reason to record */
    bool missed;             /* a missed record to store, not a run */
} sched_retry;

enum sched_act_kind { SCHED_ACT_RUN, SCHED_ACT_MISS, SCHED_ACT_ERROR };

/* What a tick decided for one fire, carried out after the state commit. */
typedef struct sched_action {
    sched_entry *e;
    enum sched_act_kind kind;
    int64_t planned_ms;
    bool replace;            /* RUN: cancel the active runs first */
    char why[SCHED_WHY_MAX]; /* MISS / ERROR: the reason */
} sched_action;

struct sched {
    uv_loop_t *loop;
    store *store;
    events *events;
    exec *exec; /* with ops, or both NULL */
    const sched_exec_ops *ops;
    struct sched_cfg cfg;
    sched_defaults dft;
    uint64_t (*mono_ms)(void);
    uv_timer_t timer;
    uv_timer_t kick;      /* a queue to drain on the next loop turn */
    uv_check_t slice;     /* the next slice of a burst, right after this turn's I/O */
    uv_idle_t slice_idle; /* keeps that turn's poll from blocking */
    int closing_handles;
    /* heap of armed entries by next_ms */
    sched_entry **heap;
    size_t heap_n, heap_cap;
    uint64_t heap_seq;
    /* id -> entry */
    sched_entry **buckets;
    size_t nbuckets, count;
    /* this tick */
    sched_action *acts;
    size_t n_acts, cap_acts;
    sched_entry **dirty;
    size_t n_dirty, cap_dirty;
    sched_entry **drains;
    size_t n_drains, cap_drains;
    int64_t *scratch; /* due instants of one entry */
    size_t cap_scratch;
    sched_retry *retries; /* by planned instant */
    size_t n_retries, cap_retries;
    bool in_tick;
    bool storing; /* runs started this tick wait for sched_store_runs() */
    /* clocks */
    int64_t last_wall;
    uint64_t last_mono;
    bool rewind;                         /* the wall clock went back: commit the mark lower */
    int64_t boot_wall;                   /* before this, the daemon was not running */
    int64_t jump_from, jump_to, jump_ms; /* last forward jump seen */
    int64_t sub_id;
    bool started, stopping;
    sched_stats stats;
};

/* scheduler.c: aim the timer at the earliest fire (or the next clock check). */
void sched_rearm(sched *s);

/* sched_heap.c: heap by next_ms, and the id map. */
int sched_heap_push(sched *s, sched_entry *e);
void sched_heap_remove(sched *s, sched_entry *e);
/* The entry's next_ms changed while in the heap: move it to its place. */
void sched_heap_fix(sched *s, sched_entry *e);
sched_entry *sched_heap_top(sched *s);
int sched_map_put(sched *s, sched_entry *e);
sched_entry *sched_map_get(sched *s, const char *id);
void sched_map_del(sched *s, sched_entry *e);
void sched_entry_free(sched_entry *e);
/* Grow an array of `size`-byte items to hold n + 1. */
int sched_grow(void **arr, size_t *cap, size_t n, size_t size);

/* sched_plan.c: what a due entry's fires become (misfire, then overlap). */
int sched_plan_due(sched *s, sched_entry *e, int64_t now_ms);
int sched_plan_drain(sched *s, sched_entry *e);
int64_t sched_compute_next(const sched_entry *e);
int sched_add_action(sched *s, sched_entry *e, enum sched_act_kind kind, int64_t planned_ms,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int sched_mark_dirty(sched *s, sched_entry *e);

/* sched_fire.c: carrying out actions, run tracking. */
void sched_perform(sched *s);
/* Store the runs sched_perform() started (one commit), before the progress. */
void sched_store_runs(sched *s);
size_t sched_active_count(sched *s, sched_entry *e);
void sched_on_run_state(const event *ev, void *ud);
int sched_active_add(sched_entry *e, const char *run_id);
/* A run of `e` ended: start its next queued fire on the next loop turn. */
void sched_want_drain(sched *s, sched_entry *e);

/* sched_fire.c, for the retries: what a fire of `e` at `planned_ms` asks the executor; a run
 * stored; a start that failed for good (an error and a missed run); a missed run recorded and
 * announced, or kept to try again when its store failed for a passing reason (its result: 0
 * then; < 0 when the fire is in no record). */
exec_run_spec sched_spec_of(const sched_entry *e, int64_t planned_ms);
void sched_started(sched *s, sched_entry *e, const char *run_id, int64_t planned_ms);
void sched_refuse_start(sched *s, sched_entry *e, const exec_run_spec *spec, int rc,
                        const char *err);
int sched_record_missed(sched *s, sched_entry *e, const exec_run_spec *spec, const char *why);
/* The log line, the count and the event of a missed run stored as `run_id` ("" when none). */
void sched_missed_announce(sched *s, sched_entry *e, int64_t planned_ms, const char *run_id,
                           const char *why);

/* sched_retry.c: fires to try again. Whether a store's failure passes by itself. */
bool sched_transient(int rc);
/* Keep the fire of `e` at `planned_ms` that failed with `rc` (`why`), tried next in 0.5 s, or
 * on the next wake when `at_once` (its commit was shared: another fire may have failed it);
 * OPSC_ENOSPC when the list is full. */
int sched_retry_keep(sched *s, sched_entry *e, int64_t planned_ms, int rc, const char *why,
                     bool at_once);
/* Keep the missed record of `e` at `planned_ms` (reason `why`) whose store failed with the
 * passing `rc`, tried again until stored or 10 minutes late; OPSC_ENOSPC when the list is full. */
int sched_retry_keep_missed(sched *s, sched_entry *e, int64_t planned_ms, int rc, const char *why);
/* Try the fires whose time came, oldest first (each schedule's in order). */
void sched_retry_run(sched *s);
/* Milliseconds until the next try is due (0: now), or -1 when none waits. */
int64_t sched_retry_wait(sched *s);
/* The oldest planned instant waiting, or -1: the handled-through mark stays before it. */
int64_t sched_retry_oldest(const sched *s);
/* Forget the fires of `e` waiting (it changed, was paused or deleted): with `why`, each becomes
 * a missed-run action for sched_perform(). */
void sched_retry_forget(sched *s, sched_entry *e, const char *why);
/* Forget every waiting fire (the scheduler stops), each logged with `why`. */
void sched_retry_drop_all(sched *s, const char *why);

/* sched_state.c: persistence of last_ms and the queue. */
int sched_state_load(sched *s, char *err, size_t errlen);
/* Commit the dirty entries' states and, when `through_ms` >= 0, the mark
 * "every fire planned at or before through_ms has been handled". */
int sched_state_save(sched *s, int64_t through_ms);

#endif
