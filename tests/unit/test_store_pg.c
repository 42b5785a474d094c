/* test_store_pg.c - the store's record, kv, index and scan tests again on PostgreSQL, and what
 * only PostgreSQL has: serialization retries, the leader lease and exactly-once fires, a password
 * kept secret. */
#include "test_store.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "pg_fixture.h"
#include "util.h"

/* ---- what PostgreSQL adds ------------------------------------------------ */

typedef struct race {
    const char *url; /* the same database, through a connection of our own */
    int runs;
    int64_t version;
} race;

static int put_named(store_txn *t, void *ud)
{
    (void)ud;
    json_t *rec = json_pack("{s:s, s:s}", "id", "raced", "name", "first");
    int rc = store_create(t, "targets", rec);
    json_decref(rec);
    return rc;
}

/* Reads the record, then another session changes it and commits, then
 * writes it: the SERIALIZABLE commit cannot stand, and the store runs this
 * function again on a fresh snapshot. */
static int raced_update(store_txn *t, void *ud)
{
    race *r = ud;
    json_t *rec = NULL;
    int rc = store_get(t, "targets", "raced", &rec);
    if (rc)
        return rc;
    if (r->runs++ == 0) {
        PGconn *c = PQconnectdb(r->url);
        PGresult *res = PQexec(c, "UPDATE opsc_kv SET v = convert_to('{\"id\":\"raced\",\"name\":"
                                  "\"other\",\"version\":2}', 'UTF8') WHERE db = 'targets' AND "
                                  "k = 'raced'::bytea");
        assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
        assert_string_equal(PQcmdTuples(res), "1");
        PQclear(res);
        PQfinish(c);
    }
    json_object_set_new(rec, "name", json_string("mine"));
    rc = store_update(t, "targets", rec, json_integer_value(json_object_get(rec, "version")));
    r->version = json_integer_value(json_object_get(rec, "version"));
    json_decref(rec);
    return rc;
}

static int get_name(store_txn *t, void *ud)
{
    json_t *rec = NULL;
    int rc = store_get(t, "targets", "raced", &rec);
    if (rc == 0)
        snprintf(ud, 32, "%s", json_string_value(json_object_get(rec, "name")));
    json_decref(rec);
    return rc;
}

static void a_serialization_failure_runs_the_write_again(void **state)
{
    store *s = open_ok(*state, 0, 0);
    assert_int_equal(store_write(s, put_named, NULL), 0);
    race r = {.url = pg_fixture_url_for(*state)};
    char url[512];
    snprintf(url, sizeof(url), "%s", r.url);
    r.url = url;
    assert_int_equal(store_write(s, raced_update, &r), 0);
    assert_int_equal(r.runs, 2);    /* once lost, once committed */
    assert_int_equal(r.version, 3); /* on top of the other session's version 2 */
    char name[32] = "";
    assert_int_equal(store_read(s, get_name, name), 0);
    assert_string_equal(name, "mine");
    store_close(s);
}

/* A second daemon's store on the test's database. */
static store *open_other(void **state)
{
    char other[512], err[512] = "";
    snprintf(other, sizeof(other), "%s/other", (const char *)*state);
    store_opts o = {.postgresql_url = pg_fixture_url_for(*state)};
    store *b = NULL;
    assert_int_equal(store_open(&b, other, &o, err, sizeof(err)), 0);
    return b;
}

/* Two nodes creating runs at once: different keys, but under UUIDv7 ids
 * the same index page. */
typedef struct page_race {
    store *other; /* the second node, on the same database */
    int runs;
    bool snapshot; /* both write with store_write_snapshot, else store_write */
} page_race;

static int create_run(store_txn *t, void *ud)
{
    json_t *rec = json_pack("{s:s}", "id", (const char *)ud);
    int rc = store_create(t, "runs", rec);
    json_decref(rec);
    return rc;
}

/* Reads the page of a fresh id (store_create's check), then the other
 * node creates its run there and commits, then this one writes its own. */
static int create_raced(store_txn *t, void *ud)
{
    page_race *p = ud;
    const void *v = NULL;
    size_t n = 0;
    assert_int_equal(store_kv_get(t, "runs", "01a2-run-a", 10, &v, &n), OPSC_ENOENT);
    if (p->runs++ == 0)
        assert_int_equal((p->snapshot ? store_write_snapshot : store_write)(p->other, create_run,
                                                                            "01a2-run-b"),
                         0);
    return create_run(t, "01a2-run-a");
}

