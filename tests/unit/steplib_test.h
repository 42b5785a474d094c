/* steplib_test.h - what the step library tests share: the loaded libraries and helpers. */
#ifndef OPSC_STEPLIB_TEST_H
#define OPSC_STEPLIB_TEST_H

#include <jansson.h>
#include <stdbool.h>

#include "fake_step_host.h"
#include "steptype.h"

enum { LIB_CORE, LIB_LINUX, LIB_WINDOWS, LIB_COUNT };

struct steplib_world {
    char dir[64];        /* scratch directory */
    char files_dir[128]; /* core's files_dir, inside dir */
    const plugin_reg *reg[LIB_COUNT];
    steplib *lib[LIB_COUNT];
};
extern struct steplib_world world;
extern const char *const lib_names[LIB_COUNT];

const steptype *find_type(int lib, const char *name);

/* The run context for rendering on a target of `family` (job params included). */
json_t *run_context(const char *family, json_t *step_params);
/* Job-render `params_json` for `st`, validate it (adding defaults) and render
 * the template for `family`. Caller frees the script. */
char *render_step(const steptype *st, const char *family, const char *params_json);

/* Render a POSIX step and run it here with /bin/sh; returns its outputs parsed
 * by the step's output rule (new reference) and the exit code. */
json_t *run_posix_step(int lib, const char *step, const char *params_json, int *exit_code);

/* Run an imperative step with the fake host; returns its run() result. */
int run_imperative(int lib, const char *step, opsc_step_ctx *ctx);

/* Imperative step tests (test_steplibs_run.c). */
void file_put_copies_once_and_refuses_paths_outside_files_dir(void **state);
void file_template_renders_run_values_and_vars(void **state);
void file_get_keeps_the_file_with_the_run(void **state);
void http_request_reports_status_and_json_and_fails_on_unexpected_status(void **state);
void wait_port_succeeds_when_open_and_times_out_when_closed(void **state);
void wait_duration_sleeps_and_stops_on_cancel(void **state);
void assert_output_matches_values_and_regexes(void **state);
void reboot_waits_for_a_new_boot_id_on_linux_and_windows(void **state);

#endif
