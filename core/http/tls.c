/* tls.c - the certificate, key and client CAs of the TLS listeners, checked and loaded into an
 * SSL_CTX. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <opsc/errors.h>

#include "http_internal.h"

/* Mozilla's "intermediate" TLS 1.2 suites: forward secret AEADs only.
 * TLS 1.3 suites are OpenSSL's defaults, all of them good. */
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"       \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
/* A key file larger than this is not a key. */
#define KEY_FILE_MAX       (64 * 1024)
/* TLS 1.2 sessions kept for resumption by id (tickets need no memory). */
#define SESSION_CACHE_SIZE 1024

struct http_tls {
    SSL_CTX *ctx;
};

void *tls_ctx(http_tls *tls)
{
    return tls->ctx;
}

/* The last OpenSSL error as text, and the queue emptied. */
static const char *ssl_reason(char *buf, size_t n)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, n, "%s", r ? r : "unknown OpenSSL error");
    ERR_clear_error();
    return buf;
}

static void asn1_time_text(const ASN1_TIME *t, char *buf, size_t n)
{
    struct tm tm;
    if (t && ASN1_TIME_to_tm(t, &tm))
        strftime(buf, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
    else
        snprintf(buf, n, "(unreadable date)");
}

static void subject_text(X509 *x, char *buf, size_t n)
{
    X509_NAME_oneline(X509_get_subject_name(x), buf, (int)n);
}

/* An expired or not yet valid certificate is refused with its dates. */
static int check_dates(X509 *x, const char *path, char *err, size_t errlen)
{
    char subj[256], when[64];
    subject_text(x, subj, sizeof(subj));
    if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
        asn1_time_text(X509_get0_notBefore(x), when, sizeof(when));
        snprintf(err, errlen,
                 "%s: certificate %s is not valid yet: valid from %s (check the clock)", path, subj,
                 when);
        return OPSC_EINVAL;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
        asn1_time_text(X509_get0_notAfter(x), when, sizeof(when));
        snprintf(err, errlen, "%s: certificate %s expired on %s", path, subj, when);
        return OPSC_EINVAL;
    }
    return 0;
}

static int load_cert(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
    char why[160];
    if (!path || !*path) {
        snprintf(err, errlen, "no certificate file given");
        return OPSC_EINVAL;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, path) != 1) {
        if (access(path, R_OK) != 0)
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        else
            snprintf(err, errlen, "%s: no usable PEM certificate in it (%s)", path,
                     ssl_reason(why, sizeof(why)));
        ERR_clear_error();
        return OPSC_EINVAL;
    }
    int rc = check_dates(SSL_CTX_get0_certificate(ctx), path, err, errlen);
    STACK_OF(X509) *chain = NULL;
    SSL_CTX_get0_chain_certs(ctx, &chain);
    for (int i = 0; rc == 0 && chain && i < sk_X509_num(chain); i++)
        rc = check_dates(sk_X509_value(chain, i), path, err, errlen);
    return rc;
}

/* OpenSSL would ask the terminal for a passphrase: refuse instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag;
    *(bool *)u = true;
    return -1;
}

/* Read the key from the descriptor whose mode was checked, so the file
 * checked is the file read. */
static int read_key_fd(int fd, const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
    char *buf = malloc(KEY_FILE_MAX);
    ssize_t n = buf ? read(fd, buf, KEY_FILE_MAX) : -1;
    if (n < 0 || n == KEY_FILE_MAX) {
        snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "too large for a key");
        free(buf);
        return OPSC_EINVAL;
    }
    bool asked = false;
    BIO *bio = BIO_new_mem_buf(buf, (int)n);
    *out = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, &asked) : NULL;
    BIO_free(bio);
    OPENSSL_cleanse(buf, (size_t)n);
    free(buf);
    if (*out)
        return 0;
    ERR_clear_error();
    snprintf(err, errlen, "%s: %s", path,
             asked ? "the key is encrypted: give the daemon an unencrypted key (mode 0600)"
                   : "no PEM private key in it");
    return OPSC_EINVAL;
}

static int load_key(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
    if (!path || !*path) {
        snprintf(err, errlen, "no private key file given");
        return OPSC_EINVAL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (errno == EACCES) /* after [server] user: root's 0600 key is out of reach */
            snprintf(err, errlen,
                     "%s: %s (the daemon reads it as uid %u, also on SIGHUP: "
                     "chown it to that user, mode 0600)",
                     path, strerror(errno), (unsigned)geteuid());
        else
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return OPSC_EINVAL;
    }
    int rc = 0;
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        rc = OPSC_EINVAL;
    } else if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen,
                 "%s: the private key may be read by group or others (mode %04o): "
                 "chmod 600 it",
                 path, (unsigned)(st.st_mode & 07777));
        rc = OPSC_EACCES;
    }
    EVP_PKEY *key = NULL;
    if (rc == 0)
        rc = read_key_fd(fd, path, &key, err, errlen);
    close(fd);
    if (rc == 0 && (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1)) {
        ERR_clear_error();
        snprintf(err, errlen, "%s: the private key does not match the certificate", path);
        rc = OPSC_EINVAL;
    }
    EVP_PKEY_free(key);
    return rc;
}

/* Resumption is refused across different session id contexts: binding it
 * to the client CAs keeps a session verified under CAs that a reload
 * removed from being resumed. */
