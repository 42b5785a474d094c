/* test_scheduler_overlap.c - a run still active at the next fire under each overlap policy; fires
 * that cannot start; the real timer on a real loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "test_scheduler.h"
#include "util.h"

/* Every ten minutes from 10:00:30, with the given policy (and limit). */
static const char *every_ten(sfx *f, const char *policy, int limit)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"job_id\": \"j\", \"cron\": \"*/10 * * * *\", \"overlap_policy\": \"%s\", "
             "\"overlap_limit\": %d}",
             policy, limit);
    return sfx_add(f, body);
}

static const char *run_id(sfx *f, const char *id, size_t i)
{
    const rec_run *r = exec_recorder_nth(f->ex, id, false, i);
    if (!r)
        fail_msg("no run #%zu", i);
    return r->run_id;
}

static const char *state_of(sfx *f, const char *id, size_t i)
{
    return exec_recorder_nth(f->ex, id, false, i)->state;
}

static void forbid_misses_a_fire_while_a_run_is_active(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, true);
    const char *id = every_ten(f, "forbid", 1);
    sfx_run_until(f, sfx_at("2025-05-05T10:20:00Z")); /* 10:10 starts, 10:20 meets it */
    assert_int_equal(exec_recorder_started(f->ex, id), 1);
    assert_int_equal(exec_recorder_missed(f->ex, id), 1);
    assert_string_equal(exec_recorder_nth(f->ex, id, true, 0)->reason,
                        "overlap: a run of this schedule is still active (overlap_policy forbid)");
    assert_int_equal(exec_recorder_nth(f->ex, id, true, 0)->planned_ms,
                     sfx_at("2025-05-05T10:20:00Z"));
    assert_int_equal(f->missed, 1);
    assert_string_equal(f->last_reason, exec_recorder_nth(f->ex, id, true, 0)->reason);
    assert_int_equal(exec_recorder_end(f->ex, run_id(f, id, 0), "succeeded"), 0);
    sfx_run_until(f, sfx_at("2025-05-05T10:30:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, id), 2);
    sfx_free(f);
}

static void allow_starts_up_to_the_limit(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, true);
    const char *id = every_ten(f, "allow", 2);
    sfx_run_until(f, sfx_at("2025-05-05T10:30:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, id), 2);
    assert_int_equal(exec_recorder_missed(f->ex, id), 1);
    assert_contains(exec_recorder_nth(f->ex, id, true, 0)->reason,
                    "2 runs of this schedule are active (overlap_policy allow, up to 2)");
    json_t *st = sched_status(f->s, id);
    assert_int_equal(json_integer_value(json_object_get(st, "active_runs")), 2);
    json_decref(st);
    exec_recorder_end(f->ex, run_id(f, id, 0), "failed");
    sfx_run_until(f, sfx_at("2025-05-05T10:40:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, id), 3);
    sfx_free(f);
}

static void replace_cancels_the_active_run_and_starts(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, true);
    const char *id = every_ten(f, "replace", 1);
    sfx_run_until(f, sfx_at("2025-05-05T10:20:00Z"));
    assert_int_equal(exec_recorder_started(f->ex, id), 2);
    assert_string_equal(state_of(f, id, 0), "cancelled");
    assert_string_equal(state_of(f, id, 1), "running");
    assert_int_equal(f->ex->cancels, 1);
    assert_int_equal(exec_recorder_missed(f->ex, id), 0);
    json_t *st = sched_status(f->s, id);
    assert_string_equal(json_string_value(json_object_get(st, "last_run_id")), run_id(f, id, 1));
    json_decref(st);
    sfx_free(f);
}

static void queue_waits_for_the_active_run_up_to_the_limit(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, true);
    const char *id = every_ten(f, "queue", 1);
    sfx_run_until(f, sfx_at("2025-05-05T10:30:00Z")); /* 10:10 runs, 10:20 waits, 10:30 missed */
    assert_int_equal(exec_recorder_started(f->ex, id), 1);
    assert_int_equal(exec_recorder_missed(f->ex, id), 1);
    assert_contains(exec_recorder_nth(f->ex, id, true, 0)->reason,
                    "1 fires already wait for the active run (overlap_policy queue, up to 1)");
    json_t *st = sched_status(f->s, id);
    assert_string_equal(json_string_value(json_array_get(json_object_get(st, "queued"), 0)),
                        "2025-05-05T10:20:00.000Z");
    json_decref(st);
    exec_recorder_end(f->ex, run_id(f, id, 0), "succeeded");
    sfx_step(f, 1000); /* the drain runs on the next wake */
    assert_int_equal(exec_recorder_started(f->ex, id), 2);
    assert_int_equal(exec_recorder_nth(f->ex, id, false, 1)->planned_ms,
                     sfx_at("2025-05-05T10:20:00Z"));
    sfx_free(f);
}

static void queued_fires_survive_a_restart(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, true);
    const char *id = every_ten(f, "queue", 3);
    sfx_run_until(f, sfx_at("2025-05-05T10:30:00Z")); /* 10:10 runs; 10:20 and 10:30 wait */
    sfx_down(f);
    /* The executor marks the runs of the stopped daemon interrupted. */
    exec_recorder_end(f->ex, run_id(f, id, 0), "interrupted");
    sfx_wall += 1000;
    sfx_up(f);
    sfx_step(f, 10);
    assert_int_equal(exec_recorder_started(f->ex, id), 2);
    assert_int_equal(exec_recorder_nth(f->ex, id, false, 1)->planned_ms,
                     sfx_at("2025-05-05T10:20:00Z"));
    exec_recorder_end(f->ex, run_id(f, id, 1), "succeeded");
    sfx_step(f, 10);
    assert_int_equal(exec_recorder_nth(f->ex, id, false, 2)->planned_ms,
                     sfx_at("2025-05-05T10:30:00Z"));
    assert_int_equal(exec_recorder_missed(f->ex, id), 0);
    sfx_free(f);
}

static void pausing_drops_waiting_fires_as_missed(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, true);
    const char *id = every_ten(f, "queue", 5);
    sfx_run_until(f, sfx_at("2025-05-05T10:20:00Z"));
    sfx_change(f, id, "{\"enabled\": false}");
    assert_int_equal(exec_recorder_missed(f->ex, id), 1);
    assert_contains(exec_recorder_nth(f->ex, id, true, 0)->reason, "the schedule was paused");
    json_t *st = sched_status(f->s, id);
    assert_int_equal(json_array_size(json_object_get(st, "queued")), 0);
    json_decref(st);
    sfx_free(f);
}

