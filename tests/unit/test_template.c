/* test_template.c - the template language: syntax, filters, shell quoting proven by running sh. */
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

/* ---- helpers ------------------------------------------------------------------------ */

static json_t *ctx_of(const char *json)
{
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    if (!j)
        fail_msg("bad test context %s: %s", json, je.text);
    return j;
}

/* Compile and render; returns the output (caller frees) or fails the test. */
static char *render_opts(const char *text, const tpl_opts *opts, const json_t *ctx)
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

static void check_render(tpl_mode mode, const char *text, const char *ctx_json, const char *want)
{
    json_t *ctx = ctx_of(ctx_json);
    tpl_opts opts = {mode, NULL, NULL};
    char *out = render_opts(text, &opts, ctx);
    assert_string_equal(out, want);
    free(out);
    json_decref(ctx);
}

#define TEXT(tmpl, ctx, want)  check_render(TPL_TEXT, (tmpl), (ctx), (want))
#define POSIX(tmpl, ctx, want) check_render(TPL_POSIX, (tmpl), (ctx), (want))
#define PS(tmpl, ctx, want)    check_render(TPL_POWERSHELL, (tmpl), (ctx), (want))

/* Compilation must fail at line:col with `msg` in the message. */
static void check_compile_error(const tpl_opts *opts, const char *text, int line, int col,
                                const char *msg)
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

static void text_error(const char *text, int line, int col, const char *msg)
{
    tpl_opts opts = {TPL_TEXT, NULL, NULL};
    check_compile_error(&opts, text, line, col, msg);
}

static void shell_error(tpl_mode mode, const char *text, int line, int col, const char *msg)
{
    tpl_opts opts = {mode, NULL, NULL};
    check_compile_error(&opts, text, line, col, msg);
}

static void render_error(const char *text, const json_t *ctx, int want_rc, int line, int col,
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
static char *run_shell(const char *shell, const char *script, size_t *len)
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

/* ---- quoting: executed by real shells --------------------------------------------------- */

static const char *const attacks[] = {
    "'; touch PWNED #",
    "\"; touch PWNED #",
    "$(touch PWNED)",
    "`touch PWNED`",
    "x\ntouch PWNED",
    "x\r\ntouch PWNED",
    "\\'; touch PWNED; echo \\'",
    "'\\''; touch PWNED; '",
    "$'\\x27'; touch PWNED",
    "${IFS}touch${IFS}PWNED",
    "a; touch PWNED & touch PWNED | touch PWNED",
    "*",
    "~root",
    "$HOME $0 $$ $?",
    "-n",
    "",
    " ",
    "trailing\\",
    "'",
    "''",
    "\xe2\x80\x98; touch PWNED; \xe2\x80\x99",
    "<(touch PWNED) >PWNED",
    "\t\v\f\x01\x7f",
};

static void values_arrive_literally_in_posix_sh(void **state)
{
    (void)state;
    char dir[] = "/tmp/opsc-tpl-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *shells[] = {"/bin/sh", "/bin/bash", "/bin/dash"};
    tpl *t;
    tpl_err e;
    const char *text = "cd {{ run.dir }} && printf '%s' {{ params.x }}";
    tpl_opts opts = {TPL_POSIX, NULL, NULL};
    assert_int_equal(tpl_compile(&t, text, strlen(text), &opts, &e), 0);
    for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
        json_t *ctx = json_pack("{s:{s:s}, s:{s:s}}", "params", "x", attacks[i], "run", "dir", dir);
        char *script;
        assert_int_equal(tpl_render_str(t, ctx, &script, &e), 0);
        for (size_t s = 0; s < 3; s++) {
            if (access(shells[s], X_OK) != 0)
                continue;
            size_t len;
            char *out = run_shell(shells[s], script, &len);
            if (len != strlen(attacks[i]) || memcmp(out, attacks[i], len) != 0)
                fail_msg("%s turned <%s> into <%s> (script %s)", shells[s], attacks[i], out,
                         script);
            free(out);
        }
        free(script);
        json_decref(ctx);
    }
    char canary[64];
    snprintf(canary, sizeof(canary), "%s/PWNED", dir);
    assert_int_equal(access(canary, F_OK), -1);
    rmdir(dir);
    tpl_free(t);
}

