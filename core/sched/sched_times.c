/* sched_times.c - listing fire instants as UTC and local text, with notes where the DST rule acted.
 */
#include <stdio.h>
#include <stdlib.h>

#include "civil.h"
#include "schedule.h"

static void format_civil(int64_t t, char out[48])
{
    int64_t days = civil_floor_div(t, CIVIL_DAY), y;
    int64_t sod = t - days * CIVIL_DAY;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, 48, "%04lld-%02d-%02dT%02d:%02d:%02d", (long long)y, m, d, (int)(sod / 3600),
             (int)(sod / 60 % 60), (int)(sod % 60));
}

void sched_format_utc(int64_t utc, char out[40])
{
    char c[48];
    format_civil(utc, c);
    snprintf(out, 40, "%.20sZ", c);
}

void sched_format_local(int64_t utc, int32_t utoff, char out[40])
{
    char c[48];
    int32_t a = abs(utoff);
    format_civil(utc + utoff, c);
    if (a % 60) /* local mean time before 1900: RFC 3339 has no seconds in offsets */
        snprintf(out, 40, "%.20s%c%02d:%02d:%02d", c, utoff < 0 ? '-' : '+', a / 3600, a / 60 % 60,
                 a % 60);
    else
        snprintf(out, 40, "%.20s%c%02d:%02d", c, utoff < 0 ? '-' : '+', a / 3600, a / 60 % 60);
}

/* "HH:MM" or "HH:MM:SS" of a local reading. */
static void clock_text(int64_t local, char out[16])
{
    int64_t sod = local - civil_floor_div(local, CIVIL_DAY) * CIVIL_DAY;
    if (sod % 60)
        snprintf(out, 16, "%02d:%02d:%02d", (int)(sod / 3600), (int)(sod / 60 % 60),
                 (int)(sod % 60));
    else
        snprintf(out, 16, "%02d:%02d", (int)(sod / 3600), (int)(sod / 60 % 60));
}

/* Why this instant, when the DST rule had a hand in it; "" otherwise.
 * Evaluating the expression in UTC on a local reading tells whether that
 * reading itself matches (UTC has no shifts). */
static void note_for(const cron_t *c, const tz_t *tz, int64_t t, const tz_info_t *info, char *out,
                     size_t n)
{
    int64_t local = t + info->utoff;
    char hm[16];
    out[0] = '\0';
    if (cron_next(c, NULL, local - 1) != local) {
        int64_t skipped = cron_prev(c, NULL, local);
        clock_text(skipped, hm);
        snprintf(out, n,
                 "%s local time did not exist (clocks moved forward); the fire moved to the first "
                 "instant after the gap",
                 hm);
        return;
    }
    tz_resolution_t r;
    tz_local_to_utc(tz, local, &r);
    if (r.kind != TZ_OVERLAP)
        return;
    clock_text(local, hm);
    if (!(c->flags & CRON_WILD))
        snprintf(out, n,
                 "%s local time occurs twice (clocks move back); a fixed-time job fires once, at "
                 "the first occurrence",
                 hm);
    else
        snprintf(out, n,
                 "%s local time occurs twice (clocks move back); a wildcard job fires in both "
                 "passes: this is the %s",
                 hm, t == r.first ? "first" : "second");
}

static json_t *time_entry(const cron_t *c, const tz_t *tz, int64_t t)
{
    tz_info_t info;
    char u[40], l[40], note[256];
    tz_utc_to_local(tz, t, &info);
    sched_format_utc(t, u);
    sched_format_local(t, info.utoff, l);
    note_for(c, tz, t, &info, note, sizeof(note));
    json_t *e =
        json_pack("{s:s, s:s, s:s}", "utc", u, "local", l, "abbr", info.abbr ? info.abbr : "");
    if (e && note[0])
        json_object_set_new(e, "note", json_string(note));
    return e;
}

json_t *sched_times_json(const cron_t *c, const tz_t *tz, int64_t after, int64_t end, int count)
{
    json_t *times = json_array();
    tz = tz ? tz : tz_utc();
    for (int i = 0; times && i < count; i++) {
        int64_t t = cron_next(c, tz, after);
        if (t == CRON_NONE || t > end)
            break;
        json_t *e = time_entry(c, tz, t);
        if (!e || json_array_append_new(times, e) < 0) {
            json_decref(times);
            return NULL;
        }
        after = t;
    }
    return times ? json_pack("{s:o}", "times", times) : NULL;
}
