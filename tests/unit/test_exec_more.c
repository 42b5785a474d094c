/* test_exec_more.c - the executor with imperative steps (the step API on workers), secrets
 * redacted, start-up recovery, missed runs, log windows and log retention. */
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

static int setup(void **state)
{
    *state = xfx_new(NULL);
    return 0;
}

static int teardown(void **state)
{
    xfx_free(*state);
    return 0;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!hay || !strstr(hay, needle))
        fail_msg("'%s' not found in:\n%s", needle, hay ? hay : "(null)");
}

static void assert_lacks(const char *hay, const char *needle)
{
    if (hay && strstr(hay, needle))
        fail_msg("'%s' found in:\n%s", needle, hay);
}

static json_t *outputs(json_t *run, size_t step)
{
    return json_object_get(xfx_step(run, 0, step), "outputs");
}

/* ---- a secret credential --------------------------------------------------------------------- */

struct cred {
    vault *v;
    json_t *rec, *secrets;
};

static int cred_txn(store_txn *txn, void *ud)
{
    struct cred *c = ud;
    int rc = vault_secrets_seal(c->v, c->rec, c->secrets);
    if (rc == 0)
        rc = store_create(txn, "credentials", c->rec);
    if (rc == 0)
        rc = store_index_put(txn, "credentials_by_name",
                             json_string_value(json_object_get(c->rec, "name")),
                             json_string_value(json_object_get(c->rec, "id")));
    return rc;
}

static void secret_credential(exec_fx *x, const char *name, const char *value)
{
    json_t *body = json_pack("{s:s, s:s, s:s}", "name", name, "type", "secret", "value", value);
    json_t *meta = NULL, *secrets = NULL;
    char err[256], id[UUID_STR_LEN];
    assert_int_equal(credential_parse(body, true, NULL, &meta, &secrets, err, sizeof(err)), 0);
    assert_int_equal(uuid7_new(id), 0);
    json_object_set_new(meta, "id", json_string(id));
    struct cred c = {x->f->core.vault, meta, secrets};
    assert_int_equal(store_write(x->f->core.store, cred_txn, &c), 0);
    vault_secrets_free(secrets);
    json_decref(meta);
    json_decref(body);
}

/* ---- imperative steps ----------------------------------------------------------------------- */

static void imperative_steps_use_the_step_api_and_secrets_stay_hidden(void **state)
{
    exec_fx *x = *state;
    char t[40], job[40], run[UUID_STR_LEN];
    const char *secret = "Sup3r-S3cret'value";
    secret_credential(x, "api-token", secret);
    xfx_target(x, "self", NULL, t);
    xfx_job(x, job,
            "{\"name\": \"imp\", \"parameters\": [{\"name\": \"tok\", \"type\": \"secret\", "
            "\"default\": \"api-token\"}], \"targets\": {\"ids\": [\"%s\"]}, \"steps\": ["
            "{\"id\": \"probe\", \"type\": \"testexec.probe\", \"params\": {\"command\": "
            "\"echo out-line; echo err-line >&2\", \"token\": "
            "\"{{ params.tok }}\"}},"
            "{\"id\": \"decl\", \"type\": \"core.shell.command\", \"params\": {\"command\": "
            "\"echo the token is {{ params.tok }}\"}}]}",
            t);
    xfx_run(x, job, NULL, NULL, run);
    json_t *r = xfx_wait(x, run, 10000);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "succeeded");
    json_t *o = outputs(r, 0);
    assert_int_equal(json_integer_value(json_object_get(o, "exit")), 0);
    assert_true(json_is_true(json_object_get(o, "has_secret")));
    assert_string_equal(json_string_value(json_object_get(o, "ref")), "api-token");
    assert_string_equal(json_string_value(json_object_get(o, "quoted")), "'it'\\''s'");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "params"), "tok")),
                        "api-token");
    /* The declarative step printed the secret: redacted in outputs and log. */
    assert_string_equal(json_string_value(json_object_get(outputs(r, 1), "stdout")),
                        "the token is ********");
    char *log = xfx_log_text(x, run);
    assert_contains(log, "probing self");
    assert_contains(log, "out-line");
    assert_contains(log, "err-line");
    assert_contains(log, "logging the secret ******** by mistake");
    assert_lacks(log, "Sup3r");
    char *dump = json_dumps(r, 0);
    assert_lacks(dump, "Sup3r");
    free(dump);
    free(log);
    json_decref(r);
}

