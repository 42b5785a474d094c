/* cron.h - cron expressions: parsing, and next/previous fire instants in a time zone.
 *
 * (In this comment "*\/" stands for a star followed by a slash.)
 *
 * SYNTAX
 *   5 fields  "minute hour day-of-month month day-of-week" (second = 0), or
 *   6 fields  "second minute hour day-of-month month day-of-week",
 *   separated by spaces or tabs. Ranges: second/minute 0-59, hour 0-23,
 *   day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 0-7 or SUN-SAT
 *   (0 and 7 are Sunday). Names are case-insensitive. Each field is a
 *   comma-separated list of:
 *     *            every value          ?      same as *, day fields only
 *     5   5-20     value, range         *\/15   5-50/10   5/10 (= 5-max/10)
 *     H            one value hashed from the seed (the schedule id), stable
 *                  for a schedule and spread across schedules; H(0-7) hashes
 *                  within a range, H/15 and H(0-29)/10 step from a hashed
 *                  start. H in day-of-month stays within 1-28.
 *     L  L-3  LW   (day-of-month) last day, 3 days before it, last weekday
 *     15W          (day-of-month) weekday nearest the 15th, same month
 *     5#3  5L      (day-of-week) third Friday, last Friday of the month
 *   Macros: @yearly @annually @monthly @weekly @daily @midnight @hourly.
 *   Ranges never wrap (FRI-MON is an error); steps run 1 .. field span.
 *
 * DAY-OF-MONTH / DAY-OF-WEEK (cronie's crontab(5))
 *   When both fields are restricted a day matches if either matches. A
 *   field that begins with '*' or '?' (including "*\/n") counts as
 *   unrestricted, and then a day must match both: "0 0 *\/10 * 1" fires on
 *   the 1st, 11th, 21st or 31st when that day is also a Monday.
 *
 * DST RULE (the scheduler's contract; copied to the README)
 *   Every schedule is evaluated in its own IANA zone and its next fire time
 *   is a UTC instant.
 *   - Fixed-time jobs (second, minute and hour fields all fixed values or
 *     lists, e.g. "30 2 * * *"):
 *       * a local time skipped by a forward shift fires once, at the first
 *         instant after the gap: 02:30 in a 02:00->03:00 gap fires at 03:00
 *         local; 00:00 in a midnight gap (America/Santiago, Africa/Cairo,
 *         America/Havana) fires at 01:00 local. Several skipped times of one
 *         gap fire once together.
 *       * a local time that occurs twice (backward shift) fires once, at
 *         its first occurrence.
 *   - Wildcard jobs (the second, minute or hour field starts with '*', or
 *     is H/n, or is a range over the whole field, with or without a step:
 *     "*\/15 * * * *", "0 * * * *", "0-59/10 2 * * *") follow real elapsed
 *     time: they fire at every instant whose local reading matches, so they
 *     do not fire in a gap and fire in both passes of a repeated hour
 *     ("*\/15 * * * *" fires at every real quarter hour across both shifts).
 *   - A calendar day that does not exist at all in the zone (Pacific/Apia
 *     skipped 2011-12-30) has no fire times; nothing moves to the next day.
 *   - 30-minute shifts (Australia/Lord_Howe), negative DST (Europe/Dublin)
 *     and odd offsets (Asia/Kathmandu +05:45) need no special case: the rule
 *     works on the zone's real offsets, not on its is-DST flag.
 *   This is ISC cron's behaviour, stated for UTC instants.
 *
 * RANGE
 *   Fire instants lie in [CRON_TIME_MIN, CRON_TIME_MAX] (1970-01-01T00:00:00Z
 *   .. 9999-12-31T23:59:59Z). A search looks at most 400 years ahead or back
 *   (one full Gregorian cycle, so an expression that finds nothing there,
 *   like "0 0 30 2 *", never matches) and returns CRON_NONE.
 *
 * Thread: cron_t is a plain value; every function is pure and thread-safe.
 */
#ifndef OPSC_CRON_H
#define OPSC_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "tz.h"

#define CRON_NONE     ((int64_t)-1)
#define CRON_TIME_MIN ((int64_t)0)
#define CRON_TIME_MAX ((int64_t)253402300799) /* 9999-12-31T23:59:59Z */
#define CRON_EXPR_MAX 1024                    /* longest expression accepted */

/* Flags of cron_t.flags. */
#define CRON_DOM_STAR 0x01 /* day-of-month begins with '*' or '?' */
#define CRON_DOW_STAR 0x02 /* day-of-week begins with '*' or '?' */
#define CRON_WILD     0x04 /* a wildcard job in the DST rule's sense */
#define CRON_DOM_LW   0x08 /* day-of-month contains LW */

/* The parsed form: bitsets, 48 bytes, copy freely. Fields are the engine's. */
typedef struct cron {
    uint64_t sec;       /* bits 0-59 */
    uint64_t min;       /* bits 0-59 */
    uint32_t hour;      /* bits 0-23 */
    uint32_t dom;       /* bits 1-31 */
    uint32_t dom_last;  /* bit n: L-n */
    uint32_t dom_near;  /* bit n: nW */
    uint16_t mon;       /* bits 1-12 */
    uint8_t dow;        /* bits 0-6, Sunday = 0 */
    uint8_t dow_last;   /* bit d: dL */
    uint8_t dow_nth[7]; /* dow_nth[d] bit n-1: d#n */
    uint8_t flags;
} cron_t;

/* Parse `expr`; `seed` (the schedule id; NULL means "") feeds H fields.
 * Returns 0, or OPSC_ESYNTAX with a message in err naming the field and the
 * 1-based column: "hour: value 24 out of range 0-23 at column 3". err may be
 * NULL; *out is untouched on failure. */
int cron_parse(const char *expr, const char *seed, cron_t *out, char *err, size_t errlen);

/* The first fire instant strictly after `after`, in zone `tz` (NULL = UTC),
 * following the DST rule above; CRON_NONE when there is none in range. */
int64_t cron_next(const cron_t *c, const tz_t *tz, int64_t after);

/* The last fire instant strictly before `before`; CRON_NONE when none. */
int64_t cron_prev(const cron_t *c, const tz_t *tz, int64_t before);

#endif
