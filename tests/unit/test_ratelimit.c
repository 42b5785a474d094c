/* test_ratelimit.c - login back-off: free failures, doubling delays, caps, forgetting, bounded
 * memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "ratelimit.h"

static const ratelimit_opts opts = {
    .free_failures = 3,
    .base_delay_ms = 1000,
    .max_delay_ms = 8000,
    .forget_after_ms = 60000,
    .max_entries = 16,
};

static void free_failures_cost_nothing_then_delays_double_up_to_the_cap(void **state)
{
    (void)state;
    ratelimit *rl;
    assert_int_equal(ratelimit_new(&rl, &opts), 0);
    int64_t t = 1000000;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ratelimit_check(rl, "alice", t), 0);
        ratelimit_failure(rl, "alice", t);
    }
    assert_int_equal(ratelimit_check(rl, "alice", t), 0);
    int64_t want[] = {1000, 2000, 4000, 8000, 8000, 8000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        ratelimit_failure(rl, "alice", t);
        assert_int_equal(ratelimit_check(rl, "alice", t), want[i]);
        assert_int_equal(ratelimit_check(rl, "alice", t + want[i] - 1), 1);
        t += want[i];
        assert_int_equal(ratelimit_check(rl, "alice", t), 0);
    }
    ratelimit_free(rl);
}

static void keys_are_independent(void **state)
{
    (void)state;
    ratelimit *rl;
    assert_int_equal(ratelimit_new(&rl, &opts), 0);
    for (int i = 0; i < 5; i++)
        ratelimit_failure(rl, "10.0.0.1", 5000);
    assert_true(ratelimit_check(rl, "10.0.0.1", 5000) > 0);
    assert_int_equal(ratelimit_check(rl, "10.0.0.2", 5000), 0);
    assert_int_equal(ratelimit_check(rl, "", 5000), 0);
    ratelimit_free(rl);
}

static void failures_are_forgotten_after_a_quiet_period(void **state)
{
    (void)state;
    ratelimit *rl;
    assert_int_equal(ratelimit_new(&rl, &opts), 0);
    for (int i = 0; i < 4; i++)
        ratelimit_failure(rl, "bob", 0);
    assert_int_equal(ratelimit_check(rl, "bob", 0), 1000);
    /* A minute later the count starts over: three free failures again. */
    for (int i = 0; i < 3; i++)
        ratelimit_failure(rl, "bob", 60000 + i);
    assert_int_equal(ratelimit_check(rl, "bob", 60003), 0);
    ratelimit_free(rl);
}

static void reset_clears_a_key_and_keeps_the_others_findable(void **state)
{
    (void)state;
    ratelimit *rl;
    assert_int_equal(ratelimit_new(&rl, &opts), 0);
    char key[16];
    for (int k = 0; k < 12; k++) {
        snprintf(key, sizeof(key), "user%d", k);
        for (int i = 0; i < 4; i++)
            ratelimit_failure(rl, key, 100);
    }
    assert_int_equal(ratelimit_size(rl), 12);
    ratelimit_reset(rl, "user3");
    ratelimit_reset(rl, "nobody");
    assert_int_equal(ratelimit_size(rl), 11);
    assert_int_equal(ratelimit_check(rl, "user3", 100), 0);
    for (int k = 0; k < 12; k++) {
        snprintf(key, sizeof(key), "user%d", k);
        if (k != 3 && ratelimit_check(rl, key, 100) != 1000)
            fail_msg("%s lost its delay after a reset of another key", key);
    }
    ratelimit_free(rl);
}

static void memory_stays_bounded_and_blocking_keys_are_kept(void **state)
{
    (void)state;
    ratelimit *rl;
    assert_int_equal(ratelimit_new(&rl, &opts), 0);
    for (int i = 0; i < 4; i++)
        ratelimit_failure(rl, "attacker", 0);
    char key[32];
    for (int k = 0; k < 1000; k++) {
        snprintf(key, sizeof(key), "10.1.%d.%d", k / 256, k % 256);
        ratelimit_failure(rl, key, 10 + k / 10);
        assert_true(ratelimit_size(rl) <= opts.max_entries);
    }
    assert_int_equal(ratelimit_check(rl, "attacker", 500), 500);
    ratelimit_free(rl);
}

static void long_keys_are_truncated_consistently(void **state)
{
    (void)state;
    ratelimit *rl;
    assert_int_equal(ratelimit_new(&rl, &opts), 0);
    char key[300];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    for (int i = 0; i < 4; i++)
        ratelimit_failure(rl, key, 0);
    assert_int_equal(ratelimit_check(rl, key, 0), 1000);
    ratelimit_free(rl);
}

static void bad_options_are_refused(void **state)
{
    (void)state;
    ratelimit *rl;
    ratelimit_opts o = opts;
    o.max_entries = 0;
    assert_int_equal(ratelimit_new(&rl, &o), OPSC_EINVAL);
    o = opts;
    o.max_delay_ms = 10;
    assert_int_equal(ratelimit_new(&rl, &o), OPSC_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(free_failures_cost_nothing_then_delays_double_up_to_the_cap),
        cmocka_unit_test(keys_are_independent),
        cmocka_unit_test(failures_are_forgotten_after_a_quiet_period),
        cmocka_unit_test(reset_clears_a_key_and_keeps_the_others_findable),
        cmocka_unit_test(memory_stays_bounded_and_blocking_keys_are_kept),
        cmocka_unit_test(long_keys_are_truncated_consistently),
        cmocka_unit_test(bad_options_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
