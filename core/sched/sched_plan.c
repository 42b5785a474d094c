/* sched_plan.c - deciding what a due schedule's fires become: misfire policy, then overlap policy.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "civil.h"
#include "exec/exec.h"
#include "sched_internal.h"

static int64_t floor_s(int64_t ms)
{
    return civil_floor_div(ms, 1000);
}

/* Fires lie strictly after this instant (seconds): the last one handled, and
 * not before start_at. */
static int64_t lower_bound_s(const sched_entry *e)
{
    int64_t from = floor_s(e->last_ms);
    if (e->def.start_ms != SCHED_TIME_NONE_LO) {
        int64_t st = -civil_floor_div(-e->def.start_ms, 1000) - 1; /* ceil(start) - 1 */
        if (st > from)
            from = st;
    }
    return from;
}

static int64_t end_s(const sched_entry *e)
{
    return e->def.end_ms == SCHED_TIME_NONE_HI ? CRON_TIME_MAX : floor_s(e->def.end_ms);
}

int64_t sched_compute_next(const sched_entry *e)
{
    if (!e->valid || !e->def.enabled)
        return SCHED_NO_FIRE;
    int64_t lower = lower_bound_s(e);
    int64_t t = e->hint_after == lower ? e->hint_next : cron_next(&e->def.cron, e->def.tz, lower);
    if (t == CRON_NONE || t > end_s(e))
        return SCHED_NO_FIRE;
    return t * 1000;
}

int sched_mark_dirty(sched *s, sched_entry *e)
{
    if (e->dirty)
        return 0;
    int rc = sched_grow((void **)&s->dirty, &s->cap_dirty, s->n_dirty, sizeof(*s->dirty));
    if (rc == 0) {
        s->dirty[s->n_dirty++] = e;
        e->dirty = true;
    }
    return rc;
}

int sched_add_action(sched *s, sched_entry *e, enum sched_act_kind kind, int64_t planned_ms,
                     const char *fmt, ...)
{
    int rc = sched_grow((void **)&s->acts, &s->cap_acts, s->n_acts, sizeof(*s->acts));
    if (rc < 0)
        return rc;
    sched_action *a = &s->acts[s->n_acts++];
    memset(a, 0, sizeof(*a));
    a->e = e;
    a->kind = kind;
    a->planned_ms = planned_ms;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(a->why, sizeof(a->why), fmt, ap);
        va_end(ap);
    }
    if (kind == SCHED_ACT_RUN)
        e->starting++;
    return 0;
}

/* ---- overlap ----------------------------------------------------------------------------------
 */

static void text_of(int64_t ms, char out[40])
{
    sched_format_utc(floor_s(ms), out);
}

/* Earlier starts of this tick lose to a later fire under `replace`. */
static void replace_earlier(sched *s, sched_entry *e, int64_t planned_ms)
{
    char at[40];
    text_of(planned_ms, at);
    for (size_t i = 0; i < s->n_acts; i++) {
        sched_action *a = &s->acts[i];
        if (a->e != e || a->kind != SCHED_ACT_RUN)
            continue;
        a->kind = SCHED_ACT_MISS;
        snprintf(a->why, sizeof(a->why),
                 "overlap: replaced by the later fire at %s (overlap_policy replace)", at);
        e->starting--;
    }
}

static int enqueue(sched *s, sched_entry *e, int64_t planned_ms)
{
    int rc = sched_grow((void **)&e->queue, &e->cap_queue, e->n_queue, sizeof(*e->queue));
    if (rc == 0) {
        e->queue[e->n_queue++] = planned_ms;
        rc = sched_mark_dirty(s, e);
    }
    return rc;
}

