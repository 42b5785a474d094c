/* nhttp.h - what the bundled notifiers share: a JSON POST (or any libcurl transfer) run on the
 * host's loop through opsc_host_api.curl_start, its answer reported with the host's delivery
 * policy in mind; certificate checks with a CA bundle or a pinned fingerprint; settings reading.
 *
 * Compiled into each notify-* plugin (one .so each, against the public SDK only).
 * Thread: loop.
 */
#ifndef NHTTP_H
#define NHTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>
#include <opsc/plugin.h>

/* Certificate checking of one connection: verified against the system store,
 * a CA bundle (PEM text, or a file path), or a pinned SHA-256 fingerprint of
 * the server's certificate (64 hex digits, ':' allowed) which replaces the
 * chain and name checks, as targets' WinRM does. */
typedef struct ntls {
    const char *ca_bundle;
    const char *fingerprint;
    unsigned char pin[32];
    bool pinned;
} ntls;

/* Check the TLS settings {ca_bundle, tls_fingerprint} of a channel. */
int ntls_parse(const json_t *settings, ntls *t, char *err, size_t errlen);
/* Apply them to `easy`; `t` must live as long as the transfer. */
void ntls_apply(CURL *easy, ntls *t);

typedef struct nhttp_req {
    const char *url;
    const char *method;         /* "POST" (NULL) or "PUT" */
    struct curl_slist *headers; /* transferred: freed when the transfer ends */
    char *body;                 /* transferred (malloc, as json_dumps makes it): freed at the end */
    size_t len;
    long timeout_ms;   /* 0: 15 s */
    const json_t *tls; /* settings with ca_bundle / tls_fingerprint, or NULL */
} nhttp_req;

/* Send `r` and call `done` once, later, on the loop. Before it, the status
 * and Retry-After go to opsc_host_api.notify_http_status (the host decides
 * by them). 0, or a negative code (nothing was started; `r`'s transferred
 * members are freed all the same). */
int nhttp_send(const opsc_host_api *host, nhttp_req *r, opsc_notify_done_cb done, void *ud);

/* One libcurl transfer that is not a JSON POST (SMTP): the helper owns the
 * easy handle from here, reports curl errors as `done` expects and frees
 * `extra` (with `free_extra`) at the end. `on_end` (may be NULL) sees the
 * finished handle first and may replace the answer (SMTP reply codes). */
typedef int (*nhttp_end_fn)(CURL *easy, int result, void *extra, bool *retryable, char *err,
                            size_t errlen);
int nhttp_run(const opsc_host_api *host, CURL *easy, struct curl_slist *headers, void *extra,
              void (*free_extra)(void *extra), nhttp_end_fn on_end, opsc_notify_done_cb done,
              void *ud);

/* A JSON message (`body`, stolen) to `url`, with the timeout of the channel's
 * settings {timeout_s}: what Slack and Teams send. As nhttp_send otherwise. */
int nhttp_post_json(const opsc_host_api *host, const char *url, json_t *body,
                    const json_t *settings, opsc_notify_done_cb done, void *ud);

/* A bundled notifier's init: the host must have curl_start (ABI 1.1); libcurl
 * is initialised (reference-counted, undone by nplugin_shutdown) and `n`
 * registered. */
int nplugin_init(const opsc_host_api *api, const char *component, const opsc_notifier *n);
void nplugin_shutdown(void *state);
/* validate() of a notifier whose schema says everything: the settings parse. */
int nset_validate_object(void *state, const char *settings_json, char *err, size_t errlen);

/* Settings helpers. */
const char *nset_str(const json_t *o, const char *key);
bool nset_url_ok(const char *url, char *err, size_t errlen, const char *what);
/* The settings JSON text parsed, or NULL with a message. */
json_t *nset_parse(const char *settings_json, char *err, size_t errlen);
/* Append `text` cut to at most `max` bytes on a UTF-8 boundary, with "…" when cut. */
size_t nset_utf8_cut(const char *text, size_t max);

#endif
