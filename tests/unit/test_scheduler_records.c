/* test_scheduler_records.c - validating schedule bodies, and the times (with DST notes) that
 * previews answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <opsc/errors.h>

#include "schedule.h"
#include "test_scheduler.h"

static const char *ID = "0190a0a0-1111-7000-8000-000000000001";

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    if (!v)
        fail_msg("bad JSON in test: %s", je.text);
    return v;
}

/* Merge `body` into `existing` (NULL: create); the error when it fails. */
static int merge(const char *existing, const char *body, json_t **out, sched_field_error *e)
{
    json_t *b = parse(body), *x = existing ? parse(existing) : NULL;
    *out = NULL;
    memset(e, 0, sizeof(*e));
    int rc = sched_record_merge(x, b, ID, out, e);
    json_decref(b);
    json_decref(x);
    return rc;
}

static void expect_error(const char *body, const char *field, const char *code, const char *msg)
{
    json_t *out;
    sched_field_error e;
    assert_int_equal(merge(NULL, body, &out, &e), OPSC_ESCHEMA);
    assert_null(out);
    assert_string_equal(e.field, field);
    assert_string_equal(e.code, code);
    assert_contains(e.msg, msg);
}

static void a_new_record_gets_every_default(void **state)
{
    (void)state;
    json_t *r;
    sched_field_error e;
    assert_int_equal(merge(NULL, "{\"job_id\": \"j\", \"cron\": \"H H * * *\"}", &r, &e), 0);
    assert_string_equal(json_string_value(json_object_get(r, "timezone")), "UTC");
    assert_true(json_is_true(json_object_get(r, "enabled")));
    assert_string_equal(json_string_value(json_object_get(r, "misfire_policy")), "run_once");
    assert_string_equal(json_string_value(json_object_get(r, "overlap_policy")), "forbid");
    const char *nulls[] = {"params",          "targets",       "start_at",   "end_at",
                           "misfire_grace_s", "overlap_limit", "description"};
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        assert_true(json_is_null(json_object_get(r, nulls[i])));
    json_decref(r);
}

static void bad_members_are_named(void **state)
{
    (void)state;
    expect_error("{\"cron\": \"* * * * *\"}", "job_id", "invalid_schedule", "job_id is required");
    expect_error("{\"job_id\": \"j\", \"cron\": \"0 24 * * *\"}", "cron", "invalid_cron",
                 "cron: hour: value 24 out of range 0-23 at column 3");
    expect_error("{\"job_id\": \"j\", \"cron\": \"0 0 * * * * *\"}", "cron", "invalid_cron",
                 "cron: ");
    expect_error("{\"job_id\": \"j\", \"cron\": 5}", "cron", "invalid_cron",
                 "cron must be a cron expression");
    expect_error("{\"job_id\": \"j\", \"cron\": \"* * * * *\", \"timezone\": \"Mars/Olympus\"}",
                 "timezone", "invalid_timezone", "timezone: unknown time zone 'Mars/Olympus'");
    expect_error("{\"job_id\": \"j\", \"cron\": \"* * * * *\", \"timezone\": \"../etc/passwd\"}",
                 "timezone", "invalid_timezone", "timezone: ");
    expect_error("{\"job_id\": \"j\", \"cron\": \"* * * * *\", \"misfire_policy\": \"later\"}",
                 "misfire_policy", "invalid_schedule", "skip, run_once, run_all");
    expect_error("{\"job_id\": \"j\", \"cron\": \"* * * * *\", \"overlap_policy\": \"both\"}",
                 "overlap_policy", "invalid_schedule", "allow, forbid, replace, queue");
    expect_error("{\"job_id\": \"j\", \"cron\": \"* * * * *\", \"overlap_limit\": 0}",
                 "overlap_limit", "invalid_schedule", "from 1 to 1000");
    expect_error("{\"job_id\": \"j\", \"cron\": \"* * * * *\", \"start_at\": \"tomorrow\"}",
                 "start_at", "invalid_schedule", "RFC 3339");
    expect_error("{\"job_id\": \"j\", \"cron\": \"* * * * *\", \"start_at\": "
                 "\"2025-01-02T00:00:00Z\", \"end_at\": \"2025-01-01T00:00:00Z\"}",
                 "end_at", "invalid_schedule", "later than start_at");
    expect_error("{\"job_id\": \"j\", \"cron\": \"* * * * *\", \"targets\": {\"hosts\": []}}",
                 "targets", "invalid_schedule", "targets.hosts");
    expect_error("{\"job_id\": \"j\", \"cron\": \"* * * * *\", \"enabled\": \"yes\"}", "enabled",
                 "invalid_schedule", "true or false");
    expect_error("{\"job_id\": \"j\", \"cron\": \"* * * * *\", \"when\": 1}", "when",
                 "invalid_schedule", "unknown field 'when'");
    expect_error("{\"job_id\": \"j\", \"cron\": \"* * * * *\", \"params\": [1]}", "params",
                 "invalid_schedule", "params must be an object");
}

