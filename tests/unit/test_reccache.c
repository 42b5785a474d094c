/* test_reccache.c - parsed records are reused only while their stored bytes are unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "reccache.h"
#include "store.h"
#include "util.h"

static char dir[] = "/tmp/opsc-test-reccache-XXXXXX";

struct get {
    reccache *c;
    const char *id;
    json_t *rec;
    int rc;
    const char *raw;
    size_t len;
};

static int get_txn(store_txn *txn, void *ud)
{
    struct get *g = ud;
    g->rc = reccache_get(g->c, txn, "users", g->id, &g->rec);
    return 0;
}

static int get_raw_txn(store_txn *txn, void *ud)
{
    struct get *g = ud;
    g->rc = reccache_get_raw(g->c, txn, "users", g->id, &g->rec, &g->raw, &g->len);
    return 0;
}

static int put_txn(store_txn *txn, void *ud)
{
    json_t *rec = ud;
    json_t *old = NULL;
    int rc = store_get(txn, "users", json_string_value(json_object_get(rec, "id")), &old);
    json_decref(old);
    return rc == 0 ? store_update(txn, "users", rec, 0) : store_create(txn, "users", rec);
}

/* A store in a new directory (each test's own). */
static store *open_store(void)
{
    store *s = NULL;
    char err[256];
    strcpy(dir, "/tmp/opsc-test-reccache-XXXXXX"); /* an earlier test's mkdtemp filled it in */
    assert_non_null(mkdtemp(dir));
    assert_int_equal(store_open(&s, dir, NULL, err, sizeof(err)), 0);
    return s;
}

static void finish(store *s, reccache *c, json_t *rec)
{
    json_decref(rec);
    reccache_free(c);
    store_close(s);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void records_are_reparsed_exactly_when_their_bytes_change(void **state)
{
    (void)state;
    store *s = open_store();
    reccache *c;
    assert_int_equal(reccache_new(&c, 4), 0);
    json_t *rec = json_pack("{s:s, s:s, s:b}", "id", "0190a6e4-7a2b-7c3d-8e4f-001122334455", "role",
                            "operator", "enabled", 1);
    assert_int_equal(store_write(s, put_txn, rec), 0);
    struct get g = {c, "0190a6e4-7a2b-7c3d-8e4f-001122334455", NULL, -1};
    assert_int_equal(store_read(s, get_txn, &g), 0);
    assert_int_equal(g.rc, 0);
    json_t *first = g.rec;
    assert_string_equal(json_string_value(json_object_get(first, "role")), "operator");
    assert_int_equal(store_read(s, get_txn, &g), 0);
    assert_ptr_equal(g.rec, first); /* same bytes: the same parsed record */
    json_object_set_new(rec, "role", json_string("viewer"));
    assert_int_equal(store_write(s, put_txn, rec), 0);
    assert_int_equal(store_read(s, get_txn, &g), 0);
    assert_string_equal(json_string_value(json_object_get(g.rec, "role")), "viewer");
    g.id = "0190a6e4-7a2b-7c3d-8e4f-00112233445f";
    assert_int_equal(store_read(s, get_txn, &g), 0);
    assert_int_equal(g.rc, OPSC_ENOENT);
    finish(s, c, rec);
}

/* A record longer than the limit is answered but not kept: parsed again at each call. */
static void records_over_the_limit_are_not_kept(void **state)
{
    (void)state;
    store *s = open_store();
    reccache *c;
    assert_int_equal(reccache_new(&c, 4), 0);
    reccache_set_max(c, 300); /* the small record as stored, with its bookkeeping, fits */
    json_t *rec = json_pack("{s:s, s:s}", "id", "0190a6e4-7a2b-7c3d-8e4f-001122334455", "role",
                            "operator");
    assert_int_equal(store_write(s, put_txn, rec), 0);
    struct get g = {c, "0190a6e4-7a2b-7c3d-8e4f-001122334455", NULL, -1};
    assert_int_equal(store_read(s, get_txn, &g), 0);
    json_t *small = json_incref(g.rec); /* alive: a new parse cannot reuse its address */
    assert_int_equal(store_read(s, get_txn, &g), 0);
    assert_ptr_equal(g.rec, small);
    char big[400];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    json_object_set_new(rec, "role", json_string(big));
    assert_int_equal(store_write(s, put_txn, rec), 0);
    assert_int_equal(store_read(s, get_txn, &g), 0);
    assert_int_equal(g.rc, 0);
    json_t *first = json_incref(g.rec);
    assert_string_equal(json_string_value(json_object_get(first, "role")), big);
    assert_int_equal(store_read(s, get_txn, &g), 0);
    assert_ptr_not_equal(g.rec, first);
    assert_string_equal(json_string_value(json_object_get(g.rec, "role")), big);
    json_decref(first);
    json_decref(small);
    finish(s, c, rec);
}

static void assert_raw_is_encoding(const struct get *g)
{
    char *enc = json_dumps(g->rec, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(enc);
    assert_int_equal(g->len, strlen(enc));
    assert_memory_equal(g->raw, enc, g->len);
    free(enc);
}

/* fleet_get_record sends the stored bytes in place of encoding the record:
 * they must be exactly what http_respond_json would send, for any content. */
static void raw_bytes_are_the_records_compact_encoding(void **state)
{
    (void)state;
    store *s = open_store();
    reccache *c;
    assert_int_equal(reccache_new(&c, 4), 0);
    json_t *rec = json_pack("{s:s, s:s, s:f, s:{s:[i,s,n,b]}, s:s}", "id",
                            "0190a6e4-7a2b-7c3d-8e4f-001122334466", "name",
                            "caf\u00e9 \"q\" \\ / \n\t\u00ff\u20ac\U0001F600", "load", 0.1 + 0.2,
                            "labels", "k", -7, "\x01", 1, "note", "</script>");
    assert_non_null(rec);
    assert_int_equal(store_write(s, put_txn, rec), 0);
    struct get g = {c, "0190a6e4-7a2b-7c3d-8e4f-001122334466", NULL, -1, NULL, 0};
    for (int pass = 0; pass < 2; pass++) { /* parsed now, then from the cache */
        assert_int_equal(store_read(s, get_raw_txn, &g), 0);
        assert_int_equal(g.rc, 0);
        assert_raw_is_encoding(&g);
    }
    json_object_set_new(rec, "note", json_string("changed"));
    assert_int_equal(store_write(s, put_txn, rec), 0);
    assert_int_equal(store_read(s, get_raw_txn, &g), 0);
    assert_raw_is_encoding(&g);
    assert_non_null(strstr(json_string_value(json_object_get(g.rec, "note")), "changed"));
    assert_int_equal(json_integer_value(json_object_get(g.rec, "version")), 2);
    finish(s, c, rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(records_are_reparsed_exactly_when_their_bytes_change),
        cmocka_unit_test(raw_bytes_are_the_records_compact_encoding),
        cmocka_unit_test(records_over_the_limit_are_not_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
