/* test_isolation.c - step libraries out of process (core/plugins/isolation*.c): the real
 * opsc-stephost running testexec, its step API calls served by the fake step host; crashes named,
 * steps side by side in one host, quarantine and re-enable, the policy, the frame codec. */
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "config.h"
#include "fake_step_host.h"
#include "isolation.h"
#include "isolation_internal.h"
#include "plugin_internal.h"
#include "shproto.h"
#include "util.h"

static uv_loop_t loop;
static plugin_host *host;
static const plugin_reg *reg;

static int setup(void **state)
{
    (void)state;
    char err[512];
    uv_loop_init(&loop);
    assert_int_equal(plugin_host_new(&host, &loop, NULL), 0);
    fake_host_install(host);
    if (plugin_host_load_file(host, EXEC_STEPS_SO, err, sizeof(err)) != 0)
        fail_msg("%s: %s", EXEC_STEPS_SO, err);
    reg = plugin_host_steplib(host, "testexec", 1);
    assert_non_null(reg);
    iso_opts o = {.mode = ISO_ALWAYS,
                  .stephost = STEPHOST,
                  .memory_limit = 256 << 20,
                  .stop_grace_ms = 200,
                  .heartbeat_ms = 1000};
    assert_int_equal(plugin_host_set_isolation(host, &o), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    plugin_host_free(host);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

static const opsc_step_type *type_of(const char *name)
{
    const opsc_steplib *lib = reg->desc;
    for (const opsc_step_type *const *t = lib->types; *t; t++)
        if (strcmp((*t)->name, name) == 0)
            return *t;
    fail_msg("no step type %s", name);
    return NULL;
}

static int run(const char *type, opsc_step_ctx *ctx)
{
    iso_lib *l = plugin_host_isolated(host, reg);
    assert_non_null(l);
    return iso_run(l, type_of(type), ctx);
}

static void a_step_out_of_process_gets_the_whole_step_api(void **state)
{
    (void)state;
    opsc_step_ctx *ctx = fake_ctx_new("{\"command\": \"printf abc\", \"token\": \"tok\"}", "linux");
    json_object_set_new(ctx->secrets, "token", json_string("s3cret"));
    assert_int_equal(run("probe", ctx), 0);
    assert_int_equal(json_integer_value(json_object_get(ctx->outputs, "exit")), 0);
    assert_int_equal(json_integer_value(json_object_get(ctx->outputs, "out_len")), 3);
    assert_true(json_is_true(json_object_get(ctx->outputs, "has_secret")));
    assert_string_equal(json_string_value(json_object_get(ctx->outputs, "quoted")), "'it'\\''s'");
    if (!strstr(ctx->log.buf ? ctx->log.buf : "", "probing"))
        fail_msg("log lacks the step's line: %s", ctx->log.buf ? ctx->log.buf : "");
    fake_ctx_free(ctx);
}

static void a_failure_keeps_the_steps_message(void **state)
{
    (void)state;
    opsc_step_ctx *ctx = fake_ctx_new("{\"why\": \"on fire\"}", "linux");
    assert_int_equal(run("fail", ctx), OPSC_EREMOTE);
    assert_string_equal(ctx->failure, "the widget is on fire");
    fake_ctx_free(ctx);
}

static void a_crash_names_library_version_step_and_signal(void **state)
{
    (void)state;
    opsc_step_ctx *ctx = fake_ctx_new("{}", "linux");
    assert_int_equal(run("crash", ctx), OPSC_EREMOTE);
    assert_string_equal(ctx->failure, "testexec 1.0.0: step crash crashed (SIGSEGV)");
    fake_ctx_free(ctx);
    json_t *iso = plugin_host_isolation_json(host, "testexec", "1.0.0", EXEC_STEPS_SO);
    assert_string_equal(json_string_value(json_object_get(iso, "runs")), "process");
    assert_int_equal(json_integer_value(json_object_get(iso, "crashes")), 1);
    assert_true(json_is_null(json_object_get(iso, "pid")));
    json_decref(iso);
}

struct side {
    const char *type;
    opsc_step_ctx *ctx;
    int rc;
};

static void *side_main(void *arg)
{
    struct side *s = arg;
    s->rc = run(s->type, s->ctx);
    return NULL;
}

/* Steps in flight in one host at the same moment. */
static int in_flight(void)
{
    iso_lib *l = plugin_host_isolated(host, reg);
    pthread_mutex_lock(&l->mu);
    int n = 0;
    for (iso_call *c = l->proc ? l->proc->calls : NULL; c; c = c->next)
        n++;
    pthread_mutex_unlock(&l->mu);
    return n;
}

static void steps_run_side_by_side_in_one_host(void **state)
{
    (void)state;
    struct side sides[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        sides[i].type = "wait";
        /* long enough that the first is still running when a loaded machine starts the third */
        sides[i].ctx = fake_ctx_new("{\"ms\": 4000, \"stubborn\": true}", "linux");
        assert_int_equal(pthread_create(&th[i], NULL, side_main, &sides[i]), 0);
    }
    uint64_t until = clock_mono_ms() + 10000;
    while (in_flight() < 3 && clock_mono_ms() < until)
        usleep(5000);
    assert_int_equal(in_flight(), 3);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(sides[i].rc, 0);
        fake_ctx_free(sides[i].ctx);
    }
}

/* Whichever thread reads the socket, each step's answers reach that step and no other. */
static void steps_side_by_side_each_get_their_own_answers(void **state)
{
    (void)state;
    struct side sides[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        char params[32];
        snprintf(params, sizeof(params), "{\"n\": %d}", 300 + i);
        sides[i].type = "calls";
        sides[i].ctx = fake_ctx_new(params, "linux");
        assert_int_equal(pthread_create(&th[i], NULL, side_main, &sides[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_string_equal(sides[i].ctx->failure, "");
        assert_int_equal(sides[i].rc, 0);
        assert_int_equal(json_integer_value(json_object_get(sides[i].ctx->outputs, "n")), 300 + i);
        fake_ctx_free(sides[i].ctx);
    }
}

static void a_host_that_stops_answering_is_killed(void **state)
{
    (void)state;
    struct side side = {"wait", fake_ctx_new("{\"ms\": 20000, \"stubborn\": true}", "linux"), 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, side_main, &side), 0);
    uint64_t until = clock_mono_ms() + 10000;
    while (in_flight() < 1 && clock_mono_ms() < until)
        usleep(5000);
    json_t *iso = plugin_host_isolation_json(host, "testexec", "1.0.0", EXEC_STEPS_SO);
    pid_t pid = (pid_t)json_integer_value(json_object_get(iso, "pid"));
    json_decref(iso);
    assert_true(pid > 0);
    kill(pid, SIGSTOP); /* alive, and silent */
    pthread_join(th, NULL);
    assert_int_equal(side.rc, OPSC_EREMOTE);
    assert_string_equal(side.ctx->failure,
                        "testexec 1.0.0: step wait stopped answering its heartbeat");
    fake_ctx_free(side.ctx);
}

static void five_crashes_quarantine_until_reenabled(void **state)
{
    (void)state;
    assert_int_equal(plugin_host_isolation_reenable(host, "testexec", "1.0.0"), OPSC_ESTATE);
    for (int i = 0; i < 5; i++) { /* one crash is counted already */
        opsc_step_ctx *ctx = fake_ctx_new("{}", "linux");
        assert_int_equal(run("crash", ctx), OPSC_EREMOTE);
        fake_ctx_free(ctx);
    }
    opsc_step_ctx *ctx = fake_ctx_new("{}", "linux");
    assert_int_equal(run("probe", ctx), OPSC_EREMOTE);
    if (!strstr(ctx->failure, "testexec 1.0.0 is quarantined"))
        fail_msg("not quarantined: %s", ctx->failure);
    fake_ctx_free(ctx);
    assert_int_equal(plugin_host_isolation_reenable(host, "testexec", "1.0.0"), 0);
    ctx = fake_ctx_new("{}", "linux");
    assert_int_equal(run("probe", ctx), 0);
    fake_ctx_free(ctx);
}

/* A stand-in host that says hello, waits for its first step, then sends `bad`. */
static const char fake_host[] =
    "#!/usr/bin/python3\n"
    "import json, os, struct, time\n"
    "def frame(t, i, body):\n"
    "    return struct.pack('>IBBBBI', len(body) + 8, t, 0, 0, 0, i) + body\n"
    "hello = {'proto': 'opsc-stephost', 'versions': [1], 'pid': os.getpid(), 'sandbox': []}\n"
    "os.write(3, frame(1, 0, json.dumps(hello).encode()))\n"
    "seen = b''\n"
    "while b'start' not in seen:\n"
    "    seen += os.read(3, 65536)\n"
    "os.write(3, %s)\n"
    "time.sleep(30)\n";

static void a_host_that_breaks_the_protocol_is_killed(void **state)
{
    (void)state;
    const char *bad[] = {
        "frame(2, 1, b'{\"op\": not json')",                 /* malformed */
        "struct.pack('>IBBBBI', 0x7fffffff, 2, 0, 0, 0, 1)", /* oversized */
        "frame(9, 1, b'')",                                  /* unknown type */
        "frame(1, 0, b'{}')",                                /* a second hello */
    };
    char path[] = "/tmp/opsc-fake-host-XXXXXX";
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        dprintf(fd, fake_host, bad[i]);
        fchmod(fd, 0700);
        close(fd);
        iso_opts o = {
            .mode = ISO_ALWAYS, .stephost = path, .stop_grace_ms = 200, .heartbeat_ms = 1000};
        assert_int_equal(plugin_host_set_isolation(host, &o), 0);
        opsc_step_ctx *ctx = fake_ctx_new("{}", "linux");
        assert_int_equal(run("probe", ctx), OPSC_EREMOTE);
        assert_string_equal(ctx->failure,
                            "testexec 1.0.0: step probe broke the step host protocol");
        fake_ctx_free(ctx);
        unlink(path);
        memcpy(path + strlen(path) - 6, "XXXXXX", 6);
    }
}

static void never_and_untrusted_keep_libraries_in_process(void **state)
{
    (void)state;
    iso_opts o = {.mode = ISO_NEVER, .stephost = STEPHOST};
    assert_int_equal(plugin_host_set_isolation(host, &o), 0);
    assert_null(plugin_host_isolated(host, reg));
    o.mode = ISO_UNTRUSTED;
    o.install_dir = "/tmp";
    assert_int_equal(plugin_host_set_isolation(host, &o), 0);
    assert_null(plugin_host_isolated(host, reg)); /* not under the install folder */
    json_t *iso = plugin_host_isolation_json(host, "testexec", "1.0.0", EXEC_STEPS_SO);
    assert_string_equal(json_string_value(json_object_get(iso, "runs")), "in_process");
    json_decref(iso);
}

/* Load `file` of the test plugins in a host of its own with the policy `mode`: its refusal. */
static int refusal(const char *file, int mode, char *err, size_t errlen)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", TEST_PLUGIN_DIR, file);
    plugin_host *h = NULL;
    assert_int_equal(plugin_host_new(&h, &loop, NULL), 0);
    iso_opts o = {.mode = mode, .stephost = STEPHOST, .memory_limit = 256 << 20};
    assert_int_equal(plugin_host_set_isolation(h, &o), 0);
    err[0] = '\0';
    int rc = plugin_host_load_file(h, path, err, errlen);
    plugin_host_free(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    plugin_host_current = host;
    return rc;
}

static void out_of_process_a_library_is_refused_in_the_same_words(void **state)
{
    (void)state;
    static const char *const files[] = {"test-broken-steplib.so", "test-bad-major.so",
                                        "test-no-entry.so", "test-uplib-badschema.upload"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char in[512], out[512];
        int rc_in = refusal(files[i], ISO_NEVER, in, sizeof(in));
        int rc_out = refusal(files[i], ISO_ALWAYS, out, sizeof(out));
        assert_true(rc_in < 0);
        assert_int_equal(rc_out, rc_in);
        assert_string_equal(out, in);
    }
    char err[512];
    assert_int_equal(refusal("test-marker-crash.upload", ISO_ALWAYS, err, sizeof(err)),
                     OPSC_EPLUGIN);
    assert_string_equal(err, "the step host crashed (SIGSEGV) while it loaded the library: in "
                             "its constructors or init()");
}

/* iso_manifest_fetch() with a step host that is the shell script `body`. */
static int fetch_with(const char *body, int64_t timeout_ms, char *err, size_t errlen)
{
    char dir[] = "/tmp/opsc-manifest-XXXXXX", path[64], script[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/host", dir);
    int n = snprintf(script, sizeof(script), "#!/bin/sh\n%s\n", body);
    assert_int_equal(fs_write_file(path, script, (size_t)n, 0755), 0);
    plugin_host *h = NULL;
    assert_int_equal(plugin_host_new(&h, &loop, NULL), 0);
    iso_opts o = {.mode = ISO_ALWAYS, .stephost = path, .load_timeout_ms = timeout_ms};
    assert_int_equal(plugin_host_set_isolation(h, &o), 0);
    char *text = NULL;
    size_t len = 0;
    err[0] = '\0';
    int rc = iso_manifest_fetch(h, "/nonexistent.so", &text, &len, err, errlen);
    assert_true(rc == 0 || !text);
    free(text);
    plugin_host_free(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    plugin_host_current = host;
    unlink(path);
    rmdir(dir);
    return rc;
}

static void the_manifest_is_bounded_in_size_and_time_and_a_crash_is_named(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(fetch_with("head -c 5000000 /dev/zero", 10000, err, sizeof(err)), OPSC_E2BIG);
    assert_string_equal(err, "its manifest is larger than 4194304 bytes");
    assert_int_equal(fetch_with("exec sleep 5", 200, err, sizeof(err)), OPSC_ETIMEDOUT);
    assert_string_equal(err, "the step host did not finish loading it within 200 ms: its "
                             "constructors or init() hang ([steplibs] host_load_timeout)");
    assert_int_equal(fetch_with("kill -SEGV $$", 10000, err, sizeof(err)), OPSC_EPLUGIN);
    assert_string_equal(err, "the step host crashed (SIGSEGV) while it loaded the library: in "
                             "its constructors or init()");
    assert_int_equal(fetch_with("echo '{}'; exit 3", 10000, err, sizeof(err)), OPSC_EPLUGIN);
    assert_string_equal(err, "the step host exited (status 3) while it loaded the library");
    assert_int_equal(fetch_with("echo '{\"manifest\": 1}'", 10000, err, sizeof(err)), 0);
}

static void a_hostile_manifest_is_refused_never_trusted(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "",
        "[]",
        "{\"manifest\": 2}",
        "{\"manifest\": 1}",
        "{\"manifest\": 1, \"error\": 7}",
        "{\"manifest\": 1, \"plugin\": {\"name\": 1, \"kinds\": 2, \"abi_major\": 1, "
        "\"abi_minor\": 0, \"init\": true}}",
        "{\"manifest\": 1, \"plugin\": {\"name\": \"x\", \"kinds\": -1, \"abi_major\": 1, "
        "\"abi_minor\": 0, \"init\": true}}",
        "{\"manifest\": 1, \"plugin\": {\"name\": \"x\", \"kinds\": 2, \"abi_major\": 1, "
        "\"abi_minor\": 0, \"init\": true}, \"init\": {\"rc\": \"0\", \"log\": []}}",
        "{\"manifest\": 1, \"plugin\": {\"name\": \"x\", \"kinds\": 2, \"abi_major\": 1, "
        "\"abi_minor\": 0, \"init\": true}, \"steplibs\": {}}",
        "{\"manifest\": 1, \"plugin\": {\"name\": \"x\", \"kinds\": 2, \"abi_major\": 1, "
        "\"abi_minor\": 0, \"init\": true}, \"steplibs\": [{\"name\": \"x\", \"version\": "
        "\"1.0.0\", \"abi\": \"1.0\", \"steps\": [{\"name\": \"s\", \"executable\": \"x\"}]}]}",
        "{\"manifest\": 1, \"plugin\": {\"name\": \"x\", \"kinds\": 2, \"abi_major\": 1, "
        "\"abi_minor\": 0, \"init\": true}, \"steplibs\": [{\"name\": \"x\", \"version\": "
        "\"1.0.0\", \"abi\": \"1.0\", \"steps\": [{\"name\": \"s\", \"imperative\": 1}]}]}",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        iso_manifest *m = NULL;
        char err[512] = "";
        assert_true(iso_manifest_parse(docs[i], strlen(docs[i]), &m, err, sizeof(err)) < 0);
        assert_null(m);
        assert_true(err[0] != '\0');
    }
    /* What a real host wrote of testexec: its descriptor and both forms of step. */
    char *text = NULL, err[512] = "";
    size_t len = 0;
    assert_int_equal(iso_manifest_fetch(host, EXEC_STEPS_SO, &text, &len, err, sizeof(err)), 0);
    iso_manifest *m = NULL;
    assert_int_equal(iso_manifest_parse(text, len, &m, err, sizeof(err)), 0);
    free(text);
    const opsc_plugin *d = iso_manifest_plugin(m);
    assert_string_equal(d->name, "steplib-testexec");
    assert_int_equal(d->kinds, OPSC_KIND_STEPLIB);
    assert_false(iso_manifest_wants_process(m));
    iso_manifest_free(m);
}

static void frames_decode_whole_or_wait_and_refuse_garbage(void **state)
{
    (void)state;
    uint8_t buf[64];
    shp_header(buf, SHP_JSON, 7, 2);
    memcpy(buf + SHP_HEADER, "{}", 2);
    shp_frame f;
    size_t used = 0;
    for (size_t n = 0; n < SHP_HEADER + 2; n++)
        assert_int_equal(shp_decode(buf, n, &f, &used), 0);
    assert_int_equal(shp_decode(buf, SHP_HEADER + 2, &f, &used), 1);
    assert_int_equal(used, SHP_HEADER + 2);
    assert_int_equal(f.id, 7);
    assert_int_equal(f.len, 2);
    buf[4] = 9; /* unknown type */
    assert_int_equal(shp_decode(buf, SHP_HEADER + 2, &f, &used), OPSC_EPROTO);
    shp_header(buf, SHP_DATA, 1, SHP_MAX_PAYLOAD + 1);
    assert_int_equal(shp_decode(buf, 8, &f, &used), OPSC_EPROTO);
    json_t *s = shp_string("a\xff\xfe"
                           "b",
                           4);
    assert_string_equal(json_string_value(s), "a??b");
    json_decref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frames_decode_whole_or_wait_and_refuse_garbage),
        cmocka_unit_test(a_step_out_of_process_gets_the_whole_step_api),
        cmocka_unit_test(a_failure_keeps_the_steps_message),
        cmocka_unit_test(a_crash_names_library_version_step_and_signal),
        cmocka_unit_test(steps_run_side_by_side_in_one_host),
        cmocka_unit_test(steps_side_by_side_each_get_their_own_answers),
        cmocka_unit_test(a_host_that_stops_answering_is_killed),
        cmocka_unit_test(five_crashes_quarantine_until_reenabled),
        cmocka_unit_test(a_host_that_breaks_the_protocol_is_killed),
        cmocka_unit_test(never_and_untrusted_keep_libraries_in_process),
        cmocka_unit_test(out_of_process_a_library_is_refused_in_the_same_words),
        cmocka_unit_test(a_hostile_manifest_is_refused_never_trusted),
        cmocka_unit_test(the_manifest_is_bounded_in_size_and_time_and_a_crash_is_named),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