static void arrays_become_one_word_per_element_in_sh(void **state)
{
    (void)state;
    json_t *ctx = json_pack("{s:{s:[s,s,s,i], s:{s:s,s:s}}}", "params", "l", "a b", "$(id)", "'", 7,
                            "env", "GREETING", "it's $HOME", "EMPTY", "");
    tpl_opts opts = {TPL_POSIX, NULL, NULL};
    char *script = render_opts("printf '[%s]' {{ params.l | args }}; "
                               "{% for k, v in params.env %}export {{ k ~ '=' ~ v }}; "
                               "{% endfor %}printf '<%s>' \"$GREETING\" \"$EMPTY\"",
                               &opts, ctx);
    size_t len;
    char *out = run_shell("/bin/sh", script, &len);
    assert_string_equal(out, "[a b][$(id)]['][7]<it's $HOME><>");
    free(out);
    free(script);
    json_decref(ctx);
}

static void nul_in_a_value_is_refused(void **state)
{
    (void)state;
    json_t *ctx = json_pack("{s:{s:o}}", "params", "x", json_stringn("a\0b", 3));
    render_error("echo {{ params.x }}", ctx, OPSC_EINVAL, 1, 9, "NUL");
    json_decref(ctx);
    tpl *t;
    tpl_err e;
    assert_int_equal(tpl_compile(&t, "a\0b", 3, NULL, &e), OPSC_ESYNTAX);
    assert_int_equal(e.col, 2);
    strbuf sb = STRBUF_INIT;
    assert_int_equal(tpl_quote(TPL_POSIX, "a\0b", 3, &sb), OPSC_EINVAL);
    sb_free(&sb);
}

static void scalars_are_quoted_for_each_shell(void **state)
{
    (void)state;
    const char *ctx = "{\"params\":{\"s\":\"it's\",\"n\":5,\"r\":2.5,\"t\":true,\"f\":false,"
                      "\"z\":null,\"l\":[\"a\",1,false],\"o\":{\"k\":\"v'\"},\"e\":[]}}";
    POSIX("x {{ params.s }} {{ params.n }} {{ params.r }} {{ params.t }} {{ params.f }} "
          "{{ params.z }} {{ params.l | args }} {{ params.o }} {{ params.e | args }}.",
          ctx, "x 'it'\\''s' 5 2.5 true false '' 'a' 1 false '{\"k\":\"v'\\''\"}' .");
    PS("x {{ params.s }} {{ params.n }} {{ params.r }} {{ params.t }} {{ params.f }} "
       "{{ params.z }} {{ params.l | args }} {{ params.o }} {{ params.e | args }}.",
       ctx, "x 'it''s' 5 2.5 $true $false $null @('a', 1, $false) '{\"k\":\"v''\"}' @().");
}

static void powershell_quoting_is_exact(void **state)
{
    (void)state;
    static const struct {
        const char *value, *want;
    } cases[] = {
        {"'; Remove-Item -Recurse C:\\ ; '", "'''; Remove-Item -Recurse C:\\ ; '''"},
        {"$(Stop-Computer)", "'$(Stop-Computer)'"},
        {"a; calc.exe", "'a; calc.exe'"},
        {"\"$env:SECRET\" `n", "'\"$env:SECRET\" `n'"},
        {"\xe2\x80\x98; calc; \xe2\x80\x99", "'\xe2\x80\x98\xe2\x80\x98; calc; "
                                             "\xe2\x80\x99\xe2\x80\x99'"},
        {"\xe2\x80\x9a\xe2\x80\x9b", "'\xe2\x80\x9a\xe2\x80\x9a\xe2\x80\x9b\xe2\x80\x9b'"},
        {"\xe2\x80\x9c\xe2\x80\x9d\xe2\x80\x9e", "'\xe2\x80\x9c\xe2\x80\x9d\xe2\x80\x9e'"},
        {"line1\nline2", "'line1\nline2'"},
        {"@'\n'@", "'@''\n''@'"},
        {"", "''"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *ctx = json_pack("{s:{s:s}}", "params", "x", cases[i].value);
        tpl_opts opts = {TPL_POWERSHELL, NULL, NULL};
        char *out = render_opts("Write-Output {{ params.x }}", &opts, ctx);
        if (strncmp(out, "Write-Output ", 13) != 0 || strcmp(out + 13, cases[i].want) != 0)
            fail_msg("<%s> rendered as <%s>, want <%s>", cases[i].value, out + 13, cases[i].want);
        free(out);
        json_decref(ctx);
    }
}

/* Read a PowerShell single-quoted string as PowerShell's tokenizer does: any
 * of the five single quotes ends it unless the next character is one too. */
static size_t ps_quote_char(const unsigned char *s)
{
    if (s[0] == '\'')
        return 1;
    return s[0] == 0xE2 && s[1] == 0x80 && s[2] >= 0x98 && s[2] <= 0x9B ? 3 : 0;
}

static char *ps_read_single_quoted(const char *text, size_t *consumed)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 1, o = 0, q;
    char *out = malloc(strlen(text) + 1);
    assert_int_equal(s[0], '\'');
    for (;;) {
        assert_true(s[i] != '\0'); /* unterminated */
        if ((q = ps_quote_char(s + i)) != 0) {
            size_t q2 = ps_quote_char(s + i + q);
            if (!q2)
                break;
            memcpy(out + o, s + i + q, q2); /* doubled: the second one is kept */
            o += q2;
            i += q + q2;
        } else {
            out[o++] = (char)s[i++];
        }
    }
    out[o] = '\0';
    *consumed = i + q;
    return out;
}

