/* test_exec.c - the executor on the real transport-local plugin and the real pool: steps in
 * order with outputs, `when`, quoting, timeouts, cancel, retries, partial failure, limits. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "test_exec.h"
#include "util.h"

static char tdir[64];

static int setup(void **state)
{
    *state = xfx_new(NULL);
    snprintf(tdir, sizeof(tdir), "/tmp/opsc-test-exec-XXXXXX");
    /* Local commands run as the unprivileged local-steps user: they write here too. */
    return mkdtemp(tdir) && chmod(tdir, 01777) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    xfx_free(*state);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *sstate(json_t *step)
{
    return json_string_value(json_object_get(step, "state"));
}

static json_t *output(json_t *step, const char *key)
{
    return json_object_get(json_object_get(step, "outputs"), key);
}

/* ---- steps in order ------------------------------------------------------------------------ */

static void outputs_pass_between_steps_and_when_decides(void **state)
{
    exec_fx *x = *state;
    char t[40], job[40], run[UUID_STR_LEN];
    xfx_target(x, "self", NULL, t);
    xfx_job(x, job,
            "{\"name\": \"chain\", \"targets\": {\"ids\": [\"%s\"]}, \"steps\": ["
            "{\"id\": \"check\", \"type\": \"core.shell.command\", \"params\": {\"command\": "
            "\"echo OPSC_OUTPUT port=8080; echo OPSC_OUTPUT changed=false; echo checked\"}},"
            "{\"id\": \"use\", \"type\": \"core.shell.command\", \"params\": {\"command\": "
            "\"echo port is {{ steps.check.outputs.port }}\"}},"
            "{\"id\": \"skipped\", \"type\": \"core.shell.command\", \"when\": "
            "\"steps.check.outputs.changed == true\", \"params\": {\"command\": \"false\"}},"
            "{\"id\": \"ran\", \"type\": \"core.shell.command\", \"when\": "
            "\"steps.use.state == 'succeeded' and steps.check.outputs.port > 8000\", "
            "\"params\": {\"command\": \"echo yes\"}}]}",
            t);
    xfx_run(x, job, NULL, NULL, run);
    json_t *r = xfx_wait(x, run, 10000);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "succeeded");
    assert_string_equal(sstate(xfx_step(r, 0, 0)), "succeeded");
    assert_int_equal(json_integer_value(output(xfx_step(r, 0, 0), "port")), 8080);
    assert_string_equal(json_string_value(output(xfx_step(r, 0, 1), "stdout")), "port is 8080");
    assert_string_equal(sstate(xfx_step(r, 0, 2)), "skipped");
    assert_string_equal(sstate(xfx_step(r, 0, 3)), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(xfx_step(r, 0, 1), "exit_code")), 0);
    char *log = xfx_log_text(x, run);
    xfx_contains(log, "checked\n");
    xfx_contains(log, "port is 8080\n");
    if (strstr(log, "OPSC_OUTPUT"))
        fail_msg("output lines were logged: %s", log);
    free(log);
    json_decref(r);
}

