/* txn.c - transactions: durable writes with map growth, snapshots, LMDB error translation. */
#include <string.h>

#include <opsc/errors.h>

#include "log.h"
#include "store_internal.h"

int store_mdb_err(store_txn *t, int rc, const char *what)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_NOTFOUND:
        return OPSC_ENOENT;
    case MDB_KEYEXIST:
        return OPSC_EEXIST;
    case MDB_MAP_FULL:
        if (t)
            t->map_full = true;
        return OPSC_ENOSPC;
    case MDB_TXN_FULL:
        log_error("store", "%s: %s", what, mdb_strerror(rc));
        return OPSC_E2BIG;
    case MDB_BAD_VALSIZE:
        log_error("store", "%s: %s", what, mdb_strerror(rc));
        return OPSC_EINVAL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
        log_error("store", "%s: %s", what, mdb_strerror(rc));
        return OPSC_ECORRUPT;
    default:
        /* LMDB passes system errors through as positive errno values. A full
         * disk is logged once, by space.c, not on every failed commit. */
        if (!store_space_error(-rc))
            log_error("store", "%s: %s", what, mdb_strerror(rc));
        return rc > 0 ? -rc : OPSC_EIO;
    }
}

static int lookup(store_txn *t, const char *name, MDB_dbi *dbi)
{
    if (!t || !name)
        return OPSC_EINVAL;
    for (size_t i = 0; i < store_db_count; i++) {
        if (strcmp(store_dbs[i].name, name) != 0)
            continue;
        *dbi = t->s->dbi[i];
        return *dbi ? 0 : OPSC_ENOENT;
    }
    log_error("store", "unknown database \"%s\" (not in schema.c)", name);
    return OPSC_EINVAL;
}

int store_dbi(store_txn *t, const char *name, MDB_dbi *dbi)
{
    return lookup(t, name, dbi);
}

int store_dbi_w(store_txn *t, const char *name, MDB_dbi *dbi)
{
    if (t && !t->write) {
        log_error("store", "write to \"%s\" inside a read transaction", name ? name : "?");
        return OPSC_EPERM;
    }
    return lookup(t, name, dbi);
}

int store_adopt_map_size(store *s)
{
    pthread_rwlock_wrlock(&s->resize_lock);
    int rc = mdb_env_set_mapsize(s->env, 0);
    pthread_rwlock_unlock(&s->resize_lock);
    return rc;
}

int store_txn_begin(store *s, bool write, MDB_txn **txn)
{
    for (int tries = 0;; tries++) {
        if (!write)
            pthread_rwlock_rdlock(&s->resize_lock);
        int rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, txn);
        if (rc == 0)
            return 0;
        if (!write)
            pthread_rwlock_unlock(&s->resize_lock);
        if (rc != MDB_MAP_RESIZED || tries == 3)
            return rc;
        rc = store_adopt_map_size(s);
        if (rc)
            return rc;
    }
}

void store_txn_end_read(store *s, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->resize_lock);
}

/* Double the map, up to max_map_size. The write transaction has been
 * aborted; read transactions on other threads finish before we resize. */
static int grow_map(store *s)
{
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    int64_t cur = (int64_t)info.me_mapsize;
    if (cur >= s->max_map_size) {
        log_error("store", "map full at %lld MiB and max_map_size reached: store is out of space",
                  (long long)(cur >> 20));
        return OPSC_ENOSPC;
    }
    int64_t next = cur * 2 < s->max_map_size ? cur * 2 : s->max_map_size;
    pthread_rwlock_wrlock(&s->resize_lock);
    int rc = mdb_env_set_mapsize(s->env, (size_t)next);
    pthread_rwlock_unlock(&s->resize_lock);
    if (rc)
        return store_mdb_err(NULL, rc, "growing the map");
    log_info("store", "map full: grew the map from %lld to %lld MiB", (long long)(cur >> 20),
             (long long)(next >> 20));
    return 0;
}

/* One attempt: 1 means "map full, grow and retry". */
static int write_once(store *s, store_txn_fn fn, void *ud)
{
    store_txn t = {.s = s, .write = true};
    int rc = store_txn_begin(s, true, &t.txn);
    if (rc)
        return store_mdb_err(NULL, rc, "beginning a write transaction");
    rc = fn(&t, ud);
    if (t.map_full) {
        mdb_txn_abort(t.txn);
        return 1;
    }
    if (rc != 0) {
        mdb_txn_abort(t.txn);
        return rc > 0 ? OPSC_EINVAL : rc;
    }
    rc = mdb_txn_commit(t.txn); /* frees the transaction whatever happens */
    if (rc == MDB_MAP_FULL)
        return 1;
    return store_mdb_err(NULL, rc, "committing");
}

static int write_growing(store *s, store_txn_fn fn, void *ud)
{
    for (;;) {
        int rc = write_once(s, fn, ud);
        if (rc != 1)
            return rc;
        rc = grow_map(s);
        if (rc)
            return rc;
    }
}

static int write_with(store *s, store_txn_fn fn, void *ud, bool essential, bool snapshot)
{
    if (!s || !fn)
        return OPSC_EINVAL;
    if (s->pg)
        return store_pg_write(s, fn, ud, snapshot);
    if (s->read_only)
        return OPSC_EPERM;
    int rc = store_space_gate(s, essential);
    if (rc < 0)
        return rc; /* full: refused without touching the disk */
    rc = write_growing(s, fn, ud);
    if (!store_space_error(rc))
        return rc;
    bool was_full = s->full;
    rc = store_space_failed(s, rc);
    if (essential && !was_full) /* the reserve is free now: this is what it is for */
        rc = store_space_failed(s, write_growing(s, fn, ud));
    return rc;
}

int store_write(store *s, store_txn_fn fn, void *ud)
{
    return write_with(s, fn, ud, false, false);
}

int store_write_snapshot(store *s, store_txn_fn fn, void *ud)
{
    return write_with(s, fn, ud, false, true);
}

int store_write_essential(store *s, store_txn_fn fn, void *ud)
{
    return write_with(s, fn, ud, true, false);
}

int store_read(store *s, store_txn_fn fn, void *ud)
{
    if (!s || !fn)
        return OPSC_EINVAL;
    if (s->pg)
        return store_pg_read(s, fn, ud);
    store_txn t = {.s = s};
    int rc = store_txn_begin(s, false, &t.txn);
    if (rc)
        return store_mdb_err(NULL, rc, "beginning a read transaction");
    rc = fn(&t, ud);
    store_txn_end_read(s, t.txn);
    return rc;
}
