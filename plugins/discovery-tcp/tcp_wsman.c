/* tcp_wsman.c - WS-Management Identify over HTTP and HTTPS: libcurl's multi-socket API on the
 * scan's loop (uv_poll_t per socket, one uv_timer_t), many requests at once, each on a fresh
 * connection. The server certificate is not verified (nothing is trusted from it): its
 * SHA-256 is reported so onboarding can pin it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tcp_internal.h"

#define MAX_BODY (64u << 10)

typedef struct wsock {
    uv_poll_t poll;
    struct wsock *next;
    curl_socket_t fd;
} wsock;

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

struct twsman {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    wsock *socks;
    wreq *reqs;
    struct curl_slist *headers;
    int handles; /* the timer and the polls not yet closed */
    bool closing;
    void (*closed)(void *ud);
    void *closed_ud;
};

static void maybe_gone(twsman *w)
{
    if (!w->closing || w->handles)
        return;
    void (*closed)(void *) = w->closed;
    void *ud = w->closed_ud;
    curl_slist_free_all(w->headers);
    tcp_host->free(w);
    if (closed)
        closed(ud);
}

static void on_handle_closed(uv_handle_t *h)
{
    twsman *w = h->data;
    if (h->type == UV_POLL)
        tcp_host->free(h);
    w->handles--;
    maybe_gone(w);
}

static void req_free(twsman *w, wreq *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        w->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    curl_multi_remove_handle(w->multi, r->easy);
    curl_easy_cleanup(r->easy);
    tcp_host->free(r->body);
    tcp_host->free(r);
}

/* ---- results ------------------------------------------------------------------------------------
 */

static void complete(twsman *w, wreq *r, CURLcode res)
{
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
    } else if (r->too_big ||
               dx_identify_parse(r->body ? r->body : "", r->len, &id, err, sizeof(err)) < 0) {
        status = OPSC_EPROTO;
        if (r->too_big)
            snprintf(err, sizeof(err), "the answer is larger than %u bytes", MAX_BODY);
    }
    twsman_cb cb = r->cb;
    void *ud = r->ud;
    char cert[65];
    snprintf(cert, sizeof(cert), "%s", r->cert);
    req_free(w, r);
    cb(ud, status, status == 0 ? &id : NULL, cert[0] ? cert : NULL, status ? err : NULL);
}

static void check_done(twsman *w)
{
    CURLMsg *msg;
    int left;
    while (!w->closing && (msg = curl_multi_info_read(w->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        wreq *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r)
            complete(w, r, msg->data.result);
    }
}

/* ---- curl on the loop --------------------------------------------------------------------------
 */

static void on_poll(uv_poll_t *poll, int status, int events)
{
    twsman *w = poll->data;
    wsock *s = (wsock *)poll;
    int flags = status < 0 ? CURL_CSELECT_ERR : 0, running;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(w->multi, s->fd, flags, &running);
    check_done(w);
}

static void on_timer(uv_timer_t *t)
{
    twsman *w = t->data;
    int running;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(w);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    twsman *w = userp;
    if (w->closing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&w->timer);
    else
        uv_timer_start(&w->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void close_sock(twsman *w, wsock *s)
{
    for (wsock **p = &w->socks; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    twsman *w = userp;
    wsock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(w->multi, fd, NULL);
            close_sock(w, s);
        }
        return 0;
    }
    if (!s) {
        s = tcp_host->calloc(1, sizeof(*s));
        if (!s || uv_poll_init_socket(w->loop, &s->poll, fd) < 0) {
            tcp_host->free(s);
            return -1;
        }
        s->fd = fd;
        s->poll.data = w;
        s->next = w->socks;
        w->socks = s;
        w->handles++;
        curl_multi_assign(w->multi, fd, s);
    }
    int events = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
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

/* ---- the API
 * --------------------------------------------------------------------------------------- */

int twsman_new(uv_loop_t *loop, twsman **out)
{
    twsman *w = tcp_host->calloc(1, sizeof(*w));
    if (!w || !(w->multi = curl_multi_init())) {
        tcp_host->free(w);
        return OPSC_ENOMEM;
    }
    w->loop = loop;
    w->headers = curl_slist_append(NULL, "Content-Type: application/soap+xml;charset=UTF-8");
    w->headers = curl_slist_append(w->headers, "WSMANIDENTIFY: unauthenticated");
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    w->handles = 1;
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    *out = w;
    return 0;
}

int twsman_identify(twsman *w, const char *url, uint32_t timeout_ms, twsman_cb cb, void *ud,
                    void **req)
{
    wreq *r = tcp_host->calloc(1, sizeof(*r));
    CURL *e = r ? curl_easy_init() : NULL;
    if (!e) {
        tcp_host->free(r);
        return OPSC_ENOMEM;
    }
    *r = (wreq){.w = w, .easy = e, .cb = cb, .ud = ud};
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, w->headers);
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
    if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        tcp_host->free(r);
        return OPSC_ENOMEM;
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
    if (req)
        req_free(w, req);
}

void twsman_close(twsman *w, void (*closed)(void *ud), void *ud)
{
    w->closing = true;
    w->closed = closed;
    w->closed_ud = ud;
    while (w->reqs)
        req_free(w, w->reqs);
    curl_multi_cleanup(w->multi); /* its sockets go through socket_cb: their polls close */
    w->multi = NULL;
    while (w->socks)
        close_sock(w, w->socks);
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, on_handle_closed);
}