static void powershell_quoting_round_trips_random_text(void **state)
{
    (void)state;
    static const char *const pieces[] = {"'",
                                         "\xe2\x80\x98",
                                         "\xe2\x80\x99",
                                         "\xe2\x80\x9a",
                                         "\xe2\x80\x9b",
                                         "\"",
                                         "$(",
                                         ")",
                                         ";",
                                         "`",
                                         "\n",
                                         "a",
                                         " ",
                                         "@",
                                         "#",
                                         "\xe2\x80\x9c",
                                         "{",
                                         "}"};
    srand(42);
    for (int iter = 0; iter < 20000; iter++) {
        char value[256] = "";
        int n = rand() % 12;
        for (int k = 0; k < n; k++)
            strcat(value, pieces[rand() % (int)(sizeof(pieces) / sizeof(pieces[0]))]);
        strbuf sb = STRBUF_INIT;
        assert_int_equal(tpl_quote(TPL_POWERSHELL, value, strlen(value), &sb), 0);
        size_t used;
        char *back = ps_read_single_quoted(sb.buf, &used);
        if (strcmp(back, value) != 0 || used != sb.len)
            fail_msg("<%s> quoted as <%s> reads back as <%s>", value, sb.buf, back);
        free(back);
        sb_free(&sb);
    }
}

/* ---- the shell context check ---------------------------------------------------------------- */

static void values_placed_where_quoting_fails_are_refused(void **state)
{
    (void)state;
    shell_error(TPL_POSIX, "echo \"{{ params.x }}\"", 1, 7, "inside a quoted string");
    shell_error(TPL_POSIX, "echo 'a{{ params.x }}'", 1, 8, "inside a quoted string");
    shell_error(TPL_POSIX, "ls # {{ params.x }}", 1, 6, "inside a comment");
    shell_error(TPL_POSIX, "cat <<EOF\n{{ params.x }}\nEOF", 2, 1, "here-document");
    shell_error(TPL_POSIX, "echo \\{{ params.x }}", 1, 7, "backslash");
    shell_error(TPL_POSIX, "echo ${{ params.x }}", 1, 7, "after '$'");
    shell_error(TPL_POSIX, "echo ${x:-{{ params.x }}}", 1, 11, "${...}");
    shell_error(TPL_POSIX, "cat <<{{ params.x }}", 1, 7, "delimiter");
    /* bash ends `...` at a backquote inside single quotes: `echo 'a`; evil; `'` runs evil */
    shell_error(TPL_POSIX, "x=`echo {{ params.x }}`", 1, 9, "inside `...`");
    /* bash expands $(...) inside arithmetic even from single quotes */
    shell_error(TPL_POSIX, "echo $(( {{ params.n }} * 2 ))", 1, 10, "inside arithmetic");
    shell_error(TPL_POSIX, "(( {{ params.n }} > 1 )) && echo big", 1, 4, "inside arithmetic");
    shell_error(TPL_POSIX, "echo ${x:-$(echo {{ params.x }})}", 1, 18, "inside ${...}");
    /* Found by the property test below: */
    shell_error(TPL_POSIX, "echo $((1<<2))# cat <<EOF\n{{ params.x }}", 2, 1, "here-document");
    shell_error(TPL_POSIX, "echo $${x:-cat <<EOF\n}{{ params.x }}", 2, 2, "here-document");
    shell_error(TPL_POSIX, "cat <<EOF\nx \\\nEOF\n{{ params.x }}\nEOF", 4, 1, "here-document");
    shell_error(TPL_POSIX, "\\\n# {{ params.x }}", 2, 3, "comment");
    shell_error(TPL_POSIX, "#\n# {{ params.x }}", 2, 3, "comment");
    shell_error(TPL_POSIX, "echo $'a\\'b' {{ params.x }}", 1, 14, "dash and bash");
    shell_error(TPL_POSIX, "x=\"$(a `b $(c {{ params.x }})`)\"", 1, 15, "inside `...`");
    shell_error(TPL_POWERSHELL, "icacls.exe --% {{ params.x }}\nx", 1, 16, "after --%");
    shell_error(TPL_POSIX, "echo \"$(echo 'x')\" '{% if params.a %}'{% endif %}", 1, 21,
                "branches");
    shell_error(TPL_POSIX, "{% for a in params.l %}echo '{% endfor %}", 1, 1, "leaves a quote");
    shell_error(TPL_POWERSHELL, "Write-Output \"a {{ params.x }}\"", 1, 17, "quoted string");
    shell_error(TPL_POWERSHELL, "Write-Output \xe2\x80\x9c{{ params.x }}", 1, 15, "quoted");
    shell_error(TPL_POWERSHELL, "Write-Output `{{ params.x }}", 1, 15, "backtick");
    shell_error(TPL_POWERSHELL, "Write-Output 'a'{{ params.x }}", 1, 17, "closing quote");
    shell_error(TPL_POWERSHELL, "$x = @'\n{{ params.x }}\n'@", 2, 1, "here-string");
    shell_error(TPL_POWERSHELL, "<# {{ params.x }} #>", 1, 4, "comment");
    shell_error(TPL_POWERSHELL, "# {{ params.x }}", 1, 3, "comment");
    shell_error(TPL_POWERSHELL, "${ {{ params.x }} }", 1, 4, "${...}");
}

