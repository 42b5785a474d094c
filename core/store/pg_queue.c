/* pg_queue.c - the distributed run queue on PostgreSQL: a created run is a row every node's
 * executor may claim, under a lease the claimer renews (docs/cluster.md 2.4).
 *
 * The rows live in `opsc_runq` beside the records; the run's record and its
 * queue row change in the same transaction. Idle nodes are woken by
 * `NOTIFY opsc_runq`, received on a connection of its own whose socket the
 * executor watches on the loop; polling is the fallback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "log.h"
#include "pg_internal.h"

static json_t *text_at(PGresult *r, int row, int col)
{
    return json_stringn(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

/* An object as jsonb text; NULL is {}. The caller frees. */
static char *jsonb_text(const json_t *o)
{
    return o ? json_dumps(o, JSON_COMPACT) : strdup("{}");
}

int store_runq_add(store_txn *txn, const char *run_id, const char *job_id,
                   const json_t *target_ids, bool exclusive, bool idempotent, const json_t *route)
{
    if (!txn || !txn->pg)
        return OPSC_ENOTSUP;
    /* an array literal; ids are UUIDs, quoted all the same */
    size_t cap = 3 + json_array_size(target_ids) * 48, len = 1;
    char *arr = malloc(cap);
    if (!arr)
        return OPSC_ENOMEM;
    arr[0] = '{';
    size_t i;
    json_t *id;
    json_array_foreach(target_ids, i, id)
    {
        const char *s = json_string_value(id);
        if (!s || strlen(s) > 40 || strpbrk(s, "\"\\")) {
            free(arr);
            return OPSC_EINVAL;
        }
        len += (size_t)snprintf(arr + len, cap - len, "%s\"%s\"", i ? "," : "", s);
    }
    snprintf(arr + len, cap - len, "}");
    char *rt = jsonb_text(route);
    const char *vals[] = {run_id, job_id, arr, exclusive ? "t" : "f", rt, idempotent ? "t" : "f"};
    PGresult *r = rt ? pg_run(txn, "rq_add", 6, vals, NULL, NULL) : NULL;
    int rc = rt ? txn->pg->failed : OPSC_ENOMEM;
    free(arr);
    free(rt);
    if (!r)
        return rc;
    PQclear(r);
    return 0;
}

/* A statement on the beat's connection (loop only, one at a time); the
 * caller PQclear()s. NULL (logged) when it failed. */
static PGresult *own_exec(PGconn *c, const char *sql, int n, const char *const *vals,
                          ExecStatusType want)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) == want)
        return r;
    log_warn("exec", "the run queue: %s", PQresultErrorMessage(r));
    PQclear(r);
    return NULL;
}

static int claim_in_turn(PGconn *c, const char *const *vals, json_t **ids);

/* READ COMMITTED, not the store's SERIALIZABLE: SKIP LOCKED is meant for
 * it, and a serializable claim reading the whole queue would conflict with
 * every run another node creates meanwhile. The claims of all nodes take
 * one advisory lock in turn, so each sees the ones committed before it
 * (the exclusivity of targets holds) and none waits on another's rows. */
int store_runq_claim(store *s, const char *node_id, const json_t *labels, int max,
                     int64_t lease_ms, json_t **ids)
{
    if (!s || !s->pg)
        return OPSC_ENOTSUP;
    char err[512], n[16], lease[24];
    PGconn *c = pg_beat_conn(s, err, sizeof(err));
    if (!c)
        return OPSC_ECONNREFUSED;
    snprintf(n, sizeof(n), "%d", max);
    snprintf(lease, sizeof(lease), "%lld", (long long)lease_ms);
    char *lb = jsonb_text(labels);
    if (!lb)
        return OPSC_ENOMEM;
    const char *vals[] = {node_id, n, lease, lb};
    int rc = claim_in_turn(c, vals, ids);
    free(lb);
    if (rc)
        pg_beat_failed(s);
    return rc;
}

/* The claim's transaction, under the advisory lock every node's claim takes. */
static int claim_in_turn(PGconn *c, const char *const *vals, json_t **ids)
{
    PGresult *r = own_exec(c, "BEGIN", 0, NULL, PGRES_COMMAND_OK);
    PQclear(r);
    if (!r)
        return OPSC_EIO;
    r = own_exec(c, "SELECT pg_advisory_xact_lock(7306086508437811570)", 0, NULL,
                 PGRES_TUPLES_OK);
    PQclear(r);
    PGresult *q = r ? own_exec(c, PG_RQ_CLAIM_SQL, 4, vals, PGRES_TUPLES_OK) : NULL;
    r = own_exec(c, q ? "COMMIT" : "ROLLBACK", 0, NULL, PGRES_COMMAND_OK);
    PQclear(r);
    if (!q || !r) {
        PQclear(q);
        return OPSC_EIO;
    }
    *ids = json_array();
    for (int i = 0; i < PQntuples(q); i++)
        json_array_append_new(*ids, json_string(PQgetvalue(q, i, 0)));
    PQclear(q);
    return 0;
}