/* A fire that is to run meets the runs still active. */
static int plan_run(sched *s, sched_entry *e, int64_t t_ms)
{
    size_t active = sched_active_count(s, e) + e->starting;
    long long limit = (long long)e->def.overlap_limit;
    switch (e->def.overlap) {
    case SCHED_OVERLAP_ALLOW:
        if ((long long)active >= limit)
            return sched_add_action(
                s, e, SCHED_ACT_MISS, t_ms,
                "overlap: %zu runs of this schedule are active (overlap_policy allow, up to %lld)",
                active, limit);
        break;
    case SCHED_OVERLAP_FORBID:
        if (active > 0)
            return sched_add_action(
                s, e, SCHED_ACT_MISS, t_ms,
                "overlap: a run of this schedule is still active (overlap_policy forbid)");
        break;
    case SCHED_OVERLAP_REPLACE:
        replace_earlier(s, e, t_ms);
        if (sched_add_action(s, e, SCHED_ACT_RUN, t_ms, NULL) < 0)
            return OPSC_ENOMEM;
        s->acts[s->n_acts - 1].replace = true;
        return 0;
    case SCHED_OVERLAP_QUEUE:
        if (active == 0)
            break;
        if ((long long)e->n_queue < limit)
            return enqueue(s, e, t_ms);
        return sched_add_action(s, e, SCHED_ACT_MISS, t_ms,
                                "overlap: %zu fires already wait for the active run "
                                "(overlap_policy queue, up to %lld)",
                                e->n_queue, limit);
    }
    return sched_add_action(s, e, SCHED_ACT_RUN, t_ms, NULL);
}

int sched_plan_drain(sched *s, sched_entry *e)
{
    e->drain = false;
    if (!e->n_queue || sched_active_count(s, e) + e->starting > 0)
        return 0;
    int64_t t = e->queue[0];
    memmove(e->queue, e->queue + 1, (e->n_queue - 1) * sizeof(*e->queue));
    e->n_queue--;
    int rc = sched_mark_dirty(s, e);
    return rc ? rc : sched_add_action(s, e, SCHED_ACT_RUN, t, NULL);
}

/* ---- misfire ----------------------------------------------------------------------------------
 */

/* Why a fire was late: the one cause the clocks tell. */
static void cause_of(const sched *s, int64_t t_ms, int64_t now_ms, char *out, size_t n)
{
    if (t_ms < s->boot_wall)
        snprintf(out, n, "the daemon was not running");
    else if (s->jump_ms > 0 && t_ms >= s->jump_from && t_ms <= s->jump_to)
        snprintf(out, n, "the wall clock jumped forward by %lld s (clock step or suspend)",
                 (long long)(s->jump_ms / 1000));
    else
        snprintf(out, n, "the scheduler woke %lld ms late", (long long)(now_ms - t_ms));
}

/* The due instants (seconds, ascending) in (lower, upper], at most `max`;
 * *more when older ones were left out. */
static int collect_due(sched *s, sched_entry *e, int64_t upper, size_t max, size_t *n, bool *more)
{
    const cron_t *c = &e->def.cron;
    int64_t lower = lower_bound_s(e), first = floor_s(e->next_ms);
    int64_t second = cron_next(c, e->def.tz, first);
    *more = false;
    if (second == CRON_NONE || second > upper) { /* the usual case: one fire */
        e->hint_after = first; /* and `second` is the next one: no need to compute it again */
        e->hint_next = second;
        s->scratch[0] = first;
        *n = 1;
        return 0;
    }
    /* Many: walk back from now, so a month of downtime costs `max` steps. */
    size_t k = 0;
    int64_t t = cron_prev(c, e->def.tz, upper + 1);
    while (t != CRON_NONE && t > lower && k < max) {
        s->scratch[k++] = t;
        t = cron_prev(c, e->def.tz, t);
    }
    *more = t != CRON_NONE && t > lower;
    for (size_t i = 0; i < k / 2; i++) {
        int64_t x = s->scratch[i];
        s->scratch[i] = s->scratch[k - 1 - i];
        s->scratch[k - 1 - i] = x;
    }
    *n = k;
    return 0;
}

typedef struct due_plan {
    size_t n;        /* instants collected */
    size_t on_time;  /* the last on_time ones are on time */
    size_t grace_lo; /* late ones from here on are within the grace period */
    size_t run_lo;   /* late ones from here on run (up to n - on_time) */
} due_plan;

