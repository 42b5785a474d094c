/* store.h - the embedded LMDB store: JSON records, indexes, migrations, backup.
 *
 * One LMDB environment in the data directory (data.mdb, lock.mdb, plus our
 * own `lock` file), one named database per entity ("users", "targets",
 * "runs"...; the list is the table in schema.c). Records are Jansson objects
 * carrying `id` (UUIDv7 text, the key; ids are 1-39 bytes), `created_at`,
 * `updated_at` (RFC 3339 UTC) and `version` (1 on create, +1 on every
 * update) for optimistic concurrency, stored as compact JSON text.
 *
 * Writes go through store_write(): the caller's function runs inside one
 * write transaction; if LMDB reports MDB_MAP_FULL the store aborts, grows
 * the map and runs the function again, so the function must be idempotent
 * apart from what it does to the transaction. Every commit is durable
 * (fsync; no MDB_NOSYNC). Secondary indexes are plain key -> id databases
 * updated in the same transaction as their record.
 *
 * Thread: the store is used from the loop thread; store_read() may also be
 * called from worker threads (the environment is opened MDB_NOTLS). A map
 * resize waits for running reads, so never call store_read() or
 * store_write() from inside a store_read() function, nor store_write()
 * from inside a store_write() function. A store_txn is valid only inside
 * the function it was given to, on that thread.
 * Errors: 0 or negative OPSC_E* codes; LMDB codes are translated at this
 * boundary (MDB_NOTFOUND -> OPSC_ENOENT, MDB_KEYEXIST -> OPSC_EEXIST,
 * MDB_MAP_FULL handled inside (OPSC_ENOSPC once max_map_size is reached),
 * MDB_CORRUPTED / MDB_PAGE_NOTFOUND / MDB_INVALID -> OPSC_ECORRUPT,
 * MDB_TXN_FULL -> OPSC_E2BIG, MDB_BAD_VALSIZE -> OPSC_EINVAL, system errors
 * -> -errno, others -> OPSC_EIO), the LMDB text logged under "store".
 * Everywhere: an unknown database name is OPSC_EINVAL; a write inside a
 * read transaction is OPSC_EPERM.
 */
#ifndef OPSC_STORE_H
#define OPSC_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;
typedef struct store_txn store_txn;

typedef struct store_opts {
    int64_t map_size;     /* initial map size in bytes; 0: 64 MiB */
    int64_t max_map_size; /* growth stops here (OPSC_ENOSPC); 0: 64 GiB */
    bool read_only;       /* backup, inspection: no lock file, no migrations */
    /* Cluster mode (docs/cluster.md): a libpq URL or connection string puts
     * the records in that PostgreSQL database instead of LMDB; `dir` keeps
     * the lock file. NULL or "": LMDB. Borrowed until store_open returns;
     * a secret (it may hold a password): never logged. */
    const char *postgresql_url;
} store_opts;

/* Open (creating if needed, 0700) the store in `dir`: takes an exclusive
 * lock on `dir/lock` (a second process gets OPSC_EBUSY naming the holder's
 * pid), clears stale readers, creates the named databases and runs pending
 * migrations in one write transaction. Data files are made 0600. `opts`
 * may be NULL (defaults). `err` (may be NULL) receives a human message.
 * Errors: OPSC_EBUSY (locked), OPSC_EACCES (permissions on `dir`),
 * OPSC_ENOTSUP (the store's schema is newer than this binary), OPSC_ECORRUPT
 * (not an LMDB store), OPSC_EINVAL (arguments), a failing migration's code
 * (the store is then unchanged).
 * Read-only: `dir` must hold a store (else OPSC_ENOENT); no lock, no
 * migrations, the map size is the writer's (adopted again when it grows);
 * databases an older store lacks read as empty / OPSC_ENOENT; store_write()
 * is OPSC_EPERM. LMDB must not open one environment twice in a process:
 * within the daemon, use its handle (store_backup_from()). */
int store_open(store **out, const char *dir, const store_opts *opts, char *err, size_t errlen);
/* On PostgreSQL (opts->postgresql_url): the same records, keys, orders and
 * codes; a transaction is a database transaction on a pooled connection,
 * run synchronously on the calling thread within the connection's
 * timeouts (statement 5 s); writes are SERIALIZABLE (store_write_snapshot:
 * REPEATABLE READ) and `fn` runs again
 * after a serialization failure (OPSC_EBUSY after 10); a lost database is
 * OPSC_EIO (or OPSC_ETIMEDOUT) and the next transaction reconnects.
 * Read-only opens and store_backup_from() are OPSC_ENOTSUP (pg_dump);
 * store_full() is false; store_stats_get() reports the database's size. */
void store_close(store *s);

