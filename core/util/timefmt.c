/* timefmt.c - clocks (injectable wall clock, monotonic) and RFC 3339 text. */
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <opsc/errors.h>

#include "civil.h"
#include "util.h"

static int64_t (*_Atomic clock_source)(void);

int64_t clock_now_ms(void)
{
    int64_t (*fn)(void) = clock_source;
    if (fn)
        return fn();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void clock_set_source(int64_t (*fn)(void))
{
    clock_source = fn;
}

void cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

uint64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void rfc3339_format(int64_t unix_ms, char out[RFC3339_LEN])
{
    time_t secs = (time_t)civil_floor_div(unix_ms, 1000);
    int ms = (int)(unix_ms - (int64_t)secs * 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* Years beyond 9999 do not fit RFC 3339; clamp rather than emit garbage. */
    int year = tm.tm_year + 1900;
    year = year < 0 ? 0 : year > 9999 ? 9999 : year;
    snprintf(out, RFC3339_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, (tm.tm_mon + 1) % 13,
             tm.tm_mday % 32, tm.tm_hour % 24, tm.tm_min % 60, tm.tm_sec % 61, ms % 1000);
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 0;
}

static int parse_fraction_ms(const char **p)
{
    int ms = 0, scale = 100;
    if (**p != '.')
        return 0;
    (*p)++;
    if (!isdigit((unsigned char)**p))
        return -1;
    for (; isdigit((unsigned char)**p); (*p)++) {
        ms += (**p - '0') * scale;
        scale /= 10;
    }
    return ms;
}

static int parse_offset_min(const char **p, int *off)
{
    int oh, om, sign;
    if (**p == 'Z' || **p == 'z') {
        (*p)++;
        *off = 0;
        return 0;
    }
    if (**p != '+' && **p != '-')
        return -1;
    sign = **p == '-' ? -1 : 1;
    (*p)++;
    if (digits(p, 2, &oh) || *(*p)++ != ':' || digits(p, 2, &om) || oh > 23 || om > 59)
        return -1;
    *off = sign * (oh * 60 + om);
    return 0;
}

int rfc3339_parse(const char *s, int64_t *unix_ms)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, off;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        return OPSC_EINVAL;
    if ((*p != 'T' && *p != 't' && *p != ' ') || !*p)
        return OPSC_EINVAL;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
        digits(&p, 2, &sec))
        return OPSC_EINVAL;
    int ms = parse_fraction_ms(&p);
    if (ms < 0 || parse_offset_min(&p, &off) || *p)
        return OPSC_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > civil_days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return OPSC_EINVAL;
    if (sec == 60)
        sec = 59; /* a leap second maps onto the second before it */
    int64_t days = civil_days(y, mo, d);
    *unix_ms = ((days * 86400 + h * 3600 + mi * 60 + sec) - (int64_t)off * 60) * 1000 + ms;
    return 0;
}
