/* pg_store.c - the store on PostgreSQL: connection pool, transactions with retry, opening, stats.
 *
 * The contract of store.h is kept (docs/cluster.md 1.2): a transaction runs
 * synchronously on the calling thread over one pooled connection, bounded
 * by the timeouts set on every connection. Writes are SERIALIZABLE, so a
 * read-modify-write is as safe as under LMDB's single writer even with
 * several daemons on one database; a serialization failure runs `fn` again,
 * which store.h already allows (LMDB runs it again after growing the map).
 * store_write_snapshot() writes at REPEATABLE READ: conflicts on keys both
 * write, not on index pages both read (store.h says when that is enough).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "log.h"
#include "pg_internal.h"
#include "util.h"

#define POOL_MAX       8            /* the loop's transactions plus worker-thread reads */
#define WRITE_TRIES    10           /* serialization failures before a write gives up */
#define MIGRATION_LOCK "1869640547" /* 'opsc': one node migrates at a time */
/* A failed attempt that waited this long and timed out met a database that does not answer
 * (a partition, a firewall dropping packets); a refused or reset connection fails at once,
 * and one the server closed (a process frozen past idle_in_transaction_session_timeout)
 * waited but did not time out. The store then
 * fails at once for QUIET_MS (the connect timeout) instead of waiting again: the loop would
 * otherwise wait out tcp_user_timeout or connect_timeout statement after statement and reach
 * its leader deadline only after its lease had ended (docs/cluster.md 5). */
#define SILENT_MS 1000
#define QUIET_MS  5000

struct pg_store {
    char *url;       /* secret (it may hold a password): never logged */
    char shown[256]; /* host, port, database and user: what logs say */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pg_conn *idle;
    int open;           /* connections made, idle or in use */
    pg_conn *lock_conn; /* holds the migration lock while store.c migrates */
    PGconn *beat;       /* membership and lease (pg_cluster.c): never waits behind the pool */
    PGconn *listen;     /* LISTEN opsc_runq (pg_queue.c): the loop watches its socket */
    uint64_t beat_since, listen_since; /* when the own connections were last handed out */
    uint64_t quiet_until; /* clock_mono_ms: fail at once before it (under mu) */
    bool silent;          /* the database did not answer since the last connect */
    bool probed;          /* the loop probes (store_cluster_probes): silent until one connects */
    PGconn *probe;        /* that probe's connection, being made without waiting */
    bool probe_writes;    /* it waits to write (else to read) */
};

/* Our bounds first, then the user's URL, whose keys win (libpq applies the
 * parameters in order; expand_dbname turns the URL into keys). */
static const char *const conn_keys[] = {
    "connect_timeout", "tcp_user_timeout", "keepalives_idle", "application_name",
    "gssencmode",      "options",          "dbname",          NULL};
#define CONN_OPTIONS                                                                               \
    "-c statement_timeout=5000 -c lock_timeout=2000 -c idle_in_transaction_session_timeout=10000 " \
    "-c client_min_messages=warning"

