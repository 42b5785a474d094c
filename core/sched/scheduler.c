/* scheduler.c - the scheduling service's lifecycle, its timer and wake, and changes from the API.
 */
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <opsc/errors.h>

#include "civil.h"
#include "events.h"
#include "log.h"
#include "sched_internal.h"
#include "store.h"

static const struct sched_cfg default_cfg = {
    .misfire_grace_ms = 3600000,
    .misfire_threshold_ms = 1000,
    .run_all_max = 10,
    .missed_max = 100,
    .overlap_limit = 10,
    .clock_check_ms = 5000,
};

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int sched_new(sched **out, const sched_opts *o)
{
    sched *s = calloc(1, sizeof(*s));
    if (!s)
        return OPSC_ENOMEM;
    s->loop = o->loop;
    s->store = o->store;
    s->events = o->events;
    sched_set_exec(s, o->exec, o->exec_ops);
    s->cfg = o->cfg ? *o->cfg : default_cfg;
    s->dft.misfire_grace_ms = s->cfg.misfire_grace_ms;
    s->dft.overlap_limit = s->cfg.overlap_limit;
    s->mono_ms = o->mono_ms ? o->mono_ms : clock_mono_ms;
    uv_timer_init(s->loop, &s->timer);
    uv_timer_init(s->loop, &s->kick);
    uv_check_init(s->loop, &s->slice);
    uv_idle_init(s->loop, &s->slice_idle);
    s->timer.data = s->kick.data = s->slice.data = s->slice_idle.data = s;
    *out = s;
    return 0;
}

void sched_set_exec(sched *s, exec *ex, const sched_exec_ops *ops)
{
    s->exec = ex && ops ? ex : NULL;
    s->ops = ex && ops ? ops : NULL;
}

static void on_timer(uv_timer_t *t)
{
    sched_tick(t->data);
}

/* Sleep until the earliest fire, but never longer than clock_check_interval,
 * so that a jump of the wall clock is seen soon after it happens. */
void sched_rearm(sched *s)
{
    if (!s->started || s->stopping)
        return;
    int64_t delay = s->cfg.clock_check_ms;
    sched_entry *top = sched_heap_top(s);
    if (top) {
        int64_t d = top->next_ms - clock_now_ms();
        delay = d < 0 ? 0 : d < delay ? d : delay;
    }
    int64_t retry = sched_retry_wait(s);
    if (retry >= 0 && retry < delay)
        delay = retry;
    uv_update_time(s->loop);
    uv_timer_start(&s->timer, on_timer, (uint64_t)delay, 0);
}

int sched_start(sched *s, char *err, size_t errlen)
{
    int rc = sched_state_load(s, err, errlen);
    if (rc < 0)
        return rc;
    int64_t sub = events_subscribe(s->events, "run.state", NULL, sched_on_run_state, s);
    if (sub < 0) {
        snprintf(err, errlen, "scheduler: subscribing to run states: %s", opsc_strerror((int)sub));
        return (int)sub;
    }
    s->sub_id = sub;
    s->boot_wall = clock_now_ms();
    s->started = true;
    for (size_t i = 0; i < s->nbuckets; i++) /* queued fires survive a restart */
        for (sched_entry *e = s->buckets[i]; e; e = e->map_next)
            sched_want_drain(s, e);
    uv_timer_start(&s->timer, on_timer, 0, 0);
    return 0;
}

void sched_stop(sched *s)
{
    s->stopping = true;
    sched_retry_drop_all(s, "the scheduler stopped (a step-down, a reload or the daemon's stop)");
    uv_timer_stop(&s->timer);
    uv_timer_stop(&s->kick);
    uv_check_stop(&s->slice);
    uv_idle_stop(&s->slice_idle);
}

static void free_all(sched *s)
{
    for (size_t i = 0; i < s->nbuckets; i++) {
        sched_entry *e = s->buckets[i], *next;
        for (; e; e = next) {
            next = e->map_next;
            sched_entry_free(e);
        }
    }
    free(s->buckets);
    free(s->heap);
    free(s->acts);
    free(s->dirty);
    free(s->drains);
    free(s->retries);
    free(s->scratch);
    free(s);
}

static void on_closed(uv_handle_t *h)
{
    sched *s = h->data;
    if (--s->closing_handles == 0)
        free_all(s);
}

void sched_close(sched *s)
{
    if (!s)
        return;
    sched_stop(s);
    if (s->sub_id > 0)
        events_unsubscribe(s->events, s->sub_id);
    s->sub_id = 0;
    s->closing_handles = 4;
    uv_close((uv_handle_t *)&s->timer, on_closed);
    uv_close((uv_handle_t *)&s->kick, on_closed);
    uv_close((uv_handle_t *)&s->slice, on_closed);
    uv_close((uv_handle_t *)&s->slice_idle, on_closed);
}

/* ---- the wake ---------------------------------------------------------------------------------
 */

/* After the wall clock went back, the handled-through mark is written lower
 * than fires already handled (else schedules created from now on would seem
 * handled up to the old mark): those entries keep their own progress. */
static void keep_progress(sched *s, int64_t wall)
{
    for (size_t i = 0; i < s->nbuckets; i++)
        for (sched_entry *e = s->buckets[i]; e; e = e->map_next)
            if (e->last_ms > wall && sched_mark_dirty(s, e) < 0)
                log_error("sched", "schedule %s: out of memory saving its progress", e->def.id);
}

