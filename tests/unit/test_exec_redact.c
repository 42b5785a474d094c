/* test_exec_redact.c - secrets redacted from output streams, whatever the split of the stream into
 * reads: every byte offset, three pieces, byte by byte, multi-byte UTF-8 at the cut, secrets
 * that begin others. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exec_internal.h"

/* Longest first, as the executor keeps them. */
static char *secrets[] = {"pässwörd-\xe2\x82\xac-9f2c", "hunter2", "hunt"};
#define NSECRETS 3

static char *feed_pieces(const char *text, const size_t *cuts, size_t ncuts)
{
    strbuf held = STRBUF_INIT, out = STRBUF_INIT;
    size_t from = 0, len = strlen(text);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        ex_redact_stream(secrets, NSECRETS, &held, text + from, to - from, false, &out);
        from = to;
    }
    ex_redact_stream(secrets, NSECRETS, &held, "", 0, true, &out);
    sb_append(&out, "", 1);
    sb_free(&held);
    return sb_steal(&out, NULL);
}

static void assert_redacted(const char *text, const char *want, const size_t *cuts, size_t n)
{
    char *got = feed_pieces(text, cuts, n);
    if (strcmp(got, want) != 0)
        fail_msg("cuts at %zu/%zu: got '%s', want '%s'", n ? cuts[0] : 0, n > 1 ? cuts[1] : 0, got,
                 want);
    free(got);
}

static void a_secret_split_at_every_byte_offset_is_redacted(void **state)
{
    (void)state;
    const char *text = "key=pässwörd-\xe2\x82\xac-9f2c; again pässwörd-\xe2\x82\xac-9f2c!\n";
    const char *want = "key=********; again ********!\n";
    size_t len = strlen(text);
    for (size_t k = 0; k <= len; k++)
        assert_redacted(text, want, &k, 1);
    for (size_t a = 0; a <= len; a += 3)
        for (size_t b = a; b <= len; b += 2) {
            size_t cuts[2] = {a, b};
            assert_redacted(text, want, cuts, 2);
        }
}

static void byte_by_byte_and_at_the_end_of_the_stream(void **state)
{
    (void)state;
    const char *text = "hunter2hunter2 hunt hunte pässwörd-\xe2\x82\xac-9f2";
    size_t len = strlen(text), cuts[64];
    for (size_t i = 0; i < len && i < 64; i++)
        cuts[i] = i + 1;
    /* "hunte" did not become "hunter2": its "hunt" is still one; the unfinished
     * "pässwörd..." at the end of the stream is not a secret and goes out. */
    assert_redacted(text, "**************** ******** ********e pässwörd-\xe2\x82\xac-9f2", cuts,
                    len < 64 ? len : 64);
}

static void a_secret_that_begins_a_longer_one_waits_for_the_longer(void **state)
{
    (void)state;
    strbuf held = STRBUF_INIT, out = STRBUF_INIT;
    ex_redact_stream(secrets, NSECRETS, &held, "x hunt", 6, false, &out);
    /* "hunt" is a secret, but it may still become "hunter2": nothing of it goes out yet */
    assert_int_equal(out.len, 2);
    assert_memory_equal(out.buf, "x ", 2);
    assert_int_equal(held.len, 4);
    ex_redact_stream(secrets, NSECRETS, &held, "er2.", 4, false, &out);
    sb_append(&out, "", 1);
    assert_string_equal(out.buf, "x ********.");
    assert_int_equal(held.len, 0);
    sb_free(&held);
    sb_free(&out);
}

static void the_held_tail_is_shorter_than_the_longest_secret(void **state)
{
    (void)state;
    strbuf held = STRBUF_INIT, out = STRBUF_INIT;
    char big[4096];
    memset(big, 'p', sizeof(big)); /* every byte could begin "pässwörd..." */
    ex_redact_stream(secrets, NSECRETS, &held, big, sizeof(big), false, &out);
    assert_true(held.len < strlen(secrets[0]));
    assert_int_equal(out.len + held.len, sizeof(big));
    sb_free(&held);
    sb_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_secret_split_at_every_byte_offset_is_redacted),
        cmocka_unit_test(byte_by_byte_and_at_the_end_of_the_stream),
        cmocka_unit_test(a_secret_that_begins_a_longer_one_waits_for_the_longer),
        cmocka_unit_test(the_held_tail_is_shorter_than_the_longest_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
