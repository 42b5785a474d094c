/* exec_persist.c - runs in the store: a new run durably, changes once per loop turn, and the
 * runs a stopped or crashed daemon left behind marked interrupted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "exec_internal.h"
#include "log.h"
#include "run_read.h"
#include "store.h"
#include "util.h"

bool ex_queued(const exec *ex)
{
    return ex->opts.node_id && store_is_shared(ex->store);
}

/* ---- a new run --------------------------------------------------------------------------- */

typedef struct ex_new_run {
    ex_run *r;
    json_t *targets;    /* records, index order */
    json_t *target_ids; /* their ids, the same order */
    exec_started_cb cb;
    void *ud;
    struct ex_new_run *next;
} ex_new_run;

static int index_put(store_txn *txn, const char *db, const char *parent, const char *run_id)
{
    char key[96];
    snprintf(key, sizeof(key), "%s/%s", parent, run_id);
    return store_kv_put(txn, db, key, strlen(key), run_id, strlen(run_id));
}

static int put_new_run(store_txn *txn, const ex_new_run *n)
{
    ex_run *r = n->r;
    int rc = store_create(txn, "runs", r->hdr);
    const char *job = json_string_value(json_object_get(r->hdr, "job_id"));
    if (rc == 0 && job)
        rc = index_put(txn, "runs_by_job", job, r->id);
    bool queued = ex_queued(r->ex);
    const char *owner = queued ? EX_UNCLAIMED : r->ex->opts.node_id ? r->ex->opts.node_id : "";
    if (rc == 0 && !ex_terminal(r->state))
        rc = store_kv_put(txn, "runs_active", r->id, strlen(r->id), owner, strlen(owner));
    if (rc == 0 && queued) /* any node may claim it (exec_queue.c) */
        rc = store_runq_add(txn, r->id, job, n->target_ids, !r->plan->allow_concurrent,
                            job_plan_idempotent(r->plan), r->route);
    if (rc == 0 && r->ex->opts.on_run_new)
        rc = r->ex->opts.on_run_new(r->ex->opts.on_run_new_ud, txn, r->hdr);
    size_t i;
    json_t *t;
    json_array_foreach(n->targets, i, t)
    {
        char key[64];
        if (rc < 0)
            break;
        rc = index_put(txn, "runs_by_target", json_string_value(json_object_get(t, "target_id")),
                       r->id);
        char *text = rc == 0 ? json_dumps(t, JSON_COMPACT) : NULL;
        run_target_key(key, sizeof(key), r->id, (uint32_t)i);
        if (rc == 0)
            rc = text ? store_kv_put(txn, "run_targets", key, strlen(key), text, strlen(text))
                      : OPSC_ENOMEM;
        free(text);
    }
    return rc;
}

int ex_queue_new_run(exec *ex, ex_run *r, exec_started_cb cb, void *ud)
{
    ex_new_run *n = calloc(1, sizeof(*n));
    json_t *recs = json_array(), *ids = json_array();
    for (uint32_t i = 0; recs && i < r->ntargets; i++)
        if (json_array_append_new(recs, ex_target_record(&r->targets[i])) < 0 ||
            json_array_append_new(ids, json_string(r->targets[i].id)) < 0)
            json_decref(recs), recs = NULL;
    if (!n || !recs || !ids) {
        free(n);
        json_decref(recs);
        json_decref(ids);
        return OPSC_ENOMEM;
    }
    *n = (ex_new_run){r, recs, ids, cb, ud, NULL};
    if (ex->new_runs_tail)
        ex->new_runs_tail->next = n;
    else
        ex->new_runs = n;
    ex->new_runs_tail = n;
    ex_want_flush(ex);
    return 0;
}

/* After the commit (rc 0) the runs start, in the order they were created;
 * after a failed one they are dropped. Either way their callers learn it. */
