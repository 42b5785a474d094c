/* cron.c - next/previous fire instants: a wall-clock search per period of constant UTC offset. */
#include <stdbool.h>

#include "civil.h"
#include "cron.h"

/* A search gives up after one Gregorian cycle: the calendar (weekdays, leap
 * days) repeats every 400 years, so a window that long with no match means
 * the expression never matches. */
#define SEARCH_YEARS   400
#define LOCAL_YEAR_MIN 1969  /* local readings may precede the epoch by a day */
#define LOCAL_YEAR_MAX 10000 /* and follow 9999-12-31 by one */

/* A broken-down wall-clock reading. */
struct wall {
    int64_t y;
    int m, d, h, mi, s;
};

static int next_bit(uint64_t mask, int from)
{
    if (from > 63)
        return -1;
    mask &= ~0ull << from;
    return mask ? __builtin_ctzll(mask) : -1;
}

static int prev_bit(uint64_t mask, int from)
{
    if (from < 0)
        return -1;
    mask &= from >= 63 ? ~0ull : (2ull << from) - 1;
    return mask ? 63 - __builtin_clzll(mask) : -1;
}

/* Days 1..31 of month (y, m) that carry the weekday pattern `wd` (bit 0 =
 * the weekday of the 1st): each copy of the 7 bits lands one week later. */
static uint32_t spread_week(uint32_t wd)
{
    return (uint32_t)(((uint64_t)wd << 1) * 0x10204081ull);
}

/* Weekday-nearest (nW) for one day n of a month with `dim` days whose 1st is weekday w1. */
static int nearest_weekday(int n, int dim, int w1)
{
    int wd = (w1 + n - 1) % 7;
    if (wd == 6)
        return n > 1 ? n - 1 : n + 2;
    if (wd == 0)
        return n < dim ? n + 1 : n - 2;
    return n;
}

static uint32_t dom_mask(const cron_t *c, int dim, int w1)
{
    uint32_t m = c->dom;
    for (uint32_t l = c->dom_last; l; l &= l - 1) {
        int day = dim - __builtin_ctz(l);
        if (day >= 1)
            m |= 1u << day;
    }
    for (uint32_t w = c->dom_near; w; w &= w - 1) {
        int n = __builtin_ctz(w);
        if (n <= dim)
            m |= 1u << nearest_weekday(n, dim, w1);
    }
    if (c->flags & CRON_DOM_LW) {
        int wd = (w1 + dim - 1) % 7;
        m |= 1u << (wd == 6 ? dim - 1 : wd == 0 ? dim - 2 : dim);
    }
    return m;
}

static uint32_t dow_mask(const cron_t *c, int dim, int w1)
{
    uint32_t rot = ((uint32_t)c->dow | (uint32_t)c->dow << 7) >> w1;
    uint32_t m = spread_week(rot & 0x7f);
    for (int d = 0; d < 7; d++) {
        if (!c->dow_nth[d] && !(c->dow_last >> d & 1))
            continue;
        int first = 1 + (d - w1 + 7) % 7;
        for (int n = 0; n < 5; n++) {
            if ((c->dow_nth[d] >> n & 1) && first + 7 * n <= dim)
                m |= 1u << (first + 7 * n);
        }
        if (c->dow_last >> d & 1)
            m |= 1u << (first + 7 * ((dim - first) / 7));
    }
    return m;
}

/* The days of (y, m) on which the expression fires, as bits 1..31. */
static uint32_t day_mask(const cron_t *c, int64_t y, int m)
{
    int dim = civil_days_in_month(y, m);
    int w1 = civil_weekday(civil_days(y, m, 1));
    uint32_t valid = (uint32_t)((2ull << dim) - 2);
    uint32_t dm = dom_mask(c, dim, w1), wm = dow_mask(c, dim, w1);
    /* cronie: a field beginning with '*' makes the two fields AND, else OR. */
    uint32_t days = (c->flags & (CRON_DOM_STAR | CRON_DOW_STAR)) ? dm & wm : dm | wm;
    return days & valid;
}

static struct wall wall_of(int64_t local)
{
    struct wall w;
    int64_t days = civil_floor_div(local, CIVIL_DAY);
    int secs = (int)(local - days * CIVIL_DAY);
    civil_from_days(days, &w.y, &w.m, &w.d);
    w.h = secs / 3600;
    w.mi = secs / 60 % 60;
    w.s = secs % 60;
    return w;
}

static int64_t local_of(const struct wall *w)
{
    return civil_days(w->y, w->m, w->d) * CIVIL_DAY + w->h * 3600 + w->mi * 60 + w->s;
}

