/* template_test.h - helpers and tests shared by the two files of the template test. */
#ifndef OPSC_TEMPLATE_TEST_H
#define OPSC_TEMPLATE_TEST_H

#include <jansson.h>
#include <stddef.h>

#include "template.h"

json_t *ctx_of(const char *json);
/* Compile and render; returns the output (caller frees) or fails the test. */
char *render_opts(const char *text, const tpl_opts *opts, const json_t *ctx);
void check_render(tpl_mode mode, const char *text, const char *ctx_json, const char *want);
/* Compilation must fail at line:col with `msg` in the message. */
void check_compile_error(const tpl_opts *opts, const char *text, int line, int col,
                         const char *msg);
void text_error(const char *text, int line, int col, const char *msg);
void shell_error(tpl_mode mode, const char *text, int line, int col, const char *msg);
void render_error(const char *text, const json_t *ctx, int want_rc, int line, int col,
                  const char *msg);
/* Run `script` with `shell` -c and return its stdout (caller frees). */
char *run_shell(const char *shell, const char *script, size_t *len);

#define TEXT(tmpl, ctx, want)  check_render(TPL_TEXT, (tmpl), (ctx), (want))
#define POSIX(tmpl, ctx, want) check_render(TPL_POSIX, (tmpl), (ctx), (want))
#define PS(tmpl, ctx, want)    check_render(TPL_POWERSHELL, (tmpl), (ctx), (want))

/* test_template_shell.c */
void values_arrive_literally_in_posix_sh(void **state);
void arrays_become_one_word_per_element_in_sh(void **state);
void nul_in_a_value_is_refused(void **state);
void scalars_are_quoted_for_each_shell(void **state);
void powershell_quoting_is_exact(void **state);
void powershell_quoting_round_trips_random_text(void **state);
void values_placed_where_quoting_fails_are_refused(void **state);
void values_in_plain_code_are_accepted(void **state);
void accepted_templates_never_let_a_value_run_as_code(void **state);
void raw_is_allowed_only_for_declared_raw_params(void **state);

#endif
