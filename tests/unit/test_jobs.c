/* test_jobs.c - jobs: validation at save (errors naming step, field, position), parameters,
 * `when`, versions, the run plan, export and import by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "job.h"
#include "plugin_host.h"
#include "store.h"
#include "util.h"

static struct {
    uv_loop_t loop;
    plugin_host *h;
    store *st;
    char dir[64];
} w;

static int group_setup(void **state)
{
    (void)state;
    char path[512], err[512] = "";
    uv_loop_init(&w.loop);
    if (plugin_host_new(&w.h, &w.loop, NULL) < 0)
        return -1;
    const char *dir = getenv("OPSC_STEPLIB_BUILD_DIR");
    const char *libs[] = {"core", "linux", "windows"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s/steplib-%s.so", dir ? dir : "steplibs", libs[i],
                 libs[i]);
        if (plugin_host_load_file(w.h, path, err, sizeof(err)) < 0) {
            fprintf(stderr, "%s: %s\n", path, err);
            return -1;
        }
    }
    snprintf(w.dir, sizeof(w.dir), "/tmp/opsc-test-jobs-XXXXXX");
    if (!mkdtemp(w.dir) || store_open(&w.st, w.dir, NULL, err, sizeof(err)) < 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    store_close(w.st);
    plugin_host_free(w.h);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    uv_loop_close(&w.loop);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", w.dir);
    return system(cmd) == 0 ? 0 : -1;
}

static json_t *body_of(const char *fmt, va_list ap)
{
    char text[8192];
    vsnprintf(text, sizeof(text), fmt, ap);
    json_error_t je;
    json_t *b = json_loads(text, 0, &je);
    if (!b)
        fail_msg("bad test JSON %d:%d %s: %s", je.line, je.column, je.text, text);
    return b;
}

static json_t *build_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *build_ok(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *b = body_of(fmt, ap), *rec = NULL, *errors = NULL;
    va_end(ap);
    int rc = job_build(w.h, b, NULL, &rec, &errors);
    if (rc < 0)
        fail_msg("refused: %s", json_dumps(errors, 0));
    json_decref(b);
    return rec;
}

/* The errors of a refused job (new array). */
static json_t *build_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *build_bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *b = body_of(fmt, ap), *rec = NULL, *errors = NULL;
    va_end(ap);
    assert_int_equal(job_build(w.h, b, NULL, &rec, &errors), OPSC_ESCHEMA);
    assert_null(rec);
    json_decref(b);
    return errors;
}

/* The error about `field` (of step `step`, NULL: none), or a failure listing them all. */
static json_t *error_for(json_t *errors, const char *step, const char *field)
{
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *s = json_string_value(json_object_get(e, "step"));
        const char *f = json_string_value(json_object_get(e, "field"));
        if ((!step || (s && strcmp(s, step) == 0)) && f && strcmp(f, field) == 0)
            return e;
    }
    fail_msg("no error for %s %s in %s", step ? step : "-", field, json_dumps(errors, 0));
    return NULL;
}

static void assert_msg(json_t *e, const char *needle)
{
    const char *m = json_string_value(json_object_get(e, "message"));
    if (!m || !strstr(m, needle))
        fail_msg("message '%s' lacks '%s'", m ? m : "", needle);
}

#define STEP(id, type, params)                                                                     \
    "{\"id\": \"" id "\", \"type\": \"" type "\", \"params\": " params "}"

/* ---- validation ------------------------------------------------------------------------------ */

static void a_valid_job_gets_its_defaults(void **state)
{
    (void)state;
    json_t *rec = build_ok("{\"name\": \"deploy\", \"steps\": [{\"type\": \"core.shell.command\", "
                           "\"params\": {\"command\": \"true\"}}, " STEP(
                               "restart", "linux.service.restart@1", "{\"name\": \"nginx\"}") "]}");
    json_t *s0 = json_array_get(json_object_get(rec, "steps"), 0);
    assert_string_equal(json_string_value(json_object_get(s0, "id")), "step1");
    assert_string_equal(json_string_value(json_object_get(s0, "on_failure")), "stop");
    assert_int_equal(json_integer_value(json_object_get(s0, "retries")), 0);
    assert_int_equal(json_integer_value(json_object_get(rec, "max_parallel")), 0);
    assert_false(json_is_true(json_object_get(rec, "allow_concurrent")));
    assert_true(json_is_array(json_object_get(rec, "parameters")));
    assert_true(json_is_object(json_object_get(rec, "targets")));
    json_decref(rec);
}

