/* record.c - JSON records: create/get/update/delete with ids, timestamps, versions; scans. */
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "log.h"
#include "store_internal.h"
#include "util.h"

static int id_check(const char *id)
{
    if (!id)
        return OPSC_EINVAL;
    size_t n = strlen(id);
    return (n == 0 || n >= STORE_ID_MAX) ? OPSC_EINVAL : 0;
}

static MDB_val id_key(const char *id)
{
    MDB_val k = {strlen(id), (void *)id};
    return k;
}

static int rec_load(const MDB_val *v, const char *db, json_t **out)
{
    json_error_t jerr;
    json_t *rec = json_loadb(v->mv_data, v->mv_size, JSON_ALLOW_NUL, &jerr);
    if (!json_is_object(rec)) {
        log_error("store", "%s: record is not a JSON object (%s)", db,
                  rec ? "wrong type" : jerr.text);
        json_decref(rec);
        return OPSC_ECORRUPT;
    }
    *out = rec;
    return 0;
}

/* The stored record `id`, parsed. */
/* The stored bytes of `id` on either backend: 0, OPSC_ENOENT or an error. */
static int raw_get(store_txn *t, MDB_dbi dbi, const char *id, MDB_val *v, const char *what)
{
    MDB_val k = id_key(id);
    if (t->pg)
        return pg_kv_get(t, dbi, id, k.mv_size, (const void **)&v->mv_data, &v->mv_size, false);
    return store_mdb_err(t, mdb_get(t->txn, dbi, &k, v), what);
}

static int rec_fetch(store_txn *t, MDB_dbi dbi, const char *db, const char *id, json_t **out)
{
    MDB_val v;
    int rc = raw_get(t, dbi, id, &v, "reading a record");
    return rc ? rc : rec_load(&v, db, out);
}

