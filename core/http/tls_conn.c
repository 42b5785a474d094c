/* tls_conn.c - one TLS connection's record path: ciphertext through memory BIOs, on the loop. */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <opsc/errors.h>

#include "http_internal.h"
#include "log.h"

/* The longest client certificate CN taken for a name (a username is shorter). */
#define PEER_NAME_MAX 128
/* A large answer is encrypted and sent this much at a time, so the output
 * BIO stays small; a BIO that held more than BIO_KEEP is replaced once it
 * is empty: an idle keep-alive connection should not hold the buffers of
 * the largest answer or upload it ever carried. */
#define TLS_CHUNK     (64 * 1024)
#define BIO_KEEP      (16 * 1024)

struct tls_conn {
    SSL *ssl; /* owns both BIOs */
    BIO *rbio, *wbio;
    bool up;     /* handshake done */
    bool failed; /* a fatal alert went out: no more records either way */
    bool seen;   /* the first bytes arrived (plain HTTP is told from them) */
    char peer[PEER_NAME_MAX + 1];
};

static BIO *new_bio(void)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b) /* an empty BIO means "more to come", not end of stream */
        BIO_set_mem_eof_return(b, -1);
    return b;
}

int tls_conn_start(http_conn *c, http_tls *tls)
{
    tls_conn *t = calloc(1, sizeof(*t));
    if (!t || !tls) {
        free(t);
        return OPSC_ENOMEM;
    }
    t->ssl = SSL_new(tls_ctx(tls));
    t->rbio = new_bio();
    t->wbio = new_bio();
    if (!t->ssl || !t->rbio || !t->wbio) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        free(t);
        ERR_clear_error();
        return OPSC_ENOMEM;
    }
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_accept_state(t->ssl);
    c->tls = t;
    return 0;
}

void tls_conn_free(http_conn *c)
{
    tls_conn *t = c->tls;
    if (!t)
        return;
    c->tls = NULL;
    /* A connection closed for idleness or by the peer's FIN was no failure:
     * without this OpenSSL drops its session from the cache (TLS 1.2 ids). */
    if (t->up && !t->failed)
        SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(t->ssl);
    free(t);
}

/* What OpenSSL wrote (handshake messages, records, alerts) goes to the socket. */
static int flush(http_conn *c)
{
    tls_conn *t = c->tls;
    char *p = NULL;
    long n = BIO_get_mem_data(t->wbio, &p);
    if (n <= 0)
        return 0;
    int rc = conn_write_raw(c, p, (size_t)n, NULL, 0, NULL); /* copies what the kernel left */
    BIO *fresh = n > BIO_KEEP ? new_bio() : NULL;
    if (fresh) {
        SSL_set0_wbio(t->ssl, fresh); /* frees the large one */
        t->wbio = fresh;
    } else {
        (void)BIO_reset(t->wbio);
    }
    return rc;
}

/* After a large read, once every record in it was consumed. */
static void trim_input(tls_conn *t, size_t len)
{
    if (len <= BIO_KEEP || BIO_ctrl_pending(t->rbio) > 0)
        return;
    BIO *fresh = new_bio();
    if (fresh) {
        SSL_set0_rbio(t->ssl, fresh);
        t->rbio = fresh;
    }
}

static void log_failure(http_conn *c, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    log_debug("http", "TLS %s with %s failed: %s", what, c->client,
              why ? why : "connection reset or unexpected data");
    ERR_clear_error();
}

/* A fatal error: the alert OpenSSL wrote goes out. A failed handshake then
 * ends the connection like an answered one; a bad record later closes it
 * at once, as a read error on a plain connection does. */
static void fail(http_conn *c, const char *what)
{
    tls_conn *t = c->tls;
    bool handshake = !t->up;
    t->failed = true;
    log_failure(c, what);
    flush(c);
    if (handshake) {
        c->srv->tls_failed++;
        c->close_after = true;
        conn_end(c);
    } else {
        conn_close(c);
    }
}

/* The subject CN of a client certificate that verified; several CNs or one
 * holding a NUL name nobody. */
static void take_peer_name(tls_conn *t)
{
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    if (!x || SSL_get_verify_result(t->ssl) != X509_V_OK)
        return;
    X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
        return;
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n > 0 && n <= PEER_NAME_MAX && !memchr(utf8, '\0', (size_t)n)) {
        memcpy(t->peer, utf8, (size_t)n);
        t->peer[n] = '\0';
    }
    OPENSSL_free(utf8);
}

