/* schedule.h - a schedule's definition: REST fields validated into a record, and parsed for firing.
 *
 * A schedule record (database "schedules") carries the REST contract's
 * fields:
 *   job_id          string, required: the job to run
 *   cron            string, required: 5 or 6 fields (cron.h); H fields hash the schedule id
 *   timezone        IANA name or fixed offset (tz.h); default "UTC"
 *   params          object or null: job parameters
 *   targets         object or null: {"ids": [..], "groups": [..], "selector": ".."}
 *   enabled         boolean, default true (pause / resume set it)
 *   start_at        RFC 3339 or null: no fire before
 *   end_at          RFC 3339 or null: no fire after
 *   misfire_policy  "skip" | "run_once" (default) | "run_all"
 *   misfire_grace_s integer seconds or null ([scheduler] misfire_grace)
 *   overlap_policy  "allow" | "forbid" (default) | "replace" | "queue"
 *   overlap_limit   integer 1..1000 or null ([scheduler] overlap_limit): the N of
 *                   allow (runs at once) and queue (fires waiting)
 *   description     string or null
 * plus the store's id, created_at, updated_at, version. Read-only members a
 * client sends back (id, version, created_at, updated_at, status) are
 * ignored; any other unknown member is an error.
 *
 * Thread: any; pure functions.
 */
#ifndef OPSC_SCHEDULE_H
#define OPSC_SCHEDULE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cron.h"
#include "tz.h"

enum sched_misfire { SCHED_MISFIRE_SKIP = 0, SCHED_MISFIRE_RUN_ONCE, SCHED_MISFIRE_RUN_ALL };
enum sched_overlap {
    SCHED_OVERLAP_ALLOW = 0,
    SCHED_OVERLAP_FORBID,
    SCHED_OVERLAP_REPLACE,
    SCHED_OVERLAP_QUEUE
};

#define SCHED_TIME_NONE_LO INT64_MIN /* no start_at */
#define SCHED_TIME_NONE_HI INT64_MAX /* no end_at */
#define SCHED_DESC_MAX     4096
#define SCHED_PREVIEW_MAX  1000 /* most instants a preview or next answers */

/* Per-daemon defaults for the optional members. */
typedef struct sched_defaults {
    int64_t misfire_grace_ms;
    int64_t overlap_limit;
} sched_defaults;

/* What went wrong with a body: the member, an API error code
 * ("invalid_cron", "invalid_timezone", "invalid_schedule") and a message
 * that names the member (and, for cron, the cron field and column). */
typedef struct sched_field_error {
    char field[32];
    const char *code;
    char msg[384];
} sched_field_error;

/* Validate `changes` (create: the whole body, `existing` NULL; update: the
 * members to change, null clearing an optional one) against `existing`, for
 * the schedule `id` (H fields hash it). *out is the new record without
 * store metadata (a new reference). OPSC_ESCHEMA with *e filled, or
 * OPSC_ENOMEM. Does not check that the job exists (the caller's store
 * transaction does). */
int sched_record_merge(const json_t *existing, const json_t *changes, const char *id, json_t **out,
                       sched_field_error *e);

/* A record parsed for firing. params / targets are new references. */
typedef struct sched_def {
    char id[40];
    char job_id[40];
    cron_t cron;
    const tz_t *tz;
    bool enabled;
    int64_t start_ms, end_ms; /* SCHED_TIME_NONE_* when open */
    enum sched_misfire misfire;
    int64_t grace_ms;
    enum sched_overlap overlap;
    int64_t overlap_limit;
    json_t *params, *targets;
    int saved_role; /* role of who saved it last (http.h numbering; 1 when unknown): its
                       fires run with it ([executor] local_targets) */
} sched_def;

/* Parse a stored record. OPSC_ESCHEMA with a reason in err (a record written
 * by an older release whose zone has left tzdata, say). */
int sched_def_parse(const json_t *rec, const sched_defaults *d, sched_def *out, char *err,
                    size_t errlen);
void sched_def_clear(sched_def *d);

/* Parse the cron text of a body member (for the API's preview): OPSC_ESCHEMA
 * with *e naming `field`. Same for a zone name. */
int sched_cron_check(const char *text, const char *seed, const char *field, cron_t *out,
                     sched_field_error *e);
int sched_tz_check(const char *name, const char *field, const tz_t **out, sched_field_error *e);

/* The next `count` fire instants (seconds) strictly after `after` and not
 * after `end` (seconds), as {"times": [{"utc", "local", "abbr", "note"?}]}:
 * "utc" "2025-03-30T01:00:00Z", "local" "2025-03-30T03:00:00+02:00", and a
 * "note" where the DST rule moved or kept a fire (a skipped or repeated
 * local time). New reference, NULL on ENOMEM. */
json_t *sched_times_json(const cron_t *c, const tz_t *tz, int64_t after, int64_t end, int count);

/* "2025-03-30T03:00:00+02:00": a local reading with its offset (33 bytes). */
void sched_format_local(int64_t utc, int32_t utoff, char out[40]);
/* "2025-03-30T01:00:00Z" */
void sched_format_utc(int64_t utc, char out[40]);

#endif
