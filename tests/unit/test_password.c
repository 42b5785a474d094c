/* test_password.c - yescrypt hashing, verification, policy, and the bounded hashing queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "password.h"
#include "util.h"

static void hash_verifies_the_password_and_nothing_else(void **state)
{
    (void)state;
    char h[PASSWORD_HASH_MAX];
    assert_int_equal(password_hash("correct horse", 1, h), 0);
    assert_memory_equal(h, "$y$", 3);
    assert_true(password_verify("correct horse", h));
    assert_false(password_verify("correct hors", h));
    assert_false(password_verify("correct horse ", h));
    assert_false(password_verify("", h));
}

static void hashes_of_one_password_differ_by_salt(void **state)
{
    (void)state;
    char a[PASSWORD_HASH_MAX], b[PASSWORD_HASH_MAX];
    assert_int_equal(password_hash("same password", 1, a), 0);
    assert_int_equal(password_hash("same password", 1, b), 0);
    assert_string_not_equal(a, b);
    assert_true(password_verify("same password", a));
    assert_true(password_verify("same password", b));
}

static void malformed_hashes_never_verify(void **state)
{
    (void)state;
    const char *bad[] = {"", "*0", "*1", "$y$", "$y$j9T$", "plain", "$1$", "$y$zzz$abc$def"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (password_verify("", bad[i]) || password_verify("*0", bad[i]))
            fail_msg("hash '%s' verified", bad[i]);
    assert_false(password_verify("x", NULL));
    assert_false(password_verify(NULL, "$y$j9T$abc"));
}

static void dummy_setting_never_verifies_but_costs_a_hash(void **state)
{
    (void)state;
    char d[PASSWORD_HASH_MAX];
    assert_int_equal(password_dummy_setting(1, d), 0);
    assert_memory_equal(d, "$y$", 3);
    assert_false(password_verify("anything", d));
    assert_int_equal(password_dummy_setting(0, d), OPSC_EINVAL);
    assert_int_equal(password_dummy_setting(12, d), OPSC_EINVAL);
}

static void invalid_cost_is_refused(void **state)
{
    (void)state;
    char h[PASSWORD_HASH_MAX];
    assert_int_equal(password_hash("password", 0, h), OPSC_EINVAL);
    assert_int_equal(password_hash("password", 12, h), OPSC_EINVAL);
}

static void default_cost_takes_at_least_50_ms(void **state)
{
    (void)state;
    char h[PASSWORD_HASH_MAX];
    uint64_t t0 = clock_mono_ms();
    assert_int_equal(password_hash("a login's worth of work", PASSWORD_COST_DEFAULT, h), 0);
    uint64_t t1 = clock_mono_ms();
    assert_true(password_verify("a login's worth of work", h));
    uint64_t t2 = clock_mono_ms();
    print_message("cost %d: hash %llu ms, verify %llu ms\n", PASSWORD_COST_DEFAULT,
                  (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1));
    if (t1 - t0 < 50 || t2 - t1 < 50)
        fail_msg("hash took %llu ms, verify %llu ms: want >= 50", (unsigned long long)(t1 - t0),
                 (unsigned long long)(t2 - t1));
}

static void policy_bounds_the_length_without_echoing_it(void **state)
{
    (void)state;
    char err[128] = "";
    assert_int_equal(password_policy_check("short", 0, NULL, err, sizeof(err)), OPSC_EINVAL);
    assert_null(strstr(err, "short"));
    assert_int_equal(password_policy_check(NULL, 0, NULL, err, sizeof(err)), OPSC_EINVAL);
    assert_int_equal(password_policy_check("eight ch", 0, NULL, err, sizeof(err)), 0);
    char big[PASSWORD_MAX_LEN + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(password_policy_check(big, 0, NULL, err, sizeof(err)), OPSC_EINVAL);
}

static void weak_passwords_are_refused_and_the_users_words_count_against(void **state)
{
    (void)state;
    char err[320] = "";
    const char *olga[] = {"olga", "Olga Petrova", "olga.petrova@example.org", NULL};
    assert_int_equal(password_policy_check("password123", 3, NULL, err, sizeof(err)), OPSC_EINVAL);
    assert_non_null(strstr(err, "too weak"));
    assert_null(strstr(err, "password123"));
    assert_int_equal(password_policy_check("opsconductor2024", 3, NULL, err, sizeof(err)),
                     OPSC_EINVAL);
    assert_int_equal(password_policy_check("PetrovaOlga1987", 3, olga, err, sizeof(err)),
                     OPSC_EINVAL);
    /* Without her words the same text is strong enough: they are what made it weak. */
    assert_int_equal(password_policy_check("PetrovaOlga1987", 3, NULL, err, sizeof(err)), 0);
    assert_int_equal(password_policy_check("violet-Kettle-93-mosaic", 3, olga, err, sizeof(err)),
                     0);
    assert_int_equal(password_policy_check("password123", 0, NULL, err, sizeof(err)), 0);
}

