/* tz_posix.c - POSIX TZ rule strings (the TZif footer): parsing and evaluation for any year. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <opsc/errors.h>

#include "civil.h"
#include "tz_internal.h"

struct posix_parser {
    const char *s;
    const char *p;
    char *err;
    size_t errlen;
};

static int posix_fail(struct posix_parser *ps, const char *what)
{
    if (ps->err && ps->errlen)
        snprintf(ps->err, ps->errlen, "POSIX TZ \"%.64s\": %s at position %d", ps->s, what,
                 (int)(ps->p - ps->s) + 1);
    return OPSC_ESYNTAX;
}

/* std/dst designation: 3+ letters, or <...> with letters, digits, '+', '-'. */
static int posix_name(struct posix_parser *ps, char out[TZ_ABBR_MAX])
{
    size_t n = 0;
    if (*ps->p == '<') {
        ps->p++;
        while (isalnum((unsigned char)ps->p[n]) || ps->p[n] == '+' || ps->p[n] == '-')
            n++;
        if (ps->p[n] != '>') {
            ps->p += n;
            return posix_fail(ps, "unterminated <designation>");
        }
        if (n < 3 || n >= TZ_ABBR_MAX)
            return posix_fail(ps, "designation must have 3 to 15 characters");
        memcpy(out, ps->p, n);
        out[n] = '\0';
        ps->p += n + 1;
        return 0;
    }
    while (isalpha((unsigned char)ps->p[n]))
        n++;
    if (n < 3 || n >= TZ_ABBR_MAX)
        return posix_fail(ps, "designation must have 3 to 15 letters");
    memcpy(out, ps->p, n);
    out[n] = '\0';
    ps->p += n;
    return 0;
}

static int posix_number(struct posix_parser *ps, int maxdigits, int *out)
{
    int v = 0, n = 0;
    while (isdigit((unsigned char)*ps->p) && n < maxdigits) {
        v = v * 10 + (*ps->p++ - '0');
        n++;
    }
    if (n == 0)
        return posix_fail(ps, "expected a number");
    *out = v;
    return 0;
}

/* [+-]hh[:mm[:ss]] with hh <= max_hours; the sign is returned applied. */
static int posix_hms(struct posix_parser *ps, int max_hours, int32_t *secs)
{
    int sign = 1, h, m = 0, s = 0;
    if (*ps->p == '+' || *ps->p == '-')
        sign = *ps->p++ == '-' ? -1 : 1;
    if (posix_number(ps, 3, &h))
        return OPSC_ESYNTAX;
    if (h > max_hours)
        return posix_fail(ps, "hours out of range");
    if (*ps->p == ':') {
        ps->p++;
        if (posix_number(ps, 2, &m) || m > 59)
            return posix_fail(ps, "minutes out of range");
        if (*ps->p == ':') {
            ps->p++;
            if (posix_number(ps, 2, &s) || s > 59)
                return posix_fail(ps, "seconds out of range");
        }
    }
    *secs = sign * (h * 3600 + m * 60 + s);
    return 0;
}

static int posix_date(struct posix_parser *ps, struct tz_rule_date *d)
{
    memset(d, 0, sizeof(*d));
    if (*ps->p == 'M') {
        ps->p++;
        d->kind = TZ_DATE_MWD;
        if (posix_number(ps, 2, &d->month) || d->month < 1 || d->month > 12)
            return posix_fail(ps, "month must be 1-12");
        if (*ps->p++ != '.' || posix_number(ps, 1, &d->week) || d->week < 1 || d->week > 5)
            return posix_fail(ps, "week must be .1-.5");
        if (*ps->p++ != '.' || posix_number(ps, 1, &d->wday) || d->wday > 6)
            return posix_fail(ps, "weekday must be .0-.6");
    } else if (*ps->p == 'J') {
        ps->p++;
        d->kind = TZ_DATE_JULIAN1;
        if (posix_number(ps, 3, &d->day) || d->day < 1 || d->day > 365)
            return posix_fail(ps, "Julian day must be 1-365");
    } else {
        d->kind = TZ_DATE_JULIAN0;
        if (posix_number(ps, 3, &d->day) || d->day > 365)
            return posix_fail(ps, "day must be 0-365");
    }
    d->secs = 2 * 3600;
    if (*ps->p == '/') {
        ps->p++;
        return posix_hms(ps, 167, &d->secs);
    }
    return 0;
}

static void rule_default_us(struct tz_rule *r)
{
    /* "EST5EDT" without dates: the choice glibc makes (US rules since 2007). */
    r->start = (struct tz_rule_date){TZ_DATE_MWD, 0, 3, 2, 0, 2 * 3600};
    r->end = (struct tz_rule_date){TZ_DATE_MWD, 0, 11, 1, 0, 2 * 3600};
    r->simple = true;
}

static bool rule_is_simple(const struct tz_rule *r)
{
    const struct tz_rule_date *a = &r->start, *b = &r->end;
    int gap = a->month > b->month ? a->month - b->month : b->month - a->month;
    return a->kind == TZ_DATE_MWD && b->kind == TZ_DATE_MWD && a->month >= 2 && a->month <= 11 &&
           b->month >= 2 && b->month <= 11 && gap >= 2;
}

