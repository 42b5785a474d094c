/* host_curl.c - one libcurl multi handle on the loop (uv_poll_t + uv_timer_t) that plugins hand
 * their easy handles to (opsc_host_api.curl_start), so no plugin drives sockets of its own. */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <uv.h>

#include <opsc/errors.h>

#include "log.h"
#include "plugin_internal.h"

typedef struct hc_sock {
    uv_poll_t poll;
    struct host_curl *hc;
    curl_socket_t fd;
    struct hc_sock *next;
} hc_sock;

/* One transfer: found again from its easy handle through CURLOPT_PRIVATE. */
typedef struct hc_xfer {
    CURL *easy;
    opsc_curl_done_cb done;
    void *ud;
    struct hc_xfer *prev, *next;
} hc_xfer;

struct host_curl {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    hc_sock *socks;
    hc_xfer *xfers;
    int open_handles; /* the timer and the polls, until their close callbacks ran */
    bool stopping;
};

static void maybe_free(host_curl *hc)
{
    if (hc->stopping && hc->open_handles == 0) {
        /* Cached connections close in cleanup: no callback may reach us then. */
        curl_multi_setopt(hc->multi, CURLMOPT_SOCKETFUNCTION, NULL);
        curl_multi_setopt(hc->multi, CURLMOPT_TIMERFUNCTION, NULL);
        curl_multi_cleanup(hc->multi);
        free(hc);
    }
}

static void handle_closed(uv_handle_t *handle)
{
    host_curl *hc = handle->data;
    if (handle->type == UV_POLL)
        free(handle);
    hc->open_handles--;
    maybe_free(hc);
}

static void xfer_unlink(host_curl *hc, hc_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        hc->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
}

static void check_done(host_curl *hc)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(hc->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        hc_xfer *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(hc->multi, easy);
        if (!x)
            continue;
        xfer_unlink(hc, x);
        opsc_curl_done_cb done = x->done;
        void *ud = x->ud;
        free(x);
        /* The plugin may start or cancel transfers from here: info_read copes. */
        done(ud, (int)result);
    }
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
    hc_sock *s = (hc_sock *)poll;
    int flags = status < 0 ? CURL_CSELECT_ERR : 0;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    host_curl *hc = s->hc;
    curl_multi_socket_action(hc->multi, s->fd, flags, &running);
    check_done(hc);
}

static void on_timer(uv_timer_t *t)
{
    host_curl *hc = t->data;
    int running;
    curl_multi_socket_action(hc->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(hc);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    host_curl *hc = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&hc->timer);
    else
        uv_timer_start(&hc->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void close_sock(host_curl *hc, hc_sock *s)
{
    for (hc_sock **p = &hc->socks; *p; p = &(*p)->next) {
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
    host_curl *hc = userp;
    hc_sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(hc->multi, fd, NULL);
            close_sock(hc, s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s || uv_poll_init_socket(hc->loop, &s->poll, fd)) {
            free(s);
            return -1;
        }
        s->hc = hc;
        s->fd = fd;
        s->poll.data = hc;
        s->next = hc->socks;
        hc->socks = s;
        hc->open_handles++;
        curl_multi_assign(hc->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static host_curl *host_curl_get(plugin_host *h)
{
    if (h->curl)
        return h->curl;
    /* Reference-counted and thread-safe in the libcurl Debian ships (7.88). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    host_curl *hc = calloc(1, sizeof(*hc));
    if (!hc || !(hc->multi = curl_multi_init())) {
        free(hc);
        return NULL;
    }
    hc->loop = h->loop;
    uv_timer_init(h->loop, &hc->timer);
    hc->timer.data = hc;
    hc->open_handles = 1;
    curl_multi_setopt(hc->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(hc->multi, CURLMOPT_SOCKETDATA, hc);
    curl_multi_setopt(hc->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(hc->multi, CURLMOPT_TIMERDATA, hc);
    h->curl = hc;
    return hc;
}

int plugin_host_curl_start(plugin_host *h, void *easy, opsc_curl_done_cb done, void *ud)
{
    if (!h || !easy || !done)
        return OPSC_EINVAL;
    host_curl *hc = host_curl_get(h);
    if (!hc)
        return OPSC_ENOMEM;
    if (hc->stopping)
        return OPSC_ESTATE;
    hc_xfer *x = calloc(1, sizeof(*x));
    if (!x)
        return OPSC_ENOMEM;
    x->easy = easy;
    x->done = done;
    x->ud = ud;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    if (curl_multi_add_handle(hc->multi, easy) != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(x);
        return OPSC_EINVAL;
    }
    x->next = hc->xfers;
    if (hc->xfers)
        hc->xfers->prev = x;
    hc->xfers = x;
    return 0;
}

void plugin_host_curl_cancel(plugin_host *h, void *easy)
{
    host_curl *hc = h ? h->curl : NULL;
    hc_xfer *x = NULL;
    if (!hc || !easy)
        return;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    for (hc_xfer *y = hc->xfers; y; y = y->next) {
        if (y == x) { /* only transfers of this multi: a stray pointer is ignored */
            curl_multi_remove_handle(hc->multi, easy);
            curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
            xfer_unlink(hc, x);
            free(x);
            return;
        }
    }
}

size_t plugin_host_curl_active(const plugin_host *h)
{
    size_t n = 0;
    for (const hc_xfer *x = h && h->curl ? h->curl->xfers : NULL; x; x = x->next)
        n++;
    return n;
}

/* Before the plugins shut down: each transfer still running ends with
 * CURLE_ABORTED_BY_CALLBACK, so its plugin frees what it holds; then the
 * handles close and the multi goes once their close callbacks ran. */
void plugin_host_curl_stop(plugin_host *h)
{
    host_curl *hc = h->curl;
    if (!hc)
        return;
    h->curl = NULL;
    hc->stopping = true;
    while (hc->xfers) {
        hc_xfer *x = hc->xfers;
        xfer_unlink(hc, x);
        curl_multi_remove_handle(hc->multi, x->easy);
        opsc_curl_done_cb done = x->done;
        void *ud = x->ud;
        free(x);
        done(ud, CURLE_ABORTED_BY_CALLBACK);
    }
    while (hc->socks) {
        curl_multi_assign(hc->multi, hc->socks->fd, NULL);
        close_sock(hc, hc->socks);
    }
    uv_timer_stop(&hc->timer);
    uv_close((uv_handle_t *)&hc->timer, handle_closed);
}
