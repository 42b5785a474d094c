/* jobs.c - /api/v1/jobs: define, change (each change a new version), read versions, export and
 * import by name, delete; and start runs of a job. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "auth.h"
#include "core.h"
#include "exec.h"
#include "job.h"
#include "jobs_routes.h"
#include "rest.h"
#include "util.h"

static struct opsc_core *core_of(http_req *req)
{
    return http_req_app(req);
}

const char *api_caller(http_req *req)
{
    const auth_principal *p = auth_principal_of(req);
    return p ? p->username : "anonymous";
}

static void respond_invalid(http_req *req, json_t *errors)
{
    char msg[600];
    job_err_summary(errors, msg, sizeof(msg));
    http_respond_error(req, 400, "invalid_job", json_pack("{s:o}", "errors", errors), "%s", msg);
}

/* ---- reading ---------------------------------------------------------------------------- */

struct one {
    const char *ref;
    json_t *rec;
};

static int get_txn(store_txn *txn, void *ud)
{
    struct one *o = ud;
    return job_get(txn, o->ref, &o->rec);
}

/* The job named by {id} (an id or a name), or NULL after answering. */
static json_t *read_job(http_req *req)
{
    struct one o = {http_req_param(req, "id"), NULL};
    int rc = store_read(core_of(req)->store, get_txn, &o);
    if (rc < 0) {
        rest_error(req, rc, "job");
        return NULL;
    }
    return o.rec;
}

static int get_job(http_req *req)
{
    json_t *rec = read_job(req);
    if (rec) {
        rest_etag(req, rec);
        http_respond_json(req, 200, rec);
    }
    return HTTP_DONE;
}

static bool keep_named(json_t *rec, void *ud)
{
    const char *want = ud, *name = json_string_value(json_object_get(rec, "name"));
    return !want || (name && strstr(name, want));
}

static int list_jobs(http_req *req)
{
    rest_scan s = {.db = "jobs", .keep = keep_named, .ud = (void *)http_req_query(req, "name")};
    return rest_list_records(req, core_of(req)->store, &s, "jobs");
}

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct write_op {
    json_t *before; /* NULL: create */
    json_t *rec;
    int64_t expect;
} write_op;

static int write_txn(store_txn *txn, void *ud)
{
    write_op *w = ud;
    return w->before ? job_replace(txn, w->before, w->rec, w->expect) : job_insert(txn, w->rec);
}

/* Build, store and answer (201 on create, 200 with the new version on update). */
static int save(http_req *req, const json_t *body, json_t *before, int64_t expect)
{
    struct opsc_core *c = core_of(req);
    json_t *rec = NULL, *errors = NULL;
    int rc = job_build(c->plugins, body, before, &rec, &errors);
    if (rc == OPSC_ESCHEMA) {
        respond_invalid(req, errors);
        return HTTP_DONE;
    }
    if (rc < 0) {
        rest_error(req, rc, "job");
        return HTTP_DONE;
    }
    const char *who = api_caller(req);
    if (!before)
        json_object_set_new(rec, "created_by", json_string(who));
    json_object_set_new(rec, "updated_by", json_string(who));
    write_op w = {before, rec, expect};
    rc = store_write(c->store, write_txn, &w);
    if (rc == OPSC_EEXIST) {
        http_respond_error(req, 409, "conflict", NULL, "a job named '%s' exists",
                           json_string_value(json_object_get(rec, "name")));
    } else if (rc < 0) {
        rest_error(req, rc, "job");
    } else {
        auth_set_object(req, json_string_value(json_object_get(rec, "id")));
        if (before) {
            rest_etag(req, rec);
            http_respond_json(req, 200, json_incref(rec));
        } else {
            rest_created(req, "/api/v1/jobs", json_incref(rec));
        }
    }
    json_decref(rec);
    return HTTP_DONE;
}

static int create_job(http_req *req)
{
    json_t *body = rest_body(req);
    return body ? save(req, body, NULL, 0) : HTTP_DONE;
}

static int update_job(http_req *req)
{
    json_t *body = rest_body(req);
    int64_t expect = body ? rest_if_match(req) : -1;
    json_t *before = expect >= 0 ? read_job(req) : NULL;
    if (!before)
        return HTTP_DONE;
    int r = save(req, body, before, expect);
    json_decref(before);
    return r;
}

struct del {
    const char *ref;
    int64_t expect;
    char id[40];
};

static int delete_txn(store_txn *txn, void *ud)
{
    struct del *d = ud;
    json_t *rec = NULL;
    int rc = job_get(txn, d->ref, &rec);
    if (rc == 0) {
        snprintf(d->id, sizeof(d->id), "%s", json_string_value(json_object_get(rec, "id")));
        rc = job_remove(txn, d->id, d->expect);
    }
    json_decref(rec);
    return rc;
}