static void quoting_attacks_arrive_as_literal_text(void **state)
{
    exec_fx *x = *state;
    char t[40], job[40], run[UUID_STR_LEN], params[1024], marker[128];
    snprintf(marker, sizeof(marker), "%s/pwned", tdir);
    xfx_target(x, "self", NULL, t);
    xfx_job(x, job,
            "{\"name\": \"quote\", \"parameters\": [{\"name\": \"v\", \"required\": true}], "
            "\"targets\": {\"ids\": [\"%s\"]}, \"steps\": [{\"id\": \"p\", \"type\": "
            "\"core.shell.command\", \"params\": {\"command\": \"printf '%%s' {{ params.v }}\"}}]}",
            t);
    const char *attacks[] = {"'; touch %s #", "$(touch %s)",      "`touch %s`",
                             "a\ntouch %s\n", "\"; touch %s; \"", "x' 'y; touch %s"};
    for (size_t i = 0; i < sizeof(attacks) / sizeof(*attacks); i++) {
        char value[256];
        snprintf(value, sizeof(value), attacks[i], marker);
        json_t *p = json_pack("{s:s}", "v", value);
        char *pj = json_dumps(p, 0);
        snprintf(params, sizeof(params), "%s", pj);
        free(pj);
        json_decref(p);
        xfx_run(x, job, params, NULL, run);
        json_t *r = xfx_wait(x, run, 10000);
        json_t *stdout_ = output(xfx_step(r, 0, 0), "stdout");
        char trimmed[256];
        snprintf(trimmed, sizeof(trimmed), "%s", value);
        for (size_t n = strlen(trimmed); n > 0 && trimmed[n - 1] == '\n'; n--)
            trimmed[n - 1] = '\0';
        assert_string_equal(json_string_value(stdout_), trimmed);
        struct stat st;
        if (stat(marker, &st) == 0)
            fail_msg("attack %zu ran a command: %s", i, value);
        json_decref(r);
    }
}

/* ---- time ----------------------------------------------------------------------------------- */

static void a_step_that_sleeps_times_out(void **state)
{
    exec_fx *x = *state;
    char t[40];
    xfx_target(x, "self", NULL, t);
    uint64_t t0 = clock_mono_ms();
    json_t *r = xfx_once(x, t,
                         "[{\"id\": \"s\", \"type\": \"core.shell.command\", \"timeout_s\": 1, "
                         "\"params\": {\"command\": \"sleep 120\"}}, " XSH("after", "true") "]");
    uint64_t took = clock_mono_ms() - t0;
    /* not the command's 120 s; valgrind on a machine at load 10 has taken over 20 s to end it */
    assert_true(took >= 1000 && took < 60000);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "failed");
    assert_string_equal(xfx_tstate(r, 0), "timed_out");
    assert_string_equal(sstate(xfx_step(r, 0, 0)), "timed_out");
    xfx_contains(json_string_value(json_object_get(xfx_step(r, 0, 0), "error")),
                    "timeout of 1 s");
    assert_string_equal(sstate(xfx_step(r, 0, 1)), "skipped");
    json_decref(r);
}

static void the_run_timeout_stops_every_target(void **state)
{
    exec_fx *x = *state;
    char a[40], b[40], job[40], run[UUID_STR_LEN];
    xfx_target(x, "a", NULL, a);
    xfx_target(x, "b", NULL, b);
    xfx_job(x, job,
            "{\"name\": \"rt\", \"timeout_s\": 1, \"targets\": {\"ids\": [\"%s\", \"%s\"]}, "
            "\"steps\": [{\"id\": \"s\", \"type\": \"core.shell.command\", \"params\": "
            "{\"command\": \"sleep 30\"}}]}",
            a, b);
    xfx_run(x, job, NULL, NULL, run);
    json_t *r = xfx_wait(x, run, 10000);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "timed_out");
    assert_string_equal(xfx_tstate(r, 0), "timed_out");
    assert_string_equal(xfx_tstate(r, 1), "timed_out");
    xfx_contains(json_string_value(json_object_get(r, "reason")), "timeout of 1 s");
    json_decref(r);
}

/* Alive and not a zombie: a killed child of a killed shell waits, dead, for
 * init to reap it, and kill(pid, 0) still finds it then. */
