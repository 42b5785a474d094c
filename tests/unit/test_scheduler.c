/* test_scheduler.c - the scheduling service: a year across DST in several zones, misfires after a
 * restart, wall-clock jumps, windows, pause and resume, record validation, previews. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "sched_fixture.h"
#include "test_scheduler.h"
#include "util.h"

/* ---- helpers ------------------------------------------------------------------------------ */

size_t started_between(sfx *f, const char *id, int64_t from, int64_t to)
{
    size_t n = 0;
    for (const rec_run *r = NULL; (r = exec_recorder_next(f->ex, id, false, r));)
        n += r->planned_ms >= from && r->planned_ms < to;
    return n;
}

bool started_at(sfx *f, const char *id, const char *rfc)
{
    int64_t t = sfx_at(rfc);
    for (const rec_run *r = NULL; (r = exec_recorder_next(f->ex, id, false, r));)
        if (r->planned_ms == t)
            return true;
    return false;
}

void assert_on_time(sfx *f, const char *id)
{
    size_t i = 0;
    for (const rec_run *r = NULL; (r = exec_recorder_next(f->ex, id, false, r)); i++)
        if (r->created_ms != r->planned_ms)
            fail_msg("run %zu of %s planned %lld created %lld", i, id, (long long)r->planned_ms,
                     (long long)r->created_ms);
}

void assert_contains(const char *text, const char *needle)
{
    if (!text || !strstr(text, needle))
        fail_msg("\"%s\" not in \"%s\"", needle, text ? text : "(null)");
}

static const char *missed_reason(sfx *f, const char *id, size_t i)
{
    const rec_run *r = exec_recorder_nth(f->ex, id, true, i);
    if (!r)
        fail_msg("no missed run #%zu for %s", i, id);
    return r->reason;
}

/* ---- a year across DST -------------------------------------------------------------------- */

static const char *sched_json(char *buf, size_t n, const char *cron, const char *zone)
{
    snprintf(buf, n, "{\"job_id\": \"job-1\", \"cron\": \"%s\", \"timezone\": \"%s\"}", cron, zone);
    return buf;
}

static const char *add(sfx *f, const char *cron, const char *zone)
{
    char body[256];
    return sfx_add(f, sched_json(body, sizeof(body), cron, zone));
}

