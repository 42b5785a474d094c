/* test_steplibs.c - the shipped step libraries through the real loader: golden renders, local runs.
 *
 * Golden files: tests/golden/<lib>/<step>.params.json is each step's example;
 * <step>.sh / <step>.ps1 are its rendered templates, reviewed by hand.
 * OPSC_UPDATE_GOLDEN=1 rewrites the rendered files instead of comparing.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "steplib_bundled.h"
#include "steplib_test.h"
#include "util.h"

struct steplib_world world;
const char *const lib_names[LIB_COUNT] = {"core", "linux", "windows"};

static uv_loop_t loop;
static cfg_file *cfg;
static plugin_host *host;

/* ---- fixture ------------------------------------------------------------------------- */

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

static int setup_world(void **state)
{
    (void)state;
    char path[512], err[512];
    snprintf(world.dir, sizeof(world.dir), "/tmp/opsc-steplibs-XXXXXX");
    assert_non_null(mkdtemp(world.dir));
    snprintf(world.files_dir, sizeof(world.files_dir), "%s/files", world.dir);
    assert_int_equal(mkdir(world.files_dir, 0700), 0);
    char cfg_text[512];
    /* The HTTP servers of these tests listen on loopback: the appliance itself. */
    snprintf(cfg_text, sizeof(cfg_text),
             "[plugin.steplib-core]\nfiles_dir = %s\nhttp_allow_local = true\n", world.files_dir);
    snprintf(path, sizeof(path), "%s/opsc.conf", world.dir);
    assert_int_equal(fs_write_file(path, cfg_text, strlen(cfg_text), 0600), 0);
    uv_loop_init(&loop);
    assert_int_equal(cfg_file_load(&cfg, path, err, sizeof(err)), 0);
    assert_int_equal(plugin_host_new(&host, &loop, cfg), 0);
    fake_host_install(host);
    for (int i = 0; i < LIB_COUNT; i++) {
        snprintf(path, sizeof(path), "%s/%s/steplib-%s.so",
                 env_or("OPSC_STEPLIB_BUILD_DIR", "steplibs"), lib_names[i], lib_names[i]);
        if (plugin_host_load_file(host, path, err, sizeof(err)) != 0)
            fail_msg("%s: %s", path, err);
        world.reg[i] = plugin_host_steplib(host, lib_names[i], 1);
        assert_non_null(world.reg[i]);
        /* As the daemon compiles its own: every_bundled_posix_template_parses_in_sh asks sh. */
        if (steplib_compile_bundled(&world.lib[i], world.reg[i]->desc, err, sizeof(err)) != 0)
            fail_msg("%s does not compile: %s", lib_names[i], err);
    }
    return 0;
}

