/* test_access_token.c - JWT issue and verify: pinned HS256, and every claim checked in our code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <opsc/errors.h>

#include "access_token.h"
#include "b64.h"

#define NOW 1800000000
static const uint8_t key_bytes[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t other_bytes[32] = "fedcba9876543210fedcba9876543210";
static const access_key key = {key_bytes, sizeof(key_bytes), "opsconductor"};

/* header.payload.signature with our own HMAC, so tests can sign anything. */
static char *forge(const char *header, const char *payload, const EVP_MD *md, const uint8_t *k,
                   size_t klen)
{
    static char out[4096];
    char h[1024], p[2048];
    b64url_encode(header, strlen(header), h);
    b64url_encode(payload, strlen(payload), p);
    snprintf(out, sizeof(out), "%s.%s.", h, p);
    if (md) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        HMAC(md, k, (int)klen, (unsigned char *)out, strlen(out) - 1, mac, &n);
        b64url_encode(mac, n, out + strlen(out));
    }
    return out;
}

static char *claims_json(const char *extra)
{
    static char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"sub\":\"0190a6e4-7a2b-7c3d-8e4f-001122334455\",\"role\":\"operator\","
             "\"iss\":\"opsconductor\",\"jti\":\"abc123\",\"sid\":\"s-1\",\"iat\":%d,"
             "\"exp\":%d%s}",
             NOW - 10, NOW + 900, extra ? extra : "");
    return buf;
}

static int verify(const char *tok)
{
    access_claims c;
    char why[128];
    return access_token_verify(&key, tok, NOW, &c, why, sizeof(why));
}

#define HS256_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static void issued_token_verifies_with_its_claims(void **state)
{
    (void)state;
    char *tok = NULL;
    access_claims issued, got;
    assert_int_equal(access_token_issue(&key, "user-1", "admin", "s-1", NOW, 900, &tok, &issued),
                     0);
    char why[128] = "";
    assert_int_equal(access_token_verify(&key, tok, NOW + 1, &got, why, sizeof(why)), 0);
    assert_string_equal(got.sub, "user-1");
    assert_string_equal(got.role, "admin");
    assert_string_equal(got.jti, issued.jti);
    assert_string_equal(got.sid, "s-1");
    assert_int_equal(strlen(got.jti), 32);
    assert_int_equal(got.iat, NOW);
    assert_int_equal(got.exp, NOW + 900);
    free(tok);
}

static void forged_hs256_with_our_key_verifies(void **state)
{
    (void)state; /* the forging helper is right, so the refusals below mean something */
    assert_int_equal(verify(forge(HS256_HEADER, claims_json(NULL), EVP_sha256(), key_bytes, 32)),
                     0);
    assert_int_equal(
        verify(forge("{\"alg\":\"HS256\"}", claims_json(NULL), EVP_sha256(), key_bytes, 32)), 0);
}

/* A token without its session could not be revoked with it. */
static void token_without_a_session_is_refused(void **state)
{
    (void)state;
    char claims[512];
    snprintf(claims, sizeof(claims),
             "{\"sub\":\"u\",\"role\":\"admin\",\"iss\":\"opsconductor\",\"jti\":\"j\","
             "\"iat\":%d,\"exp\":%d}",
             NOW - 10, NOW + 900);
    assert_int_equal(verify(forge(HS256_HEADER, claims, EVP_sha256(), key_bytes, 32)), OPSC_EAUTH);
    char *tok = NULL;
    assert_int_equal(access_token_issue(&key, "u", "admin", "", NOW, 60, &tok, NULL), OPSC_EINVAL);
}

static void alg_none_is_refused(void **state)
{
    (void)state;
    assert_int_equal(
        verify(forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims_json(NULL), NULL, NULL, 0)),
        OPSC_EAUTH);
    assert_int_equal(
        verify(forge("{\"alg\":\"none\"}", claims_json(NULL), EVP_sha256(), key_bytes, 32)),
        OPSC_EAUTH);
    assert_int_equal(verify(forge("{\"alg\":\"NONE\"}", claims_json(NULL), NULL, NULL, 0)),
                     OPSC_EAUTH);
}

