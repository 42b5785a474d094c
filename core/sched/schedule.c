/* schedule.c - validating schedule bodies into records and parsing records for the scheduler. */
#include "schedule.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <opsc/errors.h>

#include "util.h"

static int fail(sched_field_error *e, const char *field, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(sched_field_error *e, const char *field, const char *code, const char *fmt, ...)
{
    snprintf(e->field, sizeof(e->field), "%s", field);
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return OPSC_ESCHEMA;
}

int sched_cron_check(const char *text, const char *seed, const char *field, cron_t *out,
                     sched_field_error *e)
{
    char why[256] = "";
    if (!text)
        return fail(e, field, "invalid_cron", "%s must be a cron expression (a string)", field);
    if (cron_parse(text, seed, out, why, sizeof(why)) < 0)
        return fail(e, field, "invalid_cron", "%s: %s", field, why);
    return 0;
}

int sched_tz_check(const char *name, const char *field, const tz_t **out, sched_field_error *e)
{
    char why[256] = "";
    if (!name)
        return fail(e, field, "invalid_timezone", "%s must be a time zone name (a string)", field);
    int rc = tz_get(name, out, why, sizeof(why));
    if (rc == OPSC_ENOENT)
        return fail(e, field, "invalid_timezone", "%s: unknown time zone '%.64s'", field, name);
    if (rc < 0)
        return fail(e, field, "invalid_timezone", "%s: %s", field, why);
    return 0;
}

/* ---- one member at a time ---------------------------------------------------------------- */

typedef struct field_ctx {
    const char *id;
    sched_field_error *e;
} field_ctx;

/* Each check takes the body's value and answers the value to store (a new
 * reference) or fails. */
typedef int (*check_fn)(const char *name, json_t *v, field_ctx *fc, json_t **norm);

static int check_string(const char *name, json_t *v, field_ctx *fc, size_t max, json_t **norm)
{
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max)
        return fail(fc->e, name, "invalid_schedule", "%s must be a string of 1 to %zu bytes", name,
                    max);
    *norm = json_incref(v);
    return 0;
}

static int check_job(const char *name, json_t *v, field_ctx *fc, json_t **norm)
{
    return check_string(name, v, fc, 39, norm);
}

static int check_desc(const char *name, json_t *v, field_ctx *fc, json_t **norm)
{
    if (json_is_string(v) && json_string_length(v) == 0) {
        *norm = json_incref(v);
        return 0;
    }
    return check_string(name, v, fc, SCHED_DESC_MAX, norm);
}

static int check_cron(const char *name, json_t *v, field_ctx *fc, json_t **norm)
{
    cron_t c;
    if (json_is_string(v) && json_string_length(v) > CRON_EXPR_MAX)
        return fail(fc->e, name, "invalid_cron", "%s: longer than %d bytes", name, CRON_EXPR_MAX);
    int rc = sched_cron_check(json_string_value(v), fc->id, name, &c, fc->e);
    if (rc == 0)
        *norm = json_incref(v);
    return rc;
}

static int check_tz(const char *name, json_t *v, field_ctx *fc, json_t **norm)
{
    const tz_t *tz;
    int rc = sched_tz_check(json_string_value(v), name, &tz, fc->e);
    if (rc == 0)
        *norm = json_string(tz_name(tz));
    return rc;
}

static int check_bool(const char *name, json_t *v, field_ctx *fc, json_t **norm)
{
    if (!json_is_boolean(v))
        return fail(fc->e, name, "invalid_schedule", "%s must be true or false", name);
    *norm = json_incref(v);
    return 0;
}

static int check_object(const char *name, json_t *v, field_ctx *fc, json_t **norm)
{
    if (!json_is_object(v))
        return fail(fc->e, name, "invalid_schedule", "%s must be an object", name);
    *norm = json_incref(v);
    return 0;
}

static bool string_array(json_t *a)
{
    size_t i;
    json_t *m;
    if (!json_is_array(a))
        return false;
    json_array_foreach(a, i, m) if (!json_is_string(m) || json_string_length(m) == 0) return false;
    return true;
}

/* The job's own shape: {"ids": [...], "groups": [...], "selector": "..."}. */
static int check_targets(const char *name, json_t *v, field_ctx *fc, json_t **norm)
{
    const char *k;
    json_t *m;
    if (!json_is_object(v))
        return fail(fc->e, name, "invalid_schedule",
                    "%s must be an object {\"ids\", \"groups\", \"selector\"}", name);
    json_object_foreach(v, k, m)
    {
        bool ok = (strcmp(k, "ids") == 0 || strcmp(k, "groups") == 0) ? string_array(m)
                  : strcmp(k, "selector") == 0                        ? json_is_string(m)
                                                                      : false;
        if (!ok)
            return fail(fc->e, name, "invalid_schedule",
                        "%s.%s: expected ids and groups as arrays of ids, selector as a string",
                        name, k);
    }
    *norm = json_incref(v);
    return 0;
}

