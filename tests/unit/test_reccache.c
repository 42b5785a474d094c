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
};

static int get_txn(store_txn *txn, void *ud)
{
    struct get *g = ud;
    g->rc = reccache_get(g->c, txn, "users", g->id, &g->rec);
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

static void records_are_reparsed_exactly_when_their_bytes_change(void **state)
{
    (void)state;
    store *s = NULL;
    char err[256];
    assert_non_null(mkdtemp(dir));
    assert_int_equal(store_open(&s, dir, NULL, err, sizeof(err)), 0);
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
    json_decref(rec);
    reccache_free(c);
    store_close(s);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(records_are_reparsed_exactly_when_their_bytes_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
