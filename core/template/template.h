/* template.h - the template language of steps and notifications: compile once, render many times,
 * quoted for a shell or as plain text.
 *
 * Syntax (a Jinja subset; what step libraries and job parameters need):
 *
 *   {{ expr }}                         insert a value
 *   {{ expr | raw }}                   insert unquoted (see "Raw" below)
 *   {{ expr | args }}                  insert a list as several words (see below)
 *   {% if expr %}..{% elif expr %}..{% else %}..{% endif %}
 *   {% for x in expr %}..{% endfor %}  arrays; `for k, v in obj` for objects;
 *                                      `loop.index` (1-based), `loop.index0`,
 *                                      `loop.first`, `loop.last`, `loop.length`
 *   {% raw %}..{% endraw %}            literal text, tags not interpreted
 *   {# comment #}
 *   {%- / -%} / {{- / -}}              strip whitespace before / after the tag
 *
 * A newline right after a `%}` or `#}` is dropped, and spaces or tabs
 * between the start of a line and a `{%` are dropped (Jinja's trim_blocks and
 * lstrip_blocks), so block tags on their own lines leave no blank lines.
 *
 * Expressions: variables `params.x`, `target.address`, `target.labels.env`,
 * `target.facts.k`, `steps.<id>.outputs.<key>`, `run.id`, `vars.x` (the
 * roots are the context's top-level members: these five for steps, others
 * when tpl_opts.roots names them, as notification messages do) (segments
 * may also be written `['key']` or `[0]`; after the first dot a segment may
 * contain '-': `steps.db-migrate.outputs.rc`); literals 'text', "text", 42,
 * true, false, none, [a, b]; operators `~` (concatenate as text), `==`, `!=`,
 * `<`, `<=`, `>`, `>=`, `in`, `not in`, `and`, `or`, `not`, parentheses; tests
 * `x is defined`, `x is not defined`, `x is none`. Undefined values are false
 * in conditions and an error when inserted (use `| default(...)`).
 *
 * Filters: default(v[, if_falsy]), upper, lower, trim, replace(a, b),
 * join([sep]), split(sep), length, first, last, keys, string, int, json,
 * b64encode, b64decode, basename, dirname, and raw (last filter of a {{ }}
 * only) and args (last filter only). Case changes are ASCII; length counts
 * code points.
 *
 * Quoting. A template is compiled for one mode. In TPL_POSIX every inserted
 * string becomes one single-quoted word ('it'\''s'); in TPL_POWERSHELL one
 * single-quoted string with ', U+2018, U+2019, U+201A and U+201B doubled
 * (PowerShell treats all five as quotes). Numbers are inserted bare;
 * booleans as true/false (POSIX) or $true/$false (PowerShell); null as '' or
 * $null; objects as quoted JSON. A list is inserted only with `| args`: one
 * quoted word per element ('a' 'b') or a PowerShell array @('a', 'b'),
 * nested lists and objects as quoted JSON; without it a list is a render
 * error, because several words where the author expected one would shift
 * arguments (sudo -u {{ steps.a.outputs.user }} id, with a remote machine's
 * output ["root", "sh", "-c", "..."]).
 * A value containing NUL is refused. TPL_TEXT inserts values as plain text
 * (file contents, job parameter values that are later quoted again).
 *
 * Shell context check. In the two shell modes, compiling follows the
 * template's own quoting (quotes, $(...), comments, here-documents,
 * PowerShell here-strings) and refuses a quoted placeholder where a quoted
 * word would not be one literal argument: inside '...' or "...", in a
 * comment or here-document, inside `...` (a backquote in the value would
 * end it: bash runs `echo 'a`; evil; `'`), inside ${...} (its word is parsed
 * again when expanded), inside arithmetic $((...)) / ((...)) (bash expands
 * $(...) there even from a quoted value), after a backslash/backtick or a
 * `$`, after a bash $'...' string (dash reads it differently), after
 * PowerShell's --%. So `rm "{{ params.path }}"` is a compile error;
 * `rm {{ params.path }}` is right. The rules were hardened by a property
 * test that runs random accepted templates with bash and dash and an
 * attacking value (tests/unit/test_template.c); templates must also be
 * valid shell (the step library tests run sh -n and bash -n), since after a
 * syntax error bash may mis-read the rest of a script.
 *
 * What quoting cannot do: a value is one literal argument, but a command may
 * still treat its argument as code. Never hand values to eval, sh -c, an awk
 * or sed program, cmd.exe or a .bat file; pass them as data (arguments, or
 * environment variables read with ENVIRON[]/$env:). bash evaluates strings in
 * arithmetic ($((x)), [[ x -eq y ]], let) as expressions, including a[$(cmd)]:
 * such values must be integers in the step's schema.
 *
 * Raw. `| raw` inserts text unquoted, which is only right for values that
 * ARE shell code (core.shell.command's `command`). It is allowed only when
 * every variable in the expression is a parameter listed in
 * tpl_opts.raw_params, which comes from the step type's `raw_params`
 * (opsc/step.h): the step definition opts in per parameter, visibly in its
 * descriptor and in GET /api/v1/steplibs, and a template cannot quietly
 * insert anything else raw (least of all a target fact or an earlier step's
 * output, which come from remote machines). The executor renders the job's
 * value of a raw parameter as a template in the target's shell mode, so job
 * parameters used inside a command are still quoted.
 *
 * Thread: a compiled template is immutable; tpl_render() may run on several
 * threads at once with the same template. The context is only read.
 */
