/* dprofile_sched.c - firing profiles on their cron schedules (the scheduler's engine and DST
 * rule): one timer for the earliest, a fire that finds the last scan still running is skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "cron.h"
#include "discovery_internal.h"
#include "log.h"
#include "util.h"

#define MAX_SLEEP_MS 60000 /* wake at least this often: a wall-clock jump is noticed */

typedef struct entry {
    char id[40];
    cron_t cron;
    const tz_t *tz;
    int64_t next; /* unix s; CRON_NONE when it will not fire again */
} entry;

struct dprof_sched {
    discovery *d;
    uv_timer_t timer;
    entry *v;
    size_t n, cap;
    bool stopped;
    void (*closed)(void *ud);
    void *closed_ud;
};

static int64_t now_s(void)
{
    return clock_now_ms() / 1000;
}

static void arm(dprof_sched *s);

static void drop(dprof_sched *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].id, id) == 0) {
            s->v[i] = s->v[--s->n];
            return;
        }
}

static int add(dprof_sched *s, const json_t *rec)
{
    entry e = {0};
    if (!json_is_true(json_object_get(rec, "enabled")) || !dprof_schedule(rec, &e.cron, &e.tz))
        return 0;
    snprintf(e.id, sizeof(e.id), "%s", json_string_value(json_object_get(rec, "id")));
    e.next = cron_next(&e.cron, e.tz, now_s());
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        entry *v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return OPSC_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = e;
    return 0;
}

static int load_one(const char *id, json_t *rec, void *ud)
{
    (void)id;
    return add(ud, rec);
}

static int load_txn(store_txn *txn, void *ud)
{
    return store_scan(txn, "discovery_profiles", NULL, false, load_one, ud);
}

static bool scan_running(discovery *d, const char *pid)
{
    for (dscan *sc = d->scans; sc; sc = sc->next)
        if (strcmp(sc->profile_id, pid) == 0)
            return true;
    return false;
}

static void fire(dprof_sched *s, entry *e)
{
    discovery *d = s->d;
    json_t *rec = NULL;
    if (scan_running(d, e->id)) {
        log_warn("discovery", "profile %s: its last scan is still running: this fire is skipped",
                 e->id);
        return;
    }
    if (discovery_profile_get(d, e->id, &rec) == 0) {
        log_info("discovery", "profile %s (%s): scheduled scan", e->id,
                 json_string_value(json_object_get(rec, "name")));
        dprof_start_scan(d, rec, "schedule", NULL, NULL);
    }
    json_decref(rec);
}

/* Fires due now go, each then looks for its next instant after now (a
 * daemon that slept through several fires scans once, not once per fire). */
static void on_timer(uv_timer_t *t)
{
    dprof_sched *s = t->data;
    int64_t now = now_s();
    for (size_t i = 0; i < s->n && !s->stopped; i++) {
        entry *e = &s->v[i];
        if (e->next == CRON_NONE || e->next > now)
            continue;
        e->next = cron_next(&e->cron, e->tz, now);
        fire(s, e);
    }
    arm(s);
}

static void arm(dprof_sched *s)
{
    if (s->stopped)
        return;
    int64_t earliest = CRON_NONE;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].next != CRON_NONE && (earliest == CRON_NONE || s->v[i].next < earliest))
            earliest = s->v[i].next;
    int64_t wait = MAX_SLEEP_MS;
    if (earliest != CRON_NONE) {
        int64_t ms = earliest * 1000 - clock_now_ms();
        wait = ms < 0 ? 0 : ms < MAX_SLEEP_MS ? ms : MAX_SLEEP_MS;
    }
    uv_timer_start(&s->timer, on_timer, (uint64_t)wait, 0);
}

int dprof_sched_new(discovery *d, dprof_sched **out)
{
    dprof_sched *s = calloc(1, sizeof(*s));
    if (!s)
        return OPSC_ENOMEM;
    s->d = d;
    uv_timer_init(d->core->loop, &s->timer);
    s->timer.data = s;
    *out = s;
    int rc = store_read(d->core->store, load_txn, s);
    if (rc == 0)
        arm(s);
    return rc;
}

void dprof_sched_update(dprof_sched *s, const char *id)
{
    if (!s)
        return;
    drop(s, id);
    json_t *rec = NULL;
    if (dsc_get(s->d, "discovery_profiles", id, &rec) == 0)
        add(s, rec);
    json_decref(rec);
    arm(s);
}

int64_t dprof_sched_next(dprof_sched *s, const char *id)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (strcmp(s->v[i].id, id) == 0)
            return s->v[i].next == CRON_NONE ? -1 : s->v[i].next;
    return -1;
}

void dprof_sched_stop(dprof_sched *s)
{
    s->stopped = true;
    uv_timer_stop(&s->timer);
}

static void on_closed(uv_handle_t *h)
{
    dprof_sched *s = h->data;
    void (*cb)(void *) = s->closed;
    void *ud = s->closed_ud;
    free(s->v);
    free(s);
    if (cb)
        cb(ud);
}

void dprof_sched_free(dprof_sched *s)
{
    if (s) {
        free(s->v);
        free(s);
    }
}

void dprof_sched_close(dprof_sched *s, void (*cb)(void *ud), void *ud)
{
    dprof_sched_stop(s);
    s->closed = cb;
    s->closed_ud = ud;
    uv_close((uv_handle_t *)&s->timer, on_closed);
}
