/* fleet_routes.h - route tables of the fleet resources: targets, groups, connectivity tests.
 * Handlers reach core->store, ->plugins, ->pool, ->fleet and ->events through http_req_app(). */
#ifndef OPSC_API_FLEET_ROUTES_H
#define OPSC_API_FLEET_ROUTES_H

#include <jansson.h>
#include <stdbool.h>

#include "fleet.h"
#include "http.h"
#include "store.h"

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
/* The record `id` of `db` (new reference), read in its own transaction. */
int fleet_read_record(store *s, const char *db, const char *id, json_t **rec);
/* A whole GET handler: the record of `db` named by the {id} parameter, with its ETag. */
int fleet_get_record(http_req *req, const char *db, const char *what);
/* The targets of group `gid` (fleet_resolve_records): *records a new array;
 * OPSC_ENOENT for an unknown group. */
int fleet_resolve_group(http_req *req, const char *gid, json_t **records, char *err, size_t errlen);

/* POST /api/v1/targets/bulk (targets_bulk.c). */
int api_targets_bulk(http_req *req);

/* [executor] local_targets (local_targets.c): NULL when the caller may
 * create, change, test and run jobs on local targets, else why not. */
const char *api_local_denied(http_req *req);
bool api_is_local_target(const json_t *rec);
/* 403 "forbidden" naming the transport. */
void api_local_refuse(http_req *req, const char *why);

/* Publish "<kind>.<verb>" with {id, name} of `rec` on the core's bus. */
void fleet_publish(http_req *req, const char *type, const json_t *rec);

#endif
