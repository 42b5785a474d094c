/* notifications.c - /api/v1/notifications/channels and /rules: records built and checked by the
 * notification service, written with their name index; one CRUD shared with the hooks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "api.h"
#include "auth.h"
#include "core.h"
#include "notify_data.h"
#include "notify_routes.h"
#include "rest.h"
#include "util.h"

static struct opsc_core *core_of(http_req *req)
{
    return http_req_app(req);
}

/* ---- the shared CRUD ------------------------------------------------------------------------ */

typedef struct wop {
    const nres *res;
    json_t *rec, *before;
    int64_t expect;
    const char *field;
    char err[600];
    json_t *users;
} wop;

static int name_index(store_txn *txn, const nres *r, const json_t *before, const json_t *after)
{
    const char *old = json_string_value(json_object_get(before, "name"));
    const char *now = json_string_value(json_object_get(after, "name"));
    const char *id = json_string_value(json_object_get(after, "id"));
    if (old && strcmp(old, now) == 0)
        return 0;
    int rc = store_index_put(txn, r->by_name, now, id);
    if (rc == 0 && old)
        rc = store_index_del(txn, r->by_name, old);
    return rc;
}

static int write_txn(store_txn *txn, void *ud)
{
    wop *w = ud;
    if (w->before) /* the body's members over the stored record, under its id */
        json_object_set(w->rec, "id", json_object_get(w->before, "id"));
    int rc = w->res->check(txn, w->rec, &w->field, w->err, sizeof(w->err));
    if (rc == 0)
        rc = w->before ? store_update(txn, w->res->db, w->rec, w->expect)
                       : store_create(txn, w->res->db, w->rec);
    if (rc == 0)
        rc = name_index(txn, w->res, w->before, w->rec);
    if (rc == 0 && w->res->version)
        rc = store_version_bump(txn, w->res->version);
    return rc;
}

static void respond_refused(http_req *req, const nres *r, int rc, const char *field,
                            const char *err)
{
    char code[48];
    snprintf(code, sizeof(code), "invalid_%s", r->what);
    if (rc == OPSC_ESCHEMA)
        http_respond_error(req, 400, code, field ? json_pack("{s:s}", "field", field) : NULL, "%s",
                           err);
    else if (rc == OPSC_EEXIST)
        http_respond_error(req, 409, "conflict", json_pack("{s:s}", "field", "name"),
                           "a %s with this name exists", r->what);
    else
        rest_error(req, rc, r->what);
}

static void respond_written(http_req *req, const nres *r, wop *w, bool created)
{
    notify *n = core_of(req)->notify;
    if (r->changed)
        r->changed(n);
    json_t *view = r->view(w->rec);
    auth_set_object(req, json_string_value(json_object_get(w->rec, "id")));
    if (created) {
        rest_created(req, r->collection, view);
    } else {
        rest_etag(req, view);
        http_respond_json(req, 200, view);
    }
}

struct one {
    const char *db, *id;
    json_t *rec;
};

static int get_txn(store_txn *txn, void *ud)
{
    struct one *o = ud;
    return store_get(txn, o->db, o->id, &o->rec);
}

static int write_body(http_req *req, const nres *r, json_t *before, int64_t expect)
{
    json_t *body = rest_body(req);
    if (!body)
        return HTTP_DONE;
    wop w = {.res = r, .before = before, .expect = expect};
    notify *n = core_of(req)->notify;
    int rc = r->build(n, body, before, &w.rec, &w.field, w.err, sizeof(w.err));
    if (rc == 0)
        rc = store_write(core_of(req)->store, write_txn, &w);
    if (rc < 0)
        respond_refused(req, r, rc, w.field, w.err);
    else
        respond_written(req, r, &w, !before);
    json_decref(w.rec);
    return HTTP_DONE;
}

int nres_create(http_req *req, const nres *r)
{
    return write_body(req, r, NULL, 0);
}

int nres_update(http_req *req, const nres *r)
{
    int64_t expect = rest_if_match(req);
    if (expect < 0)
        return HTTP_DONE;
    struct one o = {r->db, http_req_param(req, "id"), NULL};
    int rc = store_read(core_of(req)->store, get_txn, &o);
    if (rc < 0) {
        rest_error(req, rc, r->what);
        return HTTP_DONE;
    }
    int out = write_body(req, r, o.rec, expect);
    json_decref(o.rec);
    return out;
}

