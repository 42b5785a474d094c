/* jsonschema.h - JSON Schema (draft 2020-12 subset) compiled once, validating many documents.
 *
 * Keywords: type (incl. "integer", or a list of types), properties,
 * required, additionalProperties (bool or schema), propertyNames,
 * minProperties, maxProperties, items, minItems, maxItems, uniqueItems,
 * enum, const, pattern, minLength, maxLength (in code points), minimum,
 * maximum, exclusiveMinimum, exclusiveMaximum (numbers, as in 2020-12),
 * multipleOf, allOf, anyOf, oneOf, not, default. Annotations are accepted
 * and ignored: description, title, examples, format, $schema, $id,
 * $comment, readOnly, writeOnly, deprecated, and any "x-..." key. Every
 * other keyword ($ref, if/then, patternProperties...) is a compile error, so
 * a typo ("requird") or an unsupported feature is reported when a step
 * library loads instead of silently validating nothing. A `default` must
 * itself be valid against its schema.
 *
 * `pattern` is an ECMA-262-style regular expression, matched with PCRE2 in
 * UTF mode (not anchored: use ^...$), with a match limit so a pathological
 * pattern fails validation instead of hanging the daemon. PCRE2 rather than
 * POSIX regcomp because schemas in the wild use \d, \w, \s, (?:...) and
 * lazy quantifiers, which glibc's ERE either rejects or, worse, silently
 * reads differently (`\d` is a literal 'd' there).
 *
 * Errors name the JSON Pointer of the offending value, prefixed with the
 * caller's base ("/steps/2/params/port"), and the reason.
 *
 * Thread: a compiled schema is immutable; validation may run on several
 * threads at once (applying defaults writes only to the instance).
 */
#ifndef OPSC_JSONSCHEMA_H
#define OPSC_JSONSCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct jschema jschema;

typedef struct jschema_err {
    char path[256]; /* JSON Pointer of the value, "" for the whole document */
    char msg[256];
} jschema_err;

/* Compile `schema` (borrowed; the compiled form keeps a reference). Errors:
 * OPSC_ESCHEMA with "<schema pointer>: reason" in err, OPSC_ENOMEM. */
int jschema_compile(jschema **out, json_t *schema, char *err, size_t errlen);
/* The same from JSON text; syntax errors are OPSC_ESCHEMA with line:column. */
int jschema_compile_text(jschema **out, const char *text, char *err, size_t errlen);
void jschema_free(jschema *s);

/* Validation flags. */
#define JSCHEMA_DEFAULTS (1u << 0) /* add absent properties that have a "default" */

/* Validate `instance`. Up to `max` errors go to errs (may be NULL), their
 * number to *nerr (may be NULL). `base` (may be NULL) prefixes every path.
 * Returns 0, OPSC_ESCHEMA when invalid, OPSC_ENOMEM. With JSCHEMA_DEFAULTS
 * the instance gains copies of defaults (not inside anyOf/oneOf/not, where a
 * branch that fails must leave no trace). */
int jschema_validate(const jschema *s, json_t *instance, unsigned flags, const char *base,
                     jschema_err *errs, size_t max, size_t *nerr);

/* Errors as [{"path": ..., "message": ...}] for API error details (new reference). */
json_t *jschema_errors_json(const jschema_err *errs, size_t n);

/* The schema as compiled (borrowed, for GET /api/v1/steplibs). */
const json_t *jschema_source(const jschema *s);
/* Its top-level "properties" object, or NULL (borrowed). */
const json_t *jschema_properties(const jschema *s);

#endif
