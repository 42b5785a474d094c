/* api.h - route tables of the REST API, one register function per resource.
 * Each takes the core and adds its routes to core->http. */
#ifndef OPSC_API_H
#define OPSC_API_H

#include <jansson.h>

struct opsc_core;
typedef struct http_server http_server;

/* /health, /ready, /metrics, /api/v1/system, PUT /api/v1/system/log,
 * /api/v1/plugins, /api/v1/openapi.json.
 * Also installs the completion hook that feeds core->metrics, and the
 * collector of uptime, connection, store and plugin figures. */
int api_system_register(struct opsc_core *c);

/* /api/v1/schedules... and POST /api/v1/cron/preview; handlers reach
 * core->store and core->sched. */
int api_schedules_register(struct opsc_core *c);

/* /api/v1/notifications/... (channels, rules, deliveries) and /api/v1/hooks, with the
 * notification counters of /metrics. Handlers reach core->notify and core->store. */
int api_notifications_register(struct opsc_core *c);

/* /api/v1/steplibs: list, upload (admin), delete (admin) step libraries. */
int api_steplibs_register(struct opsc_core *c);
/* At start, after the isolation policy and before any plugin loads: the
 * admins' per-library isolation overrides kept in the store. */
int api_steplibs_load_isolation(struct opsc_core *c);

/* GET /api/v1/cluster (role viewer): on LMDB this node leading itself; on
 * PostgreSQL the membership rows and the lease (core/cluster.h). */
int api_cluster_register(struct opsc_core *c);
/* "host:port" of this node's API: [server] public_url's authority, else the
 * first listen address with the port bound. After the HTTP server starts. */
void cluster_node_address(struct opsc_core *c, char *out, size_t n);
/* This node's id: read from <data_dir>/node_id, or made (UUIDv7) and written
 * there 0600 on the first start. 0, or a negative code with err set. */
int cluster_node_id_load(const char *data_dir, char id[40], char *err, size_t errlen);
/* [cluster] labels and route_by, checked like targets' labels, into
 * c->node_labels (object) and c->route_by (array of keys). 0, or
 * OPSC_ESCHEMA with err naming the file, line and key. */
int cluster_labels_load(struct opsc_core *c, char *err, size_t errlen);

/* The OpenAPI 3.0.3 document of every route of `srv` not flagged
 * HTTP_ROUTE_HIDDEN: paths, operations (summary, tag, path parameters,
 * request and response schemas from the route's text, the role it needs
 * as x-required-role), the shared Error schema, and bearer security on
 * routes whose role is above public. New reference. */
json_t *openapi_document(http_server *srv);

#endif
