/* test_envelope.c - vault crypto: keys, AES-256-GCM, envelopes bound to record, field and key;
 * base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "b64.h"
#include "envelope.h"

#define REC "0190a6e4-7a2b-7c3d-8e4f-001122334455"

static json_t *plain(void)
{
    return json_pack("{s:s, s:s}", "password", "s3cr3t-Pa55", "private_key",
                     "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n");
}

static json_t *sealed_with(const vault_key *k, const char *rec)
{
    json_t *p = plain(), *s = NULL;
    assert_int_equal(vault_envelope_seal(k, rec, p, &s), 0);
    json_decref(p);
    return s;
}

static void envelope_round_trips_every_field(void **state)
{
    (void)state;
    vault_key k;
    assert_int_equal(vault_key_generate(&k), 0);
    json_t *s = sealed_with(&k, REC);
    assert_string_equal(vault_envelope_kid(s), k.id);
    char *v = NULL;
    assert_int_equal(vault_envelope_open(&k, REC, s, "password", &v), 0);
    assert_string_equal(v, "s3cr3t-Pa55");
    vault_secret_free(v);
    assert_int_equal(vault_envelope_open(&k, REC, s, "private_key", &v), 0);
    assert_memory_equal(v, "-----BEGIN OPENSSH", 18);
    vault_secret_free(v);
    assert_int_equal(vault_envelope_open(&k, REC, s, "passphrase", &v), 0);
    assert_null(v);
    /* Nothing of the secrets shows in the sealed form. */
    char *text = json_dumps(s, JSON_COMPACT);
    assert_null(strstr(text, "s3cr3t"));
    assert_null(strstr(text, "OPENSSH"));
    free(text);
    json_decref(s);
}

static void wrong_master_key_never_yields_plaintext(void **state)
{
    (void)state;
    vault_key k, other;
    vault_key_generate(&k);
    vault_key_generate(&other);
    json_t *s = sealed_with(&k, REC);
    char *v = (char *)"sentinel";
    assert_int_equal(vault_envelope_open(&other, REC, s, "password", &v), OPSC_ECRYPTO);
    assert_null(v);
    /* Even when the key id is rewritten to match the wrong key. */
    json_object_set_new(s, "kid", json_string(other.id));
    assert_int_equal(vault_envelope_open(&other, REC, s, "password", &v), OPSC_ECRYPTO);
    json_decref(s);
}

static void envelope_moved_to_another_record_does_not_open(void **state)
{
    (void)state;
    vault_key k;
    vault_key_generate(&k);
    json_t *s = sealed_with(&k, REC);
    char *v = NULL;
    assert_int_equal(
        vault_envelope_open(&k, "0190a6e4-7a2b-7c3d-8e4f-001122334456", s, "password", &v),
        OPSC_ECRYPTO);
    assert_null(v);
    json_decref(s);
}

static void field_moved_to_another_name_does_not_open(void **state)
{
    (void)state;
    vault_key k;
    vault_key_generate(&k);
    json_t *s = sealed_with(&k, REC);
    json_t *fields = json_object_get(s, "fields");
    json_object_set(fields, "passphrase", json_object_get(fields, "password"));
    char *v = NULL;
    assert_int_equal(vault_envelope_open(&k, REC, s, "passphrase", &v), OPSC_ECRYPTO);
    json_decref(s);
}

static void tampered_ciphertext_or_dek_id_does_not_open(void **state)
{
    (void)state;
    vault_key k;
    vault_key_generate(&k);
    json_t *s = sealed_with(&k, REC);
    json_t *fields = json_object_get(s, "fields");
    char *blob = strdup(json_string_value(json_object_get(fields, "password")));
    blob[20] = blob[20] == 'A' ? 'B' : 'A';
    json_object_set_new(fields, "password", json_string(blob));
    char *v = NULL;
    assert_int_equal(vault_envelope_open(&k, REC, s, "password", &v), OPSC_ECRYPTO);
    free(blob);
    json_decref(s);

    s = sealed_with(&k, REC);
    json_object_set_new(s, "dek_id", json_string("0000000000000000"));
    assert_int_equal(vault_envelope_open(&k, REC, s, "password", &v), OPSC_ECRYPTO);
    json_decref(s);
}