static const struct {
    const char *name, *sql;
    int n;
    Oid types[6];
} statements[] = {
    {"get", "SELECT v FROM opsc_kv WHERE db = $1 AND k = $2", 2, {25, 17}},
    {"get_lock", "SELECT v FROM opsc_kv WHERE db = $1 AND k = $2 FOR SHARE", 2, {25, 17}},
    {"put",
     "INSERT INTO opsc_kv (db, k, v) VALUES ($1, $2, $3) ON CONFLICT (db, k) DO UPDATE SET v = "
     "EXCLUDED.v",
     3,
     {25, 17, 17}},
    {"add",
     "INSERT INTO opsc_kv (db, k, v) VALUES ($1, $2, $3) ON CONFLICT (db, k) DO NOTHING",
     3,
     {25, 17, 17}},
    {"del", "DELETE FROM opsc_kv WHERE db = $1 AND k = $2", 2, {25, 17}},
    {"ge",
     "SELECT k, v FROM opsc_kv WHERE db = $1 AND k >= $2 ORDER BY k LIMIT $3",
     3,
     {25, 17, 23}},
    {"gt",
     "SELECT k, v FROM opsc_kv WHERE db = $1 AND k > $2 ORDER BY k LIMIT $3",
     3,
     {25, 17, 23}},
    {"le",
     "SELECT k, v FROM opsc_kv WHERE db = $1 AND k <= $2 ORDER BY k DESC LIMIT $3",
     3,
     {25, 17, 23}},
    {"lt",
     "SELECT k, v FROM opsc_kv WHERE db = $1 AND k < $2 ORDER BY k DESC LIMIT $3",
     3,
     {25, 17, 23}},
    {"last", "SELECT k, v FROM opsc_kv WHERE db = $1 ORDER BY k DESC LIMIT $2", 2, {25, 23}},
    {"fire", PG_FIRE_SQL, 5, {25, 20, 25, 20, 25}}, /* pg_cluster.c */
    {"rq_add", PG_RQ_ADD_SQL, 6, {25, 25, 1009, 16, 3802, 16}}, /* pg_queue.c */
    {"rq_del", PG_RQ_DEL_SQL, 1, {25}},
    {"rq_reap", PG_RQ_REAP_SQL, 0, {0}},
    {"rq_requeue", PG_RQ_REQUEUE_SQL, 2, {25, 23}},
    {"rq_unrouted", PG_RQ_UNROUTED_SQL, 1, {20}},
    {"notify", "SELECT pg_notify($1, $2)", 2, {25, 25}},
    {"bump",
     "INSERT INTO opsc_versions AS v (name, n) VALUES ($1, 1) ON CONFLICT (name) DO UPDATE SET "
     "n = v.n + 1",
     1,
     {25}}, /* pg_cluster.c */
};

/* The records, then the cluster's typed tables (docs/cluster.md 1.1, 2).
 * TABLES_VERSION: bumped with every change here. */
#define TABLES_VERSION "4"
static const char create_sql[] =
    "CREATE TABLE IF NOT EXISTS opsc_kv (db text NOT NULL, k bytea NOT NULL, v bytea NOT NULL, "
    "PRIMARY KEY (db, k));"
    "CREATE TABLE IF NOT EXISTS opsc_nodes (id text PRIMARY KEY, address text NOT NULL, "
    "version text NOT NULL, labels jsonb NOT NULL DEFAULT '{}', started_at timestamptz NOT NULL, "
    "last_heartbeat timestamptz NOT NULL);"
    "CREATE TABLE IF NOT EXISTS opsc_lease (name text PRIMARY KEY, holder text NOT NULL, "
    "epoch bigint NOT NULL, expires_at timestamptz NOT NULL);"
    "CREATE TABLE IF NOT EXISTS opsc_fires (schedule_id text NOT NULL, planned_ms bigint NOT NULL, "
    "run_id text NOT NULL, node_id text NOT NULL, epoch bigint NOT NULL, "
    "created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (schedule_id, planned_ms));"
    "CREATE TABLE IF NOT EXISTS opsc_runq (run_id text PRIMARY KEY, job_id text NOT NULL, "
    "targets text[] NOT NULL, exclusive boolean NOT NULL, state text NOT NULL, node_id text, "
    "lease_until timestamptz, created_at timestamptz NOT NULL DEFAULT now());"
    "CREATE INDEX IF NOT EXISTS opsc_runq_queued ON opsc_runq (run_id) WHERE state = 'queued';"
    "ALTER TABLE opsc_runq ADD COLUMN IF NOT EXISTS route jsonb NOT NULL DEFAULT '{}';"
    "ALTER TABLE opsc_runq ADD COLUMN IF NOT EXISTS idempotent boolean NOT NULL DEFAULT false;"
    "ALTER TABLE opsc_runq ADD COLUMN IF NOT EXISTS attempts int NOT NULL DEFAULT 0;"
    "CREATE TABLE IF NOT EXISTS opsc_versions (name text PRIMARY KEY, n bigint NOT NULL);"
    "INSERT INTO opsc_versions (name, n) VALUES ('tables', " TABLES_VERSION ") ON CONFLICT (name) "
    "DO UPDATE SET n = greatest(opsc_versions.n, EXCLUDED.n)";

