/* hooks.c - /api/v1/hooks: inbound webhooks that start a job's run. Operators manage them; the
 * trigger is public and answers only to a valid signature, audited either way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "audit.h"
#include "auth.h"
#include "core.h"
#include "exec.h"
#include "jobs_routes.h"
#include "log.h"
#include "notify_data.h"
#include "notify_routes.h"
#include "rest.h"
#include "util.h"

static struct opsc_core *core_of(http_req *req)
{
    return http_req_app(req);
}

/* ---- the records ----------------------------------------------------------------------------- */

static int build(notify *n, const json_t *body, const json_t *existing, json_t **out,
                 const char **field, char *err, size_t errlen)
{
    (void)n;
    return hook_build(body, existing, out, field, err, errlen);
}

static json_t *view(json_t *rec)
{
    json_t *v = json_copy(rec);
    char path[96];
    snprintf(path, sizeof(path), "/api/v1/hooks/%s/trigger",
             json_string_value(json_object_get(rec, "id")) ?: "");
    if (v)
        json_object_set_new(v, "trigger_path", json_string(path));
    return v;
}

static const nres hooks = {
    "hooks", "hooks_by_name", "hook", "/api/v1/hooks", build, hook_check, NULL, view, NULL};

static int list_hooks(http_req *req)
{
    return nres_list(req, &hooks);
}
static int create_hook(http_req *req)
{
    return nres_create(req, &hooks);
}
static int get_hook(http_req *req)
{
    return nres_get(req, &hooks);
}
static int update_hook(http_req *req)
{
    return nres_update(req, &hooks);
}
static int delete_hook(http_req *req)
{
    return nres_delete(req, &hooks);
}

/* ---- the trigger ----------------------------------------------------------------------------- */

typedef struct trig {
    http_req *req;
    const char *id;
    json_t *hook;
    char *secret;
    json_t *body;
    char msg_id[256];
    char why[256];
} trig;

/* The audit log says why; the caller learns nothing about which check failed. */
static void audit_trigger(trig *t, const char *outcome, int status, const char *detail)
{
    struct opsc_core *c = core_of(t->req);
    audit_event ev = {.actor = "hook",
                      .client = http_req_client(t->req),
                      .action = "hook.trigger",
                      .object = t->id,
                      .outcome = outcome,
                      .status = status,
                      .detail = detail};
    if (c->audit)
        audit_record(c->audit, &ev);
    notify_count_hook(c->notify, outcome);
}

static void refuse(trig *t, int status, const char *detail)
{
    audit_trigger(t, "denied", status, detail);
    log_info("hooks", "hook %s refused from %s: %s", t->id, http_req_client(t->req), detail);
    http_respond_error(t->req, status, status == 401 ? "unauthorized" : "forbidden", NULL,
                       "the request was refused");
}

static hook_request request_of(http_req *req)
{
    hook_request r = {
        .webhook_id = http_req_header(req, "webhook-id"),
        .webhook_timestamp = http_req_header(req, "webhook-timestamp"),
        .webhook_signature = http_req_header(req, "webhook-signature"),
        .hub_signature_256 = http_req_header(req, "X-Hub-Signature-256"),
        .github_delivery = http_req_header(req, "X-GitHub-Delivery"),
        .gitlab_token = http_req_header(req, "X-Gitlab-Token"),
        .gitlab_event_uuid = http_req_header(req, "X-Gitlab-Event-UUID"),
        .authorization = http_req_header(req, "Authorization"),
    };
    r.body = http_req_body(req, &r.body_len);
    if (!r.body)
        r.body = "";
    return r;
}

static int seen_txn(store_txn *txn, void *ud)
{
    trig *t = ud;
    return hook_seen_put(txn, t->id, t->msg_id, clock_now_ms());
}

/* Signature, then replay, then body: an unsigned request learns nothing. */
static bool authentic(trig *t)
{
    const char *scheme = json_string_value(json_object_get(t->hook, "verify")) ?: "standard";
    json_int_t tol = json_integer_value(json_object_get(t->hook, "tolerance_s"));
    hook_request r = request_of(t->req);
    if (!json_is_true(json_object_get(t->hook, "enabled"))) {
        refuse(t, 403, "the hook is disabled");
        return false;
    }
    if (!t->secret) {
        refuse(t, 401, "the hook's credential cannot be opened");
        return false;
    }
    if (hook_verify(hook_scheme_parse(scheme), t->secret, &r, clock_now_ms() / 1000,
                    tol > 0 ? tol : 300, t->msg_id, t->why, sizeof(t->why)) < 0) {
        refuse(t, 401, t->why);
        return false;
    }
    int rc = t->msg_id[0] ? store_write(core_of(t->req)->store, seen_txn, t) : 0;
    if (rc == OPSC_EEXIST) {
        refuse(t, 401, "this message id was seen before (a replay)");
        return false;
    }
    if (rc < 0) {
        audit_trigger(t, "failure", 500, opsc_strerror(rc));
        http_respond_opsc_error(t->req, rc, "cannot record the message id");
        return false;
    }
    return true;
}