#ifndef OPSC_TEMPLATE_H
#define OPSC_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

typedef enum tpl_mode {
    TPL_TEXT = 0,   /* no quoting */
    TPL_POSIX,      /* POSIX sh single-quote quoting */
    TPL_POWERSHELL, /* PowerShell single-quote quoting */
} tpl_mode;

typedef struct tpl_opts {
    tpl_mode mode;
    /* ','-separated parameter names that `| raw` may insert; NULL: none. */
    const char *raw_params;
    /* When non-NULL, an object whose keys are the parameters that exist (a
     * params schema's "properties"): `params.<other>` is a compile error. */
    const json_t *known_params;
    /* The names of the context's roots, NULL-terminated, at most
     * TPL_MAX_ROOTS; NULL: the step roots (params, target, steps, run, vars).
     * Borrowed: the array and its strings must outlive the compiled template
     * (static data). known_params and raw_params apply to a root named
     * "params" in the first place only. */
    const char *const *roots;
} tpl_opts;

#define TPL_MAX_ROOTS 12

/* Where and why. line and col are 1-based (col counts code points) within the
 * template text; 0 when the error has no position (out of memory). */
typedef struct tpl_err {
    int line;
    int col;
    char msg[256];
} tpl_err;

/* Render limits: a template that would produce more is an error, not a hang. */
#define TPL_MAX_OUTPUT (16u << 20) /* bytes of output */
#define TPL_MAX_STEPS  2000000u    /* nodes evaluated (loops included) */

typedef struct tpl tpl;

/* Compile `len` bytes of `text` (NUL bytes refused). `opts` NULL means
 * TPL_TEXT with no checks. On success *out is the compiled template (free with
 * tpl_free). Errors: OPSC_ESYNTAX (syntax, unknown variable or filter, bad
 * filter arguments, unsafe placement, raw not allowed), OPSC_ENOMEM; `err`
 * (may be NULL) says where and why. */
int tpl_compile(tpl **out, const char *text, size_t len, const tpl_opts *opts, tpl_err *err);

/* Render with `ctx`, an object {params, target, steps, run, vars} (members may
 * be missing), appending to `out`. Errors: OPSC_EINVAL (undefined value,
 * wrong type for a filter, NUL in a value), OPSC_E2BIG (limits above),
 * OPSC_ENOMEM; `err` (may be NULL) says where and why. On error `out` holds a
 * partial result the caller should discard. */
int tpl_render(const tpl *t, const json_t *ctx, strbuf *out, tpl_err *err);

/* Render into a new NUL-terminated string (caller frees with free()). */
int tpl_render_str(const tpl *t, const json_t *ctx, char **out, tpl_err *err);

tpl_mode tpl_get_mode(const tpl *t);
/* True when the template inserts nothing and has no control: its text is fixed. */
bool tpl_is_constant(const tpl *t);
void tpl_free(tpl *t);

/* Append `value` quoted as one word for `mode` (TPL_TEXT: as is). OPSC_EINVAL
 * when it contains NUL. Used for step_quote() too. */
int tpl_quote(tpl_mode mode, const char *value, size_t len, strbuf *out);

#endif