const char *pg_db_name(MDB_dbi dbi)
{
    return store_dbs[dbi - 1].name;
}

/* ---- errors ---------------------------------------------------------------------------------- */

/* SQLSTATE classes to our codes; no SQLSTATE means the connection broke. */
static int sqlstate_code(const char *st)
{
    if (!st)
        return OPSC_EIO;
    if (!strcmp(st, "40001") || !strcmp(st, "40P01"))
        return OPSC_EAGAIN;
    if (!strcmp(st, "57014"))
        return OPSC_ETIMEDOUT; /* statement_timeout */
    if (!strcmp(st, "55P03"))
        return OPSC_EBUSY; /* lock_timeout */
    if (!strncmp(st, "53", 2))
        return OPSC_ENOSPC;
    if (!strncmp(st, "54", 2))
        return OPSC_E2BIG;
    if (!strncmp(st, "22", 2))
        return OPSC_EINVAL;
    return OPSC_EIO;
}

static int fail_result(struct pg_txn *p, PGresult *r, const char *what)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    int rc = sqlstate_code(st);
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(p->conn->c);
    if (rc == OPSC_EAGAIN)
        log_debug("store", "postgresql %s: %s", what, msg);
    else
        log_error("store", "postgresql %s: %s", what, msg);
    if (!p->failed) {
        p->failed = rc;
        p->retry = rc == OPSC_EAGAIN;
    }
    return rc;
}

PGresult *pg_run(store_txn *t, const char *name, int n, const char *const *vals, const int *lens,
                 const int *fmts)
{
    struct pg_txn *p = t->pg;
    if (p->failed)
        return NULL;
    PGresult *r = PQexecPrepared(p->conn->c, name, n, vals, lens, fmts, 1);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return r;
    fail_result(p, r, name);
    PQclear(r);
    return NULL;
}

int pg_run1(store_txn *t, const char *name, const char *param)
{
    PGresult *r = pg_run(t, name, 1, &param, NULL, NULL);
    if (!r)
        return t->pg->failed;
    PQclear(r);
    return 0;
}

int pg_keep(store_txn *t, PGresult *r)
{
    struct pg_txn *p = t->pg;
    if (p->nkeep == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        PGresult **k = realloc(p->keep, cap * sizeof(*k));
        if (!k) {
            PQclear(r);
            return OPSC_ENOMEM;
        }
        p->keep = k;
        p->cap = cap;
    }
    p->keep[p->nkeep++] = r;
    return 0;
}

/* A statement outside the prepared set (BEGIN, COMMIT, DDL). */
static int simple(struct pg_txn *p, const char *sql)
{
    PGresult *r = PQexec(p->conn->c, sql);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK
                 ? 0
                 : fail_result(p, r, sql);
    PQclear(r);
    return rc;
}

/* ---- connections ----------------------------------------------------------------------------- */

static int prepare_all(PGconn *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(statements) / sizeof(statements[0]); i++) {
        PGresult *r = PQprepare(c, statements[i].name, statements[i].sql, statements[i].n,
                                statements[i].types);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            snprintf(err, errlen, "preparing %s: %s", statements[i].name, PQresultErrorMessage(r));
        PQclear(r);
        if (!ok)
            return OPSC_EIO;
    }
    return 0;
}

/* libpq's words for connect_timeout, and the system's for tcp_user_timeout (ETIMEDOUT):
 * libpq takes them from the same locale as strerror() here. */
