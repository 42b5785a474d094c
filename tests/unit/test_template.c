/* test_template.c - the template language: syntax, filters, errors, limits, threads (main). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "template.h"
#include "template_test.h"

/* ---- helpers ------------------------------------------------------------------------ */

json_t *ctx_of(const char *json)
{
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    if (!j)
        fail_msg("bad test context %s: %s", json, je.text);
    return j;
}

/* Compile and render; returns the output (caller frees) or fails the test. */
char *render_opts(const char *text, const tpl_opts *opts, const json_t *ctx)
{
    tpl *t;
    tpl_err e;
    int rc = tpl_compile(&t, text, strlen(text), opts, &e);
    if (rc != 0)
        fail_msg("compile of <%s> failed: %d:%d %s", text, e.line, e.col, e.msg);
    char *out;
    rc = tpl_render_str(t, ctx, &out, &e);
    if (rc != 0)
        fail_msg("render of <%s> failed: %d:%d %s", text, e.line, e.col, e.msg);
    tpl_free(t);
    return out;
}

void check_render(tpl_mode mode, const char *text, const char *ctx_json, const char *want)
{
    json_t *ctx = ctx_of(ctx_json);
    tpl_opts opts = {mode, NULL, NULL};
    char *out = render_opts(text, &opts, ctx);
    assert_string_equal(out, want);
    free(out);
    json_decref(ctx);
}

/* Compilation must fail at line:col with `msg` in the message. */
void check_compile_error(const tpl_opts *opts, const char *text, int line, int col, const char *msg)
{
    tpl *t = NULL;
    tpl_err e;
    int rc = tpl_compile(&t, text, strlen(text), opts, &e);
    if (rc == 0) {
        tpl_free(t);
        fail_msg("<%s> compiled but should fail with '%s'", text, msg);
    }
    assert_int_equal(rc, OPSC_ESYNTAX);
    if (!strstr(e.msg, msg))
        fail_msg("<%s>: message '%s' lacks '%s'", text, e.msg, msg);
    if (e.line != line || e.col != col)
        fail_msg("<%s>: error at %d:%d, want %d:%d (%s)", text, e.line, e.col, line, col, e.msg);
}

void text_error(const char *text, int line, int col, const char *msg)
{
    tpl_opts opts = {TPL_TEXT, NULL, NULL};
    check_compile_error(&opts, text, line, col, msg);
}

void shell_error(tpl_mode mode, const char *text, int line, int col, const char *msg)
{
    tpl_opts opts = {mode, NULL, NULL};
    check_compile_error(&opts, text, line, col, msg);
}

void render_error(const char *text, const json_t *ctx, int want_rc, int line, int col,
                  const char *msg)
{
    tpl *t;
    tpl_err e;
    tpl_opts opts = {TPL_POSIX, NULL, NULL};
    assert_int_equal(tpl_compile(&t, text, strlen(text), &opts, &e), 0);
    char *out = NULL;
    int rc = tpl_render_str(t, ctx, &out, &e);
    tpl_free(t);
    assert_null(out);
    assert_int_equal(rc, want_rc);
    if (!strstr(e.msg, msg))
        fail_msg("<%s>: message '%s' lacks '%s'", text, e.msg, msg);
    if (line && (e.line != line || e.col != col))
        fail_msg("<%s>: error at %d:%d, want %d:%d", text, e.line, e.col, line, col);
}

/* Run `script` with `shell` -c and return its stdout (caller frees). */
char *run_shell(const char *shell, const char *script, size_t *len)
{
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl(shell, shell, "-c", script, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    size_t cap = 256, n = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(out[0], buf + n, cap - n - 1)) > 0) {
        n += (size_t)r;
        if (cap - n < 64)
            buf = realloc(buf, cap *= 2);
    }
    close(out[0]);
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("%s -c failed (status %d) on: %s", shell, status, script);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- substitution and syntax --------------------------------------------------------- */

