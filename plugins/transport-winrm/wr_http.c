/* wr_http.c - libcurl multi-socket on uv_poll_t/uv_timer_t for one pinned WinRM HTTP connection. */
#include "wr_http.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <opsc/errors.h>

#define MAX_BODY (32u << 20)

typedef struct wr_sock {
    uv_poll_t poll;
    struct wr_http *h;
    curl_socket_t fd;
    struct wr_sock *next;
} wr_sock;

struct wr_http {
    wr_sock *socks; /* polls open for curl's sockets */
    uv_loop_t *loop;
    CURLM *multi;
    CURL *easy;
    uv_timer_t timer;
    int open_handles; /* uv handles not yet closed (timer + polls) */
    bool freeing;
    void (*freed)(void *ud); /* wr_http_free's callback */
    void *freed_ud;
    bool in_flight;
    wr_http_cb cb;
    void *ud;
    struct curl_slist *headers;
    wr_buf req_body;
    wr_buf body;
    wr_buf www_auth;
    char content_type[256];
    char errbuf[CURL_ERROR_SIZE];
    bool retried; /* curl re-sent the request on a fresh connection */
    bool https;
    uint8_t binding[EVP_MAX_MD_SIZE]; /* tls-server-end-point hash of the current connection */
    unsigned binding_len;
    uint8_t pin[32];
    bool pinned;
};

static void maybe_release(wr_http *h)
{
    if (h->freeing && h->open_handles == 0) {
        void (*freed)(void *) = h->freed;
        void *ud = h->freed_ud;
        wr_buf_free(&h->req_body);
        wr_buf_free(&h->body);
        wr_buf_free(&h->www_auth);
        free(h);
        if (freed)
            freed(ud);
    }
}

static void handle_closed(uv_handle_t *handle)
{
    wr_http *h = handle->data;
    if (handle->type == UV_POLL)
        free(handle);
    h->open_handles--;
    maybe_release(h);
}

static void check_done(wr_http *h)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg != CURLMSG_DONE || !h->in_flight)
            continue;
        CURLcode res = msg->data.result;
        curl_multi_remove_handle(h->multi, h->easy);
        h->in_flight = false;
        wr_http_resp r = {.content_type = h->content_type,
                          .www_auth = h->www_auth.p ? h->www_auth.p : ""};
        long conns = 0;
        curl_easy_getinfo(h->easy, CURLINFO_NUM_CONNECTS, &conns);
        r.new_connection = conns > 0;
        r.retried = h->retried;
        curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &r.code);
        if (res != CURLE_OK) {
            long oserr = 0;
            curl_easy_getinfo(h->easy, CURLINFO_OS_ERRNO, &oserr);
            switch (res) {
            case CURLE_COULDNT_RESOLVE_HOST:
                r.status = OPSC_EDNS;
                break;
            case CURLE_COULDNT_CONNECT:
                r.status = oserr == ECONNREFUSED || !oserr ? OPSC_ECONNREFUSED : OPSC_EHOSTUNREACH;
                break;
            case CURLE_OPERATION_TIMEDOUT:
                r.status = OPSC_ETIMEDOUT;
                break;
            case CURLE_PEER_FAILED_VERIFICATION:
            case CURLE_SSL_CACERT_BADFILE:
                r.status = OPSC_EHOSTKEY;
                break;
            case CURLE_SSL_CERTPROBLEM:
                r.status = OPSC_EAUTH;
                break;
            case CURLE_SSL_CONNECT_ERROR:
                r.status = h->pinned ? OPSC_EHOSTKEY : OPSC_EPROTO;
                break;
            case CURLE_GOT_NOTHING:
            case CURLE_RECV_ERROR:
            case CURLE_SEND_ERROR:
            case CURLE_PARTIAL_FILE:
                r.status = OPSC_ECONNRESET;
                break;
            case CURLE_FILESIZE_EXCEEDED:
            case CURLE_WRITE_ERROR:
                r.status = OPSC_E2BIG;
                break;
            case CURLE_OUT_OF_MEMORY:
                r.status = OPSC_ENOMEM;
                break;
            default:
                r.status = OPSC_EPROTO;
                break;
            }
            r.error = h->errbuf[0] ? h->errbuf : curl_easy_strerror(res);
        }
        r.body = (const uint8_t *)(h->body.p ? h->body.p : "");
        r.body_len = h->body.len;
        h->cb(h->ud, &r);
        /* The callback may have freed or reused h; nothing after this touches it. */
        return;
    }
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
    wr_sock *s = (wr_sock *)poll;
    wr_http *h = s->h;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(h->multi, s->fd, flags, &running);
    check_done(h);
}