static void errors_name_the_step_the_field_and_the_position(void **state)
{
    (void)state;
    json_t
        *errors =
            build_bad("{\"name\": \"bad job!\", \"color\": 1, \"parameters\": [{\"name\": "
                      "\"svc\"}], \"steps\": [" STEP("a", "core.nope", "{}") ", " STEP(
                          "b", "core.wait.port",
                          "{\"port\": \"http\"}") ", " STEP("c", "core.shell.command",
                                                            "{\"command\": \"echo {{ params.svcc "
                                                            "}}\"}") ", "
                                                                     "{\"id\": \"d\", \"type\": "
                                                                     "\"core.shell.command\", "
                                                                     "\"params\": {\"command\": "
                                                                     "\"true\"}, "
                                                                     "\"when\": "
                                                                     "\"steps.e.outputs.x == \"}, "
                                                                     "{\"id\": \"d\", \"type\": "
                                                                     "\"core.shell.command\", "
                                                                     "\"params\": {\"command\": "
                                                                     "\"true\"}, "
                                                                     "\"when\": "
                                                                     "\"steps.later.outputs.x\", "
                                                                     "\"retries\": -1}, " STEP(
                                                                         "later", "linux.nope.x",
                                                                         "{}") "]}");
    assert_msg(error_for(errors, NULL, "name"), "letters, digits");
    assert_msg(error_for(errors, NULL, "color"), "unknown job field");
    assert_msg(error_for(errors, "a", "type"), "core");
    assert_msg(error_for(errors, "b", "params.port"), "integer");
    json_t *e = error_for(errors, "c", "params.command");
    assert_string_equal(json_string_value(json_object_get(e, "position")), "1:9");
    assert_msg(e, "svcc");
    e = error_for(errors, "d", "when");
    assert_non_null(json_object_get(e, "position"));
    assert_msg(error_for(errors, "d", "id"), "used twice");
    assert_msg(error_for(errors, "d", "retries"), "0 to 100");
    assert_msg(error_for(errors, "later", "type"), "no step");
    char summary[600];
    job_err_summary(errors, summary, sizeof(summary));
    assert_non_null(strstr(summary, "and more errors"));
    json_decref(errors);
}

static void when_names_only_earlier_steps(void **state)
{
    (void)state;
    json_t *errors = build_bad(
        "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"type\": \"core.shell.command\", "
        "\"params\": {\"command\": \"true\"}, \"when\": \"steps.b.state == 'succeeded'\"}, " STEP(
            "b", "core.shell.command", "{\"command\": \"true\"}") "]}");
    json_t *e = error_for(errors, "a", "when");
    assert_msg(e, "'b' is not an earlier step");
    assert_string_equal(json_string_value(json_object_get(e, "position")), "1:1");
    json_decref(errors);
    errors = build_bad("{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"type\": "
                       "\"core.shell.command\", \"params\": {\"command\": \"true\"}, \"when\": "
                       "\"{{ params.x }}\"}]}");
    assert_msg(error_for(errors, "a", "when"), "without {{ }}");
    json_decref(errors);
    json_t *rec =
        build_ok("{\"name\": \"w\", \"parameters\": [{\"name\": \"env\"}], \"steps\": [" STEP(
            "check", "core.shell.command",
            "{\"command\": \"true\"}") ", "
                                       "{\"id\": \"go\", \"type\": \"core.shell.command\", "
                                       "\"params\": {\"command\": \"true\"}, "
                                       "\"when\": \"steps.check.outputs.changed == true and "
                                       "params.env != 'prod' and "
                                       "'x' in steps['check'].outputs.stdout\"}]}");
    json_decref(rec);

    tpl *t = NULL;
    char err[256];
    assert_int_equal(job_when_compile("steps.check.outputs.changed == true", &t, err, sizeof(err)),
                     0);
    bool yes = false;
    json_t *ctx = json_pack("{s:{s:{s:{s:b}}}}", "steps", "check", "outputs", "changed", 1);
    assert_int_equal(job_when_eval(t, ctx, &yes, err, sizeof(err)), 0);
    assert_true(yes);
    json_object_set_new(
        json_object_get(json_object_get(json_object_get(ctx, "steps"), "check"), "outputs"),
        "changed", json_false());
    assert_int_equal(job_when_eval(t, ctx, &yes, err, sizeof(err)), 0);
    assert_false(yes);
    json_t *empty = json_object();
    assert_int_equal(job_when_eval(t, empty, &yes, err, sizeof(err)), 0);
    assert_false(yes); /* undefined is false */
    json_decref(empty);
    json_decref(ctx);
    tpl_free(t);
}

