/* sched_state.c - persisting each schedule's last handled fire and waiting fires
 * ("schedule_state"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "log.h"
#include "sched_internal.h"
#include "store.h"

#define STATE_DB    "schedule_state"
/* Not a schedule id: every fire planned at or before this instant (ms, text)
 * was handled. One write per wake instead of one per schedule fired. */
#define THROUGH_KEY "~handled_through"

/* {"last_ms": 1735689600000, "queue": [..]}; written when a schedule's count
 * restarts, its queue changes, or the wall clock went back behind it. */
static int put_state(store_txn *txn, const char *id, int64_t last_ms, const int64_t *queue,
                     size_t nq)
{
    json_t *q = json_array();
    for (size_t i = 0; q && i < nq; i++)
        if (json_array_append_new(q, json_integer(queue[i])) < 0) {
            json_decref(q);
            q = NULL;
        }
    json_t *st = q ? json_pack("{s:I, s:o}", "last_ms", (json_int_t)last_ms, "queue", q) : NULL;
    char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;
    json_decref(st);
    if (!text)
        return OPSC_ENOMEM;
    int rc = store_kv_put(txn, STATE_DB, id, strlen(id), text, strlen(text));
    free(text);
    return rc;
}

int sched_state_reset_txn(store_txn *txn, const char *id, int64_t anchor_ms)
{
    return put_state(txn, id, anchor_ms, NULL, 0);
}

int sched_state_delete_txn(store_txn *txn, const char *id)
{
    int rc = store_kv_del(txn, STATE_DB, id, strlen(id));
    return rc == OPSC_ENOENT ? 0 : rc;
}

typedef struct save_ctx {
    sched *s;
    int64_t through;
} save_ctx;

static int save_txn(store_txn *txn, void *ud)
{
    save_ctx *c = ud;
    sched *s = c->s;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < s->n_dirty; i++) {
        sched_entry *e = s->dirty[i];
        rc = put_state(txn, e->def.id, e->last_ms, e->queue, e->n_queue);
    }
    if (rc == 0 && c->through >= 0) {
        char v[32];
        int n = snprintf(v, sizeof(v), "%lld", (long long)c->through);
        rc = store_kv_put(txn, STATE_DB, THROUGH_KEY, strlen(THROUGH_KEY), v, (size_t)n);
    }
    return rc;
}

int sched_state_save(sched *s, int64_t through_ms)
{
    if (!s->n_dirty && through_ms < 0)
        return 0;
    save_ctx c = {s, through_ms};
    int rc = store_write(s->store, save_txn, &c);
    if (rc < 0 && rc != OPSC_ENOSPC) /* a full disk is logged once, by the store */
        log_error("sched",
                  "saving the scheduler's progress failed (%s): after a restart, fires "
                  "of this wake may happen again",
                  opsc_strerror(rc));
    for (size_t i = 0; i < s->n_dirty; i++)
        s->dirty[i]->dirty = false;
    s->n_dirty = 0;
    return rc;
}

/* ---- loading ------------------------------------------------------------------------------ */

static void apply_state(sched_entry *e, const void *val, size_t len)
{
    json_t *st = json_loadb(val, len, 0, NULL);
    json_t *last = json_object_get(st, "last_ms"), *q = json_object_get(st, "queue"), *m;
    size_t i;
    if (json_is_integer(last))
        e->last_ms = (int64_t)json_integer_value(last);
    json_array_foreach(q, i, m)
    {
        if (!json_is_integer(m) ||
            sched_grow((void **)&e->queue, &e->cap_queue, e->n_queue, sizeof(*e->queue)) < 0)
            continue;
        e->queue[e->n_queue++] = (int64_t)json_integer_value(m);
    }
    json_decref(st);
}

typedef struct load_ctx {
    sched *s;
    store_txn *txn;
    int64_t through; /* the handled-through mark, or -1 */
    int64_t since;   /* runs created before this cannot be of unmarked fires */
    size_t bad, recovered;
} load_ctx;

/* Every fire of `e` in (its own last_ms, through] was handled: count from
 * there, and name the last of them. */
