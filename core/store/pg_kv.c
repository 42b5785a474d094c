/* pg_kv.c - the raw operations of the store on PostgreSQL: get, put, delete, the paged walk. */
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "pg_internal.h"

#define FIRST_PAGE 16   /* most scans stop early: a page of a list, one index prefix */
#define MAX_PAGE   1024 /* pages double up to this */

int pg_kv_get(store_txn *t, MDB_dbi dbi, const void *key, size_t klen, const void **val,
              size_t *vlen, bool lock)
{
    const char *vals[] = {pg_db_name(dbi), key};
    const int lens[] = {0, (int)klen}, fmts[] = {0, 1};
    PGresult *r = pg_run(t, lock ? "get_lock" : "get", 2, vals, lens, fmts);
    if (!r)
        return t->pg->failed;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return OPSC_ENOENT;
    }
    *val = PQgetvalue(r, 0, 0);
    *vlen = (size_t)PQgetlength(r, 0, 0);
    return pg_keep(t, r);
}

/* A statement whose answer is a count of rows: 0 rows is `none`. */
static int run_counted(store_txn *t, const char *stmt, int n, const char *const *vals,
                       const int *lens, const int *fmts, int none)
{
    PGresult *r = pg_run(t, stmt, n, vals, lens, fmts);
    if (!r)
        return t->pg->failed;
    int rc = strcmp(PQcmdTuples(r), "0") == 0 ? none : 0;
    PQclear(r);
    return rc;
}

int pg_kv_put(store_txn *t, MDB_dbi dbi, const void *key, size_t klen, const void *val, size_t vlen,
              bool only_new)
{
    const char *vals[] = {pg_db_name(dbi), key, vlen ? val : ""};
    const int lens[] = {0, (int)klen, (int)vlen}, fmts[] = {0, 1, 1};
    return run_counted(t, only_new ? "add" : "put", 3, vals, lens, fmts, OPSC_EEXIST);
}

int pg_kv_del(store_txn *t, MDB_dbi dbi, const void *key, size_t klen)
{
    const char *vals[] = {pg_db_name(dbi), key};
    const int lens[] = {0, (int)klen}, fmts[] = {0, 1};
    return run_counted(t, "del", 2, vals, lens, fmts, OPSC_ENOENT);
}

/* The walk's position between pages: the last key seen, excluded next time. */
typedef struct walk_pos {
    const char *key;
    size_t len;
    bool set, after;
} walk_pos;

static const char *page_stmt(const store_walk *w, const walk_pos *at)
{
    if (!at->set)
        return w->reverse ? "last" : "ge";
    if (w->reverse)
        return at->after ? "lt" : "le";
    return at->after ? "gt" : "ge";
}

static PGresult *page(store_txn *t, MDB_dbi dbi, const store_walk *w, const walk_pos *at, int n)
{
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", n);
    const char *stmt = page_stmt(w, at);
    if (!strcmp(stmt, "last")) {
        const char *vals[] = {pg_db_name(dbi), limit};
        const int fmts[] = {0, 0};
        return pg_run(t, stmt, 2, vals, NULL, fmts);
    }
    const char *vals[] = {pg_db_name(dbi), at->set ? at->key : "", limit};
    const int lens[] = {0, at->set ? (int)at->len : 0, 0}, fmts[] = {0, 1, 0};
    return pg_run(t, stmt, 3, vals, lens, fmts);
}

static bool in_prefix(const char *k, size_t klen, const store_walk *w)
{
    return w->plen == 0 || (klen >= w->plen && memcmp(k, w->prefix, w->plen) == 0);
}

/* One page through `fn`: 1 when the walk is over (stopped, or past the prefix). */
static int feed(PGresult *r, const store_walk *w, store_kv_scan_fn fn, void *ud)
{
    for (int i = 0; i < PQntuples(r); i++) {
        const char *k = PQgetvalue(r, i, 0);
        size_t klen = (size_t)PQgetlength(r, i, 0);
        if (!in_prefix(k, klen, w))
            return 1;
        int rc = fn(k, klen, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), ud);
        if (rc != 0)
            return rc > 0 ? 1 : rc;
    }
    return 0;
}

/* Pages are kept, not cleared, until the transaction ends: callers hold
 * pointers into values after their callback (run_logs_read.c's chunks), as
 * LMDB's values stay valid in the map for the whole transaction. */
int pg_walk_run(store_txn *t, MDB_dbi dbi, const store_walk *w, store_kv_scan_fn fn, void *ud)
{
    walk_pos at = {w->start, w->slen, w->start != NULL, w->after};
    int rc = 0;
    for (int n = FIRST_PAGE; rc == 0; n = n < MAX_PAGE ? n * 2 : MAX_PAGE) {
        PGresult *r = page(t, dbi, w, &at, n);
        if (!r)
            return t->pg->failed;
        rc = feed(r, w, fn, ud);
        bool more = rc == 0 && PQntuples(r) == n;
        if (more) {
            /* the position points into this page, which stays alive */
            int last = n - 1;
            at = (walk_pos){PQgetvalue(r, last, 0), (size_t)PQgetlength(r, last, 0), true, true};
        }
        int kept = pg_keep(t, r);
        if (kept)
            return kept;
        if (!more)
            break;
    }
    return rc > 0 ? 0 : rc;
}
