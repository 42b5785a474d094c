/* test_pool.c - the connection pool against the real transport-local plugin: reuse, limits,
 * FIFO waiters, idle timeout, broken connections, invalidation, refusals, closing. */
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

#define LOCAL_TARGET "{\"name\": \"%s\", \"transport\": \"local\"}"

/* One acquire and what its callback said. */
typedef struct got {
    bool done;
    int status;
    int order; /* callback order across a test */
    pool_lease *lease;
    bool info;
    char error[600];
    pool_wait *w;
} got;

static int order_counter;

static void on_acquired(void *ud, int status, pool_lease *lease, const opsc_conn_info *info,
                        const char *error)
{
    got *g = ud;
    assert_false(g->done); /* exactly once */
    g->done = true;
    g->status = status;
    g->lease = lease;
    g->info = info != NULL;
    g->order = ++order_counter;
    snprintf(g->error, sizeof(g->error), "%s", error ? error : "");
    if (status == 0)
        assert_non_null(lease);
}

static void acquire(fleet_fx *f, const char *id, got *g)
{
    memset(g, 0, sizeof(*g));
    assert_int_equal(pool_acquire(f->core.pool, id, on_acquired, g, &g->w), 0);
    assert_false(g->done); /* never from inside the call */
}

static void acquire_wait(fleet_fx *f, const char *id, got *g)
{
    acquire(f, id, g);
    fleet_fx_run_until(f, &g->done, 5000);
}

static pool_stats stats(fleet_fx *f)
{
    pool_stats st;
    pool_stats_get(f->core.pool, &st);
    return st;
}

static char *local_body(const char *name)
{
    static char buf[128];
    snprintf(buf, sizeof(buf), LOCAL_TARGET, name);
    return buf;
}

/* ---- running a command on a lease ------------------------------------------------------- */

typedef struct cmd {
    bool done;
    int status, exit_code;
    char out[256];
    size_t len;
    bool release_in_done; /* release the lease from inside on_done */
    pool_lease *lease;
} cmd;

static void cmd_output(void *ud, int stream, const char *data, size_t len)
{
    cmd *c = ud;
    if (stream == OPSC_STDOUT && c->len + len < sizeof(c->out)) {
        memcpy(c->out + c->len, data, len);
        c->len += len;
    }
}

static void cmd_done(void *ud, const opsc_exec_result *res)
{
    cmd *c = ud;
    c->done = true;
    c->status = res->status;
    c->exit_code = res->exit_code;
    if (c->release_in_done)
        pool_release(c->lease, false);
}

static void run_cmd(fleet_fx *f, pool_lease *l, const char *command, cmd *c)
{
    static const opsc_exec_cb cbs = {sizeof(opsc_exec_cb), cmd_output, cmd_done, NULL};
    opsc_exec_req req = {.size = sizeof(req), .command = command};
    opsc_exec *ex = NULL;
    c->lease = l;
    assert_int_equal(pool_lease_transport(l)->exec(pool_lease_conn(l), &req, &cbs, c, &ex), 0);
    fleet_fx_run_until(f, &c->done, 5000);
}

/* A fixture with one local target "t1", its id in `id`. */
static fleet_fx *with_target(const char *plugin_config, pool_opts opts, char id[40])
{
    fleet_fx *f = fleet_fx_new(plugin_config, &opts);
    assert_non_null(f);
    fleet_fx_target(f, local_body("t1"), id);
    return f;
}

/* Ask for `n` leases at once; return when the first `granted` are in and
 * the others had time to be granted (wrongly). */