static bool timed_out(PGconn *c)
{
    const char *msg = c ? PQerrorMessage(c) : "";
    return strstr(msg, "timeout expired") || strstr(msg, strerror(ETIMEDOUT));
}

/* An attempt on `c` that began at `since` failed: if it waited for an answer that never
 * came, do not wait again for a while. */
static void note_failure(struct pg_store *pg, PGconn *c, uint64_t since)
{
    uint64_t now = clock_mono_ms();
    if (now - since < SILENT_MS || !timed_out(c))
        return;
    pthread_mutex_lock(&pg->mu);
    bool first = !pg->silent, probed = pg->probed;
    pg->silent = true;
    pg->quiet_until = now + QUIET_MS;
    pthread_mutex_unlock(&pg->mu);
    if (first && probed)
        log_warn("store",
                 "PostgreSQL (%s) did not answer for %llu ms: statements fail at once until "
                 "a connection tried without waiting is made",
                 pg->shown, (unsigned long long)(now - since));
    else if (first)
        log_warn("store",
                 "PostgreSQL (%s) did not answer for %llu ms: statements fail at once, "
                 "trying again every %d ms",
                 pg->shown, (unsigned long long)(now - since), QUIET_MS);
}

/* The milliseconds left before the store tries the database again; 0: try now. */
static uint64_t quiet_left(struct pg_store *pg)
{
    pthread_mutex_lock(&pg->mu);
    uint64_t until = pg->quiet_until;
    pthread_mutex_unlock(&pg->mu);
    uint64_t now = clock_mono_ms();
    return now >= until ? 0 : until - now;
}

static int quiet(struct pg_store *pg, char *err, size_t errlen)
{
    pthread_mutex_lock(&pg->mu);
    bool probed_silence = pg->probed && pg->silent;
    pthread_mutex_unlock(&pg->mu);
    if (probed_silence)
        return store_fail(OPSC_ECONNREFUSED, err, errlen,
                          "PostgreSQL (%s) did not answer: not tried again until it does",
                          pg->shown);
    uint64_t left = quiet_left(pg);
    if (!left)
        return 0;
    return store_fail(OPSC_ECONNREFUSED, err, errlen,
                      "PostgreSQL (%s) did not answer: not tried again for %llu ms", pg->shown,
                      (unsigned long long)left);
}

static void answered(struct pg_store *pg)
{
    pthread_mutex_lock(&pg->mu);
    bool was = pg->silent;
    pg->silent = false;
    pg->quiet_until = 0;
    pthread_mutex_unlock(&pg->mu);
    if (was)
        log_info("store", "PostgreSQL (%s) answers again", pg->shown);
}

/* The values of conn_keys: our bounds, then the URL. gssencmode: no Kerberos probe on
 * every connect unless the URL asks for it. */
static const char **conn_vals(struct pg_store *pg, const char **vals)
{
    const char *ours[] = {"5", "5000", "10", "opsconductord", "disable", CONN_OPTIONS, pg->url, NULL};
    memcpy(vals, ours, sizeof(ours));
    return vals;
}

/* `prepare`: false for the first connection, which creates the table first. */
static int connect_one(struct pg_store *pg, pg_conn **out, bool prepare, char *err, size_t errlen)
{
    int rc = quiet(pg, err, errlen);
    if (rc)
        return rc;
    uint64_t since = clock_mono_ms();
    pg_conn *pc = calloc(1, sizeof(*pc));
    if (!pc)
        return store_fail(OPSC_ENOMEM, err, errlen, "out of memory");
    const char *vals[sizeof(conn_keys) / sizeof(conn_keys[0])];
    pc->c = PQconnectdbParams(conn_keys, conn_vals(pg, vals), 1);
    if (!pc->c || PQstatus(pc->c) != CONNECTION_OK) {
        note_failure(pg, pc->c, since);
        /* libpq's message names host and port, never the password */
        rc = store_fail(OPSC_ECONNREFUSED, err, errlen, "cannot connect to PostgreSQL (%s): %s",
                        pg->shown, pc->c ? PQerrorMessage(pc->c) : "out of memory");
    } else if (prepare && prepare_all(pc->c, err, errlen) < 0) {
        rc = OPSC_EIO;
    }
    if (rc) {
        PQfinish(pc->c);
        free(pc);
        return rc;
    }
    answered(pg);
    *out = pc;
    return 0;
}

