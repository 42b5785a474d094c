/* test_tz.c - zone loading, caching, UTC<->local conversion, POSIX rules and TZif decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "tz.h"
#include "tz_internal.h"
#include "sched_test.h"
#include "util.h"

static void expect_local(const tz_t *tz, const char *utc, int32_t utoff, bool dst, const char *abbr)
{
    tz_info_t info;
    tz_utc_to_local(tz, at(utc), &info);
    if (info.utoff != utoff || info.is_dst != dst || strcmp(info.abbr, abbr) != 0)
        fail_msg("%s at %s: got %d %d %s, want %d %d %s", tz_name(tz), utc, info.utoff, info.is_dst,
                 info.abbr, utoff, dst, abbr);
}

static void test_get_shares_one_zone_per_name(void **state)
{
    (void)state;
    const tz_t *a = zone("Europe/Paris"), *b = zone("Europe/Paris");
    assert_ptr_equal(a, b);
    assert_string_equal(tz_name(a), "Europe/Paris");
    assert_ptr_equal(zone("UTC"), tz_utc());
    assert_string_equal(tz_name(tz_utc()), "UTC");
}

static void test_unknown_and_malformed_names_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int rc;
    } cases[] = {
        {"Mars/Olympus_Mons", OPSC_ENOENT},
        {"Europe", OPSC_ENOENT},
        {"Europe/Pariss", OPSC_ENOENT},
        {"../../etc/passwd", OPSC_EINVAL},
        {"/etc/localtime", OPSC_EINVAL},
        {"zone.tab", OPSC_EINVAL},
        {"", OPSC_EINVAL},
        {"Europe//Paris", OPSC_EINVAL},
        {"Europe/Paris/", OPSC_EINVAL},
        {"Europe/Par is", OPSC_EINVAL},
        {"+24:00", OPSC_EINVAL},
        {"+5:45", OPSC_EINVAL},
        {"+05:60", OPSC_EINVAL},
        {"UTC+1", OPSC_EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const tz_t *tz = NULL;
        char err[256] = "";
        int rc = tz_get(cases[i].name, &tz, err, sizeof(err));
        if (rc != cases[i].rc || err[0] == '\0')
            fail_msg("tz_get(\"%s\") = %d (%s), want %d", cases[i].name, rc, err, cases[i].rc);
    }
    char err[256];
    const tz_t *tz;
    assert_int_equal(tz_get("Mars/Olympus_Mons", &tz, err, sizeof(err)), OPSC_ENOENT);
    assert_non_null(strstr(err, "unknown time zone \"Mars/Olympus_Mons\""));
    assert_int_equal(tz_get(NULL, &tz, NULL, 0), OPSC_EINVAL);
}

static void test_fixed_offsets(void **state)
{
    (void)state;
    expect_local(zone("+05:45"), "2025-06-01T00:00:00Z", 20700, false, "+0545");
    expect_local(zone("+0545"), "2025-06-01T00:00:00Z", 20700, false, "+0545");
    expect_local(zone("-03:00"), "2025-06-01T00:00:00Z", -10800, false, "-03");
    expect_local(zone("+05"), "2025-06-01T00:00:00Z", 18000, false, "+05");
    expect_local(zone("UTC-03:30"), "2025-06-01T00:00:00Z", -12600, false, "-0330");
    expect_local(zone("UTC+14:00"), "2025-06-01T00:00:00Z", 50400, false, "+14");
    expect_local(zone("Etc/GMT-5"), "2025-06-01T00:00:00Z", 18000, false, "+05");
    expect_local(tz_utc(), "2025-06-01T00:00:00Z", 0, false, "UTC");
}

static void test_utc_to_local_in_real_zones(void **state)
{
    (void)state;
    const tz_t *berlin = zone("Europe/Berlin");
    expect_local(berlin, "2025-01-15T12:00:00Z", 3600, false, "CET");
    expect_local(berlin, "2025-07-15T12:00:00Z", 7200, true, "CEST");
    expect_local(berlin, "2025-03-30T00:59:59Z", 3600, false, "CET");
    expect_local(berlin, "2025-03-30T01:00:00Z", 7200, true, "CEST");
    expect_local(berlin, "2060-07-01T00:00:00Z", 7200, true, "CEST"); /* footer rule */
    expect_local(berlin, "1850-01-01T00:00:00Z", 3208, false, "LMT"); /* before the table */
    const tz_t *dublin = zone("Europe/Dublin");                       /* negative DST */
    expect_local(dublin, "2025-01-15T12:00:00Z", 0, true, "GMT");
    expect_local(dublin, "2025-07-15T12:00:00Z", 3600, false, "IST");
    expect_local(dublin, "2050-01-15T12:00:00Z", 0, true, "GMT");
    expect_local(zone("Australia/Lord_Howe"), "2025-01-15T00:00:00Z", 39600, true, "+11");
    expect_local(zone("Australia/Lord_Howe"), "2025-07-15T00:00:00Z", 37800, false, "+1030");
    expect_local(zone("Asia/Kathmandu"), "2025-07-15T00:00:00Z", 20700, false, "+0545");
    expect_local(zone("Asia/Kathmandu"), "1985-12-31T18:29:59Z", 19800, false, "+0530");
    expect_local(zone("Pacific/Apia"), "2011-12-30T09:59:59Z", -36000, true, "-10");
    expect_local(zone("Pacific/Apia"), "2011-12-30T10:00:00Z", 50400, true, "+14");
}