static int teardown_world(void **state)
{
    (void)state;
    char cmd[128];
    for (int i = 0; i < LIB_COUNT; i++)
        steplib_free(world.lib[i]);
    plugin_host_free(host);
    cfg_file_free(cfg);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", world.dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* ---- shared helpers -------------------------------------------------------------------- */

const steptype *find_type(int lib, const char *name)
{
    const steptype *st = steplib_find(world.lib[lib], name);
    if (!st)
        fail_msg("%s.%s is not registered", lib_names[lib], name);
    return st;
}

json_t *run_context(const char *family, json_t *step_params)
{
    bool win = strcmp(family, "windows") == 0;
    return json_pack("{s:o, s:{s:s, s:s, s:s, s:i, s:s, s:{s:s}, s:{}}, s:{}, s:{s:s, s:s}}",
                     "params", step_params, "target", "id", "01900000-0000-7000-8000-000000000005",
                     "name", win ? "win-1" : "web-1", "address", win ? "10.0.0.6" : "10.0.0.5",
                     "port", win ? 5986 : 22, "os_family", family, "labels", "env", "prod", "facts",
                     "steps", "run", "id", "01900000-0000-7000-8000-0000000000aa", "job_id",
                     "01900000-0000-7000-8000-0000000000bb");
}

/* What the executor does before a step runs: render the job's values, validate. */
static json_t *prepare_params(const steptype *st, const char *family, const char *params_json)
{
    json_error_t je;
    json_t *raw = json_loads(params_json, 0, &je);
    if (!raw)
        fail_msg("%s: example params are not JSON: %s", st->name, je.text);
    json_t *job = json_pack("{s:s, s:s}", "note", "it's; rm -rf / #", "release", "1.4.2");
    json_t *ctx = run_context(family, job), *params;
    char err[512];
    if (steptype_render_params(st, raw, ctx, family, &params, err, sizeof(err)) != 0)
        fail_msg("%s: %s", st->name, err);
    json_decref(ctx);
    json_decref(raw);
    jschema_err e;
    if (st->params &&
        jschema_validate(st->params, params, JSCHEMA_DEFAULTS, "/params", &e, 1, NULL) != 0)
        fail_msg("%s: example params invalid: %s %s", st->name, e.path, e.msg);
    return params;
}

char *render_step(const steptype *st, const char *family, const char *params_json)
{
    json_t *ctx = run_context(family, prepare_params(st, family, params_json));
    char *out;
    tpl_err e;
    if (tpl_render_str(steptype_template(st, family), ctx, &out, &e) != 0)
        fail_msg("%s (%s): render failed at %d:%d: %s", st->name, family, e.line, e.col, e.msg);
    json_decref(ctx);
    return out;
}

/* Outputs from stdout, as the executor's output rules say. */
static json_t *parse_outputs(opsc_output_rule rule, const char *out)
{
    json_t *o = json_object();
    strbuf rest = STRBUF_INIT;
    sb_append(&rest, "", 0);
    const char *last = NULL;
    for (const char *line = out; *line;) {
        size_t n = strcspn(line, "\n");
        if (n && strncmp(line, "OPSC_OUTPUT ", 12) == 0 && rule >= OPSC_OUTPUT_KEY_VALUE) {
            char kv[1024];
            snprintf(kv, sizeof(kv), "%.*s", (int)(n - 12), line + 12);
            char *eq = strchr(kv, '=');
            assert_non_null(eq);
            *eq = '\0';
            json_t *v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
            json_object_set_new(o, kv, v ? v : json_string(eq + 1));
        } else {
            sb_append(&rest, line, n + (line[n] == '\n'));
            if (n)
                last = line;
        }
        line += n + (line[n] == '\n');
    }
    if (rule == OPSC_OUTPUT_JSON_LAST_LINE && last) {
        json_t *j = json_loadb(last, strcspn(last, "\n"), 0, NULL);
        if (!json_is_object(j))
            fail_msg("last line is not a JSON object: %s", last);
        json_object_update(o, j);
        json_decref(j);
    }
    if (rule == OPSC_OUTPUT_STDOUT || rule == OPSC_OUTPUT_STDOUT_KEY_VALUE) {
        size_t a = 0, b = rest.len;
        while (a < b && strchr(" \t\r\n", rest.buf[a]))
            a++;
        while (b > a && strchr(" \t\r\n", rest.buf[b - 1]))
            b--;
        json_object_set_new(o, "stdout", json_stringn(rest.buf + a, b - a));
    }
    sb_free(&rest);
    return o;
}

json_t *run_posix_step(int lib, const char *step, const char *params_json, int *exit_code)
{
    const steptype *st = find_type(lib, step);
    char *script = render_step(st, "linux", params_json), *out;
    size_t len;
    assert_int_equal(fake_run_shell("/bin/sh", script, 30000, &out, &len, exit_code), 0);
    json_t *outputs = parse_outputs(st->desc->output_rule, out);
    jschema_err e;
    if (st->outputs && jschema_validate(st->outputs, outputs, 0, NULL, &e, 1, NULL) != 0)
        fail_msg("%s: outputs %s do not match the schema: %s %s", step, out, e.path, e.msg);
    free(script);
    free(out);
    return outputs;
}

int run_imperative(int lib, const char *step, opsc_step_ctx *ctx)
{
    const steptype *st = find_type(lib, step);
    assert_non_null(st->desc->run);
    jschema_err e;
    if (st->params &&
        jschema_validate(st->params, ctx->params, JSCHEMA_DEFAULTS, NULL, &e, 1, NULL) != 0)
        fail_msg("%s: params invalid: %s %s", step, e.path, e.msg);
    int rc = st->desc->run(ctx, world.reg[lib]->state);
    if (rc == 0 && st->outputs &&
        jschema_validate(st->outputs, ctx->outputs, 0, NULL, &e, 1, NULL) != 0)
        fail_msg("%s: outputs do not match the schema: %s %s", step, e.path, e.msg);
    return rc;
}

/* ---- loading and golden files ------------------------------------------------------------ */

static void libraries_load_and_export_only_their_entry_symbol(void **state)
{
    (void)state;
    for (int i = 0; i < LIB_COUNT; i++) {
        const opsc_steplib *l = world.reg[i]->desc;
        assert_string_equal(l->name, lib_names[i]);
        assert_string_equal(l->version, "1.0.0");
        char cmd[512], line[256];
        snprintf(cmd, sizeof(cmd), "nm -D --defined-only %s/%s/steplib-%s.so",
                 env_or("OPSC_STEPLIB_BUILD_DIR", "steplibs"), lib_names[i], lib_names[i]);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        int symbols = 0;
        while (fgets(line, sizeof(line), p)) {
            symbols++;
            if (!strstr(line, " T opsc_plugin_entry"))
                fail_msg("%s exports more than its entry: %s", lib_names[i], line);
        }
        assert_int_equal(pclose(p), 0);
        assert_int_equal(symbols, 1);
    }
}

static char *golden_path(int lib, const char *step, const char *suffix)
{
    char *p = malloc(1024);
    snprintf(p, 1024, "%s/%s/%s.%s", env_or("OPSC_GOLDEN_DIR", "../tests/golden"), lib_names[lib],
             step, suffix);
    return p;
}

static char *read_text(const char *path)
{
    char *data = NULL;
    size_t len;
    return fs_read_file(path, 1u << 20, &data, &len) == 0 ? data : NULL;
}

/* `shell -n` on the script: it must at least parse. */
static void syntax_check(const char *shell, const char *name, const char *script)
{
    char path[128], cmd[256], *out;
    size_t len;
    int code;
    if (access(shell, X_OK) != 0)
        return;
    snprintf(path, sizeof(path), "%s/syntax-check.sh", world.dir);
    assert_int_equal(fs_write_file(path, script, strlen(script), 0600), 0);
    snprintf(cmd, sizeof(cmd), "%s -n %s 2>&1", shell, path);
    assert_int_equal(fake_run_shell("/bin/sh", cmd, 10000, &out, &len, &code), 0);
    if (code != 0)
        fail_msg("%s -n rejects %s: %s", shell, name, out);
    free(out);
}

static void compare_or_update(int lib, const char *step, const char *suffix, const char *got)
{
    char *path = golden_path(lib, step, suffix);
    if (getenv("OPSC_UPDATE_GOLDEN")) {
        assert_int_equal(fs_write_file(path, got, strlen(got), 0644), 0);
    } else {
        char *want = read_text(path);
        if (!want)
            fail_msg("missing golden file %s (run with OPSC_UPDATE_GOLDEN=1 and review it)", path);
        if (strcmp(want, got) != 0)
            fail_msg("%s differs from the rendered template:\n%s", path, got);
        free(want);
    }
    free(path);
}

static void every_step_renders_as_its_golden_files(void **state)
{
    (void)state;
    for (int lib = 0; lib < LIB_COUNT; lib++) {
        for (size_t i = 0; i < world.lib[lib]->ntypes; i++) {
            const steptype *st = &world.lib[lib]->types[i];
            const char *step = st->desc->name;
            char *ppath = golden_path(lib, step, "params.json"), *params = read_text(ppath);
            if (!params)
                fail_msg("%s has no example: %s", st->name, ppath);
            static const char *const families[] = {"linux", "windows"};
            for (int f = 0; f < 2; f++) {
                if (!steptype_template(st, families[f])) {
                    json_decref(prepare_params(st, families[f], params)); /* still validated */
                    continue;
                }
                char *script = render_step(st, families[f], params);
                compare_or_update(lib, step, f ? "ps1" : "sh", script);
                if (f == 0) {
                    syntax_check("/bin/sh", st->name, script);
                    syntax_check("/bin/bash", st->name, script);
                }
                free(script);
            }
            free(params);
            free(ppath);
        }
    }
}

static bool golden_name_known(int lib, const char *file)
{
    static const char *const suffixes[] = {".params.json", ".sh", ".ps1"};
    for (size_t i = 0; i < world.lib[lib]->ntypes; i++) {
        const steptype *st = &world.lib[lib]->types[i];
        size_t n = strlen(st->desc->name);
        if (strncmp(file, st->desc->name, n) != 0)
            continue;
        for (int s = 0; s < 3; s++)
            if (strcmp(file + n, suffixes[s]) == 0)
                return s == 0 || steptype_template(st, s == 1 ? "linux" : "windows");
    }
    return false;
}

static void golden_directory_has_no_stale_files(void **state)
{
    (void)state;
    for (int lib = 0; lib < LIB_COUNT; lib++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", env_or("OPSC_GOLDEN_DIR", "../tests/golden"),
                 lib_names[lib]);
        DIR *d = opendir(path);
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.' && !golden_name_known(lib, e->d_name))
                fail_msg("%s/%s belongs to no step type", path, e->d_name);
        closedir(d);
    }
}