/* Caches the day mask of the month the search is in. */
struct month_cache {
    int64_t y;
    int m;
    uint32_t days;
};

static uint32_t month_days(const cron_t *c, struct month_cache *mc, int64_t y, int m)
{
    if (mc->y != y || mc->m != m) {
        mc->y = y;
        mc->m = m;
        mc->days = day_mask(c, y, m);
    }
    return mc->days;
}

/* The first matching wall-clock reading >= local, or CRON_NONE. Each level
 * finds its next set bit; running out carries into the level above and
 * resets the levels below. */
static int64_t local_next(const cron_t *c, int64_t local)
{
    struct wall w = wall_of(local);
    int64_t ylim = w.y + SEARCH_YEARS < LOCAL_YEAR_MAX ? w.y + SEARCH_YEARS : LOCAL_YEAR_MAX;
    struct month_cache mc = {0, 0, 0};
    for (;;) {
        int v = next_bit(c->mon, w.m);
        if (v < 0) {
            if (++w.y > ylim)
                return CRON_NONE;
            w = (struct wall){w.y, 1, 1, 0, 0, 0};
            continue;
        }
        if (v != w.m)
            w = (struct wall){w.y, v, 1, 0, 0, 0};
        if ((v = next_bit(month_days(c, &mc, w.y, w.m), w.d)) < 0) {
            w = (struct wall){w.y, w.m + 1, 1, 0, 0, 0};
            continue;
        }
        if (v != w.d)
            w = (struct wall){w.y, w.m, v, 0, 0, 0};
        if ((v = next_bit(c->hour, w.h)) < 0) {
            w = (struct wall){w.y, w.m, w.d + 1, 0, 0, 0};
            continue;
        }
        if (v != w.h)
            w = (struct wall){w.y, w.m, w.d, v, 0, 0};
        if ((v = next_bit(c->min, w.mi)) < 0) {
            w = (struct wall){w.y, w.m, w.d, w.h + 1, 0, 0};
            continue;
        }
        if (v != w.mi)
            w = (struct wall){w.y, w.m, w.d, w.h, v, 0};
        if ((v = next_bit(c->sec, w.s)) < 0) {
            w = (struct wall){w.y, w.m, w.d, w.h, w.mi + 1, 0};
            continue;
        }
        w.s = v;
        return local_of(&w);
    }
}

/* The last matching wall-clock reading <= local, or CRON_NONE. */
static int64_t local_prev(const cron_t *c, int64_t local)
{
    struct wall w = wall_of(local);
    int64_t ylim = w.y - SEARCH_YEARS > LOCAL_YEAR_MIN ? w.y - SEARCH_YEARS : LOCAL_YEAR_MIN;
    struct month_cache mc = {0, 0, 0};
    for (;;) {
        int v = prev_bit(c->mon, w.m);
        if (v < 0) {
            if (--w.y < ylim)
                return CRON_NONE;
            w = (struct wall){w.y, 12, 31, 23, 59, 59};
            continue;
        }
        if (v != w.m)
            w = (struct wall){w.y, v, 31, 23, 59, 59};
        if ((v = prev_bit(month_days(c, &mc, w.y, w.m), w.d)) < 0) {
            w = (struct wall){w.y, w.m - 1, 31, 23, 59, 59};
            continue;
        }
        if (v != w.d)
            w = (struct wall){w.y, w.m, v, 23, 59, 59};
        if ((v = prev_bit(c->hour, w.h)) < 0) {
            w = (struct wall){w.y, w.m, w.d - 1, 23, 59, 59};
            continue;
        }
        if (v != w.h)
            w = (struct wall){w.y, w.m, w.d, v, 59, 59};
        if ((v = prev_bit(c->min, w.mi)) < 0) {
            w = (struct wall){w.y, w.m, w.d, w.h - 1, 59, 59};
            continue;
        }
        if (v != w.mi)
            w = (struct wall){w.y, w.m, w.d, w.h, v, 59};
        if ((v = prev_bit(c->sec, w.s)) < 0) {
            w = (struct wall){w.y, w.m, w.d, w.h, w.mi - 1, 59};
            continue;
        }
        w.s = v;
        return local_of(&w);
    }
}

/* Remembers the last search: the answer from `from` holds for any start
 * between `from` and the answer (for prev: between the answer and `from`),
 * which saves re-searching when a rare expression spans many DST periods. */
struct memo {
    bool valid;
    int64_t from, result;
};

