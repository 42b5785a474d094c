/* test_store_data.c - store records, scans, raw keys, indexes, map growth and statistics. */
#include "test_store.h"

#include <pthread.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "util.h"

/* ---- records --------------------------------------------------------------- */

static int64_t fake_ms;
static int64_t fake_clock(void)
{
    return fake_ms;
}

typedef struct op {
    json_t *rec;
    const char *id;
    int64_t expect;
    int rc;
} op;

static int do_create(store_txn *t, void *ud)
{
    op *o = ud;
    o->rc = store_create(t, "targets", o->rec);
    return 0;
}

static int do_update(store_txn *t, void *ud)
{
    op *o = ud;
    o->rc = store_update(t, "targets", o->rec, o->expect);
    return 0;
}

static int do_delete(store_txn *t, void *ud)
{
    op *o = ud;
    o->rc = store_delete(t, "targets", o->id, o->expect);
    return 0;
}

static int do_get(store_txn *t, void *ud)
{
    op *o = ud;
    json_decref(o->rec);
    o->rec = NULL;
    o->rc = store_get(t, "targets", o->id, &o->rec);
    return 0;
}

static int run_op(store *s, store_txn_fn fn, op *o)
{
    assert_int_equal(store_write(s, fn, o), 0);
    return o->rc;
}

static void create_assigns_id_timestamps_and_version(void **state)
{
    store *s = open_ok(*state, 0, 0);
    fake_ms = 4102444800123; /* later than now: the id generator never goes back */
    clock_set_source(fake_clock);
    op o = {.rec = json_pack("{s:s}", "name", "web1")};
    assert_int_equal(run_op(s, do_create, &o), 0);
    const char *id = json_string_value(json_object_get(o.rec, "id"));
    assert_int_equal(uuid7_time_ms(id), fake_ms);
    assert_string_equal(json_string_value(json_object_get(o.rec, "created_at")),
                        "2100-01-01T00:00:00.123Z");
    assert_string_equal(json_string_value(json_object_get(o.rec, "updated_at")),
                        "2100-01-01T00:00:00.123Z");
    assert_int_equal(json_integer_value(json_object_get(o.rec, "version")), 1);
    op g = {.id = id};
    assert_int_equal(store_read(s, do_get, &g), 0);
    assert_int_equal(g.rc, 0);
    assert_true(json_equal(g.rec, o.rec));
    clock_set_source(NULL);
    json_decref(g.rec);
    json_decref(o.rec);
    store_close(s);
}

static void create_keeps_given_id_and_refuses_duplicate(void **state)
{
    store *s = open_ok(*state, 0, 0);
    op o = {.rec = json_pack("{s:s, s:s}", "id", "fixed-id", "name", "a")};
    assert_int_equal(run_op(s, do_create, &o), 0);
    json_decref(o.rec);
    o.rec = json_pack("{s:s, s:s}", "id", "fixed-id", "name", "b");
    assert_int_equal(run_op(s, do_create, &o), OPSC_EEXIST);
    assert_null(json_object_get(o.rec, "version")); /* untouched on failure */
    json_decref(o.rec);
    store_close(s);
}

static void create_rejects_bad_records(void **state)
{
    store *s = open_ok(*state, 0, 0);
    op o = {.rec = json_array()};
    assert_int_equal(run_op(s, do_create, &o), OPSC_EINVAL);
    json_decref(o.rec);
    o.rec = json_pack("{s:i}", "id", 7);
    assert_int_equal(run_op(s, do_create, &o), OPSC_EINVAL);
    json_decref(o.rec);
    o.rec = json_pack("{s:s}", "id", "0123456789012345678901234567890123456789");
    assert_int_equal(run_op(s, do_create, &o), OPSC_EINVAL);
    json_decref(o.rec);
    o.rec = json_object();
    assert_int_equal(store_read(s, do_create, &o), 0);
    assert_int_equal(o.rc, OPSC_EPERM); /* write inside a read transaction */
    json_decref(o.rec);
    store_close(s);
}

