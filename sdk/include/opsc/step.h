/* opsc/step.h - step libraries: the step types a job can use.
 *
 * A step library is a plugin of kind OPSC_KIND_STEPLIB that registers one
 * opsc_steplib with opsc_host_api.register_steplib(). Its step types are
 * named "<library>.<step>" in jobs ("linux.service.restart"), optionally
 * pinned to a major version ("linux.service.restart@1"). Several versions
 * of one library may be loaded side by side.
 *
 * A step type is one of two forms:
 *
 * Declarative: a command template per OS family that the host renders and
 * runs through the target's transport. No plugin code runs at run time, so
 * such steps are as cheap as a raw command. Templates use the host's
 * template language (a Jinja subset): `{{ params.name }}`,
 * `{{ target.address }}`, `{{ target.labels.env }}`, `{{ target.facts.k }}`,
 * `{{ steps.<id>.outputs.<key> }}`, `{{ run.id }}`; filters `default('x')`,
 * `upper`, `lower`, `trim`, `replace('a', 'b')`, `join(',')`, `split(',')`,
 * `length`, `first`, `last`, `keys`, `string`, `int`, `json`, `b64encode`,
 * `b64decode`, `basename`, `dirname`, `raw`, `args`; operators
 * `~ == != < > in not and or`, tests `is defined` / `is none`; and blocks
 * `{% if %}{% elif %}{% else %}{% endif %}`, `{% for x in list %}` /
 * `{% for k, v in object %}...{% endfor %}` (with loop.index, loop.last),
 * `{% raw %}...{% endraw %}`, `{# comments #}`. A newline after a block
 * tag is dropped and indentation before one is ignored, so blocks can sit
 * on their own lines.
 *
 * Every inserted value is quoted for the target's shell: a POSIX word
 * ('it'\''s') or a PowerShell single-quoted string ('it''s', and the
 * Unicode quotes U+2018-U+201B doubled too); numbers bare; booleans
 * true/false or $true/$false; a list only when asked with `| args`, as one
 * word per element ('a' 'b') or a PowerShell array @('a', 'b'). So write
 * `systemctl restart {{ params.name }}`, never `'{{ params.name }}'` or
 * `"{{ params.name }}"`: the host refuses, when the library loads, a value
 * placed inside quotes, a comment, a here-document, `...`, ${...},
 * arithmetic or after a backslash, where quoting would not make it one
 * literal argument. Templates must be valid shell (check with sh -n). To build a string,
 * assign a variable: `unit={{ params.name }}.service` then use "$unit".
 * Unquoted insertion (`{{ params.command | raw }}`) is refused unless the
 * parameter is listed in the step type's `raw_params`. Quoting makes a value
 * one argument, not harmless to every command: never pass values to eval,
 * sh -c, awk/sed programs, cmd.exe or .bat files (use environment variables),
 * and make values used in bash arithmetic integers in the schema.
 *
 * Imperative: a run() function executed on a worker thread of the host's
 * bounded step pool, calling the blocking step API of opsc_host_api
 * (step_exec, step_put_file, step_log, step_set_output...). The host
 * services those calls on the loop; run() only waits. Use this form when a
 * step needs logic between commands (retry until healthy, parse and decide).
 *
 * Parameters and outputs are described by JSON Schema (draft 2020-12 subset:
 * type, properties, required, additionalProperties, propertyNames, enum,
 * const, pattern (ECMA-style, matched with PCRE2), minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum, multipleOf, minLength, maxLength,
 * items, minItems, maxItems, uniqueItems, allOf, anyOf, oneOf, not, default,
 * description; unknown keywords are an error, "x-..." keys are annotations).
 * The host compiles schemas and templates when the library loads and
 * refuses a library whose schema or template is broken, naming the step
 * type, the field and the line:column. It validates parameters (adding
 * defaults) before a run starts and reports the step, field and reason.
 *
 * Conventions for outputs. A step that may change the target reports
 * `changed` (boolean): true when it did something, false when the target
 * was already as asked (idempotent steps). Names are [a-z0-9_]+.
 *
 * Ownership: every string and table here is borrowed by the host from
 * register_steplib() until the plugin's shutdown() returns; static const data
 * is the natural choice.
 */
#ifndef OPSC_STEP_H
#define OPSC_STEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct opsc_step_ctx opsc_step_ctx; /* one step on one target, owned by the host */

