/* pg_internal.h - what the PostgreSQL backend's files share: the pool, a transaction, statements.
 */
#ifndef OPSC_PG_INTERNAL_H
#define OPSC_PG_INTERNAL_H

#include <libpq-fe.h>

#include "store_internal.h"

typedef struct pg_conn {
    PGconn *c;
    struct pg_conn *next; /* in the idle list */
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
/* Keep `r` until the transaction ends (store_kv_get's pointers into it). */
int pg_keep(store_txn *t, PGresult *r);
/* The named database behind a fake dbi (i + 1). */
const char *pg_db_name(MDB_dbi dbi);

/* The connection of membership and lease (pg_cluster.c), made or remade on
 * demand; NULL with err set when the database cannot be reached. One
 * caller at a time (the daemon's one beat in flight). */
PGconn *pg_beat_conn(store *s, char *err, size_t errlen);

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