static void new_runs_done(exec *ex, ex_new_run *n, int rc)
{
    while (n) {
        ex_new_run *next = n->next;
        ex_run *r = n->r;
        if (rc == 0) {
            log_info("exec", "run %s of job %s v%lld on %u target(s), by %s", r->id,
                     json_string_value(json_object_get(r->hdr, "job_name")),
                     (long long)r->plan->version, r->ntargets,
                     json_string_value(json_object_get(r->hdr, "triggered_by")));
            /* What was stored, as run_read() would give it back (no "process" yet). */
            json_t *run = json_copy(r->hdr);
            if (run)
                json_object_set(run, "targets", n->targets);
            n->cb(n->ud, 0, r->id, run); /* run NULL: out of memory for the copy */
            json_decref(run);
            if (ex_queued(ex)) { /* whichever node claims it runs it, this one too */
                ex_remote_add(ex, r->hdr);
                ex_run_free(r);
                ex_claim_soon(ex);
            } else {
                ex_run_add(ex, r);
            }
        } else {
            n->cb(n->ud, rc, r->id, NULL);
            ex_run_free(r);
        }
        json_decref(n->targets);
        json_decref(n->target_ids);
        free(n);
        n = next;
    }
}

/* ---- changes, at the end of the loop turn ------------------------------------------------ */

static int put_target(store_txn *txn, ex_target *t)
{
    char key[64];
    run_target_key(key, sizeof(key), t->run->id, t->idx);
    json_t *rec = ex_target_record(t);
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    int rc =
        text ? store_kv_put(txn, "run_targets", key, strlen(key), text, strlen(text)) : OPSC_ENOMEM;
    free(text);
    if (rc == 0)
        rc = ex_log_put(txn, t);
    return rc;
}

/* Cluster mode: the other nodes learn of the change at commit (their
 * schedulers count runs of their schedules that run elsewhere). */
static int notify_state(store_txn *txn, exec *ex, const json_t *run, const char *previous)
{
    json_t *d = json_pack("{s:O, s:O, s:O, s:O, s:s, s:s}", "run_id", json_object_get(run, "id"),
                          "job_id", json_object_get(run, "job_id"), "schedule_id",
                          json_object_get(run, "schedule_id"), "state",
                          json_object_get(run, "state"), "previous", previous, "by",
                          ex->opts.node_id);
    char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    int rc = text ? store_notify(txn, "opsc_events", text) : OPSC_ENOMEM;
    free(text);
    return rc;
}

/* A state change commits with what it causes elsewhere (notifications). */
static int persisted_hook(store_txn *txn, exec *ex, const json_t *run, const char *previous)
{
    int rc = ex_queued(ex) ? notify_state(txn, ex, run, previous) : 0;
    if (rc < 0 || !ex->opts.on_run_persisted)
        return rc;
    return ex->opts.on_run_persisted(ex->opts.on_run_persisted_ud, txn, run, previous);
}

static int put_run(store_txn *txn, ex_run *r)
{
    json_object_set_new(r->hdr, "seq", json_integer((json_int_t)r->seq));
    json_object_set_new(r->hdr, "log_bytes", json_integer((json_int_t)r->log_bytes));
    int rc = store_update(txn, "runs", r->hdr, 0);
    if (rc == 0 && r->state != r->persisted_state)
        rc = persisted_hook(txn, r->ex, r->hdr, ex_state_name(r->persisted_state));
    if (rc == 0 && ex_terminal(r->state)) {
        rc = store_kv_del(txn, "runs_active", r->id, strlen(r->id));
        if (rc == OPSC_ENOENT)
            rc = 0;
        if (rc == 0 && ex_queued(r->ex))
            rc = store_runq_done(txn, r->id);
    }
    return rc;
}

typedef struct flush_set {
    exec *ex;
    const ex_new_run *fresh; /* NULL: only the changes */
    json_t *held;            /* cluster mode: run id -> whether this node still holds it */
} flush_set;

/* Cluster mode: a run is written only while runs_active names this node.
 * A node cut off from the database longer than its lease (a partition, a
 * stalled process) finds its runs interrupted by the leader's reaper when
 * it comes back: what it did meanwhile must not overwrite that. Asked once
 * per run and transaction, in the transaction that writes, and locked: the
 * flush is a snapshot write (store_write_snapshot), so a reaper ending the
 * run meanwhile must wait for it, or make it run again. */
