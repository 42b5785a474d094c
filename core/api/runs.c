/* runs.c - /api/v1/runs: lists with filters, a run per target and per step, its log in pages,
 * cancel and retry. Live events are in runs_sse.c. */
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
#include "run_read.h"
#include "util.h"

#define LOG_LIMIT_DEFAULT 1000
#define LOG_LIMIT_MAX     10000

static struct opsc_core *core_of(http_req *req)
{
    return http_req_app(req);
}

void runs_respond_error(http_req *req, int rc, const char *err)
{
    switch (rc) {
    case OPSC_ESCHEMA:
    case OPSC_EINVAL:
        http_respond_error(req, 400, "invalid_run", NULL, "%s", err);
        break;
    case OPSC_ENOENT:
        http_respond_error(req, 404, "not_found", NULL, "%s", *err ? err : "not found");
        break;
    case OPSC_ESTATE:
        http_respond_error(req, 409, "conflict", NULL, "%s", err);
        break;
    case OPSC_EACCES: /* [executor] local_targets */
        http_respond_error(req, 403, "forbidden", NULL, "%s", err);
        break;
    default:
        http_respond_opsc_error(req, rc, "%s", *err ? err : opsc_strerror(rc));
    }
}

struct one {
    const char *id;
    json_t *rec;
};

static int run_txn(store_txn *txn, void *ud)
{
    struct one *o = ud;
    return run_read(txn, o->id, &o->rec);
}

void runs_respond_created(http_req *req, const char *run_id)
{
    struct one o = {run_id, NULL};
    int rc = store_read(core_of(req)->store, run_txn, &o);
    if (rc < 0)
        rest_error(req, rc, "run");
    else
        rest_created(req, "/api/v1/runs", o.rec);
}

static int get_run(http_req *req)
{
    exec_flush(core_of(req)->exec); /* what happened this loop turn is in the store too */
    struct one o = {http_req_param(req, "id"), NULL};
    int rc = store_read(core_of(req)->store, run_txn, &o);
    if (rc < 0)
        rest_error(req, rc, "run");
    else
        http_respond_json(req, 200, o.rec);
    return HTTP_DONE;
}

/* ---- lists ---------------------------------------------------------------------------------- */

typedef struct list_op {
    run_filter f;
    const char *job_ref, *target_ref;
    const char *cursor;
    size_t limit;
    char job_id[40], target_id[40];
    json_t *items;
    char next[40];
} list_op;

static int resolve_ref(store_txn *txn, const char *db, const char *index, const char *ref,
                       char id[40])
{
    json_t *rec = NULL;
    int rc = uuid_valid(ref) ? store_get(txn, db, ref, &rec) : OPSC_ENOENT;
    json_decref(rec);
    if (rc == 0) {
        snprintf(id, 40, "%s", ref);
        return 0;
    }
    if (strlen(ref) > 255)
        return OPSC_ENOENT;
    rc = store_index_get(txn, index, ref, id);
    if (rc == OPSC_ENOENT && uuid_valid(ref)) { /* a deleted job's runs are still listed */
        snprintf(id, 40, "%s", ref);
        rc = 0;
    }
    return rc;
}

static int list_txn(store_txn *txn, void *ud)
{
    list_op *l = ud;
    int rc = 0;
    if (l->job_ref && (rc = resolve_ref(txn, "jobs", "jobs_by_name", l->job_ref, l->job_id)) == 0)
        l->f.job_id = l->job_id;
    if (rc == 0 && l->target_ref &&
        (rc = resolve_ref(txn, "targets", "targets_by_name", l->target_ref, l->target_id)) == 0)
        l->f.target_id = l->target_id;
    if (rc == OPSC_ENOENT) { /* an unknown job or target has no runs */
        l->items = json_array();
        return 0;
    }
    return rc == 0 ? run_list(txn, &l->f, l->cursor, l->limit, &l->items, l->next) : rc;
}

