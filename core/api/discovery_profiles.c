/* discovery_profiles.c - /api/v1/discovery/profiles: saved scans on cron schedules with
 * auto-onboard rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "auth.h"
#include "core.h"
#include "discovery_routes.h"
#include "discovery_schemas.h"
#include "rest.h"

#define PROFILES "/api/v1/discovery/profiles"

static discovery *dsc_of(http_req *req)
{
    return ((struct opsc_core *)http_req_app(req))->discovery;
}

static int list_profiles(http_req *req)
{
    size_t limit;
    const char *cursor;
    if (!rest_page(req, &limit, &cursor))
        return HTTP_DONE;
    json_t *items = NULL;
    char next[40];
    int rc = discovery_profile_list(dsc_of(req), limit, cursor, &items, next);
    return dsc_respond_list(req, rc, items, next, "profiles");
}

static int put(http_req *req, const char *id)
{
    int64_t expect = id ? rest_if_match(req) : 0;
    if (expect < 0)
        return HTTP_DONE;
    json_t *p = NULL;
    dsc_err e = {0};
    int rc = discovery_profile_put(dsc_of(req), id, http_req_json(req), expect, &p, &e);
    if (rc < 0) {
        dsc_respond(req, &e);
    } else {
        auth_set_object(req, json_string_value(json_object_get(p, "id")));
        if (id) {
            rest_etag(req, p);
            http_respond_json(req, 200, json_incref(p));
        } else {
            rest_created(req, PROFILES, json_incref(p));
        }
    }
    json_decref(p);
    dsc_err_clear(&e);
    return HTTP_DONE;
}

static int create_profile(http_req *req)
{
    return put(req, NULL);
}

static int update_profile(http_req *req)
{
    return put(req, http_req_param(req, "id"));
}

static int get_profile(http_req *req)
{
    json_t *p = NULL;
    int rc = discovery_profile_get(dsc_of(req), http_req_param(req, "id"), &p);
    if (rc < 0) {
        rest_error(req, rc, "profile");
    } else {
        rest_etag(req, p);
        http_respond_json(req, 200, p);
    }
    return HTTP_DONE;
}

static int delete_profile(http_req *req)
{
    return dsc_delete(req, discovery_profile_delete, "profile");
}

static void on_started(void *ud, json_t *scan, const dsc_err *e)
{
    http_req *req = ud;
    if (scan) {
        auth_set_object(req, json_string_value(json_object_get(scan, "id")));
        rest_created(req, "/api/v1/discovery/scans", json_incref(scan));
    } else {
        dsc_respond(req, e);
    }
    http_req_unref(req);
}

static int run_profile(http_req *req)
{
    http_req_ref(req);
    discovery_profile_run(dsc_of(req), http_req_param(req, "id"), dsc_requester(req), on_started,
                          req);
    return HTTP_ASYNC;
}

static int next_runs(http_req *req)
{
    const char *q = http_req_query(req, "count");
    char *end = NULL;
    long count = q ? strtol(q, &end, 10) : 5;
    if (q && (*end || count < 1 || count > 100)) {
        http_respond_error(req, 400, "bad_request", NULL, "count must be 1 to 100");
        return HTTP_DONE;
    }
    json_t *out = NULL;
    dsc_err e = {0};
    int rc = discovery_profile_next(dsc_of(req), http_req_param(req, "id"), (int)count, &out, &e);
    if (rc < 0)
        dsc_respond(req, &e);
    else
        http_respond_json(req, 200, out);
    dsc_err_clear(&e);
    return HTTP_DONE;
}

static const http_route routes[] = {
    {"GET", PROFILES, ROLE_VIEWER, list_profiles, 0, "discovery", "List scan profiles", NULL,
     DSC_SCHEMA_profile_list},
    {"POST", PROFILES, ROLE_OPERATOR, create_profile, HTTP_ROUTE_JSON_BODY, "discovery",
     "Save a scan profile: spec (a scan request), cron and timezone (the scheduler's engine and "
     "DST rule), vanish_after, auto_onboard rules",
     DSC_SCHEMA_profile_request, DSC_SCHEMA_profile, 201},
    {"GET", PROFILES "/{id}", ROLE_VIEWER, get_profile, 0, "discovery",
     "A profile with its next run and last scan", NULL, DSC_SCHEMA_profile},
    {"PATCH", PROFILES "/{id}", ROLE_OPERATOR, update_profile, HTTP_ROUTE_JSON_BODY, "discovery",
     "Change a profile (If-Match); null clears description, cron, vanish_after",
     DSC_SCHEMA_profile_request, DSC_SCHEMA_profile},
    {"DELETE", PROFILES "/{id}", ROLE_OPERATOR, delete_profile, 0, "discovery",
     "Delete a profile (its scans and hosts stay)", NULL, NULL, 204},
    {"POST", PROFILES "/{id}/run", ROLE_OPERATOR, run_profile, 0, "discovery",
     "Scan the profile now", NULL, DSC_SCHEMA_scan, 201},
    {"GET", PROFILES "/{id}/next", ROLE_VIEWER, next_runs, 0, "discovery",
     "The next scheduled scans (?count=, default 5) in UTC and the profile's zone", NULL,
     DSC_SCHEMA_cron_times},
};

int api_discovery_profiles_register(struct opsc_core *c)
{
    return http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
}