static int delete_run(store_txn *t, void *ud)
{
    return store_delete(t, "runs", ud, 0);
}

static int held_then_raced(store_txn *t, void *ud)
{
    page_race *p = ud;
    const void *v = NULL;
    size_t n = 0;
    int rc = store_kv_get_locked(t, "runs", "01a2-run-b", 10, &v, &n);
    if (rc == 0 && p->runs++ == 0) /* the other waits for this lock, then gives up */
        assert_int_equal(store_write(p->other, delete_run, "01a2-run-b"), OPSC_EBUSY);
    return rc;
}

/* SERIALIZABLE locks what it reads by index page: two run creations that
 * share no key conflict, and one runs again (the 409 "busy" of concurrent
 * run creation on three nodes, when that happened ten times in a row). A
 * snapshot write conflicts only on keys both write; its locked read holds
 * the key against a concurrent delete. */
static void run_writes_conflict_on_keys_not_pages_when_snapshot(void **state)
{
    store *a = open_ok(*state, 0, 0);
    page_race p = {.other = open_other(state)};
    assert_int_equal(store_write(a, create_raced, &p), 0);
    assert_int_equal(p.runs, 2); /* the page conflict */
    assert_int_equal(store_write(a, delete_run, "01a2-run-a"), 0);
    assert_int_equal(store_write(a, delete_run, "01a2-run-b"), 0);
    p.runs = 0;
    p.snapshot = true;
    assert_int_equal(store_write_snapshot(a, create_raced, &p), 0);
    assert_int_equal(p.runs, 1);
    p.runs = 0;
    assert_int_equal(store_write_snapshot(a, held_then_raced, &p), 0);
    assert_int_equal(p.runs, 1);
    store_close(p.other);
    store_close(a);
}

typedef struct fire_try {
    const char *node, *schedule, *run;
    int64_t epoch, planned;
} fire_try;

static int fire_txn(store_txn *t, void *ud)
{
    fire_try *f = ud;
    return store_cluster_fire(t, f->node, f->epoch, f->schedule, f->planned, f->run);
}

static int fire(store *s, const char *node, int64_t epoch, int64_t planned)
{
    fire_try f = {node, "sched-1", "run", epoch, planned};
    return store_write(s, fire_txn, &f);
}

static store_lease beat(store *s, const char *id, int64_t lease_ms)
{
    store_node me = {id, "127.0.0.1:1", "test", 1700000000000};
    store_lease l = {0};
    assert_int_equal(store_cluster_beat(s, &me, lease_ms, &l), 0);
    return l;
}

/* Two daemons on one database: one lease, an epoch that moves with the
 * holder, fires that exist once and are refused to a stale leader. */
static void the_lease_fences_and_fires_exist_once(void **state)
{
    store *a = open_ok(*state, 0, 0);
    store *b = open_other(state); /* both open it */
    store_lease la = beat(a, "node-a", 60000), lb = beat(b, "node-b", 60000);
    assert_true(la.leading);
    assert_false(lb.leading);
    assert_int_equal(fire(a, "node-a", la.epoch, 1000), 0);
    assert_int_equal(fire(a, "node-a", la.epoch, 1000), OPSC_EEXIST); /* the same fire */
    assert_int_equal(fire(b, "node-b", la.epoch, 2000), OPSC_ESTATE); /* not its lease */
    assert_true(beat(a, "node-a", 1).leading); /* renewed: same epoch, lapses at once */
    usleep(20000);
    lb = beat(b, "node-b", 60000);
    assert_true(lb.leading);
    assert_int_equal(lb.epoch, la.epoch + 1);
    assert_int_equal(fire(a, "node-a", la.epoch, 2000), OPSC_ESTATE); /* fenced */
    assert_false(beat(a, "node-a", 60000).leading);
    assert_int_equal(fire(b, "node-b", lb.epoch, 1000), OPSC_EEXIST);
    assert_int_equal(fire(b, "node-b", lb.epoch, 2000), 0);

    json_t *v = NULL;
    assert_int_equal(store_cluster_view(a, 60000, &v), 0);
    assert_int_equal(json_array_size(json_object_get(v, "nodes")), 2);
    json_t *leader = json_object_get(v, "leader");
    assert_string_equal(json_string_value(json_object_get(leader, "node_id")), "node-b");
    assert_true(json_is_true(json_object_get(leader, "live")));
    json_decref(v);
    assert_int_equal(store_cluster_leave(b, "node-b"), 0);
    assert_int_equal(store_cluster_view(a, 60000, &v), 0);
    assert_int_equal(json_array_size(json_object_get(v, "nodes")), 1);
    assert_true(json_is_null(json_object_get(v, "leader")));
    json_decref(v);
    assert_true(beat(a, "node-a", 60000).leading); /* free again: taken at the next beat */
    store_close(b);
    store_close(a);
}

