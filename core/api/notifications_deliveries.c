/* notifications_deliveries.c - /api/v1/notifications/deliveries (the delivery history, newest
 * first, every attempt with its status and error) and the notification figures of /metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "api.h"
#include "core.h"
#include "metrics.h"
#include "notify_data.h"
#include "notify_routes.h"
#include "rest.h"

/* A page looks at this many records at most, matching or not: a rare filter
 * over a large outbox answers with fewer items and a cursor, not a stall. */
#define SCAN_BUDGET 5000

static struct opsc_core *core_of(http_req *req)
{
    return http_req_app(req);
}

typedef struct dpage {
    const char *channel, *rule, *state, *event;
    const char *cursor;
    size_t limit, seen;
    json_t *items;
    char next[40];
} dpage;

static bool match(const json_t *rec, const char *key, const char *want)
{
    const char *v = json_string_value(json_object_get(rec, key));
    return !want || (v && strcmp(v, want) == 0);
}

static int one(const char *id, json_t *rec, void *ud)
{
    dpage *p = ud;
    if (json_array_size(p->items) == p->limit || ++p->seen > SCAN_BUDGET)
        return 1;
    snprintf(p->next, sizeof(p->next), "%s", id);
    if (match(rec, "channel_id", p->channel) && match(rec, "rule_id", p->rule) &&
        match(rec, "state", p->state) && match(rec, "event", p->event))
        json_array_append_new(p->items, notify_delivery_public(rec));
    return 0;
}

static int page_txn(store_txn *txn, void *ud)
{
    dpage *p = ud;
    int rc = store_scan(txn, "outbox", p->cursor, true, one, p);
    if (rc == 0 && json_array_size(p->items) < p->limit && p->seen <= SCAN_BUDGET)
        p->next[0] = '\0'; /* the scan reached the oldest record */
    return rc;
}

static int list_deliveries(http_req *req)
{
    static const char *const states[] = {"pending", "failed", "delivered", "gave_up", NULL};
    dpage p = {http_req_query(req, "channel"), http_req_query(req, "rule"),
               http_req_query(req, "state"), http_req_query(req, "event")};
    if (!rest_page(req, &p.limit, &p.cursor))
        return HTTP_DONE;
    bool known = !p.state;
    for (const char *const *s = states; *s && !known; s++)
        known = strcmp(*s, p.state) == 0;
    if (!known) {
        http_respond_error(req, 400, "bad_request", json_pack("{s:s}", "field", "state"),
                           "state must be pending, failed, delivered or gave_up");
        return HTTP_DONE;
    }
    p.items = json_array();
    int rc = store_read(core_of(req)->store, page_txn, &p);
    if (rc < 0) {
        json_decref(p.items);
        rest_error(req, rc, "deliveries");
        return HTTP_DONE;
    }
    http_respond_json(req, 200, rest_list(p.items, p.next));
    return HTTP_DONE;
}

struct one {
    const char *id;
    json_t *rec;
};

static int get_txn(store_txn *txn, void *ud)
{
    struct one *o = ud;
    return store_get(txn, "outbox", o->id, &o->rec);
}

static int get_delivery(http_req *req)
{
    struct one o = {http_req_param(req, "id"), NULL};
    int rc = store_read(core_of(req)->store, get_txn, &o);
    if (rc < 0) {
        rest_error(req, rc, "delivery");
        return HTTP_DONE;
    }
    http_respond_json(req, 200, notify_delivery_public(o.rec));
    json_decref(o.rec);
    return HTTP_DONE;
}

static const http_route routes[] = {
    {"GET", "/api/v1/notifications/deliveries", ROLE_VIEWER, list_deliveries, 0, "notifications",
     "Delivery history, newest first, each attempt with its status and error (?channel, ?rule, "
     "?state, ?event)",
     NULL,
     "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":" J_delivery
     "},\"next_cursor\":{\"type\":[\"string\",\"null\"]}}}"},
    {"GET", "/api/v1/notifications/deliveries/{id}", ROLE_VIEWER, get_delivery, 0, "notifications",
     "Get a delivery with its attempts", NULL, J_delivery},
};

/* /metrics (ud is the core: the service may be gone before the last scrape). */
static void collect(strbuf *out, void *ud)
{
    struct opsc_core *c = ud;
    if (!c->notify)
        return;
    json_t *by_type = NULL, *hooks = NULL;
    notify_stats st;
    notify_stats_get(c->notify, &st);
    notify_metrics(c->notify, &by_type, &hooks);
    metrics_family(out, "opsc_notify_deliveries_total", "counter",
                   "Delivery attempts by channel type and outcome (delivered, retried, gave_up).");
    const char *key;
    json_t *v;
    json_object_foreach(by_type, key, v)
    {
        const char *slash = strchr(key, '/');
        if (slash)
            sb_printf(out, "opsc_notify_deliveries_total{type=\"%.*s\",outcome=\"%s\"} %lld\n",
                      (int)(slash - key), key, slash + 1, (long long)json_integer_value(v));
    }
    metrics_single(out, "opsc_notify_created_total", "counter", "Deliveries written to the outbox.",
                   (double)st.created);
    metrics_single(out, "opsc_notify_merged_total", "counter",
                   "Notices merged into an open delivery of their group window.",
                   (double)st.merged);
    metrics_single(out, "opsc_notify_in_flight", "gauge", "Deliveries being sent now.",
                   (double)st.in_flight);
    metrics_family(out, "opsc_hook_triggers_total", "counter",
                   "Inbound webhook requests by outcome.");
    json_object_foreach(hooks, key, v)
    {
        sb_printf(out, "opsc_hook_triggers_total{outcome=\"%s\"} %lld\n", key,
                  (long long)json_integer_value(v));
    }
}

int api_deliveries_register(struct opsc_core *c)
{
    int rc = http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
    if (rc == 0 && c->metrics)
        rc = metrics_add_collector(c->metrics, collect, c);
    return rc;
}