static int delete_job(http_req *req)
{
    struct del d = {http_req_param(req, "id"), rest_if_match(req), ""};
    if (d.expect < 0)
        return HTTP_DONE;
    int rc = store_write(core_of(req)->store, delete_txn, &d);
    if (rc < 0) {
        rest_error(req, rc, "job");
        return HTTP_DONE;
    }
    exec_job_forget(core_of(req)->exec, d.id);
    auth_set_object(req, d.id);
    http_respond_empty(req, 204);
    return HTTP_DONE;
}

/* ---- versions ---------------------------------------------------------------------------- */

struct versions {
    const char *ref;
    int64_t version; /* one version; 0: the list */
    int64_t before;
    size_t limit;
    json_t *out;
    int64_t next;
};

static int versions_txn(store_txn *txn, void *ud)
{
    struct versions *v = ud;
    json_t *job = NULL;
    int rc = job_get(txn, v->ref, &job);
    const char *id = json_string_value(json_object_get(job, "id"));
    if (rc == 0 && v->version > 0)
        rc = job_version_get(txn, id, v->version, &v->out);
    else if (rc == 0)
        rc = job_versions_list(txn, id, v->before, v->limit, &v->out, &v->next);
    json_decref(job);
    return rc;
}

static int list_versions(http_req *req)
{
    const char *cur = http_req_query(req, "cursor"), *lim = http_req_query(req, "limit");
    struct versions v = {http_req_param(req, "id"),    0,    cur ? atoll(cur) : 0,
                         lim ? (size_t)atol(lim) : 50, NULL, 0};
    if (v.limit < 1 || v.limit > REST_LIMIT_MAX || v.before < 0) {
        http_respond_error(req, 400, "bad_request", NULL, "limit 1 to %d; cursor a version",
                           REST_LIMIT_MAX);
        return HTTP_DONE;
    }
    int rc = store_read(core_of(req)->store, versions_txn, &v);
    if (rc < 0) {
        rest_error(req, rc, "job");
        return HTTP_DONE;
    }
    char next[24] = "";
    if (v.next)
        snprintf(next, sizeof(next), "%lld", (long long)v.next);
    http_respond_json(req, 200, rest_list(v.out, next));
    return HTTP_DONE;
}

static int get_version(http_req *req)
{
    char *end;
    long long n = strtoll(http_req_param(req, "n"), &end, 10);
    struct versions v = {http_req_param(req, "id"), n, 0, 0, NULL, 0};
    int rc = *end || n < 1 ? OPSC_ENOENT : store_read(core_of(req)->store, versions_txn, &v);
    if (rc < 0)
        rest_error(req, rc, "job version");
    else
        http_respond_json(req, 200, v.out);
    return HTTP_DONE;
}

/* ---- export and import -------------------------------------------------------------------- */

struct export_op {
    const char *ref;
    json_t *out;
    char err[256];
};

static int export_txn(store_txn *txn, void *ud)
{
    struct export_op *e = ud;
    json_t *job = NULL;
    int rc = job_get(txn, e->ref, &job);
    if (rc == 0)
        rc = job_export(txn, job, &e->out, e->err, sizeof(e->err));
    json_decref(job);
    return rc;
}

static int export_job(http_req *req)
{
    struct export_op e = {http_req_param(req, "id"), NULL, ""};
    int rc = store_read(core_of(req)->store, export_txn, &e);
    if (rc < 0)
        rest_error(req, rc, "job");
    else
        http_respond_json(req, 200, e.out);
    return HTTP_DONE;
}

struct import_op {
    const json_t *doc;
    json_t *body, *errors, *existing;
};

static int import_txn(store_txn *txn, void *ud)
{
    struct import_op *i = ud;
    int rc = job_import(txn, i->doc, &i->body, &i->errors);
    const char *name = json_string_value(json_object_get(i->body, "name"));
    if (rc == 0 && name && job_get(txn, name, &i->existing) == OPSC_ENOENT)
        i->existing = NULL;
    return rc == OPSC_ESCHEMA ? 0 : rc; /* errors are answered, not a failed read */
}

static int import_job(http_req *req)
{
    json_t *doc = rest_body(req);
    if (!doc)
        return HTTP_DONE;
    struct import_op i = {doc, NULL, NULL, NULL};
    int rc = store_read(core_of(req)->store, import_txn, &i);
    int r = HTTP_DONE;
    if (rc < 0) {
        rest_error(req, rc, "job");
    } else if (i.errors) {
        respond_invalid(req, i.errors);
        i.errors = NULL;
    } else if (i.existing && !rest_query_bool(req, "replace")) {
        http_respond_error(req, 409, "conflict", NULL,
                           "a job named '%s' exists: import with ?replace=true to make the "
                           "import its new version",
                           json_string_value(json_object_get(i.existing, "name")));
    } else {
        r = save(req, i.body, i.existing, 0);
    }
    json_decref(i.body);
    json_decref(i.errors);
    json_decref(i.existing);
    return r;
}

