/* marker_steplib.c - step library "marker" for test_steplib_manifest.py: it says in which process
 * its code runs. Its constructor, its init() and its imperative step each write a line
 * "opsc-marker <where> pid=<getpid()> euid=<geteuid()>" on stderr (the daemon's stderr, which a
 * step host inherits): a library that runs out of process must never print the daemon's pid.
 *   HANG_INIT  init() never returns (the library is refused after [steplibs] host_load_timeout)
 *   CRASH_INIT init() dies of SIGSEGV (refused with the signal named) */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <opsc/plugin.h>

#if defined(HANG_INIT)
#define LIB_NAME "markerhang"
#elif defined(CRASH_INIT)
#define LIB_NAME "markercrash"
#else
#define LIB_NAME "marker"
#endif

static void mark(const char *where)
{
    char line[128];
    int n = snprintf(line, sizeof(line), "opsc-marker %s %s pid=%d euid=%d\n", LIB_NAME, where,
                     (int)getpid(), (int)geteuid());
    if (write(2, line, (size_t)n) < 0)
        return;
}

__attribute__((constructor)) static void marker_loaded(void)
{
    mark("constructor");
}

static const opsc_host_api *host;

static const opsc_step_type echo_step = {
    .size = sizeof(opsc_step_type),
    .name = "echo",
    .summary = "print a message: rendered by the daemon from the manifest's template",
    .params_schema = "{\"type\":\"object\",\"properties\":{\"message\":{\"type\":\"string\"}},"
                     "\"required\":[\"message\"]}",
    .os_families = "linux",
    .posix_template = "printf '%s\\n' {{ params.message }}\n",
    .output_rule = OPSC_OUTPUT_STDOUT,
};

static int where_run(opsc_step_ctx *ctx, void *lib_state)
{
    (void)lib_state;
    mark("run");
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    return host->step_set_output(ctx, "pid", pid);
}

static const opsc_step_type where_step = {
    .size = sizeof(opsc_step_type),
    .name = "where",
    .summary = "report the pid of the process that runs it",
    .outputs_schema = "{\"type\":\"object\",\"properties\":{\"pid\":{\"type\":\"integer\"}}}",
    .run = where_run,
};

static const opsc_step_type *const types[] = {&echo_step, &where_step, NULL};

static const opsc_steplib lib = {
    .size = sizeof(opsc_steplib),
    .name = LIB_NAME,
    .version = "1.0.0",
    .summary = "says where its code runs",
    .types = types,
};

static int marker_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)cfg, (void)state;
    host = api;
    mark("init");
#if defined(HANG_INIT)
    for (;;) {
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
#elif defined(CRASH_INIT)
    raise(SIGSEGV);
#endif
    return api->register_steplib(&lib, NULL);
}

OPSC_PLUGIN_DEFINE("test-" LIB_NAME, "1.0.0", OPSC_KIND_STEPLIB, "says where its code runs",
                   "Apache-2.0", marker_init, NULL)
