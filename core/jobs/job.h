/* job.h - jobs: the model and its validation at save, versions, the compiled plan runs use,
 * run parameters, `when` conditions, export and import.
 *
 * A job record ("jobs" database, unique names through "jobs_by_name"):
 *   name, description,
 *   parameters  [{name, type: string|int|bool|choice|secret, required, default,
 *                 pattern (string), choices (choice), secret, description}]
 *   targets     {ids, groups, selector}: the default targets of its runs
 *   steps       [{id, name, type ("lib.step" or "lib.step@major"), params, timeout_s,
 *                 retries, retry_delay_s, on_failure: stop|continue, when}]
 *   max_parallel (0: no limit but the daemon's), batch_size (0: one batch),
 *   timeout_s (0: none), allow_concurrent (other runs may use the same
 *   targets at the same time; default false: one run per target at once),
 *   created_by, updated_by.
 * A secret parameter (type "secret", or `secret: true`) names a credential
 * of type `secret` (by name or id); its value is decrypted for the run and
 * redacted from everything the run records.
 *
 * Every create and update stores a copy of the whole record in
 * "job_versions" under "<job id>/<version, 10 digits>": the record's store
 * version is the job version that runs record.
 *
 * `when` is an expression of the template language (template.h, the part
 * inside `{% if ... %}`): `steps.check.outputs.changed == true`,
 * `params.env == 'prod' and steps.probe.state == 'succeeded'`,
 * `'nginx' in steps.facts.outputs.stdout`. A step's context holds, for each
 * earlier step, `steps.<id>.outputs`, `.state` and `.exit_code`. Only earlier
 * steps may be named. Undefined values are false.
 *
 * Validation errors are collected, not stopped at the first: an array of
 * {path (JSON Pointer into the job), step (id), field ("params.port"),
 * position ("line:col" in a template or `when`), message}.
 *
 * Thread: loop thread; a compiled plan is immutable and may be read from
 * step workers.
 */
#ifndef OPSC_JOB_H
#define OPSC_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jsonschema.h"
#include "store.h"
#include "template.h"

typedef struct plugin_host plugin_host;
typedef struct plugin_reg plugin_reg;
typedef struct steptype steptype;

#define JOB_MAX_STEPS  100
#define JOB_MAX_PARAMS 100
#define JOB_ID_MAX     64 /* step ids */

/* ---- validation (job_build.c, job_steps.c) ---------------------------------------------- */

/* Build the record to store from a request body: a create when `existing`
 * is NULL, else a PATCH over it (top-level members replace the stored
 * ones; null clears an optional one). Normalises defaults. On failure
 * OPSC_ESCHEMA and *errors (new array, see above); *out is NULL. */
int job_build(plugin_host *h, const json_t *body, const json_t *existing, json_t **out,
              json_t **errors);

/* The steps of `rec` (normalised in place); what is wrong goes to `errors`. */
void job_steps_check(plugin_host *h, json_t *rec, json_t *errors);

