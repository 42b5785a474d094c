/* test_template_shell.c - shell quoting proven by running sh, bash and dash; the shell check. */
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

void values_arrive_literally_in_posix_sh(void **state)
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

void arrays_become_one_word_per_element_in_sh(void **state)
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

void nul_in_a_value_is_refused(void **state)
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

void scalars_are_quoted_for_each_shell(void **state)
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

void powershell_quoting_is_exact(void **state)
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

void powershell_quoting_round_trips_random_text(void **state)
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

void values_placed_where_quoting_fails_are_refused(void **state)
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
    shell_error(TPL_POSIX, "\"$\\\n$({{ params.x }}\"", 2, 3, "quoted string"); /* "$$(" */
    shell_error(TPL_POSIX, "echo <\\\n<EOF\n{{ params.x }}\nEOF", 3, 1, "here-document");
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

void values_in_plain_code_are_accepted(void **state)
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
void accepted_templates_never_let_a_value_run_as_code(void **state)
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
    /* 1,500 iterations accept over 100 templates and run over 50 */
    assert_true(accepted > iterations / 15 && executed > iterations / 30);
    json_decref(ctx);
    rmdir(dir);
}

/* ---- raw --------------------------------------------------------------------------------------
 */

void raw_is_allowed_only_for_declared_raw_params(void **state)
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
