/* test_cron.c - cron syntax, errors, the day-of-month/day-of-week rule and the DST rule, by table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "cron.h"
#include "sched_test.h"
#include "util.h"

#define MAX_SEQ 8

/* An expression, a zone, a start, and the instants next() must give from
 * there, in order, as RFC 3339 UTC. "none" ends a sequence that runs out. */
struct seq_case {
    const char *expr;
    const char *zone;
    const char *from;
    const char *want[MAX_SEQ];
};

static void fmt(int64_t t, char out[RFC3339_LEN])
{
    if (t == CRON_NONE) {
        snprintf(out, RFC3339_LEN, "none");
        return;
    }
    rfc3339_format(t * 1000, out);
    snprintf(out + 19, RFC3339_LEN - 19, "Z"); /* drop the milliseconds */
}

static void parse_ok(const char *expr, const char *seed, cron_t *c)
{
    char err[256] = "";
    int rc = cron_parse(expr, seed, c, err, sizeof(err));
    if (rc)
        fail_msg("cron_parse(\"%s\") = %d: %s", expr, rc, err);
}

/* Checks next() along the sequence and prev() back along it. */
static void check_seq(const struct seq_case *k)
{
    cron_t c;
    parse_ok(k->expr, "seed", &c);
    const tz_t *tz = zone(k->zone);
    int64_t t = at(k->from), got[MAX_SEQ];
    int n = 0;
    for (; n < MAX_SEQ && k->want[n]; n++) {
        char buf[RFC3339_LEN];
        got[n] = cron_next(&c, tz, t);
        fmt(got[n], buf);
        if (strcmp(buf, k->want[n]) != 0)
            fail_msg("\"%s\" in %s, next #%d after %s: got %s, want %s", k->expr, k->zone, n + 1,
                     k->from, buf, k->want[n]);
        if (got[n] == CRON_NONE)
            return;
        t = got[n];
    }
    for (int i = n - 1; i > 0; i--) {
        char buf[RFC3339_LEN], want[RFC3339_LEN];
        fmt(cron_prev(&c, tz, got[i]), buf);
        fmt(got[i - 1], want);
        if (strcmp(buf, want) != 0)
            fail_msg("\"%s\" in %s, prev of %s: got %s, want %s", k->expr, k->zone, k->want[i], buf,
                     want);
    }
}

static void check_table(const struct seq_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_seq(&cases[i]);
}

#define CHECK_TABLE(t) check_table((t), sizeof(t) / sizeof((t)[0]))

