/* exec_queue.c - cluster mode's run queue on the executor's side: a run made on any node is
 * queued in the database; every node claims what its room allows, rebuilds each run from its
 * record and runs it (docs/cluster.md 2.4). On LMDB none of this runs: a run starts where it
 * was made, as it always did.
 *
 * Granularity: whole runs, not per-target items. A claimed run is the
 * claimer's to run and record; its lease is renewed with the node's
 * heartbeat and a lapsed one is reaped by the leader (exec_reap_leases). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "events.h"
#include "exec_internal.h"
#include "log.h"
#include "run_read.h"
#include "store.h"
#include "util.h"

#define POLL_MS   1500 /* a lost notification costs at most this */
#define CLAIM_MAX 32   /* runs per claim */

static int64_t lease_ms(const exec *ex)
{
    return ex->core ? ex->core->cfg.store.lease_ttl_ms : 15000;
}

/* Targets this node may still start: [executor] max_parallel less what its
 * runs have not ended. A node with nothing to do always takes one run, even
 * one larger than its room, or that run would wait forever. */
static int room(const exec *ex)
{
    int64_t open = 0;
    for (const ex_run *r = ex->head; r; r = r->next_run)
        open += r->ntargets - r->ended;
    int64_t free_slots = ex->opts.max_parallel - open;
    if (free_slots <= 0)
        return ex->head ? 0 : 1;
    return free_slots < CLAIM_MAX ? (int)free_slots : CLAIM_MAX;
}

/* ---- claiming ------------------------------------------------------------------------------ */

typedef struct claim {
    exec *ex;
    const json_t *ids; /* claimed */
    json_t *runs;      /* [[header, [target ids]]], the header naming this node */
    json_t *back;      /* ids to give back: an earlier attempt of the run still ends here */
} claim;

static json_t *target_ids(const json_t *targets)
{
    json_t *ids = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(targets, i, t) json_array_append(ids, json_object_get(t, "target_id"));
    return ids;
}

static int claim_one(store_txn *txn, claim *c, const char *id)
{
    exec *ex = c->ex;
    const char *me = ex->opts.node_id;
    json_t *hdr = NULL, *targets = NULL;
    if (exec_runs_here(ex, id)) { /* reaped and queued again while this node was cut off: */
        json_array_append_new(c->back, json_string(id)); /* naming it would let that write */
        return 0;
    }
    int rc = store_get(txn, "runs", id, &hdr);
    if (rc == 0 && ex_terminal(ex_state_parse(json_string_value(json_object_get(hdr, "state"))))) {
        json_decref(hdr); /* cancelled while it was being claimed */
        return 0;
    }
    if (rc == 0)
        rc = run_read_targets(txn, id, &targets);
    if (rc == 0) {
        json_object_set_new(hdr, "node_id", json_string(me));
        json_object_del(hdr, "waiting"); /* for a node with its route's labels: this one */
        json_object_set_new(hdr, "attempt",
                            json_integer(json_integer_value(json_object_get(hdr, "attempt")) + 1));
        rc = store_update(txn, "runs", hdr, 0);
    }
    if (rc == 0)
        rc = store_kv_put(txn, "runs_active", id, strlen(id), me, strlen(me));
    if (rc == 0)
        json_array_append_new(c->runs, json_pack("[O, o]", hdr, target_ids(targets)));
    json_decref(hdr);
    json_decref(targets);
    return rc;
}

/* The claims taken, the runs named this node's in their records: a
 * snapshot write, each run's record read and written back (a cancel
 * racing with it makes one of the two run again). */
static int claim_txn(store_txn *txn, void *ud)
{
    claim *c = ud;
    json_array_clear(c->runs); /* the function may run again */
    json_array_clear(c->back);
    int rc = 0;
    size_t i;
    json_t *id;
    json_array_foreach(c->ids, i, id)
    {
        if (rc == 0)
            rc = claim_one(txn, c, json_string_value(id));
    }
    return rc;
}

/* The run as its creator prepared it: the same job version, parameters and
 * targets, checked again here (a job or target deleted since fails it); then
 * its id, record and event numbers are the stored ones. */
