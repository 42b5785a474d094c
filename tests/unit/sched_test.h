/* sched_test.h - helpers shared by test_cron.c and test_tz.c (include after cmocka.h). */
#ifndef OPSC_SCHED_TEST_H
#define OPSC_SCHED_TEST_H

#include "tz.h"
#include "util.h"

/* An RFC 3339 time as Unix seconds; fails the test on bad text. */
static inline int64_t at(const char *rfc)
{
    int64_t ms = 0;
    assert_int_equal(rfc3339_parse(rfc, &ms), 0);
    return ms / 1000;
}

/* tz_get() that fails the test with the reason. */
static inline const tz_t *zone(const char *name)
{
    const tz_t *tz = NULL;
    char err[256] = "";
    if (tz_get(name, &tz, err, sizeof(err)))
        fail_msg("tz_get(%s): %s", name, err);
    return tz;
}

#endif
