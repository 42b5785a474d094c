/* kv.c - raw key/value access, secondary indexes and the cursor walk under both scans. */
#include <string.h>

#include <opsc/errors.h>

#include "store_internal.h"

int store_key_check(store_txn *t, const void *key, size_t klen)
{
    size_t max = t->s->pg ? STORE_PG_MAX_KEY : (size_t)mdb_env_get_maxkeysize(t->s->env);
    if (!key || klen == 0 || klen > max)
        return OPSC_EINVAL;
    return 0;
}

/* The database and key of a kv operation, checked. */
static int kv_prep(store_txn *t, const char *db, bool write, const void *key, size_t klen,
                   MDB_dbi *dbi, MDB_val *k)
{
    int rc = write ? store_dbi_w(t, db, dbi) : store_dbi(t, db, dbi);
    if (rc == 0)
        rc = store_key_check(t, key, klen);
    k->mv_size = klen;
    k->mv_data = (void *)key;
    return rc;
}

static int kv_get(store_txn *txn, const char *db, const void *key, size_t klen, const void **val,
                  size_t *vlen, bool lock)
{
    MDB_dbi dbi;
    MDB_val k, v;
    int rc = kv_prep(txn, db, false, key, klen, &dbi, &k);
    if (rc)
        return rc;
    if (txn->pg)
        return pg_kv_get(txn, dbi, key, klen, val, vlen, lock);
    rc = mdb_get(txn->txn, dbi, &k, &v);
    if (rc)
        return store_mdb_err(txn, rc, "kv get");
    *val = v.mv_data;
    *vlen = v.mv_size;
    return 0;
}

int store_kv_get(store_txn *txn, const char *db, const void *key, size_t klen, const void **val,
                 size_t *vlen)
{
    return kv_get(txn, db, key, klen, val, vlen, false);
}

int store_kv_get_locked(store_txn *txn, const char *db, const void *key, size_t klen,
                        const void **val, size_t *vlen)
{
    return kv_get(txn, db, key, klen, val, vlen, true);
}

int store_kv_put(store_txn *txn, const char *db, const void *key, size_t klen, const void *val,
                 size_t vlen)
{
    MDB_dbi dbi;
    MDB_val k, v = {vlen, (void *)val};
    int rc = kv_prep(txn, db, true, key, klen, &dbi, &k);
    if (rc)
        return rc;
    if (!val && vlen)
        return OPSC_EINVAL;
    if (txn->pg)
        return pg_kv_put(txn, dbi, key, klen, val, vlen, false);
    return store_mdb_err(txn, mdb_put(txn->txn, dbi, &k, &v, 0), "kv put");
}

int store_kv_del(store_txn *txn, const char *db, const void *key, size_t klen)
{
    MDB_dbi dbi;
    MDB_val k;
    int rc = kv_prep(txn, db, true, key, klen, &dbi, &k);
    if (rc)
        return rc;
    if (txn->pg)
        return pg_kv_del(txn, dbi, key, klen);
    return store_mdb_err(txn, mdb_del(txn->txn, dbi, &k, NULL), "kv delete");
}

/* ---- secondary indexes -------------------------------------------------- */

int store_index_put(store_txn *txn, const char *index_db, const char *key, const char *id)
{
    if (!key || !id || strlen(id) == 0 || strlen(id) >= STORE_ID_MAX)
        return OPSC_EINVAL;
    const void *cur;
    size_t clen;
    int rc = store_kv_get(txn, index_db, key, strlen(key), &cur, &clen);
    if (rc == 0)
        return (clen == strlen(id) && memcmp(cur, id, clen) == 0) ? 0 : OPSC_EEXIST;
    if (rc != OPSC_ENOENT)
        return rc;
    return store_kv_put(txn, index_db, key, strlen(key), id, strlen(id));
}

int store_index_get(store_txn *txn, const char *index_db, const char *key, char id[40])
{
    if (!key || !id)
        return OPSC_EINVAL;
    const void *val;
    size_t vlen;
    int rc = store_kv_get(txn, index_db, key, strlen(key), &val, &vlen);
    if (rc)
        return rc;
    if (vlen == 0 || vlen >= STORE_ID_MAX)
        return OPSC_ECORRUPT;
    memcpy(id, val, vlen);
    id[vlen] = '\0';
    return 0;
}

int store_index_del(store_txn *txn, const char *index_db, const char *key)
{
    if (!key)
        return OPSC_EINVAL;
    return store_kv_del(txn, index_db, key, strlen(key));
}

/* ---- cursor walk -------------------------------------------------------- */

static int keycmp(const MDB_val *k, const void *s, size_t slen)
{
    size_t n = k->mv_size < slen ? k->mv_size : slen;
    int c = memcmp(k->mv_data, s, n);
    if (c)
        return c;
    return k->mv_size < slen ? -1 : k->mv_size > slen;
}

/* Position on the first key of the walk: 0, MDB_NOTFOUND (nothing) or an error. */
static int walk_first(MDB_cursor *c, const store_walk *w, MDB_val *k, MDB_val *v)
{
    if (!w->start)
        return mdb_cursor_get(c, k, v, w->reverse ? MDB_LAST : MDB_FIRST);
    k->mv_size = w->slen;
    k->mv_data = (void *)w->start;
    int rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE); /* first key >= start */
    if (w->reverse) {
        if (rc == MDB_NOTFOUND)
            return mdb_cursor_get(c, k, v, MDB_LAST);
        if (rc == 0 && (w->after || keycmp(k, w->start, w->slen) > 0))
            rc = mdb_cursor_get(c, k, v, MDB_PREV);
        return rc;
    }
    if (rc == 0 && w->after && keycmp(k, w->start, w->slen) == 0)
        rc = mdb_cursor_get(c, k, v, MDB_NEXT);
    return rc;
}

static bool in_prefix(const MDB_val *k, const store_walk *w)
{
    return w->plen == 0 || (k->mv_size >= w->plen && memcmp(k->mv_data, w->prefix, w->plen) == 0);
}

int store_walk_run(store_txn *t, MDB_dbi dbi, const store_walk *w, store_kv_scan_fn fn, void *ud)
{
    if (t->pg)
        return pg_walk_run(t, dbi, w, fn, ud);
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, dbi, &c);
    if (rc)
        return store_mdb_err(t, rc, "opening a cursor");
    MDB_val k, v;
    rc = walk_first(c, w, &k, &v);
    while (rc == 0 && in_prefix(&k, w)) {
        int r = fn(k.mv_data, k.mv_size, v.mv_data, v.mv_size, ud);
        if (r != 0) {
            mdb_cursor_close(c);
            return r > 0 ? 0 : r;
        }
        rc = mdb_cursor_get(c, &k, &v, w->reverse ? MDB_PREV : MDB_NEXT);
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : store_mdb_err(t, rc, "scanning");
}

int store_kv_scan(store_txn *txn, const char *db, const void *prefix, size_t plen,
                  store_kv_scan_fn fn, void *ud)
{
    MDB_dbi dbi;
    int rc = store_dbi(txn, db, &dbi);
    if (rc)
        return rc == OPSC_ENOENT ? 0 : rc; /* absent from an older store: empty */
    if (!fn || (plen && !prefix))
        return OPSC_EINVAL;
    store_walk w = {.start = plen ? prefix : NULL, .slen = plen, .prefix = prefix, .plen = plen};
    return store_walk_run(txn, dbi, &w, fn, ud);
}