static void a_year_of_fixed_time_and_wildcard_jobs_follows_the_dst_rule(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-01-01T00:00:00Z", NULL, true);
    f->ex->end_at_once = true;
    const char *berlin = add(f, "30 2 * * *", "Europe/Berlin");
    const char *berlin_q = add(f, "*/30 * * * *", "Europe/Berlin");
    const char *lhi = add(f, "0 2 * * *", "Australia/Lord_Howe");
    const char *lhi_back = add(f, "30 1 * * *", "Australia/Lord_Howe");
    const char *lhi_q = add(f, "*/30 * * * *", "Australia/Lord_Howe");
    const char *scl = add(f, "0 0 * * *", "America/Santiago");
    const char *scl_back = add(f, "0 23 * * *", "America/Santiago");
    const char *ktm = add(f, "45 5 * * *", "Asia/Kathmandu");
    const char *ktm_h = add(f, "15 * * * *", "Asia/Kathmandu");
    const char *dub = add(f, "30 1 * * *", "Europe/Dublin");
    sfx_run_until(f, sfx_at("2026-01-01T00:00:00Z"));

    /* Fixed-time daily jobs fire once every day, gap or overlap. */
    const char *daily[] = {berlin, lhi, lhi_back, scl, scl_back, ktm, dub};
    for (size_t i = 0; i < sizeof(daily) / sizeof(daily[0]); i++)
        assert_int_equal(exec_recorder_started(f->ex, daily[i]), 365);
    /* Berlin: 02:30 skipped on 30 March fires at 03:00 CEST; 26 October once, at the CEST one. */
    assert_true(started_at(f, berlin, "2025-03-30T01:00:00Z"));
    assert_int_equal(
        started_between(f, berlin, sfx_at("2025-10-26T00:00:00Z"), sfx_at("2025-10-27T00:00:00Z")),
        1);
    assert_true(started_at(f, berlin, "2025-10-26T00:30:00Z"));
    /* Wildcards follow real time: every real half hour, so the 23-hour local day of 30 March
     * has 46 fires and the 25-hour 26 October 50. */
    assert_int_equal(exec_recorder_started(f->ex, berlin_q), 365 * 48);
    assert_int_equal(started_between(f, berlin_q, sfx_at("2025-03-29T23:00:00Z"),
                                     sfx_at("2025-03-30T22:00:00Z")),
                     46);
    assert_int_equal(started_between(f, berlin_q, sfx_at("2025-10-25T22:00:00Z"),
                                     sfx_at("2025-10-26T23:00:00Z")),
                     50);
    /* Lord Howe's 30-minute shift: 02:00 does not exist on 5 October (fires at 02:30 +11),
     * 01:30 occurs twice on 6 April (fires at the first, +11). */
    assert_true(started_at(f, lhi, "2025-10-04T15:30:00Z"));
    assert_true(started_at(f, lhi_back, "2025-04-05T14:30:00Z"));
    assert_false(started_at(f, lhi_back, "2025-04-05T15:00:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, lhi_q), 365 * 48);
    assert_int_equal(
        started_between(f, lhi_q, sfx_at("2025-04-05T13:00:00Z"), sfx_at("2025-04-06T13:30:00Z")),
        49); /* 6 April lasts 24.5 h: 01:30 fires at +11 and at +10:30 */
    assert_int_equal(
        started_between(f, lhi_q, sfx_at("2025-10-04T13:30:00Z"), sfx_at("2025-10-05T13:00:00Z")),
        47); /* 5 October lasts 23.5 h: no 02:00 */
    assert_true(started_at(f, lhi_q, "2025-04-05T14:30:00Z"));
    assert_true(started_at(f, lhi_q, "2025-04-05T15:00:00Z"));
    /* Santiago's midnight gap: 00:00 on 7 September fires at 01:00 -03; 23:00 of 5 April,
     * repeated, fires once at the first (-03). */
    assert_true(started_at(f, scl, "2025-09-07T04:00:00Z"));
    assert_true(started_at(f, scl_back, "2025-04-06T02:00:00Z"));
    assert_false(started_at(f, scl_back, "2025-04-06T03:00:00Z"));
    /* Kathmandu +05:45: 05:45 local is midnight UTC every day; hourly at :15 is :30 UTC. */
    assert_true(started_at(f, ktm, "2025-06-15T00:00:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, ktm_h), 365 * 24);
    assert_true(started_at(f, ktm_h, "2025-06-15T12:30:00Z"));
    /* Dublin's negative DST (IST is standard time): the same rule on real offsets. */
    assert_true(started_at(f, dub, "2025-03-30T01:00:00Z"));
    assert_true(started_at(f, dub, "2025-10-26T00:30:00Z"));
    assert_false(started_at(f, dub, "2025-10-26T01:30:00Z"));
    for (size_t i = 0; i < f->n_ids; i++)
        assert_on_time(f, f->ids[i]);
    assert_int_equal(exec_recorder_missed(f->ex, NULL), 0);
    sfx_free(f);
}

static void a_day_that_does_not_exist_has_no_fire(void **state)
{
    (void)state;
    sfx *f = sfx_new("2011-01-01T00:00:00Z", NULL, true);
    f->ex->end_at_once = true;
    const char *apia = add(f, "0 12 * * *", "Pacific/Apia");
    sfx_run_until(f, sfx_at("2012-01-01T00:00:00Z"));
    /* The local year 2011 (from -10 to +14) has 364 days: 2011-12-30 was skipped. */
    assert_int_equal(
        started_between(f, apia, sfx_at("2011-01-01T10:00:00Z"), sfx_at("2011-12-31T10:00:00Z")),
        364);
    assert_true(started_at(f, apia, "2011-12-29T22:00:00Z")); /* 29th 12:00 -10 */
    assert_true(started_at(f, apia, "2011-12-30T22:00:00Z")); /* 31st 12:00 +14 */
    assert_int_equal(exec_recorder_missed(f->ex, NULL), 0);
    sfx_free(f);
}

static void six_field_schedules_fire_every_two_seconds(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-06-01T00:00:00.400Z", NULL, true);
    f->ex->end_at_once = true;
    const char *id = add(f, "*/2 * * * * *", "UTC");
    sfx_run_until(f, sfx_at("2025-06-01T00:01:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, id), 30);
    const rec_run *r0 = exec_recorder_nth(f->ex, id, false, 0);
    const rec_run *r1 = exec_recorder_nth(f->ex, id, false, 1);
    assert_int_equal(r0->planned_ms, sfx_at("2025-06-01T00:00:02Z"));
    assert_int_equal(r1->planned_ms - r0->planned_ms, 2000);
    assert_string_equal(r0->triggered_by, "scheduler");
    assert_string_equal(r0->schedule_id, id);
    assert_string_equal(r0->job_id, "job-1");
    sched_stats st;
    sched_get_stats(f->s, &st);
    assert_int_equal(st.fired, 30);
    assert_int_equal(st.late_ms_max, 0);
    sfx_free(f);
}

/* ---- misfires across a restart ----------------------------------------------------------------
 */

/* Hourly, grace 3 h; fires at 11:00 and 12:00, the daemon is down from 12:10
 * to 17:20: 13:00 and 14:00 are past the grace period, 15:00-17:00 within it. */
static sfx *hourly_then_down(const char *policy, const char **id)
{
    struct sched_cfg c = sfx_cfg();
    c.run_all_max = 2;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", &c, true);
    f->ex->end_at_once = true;
    char body[256];
    snprintf(body, sizeof(body),
             "{\"job_id\": \"j\", \"cron\": \"0 * * * *\", \"misfire_policy\": \"%s\", "
             "\"misfire_grace_s\": 10800, \"params\": {\"n\": 1}, \"overlap_policy\": "
             "\"allow\"}",
             policy);
    *id = sfx_add(f, body);
    sfx_run_until(f, sfx_at("2025-05-05T12:10:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, *id), 2);
    sfx_down(f);
    sfx_wall = sfx_at("2025-05-05T17:20:00Z");
    sfx_mono += 5 * HOUR_MS; /* a new process: its monotonic clock means nothing to us */
    sfx_up(f);
    return f;
}

static void restart_with_skip_records_every_missed_fire(void **state)
{
    (void)state;
    const char *id;
    sfx *f = hourly_then_down("skip", &id);
    assert_int_equal(exec_recorder_started(f->ex, id), 2); /* 11:00 and 12:00 not repeated */
    assert_int_equal(exec_recorder_missed(f->ex, id), 5);
    assert_int_equal(exec_recorder_nth(f->ex, id, true, 0)->planned_ms,
                     sfx_at("2025-05-05T13:00:00Z"));
    assert_contains(missed_reason(f, id, 0), "the daemon was not running");
    assert_contains(missed_reason(f, id, 0), "past the grace period of 10800 s");
    assert_contains(missed_reason(f, id, 4), "misfire_policy skip");
    assert_int_equal(f->missed, 5);
    sfx_run_until(f, sfx_at("2025-05-05T18:00:00Z"));
    assert_true(started_at(f, id, "2025-05-05T18:00:00Z"));
    sfx_free(f);
}

static void restart_with_run_once_runs_the_latest_missed_fire(void **state)
{
    (void)state;
    const char *id;
    sfx *f = hourly_then_down("run_once", &id);
    assert_int_equal(exec_recorder_started(f->ex, id), 3);
    assert_true(started_at(f, id, "2025-05-05T17:00:00Z"));
    const rec_run *late = exec_recorder_nth(f->ex, id, false, 2);
    assert_int_equal(late->created_ms - late->planned_ms, 20 * MIN_MS);
    assert_string_equal(late->params, "{\"n\":1}");
    assert_int_equal(exec_recorder_missed(f->ex, id), 4);
    assert_contains(missed_reason(f, id, 3), "misfire_policy run_once runs one fire only");
    sfx_free(f);
}

static void restart_with_run_all_runs_the_latest_up_to_the_cap(void **state)
{
    (void)state;
    const char *id;
    sfx *f = hourly_then_down("run_all", &id);
    assert_int_equal(exec_recorder_started(f->ex, id), 4); /* cap 2: 16:00 and 17:00 */
    assert_true(started_at(f, id, "2025-05-05T16:00:00Z"));
    assert_true(started_at(f, id, "2025-05-05T17:00:00Z"));
    assert_int_equal(exec_recorder_missed(f->ex, id), 3);
    assert_contains(missed_reason(f, id, 2), "over the cap of 2 late fires run");
    sfx_free(f);
}

static void restart_without_due_fires_neither_repeats_nor_loses(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, true);
    f->ex->end_at_once = true;
    const char *id = add(f, "*/10 * * * *", "Europe/Paris");
    sfx_run_until(f, sfx_at("2025-05-05T10:30:00Z")); /* fires 10:10, 10:20, 10:30 */
    sfx_down(f);
    sfx_wall += 2000;
    sfx_up(f);
    json_t *st = sched_status(f->s, id);
    assert_string_equal(json_string_value(json_object_get(st, "last_fire_at")),
                        "2025-05-05T10:30:00.000Z");
    json_decref(st);
    sfx_run_until(f, sfx_at("2025-05-05T11:00:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, id), 6);
    assert_int_equal(exec_recorder_missed(f->ex, id), 0);
    sfx_free(f);
}

static void a_long_outage_is_summed_up_beyond_missed_max(void **state)
{
    (void)state;
    struct sched_cfg c = sfx_cfg();
    c.missed_max = 5;
    sfx *f = sfx_new("2025-05-05T10:00:00.500Z", &c, true);
    f->ex->end_at_once = true;
    const char *id = add(f, "* * * * * *", "UTC");
    sfx_run_until(f, sfx_at("2025-05-05T10:00:03Z"));
    sfx_down(f);
    sfx_wall = sfx_at("2025-06-05T10:00:00.200Z"); /* 2.7 million fires later */
    sfx_up(f);
    assert_int_equal(exec_recorder_started(f->ex, id), 4); /* 3 before, the latest after */
    assert_true(started_at(f, id, "2025-06-05T10:00:00Z"));
    assert_int_equal(exec_recorder_missed(f->ex, id), 6); /* 5 one by one, one summary */
    const rec_run *sum = exec_recorder_nth(f->ex, id, true, 0);
    assert_int_equal(sum->planned_ms, sfx_at("2025-05-05T10:00:04Z"));
    assert_contains(sum->reason, "every fire from 2025-05-05T10:00:04Z until before "
                                 "2025-06-05T09:59:55Z was missed");
    assert_int_equal(exec_recorder_nth(f->ex, id, true, 5)->planned_ms,
                     sfx_at("2025-06-05T09:59:59Z"));
    sfx_free(f);
}

/* ---- clocks ------------------------------------------------------------------------------------
 */

static void a_forward_wall_clock_jump_is_a_misfire(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, true);
    f->ex->end_at_once = true;
    const char *id = add(f, "*/10 * * * *", "UTC");
    sfx_run_until(f, sfx_at("2025-05-05T10:10:00Z"));
    sfx_step(f, 2000);
    sfx_jump(f, HOUR_MS, 0); /* resume from suspend: wall +1 h, monotonic unmoved */
    sched_stats st;
    sched_get_stats(f->s, &st);
    assert_int_equal(st.jumps, 1);
    assert_int_equal(exec_recorder_started(f->ex, id), 2); /* 10:10, then 11:10 (run_once) */
    assert_true(started_at(f, id, "2025-05-05T11:10:00Z"));
    assert_int_equal(exec_recorder_missed(f->ex, id), 5); /* 10:20 .. 11:00 */
    assert_contains(missed_reason(f, id, 0), "the wall clock jumped forward by 3600 s");
    sfx_free(f);
}

static void a_backward_wall_clock_jump_repeats_nothing(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, true);
    f->ex->end_at_once = true;
    const char *id = add(f, "*/10 * * * *", "UTC");
    sfx_run_until(f, sfx_at("2025-05-05T10:30:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, id), 3);
    sfx_jump(f, -45 * MIN_MS, 1000); /* back to 09:45 */
    sched_stats st;
    sched_get_stats(f->s, &st);
    assert_int_equal(st.jumps, 1);
    sfx_run_until(f, sfx_at("2025-05-05T10:00:00Z"));
    sfx_down(f); /* a restart while behind: the progress was kept per schedule */
    sfx_up(f);
    sfx_run_until(f, sfx_at("2025-05-05T10:30:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, id), 3); /* 10:00-10:30 again: nothing */
    sfx_run_until(f, sfx_at("2025-05-05T10:40:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, id), 4);
    assert_int_equal(exec_recorder_missed(f->ex, id), 0);
    sfx_free(f);
}

static void schedules_made_after_the_clock_went_back_lose_nothing_on_restart(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, true);
    f->ex->end_at_once = true;
    const char *old = add(f, "*/10 * * * *", "UTC");
    sfx_run_until(f, sfx_at("2025-05-05T10:30:00Z"));
    sfx_jump(f, -45 * MIN_MS, 1000); /* back to 09:45 */
    const char *fresh = add(f, "*/5 * * * *", "UTC");
    sfx_run_until(f, sfx_at("2025-05-05T09:46:00Z")); /* restart before any fire */
    sfx_down(f);
    sfx_up(f);
    sfx_run_until(f, sfx_at("2025-05-05T10:05:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, fresh), 4); /* 09:50, 09:55, 10:00, 10:05 */
    assert_int_equal(exec_recorder_started(f->ex, old), 3);   /* not 10:00 again */
    assert_int_equal(exec_recorder_missed(f->ex, NULL), 0);
    sfx_free(f);
}

struct mark {
    int64_t through;
};

static int read_mark(store_txn *txn, void *ud)
{
    struct mark *m = ud;
    const void *v;
    size_t len;
    char text[32] = "";
    int rc = store_kv_get(txn, "schedule_state", "~handled_through", 16, &v, &len);
    if (rc == 0 && len < sizeof(text))
        memcpy(text, v, len);
    m->through = rc == 0 ? strtoll(text, NULL, 10) : -1;
    return 0;
}

static int write_mark(store_txn *txn, void *ud)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%lld", (long long)*(int64_t *)ud);
    return store_kv_put(txn, "schedule_state", "~handled_through", 16, text, (size_t)n);
}

/* The mark is committed after the runs start; the runs committed by the
 * executor tell a restart what a crash kept out of the mark. */
static void a_crash_before_the_mark_commit_repeats_no_run(void **state)
{
    (void)state;
    for (int executor_commits = 1; executor_commits >= 0; executor_commits--) {
        sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, true);
        f->ex->end_at_once = true;
        f->ex->store = executor_commits ? f->st : NULL;
        const char *id = add(f, "* * * * *", "UTC");
        sfx_run_until(f, sfx_at("2025-05-05T10:02:00Z"));
        struct mark m;
        assert_int_equal(store_read(f->st, read_mark, &m), 0);
        assert_int_equal(m.through, sfx_at("2025-05-05T10:02:00Z"));
        int64_t before = sfx_at("2025-05-05T10:01:00Z"); /* the commit of 10:02 never happened */
        assert_int_equal(store_write(f->st, write_mark, &before), 0);
        sfx_down(f);
        sfx_wall += 300;
        sfx_up(f);
        /* With the runs committed nothing repeats; without them (a test of the test), 10:02
         * fires again: 300 ms late is on time. */
        assert_int_equal(exec_recorder_started(f->ex, id), executor_commits ? 2 : 3);
        assert_int_equal(exec_recorder_missed(f->ex, id), 0);
        sfx_free(f);
    }
}

static void a_late_wake_within_the_threshold_is_on_time(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, true);
    f->ex->end_at_once = true;
    const char *id = add(f, "* * * * *", "UTC");
    sfx_run_until(f, sfx_at("2025-05-05T10:00:59Z"));
    sfx_step(f, 1900);         /* the wake comes 900 ms late: on time under a 1 s threshold */
    sfx_step(f, 60000 + 3000); /* 3 s late: a misfire, run_once runs it anyway */
    assert_int_equal(exec_recorder_started(f->ex, id), 2);
    assert_int_equal(exec_recorder_missed(f->ex, id), 0);
    sfx_free(f);
}

/* ---- window, pause, changes ---------------------------------------------------------------------
 */

static void start_at_and_end_at_bound_the_fires(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T00:00:00Z", NULL, true);
    f->ex->end_at_once = true;
    const char *id =
        sfx_add(f, "{\"job_id\": \"j\", \"cron\": \"0 * * * *\", \"start_at\": "
                   "\"2025-05-05T03:00:00Z\", \"end_at\": \"2025-05-05T05:30:00+00:00\"}");
    sfx_run_until(f, sfx_at("2025-05-06T00:00:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, id), 3); /* 03:00, 04:00, 05:00 */
    assert_true(started_at(f, id, "2025-05-05T03:00:00Z"));
    assert_true(started_at(f, id, "2025-05-05T05:00:00Z"));
    assert_int_equal(sched_next_fire_ms(f->s), -1);
    json_t *st = sched_status(f->s, id);
    assert_true(json_is_null(json_object_get(st, "next_fire_at")));
    assert_string_equal(json_string_value(json_object_get(st, "last_fire_at")),
                        "2025-05-05T05:00:00.000Z");
    json_decref(st);
    sfx_change(f, id, "{\"end_at\": null}"); /* extended: no catch-up of 06:00 .. 23:00 */
    sfx_run_until(f, sfx_at("2025-05-06T01:00:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, id), 4);
    assert_true(started_at(f, id, "2025-05-06T01:00:00Z"));
    assert_int_equal(exec_recorder_missed(f->ex, id), 0);
    sfx_free(f);
}

static void fires_during_a_pause_are_not_misfires(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, true);
    f->ex->end_at_once = true;
    const char *id = add(f, "0 * * * *", "UTC");
    sfx_run_until(f, sfx_at("2025-05-05T11:30:00Z"));
    sfx_change(f, id, "{\"enabled\": false}");
    sfx_run_until(f, sfx_at("2025-05-05T15:30:00Z"));
    sfx_change(f, id, "{\"enabled\": true}");
    sfx_run_until(f, sfx_at("2025-05-05T16:30:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, id), 2); /* 11:00 and 16:00 */
    assert_true(started_at(f, id, "2025-05-05T16:00:00Z"));
    assert_int_equal(exec_recorder_missed(f->ex, id), 0);
    sfx_free(f);
}

static void a_paused_schedule_stays_paused_across_a_restart(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, true);
    const char *id = add(f, "0 * * * *", "UTC");
    sfx_change(f, id, "{\"enabled\": false}");
    sfx_down(f);
    sfx_wall += 5 * HOUR_MS;
    sfx_up(f);
    assert_int_equal(exec_recorder_started(f->ex, id) + exec_recorder_missed(f->ex, id), 0);
    json_t *out = NULL;
    assert_int_equal(sched_upcoming(f->s, id, 5, &out), 0);
    assert_int_equal(json_array_size(json_object_get(out, "times")), 0);
    json_decref(out);
    sfx_free(f);
}

static void changing_the_cron_counts_from_the_change(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, true);
    f->ex->end_at_once = true;
    const char *id = add(f, "0 * * * *", "UTC");
    sfx_run_until(f, sfx_at("2025-05-05T10:20:00Z"));
    sfx_change(f, id, "{\"cron\": \"*/15 * * * *\", \"description\": \"quarterly\"}");
    sfx_run_until(f, sfx_at("2025-05-05T11:00:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, id), 3); /* 10:30, 10:45, 11:00 */
    sfx_change(f, id, "{\"description\": null}");          /* no reset: nothing new fires */
    assert_int_equal(exec_recorder_started(f->ex, id), 3);
    sfx_delete(f, id);
    sfx_run_until(f, sfx_at("2025-05-05T12:00:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, id), 3);
    assert_null(sched_status(f->s, id));
    sfx_free(f);
}

static void upcoming_lists_the_next_fires_in_the_zone(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-03-29T12:00:00Z", NULL, true);
    const char *id = add(f, "30 2 * * *", "Europe/Berlin");
    json_t *out = NULL;
    assert_int_equal(sched_upcoming(f->s, id, 3, &out), 0);
    json_t *t = json_object_get(out, "times");
    assert_int_equal(json_array_size(t), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(t, 0), "utc")),
                        "2025-03-30T01:00:00Z");
    assert_string_equal(json_string_value(json_object_get(json_array_get(t, 0), "local")),
                        "2025-03-30T03:00:00+02:00");
    assert_contains(json_string_value(json_object_get(json_array_get(t, 0), "note")),
                    "02:30 local time did not exist");
    assert_string_equal(json_string_value(json_object_get(json_array_get(t, 1), "local")),
                        "2025-03-31T02:30:00+02:00");
    json_decref(out);
    assert_int_equal(sched_upcoming(f->s, "nope", 3, &out), OPSC_ENOENT);
    sfx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_year_of_fixed_time_and_wildcard_jobs_follows_the_dst_rule),
        cmocka_unit_test(a_day_that_does_not_exist_has_no_fire),
        cmocka_unit_test(six_field_schedules_fire_every_two_seconds),
        cmocka_unit_test(restart_with_skip_records_every_missed_fire),
        cmocka_unit_test(restart_with_run_once_runs_the_latest_missed_fire),
        cmocka_unit_test(restart_with_run_all_runs_the_latest_up_to_the_cap),
        cmocka_unit_test(restart_without_due_fires_neither_repeats_nor_loses),
        cmocka_unit_test(a_long_outage_is_summed_up_beyond_missed_max),
        cmocka_unit_test(a_forward_wall_clock_jump_is_a_misfire),
        cmocka_unit_test(a_backward_wall_clock_jump_repeats_nothing),
        cmocka_unit_test(schedules_made_after_the_clock_went_back_lose_nothing_on_restart),
        cmocka_unit_test(a_crash_before_the_mark_commit_repeats_no_run),
        cmocka_unit_test(a_late_wake_within_the_threshold_is_on_time),
        cmocka_unit_test(start_at_and_end_at_bound_the_fires),
        cmocka_unit_test(fires_during_a_pause_are_not_misfires),
        cmocka_unit_test(a_paused_schedule_stays_paused_across_a_restart),
        cmocka_unit_test(changing_the_cron_counts_from_the_change),
        cmocka_unit_test(upcoming_lists_the_next_fires_in_the_zone),
    };
    int failed = cmocka_run_group_tests_name("scheduler", tests, NULL, NULL);
    failed += _cmocka_run_group_tests("scheduler_overlap", sched_overlap_tests,
                                      sched_overlap_test_count, NULL, NULL);
    failed += _cmocka_run_group_tests("scheduler_records", sched_record_tests,
                                      sched_record_test_count, NULL, NULL);
    failed += _cmocka_run_group_tests("scheduler_retry", sched_retry_tests, sched_retry_test_count,
                                      NULL, NULL);
    failed +=
        _cmocka_run_group_tests("scheduler_api", sched_api_tests, sched_api_test_count, NULL, NULL);
    return failed ? 1 : 0;
}