/* Wall time should have moved as much as monotonic time since the last wake;
 * a difference is a step of the wall clock (NTP, an operator) or a suspend
 * (CLOCK_MONOTONIC stops while suspended). */
static void observe_clocks(sched *s, int64_t wall, uint64_t mono)
{
    if (s->last_mono) {
        int64_t mono_el = (int64_t)(mono - s->last_mono);
        int64_t drift = (wall - s->last_wall) - mono_el;
        if (drift > s->cfg.misfire_threshold_ms) {
            s->jump_from = s->last_wall + mono_el;
            s->jump_to = wall;
            s->jump_ms = drift;
            s->stats.jumps++;
            log_warn("sched",
                     "the wall clock jumped forward by %lld ms: fires in between are "
                     "misfires",
                     (long long)drift);
        } else if (drift < -s->cfg.misfire_threshold_ms) {
            s->stats.jumps++;
            keep_progress(s, wall);
            s->rewind = true; /* the mark moves back with the clock, at once */
            log_warn("sched",
                     "the wall clock went back by %lld ms: fires already handled are "
                     "not repeated",
                     (long long)-drift);
        }
    }
    s->last_wall = wall;
    s->last_mono = mono;
}

/* The next slice runs after the I/O of this loop turn, which does not wait
 * (the idle handle): a timer would give the CPU away between slices, and on
 * a busy machine getting it back costs more than the slice. */
static void on_slice(uv_check_t *h)
{
    sched *s = h->data;
    uv_check_stop(&s->slice);
    uv_idle_stop(&s->slice_idle);
    sched_tick(s);
}

static void on_slice_idle(uv_idle_t *h)
{
    (void)h;
}

/* Fires one wake carries out at most: a burst (10,000 schedules at second 0)
 * goes in slices, and the loop answers HTTP and ends runs between them. */
#define SLICE_FIRES 256
#define SLICE_NS    (5 * 1000000ull)

/* Each entry's fires are decided and carried out before the next entry's,
 * so the first runs of a burst do not wait for the last ones' decisions.
 * True when due entries were left for the next slice. */
static bool fire_due(sched *s, int64_t now)
{
    uint64_t t0 = uv_hrtime();
    for (size_t i = 0; i < s->n_drains; i++) {
        if (sched_plan_drain(s, s->drains[i]) < 0)
            log_error("sched", "out of memory starting a queued fire");
        sched_perform(s);
    }
    s->n_drains = 0;
    sched_entry *e;
    for (size_t n = 0; (e = sched_heap_top(s)) && e->next_ms <= now; n++) {
        if (n == SLICE_FIRES || uv_hrtime() - t0 > SLICE_NS)
            return true;
        if (sched_plan_due(s, e, now) < 0)
            log_error("sched", "schedule %s: out of memory deciding its fires", e->def.id);
        e->next_ms = sched_compute_next(e);
        if (e->next_ms == SCHED_NO_FIRE)
            sched_heap_remove(s, e);
        else
            sched_heap_fix(s, e); /* one sift instead of a removal and a push */
        sched_perform(s);
    }
    return false;
}

void sched_tick(sched *s)
{
    if (s->in_tick)
        return;
    uint64_t cpu0 = thread_cpu_ns();
    int64_t now = clock_now_ms();
    bool more = false;
    s->in_tick = true;
    s->stats.ticks++;
    observe_clocks(s, now, s->mono_ms());
    if (s->started && !s->stopping) {
        sched_entry *top = sched_heap_top(s);
        bool due = (top && top->next_ms <= now) || s->rewind;
        s->rewind = false;
        sched_retry_run(s); /* older instants first */
        more = fire_due(s, now);
        sched_store_runs(s); /* the slice's runs in one commit, before the mark */
        /* After the runs started, so that no fsync stands between a fire's
         * instant and its run; a crash before this commit is made good at
         * the next start from the runs the executor committed (PERSISTENCE).
         * With fires left for the next slice, the mark stops before the
         * earliest of them. */
        int64_t through = due ? now : -1;
        if (more && (top = sched_heap_top(s)) && top->next_ms <= now)
            through = top->next_ms - 1;
        /* Nor past a fire still to be tried again: if this scheduler stops before it is stored
         * (a step-down, a crash), the next one decides it as a misfire, not as handled. */
        int64_t waiting = sched_retry_oldest(s);
        if (through >= 0 && waiting >= 0 && waiting <= through)
            through = waiting - 1;
        /* Between the slices of a burst only the mark would change, and the
         * runs committed stand for it after a crash: its fsync would stand
         * between the remaining fires and their runs. The last slice writes it. */
        if (!more || s->n_dirty)
            sched_state_save(s, through);
    }
    s->in_tick = false;
    if (more) {
        uv_timer_stop(&s->timer);
        uv_check_start(&s->slice, on_slice);
        uv_idle_start(&s->slice_idle, on_slice_idle);
    } else {
        sched_rearm(s);
    }
    s->stats.tick_ns += thread_cpu_ns() - cpu0;
}

int64_t sched_next_fire_ms(sched *s)
{
    sched_entry *top = sched_heap_top(s);
    return top ? top->next_ms : -1;
}

void sched_get_stats(sched *s, sched_stats *st)
{
    *st = s->stats;
    st->schedules = s->count;
    st->armed = s->heap_n;
    st->retrying = s->n_retries;
}
