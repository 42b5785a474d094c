/* schedules.c - /api/v1/schedules: CRUD, pause and resume, the next fires; records + scheduler
 * status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "api.h"
#include "auth.h"
#include "civil.h"
#include "core.h"
#include "http.h"
#include "metrics.h"
#include "rest.h"
#include "scheduler.h"
#include "util.h"

static struct opsc_core *core_of(http_req *req)
{
    return http_req_app(req);
}

/* The record as the API shows it: the stored fields and the scheduler's status. */
static json_t *schedule_view(sched *s, json_t *rec)
{
    json_t *v = json_deep_copy(rec);
    const char *id = json_string_value(json_object_get(rec, "id"));
    json_t *st = s && id ? sched_status(s, id) : NULL;
    if (v)
        json_object_set_new(v, "status", st ? st : json_null());
    return v;
}

static void field_error(http_req *req, const sched_field_error *e)
{
    http_respond_error(req, 400, e->code ? e->code : "invalid_schedule",
                       json_pack("{s:s}", "field", e->field), "%s", e->msg);
}

/* ---- writes -----------------------------------------------------------------------------------
 */

enum op_kind { OP_CREATE, OP_UPDATE, OP_PAUSE, OP_RESUME, OP_DELETE };

typedef struct sched_op {
    enum op_kind kind;
    char id[40];
    json_t *changes; /* borrowed: the body, or {"enabled": ...} */
    int64_t expect;  /* If-Match version; 0: none */
    int64_t now_ms;
    sched_field_error fe;
    json_t *rec;    /* out: the stored record */
    int64_t anchor; /* out: >= 0 when the count of fires restarted */
    const char *role; /* the caller's role: fires run with it ([executor] local_targets) */
} sched_op;

static int check_job(store_txn *txn, json_t *before, json_t *after, sched_field_error *fe)
{
    const char *job = json_string_value(json_object_get(after, "job_id"));
    if (before && json_equal(json_object_get(before, "job_id"), json_object_get(after, "job_id")))
        return 0;
    json_t *j = NULL;
    int rc = store_get(txn, "jobs", job, &j);
    json_decref(j);
    if (rc == OPSC_ENOENT) {
        snprintf(fe->field, sizeof(fe->field), "job_id");
        fe->code = "invalid_schedule";
        snprintf(fe->msg, sizeof(fe->msg), "job_id: there is no job with id '%.40s'", job);
        return OPSC_ESCHEMA;
    }
    return rc;
}

static int write_change(store_txn *txn, sched_op *op)
{
    json_t *before = NULL, *after = NULL;
    json_decref(op->rec);
    op->rec = NULL;
    op->anchor = -1;
    int rc = op->kind == OP_CREATE ? 0 : store_get(txn, "schedules", op->id, &before);
    if (rc == 0 && op->kind == OP_DELETE) {
        rc = store_delete(txn, "schedules", op->id, op->expect);
        if (rc == 0)
            rc = sched_state_delete_txn(txn, op->id);
        json_decref(before);
        return rc;
    }
    if (rc == 0)
        rc = sched_record_merge(before, op->changes, op->id, &after, &op->fe);
    if (rc == 0)
        rc = check_job(txn, before, after, &op->fe);
    if (rc == 0 && (op->kind == OP_CREATE || op->kind == OP_UPDATE))
        json_object_set_new(after, "saved_by_role", json_string(op->role));
    if (rc == 0) {
        json_object_set_new(after, "id", json_string(op->id));
        rc = before ? store_update(txn, "schedules", after, op->expect)
                    : store_create(txn, "schedules", after);
    }
    if (rc == 0 && sched_change_resets(before, after)) {
        op->anchor = op->now_ms;
        rc = sched_state_reset_txn(txn, op->id, op->anchor);
    }
    json_decref(before);
    if (rc == 0)
        op->rec = after;
    else
        json_decref(after);
    return rc;
}

/* The change, counted for the cluster's leader (cluster.c reloads its scheduler). */
static int write_txn(store_txn *txn, void *ud)
{
    int rc = write_change(txn, ud);
    return rc == 0 ? store_version_bump(txn, "schedules") : rc;
}