static int pool_get(struct pg_store *pg, pg_conn **out, char *err, size_t errlen)
{
    int rc = quiet(pg, err, errlen); /* an idle connection would wait as long */
    if (rc)
        return rc;
    pthread_mutex_lock(&pg->mu);
    while (!pg->idle && pg->open >= POOL_MAX)
        pthread_cond_wait(&pg->cv, &pg->mu);
    pg_conn *pc = pg->idle;
    if (pc)
        pg->idle = pc->next;
    else
        pg->open++;
    pthread_mutex_unlock(&pg->mu);
    if (pc) {
        pc->since = clock_mono_ms();
        *out = pc;
        return 0;
    }
    rc = connect_one(pg, out, true, err, errlen);
    if (rc == 0)
        (*out)->since = clock_mono_ms();
    if (rc) {
        pthread_mutex_lock(&pg->mu);
        pg->open--;
        pthread_cond_signal(&pg->cv);
        pthread_mutex_unlock(&pg->mu);
    }
    return rc;
}

/* A broken connection is closed, not pooled: the next transaction makes a new one. */
static void pool_put(struct pg_store *pg, pg_conn *pc)
{
    bool broken = PQstatus(pc->c) != CONNECTION_OK;
    if (broken) {
        note_failure(pg, pc->c, pc->since);
        PQfinish(pc->c);
        free(pc);
    }
    pthread_mutex_lock(&pg->mu);
    if (broken) {
        pg->open--;
    } else {
        pc->next = pg->idle;
        pg->idle = pc;
    }
    pthread_cond_signal(&pg->cv);
    pthread_mutex_unlock(&pg->mu);
}

/* A connection of its own, outside the pool, made or remade on demand; `since`: when it
 * was last handed out (its statements follow at once: pg_beat_failed). */
static PGconn *own_conn(struct pg_store *pg, PGconn **slot, uint64_t *since, char *err,
                        size_t errlen)
{
    if (*slot && PQstatus(*slot) != CONNECTION_OK) {
        PQfinish(*slot);
        *slot = NULL;
    }
    if (quiet(pg, err, errlen))
        return NULL;
    *since = clock_mono_ms();
    if (*slot)
        return *slot;
    pg_conn *pc = NULL;
    if (connect_one(pg, &pc, false, err, errlen))
        return NULL;
    *slot = pc->c;
    free(pc);
    return *slot;
}

PGconn *pg_beat_conn(store *s, char *err, size_t errlen)
{
    return own_conn(s->pg, &s->pg->beat, &s->pg->beat_since, err, errlen);
}

void pg_beat_failed(store *s)
{
    if (s->pg->beat && PQstatus(s->pg->beat) != CONNECTION_OK)
        note_failure(s->pg, s->pg->beat, s->pg->beat_since);
}

PGconn *pg_listen_conn(store *s, bool reset, char *err, size_t errlen)
{
    if (reset && s->pg->listen) {
        PQfinish(s->pg->listen);
        s->pg->listen = NULL;
    }
    return own_conn(s->pg, &s->pg->listen, &s->pg->listen_since, err, errlen);
}

PGconn *pg_listening(store *s)
{
    return s->pg->listen;
}

/* ---- probing a database that did not answer, without waiting ------------------------------- */

void store_cluster_probes(store *s)
{
    if (s && s->pg) {
        pthread_mutex_lock(&s->pg->mu);
        s->pg->probed = true;
        pthread_mutex_unlock(&s->pg->mu);
    }
}

