/* exec_steps.c - imperative test steps: the whole step API, failures, a step that will not stop,
 * and misbehaviour a step host must contain (crash, abort, exit, spin, eat memory, read files
 * that are not its own, make system calls a step has no business making). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <unistd.h>

#include <opsc/plugin.h>

static const opsc_host_api *host;

/* Params "command"; outputs what the API answered. */
static int probe_run(opsc_step_ctx *ctx, void *state)
{
    (void)state;
    char json[512];
    const char *cmd = host->step_param(ctx, "command");
    host->step_log(ctx, OPSC_LOG_INFO, "probing %s", host->step_target(ctx, "name"));
    opsc_step_exec_opts opts = {.size = sizeof(opts), .log_output = true};
    opsc_step_exec_result res = {.size = sizeof(res)};
    int rc = host->step_exec(ctx, cmd ? cmd : "true", &opts, &res);
    if (rc < 0)
        return host->step_fail(ctx, "exec failed: %d", rc);
    snprintf(json, sizeof(json), "%d", res.exit_code);
    host->step_set_output(ctx, "exit", json);
    const char *secret = host->step_secret(ctx, "token");
    const char *ref = host->step_param(ctx, "token");
    snprintf(json, sizeof(json), "%s", secret ? "true" : "false");
    host->step_set_output(ctx, "has_secret", json);
    if (secret) /* redacted from outputs by the host */
        host->step_set_output(ctx, "leak", "\"the secret is hidden\"");
    if (ref) {
        snprintf(json, sizeof(json), "\"%s\"", ref);
        host->step_set_output(ctx, "ref", json);
    }
    const char *q = host->step_quote(ctx, "it's");
    size_t o = 0;
    json[o++] = '"';
    for (const char *p = q ? q : ""; *p && o < sizeof(json) - 3; p++) {
        if (*p == '\\' || *p == '"')
            json[o++] = '\\';
        json[o++] = *p;
    }
    json[o++] = '"';
    json[o] = '\0';
    host->step_set_output(ctx, "quoted", json);
    snprintf(json, sizeof(json), "%zu", res.out_len);
    host->step_set_output(ctx, "out_len", json);
    if (secret)
        host->step_log(ctx, OPSC_LOG_INFO, "logging the secret %s by mistake", secret);
    return 0;
}

/* Fails with an explanation, or with a bare code when "bare" is true. */
static int fail_run(opsc_step_ctx *ctx, void *state)
{
    (void)state;
    const char *bare = host->step_param(ctx, "bare");
    if (bare && strcmp(bare, "true") == 0)
        return OPSC_EIO;
    return host->step_fail(ctx, "the widget is %s", host->step_param(ctx, "why"));
}

/* Sleeps with step_sleep (stops on cancel), or with sleep(3) when "stubborn". */
static int wait_run(opsc_step_ctx *ctx, void *state)
{
    (void)state;
    const char *ms = host->step_param(ctx, "ms"), *stubborn = host->step_param(ctx, "stubborn");
    unsigned n = ms ? (unsigned)atoi(ms) : 1000;
    if (stubborn && strcmp(stubborn, "true") == 0) {
        usleep(n * 1000u);
        return 0;
    }
    return host->step_sleep(ctx, n) == OPSC_ECANCELED ? host->step_fail(ctx, "stopped") : 0;
}

static int crash_run(opsc_step_ctx *ctx, void *state)
{
    (void)ctx, (void)state;
    raise(SIGSEGV);
    return 0;
}

/* Misbehaves as its param "how" says. */
static int misbehave_run(opsc_step_ctx *ctx, void *state)
{
    (void)state;
    const char *how = host->step_param(ctx, "how");
    how = how ? how : "";
    if (strcmp(how, "abort") == 0)
        abort();
    if (strcmp(how, "exit") == 0)
        exit(3);
    if (strcmp(how, "spin") == 0) /* ignores its cancel */
        for (volatile unsigned long i = 0;; i++)
            ;
    if (strcmp(how, "alloc") == 0) {
        for (;;) { /* until the memory limit, then give up as most code does */
            char *p = malloc(16u << 20);
            if (!p)
                abort();
            memset(p, 1, 16u << 20);
        }
    }
    return host->step_fail(ctx, "no such misbehaviour: %s", how);
}