static void expect_resolve(const tz_t *tz, const char *local, tz_kind kind, const char *first,
                           const char *second)
{
    tz_resolution_t r;
    tz_local_to_utc(tz, at(local), &r);
    if (r.kind != kind || r.first != at(first) || r.second != at(second))
        fail_msg("%s local %s: got kind %d %lld %lld, want %d %lld %lld", tz_name(tz), local,
                 r.kind, (long long)r.first, (long long)r.second, kind, (long long)at(first),
                 (long long)at(second));
}

/* Local readings are written as "Z" times: the wall clock read as if UTC. */
static void test_local_to_utc_resolves_gaps_and_overlaps(void **state)
{
    (void)state;
    const tz_t *b = zone("Europe/Berlin");
    expect_resolve(b, "2025-06-01T12:00:00Z", TZ_UNIQUE, "2025-06-01T10:00:00Z",
                   "2025-06-01T10:00:00Z");
    expect_resolve(b, "2025-03-30T02:30:00Z", TZ_GAP, "2025-03-30T01:00:00Z",
                   "2025-03-30T01:00:00Z");
    expect_resolve(b, "2025-03-30T03:00:00Z", TZ_UNIQUE, "2025-03-30T01:00:00Z",
                   "2025-03-30T01:00:00Z");
    expect_resolve(b, "2025-10-26T02:30:00Z", TZ_OVERLAP, "2025-10-26T00:30:00Z",
                   "2025-10-26T01:30:00Z");
    expect_resolve(b, "2045-10-29T02:00:00Z", TZ_OVERLAP, "2045-10-29T00:00:00Z",
                   "2045-10-29T01:00:00Z");
    const tz_t *lh = zone("Australia/Lord_Howe");
    expect_resolve(lh, "2025-10-05T02:15:00Z", TZ_GAP, "2025-10-04T15:30:00Z",
                   "2025-10-04T15:30:00Z");
    expect_resolve(lh, "2025-04-06T01:45:00Z", TZ_OVERLAP, "2025-04-05T14:45:00Z",
                   "2025-04-05T15:15:00Z");
    const tz_t *apia = zone("Pacific/Apia");
    expect_resolve(apia, "2011-12-30T12:00:00Z", TZ_GAP, "2011-12-30T10:00:00Z",
                   "2011-12-30T10:00:00Z");
    expect_resolve(zone("America/Santiago"), "2025-09-07T00:00:00Z", TZ_GAP, "2025-09-07T04:00:00Z",
                   "2025-09-07T04:00:00Z");
    expect_resolve(zone("Europe/Dublin"), "2025-10-26T01:30:00Z", TZ_OVERLAP,
                   "2025-10-26T00:30:00Z", "2025-10-26T01:30:00Z");
    expect_resolve(tz_utc(), "2025-10-26T01:30:00Z", TZ_UNIQUE, "2025-10-26T01:30:00Z",
                   "2025-10-26T01:30:00Z");
}

