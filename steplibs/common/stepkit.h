/* stepkit.h - helpers the shipped step libraries share: typed parameters, outputs, reboot-and-wait.
 *
 * Compiled into each library (hidden, like everything in a plugin); they
 * only use the step API of opsc_host_api, so they are also a fair example
 * for third parties. All functions run on the step's worker thread.
 */
#ifndef OPSC_STEPKIT_H
#define OPSC_STEPKIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include <opsc/plugin.h>

/* init() of a library without settings: bind an empty config map (so unknown
 * keys in its section are still refused) and register `lib`. Loop thread. */
int stepkit_register(const opsc_host_api *api, const opsc_config *cfg, const opsc_steplib *lib,
                     const char *component);

/* The step's parameters as a JSON object (new reference), or an empty
 * object when the host has none. NULL only when out of memory. */
json_t *stepkit_params(const opsc_host_api *h, opsc_step_ctx *ctx);
/* Typed reads from that object with defaults for absent or mistyped values. */
const char *stepkit_str(const json_t *params, const char *name);
double stepkit_num(const json_t *params, const char *name, double def);
bool stepkit_bool(const json_t *params, const char *name, bool def);

/* Set output `key` to a JSON value; steals `value`. */
int stepkit_output(const opsc_host_api *h, opsc_step_ctx *ctx, const char *key, json_t *value);

/* Run `command` on the target with a timeout (0: the step's remaining time),
 * output not logged. 0 when it ran (whatever its exit code). */
int stepkit_exec(const opsc_host_api *h, opsc_step_ctx *ctx, const char *command,
                 uint32_t timeout_ms, opsc_step_exec_result *res);

/* Copy of res->out without surrounding whitespace (caller frees), or NULL. */
char *stepkit_trimmed_out(const opsc_step_exec_result *res);

/* Reboot the target and wait until it answers with a new boot marker. */
typedef struct stepkit_reboot {
    const char *boot_marker_cmd;  /* prints something that changes on every boot */
    const char *reboot_cmd;       /* schedules a reboot and returns at once */
    const char *default_test_cmd; /* must succeed once the target is back */
} stepkit_reboot;

int stepkit_reboot_wait(const opsc_host_api *h, opsc_step_ctx *ctx, const stepkit_reboot *spec);

#endif