bool store_cluster_silent(store *s)
{
    if (!s || !s->pg)
        return false;
    pthread_mutex_lock(&s->pg->mu);
    bool silent = s->pg->silent;
    pthread_mutex_unlock(&s->pg->mu);
    return silent;
}

void store_cluster_probe_stop(store *s)
{
    if (s && s->pg && s->pg->probe) {
        PQfinish(s->pg->probe);
        s->pg->probe = NULL;
    }
}

/* One step of libpq's non-blocking connect, when its socket is ready for it. */
static int probe_step(struct pg_store *pg)
{
    struct pollfd fd = {PQsocket(pg->probe), pg->probe_writes ? POLLOUT : POLLIN, 0};
    if (fd.fd < 0)
        return OPSC_ECONNREFUSED;
    if (poll(&fd, 1, 0) == 0)
        return 0;
    switch (PQconnectPoll(pg->probe)) {
    case PGRES_POLLING_OK:
        return 1;
    case PGRES_POLLING_READING:
        pg->probe_writes = false;
        return 0;
    case PGRES_POLLING_WRITING:
        pg->probe_writes = true;
        return 0;
    default:
        return OPSC_ECONNREFUSED;
    }
}

int store_cluster_probe(store *s)
{
    struct pg_store *pg = s && s->pg ? s->pg : NULL;
    if (!pg)
        return OPSC_ENOTSUP;
    if (!pg->probe) {
        const char *vals[sizeof(conn_keys) / sizeof(conn_keys[0])];
        pg->probe = PQconnectStartParams(conn_keys, conn_vals(pg, vals), 1);
        pg->probe_writes = true; /* libpq's first wait is for the connect */
        if (!pg->probe || PQstatus(pg->probe) == CONNECTION_BAD) {
            store_cluster_probe_stop(s);
            return OPSC_ECONNREFUSED;
        }
    }
    int rc = probe_step(pg);
    if (rc != 0)
        store_cluster_probe_stop(s);
    if (rc == 1)
        answered(pg);
    return rc;
}

/* ---- transactions ---------------------------------------------------------------------------- */

static int get_logged(struct pg_store *pg, pg_conn **pc)
{
    if (quiet_left(pg))
        return OPSC_ECONNREFUSED; /* said once, when it went quiet (note_failure) */
    char err[512];
    int rc = pool_get(pg, pc, err, sizeof(err));
    if (rc)
        log_error("store", "%s", err);
    return rc;
}

/* A transaction's kind, and how it begins. */
typedef enum { TXN_READ, TXN_WRITE, TXN_SNAPSHOT } txn_kind;
static const char *const begin_sql[] = {
    [TXN_READ] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    [TXN_WRITE] = "BEGIN ISOLATION LEVEL SERIALIZABLE",
    [TXN_SNAPSHOT] = "BEGIN ISOLATION LEVEL REPEATABLE READ", /* store_write_snapshot */
};

/* BEGIN on a pooled connection; a connection that broke while idle (the
 * server restarted) is replaced once, since nothing has run on it yet. */
static int begin(struct pg_store *pg, struct pg_txn *p, txn_kind kind)
{
    const char *sql = begin_sql[kind];
    for (int tries = 0;; tries++) {
        int rc = get_logged(pg, &p->conn);
        if (rc)
            return rc;
        PGresult *r = PQexec(p->conn->c, sql);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (ok || tries == 1 || PQstatus(p->conn->c) == CONNECTION_OK) {
            rc = ok ? 0 : fail_result(p, r, sql);
            PQclear(r);
            return rc;
        }
        PQclear(r);
        log_info("store", "postgresql connection lost while idle: reconnecting");
        pool_put(pg, p->conn);
        p->conn = NULL;
    }
}