static int rebuild(exec *ex, json_t *hdr, const json_t *ids, char *err, size_t errlen)
{
    const char *planned = json_string_value(json_object_get(hdr, "planned_at"));
    int64_t planned_ms = 0;
    if (planned)
        rfc3339_parse(planned, &planned_ms);
    exec_run_spec spec = {
        .job_id = json_string_value(json_object_get(hdr, "job_id")),
        .job_version = json_integer_value(json_object_get(hdr, "job_version")),
        .params = json_object_get(hdr, "params"),
        .schedule_id = json_string_value(json_object_get(hdr, "schedule_id")),
        .planned_at_ms = planned_ms,
        .triggered_by = json_string_value(json_object_get(hdr, "triggered_by")),
        .target_ids = ids,
    };
    ex_run *r = NULL;
    int rc = ex_prepare(ex, &spec, json_string_value(json_object_get(hdr, "retry_of")), &r, err,
                        errlen);
    if (rc < 0)
        return rc;
    snprintf(r->id, sizeof(r->id), "%s", json_string_value(json_object_get(hdr, "id")));
    json_object_set_new(r->ctx_run, "id", json_string(r->id));
    json_decref(r->hdr);
    r->hdr = json_incref(hdr);
    r->seq = (uint64_t)json_integer_value(json_object_get(hdr, "seq"));
    r->log_bytes = (uint64_t)json_integer_value(json_object_get(hdr, "log_bytes")); /* earlier attempts' */
    ex_remote_del(ex, r->id); /* counted as this node's own from now on */
    ex_run_add(ex, r);
    return 0;
}

static void start_claimed(exec *ex, json_t *runs)
{
    size_t i;
    json_t *pair;
    json_array_foreach(runs, i, pair)
    {
        json_t *hdr = json_array_get(pair, 0);
        const char *id = json_string_value(json_object_get(hdr, "id"));
        char err[512] = "", why[700];
        if (rebuild(ex, hdr, json_array_get(pair, 1), err, sizeof(err)) == 0)
            continue;
        log_error("exec", "run %s cannot run on this node: %s", id, err);
        snprintf(why, sizeof(why), "node %s claimed the run but could not start it: %s",
                 ex->opts.node_id, err);
        int rc = ex_interrupt_stored(ex, id, why);
        if (rc < 0) /* its lease lapses and the leader's reaper ends it */
            log_error("exec", "run %s: recording that it cannot run failed: %s", id,
                      opsc_strerror(rc));
    }
}

static void claim_now(exec *ex)
{
    int max = room(ex);
    if (ex->stopping || max <= 0)
        return;
    json_t *ids = NULL;
    int rc = store_runq_claim(ex->store, ex->opts.node_id, ex->opts.labels, max, lease_ms(ex), &ids);
    claim c = {ex, ids, json_array(), json_array()};
    if (rc == 0 && json_array_size(ids) && (rc = store_write_snapshot(ex->store, claim_txn, &c)) < 0 &&
        store_runq_release(ex->store, ex->opts.node_id, ids) < 0)
        log_error("exec", "giving back claimed runs failed: %s (the leader's reaper ends them)",
                  opsc_strerror(rc));
    if (rc == 0 && json_array_size(c.back))
        store_runq_release(ex->store, ex->opts.node_id, c.back);
    if (rc < 0 && rc != ex->claim_rc)
        log_warn("exec", "claiming queued runs failed: %s (trying again)", opsc_strerror(rc));
    else if (rc == 0 && ex->claim_rc < 0)
        log_info("exec", "claiming queued runs works again");
    ex->claim_rc = rc;
    if (rc == 0)
        start_claimed(ex, c.runs);
    bool more = rc == 0 && (int)json_array_size(ids) == max;
    json_decref(ids);
    json_decref(c.runs);
    json_decref(c.back);
    if (more) /* the queue may hold more than one claim took: go on if there is room */
        ex_claim_soon(ex);
}

/* ---- waking up: notifications, polling ----------------------------------------------------- */

static void on_listen_closed(uv_handle_t *h)
{
    exec *ex = h->data;
    free(h);
    ex->open_handles--;
    ex_maybe_closed(ex);
}

static void listen_drop(exec *ex)
{
    if (!ex->listen)
        return;
    uv_close((uv_handle_t *)ex->listen, on_listen_closed);
    ex->listen = NULL;
}

/* ---- runs made here that run elsewhere: their states, for this node's scheduler ----------- */

