/* test_tls.c - HTTPS on the HTTP server: certificates checked at load, the record path over real
 * loopback sockets, client certificates, reload, resumption, plain HTTP on a TLS port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <opsc/errors.h>

#include "http_harness.h"
#include "log.h"
#include "tls_fixture.h"

/* ---- routes ------------------------------------------------------------------------- */

static int h_hello(http_req *req)
{
    http_respond_text(req, 200, "text/plain", "hello", 5);
    return HTTP_DONE;
}

/* The client certificate's CN, or "-". */
static int h_who(http_req *req)
{
    const char *cn = http_req_tls_client(req);
    char body[160];
    snprintf(body, sizeof(body), "%s %s", http_req_tls(req) ? "tls" : "plain", cn ? cn : "-");
    http_respond_text(req, 200, "text/plain", body, strlen(body));
    return HTTP_DONE;
}

#define BIG (1024 * 1024 + 17)
static int h_big(http_req *req)
{
    char *body = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        body[i] = (char)('a' + i % 26);
    http_respond_text(req, 200, "application/octet-stream", body, BIG);
    free(body);
    return HTTP_DONE;
}

static int h_echo(http_req *req)
{
    size_t len;
    const char *body = http_req_body(req, &len);
    http_respond_text(req, 200, "application/octet-stream", body, len);
    return HTTP_DONE;
}