/* ---- declarative steps run for real with /bin/sh ---------------------------------------- */

static void shell_command_runs_with_env_cwd_guards_and_quoted_job_values(void **state)
{
    (void)state;
    char params[1024];
    int code;
    snprintf(params, sizeof(params),
             "{\"command\": \"printf '%%s|%%s|%%s' {{ params.note }} \\\"$GREETING\\\" "
             "\\\"$(pwd)\\\"\", \"env\": {\"GREETING\": \"it's $(id)\"}, \"cwd\": \"%s\"}",
             world.dir);
    json_t *out = run_posix_step(LIB_CORE, "shell.command", params, &code);
    assert_int_equal(code, 0);
    char want[256];
    snprintf(want, sizeof(want), "it's; rm -rf / #|it's $(id)|%s", world.dir);
    assert_string_equal(json_string_value(json_object_get(out, "stdout")), want);
    assert_true(json_is_true(json_object_get(out, "changed")));
    json_decref(out);
    snprintf(params, sizeof(params), "{\"command\": \"echo ran\", \"creates\": \"%s\"}", world.dir);
    out = run_posix_step(LIB_CORE, "shell.command", params, &code);
    assert_true(json_is_false(json_object_get(out, "changed")));
    assert_string_equal(json_string_value(json_object_get(out, "stdout")), "");
    json_decref(out);
    out = run_posix_step(LIB_CORE, "shell.command",
                         "{\"command\": \"echo $0; exit 3\", \"shell\": \"/bin/bash\"}", &code);
    assert_int_equal(code, 3);
    assert_string_equal(json_string_value(json_object_get(out, "stdout")), "/bin/bash");
    json_decref(out);
}