/* Tries what a sandbox refuses: "open" the file `path`, "fork", "socket", "ptrace". */
static int forbidden_run(opsc_step_ctx *ctx, void *state)
{
    (void)state;
    const char *call = host->step_param(ctx, "call"), *path = host->step_param(ctx, "path");
    int rc = -1;
    call = call ? call : "";
    if (strcmp(call, "ids") == 0) { /* who it runs as, and whether `path` opens: outputs */
        char json[64];
        snprintf(json, sizeof(json), "[%u, %u]", (unsigned)getuid(), (unsigned)geteuid());
        host->step_set_output(ctx, "ids", json);
        int fd = path ? open(path, O_RDONLY) : -1;
        snprintf(json, sizeof(json), "\"%s\"", fd >= 0 ? "opened" : strerror(errno));
        return host->step_set_output(ctx, "open", json);
    }
    if (strcmp(call, "open") == 0 && path)
        rc = open(path, O_RDONLY);
    else if (strcmp(call, "fork") == 0 && (rc = fork()) == 0)
        _exit(0);
    else if (strcmp(call, "socket") == 0)
        rc = socket(AF_INET, SOCK_STREAM, 0);
    else if (strcmp(call, "ptrace") == 0)
        rc = (int)ptrace(PTRACE_ATTACH, getppid(), NULL, NULL);
    if (rc < 0)
        return host->step_fail(ctx, "%s: %s", call, strerror(errno));
    return host->step_fail(ctx, "%s: allowed", call);
}

/* For tests/bench/bench_stephost.c: nothing at all, and `n` step_param calls. */
static int noop_run(opsc_step_ctx *ctx, void *state)
{
    (void)ctx, (void)state;
    return 0;
}

/* Each answer must be this step's own (steps side by side in one host share its socket). */
static int calls_run(opsc_step_ctx *ctx, void *state)
{
    (void)state;
    const char *n = host->step_param(ctx, "n");
    char mine[32];
    snprintf(mine, sizeof(mine), "%s", n ? n : "0");
    for (int i = atoi(mine); i > 0; i--) {
        const char *again = host->step_param(ctx, "n");
        if (!again || strcmp(again, mine) != 0)
            return host->step_fail(ctx, "step_param answered %s, not %s", again ? again : "NULL",
                                   mine);
    }
    return host->step_set_output(ctx, "n", mine);
}

/* step_run_dir and step_fetch_file ("src" into "name"): outputs what they answered. */
static int fetch_run(opsc_step_ctx *ctx, void *state)
{
    (void)state;
    char json[1200];
    const char *dir = host->step_run_dir(ctx);
    opsc_step_file got = {.size = sizeof(got)};
    int rc = host->step_fetch_file(ctx, host->step_param(ctx, "src"), host->step_param(ctx, "name"),
                                   &got);
    if (rc < 0)
        return host->step_fail(ctx, "fetch: %d", rc);
    snprintf(json, sizeof(json),
             "{\"run_dir\": \"%s\", \"sha256\": \"%s\", \"path\": \"%s\", "
             "\"bytes\": %llu}",
             dir ? dir : "", got.sha256, got.path ? got.path : "", (unsigned long long)got.bytes);
    return host->step_set_output(ctx, "got", json);
}

/* Sets output "key" (default n) to the JSON text "value": the outputs_schema says n is an
 * integer. Passes the call's error on, as a library should. */
static int typed_run(opsc_step_ctx *ctx, void *state)
{
    (void)state;
    const char *k = host->step_param(ctx, "key"), *v = host->step_param(ctx, "value");
    return host->step_set_output(ctx, k ? k : "n", v ? v : "0");
}