static bool held(store_txn *txn, flush_set *f, const ex_run *r, int *rc)
{
    if (r->lost)
        return false;
    if (!ex_queued(f->ex))
        return true;
    json_t *known = json_object_get(f->held, r->id);
    if (known)
        return json_is_true(known);
    const char *me = f->ex->opts.node_id;
    const void *v = NULL;
    size_t vlen = 0;
    int g = store_kv_get_locked(txn, "runs_active", r->id, strlen(r->id), &v, &vlen);
    bool mine = g == 0 && vlen == strlen(me) && !memcmp(v, me, vlen);
    if (g < 0 && g != OPSC_ENOENT)
        *rc = g;
    json_object_set_new(f->held, r->id, json_boolean(mine));
    return mine;
}

static int flush_txn(store_txn *txn, void *ud)
{
    flush_set *f = ud;
    exec *ex = f->ex;
    int rc = 0;
    json_object_clear(f->held); /* the function may run again */
    for (const ex_new_run *n = f->fresh; n && rc == 0; n = n->next)
        rc = put_new_run(txn, n);
    for (ex_target *t = ex->dirty_targets; t && rc == 0; t = t->dirty_next)
        if (held(txn, f, t->run, &rc) && rc == 0)
            rc = put_target(txn, t);
    for (ex_run *r = ex->dirty_runs; r && rc == 0; r = r->dirty_next)
        if (held(txn, f, r, &rc) && rc == 0)
            rc = put_run(txn, r);
    return rc;
}

/* Runs the last flush found no longer this node's: their results so far
 * were not written and will not be; what still runs of them is stopped. */
static void drop_lost(exec *ex, json_t *held)
{
    const char *id;
    json_t *v;
    json_object_foreach(held, id, v)
    {
        if (json_is_true(v))
            continue;
        log_warn("exec",
                 "run %s: this node no longer holds it (its lease lapsed and the leader's reaper "
                 "ended it): its results are discarded",
                 id);
        for (ex_run *r = ex->head; r; r = r->next_run) {
            if (strcmp(r->id, id) || r->lost)
                continue;
            r->lost = true; /* still running: stopped, and nothing of it is written */
            ex_run_abort(r, EX_INTERRUPTED, "this node no longer holds the run");
            break;
        }
    }
}

/* New runs and changes in one durable commit: one fsync per loop turn, however
 * many runs were created or changed in it. A failed commit fails the new runs
 * and the changes are tried again alone (a new run must not take the state
 * of the running ones down with it). A snapshot write: what it decides on
 * is what it writes (new ids, this node's runs, each run's record read and
 * written back), or locked (held()), and on PostgreSQL the runs of several
 * nodes' flushes share index pages, not keys. */
void ex_flush(exec *ex)
{
    ex_new_run *fresh = ex->new_runs;
    ex->new_runs = ex->new_runs_tail = NULL; /* a flush re-entered from a callback starts anew */
    bool dirty = ex->dirty_runs || ex->dirty_targets;
    if (!fresh && !dirty) {
        ex_flush_done(ex);
        ex_maybe_closed(ex);
        return;
    }
    flush_set all = {ex, fresh, json_object()}, changes = {ex, NULL, all.held};
    int fresh_rc = store_write_snapshot(ex->store, flush_txn, &all);
    int rc = !dirty                  ? 0
             : fresh_rc < 0 && fresh ? store_write_snapshot(ex->store, flush_txn, &changes)
                                     : fresh_rc;
    if (fresh_rc < 0 && fresh_rc != OPSC_ENOSPC)
        log_error("exec", "storing new runs failed: %s", opsc_strerror(fresh_rc));
    if (rc < 0 && rc != OPSC_ENOSPC) /* a full disk is logged once, by the store */
        log_error("exec", "writing run state failed: %s (the changes of this moment are lost)",
                  opsc_strerror(rc));
    for (ex_target *t = ex->dirty_targets, *next; t; t = next) {
        next = t->dirty_next;
        t->dirty = false;
        t->dirty_next = NULL;
        sb_reset(&t->log);
    }
    ex->dirty_targets = NULL;
    ex_run *done = NULL;
    for (ex_run *r = ex->dirty_runs, *next; r; r = next) {
        next = r->dirty_next;
        r->dirty = false;
        if (rc == 0)
            r->persisted_state = r->state;
        r->dirty_next = NULL;
        if (!r->listed && ex_terminal(r->state)) { /* ended and written: nothing refers to it */
            r->dirty_next = done;
            done = r;
        }
    }
    ex->dirty_runs = NULL;
    while (done) {
        ex_run *next = done->dirty_next;
        ex_run_free(done);
        done = next;
    }
    if (rc == 0) /* after the flush's lists are done with: the aborts mark runs anew */
        drop_lost(ex, all.held);
    json_decref(all.held);
    ex_flush_done(ex);
    new_runs_done(ex, fresh, fresh_rc); /* their starts ask for the next flush */
    ex_maybe_closed(ex);
}