void ex_remote_add(exec *ex, const json_t *hdr)
{
    const char *id = json_string_value(json_object_get(hdr, "id"));
    json_t *sid = json_object_get(hdr, "schedule_id");
    if (json_is_string(sid) && (ex->remote || (ex->remote = json_object())) &&
        !json_object_get(ex->remote, id) && json_object_set(ex->remote, id, sid) == 0)
        ex_count_schedule(ex, sid, 1);
    json_t *d = json_pack("{s:s, s:O, s:O, s:s, s:s}", "run_id", id, "job_id",
                          json_object_get(hdr, "job_id"), "schedule_id", sid ? sid : json_null(),
                          "state", "queued", "previous", "queued");
    if (d)
        events_publish(ex->events, "run.state", id, d);
    json_decref(d);
}

void ex_remote_del(exec *ex, const char *run_id)
{
    json_t *sid = json_object_get(ex->remote, run_id);
    if (!sid)
        return;
    ex_count_schedule(ex, sid, -1);
    json_object_del(ex->remote, run_id);
}

/* Another node changed a run's state: announced on this node's bus as its
 * own executor would (the scheduler's overlap policies follow it). A
 * payload with "bus" is another service's announcement (store_announce):
 * published on this node's bus under that type. */
static void on_state(exec *ex, const char *payload)
{
    json_t *d = json_loads(payload, 0, NULL);
    const char *by = json_string_value(json_object_get(d, "by"));
    const char *cancel = json_string_value(json_object_get(d, "cancel"));
    if (cancel) { /* asked on another node, for a run of ours */
        const char *why = json_string_value(json_object_get(d, "reason"));
        for (ex_run *r = ex->head; r; r = r->next_run)
            if (!strcmp(r->id, cancel)) {
                log_info("exec", "run %s %s (through node %s)", r->id, why, by ? by : "?");
                ex_run_abort(r, EX_CANCELLED, why ? why : "cancelled");
                break;
            }
        json_decref(d);
        return;
    }
    const char *bus = json_string_value(json_object_get(d, "bus"));
    if (bus && by && strcmp(by, ex->opts.node_id) != 0) { /* another service's news */
        events_publish(ex->events, bus, NULL, d);
        json_decref(d);
        return;
    }
    const char *id = json_string_value(json_object_get(d, "run_id"));
    const char *state = json_string_value(json_object_get(d, "state"));
    if (id && state && by && strcmp(by, ex->opts.node_id) != 0) {
        json_object_del(d, "by");
        if (ex_terminal(ex_state_parse(state)))
            ex_remote_del(ex, id);
        events_publish(ex->events, "run.state", id, d);
    }
    json_decref(d);
}

static void on_notify(void *ud, const char *channel, const char *payload)
{
    exec *ex = ud;
    if (!strcmp(channel, "opsc_events"))
        on_state(ex, payload);
    else
        ex_claim_soon(ex);
}

typedef struct prune {
    json_t *remote, *gone;
} prune;

static int prune_txn(store_txn *txn, void *ud)
{
    prune *p = ud;
    json_array_clear(p->gone);
    const char *id;
    json_t *sid;
    json_object_foreach(p->remote, id, sid)
    {
        json_t *rec = NULL;
        int rc = store_get(txn, "runs", id, &rec);
        if (rc == OPSC_ENOENT ||
            (rc == 0 &&
             ex_terminal(ex_state_parse(json_string_value(json_object_get(rec, "state"))))))
            json_array_append_new(p->gone, json_string(id));
        json_decref(rec);
        if (rc < 0 && rc != OPSC_ENOENT)
            return rc;
    }
    return 0;
}

/* A notification lost (the listening connection broke) must not leave a
 * run counted forever: what the store says has ended is dropped. */
static void remote_prune(exec *ex)
{
    if (!json_object_size(ex->remote))
        return;
    prune p = {ex->remote, json_array()};
    if (store_read(ex->store, prune_txn, &p) == 0) {
        size_t i;
        json_t *id;
        json_array_foreach(p.gone, i, id) ex_remote_del(ex, json_string_value(id));
    }
    json_decref(p.gone);
}

static void on_listen(uv_poll_t *h, int status, int revents)
{
    (void)revents;
    exec *ex = h->data;
    int n = status < 0 ? OPSC_EIO : store_runq_notified(ex->store, on_notify, ex);
    if (n < 0) { /* the connection broke: the poll timer listens again */
        log_warn("exec", "the connection listening for queued runs broke: polling until it is "
                         "back");
        listen_drop(ex);
        ex->listen_broken = true;
        return;
    }
}