static const char *query_of(void *ud, const char *name)
{
    return http_req_query(ud, name);
}

static void start(trig *t)
{
    struct opsc_core *c = core_of(t->req);
    if (!hook_filter_ok(json_object_get(t->hook, "filter"), t->body)) {
        audit_trigger(t, "filtered", 200, "the filter did not match");
        http_respond_json(
            t->req, 200,
            json_pack("{s:n, s:s}", "run_id", "skipped", "the hook's filter did not match"));
        return;
    }
    json_t *params = hook_params(json_object_get(t->hook, "params"), t->body, query_of, t->req);
    char by[200], err[1024] = "", run_id[UUID_STR_LEN];
    snprintf(by, sizeof(by), "hook:%s", json_string_value(json_object_get(t->hook, "name")) ?: "");
    exec_run_spec spec = {.job_id = json_string_value(json_object_get(t->hook, "job_id")),
                          .params = params,
                          .triggered_by = by};
    int rc = exec_run_start(c->exec, &spec, run_id, err, sizeof(err));
    json_decref(params);
    if (rc < 0) {
        audit_trigger(t, "failure", rc == OPSC_ENOENT ? 404 : 400, err);
        runs_respond_error(t->req, rc, err);
        return;
    }
    audit_trigger(t, "accepted", 202, run_id);
    http_respond_json(t->req, 202, json_pack("{s:s}", "run_id", run_id));
}

static int trigger(http_req *req)
{
    struct opsc_core *c = core_of(req);
    trig t = {.req = req, .id = http_req_param(req, "id")};
    size_t len = 0;
    http_req_body(req, &len);
    auth_set_object(req, t.id);
    int rc = notify_hook_load(c->notify, t.id, &t.hook, &t.secret);
    if (rc == OPSC_ENOENT) {
        audit_trigger(&t, "denied", 404, "no such hook");
        http_respond_error(req, 404, "not_found", NULL, "no such hook");
        return HTTP_DONE;
    }
    if (rc < 0) {
        http_respond_opsc_error(req, rc, "cannot read the hook");
        return HTTP_DONE;
    }
    if ((int64_t)len > c->cfg.notifications.hook_max_body) {
        audit_trigger(&t, "denied", 413, "body too large");
        http_respond_error(req, 413, "payload_too_large", NULL,
                           "the body is larger than %lld bytes",
                           (long long)c->cfg.notifications.hook_max_body);
    } else if (authentic(&t)) {
        json_error_t je;
        const char *raw = http_req_body(req, &len);
        t.body = raw && len ? json_loadb(raw, len, 0, &je) : NULL;
        if (!json_is_object(t.body)) {
            audit_trigger(&t, "failure", 400, "the body is not a JSON object");
            http_respond_error(req, 400, "bad_request", NULL, "the body must be a JSON object");
        } else {
            start(&t);
        }
    }
    json_decref(t.body);
    json_decref(t.hook);
    notify_secret_free(t.secret);
    return HTTP_DONE;
}

static const http_route routes[] = {
    {"GET", "/api/v1/hooks", ROLE_VIEWER, list_hooks, 0, "hooks", "List inbound hooks", NULL,
     "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":" J_hook
     "},\"next_cursor\":{\"type\":[\"string\",\"null\"]}}}"},
    {"POST", "/api/v1/hooks", ROLE_OPERATOR, create_hook, HTTP_ROUTE_JSON_BODY, "hooks",
     "Create an inbound hook: a job, a verification scheme, a secret credential, a parameter "
     "mapping and an optional filter",
     J_hook, J_hook, 201},
    {"GET", "/api/v1/hooks/{id}", ROLE_VIEWER, get_hook, 0, "hooks", "Get an inbound hook", NULL,
     J_hook},
    {"PATCH", "/api/v1/hooks/{id}", ROLE_OPERATOR, update_hook, HTTP_ROUTE_JSON_BODY, "hooks",
     "Change an inbound hook (If-Match); null clears a member", J_hook, J_hook},
    {"DELETE", "/api/v1/hooks/{id}", ROLE_OPERATOR, delete_hook, 0, "hooks",
     "Delete an inbound hook", NULL, NULL, 204},
    /* Public: the signature is the credential. */
    {"POST", "/api/v1/hooks/{id}/trigger", ROLE_PUBLIC, trigger, 0, "hooks",
     "Start the hook's job: verified signature (Standard Webhooks, GitHub, GitLab or token), no "
     "replay, optional filter; 202 {run_id}; refusals are 401/403 without detail",
     NULL, "{\"type\":\"object\",\"properties\":{\"run_id\":{\"type\":[\"string\",\"null\"]}}}",
     202},
};

int api_hooks_register(struct opsc_core *c)
{
    return http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
}
