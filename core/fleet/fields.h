/* fields.h - request body members declared in tables: type, range, choices, null, read-only.
 *
 * Internal to the fleet module (targets, groups). A body is applied to a
 * record member by member: unknown members are refused with the list of
 * valid ones, read-only ones with a hint, null resets a member to its
 * default from `defaults`, and every value is checked against its entry
 * before it is copied in. Cross-member rules stay with the caller.
 */
#ifndef OPSC_FLEET_FIELDS_H
#define OPSC_FLEET_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "fleet.h"

typedef enum fld_type { FLD_STRING, FLD_INT, FLD_BOOL, FLD_OBJECT, FLD_ARRAY } fld_type;

#define FLD_NULLABLE    (1u << 0) /* null resets to the default */
#define FLD_CREATE_ONLY (1u << 1) /* accepted when creating only */
#define FLD_READ_ONLY   (1u << 2) /* never accepted: the server sets it */
#define FLD_TRANSIENT   (1u << 3) /* accepted and checked, not stored (flags) */
#define FLD_MULTILINE   (1u << 4) /* strings may hold \n and \t */
#define FLD_NULL_VALUE  (1u << 5) /* the default is JSON null */

typedef struct fld {
    const char *name;
    fld_type type;
    int64_t min, max;    /* string bytes, integer value, array items */
    const char *choices; /* strings: space-separated allowed values, or NULL */
    unsigned flags;
    const char *hint; /* read-only members: where to change it instead */
} fld;

/* Apply `body` to `rec` following `table` (NULL-name terminated); `defaults`
 * holds what null resets to. Transient members go to `transient` (may be
 * NULL). 0 or OPSC_ESCHEMA with `e` naming the member. */
int fld_apply(const fld *table, const json_t *body, bool create, const json_t *defaults,
              json_t *rec, json_t *transient, fleet_err *e);

/* A copy of `rec` with its members in a stable order for people reading
 * it: "id", then the table's order, then the rest. New reference. */
json_t *fld_ordered(const fld *table, const json_t *rec);

/* Format e->msg, set e->field; returns OPSC_ESCHEMA. */
int fleet_fail(fleet_err *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* User text for a message: printable ASCII only (messages end up in JSON,
 * which must be valid UTF-8; '?' replaces the rest), cut at 64 bytes. */
#define FLEET_QUOTE_LEN 72
void fleet_quote(const char *s, size_t n, char out[FLEET_QUOTE_LEN]);

/* A string member of `o`, or NULL. */
const char *fld_str(const json_t *o, const char *key);

#endif