static void imperative_failures_are_reported_with_their_reason(void **state)
{
    exec_fx *x = *state;
    char t[40], job[40], run[UUID_STR_LEN];
    xfx_target(x, "self", NULL, t);
    xfx_job(x, job,
            "{\"name\": \"fails\", \"targets\": {\"ids\": [\"%s\"]}, \"steps\": ["
            "{\"id\": \"why\", \"type\": \"testexec.fail\", \"on_failure\": \"continue\", "
            "\"params\": {\"why\": \"broken\"}},"
            "{\"id\": \"bare\", \"type\": \"testexec.fail\", \"params\": {\"bare\": true}}]}",
            t);
    xfx_run(x, job, NULL, NULL, run);
    json_t *r = xfx_wait(x, run, 10000);
    assert_string_equal(json_string_value(json_object_get(xfx_step(r, 0, 0), "error")),
                        "the widget is broken");
    assert_string_equal(json_string_value(json_object_get(xfx_step(r, 0, 1), "error")),
                        "the step failed: input/output error");
    assert_string_equal(xfx_tstate(r, 0), "failed");
    json_decref(r);
}

static void a_step_that_ignores_its_cancel_is_left_behind(void **state)
{
    exec_fx *x = *state;
    char t[40], job[40], run[UUID_STR_LEN];
    xfx_target(x, "self", NULL, t);
    uint64_t t0 = clock_mono_ms();
    json_t *r = xfx_once(x, t,
                         "[{\"id\": \"w\", \"type\": \"testexec.wait\", \"timeout_s\": 1, "
                         "\"params\": {\"ms\": 2500, \"stubborn\": true}}]");
    uint64_t took = clock_mono_ms() - t0;
    assert_true(took < 2400); /* 1 s timeout + 300 ms grace, not the step's 2.5 s */
    assert_string_equal(json_string_value(json_object_get(xfx_step(r, 0, 0), "state")),
                        "timed_out");
    json_decref(r);
    /* A well-behaved step stops at once on cancel. */
    xfx_job(x, job,
            "{\"name\": \"polite\", \"targets\": {\"ids\": [\"%s\"]}, \"steps\": [{\"id\": "
            "\"w\", \"type\": \"testexec.wait\", \"params\": {\"ms\": 60000}}]}",
            t);
    xfx_run(x, job, NULL, NULL, run);
    xfx_wait_event(x, run, "run.step", "state", "running", 5000);
    t0 = clock_mono_ms();
    assert_int_equal(exec_run_cancel(x->ex, run, "tester"), 0);
    r = xfx_wait(x, run, 5000);
    assert_true(clock_mono_ms() - t0 < 1000);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "cancelled");
    json_decref(r);
    fleet_fx_run_for(x->f, 1500); /* the stubborn worker returns: freed then */
}

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
    assert_contains(json_string_value(json_object_get(r, "reason")), "while the run was running");
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
        cmocka_unit_test_setup_teardown(imperative_steps_use_the_step_api_and_secrets_stay_hidden,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(imperative_failures_are_reported_with_their_reason, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_step_that_ignores_its_cancel_is_left_behind, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(runs_left_running_are_interrupted_at_start, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(missed_fires_are_recorded_and_announced, setup, teardown),
        cmocka_unit_test_setup_teardown(log_windows_come_in_sequence_order_across_targets, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(log_retention_deletes_old_logs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
