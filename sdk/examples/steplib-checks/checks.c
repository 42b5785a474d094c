/* checks.c - example step library "checks": a disk-space check and a wait for a file.
 *
 * Shows both forms of step type a third party can write with the SDK alone:
 *
 *   checks.disk_free  declarative: a POSIX shell and a PowerShell template
 *                     that the daemon renders (quoting every value for the
 *                     target's shell) and runs through the target's
 *                     transport; outputs are the JSON object on the last line
 *                     of stdout. No code of ours runs at run time.
 *   checks.wait_file  imperative: run() on one of the daemon's step worker
 *                     threads, calling the blocking step API (step_exec,
 *                     step_sleep, step_set_output...) and stopping when the
 *                     step is cancelled or out of time.
 *
 * Build against the installed SDK only (see the Makefile):
 *
 *     python3 $(pkg-config --variable=embed opsconductor-sdk) checks_steps.h <the files in steps>
 *     cc $(pkg-config --cflags opsconductor-sdk) -shared -Wl,-z,defs -o steplib-checks.so checks.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/plugin.h>

#include "checks_steps.h" /* generated from steps/ by opsc-embed */

#define LIB_VERSION "1.0.0" /* the major (1) is what jobs pin: "checks.disk_free@1" */

static const opsc_host_api *host;

/* ---- checks.disk_free (declarative) ------------------------------------------- */

/* The schemas and templates are plain files under steps/ (JSON Schema, POSIX shell,
 * PowerShell), turned into string macros in checks_steps.h by the SDK's opsc-embed when the
 * library is built (see the Makefile): S_<step>_params / S_<step>_outputs from
 * steps/<step>.json, T_<step>_sh and T_<step>_ps1 from the templates. In the templates,
 * values are inserted as words in plain code, never inside quotes: integers from the schema
 * are bare numbers, the path arrives as one quoted word. */
static const opsc_step_type disk_free = {
    .size = sizeof(opsc_step_type),
    .name = "disk_free",
    .summary = "Fail when a file system has less free space than a threshold",
    .params_schema = S_disk_free_params,
    .outputs_schema = S_disk_free_outputs,
    .os_families = "linux,windows",
    .posix_template = T_disk_free_sh,
    .powershell_template = T_disk_free_ps1,
    .output_rule = OPSC_OUTPUT_JSON_LAST_LINE,
};

/* ---- checks.wait_file (imperative) --------------------------------------------- */

static double number_param(opsc_step_ctx *ctx, const char *name, double fallback)
{
    const char *v = host->step_param(ctx, name);
    return v ? strtod(v, NULL) : fallback;
}

/* Runs on a step worker thread: blocking is fine, but check for cancellation
 * between waits (step_sleep returns early with OPSC_ECANCELED). */
static int wait_file_run(opsc_step_ctx *ctx, void *lib_state)
{
    (void)lib_state;
    const char *path = host->step_param(ctx, "path");
    double timeout_s = number_param(ctx, "timeout_s", 60);
    double interval_s = number_param(ctx, "interval_s", 1);
    const char *family = host->step_target(ctx, "os_family");
    bool windows = family && strcmp(family, "windows") == 0;
    /* step_quote makes the path one literal word for the target's shell. */
    char cmd[20000];
    int n = snprintf(cmd, sizeof(cmd),
                     windows ? "if (Test-Path -LiteralPath %s) { exit 0 } else { exit 1 }"
                             : "test -e %s",
                     host->step_quote(ctx, path));
    if (n < 0 || (size_t)n >= sizeof(cmd)) /* never run a truncated command */
        return host->step_fail(ctx, "path too long once quoted");

    int64_t start = host->now_ms();
    for (int attempts = 1;; attempts++) {
        opsc_step_exec_result res = {.size = sizeof(res)};
        int rc = host->step_exec(ctx, cmd, NULL, &res);
        if (rc < 0)
            return rc; /* transport error, or OPSC_ECANCELED */
        double waited = (double)(host->now_ms() - start) / 1000.0;
        if (res.exit_code == 0) {
            char n[32];
            snprintf(n, sizeof(n), "%d", attempts);
            host->step_set_output(ctx, "attempts", n);
            snprintf(n, sizeof(n), "%.3f", waited);
            return host->step_set_output(ctx, "waited_s", n);
        }
        if (waited + interval_s > timeout_s)
            return host->step_fail(ctx, "%s did not appear within %g s (%d checks)", path,
                                   timeout_s, attempts);
        host->step_log(ctx, OPSC_LOG_DEBUG, "%s not there yet", path);
        rc = host->step_sleep(ctx, (uint32_t)(interval_s * 1000));
        if (rc < 0)
            return rc;
    }
}

static const opsc_step_type wait_file = {
    .size = sizeof(opsc_step_type),
    .name = "wait_file",
    .summary = "Wait until a file exists on the target",
    .params_schema = S_wait_file_params,
    .outputs_schema = S_wait_file_outputs,
    .os_families = "linux,windows",
    .run = wait_file_run,
};

/* ---- the library ---------------------------------------------------------------- */

static const opsc_step_type *const types[] = {&disk_free, &wait_file, NULL};

static const opsc_steplib checks_lib = {
    .size = sizeof(opsc_steplib),
    .name = "checks",
    .version = LIB_VERSION,
    .summary = "Example checks: free disk space, waiting for a file",
    .types = types,
};

static int checks_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)cfg, (void)state;
    host = api;
    /* The daemon compiles the schemas and templates now: a mistake refuses
     * the library with the step, field and line:column, and init fails. */
    return api->register_steplib(&checks_lib, NULL);
}

/* The plugin's version follows the library's, so that several versions can
 * be installed side by side. */
OPSC_PLUGIN_DEFINE("example-steplib-checks", LIB_VERSION, OPSC_KIND_STEPLIB,
                   "Example step library: disk space and file checks", "MIT", checks_init, NULL)