int nres_get(http_req *req, const nres *r)
{
    struct one o = {r->db, http_req_param(req, "id"), NULL};
    int rc = store_read(core_of(req)->store, get_txn, &o);
    if (rc < 0) {
        rest_error(req, rc, r->what);
        return HTTP_DONE;
    }
    json_t *view = r->view(o.rec);
    rest_etag(req, view);
    http_respond_json(req, 200, view);
    json_decref(o.rec);
    return HTTP_DONE;
}

typedef struct dop {
    const nres *res;
    const char *id;
    int64_t expect;
    json_t *users;
} dop;

static int delete_txn(store_txn *txn, void *ud)
{
    dop *d = ud;
    json_t *rec = NULL;
    int rc = store_get(txn, d->res->db, d->id, &rec);
    if (rc == 0 && d->res->in_use)
        rc = d->res->in_use(txn, d->id, &d->users);
    if (rc == 0)
        rc = store_delete(txn, d->res->db, d->id, d->expect);
    if (rc == 0)
        rc = store_index_del(txn, d->res->by_name, json_string_value(json_object_get(rec, "name")));
    if (rc == OPSC_ENOENT && rec) /* an index entry already gone is no reason to refuse */
        rc = 0;
    if (rc == 0 && d->res->version)
        rc = store_version_bump(txn, d->res->version);
    json_decref(rec);
    return rc;
}

int nres_delete(http_req *req, const nres *r)
{
    dop d = {r, http_req_param(req, "id"), rest_if_match(req), NULL};
    if (d.expect < 0)
        return HTTP_DONE;
    int rc = store_write(core_of(req)->store, delete_txn, &d);
    if (rc == OPSC_EBUSY) {
        http_respond_error(req, 409, "in_use", json_pack("{s:O}", "used_by", d.users),
                           "the %s is used by %zu rule(s)", r->what, json_array_size(d.users));
    } else if (rc < 0) {
        rest_error(req, rc, r->what);
    } else {
        if (r->changed)
            r->changed(core_of(req)->notify);
        auth_set_object(req, d.id);
        http_respond_empty(req, 204);
    }
    json_decref(d.users);
    return HTTP_DONE;
}

int nres_list(http_req *req, const nres *r)
{
    rest_scan s = {.db = r->db, .view = r->view};
    return rest_list_records(req, core_of(req)->store, &s, r->what);
}

/* ---- channels and rules ------------------------------------------------------------------- */

static json_t *same(json_t *rec)
{
    return json_incref(rec);
}

static void rules_changed(notify *n)
{
    notify_rules_reload(n);
    notify_rules_announce(n);
}

typedef struct users_of {
    const char *id;
    json_t *users;
} users_of;

static int rule_uses(const char *id, json_t *rec, void *ud)
{
    users_of *u = ud;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(rec, "channels"), i, c)
    {
        if (strcmp(json_string_value(c) ?: "", u->id) == 0)
            json_array_append_new(
                u->users, json_pack("{s:s, s:O?}", "id", id, "name", json_object_get(rec, "name")));
    }
    return 0;
}

static int channel_in_use(store_txn *txn, const char *id, json_t **users)
{
    users_of u = {id, json_array()};
    int rc = store_scan(txn, "notify_rules", NULL, false, rule_uses, &u);
    *users = u.users;
    return rc == 0 && json_array_size(u.users) ? OPSC_EBUSY : rc;
}

static const nres channels = {"notify_channels",
                              "notify_channels_by_name",
                              "channel",
                              "/api/v1/notifications/channels",
                              notify_channel_build,
                              notify_channel_check,
                              channel_in_use,
                              same,
                              NULL};
static const nres rules = {
    "notify_rules",    "notify_rules_by_name", "rule", "/api/v1/notifications/rules",
    notify_rule_build, notify_rule_check,      NULL,   same,
    rules_changed,     "notify_rules"};

#define NRES_HANDLERS(name, res)                                                                   \
    static int list_##name(http_req *req)                                                          \
    {                                                                                              \
        return nres_list(req, &res);                                                               \
    }                                                                                              \
    static int create_##name(http_req *req)                                                        \
    {                                                                                              \
        return nres_create(req, &res);                                                             \
    }                                                                                              \
    static int get_##name(http_req *req)                                                           \
    {                                                                                              \
        return nres_get(req, &res);                                                                \
    }                                                                                              \
    static int update_##name(http_req *req)                                                        \
    {                                                                                              \
        return nres_update(req, &res);                                                             \
    }                                                                                              \
    static int delete_##name(http_req *req)                                                        \
    {                                                                                              \
        return nres_delete(req, &res);                                                             \
    }

NRES_HANDLERS(channels, channels)
NRES_HANDLERS(rules, rules)

