/* run_read.c - runs, lists of runs and run logs as the REST API reads them from the store. */
#include "run_read.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "util.h"

void run_target_key(char *buf, size_t n, const char *run_id, uint32_t idx)
{
    snprintf(buf, n, "%s/%06u", run_id, idx);
}

void run_log_key(char *buf, size_t n, const char *run_id, uint32_t idx, uint64_t first_seq)
{
    snprintf(buf, n, "%s/%06u/%012" PRIu64, run_id, idx, first_seq);
}

/* ---- one run ------------------------------------------------------------------------------ */

static int add_target(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    (void)key;
    (void)klen;
    json_t *t = json_loadb(val, vlen, 0, NULL);
    if (!json_is_object(t)) {
        json_decref(t);
        return OPSC_ECORRUPT;
    }
    json_array_append_new(ud, t);
    return 0;
}

int run_read_targets(store_txn *txn, const char *run_id, json_t **out)
{
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "%s/", run_id);
    *out = json_array();
    int rc = store_kv_scan(txn, "run_targets", prefix, strlen(prefix), add_target, *out);
    if (rc < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int run_read(store_txn *txn, const char *run_id, json_t **out)
{
    *out = NULL;
    if (!uuid_valid(run_id))
        return OPSC_ENOENT;
    json_t *rec = NULL, *targets = NULL;
    int rc = store_get(txn, "runs", run_id, &rec);
    if (rc == 0)
        rc = run_read_targets(txn, run_id, &targets);
    if (rc < 0) {
        json_decref(rec);
        return rc;
    }
    size_t i;
    json_t *t;
    json_array_foreach(targets, i, t) /* the executor's own note: which processes to kill */
        json_object_del(t, "process");
    json_object_set_new(rec, "targets", targets);
    *out = rec;
    return 0;
}

static int exists_txn(store_txn *txn, void *ud)
{
    json_t *rec = NULL;
    int rc = store_get(txn, "runs", ud, &rec);
    json_decref(rec);
    return rc;
}

int run_exists(store *s, const char *run_id)
{
    return uuid_valid(run_id) ? store_read(s, exists_txn, (void *)run_id) : OPSC_ENOENT;
}

/* ---- lists ---------------------------------------------------------------------------------- */

typedef struct list_ud {
    const run_filter *f;
    size_t limit;
    json_t *items;
    bool more;
} list_ud;

static bool keep(const run_filter *f, json_t *rec)
{
    const char *state = json_string_value(json_object_get(rec, "state"));
    const char *job = json_string_value(json_object_get(rec, "job_id"));
    const char *sched = json_string_value(json_object_get(rec, "schedule_id"));
    if (f->state && (!state || strcmp(state, f->state) != 0))
        return false;
    if (f->schedule_id && (!sched || strcmp(sched, f->schedule_id) != 0))
        return false;
    return !f->job_id || (job && strcmp(job, f->job_id) == 0);
}

/* 1: stop (a page and one more were found, or older than `since`). */
static int take(list_ud *u, const char *id, json_t *rec)
{
    /* The id's time is when the run was made, a moment before created_at:
     * filter on created_at, stop the scan well before it could matter. */
    int64_t created = 0;
    const char *at = json_string_value(json_object_get(rec, "created_at"));
    if (!at || rfc3339_parse(at, &created) < 0)
        created = uuid7_time_ms(id);
    if (u->f->since_ms > 0 && uuid7_time_ms(id) < u->f->since_ms - 60000)
        return 1;
    if ((u->f->since_ms > 0 && created < u->f->since_ms) ||
        (u->f->until_ms > 0 && created > u->f->until_ms))
        return 0;
    if (!keep(u->f, rec))
        return 0;
    if (json_array_size(u->items) == u->limit) {
        u->more = true;
        return 1;
    }
    json_array_append(u->items, rec);
    return 0;
}

static int scan_one(const char *id, json_t *rec, void *ud)
{
    return take(ud, id, rec);
}

static int collect_ids(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    (void)key;
    (void)klen;
    json_array_append_new(ud, json_stringn(val, vlen));
    return 0;
}

static int list_by_index(store_txn *txn, list_ud *u, const char *db, const char *parent,
                         const char *cursor)
{
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "%s/", parent);
    json_t *ids = json_array();
    int rc = store_kv_scan(txn, db, prefix, strlen(prefix), collect_ids, ids);
    for (size_t i = json_array_size(ids); rc == 0 && i-- > 0;) {
        const char *id = json_string_value(json_array_get(ids, i));
        json_t *rec = NULL;
        if (cursor && strcmp(id, cursor) >= 0)
            continue;
        rc = store_get(txn, "runs", id, &rec);
        if (rc == OPSC_ENOENT) {
            rc = 0;
            continue;
        }
        if (rc == 0)
            rc = take(u, id, rec);
        json_decref(rec);
        if (rc == 1) {
            rc = 0;
            break;
        }
    }
    json_decref(ids);
    return rc;
}

int run_list(store_txn *txn, const run_filter *f, const char *cursor, size_t limit, json_t **items,
             char next[40])
{
    list_ud u = {f, limit, json_array(), false};
    char from[64];
    int rc;
    next[0] = '\0';
    if (!cursor && f->until_ms > 0) { /* the first id after `until`: scan below it */
        uint64_t ms = (uint64_t)f->until_ms + 1;
        snprintf(from, sizeof(from), "%08" PRIx64 "-%04" PRIx64 "-7000-8000-000000000000", ms >> 16,
                 ms & 0xffff);
        cursor = from;
    }
    if (f->target_id)
        rc = list_by_index(txn, &u, "runs_by_target", f->target_id, cursor);
    else if (f->job_id)
        rc = list_by_index(txn, &u, "runs_by_job", f->job_id, cursor);
    else
        rc = store_scan(txn, "runs", cursor, true, scan_one, &u);
    if (rc < 0) {
        json_decref(u.items);
        return rc;
    }
    if (u.more && json_array_size(u.items) > 0)
        snprintf(next, 40, "%s",
                 json_string_value(json_object_get(json_array_get(u.items, limit - 1), "id")));
    *items = u.items;
    return 0;
}
