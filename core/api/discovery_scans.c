/* discovery_scans.c - /api/v1/discovery/scans: start, list, watch, cancel scans. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "auth.h"
#include "core.h"
#include "discovery_routes.h"
#include "discovery_schemas.h"
#include "rest.h"

#define SCANS "/api/v1/discovery/scans"

static discovery *dsc_of(http_req *req)
{
    return ((struct opsc_core *)http_req_app(req))->discovery;
}

void dsc_respond(http_req *req, const dsc_err *e)
{
    json_t *details = e->details ? json_deep_copy(e->details) : NULL;
    if (e->field) {
        if (!details)
            details = json_object();
        json_object_set_new(details, "field", json_string(e->field));
    }
    http_respond_error(req, e->status ? e->status : 500, e->code ? e->code : "internal", details,
                       "%s", e->msg[0] ? e->msg : "internal error");
}

const char *dsc_requester(http_req *req)
{
    const auth_principal *p = auth_principal_of(req);
    return p && p->username[0] ? p->username : NULL;
}

int dsc_respond_list(http_req *req, int rc, json_t *items, const char *next, const char *what)
{
    if (rc < 0) {
        json_decref(items);
        rest_error(req, rc, what);
    } else {
        http_respond_json(req, 200, rest_list(items, next));
    }
    return HTTP_DONE;
}

int dsc_delete(http_req *req, dsc_delete_fn del, const char *what)
{
    int64_t expect = rest_if_match(req);
    if (expect < 0)
        return HTTP_DONE;
    const char *id = http_req_param(req, "id");
    int rc = del(dsc_of(req), id, expect);
    auth_set_object(req, id);
    if (rc < 0)
        rest_error(req, rc, what);
    else
        http_respond_empty(req, 204);
    return HTTP_DONE;
}

static void on_started(void *ud, json_t *scan, const dsc_err *e)
{
    http_req *req = ud;
    if (scan) {
        auth_set_object(req, json_string_value(json_object_get(scan, "id")));
        rest_created(req, SCANS, json_incref(scan));
    } else {
        dsc_respond(req, e);
    }
    http_req_unref(req);
}

static int start_scan(http_req *req)
{
    http_req_ref(req);
    discovery_scan_start(dsc_of(req), http_req_json(req), dsc_requester(req), on_started, req);
    return HTTP_ASYNC;
}

static int list_scans(http_req *req)
{
    size_t limit;
    const char *cursor, *state = http_req_query(req, "state");
    if (!rest_page(req, &limit, &cursor))
        return HTTP_DONE;
    json_t *items = NULL;
    char next[40];
    int rc = discovery_scan_list(dsc_of(req), limit, cursor, state, &items, next);
    return dsc_respond_list(req, rc, items, next, "scans");
}

static int get_scan(http_req *req)
{
    json_t *scan = NULL;
    int rc = discovery_scan_get(dsc_of(req), http_req_param(req, "id"), &scan);
    if (rc < 0)
        rest_error(req, rc, "scan");
    else
        http_respond_json(req, 200, scan);
    return HTTP_DONE;
}

static int cancel_scan(http_req *req)
{
    discovery *d = dsc_of(req);
    const char *id = http_req_param(req, "id");
    int rc = discovery_scan_cancel(d, id);
    json_t *scan = NULL;
    if (rc == OPSC_ESTATE && discovery_scan_get(d, id, &scan) == 0) {
        http_respond_error(
            req, 409, "conflict", json_pack("{s:O}", "state", json_object_get(scan, "state")),
            "the scan is not running (it %s)", json_string_value(json_object_get(scan, "state")));
    } else if (rc < 0) {
        rest_error(req, rc, "scan");
    } else if (discovery_scan_get(d, id, &scan) == 0) {
        json_object_set_new(scan, "cancelling", json_true());
        auth_set_object(req, id);
        http_respond_json(req, 202, json_incref(scan));
    } else {
        http_respond_error(req, 500, "internal", NULL, "cannot read the scan");
    }
    json_decref(scan);
    return HTTP_DONE;
}

static const http_route routes[] = {
    {"GET", SCANS, ROLE_VIEWER, list_scans, 0, "discovery",
     "List scans, newest first (filter: state)", NULL, DSC_SCHEMA_scan_list},
    {"POST", SCANS, ROLE_OPERATOR, start_scan, HTTP_ROUTE_JSON_BODY, "discovery",
     "Start a scan: ranges (CIDR, a-b, addresses, names), exclude, ports, rate, concurrency, "
     "timeout_ms; 400 beyond [discovery] max_addresses or outside allowed_ranges",
     DSC_SCHEMA_scan_request, DSC_SCHEMA_scan, 201},
    {"GET", SCANS "/{id}", ROLE_VIEWER, get_scan, 0, "discovery",
     "A scan with its progress (addresses done / total, rate, hosts found)", NULL, DSC_SCHEMA_scan},
    {"POST", SCANS "/{id}/cancel", ROLE_OPERATOR, cancel_scan, 0, "discovery",
     "Stop a running scan (within a second); 409 when it is not running", NULL, DSC_SCHEMA_scan,
     202},
    {"GET", SCANS "/{id}/events", ROLE_VIEWER, api_discovery_scan_events, 0, "discovery",
     "Server-Sent Events: scan (the scan now), host (each host found, those found before "
     "first), progress (twice a second), end",
     NULL, NULL},
};

int api_discovery_scans_register(struct opsc_core *c)
{
    return http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
}

int api_discovery_register(struct opsc_core *c)
{
    int rc = api_discovery_scans_register(c);
    if (rc == 0)
        rc = api_discovery_hosts_register(c);
    if (rc == 0)
        rc = api_discovery_profiles_register(c);
    return rc;
}