/* ---- start-up: what a previous process left running -------------------------------------- */

typedef struct recover {
    exec *ex;
    size_t n;
    json_t *orphans;
    json_t *ids;         /* [run id, owner node or ""] */
    const json_t *alive; /* reaping (cluster mode): the node ids alive; NULL at start-up */
} recover;

static bool owner_in(const json_t *ids, const void *val, size_t vlen)
{
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        if (json_string_length(id) == vlen && !memcmp(json_string_value(id), val, vlen))
            return true;
    }
    return false;
}

/* At start-up, the runs this process left: all of them, or in cluster mode
 * those marked with this node's id (and unmarked ones, from before cluster
 * mode). Reaping: those of other nodes that are no longer alive. */
static int collect(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    recover *r = ud;
    const char *me = r->ex->opts.node_id;
    if (me && vlen == 1 && !memcmp(val, EX_UNCLAIMED, 1))
        return 0; /* queued: no node has it, any node may claim it */
    bool mine = !me || !vlen || (vlen == strlen(me) && !memcmp(val, me, vlen));
    bool take = r->alive ? !mine && !owner_in(r->alive, val, vlen) : mine;
    if (take)
        json_array_append_new(r->ids, json_pack("[s%, s%]", key, klen, val, vlen));
    return 0;
}

/* The first step not ended was the one running (its start may not have been
 * written yet: the crash came first); the ones after it never ran. */
static void interrupt_steps(json_t *steps, bool was_running)
{
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s)
    {
        int st = ex_state_parse(json_string_value(json_object_get(s, "state")));
        if (ex_terminal(st))
            continue;
        if (was_running) {
            json_object_set_new(s, "state", json_string("interrupted"));
            json_object_set_new(s, "error", json_string("the daemon stopped during this step"));
            was_running = false;
        } else {
            json_object_set_new(s, "state", json_string("skipped"));
        }
    }
}

/* What the target's command left running (kill_orphan at start-up); the
 * note leaves the record. */
static void note_orphan(json_t *orphans, json_t *t, const char *run_id)
{
    json_t *handle = json_object_get(t, "process");
    if (json_is_string(handle) && orphans)
        json_array_append_new(orphans,
                              json_pack("{s:s, s:O, s:O}", "run_id", run_id, "target_id",
                                        json_object_get(t, "target_id"), "handle", handle));
    json_object_del(t, "process");
}

static int put_target_rec(store_txn *txn, const char *run_id, size_t i, const json_t *t)
{
    char key[64], *text = json_dumps(t, JSON_COMPACT);
    run_target_key(key, sizeof(key), run_id, (uint32_t)i);
    int rc = text ? store_kv_put(txn, "run_targets", key, strlen(key), text, strlen(text))
                  : OPSC_ENOMEM;
    free(text);
    return rc;
}

static int interrupt_targets(store_txn *txn, const char *run_id, json_t *orphans, int to)
{
    json_t *targets = NULL;
    int rc = run_read_targets(txn, run_id, &targets);
    size_t i;
    json_t *t;
    json_array_foreach(targets, i, t)
    {
        if (rc < 0)
            break;
        int st = ex_state_parse(json_string_value(json_object_get(t, "state")));
        if (ex_terminal(st))
            continue;
        note_orphan(orphans, t, run_id);
        json_object_set_new(t, "state", json_string(ex_state_name(to)));
        json_object_set_new(t, "error",
                            json_string(to == EX_CANCELLED ? "cancelled before it started"
                                        : st == EX_QUEUED  ? "the daemon stopped before it started"
                                                           : "the daemon stopped during this target"));
        interrupt_steps(json_object_get(t, "steps"), st == EX_RUNNING);
        rc = put_target_rec(txn, run_id, i, t);
    }
    json_decref(targets);
    return rc;
}