/* Run `fn` in a write transaction and commit durably. `fn` returns 0 to
 * commit or a negative code to abort (returned to the caller). `fn` may run
 * more than once (map growth). OPSC_EPERM on a read-only store. */
typedef int (*store_txn_fn)(store_txn *txn, void *ud);
int store_write(store *s, store_txn_fn fn, void *ud);
/* The same for the few writes that must work while the data directory is
 * full (logins, refresh, logout, revocations): they use the room the
 * store's reserve gave back. Every other write fails at once with
 * OPSC_ENOSPC while the store is full (space.c). */
int store_write_essential(store *s, store_txn_fn fn, void *ud);
/* A write whose function decides only on keys it also writes (records
 * created under fresh ids, a read-modify-write of one record) or reads
 * with store_kv_get_locked(): the executor's runs, the audit trail. On
 * LMDB this is store_write(). On PostgreSQL it runs at REPEATABLE READ
 * instead of SERIALIZABLE: two transactions writing one key still conflict
 * (`fn` runs again, as for store_write), but its reads take no predicate
 * locks, so a decision on a key it neither writes nor locks is not
 * protected against a concurrent writer of that key. Why it exists:
 * SERIALIZABLE locks what it reads by index page, and time-ordered ids put
 * every new and recent run on the same few pages, so run writes of
 * different nodes conflicted without sharing one key (docs/cluster.md 1.2). */
int store_write_snapshot(store *s, store_txn_fn fn, void *ud);
/* True from the first ENOSPC of the data directory's file system until
 * there is room again (checked at most once a second, on a write). */
bool store_full(const store *s);

/* Run `fn` in a read-only snapshot; its return value is returned. */
int store_read(store *s, store_txn_fn fn, void *ud);

/* Record operations (inside a transaction). `db` is a database name.
 *
 * store_get: *out is a new reference (caller json_decref()s it).
 * store_create: assigns `id` (unless the record has one), `created_at`,
 *   `updated_at`, `version` = 1 in `rec` (borrowed; modified in place).
 *   OPSC_EEXIST if the id exists.
 * store_update: replaces the record with id rec.id. `expect_version` 0 means
 *   unconditional; otherwise OPSC_ECONFLICT when the stored version differs
 *   (the `version` in `rec` itself is ignored). Keeps the stored
 *   `created_at`, sets `updated_at` and version+1 in `rec`. OPSC_ENOENT
 *   when missing, OPSC_EINVAL without a string id.
 * store_delete: OPSC_ENOENT when missing; `expect_version` as above.
 * A stored value that is not a JSON object reads as OPSC_ECORRUPT. */
int store_get(store_txn *txn, const char *db, const char *id, json_t **out);
int store_create(store_txn *txn, const char *db, json_t *rec);
int store_update(store_txn *txn, const char *db, json_t *rec, int64_t expect_version);
int store_delete(store_txn *txn, const char *db, const char *id, int64_t expect_version);

/* Raw key/value access for non-record data (log chunks, indexes, meta).
 * Keys are 1-511 bytes (else OPSC_EINVAL); values may be empty.
 * store_kv_get's *val points into the map: valid until the txn ends and
 * never written to. store_kv_get/del: OPSC_ENOENT when missing. */
int store_kv_get(store_txn *txn, const char *db, const void *key, size_t klen, const void **val,
                 size_t *vlen);
int store_kv_put(store_txn *txn, const char *db, const void *key, size_t klen, const void *val,
                 size_t vlen);
int store_kv_del(store_txn *txn, const char *db, const void *key, size_t klen);
/* store_kv_get, and the key stays as read until the transaction ends: a
 * concurrent transaction changing or deleting it waits for this one, and
 * this one fails (runs again) if one did since it began (PostgreSQL: FOR
 * SHARE; LMDB has one writer). For decisions in store_write_snapshot(). */
int store_kv_get_locked(store_txn *txn, const char *db, const void *key, size_t klen,
                        const void **val, size_t *vlen);

/* Secondary index: `index_db` maps a key (e.g. a unique name) to a record id.
 * store_index_put fails with OPSC_EEXIST if the key maps to another id (and
 * succeeds if it maps to this one). One-to-many indexes (runs_by_job) use
 * the key "<parent id>/<child id>", listed with store_kv_scan() over the
 * prefix "<parent id>/". store_index_get/del: OPSC_ENOENT when missing. */
int store_index_put(store_txn *txn, const char *index_db, const char *key, const char *id);
int store_index_get(store_txn *txn, const char *index_db, const char *key, char id[40]);
int store_index_del(store_txn *txn, const char *index_db, const char *key);

/* Scan records in key order (= creation order for UUIDv7 ids), starting
 * after `cursor` (NULL: from the start; the cursor is the last id seen),
 * descending when `reverse`. `fn` returns 0 to continue, 1 to stop, < 0 to
 * abort the scan with that error. `rec` is borrowed for the call. */
