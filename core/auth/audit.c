/* audit.c - buffered audit records, the retention sweep, and filtered newest-first listing. */
#include "audit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "log.h"
#include "util.h"

#define BUFFER_MAX       4096 /* events held before a synchronous flush */
#define SWEEP_EVERY_MS   (3600 * 1000)
#define SWEEP_BATCH      1000
#define LIST_SCAN_BUDGET 100000 /* records examined per page at most */

struct audit {
    uv_loop_t *loop;
    store *store;
    int64_t retention_ms;
    json_t *pending; /* array of event objects */
    uv_timer_t flush_timer, sweep_timer;
    int open_handles;
};

static void sweep_tick(uv_timer_t *t);

int audit_open(audit **out, uv_loop_t *loop, store *s, int64_t retention_ms)
{
    audit *a = calloc(1, sizeof(*a));
    if (!a || !(a->pending = json_array())) {
        free(a);
        return OPSC_ENOMEM;
    }
    a->loop = loop;
    a->store = s;
    a->retention_ms = retention_ms;
    uv_timer_init(loop, &a->flush_timer);
    uv_timer_init(loop, &a->sweep_timer);
    a->flush_timer.data = a->sweep_timer.data = a;
    a->open_handles = 2;
    uv_timer_start(&a->sweep_timer, sweep_tick, 0, SWEEP_EVERY_MS);
    uv_unref((uv_handle_t *)&a->sweep_timer); /* housekeeping keeps no loop alive */
    *out = a;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    audit *a = h->data;
    if (--a->open_handles == 0) {
        json_decref(a->pending);
        free(a);
    }
}

void audit_close(audit *a)
{
    if (!a)
        return;
    audit_flush(a);
    uv_close((uv_handle_t *)&a->flush_timer, on_closed);
    uv_close((uv_handle_t *)&a->sweep_timer, on_closed);
}

