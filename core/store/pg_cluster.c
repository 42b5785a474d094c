/* pg_cluster.c - cluster mode's coordination on PostgreSQL: membership rows and heartbeats,
 * the leader lease with its fencing epoch, exactly-once fires (docs/cluster.md 2.1-2.3).
 *
 * Every comparison of times happens in the database (now()), never on a
 * node's clock: nodes may disagree about the time, the database is one
 * clock. The heartbeat has a connection of its own so that neither a busy
 * pool nor a long API transaction can make a healthy leader miss its
 * renewal.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "log.h"
#include "pg_internal.h"

/* Register (or refresh) the node and, in the same statement, take the lease
 * when it is free or lapsed, or renew it when it is ours. The epoch moves
 * only when the holder changes: a renewal keeps it, so a write fenced with
 * it fails after any takeover, even one that came back to this node. */
static const char beat_sql[] =
    "WITH me AS (INSERT INTO opsc_nodes AS n (id, address, version, started_at, last_heartbeat, "
    "labels) VALUES ($1, $2, $3, to_timestamp($4::bigint / 1000.0), now(), $6::jsonb) "
    "ON CONFLICT (id) DO UPDATE SET address = EXCLUDED.address, version = EXCLUDED.version, "
    "started_at = EXCLUDED.started_at, last_heartbeat = now(), labels = EXCLUDED.labels "
    "RETURNING id) "
    "INSERT INTO opsc_lease AS l (name, holder, epoch, expires_at) "
    "SELECT 'leader', id, 1, now() + $5::bigint * interval '1 millisecond' FROM me "
    "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, "
    "epoch = CASE WHEN l.holder = EXCLUDED.holder THEN l.epoch ELSE l.epoch + 1 END, "
    "expires_at = EXCLUDED.expires_at "
    "WHERE l.holder = EXCLUDED.holder OR l.expires_at < now() "
    "RETURNING epoch, (extract(epoch FROM expires_at) * 1000)::bigint";

static const char leave_sql[] =
    "WITH l AS (DELETE FROM opsc_lease WHERE holder = $1) DELETE FROM opsc_nodes WHERE id = $1";

#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"
static const char nodes_sql[] = "SELECT id, address, version, labels::text, " MS(
    "started_at") ", " MS("last_heartbeat") ", "
                                            "last_heartbeat > now() - $1::bigint * interval '1 "
                                            "millisecond' FROM opsc_nodes "
                                            "ORDER BY started_at, id";
static const char leader_sql[] =
    "SELECT holder, epoch, " MS("expires_at") ", expires_at > now() "
                                              "FROM opsc_lease WHERE name = 'leader'";

bool store_is_shared(const store *s)
{
    return s && s->pg;
}

/* A failed statement on the beat connection: logged once per change of
 * message would be nicer; a failed beat is rare and worth a line. */
static int beat_failed(store *s, PGconn *c, PGresult *r, const char *what)
{
    if (s)
        pg_beat_failed(s);
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    log_warn("cluster", "%s failed: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    if (!st)
        return OPSC_EIO;
    return !strcmp(st, "57014") ? OPSC_ETIMEDOUT : OPSC_EIO;
}

int store_cluster_beat(store *s, const store_node *me, int64_t lease_ms, store_lease *out)
{
    if (!s || !s->pg)
        return OPSC_ENOTSUP;
    char err[512];
    PGconn *c = pg_beat_conn(s, err, sizeof(err));
    if (!c) {
        log_warn("cluster", "heartbeat: %s", err);
        return OPSC_ECONNREFUSED;
    }
    char started[24], lease[24];
    snprintf(started, sizeof(started), "%lld", (long long)me->started_ms);
    snprintf(lease, sizeof(lease), "%lld", (long long)lease_ms);
    const char *vals[] = {me->id, me->address, me->version, started, lease,
                          me->labels ? me->labels : "{}"};
    PGresult *r = PQexecParams(c, beat_sql, 6, NULL, vals, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = beat_failed(s, c, r, "heartbeat");
    } else {
        *out = (store_lease){.leading = PQntuples(r) == 1};
        if (out->leading) {
            out->epoch = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            out->expires_ms = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        }
    }
    PQclear(r);
    return rc;
}

/* One statement on the beat connection with one text parameter (or none:
 * NULL). NULL (logged) when it failed; else the caller PQclear()s. */
static PGresult *beat_exec(store *s, const char *sql, const char *param, ExecStatusType want,
                           const char *what, int *rc)
{
    char err[512];
    PGconn *c = pg_beat_conn(s, err, sizeof(err));
    if (!c) {
        *rc = OPSC_ECONNREFUSED;
        return NULL;
    }
    PGresult *r = PQexecParams(c, sql, param ? 1 : 0, NULL, param ? &param : NULL, NULL, NULL, 0);
    if (PQresultStatus(r) == want)
        return r;
    *rc = beat_failed(s, c, r, what);
    PQclear(r);
    return NULL;
}

int store_cluster_leave(store *s, const char *node_id)
{
    if (!s || !s->pg)
        return OPSC_ENOTSUP;
    int rc = 0;
    PQclear(beat_exec(s, leave_sql, node_id, PGRES_COMMAND_OK, "leaving the cluster", &rc));
    return rc;
}

/* ---- the view (GET /api/v1/cluster) ---------------------------------------------------------- */

typedef struct view {
    int64_t timeout_ms;
    json_t *out;
} view;

static json_t *node_json(PGresult *r, int i)
{
    json_t *labels = json_loads(PQgetvalue(r, i, 3), 0, NULL);
    return json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:b}", "id", PQgetvalue(r, i, 0), "address",
                     PQgetvalue(r, i, 1), "version", PQgetvalue(r, i, 2), "labels",
                     labels ? labels : json_object(), "started_ms",
                     (json_int_t)strtoll(PQgetvalue(r, i, 4), NULL, 10), "heartbeat_ms",
                     (json_int_t)strtoll(PQgetvalue(r, i, 5), NULL, 10), "alive",
                     !strcmp(PQgetvalue(r, i, 6), "t"));
}

