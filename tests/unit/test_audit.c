/* test_audit.c - audit records: buffered writes, newest-first listing with filters and paging,
 * retention. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "audit.h"
#include "store.h"
#include "util.h"

typedef struct fixture {
    char dir[64];
    store *s;
    uv_loop_t loop;
    audit *a;
} fixture;

static int64_t fake_now;
static int64_t fake_clock(void)
{
    return fake_now;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/opsc-test-audit-XXXXXX");
    char err[256];
    store_opts o = {0};
    if (!mkdtemp(f->dir) || store_open(&f->s, f->dir, &o, err, sizeof(err)) < 0)
        return -1;
    uv_loop_init(&f->loop);
    if (!fake_now) /* never backwards: ids of one process only grow */
        fake_now = 1800000000000;
    clock_set_source(fake_clock);
    if (audit_open(&f->a, &f->loop, f->s, 86400000) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    audit_close(f->a);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int loop_rc = uv_loop_close(&f->loop);
    clock_set_source(NULL);
    store_close(f->s);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 && loop_rc == 0 ? 0 : -1;
}

static void record(fixture *f, const char *actor, const char *action, const char *outcome)
{
    audit_event ev = {.actor = actor,
                      .client = "10.0.0.1",
                      .action = action,
                      .object = "obj",
                      .outcome = outcome,
                      .status = 200};
    audit_record(f->a, &ev);
    fake_now += 1000;
}

struct page {
    audit_query q;
    json_t *items;
    char next[40];
};

static int list_txn(store_txn *txn, void *ud)
{
    struct page *p = ud;
    return audit_list(txn, &p->q, &p->items, p->next);
}

static json_t *list(fixture *f, struct page *p)
{
    json_decref(p->items);
    p->items = NULL;
    assert_int_equal(store_read(f->s, list_txn, p), 0);
    return p->items;
}

static void events_are_written_on_the_next_loop_turn(void **state)
{
    fixture *f = *state;
    record(f, "alice", "login", "success");
    struct page p = {.q = {.limit = 10}};
    assert_int_equal(json_array_size(list(f, &p)), 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    json_t *items = list(f, &p);
    assert_int_equal(json_array_size(items), 1);
    json_t *e = json_array_get(items, 0);
    assert_string_equal(json_string_value(json_object_get(e, "actor")), "alice");
    assert_string_equal(json_string_value(json_object_get(e, "client")), "10.0.0.1");
    assert_string_equal(json_string_value(json_object_get(e, "outcome")), "success");
    assert_non_null(json_object_get(e, "created_at"));
    assert_non_null(json_object_get(e, "id"));
    json_decref(p.items);
}

static void listing_is_newest_first_filtered_and_paged(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 5; i++)
        record(f, i % 2 ? "bob" : "alice", "POST /api/v1/users", i == 4 ? "failure" : "success");
    assert_int_equal(audit_flush(f->a), 0);
    struct page p = {.q = {.limit = 2, .actor = "alice"}};
    json_t *items = list(f, &p);
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "outcome")),
                        "failure"); /* the newest alice event first */
    assert_string_not_equal(p.next, "");
    char cursor[40];
    snprintf(cursor, sizeof(cursor), "%s", p.next);
    p.q.cursor = cursor;
    items = list(f, &p);
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(p.next, "");
    struct page q = {.q = {.limit = 50, .outcome = "failure"}};
    assert_int_equal(json_array_size(list(f, &q)), 1);
    json_decref(p.items);
    json_decref(q.items);
}

static void since_and_until_bound_the_time(void **state)
{
    fixture *f = *state;
    int64_t t0 = fake_now;
    for (int i = 0; i < 6; i++)
        record(f, "alice", "x", "success"); /* one per second */
    assert_int_equal(audit_flush(f->a), 0);
    struct page p = {.q = {.limit = 50, .since_ms = t0 + 2000, .until_ms = t0 + 3999}};
    assert_int_equal(json_array_size(list(f, &p)), 2);
    json_decref(p.items);
}

static void sweep_deletes_what_is_older_than_the_retention(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 3; i++)
        record(f, "old", "x", "success");
    assert_int_equal(audit_flush(f->a), 0);
    fake_now += 2 * 86400000LL;
    record(f, "new", "x", "success");
    assert_int_equal(audit_flush(f->a), 0);
    size_t n = 0;
    assert_int_equal(audit_sweep(f->a, fake_now, &n), 0);
    assert_int_equal(n, 3);
    struct page p = {.q = {.limit = 50}};
    json_t *items = list(f, &p);
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "actor")),
                        "new");
    json_decref(p.items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(events_are_written_on_the_next_loop_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(listing_is_newest_first_filtered_and_paged, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(since_and_until_bound_the_time, setup, teardown),
        cmocka_unit_test_setup_teardown(sweep_deletes_what_is_older_than_the_retention, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