/* `dead`: the node that ran it stopped heartbeating (reaping); NULL: this
 * process stopped (start-up). `why`, when given, says it instead. */
static int end_run(store_txn *txn, exec *ex, const char *id, const char *dead,
                   const char *reason, size_t *n, json_t *orphans, int to)
{
    json_t *rec = NULL;
    int rc = store_get(txn, "runs", id, &rec);
    int st = rc == 0 ? ex_state_parse(json_string_value(json_object_get(rec, "state"))) : -1;
    if (rc == 0 && !ex_terminal(st)) {
        char at[RFC3339_LEN], why[300];
        rfc3339_format(clock_now_ms(), at);
        if (reason)
            snprintf(why, sizeof(why), "%s", reason);
        else if (dead)
            snprintf(why, sizeof(why),
                     "node %s stopped heartbeating while the run was %s on it; it was not run "
                     "again elsewhere",
                     dead, ex_state_name(st));
        else
            snprintf(why, sizeof(why),
                     "the daemon stopped while the run was %s; it was not resumed at start-up",
                     ex_state_name(st));
        json_object_set_new(rec, "state", json_string(ex_state_name(to)));
        json_object_set_new(rec, "reason", json_string(why));
        json_object_set_new(rec, "finished_at", json_string(at));
        rc = store_update(txn, "runs", rec, 0);
        if (rc == 0)
            rc = interrupt_targets(txn, id, orphans, to);
        if (rc == 0)
            rc = persisted_hook(txn, ex, rec, ex_state_name(st));
        (*n)++;
    }
    json_decref(rec);
    if (rc == OPSC_ENOENT)
        rc = 0;
    if (rc == 0)
        rc = store_kv_del(txn, "runs_active", id, strlen(id));
    if (rc == OPSC_ENOENT)
        rc = 0;
    if (rc == 0 && ex_queued(ex))
        rc = store_runq_done(txn, id);
    return rc;
}

static void set_all(json_t *o, json_t *fields)
{
    if (fields)
        json_object_update(o, fields);
    json_decref(fields);
}

/* Each target as before its first attempt: queued, its steps too. The log
 * it wrote stays, and the next attempt's lines follow it. */
static int reset_targets(store_txn *txn, const char *run_id, json_t *orphans)
{
    json_t *targets = NULL;
    int rc = run_read_targets(txn, run_id, &targets);
    size_t i, k;
    json_t *t, *s;
    json_array_foreach(targets, i, t)
    {
        if (rc < 0)
            break;
        note_orphan(orphans, t, run_id); /* the old attempt's command, if this is its machine */
        set_all(t, json_pack("{s:s, s:n, s:n, s:n}", "state", "queued", "error",
                                        "started_at", "finished_at"));
        json_array_foreach(json_object_get(t, "steps"), k, s)
            set_all(s, json_pack("{s:s, s:n, s:n, s:n, s:n, s:n, s:i}", "state",
                                            "queued", "outputs", "error", "started_at",
                                            "finished_at", "exit_code", "attempts", 0));
        rc = put_target_rec(txn, run_id, i, t);
    }
    json_decref(targets);
    return rc;
}

/* Why a run is taken from its node, as its "requeued" entries say ("cause"), beside the node
 * that took it ("by"): that node starting again, or the leader's reapers. */
typedef enum { TAKEN_AT_START, TAKEN_DEAD_NODE, TAKEN_LAPSED_CLAIM } taken;
static const char *const taken_cause[] = {"restart", "dead", "lease"};

/* The run was taken from node `dead`: every step of its job being
 * idempotent, it is queued again for any node to claim, at most
 * EX_MAX_ATTEMPTS claims in all, and the record says so ("requeued").
 * 0: not requeued (it must end instead), or its attempts so far. */
