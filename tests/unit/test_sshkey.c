/* test_sshkey.c - SSH private key validation: formats, passphrases, types, fingerprints as
 * ssh-keygen shows them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "sshkey.h"
#include "util.h"

static char dir[] = "/tmp/opsc-test-sshkey-XXXXXX";

/* ssh-keygen makes the keys, so the test also checks our fingerprint
 * against OpenSSH's own. */
static int make_keys(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "cd %s && ssh-keygen -q -t ed25519 -N '' -f ed && "
             "ssh-keygen -q -t ed25519 -N 'open sesame' -f ed_enc && "
             "ssh-keygen -q -t rsa -b 3072 -m PEM -N '' -f rsa_pem && "
             "ssh-keygen -q -t rsa -b 2048 -m PEM -N 'open sesame' -f rsa_pem_enc && "
             "ssh-keygen -q -t rsa -b 1024 -m PEM -N '' -f rsa_weak && "
             "ssh-keygen -q -t ecdsa -b 384 -m PKCS8 -N 'open sesame' -f ec_p8_enc && "
             "for k in ed rsa_pem ec_p8_enc; do ssh-keygen -l -E sha256 -f $k.pub | "
             "cut -d' ' -f2 > $k.fp; done && "
             "ssh-keygen -q -t ed25519 -N '' -f ca && "
             "ssh-keygen -q -s ca -I test -n opsctest -V +1h ed.pub && "
             "ssh-keygen -q -s ca -I test -n opsctest -V +1h rsa_pem.pub",
             dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int remove_keys(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *slurp(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    char *text = NULL;
    assert_int_equal(fs_read_file(path, 1 << 20, &text, NULL), 0);
    return text;
}

static char *fingerprint_of(const char *name)
{
    char fp[64];
    snprintf(fp, sizeof(fp), "%s.fp", name);
    char *t = slurp(fp);
    t[strcspn(t, "\n")] = '\0';
    return t;
}

static void unencrypted_openssh_ed25519_is_accepted_with_its_fingerprint(void **state)
{
    (void)state;
    char *key = slurp("ed"), *fp = fingerprint_of("ed"), err[256] = "";
    sshkey_info info;
    assert_int_equal(sshkey_validate(key, NULL, &info, err, sizeof(err)), 0);
    assert_string_equal(info.type, "ssh-ed25519");
    assert_string_equal(info.fingerprint, fp);
    assert_int_equal(info.bits, 256);
    assert_false(info.encrypted);
    assert_string_equal(info.warning, "");
    free(key);
    free(fp);
}

static void encrypted_openssh_key_needs_the_right_passphrase(void **state)
{
    (void)state;
    char *key = slurp("ed_enc"), err[256] = "";
    sshkey_info info;
    assert_int_equal(sshkey_validate(key, NULL, &info, err, sizeof(err)), OPSC_EINVAL);
    assert_non_null(strstr(err, "passphrase"));
    assert_int_equal(sshkey_validate(key, "", &info, err, sizeof(err)), OPSC_EINVAL);
    assert_int_equal(sshkey_validate(key, "open sesam", &info, err, sizeof(err)), OPSC_EINVAL);
    assert_non_null(strstr(err, "wrong passphrase"));
    assert_null(strstr(err, "open sesam"));
    assert_int_equal(sshkey_validate(key, "open sesame", &info, err, sizeof(err)), 0);
    assert_true(info.encrypted);
    free(key);
}

static void pem_rsa_key_is_accepted_with_a_warning(void **state)
{
    (void)state;
    char *key = slurp("rsa_pem"), *fp = fingerprint_of("rsa_pem"), err[256] = "";
    sshkey_info info;
    assert_int_equal(sshkey_validate(key, NULL, &info, err, sizeof(err)), 0);
    assert_string_equal(info.type, "ssh-rsa");
    assert_int_equal(info.bits, 3072);
    assert_string_equal(info.fingerprint, fp);
    assert_non_null(strstr(info.warning, "ed25519"));
    free(key);
    free(fp);
}

static void encrypted_pem_and_pkcs8_keys_are_checked(void **state)
{
    (void)state;
    char *rsa = slurp("rsa_pem_enc"), *ec = slurp("ec_p8_enc"), *fp = fingerprint_of("ec_p8_enc");
    char err[256] = "";
    sshkey_info info;
    assert_int_equal(sshkey_validate(rsa, NULL, &info, err, sizeof(err)), OPSC_EINVAL);
    assert_int_equal(sshkey_validate(rsa, "nope", &info, err, sizeof(err)), OPSC_EINVAL);
    assert_int_equal(sshkey_validate(rsa, "open sesame", &info, err, sizeof(err)), 0);
    assert_int_equal(info.bits, 2048);
    assert_int_equal(sshkey_validate(ec, NULL, &info, err, sizeof(err)), OPSC_EINVAL);
    assert_int_equal(sshkey_validate(ec, "open sesame", &info, err, sizeof(err)), 0);
    assert_string_equal(info.type, "ecdsa-sha2-nistp384");
    assert_string_equal(info.fingerprint, fp);
    free(rsa);
    free(ec);
    free(fp);
}

static void passphrase_for_a_plain_key_is_flagged(void **state)
{
    (void)state;
    char *key = slurp("ed"), err[256] = "";
    sshkey_info info;
    assert_int_equal(sshkey_validate(key, "unneeded", &info, err, sizeof(err)), 0);
    assert_true(info.passphrase_unused);
    free(key);
}

static void weak_rsa_and_garbage_are_refused(void **state)
{
    (void)state;
    char *weak = slurp("rsa_weak"), err[256] = "";
    sshkey_info info;
    assert_int_equal(sshkey_validate(weak, NULL, &info, err, sizeof(err)), OPSC_EINVAL);
    assert_non_null(strstr(err, "1024"));
    free(weak);
    char *pub = slurp("ed.pub");
    assert_int_equal(sshkey_validate(pub, NULL, &info, err, sizeof(err)), OPSC_EINVAL);
    free(pub);
    static const char truncated[] = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                                    "-----END OPENSSH PRIVATE KEY-----\n";
    const char *bad[] = {"", "hello", truncated};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(sshkey_validate(bad[i], NULL, &info, err, sizeof(err)), OPSC_EINVAL);
    assert_int_equal(sshkey_validate(NULL, NULL, &info, err, sizeof(err)), OPSC_EINVAL);
}

/* An OpenSSH user certificate is kept with its key only when it certifies that key. */
static void certificate_must_certify_the_key(void **state)
{
    (void)state;
    char *key = slurp("ed"), *cert = slurp("ed-cert.pub"), *other = slurp("rsa_pem-cert.pub");
    char *plain = slurp("ed.pub"), err[256] = "";
    sshkey_info info;
    assert_int_equal(sshkey_validate(key, NULL, &info, err, sizeof(err)), 0);
    assert_int_equal(sshkey_cert_check(cert, &info, err, sizeof(err)), 0);
    assert_int_equal(sshkey_cert_check(other, &info, err, sizeof(err)), OPSC_EINVAL);
    assert_non_null(strstr(err, "ssh-ed25519-cert-v01@openssh.com"));
    assert_int_equal(sshkey_cert_check(plain, &info, err, sizeof(err)), OPSC_EINVAL);
    assert_int_equal(sshkey_cert_check("garbage", &info, err, sizeof(err)), OPSC_EINVAL);
    /* the right type, someone else's key */
    char forged[8192];
    snprintf(forged, sizeof(forged), "%s", cert);
    char *b64 = strchr(forged, ' ') + 1;
    b64[120] = b64[120] == 'A' ? 'B' : 'A'; /* a byte of the certified public key */
    assert_int_equal(sshkey_cert_check(forged, &info, err, sizeof(err)), OPSC_EINVAL);
    free(key);
    free(cert);
    free(other);
    free(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unencrypted_openssh_ed25519_is_accepted_with_its_fingerprint),
        cmocka_unit_test(encrypted_openssh_key_needs_the_right_passphrase),
        cmocka_unit_test(pem_rsa_key_is_accepted_with_a_warning),
        cmocka_unit_test(encrypted_pem_and_pkcs8_keys_are_checked),
        cmocka_unit_test(passphrase_for_a_plain_key_is_flagged),
        cmocka_unit_test(weak_rsa_and_garbage_are_refused),
        cmocka_unit_test(certificate_must_certify_the_key),
    };
    return cmocka_run_group_tests(tests, make_keys, remove_keys);
}