/* Run the write, tell the scheduler, answer. */
static int apply(http_req *req, sched_op *op)
{
    struct opsc_core *c = core_of(req);
    op->now_ms = clock_now_ms();
    const auth_principal *p = auth_principal_of(req);
    op->role = role_name(p ? p->role : ROLE_VIEWER);
    int rc = store_write(c->store, write_txn, op);
    if (rc == OPSC_ESCHEMA) {
        field_error(req, &op->fe);
    } else if (rc < 0) {
        rest_error(req, rc, "schedule");
    } else if (c->schedules_changed_here++, op->kind == OP_DELETE) {
        sched_remove(c->sched, op->id);
        auth_set_object(req, op->id);
        http_respond_empty(req, 204);
    } else {
        sched_upsert(c->sched, op->rec, op->anchor);
        auth_set_object(req, op->id);
        json_t *v = schedule_view(c->sched, op->rec);
        if (op->kind == OP_CREATE) {
            rest_created(req, "/api/v1/schedules", v);
        } else {
            rest_etag(req, v);
            http_respond_json(req, 200, v);
        }
    }
    json_decref(op->rec);
    return HTTP_DONE;
}

static int create_schedule(http_req *req)
{
    json_t *body = rest_body(req);
    if (!body)
        return HTTP_DONE;
    sched_op op = {.kind = OP_CREATE, .changes = body};
    int rc = uuid7_new(op.id);
    if (rc < 0) {
        rest_error(req, rc, "schedule");
        return HTTP_DONE;
    }
    return apply(req, &op);
}

static bool op_for_id(http_req *req, sched_op *op, enum op_kind kind, json_t *changes)
{
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->changes = changes;
    op->expect = rest_if_match(req);
    snprintf(op->id, sizeof(op->id), "%s", http_req_param(req, "id"));
    return op->expect >= 0;
}

static int update_schedule(http_req *req)
{
    json_t *body = rest_body(req);
    sched_op op;
    if (!body || !op_for_id(req, &op, OP_UPDATE, body))
        return HTTP_DONE;
    return apply(req, &op);
}

static int set_enabled(http_req *req, enum op_kind kind, bool on)
{
    json_t *changes = json_pack("{s:b}", "enabled", on);
    sched_op op;
    int r = HTTP_DONE;
    if (!changes)
        http_respond_opsc_error(req, OPSC_ENOMEM, "out of memory");
    else if (op_for_id(req, &op, kind, changes))
        r = apply(req, &op);
    json_decref(changes);
    return r;
}

static int pause_schedule(http_req *req)
{
    return set_enabled(req, OP_PAUSE, false);
}

static int resume_schedule(http_req *req)
{
    return set_enabled(req, OP_RESUME, true);
}

static int delete_schedule(http_req *req)
{
    sched_op op;
    if (!op_for_id(req, &op, OP_DELETE, NULL))
        return HTTP_DONE;
    return apply(req, &op);
}

/* ---- reads ------------------------------------------------------------------------------------
 */

struct one {
    const char *id;
    json_t *rec;
};

static int get_txn(store_txn *txn, void *ud)
{
    struct one *o = ud;
    return store_get(txn, "schedules", o->id, &o->rec);
}

static int get_schedule(http_req *req)
{
    struct one o = {http_req_param(req, "id"), NULL};
    int rc = store_read(core_of(req)->store, get_txn, &o);
    if (rc < 0) {
        rest_error(req, rc, "schedule");
        return HTTP_DONE;
    }
    json_t *v = schedule_view(core_of(req)->sched, o.rec);
    json_decref(o.rec);
    rest_etag(req, v);
    http_respond_json(req, 200, v);
    return HTTP_DONE;
}

static bool same_job(json_t *rec, void *ud)
{
    const char *job = ud, *have = json_string_value(json_object_get(rec, "job_id"));
    return !job || (have && strcmp(job, have) == 0);
}

static int page_txn(store_txn *txn, void *ud)
{
    return rest_scan_page(txn, ud);
}