static void txn_end(struct pg_store *pg, struct pg_txn *p)
{
    for (size_t i = 0; i < p->nkeep; i++)
        PQclear(p->keep[i]);
    free(p->keep);
    if (p->conn)
        pool_put(pg, p->conn);
}

/* One attempt. OPSC_EAGAIN: a serialization failure, run it again. */
static int run_once(store *s, txn_kind kind, store_txn_fn fn, void *ud)
{
    struct pg_txn p = {0};
    bool write = kind != TXN_READ;
    store_txn t = {.s = s, .write = write, .pg = &p};
    int rc = begin(s->pg, &p, kind);
    if (rc == 0) {
        rc = fn(&t, ud);
        if (p.failed) /* fn may have carried on past a backend error */
            rc = p.retry ? OPSC_EAGAIN : p.failed;
        if (write && rc > 0)
            rc = OPSC_EINVAL; /* as LMDB's store_write */
        bool commit = write && rc == 0;
        int end = simple(&p, commit ? "COMMIT" : "ROLLBACK");
        if (commit && end)
            rc = p.retry ? OPSC_EAGAIN : end;
    }
    txn_end(s->pg, &p);
    return rc;
}

int store_pg_write(store *s, store_txn_fn fn, void *ud, bool snapshot)
{
    for (int tries = 1;; tries++) {
        int rc = run_once(s, snapshot ? TXN_SNAPSHOT : TXN_WRITE, fn, ud);
        if (rc != OPSC_EAGAIN)
            return rc;
        if (tries == WRITE_TRIES) {
            log_error("store", "a write lost %d serialization conflicts in a row: giving up",
                      tries);
            return OPSC_EBUSY;
        }
        unsigned r = 0;
        rand_bytes(&r, sizeof(r));
        usleep(100 + r % (200u << (tries < 6 ? tries : 6))); /* spread the contenders */
    }
}

int store_pg_read(store *s, store_txn_fn fn, void *ud)
{
    return run_once(s, TXN_READ, fn, ud);
}

/* ---- open, close, statistics ----------------------------------------------------------------- */

/* "host=h port=p dbname=d user=u": what the logs may say about the URL. */
static void describe(struct pg_store *pg)
{
    PQconninfoOption *opts = PQconninfoParse(pg->url, NULL);
    snprintf(pg->shown, sizeof(pg->shown), "an unparsable postgresql_url");
    if (!opts)
        return;
    size_t used = 0;
    pg->shown[0] = '\0';
    static const char *const keep[] = {"host", "hostaddr", "port", "dbname", "user"};
    for (PQconninfoOption *o = opts; o->keyword; o++)
        for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
            if (o->val && *o->val && !strcmp(o->keyword, keep[i]) && used < sizeof(pg->shown))
                used += (size_t)snprintf(pg->shown + used, sizeof(pg->shown) - used, "%s%s=%s",
                                         used ? " " : "", o->keyword, o->val);
    if (!pg->shown[0])
        snprintf(pg->shown, sizeof(pg->shown), "libpq defaults");
    PQconninfoFree(opts);
}

/* The tables are as create_sql makes them already: then it is not run. Its
 * statements lock their tables even when they change nothing (ALTER TABLE ...
 * ADD COLUMN IF NOT EXISTS takes ACCESS EXCLUSIVE after CREATE INDEX's SHARE),
 * and a node starting beside busy ones deadlocked with their transactions.
 * No table yet is an error here, and means "not current". */
static bool tables_current(struct pg_store *pg)
{
    PGresult *r = PQexec(pg->lock_conn->c, "SELECT n >= " TABLES_VERSION
                                           " FROM opsc_versions WHERE name = 'tables'");
    bool current = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
                   !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    return current;
}

/* Under the migration lock; a deadlock with the other nodes' transactions
 * (a database made by an older version, whose tables change) is tried again. */
static int create_tables(struct pg_store *pg)
{
    struct pg_txn p = {.conn = pg->lock_conn};
    int rc = 0;
    for (int attempt = 0; attempt < 5 && !tables_current(pg); attempt++)
        if ((rc = simple(&p, create_sql)) != OPSC_EAGAIN)
            break;
    return rc;
}