static void test_period_reports_transition_bounds(void **state)
{
    (void)state;
    tz_period_t p;
    tz_period_at(zone("Europe/Berlin"), at("2025-07-01T00:00:00Z"), &p);
    assert_int_equal(p.start, at("2025-03-30T01:00:00Z"));
    assert_int_equal(p.end, at("2025-10-26T01:00:00Z"));
    assert_int_equal(p.utoff, 7200);
    assert_int_equal(p.prev_utoff, 3600);
    tz_period_at(zone("Europe/Berlin"), at("2050-12-01T00:00:00Z"), &p);
    assert_int_equal(p.start, at("2050-10-30T01:00:00Z"));
    assert_int_equal(p.end, at("2051-03-26T01:00:00Z"));
    assert_int_equal(p.utoff - p.prev_utoff, -3600);
    tz_period_at(tz_utc(), 0, &p);
    assert_true(p.start == INT64_MIN && p.end == INT64_MAX && p.utoff == 0);
    assert_int_equal(tz_min_utoff(zone("Pacific/Apia")), -41400); /* -11:30 until 1950 */
    assert_int_equal(tz_max_utoff(zone("Pacific/Apia")), 50400);
}

static tz_t *posix(const char *spec)
{
    tz_t *tz = NULL;
    char err[256] = "";
    if (tz_posix_new(spec, &tz, err, sizeof(err)))
        fail_msg("tz_posix_new(%s): %s", spec, err);
    return tz;
}

static void expect_transition(const tz_t *tz, const char *utc, int32_t before, int32_t after)
{
    tz_period_t p;
    tz_period_at(tz, at(utc), &p);
    if (p.start != at(utc) || p.prev_utoff != before || p.utoff != after)
        fail_msg("%s: no %d -> %d transition at %s (period starts %lld, %d -> %d)", tz_name(tz),
                 before, after, utc, (long long)p.start, p.prev_utoff, p.utoff);
}

static void test_posix_rule_forms(void **state)
{
    (void)state;
    tz_t *tz = posix("CET-1CEST,M3.5.0,M10.5.0/3");
    expect_transition(tz, "2025-03-30T01:00:00Z", 3600, 7200);
    expect_transition(tz, "2025-10-26T01:00:00Z", 7200, 3600);
    tz_free(tz);
    tz = posix("EST5EDT,J60/2,J300/2"); /* Jn never counts Feb 29 */
    expect_transition(tz, "2024-03-01T07:00:00Z", -18000, -14400);
    expect_transition(tz, "2025-03-01T07:00:00Z", -18000, -14400);
    expect_transition(tz, "2025-10-27T06:00:00Z", -14400, -18000);
    tz_free(tz);
    tz = posix("EST5EDT,59/2,300/2"); /* n counts Feb 29 */
    expect_transition(tz, "2024-02-29T07:00:00Z", -18000, -14400);
    expect_transition(tz, "2025-03-01T07:00:00Z", -18000, -14400);
    tz_free(tz);
    tz = posix("<-02>2<-01>,M3.5.0/-1,M10.5.0/0"); /* America/Nuuk: negative time */
    expect_transition(tz, "2025-03-30T01:00:00Z", -7200, -3600);
    expect_transition(tz, "2025-10-26T01:00:00Z", -3600, -7200);
    tz_free(tz);
    tz = posix("AAA3BBB,M3.2.0/25,M11.1.0/26"); /* times past 24:00 */
    expect_transition(tz, "2025-03-10T04:00:00Z", -10800, -7200);
    expect_transition(tz, "2025-11-03T04:00:00Z", -7200, -10800);
    tz_free(tz);
    tz = posix("AAA3BBB,M3.2.0/167,M11.1.0/-167");
    expect_transition(tz, "2025-03-16T02:00:00Z", -10800, -7200);
    expect_transition(tz, "2025-10-26T03:00:00Z", -7200, -10800);
    tz_free(tz);
    tz = posix("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0"); /* southern, half hour */
    expect_transition(tz, "2025-04-05T15:00:00Z", 39600, 37800);
    expect_transition(tz, "2025-10-04T15:30:00Z", 37800, 39600);
    tz_free(tz);
    tz = posix("EST5EDT"); /* no dates: US rules, as glibc */
    expect_transition(tz, "2025-03-09T07:00:00Z", -18000, -14400);
    tz_free(tz);
    tz = posix("<+0545>-5:45");
    expect_local(tz, "2025-03-09T07:00:00Z", 20700, false, "+0545");
    tz_free(tz);
}