static int requeue_run(store_txn *txn, exec *ex, const char *id, const char *dead, taken why_taken,
                       json_t *orphans)
{
    int attempts = store_runq_requeue(txn, id, EX_MAX_ATTEMPTS);
    if (attempts <= 0)
        return attempts;
    json_t *rec = NULL;
    int rc = store_get(txn, "runs", id, &rec);
    int st = rc == 0 ? ex_state_parse(json_string_value(json_object_get(rec, "state"))) : -1;
    if (rc < 0 || ex_terminal(st)) { /* ended meanwhile: end_run drops its queue row */
        json_decref(rec);
        return rc == OPSC_ENOENT ? 0 : rc;
    }
    char at[RFC3339_LEN], why[300];
    rfc3339_format(clock_now_ms(), at);
    snprintf(why, sizeof(why),
             "node %s %s while the run was %s on it; every step is idempotent: queued again "
             "(%d of at most %d attempts made)",
             dead, why_taken == TAKEN_AT_START ? "started again" : "stopped", ex_state_name(st),
             attempts, EX_MAX_ATTEMPTS);
    json_t *past = json_object_get(rec, "requeued");
    if (!json_is_array(past))
        json_object_set_new(rec, "requeued", past = json_array());
    json_array_append_new(past, json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "node_id", dead, "at",
                                          at, "attempt", attempts, "reason", why, "by",
                                          ex->opts.node_id, "cause", taken_cause[why_taken]));
    json_object_set_new(rec, "state", json_string("queued"));
    json_object_set_new(rec, "started_at", json_null());
    json_object_del(rec, "node_id");
    rc = store_update(txn, "runs", rec, 0);
    if (rc == 0)
        rc = reset_targets(txn, id, orphans);
    if (rc == 0)
        rc = store_kv_put(txn, "runs_active", id, strlen(id), EX_UNCLAIMED, 1);
    if (rc == 0)
        rc = persisted_hook(txn, ex, rec, ex_state_name(st));
    if (rc == 0)
        log_warn("exec", "run %s: %s", id, why);
    json_decref(rec);
    return rc < 0 ? rc : attempts;
}

/* `from`, when given, is the node the run was taken from, for `why_taken`: a
 * run that may run again is queued again instead of ending (end_run's
 * `dead`, NULL when that node is this process starting again). */
static int take_run(store_txn *txn, exec *ex, const char *id, const char *from, taken why_taken,
                    const char *dead, const char *reason, size_t *n, json_t *orphans)
{
    int rc = from && ex_queued(ex) ? requeue_run(txn, ex, id, from, why_taken, orphans) : 0;
    if (rc != 0)
        return rc < 0 ? rc : 0;
    return end_run(txn, ex, id, dead, reason, n, orphans, EX_INTERRUPTED);
}

static int interrupt_run(store_txn *txn, exec *ex, const char *id, const char *dead,
                         const char *reason, size_t *n, json_t *orphans)
{
    return take_run(txn, ex, id, dead, TAKEN_LAPSED_CLAIM, dead, reason, n, orphans);
}

static int recover_txn(store_txn *txn, void *ud)
{
    recover *r = ud;
    json_t *ids = json_array();
    r->ids = ids;
    r->n = 0;
    json_array_clear(r->orphans); /* the function may run again (map growth) */
    int rc = store_kv_scan(txn, "runs_active", NULL, 0, collect, r);
    size_t i;
    json_t *pair;
    json_array_foreach(ids, i, pair)
    {
        const char *owner = json_string_value(json_array_get(pair, 1));
        const char *from = r->alive ? owner : r->ex->opts.node_id; /* a dead node, or this one */
        if (rc == 0)
            rc = take_run(txn, r->ex, json_string_value(json_array_get(pair, 0)), from,
                          r->alive ? TAKEN_DEAD_NODE : TAKEN_AT_START, r->alive ? owner : NULL,
                          NULL, &r->n, r->orphans);
    }
    json_decref(ids);
    return rc;
}

int ex_recover(exec *ex)
{
    recover r = {ex, 0, json_array(), NULL, NULL};
    int rc = store_write(ex->store, recover_txn, &r);
    if (rc == 0)
        ex->orphans = r.orphans;
    else
        json_decref(r.orphans);
    if (rc < 0)
        log_error("exec", "marking interrupted runs failed: %s", opsc_strerror(rc));
    else if (r.n)
        log_warn("exec",
                 "%zu run(s) were still queued or running when the daemon stopped: "
                 "marked interrupted",
                 r.n);
    return rc;
}