int store_runq_release(store *s, const char *node_id, const json_t *ids)
{
    if (!s || !s->pg)
        return OPSC_ENOTSUP;
    char err[512];
    PGconn *c = pg_beat_conn(s, err, sizeof(err));
    if (!c)
        return OPSC_ECONNREFUSED;
    int rc = 0;
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        const char *vals[] = {json_string_value(id), node_id};
        PGresult *r = own_exec(c,
                               "UPDATE opsc_runq SET state = 'queued', node_id = NULL, "
                               "lease_until = NULL, attempts = attempts - 1 WHERE run_id = $1 "
                               "AND node_id = $2 AND state = 'claimed'",
                               2, vals, PGRES_COMMAND_OK);
        if (!r)
            rc = OPSC_EIO;
        PQclear(r);
    }
    if (rc)
        pg_beat_failed(s);
    return rc;
}

int store_runq_done(store_txn *txn, const char *run_id)
{
    return txn && txn->pg ? pg_run1(txn, "rq_del", run_id) : OPSC_ENOTSUP;
}

int store_runq_reap(store_txn *txn, json_t **lapsed)
{
    if (!txn || !txn->pg)
        return OPSC_ENOTSUP;
    PGresult *r = pg_run(txn, "rq_reap", 0, NULL, NULL, NULL);
    if (!r)
        return txn->pg->failed;
    *lapsed = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(*lapsed, json_pack("[o, o, o]", text_at(r, i, 0), text_at(r, i, 1),
                                                 text_at(r, i, 2)));
    PQclear(r);
    return 0;
}

int store_runq_unrouted(store_txn *txn, int64_t alive_ms, json_t **rows)
{
    if (!txn || !txn->pg)
        return OPSC_ENOTSUP;
    char ms[24];
    snprintf(ms, sizeof(ms), "%lld", (long long)alive_ms);
    const char *vals[] = {ms};
    PGresult *r = pg_run(txn, "rq_unrouted", 1, vals, NULL, NULL);
    if (!r)
        return txn->pg->failed;
    *rows = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(*rows, json_pack("[o, o]", text_at(r, i, 0),
                                               json_loads(PQgetvalue(r, i, 1), 0, NULL)));
    PQclear(r);
    return 0;
}

int store_runq_requeue(store_txn *txn, const char *run_id, int max_attempts)
{
    if (!txn || !txn->pg)
        return OPSC_ENOTSUP;
    char max[16];
    snprintf(max, sizeof(max), "%d", max_attempts);
    const char *vals[] = {run_id, max};
    PGresult *r = pg_run(txn, "rq_requeue", 2, vals, NULL, NULL);
    if (!r)
        return txn->pg->failed;
    int n = PQntuples(r) ? atoi(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    return n;
}

/* On the beat's connection, with the heartbeat: the node is alive, so are its claims. */
int store_runq_renew(store *s, const char *node_id, int64_t lease_ms)
{
    if (!s || !s->pg)
        return OPSC_ENOTSUP;
    static const char sql[] = "UPDATE opsc_runq SET lease_until = now() + $2::bigint * "
                              "interval '1 millisecond' WHERE node_id = $1 AND state = 'claimed'";
    char err[512], lease[24];
    PGconn *c = pg_beat_conn(s, err, sizeof(err));
    if (!c)
        return OPSC_ECONNREFUSED;
    snprintf(lease, sizeof(lease), "%lld", (long long)lease_ms);
    const char *vals[] = {node_id, lease};
    PGresult *r = PQexecParams(c, sql, 2, NULL, vals, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : OPSC_EIO;
    if (rc) {
        log_warn("exec", "renewing the leases of this node's runs failed: %s",
                 PQresultErrorMessage(r));
        pg_beat_failed(s);
    }
    PQclear(r);
    return rc;
}

int store_runq_listen(store *s, bool reset)
{
    if (!s || !s->pg)
        return OPSC_ENOTSUP;
    char err[512];
    PGconn *c = pg_listen_conn(s, reset, err, sizeof(err));
    if (!c) {
        log_warn("exec", "listening for queued runs: %s (polling meanwhile)", err);
        return OPSC_ECONNREFUSED;
    }
    PGresult *r = PQexec(c, "LISTEN opsc_runq; LISTEN opsc_events");
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : OPSC_EIO;
    PQclear(r);
    if (rc == 0 && PQsetnonblocking(c, 1) < 0)
        rc = OPSC_EIO;
    return rc < 0 ? rc : PQsocket(c);
}

int store_runq_notified(store *s, store_notify_fn fn, void *ud)
{
    PGconn *c = s && s->pg ? pg_listening(s) : NULL;
    if (!c)
        return OPSC_ENOTSUP;
    if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK)
        return OPSC_EIO;
    int n = 0;
    PGnotify *nf;
    while ((nf = PQnotifies(c))) {
        n++;
        fn(ud, nf->relname, nf->extra);
        PQfreemem(nf);
    }
    return n;
}

int store_notify(store_txn *txn, const char *channel, const char *payload)
{
    if (!txn || !txn->pg)
        return OPSC_ENOTSUP;
    const char *vals[] = {channel, payload};
    PGresult *r = pg_run(txn, "notify", 2, vals, NULL, NULL);
    if (!r)
        return txn->pg->failed;
    PQclear(r);
    return 0;
}

int store_announce(store_txn *txn, const char *type, const char *node_id)
{
    json_t *d = json_pack("{s:s, s:s}", "bus", type, "by", node_id);
    char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
    int rc = text ? store_notify(txn, "opsc_events", text) : OPSC_ENOMEM;
    free(text);
    json_decref(d);
    return rc;
}
