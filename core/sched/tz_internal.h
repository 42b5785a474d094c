/* tz_internal.h - the zone representation shared by tz.c, tz_posix.c and tz_tzif.c. */
#ifndef OPSC_TZ_INTERNAL_H
#define OPSC_TZ_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tz.h"

/* Offsets beyond this are refused when loading (real zones stay within +/-16 h). */
#define TZ_UTOFF_LIMIT (26 * 3600)

struct tz_type {
    int32_t utoff;
    bool is_dst;
    char abbr[TZ_ABBR_MAX];
};

/* One date of a POSIX rule: Jn (1..365, Feb 29 never counted), n (0..365,
 * counted) or Mm.w.d; `secs` is the local time of day, -167 h .. 167 h. */
enum tz_date_kind { TZ_DATE_JULIAN1 = 0, TZ_DATE_JULIAN0, TZ_DATE_MWD };

struct tz_rule_date {
    enum tz_date_kind kind;
    int day; /* Jn / n */
    int month, week, wday;
    int32_t secs;
};

struct tz_rule {
    struct tz_type std;
    struct tz_type dst;
    bool has_dst;
    struct tz_rule_date start; /* DST begins, in standard time */
    struct tz_rule_date end;   /* DST ends, in daylight time */
    /* Both dates Mm.w.d in months 2-11, two or more months apart: each
     * year's two events then keep their order and stay inside the year,
     * so a period needs only that year's events (every real zone today). */
    bool simple;
};

struct tz {
    char *name;
    size_t ntrans;
    int64_t *trans;    /* strictly ascending */
    uint8_t *trans_ty; /* type index of each transition */
    size_t ntypes;
    struct tz_type *types; /* types[0] is in force before the first transition */
    bool has_rule;
    struct tz_rule rule; /* in force from the last transition on */
    int32_t min_utoff, max_utoff;
    struct tz *next; /* cache chain */
};

/* Parse a POSIX TZ string into `rule`. 0 or OPSC_ESYNTAX with a message. */
int tz_rule_parse(const char *s, struct tz_rule *rule, char *err, size_t errlen);

/* The period of `rule` that contains t (start/end may be unbounded). */
void tz_rule_period(const struct tz_rule *rule, int64_t t, tz_period_t *out);

/* Parse TZif bytes into z (name untouched). */
int tz_tzif_parse(const uint8_t *p, size_t len, struct tz *z, char *err, size_t errlen);

/* Recompute min_utoff / max_utoff from types and rule. */
void tz_compute_bounds(struct tz *z);

#endif