static void hs512_and_hs384_are_refused_even_with_our_key(void **state)
{
    (void)state;
    assert_int_equal(verify(forge("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", claims_json(NULL),
                                  EVP_sha512(), key_bytes, 32)),
                     OPSC_EAUTH);
    assert_int_equal(verify(forge("{\"alg\":\"HS384\",\"typ\":\"JWT\"}", claims_json(NULL),
                                  EVP_sha384(), key_bytes, 32)),
                     OPSC_EAUTH);
    /* libjwt's own HS512 token with our key. */
    jwt_t *j;
    assert_int_equal(jwt_new(&j), 0);
    jwt_add_grants_json(j, claims_json(NULL));
    jwt_set_alg(j, JWT_ALG_HS512, key_bytes, 32);
    char *t = jwt_encode_str(j);
    assert_int_equal(verify(t), OPSC_EAUTH);
    free(t);
    jwt_free(j);
}

static void rs256_header_is_refused(void **state)
{
    (void)state;
    assert_int_equal(verify(forge("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", claims_json(NULL),
                                  EVP_sha256(), key_bytes, 32)),
                     OPSC_EAUTH);
}

static void unexpected_header_members_are_refused(void **state)
{
    (void)state;
    const char *headers[] = {
        "{\"alg\":\"HS256\",\"typ\":\"JWS\"}",
        "{\"alg\":\"HS256\",\"kid\":\"../../x\"}",
        "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
        "{\"typ\":\"JWT\"}",
        "{\"alg\":\"HS256\",\"alg\":\"none\"}",
        "[\"HS256\"]",
        "{\"alg\":256}",
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
        if (verify(forge(headers[i], claims_json(NULL), EVP_sha256(), key_bytes, 32)) != OPSC_EAUTH)
            fail_msg("header %s accepted", headers[i]);
}

static void token_signed_with_another_key_is_refused(void **state)
{
    (void)state;
    assert_int_equal(verify(forge(HS256_HEADER, claims_json(NULL), EVP_sha256(), other_bytes, 32)),
                     OPSC_EAUTH);
    char *tok = NULL;
    access_key other = {other_bytes, 32, "opsconductor"};
    assert_int_equal(access_token_issue(&other, "u", "admin", "s-1", NOW, 60, &tok, NULL), 0);
    assert_int_equal(verify(tok), OPSC_EAUTH);
    free(tok);
}

static void tampered_payload_is_refused(void **state)
{
    (void)state;
    char *tok = NULL;
    assert_int_equal(access_token_issue(&key, "user-1", "viewer", "s-1", NOW, 900, &tok, NULL), 0);
    /* Swap in a payload claiming admin, keep header and signature. */
    char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
    char p[1024], forged[4096];
    const char *admin = "{\"sub\":\"user-1\",\"role\":\"admin\",\"iat\":1800000000,"
                        "\"exp\":1800000900,\"iss\":\"opsconductor\",\"jti\":\"x\"}";
    b64url_encode(admin, strlen(admin), p);
    snprintf(forged, sizeof(forged), "%.*s.%s%s", (int)(d1 - tok), tok, p, d2);
    assert_int_equal(verify(forged), OPSC_EAUTH);
    /* Flip one character of the signature. */
    size_t n = strlen(tok);
    tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(tok), OPSC_EAUTH);
    free(tok);
}

static void expired_token_is_refused(void **state)
{
    (void)state;
    char *tok = NULL;
    assert_int_equal(access_token_issue(&key, "u", "viewer", "s-1", NOW - 1000, 900, &tok, NULL),
                     0);
    assert_int_equal(verify(tok), OPSC_EAUTH);
    free(tok);
    assert_int_equal(access_token_issue(&key, "u", "viewer", "s-1", NOW - 900, 900, &tok, NULL), 0);
    assert_int_equal(verify(tok), OPSC_EAUTH); /* exp == now is expired */
    free(tok);
}

static void token_not_yet_valid_is_refused(void **state)
{
    (void)state;
    char extra[64];
    snprintf(extra, sizeof(extra), ",\"nbf\":%d", NOW + 60);
    assert_int_equal(verify(forge(HS256_HEADER, claims_json(extra), EVP_sha256(), key_bytes, 32)),
                     OPSC_EAUTH);
    snprintf(extra, sizeof(extra), ",\"nbf\":%d", NOW - 1);
    assert_int_equal(verify(forge(HS256_HEADER, claims_json(extra), EVP_sha256(), key_bytes, 32)),
                     0);
    /* Issued in the future (beyond the leeway). */
    char *tok = NULL;
    assert_int_equal(access_token_issue(&key, "u", "viewer", "s-1", NOW + 120, 900, &tok, NULL), 0);
    assert_int_equal(verify(tok), OPSC_EAUTH);
    free(tok);
}