static void update_checks_version_and_keeps_created_at(void **state)
{
    store *s = open_ok(*state, 0, 0);
    clock_set_source(fake_clock);
    fake_ms = 1000;
    op o = {.rec = json_pack("{s:s}", "name", "a")};
    assert_int_equal(run_op(s, do_create, &o), 0);
    fake_ms = 2000;
    json_object_set_new(o.rec, "name", json_string("b"));
    json_object_set_new(o.rec, "created_at", json_string("forged"));
    o.expect = 1;
    assert_int_equal(run_op(s, do_update, &o), 0);
    assert_int_equal(json_integer_value(json_object_get(o.rec, "version")), 2);
    assert_string_equal(json_string_value(json_object_get(o.rec, "created_at")),
                        "1970-01-01T00:00:01.000Z");
    assert_string_equal(json_string_value(json_object_get(o.rec, "updated_at")),
                        "1970-01-01T00:00:02.000Z");
    assert_int_equal(run_op(s, do_update, &o), OPSC_ECONFLICT); /* still expects 1 */
    o.expect = 0;
    assert_int_equal(run_op(s, do_update, &o), 0);
    assert_int_equal(json_integer_value(json_object_get(o.rec, "version")), 3);
    op g = {.id = json_string_value(json_object_get(o.rec, "id"))};
    assert_int_equal(store_read(s, do_get, &g), 0);
    assert_string_equal(json_string_value(json_object_get(g.rec, "name")), "b");
    json_object_set_new(o.rec, "id", json_string("missing"));
    assert_int_equal(run_op(s, do_update, &o), OPSC_ENOENT);
    json_object_del(o.rec, "id");
    assert_int_equal(run_op(s, do_update, &o), OPSC_EINVAL);
    clock_set_source(NULL);
    json_decref(g.rec);
    json_decref(o.rec);
    store_close(s);
}

static void delete_checks_version_and_existence(void **state)
{
    store *s = open_ok(*state, 0, 0);
    op o = {.rec = json_pack("{s:s}", "name", "a")};
    assert_int_equal(run_op(s, do_create, &o), 0);
    op d = {.id = json_string_value(json_object_get(o.rec, "id")), .expect = 5};
    assert_int_equal(run_op(s, do_delete, &d), OPSC_ECONFLICT);
    d.expect = 1;
    assert_int_equal(run_op(s, do_delete, &d), 0);
    assert_int_equal(run_op(s, do_delete, &d), OPSC_ENOENT);
    d.expect = 0;
    assert_int_equal(run_op(s, do_delete, &d), OPSC_ENOENT);
    d.id = "";
    assert_int_equal(run_op(s, do_delete, &d), OPSC_EINVAL);
    op g = {.id = json_string_value(json_object_get(o.rec, "id"))};
    assert_int_equal(store_read(s, do_get, &g), 0);
    assert_int_equal(g.rc, OPSC_ENOENT);
    g.id = NULL;
    assert_int_equal(store_read(s, do_get, &g), 0);
    assert_int_equal(g.rc, OPSC_EINVAL);
    json_decref(o.rec);
    store_close(s);
}

static int create_then_fail(store_txn *t, void *ud)
{
    int rc = put_target(t, "doomed", 0);
    (void)ud;
    return rc ? rc : OPSC_ECANCELED;
}

static void failed_write_function_rolls_back(void **state)
{
    store *s = open_ok(*state, 0, 0);
    assert_int_equal(store_write(s, create_then_fail, NULL), OPSC_ECANCELED);
    assert_int_equal(check_targets(s), 0);
    assert_int_equal(store_write(s, NULL, NULL), OPSC_EINVAL);
    assert_int_equal(store_read(NULL, txn_fail_eio, NULL), OPSC_EINVAL);
    assert_int_equal(store_read(s, txn_fail_eio, NULL), OPSC_EIO);
    store_close(s);
}

static int put_raw(store_txn *t, void *ud)
{
    const char *text = ud;
    return store_kv_put(t, "targets", "bad-record", 10, text, strlen(text));
}