typedef int (*store_scan_fn)(const char *id, json_t *rec, void *ud);
int store_scan(store_txn *txn, const char *db, const char *cursor, bool reverse, store_scan_fn fn,
               void *ud);
/* Same over raw keys with a byte prefix (plen 0: all keys), ascending; key
 * and value valid for the call; `fn` returns as for store_scan. */
typedef int (*store_kv_scan_fn)(const void *key, size_t klen, const void *val, size_t vlen,
                                void *ud);
int store_kv_scan(store_txn *txn, const char *db, const void *prefix, size_t plen,
                  store_kv_scan_fn fn, void *ud);

/* Schema migrations: an ordered list (store_migrations[] in schema.c,
 * versions strictly increasing from 1); the store records the last applied
 * version in the `meta` database ("schema_version", plus a
 * "migration.NNNN" note per migration) and runs the rest at open. */
typedef struct store_migration {
    int version;
    const char *description;
    int (*apply)(store_txn *txn);
} store_migration;

/* Statistics for /metrics. */
typedef struct store_stats {
    int64_t map_size;   /* current map size */
    int64_t used_bytes; /* pages in use x page size */
    int64_t file_bytes; /* size of data.mdb */
    int schema_version;
} store_stats;
int store_stats_get(store *s, store_stats *st);

/* Consistent compacted copy (MDB_CP_COMPACT) of the store in `dir` to the
 * directory `dest` (created 0700, or an existing empty directory; else
 * OPSC_EEXIST), as dest/data.mdb 0600, fsynced, then verified by opening
 * it. Safe while a daemon is running on `dir` and writing, if called from
 * another process (it opens `dir` read-only, without the lock). On failure
 * nothing is left in `dest`. */
int store_backup(const char *dir, const char *dest, char *err, size_t errlen);
/* The same from the process that has the store open (e.g. the daemon). */
int store_backup_from(store *s, const char *dest, char *err, size_t errlen);

/* ---- cluster mode (PostgreSQL only; docs/cluster.md 2.1-2.3) ------------------------------
 * Every time here is the database's clock. On LMDB these are OPSC_ENOTSUP. */
typedef struct store_node {
    const char *id;      /* UUID, kept in <data_dir>/node_id */
    const char *address; /* "host:port" of its API */
    const char *version;
    int64_t started_ms; /* wall clock */
    const char *labels; /* JSON object text; NULL: {} */
} store_node;
typedef struct store_lease {
    bool leading;       /* this node holds the leader lease */
    int64_t epoch;      /* its epoch (bumped on every change of holder) */
    int64_t expires_ms; /* when it lapses unless renewed (database clock) */
} store_lease;
/* One heartbeat: register or refresh `me` (last_heartbeat = now()) and take
 * or renew the leader lease for `lease_ms` when it is free, lapsed or
 * already ours, in one statement on a connection of its own (never behind
 * the pool). Safe on any thread, one call at a time. OPSC_EIO,
 * OPSC_ECONNREFUSED, OPSC_ETIMEDOUT when the database is out of reach:
 * *out then says nothing about the lease. */
int store_cluster_beat(store *s, const store_node *me, int64_t lease_ms, store_lease *out);
/* A statement that waited its whole timeout makes the store silent: every
 * call then fails at once (OPSC_ECONNREFUSED) instead of waiting again.
 * After store_cluster_probes() (the loop says it will probe), silence lasts
 * until a probe connects; without, a call tries again after 5 s (and may
 * wait 5 s). store_cluster_probe() starts or advances a connection made
 * without ever waiting (libpq's non-blocking connect; call it every few tens
 * of ms while silent): 1 it connected (the store answers again), 0 in
 * progress, < 0 it failed (the next call starts another). Loop thread;
 * nothing, false or OPSC_ENOTSUP on LMDB. */
void store_cluster_probes(store *s);
bool store_cluster_silent(store *s);
int store_cluster_probe(store *s);
void store_cluster_probe_stop(store *s);
/* A graceful stop: this node's row and lease go, so another node leads at its next beat. */
int store_cluster_leave(store *s, const char *node_id);
/* {"nodes": [{"id","address","version","started_ms","heartbeat_ms","labels","alive"}],
 *  "leader": {"node_id","epoch","expires_ms","live"} or null}, a node alive when its
 * heartbeat is younger than `node_timeout_ms`. *out: new reference. */
int store_cluster_view(store *s, int64_t node_timeout_ms, json_t **out);
/* Inside a write transaction: record the fire of `schedule_id` planned at
 * `planned_ms` as run `run_id` by leader `node_id` at `epoch`, so that each
 * planned fire exists at most once across the cluster. OPSC_EEXIST: the
 * fire exists already; OPSC_ESTATE: that lease is no longer held (fenced);
 * either way the caller aborts its transaction. */
