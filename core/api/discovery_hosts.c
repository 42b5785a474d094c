/* discovery_hosts.c - /api/v1/discovery/hosts: the inventory, accepting changes, onboarding. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "auth.h"
#include "core.h"
#include "discovery_routes.h"
#include "discovery_schemas.h"
#include "rest.h"

#define HOSTS "/api/v1/discovery/hosts"

static discovery *dsc_of(http_req *req)
{
    return ((struct opsc_core *)http_req_app(req))->discovery;
}

/* Query values as the filter schema wants them: port a number when it is one. */
static json_t *filter_from_query(http_req *req)
{
    static const char *const keys[] = {"state", "port", "os", "range", "scan_id", "profile_id"};
    json_t *f = json_object();
    for (size_t i = 0; f && i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = http_req_query(req, keys[i]);
        if (!v)
            continue;
        size_t n = strlen(v);
        bool number = n > 0 && n < 7 && strspn(v, "0123456789") == n;
        json_object_set_new(f, keys[i], number && i == 1 ? json_integer(atoi(v)) : json_string(v));
    }
    return f;
}

static int list_hosts(http_req *req)
{
    size_t limit;
    const char *cursor;
    if (!rest_page(req, &limit, &cursor))
        return HTTP_DONE;
    json_t *filter = filter_from_query(req), *items = NULL;
    char next[40];
    dsc_err e = {0};
    int rc = discovery_hosts_list(dsc_of(req), filter, limit, cursor, &items, next, &e);
    if (e.status)
        dsc_respond(req, &e);
    else if (rc < 0)
        rest_error(req, rc, "hosts");
    else
        http_respond_json(req, 200, rest_list(json_incref(items), next));
    json_decref(items);
    json_decref(filter);
    dsc_err_clear(&e);
    return HTTP_DONE;
}

static int answer(http_req *req, int rc, json_t *host, int status)
{
    if (rc < 0) {
        rest_error(req, rc, "host");
    } else {
        rest_etag(req, host);
        http_respond_json(req, status, json_incref(host));
    }
    json_decref(host);
    return HTTP_DONE;
}

static int get_host(http_req *req)
{
    json_t *host = NULL;
    int rc = discovery_host_get(dsc_of(req), http_req_param(req, "id"), &host);
    return answer(req, rc, host, 200);
}

static int accept_host(http_req *req)
{
    int64_t expect = rest_if_match(req);
    if (expect < 0)
        return HTTP_DONE;
    json_t *host = NULL;
    const char *id = http_req_param(req, "id");
    int rc = discovery_host_accept(dsc_of(req), id, expect, &host);
    auth_set_object(req, id);
    return answer(req, rc, host, 200);
}

static int delete_host(http_req *req)
{
    return dsc_delete(req, discovery_host_delete, "host");
}

static void on_onboarded(void *ud, json_t *result)
{
    http_req *req = ud;
    char what[64];
    snprintf(what, sizeof(what), "onboard: %lld created",
             (long long)json_integer_value(json_object_get(result, "created")));
    auth_set_object(req, what);
    http_respond_json(req, 200, json_incref(result));
    http_req_unref(req);
}

static int onboard(http_req *req)
{
    dsc_err e = {0};
    http_req_ref(req);
    if (!discovery_onboard(dsc_of(req), http_req_json(req), on_onboarded, req, &e)) {
        dsc_respond(req, &e);
        http_req_unref(req);
    }
    dsc_err_clear(&e);
    return HTTP_ASYNC;
}

static const http_route routes[] = {
    {"GET", HOSTS, ROLE_VIEWER, list_hosts, 0, "discovery",
     "The host inventory: every address ever found; filters state (new, known, changed, "
     "vanished), port (open), os (linux, windows, unknown), range, scan_id, profile_id",
     NULL, DSC_SCHEMA_host_list},
    {"POST", HOSTS "/onboard", ROLE_OPERATOR, onboard, HTTP_ROUTE_JSON_BODY, "discovery",
     "Make hosts (host_ids or a filter) targets: transport from what the scan saw, SSH host key "
     "pinned (strict), a credential, labels, a group, names from a template; per-host results, "
     "optionally a connectivity test",
     DSC_SCHEMA_onboard_request, DSC_SCHEMA_onboard_result},
    {"GET", HOSTS "/{id}", ROLE_VIEWER, get_host, 0, "discovery",
     "A discovered host with its state, ports, names, keys and changes", NULL, DSC_SCHEMA_host},
    {"POST", HOSTS "/{id}/accept", ROLE_OPERATOR, accept_host, 0, "discovery",
     "Accept a changed host's new host key or OS (If-Match): it is no longer `changed`", NULL,
     DSC_SCHEMA_host},
    {"DELETE", HOSTS "/{id}", ROLE_OPERATOR, delete_host, 0, "discovery",
     "Forget a discovered host (a later scan finds it as new)", NULL, NULL, 204},
    {"GET", "/api/v1/discovery/events", ROLE_VIEWER, api_discovery_host_events, 0, "discovery",
     "Server-Sent Events of the inventory as they happen: host_found (new, or back after "
     "vanishing), host_changed (host key or OS), host_vanished",
     NULL, NULL},
};

int api_discovery_hosts_register(struct opsc_core *c)
{
    return http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
}