static void substitutes_params_target_steps_and_run(void **state)
{
    (void)state;
    const char *ctx = "{\"params\":{\"name\":\"web\"},\"target\":{\"address\":\"10.0.0.5\","
                      "\"labels\":{\"env\":\"prod\",\"app.kubernetes.io/name\":\"x\"}},"
                      "\"steps\":{\"build\":{\"outputs\":{\"url\":\"http://a\"}},"
                      "\"db-migrate\":{\"outputs\":{\"rc\":0}}},\"run\":{\"id\":\"r1\"}}";
    TEXT("{{ params.name }}@{{ target.address }}/{{ target.labels.env }} "
         "{{ steps.build.outputs.url }} {{ run.id }} {{ steps.db-migrate.outputs.rc }} "
         "{{ target.labels['app.kubernetes.io/name'] }}",
         ctx, "web@10.0.0.5/prod http://a r1 0 x");
    TEXT("{{params.name}}{{-  params.name  -}}  !", ctx, "webweb!");
}

static void if_elif_else_choose_one_branch(void **state)
{
    (void)state;
    const char *t = "{% if params.n > 10 %}big{% elif params.n == 5 %}five{% elif params.n %}"
                    "some{% else %}none{% endif %}";
    TEXT(t, "{\"params\":{\"n\":11}}", "big");
    TEXT(t, "{\"params\":{\"n\":5}}", "five");
    TEXT(t, "{\"params\":{\"n\":2}}", "some");
    TEXT(t, "{\"params\":{\"n\":0}}", "none");
    TEXT("{% if params.n %}some{% else %}none{% endif %}", "{\"params\":{}}", "none");
    TEXT("{% if params.a and not params.b or params.c %}y{% endif %}",
         "{\"params\":{\"a\":1,\"b\":0}}", "y");
    TEXT("{% if 'x' in params.s and 3 not in params.l %}y{% endif %}"
         "{% if params.k in params.o %}k{% endif %}",
         "{\"params\":{\"s\":\"axb\",\"l\":[1,2],\"k\":\"a\",\"o\":{\"a\":1}}}", "yk");
    TEXT("{{ params.x is defined }} {{ params.y is not defined }} {{ params.n is none }} "
         "{{ params.x is undefined }}",
         "{\"params\":{\"x\":1,\"n\":null}}", "true true true false");
    TEXT("{% if params.a == 1.0 %}eq{% endif %}", "{\"params\":{\"a\":1}}", "eq");
}

static void for_loops_over_arrays_and_objects_with_loop_variables(void **state)
{
    (void)state;
    const char *ctx = "{\"params\":{\"l\":[\"a\",\"b\",\"c\"],\"o\":{\"x\":1,\"y\":2},\"e\":[]}}";
    TEXT("{% for v in params.l %}{{ loop.index }}{{ v }}{% if not loop.last %},{% endif %}"
         "{% endfor %}",
         ctx, "1a,2b,3c");
    TEXT("{% for k, v in params.o %}{{ k }}={{ v }};{% endfor %}", ctx, "x=1;y=2;");
    TEXT("{% for k in params.o %}{{ k }}{% endfor %}", ctx, "xy");
    TEXT("[{% for v in params.e %}x{% endfor %}{% for v in params.missing %}x{% endfor %}]", ctx,
         "[]");
    TEXT("{% for a in params.l %}{% for b in [1, 2] %}{{ a }}{{ b }}{{ loop.index0 }} "
         "{% endfor %}{{ loop.first }}|{% endfor %}",
         ctx, "a10 a21 true|b10 b21 false|c10 c21 false|");
}

static void block_tags_on_their_own_lines_leave_no_blank_lines(void **state)
{
    (void)state;
    const char *t = "start\n"
                    "  {% if params.a %}\n"
                    "  yes\n"
                    "  {% else %}\n"
                    "  no\n"
                    "  {% endif %}\n"
                    "{# a comment #}\n"
                    "end\n";
    TEXT(t, "{\"params\":{\"a\":true}}", "start\n  yes\nend\n");
    TEXT(t, "{\"params\":{}}", "start\n  no\nend\n");
    TEXT("a {% raw %}{{ not.a.tag }} {% if %}{% endraw %} b", "{}", "a {{ not.a.tag }} {% if %} b");
}