int store_cluster_fire(store_txn *txn, const char *node_id, int64_t epoch, const char *schedule_id,
                       int64_t planned_ms, const char *run_id);
/* Inside a write transaction: count a change of `name`, something every
 * node keeps in memory ("notify_rules", "discovery_profiles"; "schedules",
 * which only the leader reloads). Every node
 * compares the counts on its heartbeat (store_cluster_versions) and
 * reloads what another node changed, so a lost NOTIFY costs a few beats,
 * and a crash between a write and its announcement nothing. 0 on LMDB
 * (one daemon: nothing to tell). */
int store_version_bump(store_txn *txn, const char *name);
/* {name: count} of every name ever bumped. Same connection and rule as
 * store_cluster_beat. *out: new reference. */
int store_cluster_versions(store *s, json_t **out);

/* ---- the run queue (PostgreSQL only; docs/cluster.md 2.4) ---------------------------------- */
/* In the transaction that creates run `run_id` of `job_id` on `target_ids`
 * (array of id strings): a queued row any node may claim, and a
 * notification to the listening nodes at commit. `exclusive`: the job does
 * not allow concurrent runs on a target, cluster-wide. `idempotent`: every
 * step of it may run again, so a reaper may queue it again (store_runq_requeue).
 * `route` ({key: value}; NULL: none): only a node whose labels have each is
 * to claim it. */
int store_runq_add(store_txn *txn, const char *run_id, const char *job_id,
                   const json_t *target_ids, bool exclusive, bool idempotent, const json_t *route);
/* Claim up to `max` queued runs (oldest first, FOR UPDATE SKIP LOCKED: two
 * nodes never claim one run) for `node_id`, whose labels (an object; NULL:
 * none) contain each run's route, leased for `lease_ms`, in a transaction
 * of its own on the heartbeat's connection (loop only). *ids: new array of
 * run ids (maybe empty). */
int store_runq_claim(store *s, const char *node_id, const json_t *labels, int max,
                     int64_t lease_ms, json_t **ids);
/* Give back claims of `node_id` it could not take up (array of run ids). */
int store_runq_release(store *s, const char *node_id, const json_t *ids);
/* The run ended (or was interrupted): its row goes, the others are woken. */
int store_runq_done(store_txn *txn, const char *run_id);
/* The leader's reaper: claims whose lease lapsed. *lapsed: new array of
 * [run id, node id, lease end (RFC 3339)]; the rows are marked so that the
 * node can never renew them. */
int store_runq_reap(store_txn *txn, json_t **lapsed);
/* The leader's look at the queue: queued runs whose route no node heartbeating within
 * `alive_ms` carries in its labels. *rows: new array of [run id, route object], 100 at most. */
int store_runq_unrouted(store_txn *txn, int64_t alive_ms, json_t **rows);
/* A reaper took the run from its node: queued again (and the nodes woken at
 * commit) if it is idempotent and was claimed fewer than `max_attempts`
 * times. The attempts so far (> 0) when it was, 0 when it must end instead. */
int store_runq_requeue(store_txn *txn, const char *run_id, int max_attempts);
/* Renew every claim of `node_id` for `lease_ms`, on the heartbeat's connection. */
int store_runq_renew(store *s, const char *node_id, int64_t lease_ms);
/* (Re)open the listening connection (`reset`: drop the old one first) and
 * LISTEN; its socket (to watch for reading), or a negative code. Loop only. */
int store_runq_listen(store *s, bool reset);
/* After the socket was readable: `fn` for each notification received
 * ("opsc_runq": a run was queued or room freed; "opsc_events": a run's state
 * changed, the payload says how), and their number (0: none), or OPSC_EIO
 * when the connection broke (listen again). */
typedef void (*store_notify_fn)(void *ud, const char *channel, const char *payload);
int store_runq_notified(store *s, store_notify_fn fn, void *ud);
/* NOTIFY `channel` with `payload` (< 8000 bytes) when the transaction commits. */
int store_notify(store_txn *txn, const char *channel, const char *payload);
/* The same for the bus of every other node: at commit, they publish an event
 * of `type` (the executor's listener relays it; docs/cluster.md 2.6). */
int store_announce(store_txn *txn, const char *type, const char *node_id);
/* The leader's sweeping, on the heartbeat's connection: rows of nodes
 * silent for `dead_ms` go (their runs were reaped long before), and fires
 * recorded more than `fires_ms` ago (the scheduler resumes from each
 * schedule's state, not from them). */
int store_cluster_sweep(store *s, int64_t dead_ms, int64_t fires_ms);
/* True for a store on PostgreSQL. */
bool store_is_shared(const store *s);

#endif