static void malformed_envelopes_are_reported_as_corrupt(void **state)
{
    (void)state;
    vault_key k;
    vault_key_generate(&k);
    char *v = NULL;
    json_t *s = json_pack("{s:s, s:s, s:s, s:{s:s}}", "kid", k.id, "dek_id", "00", "dek", "!!",
                          "fields", "password", "AAAA");
    assert_int_equal(vault_envelope_open(&k, REC, s, "password", &v), OPSC_ECORRUPT);
    json_decref(s);
    s = json_object();
    assert_int_equal(vault_envelope_open(&k, REC, s, "password", &v), OPSC_ECORRUPT);
    json_decref(s);
}

static void rewrap_moves_to_the_new_key_without_touching_fields(void **state)
{
    (void)state;
    vault_key old, fresh;
    vault_key_generate(&old);
    vault_key_generate(&fresh);
    json_t *s = sealed_with(&old, REC);
    char *before = json_dumps(json_object_get(s, "fields"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_int_equal(vault_envelope_rewrap(&old, &fresh, REC, s), 0);
    char *after = json_dumps(json_object_get(s, "fields"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(before, after);
    assert_string_equal(vault_envelope_kid(s), fresh.id);
    char *v = NULL;
    assert_int_equal(vault_envelope_open(&fresh, REC, s, "password", &v), 0);
    assert_string_equal(v, "s3cr3t-Pa55");
    vault_secret_free(v);
    assert_int_equal(vault_envelope_open(&old, REC, s, "password", &v), OPSC_ECRYPTO);
    /* Re-wrapping with the wrong old key fails and changes nothing. */
    assert_int_equal(vault_envelope_rewrap(&old, &fresh, REC, s), OPSC_ECRYPTO);
    assert_string_equal(vault_envelope_kid(s), fresh.id);
    free(before);
    free(after);
    json_decref(s);
}

static void each_seal_uses_a_fresh_nonce_and_data_key(void **state)
{
    (void)state;
    vault_key k;
    vault_key_generate(&k);
    json_t *a = sealed_with(&k, REC), *b = sealed_with(&k, REC);
    assert_string_not_equal(json_string_value(json_object_get(a, "dek")),
                            json_string_value(json_object_get(b, "dek")));
    assert_string_not_equal(
        json_string_value(json_object_get(json_object_get(a, "fields"), "password")),
        json_string_value(json_object_get(json_object_get(b, "fields"), "password")));
    json_decref(a);
    json_decref(b);
    uint8_t k32[32] = {1}, o1[64], o2[64];
    assert_int_equal(vault_aead_seal(k32, "x", 1, "same", 4, o1), 0);
    assert_int_equal(vault_aead_seal(k32, "x", 1, "same", 4, o2), 0);
    assert_memory_not_equal(o1, o2, VAULT_NONCE_LEN);
}

static void aead_detects_wrong_aad_and_short_input(void **state)
{
    (void)state;
    uint8_t k32[32] = {7}, out[64], pt[64];
    size_t n = 0;
    assert_int_equal(vault_aead_seal(k32, "aad", 3, "hello", 5, out), 0);
    assert_int_equal(vault_aead_open(k32, "aad", 3, out, 5 + VAULT_SEAL_OVERHEAD, pt, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(pt, "hello", 5);
    assert_int_equal(vault_aead_open(k32, "aae", 3, out, 5 + VAULT_SEAL_OVERHEAD, pt, &n),
                     OPSC_ECRYPTO);
    assert_int_equal(vault_aead_open(k32, "aad", 3, out, 10, pt, &n), OPSC_ECORRUPT);
}

static void key_text_round_trips_and_identifies_the_key(void **state)
{
    (void)state;
    vault_key k, back, other;
    vault_key_generate(&k);
    vault_key_generate(&other);
    char text[64];
    vault_key_format(&k, text);
    assert_int_equal(strlen(text), 45);
    assert_int_equal(vault_key_parse(text, &back), 0);
    assert_memory_equal(back.bytes, k.bytes, VAULT_KEY_LEN);
    assert_string_equal(back.id, k.id);
    assert_int_equal(strlen(k.id), 16);
    assert_string_not_equal(k.id, other.id);
    char c1[VAULT_KCV_LEN], c2[VAULT_KCV_LEN], c3[VAULT_KCV_LEN];
    vault_key_check_value(&k, c1);
    vault_key_check_value(&back, c2);
    vault_key_check_value(&other, c3);
    assert_string_equal(c1, c2);
    assert_string_not_equal(c1, c3);
    assert_null(strstr(c1, k.id)); /* the check value is not the id */
    vault_key_wipe(&k);
    assert_int_equal(k.bytes[0] | k.bytes[31] | k.id[0], 0);
}

static void key_parse_refuses_wrong_lengths_and_alphabets(void **state)
{
    (void)state;
    vault_key k;
    assert_int_equal(vault_key_parse("", &k), OPSC_EINVAL);
    assert_int_equal(vault_key_parse("c2hvcnQ=", &k), OPSC_EINVAL); /* "short" */
    assert_int_equal(vault_key_parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &k),
                     OPSC_EINVAL); /* 36 bytes */
    assert_int_equal(vault_key_parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-=", &k),
                     OPSC_EINVAL);
    assert_int_equal(vault_key_parse("  AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", &k), 0);
}

static void base64_codecs_are_strict(void **state)
{
    (void)state;
    uint8_t out[16];
    size_t n;
    char enc[32];
    assert_int_equal(b64_encode("f", 1, enc), 4);
    assert_string_equal(enc, "Zg==");
    assert_int_equal(b64url_encode("\xfb\xff", 2, enc), 3);
    assert_string_equal(enc, "-_8");
    assert_int_equal(b64_decode("Zm9v", 4, out, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(b64_decode("Zg==", 4, out, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(b64_decode("Zh==", 4, out, &n), OPSC_EINVAL); /* stray bits */
    assert_int_equal(b64_decode("Zg=", 3, out, &n), OPSC_EINVAL);
    assert_int_equal(b64_decode("Z=g=", 4, out, &n), OPSC_EINVAL);
    assert_int_equal(b64url_decode("-_8", 3, out, &n), 0);
    assert_int_equal(b64url_decode("+/8", 3, out, &n), OPSC_EINVAL);
    assert_int_equal(b64url_decode("Zg==", 4, out, &n), OPSC_EINVAL);
    assert_int_equal(b64url_decode("A", 1, out, &n), OPSC_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(envelope_round_trips_every_field),
        cmocka_unit_test(wrong_master_key_never_yields_plaintext),
        cmocka_unit_test(envelope_moved_to_another_record_does_not_open),
        cmocka_unit_test(field_moved_to_another_name_does_not_open),
        cmocka_unit_test(tampered_ciphertext_or_dek_id_does_not_open),
        cmocka_unit_test(malformed_envelopes_are_reported_as_corrupt),
        cmocka_unit_test(rewrap_moves_to_the_new_key_without_touching_fields),
        cmocka_unit_test(each_seal_uses_a_fresh_nonce_and_data_key),
        cmocka_unit_test(aead_detects_wrong_aad_and_short_input),
        cmocka_unit_test(key_text_round_trips_and_identifies_the_key),
        cmocka_unit_test(key_parse_refuses_wrong_lengths_and_alphabets),
        cmocka_unit_test(base64_codecs_are_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
