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

#endif
