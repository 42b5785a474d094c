/* cluster.c - cluster mode on the loop: heartbeats and the leader lease, the scheduler started
 * on the leader and stopped when it steps down (cluster.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "api.h"
#include "build_config.h"
#include "cluster.h"
#include "core.h"
#include "discovery.h"
#include "exec.h"
#include "log.h"
#include "notify.h"
#include "scheduler.h"
#include "store.h"
#include "util.h"

struct cluster {
    struct opsc_core *core;
    uv_timer_t timer;
    uv_timer_t deadline_timer; /* steps a leader down when its lease was not renewed */
    uv_timer_t probe_timer;    /* a connection made without waiting while the store is silent */
    uint64_t probe_began;
    bool stopped; /* cluster_stop(): no more beats */
    bool left;
    char address[300];
    char *labels; /* [cluster] labels as JSON text, for the beat */
    int64_t interval_ms, lease_ms;
    /* the last beat's answer */
    uint64_t sent_mono;
    int rc;
    store_lease got;
    int64_t sched_version; /* the count of schedule changes (store_version_bump); -1 unread */
    json_t *view; /* the leader's view of the nodes (store_cluster_view), for the reaper */
    json_t *versions_now; /* store_cluster_versions, this beat */
    /* loop state */
    bool leading;
    int64_t epoch;
    uint64_t deadline_mono; /* step down at this instant unless renewed */
    int64_t sched_loaded;   /* sched_version when the scheduler loaded; -1 none */
    unsigned own_changes;   /* this node's since then, already in its scheduler */
    json_t *versions;       /* the versions of what this node caches, as last reloaded */
    size_t dead_seen;       /* dead nodes at the last reaping */
    unsigned beats;
    unsigned sweeps; /* beats led, for the sweeping */
};

#define SWEEP_BEATS  100                 /* the leader sweeps every this many beats */
#define DEAD_ROWS_MS (3600 * 1000LL)      /* a dead node stays listed this long */
#define FIRES_MS     (30 * 86400 * 1000LL) /* fires kept without a log retention */

/* Fires are kept as long as the logs of runs (the run records stay). */
static int64_t fires_kept(const struct opsc_core *c)
{
    int64_t keep = c->cfg.executor.log_retention_ms;
    return keep > 0 ? keep : FIRES_MS;
}

/* One heartbeat, synchronously like every store call (docs/cluster.md
 * 1.2): a few statements every lease_ttl / 5, bounded by the connections'
 * statement_timeout. (It ran on libuv's thread pool at first: libpq's
 * OpenSSL state on those threads, which outlive OpenSSL's cleanup at exit,
 * was reported leaked in a third of the sanitizer runs.) */
static void beat(cluster *cl)
{
    struct opsc_core *c = cl->core;
    store_node me = {c->node_id, cl->address, OPSC_VERSION, c->started_ms, cl->labels};
    cl->rc = store_cluster_beat(c->store, &me, cl->lease_ms, &cl->got);
    if (cl->rc == 0 && cl->got.leading && store_cluster_view(c->store, cl->lease_ms, &cl->view))
        cl->view = NULL;
    if (cl->rc == 0 && store_cluster_versions(c->store, &cl->versions_now))
        cl->versions_now = NULL;
    cl->sched_version = !cl->versions_now ? -1
                        : json_integer_value(json_object_get(cl->versions_now, "schedules"));
    if (cl->rc == 0) /* alive: so are the claims of the runs it runs */
        exec_renew_leases(c->exec, cl->lease_ms);
}

static void step_down(cluster *cl, const char *why)
{
    if (!cl->leading)
        return;
    cl->leading = false;
    cl->sched_loaded = -1;
    if (cl->core->sched)
        sched_stop(cl->core->sched);
    log_warn("cluster", "node %s stepped down as leader (epoch %lld): %s", cl->core->node_id,
             (long long)cl->epoch, why);
}

/* A new term, or changed schedules while leading: a fresh scheduler loads
 * them all, resuming each after what the store says was fired (as after a
 * restart), so nothing fires twice and a gap is a misfire for the policy. */
static void load_scheduler(cluster *cl, const char *why)
{
    char err[512] = "";
    if (core_sched_open(cl->core, true, err, sizeof(err)) < 0) {
        log_error("cluster", "starting the scheduler failed: %s", err);
        return;
    }
    cl->sched_loaded = cl->sched_version;
    cl->own_changes = 0;
    log_info("cluster", "scheduler (re)started on the leader: %s", why);
}

static void leave(cluster *cl)
{
    if (cl->left)
        return;
    cl->left = true;
    step_down(cl, "the daemon is stopping");
    int rc = store_cluster_leave(cl->core->store, cl->core->node_id);
    if (rc < 0)
        log_warn("cluster", "leaving the cluster failed: %s (the lease lapses by itself)",
                 opsc_strerror(rc));
}

/* The leader marks interrupted what dead nodes left running (exec_reap_nodes,
 * and their discovery scans):
 * when a node died since the last time, and every tenth beat while any is
 * dead (a node may have started runs just before it died). */
