/* core_http.c - http.request: an HTTP(S) request from the appliance, on the step's worker thread.
 *
 * Blocking libcurl easy calls are right here: imperative steps run on the
 * host's step pool, never on the loop. Cancellation is checked from curl's
 * progress callback. Only http and https are allowed, redirects included.
 * URLs are shown without credentials or query strings, which often carry
 * tokens.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"

typedef struct http_call {
    opsc_step_ctx *ctx;
    const core_settings *settings;
    char refused[256]; /* a connection core_addr_refused() stopped: why */
    char ca[4096];     /* ca_file as a path */
    json_t *params;
    char *body;
    size_t len, cap, max;
    bool truncated;
    json_t *headers;
    char shown_url[512];
} http_call;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    http_call *c = ud;
    size_t n = size * nmemb, keep = c->len + n > c->max ? c->max - c->len : n;
    c->truncated |= keep < n;
    if (keep && c->len + keep + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 16384;
        while (cap < c->len + keep + 1)
            cap *= 2;
        char *b = realloc(c->body, cap);
        if (!b)
            return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
        c->body = b;
        c->cap = cap;
    }
    if (keep) {
        memcpy(c->body + c->len, data, keep);
        c->len += keep;
        c->body[c->len] = '\0';
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    http_call *c = ud;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new response (redirects) */
        json_object_clear(c->headers);
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon || colon == data)
        return n;
    char name[128], value[4096];
    size_t nl =
        (size_t)(colon - data) < sizeof(name) - 1 ? (size_t)(colon - data) : sizeof(name) - 1;
    for (size_t i = 0; i < nl; i++)
        name[i] = (char)tolower((unsigned char)data[i]);
    name[nl] = '\0';
    const char *v = colon + 1, *end = data + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    snprintf(value, sizeof(value), "%.*s", (int)(end - v), v);
    json_t *js = json_string(value);
    if (js)
        json_object_set_new(c->headers, name, js);
    return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    http_call *c = ud;
    return core_host->step_cancelled(c->ctx) ? 1 : 0;
}

/* scheme://host[:port]/path of the URL, for messages. */
static void show_url(const char *url, char *out, size_t n)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
        curl_url_get(u, CURLUPART_HOST, &host, 0);
        curl_url_get(u, CURLUPART_PORT, &port, 0);
        curl_url_get(u, CURLUPART_PATH, &path, 0);
    }
    snprintf(out, n, "%s://%s%s%s%s", scheme ? scheme : "?", host ? host : "?", port ? ":" : "",
             port ? port : "", path ? path : "");
    curl_free(scheme), curl_free(host), curl_free(port), curl_free(path);
    curl_url_cleanup(u);
}

/* The secret value of a parameter when it is a secret reference, else its text. */
static const char *secret_or_text(http_call *c, const char *name)
{
    const char *v = core_host->step_secret(c->ctx, name);
    return v ? v : stepkit_str(c->params, name);
}

static struct curl_slist *request_headers(http_call *c)
{
    struct curl_slist *list = NULL;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(c->params, "headers"), k, v)
    {
        char line[4096];
        snprintf(line, sizeof(line), "%s: %s", k, json_string_value(v));
        list = curl_slist_append(list, line);
    }
    if (json_object_get(c->params, "json"))
        list = curl_slist_append(list, "Content-Type: application/json");
    return list;
}

static void set_auth(http_call *c, CURL *curl)
{
    const char *bearer = secret_or_text(c, "bearer_token");
    const char *user = stepkit_str(c->params, "username");
    if (bearer) {
        curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
        curl_easy_setopt(curl, CURLOPT_XOAUTH2_BEARER, bearer);
    } else if (user) {
        const char *pass = secret_or_text(c, "password");
        curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(curl, CURLOPT_USERNAME, user);
        curl_easy_setopt(curl, CURLOPT_PASSWORD, pass ? pass : "");
    }
}

/* Every connection curl opens, redirects included, with the address it
 * resolved: the appliance itself is refused here (core_reach.c). */
static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    http_call *c = ud;
    (void)purpose;
    if (core_addr_refused(c->settings, &a->addr, c->refused, sizeof(c->refused)))
        return CURL_SOCKET_BAD;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static void set_options(http_call *c, CURL *curl, const char *body, struct curl_slist *hdrs)
{
    const json_t *p = c->params;
    const char *method = stepkit_str(p, "method"), *ca = c->ca[0] ? c->ca : NULL;
    long timeout_ms = (long)(stepkit_num(p, "timeout_s", 30) * 1000.0);
    curl_easy_setopt(curl, CURLOPT_URL, stepkit_str(p, "url"));
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* we are on a worker thread */
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION,
                     stepkit_bool(p, "follow_redirects", true) ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, stepkit_bool(p, "verify_tls", true) ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, stepkit_bool(p, "verify_tls", true) ? 2L : 0L);
    if (ca)
        curl_easy_setopt(curl, CURLOPT_CAINFO, ca);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "OpsConductor-steplib-core/1.0");
    if (method && strcmp(method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    else if (method && strcmp(method, "GET") != 0)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        if (!method || strcmp(method, "GET") == 0)
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "POST");
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, c);
    set_auth(c, curl);
}

