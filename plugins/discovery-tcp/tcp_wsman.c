/* tcp_wsman.c - WS-Management Identify over HTTP and HTTPS, on the host's libcurl multi handle
 * (opsc_host_api.curl_start: the loop drives it), many at once, each on a fresh connection. The
 * server certificate is not verified (nothing is trusted from it): its SHA-256 is reported so
 * onboarding can pin it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tcp_internal.h"

#define MAX_BODY (64u << 10)

typedef struct wreq {
    struct wreq *prev, *next;
    twsman *w;
    CURL *easy;
    twsman_cb cb;
    void *ud;
    char *body;
    size_t len;
    bool too_big;
    char cert[65];
    char errbuf[CURL_ERROR_SIZE];
} wreq;

/* The requests in flight, so a scan that ends can take them back. */
struct twsman {
    wreq *reqs;
    struct curl_slist *headers;
};

static void req_free(twsman *w, wreq *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        w->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    curl_easy_cleanup(r->easy);
    tcp_host->free(r->body);
    tcp_host->free(r);
}

static void on_done(void *ud, int result)
{
    wreq *r = ud;
    CURLcode res = (CURLcode)result;
    long code = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    dx_identify id;
    char err[200] = "";
    int status = 0;
    if (res != CURLE_OK) {
        snprintf(err, sizeof(err), "%.150s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
        status = res == CURLE_OPERATION_TIMEDOUT ? OPSC_ETIMEDOUT : OPSC_EPROTO;
    } else if (code != 200) {
        snprintf(err, sizeof(err), "HTTP %ld to an unauthenticated Identify", code);
        status = code == 401 ? OPSC_EAUTH : OPSC_EPROTO;
    } else if (r->too_big) {
        snprintf(err, sizeof(err), "the answer is larger than %u bytes", MAX_BODY);
        status = OPSC_EPROTO;
    } else if (dx_identify_parse(r->body ? r->body : "", r->len, &id, err, sizeof(err)) < 0) {
        status = OPSC_EPROTO;
    }
    twsman_cb cb = r->cb;
    void *cb_ud = r->ud;
    char cert[65];
    snprintf(cert, sizeof(cert), "%s", r->cert);
    req_free(r->w, r);
    cb(cb_ud, status, status == 0 ? &id : NULL, cert[0] ? cert : NULL, status ? err : NULL);
}

static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
    wreq *r = userp;
    size_t len = size * n;
    if (r->len + len > MAX_BODY) {
        r->too_big = true;
        return 0;
    }
    char *p = tcp_host->realloc(r->body, r->len + len + 1);
    if (!p)
        return 0;
    memcpy(p + r->len, data, len);
    r->body = p;
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

/* The certificate, while the connection it came on is still there. */
static size_t header_cb(char *data, size_t size, size_t n, void *userp)
{
    wreq *r = userp;
    const struct curl_tlssessioninfo *info = NULL;
    if (!r->cert[0] && curl_easy_getinfo(r->easy, CURLINFO_TLS_SSL_PTR, &info) == CURLE_OK &&
        info && info->backend == CURLSSLBACKEND_OPENSSL && info->internals) {
        X509 *cert = SSL_get0_peer_certificate(info->internals);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (cert && X509_digest(cert, EVP_sha256(), md, &len) == 1)
            for (unsigned i = 0; i < len && i < 32; i++)
                snprintf(r->cert + 2 * i, 3, "%02x", md[i]);
    }
    (void)data;
    return size * n;
}

int twsman_new(twsman **out)
{
    *out = NULL;
    if (!OPSC_HOST_HAS(tcp_host, curl_start))
        return OPSC_ENOTSUP; /* a host before ABI 1.1: WinRM ports are probed, not asked */
    twsman *w = tcp_host->calloc(1, sizeof(*w));
    if (!w)
        return OPSC_ENOMEM;
    w->headers = curl_slist_append(NULL, "Content-Type: application/soap+xml;charset=UTF-8");
    w->headers = curl_slist_append(w->headers, "WSMANIDENTIFY: unauthenticated");
    *out = w;
    return 0;
}

static CURL *easy_for(wreq *r, const char *url, uint32_t timeout_ms)
{
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->w->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, DX_IDENTIFY_BODY);
    /* A TLS handshake and an HTTP exchange: the probe's time, and a second more. */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms + 1000);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    return e;
}

int twsman_identify(twsman *w, const char *url, uint32_t timeout_ms, twsman_cb cb, void *ud,
                    void **req)
{
    wreq *r = tcp_host->calloc(1, sizeof(*r));
    if (!r)
        return OPSC_ENOMEM;
    *r = (wreq){.w = w, .cb = cb, .ud = ud};
    r->easy = easy_for(r, url, timeout_ms);
    int rc = r->easy ? tcp_host->curl_start(r->easy, on_done, r) : OPSC_ENOMEM;
    if (rc < 0) {
        curl_easy_cleanup(r->easy);
        tcp_host->free(r);
        return rc;
    }
    r->next = w->reqs;
    if (w->reqs)
        w->reqs->prev = r;
    w->reqs = r;
    *req = r;
    return 0;
}

void twsman_abort(twsman *w, void *req)
{
    wreq *r = req;
    if (!r)
        return;
    tcp_host->curl_cancel(r->easy); /* its done never runs */
    req_free(w, r);
}

void twsman_free(twsman *w)
{
    if (!w)
        return;
    while (w->reqs)
        twsman_abort(w, w->reqs);
    curl_slist_free_all(w->headers);
    tcp_host->free(w);
}