static void test_posix_all_year_dst_has_no_fake_gap(void **state)
{
    (void)state;
    tz_t *tz = posix("EST5EDT,0/0,J365/25");
    const char *when[] = {"2025-01-01T00:00:00Z", "2025-01-01T05:00:00Z", "2025-07-01T00:00:00Z",
                          "2025-12-31T23:59:59Z", "2026-01-01T04:30:00Z"};
    for (size_t i = 0; i < sizeof(when) / sizeof(when[0]); i++)
        expect_local(tz, when[i], -14400, true, "EDT");
    tz_resolution_t r;
    tz_local_to_utc(tz, at("2026-01-01T00:30:00Z"), &r);
    assert_int_equal(r.kind, TZ_UNIQUE);
    assert_int_equal(r.first, at("2026-01-01T04:30:00Z"));
    tz_free(tz);
}

static void test_posix_errors_give_position(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *where;
    } cases[] = {
        {"", "position 1"},
        {"CE1", "position 1"},
        {"CET", "position 4"},
        {"CET-25", "position 7"},
        {"CET-1CEST,M13.1.0,M10.5.0", "position 14"},
        {"CET-1CEST,M3.6.0,M10.5.0", "position 15"},
        {"CET-1CEST,M3.5.7,M10.5.0", "position 17"},
        {"CET-1CEST,J0,J5", "position 13"},
        {"CET-1CEST,366,5", "position 14"},
        {"CET-1CEST,M3.5.0/168,M10.5.0", "position 21"},
        {"CET-1CEST,M3.5.0", "position 17"},
        {"<+05", "position 5"},
        {"CET-1CEST,M3.5.0,M10.5.0x", "position 25"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tz_t *tz = NULL;
        char err[256] = "";
        int rc = tz_posix_new(cases[i].spec, &tz, err, sizeof(err));
        if (rc != OPSC_ESYNTAX || !strstr(err, cases[i].where))
            fail_msg("\"%s\": rc %d \"%s\", want OPSC_ESYNTAX at %s", cases[i].spec, rc, err,
                     cases[i].where);
        assert_null(tz);
    }
}

/* The fat TZif tables run to 2037 and were generated from the same rule as
 * the footer: evaluating the footer alone must agree with them hour by hour. */
static void test_footer_rule_agrees_with_table(void **state)
{
    (void)state;
    const char *zones[] = {"Europe/Berlin",    "Europe/Dublin",   "Australia/Lord_Howe",
                           "America/Santiago", "America/Havana",  "Africa/Cairo",
                           "America/Nuuk",     "America/New_York"};
    for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
        char path[256], *data = NULL;
        size_t len = 0;
        snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", zones[i]);
        assert_int_equal(fs_read_file(path, 1 << 20, &data, &len), 0);
        data[len - 1] = '\0'; /* the footer is the binary file's last line */
        tz_t *rule = posix((char *)memrchr(data, '\n', len - 1) + 1);
        const tz_t *table = zone(zones[i]);
        for (int64_t t = at("2026-01-01T00:00:00Z"); t < at("2037-12-01T00:00:00Z"); t += 1800) {
            tz_info_t a, b;
            tz_utc_to_local(table, t, &a);
            tz_utc_to_local(rule, t, &b);
            if (a.utoff != b.utoff || a.is_dst != b.is_dst || strcmp(a.abbr, b.abbr) != 0)
                fail_msg("%s at %lld: table %d %s, rule %d %s", zones[i], (long long)t, a.utoff,
                         a.abbr, b.utoff, b.abbr);
        }
        tz_free(rule);
        free(data);
    }
}

/* Real footers take the one-year fast path; the general path (five years of
 * events, sorted) must give the same periods. */
