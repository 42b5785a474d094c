/* fake_step_host.h - a stand-in executor for step library tests: the step API served locally.
 *
 * Commands run with /bin/sh on this machine (the "target" is localhost),
 * file transfers are copies, outputs and the failure message are kept on the
 * context for the test to check. A hook can replace command execution to
 * script a remote machine's answers (reboots).
 */
#ifndef OPSC_FAKE_STEP_HOST_H
#define OPSC_FAKE_STEP_HOST_H

#include <jansson.h>
#include <stdbool.h>

#include "plugin_host.h"
#include "strbuf.h"

struct opsc_step_ctx {
    json_t *params;  /* the step's parameters */
    json_t *target;  /* {id, name, address, os_family, labels, facts} */
    json_t *job;     /* the job's run parameters, for step_render */
    json_t *secrets; /* parameter name -> secret value */
    json_t *outputs; /* what the step set */
    char failure[1024];
    strbuf log;
    volatile bool cancel;
    int exec_calls;
    /* When set, replaces running the command; return as step_exec would. */
    int (*exec_hook)(opsc_step_ctx *ctx, const char *command, opsc_step_exec_result *res);
    void *hook_state;
    char *out, *err; /* the last exec's output, owned until the next call */
    char **pool;     /* other strings handed to the step */
    size_t npool;
    const char *run_dir; /* step_run_dir; NULL: none (step_fetch_file fails) */
};

/* Install the fake step API into the plugin host. */
void fake_host_install(plugin_host *h);

/* A context for a step with `params_json` on a target of `os_family`. */
opsc_step_ctx *fake_ctx_new(const char *params_json, const char *os_family);
void fake_ctx_free(opsc_step_ctx *ctx);

/* Run `script` with `shell` -c (timeout in ms, 0: none). 0 when it ran. */
int fake_run_shell(const char *shell, const char *script, uint32_t timeout_ms, char **out,
                   size_t *out_len, int *exit_code);

#endif