static int scan_count(const char *id, json_t *rec, void *ud)
{
    (void)id;
    (void)rec;
    ++*(int *)ud;
    return 0;
}

static int scan_targets(store_txn *t, void *ud)
{
    return store_scan(t, "targets", NULL, false, scan_count, ud);
}

static void corrupt_record_is_reported(void **state)
{
    store *s = open_ok(*state, 0, 0);
    const char *bad[] = {"{not json", "[1,2]"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(store_write(s, put_raw, (void *)bad[i]), 0);
        op g = {.id = "bad-record"};
        assert_int_equal(store_read(s, do_get, &g), 0);
        assert_int_equal(g.rc, OPSC_ECORRUPT);
        int n = 0;
        assert_int_equal(store_read(s, scan_targets, &n), OPSC_ECORRUPT);
    }
    store_close(s);
}

/* ---- scans ------------------------------------------------------------------ */

typedef struct scan_req {
    const char *db;
    const char *cursor;
    bool reverse;
    int stop_after, fail_at;
    char ids[16][40];
    int n, rc;
} scan_req;

static int collect(const char *id, json_t *rec, void *ud)
{
    scan_req *r = ud;
    (void)rec;
    if (r->fail_at && r->n == r->fail_at)
        return OPSC_ECANCELED;
    snprintf(r->ids[r->n++], sizeof(r->ids[0]), "%s", id);
    return r->stop_after && r->n == r->stop_after ? 1 : 0;
}

static int do_scan(store_txn *t, void *ud)
{
    scan_req *r = ud;
    r->n = 0;
    r->rc = store_scan(t, r->db ? r->db : "targets", r->cursor, r->reverse, collect, r);
    return 0;
}

/* Scan and compare with ids[first], ids[first + step]... (`count` of them). */
static void expect_scan(store *s, scan_req *r, char ids[][40], int first, int step, int count)
{
    assert_int_equal(store_read(s, do_scan, r), 0);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->n, count);
    for (int i = 0; i < count; i++)
        assert_string_equal(r->ids[i], ids[first + i * step]);
}

static void scan_pages_forward_and_backward(void **state)
{
    store *s = open_ok(*state, 0, 0);
    char ids[10][40];
    for (int i = 0; i < 10; i++) {
        op o = {.rec = json_pack("{s:i}", "n", i)};
        assert_int_equal(run_op(s, do_create, &o), 0);
        snprintf(ids[i], sizeof(ids[i]), "%s", json_string_value(json_object_get(o.rec, "id")));
        json_decref(o.rec);
    }
    expect_scan(s, &(scan_req){0}, ids, 0, 1, 10);
    expect_scan(s, &(scan_req){.cursor = ""}, ids, 0, 1, 10);
    expect_scan(s, &(scan_req){.cursor = ids[3]}, ids, 4, 1, 6);
    expect_scan(s, &(scan_req){.stop_after = 3}, ids, 0, 1, 3);
    expect_scan(s, &(scan_req){.reverse = true}, ids, 9, -1, 10);
    expect_scan(s, &(scan_req){.cursor = ids[5], .reverse = true}, ids, 4, -1, 5);
    expect_scan(s, &(scan_req){.cursor = ids[0], .reverse = true}, ids, 0, 1, 0);
    expect_scan(s, &(scan_req){.cursor = "zzzz"}, ids, 0, 1, 0);
    expect_scan(s, &(scan_req){.cursor = "zzzz", .reverse = true}, ids, 9, -1, 10);
    expect_scan(s, &(scan_req){.cursor = "0"}, ids, 0, 1, 10);
    expect_scan(s, &(scan_req){.cursor = "0", .reverse = true}, ids, 0, 1, 0);
    expect_scan(s, &(scan_req){.db = "groups"}, ids, 0, 1, 0);
    scan_req r = {.fail_at = 2};
    assert_int_equal(store_read(s, do_scan, &r), 0);
    assert_int_equal(r.rc, OPSC_ECANCELED);
    r = (scan_req){.db = "nope"};
    assert_int_equal(store_read(s, do_scan, &r), 0);
    assert_int_equal(r.rc, OPSC_EINVAL);
    r = (scan_req){.cursor = "0123456789012345678901234567890123456789"};
    assert_int_equal(store_read(s, do_scan, &r), 0);
    assert_int_equal(r.rc, OPSC_EINVAL);
    store_close(s);
}