static bool time_query(http_req *req, const char *name, int64_t *ms)
{
    const char *v = http_req_query(req, name);
    *ms = 0;
    if (v && rfc3339_parse(v, ms) < 0) {
        http_respond_error(req, 400, "bad_request", NULL, "%s must be an RFC 3339 time", name);
        return false;
    }
    return true;
}

static int list_runs(http_req *req)
{
    list_op l = {.f = {.state = http_req_query(req, "state"),
                       .schedule_id = http_req_query(req, "schedule_id")},
                 .job_ref = http_req_query(req, "job"),
                 .target_ref = http_req_query(req, "target")};
    if (!rest_page(req, &l.limit, &l.cursor) || !time_query(req, "since", &l.f.since_ms) ||
        !time_query(req, "until", &l.f.until_ms))
        return HTTP_DONE;
    exec_flush(core_of(req)->exec);
    int rc = store_read(core_of(req)->store, list_txn, &l);
    if (rc < 0)
        rest_error(req, rc, "runs");
    else
        http_respond_json(req, 200, rest_list(l.items, l.next));
    return HTTP_DONE;
}

/* ---- the log ------------------------------------------------------------------------------- */

typedef struct log_op {
    run_log_query q;
    const char *target_ref;
    json_t *run, *items;
    char next[48];
    bool unknown_target;
} log_op;

static long target_index(const json_t *targets, const char *ref)
{
    size_t i;
    json_t *t;
    char *end;
    long n = strtol(ref, &end, 10);
    if (!*end && n >= 0 && (size_t)n < json_array_size(targets) && strlen(ref) < 8)
        return n;
    json_array_foreach(targets, i, t)
    {
        const char *id = json_string_value(json_object_get(t, "target_id"));
        const char *name = json_string_value(json_object_get(t, "name"));
        if ((id && strcmp(id, ref) == 0) || (name && strcmp(name, ref) == 0))
            return (long)i;
    }
    return -1;
}

static int log_txn(store_txn *txn, void *ud)
{
    log_op *l = ud;
    int rc = run_read(txn, l->q.run_id, &l->run);
    if (rc < 0)
        return rc;
    l->q.targets = json_object_get(l->run, "targets");
    l->q.target = l->target_ref ? target_index(l->q.targets, l->target_ref) : -1;
    if (l->target_ref && l->q.target < 0) {
        l->unknown_target = true;
        return 0;
    }
    return run_log_page(txn, &l->q, &l->items, l->next);
}

/* One line per line of output: "<ts> <target name> <stream>: <line>". */
static void respond_text(http_req *req, const json_t *targets, json_t *items, const char *next)
{
    strbuf b = STRBUF_INIT;
    size_t i;
    json_t *r;
    json_array_foreach(items, i, r)
    {
        json_t *t =
            json_array_get(targets, (size_t)json_integer_value(json_object_get(r, "target_index")));
        const char *name = json_string_value(json_object_get(t, "name"));
        const char *text = json_string_value(json_object_get(r, "text"));
        for (const char *p = text ? text : ""; *p;) {
            size_t n = strcspn(p, "\n");
            sb_printf(&b, "%s %s %s: ", json_string_value(json_object_get(r, "ts")),
                      name ? name : "?", json_string_value(json_object_get(r, "stream")));
            sb_append(&b, p, n);
            sb_append(&b, "\n", 1);
            p += n + (p[n] == '\n');
        }
    }
    if (next && *next)
        http_set_header(req, "X-Next-Cursor", next);
    http_respond_text(req, 200, "text/plain; charset=utf-8", b.buf ? b.buf : "", b.len);
    sb_free(&b);
}

