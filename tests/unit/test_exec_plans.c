/* test_exec_plans.c - the executor's cache of compiled job plans: a fire of an unchanged job
 * reuses its plan with its own parameters, and a new version, a deleted job made again under
 * the same id, or another step library never runs what was compiled before. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "job.h"
#include "plugin_host.h"
#include "store.h"
#include "test_exec.h"

static uint64_t compiled(exec_fx *x)
{
    exec_stats st;
    exec_stats_get(x->ex, &st);
    return st.plans_compiled;
}

static uint64_t reused(exec_fx *x)
{
    exec_stats st;
    exec_stats_get(x->ex, &st);
    return st.plans_reused;
}

/* Run `job` with {"v": value} and return its one step's stdout (static). */
static const char *run_echo(exec_fx *x, const char *job, const char *value)
{
    static char out[256];
    char params[128], run[UUID_STR_LEN];
    snprintf(params, sizeof(params), "{\"v\": \"%s\"}", value);
    xfx_run(x, job, params, NULL, run);
    json_t *r = xfx_wait(x, run, 10000);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "succeeded");
    json_t *o = json_object_get(json_object_get(xfx_step(r, 0, 0), "outputs"), "stdout");
    snprintf(out, sizeof(out), "%s", json_string_value(o));
    json_decref(r);
    return out;
}

struct edit {
    const char *id;
    json_t *patch;
    plugin_host *plugins;
};

static int update_txn(store_txn *txn, void *ud)
{
    struct edit *e = ud;
    json_t *before = NULL, *rec = NULL, *errors = NULL;
    int rc = job_get(txn, e->id, &before);
    if (rc == 0 && (rc = job_build(e->plugins, e->patch, before, &rec, &errors)) == 0)
        rc = job_replace(txn, before, rec, 0);
    json_decref(before);
    json_decref(rec);
    json_decref(errors);
    return rc;
}

static int delete_txn(store_txn *txn, void *ud)
{
    return job_remove(txn, ((struct edit *)ud)->id, 0);
}

#define ECHO_JOB(tag)                                                                              \
    "{\"name\": \"echo\", \"parameters\": [{\"name\": \"v\", \"required\": true}], "            \
    "\"allow_concurrent\": true, \"targets\": {\"ids\": [\"%s\"]}, \"steps\": [{\"id\": \"e\", " \
    "\"type\": \"core.shell.command\", \"params\": {\"command\": \"echo " tag "-{{ params.v }}\"}}]}"

/* A target, the echo job, and one run of it (its plan compiled). */
static exec_fx *echo_job_ran(exec_fx *x, char t[40], char job[40])
{
    xfx_target(x, "self", NULL, t);
    xfx_job(x, job, ECHO_JOB("one"), t);
    assert_string_equal(run_echo(x, job, "a"), "one-a");
    return x;
}

static void unchanged_job_reuses_its_plan_with_each_runs_parameters(void **state)
{
    char t[40], job[40];
    exec_fx *x = echo_job_ran(*state, t, job);
    assert_int_equal(compiled(x), 1);
    assert_string_equal(run_echo(x, job, "b"), "one-b");
    assert_string_equal(run_echo(x, job, "c"), "one-c");
    assert_int_equal(compiled(x), 1);
    assert_int_equal(reused(x), 2);
    /* Parameters are still checked per run against the cached schema. */
    xfx_refused(x, job, "{}", OPSC_ESCHEMA);
}

static void new_version_is_compiled_not_served_stale(void **state)
{
    char t[40], job[40];
    exec_fx *x = echo_job_ran(*state, t, job);
    uint64_t c0 = compiled(x);
    struct edit e = {job, json_pack("{s:[{s:s, s:s, s:{s:s}}]}", "steps", "id", "e", "type",
                                    "core.shell.command", "params", "command",
                                    "echo two-{{ params.v }}"),
                     x->f->core.plugins};
    assert_int_equal(store_write(x->f->core.store, update_txn, &e), 0);
    assert_string_equal(run_echo(x, job, "b"), "two-b");
    assert_int_equal(compiled(x) - c0, 1);
    json_decref(e.patch);
}

struct again {
    json_t *rec;
};

static int insert_txn(store_txn *txn, void *ud)
{
    return job_insert(txn, ((struct again *)ud)->rec);
}

