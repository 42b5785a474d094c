/* dprofile_sched.c - firing profiles on their cron schedules (the scheduler's engine and DST
 * rule): one timer for the earliest, a fire that finds the last scan still running is skipped.
 *
 * Cluster mode: every node keeps the schedules (reloaded when another node
 * changes a profile), only the leader fires, and each planned instant once:
 * its fire is a row of opsc_fires, fenced by the leader's epoch like a
 * schedule's (docs/cluster.md 2.6). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "cluster.h"
#include "core.h"
#include "cron.h"
#include "discovery_internal.h"
#include "log.h"
#include "util.h"

#define MAX_SLEEP_MS 60000 /* wake at least this often: a wall-clock jump is noticed */

typedef struct entry {
    char id[40];
    char spec[160]; /* "cron|timezone": a reload keeps `next` while this stays */
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
    snprintf(e.spec, sizeof(e.spec), "%s|%s", json_string_value(json_object_get(rec, "cron")),
             json_string_value(json_object_get(rec, "timezone")) ?: "");
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

typedef struct fire_claim {
    const char *node, *profile;
    int64_t epoch, planned_ms;
} fire_claim;

static int claim_txn(store_txn *txn, void *ud)
{
    fire_claim *f = ud;
    char key[64];
    snprintf(key, sizeof(key), "discovery_profile:%s", f->profile);
    return store_cluster_fire(txn, f->node, f->epoch, key, f->planned_ms, f->profile);
}

/* One daemon fires; in a cluster the leader, once per planned instant (a
 * leader that stepped down or overlapped with the next one for a moment
 * finds the fire taken or its epoch fenced). The scan starts after the
 * fire's commit: a leader dying in between loses that one scan. */
static bool fire_is_mine(dprof_sched *s, const entry *e, int64_t planned)
{
    struct opsc_core *c = s->d->core;
    int64_t epoch = 0;
    if (!c->cluster)
        return true;
    if (!cluster_leading(c->cluster, &epoch))
        return false;
    fire_claim f = {c->node_id, e->id, epoch, planned * 1000};
    int rc = store_write(c->store, claim_txn, &f);
    if (rc == OPSC_EEXIST)
        log_info("discovery", "profile %s: the scan planned at %lld was fired already", e->id,
                 (long long)planned);
    else if (rc < 0)
        log_warn("discovery", "profile %s: the scheduled scan is not started: %s", e->id,
                 opsc_strerror(rc));
    return rc == 0;
}

static void fire(dprof_sched *s, entry *e, int64_t planned)
{
    discovery *d = s->d;
    json_t *rec = NULL;
    if (!fire_is_mine(s, e, planned))
        return;
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
        int64_t planned = e->next;
        e->next = cron_next(&e->cron, e->tz, now);
        fire(s, e, planned);
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

int dprof_sched_reload(dprof_sched *s)
{
    entry *old = s->v;
    size_t nold = s->n, cap = s->cap;
    s->v = NULL;
    s->n = s->cap = 0;
    int rc = store_read(s->d->core->store, load_txn, s);
    if (rc < 0) { /* keep what it had */
        free(s->v);
        s->v = old;
        s->n = nold;
        s->cap = cap;
        return rc;
    }
    for (size_t i = 0; i < s->n; i++)
        for (size_t j = 0; j < nold; j++)
            if (!strcmp(s->v[i].id, old[j].id) && !strcmp(s->v[i].spec, old[j].spec))
                s->v[i].next = old[j].next;
    free(old);
    arm(s);
    return 0;
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