static void listen_open(exec *ex, bool reset)
{
    int fd = store_runq_listen(ex->store, reset);
    if (fd < 0)
        return;
    uv_poll_t *p = malloc(sizeof(*p));
    if (!p || uv_poll_init(ex->loop, p, fd) < 0) {
        free(p);
        return;
    }
    p->data = ex;
    ex->open_handles++;
    ex->listen = p;
    ex->listen_broken = false;
    uv_poll_start(p, UV_READABLE, on_listen);
    uv_unref((uv_handle_t *)p);
}

static void on_claim(uv_timer_t *h)
{
    exec *ex = h->data;
    if (ex->closing)
        return;
    if (ex->listen_broken && !ex->stopping)
        listen_open(ex, true);
    uv_timer_start(&ex->claim, on_claim, POLL_MS, 0);
    claim_now(ex);
    remote_prune(ex);
}

void ex_claim_soon(exec *ex)
{
    if (ex_queued(ex) && !ex->closing && !uv_is_closing((uv_handle_t *)&ex->claim))
        uv_timer_start(&ex->claim, on_claim, 0, 0);
}

void ex_queue_start(exec *ex)
{
    listen_open(ex, false);
    if (!ex->listen)
        ex->listen_broken = true;
    uv_unref((uv_handle_t *)&ex->claim);
    ex_claim_soon(ex);
}

void ex_queue_close(exec *ex)
{
    listen_drop(ex);
}

void exec_renew_leases(exec *ex, int64_t ms)
{
    if (ex && ex_queued(ex))
        store_runq_renew(ex->store, ex->opts.node_id, ms);
}

/* ---- runs that no live node can take -------------------------------------------------------- */

typedef struct unrouted {
    int64_t alive_ms;
    json_t *marked; /* [[run id, reason]] newly marked, logged after the commit */
} unrouted;

/* "no live node has labels dc=eu,rack=3" */
static void waiting_reason(const json_t *route, char *out, size_t n)
{
    size_t len = (size_t)snprintf(out, n, "no live node has labels ");
    const char *k;
    json_t *v;
    const char *sep = "";
    json_object_foreach((json_t *)route, k, v)
    {
        if (len < n)
            len += (size_t)snprintf(out + len, n - len, "%s%s=%s", sep, k, json_string_value(v));
        sep = ",";
    }
}

static int mark_one(store_txn *txn, unrouted *u, const char *id, const json_t *route)
{
    json_t *rec = NULL;
    int rc = store_get(txn, "runs", id, &rec);
    if (rc < 0)
        return rc == OPSC_ENOENT ? 0 : rc;
    if (json_object_get(rec, "waiting") ||
        ex_state_parse(json_string_value(json_object_get(rec, "state"))) != EX_QUEUED) {
        json_decref(rec); /* said already (by this leader or the one before) */
        return 0;
    }
    char why[512], since[RFC3339_LEN];
    waiting_reason(route, why, sizeof(why));
    rfc3339_format(clock_now_ms(), since);
    json_object_set_new(rec, "waiting", json_pack("{s:s, s:s, s:O}", "reason", why, "since",
                                                  since, "route", route));
    rc = store_update(txn, "runs", rec, 0);
    if (rc == 0)
        json_array_append_new(u->marked, json_pack("[s, s]", id, why));
    json_decref(rec);
    return rc;
}

static int unrouted_txn(store_txn *txn, void *ud)
{
    unrouted *u = ud;
    json_array_clear(u->marked); /* the function may run again */
    json_t *rows = NULL;
    int rc = store_runq_unrouted(txn, u->alive_ms, &rows);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        if (rc == 0)
            rc = mark_one(txn, u, json_string_value(json_array_get(row, 0)),
                          json_array_get(row, 1));
    }
    json_decref(rows);
    return rc;
}

int exec_mark_unrouted(exec *ex, int64_t alive_ms)
{
    if (!ex || !ex_queued(ex))
        return OPSC_EINVAL;
    unrouted u = {alive_ms, json_array()};
    int rc = store_write_snapshot(ex->store, unrouted_txn, &u);
    size_t i;
    json_t *m;
    json_array_foreach(u.marked, i, m)
    {
        if (rc == 0)
            log_warn("exec", "run %s waits in the queue: %s", json_string_value(json_array_get(m, 0)),
                     json_string_value(json_array_get(m, 1)));
    }
    if (rc < 0)
        log_error("exec", "looking for runs no live node can take failed: %s", opsc_strerror(rc));
    int n = (int)json_array_size(u.marked);
    json_decref(u.marked);
    return rc < 0 ? rc : n;
}