static int check_time(const char *name, json_t *v, field_ctx *fc, json_t **norm)
{
    int64_t ms;
    if (!json_is_string(v) || rfc3339_parse(json_string_value(v), &ms) < 0)
        return fail(fc->e, name, "invalid_schedule",
                    "%s must be an RFC 3339 time (2026-01-31T08:00:00Z)", name);
    char out[RFC3339_LEN];
    rfc3339_format(ms, out);
    *norm = json_string(out);
    return 0;
}

static int check_enum(const char *name, json_t *v, field_ctx *fc, const char *const *names,
                      const char *list, json_t **norm)
{
    for (const char *const *n = names; json_is_string(v) && *n; n++)
        if (strcmp(*n, json_string_value(v)) == 0) {
            *norm = json_incref(v);
            return 0;
        }
    return fail(fc->e, name, "invalid_schedule", "%s must be one of %s", name, list);
}

static const char *const misfire_names[] = {"skip", "run_once", "run_all", NULL};
static const char *const overlap_names[] = {"allow", "forbid", "replace", "queue", NULL};

static int check_misfire(const char *name, json_t *v, field_ctx *fc, json_t **norm)
{
    return check_enum(name, v, fc, misfire_names, "skip, run_once, run_all", norm);
}

static int check_overlap(const char *name, json_t *v, field_ctx *fc, json_t **norm)
{
    return check_enum(name, v, fc, overlap_names, "allow, forbid, replace, queue", norm);
}

static int check_int(const char *name, json_t *v, field_ctx *fc, json_int_t lo, json_int_t hi,
                     json_t **norm)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return fail(fc->e, name, "invalid_schedule", "%s must be an integer from %lld to %lld",
                    name, (long long)lo, (long long)hi);
    *norm = json_incref(v);
    return 0;
}

static int check_grace(const char *name, json_t *v, field_ctx *fc, json_t **norm)
{
    return check_int(name, v, fc, 0, 366LL * 86400, norm);
}

static int check_limit(const char *name, json_t *v, field_ctx *fc, json_t **norm)
{
    return check_int(name, v, fc, 1, 1000, norm);
}

/* Ordered as they are checked: a body with several faults names the first. */
static const struct field {
    const char *name;
    bool nullable;
    const char *def; /* JSON text of the value a new record gets; NULL: null / required */
    check_fn check;
} fields[] = {
    {"job_id", false, NULL, check_job},
    {"cron", false, NULL, check_cron},
    {"timezone", false, "\"UTC\"", check_tz},
    {"params", true, NULL, check_object},
    {"targets", true, NULL, check_targets},
    {"enabled", false, "true", check_bool},
    {"start_at", true, NULL, check_time},
    {"end_at", true, NULL, check_time},
    {"misfire_policy", false, "\"run_once\"", check_misfire},
    {"misfire_grace_s", true, NULL, check_grace},
    {"overlap_policy", false, "\"forbid\"", check_overlap},
    {"overlap_limit", true, NULL, check_limit},
    {"description", true, NULL, check_desc},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static const char *const read_only[] = {"id",         "version", "created_at",
                                        "updated_at", "status",  NULL};

static const struct field *find_field(const char *name)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    return NULL;
}

static bool is_read_only(const char *name)
{
    for (const char *const *r = read_only; *r; r++)
        if (strcmp(*r, name) == 0)
            return true;
    return false;
}

static int unknown_members(const json_t *changes, sched_field_error *e)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)changes, k, v)
    {
        if (!find_field(k) && !is_read_only(k))
            return fail(e, k, "invalid_schedule",
                        "unknown field '%.64s' (fields: job_id, cron, timezone, params, targets, "
                        "enabled, start_at, end_at, misfire_policy, misfire_grace_s, "
                        "overlap_policy, overlap_limit, description)",
                        k);
    }
    return 0;
}

/* Apply one member of `changes` (or the default of a new record) to rec. */
static int merge_field(const struct field *f, const json_t *changes, bool create, json_t *rec,
                       field_ctx *fc)
{
    json_t *v = json_object_get(changes, f->name);
    if (!v && !create)
        return 0;
    if (!v || json_is_null(v)) {
        if (v && !f->nullable)
            return fail(fc->e, f->name, "invalid_schedule", "%s cannot be null", f->name);
        if (!f->nullable && !f->def)
            return fail(fc->e, f->name, "invalid_schedule", "%s is required", f->name);
        json_t *d = f->def ? json_loads(f->def, JSON_DECODE_ANY, NULL) : json_null();
        return d && json_object_set_new(rec, f->name, d) == 0 ? 0 : OPSC_ENOMEM;
    }
    json_t *norm = NULL;
    int rc = f->check(f->name, v, fc, &norm);
    if (rc == 0 && (!norm || json_object_set_new(rec, f->name, norm) < 0))
        rc = OPSC_ENOMEM;
    return rc;
}

/* Cross-member rules, on the merged record: the cron text parses with this
 * id (its H fields), and the window is not empty. */