static void acquire_many(fleet_fx *f, const char *id, got *g, int n, int granted)
{
    for (int i = 0; i < n; i++)
        acquire(f, id, &g[i]);
    fleet_fx_run_until(f, &g[granted - 1].done, 5000);
    fleet_fx_run_for(f, 20);
    for (int i = 0; i < n; i++)
        assert_int_equal(g[i].done, i < granted);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_a_released_connection_is_reused(void **state)
{
    (void)state;
    char id[40];
    fleet_fx *f = with_target(NULL, (pool_opts){0}, id);
    got g;
    acquire_wait(f, id, &g);
    assert_int_equal(g.status, 0);
    assert_true(g.info); /* a new connection: its info comes with the lease */
    assert_string_equal(json_string_value(json_object_get(pool_lease_target(g.lease), "name")),
                        "t1");
    assert_string_equal(pool_lease_transport(g.lease)->name, "local");
    cmd c = {0};
    run_cmd(f, g.lease, "echo hello", &c);
    assert_int_equal(c.status, 0);
    assert_memory_equal(c.out, "hello\n", 6);
    opsc_conn *first = pool_lease_conn(g.lease);
    pool_release(g.lease, false);
    fleet_fx_run_for(f, 5);
    assert_int_equal(stats(f).idle, 1);
    acquire_wait(f, id, &g);
    assert_int_equal(g.status, 0);
    assert_ptr_equal(pool_lease_conn(g.lease), first);
    assert_false(g.info); /* reused, no warning: nothing to hand over */
    assert_int_equal(stats(f).connections, 1);
    pool_release(g.lease, false);
    fleet_fx_free(f);
}

/* [plugin.transport-local] max_commands = 2: two leases per connection. */
static void test_sessions_per_connection_are_limited_and_waiters_served_in_order(void **state)
{
    (void)state;
    char id[40];
    fleet_fx *f = with_target("[plugin.transport-local]\nmax_commands = 2\n",
                              (pool_opts){.max_connections = 1}, id);
    got g[5];
    acquire_many(f, id, g, 5, 2);
    assert_ptr_equal(pool_lease_conn(g[0].lease), pool_lease_conn(g[1].lease));
    pool_stats st = stats(f);
    assert_int_equal(st.connections, 1);
    assert_int_equal(st.leases, 2);
    assert_int_equal(st.waiting, 3);
    /* Each session given back goes to the oldest waiter. */
    pool_release(g[1].lease, false);
    fleet_fx_run_until(f, &g[2].done, 5000);
    assert_false(g[3].done);
    pool_release(g[0].lease, false);
    fleet_fx_run_until(f, &g[3].done, 5000);
    assert_true(g[2].order < g[3].order);
    pool_release(g[2].lease, false);
    fleet_fx_run_until(f, &g[4].done, 5000);
    assert_true(g[3].order < g[4].order);
    pool_release(g[3].lease, false);
    pool_release(g[4].lease, false);
    assert_int_equal(stats(f).connections, 1);
    fleet_fx_free(f);
}

static void test_connections_per_target_are_limited(void **state)
{
    (void)state;
    char id[40];
    fleet_fx *f = with_target("[plugin.transport-local]\nmax_commands = 1\n",
                              (pool_opts){.max_connections = 2}, id);
    got g[3];
    acquire_many(f, id, g, 3, 2);
    assert_ptr_not_equal(pool_lease_conn(g[0].lease), pool_lease_conn(g[1].lease));
    assert_int_equal(stats(f).connections, 2);
    pool_release(g[0].lease, false);
    fleet_fx_run_until(f, &g[2].done, 5000);
    assert_int_equal(g[2].status, 0);
    pool_release(g[1].lease, false);
    pool_release(g[2].lease, false);
    fleet_fx_free(f);
}

static void test_the_total_limit_evicts_the_oldest_idle_connection(void **state)
{
    (void)state;
    fleet_fx *f = fleet_fx_new(NULL, &(pool_opts){.max_total = 2});
    char a[40], b[40], c[40];
    fleet_fx_target(f, local_body("a"), a);
    fleet_fx_target(f, local_body("b"), b);
    fleet_fx_target(f, local_body("c"), c);
    got ga, gb, gc;
    acquire_wait(f, a, &ga);
    acquire_wait(f, b, &gb);
    pool_release(ga.lease, false); /* a is the oldest idle one */
    fleet_fx_run_for(f, 5);
    pool_release(gb.lease, false);
    fleet_fx_run_for(f, 5);
    acquire_wait(f, c, &gc);
    assert_int_equal(gc.status, 0);
    fleet_fx_run_for(f, 20);
    pool_stats st = stats(f);
    assert_int_equal(st.connections, 2); /* a's closed, b's idle, c's leased */
    assert_int_equal(st.idle, 1);
    acquire_wait(f, b, &gb); /* b's connection is still there */
    assert_false(gb.info);
    pool_release(gb.lease, false);
    pool_release(gc.lease, false);
    fleet_fx_free(f);
}

static void test_the_total_limit_makes_other_targets_wait(void **state)
{
    (void)state;
    fleet_fx *f = fleet_fx_new(NULL, &(pool_opts){.max_total = 1});
    char a[40], b[40];
    fleet_fx_target(f, local_body("a"), a);
    fleet_fx_target(f, local_body("b"), b);
    got ga, gb;
    acquire_wait(f, a, &ga);
    acquire(f, b, &gb);
    fleet_fx_run_for(f, 30);
    assert_false(gb.done);
    assert_int_equal(stats(f).waiting, 1);
    pool_release(ga.lease, false); /* idle now: b may close it to open its own */
    fleet_fx_run_until(f, &gb.done, 5000);
    assert_int_equal(gb.status, 0);
    fleet_fx_run_for(f, 20);
    assert_int_equal(stats(f).connections, 1);
    pool_release(gb.lease, false);
    fleet_fx_free(f);
}

static void test_idle_connections_close_after_the_timeout(void **state)
{
    (void)state;
    char id[40];
    fleet_fx *f = with_target(NULL, (pool_opts){.idle_timeout_ms = 50}, id);
    got g;
    acquire_wait(f, id, &g);
    pool_release(g.lease, false);
    fleet_fx_run_for(f, 10);
    assert_int_equal(stats(f).connections, 1);
    fleet_fx_run_for(f, 150);
    assert_int_equal(stats(f).connections, 0);
    assert_int_equal(stats(f).targets, 0); /* nothing left to remember */
    fleet_fx_free(f);
}

static void test_a_broken_lease_closes_its_connection(void **state)
{
    (void)state;
    char id[40];
    fleet_fx *f = with_target(NULL, (pool_opts){0}, id);
    got g;
    acquire_wait(f, id, &g);
    pool_release(g.lease, true);
    fleet_fx_run_for(f, 20);
    assert_int_equal(stats(f).connections, 0);
    acquire_wait(f, id, &g);
    assert_true(g.info); /* a new connection */
    pool_release(g.lease, false);
    fleet_fx_free(f);
}

struct set {
    const char *id, *key, *value;
};

static int set_txn(store_txn *txn, void *ud)
{
    struct set *s = ud;
    json_t *rec = NULL;
    int rc = store_get(txn, "targets", s->id, &rec);
    if (rc == 0) {
        json_object_set_new(rec, s->key, json_string(s->value));
        rc = store_update(txn, "targets", rec, 0);
    }
    json_decref(rec);
    return rc;
}

static void test_refusals_say_why(void **state)
{
    (void)state;
    fleet_fx *f = fleet_fx_new(NULL, &(pool_opts){0});
    char off[40], winrm[40], nocred[40];
    fleet_fx_target(f, "{\"name\": \"off\", \"transport\": \"local\", \"enabled\": false}", off);
    fleet_fx_raw_target(f,
                        "{\"name\": \"w\", \"transport\": \"winrm\", \"address\": \"h\", "
                        "\"port\": 5985, \"enabled\": true}",
                        winrm);
    fleet_fx_target(f, local_body("nc"), nocred);
    /* A credential deleted behind the target's back (forced delete). */
    struct set s = {nocred, "credential_id", "0190a6e4-7a2b-7c3d-8e4f-001122334455"};
    assert_int_equal(store_write(f->core.store, set_txn, &s), 0);
    got g;
    acquire_wait(f, "0190a6e4-7a2b-7c3d-8e4f-00112233ffff", &g);
    assert_int_equal(g.status, OPSC_ENOENT);
    assert_string_equal(g.error, "target 0190a6e4-7a2b-7c3d-8e4f-00112233ffff does not exist");
    acquire_wait(f, off, &g);
    assert_int_equal(g.status, OPSC_ESTATE);
    assert_string_equal(g.error, "target off is disabled");
    acquire_wait(f, winrm, &g);
    assert_int_equal(g.status, OPSC_EPLUGIN);
    assert_string_equal(g.error, "target w uses the winrm transport, which is not loaded");
    acquire_wait(f, nocred, &g);
    assert_int_equal(g.status, OPSC_ENOENT);
    assert_non_null(strstr(g.error, "credential 0190a6e4-7a2b-7c3d-8e4f-001122334455"));
    assert_int_equal(stats(f).connections, 0);
    fleet_fx_free(f);
}

static void test_a_cancelled_waiter_gets_ecanceled(void **state)
{
    (void)state;
    char id[40];
    fleet_fx *f = with_target("[plugin.transport-local]\nmax_commands = 1\n",
                              (pool_opts){.max_connections = 1}, id);
    got g1, g2, g3;
    acquire_wait(f, id, &g1);
    acquire(f, id, &g2);
    acquire(f, id, &g3);
    fleet_fx_run_for(f, 10);
    pool_acquire_cancel(g2.w);
    assert_false(g2.done); /* not from inside the call */
    fleet_fx_run_until(f, &g2.done, 5000);
    assert_int_equal(g2.status, OPSC_ECANCELED);
    pool_release(g1.lease, false);
    fleet_fx_run_until(f, &g3.done, 5000); /* the next waiter moved up */
    assert_int_equal(g3.status, 0);
    pool_release(g3.lease, false);
    fleet_fx_free(f);
}

struct update {
    const char *id;
};

static int disable_txn(store_txn *txn, void *ud)
{
    json_t *rec = NULL;
    int rc = store_get(txn, "targets", ((struct update *)ud)->id, &rec);
    if (rc == 0) {
        json_object_set_new(rec, "connect_timeout_s", json_integer(7));
        rc = store_update(txn, "targets", rec, 0);
    }
    json_decref(rec);
    return rc;
}

static void test_invalidation_and_target_changes_stop_reuse(void **state)
{
    (void)state;
    char id[40];
    fleet_fx *f = with_target(NULL, (pool_opts){0}, id);
    got g;
    acquire_wait(f, id, &g);
    pool_release(g.lease, false);
    fleet_fx_run_for(f, 5);
    pool_invalidate(f->core.pool, id);
    fleet_fx_run_for(f, 20);
    assert_int_equal(stats(f).connections, 0);
    acquire_wait(f, id, &g);
    assert_true(g.info);
    /* A leased connection of a changed target is not reused, and closes
     * when given back. */
    struct update u = {id};
    assert_int_equal(store_write(f->core.store, disable_txn, &u), 0);
    got g2;
    acquire_wait(f, id, &g2);
    assert_true(g2.info);
    assert_ptr_not_equal(pool_lease_conn(g.lease), pool_lease_conn(g2.lease));
    pool_release(g.lease, false);
    fleet_fx_run_for(f, 20);
    assert_int_equal(stats(f).connections, 1);
    pool_release(g2.lease, false);
    fleet_fx_free(f);
}

static void test_releasing_from_inside_on_done_is_safe(void **state)
{
    (void)state;
    char id[40];
    fleet_fx *f = with_target(NULL, (pool_opts){0}, id);
    got g;
    acquire_wait(f, id, &g);
    pool_invalidate(f->core.pool, id); /* so that the release closes the connection */
    cmd c = {.release_in_done = true};
    run_cmd(f, g.lease, "true", &c);
    assert_int_equal(c.status, 0);
    fleet_fx_run_for(f, 20);
    assert_int_equal(stats(f).connections, 0);
    fleet_fx_free(f);
}

static void on_closed(void *ud)
{
    *(bool *)ud = true;
}

static void test_closing_fails_waiters_and_waits_for_leases(void **state)
{
    (void)state;
    char id[40];
    fleet_fx *f = with_target("[plugin.transport-local]\nmax_commands = 1\n",
                              (pool_opts){.max_connections = 1}, id);
    got g1, g2;
    acquire_wait(f, id, &g1);
    acquire(f, id, &g2);
    fleet_fx_run_for(f, 10);
    bool closed = false;
    pool_close(f->core.pool, on_closed, &closed);
    assert_true(g2.done); /* waiters fail first, during the call */
    assert_int_equal(g2.status, OPSC_ECANCELED);
    assert_int_equal(pool_acquire(f->core.pool, id, on_acquired, &g2, NULL), OPSC_ECANCELED);
    fleet_fx_run_for(f, 30);
    assert_false(closed); /* a lease is still out */
    pool_release(g1.lease, false);
    fleet_fx_run_until(f, &closed, 5000);
    f->pool_closed = true;
    fleet_fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_released_connection_is_reused),
        cmocka_unit_test(test_sessions_per_connection_are_limited_and_waiters_served_in_order),
        cmocka_unit_test(test_connections_per_target_are_limited),
        cmocka_unit_test(test_the_total_limit_evicts_the_oldest_idle_connection),
        cmocka_unit_test(test_the_total_limit_makes_other_targets_wait),
        cmocka_unit_test(test_idle_connections_close_after_the_timeout),
        cmocka_unit_test(test_a_broken_lease_closes_its_connection),
        cmocka_unit_test(test_refusals_say_why),
        cmocka_unit_test(test_a_cancelled_waiter_gets_ecanceled),
        cmocka_unit_test(test_invalidation_and_target_changes_stop_reuse),
        cmocka_unit_test(test_releasing_from_inside_on_done_is_safe),
        cmocka_unit_test(test_closing_fails_waiters_and_waits_for_leases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