/* How a declarative step's outputs are read from its stdout. Appended only. */
typedef enum opsc_output_rule {
    OPSC_OUTPUT_NONE = 0,       /* no outputs; stdout is only logged */
    OPSC_OUTPUT_JSON_LAST_LINE, /* the last non-empty stdout line is a JSON object: its
                                   members are the outputs */
    OPSC_OUTPUT_KEY_VALUE,      /* lines "OPSC_OUTPUT key=value" are outputs (and are not
                                   logged); other lines are logged. The value is the rest
                                   of the line: JSON when it parses as JSON (true, 42,
                                   "x", [...]), else the text as a string */
    OPSC_OUTPUT_STDOUT,         /* the whole stdout (trimmed) is the output "stdout" */
    OPSC_OUTPUT_STDOUT_KEY_VALUE, /* both: "OPSC_OUTPUT key=value" lines as in KEY_VALUE,
                                   the other lines (trimmed) as the output "stdout". For
                                   commands whose output users consume and that also
                                   report `changed` */
} opsc_output_rule;

/* Imperative entry point, called on a step-pool worker thread. `lib_state` is
 * the library's state from register_steplib(). Return 0 for success, or a
 * negative OPSC_E* code after explaining with step_fail() (a code without an
 * explanation is reported with opsc_strerror()). It should check
 * step_cancelled() between long operations; step API calls fail with
 * OPSC_ECANCELED once the step is cancelled or timed out. */
typedef int (*opsc_step_run_fn)(opsc_step_ctx *ctx, void *lib_state);

typedef struct opsc_step_type {
    size_t size;                  /* sizeof(opsc_step_type) the plugin was built with */
    const char *name;             /* within the library, [a-z0-9_.]+: "service.restart" */
    const char *summary;          /* one line */
    const char *params_schema;    /* JSON Schema (text) of the parameters; NULL: none */
    const char *outputs_schema;   /* JSON Schema (text) of the outputs; NULL: none */
    const char *os_families;      /* "linux", "windows", "linux,windows"; NULL: any. A step
                                     on a target of another family is refused before the run */
    /* Declarative form: at least one template for the families above. */
    const char *posix_template;   /* rendered for linux targets */
    const char *powershell_template; /* rendered for windows targets */
    opsc_output_rule output_rule;
    /* Imperative form: non-NULL instead of templates. */
    opsc_step_run_fn run;
    /* Members below were appended after ABI 1.0; the host reads them only
     * when `size` covers them. */
    /* ','-separated parameters whose value IS shell code (core.shell.command's
     * "command"): the templates may insert them unquoted with `| raw`, and
     * nothing else. Each must be a string property of params_schema. The
     * job's value of such a parameter is itself rendered in the target's
     * shell mode, so job parameters used inside it are still quoted.
     * NULL: none. */
    const char *raw_params;
} opsc_step_type;

typedef struct opsc_steplib {
    size_t size;                        /* sizeof(opsc_steplib) the plugin was built with */
    const char *name;                   /* [a-z0-9_]+: "linux" */
    const char *version;                /* semantic version: "1.2.0" */
    const char *summary;
    const opsc_step_type *const *types; /* NULL-terminated */
} opsc_steplib;

/* Result of opsc_host_api.step_exec(). Strings are owned by the host and valid
 * until the next step API call on the same context or the end of run(). */
typedef struct opsc_step_exec_result {
    size_t size;
    int exit_code;
    const char *exit_signal; /* NULL unless killed by a signal */
    const char *out;         /* captured stdout, up to capture_limit bytes */
    size_t out_len;
    const char *err;         /* captured stderr, up to capture_limit bytes */
    size_t err_len;
    bool truncated;          /* more output than capture_limit was produced (it is still
                                fully in the run log) */
} opsc_step_exec_result;

typedef struct opsc_step_exec_opts {
    size_t size;
    uint32_t timeout_ms;         /* 0: the step's remaining time */
    size_t capture_limit;        /* 0: 1 MiB */
    const char *stdin_data;      /* fed to stdin then closed; NULL: none */
    size_t stdin_len;
    bool log_output;             /* also stream stdout/stderr to the run log */
    bool sensitive;              /* the command line is not logged */
} opsc_step_exec_opts;

/* What opsc_host_api.step_fetch_file() stored (ABI 1.3). The caller sets
 * `size` to sizeof(opsc_step_file); the host fills the members that fit. */
typedef struct opsc_step_file {
    size_t size;      /* sizeof(opsc_step_file) the plugin was built with */
    char sha256[65];  /* the stored file's SHA-256, lower-case hex, NUL-terminated */
    uint64_t bytes;   /* its size */
    bool changed;     /* a file of that name was there before, with other content */
    const char *path; /* "<target id>/<name>": where GET /api/v1/runs/{id}/files/ serves it;
                         owned by the host until run() returns */
} opsc_step_file;

#ifdef __cplusplus
}
#endif
#endif /* OPSC_STEP_H */