static bool status_expected(const json_t *params, long status)
{
    const json_t *list = json_object_get(params, "expect_status");
    if (!json_is_array(list) || json_array_size(list) == 0)
        return status >= 200 && status < 300;
    for (size_t i = 0; i < json_array_size(list); i++)
        if (json_integer_value(json_array_get(list, i)) == status)
            return true;
    return false;
}

static int set_outputs(http_call *c, long status, long elapsed_ms)
{
    const opsc_host_api *h = core_host;
    int rc = stepkit_output(h, c->ctx, "status", json_integer(status));
    json_t *text = json_stringn(c->body ? c->body : "", c->len);
    if (rc == 0 && text)
        rc = stepkit_output(h, c->ctx, "body", text);
    else if (!text)
        h->step_log(c->ctx, OPSC_LOG_WARN, "the response body is not UTF-8 text: not kept");
    json_t *parsed =
        c->len && !c->truncated ? json_loadb(c->body, c->len, JSON_DECODE_ANY, NULL) : NULL;
    if (rc == 0 && parsed)
        rc = stepkit_output(h, c->ctx, "json", parsed);
    if (rc == 0)
        rc = stepkit_output(h, c->ctx, "headers", json_incref(c->headers));
    if (rc == 0)
        rc = stepkit_output(h, c->ctx, "elapsed_ms", json_integer(elapsed_ms));
    if (c->truncated)
        h->step_log(c->ctx, OPSC_LOG_WARN, "response body truncated to %zu bytes", c->max);
    return rc;
}

/* One attempt: 0 with the status, OPSC_ECANCELED, or another code after logging why. */
static int attempt(http_call *c, const char *body, long *status)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *hdrs = request_headers(c);
    if (!curl) {
        curl_slist_free_all(hdrs);
        return OPSC_ENOMEM;
    }
    c->len = 0;
    c->truncated = false;
    json_object_clear(c->headers);
    set_options(c, curl, body, hdrs);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode cc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(curl);
    curl_slist_free_all(hdrs);
    if (cc == CURLE_ABORTED_BY_CALLBACK)
        return OPSC_ECANCELED;
    if (cc != CURLE_OK && c->refused[0])
        return OPSC_EACCES;
    if (cc != CURLE_OK) {
        core_host->step_log(c->ctx, OPSC_LOG_WARN, "%s: %s", c->shown_url,
                            errbuf[0] ? errbuf : curl_easy_strerror(cc));
        return cc == CURLE_OPERATION_TIMEDOUT ? OPSC_ETIMEDOUT : OPSC_EIO;
    }
    return 0;
}

static int request_loop(http_call *c, const char *body)
{
    const opsc_host_api *h = core_host;
    int tries = 1 + (int)stepkit_num(c->params, "retries", 0), rc = 0;
    uint32_t delay = (uint32_t)(stepkit_num(c->params, "retry_delay_s", 2) * 1000.0);
    long status = 0;
    for (int i = 0; i < tries; i++) {
        if (i && h->step_sleep(c->ctx, delay) == OPSC_ECANCELED)
            return OPSC_ECANCELED;
        int64_t t0 = h->now_ms();
        rc = attempt(c, body, &status);
        if (rc == OPSC_ECANCELED)
            return rc;
        if (rc == OPSC_EACCES) /* no retry makes it allowed */
            return h->step_fail(c->ctx, "request to %s refused: %s", c->shown_url, c->refused);
        if (rc == 0) {
            h->step_log(c->ctx, OPSC_LOG_INFO, "%s %s: %ld in %lld ms",
                        stepkit_str(c->params, "method") ? stepkit_str(c->params, "method") : "GET",
                        c->shown_url, status, (long long)(h->now_ms() - t0));
            if (status_expected(c->params, status))
                return set_outputs(c, status, (long)(h->now_ms() - t0));
        }
    }
    if (rc < 0)
        return h->step_fail(c->ctx, "request to %s failed: %s", c->shown_url, opsc_strerror(rc));
    set_outputs(c, status, 0); /* the body helps to understand the failure */
    return h->step_fail(c->ctx, "%s answered %ld, which is not an expected status", c->shown_url,
                        status);
}

int core_http_request_run(opsc_step_ctx *ctx, void *lib_state)
{
    http_call c = {.ctx = ctx,
                   .settings = lib_state,
                   .params = stepkit_params(core_host, ctx),
                   .headers = json_object()};
    if (!c.params || !c.headers) {
        json_decref(c.params);
        json_decref(c.headers);
        return OPSC_ENOMEM;
    }
    if (!stepkit_str(c.params, "url")) {
        json_decref(c.params);
        json_decref(c.headers);
        return core_host->step_fail(ctx, "no url");
    }
    char why[512];
    const char *ca = stepkit_str(c.params, "ca_file");
    if (ca && core_ca_file(c.settings, ca, c.ca, sizeof(c.ca), why, sizeof(why)) < 0) {
        json_decref(c.params);
        json_decref(c.headers);
        return core_host->step_fail(ctx, "%s", why);
    }
    c.max = (size_t)stepkit_num(c.params, "max_body_bytes", 1048576);
    show_url(stepkit_str(c.params, "url"), c.shown_url, sizeof(c.shown_url));
    const json_t *js = json_object_get(c.params, "json");
    char *json_body = js ? json_dumps(js, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    const char *body = json_body ? json_body : stepkit_str(c.params, "body");
    int rc = request_loop(&c, body);
    free(json_body);
    free(c.body);
    json_decref(c.headers);
    json_decref(c.params);
    return rc;
}
