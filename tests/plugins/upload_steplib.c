/* upload_steplib.c - step library "uplib" for the upload tests, built in several versions.
 *   LIB_VERSION   "1.0.0", "1.1.0"...: the library's (and the plugin's) version
 *   EXTRA_STEP    adds the step "extra" (a newer minor version adds a step)
 *   OTHER_BYTES   the same name and version with another summary: different bytes, and a
 *                 constructor that creates the file $OPSC_TEST_CTOR_MARK when the library
 *                 is loaded: its upload must be refused before that
 *   BROKEN_SCHEMA a parameter schema with a misspelt keyword: refused at load */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <opsc/plugin.h>

#ifdef OTHER_BYTES
__attribute__((constructor)) static void mark_loaded(void)
{
    const char *path = getenv("OPSC_TEST_CTOR_MARK");
    int fd = path ? open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600) : -1;
    if (fd >= 0)
        close(fd);
}
#endif

#ifndef LIB_VERSION
#error LIB_VERSION must be defined
#endif

#ifdef BROKEN_SCHEMA
#define ECHO_PARAMS "{\"type\":\"object\",\"properties\":{\"message\":{\"typ\":\"string\"}}}"
#else
#define ECHO_PARAMS                                                                                \
    "{\"type\":\"object\",\"properties\":{\"message\":{\"type\":\"string\"}},"                     \
    "\"required\":[\"message\"]}"
#endif

static const opsc_host_api *host;

static const opsc_step_type echo_step = {
    .size = sizeof(opsc_step_type),
    .name = "echo",
    .summary = "print a message and report it as an output",
    .params_schema = ECHO_PARAMS,
    .outputs_schema = "{\"type\":\"object\",\"properties\":{\"message\":{\"type\":\"string\"}}}",
    .os_families = "linux",
    .posix_template = "printf '%s\\n' {{ params.message }}\n"
                      "printf 'OPSC_OUTPUT message=%s\\n' {{ params.message }}\n",
    .output_rule = OPSC_OUTPUT_KEY_VALUE,
};

static int noop_run(opsc_step_ctx *ctx, void *lib_state)
{
    (void)lib_state;
    return host->step_set_output(ctx, "version", "\"" LIB_VERSION "\"");
}

static const opsc_step_type noop_step = {
    .size = sizeof(opsc_step_type),
    .name = "noop",
    .summary = "do nothing on a worker thread and report the library version",
    .outputs_schema = "{\"type\":\"object\",\"properties\":{\"version\":{\"type\":\"string\"}}}",
    .run = noop_run,
};

#ifdef EXTRA_STEP
static const opsc_step_type extra_step = {
    .size = sizeof(opsc_step_type),
    .name = "extra",
    .summary = "a step added in a minor version",
    .posix_template = "true",
};
#endif

static const opsc_step_type *const types[] = {
    &echo_step,
    &noop_step,
#ifdef EXTRA_STEP
    &extra_step,
#endif
    NULL,
};

static const opsc_steplib lib = {
    .size = sizeof(opsc_steplib),
    .name = "uplib",
    .version = LIB_VERSION,
#ifdef OTHER_BYTES
    .summary = "the upload test library, rebuilt with other bytes",
#else
    .summary = "the upload test library",
#endif
    .types = types,
};

static int uplib_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)cfg, (void)state;
    host = api;
    return api->register_steplib(&lib, NULL);
}

OPSC_PLUGIN_DEFINE("test-uplib", LIB_VERSION, OPSC_KIND_STEPLIB, "upload test step library",
                   "Apache-2.0", uplib_init, NULL)
