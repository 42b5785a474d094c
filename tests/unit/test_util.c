/* test_util.c - ids, time text, files, buffers and constant-time helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "strbuf.h"
#include "util.h"

static void uuid7_is_canonical_version_7_and_variant_10(void **state)
{
    (void)state;
    char id[UUID_STR_LEN];
    assert_int_equal(uuid7_new(id), 0);
    assert_true(uuid_valid(id));
    assert_int_equal(id[14], '7');
    assert_non_null(strchr("89ab", id[19]));
}

static void uuid7_sorts_by_creation_even_within_one_millisecond(void **state)
{
    (void)state;
    char prev[UUID_STR_LEN], cur[UUID_STR_LEN];
    assert_int_equal(uuid7_new_at(prev, 1700000000000), 0);
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(uuid7_new_at(cur, 1700000000000), 0);
        if (strcmp(prev, cur) >= 0)
            fail_msg("ids out of order: %s then %s", prev, cur);
        memcpy(prev, cur, sizeof(cur));
    }
}

static void uuid7_time_is_recoverable(void **state)
{
    (void)state;
    char id[UUID_STR_LEN];
    assert_int_equal(uuid7_new_at(id, 1800000000123), 0);
    assert_true(uuid7_time_ms(id) >= 1800000000123);
    assert_int_equal(uuid7_time_ms("not-a-uuid"), -1);
}

static void uuid_valid_rejects_malformed_text(void **state)
{
    (void)state;
    assert_false(uuid_valid(NULL));
    assert_false(uuid_valid(""));
    assert_false(uuid_valid("0190a6e4-7a2b-7c3d-8e4f-00112233445"));
    assert_false(uuid_valid("0190a6e4x7a2b-7c3d-8e4f-001122334455"));
    assert_false(uuid_valid("0190a6e4-7a2b-7c3d-8e4f-00112233445g"));
    assert_true(uuid_valid("0190A6E4-7A2B-7C3D-8E4F-001122334455"));
}

static void rfc3339_round_trips_with_milliseconds(void **state)
{
    (void)state;
    char buf[RFC3339_LEN];
    int64_t ms;
    rfc3339_format(1795000000123, buf);
    assert_string_equal(buf, "2026-11-18T11:06:40.123Z");
    assert_int_equal(rfc3339_parse(buf, &ms), 0);
    assert_int_equal(ms, 1795000000123);
    rfc3339_format(-1, buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
}

static void rfc3339_parses_offsets_and_fractions(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(rfc3339_parse("2026-03-29T01:00:00+05:45", &ms), 0);
    assert_int_equal(ms, 1774725300000);
    assert_int_equal(rfc3339_parse("2026-03-29T01:00:00.5-01:00", &ms), 0);
    assert_int_equal(ms, 1774749600500);
    assert_int_equal(rfc3339_parse("2024-02-29t00:00:00z", &ms), 0);
}

static void rfc3339_rejects_invalid_dates(void **state)
{
    (void)state;
    int64_t ms;
    const char *bad[] = {"",
                         "2026-13-01T00:00:00Z",
                         "2026-02-29T00:00:00Z",
                         "2026-01-01T24:00:00Z",
                         "2026-01-01T00:00:00",
                         "2026-01-01T00:00:00+5:00",
                         "2026-01-01T00:00:00Zjunk",
                         "2026-01-01T00:00:00.Z",
                         "26-01-01T00:00:00Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (rfc3339_parse(bad[i], &ms) != OPSC_EINVAL)
            fail_msg("accepted '%s'", bad[i]);
}

static void fs_write_file_is_atomic_with_exact_mode(void **state)
{
    (void)state;
    char dir[] = "/tmp/opsc-test-fs-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[256], file[300];
    snprintf(sub, sizeof(sub), "%s/a/b/c", dir);
    assert_int_equal(fs_mkdir_p(sub, 0700), 0);
    assert_int_equal(fs_join(file, sizeof(file), sub, "key"), 0);
    mode_t old = umask(0);
    assert_int_equal(fs_write_file(file, "secret", 6, 0600), 0);
    umask(old);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *data;
    size_t len;
    assert_int_equal(fs_read_file(file, 1024, &data, &len), 0);
    assert_int_equal(len, 6);
    assert_string_equal(data, "secret");
    free(data);
    assert_int_equal(fs_read_file(file, 3, &data, &len), OPSC_E2BIG);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void fs_join_refuses_overflow(void **state)
{
    (void)state;
    char small[8];
    assert_int_equal(fs_join(small, sizeof(small), "/long/dir", "name"), OPSC_E2BIG);
}

static void strbuf_grows_and_hands_over(void **state)
{
    (void)state;
    strbuf sb = STRBUF_INIT;
    for (int i = 0; i < 1000; i++)
        sb_printf(&sb, "%d,", i);
    sb_puts(&sb, "end");
    size_t len;
    char *s = sb_steal(&sb, &len);
    assert_int_equal(len, strlen(s));
    assert_non_null(strstr(s, "999,end"));
    assert_null(sb.buf);
    free(s);
    s = sb_steal(&sb, &len);
    assert_string_equal(s, "");
    free(s);
}

static void ct_equal_compares_whole_buffers(void **state)
{
    (void)state;
    assert_true(ct_equal("abcdef", "abcdef", 6));
    assert_false(ct_equal("abcdef", "abcdeg", 6));
    assert_false(ct_equal("xbcdef", "abcdef", 6));
}

static void rand_hex_gives_distinct_lowercase_hex(void **state)
{
    (void)state;
    char a[65], b[65];
    assert_int_equal(rand_hex(a, 32), 0);
    assert_int_equal(rand_hex(b, 32), 0);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strspn(a, "0123456789abcdef"), 64);
    assert_string_not_equal(a, b);
    assert_int_equal(rand_hex(a, 65), -EINVAL);
}

static int64_t fixed_clock(void)
{
    return 42000;
}

static void clock_source_can_be_injected(void **state)
{
    (void)state;
    clock_set_source(fixed_clock);
    assert_int_equal(clock_now_ms(), 42000);
    clock_set_source(NULL);
    assert_true(clock_now_ms() > 1700000000000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(uuid7_is_canonical_version_7_and_variant_10),
        cmocka_unit_test(uuid7_sorts_by_creation_even_within_one_millisecond),
        cmocka_unit_test(uuid7_time_is_recoverable),
        cmocka_unit_test(uuid_valid_rejects_malformed_text),
        cmocka_unit_test(rfc3339_round_trips_with_milliseconds),
        cmocka_unit_test(rfc3339_parses_offsets_and_fractions),
        cmocka_unit_test(rfc3339_rejects_invalid_dates),
        cmocka_unit_test(fs_write_file_is_atomic_with_exact_mode),
        cmocka_unit_test(fs_join_refuses_overflow),
        cmocka_unit_test(strbuf_grows_and_hands_over),
        cmocka_unit_test(ct_equal_compares_whole_buffers),
        cmocka_unit_test(rand_hex_gives_distinct_lowercase_hex),
        cmocka_unit_test(clock_source_can_be_injected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
