/* core_internal.h - what the core step library's files share: the host table, settings, run(). */
#ifndef OPSC_STEPLIB_CORE_INTERNAL_H
#define OPSC_STEPLIB_CORE_INTERNAL_H

#include <opsc/plugin.h>

#include "stepkit.h"

/* Set once in init(), read by the run() functions on worker threads. */
extern const opsc_host_api *core_host;

typedef struct core_settings {
    const char *files_dir; /* the only place file.put/template read and file.get writes */
} core_settings;

int core_file_put_run(opsc_step_ctx *ctx, void *lib_state);
int core_file_get_run(opsc_step_ctx *ctx, void *lib_state);
int core_file_template_run(opsc_step_ctx *ctx, void *lib_state);
int core_http_request_run(opsc_step_ctx *ctx, void *lib_state);
int core_wait_duration_run(opsc_step_ctx *ctx, void *lib_state);
int core_wait_port_run(opsc_step_ctx *ctx, void *lib_state);
int core_assert_output_run(opsc_step_ctx *ctx, void *lib_state);

#endif