static void filters_transform_values(void **state)
{
    (void)state;
    const char *ctx = "{\"params\":{\"s\":\" Hello Wörld \",\"l\":[1,\"two\",true,null],"
                      "\"o\":{\"b\":1,\"a\":[1]},\"n\":\"42\",\"z\":0,\"p\":\"/etc/nginx/"
                      "nginx.conf\",\"e\":\"\"}}";
    TEXT("{{ params.s | trim | upper }}|{{ params.s | lower | trim }}", ctx,
         "HELLO WöRLD|hello wörld");
    TEXT("{{ params.s | trim | replace('l', 'L') }}", ctx, "HeLLo WörLd");
    TEXT("{{ params.l | join(', ') }}|{{ params.l | join }}", ctx, "1, two, true, |1twotrue");
    TEXT("{{ params.s | trim | length }} {{ params.l | length }} {{ params.o | length }}", ctx,
         "11 4 2");
    TEXT("{{ params.missing | default('x') }} {{ params.z | default(7) }} "
         "{{ params.z | default(7, true) }} {{ params.e | default('empty', true) }}",
         ctx, "x 0 7 empty");
    TEXT("{{ params.o | json }} {{ params.l | json }} {{ params.s | json }}", ctx,
         "{\"b\":1,\"a\":[1]} [1,\"two\",true,null] \" Hello Wörld \"");
    TEXT("{{ 'hi there' | b64encode }} {{ 'aGkgdGhlcmU=' | b64decode }} {{ '' | b64encode }} "
         "{{ 'ab' | b64encode }}",
         "{}", "aGkgdGhlcmU= hi there  YWI=");
    TEXT("{{ 'a,b,,c' | split(',') | length }} {{ 'a,b' | split(',') | last }} "
         "{{ params.l | first }}",
         ctx, "4 b 1");
    TEXT("{{ params.n | int }} {{ 3.9 | int }} {{ params.o | keys | join('+') }} "
         "{{ params.l | string }} {{ 5 | string }}",
         ctx, "42 3 b+a [1,\"two\",true,null] 5");
    TEXT("{{ params.p | basename }} {{ params.p | dirname }} {{ 'x' | dirname }} "
         "{{ '/x' | dirname }} {{ 'C:\\\\dir\\\\f.txt' | basename }}",
         ctx, "nginx.conf /etc/nginx . / f.txt");
    TEXT("{{ 'a' ~ 1 ~ true ~ [1] }} {{ 0.1 }} {{ -3 }} {{ 1.5 ~ '' }}", "{}",
         "a1true[1] 0.1 -3 1.5");
}

/* ---- errors ------------------------------------------------------------------------------ */

static void syntax_errors_report_line_and_column(void **state)
{
    (void)state;
    text_error("a\nb {{ params.x", 2, 3, "{{ is not closed");
    text_error("x {% if params.a %}\nno end", 1, 3, "{% if %} is not closed");
    text_error("{% for a in params.l %}", 1, 1, "{% for %} is not closed");
    text_error("ok\n  {% endif %}", 2, 6, "unexpected {% endif %}");
    text_error("{% fi %}", 1, 4, "unknown statement 'fi'");
    text_error("{{ 'abc }}", 1, 4, "unterminated string");
    text_error("{{ params.x ! 1 }}", 1, 13, "unexpected character '!'");
    text_error("{# open", 1, 1, "{# is not closed");
    text_error("{% raw %}x", 1, 1, "{% raw %} is not closed");
    text_error("{{ }}", 1, 4, "expected a value");
    text_error("{% for in params.l %}{% endfor %}", 1, 11, "expected 'in'");
    text_error("{% for params in [1] %}{% endfor %}", 1, 8, "cannot be a loop variable");
    text_error("{{ params.x is odd }}", 1, 16, "unknown test");
    text_error("ünï {{ params.x | nope }}", 1, 19, "unknown filter 'nope'");
}