#define P(props) "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{" props "}}"

static const opsc_step_type probe = {
    .size = sizeof(opsc_step_type),
    .name = "probe",
    .summary = "use the step API",
    .params_schema = P("\"command\":{\"type\":\"string\"},\"token\":{\"type\":\"string\"}"),
    .run = probe_run,
};
static const opsc_step_type failing = {
    .size = sizeof(opsc_step_type),
    .name = "fail",
    .summary = "fail",
    .params_schema = P("\"why\":{\"type\":\"string\"},\"bare\":{\"type\":\"boolean\"}"),
    .run = fail_run,
};
static const opsc_step_type waiting = {
    .size = sizeof(opsc_step_type),
    .name = "wait",
    .summary = "wait",
    .params_schema = P("\"ms\":{\"type\":\"integer\"},\"stubborn\":{\"type\":\"boolean\"}"),
    .run = wait_run,
};
static const opsc_step_type crashing = {
    .size = sizeof(opsc_step_type),
    .name = "crash",
    .summary = "crash the process",
    .run = crash_run,
};
static const opsc_step_type misbehaving = {
    .size = sizeof(opsc_step_type),
    .name = "misbehave",
    .summary = "abort, exit, spin or eat memory",
    .params_schema = P("\"how\":{\"enum\":[\"abort\",\"exit\",\"spin\",\"alloc\"]}"),
    .run = misbehave_run,
};
static const opsc_step_type forbidden = {
    .size = sizeof(opsc_step_type),
    .name = "forbidden",
    .summary = "try what a sandbox refuses",
    .params_schema = P("\"call\":{\"type\":\"string\"},\"path\":{\"type\":\"string\"}"),
    .run = forbidden_run,
};
static const opsc_step_type noop = {
    .size = sizeof(opsc_step_type),
    .name = "noop",
    .summary = "nothing",
    .run = noop_run,
};
static const opsc_step_type calls = {
    .size = sizeof(opsc_step_type),
    .name = "calls",
    .summary = "n step API calls",
    .params_schema = P("\"n\":{\"type\":\"integer\"}"),
    .run = calls_run,
};
static const opsc_step_type fetching = {
    .size = sizeof(opsc_step_type),
    .name = "fetch",
    .summary = "keep a file of the target with the run",
    .params_schema = P("\"src\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"}"),
    .run = fetch_run,
};
static const opsc_step_type typed = {
    .size = sizeof(opsc_step_type),
    .name = "typed",
    .summary = "set an output its schema may refuse (imperative)",
    .params_schema = P("\"value\":{\"type\":\"string\"},\"key\":{\"type\":\"string\"}"),
    .outputs_schema = P("\"n\":{\"type\":\"integer\"}"),
    .run = typed_run,
};
static const opsc_step_type typed_decl = {
    .size = sizeof(opsc_step_type),
    .name = "typed_decl",
    .summary = "set an output its schema may refuse (declarative)",
    .params_schema = P("\"value\":{\"type\":\"string\"}"),
    .outputs_schema = P("\"n\":{\"type\":\"integer\"}"),
    .os_families = "linux",
    .posix_template = "printf '{\"n\": %s}\\n' {{ params.value }}",
    .output_rule = OPSC_OUTPUT_JSON_LAST_LINE,
};
static const opsc_step_type *const types[] = {&probe,       &failing,    &waiting,  &crashing,
                                              &misbehaving, &forbidden,  &noop,     &calls,
                                              &typed,       &typed_decl, &fetching, NULL};

static const opsc_steplib lib = {
    .size = sizeof(opsc_steplib),
    .name = "testexec",
    .version = "1.0.0",
    .summary = "executor test steps",
    .types = types,
};

static int steps_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)cfg, (void)state;
    host = api;
    return api->register_steplib(&lib, NULL);
}

OPSC_PLUGIN_DEFINE("steplib-testexec", "1.0.0", OPSC_KIND_STEPLIB, "executor test steps",
                   "Apache-2.0", steps_init, NULL)