static bool running(pid_t pid)
{
    char path[64], stat[512] = "";
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool read = fgets(stat, sizeof(stat), f) != NULL;
    fclose(f);
    const char *paren = read ? strrchr(stat, ')') : NULL;
    return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

static void cancel_stops_the_remote_process(void **state)
{
    exec_fx *x = *state;
    char t[40], job[40], run[UUID_STR_LEN], pidfile[128];
    snprintf(pidfile, sizeof(pidfile), "%s/pid", tdir);
    xfx_target(x, "self", NULL, t);
    xfx_job(x, job,
            "{\"name\": \"long\", \"targets\": {\"ids\": [\"%s\"]}, \"steps\": [{\"id\": \"s\", "
            "\"type\": \"core.shell.command\", \"params\": {\"command\": \"echo started; "
            "sleep 600 & echo $! > %s; wait\"}}]}",
            t, pidfile);
    xfx_run(x, job, NULL, NULL, run);
    xfx_wait_event(x, run, "run.log", "text", "started\n", 5000);
    fleet_fx_run_for(x->f, 100);
    char *text = NULL;
    size_t len;
    assert_int_equal(fs_read_file(pidfile, 64, &text, &len), 0);
    pid_t pid = atoi(text);
    free(text);
    assert_true(running(pid));
    assert_int_equal(exec_run_cancel(x->ex, run, "tester"), 0);
    json_t *r = xfx_wait(x, run, 10000);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "cancelled");
    assert_string_equal(xfx_tstate(r, 0), "cancelled");
    assert_string_equal(json_string_value(json_object_get(r, "reason")), "cancelled by tester");
    for (int i = 0; i < 100 && running(pid); i++)
        fleet_fx_run_for(x->f, 20);
    if (running(pid))
        fail_msg("sleep 600 (pid %d) survived the cancel", (int)pid);
    assert_int_equal(exec_run_cancel(x->ex, run, "tester"), OPSC_ESTATE);
    json_decref(r);
}

/* ---- failures ------------------------------------------------------------------------------ */

static void retries_back_off_until_the_step_succeeds(void **state)
{
    exec_fx *x = *state;
    char t[40], counter[128];
    snprintf(counter, sizeof(counter), "%s/count", tdir);
    xfx_target(x, "self", NULL, t);
    json_t *r = xfx_once(x, t,
                         "[{\"id\": \"f\", \"type\": \"core.shell.command\", \"retries\": 3, "
                         "\"retry_delay_s\": 0, \"params\": {\"command\": \"echo x >> %s; "
                         "test $(wc -l < %s) -ge 3\"}}]",
                         counter, counter);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(xfx_step(r, 0, 0), "attempts")), 3);
    char *log = xfx_log_text(x, json_string_value(json_object_get(r, "id")));
    xfx_contains(log, "attempt 1 of 4 failed: exit code 1");
    xfx_contains(log, "attempt 2 of 4 failed");
    free(log);
    json_decref(r);

    /* Out of attempts: the step fails. */
    r = xfx_once(x, t,
                 "[{\"id\": \"f\", \"type\": \"core.shell.command\", \"retries\": 1, "
                 "\"retry_delay_s\": 0, \"params\": {\"command\": \"exit 3\"}}]");
    assert_string_equal(sstate(xfx_step(r, 0, 0)), "failed");
    assert_int_equal(json_integer_value(json_object_get(xfx_step(r, 0, 0), "attempts")), 2);
    assert_int_equal(json_integer_value(json_object_get(xfx_step(r, 0, 0), "exit_code")), 3);
    assert_string_equal(json_string_value(json_object_get(xfx_step(r, 0, 0), "error")),
                        "exit code 3");
    json_decref(r);
}