static int set_session_context(SSL_CTX *ctx, const http_tls_opts *o)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    int ok = h && EVP_DigestInit_ex(h, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(h, "opsconductor", 12) &&
             EVP_DigestUpdate(h, o->client_required ? "r" : "o", 1);
    FILE *f = o->client_ca_file && *o->client_ca_file ? fopen(o->client_ca_file, "rb") : NULL;
    char buf[4096];
    size_t n;
    while (ok && f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        ok = EVP_DigestUpdate(h, buf, n);
    if (f)
        fclose(f);
    ok = ok && EVP_DigestFinal_ex(h, md, NULL);
    EVP_MD_CTX_free(h);
    return ok && SSL_CTX_set_session_id_context(ctx, md, SSL_MAX_SID_CTX_LENGTH) == 1 ? 0
                                                                                      : OPSC_ENOMEM;
}

static int load_client_ca(SSL_CTX *ctx, const http_tls_opts *o, char *err, size_t errlen)
{
    const char *path = o->client_ca_file;
    if (!path || !*path)
        return 0;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(path);
    if (!names || sk_X509_NAME_num(names) == 0 ||
        SSL_CTX_load_verify_locations(ctx, path, NULL) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        ERR_clear_error();
        snprintf(err, errlen, "%s: %s", path,
                 access(path, R_OK) ? strerror(errno) : "no PEM certificate in it");
        return OPSC_EINVAL;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    /* A server certificate of the same CA is no client certificate. */
    SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    SSL_CTX_set_verify(
        ctx, SSL_VERIFY_PEER | (o->client_required ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
    SSL_CTX_set_verify_depth(ctx, 8);
    return 0;
}

/* Only http/1.1 is served: a client that offers ALPN without it is told so. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl, (void)arg;
    static const unsigned char h11[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, h11, sizeof(h11) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *new_ctx(const http_tls_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, o->min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    /* Client-initiated renegotiation costs the server a handshake per request. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* Idle keep-alive connections give their record buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_dh_auto(ctx, 1);
    SSL_CTX_sess_set_cache_size(ctx, SESSION_CACHE_SIZE);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int http_tls_load(http_tls **out, const http_tls_opts *opts, char *err, size_t errlen,
                  enum http_tls_file *which)
{
    *out = NULL;
    *which = 0;
    http_tls *t = calloc(1, sizeof(*t));
    SSL_CTX *ctx = t ? new_ctx(opts) : NULL;
    if (!ctx) {
        free(t);
        snprintf(err, errlen, "cannot create a TLS context: out of memory");
        return OPSC_ENOMEM;
    }
    int rc = load_cert(ctx, opts->cert_file, err, errlen);
    if (rc < 0)
        *which = HTTP_TLS_CERT;
    if (rc == 0 && (rc = load_key(ctx, opts->key_file, err, errlen)) < 0)
        *which = HTTP_TLS_KEY;
    if (rc == 0 && (rc = load_client_ca(ctx, opts, err, errlen)) < 0)
        *which = HTTP_TLS_CLIENT_CA;
    if (rc == 0 && set_session_context(ctx, opts) < 0) {
        snprintf(err, errlen, "cannot set the TLS session context");
        rc = OPSC_ENOMEM;
    }
    ERR_clear_error();
    if (rc < 0) {
        SSL_CTX_free(ctx);
        free(t);
        return rc;
    }
    t->ctx = ctx;
    *out = t;
    return 0;
}

void http_tls_free(http_tls *tls)
{
    if (!tls)
        return;
    SSL_CTX_free(tls->ctx); /* connections hold their own reference */
    free(tls);
}

int64_t http_tls_expires_in(const http_tls *tls)
{
    int days = 0, secs = 0;
    X509 *x = SSL_CTX_get0_certificate(tls->ctx);
    if (!x || !ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)))
        return 0;
    return (int64_t)days * 86400 + secs;
}

void http_tls_describe(const http_tls *tls, char *buf, size_t n)
{
    X509 *x = SSL_CTX_get0_certificate(tls->ctx);
    char subj[256], issuer[256], until[64];
    subject_text(x, subj, sizeof(subj));
    X509_NAME_oneline(X509_get_issuer_name(x), issuer, sizeof(issuer));
    asn1_time_text(X509_get0_notAfter(x), until, sizeof(until));
    STACK_OF(X509_NAME) *cas = SSL_CTX_get_client_CA_list(tls->ctx);
    int mode = SSL_CTX_get_verify_mode(tls->ctx);
    snprintf(buf, n, "certificate %s issued by %s, valid until %s (%lld days); %s", subj, issuer,
             until, (long long)(http_tls_expires_in(tls) / 86400),
             !cas || !sk_X509_NAME_num(cas)             ? "no client certificates asked"
             : (mode & SSL_VERIFY_FAIL_IF_NO_PEER_CERT) ? "client certificate required"
                                                        : "client certificate optional");
}

void tls_set_ticket_keys(http_server *srv, http_tls *tls)
{
    if (!srv->ticket_keys_set) {
        if (RAND_bytes(srv->ticket_keys, sizeof(srv->ticket_keys)) != 1)
            return; /* the context keeps its own random keys */
        srv->ticket_keys_set = true;
    }
    SSL_CTX_set_tlsext_ticket_keys(tls->ctx, srv->ticket_keys, sizeof(srv->ticket_keys));
}