static void templates_and_raw_parameters_are_checked_for_the_shell(void **state)
{
    (void)state;
    /* A template where the schema wants a number is left to run start. */
    json_t *rec = build_ok("{\"name\": \"t\", \"parameters\": [{\"name\": \"p\", \"type\": "
                           "\"int\"}], \"steps\": [" STEP("w", "core.wait.port",
                                                          "{\"host\": \"h\", \"port\": \"{{ "
                                                          "params.p }}\"}") "]}");
    json_decref(rec);
    /* A value placed inside quotes in a raw (shell) parameter is refused. */
    json_t *errors = build_bad(
        "{\"name\": \"t\", \"parameters\": [{\"name\": \"x\"}], \"steps\": "
        "[" STEP("q", "core.shell.command", "{\"command\": \"echo \\\"{{ params.x }}\\\"\"}") "]}");
    json_t *e = error_for(errors, "q", "params.command");
    assert_string_equal(json_string_value(json_object_get(e, "position")), "1:7");
    json_decref(errors);
    /* Parameters a step does not take. */
    errors = build_bad("{\"name\": \"t\", \"steps\": [" STEP(
        "r", "linux.service.restart", "{\"name\": \"x\", \"nmae\": \"y\"}") "]}");
    assert_msg(error_for(errors, "r", "params.nmae"), "not an allowed property");
    json_decref(errors);
}

static void parameters_are_typed_and_their_defaults_checked(void **state)
{
    (void)state;
    json_t *errors = build_bad(
        "{\"name\": \"p\", \"parameters\": [{\"name\": \"a\", \"type\": \"float\"}, {\"name\": "
        "\"b\", \"type\": \"choice\"}, {\"name\": \"c\", \"pattern\": \"^[a-z]+$\", \"default\": "
        "\"ABC\"}, {\"name\": \"d\", \"type\": \"int\", \"default\": \"x\"}, {\"name\": \"a\"}, "
        "{\"name\": \"9x\"}, {\"name\": \"e\", \"pattern\": \"(\"}], \"steps\": [" STEP(
            "s", "core.shell.command", "{\"command\": \"true\"}") "]}");
    assert_msg(error_for(errors, NULL, "type"), "string, int, bool, choice or secret");
    assert_msg(error_for(errors, NULL, "choices"), "choices");
    assert_msg(error_for(errors, NULL, "default"), "default");
    assert_msg(error_for(errors, NULL, "pattern"), "pattern");
    json_decref(errors);

    json_t *rec = build_ok(
        "{\"name\": \"p\", \"parameters\": [{\"name\": \"n\", \"type\": \"int\", \"default\": 3}, "
        "{\"name\": \"mode\", \"type\": \"choice\", \"choices\": [\"fast\", \"safe\"], "
        "\"required\": true}, {\"name\": \"tag\", \"pattern\": \"^v[0-9]+$\"}, {\"name\": "
        "\"pw\", \"secret\": true}], \"steps\": [" STEP("s", "core.shell.command",
                                                        "{\"command\": \"true\"}") "]}");
    json_t *pw = json_array_get(json_object_get(rec, "parameters"), 3);
    assert_string_equal(json_string_value(json_object_get(pw, "type")), "secret");
    json_object_set_new(rec, "id", json_string("01a00000-0000-7000-8000-000000000001"));
    job_plan *plan = NULL;
    json_t *perr = NULL, *params = NULL;
    assert_int_equal(job_plan_compile(w.h, rec, &plan, &perr), 0);
    assert_int_equal(json_array_size(plan->secret_params), 1);
    json_t *given = json_pack("{s:s}", "mode", "fast");
    assert_int_equal(job_plan_params(plan, given, &params, &perr), 0);
    assert_int_equal(json_integer_value(json_object_get(params, "n")), 3);
    json_decref(params);
    json_decref(given);
    const char *bad[] = {"{}", "{\"mode\": \"slow\"}", "{\"mode\": \"fast\", \"tag\": \"x1\"}",
                         "{\"mode\": \"fast\", \"n\": \"3\"}", "{\"mode\": \"fast\", \"z\": 1}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        given = json_loads(bad[i], 0, NULL);
        assert_int_equal(job_plan_params(plan, given, &params, &perr), OPSC_ESCHEMA);
        assert_null(params);
        assert_true(json_array_size(perr) > 0);
        json_decref(perr);
        json_decref(given);
    }
    job_plan_free(plan);
    json_decref(rec);
}