static void values_in_plain_code_are_accepted(void **state)
{
    (void)state;
    const char *ctx = "{\"params\":{\"x\":\"v\"}}";
    POSIX("a=$(echo {{ params.x }}) b=\"$(echo {{ params.x }})\" `echo x`", ctx,
          "a=$(echo 'v') b=\"$(echo 'v')\" `echo x`");
    POSIX("cat <<'EOF'\n$HOME '\nEOF\necho {{ params.x }} # it's", ctx,
          "cat <<'EOF'\n$HOME '\nEOF\necho 'v' # it's");
    POSIX("cat <<-E\n\tE\necho {{ params.x }} <<<{{ params.x }}", ctx,
          "cat <<-E\n\tE\necho 'v' <<<'v'");
    POSIX("case x in a) echo {{ params.x }};; esac; (echo {{ params.x }})", ctx,
          "case x in a) echo 'v';; esac; (echo 'v')");
    POSIX("n=$((1 << 2)); ( (echo {{ params.x }}) ); echo $(echo {{ params.x }})", ctx,
          "n=$((1 << 2)); ( (echo 'v') ); echo $(echo 'v')");
    POSIX("echo 'it''s' {{ params.x }} \"q\"{{ params.x }}", ctx, "echo 'it''s' 'v' \"q\"'v'");
    PS("Write-Output \"$($x) {0}\" {{ params.x }}; $(Get-Item {{ params.x }})", ctx,
       "Write-Output \"$($x) {0}\" 'v'; $(Get-Item 'v')");
    PS("icacls.exe --% /grant x\nWrite-Output {{ params.x }} --x", ctx,
       "icacls.exe --% /grant x\nWrite-Output 'v' --x");
    PS("$h = @'\nit's\n'@\nWrite-Output {{ params.x }} <# c #> 'it''s' {{ params.x }}", ctx,
       "$h = @'\nit's\n'@\nWrite-Output 'v' <# c #> 'it''s' 'v'");
}

