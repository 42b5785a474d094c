/* fleet_test.c - POST /api/v1/targets/{id}/test and /api/v1/groups/{id}/test: connectivity
 * tests, a group's results streamed as Server-Sent Events while targets finish.
 *
 * A group test answers with an event stream when the client accepts
 * text/event-stream: "start" {group_id, total, concurrency}, one "result"
 * per target as it finishes (disabled targets first, as skipped results),
 * then "done" {total, ok, failed, skipped, not_run, wall_ms}; the stream
 * then ends. Otherwise it answers one JSON document {items, summary} once
 * every target is done. A client that goes away stops the test from
 * starting more targets; those running finish and their facts are stored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "fleet.h"
#include "fleet_routes.h"
#include "http.h"
#include "rest.h"
#include "util.h"

static struct opsc_core *core_of(http_req *req)
{
    return http_req_app(req);
}

/* ---- one target ------------------------------------------------------------------------- */

static void on_target_result(void *ud, json_t *result)
{
    http_req *req = ud;
    http_respond_json(req, 200, json_incref(result));
    http_req_unref(req);
}

static int test_target(http_req *req)
{
    struct opsc_core *c = core_of(req);
    const char *id = http_req_param(req, "id");
    json_t *rec = NULL;
    int rc = fleet_read_record(c->store, "targets", id, &rec);
    const char *denied = rc == 0 && api_is_local_target(rec) ? api_local_denied(req) : NULL;
    json_decref(rec);
    if (rc < 0) {
        rest_error(req, rc, "target");
        return HTTP_DONE;
    }
    if (denied) { /* a probe runs commands on the appliance */
        api_local_refuse(req, denied);
        return HTTP_DONE;
    }
    http_req_ref(req);
    rc = fleet_test_target(c->fleet, id, on_target_result, req);
    if (rc < 0) {
        http_req_unref(req);
        http_respond_opsc_error(req, rc == OPSC_ECANCELED ? OPSC_EBUSY : rc,
                                "cannot test the target: %s", opsc_strerror(rc));
        return HTTP_DONE;
    }
    return HTTP_ASYNC;
}

/* ---- a group ------------------------------------------------------------------------------ */

typedef struct gtest {
    http_req *req; /* JSON mode: held until the answer */
    http_sse *sse; /* stream mode: NULL once the client is gone */
    fleet_batch *batch;
    json_t *items; /* JSON mode: every result */
    size_t skipped;
    uint64_t seq;
    const char *local_denied; /* local targets are skipped, and why */
} gtest;

static void send_event(gtest *g, const char *event, json_t *data)
{
    char *text = json_dumps(data, JSON_COMPACT);
    char id[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)++g->seq);
    if (text && g->sse)
        http_sse_send(g->sse, id, event, text);
    free(text);
}

static void emit(gtest *g, json_t *result)
{
    if (g->items)
        json_array_append(g->items, result);
    else
        send_event(g, "result", result);
}

static void on_result(void *ud, json_t *result)
{
    emit(ud, result);
}

static void on_done(void *ud, json_t *summary)
{
    gtest *g = ud;
    json_object_set_new(summary, "skipped", json_integer((json_int_t)g->skipped));
    json_object_set_new(summary, "total",
                        json_integer(json_integer_value(json_object_get(summary, "total")) +
                                     (json_int_t)g->skipped));
    if (g->items) {
        http_respond_json(g->req, 200,
                          json_pack("{s:O, s:O}", "items", g->items, "summary", summary));
        http_req_unref(g->req);
    } else if (g->sse) {
        send_event(g, "done", summary);
        http_sse_end(g->sse);
    }
    json_decref(g->items);
    free(g);
}

static void on_stream_closed(void *ud)
{
    gtest *g = ud;
    g->sse = NULL;
    fleet_batch_stop(g->batch);
}

/* Disabled members are reported, not tested; the ids of the others. */
static json_t *split(gtest *g, const json_t *records)
{
    json_t *ids = json_array();
    size_t i;
    json_t *r;
    json_array_foreach((json_t *)records, i, r)
    {
        bool refused = g->local_denied && api_is_local_target(r);
        if (!json_is_false(json_object_get(r, "enabled")) && !refused) {
            json_array_append(ids, json_object_get(r, "id"));
            continue;
        }
        g->skipped++;
        json_t *res = json_pack("{s:O, s:O, s:b, s:b, s:{s:s, s:s, s:s}}", "target_id",
                                json_object_get(r, "id"), "name", json_object_get(r, "name"), "ok",
                                0, "skipped", 1, "error", "code", refused ? "EACCES" : "ESTATE",
                                "stage", "skipped", "message",
                                refused ? g->local_denied : "the target is disabled");
        emit(g, res);
        json_decref(res);
    }
    return ids;
}

