/* tz.c - zone lookup by name (cached, thread-safe) and UTC <-> local conversion. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "tz_internal.h"
#include "util.h"

#define TZIF_MAX_BYTES (1u << 20)

static const struct tz_type utc_type = {0, false, "UTC"};
static const struct tz utc_zone = {
    .name = (char *)"UTC",
    .ntypes = 1,
    .types = (struct tz_type *)&utc_type,
};

/* Process-wide by design: zones are immutable and shared by every schedule,
 * so each tzdata file is read once. Few hundred entries at most, looked up
 * when a schedule is created, so a list under one mutex is enough. */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tz *cache_head;

static int tz_fail(char *err, size_t errlen, int code, const char *fmt, const char *name)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, name);
    return code;
}

const tz_t *tz_utc(void)
{
    return &utc_zone;
}

const char *tz_name(const tz_t *tz)
{
    return tz->name;
}

int32_t tz_min_utoff(const tz_t *tz)
{
    return tz->min_utoff;
}

int32_t tz_max_utoff(const tz_t *tz)
{
    return tz->max_utoff;
}

void tz_compute_bounds(struct tz *z)
{
    int32_t lo = z->types[0].utoff, hi = lo;
    for (size_t i = 1; i < z->ntypes; i++) {
        lo = z->types[i].utoff < lo ? z->types[i].utoff : lo;
        hi = z->types[i].utoff > hi ? z->types[i].utoff : hi;
    }
    if (z->has_rule) {
        const int32_t r[2] = {z->rule.std.utoff, z->rule.dst.utoff};
        for (int i = 0; i < 2; i++) {
            lo = r[i] < lo ? r[i] : lo;
            hi = r[i] > hi ? r[i] : hi;
        }
    }
    z->min_utoff = lo;
    z->max_utoff = hi;
}

void tz_free(tz_t *tz)
{
    if (!tz || tz == &utc_zone)
        return;
    free(tz->name);
    free(tz->trans);
    free(tz->trans_ty);
    free(tz->types);
    free(tz);
}

static struct tz *tz_alloc(const char *name, size_t ntypes)
{
    struct tz *z = calloc(1, sizeof(*z));
    if (!z)
        return NULL;
    z->name = strdup(name);
    z->ntypes = ntypes;
    z->types = ntypes ? calloc(ntypes, sizeof(struct tz_type)) : NULL;
    if (!z->name || (ntypes && !z->types)) {
        tz_free(z);
        return NULL;
    }
    return z;
}

int tz_posix_new(const char *spec, tz_t **out, char *err, size_t errlen)
{
    struct tz *z = tz_alloc(spec, 1);
    if (!z)
        return tz_fail(err, errlen, OPSC_ENOMEM, "out of memory loading %s", "POSIX TZ");
    int rc = tz_rule_parse(spec, &z->rule, err, errlen);
    if (rc) {
        tz_free(z);
        return rc;
    }
    z->has_rule = true;
    z->types[0] = z->rule.std;
    tz_compute_bounds(z);
    *out = z;
    return 0;
}

int tz_tzif_new(const char *name, const void *data, size_t len, tz_t **out, char *err,
                size_t errlen)
{
    struct tz *z = tz_alloc(name, 0);
    if (!z)
        return tz_fail(err, errlen, OPSC_ENOMEM, "out of memory loading %s", name);
    int rc = tz_tzif_parse(data, len, z, err, errlen);
    if (rc) {
        tz_free(z);
        return rc;
    }
    *out = z;
    return 0;
}

/* "+05:45", "-0300", "+05", with an optional "UTC" prefix; ISO sign. */
static int fixed_offset_parse(const char *s, int32_t *utoff, char abbr[TZ_ABBR_MAX])
{
    if (strncmp(s, "UTC", 3) == 0)
        s += 3;
    if (*s != '+' && *s != '-')
        return -1;
    int sign = *s++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]))
        return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = 0;
    s += 2;
    if (*s == ':')
        s++;
    if (*s) {
        if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2])
            return -1;
        m = (s[0] - '0') * 10 + (s[1] - '0');
    }
    if (h > 23 || m > 59)
        return -1;
    *utoff = sign * (h * 3600 + m * 60);
    if (m)
        snprintf(abbr, TZ_ABBR_MAX, "%c%02d%02d", sign < 0 ? '-' : '+', h, m);
    else
        snprintf(abbr, TZ_ABBR_MAX, "%c%02d", sign < 0 ? '-' : '+', h);
    return 0;
}

/* IANA names are relative paths of [A-Za-z0-9_+-]; refusing '.' keeps
 * "..", hidden files and the *.tab / *.zi data files out. */
static bool iana_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > TZ_NAME_MAX || name[0] == '/' || name[n - 1] == '/' || strstr(name, "//"))
        return false;
    for (const char *p = name; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr("_+-/", *p))
            return false;
    }
    return true;
}

static int tz_load_file(const char *name, struct tz **out, char *err, size_t errlen)
{
    const char *dir = getenv("TZDIR");
    char path[4096];
    if (!dir || !*dir)
        dir = "/usr/share/zoneinfo";
    if (fs_join(path, sizeof(path), dir, name))
        return tz_fail(err, errlen, OPSC_EINVAL, "time zone name too long: %.64s", name);
    char *data = NULL;
    size_t len = 0;
    int rc = fs_read_file(path, TZIF_MAX_BYTES, &data, &len);
    if (rc == OPSC_ENOENT || rc == -EISDIR || rc == -ENOTDIR ||
        (rc == 0 && (len < 4 || memcmp(data, "TZif", 4) != 0))) {
        free(data);
        return tz_fail(err, errlen, OPSC_ENOENT, "unknown time zone \"%.64s\"", name);
    }
    if (rc) {
        return tz_fail(err, errlen, rc, "cannot read time zone \"%.64s\"", name);
    }
    rc = tz_tzif_new(name, data, len, out, err, errlen);
    free(data);
    return rc;
}

