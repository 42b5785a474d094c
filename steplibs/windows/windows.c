/* windows.c - the windows step library: PowerShell, services, features, registry, files, reboot. */
#include <opsc/plugin.h>

#include "stepkit.h"
#include "windows_steps.h"

static const opsc_host_api *host;

/* Declarative windows steps: one PowerShell template, outputs as JSON on the last line. */
#define WINDOWS_STEP(name_, summary_, params_, outputs_, template_)                                \
    {                                                                                              \
        .size = sizeof(opsc_step_type), .name = (name_), .summary = (summary_),                    \
        .params_schema = (params_), .outputs_schema = (outputs_), .os_families = "windows",        \
        .powershell_template = (template_), .output_rule = OPSC_OUTPUT_JSON_LAST_LINE,             \
    }

static const opsc_step_type powershell_script = {
    .size = sizeof(opsc_step_type),
    .name = "powershell.script",
    .summary = "Run PowerShell code (a script block, with arguments)",
    .params_schema = S_powershell_script_params,
    .outputs_schema = S_powershell_script_outputs,
    .os_families = "windows",
    .powershell_template = T_powershell_script_ps1,
    .output_rule = OPSC_OUTPUT_STDOUT_KEY_VALUE,
};

static const opsc_step_type service_start =
    WINDOWS_STEP("service.start", "Start a service unless it is running", S_service_params,
                 S_service_outputs, T_service_start_ps1);
static const opsc_step_type service_stop =
    WINDOWS_STEP("service.stop", "Stop a service if it is running", S_service_params,
                 S_service_outputs, T_service_stop_ps1);
static const opsc_step_type service_restart =
    WINDOWS_STEP("service.restart", "Restart a service", S_service_params, S_service_outputs,
                 T_service_restart_ps1);
static const opsc_step_type service_status =
    WINDOWS_STEP("service.status", "Report a service's state and start type",
                 S_service_status_params, S_service_status_outputs, T_service_status_ps1);

static const opsc_step_type feature_install = WINDOWS_STEP(
    "feature.install", "Install Windows features (server) or optional features (client)",
    S_feature_params, S_feature_outputs, T_feature_install_ps1);
static const opsc_step_type feature_remove =
    WINDOWS_STEP("feature.remove", "Remove Windows features or optional features", S_feature_params,
                 S_feature_outputs, T_feature_remove_ps1);

static const opsc_step_type registry_set =
    WINDOWS_STEP("registry.set", "Set a registry value (creating the key)", S_registry_set_params,
                 S_registry_set_outputs, T_registry_set_ps1);

static const opsc_step_type file_copy =
    WINDOWS_STEP("file.copy", "Copy a file on the target unless the destination is identical",
                 S_file_copy_params, S_file_copy_outputs, T_file_copy_ps1);

static const stepkit_reboot windows_reboot = {
    .boot_marker_cmd = "(Get-CimInstance -ClassName Win32_OperatingSystem).LastBootUpTime."
                       "ToUniversalTime().ToString('o')",
    /* shutdown.exe returns at once; the delay lets the command's answer get back. */
    .reboot_cmd = "shutdown.exe /r /t 5 /d p:4:1 /c 'OpsConductor: reboot requested by a job'",
    .default_test_cmd = "exit 0",
};

static int reboot_run(opsc_step_ctx *ctx, void *lib_state)
{
    (void)lib_state;
    return stepkit_reboot_wait(host, ctx, &windows_reboot);
}

static const opsc_step_type system_reboot = {
    .size = sizeof(opsc_step_type),
    .name = "system.reboot",
    .summary = "Reboot and wait until the target is back with a new boot time",
    .params_schema = S_system_reboot_params,
    .outputs_schema = S_system_reboot_outputs,
    .os_families = "windows",
    .run = reboot_run,
};

static const opsc_step_type *const windows_types[] = {
    &powershell_script,
    &service_start,
    &service_stop,
    &service_restart,
    &service_status,
    &feature_install,
    &feature_remove,
    &registry_set,
    &file_copy,
    &system_reboot,
    NULL,
};

static const opsc_steplib windows_lib = {
    .size = sizeof(opsc_steplib),
    .name = "windows",
    .version = "1.0.0",
    .summary = "Windows PowerShell, services, features, registry, files and reboots",
    .types = windows_types,
};

static int windows_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)state;
    host = api;
    return stepkit_register(api, cfg, &windows_lib, "steplib-windows");
}

OPSC_PLUGIN_DEFINE("steplib-windows", "1.0.0", OPSC_KIND_STEPLIB,
                   "Windows step library: PowerShell, services, features, registry, reboot",
                   "Apache-2.0", windows_init, NULL)