static void some_targets_fail_and_the_rest_succeed(void **state)
{
    exec_fx *x = *state;
    char a[40], b[40], c[40], job[40], run[UUID_STR_LEN];
    xfx_target(x, "good1", "{\"ok\": \"yes\"}", a);
    xfx_target(x, "bad", "{\"ok\": \"no\"}", b);
    xfx_target(x, "good2", "{\"ok\": \"yes\"}", c);
    xfx_job(x, job,
            "{\"name\": \"partial\", \"targets\": {\"ids\": [\"%s\", \"%s\", \"%s\"]}, "
            "\"steps\": [{\"id\": \"t\", \"type\": \"core.shell.command\", \"params\": "
            "{\"command\": \"test {{ target.labels.ok }} = yes\"}}, {\"id\": \"next\", "
            "\"type\": \"core.shell.command\", \"params\": {\"command\": \"echo next\"}}]}",
            a, b, c);
    xfx_run(x, job, NULL, NULL, run);
    json_t *r = xfx_wait(x, run, 10000);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "failed");
    const char *want[] = {"succeeded", "failed", "succeeded"};
    for (size_t i = 0; i < 3; i++) {
        json_t *tg = json_array_get(json_object_get(r, "targets"), i);
        const char *name = json_string_value(json_object_get(tg, "name"));
        size_t k = strcmp(name, "good1") == 0 ? 0 : strcmp(name, "bad") == 0 ? 1 : 2;
        assert_string_equal(xfx_tstate(r, i), want[k]);
        assert_string_equal(sstate(xfx_step(r, i, 1)), k == 1 ? "skipped" : "succeeded");
    }
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "counts"), "failed")),
                     1);
    json_decref(r);
}

static void on_failure_continue_runs_the_next_step(void **state)
{
    exec_fx *x = *state;
    char t[40];
    xfx_target(x, "self", NULL, t);
    json_t *r = xfx_once(x, t,
                         "[{\"id\": \"bad\", \"type\": \"core.shell.command\", \"on_failure\": "
                         "\"continue\", \"params\": {\"command\": \"exit 2\"}}, {\"id\": "
                         "\"after\", \"type\": \"core.shell.command\", \"when\": "
                         "\"steps.bad.exit_code == 2\", \"params\": {\"command\": \"echo ok\"}}]");
    assert_string_equal(json_string_value(json_object_get(r, "state")), "succeeded");
    assert_string_equal(sstate(xfx_step(r, 0, 0)), "failed");
    assert_string_equal(sstate(xfx_step(r, 0, 1)), "succeeded");
    json_decref(r);
}

/* ---- limits ---------------------------------------------------------------------------------- */

static size_t max_running(exec_fx *x, const char *run_id)
{
    size_t now = 0, max = 0, i;
    json_t *e;
    json_array_foreach(x->events, i, e)
    {
        json_t *d = json_object_get(e, "data");
        if (strcmp(json_string_value(json_object_get(e, "type")), "run.target") ||
            (run_id && strcmp(json_string_value(json_object_get(d, "run_id")), run_id)))
            continue;
        const char *s = json_string_value(json_object_get(d, "state"));
        if (strcmp(s, "running") == 0 && ++now > max)
            max = now;
        else if (strcmp(s, "running") != 0 && now > 0)
            now--;
    }
    return max;
}

static void max_parallel_and_batches_hold(void **state)
{
    exec_fx *x = *state;
    char ids[4][40], job[40], run[UUID_STR_LEN];
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "t%d", i);
        xfx_target(x, name, i == 1 ? "{\"ok\": \"no\"}" : "{\"ok\": \"yes\"}", ids[i]);
    }
    xfx_job(x, job,
            "{\"name\": \"one\", \"max_parallel\": 1, \"targets\": {\"ids\": [\"%s\", \"%s\", "
            "\"%s\", \"%s\"]}, \"steps\": [{\"id\": \"s\", \"type\": \"core.shell.command\", "
            "\"params\": {\"command\": \"sleep 0.1\"}}]}",
            ids[0], ids[1], ids[2], ids[3]);
    xfx_run(x, job, NULL, NULL, run);
    json_decref(xfx_wait(x, run, 10000));
    assert_int_equal(max_running(x, run), 1);

    /* Batches of 2: t1 fails in the first batch, so the second never starts. */
    xfx_job(x, job,
            "{\"name\": \"rolling\", \"batch_size\": 2, \"targets\": {\"ids\": [\"%s\", \"%s\", "
            "\"%s\", \"%s\"]}, \"steps\": [{\"id\": \"s\", \"type\": \"core.shell.command\", "
            "\"params\": {\"command\": \"test {{ target.labels.ok }} = yes\"}}]}",
            ids[0], ids[1], ids[2], ids[3]);
    xfx_run(x, job, NULL, NULL, run);
    json_t *r = xfx_wait(x, run, 10000);
    assert_string_equal(xfx_tstate(r, 0), "succeeded");
    assert_string_equal(xfx_tstate(r, 1), "failed");
    assert_string_equal(xfx_tstate(r, 2), "skipped");
    assert_string_equal(xfx_tstate(r, 3), "skipped");
    json_decref(r);
}