static void run_all_with_forbid_starts_one_and_misses_the_rest(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, true);
    const char *id = sfx_add(f, "{\"job_id\": \"j\", \"cron\": \"*/10 * * * *\", "
                                "\"misfire_policy\": \"run_all\", \"overlap_policy\": \"forbid\"}");
    sfx_down(f);
    sfx_wall = sfx_at("2025-05-05T10:35:00Z");
    sfx_up(f);
    assert_int_equal(exec_recorder_started(f->ex, id), 1); /* 10:10 */
    assert_int_equal(exec_recorder_missed(f->ex, id), 2);  /* 10:20, 10:30 meet it */
    assert_contains(exec_recorder_nth(f->ex, id, true, 1)->reason, "overlap_policy forbid");
    sfx_free(f);
}

/* ---- fires that cannot start ---------------------------------------------------------------- */

static void without_an_executor_a_fire_is_an_error(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, false);
    const char *id = every_ten(f, "forbid", 1);
    sfx_run_until(f, sfx_at("2025-05-05T10:20:00Z"));
    assert_int_equal(f->errors, 2);
    assert_contains(f->last_error, "no executor is running in this daemon");
    json_t *st = sched_status(f->s, id);
    assert_contains(json_string_value(json_object_get(st, "last_error")), "no executor");
    assert_string_equal(json_string_value(json_object_get(st, "next_fire_at")),
                        "2025-05-05T10:30:00.000Z");
    json_decref(st);
    sfx_free(f);
}

static void a_run_that_cannot_start_is_recorded_missed(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:30Z", NULL, true);
    f->ex->fail_start = OPSC_ENOENT;
    const char *id = every_ten(f, "forbid", 1);
    sfx_run_until(f, sfx_at("2025-05-05T10:10:00Z"));
    assert_int_equal(f->errors, 1);
    assert_int_equal(exec_recorder_missed(f->ex, id), 1);
    assert_contains(exec_recorder_nth(f->ex, id, true, 0)->reason,
                    "error: the run could not start: job j: no such job");
    f->ex->fail_start = 0;
    sfx_run_until(f, sfx_at("2025-05-05T10:20:00Z"));
    json_t *st = sched_status(f->s, id);
    assert_true(json_is_null(json_object_get(st, "last_error"))); /* cleared by a good start */
    json_decref(st);
    sfx_free(f);
}

/* ---- the real timer -------------------------------------------------------------------------- */

static void on_stop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void the_timer_fires_on_a_real_loop(void **state)
{
    (void)state;
    sfx *f = sfx_new("2025-05-05T10:00:00Z", NULL, true);
    f->ex->end_at_once = true;
    sfx_down(f);
    clock_set_source(NULL); /* real clocks from here */
    sched_opts o = {.loop = &f->loop,
                    .store = f->st,
                    .events = f->ev,
                    .exec = f->ex,
                    .exec_ops = sched_exec_linked(),
                    .cfg = &f->cfg};
    char err[256];
    assert_int_equal(sched_new(&f->s, &o), 0);
    assert_int_equal(sched_start(f->s, err, sizeof(err)), 0);
    const char *id = sfx_add(f, "{\"job_id\": \"j\", \"cron\": \"* * * * * *\"}");
    uv_timer_t stop;
    uv_timer_init(&f->loop, &stop);
    uv_timer_start(&stop, on_stop, 2600, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&stop, NULL);
    size_t n = exec_recorder_started(f->ex, id);
    assert_in_range(n, 2, 3);
    for (size_t i = 0; i < n; i++) {
        const rec_run *r = exec_recorder_nth(f->ex, id, false, i);
        assert_in_range(r->created_ms - r->planned_ms, 0, 100);
    }
    sfx_free(f);
}

const struct CMUnitTest sched_overlap_tests[] = {
    cmocka_unit_test(forbid_misses_a_fire_while_a_run_is_active),
    cmocka_unit_test(allow_starts_up_to_the_limit),
    cmocka_unit_test(replace_cancels_the_active_run_and_starts),
    cmocka_unit_test(queue_waits_for_the_active_run_up_to_the_limit),
    cmocka_unit_test(queued_fires_survive_a_restart),
    cmocka_unit_test(pausing_drops_waiting_fires_as_missed),
    cmocka_unit_test(run_all_with_forbid_starts_one_and_misses_the_rest),
    cmocka_unit_test(without_an_executor_a_fire_is_an_error),
    cmocka_unit_test(a_run_that_cannot_start_is_recorded_missed),
    cmocka_unit_test(the_timer_fires_on_a_real_loop),
};
const size_t sched_overlap_test_count =
    sizeof(sched_overlap_tests) / sizeof(sched_overlap_tests[0]);