static int tz_build(const char *name, struct tz **out, char *err, size_t errlen)
{
    int32_t utoff;
    char abbr[TZ_ABBR_MAX];
    if (fixed_offset_parse(name, &utoff, abbr) == 0) {
        struct tz *z = tz_alloc(name, 1);
        if (!z)
            return tz_fail(err, errlen, OPSC_ENOMEM, "out of memory loading %s", name);
        z->types[0].utoff = utoff;
        memcpy(z->types[0].abbr, abbr, sizeof(abbr));
        tz_compute_bounds(z);
        *out = z;
        return 0;
    }
    if (name[0] == '+' || name[0] == '-' || strncmp(name, "UTC+", 4) == 0 ||
        strncmp(name, "UTC-", 4) == 0)
        return tz_fail(err, errlen, OPSC_EINVAL,
                       "bad UTC offset \"%.64s\" (expected +HH:MM, below 24:00)", name);
    if (!iana_name_ok(name))
        return tz_fail(err, errlen, OPSC_EINVAL, "invalid time zone name \"%.64s\"", name);
    return tz_load_file(name, out, err, errlen);
}

static struct tz *cache_find(const char *name)
{
    for (struct tz *z = cache_head; z; z = z->next) {
        if (strcmp(z->name, name) == 0)
            return z;
    }
    return NULL;
}

int tz_get(const char *name, const tz_t **out, char *err, size_t errlen)
{
    if (!name)
        return tz_fail(err, errlen, OPSC_EINVAL, "%s", "missing time zone name");
    if (strcmp(name, "UTC") == 0) {
        *out = &utc_zone;
        return 0;
    }
    pthread_mutex_lock(&cache_lock);
    struct tz *z = cache_find(name);
    int rc = 0;
    /* Loading under the lock keeps one copy per name; it happens once per zone. */
    if (!z) {
        rc = tz_build(name, &z, err, errlen);
        if (rc == 0) {
            z->next = cache_head;
            cache_head = z;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    if (rc == 0)
        *out = z;
    return rc;
}

void tz_cache_clear(void)
{
    pthread_mutex_lock(&cache_lock);
    struct tz *z = cache_head;
    cache_head = NULL;
    pthread_mutex_unlock(&cache_lock);
    while (z) {
        struct tz *next = z->next;
        tz_free(z);
        z = next;
    }
}

static int64_t clamp_time(int64_t t)
{
    return t < -TZ_TIME_LIMIT ? -TZ_TIME_LIMIT : t > TZ_TIME_LIMIT ? TZ_TIME_LIMIT : t;
}

static void period_set(tz_period_t *out, int64_t start, int64_t end, const struct tz_type *ty,
                       int32_t prev)
{
    *out = (tz_period_t){start, end, ty->utoff, prev, ty->is_dst, ty->abbr};
}

/* Index of the last transition <= t; the caller checked trans[0] <= t. */
static size_t trans_index(const struct tz *z, int64_t t)
{
    size_t lo = 0, hi = z->ntrans;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

void tz_period_at(const tz_t *z, int64_t t, tz_period_t *out)
{
    t = clamp_time(t);
    const struct tz_type *t0 = &z->types[0];
    if (z->ntrans == 0 || t < z->trans[0]) {
        if (z->ntrans == 0 && z->has_rule)
            tz_rule_period(&z->rule, t, out);
        else
            period_set(out, INT64_MIN, z->ntrans ? z->trans[0] : INT64_MAX, t0, t0->utoff);
        return;
    }
    size_t i = trans_index(z, t);
    const struct tz_type *ty = &z->types[z->trans_ty[i]];
    int32_t prev = i > 0 ? z->types[z->trans_ty[i - 1]].utoff : t0->utoff;
    if (i + 1 < z->ntrans || !z->has_rule) {
        period_set(out, z->trans[i], i + 1 < z->ntrans ? z->trans[i + 1] : INT64_MAX, ty, prev);
        return;
    }
    tz_rule_period(&z->rule, t, out);
    if (out->start <= z->trans[i]) {
        out->start = z->trans[i];
        out->prev_utoff = prev;
    }
}

void tz_utc_to_local(const tz_t *tz, int64_t utc, tz_info_t *out)
{
    tz_period_t p;
    tz_period_at(tz, utc, &p);
    *out = (tz_info_t){p.utoff, p.is_dst, p.abbr};
}

void tz_local_to_utc(const tz_t *tz, int64_t local, tz_resolution_t *out)
{
    local = clamp_time(local);
    /* Only instants in [local - max_utoff, local - min_utoff] can show `local`. */
    int64_t lo = local - tz->max_utoff, hi = local - tz->min_utoff;
    int64_t found[2], gap_end = INT64_MIN;
    int n = 0;
    tz_period_t p;
    for (int64_t t = lo;; t = p.end) {
        tz_period_at(tz, t, &p);
        int64_t cand = local - p.utoff;
        if (cand >= p.start && cand < p.end && cand >= lo && cand <= hi && n < 2)
            found[n++] = cand;
        if (p.start != INT64_MIN && p.start + p.prev_utoff <= local && local < p.start + p.utoff)
            gap_end = p.start;
        if (p.end > hi)
            break;
    }
    if (n == 0) {
        int64_t at = gap_end != INT64_MIN ? gap_end : local - p.utoff;
        *out = (tz_resolution_t){TZ_GAP, at, at};
    } else {
        *out = (tz_resolution_t){n == 2 ? TZ_OVERLAP : TZ_UNIQUE, found[0], found[n - 1]};
    }
}
