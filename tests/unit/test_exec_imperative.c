/* test_exec_imperative.c - the executor with imperative steps: the step API on workers, secrets
 * redacted from what they log and output, failures with their reason, a step ignoring its cancel. */
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
    xfx_contains(log, "probing self");
    xfx_contains(log, "out-line");
    xfx_contains(log, "err-line");
    xfx_contains(log, "logging the secret ******** by mistake");
    xfx_lacks(log, "Sup3r");
    char *dump = json_dumps(r, 0);
    xfx_lacks(dump, "Sup3r");
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
    json_t *r = xfx_once(x, t,
                         "[{\"id\": \"w\", \"type\": \"testexec.wait\", \"timeout_s\": 1, "
                         "\"params\": {\"ms\": 2500, \"stubborn\": true}}]");
    json_t *step = xfx_step(r, 0, 0);
    int64_t started = 0, finished = 0;
    assert_int_equal(rfc3339_parse(json_string_value(json_object_get(step, "started_at")), &started), 0);
    assert_int_equal(rfc3339_parse(json_string_value(json_object_get(step, "finished_at")), &finished), 0);
    /* The step's own times (not the run's setup, slow under valgrind): 1 s timeout + 300 ms
     * grace, not the step's 2.5 s. */
    assert_true(finished - started < 2400);
    assert_string_equal(json_string_value(json_object_get(step, "state")), "timed_out");
    json_decref(r);
    /* A well-behaved step stops at once on cancel. */
    xfx_job(x, job,
            "{\"name\": \"polite\", \"targets\": {\"ids\": [\"%s\"]}, \"steps\": [{\"id\": "
            "\"w\", \"type\": \"testexec.wait\", \"params\": {\"ms\": 60000}}]}",
            t);
    xfx_run(x, job, NULL, NULL, run);
    xfx_wait_event(x, run, "run.step", "state", "running", 5000);
    assert_int_equal(exec_run_cancel(x->ex, run, "tester"), 0);
    r = xfx_wait(x, run, 30000); /* ended by the cancel, long before the step's 60 s */
    assert_string_equal(json_string_value(json_object_get(r, "state")), "cancelled");
    json_decref(r);
    fleet_fx_run_for(x->f, 1500); /* the stubborn worker returns: freed then */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(imperative_steps_use_the_step_api_and_secrets_stay_hidden,
                                        xfx_setup, xfx_teardown),
        cmocka_unit_test_setup_teardown(imperative_failures_are_reported_with_their_reason,
                                        xfx_setup, xfx_teardown),
        cmocka_unit_test_setup_teardown(a_step_that_ignores_its_cancel_is_left_behind, xfx_setup,
                                        xfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