/* ---- runs of a job ------------------------------------------------------------------------ */

/* The body is optional here (a run with the job's defaults). */
static bool optional_body(http_req *req, json_t **out)
{
    size_t len = 0;
    const char *text = http_req_body(req, &len);
    *out = NULL;
    if (len == 0)
        return true;
    json_error_t e;
    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
    if (!*out) {
        http_respond_invalid_json(req, "the body must be a JSON object", &e);
        return false;
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        http_respond_error(req, 400, "invalid_json", NULL, "the body must be a JSON object");
        return false;
    }
    return true;
}

static int run_with(http_req *req, json_t *body);

/* The commit that stored the run (with the others of its loop turn) is done. */
static void run_stored(void *ud, int status, const char *run_id, const json_t *run)
{
    http_req *req = ud;
    if (status == 0 && !run) { /* stored, but not copied for the answer: read it back */
        auth_set_object(req, run_id);
        runs_respond_created(req, run_id);
    } else if (status < 0) {
        char err[128];
        snprintf(err, sizeof(err), "storing the run failed: %s", opsc_strerror(status));
        runs_respond_error(req, status, err);
    } else {
        auth_set_object(req, run_id);
        rest_created(req, "/api/v1/runs", json_incref((json_t *)run));
    }
    http_req_unref(req);
}

static int start_run(http_req *req)
{
    json_t *body = NULL;
    if (!optional_body(req, &body))
        return HTTP_DONE;
    int r = run_with(req, body);
    json_decref(body);
    return r;
}

static int run_with(http_req *req, json_t *body)
{
    struct opsc_core *c = core_of(req);
    json_t *params = json_object_get(body, "params"), *targets = json_object_get(body, "targets");
    json_t *version = json_object_get(body, "job_version");
    if ((params && !json_is_object(params)) || (targets && !json_is_object(targets)) ||
        (version && !json_is_integer(version))) {
        http_respond_error(req, 400, "bad_request", NULL,
                           "params and targets must be objects, job_version an integer");
        return HTTP_DONE;
    }
    exec_run_spec spec = {
        .job_id = http_req_param(req, "id"),
        .job_version = json_integer_value(version),
        .params = params,
        .targets = targets,
        .triggered_by = api_caller(req),
        .dry_run = json_is_true(json_object_get(body, "dry_run")),
        .actor_role = auth_principal_of(req) ? auth_principal_of(req)->role : ROLE_VIEWER,
    };
    char err[1024] = "", run_id[UUID_STR_LEN];
    json_t *refusal = NULL;
    spec.refusal = &refusal;
    if (spec.dry_run) {
        json_t *out = NULL;
        int rc = exec_dry_run(c->exec, &spec, &out, err, sizeof(err));
        if (rc < 0)
            runs_respond_error(req, rc, err);
        else
            http_respond_json(req, 200, out);
        return HTTP_DONE;
    }
    http_req_ref(req); /* until the run is stored: the 201 waits for its commit */
    int rc = exec_run_start_async(c->exec, &spec, run_id, err, sizeof(err), run_stored, req);
    if (rc < 0) {
        http_req_unref(req);
        if (refusal) /* cluster mode: its targets' labels route it to different nodes */
            http_respond_error(req, 409, "route_conflict", refusal, "%s", err);
        else
            runs_respond_error(req, rc, err);
        return HTTP_DONE;
    }
    return HTTP_ASYNC;
}

/* ---- routes ------------------------------------------------------------------------------ */

#define PARAM_SCHEMA                                                                               \
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"type\":{\"type\":"      \
    "\"string\",\"enum\":[\"string\",\"int\",\"bool\",\"choice\",\"secret\"]},\"required\":"       \
    "{\"type\":\"boolean\"},\"default\":{},\"pattern\":{\"type\":\"string\"},\"choices\":"         \
    "{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"secret\":{\"type\":\"boolean\"},"      \
    "\"description\":{\"type\":\"string\"}}}"
#define STEP_SCHEMA                                                                                \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"name\":{\"type\":"        \
    "\"string\"},\"type\":{\"type\":\"string\"},\"params\":{\"type\":\"object\"},\"timeout_s\":"   \
    "{\"type\":\"integer\"},\"retries\":{\"type\":\"integer\"},\"retry_delay_s\":{\"type\":"       \
    "\"integer\"},\"on_failure\":{\"type\":\"string\",\"enum\":[\"stop\",\"continue\"]},"          \
    "\"when\":{\"type\":\"string\"},\"idempotent\":{\"type\":\"boolean\"}}}"