/* Run a script with a 2 s limit, output discarded; returns the exit status. */
static int run_quietly(const char *shell, const char *script)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0), dup2(null, 1), dup2(null, 2);
        alarm(2);
        execl(shell, shell, "-c", script, (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* True when `shell` parses the template rendered with a harmless value. */
static bool parses(const char *shell, const tpl *t)
{
    json_t *ctx = json_pack("{s:{s:s}}", "params", "x", "v");
    char *script, *checked;
    tpl_err e;
    assert_int_equal(tpl_render_str(t, ctx, &script, &e), 0);
    assert_true(asprintf(&checked, "set -n\n%s", script) > 0);
    bool ok = run_quietly(shell, checked) == 0;
    free(checked);
    free(script);
    json_decref(ctx);
    return ok;
}

/* Differential check of the shell context check: random templates built from
 * quoting-relevant pieces; every one the compiler accepts is rendered with a
 * value that carries each escape at once and run by bash and dash. If any
 * placement the checker allowed let the value run as code, the canary exists.
 * Only templates that are valid shell (with a harmless value) are run, as
 * step templates must be (the golden tests run sh -n and bash -n): a quoted
 * word cannot change a valid template's token structure, but after a syntax
 * error bash 5.2's recovery may mis-read the rest, quotes included. */
static void accepted_templates_never_let_a_value_run_as_code(void **state)
{
    (void)state;
    static const char *const pieces[] = {"echo ",
                                         "\"",
                                         "'",
                                         "$(",
                                         ")",
                                         "`",
                                         "# ",
                                         "\n",
                                         "cat <<EOF\n",
                                         "EOF\n",
                                         " ",
                                         "\\",
                                         "$",
                                         "${x:-",
                                         "}",
                                         "; ",
                                         "a=",
                                         "(",
                                         "{{ params.x }}",
                                         "{{ params.x }}",
                                         "{{ params.x }}",
                                         "<<-'E'\n",
                                         "\tE\n",
                                         "$((1<<2))",
                                         "case x in x) ",
                                         ";; esac ",
                                         "\\\n",
                                         "$$",
                                         "$'a\\'b'",
                                         "2#1"};
    char dir[] = "/tmp/opsc-tpl-prop-XXXXXX", canary[64], value[256];
    assert_non_null(mkdtemp(dir));
    snprintf(canary, sizeof(canary), "%s/RAN", dir);
    snprintf(value, sizeof(value), "a'\"`$(touch %s)`\ntouch %s\n`;touch %s;`#\\'$'\\x27'", canary,
             canary, canary);
    json_t *ctx = json_pack("{s:{s:s}}", "params", "x", value);
    tpl_opts opts = {TPL_POSIX, NULL, NULL};
    const char *shells[] = {"/bin/bash", "/bin/dash"};
    const char *iter_env = getenv("OPSC_PROP_ITERATIONS");
    int accepted = 0, executed = 0, iterations = iter_env ? atoi(iter_env) : 1500;
    srand(getenv("OPSC_PROP_SEED") ? (unsigned)atoi(getenv("OPSC_PROP_SEED")) : 7);
    for (int iter = 0; iter < iterations; iter++) {
        char text[512] = "";
        int n = 2 + rand() % 8;
        for (int k = 0; k < n; k++)
            strcat(text, pieces[rand() % (int)(sizeof(pieces) / sizeof(pieces[0]))]);
        if (!strstr(text, "{{"))
            continue;
        tpl *t;
        tpl_err e;
        if (tpl_compile(&t, text, strlen(text), &opts, &e) != 0)
            continue;
        char *script;
        assert_int_equal(tpl_render_str(t, ctx, &script, &e), 0);
        accepted++;
        for (int sh = 0; sh < 2; sh++) {
            if (access(shells[sh], X_OK) != 0 || !parses(shells[sh], t))
                continue;
            executed++;
            run_quietly(shells[sh], script);
            if (access(canary, F_OK) == 0) {
                unlink(canary);
                rmdir(dir);
                fail_msg("%s ran the value as code. Template:\n%s\nRendered:\n%s", shells[sh], text,
                         script);
            }
        }
        free(script);
        tpl_free(t);
    }
    assert_true(accepted > 100 && executed > 50);
    json_decref(ctx);
    rmdir(dir);
}

/* ---- raw --------------------------------------------------------------------------------------
 */

static void raw_is_allowed_only_for_declared_raw_params(void **state)
{
    (void)state;
    json_t *ctx = ctx_of("{\"params\":{\"command\":\"ls -l | wc -l\",\"cmds\":[\"a;b\"],"
                         "\"name\":\"x\"}}");
    tpl_opts raw = {TPL_POSIX, "command, cmds", NULL};
    char *out = render_opts("{{ params.command | raw }}; {% for c in params.cmds %}"
                            "{{ c | raw }}{% endfor %}; {{ params.command | trim | raw }}",
                            &raw, ctx);
    assert_string_equal(out, "ls -l | wc -l; a;b; ls -l | wc -l");
    free(out);
    tpl_opts none = {TPL_POSIX, NULL, NULL};
    check_compile_error(&none, "x {{ params.command | raw }}", 1, 23, "declares no raw");
    check_compile_error(&raw, "x {{ params.name | raw }}", 1, 6, "not 'params.name'");
    check_compile_error(&raw, "{{ target.address | raw }}", 1, 4, "not 'target.address'");
    check_compile_error(&raw, "{{ (params.command ~ params.name) | raw }}", 1, 22,
                        "not 'params.name'");
    check_compile_error(&raw, "{{ params.command | raw | trim }}", 1, 21, "last filter");
    check_compile_error(&raw, "{% if params.command | raw %}{% endif %}", 1, 24, "last filter");
    tpl_opts text = {TPL_TEXT, NULL, NULL}; /* no shell: raw changes nothing */
    out = render_opts("{{ params.name | raw }}", &text, ctx);
    assert_string_equal(out, "x");
    free(out);
    json_decref(ctx);
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