static int64_t local_next_memo(const cron_t *c, int64_t local, struct memo *mo)
{
    if (mo->valid && local >= mo->from && (mo->result == CRON_NONE || local <= mo->result))
        return mo->result;
    *mo = (struct memo){true, local, local_next(c, local)};
    return mo->result;
}

static int64_t local_prev_memo(const cron_t *c, int64_t local, struct memo *mo)
{
    if (mo->valid && local <= mo->from && (mo->result == CRON_NONE || local >= mo->result))
        return mo->result;
    *mo = (struct memo){true, local, local_prev(c, local)};
    return mo->result;
}

/* Whether a fixed-time job has a reading in the gap [gs, ge) (local), not
 * counting days that lie wholly inside it: a skipped calendar day (Apia
 * 2011-12-30) has no readings to make up for. */
static bool gap_has_match(const cron_t *c, int64_t gs, int64_t ge)
{
    int64_t from = gs;
    while (from < ge) {
        int64_t m = local_next(c, from);
        if (m == CRON_NONE || m >= ge)
            return false;
        int64_t day0 = civil_floor_div(m, CIVIL_DAY) * CIVIL_DAY;
        if (day0 >= gs && day0 + CIVIL_DAY <= ge) {
            from = day0 + CIVIL_DAY;
            continue;
        }
        return true;
    }
    return false;
}

static bool opened_gap(const tz_period_t *p)
{
    return p->start != INT64_MIN && p->utoff > p->prev_utoff;
}

/* The readings of a period that a fixed-time job may use start after the
 * ones the previous period already showed (the repeated hour). */
static int64_t first_fresh_local(const tz_period_t *p, bool fixed)
{
    if (p->start == INT64_MIN)
        return INT64_MIN;
    if (fixed && p->prev_utoff > p->utoff)
        return p->start + p->prev_utoff;
    return p->start + p->utoff;
}

int64_t cron_next(const cron_t *c, const tz_t *tz, int64_t after)
{
    if (!tz)
        tz = tz_utc();
    if (after >= CRON_TIME_MAX)
        return CRON_NONE;
    bool fixed = !(c->flags & CRON_WILD);
    struct memo mo = {false, 0, 0};
    int64_t cur = after < CRON_TIME_MIN ? CRON_TIME_MIN : after + 1;
    while (cur <= CRON_TIME_MAX) {
        tz_period_t p;
        tz_period_at(tz, cur, &p);
        if (fixed && p.start == cur && opened_gap(&p) &&
            gap_has_match(c, cur + p.prev_utoff, cur + p.utoff))
            return cur;
        int64_t from = cur + p.utoff, fresh = first_fresh_local(&p, fixed);
        if (fresh > from)
            from = fresh;
        int64_t m = local_next_memo(c, from, &mo);
        if (m != CRON_NONE && m - p.utoff < p.end)
            return m - p.utoff <= CRON_TIME_MAX ? m - p.utoff : CRON_NONE;
        /* No reading at or after `from`: only a later period with a smaller
         * offset could still show one below it, and none starting at or
         * after from - min_utoff can. */
        if (p.end == INT64_MAX || (m == CRON_NONE && p.end >= from - tz_min_utoff(tz)))
            return CRON_NONE;
        cur = p.end;
    }
    return CRON_NONE;
}

int64_t cron_prev(const cron_t *c, const tz_t *tz, int64_t before)
{
    if (!tz)
        tz = tz_utc();
    if (before <= CRON_TIME_MIN)
        return CRON_NONE;
    bool fixed = !(c->flags & CRON_WILD);
    struct memo mo = {false, 0, 0};
    int64_t cur = before > CRON_TIME_MAX ? CRON_TIME_MAX : before - 1;
    while (cur >= CRON_TIME_MIN) {
        tz_period_t p;
        tz_period_at(tz, cur, &p);
        int64_t hi = cur + p.utoff;
        int64_t m = local_prev_memo(c, hi, &mo);
        if (m != CRON_NONE && m >= first_fresh_local(&p, fixed))
            return m - p.utoff >= CRON_TIME_MIN ? m - p.utoff : CRON_NONE;
        if (fixed && opened_gap(&p) && gap_has_match(c, p.start + p.prev_utoff, p.start + p.utoff))
            return p.start >= CRON_TIME_MIN ? p.start : CRON_NONE;
        /* Mirror of cron_next: earlier periods show readings up to
         * p.start - 1 + max_utoff only. */
        if (p.start == INT64_MIN || (m == CRON_NONE && p.start - 1 <= hi - tz_max_utoff(tz)))
            return CRON_NONE;
        cur = p.start - 1;
    }
    return CRON_NONE;
}