static int rec_put(store_txn *t, MDB_dbi dbi, const char *id, const json_t *rec, unsigned int flags)
{
    char *text = json_dumps(rec, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return OPSC_ENOMEM;
    MDB_val k = id_key(id), v = {strlen(text), text};
    int rc = t->pg ? pg_kv_put(t, dbi, id, strlen(id), text, v.mv_size, flags & MDB_NOOVERWRITE)
                   : store_mdb_err(t, mdb_put(t->txn, dbi, &k, &v, flags), "writing a record");
    free(text);
    return rc;
}

/* Set the bookkeeping fields; `created` NULL keeps what `rec` has. */
static int stamp(json_t *rec, json_t *created, const char *now, json_int_t version)
{
    int bad = 0;
    if (created)
        bad |= json_object_set(rec, "created_at", created);
    bad |= json_object_set_new(rec, "updated_at", json_string(now));
    bad |= json_object_set_new(rec, "version", json_integer(version));
    return bad ? OPSC_ENOMEM : 0;
}

static json_int_t rec_version(const json_t *rec)
{
    return json_integer_value(json_object_get(rec, "version"));
}

/* The record's own id: a string that fits an index value. */
static int rec_id(const json_t *rec, const char **id)
{
    const json_t *jid = json_object_get(rec, "id");
    if (!json_is_string(jid) || id_check(json_string_value(jid)))
        return OPSC_EINVAL;
    *id = json_string_value(jid);
    return 0;
}

int store_get(store_txn *txn, const char *db, const char *id, json_t **out)
{
    MDB_dbi dbi;
    int rc = store_dbi(txn, db, &dbi);
    if (rc)
        return rc;
    if (id_check(id) || !out)
        return OPSC_EINVAL;
    return rec_fetch(txn, dbi, db, id, out);
}

int store_create(store_txn *txn, const char *db, json_t *rec)
{
    MDB_dbi dbi;
    int rc = store_dbi_w(txn, db, &dbi);
    if (rc)
        return rc;
    if (!json_is_object(rec))
        return OPSC_EINVAL;
    char fresh[UUID_STR_LEN];
    const char *id = fresh;
    if (json_object_get(rec, "id")) {
        if (rec_id(rec, &id))
            return OPSC_EINVAL;
    } else if ((rc = uuid7_new(fresh)) < 0) {
        return rc;
    }
    /* Refuse before touching `rec`, so a failed create leaves it as it was. */
    MDB_val v;
    rc = raw_get(txn, dbi, id, &v, "checking a new id");
    if (rc != OPSC_ENOENT)
        return rc == 0 ? OPSC_EEXIST : rc;
    char now[RFC3339_LEN];
    rfc3339_format(clock_now_ms(), now);
    json_t *created = json_string(now);
    rc = created ? 0 : OPSC_ENOMEM;
    if (rc == 0 && id == fresh && json_object_set_new(rec, "id", json_string(fresh)))
        rc = OPSC_ENOMEM;
    if (rc == 0)
        rc = stamp(rec, created, now, 1);
    json_decref(created);
    return rc ? rc : rec_put(txn, dbi, id, rec, MDB_NOOVERWRITE);
}

int store_update(store_txn *txn, const char *db, json_t *rec, int64_t expect_version)
{
    MDB_dbi dbi;
    const char *id;
    int rc = store_dbi_w(txn, db, &dbi);
    if (rc)
        return rc;
    if (!json_is_object(rec) || rec_id(rec, &id))
        return OPSC_EINVAL;
    json_t *old;
    rc = rec_fetch(txn, dbi, db, id, &old);
    if (rc)
        return rc;
    json_int_t version = rec_version(old);
    if (expect_version != 0 && version != expect_version) {
        json_decref(old);
        return OPSC_ECONFLICT;
    }
    char now[RFC3339_LEN];
    rfc3339_format(clock_now_ms(), now);
    rc = stamp(rec, json_object_get(old, "created_at"), now, version + 1);
    json_decref(old);
    return rc ? rc : rec_put(txn, dbi, id, rec, 0);
}

int store_delete(store_txn *txn, const char *db, const char *id, int64_t expect_version)
{
    MDB_dbi dbi;
    int rc = store_dbi_w(txn, db, &dbi);
    if (rc)
        return rc;
    if (id_check(id))
        return OPSC_EINVAL;
    if (expect_version != 0) {
        json_t *old;
        rc = rec_fetch(txn, dbi, db, id, &old);
        if (rc)
            return rc;
        json_int_t version = rec_version(old);
        json_decref(old);
        if (version != expect_version)
            return OPSC_ECONFLICT;
    }
    if (txn->pg)
        return pg_kv_del(txn, dbi, id, strlen(id));
    MDB_val k = id_key(id);
    return store_mdb_err(txn, mdb_del(txn->txn, dbi, &k, NULL), "deleting a record");
}

/* ---- scans -------------------------------------------------------------- */

typedef struct scan_ctx {
    const char *db;
    store_scan_fn fn;
    void *ud;
} scan_ctx;

static int scan_one(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    scan_ctx *sc = ud;
    char id[512]; /* > the LMDB key limit */
    if (klen >= sizeof(id))
        return OPSC_ECORRUPT;
    memcpy(id, key, klen);
    id[klen] = '\0';
    MDB_val v = {vlen, (void *)val};
    json_t *rec;
    int rc = rec_load(&v, sc->db, &rec);
    if (rc)
        return rc;
    rc = sc->fn(id, rec, sc->ud);
    json_decref(rec);
    return rc;
}

int store_scan(store_txn *txn, const char *db, const char *cursor, bool reverse, store_scan_fn fn,
               void *ud)
{
    MDB_dbi dbi;
    int rc = store_dbi(txn, db, &dbi);
    if (rc)
        return rc == OPSC_ENOENT ? 0 : rc; /* absent from an older store: empty */
    if (!fn)
        return OPSC_EINVAL;
    if (cursor && !*cursor)
        cursor = NULL;
    if (cursor && id_check(cursor))
        return OPSC_EINVAL;
    store_walk w = {
        .start = cursor,
        .slen = cursor ? strlen(cursor) : 0,
        .after = true,
        .reverse = reverse,
    };
    scan_ctx sc = {db, fn, ud};
    return store_walk_run(txn, dbi, &w, scan_one, &sc);
}