int tz_rule_parse(const char *s, struct tz_rule *r, char *err, size_t errlen)
{
    struct posix_parser ps = {s, s, err, errlen};
    int32_t off;
    memset(r, 0, sizeof(*r));
    if (posix_name(&ps, r->std.abbr) || posix_hms(&ps, 24, &off))
        return OPSC_ESYNTAX;
    r->std.utoff = -off; /* POSIX counts west as positive */
    r->dst = r->std;
    if (*ps.p == '\0')
        return 0;
    r->has_dst = true;
    if (posix_name(&ps, r->dst.abbr))
        return OPSC_ESYNTAX;
    r->dst.is_dst = true;
    r->dst.utoff = r->std.utoff + 3600;
    if (*ps.p != ',' && *ps.p != '\0') {
        if (posix_hms(&ps, 24, &off))
            return OPSC_ESYNTAX;
        r->dst.utoff = -off;
    }
    if (*ps.p == '\0') {
        rule_default_us(r);
        return 0;
    }
    if (*ps.p != ',')
        return posix_fail(&ps, "expected ',' before the start date");
    ps.p++;
    if (posix_date(&ps, &r->start))
        return OPSC_ESYNTAX;
    if (*ps.p != ',')
        return posix_fail(&ps, "expected ',' before the end date");
    ps.p++;
    if (posix_date(&ps, &r->end))
        return OPSC_ESYNTAX;
    if (*ps.p != '\0')
        return posix_fail(&ps, "unexpected text");
    r->simple = rule_is_simple(r);
    return 0;
}

/* The UTC instant at which `d` happens in year y, reading local time with
 * offset `before` (the offset in force until that instant). */
static int64_t rule_instant(const struct tz_rule_date *d, int64_t y, int32_t before)
{
    int64_t days;
    if (d->kind == TZ_DATE_MWD) {
        int64_t first = civil_days(y, d->month, 1);
        int day = (d->wday - civil_weekday(first) + 7) % 7 + 7 * (d->week - 1);
        if (day >= civil_days_in_month(y, d->month))
            day -= 7; /* week 5 means "last" */
        days = first + day;
    } else if (d->kind == TZ_DATE_JULIAN1) {
        days = civil_days(y, 1, 1) + d->day - 1 + (civil_is_leap(y) && d->day >= 60);
    } else {
        days = civil_days(y, 1, 1) + d->day;
    }
    return days * CIVIL_DAY + d->secs - before;
}

struct rule_event {
    int64_t at;
    const struct tz_type *type; /* in force from `at` on */
};

/* Events of years y0..y0+n-1, sorted (stable, so a same-instant pair keeps
 * the calendar order and the later one wins). */
static int rule_events(const struct tz_rule *r, int64_t y0, int n, struct rule_event *ev)
{
    int k = 0;
    for (int64_t y = y0; y < y0 + n; y++) {
        ev[k++] = (struct rule_event){rule_instant(&r->start, y, r->std.utoff), &r->dst};
        ev[k++] = (struct rule_event){rule_instant(&r->end, y, r->dst.utoff), &r->std};
    }
    for (int i = 1; i < k; i++) {
        struct rule_event e = ev[i];
        int j = i - 1;
        for (; j >= 0 && ev[j].at > e.at; j--)
            ev[j + 1] = ev[j];
        ev[j + 1] = e;
    }
    return k;
}

static void period_of_type(const struct tz_type *ty, tz_period_t *out)
{
    out->utoff = ty->utoff;
    out->is_dst = ty->is_dst;
    out->abbr = ty->abbr;
}

/* The period for a simple rule: the events of t's year, and one neighbour. */
static void simple_period(const struct tz_rule *r, int64_t t, tz_period_t *out)
{
    struct rule_event cur[2], other[2];
    int64_t y;
    int mo, d;
    civil_from_days(civil_floor_div(t, CIVIL_DAY), &y, &mo, &d);
    rule_events(r, y, 1, cur);
    if (t >= cur[1].at) {
        rule_events(r, y + 1, 1, other);
        *out = (tz_period_t){cur[1].at, other[0].at, 0, cur[0].type->utoff, false, NULL};
        period_of_type(cur[1].type, out);
    } else if (t >= cur[0].at) {
        *out = (tz_period_t){cur[0].at, cur[1].at, 0, cur[1].type->utoff, false, NULL};
        period_of_type(cur[0].type, out);
    } else {
        rule_events(r, y - 1, 1, other);
        *out = (tz_period_t){other[1].at, cur[0].at, 0, other[0].type->utoff, false, NULL};
        period_of_type(other[1].type, out);
    }
}

void tz_rule_period(const struct tz_rule *r, int64_t t, tz_period_t *out)
{
    if (!r->has_dst) {
        *out = (tz_period_t){INT64_MIN, INT64_MAX, r->std.utoff, r->std.utoff, false, r->std.abbr};
        return;
    }
    if (r->simple) {
        simple_period(r, t, out);
        return;
    }
    /* Rule times stay within a week and 167 h of their year, so the events
     * of the neighbouring years bracket t; widen once for absurd rules. */
    struct rule_event ev[10];
    int64_t y;
    int mo, d;
    civil_from_days(civil_floor_div(t + r->std.utoff, CIVIL_DAY), &y, &mo, &d);
    int n = rule_events(r, y - 2, 5, ev);
    int i = n - 1;
    while (i >= 0 && ev[i].at > t)
        i--;
    if (i < 0 || i == n - 1) { /* cannot happen with real rules: stay defined */
        const struct tz_type *ty = i < 0 ? (ev[0].type == &r->dst ? &r->std : &r->dst) : ev[i].type;
        *out = (tz_period_t){
            i < 0 ? INT64_MIN : ev[i].at, i < 0 ? ev[0].at : INT64_MAX, 0, 0, false, NULL};
        period_of_type(ty, out);
        out->prev_utoff = out->utoff;
        return;
    }
    out->start = ev[i].at;
    period_of_type(ev[i].type, out);
    int j = i - 1;
    while (j >= 0 && ev[j].at == ev[i].at)
        j--;
    out->prev_utoff = j >= 0 ? ev[j].type->utoff : out->utoff;
    out->end = ev[i + 1].at;
}
