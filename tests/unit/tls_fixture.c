/* tls_fixture.c - throw-away CA and certificates for the TLS tests (OpenSSL, no CLI). */
#include "tls_fixture.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    if (!k)
        abort();
    return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!e || !X509_add_ext(x, e, -1))
        abort();
    X509_EXTENSION_free(e);
}

/* Unsigned: the caller adds what it needs, then signs. */
static X509 *new_cert(const char *cn, EVP_PKEY *key, X509 *issuer, long from_s, long until_s)
{
    static long serial = 1;
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), until_s);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    add_ext(x, issuer ? issuer : x, NID_basic_constraints,
            issuer ? "critical,CA:FALSE" : "critical,CA:TRUE");
    if (!issuer)
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    return x;
}

static void write_cert(const char *path, X509 *x)
{
    FILE *fp = fopen(path, "w");
    if (!fp || !PEM_write_X509(fp, x))
        abort();
    fclose(fp);
}

static void write_key(const char *path, EVP_PKEY *k, int mode)
{
    unlink(path);
    FILE *fp = fopen(path, "w");
    if (!fp || !PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL))
        abort();
    fclose(fp);
    chmod(path, (mode_t)mode);
}

const char *tf_path(const tf *f, const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", f->dir, name);
    return buf;
}

tf *tf_new(const char *ca_cn)
{
    tf *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/opsc-tls-XXXXXX");
    if (!mkdtemp(f->dir))
        abort();
    f->ca_key = new_key();
    f->ca = new_cert(ca_cn, f->ca_key, NULL, -3600, 86400);
    if (!X509_sign(f->ca, f->ca_key, EVP_sha256()))
        abort();
    char p[256];
    write_cert(tf_path(f, "ca.pem", p, sizeof(p)), f->ca);
    return f;
}

void tf_issue(tf *f, const char *name, const char *cn, long from_s, long until_s, bool client,
              int key_mode)
{
    tf_issue_by(f, f, name, cn, from_s, until_s, client, key_mode);
}

void tf_issue_by(tf *f, const tf *signer, const char *name, const char *cn, long from_s,
                 long until_s, bool client, int key_mode)
{
    EVP_PKEY *k = new_key();
    X509 *x = new_cert(cn, k, signer->ca, from_s, until_s);
    add_ext(x, signer->ca, NID_ext_key_usage, client ? "clientAuth" : "serverAuth");
    if (!client)
        add_ext(x, signer->ca, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    if (!X509_sign(x, signer->ca_key, EVP_sha256()))
        abort();
    char p[256], file[96];
    snprintf(file, sizeof(file), "%s.pem", name);
    write_cert(tf_path(f, file, p, sizeof(p)), x);
    snprintf(file, sizeof(file), "%s.key", name);
    write_key(tf_path(f, file, p, sizeof(p)), k, key_mode);
    X509_free(x);
    EVP_PKEY_free(k);
}

SSL_CTX *tf_client_ctx(const tf *f, const char *ca_name, const char *cert_name)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char p[256], file[96];
    snprintf(file, sizeof(file), "%s.pem", ca_name);
    if (SSL_CTX_load_verify_locations(ctx, tf_path(f, file, p, sizeof(p)), NULL) != 1)
        abort();
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* As browsers and curl do: keep the session of each ticket for resumption. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x02h2\x08http/1.1", 12);
    if (cert_name) {
        snprintf(file, sizeof(file), "%s.pem", cert_name);
        SSL_CTX_use_certificate_file(ctx, tf_path(f, file, p, sizeof(p)), SSL_FILETYPE_PEM);
        snprintf(file, sizeof(file), "%s.key", cert_name);
        SSL_CTX_use_PrivateKey_file(ctx, tf_path(f, file, p, sizeof(p)), SSL_FILETYPE_PEM);
    }
    return ctx;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    return remove(path);
}

void tf_free(tf *f)
{
    nftw(f->dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
    X509_free(f->ca);
    EVP_PKEY_free(f->ca_key);
    free(f);
}