static int check_record(json_t *rec, field_ctx *fc)
{
    json_t *c = json_object_get(rec, "cron"), *norm = NULL;
    int rc = check_cron("cron", c, fc, &norm);
    json_decref(norm);
    if (rc < 0)
        return rc;
    int64_t start = 0, end = 0;
    const char *s = json_string_value(json_object_get(rec, "start_at"));
    const char *t = json_string_value(json_object_get(rec, "end_at"));
    if (s && t && rfc3339_parse(s, &start) == 0 && rfc3339_parse(t, &end) == 0 && end <= start)
        return fail(fc->e, "end_at", "invalid_schedule", "end_at must be later than start_at");
    return 0;
}

int sched_record_merge(const json_t *existing, const json_t *changes, const char *id, json_t **out,
                       sched_field_error *e)
{
    field_ctx fc = {id, e};
    bool create = existing == NULL;
    int rc = unknown_members(changes, e);
    if (rc < 0)
        return rc;
    json_t *rec = create ? json_object() : json_deep_copy(existing);
    if (!rec)
        return OPSC_ENOMEM;
    for (size_t i = 0; rc == 0 && i < NFIELDS; i++)
        rc = merge_field(&fields[i], changes, create, rec, &fc);
    if (rc == 0)
        rc = check_record(rec, &fc);
    if (rc < 0) {
        json_decref(rec);
        return rc;
    }
    *out = rec;
    return 0;
}

/* ---- parsing a stored record -------------------------------------------------------------- */

static int index_of(const char *const *names, const char *v)
{
    for (int i = 0; v && names[i]; i++)
        if (strcmp(names[i], v) == 0)
            return i;
    return -1;
}

static int parse_window(const json_t *rec, sched_def *d)
{
    const char *s = json_string_value(json_object_get(rec, "start_at"));
    const char *t = json_string_value(json_object_get(rec, "end_at"));
    d->start_ms = SCHED_TIME_NONE_LO;
    d->end_ms = SCHED_TIME_NONE_HI;
    if (s && rfc3339_parse(s, &d->start_ms) < 0)
        return OPSC_ESCHEMA;
    if (t && rfc3339_parse(t, &d->end_ms) < 0)
        return OPSC_ESCHEMA;
    return 0;
}

static int64_t int_or(const json_t *rec, const char *key, int64_t def)
{
    json_t *v = json_object_get(rec, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

int sched_def_parse(const json_t *rec, const sched_defaults *dft, sched_def *d, char *err,
                    size_t errlen)
{
    memset(d, 0, sizeof(*d));
    sched_field_error e = {0};
    const char *id = json_string_value(json_object_get(rec, "id"));
    const char *job = json_string_value(json_object_get(rec, "job_id"));
    const char *zone = json_string_value(json_object_get(rec, "timezone"));
    int misfire =
        index_of(misfire_names, json_string_value(json_object_get(rec, "misfire_policy")));
    int overlap =
        index_of(overlap_names, json_string_value(json_object_get(rec, "overlap_policy")));
    int rc = 0;
    if (!id || !job || strlen(id) >= sizeof(d->id) || strlen(job) >= sizeof(d->job_id) ||
        misfire < 0 || overlap < 0) {
        snprintf(err, errlen, "the record lacks id, job_id or a known policy");
        return OPSC_ESCHEMA;
    }
    snprintf(d->id, sizeof(d->id), "%s", id);
    snprintf(d->job_id, sizeof(d->job_id), "%s", job);
    rc =
        sched_cron_check(json_string_value(json_object_get(rec, "cron")), id, "cron", &d->cron, &e);
    if (rc == 0)
        rc = sched_tz_check(zone ? zone : "UTC", "timezone", &d->tz, &e);
    if (rc < 0) {
        snprintf(err, errlen, "%s", e.msg);
        return rc;
    }
    if (parse_window(rec, d) < 0) {
        snprintf(err, errlen, "start_at or end_at is not an RFC 3339 time");
        return OPSC_ESCHEMA;
    }
    d->enabled = json_is_true(json_object_get(rec, "enabled"));
    d->misfire = (enum sched_misfire)misfire;
    d->overlap = (enum sched_overlap)overlap;
    d->grace_ms = int_or(rec, "misfire_grace_s", -1);
    d->grace_ms = d->grace_ms < 0 ? dft->misfire_grace_ms : d->grace_ms * 1000;
    d->overlap_limit = int_or(rec, "overlap_limit", dft->overlap_limit);
    json_t *p = json_object_get(rec, "params"), *t = json_object_get(rec, "targets");
    d->params = json_is_object(p) ? json_incref(p) : NULL;
    d->targets = json_is_object(t) ? json_incref(t) : NULL;
    const char *role = json_string_value(json_object_get(rec, "saved_by_role"));
    d->saved_role = !role                          ? 1
                    : strcmp(role, "admin") == 0    ? 3
                    : strcmp(role, "operator") == 0 ? 2
                                                    : 1;
    return 0;
}

void sched_def_clear(sched_def *d)
{
    json_decref(d->params);
    json_decref(d->targets);
    d->params = d->targets = NULL;
}