static void wrong_issuer_is_refused(void **state)
{
    (void)state;
    char *tok = NULL;
    access_key elsewhere = {key_bytes, 32, "someone-else"};
    assert_int_equal(access_token_issue(&elsewhere, "u", "admin", "s-1", NOW, 900, &tok, NULL), 0);
    assert_int_equal(verify(tok), OPSC_EAUTH);
    free(tok);
}

static void malformed_claims_are_refused(void **state)
{
    (void)state;
    const char *payloads[] = {
        "{\"sub\":\"u\",\"role\":\"operator\",\"iss\":\"opsconductor\",\"jti\":\"j\",\"iat\":1}",
        "{\"sub\":\"u\",\"role\":\"root\",\"iss\":\"opsconductor\",\"jti\":\"j\",\"iat\":1,"
        "\"exp\":1900000000}",
        "{\"role\":\"admin\",\"iss\":\"opsconductor\",\"jti\":\"j\",\"iat\":1,\"exp\":1900000000}",
        "{\"sub\":\"u\",\"role\":\"admin\",\"iss\":\"opsconductor\",\"iat\":1,\"exp\":1900000000}",
        "{\"sub\":\"u\",\"role\":\"admin\",\"iss\":\"opsconductor\",\"jti\":\"j\",\"iat\":1,"
        "\"exp\":\"1900000000\"}",
        "{\"sub\":\"u\",\"role\":\"admin\",\"iss\":\"opsconductor\",\"jti\":\"j\",\"iat\":1,"
        "\"exp\":1.9e9}",
        "{\"sub\":\"\",\"role\":\"admin\",\"iss\":\"opsconductor\",\"jti\":\"j\",\"iat\":1,"
        "\"exp\":1900000000}",
        "{\"sub\":\"u\",\"role\":\"admin\",\"jti\":\"j\",\"iat\":1,\"exp\":1900000000}",
        "[1,2,3]",
        "not json",
    };
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++)
        if (verify(forge(HS256_HEADER, payloads[i], EVP_sha256(), key_bytes, 32)) != OPSC_EAUTH)
            fail_msg("payload %s accepted", payloads[i]);
}

static void malformed_text_is_refused(void **state)
{
    (void)state;
    const char *bad[] = {"", "abc", "a.b", "a.b.c.d", "..", "a.b.", "a b.c.d", "a.b.c=", "a+b.c.d"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (verify(bad[i]) != OPSC_EAUTH)
            fail_msg("'%s' accepted", bad[i]);
    assert_int_equal(verify(NULL), OPSC_EAUTH);
    char *big = malloc(ACCESS_TOKEN_MAX + 10);
    memset(big, 'a', ACCESS_TOKEN_MAX + 9);
    big[ACCESS_TOKEN_MAX + 9] = '\0';
    big[10] = big[20] = '.';
    assert_int_equal(verify(big), OPSC_EAUTH);
    free(big);
}

static void issue_refuses_short_keys_and_bad_roles(void **state)
{
    (void)state;
    char *tok = NULL;
    access_key shortk = {key_bytes, 16, "opsconductor"};
    assert_int_equal(access_token_issue(&shortk, "u", "admin", "s-1", NOW, 60, &tok, NULL),
                     OPSC_EINVAL);
    assert_int_equal(access_token_issue(&key, "u", "root", "s-1", NOW, 60, &tok, NULL),
                     OPSC_EINVAL);
    assert_int_equal(access_token_issue(&key, "", "admin", "s-1", NOW, 60, &tok, NULL),
                     OPSC_EINVAL);
    assert_int_equal(access_token_issue(&key, "u", "admin", "s-1", NOW, 0, &tok, NULL),
                     OPSC_EINVAL);
    assert_null(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issued_token_verifies_with_its_claims),
        cmocka_unit_test(forged_hs256_with_our_key_verifies),
        cmocka_unit_test(alg_none_is_refused),
        cmocka_unit_test(hs512_and_hs384_are_refused_even_with_our_key),
        cmocka_unit_test(rs256_header_is_refused),
        cmocka_unit_test(unexpected_header_members_are_refused),
        cmocka_unit_test(token_signed_with_another_key_is_refused),
        cmocka_unit_test(tampered_payload_is_refused),
        cmocka_unit_test(expired_token_is_refused),
        cmocka_unit_test(token_not_yet_valid_is_refused),
        cmocka_unit_test(wrong_issuer_is_refused),
        cmocka_unit_test(malformed_claims_are_refused),
        cmocka_unit_test(token_without_a_session_is_refused),
        cmocka_unit_test(malformed_text_is_refused),
        cmocka_unit_test(issue_refuses_short_keys_and_bad_roles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