/* ---- versions ------------------------------------------------------------------------------ */

struct op {
    json_t *rec, *before, *out;
    const char *id;
    int64_t version, next;
};

static int insert_txn(store_txn *txn, void *ud)
{
    return job_insert(txn, ((struct op *)ud)->rec);
}

static int replace_txn(store_txn *txn, void *ud)
{
    struct op *o = ud;
    return job_replace(txn, o->before, o->rec, o->version);
}

static int list_txn(store_txn *txn, void *ud)
{
    struct op *o = ud;
    return job_versions_list(txn, o->id, o->version, 2, &o->out, &o->next);
}

static int version_txn(store_txn *txn, void *ud)
{
    struct op *o = ud;
    return job_version_get(txn, o->id, o->version, &o->out);
}

static int remove_txn(store_txn *txn, void *ud)
{
    struct op *o = ud;
    return job_remove(txn, o->id, 0);
}

static int get_txn(store_txn *txn, void *ud)
{
    struct op *o = ud;
    return job_get(txn, o->id, &o->out);
}

static void every_change_is_a_version_and_old_ones_stay_readable(void **state)
{
    (void)state;
    json_t *rec = build_ok("{\"name\": \"v\", \"description\": \"one\", \"steps\": [" STEP(
        "s", "core.shell.command", "{\"command\": \"true\"}") "]}");
    struct op o = {rec};
    assert_int_equal(store_write(w.st, insert_txn, &o), 0);
    char id[40];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(rec, "id")));
    for (int i = 2; i <= 3; i++) {
        json_t *patch = json_pack("{s:s}", "description", i == 2 ? "two" : "three"), *next = NULL,
               *errors = NULL;
        assert_int_equal(job_build(w.h, patch, rec, &next, &errors), 0);
        struct op r = {next, rec, NULL, NULL, i - 1};
        assert_int_equal(store_write(w.st, replace_txn, &r), 0);
        assert_int_equal(json_integer_value(json_object_get(next, "version")), i);
        json_decref(rec);
        json_decref(patch);
        rec = next;
    }
    struct op stale = {rec, rec, NULL, NULL, 1};
    assert_int_equal(store_write(w.st, replace_txn, &stale), OPSC_ECONFLICT);
    struct op l = {.id = id};
    assert_int_equal(store_read(w.st, list_txn, &l), 0);
    assert_int_equal(json_array_size(l.out), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(l.out, 0), "version")), 3);
    assert_int_equal(l.next, 2);
    json_decref(l.out);
    l.version = l.next;
    assert_int_equal(store_read(w.st, list_txn, &l), 0);
    assert_int_equal(json_array_size(l.out), 1);
    assert_int_equal(l.next, 0);
    json_decref(l.out);
    struct op v = {.id = id, .version = 1};
    assert_int_equal(store_read(w.st, version_txn, &v), 0);
    assert_string_equal(json_string_value(json_object_get(v.out, "description")), "one");
    json_decref(v.out);
    struct op g = {.id = "v"}; /* by name */
    assert_int_equal(store_read(w.st, get_txn, &g), 0);
    assert_string_equal(json_string_value(json_object_get(g.out, "description")), "three");
    json_decref(g.out);
    struct op d = {.id = id};
    assert_int_equal(store_write(w.st, remove_txn, &d), 0);
    assert_int_equal(store_read(w.st, version_txn, &v), OPSC_ENOENT);
    assert_int_equal(store_read(w.st, get_txn, &g), OPSC_ENOENT);
    json_decref(rec);
}

/* ---- export and import ------------------------------------------------------------------------
 */