typedef struct rq_op {
    const char *run, *target, *node;
    bool exclusive, idempotent;
    int max;
    int64_t lease_ms;
    json_t *out;
    json_t *route, *labels; /* borrowed */
} rq_op;

static int rq_add_txn(store_txn *t, void *ud)
{
    rq_op *o = ud;
    json_t *ids = json_pack("[s]", o->target);
    int rc = store_runq_add(t, o->run, "job-1", ids, o->exclusive, o->idempotent, o->route);
    json_decref(ids);
    return rc;
}

static int rq_reap_txn(store_txn *t, void *ud)
{
    rq_op *o = ud;
    json_decref(o->out);
    o->out = NULL;
    return store_runq_reap(t, &o->out);
}

static int rq_requeue_txn(store_txn *t, void *ud)
{
    rq_op *o = ud;
    o->max = store_runq_requeue(t, o->run, 3);
    return o->max < 0 ? o->max : 0;
}

/* What a reaper's requeue of `run` answers: its attempts so far, or 0. */
static int rq_requeue(store *s, const char *run)
{
    rq_op o = {.run = run};
    assert_int_equal(store_write(s, rq_requeue_txn, &o), 0);
    return o.max;
}

static int rq_done_txn(store_txn *t, void *ud)
{
    return store_runq_done(t, ((rq_op *)ud)->run);
}

static void rq_add(store *s, const char *run, const char *target, bool exclusive)
{
    rq_op o = {.run = run, .target = target, .exclusive = exclusive};
    assert_int_equal(store_write(s, rq_add_txn, &o), 0);
}

/* How many runs `node` with `labels` claims (up to `max`); the first one's id in `first`. */
static size_t rq_claim_labelled(store *s, const char *node, json_t *labels, int max,
                                int64_t lease_ms, char *first)
{
    rq_op o = {.node = node, .max = max, .lease_ms = lease_ms, .labels = labels};
    assert_int_equal(store_runq_claim(s, node, o.labels, max, lease_ms, &o.out), 0);
    size_t n = json_array_size(o.out);
    if (first)
        snprintf(first, 40, "%s", n ? json_string_value(json_array_get(o.out, 0)) : "");
    json_decref(o.out);
    return n;
}

static size_t rq_claim(store *s, const char *node, int max, int64_t lease_ms, char *first)
{
    return rq_claim_labelled(s, node, NULL, max, lease_ms, first);
}

/* The run queue: a run is claimed once, oldest first; a run of a job
 * without concurrent runs waits while another holds its target, on
 * whichever node; a lapsed claim is reaped once, naming its node; a routed
 * run only by a node with its labels; the leader's sweep drops old fires
 * and long-dead nodes. */