static int write_events(store_txn *txn, void *ud)
{
    json_t *events = ud;
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
    {
        json_t *copy = json_deep_copy(ev); /* store_create fills id etc.; a retry starts clean */
        int rc = copy ? store_create(txn, "audit", copy) : OPSC_ENOMEM;
        json_decref(copy);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int audit_flush(audit *a)
{
    if (json_array_size(a->pending) == 0)
        return 0;
    json_t *events = a->pending;
    a->pending = json_array();
    int rc = store_write_snapshot(a->store, write_events, events); /* new records only */
    if (rc < 0 && rc != OPSC_ENOSPC) /* a full disk is logged once, by the store */
        log_error("audit", "%zu audit records could not be written: %s", json_array_size(events),
                  opsc_strerror(rc));
    json_decref(events);
    if (!a->pending)
        return OPSC_ENOMEM;
    return rc;
}

static void flush_tick(uv_timer_t *t)
{
    audit_flush(t->data);
}

static void set_opt(json_t *o, const char *key, const char *v)
{
    if (v && *v)
        json_object_set_new(o, key, json_string(v));
}

void audit_record(audit *a, const audit_event *ev)
{
    json_t *o = json_object();
    if (!o || !a->pending) {
        json_decref(o);
        log_error("audit", "out of memory: audit event %s dropped", ev->action);
        return;
    }
    char id[UUID_STR_LEN];
    if (uuid7_new(id) == 0) /* the id says when it happened, not when it was written */
        json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "actor", json_string(ev->actor ? ev->actor : ""));
    set_opt(o, "actor_id", ev->actor_id);
    json_object_set_new(o, "client", json_string(ev->client ? ev->client : ""));
    json_object_set_new(o, "action", json_string(ev->action));
    set_opt(o, "object", ev->object);
    json_object_set_new(o, "outcome", json_string(ev->outcome));
    if (ev->status)
        json_object_set_new(o, "status", json_integer(ev->status));
    set_opt(o, "detail", ev->detail);
    json_array_append_new(a->pending, o);
    if (json_array_size(a->pending) >= BUFFER_MAX)
        audit_flush(a);
    else if (!uv_is_active((uv_handle_t *)&a->flush_timer))
        uv_timer_start(&a->flush_timer, flush_tick, 0, 0);
}

/* ---- retention ---------------------------------------------------------------- */

struct sweep {
    int64_t cutoff_ms;
    char ids[SWEEP_BATCH][40];
    size_t n;
};

static int collect_old(const char *id, json_t *rec, void *ud)
{
    (void)rec;
    struct sweep *s = ud;
    if (uuid7_time_ms(id) >= s->cutoff_ms || s->n == SWEEP_BATCH)
        return 1;
    snprintf(s->ids[s->n++], 40, "%s", id);
    return 0;
}

static int delete_batch(store_txn *txn, void *ud)
{
    struct sweep *s = ud;
    s->n = 0;
    int rc = store_scan(txn, "audit", NULL, false, collect_old, s);
    for (size_t i = 0; rc == 0 && i < s->n; i++)
        rc = store_delete(txn, "audit", s->ids[i], 0);
    return rc;
}

int audit_sweep(audit *a, int64_t now_ms, size_t *deleted)
{
    *deleted = 0;
    if (a->retention_ms <= 0)
        return 0;
    struct sweep *s = calloc(1, sizeof(*s));
    if (!s)
        return OPSC_ENOMEM;
    s->cutoff_ms = now_ms - a->retention_ms;
    int rc;
    do {
        rc = store_write(a->store, delete_batch, s);
        if (rc == 0)
            *deleted += s->n;
    } while (rc == 0 && s->n == SWEEP_BATCH);
    free(s);
    return rc;
}

static void sweep_tick(uv_timer_t *t)
{
    size_t n = 0;
    int rc = audit_sweep(t->data, clock_now_ms(), &n);
    if (rc < 0)
        log_error("audit", "retention sweep failed: %s", opsc_strerror(rc));
    else if (n > 0)
        log_info("audit", "retention: %zu audit records deleted", n);
}

/* ---- listing ----------------------------------------------------------------------- */

struct list {
    const audit_query *q;
    json_t *items;
    size_t scanned;
    char last[40];
    bool more;
};

static bool field_is(json_t *rec, const char *key, const char *want)
{
    if (!want)
        return true;
    const char *v = json_string_value(json_object_get(rec, key));
    return v && strcmp(v, want) == 0;
}

static int list_one(const char *id, json_t *rec, void *ud)
{
    struct list *l = ud;
    if (json_array_size(l->items) == l->q->limit || l->scanned == LIST_SCAN_BUDGET) {
        l->more = true;
        return 1;
    }
    l->scanned++;
    snprintf(l->last, sizeof(l->last), "%s", id);
    if (l->q->since_ms && uuid7_time_ms(id) < l->q->since_ms)
        return 1; /* ids are time-ordered: nothing older can match */
    if (field_is(rec, "actor", l->q->actor) && field_is(rec, "action", l->q->action) &&
        field_is(rec, "outcome", l->q->outcome) && field_is(rec, "object", l->q->object) &&
        field_is(rec, "client", l->q->client))
        return json_array_append(l->items, rec) == 0 ? 0 : OPSC_ENOMEM;
    return 0;
}

int audit_list(store_txn *txn, const audit_query *q, json_t **items, char next_cursor[40])
{
    struct list l = {q, json_array(), 0, "", false};
    if (!l.items)
        return OPSC_ENOMEM;
    char start[64];
    const char *cursor = q->cursor;
    /* Start just after `until`: a UUIDv7 of until+1 ms with zero random bits
     * sorts after every id made at or before `until`. */
    if (!cursor && q->until_ms > 0) {
        int64_t t = q->until_ms + 1;
        snprintf(start, sizeof(start), "%08llx-%04llx-7000-8000-000000000000",
                 (unsigned long long)(t >> 16), (unsigned long long)(t & 0xffff));
        cursor = start;
    }
    int rc = store_scan(txn, "audit", cursor, true, list_one, &l);
    if (rc < 0) {
        json_decref(l.items);
        return rc;
    }
    snprintf(next_cursor, 40, "%s", l.more ? l.last : "");
    *items = l.items;
    return 0;
}