static const http_route routes[] = {
    {"GET", "/hello", ROLE_PUBLIC, h_hello, 0, "t", "hello", NULL, NULL, 0},
    {"GET", "/health", ROLE_PUBLIC, h_hello, 0, "t", "health", NULL, NULL, 0},
    {"GET", "/who", ROLE_PUBLIC, h_who, 0, "t", "who", NULL, NULL, 0},
    {"GET", "/big", ROLE_PUBLIC, h_big, 0, "t", "big", NULL, NULL, 0},
    {"POST", "/echo", ROLE_PUBLIC, h_echo, HTTP_ROUTE_RAW_BODY, "t", "echo", NULL, NULL, 0},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* ---- helpers ------------------------------------------------------------------------ */

static http_tls *load(tf *f, const char *name, const char *client_ca, bool required)
{
    char cert[128], key[128], ca[128], file[64];
    snprintf(file, sizeof(file), "%s.pem", name);
    tf_path(f, file, cert, sizeof(cert));
    snprintf(file, sizeof(file), "%s.key", name);
    tf_path(f, file, key, sizeof(key));
    if (client_ca)
        tf_path(f, client_ca, ca, sizeof(ca));
    http_tls_opts o = {cert, key, client_ca ? ca : NULL, required, 12};
    http_tls *tls = NULL;
    char err[512] = "";
    enum http_tls_file which;
    int rc = http_tls_load(&tls, &o, err, sizeof(err), &which);
    if (rc != 0)
        fprintf(stderr, "load: %s\n", err);
    assert_int_equal(rc, 0);
    return tls;
}

/* A server with one TLS listener (and a plain one first when `plain`). */
static hx *start(tf *f, const char *client_ca, bool required, bool plain, http_opts *extra)
{
    http_opts o = extra ? *extra : (http_opts){0};
    o.listen = plain ? "127.0.0.1:0, 127.0.0.1:0 tls" : "127.0.0.1:0 tls";
    o.hsts_max_age_s = o.hsts_max_age_s ? o.hsts_max_age_s : 86400;
    return hx_start_tls(&o, load(f, "server", client_ca, required), routes, NROUTES);
}

static int tls_port(hx *x)
{
    bool tls = false;
    for (int i = 0, port; (port = http_server_listener_port(x->srv, i, &tls)) >= 0; i++)
        if (tls)
            return port;
    return -1;
}

static void get(hc *c, const char *path, hresp *r)
{
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    hc_sends(c, req);
    assert_int_equal(hc_read(c, r, false), 0);
}

static tf *certs(void)
{
    tf *f = tf_new("Test CA");
    tf_issue(f, "server", "localhost", -60, 86400, false, 0600);
    return f;
}

/* ---- the record path ---------------------------------------------------------------- */

static void test_https_answers_with_alpn_hsts_and_keep_alive(void **state)
{
    (void)state;
    tf *f = certs();
    hx *x = start(f, NULL, false, false, NULL);
    SSL_CTX *ctx = tf_client_ctx(f, "ca", NULL);
    hc *c = hc_connect_tls(x->port, ctx, NULL);
    assert_non_null(c);
    const unsigned char *alpn = NULL;
    unsigned alen = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
    assert_int_equal(alen, 8);
    assert_memory_equal(alpn, "http/1.1", 8);
    for (int i = 0; i < 20; i++) {
        hresp r;
        get(c, "/hello", &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "hello");
        char v[64];
        assert_true(hresp_header(&r, "Strict-Transport-Security", v, sizeof(v)));
        assert_string_equal(v, "max-age=86400");
        hresp_free(&r);
    }
    assert_int_equal(hx_stats(x).tls_handshakes, 1);
    hc_close(c);
    SSL_CTX_free(ctx);
    assert_int_equal(hx_stop(x), 0);
    tf_free(f);
}

static void test_pipelined_requests_large_bodies_cross_many_records(void **state)
{
    (void)state;
    tf *f = certs();
    hx *x = start(f, NULL, false, false, NULL);
    SSL_CTX *ctx = tf_client_ctx(f, "ca", NULL);
    hc *c = hc_connect_tls(x->port, ctx, NULL);
    assert_non_null(c);
    /* Three requests in one write, the middle one a 1 MiB answer. */
    hc_sends(c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\nGET /big HTTP/1.1\r\nHost: a\r\n\r\n"
                "GET /who HTTP/1.1\r\nHost: a\r\n\r\n");
    hresp r;
    assert_int_equal(hc_read(c, &r, false), 0);
    assert_string_equal(r.body, "hello");
    hresp_free(&r);
    assert_int_equal(hc_read(c, &r, false), 0);
    assert_int_equal(r.body_len, BIG);
    for (size_t i = 0; i < BIG; i += 4099)
        assert_int_equal(r.body[i], 'a' + i % 26);
    hresp_free(&r);
    assert_int_equal(hc_read(c, &r, false), 0);
    assert_string_equal(r.body, "tls -");
    hresp_free(&r);
    /* An upload of 300 kB: many records in, echoed back whole. */
    size_t n = 300 * 1024;
    char *up = malloc(n);
    for (size_t i = 0; i < n; i++)
        up[i] = (char)(i * 7);
    char head[128];
    snprintf(head, sizeof(head), "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n",
             n);
    hc_sends(c, head);
    hc_send(c, up, n);
    assert_int_equal(hc_read(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, n);
    assert_memory_equal(r.body, up, n);
    hresp_free(&r);
    free(up);
    /* Connection: close ends with close_notify: a clean end of stream. */
    hc_sends(c, "GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_int_equal(hc_read(c, &r, false), 0);
    hresp_free(&r);
    c->len = 0;
    assert_int_equal(SSL_read(c->ssl, c->buf, 1), 0);
    assert_int_equal(SSL_get_error(c->ssl, 0), SSL_ERROR_ZERO_RETURN);
    hc_close(c);
    SSL_CTX_free(ctx);
    assert_int_equal(hx_stop(x), 0);
    tf_free(f);
}

static void test_plain_http_on_tls_port_gets_a_plain_error(void **state)
{
    (void)state;
    tf *f = certs();
    hx *x = start(f, NULL, false, false, NULL);
    hresp r;
    assert_int_equal(hx_request(x->port, "GET /hello?a=1 HTTP/1.1\r\nHost: box:8443\r\n\r\n", &r),
                     400);
    assert_non_null(strstr(r.body, "\"https_required\""));
    assert_non_null(strstr(r.body, "use https://box:8443/hello?a=1"));
    char v[64];
    assert_false(hresp_header(&r, "Strict-Transport-Security", v, sizeof(v)));
    assert_true(hresp_header(&r, "Connection", v, sizeof(v)));
    assert_string_equal(v, "close");
    hresp_free(&r);
    /* A record that is no handshake fails it: an alert, then the end. */
    hc *c = hc_connect(x->port);
    hc_send(c, "\x16\x03\x01\x00\x04\x01\x00\x00\x00", 9);
    assert_true(hc_wait_eof(c));
    hc_close(c);
    assert_true(hx_stats(x).tls_failed >= 1);
    assert_int_equal(hx_stop(x), 0);
    tf_free(f);
}

static void test_redirect_http_sends_plain_clients_to_the_tls_port(void **state)
{
    (void)state;
    tf *f = certs();
    http_opts o = {.redirect_http = true};
    hx *x = start(f, NULL, false, true, &o);
    int tport = tls_port(x);
    hresp r;
    assert_int_equal(hx_request(x->port, "GET /api/x?q=1 HTTP/1.1\r\nHost: box:8080\r\n\r\n", &r),
                     301);
    char v[256], want[128];
    snprintf(want, sizeof(want), "https://box:%d/api/x?q=1", tport);
    assert_true(hresp_header(&r, "Location", v, sizeof(v)));
    assert_string_equal(v, want);
    hresp_free(&r);
    assert_int_equal(
        hx_request(x->port, "POST /echo HTTP/1.1\r\nHost: [::1]:8080\r\nContent-Length: 0\r\n\r\n",
                   &r),
        308);
    snprintf(want, sizeof(want), "https://[::1]:%d/echo", tport);
    assert_true(hresp_header(&r, "Location", v, sizeof(v)));
    assert_string_equal(v, want);
    hresp_free(&r);
    /* Probes stay on plain HTTP; a Host that is no host name is not echoed. */
    assert_int_equal(hx_request(x->port, "GET /health HTTP/1.1\r\nHost: box\r\n\r\n", &r), 200);
    hresp_free(&r);
    assert_int_equal(hx_request(x->port, "GET /x HTTP/1.1\r\nHost: a\"b\r\n\r\n", &r), 400);
    assert_non_null(strstr(r.body, "served over HTTPS on port"));
    hresp_free(&r);
    assert_int_equal(hx_stop(x), 0);
    tf_free(f);
}

/* ---- certificates at load ------------------------------------------------------------- */

static void expect_load_error(tf *f, const char *cert, const char *key, const char *ca,
                              enum http_tls_file want_which, const char *want)
{
    char c[128], k[128], a[128];
    http_tls_opts o = {tf_path(f, cert, c, sizeof(c)), tf_path(f, key, k, sizeof(k)),
                       ca ? tf_path(f, ca, a, sizeof(a)) : NULL, false, 12};
    http_tls *tls = NULL;
    char err[512] = "";
    enum http_tls_file which = 0;
    assert_true(http_tls_load(&tls, &o, err, sizeof(err), &which) < 0);
    assert_null(tls);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not say \"%s\"", err, want);
    assert_int_equal(which, want_which);
}

static void test_bad_certificates_and_keys_are_refused_with_the_reason(void **state)
{
    (void)state;
    tf *f = certs();
    tf_issue(f, "expired", "old", -86400, -3600, false, 0600);
    tf_issue(f, "future", "new", 3600, 86400, false, 0600);
    tf_issue(f, "open", "localhost", -60, 86400, false, 0640);
    tf_issue(f, "other", "localhost", -60, 86400, false, 0600);
    expect_load_error(f, "expired.pem", "expired.key", NULL, HTTP_TLS_CERT, "/CN=old expired on");
    expect_load_error(f, "future.pem", "future.key", NULL, HTTP_TLS_CERT,
                      "/CN=new is not valid yet: valid from");
    expect_load_error(f, "open.pem", "open.key", NULL, HTTP_TLS_KEY,
                      "may be read by group or others (mode 0640): chmod 600");
    expect_load_error(f, "server.pem", "other.key", NULL, HTTP_TLS_KEY,
                      "does not match the certificate");
    expect_load_error(f, "missing.pem", "server.key", NULL, HTTP_TLS_CERT,
                      "missing.pem: No such file or directory");
    expect_load_error(f, "server.key", "server.key", NULL, HTTP_TLS_CERT,
                      "no usable PEM certificate");
    char p[128], q[128];
    link(tf_path(f, "server.pem", p, sizeof(p)), tf_path(f, "cert-as.key", q, sizeof(q)));
    chmod(q, 0600);
    expect_load_error(f, "server.pem", "cert-as.key", NULL, HTTP_TLS_KEY, "no PEM private key");
    expect_load_error(f, "server.pem", "server.key", "server.key", HTTP_TLS_CLIENT_CA,
                      "no PEM certificate in it");
    /* An encrypted key would ask a terminal for its passphrase: refused. */
    FILE *fp = fopen(tf_path(f, "enc.key", p, sizeof(p)), "w");
    EVP_PKEY *k = EVP_EC_gen("P-256");
    PEM_write_PrivateKey(fp, k, EVP_aes_128_cbc(), (unsigned char *)"pw", 2, NULL, NULL);
    fclose(fp);
    EVP_PKEY_free(k);
    chmod(p, 0600);
    expect_load_error(f, "server.pem", "enc.key", NULL, HTTP_TLS_KEY, "the key is encrypted");
    tf_free(f);
}

/* ---- client certificates ---------------------------------------------------------------- */

static void test_client_certificates_verified_against_the_client_ca(void **state)
{
    (void)state;
    tf *f = certs();
    tf_issue(f, "olga", "olga", -60, 86400, true, 0600);
    tf_issue(f, "lapsed", "lapsed", -86400, -60, true, 0600);
    tf *other = tf_new("Other CA");
    tf_issue_by(f, other, "mallory", "admin", -60, 86400, true, 0600);
    hx *x = start(f, "ca.pem", false, false, NULL);
    SSL_CTX *none = tf_client_ctx(f, "ca", NULL), *olga = tf_client_ctx(f, "ca", "olga");
    SSL_CTX *mallory = tf_client_ctx(f, "ca", "mallory"),
            *lapsed = tf_client_ctx(f, "ca", "lapsed");
    hresp r;
    hc *c = hc_connect_tls(x->port, olga, NULL);
    assert_non_null(c);
    get(c, "/who", &r);
    assert_string_equal(r.body, "tls olga");
    hresp_free(&r);
    hc_close(c);
    c = hc_connect_tls(x->port, none, NULL); /* optional: welcome, nobody */
    assert_non_null(c);
    get(c, "/who", &r);
    assert_string_equal(r.body, "tls -");
    hresp_free(&r);
    hc_close(c);
    /* TLS 1.3 reports a refused client certificate after the client's
     * handshake: the first read fails instead of an answer. */
    for (int i = 0; i < 2; i++) {
        c = hc_connect_tls(x->port, i ? lapsed : mallory, NULL);
        if (c) {
            hc_sends(c, "GET /who HTTP/1.1\r\nHost: a\r\n\r\n");
            assert_int_equal(hc_read(c, &r, false), -1);
            hc_close(c);
        }
    }
    assert_int_equal(hx_stop(x), 0);
    /* Required: no certificate, no connection. */
    x = start(f, "ca.pem", true, false, NULL);
    c = hc_connect_tls(x->port, none, NULL);
    if (c) {
        hc_sends(c, "GET /who HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_int_equal(hc_read(c, &r, false), -1);
        hc_close(c);
    }
    c = hc_connect_tls(x->port, olga, NULL);
    assert_non_null(c);
    get(c, "/who", &r);
    assert_string_equal(r.body, "tls olga");
    hresp_free(&r);
    hc_close(c);
    assert_true(hx_stats(x).tls_failed >= 1);
    assert_int_equal(hx_stop(x), 0);
    SSL_CTX_free(none);
    SSL_CTX_free(olga);
    SSL_CTX_free(mallory);
    SSL_CTX_free(lapsed);
    tf_free(other);
    tf_free(f);
}

/* ---- reload and resumption ---------------------------------------------------------------- */

struct swap {
    http_tls *tls;
};

static void swap_cmd(hx *x, void *arg)
{
    http_server_set_tls(x->srv, ((struct swap *)arg)->tls);
}

static long peer_serial(hc *c)
{
    X509 *x = SSL_get0_peer_certificate(c->ssl);
    return ASN1_INTEGER_get(X509_get0_serialNumber(x));
}

/* A session to resume from a connection of its own: read once so that the
 * TLS 1.3 tickets have arrived. An OpenSSL client uses a TLS 1.3 session
 * once, so each check takes a fresh one. */
static SSL_SESSION *new_session(int port, SSL_CTX *ctx)
{
    hc *c = hc_connect_tls(port, ctx, NULL);
    assert_non_null(c);
    hresp r;
    get(c, "/hello", &r);
    hresp_free(&r);
    SSL_SESSION *s = SSL_get1_session(c->ssl);
    hc_close(c);
    return s;
}

static bool resumes(int port, SSL_CTX *ctx, SSL_SESSION *sess)
{
    hc *c = hc_connect_tls(port, ctx, sess);
    assert_non_null(c);
    bool reused = SSL_session_reused(c->ssl);
    hc_close(c);
    SSL_SESSION_free(sess);
    return reused;
}

static void test_reload_keeps_open_connections_and_resumption(void **state)
{
    (void)state;
    tf *f = certs();
    hx *x = start(f, NULL, false, false, NULL);
    SSL_CTX *ctx = tf_client_ctx(f, "ca", NULL);
    hc *old = hc_connect_tls(x->port, ctx, NULL);
    assert_non_null(old);
    long first = peer_serial(old);
    SSL_SESSION *before[3];
    for (int i = 0; i < 3; i++)
        before[i] = new_session(x->port, ctx);
    assert_true(resumes(x->port, ctx, before[0]));

    tf_issue(f, "server", "localhost", -60, 2 * 86400, false, 0600); /* renewed */
    struct swap s = {load(f, "server", NULL, false)};
    hx_on_loop(x, swap_cmd, &s);
    hresp r;
    get(old, "/hello", &r); /* the open connection goes on with its certificate */
    assert_int_equal(r.status, 200);
    hresp_free(&r);
    assert_int_equal(peer_serial(old), first);
    hc *fresh = hc_connect_tls(x->port, ctx, NULL);
    assert_non_null(fresh);
    assert_true(peer_serial(fresh) != first);
    hc_close(fresh);
    /* Ticket keys outlive the reload: a session from before still resumes. */
    assert_true(resumes(x->port, ctx, before[1]));
    assert_int_equal(hx_stats(x).tls_resumed, 2);

    /* Client CAs that change refuse to resume sessions made under the old ones. */
    struct swap t = {load(f, "server", "ca.pem", false)};
    hx_on_loop(x, swap_cmd, &t);
    assert_false(resumes(x->port, ctx, before[2]));
    hc_close(old);
    SSL_CTX_free(ctx);
    assert_int_equal(hx_stop(x), 0);
    tf_free(f);
}

/* ---- slow handshakes --------------------------------------------------------------------- */

static void test_a_handshake_that_never_ends_is_closed_in_request_timeout(void **state)
{
    (void)state;
    tf *f = certs();
    http_opts o = {.request_timeout_ms = 300};
    hx *x = start(f, NULL, false, false, &o);
    hc *c = hc_connect(x->port);
    hc_sends(c, "\x16\x03\x01\x02"); /* a record header, then nothing */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(hc_wait_eof(c));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(took >= 0.25 && took < 3.0);
    hc_close(c);
    assert_int_equal(hx_stats(x).tls_failed, 1);
    assert_int_equal(hx_stats(x).connections_open, 0);
    assert_int_equal(hx_stop(x), 0);
    tf_free(f);
}

static void test_tls_listener_without_certificate_is_refused(void **state)
{
    (void)state;
    http_server *srv = NULL;
    uv_loop_t loop;
    uv_loop_init(&loop);
    http_opts o = {.listen = "127.0.0.1:0, 127.0.0.1:0 tls"};
    assert_int_equal(http_server_new(&srv, &loop, &o), 0);
    char err[256] = "";
    assert_int_equal(http_server_listen(srv, err, sizeof(err)), OPSC_EINVAL);
    assert_non_null(strstr(err, "with TLS: no certificate"));
    http_server_close(srv, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    http_server_free(srv);
    assert_int_equal(uv_loop_close(&loop), 0);
    const char *bad[] = {"127.0.0.1:0 ssl", "127.0.0.1:0,,127.0.0.1:0", "1.2.3.4:1 tls tls",
                         "127.0.0.1:0 tls, 127.0.0.1:99999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uv_loop_init(&loop);
        o.listen = bad[i];
        assert_int_equal(http_server_new(&srv, &loop, &o), 0);
        assert_int_equal(http_server_listen(srv, err, sizeof(err)), OPSC_EINVAL);
        http_server_close(srv, NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        http_server_free(srv);
        assert_int_equal(uv_loop_close(&loop), 0);
    }
}

int main(void)
{
    log_init(OPSC_LOG_ERROR, LOG_FORMAT_TEXT, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_https_answers_with_alpn_hsts_and_keep_alive),
        cmocka_unit_test(test_pipelined_requests_large_bodies_cross_many_records),
        cmocka_unit_test(test_plain_http_on_tls_port_gets_a_plain_error),
        cmocka_unit_test(test_redirect_http_sends_plain_clients_to_the_tls_port),
        cmocka_unit_test(test_bad_certificates_and_keys_are_refused_with_the_reason),
        cmocka_unit_test(test_client_certificates_verified_against_the_client_ca),
        cmocka_unit_test(test_reload_keeps_open_connections_and_resumption),
        cmocka_unit_test(test_a_handshake_that_never_ends_is_closed_in_request_timeout),
        cmocka_unit_test(test_tls_listener_without_certificate_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