static void reap(cluster *cl, json_t *view)
{
    json_t *alive = json_array(), *n;
    size_t i, dead = 0;
    json_array_foreach(json_object_get(view, "nodes"), i, n)
    {
        if (json_is_true(json_object_get(n, "alive")))
            json_array_append(alive, json_object_get(n, "id"));
        else
            dead++;
    }
    if (dead && (dead != cl->dead_seen || ++cl->beats % 10 == 0)) {
        if (cl->core->exec)
            exec_reap_nodes(cl->core->exec, alive);
        discovery_reap_nodes(cl->core->discovery, alive);
    }
    cl->dead_seen = dead;
    json_decref(alive);
}

/* A timer of its own rather than the beat's: beats come every lease_ttl / 5 and the loop
 * may wait up to a connection's timeout in any store call, so a check on the next beat can
 * come after the lease has ended (docs/cluster.md 5). */
static void on_deadline(uv_timer_t *t)
{
    cluster *cl = t->data;
    uint64_t now = clock_mono_ms();
    if (!cl->leading)
        return;
    if (now >= cl->deadline_mono)
        step_down(cl, "the lease could not be renewed in time");
    else /* early: the loop's cached time was behind when the timer was set */
        uv_timer_start(t, on_deadline, cl->deadline_mono - now, 0);
}

/* The answer of a beat: lead (a new term loads the scheduler), go on
 * leading (reload when another node changed schedules), or step down. */
static void beat_apply(cluster *cl)
{
    if (cl->rc < 0)
        return; /* one lost beat is no reason to step down: the deadline's timer decides */
    if (!cl->got.leading) {
        step_down(cl, "another node holds the lease");
        return;
    }
    cl->deadline_mono = cl->sent_mono + (uint64_t)(cl->lease_ms * 2 / 3);
    uint64_t now = clock_mono_ms();
    if (now >= cl->deadline_mono) { /* the answer came too late to lead on */
        step_down(cl, "the lease's renewal answered too late");
        return;
    }
    uv_timer_start(&cl->deadline_timer, on_deadline, cl->deadline_mono - now, 0);
    if (!cl->leading || cl->got.epoch != cl->epoch) {
        cl->leading = true;
        cl->epoch = cl->got.epoch;
        log_info("cluster", "node %s leads (epoch %lld)", cl->core->node_id, (long long)cl->epoch);
        load_scheduler(cl, "new term");
    } else if (cl->sched_version >= 0 && cl->sched_version != cl->sched_loaded) {
        if (cl->sched_loaded >= 0 && cl->sched_version - cl->sched_loaded == cl->own_changes) {
            cl->sched_loaded = cl->sched_version; /* all ours, already in the scheduler */
            cl->own_changes = 0;
        } else {
            load_scheduler(cl, "schedules changed on another node");
        }
    }
}

/* ---- what every node caches ------------------------------------------------------------------ */

static int reload_rules(struct opsc_core *c)
{
    return c->notify ? notify_rules_reload(c->notify) : 0;
}

static int reload_profiles(struct opsc_core *c)
{
    return discovery_profiles_reload(c->discovery);
}

/* Changed in a transaction that bumped their version (store_version_bump):
 * the NOTIFY that announces a change is the fast path, this is the one a
 * broken listening connection cannot lose. The first beat reloads all. */
static const struct {
    const char *name;
    int (*reload)(struct opsc_core *c);
} cached[] = {{"notify_rules", reload_rules}, {"discovery_profiles", reload_profiles}};

static void reload_changed(cluster *cl, json_t *now)
{
    if (!now)
        return;
    for (size_t i = 0; i < sizeof(cached) / sizeof(cached[0]); i++) {
        json_t *was = cl->versions ? json_object_get(cl->versions, cached[i].name) : NULL;
        json_t *is = json_object_get(now, cached[i].name);
        if (!is || json_equal(was, is))
            continue;
        if (cl->versions)
            log_info("cluster", "%s changed (version %lld): reloaded", cached[i].name,
                     (long long)json_integer_value(is));
        int rc = cached[i].reload(cl->core);
        if (rc < 0) { /* not as seen: tried again next beat */
            log_warn("cluster", "reloading %s failed: %s", cached[i].name, opsc_strerror(rc));
            json_object_del(now, cached[i].name);
        }
    }
    json_decref(cl->versions);
    cl->versions = now;
}

static void beat_done(cluster *cl)
{
    reload_changed(cl, cl->versions_now);
    cl->versions_now = NULL;
    json_t *view = cl->view;
    cl->view = NULL;
    beat_apply(cl);
    if (view && cl->leading)
        reap(cl, view);
    if (cl->leading && cl->core->exec) { /* claims whose node stopped renewing them */
        exec_reap_leases(cl->core->exec);
        exec_mark_unrouted(cl->core->exec, cl->lease_ms);
    }
    notify_leading(cl->core->notify, cl->leading);
    if (cl->leading && ++cl->sweeps % SWEEP_BEATS == 1)
        store_cluster_sweep(cl->core->store, DEAD_ROWS_MS, fires_kept(cl->core));
    json_decref(view);
}

/* ---- a database that does not answer --------------------------------------------------------- */