static bool wants_stream(http_req *req)
{
    const char *accept = http_req_header(req, "Accept");
    return accept && strstr(accept, "text/event-stream");
}

static int concurrency(http_req *req, int dflt)
{
    const char *q = http_req_query(req, "concurrency");
    if (!q)
        return dflt;
    char *end;
    long v = strtol(q, &end, 10);
    if (*end || v < 1 || v > 1000) {
        http_respond_error(req, 400, "bad_request", NULL, "concurrency must be 1 to 1000");
        return -1;
    }
    return (int)v;
}

/* Answer (stream head or held request) and start the batch. */
static int start(http_req *req, gtest *g, json_t *records, int conc)
{
    struct opsc_core *c = core_of(req);
    const char *gid = http_req_param(req, "id");
    if (wants_stream(req)) {
        g->sse = http_sse_start(req, on_stream_closed, g);
        if (!g->sse)
            return -1; /* answered: the client is gone */
        json_t *head = json_pack("{s:s, s:I, s:i}", "group_id", gid, "total",
                                 (json_int_t)json_array_size(records), "concurrency", conc);
        send_event(g, "start", head);
        json_decref(head);
    } else {
        g->items = json_array();
        g->req = req;
        http_req_ref(req);
    }
    json_t *ids = split(g, records);
    int rc = fleet_batch_start(c->fleet, ids, conc, on_result, on_done, g, &g->batch);
    json_decref(ids);
    if (rc < 0 && g->sse) {
        http_sse_end(g->sse);
    } else if (rc < 0) {
        http_respond_opsc_error(req, rc, "cannot start the test: %s", opsc_strerror(rc));
        http_req_unref(req);
    }
    return rc;
}

static int test_group(http_req *req)
{
    struct opsc_core *c = core_of(req);
    int conc = concurrency(req, fleet_test_concurrency(c->fleet));
    if (conc < 0)
        return HTTP_DONE;
    json_t *records = NULL;
    char err[400] = "";
    int rc = fleet_resolve_group(req, http_req_param(req, "id"), &records, err, sizeof(err));
    gtest *g = rc == 0 ? calloc(1, sizeof(*g)) : NULL;
    if (rc == 0 && !g)
        rc = OPSC_ENOMEM;
    if (rc < 0) {
        json_decref(records);
        rest_error(req, rc, "group");
        return HTTP_DONE;
    }
    g->local_denied = api_local_denied(req);
    rc = start(req, g, records, conc);
    json_decref(records);
    if (rc < 0) {
        json_decref(g->items);
        free(g);
        return HTTP_DONE;
    }
    return g->sse ? HTTP_DONE : HTTP_ASYNC;
}

#define RESULT_SCHEMA                                                                              \
    "{\"type\":\"object\",\"properties\":{\"target_id\":{\"type\":\"string\"},\"name\":{\"type\":" \
    "\"string\"},\"ok\":{\"type\":\"boolean\"},\"connect_ms\":{\"type\":\"integer\"},"             \
    "\"probe_ms\":{\"type\":\"integer\"},\"facts\":{\"type\":\"object\"},\"warning\":{\"type\":"   \
    "\"string\"},\"error\":{\"type\":\"object\",\"properties\":{\"code\":{\"type\":\"string\"},"   \
    "\"stage\":{\"type\":\"string\",\"enum\":[\"connect\",\"probe\",\"skipped\"]},\"message\":"    \
    "{\"type\":\"string\"}}}}}"

static const http_route routes[] = {
    {"POST", "/api/v1/targets/{id}/test", ROLE_OPERATOR, test_target, 0, "targets",
     "Connectivity test: connect, authenticate, probe facts (stored in the target); 200 with "
     "the result, ok or not",
     NULL, RESULT_SCHEMA},
    {"POST", "/api/v1/groups/{id}/test", ROLE_OPERATOR, test_group, 0, "groups",
     "Test every target of the group in parallel (?concurrency=); with Accept: "
     "text/event-stream the results stream as events start, result..., done",
     NULL,
     "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":" RESULT_SCHEMA
     "},\"summary\":{\"type\":\"object\"}}}"},
};

int api_fleet_test_register(struct opsc_core *c)
{
    return http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
}

int api_fleet_register(struct opsc_core *c)
{
    int rc = api_targets_register(c);
    if (rc == 0)
        rc = api_groups_register(c);
    if (rc == 0)
        rc = api_fleet_test_register(c);
    return rc;
}