static void shell_script_uploads_and_runs_with_an_interpreter_and_arguments(void **state)
{
    (void)state;
    int code;
    json_t *out = run_posix_step(
        LIB_CORE, "shell.script",
        "{\"script\": \"#!/bin/sh\\nfor a in \\\"$@\\\"; do printf '[%s]' \\\"$a\\\"; done\\n"
        "echo; echo \\\"$0\\\" | grep -q opsc-script && echo named; exit 4\\n\", "
        "\"args\": [\"a b\", \"$(id)\", \"'\"], \"interpreter\": \"/bin/dash\"}",
        &code);
    assert_int_equal(code, 4);
    assert_string_equal(json_string_value(json_object_get(out, "stdout")),
                        "[a b][$(id)][']\nnamed");
    json_decref(out);
    /* The script file is gone afterwards. */
    char *left;
    size_t len;
    assert_int_equal(fake_run_shell("/bin/sh",
                                    "ls ${TMPDIR:-/tmp} | grep -c '^opsc-script' || true", 5000,
                                    &left, &len, &code),
                     0);
    assert_string_equal(left, "0\n");
    free(left);
}

static void file_line_is_idempotent_and_edits_in_place(void **state)
{
    (void)state;
    char path[256], params[1024], *text;
    int code;
    snprintf(path, sizeof(path), "%s/sshd_config", world.dir);
    const char *initial = "Port 22\n#PermitRootLogin yes\nUsePAM yes"; /* no final newline */
    assert_int_equal(fs_write_file(path, initial, strlen(initial), 0640), 0);
    snprintf(params, sizeof(params),
             "{\"path\": \"%s\", \"line\": \"PermitRootLogin no\", \"regexp\": "
             "\"^#?PermitRootLogin\"}",
             path);
    json_t *out = run_posix_step(LIB_LINUX, "file.line", params, &code);
    assert_true(json_is_true(json_object_get(out, "changed")));
    json_decref(out);
    assert_non_null(text = read_text(path));
    assert_string_equal(text, "Port 22\nPermitRootLogin no\nUsePAM yes\n");
    free(text);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640); /* edited in place: mode kept */
    out = run_posix_step(LIB_LINUX, "file.line", params, &code);
    assert_true(json_is_false(json_object_get(out, "changed")));
    json_decref(out);
    snprintf(params, sizeof(params), "{\"path\": \"%s\", \"line\": \"Banner it's $(x)\"}", path);
    json_decref(run_posix_step(LIB_LINUX, "file.line", params, &code));
    snprintf(params, sizeof(params),
             "{\"path\": \"%s\", \"state\": \"absent\", \"regexp\": \"^Port \"}", path);
    out = run_posix_step(LIB_LINUX, "file.line", params, &code);
    assert_true(json_is_true(json_object_get(out, "changed")));
    json_decref(out);
    assert_non_null(text = read_text(path));
    assert_string_equal(text, "PermitRootLogin no\nUsePAM yes\nBanner it's $(x)\n");
    free(text);
}

