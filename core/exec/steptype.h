/* steptype.h - step libraries checked and compiled once at load: names, schemas, templates.
 *
 * What the executor needs from a step type at run time, prepared when the
 * library is registered so that a broken library is refused with a clear
 * message ("linux.service.restart: posix_template 3:14: unknown parameter
 * 'nmae'") instead of failing a run later: the parameter and output schemas
 * compiled, each OS family's template compiled for its shell (with the
 * step's raw parameters and the schema's parameter names), and the OS
 * families it supports.
 *
 * Thread: compiled step types are immutable and may be used from any thread.
 */
#ifndef OPSC_STEPTYPE_H
#define OPSC_STEPTYPE_H

#include <stdbool.h>
#include <stddef.h>

#include <opsc/step.h>

#include "jsonschema.h"
#include "template.h"

typedef struct steptype {
    const opsc_step_type *desc; /* borrowed from the library */
    char name[128];             /* "<library>.<step>" */
    jschema *params;            /* NULL: the step takes no parameters */
    jschema *outputs;           /* NULL: outputs are not described */
    tpl *posix;                 /* NULL for imperative steps or no linux support */
    tpl *powershell;            /* NULL for imperative steps or no windows support */
    bool linux_ok, windows_ok;
    const char *raw_params; /* from the descriptor when its size covers it, else NULL */
} steptype;

typedef struct steplib {
    const opsc_steplib *desc;
    steptype *types;
    size_t ntypes;
} steplib;

/* Check and compile every type of `lib`. Errors: OPSC_EINVAL (bad names,
 * descriptor), OPSC_ESCHEMA (a schema), OPSC_ESYNTAX (a template), with the
 * step type and field in err. Free with steplib_free(). */
int steplib_compile(steplib **out, const opsc_steplib *lib, char *err, size_t errlen);
/* The same without the `sh -n` of each posix template (steptype_check_posix): for the step
 * libraries built with the daemon (plugin_steplib_bundled()), whose templates the unit tests
 * parse instead; the check is a fork and an exec a template, 18 at each start. */
int steplib_compile_bundled(steplib **out, const opsc_steplib *lib, char *err, size_t errlen);
void steplib_free(steplib *l);

/* steptype_shcheck.c: render st's compiled posix template with sample values and have
 * /bin/sh parse it (`sh -n`). OPSC_ESYNTAX with the step, template and the shell's line and
 * message in err; 0 when it parses, or when no sample renders or no shell can be asked. */
int steptype_check_posix(const steptype *st, char *err, size_t errlen);

/* A refusal message of steplib_compile(), found anywhere in `msg`, taken apart: a new
 * {"step", "field", "position" (when the message has one), "message"}, or NULL. */
json_t *steptype_error_details(const char *msg);
const steptype *steplib_find(const steplib *l, const char *step_name);

/* Render a job step's parameter values: every string in `params` (at any
 * depth) is a template rendered with `ctx` (the run context: the job's
 * params, target, steps, run) as plain text, except the step type's raw
 * parameters, which are shell code and so are rendered in the target's
 * shell mode (job values inside them are quoted). Strings without template
 * tags are copied as they are. On success *out is a new object. Errors are
 * those of tpl_compile/tpl_render, with "params.<name> line:col: reason" in
 * err. The executor should compile these templates once per job version;
 * this helper compiles on each call. */
int steptype_render_params(const steptype *st, const json_t *params, const json_t *ctx,
                           const char *os_family, json_t **out, char *err, size_t errlen);

/* True when a step of this type may run on a target of `os_family`. */
bool steptype_supports(const steptype *st, const char *os_family);
/* The template for a target family, or NULL (imperative, or not supported). */
const tpl *steptype_template(const steptype *st, const char *os_family);

#endif
