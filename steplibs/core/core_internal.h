/* core_internal.h - what the core step library's files share: the host table, settings, run(). */
#ifndef OPSC_STEPLIB_CORE_INTERNAL_H
#define OPSC_STEPLIB_CORE_INTERNAL_H

#include <opsc/plugin.h>

#include "stepkit.h"

/* Set once in init(), read by the run() functions on worker threads. */
extern const opsc_host_api *core_host;

typedef struct core_settings {
    const char *files_dir; /* the only place file.put/template read and file.get writes */
    bool http_allow_local; /* http.request may reach the appliance itself */
} core_settings;

struct sockaddr;
/* core_reach.c: true (and why) when http.request must not connect to `sa`. */
bool core_addr_refused(const core_settings *s, const struct sockaddr *sa, char *why, size_t n);
/* The path of http.request's ca_file `name`, or -1 and why. */
int core_ca_file(const core_settings *s, const char *name, char *out, size_t n, char *why,
                 size_t whylen);

int core_file_put_run(opsc_step_ctx *ctx, void *lib_state);
int core_file_get_run(opsc_step_ctx *ctx, void *lib_state);
int core_file_template_run(opsc_step_ctx *ctx, void *lib_state);
int core_http_request_run(opsc_step_ctx *ctx, void *lib_state);
int core_wait_duration_run(opsc_step_ctx *ctx, void *lib_state);
int core_wait_port_run(opsc_step_ctx *ctx, void *lib_state);
int core_assert_output_run(opsc_step_ctx *ctx, void *lib_state);

#endif