static void the_run_queue_claims_once_and_reaps_lapsed_claims(void **state)
{
    store *a = open_ok(*state, 0, 0);
    char first[40];
    rq_add(a, "run-1", "t1", true);
    rq_add(a, "run-2", "t2", false);
    assert_int_equal(rq_claim(a, "node-a", 1, 60000, first), 1);
    assert_string_equal(first, "run-1");
    rq_add(a, "run-3", "t1", false); /* t1 is held by run-1, exclusive */
    assert_int_equal(rq_claim(a, "node-b", 5, 60000, first), 1);
    assert_string_equal(first, "run-2");
    assert_int_equal(rq_claim(a, "node-b", 5, 60000, NULL), 0);
    rq_op done = {.run = "run-1"};
    assert_int_equal(store_write(a, rq_done_txn, &done), 0);
    assert_int_equal(rq_claim(a, "node-b", 5, 1, first), 1); /* t1 free; a lease of 1 ms */
    assert_string_equal(first, "run-3");
    usleep(20000);
    assert_int_equal(store_runq_renew(a, "node-a", 60000), 0); /* not its claims */
    rq_op reap = {0};
    assert_int_equal(store_write(a, rq_reap_txn, &reap), 0);
    assert_int_equal(json_array_size(reap.out), 1);
    assert_string_equal(json_string_value(json_array_get(json_array_get(reap.out, 0), 0)),
                        "run-3");
    assert_string_equal(json_string_value(json_array_get(json_array_get(reap.out, 0), 1)),
                        "node-b");
    assert_int_equal(store_write(a, rq_reap_txn, &reap), 0);
    assert_int_equal(json_array_size(reap.out), 0); /* once */
    json_decref(reap.out);

    /* routed by labels: only a node whose labels contain the run's route claims it */
    json_t *eu = json_pack("{s:s}", "dc", "eu"), *us = json_pack("{s:s}", "dc", "us");
    json_t *eu3 = json_pack("{s:s, s:s}", "rack", "3", "dc", "eu");
    rq_op routed = {.run = "run-4", .target = "t4", .route = eu};
    assert_int_equal(store_write(a, rq_add_txn, &routed), 0);
    assert_int_equal(rq_claim(a, "node-c", 5, 60000, NULL), 0); /* no labels */
    assert_int_equal(rq_claim_labelled(a, "node-c", us, 5, 60000, NULL), 0);
    assert_int_equal(rq_claim_labelled(a, "node-c", eu3, 5, 60000, first), 1);
    assert_string_equal(first, "run-4");
    json_decref(eu);
    json_decref(us);
    json_decref(eu3);

    /* a reaped idempotent run is queued again, three claims in all; an ordinary one never */
    assert_int_equal(rq_requeue(a, "run-3"), 0);
    rq_op idem = {.run = "run-5", .target = "t5", .idempotent = true};
    assert_int_equal(store_write(a, rq_add_txn, &idem), 0);
    for (int attempt = 1; attempt <= 3; attempt++) {
        assert_int_equal(rq_claim(a, "node-d", 5, 60000, first), 1);
        assert_string_equal(first, "run-5");
        assert_int_equal(rq_requeue(a, "run-5"), attempt < 3 ? attempt : 0);
    }
    assert_int_equal(rq_claim(a, "node-d", 5, 60000, NULL), 0);

    beat(a, "node-a", 60000);
    assert_int_equal(fire(a, "node-a", beat(a, "node-a", 60000).epoch, 5000), 0);
    usleep(20000);
    assert_int_equal(store_cluster_sweep(a, 3600000, 3600000), 0); /* young: kept */
    assert_int_equal(fire(a, "node-a", beat(a, "node-a", 60000).epoch, 5000), OPSC_EEXIST);
    assert_int_equal(store_cluster_sweep(a, 10, 10), 0);
    assert_int_equal(fire(a, "node-a", beat(a, "node-a", 60000).epoch, 5000), 0);
    json_t *v = NULL;
    assert_int_equal(store_cluster_view(a, 60000, &v), 0);
    assert_int_equal(json_array_size(json_object_get(v, "nodes")), 1); /* beat since */
    json_decref(v);
    store_close(a);
}

static void a_wrong_password_is_refused_without_showing_it(void **state)
{
    char err[1024] = "";
    store_opts o = {.postgresql_url = pg_fixture_bad_url()};
    store *s = NULL;
    assert_int_equal(store_open(&s, *state, &o, err, sizeof(err)), OPSC_ECONNREFUSED);
    assert_non_null(strstr(err, "password authentication failed"));
    assert_non_null(strstr(err, "user=opsc dbname=postgres host=127.0.0.1"));
    assert_null(strstr(err, pg_fixture_password()));
}

static int put_keys(store_txn *t, void *ud)
{
    (void)ud;
    for (int i = 0; i < 300; i++) {
        char k[16];
        snprintf(k, sizeof(k), "%c/%03d", i < 150 ? 'a' : 'b', i % 150);
        int rc = store_kv_put(t, "run_logs", k, strlen(k), k, strlen(k));
        if (rc)
            return rc;
        json_t *rec = json_pack("{s:s}", "id", k);
        rc = store_create(t, "runs", rec);
        json_decref(rec);
        if (rc)
            return rc;
    }
    return 0;
}

