/* selector.h - label selectors (`env=prod,role in (web,db),!legacy`) and label syntax.
 *
 * A selector is a comma-separated list of requirements, all of which must
 * hold (Kubernetes' syntax):
 *   key            the label exists          !key          it does not
 *   key=value      equal (also key==value)   key!=value    absent or different
 *   key in (a,b)   one of                    key notin (a,b)  absent or none of
 * Spaces around tokens are free. The empty selector matches everything.
 *
 * Label keys: an optional DNS-subdomain prefix and '/', then a name of 1-63
 * characters [A-Za-z0-9-_.] starting and ending with a letter or digit.
 * Values: empty, or 1-63 such characters with the same rule at both ends.
 *
 * Errors name the 1-based column of the input where parsing stopped.
 * Thread: pure functions; any thread.
 */
#ifndef OPSC_SELECTOR_H
#define OPSC_SELECTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

#define SELECTOR_MAX_LEN    4096 /* bytes of selector text */
#define SELECTOR_MAX_REQS   64   /* requirements in one selector */
#define SELECTOR_MAX_VALUES 64   /* values in one in/notin set */
#define LABEL_NAME_MAX      63
#define LABEL_PREFIX_MAX    253
#define LABELS_MAX          64 /* labels on one target */

typedef struct selector selector;

/* Parse `text` into *out (free with selector_free). OPSC_ESYNTAX with
 * "column N: ..." in err, OPSC_E2BIG past the limits above, OPSC_ENOMEM. */
int selector_parse(const char *text, selector **out, char *err, size_t errlen);
void selector_free(selector *s);
/* True when `labels` (a JSON object of strings; NULL: no labels) satisfies
 * every requirement. */
bool selector_match(const selector *s, const json_t *labels);
/* True for the selector that matches everything (no requirements). */
bool selector_empty(const selector *s);
/* The canonical text ("a=b,c in (d,e),!f"); parses back to the same selector. */
void selector_format(const selector *s, strbuf *out);

/* Label syntax; on false, err says why (naming `what`, e.g. the key). */
bool label_key_valid(const char *key, char *err, size_t errlen);
bool label_value_valid(const char *value, char *err, size_t errlen);
/* Check a whole labels object: strings only, valid keys and values, at most
 * LABELS_MAX. OPSC_ESCHEMA with err naming the label. */
int labels_check(const json_t *labels, char *err, size_t errlen);

#endif