/* 0 once the handshake is done, 1 while it needs more input, -1 failed. */
static int handshake(http_conn *c)
{
    tls_conn *t = c->tls;
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->up = true;
        c->srv->tls_handshakes++;
        if (SSL_session_reused(t->ssl))
            c->srv->tls_resumed++;
        take_peer_name(t);
        c->idle_since = uv_now(c->srv->loop);
        return 0;
    }
    if (SSL_get_error(t->ssl, r) == SSL_ERROR_WANT_READ)
        return 1;
    fail(c, "handshake");
    return -1;
}

/* close_notify from the client: it sends nothing more, like a FIN. */
static void peer_closed(http_conn *c)
{
    if (c->reading)
        uv_read_stop(&c->h.stream);
    conn_read_end(c, UV_EOF);
}

/* Every whole record in the input BIO, decrypted into the server's read
 * buffer (free again: the ciphertext was copied into the BIO) and handed
 * on like bytes from a plain socket. */
static void read_records(http_conn *c)
{
    tls_conn *t = c->tls;
    char *buf = c->srv->rbuf;
    for (;;) {
        if (c->state != CONN_OPEN) {
            if (c->state == CONN_DRAIN)
                c->linger = true;
            return;
        }
        int n = SSL_read(t->ssl, buf, (int)sizeof(c->srv->rbuf));
        if (n > 0) {
            conn_input(c, buf, (size_t)n);
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_WANT_READ)
            return;
        if (e == SSL_ERROR_ZERO_RETURN)
            peer_closed(c);
        else
            fail(c, "read");
        return;
    }
}

/* A TLS record starts with a byte below 0x20; a request line with a method. */
static bool plain_http(const char *data, size_t len)
{
    return len > 0 && data[0] >= 'A' && data[0] <= 'Z';
}

void tls_conn_input(http_conn *c, const char *data, size_t len)
{
    tls_conn *t = c->tls;
    if (c->state == CONN_DRAIN) {
        c->linger = true;
        return;
    }
    if (!t->seen) {
        t->seen = true;
        if (plain_http(data, len)) { /* answered in plain text, then closed */
            tls_conn_free(c);
            c->https_only = true;
            c->close_after = true;
            conn_input(c, data, len);
            return;
        }
    }
    if (t->failed)
        return;
    if (BIO_write(t->rbio, data, (int)len) != (int)len) {
        conn_close(c);
        return;
    }
    if (!t->up) {
        int r = handshake(c);
        if (r > 0)
            flush(c);
        if (r != 0)
            return;
    }
    read_records(c);
    if (c->state != CONN_CLOSING && c->tls) {
        flush(c);
        trim_input(c->tls, len);
    }
}

static int write_all(http_conn *c, const char *p, size_t n)
{
    while (n > 0) {
        int chunk = n > TLS_CHUNK ? TLS_CHUNK : (int)n;
        int w = SSL_write(c->tls->ssl, p, chunk);
        if (w <= 0)
            return OPSC_EPIPE;
        p += w;
        n -= (size_t)w;
        if (n > 0 && flush(c) < 0)
            return OPSC_EPIPE;
    }
    return 0;
}

int tls_conn_write(http_conn *c, const char *head, size_t hlen, const char *body, size_t blen,
                   char *body_steal)
{
    tls_conn *t = c->tls;
    if (c->state == CONN_CLOSING) {
        free(body_steal);
        return OPSC_EPIPE;
    }
    int rc = t->up && !t->failed ? 0 : OPSC_EPIPE;
    if (rc == 0)
        rc = write_all(c, head, hlen);
    if (rc == 0)
        rc = write_all(c, body, blen);
    free(body_steal);
    if (rc < 0) {
        log_failure(c, "write");
        conn_close(c);
        return rc;
    }
    return flush(c);
}

void tls_conn_close_notify(http_conn *c)
{
    tls_conn *t = c->tls;
    if (!t || !t->up || t->failed)
        return;
    SSL_shutdown(t->ssl);
    ERR_clear_error();
    flush(c);
}

bool tls_conn_handshaking(const http_conn *c)
{
    return c->tls && !c->tls->up && !c->tls->failed;
}

void tls_conn_timeout(http_conn *c)
{
    c->srv->tls_failed++;
    log_debug("http", "TLS handshake with %s timed out", c->client);
    conn_close(c);
}

const char *tls_conn_peer(const http_conn *c)
{
    return c->tls && c->tls->peer[0] ? c->tls->peer : NULL;
}
