/* tls_fixture.h - throw-away certificates for the TLS tests, made with OpenSSL in a temp dir.
 *
 * A CA, certificates it signs (server or client, any validity window), and
 * PEM files of them; a client SSL_CTX trusting a CA file. Everything lives
 * in a fresh directory removed by tf_free(). */
#ifndef OPSC_TLS_FIXTURE_H
#define OPSC_TLS_FIXTURE_H

#include <stdbool.h>

#include <openssl/ssl.h>

typedef struct tf {
    char dir[64];
    EVP_PKEY *ca_key;
    X509 *ca;
} tf;

/* A fresh directory and a CA named `ca_cn`, written to DIR/ca.pem. */
tf *tf_new(const char *ca_cn);
void tf_free(tf *f);
/* DIR/name into buf. */
const char *tf_path(const tf *f, const char *name, char *buf, size_t n);
/* A key and a certificate for `cn` signed by the CA, valid from now +
 * `from_s` to now + `until_s`; written to DIR/<name>.pem and DIR/<name>.key
 * (mode `key_mode`). `client` sets the clientAuth purpose, else serverAuth
 * with localhost and 127.0.0.1 as names. */
void tf_issue(tf *f, const char *name, const char *cn, long from_s, long until_s, bool client,
              int key_mode);
/* The same, signed by `signer`'s CA (another tf), written into f's directory. */
void tf_issue_by(tf *f, const tf *signer, const char *name, const char *cn, long from_s,
                 long until_s, bool client, int key_mode);
/* A client context trusting DIR/<ca_name>.pem, presenting DIR/<cert_name>.pem
 * and .key when cert_name is not NULL. */
SSL_CTX *tf_client_ctx(const tf *f, const char *ca_name, const char *cert_name);

#endif