static void classify(const sched *s, const sched_entry *e, int64_t now_ms, size_t n, due_plan *p)
{
    const int64_t *t = s->scratch;
    p->n = n;
    p->on_time = 0;
    while (p->on_time < n && now_ms - t[n - 1 - p->on_time] * 1000 <= s->cfg.misfire_threshold_ms)
        p->on_time++;
    size_t late = n - p->on_time;
    p->grace_lo = late;
    while (p->grace_lo > 0 && now_ms - t[p->grace_lo - 1] * 1000 <= e->def.grace_ms)
        p->grace_lo--;
    size_t in_grace = late - p->grace_lo, runs = 0;
    if (e->def.misfire == SCHED_MISFIRE_RUN_ONCE)
        runs = p->on_time == 0 && in_grace > 0 ? 1 : 0;
    else if (e->def.misfire == SCHED_MISFIRE_RUN_ALL)
        runs = in_grace < (size_t)s->cfg.run_all_max ? in_grace : (size_t)s->cfg.run_all_max;
    p->run_lo = late - runs;
}

static const char *policy_name(enum sched_misfire m)
{
    return m == SCHED_MISFIRE_SKIP ? "skip" : m == SCHED_MISFIRE_RUN_ONCE ? "run_once" : "run_all";
}

static int plan_late_miss(sched *s, sched_entry *e, const due_plan *p, size_t i, int64_t now_ms)
{
    int64_t t_ms = s->scratch[i] * 1000;
    char cause[128];
    cause_of(s, t_ms, now_ms, cause, sizeof(cause));
    if (i < p->grace_lo)
        return sched_add_action(
            s, e, SCHED_ACT_MISS, t_ms, "misfire: %s; %lld s late, past the grace period of %lld s",
            cause, (long long)((now_ms - t_ms) / 1000), (long long)(e->def.grace_ms / 1000));
    if (e->def.misfire == SCHED_MISFIRE_RUN_ALL)
        return sched_add_action(s, e, SCHED_ACT_MISS, t_ms,
                                "misfire: %s; over the cap of %lld late fires run "
                                "(misfire_policy run_all)",
                                cause, (long long)s->cfg.run_all_max);
    return sched_add_action(s, e, SCHED_ACT_MISS, t_ms, "misfire: %s; misfire_policy %s%s", cause,
                            policy_name(e->def.misfire),
                            e->def.misfire == SCHED_MISFIRE_RUN_ONCE ? " runs one fire only" : "");
}

/* Fires older than those recorded one by one, in one record. */
static int plan_summary(sched *s, sched_entry *e, int64_t upto_s, int64_t now_ms)
{
    int64_t first = cron_next(&e->def.cron, e->def.tz, lower_bound_s(e));
    char a[40], b[40], cause[128];
    sched_format_utc(first, a);
    sched_format_utc(upto_s, b);
    cause_of(s, first * 1000, now_ms, cause, sizeof(cause));
    return sched_add_action(s, e, SCHED_ACT_MISS, first * 1000,
                            "misfire: %s; every fire from %s until before %s was missed "
                            "(more than missed_max = %lld: not recorded one by one)",
                            cause, a, b, (long long)s->cfg.missed_max);
}

static int ensure_scratch(sched *s, size_t n)
{
    if (s->cap_scratch >= n)
        return 0;
    int64_t *p = realloc(s->scratch, n * sizeof(*p));
    if (!p)
        return OPSC_ENOMEM;
    s->scratch = p;
    s->cap_scratch = n;
    return 0;
}

int sched_plan_due(sched *s, sched_entry *e, int64_t now_ms)
{
    size_t max = (size_t)(s->cfg.missed_max + s->cfg.run_all_max) + 64, n = 0;
    bool more = false;
    int64_t upper = floor_s(now_ms) < end_s(e) ? floor_s(now_ms) : end_s(e);
    int rc = ensure_scratch(s, max);
    if (rc == 0)
        rc = collect_due(s, e, upper, max, &n, &more);
    if (rc < 0 || n == 0)
        return rc;
    due_plan p;
    classify(s, e, now_ms, n, &p);
    /* Misses beyond missed_max fold into the summary with what was left out. */
    size_t misses = p.run_lo,
           fold = misses > (size_t)s->cfg.missed_max ? misses - (size_t)s->cfg.missed_max : 0;
    if (more || fold)
        rc = plan_summary(s, e, s->scratch[fold], now_ms);
    for (size_t i = fold; rc == 0 && i < n; i++) {
        if (i < p.run_lo)
            rc = plan_late_miss(s, e, &p, i, now_ms);
        else
            rc = plan_run(s, e, s->scratch[i] * 1000);
    }
    e->last_ms = e->last_fire_ms = s->scratch[n - 1] * 1000; /* saved by the wake's mark */
    return rc;
}