#define TARGETS_SCHEMA                                                                             \
    "{\"type\":\"object\",\"properties\":{\"ids\":{\"type\":\"array\",\"items\":{\"type\":"        \
    "\"string\"}},\"groups\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"selector\":"   \
    "{\"type\":\"string\"}}}"
#define JOB_PROPS                                                                                  \
    "\"name\":{\"type\":\"string\"},\"description\":{\"type\":\"string\"},\"parameters\":"         \
    "{\"type\":\"array\",\"items\":" PARAM_SCHEMA "},\"targets\":" TARGETS_SCHEMA                  \
    ",\"steps\":{\"type\":\"array\",\"items\":" STEP_SCHEMA "},\"max_parallel\":{\"type\":"        \
    "\"integer\"},\"batch_size\":{\"type\":\"integer\"},\"timeout_s\":{\"type\":\"integer\"},"     \
    "\"allow_concurrent\":{\"type\":\"boolean\"}"
#define JOB_SCHEMA                                                                                 \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"}," JOB_PROPS                 \
    ",\"created_by\":{\"type\":\"string\"},\"updated_by\":{\"type\":\"string\"},\"created_at\":"   \
    "{\"type\":\"string\"},\"updated_at\":{\"type\":\"string\"},\"version\":{\"type\":"            \
    "\"integer\"}}}"
#define JOB_WRITE_SCHEMA "{\"type\":\"object\",\"properties\":{" JOB_PROPS "}}"
#define LIST_OF(s)                                                                                 \
    "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":" s              \
    "},\"next_cursor\":{\"type\":[\"string\",\"null\"]}}}"
#define EXPORT_SCHEMA                                                                              \
    "{\"type\":\"object\",\"properties\":{\"format\":{\"type\":\"string\"},\"job\":{\"type\":"     \
    "\"object\"},\"warnings\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}"
#define RUN_REQ_SCHEMA                                                                             \
    "{\"type\":\"object\",\"properties\":{\"params\":{\"type\":\"object\"},"                       \
    "\"targets\":" TARGETS_SCHEMA                                                                  \
    ",\"dry_run\":{\"type\":\"boolean\"},\"job_version\":{\"type\":\"integer\"}}}"

static const http_route routes[] = {
    {"GET", "/api/v1/jobs", ROLE_VIEWER, list_jobs, 0, "jobs",
     "List jobs (?name= filters by a part of the name)", NULL, LIST_OF(JOB_SCHEMA)},
    {"POST", "/api/v1/jobs", ROLE_OPERATOR, create_job, HTTP_ROUTE_JSON_BODY, "jobs",
     "Define a job; step types, parameters, templates and conditions are checked", JOB_WRITE_SCHEMA,
     JOB_SCHEMA, 201},
    {"POST", "/api/v1/jobs/import", ROLE_OPERATOR, import_job, HTTP_ROUTE_JSON_BODY, "jobs",
     "Import an exported job (?replace=true updates a job of the same name)", EXPORT_SCHEMA,
     JOB_SCHEMA, 201},
    {"GET", "/api/v1/jobs/{id}", ROLE_VIEWER, get_job, 0, "jobs", "Get a job (by id or name)", NULL,
     JOB_SCHEMA},
    {"PATCH", "/api/v1/jobs/{id}", ROLE_OPERATOR, update_job, HTTP_ROUTE_JSON_BODY, "jobs",
     "Change a job (If-Match): a new version", JOB_WRITE_SCHEMA, JOB_SCHEMA},
    {"DELETE", "/api/v1/jobs/{id}", ROLE_OPERATOR, delete_job, 0, "jobs",
     "Delete a job and its versions (its runs stay)", NULL, NULL, 204},
    {"GET", "/api/v1/jobs/{id}/versions", ROLE_VIEWER, list_versions, 0, "jobs",
     "List a job's versions, newest first", NULL,
     LIST_OF("{\"type\":\"object\",\"properties\":{\"version\":{\"type\":\"integer\"}}}")},
    {"GET", "/api/v1/jobs/{id}/versions/{n}", ROLE_VIEWER, get_version, 0, "jobs",
     "Get a job as it was in version n", NULL, JOB_SCHEMA},
    {"GET", "/api/v1/jobs/{id}/export", ROLE_VIEWER, export_job, 0, "jobs",
     "Export a job as portable JSON (targets, groups and credentials by name)", NULL,
     EXPORT_SCHEMA},
    {"POST", "/api/v1/jobs/{id}/runs", ROLE_OPERATOR, start_run, 0, "runs",
     "Run a job (params, targets override); dry_run only renders the commands per target",
     RUN_REQ_SCHEMA, "{\"type\":\"object\"}", 201},
};

int api_jobs_register(struct opsc_core *c)
{
    return http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
}