static void an_update_merges_and_null_clears(void **state)
{
    (void)state;
    const char *stored =
        "{\"id\": \"x\", \"version\": 3, \"job_id\": \"j\", \"cron\": \"0 * * * *\","
        " \"timezone\": \"UTC\", \"enabled\": true, \"misfire_policy\": \"skip\","
        " \"overlap_policy\": \"queue\", \"description\": \"old\", \"params\": "
        "{\"a\": 1}, \"targets\": null, \"start_at\": null, \"end_at\": null,"
        " \"misfire_grace_s\": 60, \"overlap_limit\": 2}";
    json_t *r;
    sched_field_error e;
    assert_int_equal(merge(stored,
                           "{\"description\": null, \"start_at\": \"2025-01-01T01:00:00+01:00\", "
                           "\"version\": 1, \"status\": {}, \"timezone\": \"+05:45\"}",
                           &r, &e),
                     0);
    assert_true(json_is_null(json_object_get(r, "description")));
    assert_string_equal(json_string_value(json_object_get(r, "start_at")),
                        "2025-01-01T00:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(r, "timezone")), "+05:45");
    assert_string_equal(json_string_value(json_object_get(r, "misfire_policy")), "skip");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "params"), "a")), 1);
    assert_int_equal(json_integer_value(json_object_get(r, "version")), 3); /* the store's */
    json_decref(r);
    assert_int_equal(merge(stored, "{\"cron\": null}", &r, &e), OPSC_ESCHEMA);
    assert_string_equal(e.msg, "cron cannot be null");
}

static void h_fields_hash_the_schedule_id(void **state)
{
    (void)state;
    sched_defaults d = {HOUR_MS, 10};
    json_t *a = parse("{\"id\": \"s-1\", \"job_id\": \"j\", \"cron\": \"H H * * *\", "
                      "\"misfire_policy\": \"run_once\", \"overlap_policy\": \"allow\"}");
    json_t *b = json_deep_copy(a);
    json_object_set_new(b, "id", json_string("s-2"));
    sched_def da, db, da2;
    char err[128];
    assert_int_equal(sched_def_parse(a, &d, &da, err, sizeof(err)), 0);
    assert_int_equal(sched_def_parse(a, &d, &da2, err, sizeof(err)), 0);
    assert_int_equal(sched_def_parse(b, &d, &db, err, sizeof(err)), 0);
    assert_memory_equal(&da.cron, &da2.cron, sizeof(da.cron));     /* stable */
    assert_true(memcmp(&da.cron, &db.cron, sizeof(da.cron)) != 0); /* spread across ids */
    assert_int_equal(da.grace_ms, HOUR_MS);
    assert_int_equal(da.overlap_limit, 10);
    sched_def_clear(&da);
    sched_def_clear(&da2);
    sched_def_clear(&db);
    json_decref(a);
    json_decref(b);
}

/* ---- previews -------------------------------------------------------------------------------- */

