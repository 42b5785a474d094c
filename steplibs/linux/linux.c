/* linux.c - the linux step library: services, packages, users and groups, file lines, facts,
 * reboot. */
#include <opsc/plugin.h>

#include "linux_steps.h"
#include "stepkit.h"

static const opsc_host_api *host;

/* Declarative linux steps: one POSIX template, outputs as a JSON object on the last line. */
#define LINUX_STEP(name_, summary_, params_, outputs_, template_)                                  \
    {                                                                                              \
        .size = sizeof(opsc_step_type), .name = (name_), .summary = (summary_),                    \
        .params_schema = (params_), .outputs_schema = (outputs_), .os_families = "linux",          \
        .posix_template = (template_), .output_rule = OPSC_OUTPUT_JSON_LAST_LINE,                  \
    }

static const opsc_step_type service_start = LINUX_STEP(
    "service.start", "Start a service unless it is running (systemd, else the service command)",
    S_service_params, S_service_outputs, T_service_detect_sh T_service_start_sh);
static const opsc_step_type service_stop =
    LINUX_STEP("service.stop", "Stop a service if it is running", S_service_params,
               S_service_outputs, T_service_detect_sh T_service_stop_sh);
static const opsc_step_type service_restart =
    LINUX_STEP("service.restart", "Restart a service", S_service_params, S_service_outputs,
               T_service_detect_sh T_service_restart_sh);
static const opsc_step_type service_enable =
    LINUX_STEP("service.enable", "Enable a service at boot (and start it with now: true)",
               S_service_enable_params, S_service_enable_outputs,
               T_service_detect_sh T_service_enabled_sh T_service_enable_sh);
static const opsc_step_type service_disable =
    LINUX_STEP("service.disable", "Disable a service at boot (and stop it with now: true)",
               S_service_enable_params, S_service_enable_outputs,
               T_service_detect_sh T_service_enabled_sh T_service_disable_sh);
static const opsc_step_type service_status = LINUX_STEP(
    "service.status", "Report whether a service is running and enabled", S_service_status_params,
    S_service_status_outputs, T_service_detect_sh T_service_status_sh);

static const opsc_step_type package_install =
    LINUX_STEP("package.install", "Install packages that are missing (apt, dnf, yum or zypper)",
               S_package_params, S_package_outputs, T_package_detect_sh T_package_install_sh);
static const opsc_step_type package_remove =
    LINUX_STEP("package.remove", "Remove packages that are installed", S_package_params,
               S_package_outputs, T_package_detect_sh T_package_remove_sh);
static const opsc_step_type package_update = LINUX_STEP(
    "package.update", "Upgrade some or all packages when updates are pending",
    S_package_update_params, S_package_update_outputs, T_package_detect_sh T_package_update_sh);

static const opsc_step_type user_present =
    LINUX_STEP("user.present", "Create a user, or bring an existing one to the given attributes",
               S_user_present_params, S_user_present_outputs, T_user_present_sh);
static const opsc_step_type user_absent =
    LINUX_STEP("user.absent", "Delete a user if it exists", S_user_absent_params,
               S_user_absent_outputs, T_user_absent_sh);
static const opsc_step_type group_present =
    LINUX_STEP("group.present", "Create a group, or set its gid", S_group_present_params,
               S_group_present_outputs, T_group_present_sh);
static const opsc_step_type group_absent =
    LINUX_STEP("group.absent", "Delete a group if it exists", S_group_absent_params,
               S_group_absent_outputs, T_group_absent_sh);

static const opsc_step_type file_line = LINUX_STEP(
    "file.line", "Make sure a line is in a file (or not), replacing a matching line in place",
    S_file_line_params, S_file_line_outputs, T_file_line_sh);

static const opsc_step_type facts_disk =
    LINUX_STEP("facts.disk", "File systems with their size and use", S_facts_disk_params,
               S_facts_disk_outputs, T_facts_disk_sh);
static const opsc_step_type facts_memory =
    LINUX_STEP("facts.memory", "Memory and swap totals and use", S_facts_memory_params,
               S_facts_memory_outputs, T_facts_memory_sh);

/* Rebooting needs logic between commands: read the boot id, reboot, poll. */
static const stepkit_reboot linux_reboot = {
    .boot_marker_cmd = "cat /proc/sys/kernel/random/boot_id",
    /* Detached and delayed, so the command returns before the connection drops. */
    .reboot_cmd = "nohup setsid sh -c 'sleep 2; systemctl reboot 2>/dev/null || reboot' "
                  "</dev/null >/dev/null 2>&1 &",
    .default_test_cmd = "true",
};

static int reboot_run(opsc_step_ctx *ctx, void *lib_state)
{
    (void)lib_state;
    return stepkit_reboot_wait(host, ctx, &linux_reboot);
}

static const opsc_step_type system_reboot = {
    .size = sizeof(opsc_step_type),
    .name = "system.reboot",
    .summary = "Reboot and wait until the target is back with a new boot id",
    .params_schema = S_system_reboot_params,
    .outputs_schema = S_system_reboot_outputs,
    .os_families = "linux",
    .run = reboot_run,
};

static const opsc_step_type *const linux_types[] = {
    &service_start,   &service_stop,    &service_restart,
    &service_enable,  &service_disable, &service_status,
    &package_install, &package_remove,  &package_update,
    &user_present,    &user_absent,     &group_present,
    &group_absent,    &file_line,       &facts_disk,
    &facts_memory,    &system_reboot,   NULL,
};

static const opsc_steplib linux_lib = {
    .size = sizeof(opsc_steplib),
    .name = "linux",
    .version = "1.0.0",
    .summary = "Linux services, packages, users, files, facts and reboots",
    .types = linux_types,
};

static int linux_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)state;
    host = api;
    return stepkit_register(api, cfg, &linux_lib, "steplib-linux");
}

OPSC_PLUGIN_DEFINE("steplib-linux", "1.0.0", OPSC_KIND_STEPLIB,
                   "Linux step library: services, packages, users, files, facts, reboot",
                   "Apache-2.0", linux_init, NULL)