static void facts_report_json_matching_their_output_schemas(void **state)
{
    (void)state;
    int code;
    json_t *mem = run_posix_step(LIB_LINUX, "facts.memory", "{}", &code);
    assert_int_equal(code, 0);
    assert_true(json_integer_value(json_object_get(mem, "total_kb")) > 0);
    json_decref(mem);
    json_t *disk = run_posix_step(LIB_LINUX, "facts.disk", "{\"path\": \"/\"}", &code);
    assert_int_equal(code, 0);
    json_t *fs = json_object_get(disk, "filesystems");
    assert_int_equal(json_array_size(fs), 1);
    assert_true(json_integer_value(json_object_get(json_array_get(fs, 0), "size_kb")) > 0);
    json_decref(disk);
    /* A path named by the user is reported even on a file system that the
     * listing of all of them leaves out as virtual (/ is an overlay in containers). */
    disk = run_posix_step(LIB_LINUX, "facts.disk", "{\"path\": \"/proc\"}", &code);
    assert_int_equal(code, 0);
    fs = json_object_get(disk, "filesystems");
    assert_int_equal(json_array_size(fs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(fs, 0), "mount")), "/proc");
    json_decref(disk);
}

/* Users, groups, packages and services change the machine: only with
 * OPSC_TEST_SYSTEM_STEPS=1, as root, in a throw-away container or VM. */
