/* tz.h - IANA time zones from the system tzdata, without touching the process TZ.
 *
 * A zone (tz_t) is immutable once built, so one zone is shared by every
 * schedule and every thread that names it. Zones come from TZif files (RFC
 * 8536, version 2 or later) under $TZDIR or /usr/share/zoneinfo, including
 * the POSIX TZ footer that extends a zone past its last transition. Nothing
 * here calls setenv("TZ"), tzset() or localtime(): conversions are pure
 * arithmetic on the loaded tables, safe from any thread.
 *
 * Names accepted by tz_get():
 *   - IANA names ("Europe/Paris", "Etc/GMT-5"): relative paths made of
 *     letters, digits, '_', '-', '+' and '/', no "." or ".." component.
 *   - "UTC" (built in, no file needed).
 *   - Fixed offsets in ISO 8601 sign convention (east of Greenwich is '+'):
 *     "+05:45", "-03:00", "+0545", "+05", optionally prefixed by "UTC"
 *     ("UTC+05:45"); magnitude below 24:00.
 *
 * Instants are int64 seconds since the Unix epoch (UTC); "local" values
 * are the same count for the wall-clock reading, as if the wall clock were
 * UTC (local = utc + utoff). Inputs are clamped to +/- TZ_TIME_LIMIT.
 *
 * Leap seconds are not modelled (Unix time has none); TZif files that carry
 * leap-second records ("right/" zones) are refused with OPSC_ENOTSUP.
 */
#ifndef OPSC_TZ_H
#define OPSC_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tz tz_t;

#define TZ_NAME_MAX   255
#define TZ_ABBR_MAX   16                 /* longest abbreviation kept, NUL included */
#define TZ_TIME_LIMIT (INT64_C(1) << 40) /* +/- about 34,800 years */

/* The zone called `name`, loaded once and cached for the life of the
 * process (or until tz_cache_clear()). *out is shared and immutable: do not
 * free it. Returns 0; OPSC_ENOENT for an unknown zone, OPSC_EINVAL for a
 * malformed name, OPSC_ECORRUPT for an unreadable TZif file, OPSC_ENOTSUP
 * for TZif version 1 or leap-second files, OPSC_ENOMEM, -errno on I/O.
 * On failure a one-line reason is written to err (may be NULL).
 * Thread: any thread; the cache is guarded by a mutex. */
int tz_get(const char *name, const tz_t **out, char *err, size_t errlen);

/* The built-in UTC zone. Never NULL, never freed. */
const tz_t *tz_utc(void);

/* Free every cached zone. Only for shutdown and tests: the caller promises
 * that no zone returned by tz_get() is still in use. */
void tz_cache_clear(void);

/* The zone's name as given to tz_get() (or the POSIX string for
 * tz_posix_new()). Borrowed from the zone. */
const char *tz_name(const tz_t *tz);

/* What the wall clock says at one instant. abbr is borrowed from the zone. */
typedef struct tz_info {
    int32_t utoff; /* seconds east of UTC */
    bool is_dst;
    const char *abbr; /* "CEST", "+0545" */
} tz_info_t;

void tz_utc_to_local(const tz_t *tz, int64_t utc, tz_info_t *out);

/* Which instants show a given local reading.
 *   TZ_UNIQUE:  first == second, the one instant.
 *   TZ_GAP:     the reading was skipped (spring forward); first == second,
 *               the first instant after the gap (the transition).
 *   TZ_OVERLAP: the reading occurs twice (fall back); first < second. */
typedef enum tz_kind { TZ_UNIQUE = 0, TZ_GAP, TZ_OVERLAP } tz_kind;

typedef struct tz_resolution {
    tz_kind kind;
    int64_t first;
    int64_t second;
} tz_resolution_t;

void tz_local_to_utc(const tz_t *tz, int64_t local, tz_resolution_t *out);

/* The stretch of constant UTC offset that contains `t`: [start, end), with
 * start == INT64_MIN / end == INT64_MAX when unbounded. prev_utoff is the
 * offset in force just before `start` (== utoff when start is unbounded), so
 * utoff > prev_utoff means a gap opened at start and utoff < prev_utoff an
 * overlap. This is what the cron engine walks. */
typedef struct tz_period {
    int64_t start;
    int64_t end;
    int32_t utoff;
    int32_t prev_utoff;
    bool is_dst;
    const char *abbr;
} tz_period_t;

void tz_period_at(const tz_t *tz, int64_t t, tz_period_t *out);

/* Smallest and largest UTC offset the zone ever uses (bounds for searches). */
int32_t tz_min_utoff(const tz_t *tz);
int32_t tz_max_utoff(const tz_t *tz);

/* Build an uncached zone from a POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3",
 * with the RFC 8536 extensions: hours -167..167 in rule times). Owned by the
 * caller: free with tz_free(). 0 or OPSC_ESYNTAX (err says where), OPSC_ENOMEM. */
int tz_posix_new(const char *spec, tz_t **out, char *err, size_t errlen);

/* Build an uncached zone from TZif bytes (tests, fuzzing). Same codes as
 * tz_get() for the contents; `name` is copied. Free with tz_free(). */
int tz_tzif_new(const char *name, const void *data, size_t len, tz_t **out, char *err,
                size_t errlen);

/* Free a zone from tz_posix_new()/tz_tzif_new(). NULL is fine. Never pass a
 * zone from tz_get() or tz_utc(). */
void tz_free(tz_t *tz);

#endif