static int get_log(http_req *req)
{
    const char *lim = http_req_query(req, "limit"), *fmt = http_req_query(req, "format");
    log_op l = {.q = {.run_id = http_req_param(req, "id"),
                      .cursor = http_req_query(req, "cursor"),
                      .stream = http_req_query(req, "stream"),
                      .step_id = http_req_query(req, "step"),
                      .limit = lim ? (size_t)atol(lim) : LOG_LIMIT_DEFAULT},
                .target_ref = http_req_query(req, "target")};
    if (l.q.limit < 1 || l.q.limit > LOG_LIMIT_MAX) {
        http_respond_error(req, 400, "bad_request", NULL, "limit must be 1 to %d", LOG_LIMIT_MAX);
        return HTTP_DONE;
    }
    exec_flush(core_of(req)->exec);
    int rc = store_read(core_of(req)->store, log_txn, &l);
    if (rc == OPSC_EINVAL)
        http_respond_error(req, 400, "bad_request", NULL, "cursor is not one this API gave");
    else if (rc < 0)
        rest_error(req, rc, "run");
    else if (l.unknown_target)
        http_respond_error(req, 404, "not_found", NULL, "run %s has no target '%s'", l.q.run_id,
                           l.target_ref);
    else if (fmt && strcmp(fmt, "text") == 0)
        respond_text(req, l.q.targets, l.items, l.next);
    else
        http_respond_json(req, 200, rest_list(json_incref(l.items), l.next));
    json_decref(l.items);
    json_decref(l.run);
    return HTTP_DONE;
}

/* ---- cancel and retry -------------------------------------------------------------------- */

static int cancel_run(http_req *req)
{
    struct opsc_core *c = core_of(req);
    const char *id = http_req_param(req, "id");
    int rc = exec_run_cancel(c->exec, id, api_caller(req));
    if (rc == OPSC_ESTATE) {
        http_respond_error(req, 409, "conflict", NULL, "run %s has already ended", id);
        return HTTP_DONE;
    }
    if (rc < 0) {
        rest_error(req, rc, "run");
        return HTTP_DONE;
    }
    auth_set_object(req, id);
    exec_flush(c->exec);
    struct one o = {id, NULL};
    rc = store_read(c->store, run_txn, &o);
    if (rc < 0)
        rest_error(req, rc, "run");
    else
        http_respond_json(req, 202, o.rec);
    return HTTP_DONE;
}

static int retry_run(http_req *req)
{
    struct opsc_core *c = core_of(req);
    const char *id = http_req_param(req, "id");
    char err[1024] = "", new_id[UUID_STR_LEN];
    const auth_principal *who = auth_principal_of(req);
    int rc = exec_run_retry(c->exec, id, api_caller(req), who ? who->role : ROLE_VIEWER, new_id,
                            err, sizeof(err));
    if (rc < 0) {
        runs_respond_error(req, rc, err);
        return HTTP_DONE;
    }
    auth_set_object(req, new_id);
    runs_respond_created(req, new_id);
    return HTTP_DONE;
}

/* ---- routes ---------------------------------------------------------------------------------- */

#define STEP_RUN_SCHEMA                                                                            \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"state\":{\"type\":"       \
    "\"string\"},\"exit_code\":{\"type\":[\"integer\",\"null\"]},\"outputs\":{\"type\":"           \
    "[\"object\",\"null\"]},\"error\":{\"type\":[\"string\",\"null\"]},\"started_at\":{\"type\":"  \
    "[\"string\",\"null\"]},\"finished_at\":{\"type\":[\"string\",\"null\"]},\"attempts\":"        \
    "{\"type\":\"integer\"}}}"
#define TARGET_RUN_SCHEMA                                                                          \
    "{\"type\":\"object\",\"properties\":{\"target_id\":{\"type\":\"string\"},\"name\":{\"type\":" \
    "\"string\"},\"state\":{\"type\":\"string\"},\"error\":{\"type\":[\"string\",\"null\"]},"      \
    "\"steps\":{\"type\":\"array\",\"items\":" STEP_RUN_SCHEMA "}}}"
/* Cluster mode: a run whose node was lost and that was queued again (docs/cluster.md 2.4). */
#define REQUEUED_SCHEMA                                                                            \
    "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"node_id\":{\"type\":"    \
    "\"string\"},\"at\":{\"type\":\"string\"},\"attempt\":{\"type\":\"integer\"},\"reason\":"      \
    "{\"type\":\"string\"},\"by\":{\"type\":\"string\"},\"cause\":{\"type\":\"string\",\"enum\":"  \
    "[\"restart\",\"dead\",\"lease\"]}}}}"
