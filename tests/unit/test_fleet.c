/* test_fleet.c - target and group records in the store, and resolving target specs (what the
 * executor runs on). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "fleet_fixture.h"
#include "store.h"

static void target(fleet_fx *f, const char *name, const char *labels, bool enabled, char id[40])
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"name\": \"%s\", \"transport\": \"local\", \"labels\": %s, \"enabled\": %s}", name,
             labels, enabled ? "true" : "false");
    fleet_fx_target(f, body, id);
}

struct gw {
    json_t *body;
    json_t *rec;
    fleet_err e;
};

static int group_txn(store_txn *txn, void *ud)
{
    struct gw *g = ud;
    json_decref(g->rec);
    int rc = group_build(g->body, NULL, &g->rec, &g->e);
    return rc < 0 ? rc : group_write(txn, NULL, g->rec, 0, &g->e);
}

/* Create a group from a JSON body with %s slots filled in order. */
static void group(fleet_fx *f, char id[40], const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    struct gw g = {json_loads(text, 0, NULL), NULL, {0}};
    assert_non_null(g.body);
    int rc = store_write(f->core.store, group_txn, &g);
    if (rc < 0)
        fail_msg("group: %s", g.e.msg);
    snprintf(id, 40, "%s", json_string_value(json_object_get(g.rec, "id")));
    json_decref(g.body);
    json_decref(g.rec);
}

struct res {
    json_t *spec;
    fleet_resolved out;
    char err[300];
};

static int resolve_txn(store_txn *txn, void *ud)
{
    struct res *r = ud;
    return fleet_resolve(txn, r->spec, &r->out, r->err, sizeof(r->err));
}

/* Resolve a spec given as JSON text; the ids as one string "a b c". */
static int resolve(fleet_fx *f, const char *spec, char *ids, char *disabled, char *err)
{
    struct res r = {json_loads(spec, 0, NULL), {0}, ""};
    assert_non_null(r.spec);
    int rc = store_read(f->core.store, resolve_txn, &r);
    ids[0] = disabled[0] = '\0';
    size_t i;
    json_t *v;
    json_array_foreach(r.out.ids, i, v)
        sprintf(ids + strlen(ids), "%s%s", i ? " " : "", json_string_value(v));
    json_array_foreach(r.out.disabled, i, v)
        sprintf(disabled + strlen(disabled), "%s%s", i ? " " : "", json_string_value(v));
    if (err)
        strcpy(err, r.err);
    fleet_resolved_clear(&r.out);
    json_decref(r.spec);
    return rc;
}

static void test_specs_resolve_to_the_union_in_id_order(void **state)
{
    (void)state;
    fleet_fx *f = fleet_fx_new(NULL, &(pool_opts){0});
    char a[40], b[40], c[40], d[40], g1[40], g2[40];
    target(f, "a", "{\"env\": \"prod\"}", true, a);
    target(f, "b", "{\"env\": \"dev\"}", true, b);
    target(f, "c", "{\"env\": \"prod\", \"legacy\": \"\"}", false, c);
    target(f, "d", "{}", true, d);
    group(f, g1, "{\"name\": \"g1\", \"members\": [\"%s\"]}", d);
    group(f, g2, "{\"name\": \"g2\", \"selector\": \"env=prod\", \"groups\": [\"%s\"]}", g1);
    char ids[400], off[400], spec[300], want[400];
    snprintf(spec, sizeof(spec), "{\"ids\": [\"%s\", \"%s\"], \"groups\": [\"%s\"]}", b, a, g2);
    assert_int_equal(resolve(f, spec, ids, off, NULL), 0);
    snprintf(want, sizeof(want), "%s %s %s", a, b, d); /* a once, c disabled apart */
    assert_string_equal(ids, want);
    assert_string_equal(off, c);
    assert_int_equal(resolve(f, "{\"selector\": \"env,!legacy\"}", ids, off, NULL), 0);
    snprintf(want, sizeof(want), "%s %s", a, b);
    assert_string_equal(ids, want);
    assert_string_equal(off, "");
    assert_int_equal(resolve(f, "{}", ids, off, NULL), 0); /* names nothing */
    assert_string_equal(ids, "");
    assert_int_equal(resolve(f, "{\"selector\": \"\"}", ids, off, NULL), 0);
    assert_string_equal(ids, "");
    fleet_fx_free(f);
}

static void test_bad_specs_are_refused_with_the_reason(void **state)
{
    (void)state;
    fleet_fx *f = fleet_fx_new(NULL, &(pool_opts){0});
    char ids[400], off[400], err[300];
    assert_int_equal(resolve(f, "{\"selector\": \"env in prod\"}", ids, off, err), OPSC_ESCHEMA);
    assert_string_equal(err, "targets.selector: column 8: expected '(' after 'in', found 'p'");
    assert_int_equal(resolve(f, "{\"ids\": [\"x\"]}", ids, off, err), OPSC_ESCHEMA);
    assert_string_equal(err, "targets.ids[0] must be an id");
    assert_int_equal(resolve(f, "{\"hosts\": []}", ids, off, err), OPSC_ESCHEMA);
    assert_int_equal(
        resolve(f, "{\"ids\": [\"0190a6e4-7a2b-7c3d-8e4f-001122334455\"]}", ids, off, err),
        OPSC_ENOENT);
    assert_string_equal(err, "target 0190a6e4-7a2b-7c3d-8e4f-001122334455 does not exist");
    assert_int_equal(
        resolve(f, "{\"groups\": [\"0190a6e4-7a2b-7c3d-8e4f-001122334455\"]}", ids, off, err),
        OPSC_ENOENT);
    assert_string_equal(err, "group 0190a6e4-7a2b-7c3d-8e4f-001122334455 does not exist");
    fleet_fx_free(f);
}

struct del {
    const char *id;
};

static int delete_txn(store_txn *txn, void *ud)
{
    return target_remove(txn, ((struct del *)ud)->id, 0, NULL);
}

static int count_links(const void *k, size_t kl, const void *v, size_t vl, void *ud)
{
    (void)k, (void)kl, (void)v, (void)vl;
    (*(int *)ud)++;
    return 0;
}

static int links_txn(store_txn *txn, void *ud)
{
    return store_kv_scan(txn, "groups_by_target", NULL, 0, count_links, ud);
}

static void test_a_deleted_target_leaves_its_groups_and_indexes(void **state)
{
    (void)state;
    fleet_fx *f = fleet_fx_new(NULL, &(pool_opts){0});
    char a[40], b[40], g[40];
    target(f, "a", "{}", true, a);
    target(f, "b", "{}", true, b);
    group(f, g, "{\"name\": \"g\", \"members\": [\"%s\", \"%s\"]}", a, b);
    int links = 0;
    assert_int_equal(store_read(f->core.store, links_txn, &links), 0);
    assert_int_equal(links, 2);
    struct del d = {a};
    assert_int_equal(store_write(f->core.store, delete_txn, &d), 0);
    json_t *rec = fleet_fx_get(f, "groups", g);
    assert_int_equal(json_array_size(json_object_get(rec, "members")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(rec, "members"), 0)), b);
    json_decref(rec);
    links = 0;
    assert_int_equal(store_read(f->core.store, links_txn, &links), 0);
    assert_int_equal(links, 1);
    assert_null(fleet_fx_get(f, "targets", a));
    fleet_fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_specs_resolve_to_the_union_in_id_order),
        cmocka_unit_test(test_bad_specs_are_refused_with_the_reason),
        cmocka_unit_test(test_a_deleted_target_leaves_its_groups_and_indexes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
