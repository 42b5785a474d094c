/* test_exec_records.c - the executor's records: runs a stopped daemon left running marked
 * interrupted, missed fires, active runs by schedule, log windows in sequence order, log retention. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "exec_internal.h"
#include "run_read.h"
#include "test_exec.h"
#include "util.h"
#include "vault.h"

/* ---- the store ----------------------------------------------------------------------------- */

struct fake_run {
    const char *id;
};

static int fake_txn(store_txn *txn, void *ud)
{
    const char *id = ((struct fake_run *)ud)->id;
    json_t *rec = json_pack("{s:s, s:s, s:s, s:I}", "id", id, "job_id", id, "state", "running",
                            "job_version", (json_int_t)1);
    int rc = store_create(txn, "runs", rec);
    json_decref(rec);
    const char *t = "{\"target_id\":\"t\",\"state\":\"running\",\"steps\":[{\"id\":\"a\","
                    "\"state\":\"succeeded\"},{\"id\":\"b\",\"state\":\"running\"},{\"id\":\"c\","
                    "\"state\":\"queued\"}]}";
    char key[64];
    run_target_key(key, sizeof(key), id, 0);
    if (rc == 0)
        rc = store_kv_put(txn, "run_targets", key, strlen(key), t, strlen(t));
    if (rc == 0)
        rc = store_kv_put(txn, "runs_active", id, strlen(id), "", 0);
    return rc;
}

static void runs_left_running_are_interrupted_at_start(void **state)
{
    exec_fx *x = *state;
    char id[UUID_STR_LEN];
    assert_int_equal(uuid7_new(id), 0);
    struct fake_run f = {id};
    assert_int_equal(store_write(x->f->core.store, fake_txn, &f), 0);
    assert_int_equal(ex_recover(x->ex), 0);
    json_t *r = xfx_read(x, id);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "interrupted");
    xfx_contains(json_string_value(json_object_get(r, "reason")), "while the run was running");
    assert_string_equal(xfx_tstate(r, 0), "interrupted");
    const char *want[] = {"succeeded", "interrupted", "skipped"};
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(json_string_value(json_object_get(xfx_step(r, 0, i), "state")),
                            want[i]);
    json_decref(r);
}

static void missed_fires_are_recorded_and_announced(void **state)
{
    exec_fx *x = *state;
    char t[40], job[40], run[UUID_STR_LEN];
    xfx_target(x, "self", NULL, t);
    xfx_job(x, job,
            "{\"name\": \"m\", \"targets\": {\"ids\": [\"%s\"]}, \"steps\": [{\"type\": "
            "\"core.shell.command\", \"params\": {\"command\": \"true\"}}]}",
            t);
    exec_run_spec spec = {.job_id = job,
                          .schedule_id = "sched-1",
                          .planned_at_ms = 1000,
                          .triggered_by = "scheduler"};
    assert_int_equal(exec_run_record_missed(x->ex, &spec, "the daemon was down", run), 0);
    json_t *r = xfx_read(x, run);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "missed");
    assert_string_equal(json_string_value(json_object_get(r, "reason")), "the daemon was down");
    assert_string_equal(json_string_value(json_object_get(r, "schedule_id")), "sched-1");
    assert_int_equal(json_integer_value(json_object_get(r, "job_version")), 1);
    json_decref(r);
    xfx_wait_event(x, run, "run.state", "state", "missed", 1000);
    assert_int_equal(exec_active_for_schedule(x->ex, "sched-1"), 0);
}

static void start_fired(exec_fx *x, const char *job, const char *schedule_id, char run[UUID_STR_LEN])
{
    char err[256] = "";
    exec_run_spec spec = {.job_id = job,
                          .schedule_id = schedule_id,
                          .planned_at_ms = 1000,
                          .triggered_by = "scheduler"};
    assert_int_equal(exec_run_start(x->ex, &spec, run, err, sizeof(err)), 0);
}

/* The scheduler's overlap policies ask at every fire how many runs of the
 * schedule are active: counted as runs start and end, by schedule. */