/* Append one error to `errors`. `line` 0: no position. */
void job_err_add(json_t *errors, const char *path, const char *step, const char *field, int line,
                 int col, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* "<message of the first error>" + " (and N more)" for the error's message. */
void job_err_summary(const json_t *errors, char *buf, size_t n);

/* The job's parameters as a JSON Schema object (new reference): run
 * parameters validate against it, with defaults added. */
json_t *job_params_schema(const json_t *parameters);

/* Check a `when` expression naming only the steps in `earlier` (array of
 * ids). On failure OPSC_ESYNTAX with the column in *col and why in msg. */
int job_when_check(const char *expr, const json_t *earlier, const json_t *known_params, int *col,
                   char *msg, size_t msglen);
/* Compile `expr` for evaluation (tpl_free the result). */
int job_when_compile(const char *expr, tpl **out, char *err, size_t errlen);
/* Evaluate with a run context {params, target, steps, run}. */
int job_when_eval(const tpl *when, const json_t *ctx, bool *out, char *err, size_t errlen);

/* Validate a step's parameter values (templates allowed) against its step
 * type: templates compile (raw parameters for a shell the step supports),
 * values that are not templated match the schema. `errors` gets what is
 * wrong, with `base` ("/steps/2") and the step id. */
void job_step_params_check(const steptype *st, const json_t *params, const json_t *known_params,
                           const char *base, const char *step_id, json_t *errors);

/* JSON Pointers (array of strings) of the templated strings in `v`, under `base`. */
void job_templated_paths(const json_t *v, const char *base, json_t *paths);
/* True when a schema error at `path` concerns a value under one of `paths`. */
bool job_path_deferred(const json_t *paths, const char *path);

/* ---- store (job_store.c) -------------------------------------------------------------- */

/* Create `rec` (its id assigned unless set), index its name, store version 1.
 * OPSC_EEXIST when the name is taken. */
int job_insert(store_txn *txn, json_t *rec);
/* Replace the job `rec.id` (If-Match `expect`, 0: any), keep the name
 * index, store the new version. */
int job_replace(store_txn *txn, const json_t *before, json_t *rec, int64_t expect);
/* Delete the job, its name index and its versions. */
int job_remove(store_txn *txn, const char *id, int64_t expect);
/* By id, or by name when `ref` is not a known id. OPSC_ENOENT. */
int job_get(store_txn *txn, const char *ref, json_t **out);
/* A stored version (the whole record as it was). OPSC_ENOENT. */
int job_version_get(store_txn *txn, const char *job_id, int64_t version, json_t **out);
/* Versions newest first: [{version, updated_at, updated_by}] after `before`
 * (0: from the newest), at most `limit`; *next is the cursor or 0. */
int job_versions_list(store_txn *txn, const char *job_id, int64_t before, size_t limit,
                      json_t **items, int64_t *next);

/* ---- the plan a run executes (job_plan.c) -------------------------------------------- */

typedef struct job_step {
    const char *id; /* borrowed from the plan's record */
    const char *name;
    const char *type;      /* the reference as written */
    const steptype *st;    /* resolved at compile */
    const plugin_reg *lib; /* its library's registration (state, version) */
    const json_t *params;  /* borrowed: the job's values, templates unrendered */
    json_t *deferred;      /* JSON Pointers of templated values */
    int64_t timeout_ms;    /* 0: the executor's default */
    int retries;
    int64_t retry_delay_ms;
    bool continue_on_failure;
    bool idempotent; /* cluster mode: may run again after its node died (docs/cluster.md 2.4) */
    tpl *when; /* NULL: always */
    const char *when_text;
} job_step;

typedef struct job_plan {
    int refs;    /* runs and the executor's plan cache share it (one thread: the loop) */
    json_t *rec; /* the job version's record (owned) */
    const char *job_id;
    int64_t version;
    jschema *params_schema; /* run parameters */
    json_t *secret_params;  /* names of secret parameters */
    job_step *steps;
    size_t nsteps;
    int max_parallel;   /* 0: unlimited */
    int batch_size;     /* 0: one batch */
    int64_t timeout_ms; /* 0: none */
    bool allow_concurrent;
} job_plan;

/* Compile a job version for running: resolve the step types again (a
 * library may have changed since the save), compile `when` conditions and
 * the parameter schema. OPSC_ESCHEMA with *errors when a step type is gone
 * or no longer accepts the parameters. `rec` is copied. */
int job_plan_compile(plugin_host *h, const json_t *rec, job_plan **out, json_t **errors);
/* One more holder of the plan, which is read-only once compiled; each
 * holder calls job_plan_free() once. */
job_plan *job_plan_ref(job_plan *p);
void job_plan_free(job_plan *p);
/* Every step is declared idempotent: a run of it may run again from its
 * start after its node died (cluster mode, docs/cluster.md 2.4). */
bool job_plan_idempotent(const job_plan *p);

/* Validate run parameters `given` (NULL: none) against the plan, adding
 * defaults: *out is a new object. OPSC_ESCHEMA with *errors. */
int job_plan_params(const job_plan *p, const json_t *given, json_t **out, json_t **errors);

/* ---- export and import (job_export.c) -------------------------------------------------- */

/* The portable form of a job: references by name (targets, groups, secret
 * defaults), no ids or bookkeeping. {"format": "opsconductor.job/1", "job": {...}}. */
int job_export(store_txn *txn, const json_t *rec, json_t **out, char *err, size_t errlen);
/* The body to create or update a job from an exported document: names
 * resolved to this installation's ids. OPSC_ESCHEMA with *errors naming
 * what is missing. */
int job_import(store_txn *txn, const json_t *doc, json_t **body, json_t **errors);

#endif