static int seed_txn(store_txn *txn, void *ud)
{
    (void)ud;
    const char *recs[][3] = {{"targets", "01a00000-0000-7000-8000-0000000000a1", "web1"},
                             {"groups", "01a00000-0000-7000-8000-0000000000b1", "webs"},
                             {"credentials", "01a00000-0000-7000-8000-0000000000c1", "tok"}};
    const char *index[] = {"targets_by_name", "groups_by_name", "credentials_by_name"};
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        json_t *r = json_pack("{s:s, s:s}", "id", recs[i][1], "name", recs[i][2]);
        rc = store_create(txn, recs[i][0], r);
        if (rc == 0)
            rc = store_index_put(txn, index[i], recs[i][2], recs[i][1]);
        json_decref(r);
    }
    return rc;
}

struct xp {
    json_t *job, *doc, *body, *errors;
    char err[256];
};

static int export_txn(store_txn *txn, void *ud)
{
    struct xp *x = ud;
    return job_export(txn, x->job, &x->doc, x->err, sizeof(x->err));
}

static int import_txn(store_txn *txn, void *ud)
{
    struct xp *x = ud;
    return job_import(txn, x->doc, &x->body, &x->errors);
}

static void export_uses_names_and_import_maps_them_back(void **state)
{
    (void)state;
    assert_int_equal(store_write(w.st, seed_txn, NULL), 0);
    json_t *rec = build_ok(
        "{\"name\": \"x\", \"parameters\": [{\"name\": \"t\", \"type\": \"secret\", \"default\": "
        "\"01a00000-0000-7000-8000-0000000000c1\"}], \"targets\": {\"ids\": "
        "[\"01a00000-0000-7000-8000-0000000000a1\", \"01a00000-0000-7000-8000-0000000000ff\"], "
        "\"groups\": [\"01a00000-0000-7000-8000-0000000000b1\"], \"selector\": \"env=prod\"}, "
        "\"steps\": [" STEP("s", "core.shell.command", "{\"command\": \"true\"}") "]}");
    json_object_set_new(rec, "id", json_string("01a00000-0000-7000-8000-000000000099"));
    struct xp x = {rec};
    assert_int_equal(store_read(w.st, export_txn, &x), 0);
    json_t *job = json_object_get(x.doc, "job");
    char *text = json_dumps(x.doc, JSON_SORT_KEYS);
    assert_null(strstr(text, "0000000000a1"));
    assert_non_null(strstr(text, "\"web1\""));
    assert_non_null(strstr(text, "\"webs\""));
    free(text);
    assert_null(json_object_get(job, "id"));
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(job, "parameters"), 0), "default")),
                        "tok");
    assert_int_equal(json_array_size(json_object_get(x.doc, "warnings")), 1);
    assert_int_equal(store_read(w.st, import_txn, &x), 0);
    json_t *t = json_object_get(x.body, "targets");
    assert_string_equal(json_string_value(json_array_get(json_object_get(t, "ids"), 0)),
                        "01a00000-0000-7000-8000-0000000000a1");
    assert_string_equal(json_string_value(json_array_get(json_object_get(t, "groups"), 0)),
                        "01a00000-0000-7000-8000-0000000000b1");
    assert_string_equal(json_string_value(json_object_get(t, "selector")), "env=prod");
    json_decref(x.body);
    /* Names this installation does not have are named. */
    json_array_append_new(json_object_get(json_object_get(job, "targets"), "names"),
                          json_string("db9"));
    assert_int_equal(store_read(w.st, import_txn, &x), OPSC_ESCHEMA);
    assert_null(x.body);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_array_get(x.errors, 0), "message")),
               "no target named 'db9'"));
    json_decref(x.errors);
    json_decref(x.doc);
    json_decref(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_valid_job_gets_its_defaults),
        cmocka_unit_test(errors_name_the_step_the_field_and_the_position),
        cmocka_unit_test(when_names_only_earlier_steps),
        cmocka_unit_test(templates_and_raw_parameters_are_checked_for_the_shell),
        cmocka_unit_test(parameters_are_typed_and_their_defaults_checked),
        cmocka_unit_test(every_change_is_a_version_and_old_ones_stay_readable),
        cmocka_unit_test(export_uses_names_and_import_maps_them_back),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
