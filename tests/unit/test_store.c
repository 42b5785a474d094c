/* test_store.c - the LMDB store in one process: open, migrations, records, kv, indexes, growth. */
#include "test_store.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "log.h"
#include "store_internal.h"
#include "util.h"
#ifdef OPSC_TEST_STORE_PG
#include "pg_fixture.h"
#endif

/* ---- fixtures ------------------------------------------------------------ */

int tmp_setup(void **state)
{
    char *base = strdup("/tmp/opsc-store-XXXXXX");
    if (!base || !mkdtemp(base))
        return -1;
    chmod(base, 0711); /* the permission test's unprivileged child must reach inside */
    *state = base;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        chmod(path, 0700); /* a test may have left it 000 */
    return remove(path) < 0 ? 0 : 0;
}

void rm_rf(const char *path)
{
    chmod(path, 0700);
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int tmp_teardown(void **state)
{
    rm_rf(*state);
    free(*state);
    return 0;
}

void join(char *buf, size_t n, const char *dir, const char *name)
{
    assert_int_equal(fs_join(buf, n, dir, name), 0);
}

store *open_ok(const char *dir, int64_t map, int64_t max)
{
    store *s = NULL;
    char err[256] = "";
    store_opts o = {.map_size = map, .max_map_size = max};
#ifdef OPSC_TEST_STORE_PG /* test_store_pg: the same tests on PostgreSQL */
    o.postgresql_url = pg_fixture_url_for(dir);
    assert_non_null(o.postgresql_url);
#endif
    int rc = store_open(&s, dir, &o, err, sizeof(err));
    if (rc)
        fprintf(stderr, "store_open(%s): %s (%s)\n", dir, opsc_err_name(rc), err);
    assert_int_equal(rc, 0);
    assert_non_null(s);
    return s;
}

static mode_t mode_of(const char *dir, const char *name)
{
    char p[PATH_MAX];
    struct stat st;
    join(p, sizeof(p), dir, name);
    assert_int_equal(stat(p, &st), 0);
    return st.st_mode & 07777;
}

/* ---- shared writers and checkers ---------------------------------------- */

int put_target(store_txn *t, const char *name, size_t pad)
{
    json_t *rec = json_pack("{s:s, s:s, s:i}", "name", name, "address", "192.0.2.1", "port", 22);
    if (!rec)
        return OPSC_ENOMEM;
    if (pad) {
        char *p = malloc(pad + 1);
        memset(p, 'x', pad);
        p[pad] = '\0';
        json_object_set_new(rec, "pad", json_string(p));
        free(p);
    }
    int rc = store_create(t, "targets", rec);
    if (rc == 0)
        rc = store_index_put(t, "targets_by_name", name,
                             json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    return rc;
}

typedef struct batch {
    const char *prefix;
    int first, count;
    size_t pad;
} batch;

static int put_batch(store_txn *t, void *ud)
{
    const batch *b = ud;
    for (int i = 0; i < b->count; i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s-%d", b->prefix, b->first + i);
        int rc = put_target(t, name, b->pad);
        if (rc)
            return rc;
    }
    return 0;
}

int put_targets(store *s, const char *prefix, int first, int count, size_t pad)
{
    batch b = {prefix, first, count, pad};
    return store_write(s, put_batch, &b);
}

typedef struct check_ctx {
    store_txn *t;
    long records, indexed;
    int bad;
} check_ctx;

static int check_record(const char *id, json_t *rec, void *ud)
{
    check_ctx *c = ud;
    char idx[40];
    int64_t ms;
    const char *rid = json_string_value(json_object_get(rec, "id"));
    const char *name = json_string_value(json_object_get(rec, "name"));
    const char *created = json_string_value(json_object_get(rec, "created_at"));
    if (!rid || strcmp(rid, id) != 0 || !name || !created || rfc3339_parse(created, &ms) != 0 ||
        json_integer_value(json_object_get(rec, "version")) < 1 ||
        store_index_get(c->t, "targets_by_name", name, idx) != 0 || strcmp(idx, id) != 0) {
        char *text = json_dumps(rec, JSON_COMPACT);
        fprintf(stderr, "inconsistent record %s: %s\n", id, text);
        free(text);
        c->bad++;
    }
    c->records++;
    return 0;
}

static int check_index(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    check_ctx *c = ud;
    char id[64];
    json_t *rec = NULL;
    snprintf(id, sizeof(id), "%.*s", (int)vlen, (const char *)val);
    const char *name = NULL;
    if (store_get(c->t, "targets", id, &rec) == 0)
        name = json_string_value(json_object_get(rec, "name"));
    if (!name || strlen(name) != klen || memcmp(name, key, klen) != 0) {
        fprintf(stderr, "index entry %.*s -> %s has no matching record\n", (int)klen,
                (const char *)key, id);
        c->bad++;
    }
    json_decref(rec);
    c->indexed++;
    return 0;
}

static int check_txn(store_txn *t, void *ud)
{
    check_ctx *c = ud;
    c->t = t;
    int rc = store_scan(t, "targets", NULL, false, check_record, c);
    if (rc == 0)
        rc = store_kv_scan(t, "targets_by_name", NULL, 0, check_index, c);
    return rc;
}

long check_targets(store *s)
{
    check_ctx c = {0};
    int rc = store_read(s, check_txn, &c);
    if (rc) {
        fprintf(stderr, "check_targets: %s\n", opsc_err_name(rc));
        return rc;
    }
    if (c.bad || c.records != c.indexed) {
        fprintf(stderr, "check_targets: %d bad, %ld records, %ld index entries\n", c.bad, c.records,
                c.indexed);
        return -1;
    }
    return c.records;
}

/* ---- open, files, options ------------------------------------------------ */

static void open_creates_dir_0700_and_files_0600(void **state)
{
    char dir[PATH_MAX], lockp[PATH_MAX];
    join(dir, sizeof(dir), *state, "a/b/data");
    mode_t old = umask(0); /* LMDB and we must not depend on the umask */
    store *s = open_ok(dir, 0, 0);
    umask(old);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(mode_of(dir, "data.mdb"), 0600);
    assert_int_equal(mode_of(dir, "lock.mdb"), 0600);
    assert_int_equal(mode_of(dir, "lock"), 0600);
    char *pid;
    join(lockp, sizeof(lockp), dir, "lock");
    assert_int_equal(fs_read_file(lockp, 64, &pid, NULL), 0);
    assert_int_equal(atol(pid), getpid());
    free(pid);
    store_close(s);
}

static void open_narrows_widened_file_modes(void **state)
{
    store_close(open_ok(*state, 0, 0));
    char p[PATH_MAX];
    join(p, sizeof(p), *state, "data.mdb");
    assert_int_equal(chmod(p, 0644), 0);
    store_close(open_ok(*state, 0, 0));
    assert_int_equal(mode_of(*state, "data.mdb"), 0600);
}

static void open_rejects_bad_arguments(void **state)
{
    store *s = (store *)1;
    char err[256];
    store_opts big = {.map_size = 8 * MIB, .max_map_size = 4 * MIB};
    assert_int_equal(store_open(&s, NULL, NULL, err, sizeof(err)), OPSC_EINVAL);
    assert_null(s);
    assert_int_equal(store_open(&s, "", NULL, err, sizeof(err)), OPSC_EINVAL);
    assert_int_equal(store_open(&s, *state, &big, err, sizeof(err)), OPSC_EINVAL);
    assert_non_null(strstr(err, "max_map_size"));
    assert_int_equal(store_open(NULL, *state, NULL, NULL, 0), OPSC_EINVAL);
    char file[PATH_MAX];
    join(file, sizeof(file), *state, "file");
    assert_int_equal(fs_write_file(file, "x", 1, 0600), 0);
    assert_int_not_equal(store_open(&s, file, NULL, err, sizeof(err)), 0);
    assert_non_null(strstr(err, file));
}

static void second_open_in_one_process_is_busy(void **state)
{
    store *s = open_ok(*state, 0, 0), *t = NULL;
    char err[256];
    assert_int_equal(store_open(&t, *state, NULL, err, sizeof(err)), OPSC_EBUSY);
    assert_null(t);
    char pid[32];
    snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
    assert_non_null(strstr(err, pid));
    store_close(s);
    store_close(open_ok(*state, 0, 0)); /* closing released the lock */
}

static void garbage_data_file_is_corrupt(void **state)
{
    char p[PATH_MAX], err[256];
    char junk[16384];
    memset(junk, 'j', sizeof(junk));
    join(p, sizeof(p), *state, "data.mdb");
    assert_int_equal(fs_write_file(p, junk, sizeof(junk), 0600), 0);
    store *s;
    assert_int_equal(store_open(&s, *state, NULL, err, sizeof(err)), OPSC_ECORRUPT);
    assert_non_null(strstr(err, *state));
}

static void read_only_open_of_missing_store_fails(void **state)
{
    char dir[PATH_MAX], err[256];
    join(dir, sizeof(dir), *state, "nothing");
    store *s;
    store_opts ro = {.read_only = true};
    assert_int_equal(store_open(&s, dir, &ro, err, sizeof(err)), OPSC_ENOENT);
    assert_non_null(strstr(err, dir));
    assert_int_equal(access(dir, F_OK), -1); /* and created nothing */
}

int txn_fail_eio(store_txn *t, void *ud)
{
    (void)t;
    (void)ud;
    return OPSC_EIO;
}

static void read_only_store_reads_and_refuses_writes(void **state)
{
    store *s = open_ok(*state, 0, 0);
    assert_int_equal(put_targets(s, "ro", 0, 3, 0), 0);
    store_close(s);
    char lockp[PATH_MAX];
    join(lockp, sizeof(lockp), *state, "lock");
    unlink(lockp);
    store_opts ro = {.read_only = true};
    char err[256];
    assert_int_equal(store_open(&s, *state, &ro, err, sizeof(err)), 0);
    assert_int_equal(access(lockp, F_OK), -1); /* no lock taken */
    assert_int_equal(check_targets(s), 3);
    assert_int_equal(store_write(s, txn_fail_eio, NULL), OPSC_EPERM);
    store_close(s);
}

/* ---- migrations ------------------------------------------------------------ */

static int count_runs(store_txn *t)
{
    const void *v;
    size_t n;
    char buf[16];
    int runs = 0;
    if (store_kv_get(t, "meta", "test.runs", 9, &v, &n) == 0) {
        snprintf(buf, sizeof(buf), "%.*s", (int)n, (const char *)v);
        runs = atoi(buf);
    }
    int len = snprintf(buf, sizeof(buf), "%d", runs + 1);
    return store_kv_put(t, "meta", "test.runs", 9, buf, (size_t)len);
}

static int leave_mark_then_fail(store_txn *t)
{
    int rc = store_kv_put(t, "meta", "test.mark", 9, "x", 1);
    return rc ? rc : OPSC_EIO;
}

static const store_migration migs_ok[] = {
    {1, "first", count_runs},
    {2, "second", count_runs},
};
static const store_migration migs_bad[] = {
    {1, "first", count_runs},
    {2, "breaks", leave_mark_then_fail},
};
static const store_migration migs_unordered[] = {
    {2, "two", count_runs},
    {1, "one", count_runs},
};

static store *open_migs(const char *dir, const store_migration *m, size_t n, int expect, char *err)
{
    store *s = NULL;
    assert_int_equal(store_open_with(&s, dir, NULL, m, n, err, 256), expect);
    return s;
}

typedef struct meta_peek {
    const char *key;
    char val[256];
    int rc;
} meta_peek;

static int peek_meta(store_txn *t, void *ud)
{
    meta_peek *p = ud;
    const void *v;
    size_t n;
    p->rc = store_kv_get(t, "meta", p->key, strlen(p->key), &v, &n);
    if (p->rc == 0)
        snprintf(p->val, sizeof(p->val), "%.*s", (int)n, (const char *)v);
    return 0;
}

static meta_peek meta_get(store *s, const char *key)
{
    meta_peek p = {.key = key};
    assert_int_equal(store_read(s, peek_meta, &p), 0);
    return p;
}

static int schema_of(store *s)
{
    store_stats st;
    assert_int_equal(store_stats_get(s, &st), 0);
    return st.schema_version;
}

static void migrations_run_once_in_order(void **state)
{
    char err[256];
    store *s = open_migs(*state, migs_ok, 1, 0, err);
    assert_int_equal(schema_of(s), 1);
    store_close(s);
    s = open_migs(*state, migs_ok, 2, 0, err); /* only version 2 is pending */
    assert_int_equal(schema_of(s), 2);
    assert_string_equal(meta_get(s, "test.runs").val, "2");
    assert_string_equal(meta_get(s, "schema_version").val, "2");
    assert_non_null(strstr(meta_get(s, "migration.0002").val, "\"second\""));
    store_close(s);
    s = open_migs(*state, migs_ok, 2, 0, err); /* nothing pending */
    assert_string_equal(meta_get(s, "test.runs").val, "2");
    store_close(s);
}

static void failing_migration_leaves_store_unchanged(void **state)
{
    char err[256];
    store_close(open_migs(*state, migs_ok, 1, 0, err));
    open_migs(*state, migs_bad, 2, OPSC_EIO, err);
    assert_non_null(strstr(err, "migration 2 (breaks) failed"));
    store *s = open_migs(*state, migs_ok, 1, 0, err);
    assert_int_equal(schema_of(s), 1);
    assert_int_equal(meta_get(s, "test.mark").rc, OPSC_ENOENT);
    store_close(s);
}

static void newer_schema_is_refused(void **state)
{
    char err[256];
    store_close(open_migs(*state, migs_ok, 2, 0, err));
    store *s;
    assert_int_equal(store_open(&s, *state, NULL, err, sizeof(err)), OPSC_ENOTSUP);
    assert_non_null(strstr(err, "schema version 2, newer than this opsconductord knows (1)"));
    store_opts ro = {.read_only = true};
    assert_int_equal(store_open(&s, *state, &ro, err, sizeof(err)), OPSC_ENOTSUP);
}

static void unordered_migration_list_is_rejected(void **state)
{
    char err[256];
    open_migs(*state, migs_unordered, 2, OPSC_EINVAL, err);
    assert_non_null(strstr(err, "out of order"));
}

static void new_store_gets_identity_from_migration_1(void **state)
{
    store *s = open_ok(*state, 0, 0);
    assert_int_equal(schema_of(s), store_migrations[store_migration_count - 1].version);
    assert_true(uuid7_time_ms(meta_get(s, "store_id").val) > 0);
    int64_t ms;
    assert_int_equal(rfc3339_parse(meta_get(s, "created_at").val, &ms), 0);
    store_close(s);
}

static const struct CMUnitTest open_tests[] = {
    TMP_TEST(open_creates_dir_0700_and_files_0600),
    TMP_TEST(open_narrows_widened_file_modes),
    TMP_TEST(open_rejects_bad_arguments),
    TMP_TEST(second_open_in_one_process_is_busy),
    TMP_TEST(garbage_data_file_is_corrupt),
    TMP_TEST(read_only_open_of_missing_store_fails),
    TMP_TEST(read_only_store_reads_and_refuses_writes),
    TMP_TEST(migrations_run_once_in_order),
    TMP_TEST(failing_migration_leaves_store_unchanged),
    TMP_TEST(newer_schema_is_refused),
    TMP_TEST(unordered_migration_list_is_rejected),
    TMP_TEST(new_store_gets_identity_from_migration_1),
};

#ifndef OPSC_TEST_STORE_PG
int main(void)
{
    int failed = cmocka_run_group_tests_name("store_open", open_tests, NULL, NULL);
    failed +=
        _cmocka_run_group_tests("store_data", store_data_tests, store_data_test_count, NULL, NULL);
    failed += _cmocka_run_group_tests("store_processes", store_proc_tests, store_proc_test_count,
                                      NULL, NULL);
    return failed ? 1 : 0;
}
#else
int store_pg_main(void);
int main(void)
{
    (void)open_tests; /* about LMDB's files and lock: not run on PostgreSQL */
    return store_pg_main();
}
#endif