#define PROBE_TICK_MS    50
#define PROBE_GIVE_UP_MS 5000 /* as long as a connect may wait (connect_timeout) */

/* While the store is silent (a statement waited its whole timeout: a partition) every store
 * call fails at once, and the loop looks for the database with a connection it never waits
 * for: no call waits 5 s every few seconds for a database that does not answer, and the
 * node is back as soon as it answers (docs/cluster.md 1.2). */
static void on_probe(uv_timer_t *t)
{
    cluster *cl = t->data;
    int rc = store_cluster_probe(cl->core->store);
    if (rc == 0 && clock_mono_ms() - cl->probe_began < PROBE_GIVE_UP_MS)
        return;
    uv_timer_stop(t);
    store_cluster_probe_stop(cl->core->store); /* failed or too slow: the next beat tries again */
    if (rc == 1)
        log_info("cluster", "node %s reached PostgreSQL again", cl->core->node_id);
}

static void probe_if_silent(cluster *cl)
{
    if (uv_is_active((uv_handle_t *)&cl->probe_timer) || !store_cluster_silent(cl->core->store))
        return;
    cl->probe_began = clock_mono_ms();
    uv_timer_start(&cl->probe_timer, on_probe, 0, PROBE_TICK_MS);
}

static void on_timer(uv_timer_t *t)
{
    cluster *cl = t->data;
    uint64_t now = clock_mono_ms();
    if (cl->leading && now >= cl->deadline_mono)
        step_down(cl, "the lease could not be renewed in time");
    if (cl->stopped)
        return;
    cl->own_changes += cl->core->schedules_changed_here; /* a beat is one call: none between */
    cl->core->schedules_changed_here = 0;
    cl->sent_mono = now; /* the lease's end is measured from before the database saw it */
    beat(cl);
    beat_done(cl);
    probe_if_silent(cl);
}

int cluster_start(cluster **out, struct opsc_core *c)
{
    cluster *cl = calloc(1, sizeof(*cl));
    if (!cl)
        return OPSC_ENOMEM;
    cl->core = c;
    cl->sched_loaded = -1;
    cl->lease_ms = c->cfg.store.lease_ttl_ms;
    cl->interval_ms = cl->lease_ms / 5 > 100 ? cl->lease_ms / 5 : 100;
    cluster_node_address(c, cl->address, sizeof(cl->address));
    cl->labels = c->node_labels ? json_dumps(c->node_labels, JSON_COMPACT) : NULL;
    uv_timer_init(c->loop, &cl->timer);
    cl->timer.data = cl;
    uv_timer_start(&cl->timer, on_timer, 0, (uint64_t)cl->interval_ms);
    uv_timer_init(c->loop, &cl->deadline_timer);
    cl->deadline_timer.data = cl;
    uv_timer_init(c->loop, &cl->probe_timer);
    cl->probe_timer.data = cl;
    store_cluster_probes(c->store);
    log_info("cluster", "node %s (%s) joins: lease %lld ms, heartbeat every %lld ms", c->node_id,
             cl->address, (long long)cl->lease_ms, (long long)cl->interval_ms);
    *out = cl;
    return 0;
}

void cluster_stop(cluster *cl)
{
    if (!cl || cl->stopped)
        return;
    cl->stopped = true;
    uv_timer_stop(&cl->timer);
    uv_timer_stop(&cl->deadline_timer);
    uv_timer_stop(&cl->probe_timer);
    store_cluster_probe_stop(cl->core->store);
    leave(cl);
}

void cluster_free(cluster *cl)
{
    if (cl) {
        json_decref(cl->versions);
        free(cl->labels);
    }
    free(cl); /* its timers were closed with every other handle (core_free) */
}

bool cluster_leading(const cluster *cl, int64_t *epoch)
{
    /* past the deadline it leads no more, even before its timer could run (a blocked loop) */
    if (!cl || !cl->leading || clock_mono_ms() >= cl->deadline_mono)
        return false;
    if (epoch)
        *epoch = cl->epoch;
    return true;
}

int cluster_on_run_new(void *ud, store_txn *txn, const json_t *run)
{
    struct opsc_core *c = ud;
    const char *sid = json_string_value(json_object_get(run, "schedule_id"));
    const char *planned = json_string_value(json_object_get(run, "planned_at"));
    const char *id = json_string_value(json_object_get(run, "id"));
    if (!c->cluster || !sid || !planned || !id)
        return 0; /* not a fire, or not cluster mode */
    int64_t ms = 0, epoch = 0;
    if (rfc3339_parse(planned, &ms) < 0)
        return OPSC_EINVAL;
    if (!cluster_leading(c->cluster, &epoch))
        return OPSC_ESTATE; /* stepped down since the scheduler decided */
    int rc = store_cluster_fire(txn, c->node_id, epoch, sid, ms, id);
    if (rc == OPSC_EEXIST)
        log_info("cluster", "schedule %s: the fire planned at %s exists already", sid, planned);
    else if (rc == OPSC_ESTATE)
        log_warn("cluster", "schedule %s: fire at %s refused, epoch %lld no longer leads", sid,
                 planned, (long long)epoch);
    return rc;
}