static json_t *times(const char *cron, const char *zone, const char *from, int count)
{
    cron_t c;
    const tz_t *tz;
    sched_field_error e;
    assert_int_equal(sched_cron_check(cron, NULL, "cron", &c, &e), 0);
    assert_int_equal(sched_tz_check(zone, "timezone", &tz, &e), 0);
    json_t *out = sched_times_json(&c, tz, sfx_at(from) / 1000, CRON_TIME_MAX, count);
    assert_non_null(out);
    return out;
}

static const char *field(json_t *out, size_t i, const char *key)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(out, "times"), i), key));
}

static void previews_show_the_dst_rule_in_each_zone(void **state)
{
    (void)state;
    json_t *o = times("30 2 * * *", "Europe/Berlin", "2025-10-25T12:00:00Z", 2);
    assert_string_equal(field(o, 0, "utc"), "2025-10-26T00:30:00Z");
    assert_string_equal(field(o, 0, "local"), "2025-10-26T02:30:00+02:00");
    assert_string_equal(field(o, 0, "abbr"), "CEST");
    assert_contains(field(o, 0, "note"), "occurs twice (clocks move back); a fixed-time job "
                                         "fires once, at the first occurrence");
    assert_null(field(o, 1, "note"));
    json_decref(o);

    o = times("0 2 * * *", "Australia/Lord_Howe", "2025-10-04T00:00:00Z", 1);
    assert_string_equal(field(o, 0, "utc"), "2025-10-04T15:30:00Z");
    assert_string_equal(field(o, 0, "local"), "2025-10-05T02:30:00+11:00");
    assert_contains(field(o, 0, "note"), "02:00 local time did not exist");
    json_decref(o);

    o = times("*/30 * * * *", "Australia/Lord_Howe", "2025-04-05T14:20:00Z", 3);
    assert_string_equal(field(o, 0, "local"), "2025-04-06T01:30:00+11:00");
    assert_contains(field(o, 0, "note"), "a wildcard job fires in both passes: this is the first");
    assert_string_equal(field(o, 1, "local"), "2025-04-06T01:30:00+10:30");
    assert_contains(field(o, 1, "note"), "this is the second");
    assert_string_equal(field(o, 2, "local"), "2025-04-06T02:00:00+10:30");
    json_decref(o);

    o = times("0 0 * * *", "America/Santiago", "2025-09-06T12:00:00Z", 1);
    assert_string_equal(field(o, 0, "utc"), "2025-09-07T04:00:00Z");
    assert_string_equal(field(o, 0, "local"), "2025-09-07T01:00:00-03:00");
    assert_contains(field(o, 0, "note"), "00:00 local time did not exist");
    json_decref(o);

    o = times("0 12 * * *", "Pacific/Apia", "2011-12-29T00:00:00Z", 2);
    assert_string_equal(field(o, 0, "local"), "2011-12-29T12:00:00-10:00");
    assert_string_equal(field(o, 1, "local"), "2011-12-31T12:00:00+14:00"); /* no 30th */
    assert_string_equal(field(o, 1, "utc"), "2011-12-30T22:00:00Z");
    json_decref(o);

    o = times("45 5 * * *", "Asia/Kathmandu", "2025-01-01T00:00:00Z", 1);
    assert_string_equal(field(o, 0, "utc"), "2025-01-02T00:00:00Z");
    assert_string_equal(field(o, 0, "local"), "2025-01-02T05:45:00+05:45");
    json_decref(o);
}

const struct CMUnitTest sched_record_tests[] = {
    cmocka_unit_test(a_new_record_gets_every_default),
    cmocka_unit_test(bad_members_are_named),
    cmocka_unit_test(an_update_merges_and_null_clears),
    cmocka_unit_test(h_fields_hash_the_schedule_id),
    cmocka_unit_test(previews_show_the_dst_rule_in_each_zone),
};
const size_t sched_record_test_count = sizeof(sched_record_tests) / sizeof(sched_record_tests[0]);