static void system_steps_work_on_this_machine_when_allowed(void **state)
{
    (void)state;
    if (!getenv("OPSC_TEST_SYSTEM_STEPS") || geteuid() != 0)
        skip();
    int code;
    const char *g = "{\"name\": \"opsc-test-grp\"}";
    const char *u = "{\"name\": \"opsc-test-user\", \"groups\": [\"opsc-test-grp\"], "
                    "\"shell\": \"/bin/sh\", \"comment\": \"it's a test\", "
                    "\"create_home\": false}";
    for (int round = 0; round < 2; round++) {
        json_t *out = run_posix_step(LIB_LINUX, "group.present", g, &code);
        assert_int_equal(code, 0);
        assert_true(json_is_true(json_object_get(out, "changed")) == (round == 0));
        json_decref(out);
        out = run_posix_step(LIB_LINUX, "user.present", u, &code);
        assert_int_equal(code, 0);
        assert_true(json_is_true(json_object_get(out, "changed")) == (round == 0));
        json_decref(out);
    }
    json_t *out = run_posix_step(LIB_LINUX, "user.present",
                                 "{\"name\": \"opsc-test-user\", \"shell\": \"/bin/bash\"}", &code);
    assert_true(json_is_true(json_object_get(out, "changed")));
    json_decref(out);
    for (int round = 0; round < 2; round++) {
        out = run_posix_step(LIB_LINUX, "user.absent", "{\"name\": \"opsc-test-user\"}", &code);
        assert_true(json_is_true(json_object_get(out, "changed")) == (round == 0));
        json_decref(out);
        out = run_posix_step(LIB_LINUX, "group.absent", g, &code);
        assert_true(json_is_true(json_object_get(out, "changed")) == (round == 0));
        json_decref(out);
    }
    out = run_posix_step(LIB_LINUX, "package.install", "{\"names\": [\"bash\", \"coreutils\"]}",
                         &code);
    assert_int_equal(code, 0);
    assert_true(json_is_false(json_object_get(out, "changed")));
    json_decref(out);
    out = run_posix_step(LIB_LINUX, "package.remove", "{\"names\": [\"opsc-no-such-package\"]}",
                         &code);
    assert_true(json_is_false(json_object_get(out, "changed")));
    json_decref(out);
    out =
        run_posix_step(LIB_LINUX, "service.status", "{\"name\": \"opsc-no-such-service\"}", &code);
    assert_int_equal(code, 0);
    assert_false(json_is_true(json_object_get(out, "running")));
    json_decref(out);
}

/* ---- refusals ---------------------------------------------------------------------------------
 */

static void check_refused(const opsc_step_type *t, const char *want)
{
    const opsc_step_type *types[] = {t, NULL};
    opsc_steplib lib = {sizeof(opsc_steplib), "broken", "1.0.0", "test", types};
    steplib *l = NULL;
    char err[512] = "";
    if (steplib_compile(&l, &lib, err, sizeof(err)) == 0) {
        steplib_free(l);
        fail_msg("a broken step type was accepted (want '%s')", want);
    }
    if (!strstr(err, want))
        fail_msg("message '%s' lacks '%s'", err, want);
}

static void broken_step_types_are_refused_with_the_field_and_position(void **state)
{
    (void)state;
    opsc_step_type t = {.size = sizeof(opsc_step_type),
                        .name = "x",
                        .posix_template = "true",
                        .os_families = "linux"};
    t.params_schema = "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"strng\"}}}";
    check_refused(&t, "broken.x: params_schema: schema /properties/n: unknown type 'strng'");
    t.params_schema = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}}}";
    t.posix_template = "systemctl restart \\\n  {{ params.nmae }}";
    check_refused(&t, "broken.x: posix_template 2:6: unknown parameter 'nmae'");
    t.posix_template = "echo \"{{ params.name }}\"";
    check_refused(&t, "posix_template 1:7: value inserted inside a quoted string");
    t.posix_template = "{{ params.name | raw }}";
    check_refused(&t, "declares no raw parameters");
    t.raw_params = "nope";
    check_refused(&t, "raw_params: 'nope' is not a string parameter");
    t.raw_params = NULL;
    /* The shell's syntax, in a sample rendering: line 3 is where dash gives up. */
    t.posix_template = "if [ -n {{ params.name }} ]; then\n  { echo yes\nfi\n";
    check_refused(&t, "broken.x: posix_template: a sample rendering is not valid sh (dash, not "
                      "bash): line 3: Syntax error: \"fi\" unexpected (expecting \"}\")");
    t.posix_template = "case {{ params.name }} in\n  a) echo a ;;\nesac\n";
    const opsc_step_type *ok_types[] = {&t, NULL};
    opsc_steplib ok_lib = {sizeof(opsc_steplib), "fine", "1.0.0", "test", ok_types};
    steplib *l = NULL;
    char err[512] = "";
    assert_int_equal(steplib_compile(&l, &ok_lib, err, sizeof(err)), 0);
    steplib_free(l);
    t.posix_template = "true";
    t.os_families = "linux,windows";
    check_refused(&t, "supports windows but has no powershell_template");
    t.os_families = "bsd";
    check_refused(&t, "os_families 'bsd'");
    t.os_families = NULL;
    t.name = "Bad Name";
    check_refused(&t, "bad step type descriptor or name");
}