static void on_timer(uv_timer_t *t)
{
    wr_http *h = t->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    wr_http *h = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void close_sock(wr_http *h, wr_sock *s)
{
    for (wr_sock **p = &h->socks; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, handle_closed);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    wr_http *h = userp;
    wr_sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(h->multi, fd, NULL);
            close_sock(h, s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || uv_poll_init_socket(h->loop, &s->poll, fd)) {
            free(s);
            return -1;
        }
        s->h = h;
        s->fd = fd;
        s->poll.data = h;
        s->next = h->socks;
        h->socks = s;
        h->open_handles++;
        curl_multi_assign(h->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

/* curl silently re-sends a request whose reused connection died; WinRM requests
 * are not idempotent (a lost ReceiveResponse loses output), so we want to know. */
static int debug_cb(CURL *easy, curl_infotype type, char *data, size_t size, void *userp)
{
    (void)easy;
    wr_http *h = userp;
    if (type == CURLINFO_TEXT && size >= 15 && !strncmp(data, "Connection died", 15))
        h->retried = true;
    return 0;
}

static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
    wr_http *h = userp;
    size_t len = size * n;
    if (h->body.len + len > MAX_BODY)
        return 0;
    wr_buf_add(&h->body, data, len);
    return h->body.oom ? 0 : len;
}

/* RFC 5929 tls-server-end-point: the server certificate hashed with its signature's
 * hash (MD5 and SHA-1 become SHA-256), for NTLM/Kerberos channel binding. */
static void capture_binding(wr_http *h)
{
    const struct curl_tlssessioninfo *info = NULL;
    h->binding_len = 0;
    if (curl_easy_getinfo(h->easy, CURLINFO_TLS_SSL_PTR, &info) != CURLE_OK || !info ||
        info->backend != CURLSSLBACKEND_OPENSSL || !info->internals)
        return;
    X509 *cert = SSL_get0_peer_certificate(info->internals);
    if (!cert)
        return;
    int md_nid = NID_undef;
    OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md_nid, NULL);
    const EVP_MD *md = md_nid == NID_sha384   ? EVP_sha384()
                       : md_nid == NID_sha512 ? EVP_sha512()
                                              : EVP_sha256();
    if (!X509_digest(cert, md, h->binding, &h->binding_len))
        h->binding_len = 0;
}

static size_t header_cb(char *data, size_t size, size_t n, void *userp)
{
    wr_http *h = userp;
    size_t len = size * n;
    if (len >= 5 && !strncmp(data, "HTTP/", 5)) {
        if (h->https)
            capture_binding(h);
        /* A new response (after a 100 Continue or a redirect): forget the previous one. */
        wr_buf_reset(&h->www_auth);
        h->content_type[0] = '\0';
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon)
        return len;
    size_t nlen = (size_t)(colon - data);
    const char *v = colon + 1;
    const char *end = data + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && isspace((unsigned char)end[-1]))
        end--;
    if (nlen == 16 && !strncasecmp(data, "WWW-Authenticate", 16)) {
        wr_buf_add(&h->www_auth, v, (size_t)(end - v));
        wr_buf_adds(&h->www_auth, "\n");
    } else if (nlen == 12 && !strncasecmp(data, "Content-Type", 12)) {
        size_t vl = (size_t)(end - v) < sizeof h->content_type - 1 ? (size_t)(end - v)
                                                                   : sizeof h->content_type - 1;
        memcpy(h->content_type, v, vl);
        h->content_type[vl] = '\0';
    }
    return len;
}

/* Pinned certificate: accept exactly the leaf whose SHA-256 matches, whatever its issuer. */
static int pin_verify(X509_STORE_CTX *store, void *arg)
{
    wr_http *h = arg;
    X509 *leaf = X509_STORE_CTX_get0_cert(store);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!leaf || !X509_digest(leaf, EVP_sha256(), md, &mdlen) || mdlen != 32 ||
        memcmp(md, h->pin, 32)) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_UNTRUSTED);
        return 0;
    }
    return 1;
}

static CURLcode ssl_ctx_cb(CURL *easy, void *sslctx, void *userp)
{
    (void)easy;
    SSL_CTX_set_cert_verify_callback(sslctx, pin_verify, userp);
    return CURLE_OK;
}

static int parse_pin(wr_http *h, const char *hex)
{
    size_t j = 0;
    for (const char *p = hex; *p && j < 64; p++) {
        if (*p == ':')
            continue;
        int v = isdigit((unsigned char)*p) ? *p - '0' : tolower((unsigned char)*p) - 'a' + 10;
        if (v < 0 || v > 15)
            return -1;
        h->pin[j / 2] = (uint8_t)(h->pin[j / 2] << 4 | v);
        j++;
    }
    return j == 64 ? 0 : -1;
}