static void unknown_variables_filters_and_bad_arguments_are_compile_errors(void **state)
{
    (void)state;
    text_error("{{ parms.x }}", 1, 4, "unknown variable 'parms'");
    text_error("{{ loop.index }}", 1, 4, "only defined inside");
    text_error("{% for x in params.l %}{{ loop.idx }}{% endfor %}", 1, 27, "unknown loop member");
    text_error("{{ params.x | uper }}", 1, 15, "unknown filter 'uper'");
    text_error("{{ params.x | replace('a') }}", 1, 15, "takes 2 arguments, got 1");
    text_error("{{ params.x | upper(1) }}", 1, 15, "takes 0 arguments, got 1");
    text_error("{{ params.x | join(1) }}", 1, 20, "argument 1 must be a string");
    text_error("{{ params.x | default('a', 'yes') }}", 1, 28, "argument 2 must be a boolean");
    text_error("{{ params.l | args | trim }}", 1, 15, "'args' is only allowed as the last");
    json_t *known = ctx_of("{\"name\":{},\"port\":{}}");
    tpl_opts opts = {TPL_POSIX, NULL, known};
    check_compile_error(&opts, "x {{ params.name }}\n  {{ params.nmae }}", 2, 6,
                        "unknown parameter 'nmae'");
    json_decref(known);
}

static void render_errors_report_position_and_reason(void **state)
{
    (void)state;
    json_t *ctx = ctx_of("{\"params\":{\"l\":[1],\"s\":\"x\",\"o\":{}}}");
    render_error("a\n  {{ params.missing }}", ctx, OPSC_EINVAL, 2, 6,
                 "'params.missing' is undefined");
    render_error("{{ params.l | upper }}", ctx, OPSC_EINVAL, 1, 15, "expects a string, got array");
    /* A list becomes several words only when asked: else sudo -u {{ x }} could gain a command. */
    render_error("sudo -u {{ params.l }} id", ctx, OPSC_EINVAL, 1, 12,
                 "'params.l' is a list: insert it with | args");
    render_error("{% for c in params.s %}{% endfor %}", ctx, OPSC_EINVAL, 1, 13,
                 "cannot loop over a string");
    render_error("{{ params.s | replace('', 'x') }}", ctx, OPSC_EINVAL, 1, 15, "empty");
    render_error("{{ params.s | int }}", ctx, OPSC_EINVAL, 1, 15, "not an integer");
    render_error("{{ params.o | first }}", ctx, OPSC_EINVAL, 1, 15, "expects an array");
    render_error("{{ 'x' | b64decode }}", ctx, OPSC_EINVAL, 1, 10, "not valid base64");
    render_error("{% if params.l < 'a' %}{% endif %}", ctx, OPSC_EINVAL, 1, 16, "cannot order");
    json_decref(ctx);
}

