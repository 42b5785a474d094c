/* steplibs_api_test.h - what the run-time install tests share (one executable, test_steplibs_api).
 */
#ifndef OPSC_STEPLIBS_API_TEST_H
#define OPSC_STEPLIBS_API_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/evp.h>

/* A fresh Ed25519 key pair (free with EVP_PKEY_free). */
EVP_PKEY *test_keygen(void);
/* Write the public key as PEM, or as an OpenSSH line with `comment`, to `path`. */
void test_write_pem(EVP_PKEY *k, const char *path);
void test_write_openssh(EVP_PKEY *k, const char *path, const char *comment);
/* The 64-byte Ed25519 signature of data. */
void test_sign(EVP_PKEY *k, const void *data, size_t len, uint8_t sig[64]);

/* Trusted key tests (test_steplibs_api_trust.c). */
extern const struct CMUnitTest trust_tests[];
extern const size_t trust_test_count;

#endif
