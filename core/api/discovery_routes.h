/* discovery_routes.h - route tables of /api/v1/discovery: scans (and their event streams), the
 * host inventory and onboarding, scan profiles. Handlers reach core->discovery through
 * http_req_app(). */
#ifndef OPSC_API_DISCOVERY_ROUTES_H
#define OPSC_API_DISCOVERY_ROUTES_H

#include "discovery.h"
#include "http.h"

struct opsc_core;

int api_discovery_scans_register(struct opsc_core *c);    /* /api/v1/discovery/scans... */
int api_discovery_hosts_register(struct opsc_core *c);    /* /api/v1/discovery/hosts... */
int api_discovery_profiles_register(struct opsc_core *c); /* /api/v1/discovery/profiles... */
/* All of the above. */
int api_discovery_register(struct opsc_core *c);

/* Answer a refusal of the discovery service: its status and code, with
 * {"field", ...details} in details. */
void dsc_respond(http_req *req, const dsc_err *e);
/* A page answered {"items", "next_cursor"} (both taken), or the error naming `what`. */
int dsc_respond_list(http_req *req, int rc, json_t *items, const char *next, const char *what);
/* A whole DELETE handler (If-Match, audit object, 204) over `del`. */
typedef int (*dsc_delete_fn)(discovery *d, const char *id, int64_t expect);
int dsc_delete(http_req *req, dsc_delete_fn del, const char *what);
/* The caller's user name for records ("requested_by"), or NULL. */
const char *dsc_requester(http_req *req);
/* GET /api/v1/discovery/scans/{id}/events and GET /api/v1/discovery/events (discovery_events.c). */
int api_discovery_scan_events(http_req *req);
int api_discovery_host_events(http_req *req);

#endif