static void apply_through(sched_entry *e, int64_t through)
{
    int64_t own = e->last_ms;
    if (through <= own)
        return;
    e->last_ms = through;
    if (!e->valid || !e->def.enabled)
        return;
    int64_t upto = through / 1000;
    if (e->def.end_ms != SCHED_TIME_NONE_HI && e->def.end_ms / 1000 < upto)
        upto = e->def.end_ms / 1000;
    int64_t t = cron_prev(&e->def.cron, e->def.tz, upto + 1);
    if (t != CRON_NONE && t * 1000 > own && t * 1000 >= e->def.start_ms)
        e->last_fire_ms = t * 1000;
}

static int load_one(const char *id, json_t *rec, void *ud)
{
    load_ctx *l = ud;
    sched *s = l->s;
    sched_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return OPSC_ENOMEM;
    e->heap_idx = SCHED_NOT_ARMED;
    e->valid = sched_def_parse(rec, &s->dft, &e->def, e->error, sizeof(e->error)) == 0;
    e->hint_after = INT64_MIN;
    if (!e->valid) {
        snprintf(e->def.id, sizeof(e->def.id), "%s", id);
        log_error("sched", "schedule %s cannot fire: %s", id, e->error);
        l->bad++;
    }
    /* Without a state (a crash between the record's commit and the first
     * wake) the count starts when the record was last written. */
    const char *upd = json_string_value(json_object_get(rec, "updated_at"));
    if (!upd || rfc3339_parse(upd, &e->last_ms) < 0)
        e->last_ms = clock_now_ms();
    e->last_fire_ms = SCHED_NO_FIRE;
    const void *val;
    size_t len;
    if (store_kv_get(l->txn, STATE_DB, id, strlen(id), &val, &len) == 0)
        apply_state(e, val, len);
    apply_through(e, l->through);
    if (e->last_ms < l->since)
        l->since = e->last_ms;
    int rc = sched_map_put(s, e);
    if (rc < 0)
        sched_entry_free(e);
    return rc;
}

/* A run the executor committed for a fire after the mark (the daemon died
 * between starting runs and committing the mark): that fire was handled.
 * Runs carry schedule_id and planned_at (the REST contract) and their UUIDv7
 * ids sort by creation, so the newest come first and the scan stops at the
 * first run older than every schedule's count. */
static int recover_one(const char *id, json_t *rec, void *ud)
{
    load_ctx *l = ud;
    int64_t created = uuid7_time_ms(id), planned;
    if (created >= 0 && created < l->since)
        return 1;
    const char *sid = json_string_value(json_object_get(rec, "schedule_id"));
    const char *at = json_string_value(json_object_get(rec, "planned_at"));
    sched_entry *e = sched_map_get(l->s, sid);
    if (!e || !at || rfc3339_parse(at, &planned) < 0 || planned <= e->last_ms)
        return 0;
    e->last_ms = e->last_fire_ms = planned;
    l->recovered++;
    return 0;
}

static int load_txn(store_txn *txn, void *ud)
{
    load_ctx *l = ud;
    const void *val;
    size_t len;
    char text[32];
    l->txn = txn;
    l->through = -1;
    if (store_kv_get(txn, STATE_DB, THROUGH_KEY, strlen(THROUGH_KEY), &val, &len) == 0 &&
        len < sizeof(text)) {
        memcpy(text, val, len);
        text[len] = '\0';
        l->through = strtoll(text, NULL, 10);
    }
    l->since = INT64_MAX;
    int rc = store_scan(txn, "schedules", NULL, false, load_one, l);
    if (rc == 0 && l->s->count)
        rc = store_scan(txn, "runs", NULL, true, recover_one, l);
    return rc;
}

static int arm_all(sched *s)
{
    for (size_t i = 0; i < s->nbuckets; i++)
        for (sched_entry *e = s->buckets[i]; e; e = e->map_next) {
            e->next_ms = sched_compute_next(e);
            if (e->next_ms != SCHED_NO_FIRE && sched_heap_push(s, e) < 0)
                return OPSC_ENOMEM;
        }
    return 0;
}

int sched_state_load(sched *s, char *err, size_t errlen)
{
    load_ctx l = {s, NULL, -1, INT64_MAX, 0, 0};
    int rc = store_read(s->store, load_txn, &l);
    if (rc == 0)
        rc = arm_all(s);
    if (rc < 0)
        snprintf(err, errlen, "loading schedules: %s", opsc_strerror(rc));
    else
        log_info("sched",
                 "%zu schedules loaded, %zu armed, %zu cannot fire; %zu fired after the last "
                 "commit (found in runs)",
                 s->count, s->heap_n, l.bad, l.recovered);
    return rc;
}
