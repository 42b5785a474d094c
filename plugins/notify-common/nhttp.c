/* nhttp.c - a notifier's transfer on the host's libcurl (loop), its answer judged the same way by
 * every bundled notifier; TLS with a CA bundle or a pinned certificate fingerprint. */
#include "nhttp.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define RESP_KEPT 400 /* bytes of a response body kept for the error message */

/* ---- settings ---------------------------------------------------------------------------------
 */

const char *nset_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

json_t *nset_parse(const char *settings_json, char *err, size_t errlen)
{
    json_t *s = settings_json ? json_loads(settings_json, 0, NULL) : json_object();
    if (!json_is_object(s)) {
        json_decref(s);
        snprintf(err, errlen, "settings must be a JSON object");
        return NULL;
    }
    return s;
}

bool nset_url_ok(const char *url, char *err, size_t errlen, const char *what)
{
    if (url && strlen(url) < 2048 &&
        (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) &&
        !strpbrk(url, " \t\r\n"))
        return true;
    snprintf(err, errlen, "%s must be an http:// or https:// URL", what);
    return false;
}

size_t nset_utf8_cut(const char *text, size_t max)
{
    size_t len = strlen(text);
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)text[max] & 0xC0) == 0x80)
        max--;
    return max;
}

/* ---- TLS ---------------------------------------------------------------------------------------
 */

int ntls_parse(const json_t *settings, ntls *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->ca_bundle = nset_str(settings, "ca_bundle");
    t->fingerprint = nset_str(settings, "tls_fingerprint");
    if (!t->fingerprint)
        return 0;
    size_t j = 0;
    for (const char *p = t->fingerprint; *p; p++) {
        if (*p == ':')
            continue;
        if (!isxdigit((unsigned char)*p) || j >= 64)
            break;
        int v = isdigit((unsigned char)*p) ? *p - '0' : tolower((unsigned char)*p) - 'a' + 10;
        t->pin[j / 2] = (unsigned char)(t->pin[j / 2] << 4 | v);
        j++;
    }
    size_t hex = 0;
    for (const char *p = t->fingerprint; *p; p++)
        hex += *p != ':';
    if (j != 64 || hex != 64) {
        snprintf(err, errlen,
                 "tls_fingerprint must be the SHA-256 of the server certificate: 64 "
                 "hex digits");
        return -1;
    }
    t->pinned = true;
    return 0;
}

static int pin_verify(X509_STORE_CTX *store, void *arg)
{
    const ntls *t = arg;
    X509 *leaf = X509_STORE_CTX_get0_cert(store);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!leaf || !X509_digest(leaf, EVP_sha256(), md, &mdlen) || mdlen != 32 ||
        CRYPTO_memcmp(md, t->pin, 32) != 0) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
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

void ntls_apply(CURL *easy, ntls *t)
{
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    if (t->pinned) { /* the pin names the exact certificate: it replaces chain and name checks */
        /* libcurl's connection reuse does not compare the SSL_CTX callback: a
         * connection another pin (or none) accepted must never carry this one. */
        curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(easy, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
        curl_easy_setopt(easy, CURLOPT_SSL_CTX_DATA, t);
    } else if (t->ca_bundle && strstr(t->ca_bundle, "-----BEGIN")) {
        struct curl_blob blob = {(void *)t->ca_bundle, strlen(t->ca_bundle), CURL_BLOB_COPY};
        curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &blob);
    } else if (t->ca_bundle) {
        curl_easy_setopt(easy, CURLOPT_CAINFO, t->ca_bundle);
    }
}

/* ---- a transfer --------------------------------------------------------------------------------
 */

typedef struct nxfer {
    const opsc_host_api *host;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    ntls tls;
    bool http;
    void *extra;
    void (*free_extra)(void *extra);
    nhttp_end_fn on_end;
    opsc_notify_done_cb done;
    void *ud;
    char errbuf[CURL_ERROR_SIZE];
    char resp[RESP_KEPT + 1];
    size_t resp_len;
} nxfer;

static size_t on_write(char *data, size_t size, size_t n, void *ud)
{
    nxfer *x = ud;
    size_t len = size * n, room = RESP_KEPT - x->resp_len;
    memcpy(x->resp + x->resp_len, data, len < room ? len : room);
    x->resp_len += len < room ? len : room;
    x->resp[x->resp_len] = '\0';
    return len; /* the rest is read and dropped */
}

static int curl_status(int result, bool *retryable)
{
    *retryable = true;
    switch (result) {
    case CURLE_COULDNT_RESOLVE_HOST:
        return OPSC_EDNS;
    case CURLE_COULDNT_CONNECT:
        return OPSC_ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return OPSC_ETIMEDOUT;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        return OPSC_ECONNRESET;
    case CURLE_ABORTED_BY_CALLBACK:
        return OPSC_ECANCELED;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        *retryable = false; /* a certificate that does not check out will not tomorrow */
        return OPSC_EHOSTKEY;
    case CURLE_LOGIN_DENIED:
        *retryable = false;
        return OPSC_EAUTH;
    case CURLE_USE_SSL_FAILED:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        *retryable = false;
        return OPSC_EPROTO;
    default:
        return OPSC_EPROTO;
    }
}

/* Control characters of a receiver's answer stay out of logs and history. */
static void printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20)
            *s = ' ';
}