static void active_runs_are_counted_by_schedule(void **state)
{
    exec_fx *x = *state;
    char t[40], job[40], a1[UUID_STR_LEN], a2[UUID_STR_LEN], b[UUID_STR_LEN];
    xfx_target(x, "self", NULL, t);
    xfx_job(x, job,
            "{\"name\": \"c\", \"allow_concurrent\": true, \"targets\": {\"ids\": [\"%s\"]}, "
            "\"steps\": [" XSH("s", "sleep 30") "]}",
            t);
    start_fired(x, job, "sched-a", a1);
    start_fired(x, job, "sched-a", a2);
    start_fired(x, job, "sched-b", b);
    assert_int_equal(exec_active_for_schedule(x->ex, "sched-a"), 2);
    assert_int_equal(exec_active_for_schedule(x->ex, "sched-b"), 1);
    assert_int_equal(exec_active_for_schedule(x->ex, "sched-c"), 0);
    assert_int_equal(exec_run_cancel(x->ex, a1, "tester"), 0);
    json_decref(xfx_wait(x, a1, 10000));
    assert_int_equal(exec_active_for_schedule(x->ex, "sched-a"), 1);
    assert_int_equal(exec_run_cancel(x->ex, a2, "tester"), 0);
    assert_int_equal(exec_run_cancel(x->ex, b, "tester"), 0);
    json_decref(xfx_wait(x, a2, 10000));
    json_decref(xfx_wait(x, b, 10000));
    assert_int_equal(exec_active_for_schedule(x->ex, "sched-a"), 0);
    assert_int_equal(exec_active_for_schedule(x->ex, "sched-b"), 0);
}

struct win {
    const char *id;
    json_t *items;
    uint64_t after;
    bool more;
};

static int win_txn(store_txn *txn, void *ud)
{
    struct win *w = ud;
    json_t *targets = NULL;
    int rc = run_read_targets(txn, w->id, &targets);
    if (rc == 0)
        rc = run_log_window(txn, w->id, targets, w->after, 1, &w->items, &w->more);
    json_decref(targets);
    return rc;
}

static void log_windows_come_in_sequence_order_across_targets(void **state)
{
    exec_fx *x = *state;
    char a[40], b[40], job[40], run[UUID_STR_LEN];
    xfx_target(x, "a", NULL, a);
    xfx_target(x, "b", NULL, b);
    xfx_job(x, job,
            "{\"name\": \"chatty\", \"allow_concurrent\": true, \"targets\": {\"ids\": [\"%s\", "
            "\"%s\"]}, \"steps\": [{\"type\": \"core.shell.command\", \"params\": {\"command\": "
            "\"for i in 1 2 3 4 5; do echo line $i; sleep 0.02; done\"}}]}",
            a, b);
    xfx_run(x, job, NULL, NULL, run);
    json_decref(xfx_wait(x, run, 10000));
    /* One chunk per window (max 1 byte): the windows still come out in order. */
    struct win w = {run, NULL, 0, true};
    size_t total = 0;
    uint64_t last = 0;
    while (w.more) {
        assert_int_equal(store_read(x->f->core.store, win_txn, &w), 0);
        size_t i;
        json_t *rec;
        json_array_foreach(w.items, i, rec)
        {
            uint64_t seq = (uint64_t)json_integer_value(json_object_get(rec, "seq"));
            assert_true(seq > last);
            last = seq;
            total++;
        }
        w.after = last;
        json_decref(w.items);
    }
    json_t *all = xfx_log(x, run);
    assert_int_equal(total, json_array_size(all));
    assert_true(total >= 2);
    json_decref(all);
}

static void log_retention_deletes_old_logs(void **state)
{
    exec_fx *x = *state;
    char t[40];
    xfx_target(x, "self", NULL, t);
    json_t *done = xfx_once(x, t, "[" XSH("s", "echo keep me") "]");
    const char *run = json_string_value(json_object_get(done, "id"));
    json_t *log = xfx_log(x, run);
    assert_int_equal(json_array_size(log), 1);
    json_decref(log);
    x->ex->opts.log_retention_ms = 1;
    fleet_fx_run_for(x->f, 20);
    ex_log_sweep(x->ex);
    log = xfx_log(x, run);
    assert_int_equal(json_array_size(log), 0);
    json_decref(log);
    json_t *r = xfx_read(x, run);
    assert_true(json_is_true(json_object_get(r, "logs_deleted")));
    json_decref(r);
    json_decref(done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(runs_left_running_are_interrupted_at_start, xfx_setup,
                                        xfx_teardown),
        cmocka_unit_test_setup_teardown(missed_fires_are_recorded_and_announced, xfx_setup,
                                        xfx_teardown),
        cmocka_unit_test_setup_teardown(active_runs_are_counted_by_schedule, xfx_setup,
                                        xfx_teardown),
        cmocka_unit_test_setup_teardown(log_windows_come_in_sequence_order_across_targets,
                                        xfx_setup, xfx_teardown),
        cmocka_unit_test_setup_teardown(log_retention_deletes_old_logs, xfx_setup, xfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
