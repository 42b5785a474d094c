/* fleet_routes.h - route tables of the fleet resources: targets, groups, connectivity tests.
 * Handlers reach core->store, ->plugins, ->pool, ->fleet and ->events through http_req_app(). */
#ifndef OPSC_API_FLEET_ROUTES_H
#define OPSC_API_FLEET_ROUTES_H

#include <jansson.h>

#include "fleet.h"
#include "http.h"

struct opsc_core;

int api_targets_register(struct opsc_core *c);    /* /api/v1/targets... */
int api_groups_register(struct opsc_core *c);     /* /api/v1/groups... */
int api_fleet_test_register(struct opsc_core *c); /* /api/v1/{targets,groups}/{id}/test */
/* All of the above. */
int api_fleet_register(struct opsc_core *c);

/* Answer a refused fleet write: 400 "invalid_<what>" or 409 "conflict" with
 * {"field"} in details for OPSC_ESCHEMA / OPSC_EEXIST / OPSC_EHOSTKEY with
 * `e`, else the usual mapping of `rc` naming `what`. */
void fleet_respond_error(http_req *req, int rc, const fleet_err *e, const char *what);
/* POST /api/v1/targets/bulk (targets_bulk.c). */
int api_targets_bulk(http_req *req);

/* Publish "<kind>.<verb>" with {id, name} of `rec` on the core's bus. */
void fleet_publish(http_req *req, const char *type, const json_t *rec);

#endif