static int view_txn(store_txn *t, void *ud)
{
    view *v = ud;
    PGconn *c = t->pg->conn->c;
    char timeout[24];
    snprintf(timeout, sizeof(timeout), "%lld", (long long)v->timeout_ms);
    const char *vals[] = {timeout};
    PGresult *r = PQexecParams(c, nodes_sql, 1, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        int rc = beat_failed(NULL, c, r, "listing the nodes");
        PQclear(r);
        return rc;
    }
    json_t *nodes = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(nodes, node_json(r, i));
    PQclear(r);
    r = PQexec(c, leader_sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        int rc = beat_failed(NULL, c, r, "reading the lease");
        PQclear(r);
        json_decref(nodes);
        return rc;
    }
    json_t *leader = json_null();
    if (PQntuples(r) == 1)
        leader = json_pack("{s:s, s:I, s:I, s:b}", "node_id", PQgetvalue(r, 0, 0), "epoch",
                           (json_int_t)strtoll(PQgetvalue(r, 0, 1), NULL, 10), "expires_ms",
                           (json_int_t)strtoll(PQgetvalue(r, 0, 2), NULL, 10), "live",
                           !strcmp(PQgetvalue(r, 0, 3), "t"));
    PQclear(r);
    json_decref(v->out); /* a read runs once, but keep fn idempotent as store.h asks */
    v->out = json_pack("{s:o, s:o}", "nodes", nodes, "leader", leader);
    return v->out ? 0 : OPSC_ENOMEM;
}

int store_cluster_view(store *s, int64_t node_timeout_ms, json_t **out)
{
    if (!s || !s->pg)
        return OPSC_ENOTSUP;
    view v = {node_timeout_ms, NULL};
    int rc = store_read(s, view_txn, &v);
    if (rc == 0)
        *out = v.out;
    else
        json_decref(v.out);
    return rc;
}

/* ---- exactly-once fires ---------------------------------------------------------------------- */

static int32_t int4_at(PGresult *r, int col)
{
    uint32_t be;
    memcpy(&be, PQgetvalue(r, 0, col), sizeof(be));
    return (int32_t)ntohl(be);
}

int store_cluster_fire(store_txn *txn, const char *node_id, int64_t epoch, const char *schedule_id,
                       int64_t planned_ms, const char *run_id)
{
    if (!txn || !txn->pg)
        return OPSC_ENOTSUP;
    char ep[24], planned[24];
    snprintf(ep, sizeof(ep), "%lld", (long long)epoch);
    snprintf(planned, sizeof(planned), "%lld", (long long)planned_ms);
    const char *vals[] = {node_id, ep, schedule_id, planned, run_id};
    PGresult *r = pg_run(txn, "fire", 5, vals, NULL, NULL);
    if (!r)
        return txn->pg->failed;
    int rc = 0;
    if (PQntuples(r) != 1 || PQgetlength(r, 0, 0) != 4 || PQgetlength(r, 0, 1) != 4)
        rc = OPSC_EPROTO;
    else if (int4_at(r, 0) == 0)
        rc = OPSC_ESTATE;
    else if (int4_at(r, 1) == 0)
        rc = OPSC_EEXIST;
    PQclear(r);
    return rc;
}

/* ---- versions of what nodes cache ----------------------------------------------------------- */

int store_version_bump(store_txn *txn, const char *name)
{
    return txn && txn->pg ? pg_run1(txn, "bump", name) : 0;
}

int store_cluster_versions(store *s, json_t **out)
{
    if (!s || !s->pg)
        return OPSC_ENOTSUP;
    int rc = 0;
    PGresult *r = beat_exec(s, "SELECT name, n FROM opsc_versions", NULL, PGRES_TUPLES_OK,
                            "reading the versions", &rc);
    if (!r)
        return rc;
    *out = json_object();
    for (int i = 0; i < PQntuples(r); i++)
        json_object_set_new(*out, PQgetvalue(r, i, 0),
                            json_integer(strtoll(PQgetvalue(r, i, 1), NULL, 10)));
    PQclear(r);
    return 0;
}

/* ---- the leader's sweeping ------------------------------------------------------------------- */

int store_cluster_sweep(store *s, int64_t dead_ms, int64_t fires_ms)
{
    if (!s || !s->pg)
        return OPSC_ENOTSUP;
    static const char sql[] =
        "WITH n AS (DELETE FROM opsc_nodes WHERE last_heartbeat < now() - $1::bigint * "
        "interval '1 millisecond') DELETE FROM opsc_fires WHERE created_at < now() - "
        "$2::bigint * interval '1 millisecond'";
    char err[512], dead[24], fires[24];
    PGconn *c = pg_beat_conn(s, err, sizeof(err));
    if (!c)
        return OPSC_ECONNREFUSED;
    snprintf(dead, sizeof(dead), "%lld", (long long)dead_ms);
    snprintf(fires, sizeof(fires), "%lld", (long long)fires_ms);
    const char *vals[] = {dead, fires};
    PGresult *r = PQexecParams(c, sql, 2, NULL, vals, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : beat_failed(s, c, r, "sweeping");
    PQclear(r);
    return rc;
}
