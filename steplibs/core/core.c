/* core.c - the core step library: shell commands and scripts, files, HTTP, waits, assertions. */
#include <curl/curl.h>
#include <stddef.h>
#include <stdio.h>

#include "core_internal.h"
#include "core_steps.h"

const opsc_host_api *core_host;

static const opsc_step_type shell_command = {
    .size = sizeof(opsc_step_type),
    .name = "shell.command",
    .summary = "Run a command line in the target's shell",
    .params_schema = S_shell_command_params,
    .outputs_schema = S_shell_command_outputs,
    .os_families = "linux,windows",
    .posix_template = T_prelude_sh T_shell_command_sh,
    .powershell_template = T_prelude_ps1 T_shell_command_ps1,
    .output_rule = OPSC_OUTPUT_STDOUT_KEY_VALUE,
    /* The command IS shell code: inserted as written, the one raw parameter. */
    .raw_params = "command",
};

/* Declarative on purpose: the script travels inside the command as one quoted
 * word (printf '%s' '...' > file), so there is one round trip, no worker
 * thread, and no here-document whose delimiter a script could contain. The
 * cost is a size limit: one argument of the remote shell (128 KiB on Linux);
 * larger files go with file.put and run with shell.command. */
static const opsc_step_type shell_script = {
    .size = sizeof(opsc_step_type),
    .name = "shell.script",
    .summary = "Upload a script and run it with any interpreter",
    .params_schema = S_shell_script_params,
    .outputs_schema = S_shell_script_outputs,
    .os_families = "linux,windows",
    .posix_template = T_prelude_sh T_shell_script_sh,
    .powershell_template = T_prelude_ps1 T_shell_script_ps1,
    .output_rule = OPSC_OUTPUT_STDOUT_KEY_VALUE,
};

#define IMPERATIVE(name_, summary_, schema_, run_, families_)                                      \
    {                                                                                              \
        .size = sizeof(opsc_step_type), .name = (name_), .summary = (summary_),                    \
        .params_schema = S_##schema_##_params, .outputs_schema = S_##schema_##_outputs,            \
        .os_families = (families_), .run = (run_),                                                 \
    }

static const opsc_step_type file_put =
    IMPERATIVE("file.put", "Copy a file or text from the appliance to the target, if different",
               file_put, core_file_put_run, "linux,windows");
static const opsc_step_type file_get =
    IMPERATIVE("file.get", "Fetch a file from the target to the appliance", file_get,
               core_file_get_run, "linux,windows");
static const opsc_step_type file_template = IMPERATIVE(
    "file.template", "Render a template file with the run's values and put it on the target",
    file_template, core_file_template_run, "linux,windows");
/* The next four run on the appliance: any target family. */
static const opsc_step_type http_request =
    IMPERATIVE("http.request", "Make an HTTP request from the appliance", http_request,
               core_http_request_run, NULL);
static const opsc_step_type wait_duration = IMPERATIVE(
    "wait.duration", "Wait for a number of seconds", wait_duration, core_wait_duration_run, NULL);
static const opsc_step_type wait_port =
    IMPERATIVE("wait.port", "Wait until a TCP port opens (or closes), checked from the appliance",
               wait_port, core_wait_port_run, NULL);
static const opsc_step_type assert_output =
    IMPERATIVE("assert.output", "Fail unless a value (e.g. an earlier step's output) matches",
               assert_output, core_assert_output_run, NULL);

static const opsc_step_type *const core_types[] = {
    &shell_command, &shell_script,  &file_put,  &file_get,      &file_template,
    &http_request,  &wait_duration, &wait_port, &assert_output, NULL,
};

static const opsc_steplib core_lib = {
    .size = sizeof(opsc_steplib),
    .name = "core",
    .version = "1.0.0",
    .summary = "Commands, scripts, files, HTTP requests, waits and assertions",
    .types = core_types,
};

static core_settings settings;

static const opsc_cfg_entry settings_map[] = {
    {"files_dir", OPSC_CFG_STRING, "", 0, -1, NULL, 0, offsetof(core_settings, files_dir),
     "directory on the appliance that file.put and file.template read (and /api/v1/files "
     "serves; file.get keeps what it fetches with the run), created 0700 at start; empty: "
     "<data_dir>/files"},
    {"http_allow_local", OPSC_CFG_BOOL, "false", 0, -1, NULL, 0,
     offsetof(core_settings, http_allow_local),
     "http.request may reach the appliance itself (loopback, its own addresses: the daemon's "
     "API) and link-local addresses (cloud metadata)"},
    {NULL},
};

/* The default lives in the data directory so that one directory holds all
 * state: backup and restore take the files with the database. The daemon
 * resolves the same way (core/api/files_dir.c). */
static int resolve_files_dir(const opsc_host_api *api)
{
    static char dir[4096];
    if (!settings.files_dir || !settings.files_dir[0]) {
        const char *data = OPSC_HOST_HAS(api, data_dir) ? api->data_dir() : NULL;
        if (!data || !data[0]) {
            api->log("steplib-core", OPSC_LOG_ERROR,
                     "files_dir is empty and the host names no "
                     "data directory: set files_dir");
            return OPSC_EINVAL;
        }
        if ((size_t)snprintf(dir, sizeof(dir), "%s/files", data) >= sizeof(dir))
            return OPSC_E2BIG;
        settings.files_dir = dir;
    }
    return 0; /* the daemon creates it at start: it serves it as /api/v1/files */
}

static int core_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    char err[512];
    core_host = api;
    int rc = api->config_bind(cfg, settings_map, &settings, err, sizeof(err));
    if (rc < 0) {
        api->log("steplib-core", OPSC_LOG_ERROR, "%s", err);
        return rc;
    }
    rc = resolve_files_dir(api);
    if (rc < 0)
        return rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        api->log("steplib-core", OPSC_LOG_ERROR, "libcurl failed to initialise");
        return OPSC_EPLUGIN;
    }
    *state = &settings;
    rc = api->register_steplib(&core_lib, &settings);
    if (rc < 0) /* shutdown() is not called when init() fails */
        curl_global_cleanup();
    return rc;
}

static void core_shutdown(void *state)
{
    (void)state;
    curl_global_cleanup();
}

OPSC_PLUGIN_DEFINE("steplib-core", "1.0.0", OPSC_KIND_STEPLIB,
                   "Core step library: shell, scripts, files, HTTP, waits, assertions",
                   "Apache-2.0", core_init, core_shutdown)