static void test_rule_fast_path_agrees_with_general_path(void **state)
{
    (void)state;
    const char *rules[] = {
        "CET-1CEST,M3.5.0,M10.5.0/3",           "IST-1GMT0,M10.5.0,M3.5.0/1",
        "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "<-04>4<-03>,M9.1.6/24,M4.1.6/24",
        "EET-2EEST,M3.4.4/50,M10.4.4/50",       "<-02>2<-01>,M3.5.0/-1,M10.5.0/0"};
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        tz_t *fast = posix(rules[i]), *slow = posix(rules[i]);
        assert_true(fast->rule.simple);
        slow->rule.simple = false;
        for (int64_t t = at("2030-01-01T00:00:00Z"); t < at("2034-01-01T00:00:00Z"); t += 3600) {
            tz_period_t a, b;
            tz_period_at(fast, t, &a);
            tz_period_at(slow, t, &b);
            if (a.start != b.start || a.end != b.end || a.utoff != b.utoff ||
                a.prev_utoff != b.prev_utoff)
                fail_msg("%s at %lld: fast [%lld %lld) %d<-%d, general [%lld %lld) %d<-%d",
                         rules[i], (long long)t, (long long)a.start, (long long)a.end, a.utoff,
                         a.prev_utoff, (long long)b.start, (long long)b.end, b.utoff, b.prev_utoff);
        }
        tz_free(fast);
        tz_free(slow);
    }
}

/* A TZif v2+ file: empty v1 block, then the given v2 data. */
static size_t tzif_build(uint8_t *out, char version, uint32_t leap, uint32_t ntrans,
                         const int64_t *trans, const uint8_t *idx, const char *footer)
{
    uint8_t *p = out;
    const uint32_t v1[6] = {0, 0, 0, 0, 1, 4};
    const uint32_t v2[6] = {0, 0, leap, ntrans, 2, 8};
    for (int h = 0; h < 2; h++) {
        memcpy(p, "TZif", 4);
        p[4] = (uint8_t)version;
        memset(p + 5, 0, 15);
        p += 20;
        for (int i = 0; i < 6; i++, p += 4) {
            uint32_t v = h ? v2[i] : v1[i];
            p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
        }
        if (h == 0) { /* v1 block: one type, "UTC" */
            memcpy(p, "\0\0\0\0\0\0UTC", 10);
            p += 10;
        }
    }
    for (uint32_t i = 0; i < ntrans; i++, p += 8) {
        for (int b = 0; b < 8; b++)
            p[b] = (uint8_t)((uint64_t)trans[i] >> (56 - 8 * b));
    }
    memcpy(p, idx, ntrans);
    p += ntrans;
    memcpy(p,
           "\0\0\0\0\0\0"
           "\0\0\x0e\x10\1\4"
           "STD\0DST\0",
           20); /* +0 STD, +1h DST */
    p += 20;
    memset(p, 0, leap * 12);
    p += leap * 12;
    size_t n = strlen(footer);
    memcpy(p, footer, n);
    return (size_t)(p - out) + n;
}

static int tzif_try(const uint8_t *buf, size_t len, tz_t **out)
{
    char err[256] = "";
    int rc = tz_tzif_new("Test/Zone", buf, len, out, err, sizeof(err));
    if (rc)
        assert_true(strncmp(err, "TZif: ", 6) == 0 || strncmp(err, "POSIX TZ", 8) == 0);
    return rc;
}

