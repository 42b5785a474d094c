/* fuzz_tls.c - libFuzzer: the TLS record path of the HTTP server.
 *
 * An input that starts like a TLS record (a byte below 0x20) goes to a TLS
 * connection as it is: the handshake and record parsing over our memory
 * BIOs. Anything else (the HTTP fuzzer's corpus) is the plaintext of a real
 * TLS client (OpenSSL, over the same socketpair) written in records whose
 * sizes the input decides, every other run on a resumed session; the
 * client reads what comes back until the server closes. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "fuzz_conn.h"
#include "http_internal.h"

static int h_echo(http_req *req)
{
    size_t len;
    const char *body = http_req_body(req, &len);
    const char *cn = http_req_tls_client(req);
    http_set_header(req, "X-Peer", cn ? cn : "-");
    http_respond_text(req, 200, "application/octet-stream", body, len);
    return HTTP_DONE;
}

static int h_path(http_req *req)
{
    http_respond_text(req, 200, "text/plain", http_req_path(req), strlen(http_req_path(req)));
    return HTTP_DONE;
}

static const http_route routes[] = {
    {"GET", "/a", 0, h_path, 0, NULL, NULL, NULL, NULL, 0},
    {"GET", "/a/{id}", 0, h_path, 0, NULL, NULL, NULL, NULL, 0},
    {"POST", "/j", 0, h_echo, HTTP_ROUTE_JSON_BODY, NULL, NULL, NULL, NULL, 0},
    {"PUT", "/r", 0, h_echo, HTTP_ROUTE_RAW_BODY, NULL, NULL, NULL, NULL, 0},
    {"GET", "/events", 0, fuzz_events, 0, NULL, NULL, NULL, NULL, 0},
};

static SSL_CTX *client;
static SSL_SESSION *session;

/* A self-signed P-256 certificate in a temporary directory, for the server. */
static http_tls *make_tls(void)
{
    char dir[] = "/tmp/opsc-fuzz-tls-XXXXXX", cert[64], key[64];
    if (!mkdtemp(dir))
        abort();
    snprintf(cert, sizeof(cert), "%s/c.pem", dir);
    snprintf(key, sizeof(key), "%s/k.pem", dir);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400);
    X509_set_pubkey(x, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"fuzz", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_sign(x, k, EVP_sha256());
    FILE *fc = fopen(cert, "w"), *fk = fopen(key, "w");
    if (!fc || !fk || !PEM_write_X509(fc, x) || !PEM_write_PrivateKey(fk, k, 0, 0, 0, 0, 0))
        abort();
    fclose(fc);
    fclose(fk);
    chmod(key, 0600);
    X509_free(x);
    EVP_PKEY_free(k);
    http_tls_opts o = {cert, key, NULL, false, 12};
    http_tls *tls = NULL;
    char err[512];
    enum http_tls_file which;
    if (http_tls_load(&tls, &o, err, sizeof(err), &which) != 0) {
        fprintf(stderr, "fuzz_tls: %s\n", err);
        abort();
    }
    unlink(cert);
    unlink(key);
    rmdir(dir);
    return tls;
}

static http_server *server(void)
{
    static http_server *srv;
    if (srv)
        return srv;
    signal(SIGPIPE, SIG_IGN); /* the client writes to a server that may have closed */
    srv = fuzz_server(routes, sizeof(routes) / sizeof(routes[0]));
    http_server_set_tls(srv, make_tls());
    client = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(client, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(client,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    return srv;
}

/* Record sizes from the input's own bytes: 1 to 4096, deterministic per input. */
static size_t next_size(uint32_t *h)
{
    *h = *h * 1103515245u + 12345u;
    return 1 + ((*h >> 8) % ((*h & 0x80000000u) ? 4096 : 64));
}

/* What the server sent: drop it; true once it closed. */
static bool client_read(SSL *ssl)
{
    char buf[16384];
    for (;;) {
        int n = SSL_read(ssl, buf, sizeof(buf));
        if (n > 0)
            continue;
        int e = SSL_get_error(ssl, n);
        return e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
    }
}

static void through_tls(http_server *srv, const uint8_t *data, size_t len)
{
    int fd = fuzz_connect(srv, true);
    SSL *ssl = SSL_new(client);
    SSL_set_fd(ssl, fd);
    SSL_set_connect_state(ssl);
    if (session && (len & 1))
        SSL_set_session(ssl, session);
    uint32_t h = (uint32_t)len * 2654435761u + (len ? data[0] : 0);
    size_t off = 0;
    bool up = false, shut = false, gone = false;
    for (long spins = 0; !gone; spins++) {
        if (spins > 1000000) {
            fprintf(stderr, "fuzz_tls: the server never closed the connection\n");
            abort();
        }
        if (!up) {
            int r = SSL_do_handshake(ssl);
            up = r == 1;
            int e = r == 1 ? 0 : SSL_get_error(ssl, r);
            if (e && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                abort(); /* a handshake of two OpenSSLs over a socketpair cannot fail */
        } else if (off < len) {
            size_t n = next_size(&h);
            int w = SSL_write(ssl, data + off, (int)(n < len - off ? n : len - off));
            off += w > 0 ? (size_t)w : 0;
        } else if (!shut) {
            shut = true;
            shutdown(fd, SHUT_WR);
        }
        uv_run(fuzz_loop(), UV_RUN_NOWAIT);
        gone = up && client_read(ssl);
    }
    if (!(len & 1) && SSL_is_init_finished(ssl)) {
        SSL_shutdown(ssl); /* else OpenSSL marks the session not resumable */
        SSL_SESSION_free(session);
        session = SSL_get1_session(ssl);
    }
    SSL_free(ssl);
    ERR_clear_error();
    close(fd);
    fuzz_settle(srv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_server *srv = server();
    if (size && data[0] < 0x20)
        fuzz_feed_tls(srv, data, size);
    else
        through_tls(srv, data, size);
    return 0;
}