static int setup_tls(wr_http *h, const wr_http_opts *o, char *err, size_t errlen)
{
    CURL *e = h->easy;
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, o->verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, o->verify ? 2L : 0L);
    if (o->ca_bundle && strstr(o->ca_bundle, "-----BEGIN")) {
        struct curl_blob blob = {(void *)o->ca_bundle, strlen(o->ca_bundle), CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
    } else if (o->ca_bundle && o->ca_bundle[0]) {
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_bundle);
    }
    if (o->pin_sha256 && o->pin_sha256[0]) {
        if (parse_pin(h, o->pin_sha256)) {
            wr_errf(err, errlen, "cert_fingerprint must be 64 hex digits (SHA-256)");
            return OPSC_EINVAL;
        }
        h->pinned = true;
        /* The pin replaces chain and name checks: it names the exact certificate. */
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
        curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, h);
    }
    if (o->client_pem) {
        struct curl_blob blob = {(void *)o->client_pem, strlen(o->client_pem), CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob);
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
        curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob);
    }
    return 0;
}

wr_http *wr_http_new(uv_loop_t *loop, const wr_http_opts *o, char *err, size_t errlen)
{
    wr_http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->loop = loop;
    h->multi = curl_multi_init();
    h->easy = curl_easy_init();
    if (!h->multi || !h->easy) {
        wr_errf(err, errlen, "libcurl could not allocate a handle");
        goto fail;
    }
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    h->open_handles = 1;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 1L);
    CURL *e = h->easy;
    curl_easy_setopt(e, CURLOPT_URL, o->url);
    h->https = !strncmp(o->url, "https:", 6);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(o->connect_timeout_ms ? o->connect_timeout_ms : 30000));
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "OpsConductor WinRM");
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, debug_cb);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, h);
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    if (setup_tls(h, o, err, errlen))
        goto fail_timer;
    if (o->basic_user) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, o->basic_user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, o->basic_password ? o->basic_password : "");
    }
    return h;
fail_timer:
    wr_http_free(h, NULL, NULL);
    return NULL;
fail:
    if (h->easy)
        curl_easy_cleanup(h->easy);
    if (h->multi)
        curl_multi_cleanup(h->multi);
    free(h);
    return NULL;
}

int wr_http_post(wr_http *h, const char *authorization, const char *content_type, const void *body,
                 size_t len, uint32_t timeout_ms, wr_http_cb cb, void *ud)
{
    if (h->in_flight)
        return OPSC_EBUSY;
    curl_slist_free_all(h->headers);
    h->headers = NULL;
    wr_buf hdr = {0};
    if (authorization) {
        wr_buf_addf(&hdr, "Authorization: %s", authorization);
        h->headers = curl_slist_append(h->headers, hdr.p);
        wr_buf_wipe(&hdr);
    }
    wr_buf_addf(&hdr, "Content-Type: %s",
                content_type ? content_type : "application/soap+xml;charset=UTF-8");
    h->headers = curl_slist_append(h->headers, hdr.p);
    wr_buf_free(&hdr);
    h->headers = curl_slist_append(h->headers, "Expect:");
    wr_buf_reset(&h->req_body);
    wr_buf_add(&h->req_body, body, len);
    if (!h->headers || h->req_body.oom)
        return OPSC_ENOMEM;
    wr_buf_reset(&h->body);
    wr_buf_reset(&h->www_auth);
    h->content_type[0] = '\0';
    h->errbuf[0] = '\0';
    h->retried = false;
    CURL *e = h->easy;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, h->req_body.p ? h->req_body.p : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    h->cb = cb;
    h->ud = ud;
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK)
        return OPSC_ENOMEM;
    h->in_flight = true;
    return 0;
}

bool wr_http_busy(const wr_http *h)
{
    return h->in_flight;
}

void wr_http_abort(wr_http *h)
{
    if (!h->in_flight)
        return;
    /* Removing an unfinished transfer makes curl close its connection. */
    curl_multi_remove_handle(h->multi, h->easy);
    h->in_flight = false;
}

void wr_http_free(wr_http *h, void (*freed)(void *ud), void *ud)
{
    if (!h)
        return;
    wr_http_abort(h);
    h->freeing = true;
    h->freed = freed;
    h->freed_ud = ud;
    /* Cleanup closes the cached connection; its socket callbacks close our polls. */
    curl_easy_cleanup(h->easy);
    curl_multi_cleanup(h->multi);
    while (h->socks)
        close_sock(h, h->socks);
    curl_slist_free_all(h->headers);
    h->headers = NULL;
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, handle_closed);
    wr_buf_wipe(&h->req_body);
}

size_t wr_http_tls_binding(const wr_http *h, uint8_t *out, size_t outlen)
{
    if (!h->binding_len || h->binding_len > outlen)
        return 0;
    memcpy(out, h->binding, h->binding_len);
    return h->binding_len;
}

int wr_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : OPSC_ENOMEM;
}