static void one_run_at_a_time_per_target_unless_allowed(void **state)
{
    exec_fx *x = *state;
    char t[40], job[40], r1[UUID_STR_LEN], r2[UUID_STR_LEN];
    xfx_target(x, "self", NULL, t);
    for (int shared = 0; shared < 2; shared++) {
        json_array_clear(x->events);
        xfx_job(x, job,
                "{\"name\": \"j%d\", \"allow_concurrent\": %s, \"targets\": {\"ids\": "
                "[\"%s\"]}, \"steps\": [" XSH("s", "sleep 0.3") "]}",
                shared, shared ? "true" : "false", t);
        xfx_run(x, job, NULL, NULL, r1);
        xfx_run(x, job, NULL, NULL, r2);
        json_decref(xfx_wait(x, r1, 10000));
        json_decref(xfx_wait(x, r2, 10000));
        assert_int_equal(max_running(x, NULL), shared ? 2 : 1);
    }
}

/* ---- before the run ---------------------------------------------------------------------------
 */

static void refusals_name_the_step_and_the_reason(void **state)
{
    exec_fx *x = *state;
    char t[40], w[40], job[40];
    xfx_target(x, "self", NULL, t);
    fleet_fx_raw_target(x->f,
                        "{\"name\": \"win\", \"address\": \"w\", \"transport\": \"local\", "
                        "\"os_family\": \"windows\", \"enabled\": true}",
                        w);
    xfx_job(x, job,
            "{\"name\": \"lin\", \"parameters\": [{\"name\": \"n\", \"type\": \"int\", "
            "\"required\": true}], \"targets\": {\"ids\": [\"%s\", \"%s\"]}, \"steps\": "
            "[{\"id\": \"svc\", \"type\": \"linux.service.restart\", \"params\": {\"name\": "
            "\"nginx\"}}]}",
            t, w);
    xfx_contains(xfx_refused(x, job, "{}", OPSC_ESCHEMA), "params.n");
    xfx_contains(xfx_refused(x, job, "{\"n\": \"x\"}", OPSC_ESCHEMA), "integer");
    xfx_contains(xfx_refused(x, job, "{\"n\": 1}", OPSC_ESCHEMA),
                    "step 'svc' (linux.service.restart) cannot run on target 'win'");
    xfx_contains(xfx_refused(x, "no-such-job", NULL, OPSC_ENOENT), "no job");
    xfx_job(x, job,
            "{\"name\": \"port\", \"parameters\": [{\"name\": \"p\"}], \"targets\": {\"ids\": "
            "[\"%s\"]}, \"steps\": [{\"id\": \"wait\", \"type\": \"core.wait.port\", \"params\": "
            "{\"host\": \"localhost\", \"port\": \"{{ params.p }}\"}}]}",
            t);
    xfx_contains(xfx_refused(x, job, "{\"p\": \"http\"}", OPSC_ESCHEMA),
                    "step 'wait' on target 'self': params.port");
}