/* ---- raw keys --------------------------------------------------------------- */

typedef struct kv_seen {
    char text[256];
    int stop_after, n;
    int fail;
} kv_seen;

static int kv_collect(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    kv_seen *k = ud;
    if (k->fail)
        return k->fail;
    size_t used = strlen(k->text);
    snprintf(k->text + used, sizeof(k->text) - used, "%.*s=%.*s;", (int)klen, (const char *)key,
             (int)vlen, (const char *)val);
    return ++k->n == k->stop_after ? 1 : 0;
}

static const char *kv_scan_text(store_txn *t, const char *prefix, kv_seen *k)
{
    assert_int_equal(
        store_kv_scan(t, "run_logs", prefix, prefix ? strlen(prefix) : 0, kv_collect, k), 0);
    return k->text;
}

static int kv_write_checks(store_txn *t, void *ud)
{
    (void)ud;
    const char *keys[] = {"a/1", "a/2", "b/1", "a"}, *vals[] = {"one", "two", "three", "root"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(
            store_kv_put(t, "run_logs", keys[i], strlen(keys[i]), vals[i], strlen(vals[i])), 0);
    const void *v;
    size_t n;
    assert_int_equal(store_kv_get(t, "run_logs", "a/2", 3, &v, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(v, "two", 3);
    assert_int_equal(store_kv_get(t, "run_logs", "zz", 2, &v, &n), OPSC_ENOENT);
    assert_string_equal(kv_scan_text(t, "a/", &(kv_seen){0}), "a/1=one;a/2=two;");
    assert_string_equal(kv_scan_text(t, NULL, &(kv_seen){0}), "a=root;a/1=one;a/2=two;b/1=three;");
    assert_string_equal(kv_scan_text(t, "c", &(kv_seen){0}), "");
    assert_string_equal(kv_scan_text(t, "a", &(kv_seen){.stop_after = 2}), "a=root;a/1=one;");
    kv_seen failing = {.fail = OPSC_ECANCELED};
    assert_int_equal(store_kv_scan(t, "run_logs", "a", 1, kv_collect, &failing), OPSC_ECANCELED);
    assert_int_equal(store_kv_del(t, "run_logs", "a/1", 3), 0);
    assert_int_equal(store_kv_del(t, "run_logs", "a/1", 3), OPSC_ENOENT);
    assert_int_equal(store_kv_put(t, "run_logs", "empty", 5, NULL, 0), 0);
    assert_int_equal(store_kv_get(t, "run_logs", "empty", 5, &v, &n), 0);
    assert_int_equal(n, 0);
    return 0;
}

static int kv_limit_checks(store_txn *t, void *ud)
{
    (void)ud;
    char big[512];
    const void *v;
    size_t n;
    memset(big, 'k', sizeof(big));
    assert_int_equal(store_kv_put(t, "run_logs", big, 511, "v", 1), 0); /* LMDB's limit */
    assert_int_equal(store_kv_put(t, "run_logs", big, 512, "v", 1), OPSC_EINVAL);
    assert_int_equal(store_kv_put(t, "run_logs", big, 0, "v", 1), OPSC_EINVAL);
    assert_int_equal(store_kv_get(t, "run_logs", big, 0, &v, &n), OPSC_EINVAL);
    assert_int_equal(store_kv_del(t, "run_logs", NULL, 1), OPSC_EINVAL);
    assert_int_equal(store_kv_put(t, "run_logs", "k", 1, NULL, 3), OPSC_EINVAL);
    assert_int_equal(store_kv_put(t, "no_such_db", "k", 1, "v", 1), OPSC_EINVAL);
    assert_int_equal(store_kv_scan(t, "run_logs", NULL, 0, NULL, NULL), OPSC_EINVAL);
    return 0;
}

static int kv_read_only_checks(store_txn *t, void *ud)
{
    (void)ud;
    assert_int_equal(store_kv_put(t, "run_logs", "k", 1, "v", 1), OPSC_EPERM);
    assert_int_equal(store_kv_del(t, "run_logs", "a/2", 3), OPSC_EPERM);
    const void *v;
    size_t n;
    assert_int_equal(store_kv_get(t, "run_logs", "a/2", 3, &v, &n), 0);
    return 0;
}

static void kv_put_get_del_and_prefix_scan(void **state)
{
    store *s = open_ok(*state, 0, 0);
    assert_int_equal(store_write(s, kv_write_checks, NULL), 0);
    assert_int_equal(store_write(s, kv_limit_checks, NULL), 0);
    assert_int_equal(store_read(s, kv_read_only_checks, NULL), 0);
    store_close(s);
}

/* ---- indexes ---------------------------------------------------------------- */

static int index_checks(store_txn *t, void *ud)
{
    (void)ud;
    char id[40];
    assert_int_equal(store_index_put(t, "users_by_name", "alice", "id-1"), 0);
    assert_int_equal(store_index_put(t, "users_by_name", "alice", "id-1"), 0); /* idempotent */
    assert_int_equal(store_index_put(t, "users_by_name", "alice", "id-2"), OPSC_EEXIST);
    assert_int_equal(store_index_get(t, "users_by_name", "alice", id), 0);
    assert_string_equal(id, "id-1");
    assert_int_equal(store_index_get(t, "users_by_name", "bob", id), OPSC_ENOENT);
    assert_int_equal(store_index_del(t, "users_by_name", "alice"), 0);
    assert_int_equal(store_index_del(t, "users_by_name", "alice"), OPSC_ENOENT);
    assert_int_equal(store_index_get(t, "users_by_name", "alice", id), OPSC_ENOENT);
    assert_int_equal(
        store_index_put(t, "users_by_name", "carol", "0123456789012345678901234567890123456789"),
        OPSC_EINVAL);
    assert_int_equal(store_index_put(t, "users_by_name", NULL, "id"), OPSC_EINVAL);
    assert_int_equal(store_index_get(t, "users_by_name", NULL, id), OPSC_EINVAL);
    assert_int_equal(store_index_del(t, "users_by_name", NULL), OPSC_EINVAL);
    char longval[45];
    memset(longval, 'v', sizeof(longval));
    assert_int_equal(store_kv_put(t, "users_by_name", "dave", 4, longval, sizeof(longval)), 0);
    assert_int_equal(store_index_get(t, "users_by_name", "dave", id), OPSC_ECORRUPT);
    return 0;
}

static void index_maps_unique_keys_to_ids(void **state)
{
    store *s = open_ok(*state, 0, 0);
    assert_int_equal(store_write(s, index_checks, NULL), 0);
    store_close(s);
}

/* ---- map growth and statistics ----------------------------------------------- */

static void map_grows_from_1mib_on_demand(void **state)
{
    store *s = open_ok(*state, 1 * MIB, 256 * MIB);
    for (int i = 0; i < 100; i++) /* one record per transaction */
        assert_int_equal(put_targets(s, "one", i, 1, 6000), 0);
    for (int i = 0; i < 10; i++) /* and large transactions */
        assert_int_equal(put_targets(s, "batch", i * 300, 300, 1500), 0);
    assert_int_equal(check_targets(s), 3100);
    store_stats st;
    assert_int_equal(store_stats_get(s, &st), 0);
    assert_true(st.map_size >= 8 * MIB);
    assert_true(st.used_bytes <= st.map_size);
    store_close(s);
    s = open_ok(*state, 1 * MIB, 256 * MIB); /* a grown store reopens with a small setting */
    assert_int_equal(check_targets(s), 3100);
    assert_int_equal(put_targets(s, "after", 0, 300, 1500), 0);
    store_close(s);
}

static void map_growth_stops_at_max_with_enospc(void **state)
{
    store *s = open_ok(*state, 1 * MIB, 2 * MIB);
    int rc = 0, batches = 0;
    while (rc == 0 && batches < 100) {
        rc = put_targets(s, "fill", batches * 100, 100, 1000);
        batches += rc == 0;
    }
    assert_int_equal(rc, OPSC_ENOSPC);
    assert_true(batches > 0);
    assert_int_equal(check_targets(s), batches * 100); /* the failed batch left nothing */
    store_stats st;
    assert_int_equal(store_stats_get(s, &st), 0);
    assert_int_equal(st.map_size, 2 * MIB);
    store_close(s);
}

static void stats_report_map_use_and_schema(void **state)
{
    store *s = open_ok(*state, 0, 0);
    store_stats a, b;
    assert_int_equal(store_stats_get(s, &a), 0);
    assert_int_equal(a.map_size, 64 * MIB);
    assert_int_equal(a.schema_version, 1);
    assert_true(a.used_bytes > 0 && a.file_bytes > 0);
    assert_int_equal(put_targets(s, "s", 0, 1000, 100), 0);
    assert_int_equal(store_stats_get(s, &b), 0);
    assert_true(b.used_bytes > a.used_bytes + 100 * 1000);
    assert_true(b.file_bytes >= b.used_bytes);
    assert_int_equal(store_stats_get(NULL, &b), OPSC_EINVAL);
    store_close(s);
}

typedef struct reader {
    store *s;
    atomic_bool *stop;
    long reads;
    int rc;
} reader;

static void *reader_main(void *p)
{
    reader *r = p;
    while (!atomic_load(r->stop) && r->rc == 0) {
        r->rc = check_targets(r->s) < 0 ? OPSC_EIO : 0;
        r->reads++;
        /* Readers come and go: a resize has gaps to take, as with real readers. Without them,
         * under valgrind's one-thread-at-a-time scheduling, the writer waited minutes. */
        usleep(500);
    }
    return NULL;
}

/* Readers on worker threads while the loop thread's writes grow the map:
 * the resize must wait for them, and they must never see a torn map. */
static void map_grows_while_threads_read(void **state)
{
    store *s = open_ok(*state, 1 * MIB, 256 * MIB);
    assert_int_equal(put_targets(s, "seed", 0, 10, 100), 0);
    atomic_bool stop = false;
    reader r[2] = {{s, &stop, 0, 0}, {s, &stop, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &r[i]), 0);
    for (int i = 0; i < 30; i++)
        assert_int_equal(put_targets(s, "grow", i * 100, 100, 1000), 0);
    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].rc, 0);
        assert_true(r[i].reads > 0);
    }
    store_stats st;
    assert_int_equal(store_stats_get(s, &st), 0);
    assert_true(st.map_size >= 4 * MIB);
    assert_int_equal(check_targets(s), 3010);
    store_close(s);
}

const struct CMUnitTest store_data_tests[] = {
    TMP_TEST(create_assigns_id_timestamps_and_version),
    TMP_TEST(create_keeps_given_id_and_refuses_duplicate),
    TMP_TEST(create_rejects_bad_records),
    TMP_TEST(update_checks_version_and_keeps_created_at),
    TMP_TEST(delete_checks_version_and_existence),
    TMP_TEST(failed_write_function_rolls_back),
    TMP_TEST(corrupt_record_is_reported),
    TMP_TEST(scan_pages_forward_and_backward),
    TMP_TEST(kv_put_get_del_and_prefix_scan),
    TMP_TEST(index_maps_unique_keys_to_ids),
    TMP_TEST(map_grows_from_1mib_on_demand),
    TMP_TEST(map_growth_stops_at_max_with_enospc),
    TMP_TEST(stats_report_map_use_and_schema),
    TMP_TEST(map_grows_while_threads_read),
};
const size_t store_data_test_count = sizeof(store_data_tests) / sizeof(store_data_tests[0]);