static int list_schedules(http_req *req)
{
    sched *s = core_of(req)->sched;
    rest_scan scan = {
        .db = "schedules", .keep = same_job, .ud = (void *)http_req_query(req, "job_id")};
    if (!rest_page(req, &scan.limit, &scan.cursor))
        return HTTP_DONE;
    int rc = store_read(core_of(req)->store, page_txn, &scan);
    if (rc < 0) {
        rest_error(req, rc, "schedules");
        return HTTP_DONE;
    }
    size_t i;
    json_t *rec;
    json_array_foreach(scan.items, i, rec)
    {
        json_t *st = sched_status(s, json_string_value(json_object_get(rec, "id")));
        json_object_set_new(rec, "status", st ? st : json_null());
    }
    http_respond_json(req, 200, rest_list(scan.items, scan.next));
    return HTTP_DONE;
}

/* A count query parameter: 1..SCHED_PREVIEW_MAX, default 10; false after a 400. */
static bool count_of(http_req *req, const char *text, int *out)
{
    *out = 10;
    if (!text)
        return true;
    char *end;
    long v = strtol(text, &end, 10);
    if (*text && !*end && v >= 1 && v <= SCHED_PREVIEW_MAX) {
        *out = (int)v;
        return true;
    }
    http_respond_error(req, 400, "bad_request", json_pack("{s:s}", "field", "count"),
                       "count must be an integer from 1 to %d", SCHED_PREVIEW_MAX);
    return false;
}

static int next_fires(http_req *req)
{
    int count;
    if (!count_of(req, http_req_query(req, "count"), &count))
        return HTTP_DONE;
    json_t *out = NULL;
    int rc = sched_upcoming(core_of(req)->sched, http_req_param(req, "id"), count, &out);
    if (rc < 0)
        rest_error(req, rc, "schedule");
    else
        http_respond_json(req, 200, out);
    return HTTP_DONE;
}

/* ---- POST /api/v1/cron/preview ----------------------------------------------------------------
 */

static int preview_fail(http_req *req, const char *field, const char *msg)
{
    http_respond_error(req, 400, "bad_request", json_pack("{s:s}", "field", field), "%s", msg);
    return HTTP_DONE;
}

/* {cron, timezone, count, from, seed} -> {"timezone", "times": [...]}; nothing is stored. */
static int cron_preview(http_req *req)
{
    json_t *b = rest_body(req), *v;
    const char *k;
    if (!b)
        return HTTP_DONE;
    json_object_foreach(b, k, v)
    {
        if (strcmp(k, "cron") && strcmp(k, "timezone") && strcmp(k, "count") && strcmp(k, "from") &&
            strcmp(k, "seed"))
            return preview_fail(req, k,
                                "unknown field (fields: cron, timezone, count, from, seed)");
    }
    json_t *cnt = json_object_get(b, "count"), *from = json_object_get(b, "from");
    json_t *seed = json_object_get(b, "seed"), *zone = json_object_get(b, "timezone");
    int count = 10;
    if (cnt && (!json_is_integer(cnt) || json_integer_value(cnt) < 1 ||
                json_integer_value(cnt) > SCHED_PREVIEW_MAX))
        return preview_fail(req, "count", "count must be an integer from 1 to 1000");
    if (cnt)
        count = (int)json_integer_value(cnt);
    int64_t from_ms = clock_now_ms();
    if (from && (!json_is_string(from) || rfc3339_parse(json_string_value(from), &from_ms) < 0))
        return preview_fail(req, "from", "from must be an RFC 3339 time (2026-03-29T00:00:00Z)");
    if (seed && !json_is_string(seed))
        return preview_fail(req, "seed", "seed must be a string (the schedule id H fields hash)");
    cron_t c;
    const tz_t *tz = tz_utc();
    sched_field_error fe = {0};
    int rc = sched_cron_check(json_string_value(json_object_get(b, "cron")),
                              json_string_value(seed), "cron", &c, &fe);
    if (rc == 0 && zone)
        rc = sched_tz_check(json_string_value(zone), "timezone", &tz, &fe);
    if (rc < 0) {
        field_error(req, &fe);
        return HTTP_DONE;
    }
    /* Fires at or after `from` (ceil to a whole second, minus one: cron_next is strict). */
    int64_t after = -civil_floor_div(-from_ms, 1000) - 1;
    json_t *out = sched_times_json(&c, tz, after, CRON_TIME_MAX, count);
    if (!out) {
        http_respond_opsc_error(req, OPSC_ENOMEM, "out of memory");
        return HTTP_DONE;
    }
    json_object_set_new(out, "timezone", json_string(tz_name(tz)));
    http_respond_json(req, 200, out);
    return HTTP_DONE;
}