static void dry_run_renders_per_target_and_stores_nothing(void **state)
{
    exec_fx *x = *state;
    char t[40], job[40];
    xfx_target(x, "self", "{\"env\": \"prod\"}", t);
    xfx_job(x, job,
            "{\"name\": \"dry\", \"parameters\": [{\"name\": \"svc\", \"default\": \"web\"}], "
            "\"targets\": {\"ids\": [\"%s\"]}, \"steps\": [{\"id\": \"r\", \"type\": "
            "\"linux.service.restart\", \"params\": {\"name\": \"{{ params.svc }}-{{ "
            "target.labels.env }}\"}}, {\"id\": \"p\", \"type\": \"testexec.probe\"}]}",
            t);
    exec_run_spec spec = {.job_id = job, .triggered_by = "test", .dry_run = true};
    json_t *out = NULL;
    char err[512];
    assert_int_equal(exec_dry_run(x->ex, &spec, &out, err, sizeof(err)), 0);
    json_t *steps = json_object_get(json_array_get(json_object_get(out, "targets"), 0), "steps");
    xfx_contains(json_string_value(json_object_get(json_array_get(steps, 0), "command")),
                    "'web-prod'");
    assert_true(json_is_true(json_object_get(json_array_get(steps, 1), "imperative")));
    json_decref(out);
    char id[UUID_STR_LEN];
    spec.dry_run = true;
    assert_int_equal(exec_run_start(x->ex, &spec, id, err, sizeof(err)), 0);
    assert_string_equal(id, "");
    assert_int_equal(json_array_size(x->events), 0);
}

static void retry_runs_only_the_targets_that_failed(void **state)
{
    exec_fx *x = *state;
    char a[40], b[40], job[40], run[UUID_STR_LEN], again[UUID_STR_LEN], flag[128], err[512];
    snprintf(flag, sizeof(flag), "%s/fixed", tdir);
    xfx_target(x, "a", "{\"ok\": \"yes\"}", a);
    xfx_target(x, "b", "{\"ok\": \"no\"}", b);
    xfx_job(x, job,
            "{\"name\": \"fixme\", \"targets\": {\"ids\": [\"%s\", \"%s\"]}, \"steps\": [{\"id\": "
            "\"t\", \"type\": \"core.shell.command\", \"params\": {\"command\": \"test {{ "
            "target.labels.ok }} = yes || test -e %s\"}}]}",
            a, b, flag);
    xfx_run(x, job, NULL, NULL, run);
    json_decref(xfx_wait(x, run, 10000));
    assert_int_equal(fs_write_file(flag, "", 0, 0600), 0);
    assert_int_equal(exec_run_retry(x->ex, run, "tester", 0, again, err, sizeof(err)), 0);
    json_t *r = xfx_wait(x, again, 10000);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "succeeded");
    assert_int_equal(json_array_size(json_object_get(r, "targets")), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(r, "targets"), 0), "name")),
                        "b");
    assert_string_equal(json_string_value(json_object_get(r, "retry_of")), run);
    assert_int_equal(exec_run_retry(x->ex, again, "tester", 0, run, err, sizeof(err)), OPSC_ESTATE);
    xfx_contains(err, "nothing to retry");
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(outputs_pass_between_steps_and_when_decides, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(quoting_attacks_arrive_as_literal_text, setup, teardown),
        cmocka_unit_test_setup_teardown(a_step_that_sleeps_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(the_run_timeout_stops_every_target, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_stops_the_remote_process, setup, teardown),
        cmocka_unit_test_setup_teardown(retries_back_off_until_the_step_succeeds, setup, teardown),
        cmocka_unit_test_setup_teardown(some_targets_fail_and_the_rest_succeed, setup, teardown),
        cmocka_unit_test_setup_teardown(on_failure_continue_runs_the_next_step, setup, teardown),
        cmocka_unit_test_setup_teardown(max_parallel_and_batches_hold, setup, teardown),
        cmocka_unit_test_setup_teardown(one_run_at_a_time_per_target_unless_allowed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(refusals_name_the_step_and_the_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(dry_run_renders_per_target_and_stores_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(retry_runs_only_the_targets_that_failed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