int exec_reap_nodes(exec *ex, const json_t *alive)
{
    if (!ex || !ex->opts.node_id || !json_is_array(alive))
        return OPSC_EINVAL;
    recover r = {ex, 0, json_array(), NULL, alive};
    int rc = store_write(ex->store, recover_txn, &r);
    json_decref(r.orphans); /* their processes were on the dead node's machine */
    if (rc < 0) {
        log_error("exec", "marking the runs of dead nodes interrupted failed: %s",
                  opsc_strerror(rc));
        return rc;
    }
    if (r.n)
        log_warn("exec", "%zu run(s) of nodes that stopped heartbeating: marked interrupted", r.n);
    return (int)r.n;
}

/* ---- cluster mode: claims whose lease lapsed, runs that cannot run here ---------------- */

typedef struct lapse {
    exec *ex;
    size_t n;
    const char *id, *why; /* one run (ex_interrupt_stored); NULL: the lapsed claims */
} lapse;

static int lapse_txn(store_txn *txn, void *ud)
{
    lapse *l = ud;
    l->n = 0;
    if (l->id)
        return interrupt_run(txn, l->ex, l->id, NULL, l->why, &l->n, NULL);
    json_t *lapsed = NULL;
    int rc = store_runq_reap(txn, &lapsed);
    size_t i;
    json_t *row;
    json_array_foreach(lapsed, i, row)
    {
        char why[300];
        const char *node = json_string_value(json_array_get(row, 1));
        snprintf(why, sizeof(why),
                 "node %s stopped renewing its lease on the run (it ended at %s); it was not "
                 "run again elsewhere",
                 node, json_string_value(json_array_get(row, 2)));
        if (rc == 0)
            rc = interrupt_run(txn, l->ex, json_string_value(json_array_get(row, 0)), node, why,
                               &l->n, NULL);
    }
    json_decref(lapsed);
    return rc;
}

int exec_reap_leases(exec *ex)
{
    if (!ex || !ex_queued(ex))
        return OPSC_EINVAL;
    lapse l = {ex, 0, NULL, NULL};
    int rc = store_write(ex->store, lapse_txn, &l);
    if (rc < 0) {
        log_error("exec", "reaping lapsed claims failed: %s", opsc_strerror(rc));
        return rc;
    }
    if (l.n)
        log_warn("exec", "%zu run(s) whose node stopped renewing its claim: marked interrupted",
                 l.n);
    return (int)l.n;
}

int ex_interrupt_stored(exec *ex, const char *run_id, const char *why)
{
    lapse l = {ex, 0, run_id, why};
    return store_write(ex->store, lapse_txn, &l);
}

/* ---- cluster mode: cancelling a run this node does not run ----------------------------- */

typedef struct cancel {
    exec *ex;
    const char *id, *why;
} cancel;

static int cancel_txn(store_txn *txn, void *ud)
{
    cancel *c = ud;
    const char *me = c->ex->opts.node_id;
    const void *v = NULL;
    size_t vlen = 0, n = 0;
    int rc = store_kv_get(txn, "runs_active", c->id, strlen(c->id), &v, &vlen);
    if (rc == OPSC_ENOENT) { /* ended, or no such run */
        json_t *rec = NULL;
        rc = store_get(txn, "runs", c->id, &rec);
        json_decref(rec);
        return rc == 0 ? OPSC_ESTATE : rc;
    }
    if (rc < 0)
        return rc;
    if (vlen == 1 && !memcmp(v, EX_UNCLAIMED, 1)) /* queued: no node has started it */
        return end_run(txn, c->ex, c->id, NULL, c->why, &n, NULL, EX_CANCELLED);
    if (vlen == strlen(me) && !memcmp(v, me, vlen))
        return OPSC_ESTATE; /* ours, not active: it is ending */
    /* the node that runs it cancels it when the notification reaches it */
    json_t *d = json_pack("{s:s, s:s, s:s}", "cancel", c->id, "reason", c->why, "by", me);
    char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    rc = text ? store_notify(txn, "opsc_events", text) : OPSC_ENOMEM;
    free(text);
    return rc;
}

int ex_cancel_elsewhere(exec *ex, const char *run_id, const char *why)
{
    cancel c = {ex, run_id, why};
    return store_write(ex->store, cancel_txn, &c);
}