int store_pg_open(store *s, const char *url, char *err, size_t errlen)
{
    if (s->read_only)
        return store_fail(OPSC_ENOTSUP, err, errlen,
                          "read-only opens are for LMDB stores; back up PostgreSQL with pg_dump");
    struct pg_store *pg = calloc(1, sizeof(*pg));
    if (!pg || !(pg->url = strdup(url))) {
        free(pg);
        return store_fail(OPSC_ENOMEM, err, errlen, "out of memory");
    }
    pthread_mutex_init(&pg->mu, NULL);
    pthread_cond_init(&pg->cv, NULL);
    describe(pg);
    s->pg = pg;
    for (size_t i = 0; i < store_db_count; i++)
        s->dbi[i] = (MDB_dbi)(i + 1);
    int rc = connect_one(pg, &pg->lock_conn, false, err, errlen);
    if (rc)
        return rc;
    pg->open = 1;
    struct pg_txn p = {.conn = pg->lock_conn};
    /* The lock waits for another node's migrations: longer than a statement. */
    rc = simple(&p, "SET statement_timeout = '120s'");
    if (rc == 0)
        rc = simple(&p, "SELECT pg_advisory_lock(" MIGRATION_LOCK ")");
    if (rc == 0)
        rc = simple(&p, "RESET statement_timeout");
    if (rc == 0)
        rc = create_tables(pg);
    if (rc)
        return store_fail(rc, err, errlen, "cannot prepare the store in PostgreSQL (%s): %s",
                          pg->shown, PQerrorMessage(pg->lock_conn->c));
    return prepare_all(pg->lock_conn->c, err, errlen);
}

int store_pg_migrated(store *s, char *err, size_t errlen)
{
    struct pg_store *pg = s->pg;
    PGresult *r = PQexec(pg->lock_conn->c, "SELECT pg_advisory_unlock(" MIGRATION_LOCK ")");
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    PQclear(r);
    if (!ok)
        return store_fail(OPSC_EIO, err, errlen, "PostgreSQL (%s): %s", pg->shown,
                          PQerrorMessage(pg->lock_conn->c));
    log_info("store", "opened PostgreSQL (%s): schema version %d", pg->shown, s->schema_version);
    return 0;
}

void store_pg_close(store *s)
{
    struct pg_store *pg = s->pg;
    if (!pg)
        return;
    if (pg->lock_conn) { /* closing the session releases the advisory lock */
        PQfinish(pg->lock_conn->c);
        free(pg->lock_conn);
    }
    if (pg->beat)
        PQfinish(pg->beat);
    if (pg->listen)
        PQfinish(pg->listen);
    if (pg->probe)
        PQfinish(pg->probe);
    while (pg->idle) {
        pg_conn *pc = pg->idle;
        pg->idle = pc->next;
        PQfinish(pc->c);
        free(pc);
    }
    pthread_cond_destroy(&pg->cv);
    pthread_mutex_destroy(&pg->mu);
    secure_zero(pg->url, strlen(pg->url));
    free(pg->url);
    free(pg);
    s->pg = NULL;
}

static int size_txn(store_txn *t, void *ud)
{
    PGresult *r = PQexecParams(t->pg->conn->c, "SELECT pg_database_size(current_database())", 0,
                               NULL, NULL, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? 0 : OPSC_EIO;
    if (rc == 0)
        *(int64_t *)ud = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return rc;
}

int store_pg_stats(store *s, store_stats *st)
{
    int64_t bytes = 0;
    int rc = store_pg_read(s, size_txn, &bytes);
    if (rc)
        return rc;
    st->map_size = 0;
    st->used_bytes = bytes;
    st->file_bytes = bytes;
    st->schema_version = s->schema_version;
    return 0;
}