static void on_done(void *ud, int result)
{
    nxfer *x = ud;
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    bool retryable = true;
    char err[CURL_ERROR_SIZE + RESP_KEPT + 64] = "";
    int status = 0;
    if (result != CURLE_OK) {
        status = curl_status(result, &retryable);
        snprintf(err, sizeof(err), "%s%s%s", curl_easy_strerror((CURLcode)result),
                 x->errbuf[0] ? ": " : "", x->errbuf);
    } else if (x->http && (code < 200 || code > 299)) {
        status = OPSC_EREMOTE;
        printable(x->resp);
        snprintf(err, sizeof(err), "HTTP %ld%s%s", code, x->resp_len ? ": " : "", x->resp);
    }
    if (x->on_end)
        status = x->on_end(x->easy, result, x->extra, &retryable, err, sizeof(err));
    if (x->http && result == CURLE_OK && OPSC_HOST_HAS(x->host, notify_http_status)) {
        curl_off_t after = 0;
        if (code == 429 || code == 503)
            curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &after);
        x->host->notify_http_status(x->ud, (int)code, (int64_t)after * 1000);
    }
    opsc_notify_done_cb done = x->done;
    void *cb_ud = x->ud;
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->body);
    if (x->free_extra)
        x->free_extra(x->extra);
    free(x);
    done(cb_ud, status, retryable, status ? err : NULL);
}

static nxfer *xfer_new(const opsc_host_api *host, CURL *easy, opsc_notify_done_cb done, void *ud)
{
    nxfer *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->host = host;
    x->easy = easy;
    x->done = done;
    x->ud = ud;
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    return x;
}

static int start(nxfer *x)
{
    if (!OPSC_HOST_HAS(x->host, curl_start))
        return OPSC_ENOTSUP;
    return x->host->curl_start(x->easy, on_done, x);
}

int nhttp_run(const opsc_host_api *host, CURL *easy, struct curl_slist *headers, void *extra,
              void (*free_extra)(void *extra), nhttp_end_fn on_end, opsc_notify_done_cb done,
              void *ud)
{
    nxfer *x = xfer_new(host, easy, done, ud);
    int rc = x ? 0 : OPSC_ENOMEM;
    if (x) {
        x->headers = headers;
        x->extra = extra;
        x->free_extra = free_extra;
        x->on_end = on_end;
        rc = start(x);
    }
    if (rc < 0) {
        curl_easy_cleanup(easy);
        curl_slist_free_all(headers);
        if (free_extra)
            free_extra(extra);
        free(x);
    }
    return rc;
}

int nhttp_send(const opsc_host_api *host, nhttp_req *r, opsc_notify_done_cb done, void *ud)
{
    CURL *easy = curl_easy_init();
    nxfer *x = easy ? xfer_new(host, easy, done, ud) : NULL;
    int rc = x ? 0 : OPSC_ENOMEM;
    char err[256];
    if (x) {
        x->http = true;
        x->headers = curl_slist_append(r->headers, "Content-Type: application/json");
        r->headers = NULL;
        x->body = r->body;
        r->body = NULL;
        rc = ntls_parse(r->tls, &x->tls, err, sizeof(err)) < 0 ? OPSC_EINVAL : 0;
    }
    if (rc == 0) {
        curl_easy_setopt(easy, CURLOPT_URL, r->url);
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        if (r->method && strcmp(r->method, "PUT") == 0)
            curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, x->body);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, x->headers);
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, r->timeout_ms > 0 ? r->timeout_ms : 15000L);
        curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(easy, CURLOPT_USERAGENT, "OpsConductor-Notify/1");
        ntls_apply(easy, &x->tls);
        rc = start(x);
    }
    if (rc < 0) {
        if (x) {
            curl_slist_free_all(x->headers);
            free(x->body);
            free(x);
        }
        if (easy)
            curl_easy_cleanup(easy);
    }
    curl_slist_free_all(r->headers);
    free(r->body);
    r->headers = NULL;
    r->body = NULL;
    return rc;
}

int nhttp_post_json(const opsc_host_api *host, const char *url, json_t *body,
                    const json_t *settings, opsc_notify_done_cb done, void *ud)
{
    nhttp_req r = {.url = url,
                   .body = body ? json_dumps(body, JSON_COMPACT) : NULL,
                   .timeout_ms =
                       (long)json_integer_value(json_object_get(settings, "timeout_s")) * 1000};
    r.len = r.body ? strlen(r.body) : 0;
    json_decref(body);
    return r.body ? nhttp_send(host, &r, done, ud) : OPSC_ENOMEM;
}

/* ---- plugin life --------------------------------------------------------------------------- */

int nplugin_init(const opsc_host_api *api, const char *component, const opsc_notifier *n)
{
    if (!OPSC_HOST_HAS(api, curl_start) || !OPSC_HOST_HAS(api, notify_http_status)) {
        api->log(component, OPSC_LOG_ERROR, "the host has no curl_start (ABI 1.1 needed)");
        return OPSC_EABI;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return OPSC_ENOMEM;
    int rc = api->register_notifier(n, NULL);
    if (rc < 0)
        curl_global_cleanup();
    return rc;
}

void nplugin_shutdown(void *state)
{
    (void)state;
    curl_global_cleanup();
}

int nset_validate_object(void *state, const char *settings_json, char *err, size_t errlen)
{
    (void)state;
    json_t *s = nset_parse(settings_json, err, errlen);
    json_decref(s);
    return s ? 0 : OPSC_ESCHEMA;
}
