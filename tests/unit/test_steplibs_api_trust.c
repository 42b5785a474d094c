/* test_steplibs_api_trust.c - trusted publisher keys: PEM and OpenSSH files, fingerprints, verify.
 */
#include "steplibs_api_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include <opsc/errors.h>

#include "b64.h"
#include "trust.h"

EVP_PKEY *test_keygen(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    return k;
}

void test_write_pem(EVP_PKEY *k, const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PUBKEY(f, k), 1);
    fclose(f);
}

void test_write_openssh(EVP_PKEY *k, const char *path, const char *comment)
{
    uint8_t blob[51] = {0,   0,   0,   11,  's', 's', 'h', '-', 'e', 'd',
                        '2', '5', '5', '1', '9', 0,   0,   0,   32};
    size_t len = 32;
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, blob + 19, &len), 1);
    char b64[B64_LEN(sizeof(blob)) + 1];
    b64_encode(blob, sizeof(blob), b64);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# a comment line\n\nssh-ed25519 %s %s\n", b64, comment);
    fclose(f);
}

void test_sign(EVP_PKEY *k, const void *data, size_t len, uint8_t sig[64])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t siglen = 64;
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, k), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, data, len), 1);
    assert_int_equal(siglen, 64);
    EVP_MD_CTX_free(ctx);
}

static int tmp_setup(void **state)
{
    char *dir = strdup("/tmp/opsc-trust-XXXXXX");
    assert_non_null(mkdtemp(dir));
    *state = dir;
    return 0;
}

static int tmp_teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", (char *)*state);
    assert_int_equal(system(cmd), 0);
    free(*state);
    return 0;
}

static void path_in(char *buf, size_t n, void **state, const char *name)
{
    snprintf(buf, n, "%s/%s", (char *)*state, name);
}

static void pem_and_openssh_forms_of_a_key_verify_alike_with_one_fingerprint(void **state)
{
    char pem[256], ssh[256], both[600], err[512] = "";
    path_in(pem, sizeof(pem), state, "publisher.pem");
    path_in(ssh, sizeof(ssh), state, "publisher.pub");
    EVP_PKEY *k = test_keygen();
    test_write_pem(k, pem);
    test_write_openssh(k, ssh, "alice@example");
    snprintf(both, sizeof(both), "%s:%s", pem, ssh);
    trust *t = NULL;
    assert_int_equal(trust_load(&t, both, err, sizeof(err)), 0);
    assert_int_equal(trust_count(t), 2);

    static const char data[] = "\x7f"
                               "ELF pretend library";
    uint8_t sig[64];
    test_sign(k, data, sizeof(data), sig);
    const trust_key *signer = NULL;
    assert_int_equal(trust_verify(t, data, sizeof(data), sig, 64, &signer), 0);
    assert_string_equal(trust_key_name(signer), "publisher.pem");
    const char *fp = trust_key_fingerprint(signer);
    assert_int_equal(strncmp(fp, "SHA256:", 7), 0);
    assert_int_equal(strlen(fp), 7 + 43);

    trust *ssh_only = NULL;
    assert_int_equal(trust_load(&ssh_only, ssh, err, sizeof(err)), 0);
    assert_int_equal(trust_verify(ssh_only, data, sizeof(data), sig, 64, &signer), 0);
    assert_string_equal(trust_key_name(signer), "alice@example");
    assert_string_equal(trust_key_fingerprint(signer), fp);
    json_t *j = trust_key_json(signer);
    assert_string_equal(json_string_value(json_object_get(j, "fingerprint")), fp);
    json_decref(j);

    sig[10] ^= 1; /* tampered signature */
    assert_int_equal(trust_verify(t, data, sizeof(data), sig, 64, &signer), OPSC_EAUTH);
    sig[10] ^= 1;
    assert_int_equal(trust_verify(t, data, sizeof(data) - 1, sig, 64, &signer), OPSC_EAUTH);
    assert_int_equal(trust_verify(t, data, sizeof(data), sig, 63, &signer), OPSC_EINVAL);
    trust_free(ssh_only);
    trust_free(t);
    EVP_PKEY_free(k);
}

static void a_signature_by_an_untrusted_key_does_not_verify(void **state)
{
    char pem[256], err[512] = "";
    path_in(pem, sizeof(pem), state, "trusted.pem");
    EVP_PKEY *trusted = test_keygen(), *other = test_keygen();
    test_write_pem(trusted, pem);
    trust *t = NULL;
    assert_int_equal(trust_load(&t, pem, err, sizeof(err)), 0);
    uint8_t sig[64];
    test_sign(other, "x", 1, sig);
    const trust_key *signer = NULL;
    assert_int_equal(trust_verify(t, "x", 1, sig, 64, &signer), OPSC_EAUTH);
    trust *none = NULL;
    assert_int_equal(trust_load(&none, "", err, sizeof(err)), 0);
    assert_int_equal(trust_count(none), 0);
    assert_int_equal(trust_verify(none, "x", 1, sig, 64, &signer), OPSC_EAUTH);
    trust_free(none);
    trust_free(t);
    EVP_PKEY_free(trusted);
    EVP_PKEY_free(other);
}

static void load_fails(void **state, const char *name, const char *text, const char *why)
{
    char path[256], err[512] = "";
    path_in(path, sizeof(path), state, name);
    if (text) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
    }
    trust *t = NULL;
    int rc = trust_load(&t, path, err, sizeof(err));
    assert_true(rc < 0);
    assert_null(t);
    if (!strstr(err, why) || !strstr(err, path))
        fail_msg("'%s' should name %s and say '%s'", err, path, why);
}

static void keys_of_other_types_and_broken_files_fail_naming_file_and_line(void **state)
{
    load_fails(state, "missing.pem", NULL, "cannot read");
    load_fails(state, "rsa.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE\nssh-rsa AAAAB3Nza x\n",
               ":1: malformed ssh-ed25519 key");
    load_fails(state, "rsa2.pub", "\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ x\n",
               ":2: only ssh-ed25519 keys");
    load_fails(state, "empty.pub", "# nothing\n", "no public key");
    load_fails(state, "bad.pem", "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
               "no PEM public key");

    char ec[256], err[512] = "";
    path_in(ec, sizeof(ec), state, "ec.pem");
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    test_write_pem(k, ec);
    EVP_PKEY_free(k);
    trust *t = NULL;
    assert_int_equal(trust_load(&t, ec, err, sizeof(err)), OPSC_EINVAL);
    assert_non_null(strstr(err, "not an Ed25519 key"));
}

const struct CMUnitTest trust_tests[] = {
    cmocka_unit_test_setup_teardown(
        pem_and_openssh_forms_of_a_key_verify_alike_with_one_fingerprint, tmp_setup, tmp_teardown),
    cmocka_unit_test_setup_teardown(a_signature_by_an_untrusted_key_does_not_verify, tmp_setup,
                                    tmp_teardown),
    cmocka_unit_test_setup_teardown(keys_of_other_types_and_broken_files_fail_naming_file_and_line,
                                    tmp_setup, tmp_teardown),
};
const size_t trust_test_count = sizeof(trust_tests) / sizeof(trust_tests[0]);