/* 2025-01-01 is a Wednesday. */
static const struct seq_case syntax_cases[] = {
    {"*/15 * * * *",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-01-01T00:15:00Z", "2025-01-01T00:30:00Z", "2025-01-01T00:45:00Z",
      "2025-01-01T01:00:00Z"}},
    {"5-50/10 * * * *",
     "UTC",
     "2025-01-01T00:40:00Z",
     {"2025-01-01T00:45:00Z", "2025-01-01T01:05:00Z", "2025-01-01T01:15:00Z"}},
    {"5/20 * * * *",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-01-01T00:05:00Z", "2025-01-01T00:25:00Z", "2025-01-01T00:45:00Z",
      "2025-01-01T01:05:00Z"}},
    {"0 8,12,18 * * *",
     "UTC",
     "2025-01-01T10:00:00Z",
     {"2025-01-01T12:00:00Z", "2025-01-01T18:00:00Z", "2025-01-02T08:00:00Z"}},
    {"0 0 1 JAN,jul *",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-07-01T00:00:00Z", "2026-01-01T00:00:00Z"}},
    {"0 0 1 feb-APR/2 *",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-02-01T00:00:00Z", "2025-04-01T00:00:00Z", "2026-02-01T00:00:00Z"}},
    {"0 9 * * mon-FRI",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-01-01T09:00:00Z", "2025-01-02T09:00:00Z", "2025-01-03T09:00:00Z",
      "2025-01-06T09:00:00Z"}},
    {"0 0 * * 0", "UTC", "2025-01-01T00:00:00Z", {"2025-01-05T00:00:00Z", "2025-01-12T00:00:00Z"}},
    {"0 0 * * 7", "UTC", "2025-01-01T00:00:00Z", {"2025-01-05T00:00:00Z", "2025-01-12T00:00:00Z"}},
    {"0 0 * * Sun", "UTC", "2025-01-01T00:00:00Z", {"2025-01-05T00:00:00Z"}},
    {"0 0 * * 5-7",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-01-03T00:00:00Z", "2025-01-04T00:00:00Z", "2025-01-05T00:00:00Z",
      "2025-01-10T00:00:00Z"}},
    {"0 0 * * FRI-SUN", "UTC", "2025-01-05T12:00:00Z", {"2025-01-10T00:00:00Z"}},
    /* A range ending on Sunday as 0 is FRI-SUN only when it starts later in the week. */
    {"0 0 * * 0-0",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-01-05T00:00:00Z", "2025-01-12T00:00:00Z"}},
    {"0 0 * * SUN-SUN",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-01-05T00:00:00Z", "2025-01-12T00:00:00Z"}},
    {"0 0 * * 7-0",
     "UTC",
     "2025-01-06T00:00:00Z",
     {"2025-01-12T00:00:00Z", "2025-01-19T00:00:00Z"}},
    /* A step beyond the field's span fires at the range start only (cronie, croniter). */
    {"0 */30 * * *",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z", "2025-01-04T00:00:00Z"}},
    {"*/61 * * * *",
     "UTC",
     "2025-01-01T00:30:00Z",
     {"2025-01-01T01:00:00Z", "2025-01-01T02:00:00Z"}},
    {"0 5-10/30 * * *", "UTC", "2025-01-01T06:00:00Z", {"2025-01-02T05:00:00Z"}},
    {"0 0 * * */8",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-01-05T00:00:00Z", "2025-01-12T00:00:00Z"}},
    {"0 0 15 * ?", "UTC", "2025-01-01T00:00:00Z", {"2025-01-15T00:00:00Z", "2025-02-15T00:00:00Z"}},
    {"0 0 ? * 1", "UTC", "2025-01-01T00:00:00Z", {"2025-01-06T00:00:00Z"}},
    {"0 0 L * *",
     "UTC",
     "2024-01-15T00:00:00Z",
     {"2024-01-31T00:00:00Z", "2024-02-29T00:00:00Z", "2024-03-31T00:00:00Z",
      "2024-04-30T00:00:00Z"}},
    {"0 0 L-3 * *",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-01-28T00:00:00Z", "2025-02-25T00:00:00Z", "2025-03-28T00:00:00Z"}},
    {"0 0 LW * *",
     "UTC",
     "2025-05-01T00:00:00Z",
     {"2025-05-30T00:00:00Z", "2025-06-30T00:00:00Z", "2025-07-31T00:00:00Z",
      "2025-08-29T00:00:00Z"}},
    {"0 0 15W * *",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-01-15T00:00:00Z", "2025-02-14T00:00:00Z", "2025-03-14T00:00:00Z",
      "2025-04-15T00:00:00Z", "2025-05-15T00:00:00Z", "2025-06-16T00:00:00Z"}},
    {"0 0 1W * *", "UTC", "2025-01-15T00:00:00Z", {"2025-02-03T00:00:00Z", "2025-03-03T00:00:00Z"}},
    {"0 0 31W * *",
     "UTC",
     "2025-03-15T00:00:00Z",
     {"2025-03-31T00:00:00Z", "2025-05-30T00:00:00Z"}},
    {"0 0 * * 5#3",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-01-17T00:00:00Z", "2025-02-21T00:00:00Z", "2025-03-21T00:00:00Z"}},
    {"0 0 ? * FRI#5",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-01-31T00:00:00Z", "2025-05-30T00:00:00Z", "2025-08-29T00:00:00Z"}},
    {"0 0 * * 5L",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-01-31T00:00:00Z", "2025-02-28T00:00:00Z", "2025-03-28T00:00:00Z"}},
    {"0 0 * * 0L,1#1",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-01-06T00:00:00Z", "2025-01-26T00:00:00Z", "2025-02-03T00:00:00Z"}},
    {"30 * * * * *",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-01-01T00:00:30Z", "2025-01-01T00:01:30Z"}},
    {"*/20 0 0 * * *",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-01-01T00:00:20Z", "2025-01-01T00:00:40Z", "2025-01-02T00:00:00Z"}},
    {" \t0  0\t1 1 *  ", "UTC", "2025-01-01T00:00:00Z", {"2026-01-01T00:00:00Z"}},
    {"@yearly", "UTC", "2025-01-01T00:00:00Z", {"2026-01-01T00:00:00Z"}},
    {"@annually", "UTC", "2025-01-01T00:00:00Z", {"2026-01-01T00:00:00Z"}},
    {"@monthly", "UTC", "2025-01-01T00:00:00Z", {"2025-02-01T00:00:00Z"}},
    {"@weekly", "UTC", "2025-01-01T00:00:00Z", {"2025-01-05T00:00:00Z"}},
    {"@daily", "UTC", "2025-01-01T00:00:00Z", {"2025-01-02T00:00:00Z"}},
    {"@MIDNIGHT", "UTC", "2025-01-01T00:00:00Z", {"2025-01-02T00:00:00Z"}},
    {"@hourly", "UTC", "2025-01-01T00:00:00Z", {"2025-01-01T01:00:00Z"}},
    {"0 0 29 2 *", "UTC", "2025-01-01T00:00:00Z", {"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
    {"0 0 30 2 *", "UTC", "2025-01-01T00:00:00Z", {"none"}},
    {"0 0 31 4,6,9,11 *", "UTC", "1970-01-01T00:00:00Z", {"none"}},
    {"59 23 31 12 *", "UTC", "9999-12-30T00:00:00Z", {"9999-12-31T23:59:00Z", "none"}},
};

static void test_syntax_forms_fire_as_documented(void **state)
{
    (void)state;
    CHECK_TABLE(syntax_cases);
}

/* cronie: both restricted -> either matches; a '*' field -> both must match. */
static const struct seq_case day_rule_cases[] = {
    {"0 0 1,15 * 1",
     "UTC",
     "2024-12-31T00:00:00Z",
     {"2025-01-01T00:00:00Z", "2025-01-06T00:00:00Z", "2025-01-13T00:00:00Z",
      "2025-01-15T00:00:00Z", "2025-01-20T00:00:00Z"}},
    {"0 0 */10 * 1",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-03-31T00:00:00Z", "2025-04-21T00:00:00Z", "2025-07-21T00:00:00Z",
      "2025-08-11T00:00:00Z", "2025-09-01T00:00:00Z"}},
    {"0 0 13 * */7",
     "UTC",
     "2025-01-01T00:00:00Z",
     {"2025-04-13T00:00:00Z", "2025-07-13T00:00:00Z"}},
    {"0 0 L * 5",
     "UTC",
     "2025-01-20T00:00:00Z",
     {"2025-01-24T00:00:00Z", "2025-01-31T00:00:00Z", "2025-02-07T00:00:00Z"}},
    {"0 0 29 2 1",
     "UTC",
     "2028-02-20T00:00:00Z",
     {"2028-02-21T00:00:00Z", "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z",
      "2029-02-05T00:00:00Z"}},
};

static void test_day_fields_follow_cronie_or_and_rule(void **state)
{
    (void)state;
    CHECK_TABLE(day_rule_cases);
}

static void test_hash_is_stable_per_seed_and_spreads(void **state)
{
    (void)state;
    cron_t a, b;
    parse_ok("H H * * *", "schedule-1", &a);
    parse_ok("H H * * *", "schedule-1", &b);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_int_equal(__builtin_popcountll(a.min), 1);
    assert_int_equal(__builtin_popcount(a.hour), 1);
    uint64_t minutes = 0;
    uint32_t hours = 0;
    for (int i = 0; i < 1000; i++) {
        char seed[32];
        snprintf(seed, sizeof(seed), "sched-%d", i);
        parse_ok("H H(0-5) H * H", seed, &a);
        minutes |= a.min;
        hours |= a.hour;
        assert_true(a.hour != 0 && a.hour < (1u << 6));
        assert_true(a.dom >= 2 && a.dom < (1u << 29)); /* H in day-of-month: 1-28 */
        assert_true(a.dow != 0 && a.dow < (1u << 7));
    }
    assert_int_equal(__builtin_popcountll(minutes), 60);
    assert_int_equal(__builtin_popcount(hours), 6);
}

static void test_hash_step_and_range_forms(void **state)
{
    (void)state;
    cron_t c;
    for (int i = 0; i < 200; i++) {
        char seed[32];
        snprintf(seed, sizeof(seed), "s%d", i);
        parse_ok("H/15 3 * * *", seed, &c);
        assert_int_equal(__builtin_popcountll(c.min), 4);
        int first = __builtin_ctzll(c.min);
        assert_true(first < 15);
        for (int k = 0; k < 4; k++)
            assert_true(c.min >> (first + 15 * k) & 1);
        assert_true(c.flags & CRON_WILD);
        parse_ok("H(0-29)/10 3 * * *", seed, &c);
        assert_int_equal(__builtin_popcountll(c.min), 3);
        assert_true(__builtin_ctzll(c.min) < 10 && c.min < (1ull << 30));
        assert_false(c.flags & CRON_WILD);
        parse_ok("0 H(0-7) * * *", seed, &c);
        assert_true(c.hour != 0 && c.hour < (1u << 8));
    }
}

static void test_wildcard_classification(void **state)
{
    (void)state;
    static const struct {
        const char *expr;
        bool wild;
    } cases[] = {
        {"*/15 * * * *", true},    {"0 * * * *", true},     {"0-59/10 2 * * *", true},
        {"0 0-23 * * *", true},    {"H/5 3 * * *", true},   {"@hourly", true},
        {"* 30 2 * * *", true},    {"30 2 * * *", false},   {"0,30 2 * * *", false},
        {"H H * * *", false},      {"0 0 * * *", false},    {"0 0-22 * * *", false},
        {"0-58/2 1 * * *", false}, {"0 30 2 * * *", false}, {"@daily", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cron_t c;
        parse_ok(cases[i].expr, "x", &c);
        if (!!(c.flags & CRON_WILD) != cases[i].wild)
            fail_msg("\"%s\": wildcard %d, want %d", cases[i].expr, !!(c.flags & CRON_WILD),
                     cases[i].wild);
    }
}

static const struct {
    const char *expr;
    const char *field;
    int column;
} error_cases[] = {
    {"", "expression", 1},
    {"   ", "expression", 1},
    {"* * * *", "expression", 8},
    {"* * * * * * *", "expression", 13},
    {"60 * * * *", "minute", 1},
    {"* 24 * * *", "hour", 3},
    {"* * 0 * *", "day-of-month", 5},
    {"* * 32W * *", "day-of-month", 5},
    {"* * * 13 *", "month", 7},
    {"* * * FOO *", "month", 7},
    {"* * * * 8", "day-of-week", 9},
    {"60 * * * * *", "second", 1},
    {"0 * * * * 9", "day-of-week", 11},
    {"*/0 * * * *", "minute", 3},
    {"5-1 * * * *", "minute", 1},
    {"1-2-3 * * * *", "minute", 4},
    {"1,,2 * * * *", "minute", 3},
    {"1, * * * *", "minute", 3},
    {"x * * * *", "minute", 1},
    {"12345 * * * *", "minute", 1},
    {"? * * * *", "minute", 1},
    {"* * L-31 * *", "day-of-month", 7},
    {"* * L/2 * *", "day-of-month", 6},
    {"* * 1-5W * *", "day-of-month", 8},
    {"* * * * L", "day-of-week", 9},
    {"* * * * MON#6", "day-of-week", 13},
    {"* * * * 1-5#2", "day-of-week", 12},
    {"* * * * MONDAY", "day-of-week", 12},
    {"* * * * FRI-MON", "day-of-week", 9},
    {"H(5-1) * * * *", "minute", 3},
    {"H(0-7 * * * *", "minute", 6},
    {"H(0-70) * * * *", "minute", 5},
    {"* * * */2x *", "month", 10},
    {"@foo", "expression", 1},
    {"  @daily x", "expression", 10},
    {"\x01 * * * *", "minute", 1},
};

static void test_errors_name_field_and_column(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        cron_t c;
        char err[256] = "", want[64];
        int rc = cron_parse(error_cases[i].expr, "", &c, err, sizeof(err));
        if (rc != OPSC_ESYNTAX)
            fail_msg("\"%s\": rc %d, want OPSC_ESYNTAX", error_cases[i].expr, rc);
        snprintf(want, sizeof(want), "at column %d", error_cases[i].column);
        if (strncmp(err, error_cases[i].field, strlen(error_cases[i].field)) != 0 ||
            err[strlen(error_cases[i].field)] != ':' || !strstr(err, want))
            fail_msg("\"%s\": message \"%s\", want field \"%s\" and \"%s\"", error_cases[i].expr,
                     err, error_cases[i].field, want);
    }
}

static void test_overlong_expression_is_refused(void **state)
{
    (void)state;
    char expr[CRON_EXPR_MAX + 16], err[128];
    memset(expr, ' ', sizeof(expr));
    memcpy(expr, "* * * * *", 9);
    expr[sizeof(expr) - 1] = '\0';
    cron_t c;
    assert_int_equal(cron_parse(expr, NULL, &c, err, sizeof(err)), OPSC_ESYNTAX);
    assert_non_null(strstr(err, "at column 1025"));
    assert_int_equal(cron_parse("* * * * *", NULL, &c, NULL, 0), 0);
    assert_int_equal(cron_parse("bad", NULL, &c, NULL, 0), OPSC_ESYNTAX);
}

static void test_bounds_of_the_time_range(void **state)
{
    (void)state;
    cron_t c;
    parse_ok("* * * * *", NULL, &c);
    assert_int_equal(cron_next(&c, NULL, -5000), 0);
    assert_int_equal(cron_next(&c, NULL, CRON_TIME_MAX), CRON_NONE);
    assert_int_equal(cron_next(&c, NULL, INT64_MAX), CRON_NONE);
    assert_int_equal(cron_prev(&c, NULL, 0), CRON_NONE);
    assert_int_equal(cron_prev(&c, NULL, INT64_MIN), CRON_NONE);
    assert_int_equal(cron_prev(&c, NULL, 61), 60);
    assert_int_equal(cron_prev(&c, NULL, INT64_MAX), CRON_TIME_MAX - 59);
    parse_ok("0 0 30 2 *", NULL, &c);
    assert_int_equal(cron_prev(&c, zone("Europe/Berlin"), at("2025-06-01T00:00:00Z")), CRON_NONE);
    assert_int_equal(cron_next(&c, zone("Europe/Berlin"), at("2025-06-01T00:00:00Z")), CRON_NONE);
}

/* DST tables. Transitions (UTC) used below, 2025 unless said:
 *   Europe/Berlin        Mar 30 01:00 (+1 -> +2), Oct 26 01:00 (+2 -> +1); 2045: Mar 26 01:00
 *   Australia/Lord_Howe  Apr 5 15:00 (+11 -> +10:30), Oct 4 15:30 (+10:30 -> +11)
 *   America/Santiago     Apr 6 03:00 (-3 -> -4), Sep 7 04:00 (-4 -> -3, local midnight)
 *   Africa/Cairo         Apr 24 22:00 (+2 -> +3, local midnight), Oct 30 21:00 (+3 -> +2)
 *   America/Havana       Mar 9 05:00 (-5 -> -4, local midnight), Nov 2 05:00 (-4 -> -5)
 *   Europe/Dublin        Mar 30 01:00 (GMT -> IST), Oct 26 01:00 (IST -> GMT), negative DST
 *   Asia/Kathmandu       1985-12-31 18:30 (+05:30 -> +05:45, local midnight)
 *   Pacific/Apia         2011-12-30 10:00 (-10 -> +14: local 2011-12-30 never happens) */
static const struct seq_case dst_fixed_cases[] = {
    /* spring: 02:30 is skipped, fires at 03:00 CEST */
    {"30 2 * * *",
     "Europe/Berlin",
     "2025-03-29T00:00:00Z",
     {"2025-03-29T01:30:00Z", "2025-03-30T01:00:00Z", "2025-03-31T00:30:00Z"}},
    /* several skipped times of one gap fire once */
    {"0,30 2 * * *",
     "Europe/Berlin",
     "2025-03-30T00:00:00Z",
     {"2025-03-30T01:00:00Z", "2025-03-31T00:00:00Z", "2025-03-31T00:30:00Z"}},
    {"0 2,3 * * *",
     "Europe/Berlin",
     "2025-03-30T00:00:00Z",
     {"2025-03-30T01:00:00Z", "2025-03-31T00:00:00Z"}},
    /* autumn: 02:30 happens twice, fires at the first (CEST) */
    {"30 2 * * *",
     "Europe/Berlin",
     "2025-10-25T00:00:00Z",
     {"2025-10-25T00:30:00Z", "2025-10-26T00:30:00Z", "2025-10-27T01:30:00Z"}},
    {"30 2 * * *", "Europe/Berlin", "2025-10-26T00:45:00Z", {"2025-10-27T01:30:00Z"}},
    /* past the TZif table (2037): the POSIX footer rule */
    {"30 2 * * *",
     "Europe/Berlin",
     "2045-03-25T12:00:00Z",
     {"2045-03-26T01:00:00Z", "2045-03-27T00:30:00Z"}},
    {"45 1 * * *",
     "Australia/Lord_Howe",
     "2025-04-04T12:00:00Z",
     {"2025-04-04T14:45:00Z", "2025-04-05T14:45:00Z", "2025-04-06T15:15:00Z"}},
    {"15 2 * * *",
     "Australia/Lord_Howe",
     "2025-10-03T00:00:00Z",
     {"2025-10-03T15:45:00Z", "2025-10-04T15:30:00Z", "2025-10-05T15:15:00Z"}},
    /* midnight gaps: 00:00 fires at 01:00 local */
    {"0 0 * * *",
     "America/Santiago",
     "2025-09-05T12:00:00Z",
     {"2025-09-06T04:00:00Z", "2025-09-07T04:00:00Z", "2025-09-08T03:00:00Z"}},
    {"0 0 * * *",
     "America/Santiago",
     "2025-04-04T12:00:00Z",
     {"2025-04-05T03:00:00Z", "2025-04-06T04:00:00Z", "2025-04-07T04:00:00Z"}},
    {"30 23 * * *",
     "America/Santiago",
     "2025-04-04T12:00:00Z",
     {"2025-04-05T02:30:00Z", "2025-04-06T02:30:00Z", "2025-04-07T03:30:00Z"}},
    {"0 0 * * *",
     "Africa/Cairo",
     "2025-04-23T12:00:00Z",
     {"2025-04-23T22:00:00Z", "2025-04-24T22:00:00Z", "2025-04-25T21:00:00Z"}},
    {"30 23 * * *",
     "Africa/Cairo",
     "2025-10-29T12:00:00Z",
     {"2025-10-29T20:30:00Z", "2025-10-30T20:30:00Z", "2025-10-31T21:30:00Z"}},
    {"0 0 * * *",
     "America/Havana",
     "2025-03-07T12:00:00Z",
     {"2025-03-08T05:00:00Z", "2025-03-09T05:00:00Z", "2025-03-10T04:00:00Z"}},
    {"0 0 * * *",
     "America/Havana",
     "2025-10-31T12:00:00Z",
     {"2025-11-01T04:00:00Z", "2025-11-02T04:00:00Z", "2025-11-03T05:00:00Z"}},
    /* negative DST: winter GMT is the "daylight" time */
    {"30 1 * * *",
     "Europe/Dublin",
     "2025-03-28T12:00:00Z",
     {"2025-03-29T01:30:00Z", "2025-03-30T01:00:00Z", "2025-03-31T00:30:00Z"}},
    {"30 1 * * *",
     "Europe/Dublin",
     "2025-10-24T12:00:00Z",
     {"2025-10-25T00:30:00Z", "2025-10-26T00:30:00Z", "2025-10-27T01:30:00Z"}},
    {"0 9 * * *", "Asia/Kathmandu", "2025-06-01T00:00:00Z", {"2025-06-01T03:15:00Z"}},
    {"0 9 * * *", "+05:45", "2025-06-01T00:00:00Z", {"2025-06-01T03:15:00Z"}},
    {"0 0 * * *", "UTC-03:30", "2025-01-01T00:00:00Z", {"2025-01-01T03:30:00Z"}},
    {"0 0 * * *", "Etc/GMT-5", "2025-01-01T00:00:00Z", {"2025-01-01T19:00:00Z"}},
    {"0 0 * * *",
     "Asia/Kathmandu",
     "1985-12-30T00:00:00Z",
     {"1985-12-30T18:30:00Z", "1985-12-31T18:30:00Z", "1986-01-01T18:15:00Z"}},
    /* the skipped day: nothing fires on it, the 31st is normal */
    {"0 12 * * *",
     "Pacific/Apia",
     "2011-12-28T00:00:00Z",
     {"2011-12-28T22:00:00Z", "2011-12-29T22:00:00Z", "2011-12-30T22:00:00Z"}},
    {"0 0 * * *",
     "Pacific/Apia",
     "2011-12-28T00:00:00Z",
     {"2011-12-28T10:00:00Z", "2011-12-29T10:00:00Z", "2011-12-30T10:00:00Z"}},
    {"0 12 30 12 *",
     "Pacific/Apia",
     "2011-12-01T00:00:00Z",
     {"2012-12-29T22:00:00Z", "2013-12-29T22:00:00Z"}},
};

static void test_dst_fixed_time_jobs(void **state)
{
    (void)state;
    CHECK_TABLE(dst_fixed_cases);
}

static const struct seq_case dst_wild_cases[] = {
    {"0 * * * *",
     "Europe/Berlin",
     "2025-03-29T23:30:00Z",
     {"2025-03-30T00:00:00Z", "2025-03-30T01:00:00Z", "2025-03-30T02:00:00Z"}},
    {"0 * * * *",
     "Europe/Berlin",
     "2025-10-25T23:30:00Z",
     {"2025-10-26T00:00:00Z", "2025-10-26T01:00:00Z", "2025-10-26T02:00:00Z"}},
    /* both passes of the repeated hour, every real quarter hour */
    {"*/15 * * * *",
     "Europe/Berlin",
     "2025-10-26T00:20:00Z",
     {"2025-10-26T00:30:00Z", "2025-10-26T00:45:00Z", "2025-10-26T01:00:00Z",
      "2025-10-26T01:15:00Z", "2025-10-26T01:30:00Z", "2025-10-26T01:45:00Z",
      "2025-10-26T02:00:00Z"}},
    /* a wildcard job does not fire in a gap */
    {"*/15 2 * * *", "Europe/Berlin", "2025-03-29T23:00:00Z", {"2025-03-31T00:00:00Z"}},
    {"0-59/30 2 * * *",
     "Europe/Berlin",
     "2025-10-25T23:00:00Z",
     {"2025-10-26T00:00:00Z", "2025-10-26T00:30:00Z", "2025-10-26T01:00:00Z",
      "2025-10-26T01:30:00Z", "2025-10-27T01:00:00Z"}},
    {"*/15 * * * *",
     "Australia/Lord_Howe",
     "2025-04-05T14:40:00Z",
     {"2025-04-05T14:45:00Z", "2025-04-05T15:00:00Z", "2025-04-05T15:15:00Z",
      "2025-04-05T15:30:00Z"}},
    {"0 * * * *",
     "Australia/Lord_Howe",
     "2025-10-04T14:00:00Z",
     {"2025-10-04T14:30:00Z", "2025-10-04T16:00:00Z", "2025-10-04T17:00:00Z"}},
    {"30 * * * *",
     "Africa/Cairo",
     "2025-10-30T20:00:00Z",
     {"2025-10-30T20:30:00Z", "2025-10-30T21:30:00Z", "2025-10-30T22:30:00Z"}},
    {"0 * * * *",
     "America/Havana",
     "2025-11-02T03:30:00Z",
     {"2025-11-02T04:00:00Z", "2025-11-02T05:00:00Z", "2025-11-02T06:00:00Z"}},
    {"0 * * * *",
     "America/Santiago",
     "2025-09-07T02:30:00Z",
     {"2025-09-07T03:00:00Z", "2025-09-07T04:00:00Z", "2025-09-07T05:00:00Z"}},
    {"0 * * * *",
     "Europe/Dublin",
     "2025-10-25T23:30:00Z",
     {"2025-10-26T00:00:00Z", "2025-10-26T01:00:00Z", "2025-10-26T02:00:00Z"}},
    {"0 * * * *",
     "Pacific/Apia",
     "2011-12-30T08:30:00Z",
     {"2011-12-30T09:00:00Z", "2011-12-30T10:00:00Z", "2011-12-30T11:00:00Z"}},
};

static void test_dst_wildcard_jobs_follow_real_time(void **state)
{
    (void)state;
    CHECK_TABLE(dst_wild_cases);
}

#define DST_TESTS                                                                                  \
    cmocka_unit_test(test_dst_fixed_time_jobs),                                                    \
        cmocka_unit_test(test_dst_wildcard_jobs_follow_real_time)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax_forms_fire_as_documented),
        cmocka_unit_test(test_day_fields_follow_cronie_or_and_rule),
        cmocka_unit_test(test_hash_is_stable_per_seed_and_spreads),
        cmocka_unit_test(test_hash_step_and_range_forms),
        cmocka_unit_test(test_wildcard_classification),
        cmocka_unit_test(test_errors_name_field_and_column),
        cmocka_unit_test(test_overlong_expression_is_refused),
        cmocka_unit_test(test_bounds_of_the_time_range),
        DST_TESTS,
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tz_cache_clear();
    return rc;
}
