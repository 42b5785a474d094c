/* discovery_events.c - GET /api/v1/discovery/scans/{id}/events: a scan's hosts as they are found,
 * as Server-Sent Events.
 *
 * The stream opens with "scan" (the scan as it is now), then one "host" per
 * host found so far, then live: "host" for each new host, "progress" about
 * twice a second, and "end" with the final scan when it stops; then it
 * closes. A stream of a scan already over gets scan, its hosts, end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "discovery_routes.h"
#include "events.h"
#include "rest.h"

#define KEEPALIVE_MS 15000

typedef struct watcher {
    struct opsc_core *c;
    http_sse *sse;
    char scan_id[40];
    int64_t sub;
    json_t *sent; /* host ids sent */
    uint64_t seq;
    uv_timer_t keepalive;
} watcher;

static void on_closed_handle(uv_handle_t *h)
{
    watcher *w = h->data;
    json_decref(w->sent);
    free(w);
}

static void watcher_free(watcher *w)
{
    if (w->sub > 0)
        events_unsubscribe(w->c->events, w->sub);
    w->sub = 0;
    uv_close((uv_handle_t *)&w->keepalive, on_closed_handle);
}

static void end_stream(watcher *w)
{
    if (w->sse)
        http_sse_end(w->sse);
    w->sse = NULL;
    watcher_free(w);
}

static void on_sse_closed(void *ud)
{
    watcher *w = ud;
    w->sse = NULL;
    watcher_free(w);
}

static bool emit(watcher *w, const char *name, json_t *data)
{
    char id[24], *text = json_dumps(data, JSON_COMPACT);
    snprintf(id, sizeof(id), "%llu", (unsigned long long)++w->seq);
    int64_t q = text && w->sse ? http_sse_send(w->sse, id, name, text) : OPSC_EPIPE;
    free(text);
    return q >= 0;
}

static bool send_host(watcher *w, json_t *host)
{
    const char *id = json_string_value(json_object_get(host, "id"));
    if (!id || json_object_get(w->sent, id))
        return true;
    json_object_set_new(w->sent, id, json_true());
    return emit(w, "host", host);
}

static bool over(const json_t *scan)
{
    return strcmp(json_string_value(json_object_get(scan, "state")), "running") != 0;
}

static void on_event(const event *ev, void *ud)
{
    watcher *w = ud;
    if (!w->sse)
        return;
    bool ok = true;
    if (strcmp(ev->type, "discovery.scan.host") == 0) {
        ok = send_host(w, json_object_get(ev->data, "host"));
    } else if (strcmp(ev->type, "discovery.scan.progress") == 0) {
        ok = emit(w, "progress", ev->data);
    } else if (strcmp(ev->type, "discovery.scan.state") == 0 &&
               over(json_object_get(ev->data, "scan"))) {
        emit(w, "end", json_object_get(ev->data, "scan"));
        ok = false;
    }
    if (!ok)
        end_stream(w);
}

static void on_keepalive(uv_timer_t *t)
{
    watcher *w = t->data;
    if (w->sse && http_sse_comment(w->sse, "keep-alive") < 0)
        end_stream(w);
}

/* Subscribed first, then caught up: events and the store are read on this
 * one thread, so nothing falls between them (host ids dedupe the overlap). */
static void catch_up(watcher *w, json_t *scan)
{
    discovery *d = w->c->discovery;
    json_t *hosts = NULL;
    bool ok = emit(w, "scan", scan) && discovery_scan_hosts(d, w->scan_id, &hosts) == 0;
    size_t i;
    json_t *h;
    json_array_foreach(hosts, i, h) ok = ok && send_host(w, h);
    json_decref(hosts);
    if (ok && over(scan) && !discovery_scan_running(d, w->scan_id)) {
        emit(w, "end", scan);
        ok = false;
    }
    if (!ok)
        end_stream(w);
    else
        uv_timer_start(&w->keepalive, on_keepalive, KEEPALIVE_MS, KEEPALIVE_MS);
}

int api_discovery_scan_events(http_req *req)
{
    struct opsc_core *c = http_req_app(req);
    json_t *scan = NULL;
    int rc = discovery_scan_get(c->discovery, http_req_param(req, "id"), &scan);
    watcher *w = rc == 0 ? calloc(1, sizeof(*w)) : NULL;
    if (rc < 0 || !w) {
        rest_error(req, rc < 0 ? rc : OPSC_ENOMEM, "scan");
        json_decref(scan);
        return HTTP_DONE;
    }
    w->c = c;
    w->sent = json_object();
    snprintf(w->scan_id, sizeof(w->scan_id), "%s", json_string_value(json_object_get(scan, "id")));
    uv_timer_init(c->loop, &w->keepalive);
    w->keepalive.data = w;
    w->sse = http_sse_start(req, on_sse_closed, w);
    if (!w->sse) {
        uv_close((uv_handle_t *)&w->keepalive, on_closed_handle);
    } else {
        w->sub = events_subscribe(c->events, "discovery.scan.", w->scan_id, on_event, w);
        catch_up(w, scan);
    }
    json_decref(scan);
    return HTTP_DONE;
}

/* ---- GET /api/v1/discovery/events: the inventory's events, live ----------------------------- */

typedef struct listener {
    struct opsc_core *c;
    http_sse *sse;
    int64_t sub;
    uv_timer_t keepalive;
} listener;

static void listener_closed(uv_handle_t *h)
{
    free(h->data);
}

static void listener_free(listener *l)
{
    if (l->sub > 0)
        events_unsubscribe(l->c->events, l->sub);
    l->sub = 0;
    uv_close((uv_handle_t *)&l->keepalive, listener_closed);
}

static void on_listener_gone(void *ud)
{
    listener *l = ud;
    l->sse = NULL;
    listener_free(l);
}

static void on_host_event(const event *ev, void *ud)
{
    listener *l = ud;
    char id[24], *text = json_dumps(ev->data, JSON_COMPACT);
    snprintf(id, sizeof(id), "%llu", (unsigned long long)ev->seq);
    /* "discovery.host_found" -> "host_found" */
    int64_t q = text && l->sse ? http_sse_send(l->sse, id, ev->type + 10, text) : OPSC_EPIPE;
    free(text);
    if (q < 0 || q > (int64_t)(4u << 20)) { /* gone, or too slow to keep up: it reconnects */
        if (l->sse)
            http_sse_end(l->sse);
        l->sse = NULL;
        listener_free(l);
    }
}

static void on_listener_tick(uv_timer_t *t)
{
    listener *l = t->data;
    if (l->sse && http_sse_comment(l->sse, "keep-alive") < 0) {
        http_sse_end(l->sse);
        l->sse = NULL;
        listener_free(l);
    }
}

int api_discovery_host_events(http_req *req)
{
    struct opsc_core *c = http_req_app(req);
    listener *l = calloc(1, sizeof(*l));
    if (!l) {
        http_respond_opsc_error(req, OPSC_ENOMEM, "out of memory");
        return HTTP_DONE;
    }
    l->c = c;
    uv_timer_init(c->loop, &l->keepalive);
    l->keepalive.data = l;
    l->sse = http_sse_start(req, on_listener_gone, l);
    if (!l->sse) {
        uv_close((uv_handle_t *)&l->keepalive, listener_closed);
        return HTTP_DONE;
    }
    l->sub = events_subscribe(c->events, "discovery.host_", NULL, on_host_event, l);
    http_sse_comment(l->sse, "discovery events: host_found, host_changed, host_vanished");
    uv_timer_start(&l->keepalive, on_listener_tick, KEEPALIVE_MS, KEEPALIVE_MS);
    return HTTP_DONE;
}
