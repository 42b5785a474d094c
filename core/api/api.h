/* api.h - route tables of the REST API, one register function per resource.
 * Each takes the core and adds its routes to core->http. */
#ifndef OPSC_API_H
#define OPSC_API_H

struct opsc_core;

/* /health, /ready, /metrics, /api/v1/system, /api/v1/plugins, /api/v1/openapi.json */
int api_system_register(struct opsc_core *c);

#endif