static void runaway_templates_hit_limits_instead_of_hanging(void **state)
{
    (void)state;
    json_t *ctx =
        ctx_of("{\"params\":{\"s\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
               "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}");
    const char *ten = "[0,1,2,3,4,5,6,7,8,9]";
    char text[1024];
    snprintf(text, sizeof(text),
             "{%% for a in %s %%}{%% for b in %s %%}{%% for c in %s %%}{%% for d in %s %%}"
             "{%% for e in %s %%}{%% for f in %s %%}{%% for g in %s %%}x{%% endfor %%}"
             "{%% endfor %%}{%% endfor %%}{%% endfor %%}{%% endfor %%}{%% endfor %%}{%% endfor %%}",
             ten, ten, ten, ten, ten, ten, ten);
    render_error(text, ctx, OPSC_E2BIG, 0, 0, "evaluation steps");
    snprintf(text, sizeof(text),
             "{%% for a in %s %%}{%% for b in %s %%}{%% for c in %s %%}{%% for d in %s %%}"
             "{%% for e in %s %%}{{ params.s }}{{ params.s }}{{ params.s }}{%% endfor %%}"
             "{%% endfor %%}{%% endfor %%}{%% endfor %%}{%% endfor %%}",
             ten, ten, ten, ten, ten);
    render_error(text, ctx, OPSC_E2BIG, 0, 0, "exceeds");
    json_decref(ctx);
    char deep[400] = "{{ ";
    for (int i = 0; i < 60; i++)
        strcat(deep, "(");
    strcat(deep, "1");
    for (int i = 0; i < 60; i++)
        strcat(deep, ")");
    strcat(deep, " }}");
    text_error(deep, 1, 4 + 48, "nested too deeply");
}

/* ---- compile once, render often, from many threads --------------------------------------------
 */

struct thread_arg {
    const tpl *t;
    int id;
    int failures;
};

static void *render_many(void *p)
{
    struct thread_arg *a = p;
    for (int i = 0; i < 2000; i++) {
        json_t *ctx =
            json_pack("{s:{s:i, s:[s,s]}}", "params", "n", a->id * 100000 + i, "l", "a'b", "c");
        char *out, want[128];
        tpl_err e;
        snprintf(want, sizeof(want), "n=%d 'a'\\''b' 'c' 2", a->id * 100000 + i);
        if (tpl_render_str(a->t, ctx, &out, &e) != 0 || strcmp(out, want) != 0)
            a->failures++;
        free(out);
        json_decref(ctx);
    }
    return NULL;
}

static void one_compiled_template_renders_concurrently(void **state)
{
    (void)state;
    const char *text = "n={{ params.n }} {{ params.l | args }} {{ params.l | length }}";
    tpl *t;
    tpl_err e;
    tpl_opts opts = {TPL_POSIX, NULL, NULL};
    assert_int_equal(tpl_compile(&t, text, strlen(text), &opts, &e), 0);
    assert_false(tpl_is_constant(t));
    assert_int_equal(tpl_get_mode(t), TPL_POSIX);
    pthread_t th[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){t, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, render_many, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    tpl_free(t);
    assert_int_equal(tpl_compile(&t, "uptime", 6, &opts, &e), 0);
    assert_true(tpl_is_constant(t));
    tpl_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(substitutes_params_target_steps_and_run),
        cmocka_unit_test(if_elif_else_choose_one_branch),
        cmocka_unit_test(for_loops_over_arrays_and_objects_with_loop_variables),
        cmocka_unit_test(block_tags_on_their_own_lines_leave_no_blank_lines),
        cmocka_unit_test(filters_transform_values),
        cmocka_unit_test(values_arrive_literally_in_posix_sh),
        cmocka_unit_test(arrays_become_one_word_per_element_in_sh),
        cmocka_unit_test(nul_in_a_value_is_refused),
        cmocka_unit_test(scalars_are_quoted_for_each_shell),
        cmocka_unit_test(powershell_quoting_is_exact),
        cmocka_unit_test(powershell_quoting_round_trips_random_text),
        cmocka_unit_test(values_placed_where_quoting_fails_are_refused),
        cmocka_unit_test(values_in_plain_code_are_accepted),
        cmocka_unit_test(accepted_templates_never_let_a_value_run_as_code),
        cmocka_unit_test(raw_is_allowed_only_for_declared_raw_params),
        cmocka_unit_test(syntax_errors_report_line_and_column),
        cmocka_unit_test(unknown_variables_filters_and_bad_arguments_are_compile_errors),
        cmocka_unit_test(render_errors_report_position_and_reason),
        cmocka_unit_test(runaway_templates_hit_limits_instead_of_hanging),
        cmocka_unit_test(one_compiled_template_renders_concurrently),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