/* ---- POST /channels/{id}/test ------------------------------------------------------------- */

static void test_done(void *ud, int rc, json_t *delivery, const char *error)
{
    http_req *req = ud;
    const char *state = json_string_value(json_object_get(delivery, "state"));
    if (rc < 0) {
        http_respond_error(req, 503, "unavailable", NULL, "%s", error ? error : opsc_strerror(rc));
    } else if (state && strcmp(state, "delivered") == 0) {
        http_respond_json(req, 200,
                          json_pack("{s:o}", "delivery", notify_delivery_public(delivery)));
    } else {
        http_respond_error(req, 422, "delivery_failed",
                           json_pack("{s:o}", "delivery", notify_delivery_public(delivery)),
                           "the test message was not delivered: %s",
                           json_string_value(json_object_get(delivery, "error")) ?: "?");
    }
    http_req_unref(req);
}

static int test_channel(http_req *req)
{
    char err[512];
    const char *id = http_req_param(req, "id");
    http_req_ref(req); /* the answer may come before notify_channel_test returns */
    auth_set_object(req, id);
    int rc = notify_channel_test(core_of(req)->notify, id, test_done, req, err, sizeof(err));
    if (rc == 0)
        return HTTP_ASYNC;
    http_req_unref(req);
    if (rc == OPSC_ENOENT && !*err)
        rest_error(req, rc, "channel");
    else
        http_respond_error(req, 422, "delivery_failed", NULL, "%s", *err ? err : "cannot send");
    return HTTP_DONE;
}

#define LIST(schema)                                                                               \
    "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":" schema         \
    "},\"next_cursor\":{\"type\":[\"string\",\"null\"]}}}"

static const http_route routes[] = {
    {"GET", "/api/v1/notifications/channels", ROLE_VIEWER, list_channels, 0, "notifications",
     "List notification channels (secrets live in their credential, never here)", NULL,
     LIST(J_channel)},
    {"POST", "/api/v1/notifications/channels", ROLE_OPERATOR, create_channels, HTTP_ROUTE_JSON_BODY,
     "notifications",
     "Create a channel: a notifier (email, slack, teams, webhook...) with its settings, checked "
     "by the notifier",
     J_channel, J_channel, 201},
    {"GET", "/api/v1/notifications/channels/{id}", ROLE_VIEWER, get_channels, 0, "notifications",
     "Get a channel", NULL, J_channel},
    {"PATCH", "/api/v1/notifications/channels/{id}", ROLE_OPERATOR, update_channels,
     HTTP_ROUTE_JSON_BODY, "notifications",
     "Change a channel (If-Match); null clears a member; enabling clears disabled_reason",
     J_channel, J_channel},
    {"DELETE", "/api/v1/notifications/channels/{id}", ROLE_OPERATOR, delete_channels, 0,
     "notifications", "Delete a channel no rule uses (409 with the rules otherwise)", NULL, NULL,
     204},
    {"POST", "/api/v1/notifications/channels/{id}/test", ROLE_OPERATOR, test_channel, 0,
     "notifications",
     "Send a test message now: 200 with the delivery, or 422 delivery_failed with it", NULL,
     "{\"type\":\"object\",\"properties\":{\"delivery\":" J_delivery "}}"},
    {"GET", "/api/v1/notifications/rules", ROLE_VIEWER, list_rules, 0, "notifications",
     "List notification rules", NULL, LIST(J_rule)},
    {"POST", "/api/v1/notifications/rules", ROLE_OPERATOR, create_rules, HTTP_ROUTE_JSON_BODY,
     "notifications",
     "Create a rule: events to channels, filtered; a template error is a 400 naming "
     "template.<part> and line:col",
     J_rule, J_rule, 201},
    {"GET", "/api/v1/notifications/rules/{id}", ROLE_VIEWER, get_rules, 0, "notifications",
     "Get a rule", NULL, J_rule},
    {"PATCH", "/api/v1/notifications/rules/{id}", ROLE_OPERATOR, update_rules, HTTP_ROUTE_JSON_BODY,
     "notifications", "Change a rule (If-Match); null clears a member", J_rule, J_rule},
    {"DELETE", "/api/v1/notifications/rules/{id}", ROLE_OPERATOR, delete_rules, 0, "notifications",
     "Delete a rule", NULL, NULL, 204},
};

int api_notifications_register(struct opsc_core *c)
{
    int rc = http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
    if (rc == 0)
        rc = api_deliveries_register(c);
    if (rc == 0)
        rc = api_hooks_register(c);
    return rc;
}
