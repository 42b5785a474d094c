/* sse.c - following Server-Sent Events: parsing the stream, reconnecting with Last-Event-ID. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "opsctl.h"

volatile sig_atomic_t opsctl_interrupted;

typedef struct sse_state {
    sse_fn fn;
    void *ud;
    char *line; /* the line being read */
    size_t len, cap;
    char event[64];
    char id[32];      /* of the event being read */
    char last_id[32]; /* of the last event delivered: where a reconnect resumes */
    char *data;
    size_t data_len;
    bool stop; /* fn has seen enough */
    long status;
    bool got_event;
} sse_state;

static int append(char **buf, size_t *len, const char *s, size_t n)
{
    char *grown = realloc(*buf, *len + n + 2);
    if (!grown)
        return -1;
    memcpy(grown + *len, s, n);
    *len += n;
    grown[*len] = '\0';
    *buf = grown;
    return 0;
}

static void dispatch(sse_state *st)
{
    if (st->event[0] && st->data) {
        json_t *data = json_loadb(st->data, st->data_len, 0, NULL);
        if (st->id[0])
            snprintf(st->last_id, sizeof(st->last_id), "%s", st->id);
        st->got_event = true;
        st->stop = st->fn(st->event, st->id[0] ? st->id : NULL, data, st->ud) != 0;
        json_decref(data);
    }
    st->event[0] = st->id[0] = '\0';
    free(st->data);
    st->data = NULL;
    st->data_len = 0;
}

/* One line of the stream (without its newline). */
static void on_line(sse_state *st, char *line)
{
    if (!*line) {
        dispatch(st);
        return;
    }
    if (*line == ':') /* a comment: the keep-alive */
        return;
    char *colon = strchr(line, ':');
    const char *value = "";
    if (colon) {
        *colon = '\0';
        value = colon[1] == ' ' ? colon + 2 : colon + 1;
    }
    if (strcmp(line, "event") == 0) {
        snprintf(st->event, sizeof(st->event), "%s", value);
    } else if (strcmp(line, "id") == 0) {
        snprintf(st->id, sizeof(st->id), "%s", value);
    } else if (strcmp(line, "data") == 0) {
        if (st->data)
            append(&st->data, &st->data_len, "\n", 1);
        append(&st->data, &st->data_len, value, strlen(value));
    }
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *ud)
{
    sse_state *st = ud;
    size_t n = size * nmemb;
    if (!st->status)
        curl_easy_getinfo(client_handle(), CURLINFO_RESPONSE_CODE, &st->status);
    if (!st->line && append(&st->line, &st->len, "", 0) < 0)
        return 0;
    if (st->status != 200) /* an error answer: keep it whole for api_error */
        return append(&st->line, &st->len, data, n) == 0 ? n : 0;
    for (size_t i = 0; i < n && !st->stop; i++) {
        if (data[i] == '\n') {
            if (st->len && st->line[st->len - 1] == '\r')
                st->line[--st->len] = '\0';
            on_line(st, st->line);
            st->len = 0;
            st->line[0] = '\0';
        } else if (append(&st->line, &st->len, data + i, 1) < 0) {
            return 0;
        }
    }
    return st->stop ? 0 : n; /* 0 ends the transfer once fn has seen enough */
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)ud, (void)a, (void)b, (void)c, (void)d;
    return opsctl_interrupted ? 1 : 0;
}

/* One connection: events until the server closes, fn stops, or an error. */
static CURLcode connect_once(opsctl *c, const char *path, sse_state *st)
{
    CURL *h = client_handle();
    curl_easy_reset(h);
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: text/event-stream");
    char last[64];
    if (st->last_id[0]) {
        snprintf(last, sizeof(last), "Last-Event-ID: %s", st->last_id);
        headers = curl_slist_append(headers, last);
    }
    client_setup(c, h, path, &headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, st);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    st->status = 0;
    st->len = 0;
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    if (!st->status)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st->status);
    return rc;
}

static int answer_error(sse_state *st)
{
    http_answer ans = {st->status, NULL, st->line, st->len};
    ans.json = st->line ? json_loadb(st->line, st->len, 0, NULL) : NULL;
    api_error(&ans);
    json_decref(ans.json);
    return OPSCTL_ERROR;
}

#define RECONNECTS 30 /* about a minute of a daemon restarting */

int http_sse(opsctl *c, const char *path, sse_fn fn, void *ud)
{
    sse_state st = {.fn = fn, .ud = ud};
    int rc = OPSCTL_ERROR, failures = 0;
    bool refreshed = false;
    while (!opsctl_interrupted) {
        st.got_event = false;
        CURLcode cc = connect_once(c, path, &st);
        if (st.stop) {
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
    free(st.line);
    free(st.data);
    return rc;
}