/* ---- routes -----------------------------------------------------------------------------------
 */

#define TIME_OR_NULL "{\"type\":[\"string\",\"null\"],\"format\":\"date-time\"}"
#define SCHEDULE_PROPS                                                                             \
    "\"job_id\":{\"type\":\"string\"},\"cron\":{\"type\":\"string\",\"description\":\"5 fields, "  \
    "or 6 with leading seconds; H hashes the schedule id\"},\"timezone\":{\"type\":\"string\","    \
    "\"default\":\"UTC\"},\"params\":{\"type\":[\"object\",\"null\"]},\"targets\":{\"type\":"      \
    "[\"object\",\"null\"],\"properties\":{\"ids\":{\"type\":\"array\",\"items\":{\"type\":"       \
    "\"string\"}},\"groups\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"selector\":"   \
    "{\"type\":\"string\"}}},\"enabled\":{\"type\":\"boolean\",\"default\":true},\"start_"         \
    "at\":" TIME_OR_NULL ",\"end_at\":" TIME_OR_NULL ",\"misfire_policy\":{\"type\":\"string\","   \
    "\"enum\":[\"skip\",\"run_once\",\"run_all\"],\"default\":\"run_once\"},\"misfire_grace_s\":"  \
    "{\"type\":[\"integer\",\"null\"]},\"overlap_policy\":{\"type\":\"string\",\"enum\":"          \
    "[\"allow\",\"forbid\",\"replace\",\"queue\"],\"default\":\"forbid\"},\"overlap_limit\":"      \
    "{\"type\":[\"integer\",\"null\"],\"minimum\":1,\"maximum\":1000},\"description\":"            \
    "{\"type\":[\"string\",\"null\"]}"
#define SCHEDULE_SCHEMA                                                                            \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"}," SCHEDULE_PROPS            \
    ",\"status\":{\"type\":\"object\",\"readOnly\":true,\"properties\":{\"next_fire_"              \
    "at\":" TIME_OR_NULL ",\"last_fire_at\":" TIME_OR_NULL                                         \
    ",\"last_run_id\":{\"type\":[\"string\","                                                      \
    "\"null\"]},\"last_error\":{\"type\":[\"string\",\"null\"]},\"active_runs\":{\"type\":"        \
    "\"integer\"},\"queued\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}},"              \
    "\"created_at\":{\"type\":\"string\"},\"updated_at\":{\"type\":\"string\"},\"version\":"       \
    "{\"type\":\"integer\"}}}"
#define SCHEDULE_WRITE                                                                             \
    "{\"type\":\"object\",\"required\":[\"job_id\",\"cron\"],\"properties\":{" SCHEDULE_PROPS "}}"
#define TIMES_SCHEMA                                                                               \
    "{\"type\":\"object\",\"properties\":{\"times\":{\"type\":\"array\",\"items\":{\"type\":"      \
    "\"object\",\"properties\":{\"utc\":{\"type\":\"string\"},\"local\":{\"type\":\"string\"},"    \
    "\"abbr\":{\"type\":\"string\"},\"note\":{\"type\":\"string\"}}}}}}"