typedef struct walk {
    char first[16], last[16];
    int n;
    const void *kept; /* a value from the first callback, read after the scan */
} walk;

static int count_kv(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    walk *w = ud;
    (void)val;
    if (!w->n++) {
        snprintf(w->first, sizeof(w->first), "%.*s", (int)klen, (const char *)key);
        w->kept = val;
        assert_int_equal(vlen, klen);
    }
    snprintf(w->last, sizeof(w->last), "%.*s", (int)klen, (const char *)key);
    return 0;
}

static int count_rec(const char *id, json_t *rec, void *ud)
{
    (void)rec;
    return count_kv(id, strlen(id), id, strlen(id), ud);
}

typedef struct scans {
    walk prefix_a, prefix_b1, reverse_from, forward_after;
} scans;

static int do_scans(store_txn *t, void *ud)
{
    scans *sc = ud;
    int rc = store_kv_scan(t, "run_logs", "a/", 2, count_kv, &sc->prefix_a);
    if (rc == 0)
        rc = store_kv_scan(t, "run_logs", "b/1", 3, count_kv, &sc->prefix_b1);
    if (rc == 0)
        rc = store_scan(t, "runs", "b/100", true, count_rec, &sc->reverse_from);
    if (rc == 0)
        rc = store_scan(t, "runs", "a/140", false, count_rec, &sc->forward_after);
    /* values stay valid until the transaction ends, as in LMDB's map */
    if (rc == 0)
        assert_memory_equal(sc->prefix_a.kept, "a/000", 5);
    return rc;
}

static void scans_cross_pages_in_key_order(void **state)
{
    store *s = open_ok(*state, 0, 0);
    assert_int_equal(store_write(s, put_keys, NULL), 0);
    scans sc = {0};
    assert_int_equal(store_read(s, do_scans, &sc), 0);
    assert_int_equal(sc.prefix_a.n, 150);
    assert_string_equal(sc.prefix_a.first, "a/000");
    assert_string_equal(sc.prefix_a.last, "a/149");
    assert_int_equal(sc.prefix_b1.n, 50); /* b/100 .. b/149 */
    assert_string_equal(sc.prefix_b1.first, "b/100");
    assert_int_equal(sc.reverse_from.n, 250); /* below b/100, descending */
    assert_string_equal(sc.reverse_from.first, "b/099");
    assert_string_equal(sc.reverse_from.last, "a/000");
    assert_int_equal(sc.forward_after.n, 159); /* a/141 .. b/149 */
    assert_string_equal(sc.forward_after.first, "a/141");
    assert_string_equal(sc.forward_after.last, "b/149");
    store_close(s);
}

static const struct CMUnitTest pg_tests[] = {
    TMP_TEST(a_serialization_failure_runs_the_write_again),
    TMP_TEST(run_writes_conflict_on_keys_not_pages_when_snapshot),
    TMP_TEST(the_lease_fences_and_fires_exist_once),
    TMP_TEST(the_run_queue_claims_once_and_reaps_lapsed_claims),
    TMP_TEST(a_wrong_password_is_refused_without_showing_it),
    TMP_TEST(scans_cross_pages_in_key_order),
};

/* The data tests that are not about LMDB's map. */
static int run_data_tests(void)
{
    struct CMUnitTest *v = calloc(store_data_test_count, sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; v && i < store_data_test_count; i++)
        if (strncmp(store_data_tests[i].name, "map_", 4) != 0 &&
            strncmp(store_data_tests[i].name, "stats_", 6) != 0)
            v[n++] = store_data_tests[i];
    int failed = v ? _cmocka_run_group_tests("store_data_on_postgresql", v, n, NULL, NULL) : 1;
    free(v);
    return failed;
}

int store_pg_main(void);
int store_pg_main(void)
{
    if (pg_fixture_start() < 0) {
        fprintf(stderr, "cannot start a PostgreSQL server (postgresql-15: scripts/deps)\n");
        return 1;
    }
    int failed = run_data_tests();
    failed += cmocka_run_group_tests_name("store_postgresql", pg_tests, NULL, NULL);
    pg_fixture_stop();
    return failed ? 1 : 0;
}
