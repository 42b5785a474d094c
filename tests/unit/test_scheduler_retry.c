/* test_scheduler_retry.c - fires whose run could not be stored for a passing reason (a lock, a
 * timeout, a broken connection) are tried again, in order, until stored, found a duplicate or
 * too old; other failures are missed at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <opsc/errors.h>

#include "test_scheduler.h"
#include "util.h"

static const char *every_second(sfx *f, const char *extra)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"job_id\": \"j\", \"cron\": \"* * * * * *\", \"overlap_policy\": \"allow\"%s}",
             extra);
    return sfx_add(f, body);
}

static void fail_commits(sfx *f, const int *codes, size_t n)
{
    memcpy(f->ex->commit_fails, codes, n * sizeof(*codes));
    f->ex->n_commit_fails = n;
}

/* Both clocks forward in 250 ms steps, one wake each (the retries' backoff is in halves of a
 * second). */
static void walk(sfx *f, int64_t ms)
{
    for (int64_t t = 0; t < ms; t += 250)
        sfx_step(f, 250);
}

static const char *last_error(sfx *f, const char *id, char *buf, size_t n)
{
    json_t *st = sched_status(f->s, id);
    const char *e = json_string_value(json_object_get(st, "last_error"));
    snprintf(buf, n, "%s", e ? e : "");
    json_decref(st);
    return buf;
}

static void a_fire_whose_run_and_missed_record_failed_is_fired_later_in_order(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:00.100Z", NULL, true);
    f->ex->end_at_once = true;
    const char *id = every_second(f, "");
    /* 10:00:01 fails, its first retry fails, 10:00:02 fails too: both wait, in order */
    fail_commits(f, (int[]){OPSC_EBUSY, OPSC_ETIMEDOUT, OPSC_EIO}, 3);
    f->ex->missed_fails[0] = f->ex->missed_fails[1] = f->ex->missed_fails[2] = OPSC_EIO;
    f->ex->n_missed_fails = 3;
    sfx_step(f, 900); /* 10:00:01.000 */
    assert_int_equal(exec_recorder_started(f->ex, id), 0);
    char err[400];
    assert_contains(last_error(f, id, err, sizeof(err)), "trying again");
    walk(f, 3000);
    assert_int_equal(exec_recorder_missed(f->ex, id), 0);
    assert_int_equal(f->missed, 0);
    size_t n = exec_recorder_started(f->ex, id);
    assert_int_equal(n, 4); /* 10:00:01 .. 10:00:04, each once */
    int64_t want = sfx_at("2025-05-05T10:00:01Z");
    for (size_t i = 0; i < n; i++, want += 1000) /* the recorder keeps creation order */
        assert_int_equal(exec_recorder_nth(f->ex, id, false, i)->planned_ms, want);
    /* 10:00:01 failed again at :01.5; at :02.5 both waited their backoff out */
    assert_int_equal(exec_recorder_nth(f->ex, id, false, 0)->created_ms,
                     sfx_at("2025-05-05T10:00:02.500Z"));
    assert_int_equal(f->errors, 2); /* one schedule.error per instant, not per attempt */
    assert_string_equal(last_error(f, id, err, sizeof(err)), "");
    sfx_free(f);
}

static void a_failure_that_would_fail_again_is_missed_at_once(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:00.100Z", NULL, true);
    f->ex->end_at_once = true;
    const char *id = every_second(f, "");
    fail_commits(f, (int[]){OPSC_ESCHEMA}, 1);
    sfx_step(f, 900);
    assert_int_equal(exec_recorder_missed(f->ex, id), 1);
    assert_contains(exec_recorder_nth(f->ex, id, true, 0)->reason, "validation failed");
    walk(f, 2000);
    assert_int_equal(exec_recorder_missed(f->ex, id), 1);
    assert_int_equal(exec_recorder_started(f->ex, id), 2); /* 10:00:02 and :03, not :01 */
    assert_int_equal(exec_recorder_nth(f->ex, id, false, 0)->planned_ms,
                     sfx_at("2025-05-05T10:00:02Z"));
    sfx_free(f);
}

static void a_duplicate_found_on_retry_is_dropped(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:00.100Z", NULL, true);
    f->ex->end_at_once = true;
    const char *id = every_second(f, "");
    fail_commits(f, (int[]){OPSC_EBUSY, OPSC_EEXIST}, 2); /* another leader stored it meanwhile */
    sfx_step(f, 900);
    walk(f, 3000);
    assert_int_equal(exec_recorder_missed(f->ex, id), 0);
    assert_int_equal(exec_recorder_started(f->ex, id), 3); /* :02 .. :04 */
    assert_int_equal(exec_recorder_nth(f->ex, id, false, 0)->planned_ms,
                     sfx_at("2025-05-05T10:00:02Z"));
    char err[400];
    assert_string_equal(last_error(f, id, err, sizeof(err)), "");
    sfx_free(f);
}