#define RUN_PROPS                                                                                  \
    "\"id\":{\"type\":\"string\"},\"job_id\":{\"type\":\"string\"},\"job_name\":{\"type\":"        \
    "\"string\"},\"job_version\":{\"type\":\"integer\"},\"state\":{\"type\":\"string\",\"enum\":"  \
    "[\"queued\",\"running\",\"succeeded\",\"failed\",\"cancelled\",\"timed_out\","                \
    "\"interrupted\",\"missed\"]},\"params\":{\"type\":\"object\"},\"schedule_id\":{\"type\":"     \
    "[\"string\",\"null\"]},\"planned_at\":{\"type\":[\"string\",\"null\"]},\"started_at\":"       \
    "{\"type\":[\"string\",\"null\"]},\"finished_at\":{\"type\":[\"string\",\"null\"]},"           \
    "\"triggered_by\":{\"type\":\"string\"},\"retry_of\":{\"type\":\"string\"},\"reason\":"        \
    "{\"type\":\"string\"},\"node_id\":{\"type\":\"string\"},\"attempt\":{\"type\":\"integer\"},"  \
    "\"requeued\":" REQUEUED_SCHEMA ",\"seq\":{\"type\":\"integer\"},\"created_at\":{\"type\":"    \
    "\"string\"},"                                                                                 \
    "\"updated_at\":{\"type\":\"string\"},\"version\":{\"type\":\"integer\"}"
#define RUN_SCHEMA                                                                                 \
    "{\"type\":\"object\",\"properties\":{" RUN_PROPS ",\"targets\":{\"type\":\"array\","          \
    "\"items\":" TARGET_RUN_SCHEMA "}}}"
#define LOG_SCHEMA                                                                                 \
    "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"type\":"      \
    "\"object\",\"properties\":{\"seq\":{\"type\":\"integer\"},\"target_id\":{\"type\":"           \
    "\"string\"},\"step_id\":{\"type\":\"string\"},\"stream\":{\"type\":\"string\",\"enum\":"      \
    "[\"stdout\",\"stderr\",\"step\",\"system\"]},\"ts\":{\"type\":\"string\"},\"text\":"          \
    "{\"type\":\"string\"}}}},\"next_cursor\":{\"type\":[\"string\",\"null\"]}}}"

static const http_route routes[] = {
    {"GET", "/api/v1/runs", ROLE_VIEWER, list_runs, 0, "runs",
     "List runs newest first (?job=, ?state=, ?target=, ?schedule_id=, ?since=, ?until=)", NULL,
     "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":"
     "{\"type\":\"object\",\"properties\":{" RUN_PROPS "}}},\"next_cursor\":{\"type\":"
     "[\"string\",\"null\"]}}}"},
    {"GET", "/api/v1/runs/{id}", ROLE_VIEWER, get_run, 0, "runs",
     "Get a run: per target and per step, state, times, exit code, outputs, error", NULL,
     RUN_SCHEMA},
    {"GET", "/api/v1/runs/{id}/log", ROLE_VIEWER, get_log, 0, "runs",
     "A page of a run's log (?target=, ?stream=, ?step=, ?cursor=, ?limit=, ?format=text)", NULL,
     LOG_SCHEMA},
    {"GET", "/api/v1/runs/{id}/events", ROLE_VIEWER, runs_events, 0, "runs",
     "Server-Sent Events: the log and state changes live; resumes after Last-Event-ID", NULL, NULL},
    {"POST", "/api/v1/runs/{id}/cancel", ROLE_OPERATOR, cancel_run, 0, "runs",
     "Cancel a run: remote processes are stopped", NULL, RUN_SCHEMA, 202},
    {"POST", "/api/v1/runs/{id}/retry", ROLE_OPERATOR, retry_run, 0, "runs",
     "Run again on the targets that did not succeed (a new run, retry_of links it)", NULL,
     RUN_SCHEMA, 201},
};

int api_runs_register(struct opsc_core *c)
{
    int rc = http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
    return rc == 0 ? api_runs_metrics_register(c) : rc;
}