static void refusals_are_taken_apart_for_api_clients(void **state)
{
    (void)state;
    json_t *d = steptype_error_details(
        "refused: step library broken 1.0.0: broken.x: posix_template 2:6: unknown parameter "
        "'nmae'");
    assert_non_null(d);
    char *text = json_dumps(d, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(text, "{\"field\":\"posix_template\",\"message\":\"unknown parameter "
                              "'nmae'\",\"position\":\"2:6\",\"step\":\"broken.x\"}");
    free(text);
    json_decref(d);
    d = steptype_error_details("a.b: raw_params: 'nope' is not a string parameter");
    assert_string_equal(json_string_value(json_object_get(d, "step")), "a.b");
    assert_null(json_object_get(d, "position"));
    json_decref(d);
    assert_null(steptype_error_details("only step libraries can be installed"));
    assert_null(steptype_error_details(": posix_template: x"));
    assert_null(steptype_error_details("nodot: posix_template: x"));
    assert_null(steptype_error_details(NULL));
}

/* The daemon skips the load-time `sh -n` for its own libraries (steplib_compile_bundled): this
 * is that check, on every posix template of every bundled library, here instead. */
static void every_bundled_posix_template_parses_in_sh(void **state)
{
    (void)state;
    int checked = 0;
    for (int lib = 0; lib < LIB_COUNT; lib++) {
        for (size_t i = 0; i < world.lib[lib]->ntypes; i++) {
            const steptype *st = &world.lib[lib]->types[i];
            char err[512] = "";
            if (!st->posix)
                continue;
            if (steptype_check_posix(st, err, sizeof(err)) != 0)
                fail_msg("%s", err);
            checked++;
        }
    }
    assert_int_equal(checked, 18);
}

static void touch(const char *path)
{
    assert_int_equal(fs_write_file(path, "", 0, 0644), 0);
}

/* Only the daemon's own file of a bundled library, in its own directory, is trusted so. */
static void only_the_bundled_libraries_in_their_own_directories_skip_the_shell_check(void **state)
{
    (void)state;
    char inst[128], build[128], other[128], path[256], target[256];
    snprintf(inst, sizeof(inst), "%s/installed", world.dir);
    snprintf(build, sizeof(build), "%s/build-steplibs", world.dir);
    snprintf(other, sizeof(other), "%s/other", world.dir);
    assert_int_equal(mkdir(inst, 0700), 0);
    assert_int_equal(mkdir(build, 0700), 0);
    snprintf(path, sizeof(path), "%s/linux", build);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(mkdir(other, 0700), 0);

    snprintf(path, sizeof(path), "%s/steplib-core.so", inst);
    touch(path);
    assert_true(steplib_bundled_in(path, "steplib-core", "core", inst, build));
    assert_false(steplib_bundled_in(path, "steplib-corex", "core", inst, build));
    assert_false(steplib_bundled_in(path, "steplib-core", "linux", inst, build));
    assert_false(steplib_bundled_in(path, "steplib-core", "core", other, build));
    snprintf(path, sizeof(path), "%s/steplib-linux.so", build); /* flat: not a build tree */
    touch(path);
    assert_false(steplib_bundled_in(path, "steplib-linux", "linux", inst, build));
    snprintf(path, sizeof(path), "%s/linux/steplib-linux.so", build);
    touch(path);
    assert_true(steplib_bundled_in(path, "steplib-linux", "linux", inst, build));
    assert_false(steplib_bundled_in(path, "steplib-linux", "linux", inst, NULL));
    /* A third party's library: another name, or the bundled name elsewhere or linked in. */
    snprintf(path, sizeof(path), "%s/mylib.so", inst);
    touch(path);
    assert_false(steplib_bundled_in(path, "mylib", "mylib", inst, build));
    assert_false(steplib_bundled_in(path, "steplib-core", "core", inst, build));
    snprintf(path, sizeof(path), "%s/steplib-windows.so", other);
    touch(path);
    assert_false(steplib_bundled_in(path, "steplib-windows", "windows", inst, build));
    snprintf(target, sizeof(target), "%s/steplib-windows.so", inst);
    assert_int_equal(symlink(path, target), 0);
    assert_false(steplib_bundled_in(target, "steplib-windows", "windows", inst, build));
    /* This test program is no daemon beside a build's step libraries. */
    snprintf(path, sizeof(path), "%s/core/steplib-core.so",
             env_or("OPSC_STEPLIB_BUILD_DIR", "steplibs"));
    assert_false(steplib_bundled(path, "steplib-core", "core"));
}

static void steps_refuse_targets_of_another_family(void **state)
{
    (void)state;
    assert_false(steptype_supports(find_type(LIB_LINUX, "service.restart"), "windows"));
    assert_false(steptype_supports(find_type(LIB_WINDOWS, "service.restart"), "linux"));
    assert_true(steptype_supports(find_type(LIB_CORE, "shell.command"), "windows"));
    assert_true(steptype_supports(find_type(LIB_CORE, "http.request"), "linux"));
    assert_null(steptype_template(find_type(LIB_CORE, "http.request"), "linux"));
}

int main(void)
{
    log_init(OPSC_LOG_ERROR + (getenv("OPSC_TEST_VERBOSE") ? 3 : 0), LOG_FORMAT_TEXT, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(libraries_load_and_export_only_their_entry_symbol),
        cmocka_unit_test(every_step_renders_as_its_golden_files),
        cmocka_unit_test(golden_directory_has_no_stale_files),
        cmocka_unit_test(shell_command_runs_with_env_cwd_guards_and_quoted_job_values),
        cmocka_unit_test(shell_script_uploads_and_runs_with_an_interpreter_and_arguments),
        cmocka_unit_test(file_line_is_idempotent_and_edits_in_place),
        cmocka_unit_test(facts_report_json_matching_their_output_schemas),
        cmocka_unit_test(system_steps_work_on_this_machine_when_allowed),
        cmocka_unit_test(broken_step_types_are_refused_with_the_field_and_position),
        cmocka_unit_test(refusals_are_taken_apart_for_api_clients),
        cmocka_unit_test(steps_refuse_targets_of_another_family),
        cmocka_unit_test(every_bundled_posix_template_parses_in_sh),
        cmocka_unit_test(only_the_bundled_libraries_in_their_own_directories_skip_the_shell_check),
        cmocka_unit_test(file_put_copies_once_and_refuses_paths_outside_files_dir),
        cmocka_unit_test(file_template_renders_run_values_and_vars),
        cmocka_unit_test(file_get_keeps_the_file_with_the_run),
        cmocka_unit_test(http_request_reports_status_and_json_and_fails_on_unexpected_status),
        cmocka_unit_test(wait_port_succeeds_when_open_and_times_out_when_closed),
        cmocka_unit_test(wait_duration_sleeps_and_stops_on_cancel),
        cmocka_unit_test(assert_output_matches_values_and_regexes),
        cmocka_unit_test(reboot_waits_for_a_new_boot_id_on_linux_and_windows),
    };
    return cmocka_run_group_tests(tests, setup_world, teardown_world);
}