/* A slice's runs commit together: one duplicate fails them all, and each is tried alone. */
static void a_duplicate_in_a_shared_commit_fails_none_of_the_others(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:00.100Z", NULL, true);
    f->ex->end_at_once = true;
    const char *a = every_second(f, ""), *b = every_second(f, "");
    fail_commits(f, (int[]){OPSC_EEXIST, OPSC_EEXIST, OPSC_EEXIST}, 3); /* both, then a alone */
    sfx_step(f, 900);
    walk(f, 1000);
    assert_int_equal(f->errors, 0);
    assert_int_equal(exec_recorder_missed(f->ex, NULL), 0);
    const rec_run *first = exec_recorder_nth(f->ex, b, false, 0);
    assert_non_null(first);
    assert_int_equal(first->planned_ms, sfx_at("2025-05-05T10:00:01Z"));
    first = exec_recorder_nth(f->ex, a, false, 0);
    assert_non_null(first);
    assert_int_equal(first->planned_ms, sfx_at("2025-05-05T10:00:02Z"));
    sfx_free(f);
}

/* A schedule at second 0 of each minute (10:01:00 first) with `grace_s` of misfire grace,
 * whose next 16 commits and next `missed` missed records fail with EBUSY (a row lock). */
static const char *at_minute_busy(sfx *f, int grace_s, size_t missed)
{
    char body[128];
    snprintf(body, sizeof(body),
             "{\"job_id\": \"j\", \"cron\": \"0 * * * * *\", \"misfire_grace_s\": %d}", grace_s);
    const char *id = sfx_add(f, body);
    int busy[16];
    for (size_t i = 0; i < 16; i++)
        busy[i] = OPSC_EBUSY;
    fail_commits(f, busy, 16);
    memcpy(f->ex->missed_fails, busy, missed * sizeof(*busy));
    f->ex->n_missed_fails = missed;
    return id;
}

static void a_fire_tried_past_its_grace_is_recorded_missed(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:00.100Z", NULL, true);
    f->ex->end_at_once = true;
    const char *id = at_minute_busy(f, 3, 0);
    sfx_step(f, 59900);
    walk(f, 5000);
    assert_int_equal(exec_recorder_started(f->ex, id), 0);
    assert_int_equal(exec_recorder_missed(f->ex, id), 1);
    const rec_run *m = exec_recorder_nth(f->ex, id, true, 0);
    assert_int_equal(m->planned_ms, sfx_at("2025-05-05T10:01:00Z"));
    assert_contains(m->reason, "past the grace period of 3 s");
    assert_contains(m->reason, "resource busy");
    char err[400];
    assert_contains(last_error(f, id, err, sizeof(err)), "past the grace period");
    size_t tries = 16 - f->ex->n_commit_fails;
    assert_in_range(tries, 3, 5); /* 0, 0.5, 1.5, 3.5 s: backoff, not a busy loop */
    sfx_free(f);
}

/* A missed record fails like a run (the same lock, the same database away): lost, the instant
 * would be in no record, a hole in the history. */
static void a_missed_record_that_failed_for_a_passing_reason_is_stored_later(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:00.100Z", NULL, true);
    f->ex->end_at_once = true;
    const char *id = every_second(f, "");
    fail_commits(f, (int[]){OPSC_ESCHEMA}, 1); /* 10:00:01 cannot run: a missed record */
    f->ex->missed_fails[0] = f->ex->missed_fails[1] = OPSC_EBUSY;
    f->ex->n_missed_fails = 2;
    sfx_step(f, 900);
    assert_int_equal(exec_recorder_missed(f->ex, id), 0);
    walk(f, 2500);
    assert_int_equal(exec_recorder_missed(f->ex, id), 1);
    const rec_run *m = exec_recorder_nth(f->ex, id, true, 0);
    assert_int_equal(m->planned_ms, sfx_at("2025-05-05T10:00:01Z"));
    assert_contains(m->reason, "validation failed");
    /* the runs after it did not wait behind a record */
    assert_int_equal(exec_recorder_nth(f->ex, id, false, 0)->planned_ms,
                     sfx_at("2025-05-05T10:00:02Z"));
    sched_stats st;
    sched_get_stats(f->s, &st);
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.missed, 1);
    sfx_free(f);
}

