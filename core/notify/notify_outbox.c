/* notify_outbox.c - deliveries in the store: created with the event's transaction, merged within
 * a rule's group window, moved along the due index as attempts come and go. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "notify_internal.h"
#include "util.h"

#define RUN_IDS_KEPT 50 /* run ids a grouped delivery lists (its count goes on) */

void nt_due_key(char *buf, size_t n, int64_t due_ms, const char *id)
{
    snprintf(buf, n, "%016" PRIx64 "/%s", (uint64_t)(due_ms > 0 ? due_ms : 0), id);
}

json_t *nt_notice_payload(notify *n, store_txn *txn, notice *no)
{
    if (!no->payload && no->build)
        no->payload = no->build(n, txn, no);
    return no->payload;
}

void nt_notice_clear(notice *no)
{
    json_decref(no->payload);
    no->payload = NULL;
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Users who subscribed to a rule: their notify_email, for email channels. */
static json_t *recipients(store_txn *txn, const nrule *r)
{
    json_t *out = json_array();
    size_t i;
    json_t *uid;
    json_array_foreach(r->users, i, uid)
    {
        json_t *u = NULL;
        if (store_get(txn, "users", json_string_value(uid), &u) == 0 &&
            json_is_true(json_object_get(u, "enabled"))) {
            const char *addr = str(u, "notify_email");
            if (addr && *addr)
                json_array_append_new(out, json_string(addr));
        }
        json_decref(u);
    }
    return out;
}

static int create(notify *n, store_txn *txn, const nrule *r, const json_t *ch, notice *no,
                  int64_t due, char id[40])
{
    json_t *payload = nt_notice_payload(n, txn, no);
    char at[RFC3339_LEN];
    int rc = payload ? uuid7_new(id) : OPSC_ENOMEM;
    if (rc < 0)
        return rc;
    rfc3339_format(due, at);
    bool test = no->ev == EV_TEST;
    json_t *rec = json_pack(
        "{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s, s:s, s:s, s:[], s:i, s:n, s:n, s:s, s:I, s:O}",
        "id", id, "channel_id", str(ch, "id"), "channel_type", str(ch, "type"), "channel_name",
        str(ch, "name"), "rule_id", r ? r->id : NULL, "rule_name", r ? str(r->rec, "name") : NULL,
        "event", nt_event_name(no->ev), "severity", nt_sev_name(no->sev), "state", "pending",
        "attempts", "count", 1, "error", "delivered_at", "next_attempt_at", at, "due_ms",
        (json_int_t)due, "payload", payload);
    if (!rec)
        return OPSC_ENOMEM;
    if (!r)
        json_object_set_new(rec, "rule_id", json_null());
    if (test)
        json_object_set_new(rec, "test", json_true());
    if (r && json_array_size(r->users) && strcmp(str(ch, "type") ?: "", "email") == 0)
        json_object_set_new(rec, "recipients", recipients(txn, r));
    rc = store_create(txn, "outbox", rec);
    char key[96];
    nt_due_key(key, sizeof(key), due, id);
    /* A test is sent at once by the request that made it, never from the queue. */
    if (rc == 0 && !test)
        rc = store_kv_put(txn, "outbox_due", key, strlen(key), "", 0);
    if (rc == 0 && !test && store_is_shared(n->store)) /* wakes the leader's sender */
        rc = store_announce(txn, "notify.outbox", n->core->node_id);
    json_decref(rec);
    if (rc == 0)
        n->stats.created++;
    return rc;
}

/* In a cluster the leader may be sending a delivery that is due, unseen
 * in this node's `busy`, and its result would overwrite a merge: only one
 * due later (a window's gathering delivery) takes more notices. */
static bool sent_elsewhere(const notify *n, const json_t *rec)
{
    return store_is_shared(n->store) &&
           json_integer_value(json_object_get(rec, "due_ms")) <= clock_now_ms();
}

/* Fold notice `no` into delivery `did` when it has not been tried yet. */
static int merge(notify *n, store_txn *txn, const char *did, const notice *no, bool *merged)
{
    *merged = false;
    json_t *rec = NULL;
    int rc = store_get(txn, "outbox", did, &rec);
    if (rc == OPSC_ENOENT)
        return 0;
    const char *state = str(rec, "state");
    if (rc < 0 || !state || strcmp(state, "pending") != 0 ||
        json_array_size(json_object_get(rec, "attempts")) > 0 || json_object_get(n->busy, did) ||
        sent_elsewhere(n, rec)) {
        json_decref(rec);
        return rc;
    }
    json_int_t count = json_integer_value(json_object_get(rec, "count")) + 1;
    json_t *payload = json_object_get(rec, "payload");
    json_t *grouped = json_object_get(payload, "grouped");
    if (!json_is_object(grouped)) {
        grouped = json_pack("{s:[s?]}", "run_ids", str(json_object_get(payload, "run"), "id"));
        json_object_set_new(payload, "grouped", grouped);
    }
    json_t *ids = json_object_get(grouped, "run_ids");
    if (no->run_id && json_array_size(ids) < RUN_IDS_KEPT)
        json_array_append_new(ids, json_string(no->run_id));
    json_object_set_new(grouped, "count", json_integer(count));
    json_object_set_new(json_object_get(payload, "event"), "count", json_integer(count));
    json_object_set_new(rec, "count", json_integer(count));
    rc = store_update(txn, "outbox", rec, 0);
    json_decref(rec);
    if (rc == 0) {
        *merged = true;
        n->stats.merged++;
    }
    return rc;
}

static const char *subject_of(const notice *no)
{
    return no->job_id ? no->job_id : no->target_id ? no->target_id : no->schedule_id ?: "-";
}

/* Within a window: the first notice goes at once; later ones gather in one
 * delivery due when the window closes, so a storm costs two messages per
 * window and nothing is dropped. */
int nt_outbox_add(notify *n, store_txn *txn, const nrule *r, const json_t *ch, const notice *cno,
                  char created[40])
{
    notice *no = (notice *)cno; /* its payload is built on demand */
    int64_t now = clock_now_ms();
    created[0] = '\0';
    if (!r || r->window_ms <= 0)
        return create(n, txn, r, ch, no, now, created);
    char key[256];
    snprintf(key, sizeof(key), "%s/%s/%s/%s", r->id, str(ch, "id"), nt_event_name(no->ev),
             subject_of(no));
    const void *val = NULL;
    size_t vlen = 0;
    int rc = store_kv_get(txn, "outbox_groups", key, strlen(key), &val, &vlen);
    json_t *g = rc == 0 ? json_loadb(val, vlen, 0, NULL) : NULL;
    if (rc < 0 && rc != OPSC_ENOENT)
        return rc;
    int64_t until = (int64_t)json_integer_value(json_object_get(g, "until"));
    bool merged = false;
    if (g && now < until) {
        rc = merge(n, txn, str(g, "delivery"), no, &merged);
        if (rc == 0 && !merged)
            rc = create(n, txn, r, ch, no, until, created);
    } else {
        until = now + r->window_ms;
        rc = create(n, txn, r, ch, no, now, created);
    }
    json_decref(g);
    if (rc < 0 || merged)
        return rc;
    char *text = NULL;
    g = json_pack("{s:s, s:I}", "delivery", created, "until", (json_int_t)until);
    text = g ? json_dumps(g, JSON_COMPACT) : NULL;
    json_decref(g);
    rc = text ? store_kv_put(txn, "outbox_groups", key, strlen(key), text, strlen(text))
              : OPSC_ENOMEM;
    free(text);
    return rc;
}

static bool open_state(const char *state)
{
    return state && (strcmp(state, "pending") == 0 || strcmp(state, "failed") == 0);
}

int nt_outbox_put(store_txn *txn, json_t *rec, int64_t old_due)
{
    const char *id = str(rec, "id");
    char key[96];
    int rc = store_update(txn, "outbox", rec, 0);
    if (rc == 0 && old_due >= 0 && !json_is_true(json_object_get(rec, "test"))) {
        nt_due_key(key, sizeof(key), old_due, id);
        rc = store_kv_del(txn, "outbox_due", key, strlen(key));
        if (rc == OPSC_ENOENT)
            rc = 0;
    }
    if (rc == 0 && open_state(str(rec, "state")) && !json_is_true(json_object_get(rec, "test"))) {
        nt_due_key(key, sizeof(key), json_integer_value(json_object_get(rec, "due_ms")), id);
        rc = store_kv_put(txn, "outbox_due", key, strlen(key), "", 0);
    }
    return rc;
}

typedef struct prune {
    bool (*stale)(const void *val, size_t vlen, int64_t cutoff);
    int64_t cutoff;
    json_t *keys;
} prune;

static int prune_one(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    prune *p = ud;
    if (p->stale(val, vlen, p->cutoff))
        json_array_append_new(p->keys, json_stringn(key, klen));
    return 0;
}

int nt_kv_prune(store_txn *txn, const char *db,
                bool (*stale)(const void *val, size_t vlen, int64_t cutoff), int64_t cutoff)
{
    prune p = {stale, cutoff, json_array()};
    int rc = p.keys ? store_kv_scan(txn, db, NULL, 0, prune_one, &p) : OPSC_ENOMEM;
    size_t i;
    json_t *k;
    json_array_foreach(p.keys, i, k)
    {
        if (rc == 0)
            rc = store_kv_del(txn, db, json_string_value(k), json_string_length(k));
    }
    json_decref(p.keys);
    return rc;
}

static bool window_closed(const void *val, size_t vlen, int64_t now)
{
    json_t *g = json_loadb(val, vlen, 0, NULL);
    bool closed = !g || json_integer_value(json_object_get(g, "until")) < now;
    json_decref(g);
    return closed;
}

int nt_groups_sweep(store_txn *txn, int64_t now_ms)
{
    return nt_kv_prune(txn, "outbox_groups", window_closed, now_ms);
}

typedef struct history {
    int64_t cutoff;
    size_t max;
    json_t *old;
    bool more;
} history;

static int old_one(const char *id, json_t *rec, void *ud)
{
    history *h = ud;
    if (uuid7_time_ms(id) >= h->cutoff)
        return 1; /* ids sort by time: the rest is younger */
    if (json_array_size(h->old) >= h->max) {
        h->more = true;
        return 1;
    }
    if (!open_state(str(rec, "state")))
        json_array_append_new(h->old, json_string(id));
    return 0;
}

int nt_history_sweep(store_txn *txn, int64_t cutoff_ms, size_t max, bool *more)
{
    history h = {cutoff_ms, max, json_array(), false};
    int rc = h.old ? store_scan(txn, "outbox", NULL, false, old_one, &h) : OPSC_ENOMEM;
    size_t i;
    json_t *id;
    json_array_foreach(h.old, i, id)
    {
        if (rc == 0)
            rc = store_delete(txn, "outbox", json_string_value(id), 0);
    }
    json_decref(h.old);
    *more = h.more;
    return rc;
}

json_t *notify_delivery_public(json_t *rec)
{
    json_t *v = json_copy(rec);
    static const char *const internal[] = {"due_ms", "rate_slot", NULL};
    for (const char *const *k = internal; v && *k; k++)
        json_object_del(v, *k);
    return v;
}
