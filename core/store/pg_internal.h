/* pg_internal.h - what the PostgreSQL backend's files share: the pool, a transaction, statements.
 */
#ifndef OPSC_PG_INTERNAL_H
#define OPSC_PG_INTERNAL_H

#include <libpq-fe.h>

#include "store_internal.h"

typedef struct pg_conn {
    PGconn *c;
    struct pg_conn *next; /* in the idle list */
    uint64_t since;       /* clock_mono_ms when taken from the pool */
} pg_conn;

/* One store transaction on one connection. The first backend error is
 * kept in `failed`: PostgreSQL refuses every later statement of an aborted
 * transaction, and the commit must not pretend it worked. */
struct pg_txn {
    pg_conn *conn;
    int failed;      /* 0, or the first error's OPSC code */
    bool retry;      /* that error was a serialization failure or a deadlock */
    PGresult **keep; /* results whose bytes store_kv_get handed out: freed at the end */
    size_t nkeep, cap;
};

/* Run prepared statement `name` with binary results. NULL when it failed
 * (t->pg->failed says why, already logged); else the caller PQclear()s. */
PGresult *pg_run(store_txn *t, const char *name, int n, const char *const *vals, const int *lens,
                 const int *fmts);
/* Prepared statement `name` with one text parameter, its result unread: 0
 * or the transaction's error (logged). */
int pg_run1(store_txn *t, const char *name, const char *param);
/* Keep `r` until the transaction ends (store_kv_get's pointers into it). */
int pg_keep(store_txn *t, PGresult *r);
/* The named database behind a fake dbi (i + 1). */
const char *pg_db_name(MDB_dbi dbi);

/* The connection of membership and lease (pg_cluster.c), made or remade on
 * demand; NULL with err set when the database cannot be reached. One
 * caller at a time (the daemon's one beat in flight). */
PGconn *pg_beat_conn(store *s, char *err, size_t errlen);
/* A statement on the beat connection failed: one that broke after waiting (a database that
 * does not answer) makes the store fail at once for a while rather than wait again. */
void pg_beat_failed(store *s);

/* The connection that LISTENs for the run queue (pg_queue.c), made on
 * demand, closed first when `reset` (its LISTEN was lost). Loop only. */
PGconn *pg_listen_conn(store *s, bool reset, char *err, size_t errlen);
/* That connection as it is (NULL: none yet). */
PGconn *pg_listening(store *s);

/* The run queue (docs/cluster.md 2.4), prepared on every pooled connection
 * (rq_claim runs on the beat's connection, store_runq_claim).
 * rq_add: $1 run, $2 job, $3 its target ids, $4 exclusive (the job does not
 * allow concurrent runs on a target), $5 its route ({label: value}), $6
 * idempotent (every step may run again); the notification is delivered at
 * commit. rq_claim: $1 node, $2 how many at most, $3 lease ms, $4 the node's
 * labels: the oldest queued runs whose route the labels contain and none of
 * whose targets an exclusive claimed run holds (nor, for an exclusive run,
 * any claimed run); each claim counts an attempt. rq_del: the run ended (its
 * targets and the node's room are free: wake the others). rq_reap: the
 * claims whose lease lapsed, taken from their node. rq_requeue: $1 run, $2
 * attempts at most: an idempotent run taken from its node queued again
 * while it has attempts left; its attempts so far, no row otherwise. */
#define PG_RQ_ADD_SQL                                                                              \
    "WITH i AS (INSERT INTO opsc_runq (run_id, job_id, targets, exclusive, state, route, "         \
    "idempotent) VALUES ($1, $2, $3, $4, 'queued', $5, $6) RETURNING 1) "                          \
    "SELECT pg_notify('opsc_runq', '') FROM i"
#define PG_RQ_CLAIM_SQL                                                                            \
    "WITH c AS (SELECT q.run_id FROM opsc_runq q WHERE q.state = 'queued' AND NOT EXISTS "        \
    "(SELECT 1 FROM opsc_runq o WHERE o.state = 'claimed' AND o.targets && q.targets AND "        \
    "(o.exclusive OR q.exclusive)) AND $4::jsonb @> q.route "                                      \
    "ORDER BY q.run_id LIMIT $2::int FOR UPDATE SKIP LOCKED) "                                      \
    "UPDATE opsc_runq q SET state = 'claimed', node_id = $1, attempts = q.attempts + 1, "          \
    "lease_until = now() + $3::bigint * interval '1 millisecond' FROM c WHERE q.run_id = c.run_id "       \
    "RETURNING q.run_id"
#define PG_RQ_DEL_SQL                                                                              \
    "WITH d AS (DELETE FROM opsc_runq WHERE run_id = $1 RETURNING 1) "                            \
    "SELECT pg_notify('opsc_runq', '') FROM d"
#define PG_RQ_REAP_SQL                                                                             \
    "UPDATE opsc_runq SET state = 'lapsed' WHERE state = 'claimed' AND lease_until < now() "      \
    "RETURNING run_id, node_id, to_char(lease_until AT TIME ZONE 'UTC', "                         \
    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
/* rq_unrouted: $1 ms: queued runs whose route no node heartbeating within it carries. */
#define PG_RQ_UNROUTED_SQL                                                                         \
    "SELECT q.run_id, q.route::text FROM opsc_runq q WHERE q.state = 'queued' AND "               \
    "q.route <> '{}' AND NOT EXISTS (SELECT 1 FROM opsc_nodes n WHERE n.labels @> q.route AND "   \
    "n.last_heartbeat > now() - $1::bigint * interval '1 millisecond') ORDER BY q.run_id LIMIT 100"
#define PG_RQ_REQUEUE_SQL                                                                          \
    "WITH u AS (UPDATE opsc_runq SET state = 'queued', node_id = NULL, lease_until = NULL "        \
    "WHERE run_id = $1 AND state <> 'queued' AND idempotent AND attempts < $2 RETURNING attempts) "  \
    "SELECT attempts::text, pg_notify('opsc_runq', '') FROM u"

/* Exactly-once fires (docs/cluster.md 2.3), prepared on every pooled
 * connection: $1 node, $2 epoch, $3 schedule, $4 planned ms, $5 run id.
 * One row: whether this node still holds the lease at that epoch (the row
 * is locked FOR SHARE until the transaction ends, so a takeover waits for
 * it) and whether the fire was new. */
#define PG_FIRE_SQL                                                                                \
    "WITH lease AS (SELECT 1 FROM opsc_lease WHERE name = 'leader' AND holder = $1 AND "           \
    "epoch = $2 AND expires_at > now() FOR SHARE), "                                               \
    "ins AS (INSERT INTO opsc_fires (schedule_id, planned_ms, run_id, node_id, epoch) "            \
    "SELECT $3, $4, $5, $1, $2 FROM lease ON CONFLICT DO NOTHING RETURNING 1) "                    \
    "SELECT (SELECT count(*) FROM lease)::int4, (SELECT count(*) FROM ins)::int4"

#endif