static void a_fire_past_its_grace_whose_missed_record_fails_is_recorded_later(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:00.100Z", NULL, true);
    f->ex->end_at_once = true;
    const char *id = at_minute_busy(f, 1, 4); /* a frozen node's lock, held on */
    sfx_step(f, 59900);
    walk(f, 4000);
    assert_int_equal(exec_recorder_missed(f->ex, id), 0);
    walk(f, 16000);
    assert_int_equal(exec_recorder_started(f->ex, id), 0);
    assert_int_equal(exec_recorder_missed(f->ex, id), 1);
    const rec_run *m = exec_recorder_nth(f->ex, id, true, 0);
    assert_int_equal(m->planned_ms, sfx_at("2025-05-05T10:01:00Z"));
    assert_contains(m->reason, "past the grace period of 1 s");
    sched_stats st;
    sched_get_stats(f->s, &st);
    assert_int_equal(st.lost, 0);
    sfx_free(f);
}

/* The handled-through mark stays before a fire still waiting, so a scheduler that starts anew
 * (a restart, another leader) decides it as a misfire. */
static void a_fire_still_waiting_at_a_restart_is_a_misfire_for_the_next(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:09:59.900Z", NULL, true);
    f->ex->end_at_once = true;
    f->ex->store = f->st;
    const char *id = sfx_add(f, "{\"job_id\": \"j\", \"cron\": \"*/10 * * * *\"}");
    fail_commits(f, (int[]){OPSC_EIO}, 1);
    sfx_step(f, 100); /* 10:10:00 fails */
    assert_int_equal(exec_recorder_started(f->ex, id), 0);
    sfx_down(f);
    sfx_wall += 5000;
    sfx_mono += 5000;
    sfx_up(f);
    assert_int_equal(exec_recorder_started(f->ex, id), 1);
    assert_int_equal(exec_recorder_nth(f->ex, id, false, 0)->planned_ms,
                     sfx_at("2025-05-05T10:10:00Z"));
    walk(f, 2000);
    assert_int_equal(exec_recorder_started(f->ex, id), 1);
    sfx_free(f);
}

static void pausing_records_a_waiting_fire_missed(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:00.100Z", NULL, true);
    const char *id = every_second(f, "");
    fail_commits(f, (int[]){OPSC_EBUSY}, 1);
    sfx_step(f, 900);
    sfx_change(f, id, "{\"enabled\": false}");
    assert_int_equal(exec_recorder_missed(f->ex, id), 1);
    const rec_run *m = exec_recorder_nth(f->ex, id, true, 0);
    assert_int_equal(m->planned_ms, sfx_at("2025-05-05T10:00:01Z"));
    assert_contains(m->reason, "the schedule was paused while this fire waited to be tried again");
    walk(f, 2000);
    assert_int_equal(exec_recorder_started(f->ex, id), 0);
    assert_int_equal(exec_recorder_missed(f->ex, id), 1);
    sfx_free(f);
}

/* ... and when that record fails for a passing reason too, it is still written later, though
 * the schedule is paused by then (the instant was due while it ran). */
static void a_paused_schedules_failed_missed_record_is_written_later(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:00.100Z", NULL, true);
    const char *id = every_second(f, "");
    fail_commits(f, (int[]){OPSC_EBUSY}, 1);
    f->ex->missed_fails[0] = OPSC_EBUSY;
    f->ex->n_missed_fails = 1;
    sfx_step(f, 900);
    sfx_change(f, id, "{\"enabled\": false}");
    assert_int_equal(exec_recorder_missed(f->ex, id), 0);
    walk(f, 2000);
    assert_int_equal(exec_recorder_started(f->ex, id), 0);
    assert_int_equal(exec_recorder_missed(f->ex, id), 1);
    assert_contains(exec_recorder_nth(f->ex, id, true, 0)->reason,
                    "the schedule was paused while this fire waited to be tried again");
    sfx_free(f);
}

const struct CMUnitTest sched_retry_tests[] = {
    cmocka_unit_test(a_fire_whose_run_and_missed_record_failed_is_fired_later_in_order),
    cmocka_unit_test(a_failure_that_would_fail_again_is_missed_at_once),
    cmocka_unit_test(a_duplicate_found_on_retry_is_dropped),
    cmocka_unit_test(a_duplicate_in_a_shared_commit_fails_none_of_the_others),
    cmocka_unit_test(a_fire_tried_past_its_grace_is_recorded_missed),
    cmocka_unit_test(a_missed_record_that_failed_for_a_passing_reason_is_stored_later),
    cmocka_unit_test(a_fire_past_its_grace_whose_missed_record_fails_is_recorded_later),
    cmocka_unit_test(a_fire_still_waiting_at_a_restart_is_a_misfire_for_the_next),
    cmocka_unit_test(pausing_records_a_waiting_fire_missed),
    cmocka_unit_test(a_paused_schedules_failed_missed_record_is_written_later),
};
const size_t sched_retry_test_count = sizeof(sched_retry_tests) / sizeof(sched_retry_tests[0]);
