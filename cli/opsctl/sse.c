/* sse.c - following Server-Sent Events over libcurl, reconnecting with Last-Event-ID. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "opsctl.h"
#include "sse_parse.h"

volatile sig_atomic_t opsctl_interrupted;

typedef struct stream {
    sse_fn fn;
    void *ud;
    sse_parser parser;
    long status;
    http_answer error; /* an answer that is not the stream */
    bool got_event;
} stream;

static int on_event(const char *event, const char *id, const char *data, size_t len, void *ud)
{
    stream *st = ud;
    json_t *json = json_loadb(data, len, 0, NULL);
    st->got_event = true;
    int stop = st->fn(event, id, json, st->ud);
    json_decref(json);
    return stop;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *ud)
{
    stream *st = ud;
    size_t n = size * nmemb;
    if (!st->status)
        curl_easy_getinfo(client_handle(), CURLINFO_RESPONSE_CODE, &st->status);
    if (st->status != 200) /* an error answer: kept whole for api_error */
        return http_answer_append(&st->error, data, n);
    return sse_feed(&st->parser, data, n) ? n : 0; /* 0 ends the transfer once fn stopped */
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)ud, (void)a, (void)b, (void)c, (void)d;
    return opsctl_interrupted ? 1 : 0;
}

/* One connection: events until the server closes, fn stops, or an error. */
static CURLcode connect_once(opsctl *c, const char *path, stream *st)
{
    CURL *h = client_handle();
    const char *bearer = session_bearer(c); /* may refresh, on this handle: before setting it up */
    curl_easy_reset(h);
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: text/event-stream");
    char last[64];
    if (st->parser.last_id[0]) {
        snprintf(last, sizeof(last), "Last-Event-ID: %s", st->parser.last_id);
        headers = curl_slist_append(headers, last);
    }
    client_setup(c, h, path, bearer, &headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, st);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    st->status = 0;
    http_answer_free(&st->error);
    sse_parser_reset(&st->parser);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    if (!st->status)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st->status);
    return rc;
}

static int answer_error(stream *st)
{
    st->error.status = st->status;
    st->error.json = json_loadb(st->error.body ? st->error.body : "", st->error.len, 0, NULL);
    return api_error(&st->error);
}

#define RECONNECTS 30 /* about a minute of a daemon restarting */

int http_sse(opsctl *c, const char *path, sse_fn fn, void *ud)
{
    stream st = {.fn = fn, .ud = ud};
    sse_parser_init(&st.parser, on_event, &st);
    int rc = OPSCTL_ERROR, failures = 0;
    bool refreshed = false;
    while (!opsctl_interrupted) {
        st.got_event = false;
        CURLcode cc = connect_once(c, path, &st);
        if (st.parser.stopped) {
            rc = 0;
            break;
        }
        if (st.status == 401 && !refreshed && !c->bearer_from_env && session_refresh(c) == 0) {
            refreshed = true;
            continue;
        }
        if (st.status && st.status != 200) {
            rc = answer_error(&st);
            break;
        }
        if (opsctl_interrupted)
            break;
        /* The stream ended without its "end" event: the daemon restarted or the
         * network dropped. Resume after the last event, as SSE intends. */
        failures = st.got_event ? 0 : failures + 1;
        if (failures > RECONNECTS) {
            client_unreachable(c, cc == CURLE_OK ? CURLE_GOT_NOTHING : cc);
            break;
        }
        sleep(failures ? 2 : 0);
    }
    if (opsctl_interrupted)
        rc = OPSCTL_INTERRUPTED;
    sse_parser_free(&st.parser);
    http_answer_free(&st.error);
    return rc;
}