static void test_tzif_decoding_and_refusals(void **state)
{
    (void)state;
    uint8_t buf[512];
    const int64_t tr[2] = {1000, 2000}, bad[2] = {2000, 1000};
    const uint8_t idx[2] = {1, 0}, badidx[2] = {1, 2};
    tz_t *tz = NULL;
    size_t n = tzif_build(buf, '2', 0, 2, tr, idx, "\nSTD0\n");
    assert_int_equal(tzif_try(buf, n, &tz), 0);
    expect_local(tz, "1970-01-01T00:16:40Z", 3600, true, "DST");
    expect_local(tz, "1970-01-01T00:33:20Z", 0, false, "STD");
    tz_free(tz);
    n = tzif_build(buf, '3', 0, 2, tr, idx, "\n\n"); /* no rule: last type stays */
    assert_int_equal(tzif_try(buf, n, &tz), 0);
    expect_local(tz, "2500-01-01T00:00:00Z", 0, false, "STD");
    tz_free(tz);
    tz = NULL;
    n = tzif_build(buf, '2', 0, 2, tr, idx, "\nSTD0\n");
    assert_int_equal(tzif_try(buf, n - 1, &tz), OPSC_ECORRUPT); /* unterminated footer */
    assert_int_equal(tzif_try(buf, 60, &tz), OPSC_ECORRUPT);    /* truncated */
    buf[4] = 0;
    assert_int_equal(tzif_try(buf, n, &tz), OPSC_ENOTSUP); /* version 1 */
    n = tzif_build(buf, '2', 1, 2, tr, idx, "\nSTD0\n");
    assert_int_equal(tzif_try(buf, n, &tz), OPSC_ENOTSUP); /* leap seconds */
    n = tzif_build(buf, '2', 0, 2, bad, idx, "\nSTD0\n");
    assert_int_equal(tzif_try(buf, n, &tz), OPSC_ECORRUPT); /* not ascending */
    n = tzif_build(buf, '2', 0, 2, tr, badidx, "\nSTD0\n");
    assert_int_equal(tzif_try(buf, n, &tz), OPSC_ECORRUPT); /* type out of range */
    n = tzif_build(buf, '2', 0, 2, tr, idx, "\nST0\n");
    assert_int_equal(tzif_try(buf, n, &tz), OPSC_ECORRUPT); /* bad footer rule */
    memcpy(buf, "TZjf", 4);
    assert_int_equal(tzif_try(buf, n, &tz), OPSC_ECORRUPT);
    assert_null(tz);
}

static void test_tzdir_overrides_the_zoneinfo_folder(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_tz_XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/Test", dir);
    assert_int_equal(fs_mkdir_p(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/Test/Zone", dir);
    uint8_t buf[512];
    const int64_t tr[2] = {1000, 2000};
    const uint8_t idx[2] = {1, 0};
    size_t n = tzif_build(buf, '2', 0, 2, tr, idx, "\nSTD0\n");
    assert_int_equal(fs_write_file(path, buf, n, 0644), 0);
    assert_int_equal(setenv("TZDIR", dir, 1), 0);
    const tz_t *tz = zone("Test/Zone");
    expect_local(tz, "1970-01-01T00:16:40Z", 3600, true, "DST");
    unsetenv("TZDIR");
    unlink(path);
    snprintf(path, sizeof(path), "%s/Test", dir);
    rmdir(path);
    rmdir(dir);
}

#define THREADS 8

static void *get_zones(void *arg)
{
    const tz_t **out = arg;
    const char *names[] = {"Europe/Berlin", "America/Santiago", "Asia/Kathmandu", "+05:45"};
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 4; i++) {
            if (tz_get(names[i], &out[i], NULL, 0))
                out[i] = NULL;
        }
    }
    return NULL;
}

static void test_concurrent_gets_share_zones(void **state)
{
    (void)state;
    tz_cache_clear();
    pthread_t th[THREADS];
    const tz_t *got[THREADS][4];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, get_zones, got[i]), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < THREADS; i++) {
        for (int k = 0; k < 4; k++) {
            assert_non_null(got[i][k]);
            assert_ptr_equal(got[i][k], got[0][k]);
        }
    }
    tz_cache_clear();
    expect_local(zone("Europe/Berlin"), "2025-07-15T12:00:00Z", 7200, true, "CEST");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_shares_one_zone_per_name),
        cmocka_unit_test(test_unknown_and_malformed_names_are_refused),
        cmocka_unit_test(test_fixed_offsets),
        cmocka_unit_test(test_utc_to_local_in_real_zones),
        cmocka_unit_test(test_local_to_utc_resolves_gaps_and_overlaps),
        cmocka_unit_test(test_period_reports_transition_bounds),
        cmocka_unit_test(test_posix_rule_forms),
        cmocka_unit_test(test_posix_all_year_dst_has_no_fake_gap),
        cmocka_unit_test(test_posix_errors_give_position),
        cmocka_unit_test(test_footer_rule_agrees_with_table),
        cmocka_unit_test(test_rule_fast_path_agrees_with_general_path),
        cmocka_unit_test(test_tzif_decoding_and_refusals),
        cmocka_unit_test(test_tzdir_overrides_the_zoneinfo_folder),
        cmocka_unit_test(test_concurrent_gets_share_zones),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tz_cache_clear();
    return rc;
}
