/* store_internal.h - what the store's files share: the handle, the schema table, LMDB glue. */
#ifndef OPSC_STORE_INTERNAL_H
#define OPSC_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>

#include <opsc/host.h> /* OPSC_PRINTF */

#include "store.h"

/* ---- schema (schema.c) --------------------------------------------------
 * Every named database, in one table: adding a database is adding a line.
 * Databases are created at open; a database missing from an older store
 * opened read-only reads as empty (OPSC_ENOENT). */
typedef struct store_db_def {
    const char *name;
    unsigned int flags; /* extra mdb_dbi_open flags (MDB_DUPSORT...) */
} store_db_def;

extern const store_db_def store_dbs[];
extern const size_t store_db_count;
extern const store_migration store_migrations[];
extern const size_t store_migration_count;

/* Keys of the `meta` database. */
#define STORE_META_SCHEMA_VERSION "schema_version"

/* ---- the handle --------------------------------------------------------- */
struct store {
    MDB_env *env;
    MDB_dbi *dbi; /* parallel to store_dbs; 0 = absent (read-only open of an older store) */
    char *dir;
    int lock_fd; /* -1 for read-only opens */
    bool read_only;
    int64_t max_map_size;
    int schema_version;
    /* Held shared by every read transaction, exclusively while the map is
     * resized: LMDB requires that no transaction of this process is active
     * during mdb_env_set_mapsize(), and readers may run on worker threads. */
    pthread_rwlock_t resize_lock;
    bool full;                 /* the file system said ENOSPC (space.c) */
    uint64_t space_checked_ms; /* when room was last looked for */
    struct pg_store *pg;       /* the PostgreSQL backend (pg_store.c); NULL: LMDB */
};

/* ---- space (space.c) ------------------------------------------------------ */
void store_space_init(store *s);
/* True for the codes of a file system without room. */
bool store_space_error(int rc);
/* After a failed write: a full file system marks the store full (once,
 * logged) and becomes OPSC_ENOSPC; other codes are returned as they are. */
int store_space_failed(store *s, int rc);
/* Before a write: OPSC_ENOSPC while full (essential writes go on). */
int store_space_gate(store *s, bool essential);

struct store_txn {
    store *s;
    MDB_txn *txn;
    bool write;
    bool map_full;     /* an operation hit MDB_MAP_FULL: store_write grows and retries */
    struct pg_txn *pg; /* the PostgreSQL transaction (pg_store.c); NULL: LMDB */
};

/* Format a human message into err (errlen bytes) and return rc. */
int store_fail(int rc, char *err, size_t errlen, const char *fmt, ...) OPSC_PRINTF(4, 5);

/* Open with an explicit migration list (tests inject theirs). */
int store_open_with(store **out, const char *dir, const store_opts *opts,
                    const store_migration *migs, size_t nmigs, char *err, size_t errlen);

/* Record ids and index values are shorter than this (store_index_get's buffer). */
#define STORE_ID_MAX 40

/* ---- cursor walk (kv.c) -------------------------------------------------
 * From `start` (inclusive, or exclusive when `after`; NULL: from the end
 * the direction starts at) while keys begin with `prefix` (forward walks
 * only; plen 0: no bound). `fn` returns 0 to go on, 1 to stop, < 0 to fail. */
typedef struct store_walk {
    const void *start;
    size_t slen;
    bool after;
    bool reverse;
    const void *prefix;
    size_t plen;
} store_walk;
int store_walk_run(store_txn *t, MDB_dbi dbi, const store_walk *w, store_kv_scan_fn fn, void *ud);
/* OPSC_EINVAL unless 0 < klen <= the LMDB key limit (511). */
int store_key_check(store_txn *t, const void *key, size_t klen);

/* ---- LMDB glue (txn.c) -------------------------------------------------- */
/* Translate an LMDB or errno code (see store.h) and log what deserves it;
 * `what` names the operation in the log line. MDB_MAP_FULL marks `t`. */
int store_mdb_err(store_txn *t, int rc, const char *what);
/* The handle of database `name` (OPSC_EINVAL unknown, OPSC_ENOENT absent). */
int store_dbi(store_txn *t, const char *name, MDB_dbi *dbi);
/* store_dbi for an operation that writes: OPSC_EPERM in a read transaction. */
int store_dbi_w(store_txn *t, const char *name, MDB_dbi *dbi);
/* Begin a transaction, adopting a map another process grew (MDB_MAP_RESIZED).
 * A read transaction holds resize_lock shared until store_txn_end_read(). */
int store_txn_begin(store *s, bool write, MDB_txn **txn);
void store_txn_end_read(store *s, MDB_txn *txn);
/* mdb_env_set_mapsize(env, 0) under the exclusive resize lock. */
int store_adopt_map_size(store *s);

/* ---- PostgreSQL (pg_store.c, pg_kv.c) ------------------------------------
 * The same named databases as rows of one table (docs/cluster.md 1.1); a
 * store opened on PostgreSQL has s->pg set and its dbi[i] = i + 1, so the
 * name lookups above work unchanged and pg_db_name() maps back. The raw
 * operations return OPSC codes (OPSC_ENOENT, OPSC_EIO...), already logged. */
/* Connects, creates the table and takes the migration lock, which
 * store_pg_migrated() releases once store.c has run the migrations; it
 * then holds the one-daemon lock (OPSC_EBUSY when another daemon has it). */
int store_pg_open(store *s, const char *url, char *err, size_t errlen);
int store_pg_migrated(store *s, char *err, size_t errlen);
void store_pg_close(store *s);
/* `snapshot`: REPEATABLE READ (store_write_snapshot), else SERIALIZABLE. */
int store_pg_write(store *s, store_txn_fn fn, void *ud, bool snapshot);
int store_pg_read(store *s, store_txn_fn fn, void *ud);
int store_pg_stats(store *s, store_stats *st);
/* `lock`: FOR SHARE (store_kv_get_locked). */
int pg_kv_get(store_txn *t, MDB_dbi dbi, const void *key, size_t klen, const void **val,
              size_t *vlen, bool lock);
/* `only_new`: OPSC_EEXIST when the key is there (MDB_NOOVERWRITE). */
int pg_kv_put(store_txn *t, MDB_dbi dbi, const void *key, size_t klen, const void *val, size_t vlen,
              bool only_new);
int pg_kv_del(store_txn *t, MDB_dbi dbi, const void *key, size_t klen);
int pg_walk_run(store_txn *t, MDB_dbi dbi, const store_walk *w, store_kv_scan_fn fn, void *ud);
/* Keys longer than LMDB's limit are refused on both backends, so a store
 * can move between them. */
#define STORE_PG_MAX_KEY 511

#endif
