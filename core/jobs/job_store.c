/* job_store.c - job records, their name index and their versions in the store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "job.h"
#include "util.h"

static void version_key(char *buf, size_t n, const char *job_id, int64_t version)
{
    snprintf(buf, n, "%s/%010lld", job_id, (long long)version);
}

static int put_version(store_txn *txn, const json_t *rec)
{
    char key[80];
    version_key(key, sizeof(key), json_string_value(json_object_get(rec, "id")),
                json_integer_value(json_object_get(rec, "version")));
    char *text = json_dumps(rec, JSON_COMPACT);
    if (!text)
        return OPSC_ENOMEM;
    int rc = store_kv_put(txn, "job_versions", key, strlen(key), text, strlen(text));
    free(text);
    return rc;
}

int job_insert(store_txn *txn, json_t *rec)
{
    const char *name = json_string_value(json_object_get(rec, "name"));
    char id[UUID_STR_LEN];
    if (!json_object_get(rec, "id")) {
        int rc = uuid7_new(id);
        if (rc < 0)
            return rc;
        json_object_set_new(rec, "id", json_string(id));
    }
    const char *rid = json_string_value(json_object_get(rec, "id"));
    int rc = store_index_put(txn, "jobs_by_name", name, rid);
    if (rc == 0)
        rc = store_create(txn, "jobs", rec);
    if (rc == 0)
        rc = put_version(txn, rec);
    return rc;
}

int job_replace(store_txn *txn, const json_t *before, json_t *rec, int64_t expect)
{
    const char *old = json_string_value(json_object_get(before, "name"));
    const char *now = json_string_value(json_object_get(rec, "name"));
    const char *id = json_string_value(json_object_get(before, "id"));
    json_object_set_new(rec, "id", json_string(id));
    int rc = 0;
    if (strcmp(old, now) != 0) {
        rc = store_index_put(txn, "jobs_by_name", now, id);
        if (rc == 0)
            rc = store_index_del(txn, "jobs_by_name", old);
    }
    if (rc == 0)
        rc = store_update(txn, "jobs", rec, expect);
    if (rc == 0)
        rc = put_version(txn, rec);
    return rc;
}

int job_remove(store_txn *txn, const char *id, int64_t expect)
{
    json_t *rec = NULL;
    int rc = store_get(txn, "jobs", id, &rec);
    if (rc == 0)
        rc = store_delete(txn, "jobs", id, expect);
    if (rc == 0)
        rc = store_index_del(txn, "jobs_by_name", json_string_value(json_object_get(rec, "name")));
    int64_t last = rc == 0 ? json_integer_value(json_object_get(rec, "version")) : 0;
    for (int64_t v = 1; rc == 0 && v <= last; v++) {
        char key[80];
        version_key(key, sizeof(key), id, v);
        rc = store_kv_del(txn, "job_versions", key, strlen(key));
        if (rc == OPSC_ENOENT)
            rc = 0;
    }
    json_decref(rec);
    return rc;
}

int job_get(store_txn *txn, const char *ref, json_t **out)
{
    *out = NULL;
    if (!ref || !*ref)
        return OPSC_ENOENT;
    int rc = uuid_valid(ref) ? store_get(txn, "jobs", ref, out) : OPSC_ENOENT;
    if (rc == OPSC_ENOENT && strlen(ref) <= 128) {
        char id[40];
        rc = store_index_get(txn, "jobs_by_name", ref, id);
        if (rc == 0)
            rc = store_get(txn, "jobs", id, out);
    }
    return rc;
}

int job_version_get(store_txn *txn, const char *job_id, int64_t version, json_t **out)
{
    char key[80];
    const void *val;
    size_t len;
    *out = NULL;
    if (version < 1)
        return OPSC_ENOENT;
    version_key(key, sizeof(key), job_id, version);
    int rc = store_kv_get(txn, "job_versions", key, strlen(key), &val, &len);
    if (rc < 0)
        return rc;
    *out = json_loadb(val, len, 0, NULL);
    return json_is_object(*out) ? 0 : OPSC_ECORRUPT;
}

int job_versions_list(store_txn *txn, const char *job_id, int64_t before, size_t limit,
                      json_t **items, int64_t *next)
{
    json_t *cur = NULL;
    *items = NULL;
    *next = 0;
    int rc = store_get(txn, "jobs", job_id, &cur);
    if (rc < 0)
        return rc;
    int64_t v = json_integer_value(json_object_get(cur, "version"));
    json_decref(cur);
    if (before > 0 && before <= v)
        v = before - 1;
    *items = json_array();
    for (; rc == 0 && v >= 1 && json_array_size(*items) < limit; v--) {
        json_t *rec = NULL;
        rc = job_version_get(txn, job_id, v, &rec);
        if (rc == OPSC_ENOENT) { /* a store that predates versions keeps only the newest */
            rc = 0;
            continue;
        }
        if (rc == 0)
            json_array_append_new(*items,
                                  json_pack("{s:I, s:O?, s:O?, s:O?}", "version", (json_int_t)v,
                                            "updated_at", json_object_get(rec, "updated_at"),
                                            "updated_by", json_object_get(rec, "updated_by"),
                                            "name", json_object_get(rec, "name")));
        json_decref(rec);
    }
    if (rc == 0 && v >= 1)
        *next = v + 1;
    if (rc < 0) {
        json_decref(*items);
        *items = NULL;
    }
    return rc;
}