/* Another node (cluster mode) deletes the job and makes it again without telling this one: the
 * same id and version 1, another step. */
static void job_made_again_under_its_id_is_not_served_stale(void **state)
{
    char t[40], job[40], body[1024];
    exec_fx *x = echo_job_ran(*state, t, job);
    struct edit e = {job, NULL, NULL};
    assert_int_equal(store_write(x->f->core.store, delete_txn, &e), 0);
    snprintf(body, sizeof(body), ECHO_JOB("three"), t);
    json_t *in = json_loads(body, 0, NULL), *errors = NULL;
    struct again g = {NULL};
    assert_int_equal(job_build(x->f->core.plugins, in, NULL, &g.rec, &errors), 0);
    json_object_set_new(g.rec, "id", json_string(job));
    assert_int_equal(store_write(x->f->core.store, insert_txn, &g), 0);
    assert_int_equal(json_integer_value(json_object_get(g.rec, "version")), 1);
    assert_string_equal(run_echo(x, job, "b"), "three-b");
    json_decref(g.rec);
    json_decref(in);
}

static void deleting_a_job_drops_its_plan(void **state)
{
    char t[40], job[40];
    exec_fx *x = echo_job_ran(*state, t, job);
    exec_stats st;
    exec_stats_get(x->ex, &st);
    assert_int_equal(st.plans_cached, 1);
    exec_job_forget(x->ex, job);
    exec_stats_get(x->ex, &st);
    assert_int_equal(st.plans_cached, 0);
    uint64_t c0 = compiled(x);
    assert_string_equal(run_echo(x, job, "b"), "one-b");
    assert_int_equal(compiled(x) - c0, 1);
}

/* The library a cached plan's step type came from is removed: the job no longer runs. */
static void removed_step_library_is_not_served_from_a_cached_plan(void **state)
{
    char t[40], job[40];
    exec_fx *x = echo_job_ran(*state, t, job);
    const plugin_reg *core = plugin_host_steplib(x->f->core.plugins, "core", 0);
    assert_non_null(core);
    assert_int_equal(plugin_host_retire(x->f->core.plugins, core->owner), 0);
    xfx_contains(xfx_refused(x, job, "{\"v\": \"b\"}", OPSC_ESCHEMA), "no step library 'core'");
}

/* More jobs than the cache holds: it stays at its bound, and every run is still right. */
static void the_cache_is_bounded(void **state)
{
    (void)state;
    exec_fx *x = xfx_new(&(exec_opts){.plan_cache_max = 3});
    char t[40], job[40], want[64];
    xfx_target(x, "self", NULL, t);
    for (int i = 0; i < 5; i++) {
        xfx_job(x, job,
                "{\"name\": \"j%d\", \"parameters\": [{\"name\": \"v\"}], \"targets\": {\"ids\": "
                "[\"%s\"]}, \"steps\": [{\"id\": \"e\", \"type\": \"core.shell.command\", "
                "\"params\": {\"command\": \"echo %d-{{ params.v }}\"}}]}",
                i, t, i);
        for (const char *v = "xy"; *v; v++) { /* compiled, then reused */
            char given[2] = {*v, 0};
            snprintf(want, sizeof(want), "%d-%s", i, given);
            assert_string_equal(run_echo(x, job, given), want);
        }
    }
    exec_stats st;
    exec_stats_get(x->ex, &st);
    assert_int_equal(st.plans_cached, 3);
    assert_int_equal(st.plans_compiled, 5);
    assert_int_equal(st.plans_reused, 5);
    xfx_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(unchanged_job_reuses_its_plan_with_each_runs_parameters,
                                        xfx_setup, xfx_teardown),
        cmocka_unit_test_setup_teardown(new_version_is_compiled_not_served_stale, xfx_setup,
                                        xfx_teardown),
        cmocka_unit_test_setup_teardown(job_made_again_under_its_id_is_not_served_stale,
                                        xfx_setup, xfx_teardown),
        cmocka_unit_test_setup_teardown(deleting_a_job_drops_its_plan, xfx_setup, xfx_teardown),
        cmocka_unit_test_setup_teardown(removed_step_library_is_not_served_from_a_cached_plan, xfx_setup, xfx_teardown),
        cmocka_unit_test(the_cache_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
