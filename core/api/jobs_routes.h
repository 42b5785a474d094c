/* jobs_routes.h - route tables of jobs (/api/v1/jobs...) and runs (/api/v1/runs...). Handlers
 * reach core->store, ->plugins, ->exec and ->events through http_req_app(). */
#ifndef OPSC_API_JOBS_ROUTES_H
#define OPSC_API_JOBS_ROUTES_H

#include <jansson.h>

#include "http.h"

struct opsc_core;

int api_jobs_register(struct opsc_core *c); /* /api/v1/jobs... */
int api_runs_register(struct opsc_core *c); /* /api/v1/runs... */
/* The /metrics families of runs, targets, steps and connections (runs_metrics.c). */
int api_runs_metrics_register(struct opsc_core *c);

/* Answer a refused run start (exec_run_start's codes and message). */
void runs_respond_error(http_req *req, int rc, const char *err);
/* 201 with the stored run `run_id`. */
void runs_respond_created(http_req *req, const char *run_id);
/* GET /api/v1/runs/{id}/events (runs_sse.c). */
int runs_events(http_req *req);

/* The caller's name for triggered_by and the audit log. */
const char *api_caller(http_req *req);

#endif