static const http_route routes[] = {
    {"GET", "/api/v1/schedules", ROLE_VIEWER, list_schedules, 0, "schedules",
     "List schedules (?job_id= filters), each with its status", NULL,
     "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":" SCHEDULE_SCHEMA
     "},\"next_cursor\":{\"type\":[\"string\",\"null\"]}}}"},
    {"POST", "/api/v1/schedules", ROLE_OPERATOR, create_schedule, HTTP_ROUTE_JSON_BODY, "schedules",
     "Create a schedule; a bad cron or zone is a 400 naming the field and column", SCHEDULE_WRITE,
     SCHEDULE_SCHEMA, 201},
    {"GET", "/api/v1/schedules/{id}", ROLE_VIEWER, get_schedule, 0, "schedules",
     "Get a schedule and its status", NULL, SCHEDULE_SCHEMA},
    {"PATCH", "/api/v1/schedules/{id}", ROLE_OPERATOR, update_schedule, HTTP_ROUTE_JSON_BODY,
     "schedules", "Change a schedule (If-Match); null clears an optional field", SCHEDULE_WRITE,
     SCHEDULE_SCHEMA},
    {"DELETE", "/api/v1/schedules/{id}", ROLE_OPERATOR, delete_schedule, 0, "schedules",
     "Delete a schedule; its running runs go on", NULL, NULL, 204},
    {"POST", "/api/v1/schedules/{id}/pause", ROLE_OPERATOR, pause_schedule, 0, "schedules",
     "Pause: no fire until resumed (enabled = false)", NULL, SCHEDULE_SCHEMA},
    {"POST", "/api/v1/schedules/{id}/resume", ROLE_OPERATOR, resume_schedule, 0, "schedules",
     "Resume: fires count from now; those of the pause are not misfires", NULL, SCHEDULE_SCHEMA},
    {"GET", "/api/v1/schedules/{id}/next", ROLE_VIEWER, next_fires, 0, "schedules",
     "The next fires (?count=1..1000, default 10) in UTC and in the schedule's zone", NULL,
     TIMES_SCHEMA},
    {"POST", "/api/v1/cron/preview", ROLE_VIEWER, cron_preview, HTTP_ROUTE_JSON_BODY, "schedules",
     "Preview a cron expression in a zone: the next fires in UTC and local time, with notes where "
     "the DST rule acts (stateless); the fires at or after `from` (default now): `from` itself "
     "when it matches",
     "{\"type\":\"object\",\"required\":[\"cron\"],\"properties\":{\"cron\":{\"type\":"
     "\"string\"},\"timezone\":{\"type\":\"string\",\"default\":\"UTC\"},\"count\":{\"type\":"
     "\"integer\",\"minimum\":1,\"maximum\":1000,\"default\":10},\"from\":{\"type\":\"string\","
     "\"format\":\"date-time\",\"description\":\"first instant considered (default now); "
     "included when it matches\"},\"seed\":{\"type\":\"string\"}}}",
     TIMES_SCHEMA},
};

/* /metrics: the scheduler's counters (ud is the core: the scheduler goes
 * away at shutdown, before the last scrape may come). */
static void collect(strbuf *out, void *ud)
{
    struct opsc_core *c = ud;
    sched_stats st;
    if (!c->sched)
        return;
    sched_get_stats(c->sched, &st);
    metrics_single(out, "opsc_scheduler_schedules", "gauge", "Schedules known.",
                   (double)st.schedules);
    metrics_single(out, "opsc_scheduler_armed", "gauge", "Schedules with a next fire.",
                   (double)st.armed);
    metrics_single(out, "opsc_scheduler_fires_total", "counter", "Runs started by schedules.",
                   (double)st.fired);
    metrics_single(out, "opsc_scheduler_missed_total", "counter",
                   "Fires recorded missed (misfire or overlap policy).", (double)st.missed);
    metrics_single(out, "opsc_scheduler_errors_total", "counter",
                   "Fires that could not start a run.", (double)st.errors);
    metrics_single(out, "opsc_scheduler_retrying", "gauge",
                   "Fires whose run could not be stored yet, waiting to be tried again.",
                   (double)st.retrying);
    metrics_single(out, "opsc_scheduler_retried_total", "counter",
                   "Fires started on a later try.", (double)st.retried);
    metrics_single(out, "opsc_scheduler_lost_total", "counter",
                   "Fires neither started nor recorded missed (the store failed both).",
                   (double)st.lost);
    metrics_single(out, "opsc_scheduler_clock_jumps_total", "counter",
                   "Wall-clock jumps seen (steps, suspends).", (double)st.jumps);
    metrics_single(out, "opsc_scheduler_lateness_seconds_sum", "counter",
                   "Sum of the delays from planned instants to run starts.",
                   (double)st.late_ms_sum / 1000.0);
    metrics_single(out, "opsc_scheduler_lateness_seconds_max", "gauge",
                   "Longest delay from a planned instant to its run's start.",
                   (double)st.late_ms_max / 1000.0);
    metrics_single(out, "opsc_scheduler_cpu_seconds_total", "counter",
                   "CPU time the scheduler's wakes took.", (double)st.tick_ns / 1e9);
}

int api_schedules_register(struct opsc_core *c)
{
    int rc = http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
    if (rc == 0 && c->metrics)
        rc = metrics_add_collector(c->metrics, collect, c);
    return rc;
}