/* ---- queue -------------------------------------------------------------------- */

struct job {
    int id;
    int status;
    bool worked, done;
    int *order;
    int *norder;
};

static void job_work(void *ud)
{
    struct job *j = ud;
    char h[PASSWORD_HASH_MAX];
    password_hash("queued", 1, h);
    j->worked = true;
}

static void job_after(void *ud, int status)
{
    struct job *j = ud;
    j->status = status;
    j->done = true;
    j->order[(*j->norder)++] = j->id;
}

static void queue_runs_in_order_and_refuses_beyond_its_bounds(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    hash_queue *q;
    assert_int_equal(hash_queue_new(&q, &loop, 1, 2), 0);
    int order[8], norder = 0;
    struct job jobs[4];
    for (int i = 0; i < 4; i++)
        jobs[i] = (struct job){.id = i, .status = -1, .order = order, .norder = &norder};
    for (int i = 0; i < 3; i++)
        assert_int_equal(hash_queue_submit(q, job_work, job_after, &jobs[i]), 0);
    assert_int_equal(hash_queue_pending(q), 3);
    assert_int_equal(hash_queue_submit(q, job_work, job_after, &jobs[3]), OPSC_EBUSY);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(norder, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(order[i], i);
        assert_int_equal(jobs[i].status, 0);
        assert_true(jobs[i].worked);
    }
    assert_false(jobs[3].done);
    assert_int_equal(hash_queue_pending(q), 0);
    hash_queue_close(q);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void close_cancels_waiting_jobs_and_lets_running_ones_finish(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    hash_queue *q;
    assert_int_equal(hash_queue_new(&q, &loop, 1, 4), 0);
    int order[8], norder = 0;
    struct job jobs[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (struct job){.id = i, .status = -1, .order = order, .norder = &norder};
        assert_int_equal(hash_queue_submit(q, job_work, job_after, &jobs[i]), 0);
    }
    hash_queue_close(q);
    /* The waiting ones were answered at once, without running. */
    assert_true(jobs[1].done && jobs[2].done);
    assert_int_equal(jobs[1].status, OPSC_ECANCELED);
    assert_false(jobs[1].worked || jobs[2].worked);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(jobs[0].done);
    assert_int_equal(jobs[0].status, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hash_verifies_the_password_and_nothing_else),
        cmocka_unit_test(hashes_of_one_password_differ_by_salt),
        cmocka_unit_test(malformed_hashes_never_verify),
        cmocka_unit_test(dummy_setting_never_verifies_but_costs_a_hash),
        cmocka_unit_test(invalid_cost_is_refused),
        cmocka_unit_test(default_cost_takes_at_least_50_ms),
        cmocka_unit_test(policy_bounds_the_length_without_echoing_it),
        cmocka_unit_test(weak_passwords_are_refused_and_the_users_words_count_against),
        cmocka_unit_test(queue_runs_in_order_and_refuses_beyond_its_bounds),
        cmocka_unit_test(close_cancels_waiting_jobs_and_lets_running_ones_finish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
