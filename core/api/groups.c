/* groups.c - /api/v1/groups: static members, a label selector, nested groups; resolved members. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "auth.h"
#include "core.h"
#include "fleet.h"
#include "fleet_routes.h"
#include "http.h"
#include "rest.h"
#include "util.h"

static struct opsc_core *core_of(http_req *req)
{
    return http_req_app(req);
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* ---- writing ------------------------------------------------------------------------------- */

typedef struct gwrite {
    const char *id; /* NULL: create */
    json_t *body;
    int64_t expect;
    json_t *before, *after;
    fleet_err e;
} gwrite;

static int write_txn(store_txn *txn, void *ud)
{
    gwrite *w = ud;
    json_decref(w->before);
    json_decref(w->after);
    w->before = w->after = NULL;
    int rc = w->id ? store_get(txn, "groups", w->id, &w->before) : 0;
    if (rc == 0)
        rc = group_build(w->body, w->before, &w->after, &w->e);
    if (rc == 0)
        rc = group_write(txn, w->before, w->after, w->expect, &w->e);
    return rc;
}

static int write_group(http_req *req, const char *id)
{
    json_t *body = rest_body(req);
    int64_t expect = body && id ? rest_if_match(req) : 0;
    if (!body || expect < 0)
        return HTTP_DONE;
    gwrite w = {id, body, expect, NULL, NULL, {0}};
    int rc = store_write(core_of(req)->store, write_txn, &w);
    if (rc < 0) {
        fleet_respond_error(req, rc, &w.e, "group");
    } else if (!id) {
        auth_set_object(req, str(w.after, "id"));
        fleet_publish(req, "group.created", w.after);
        rest_created(req, "/api/v1/groups", json_incref(w.after));
    } else {
        fleet_publish(req, "group.updated", w.after);
        rest_etag(req, w.after);
        http_respond_json(req, 200, json_incref(w.after));
    }
    json_decref(w.before);
    json_decref(w.after);
    return HTTP_DONE;
}

static int create_group(http_req *req)
{
    return write_group(req, NULL);
}

static int update_group(http_req *req)
{
    return write_group(req, http_req_param(req, "id"));
}

struct del {
    const char *id;
    int64_t expect;
    bool force;
    json_t *parents;
};

static int delete_txn(store_txn *txn, void *ud)
{
    struct del *d = ud;
    json_decref(d->parents);
    return group_remove(txn, d->id, d->expect, d->force, &d->parents);
}

static int delete_group(http_req *req)
{
    struct del d = {http_req_param(req, "id"), rest_if_match(req), rest_query_bool(req, "force"),
                    NULL};
    if (d.expect < 0)
        return HTTP_DONE;
    int rc = store_write(core_of(req)->store, delete_txn, &d);
    if (rc == OPSC_EBUSY) {
        http_respond_error(req, 409, "in_use", json_pack("{s:O}", "nested_in", d.parents),
                           "the group is nested in %zu other group(s); delete with ?force=true to "
                           "take it out of them",
                           json_array_size(d.parents));
    } else if (rc < 0) {
        rest_error(req, rc, "group");
    } else {
        json_t *gone = json_pack("{s:s}", "id", d.id);
        fleet_publish(req, "group.deleted", gone);
        json_decref(gone);
        http_respond_empty(req, 204);
    }
    json_decref(d.parents);
    return HTTP_DONE;
}

/* ---- reading --------------------------------------------------------------------------------- */

static int get_group(http_req *req)
{
    return fleet_get_record(req, "groups", "group");
}

static bool keep(json_t *rec, void *ud)
{
    const char *prefix = ud, *name = str(rec, "name");
    return !prefix || strncmp(name, prefix, strlen(prefix)) == 0;
}

static int list_groups(http_req *req)
{
    rest_scan s = {.db = "groups", .keep = keep, .ud = (void *)http_req_query(req, "name_prefix")};
    return rest_list_records(req, core_of(req)->store, &s, "groups");
}

/* ---- resolved members ------------------------------------------------------------------------ */

/* What a resolved member shows: enough to recognise it, flagged when disabled. */
static json_t *member_view(const json_t *rec)
{
    return json_pack(
        "{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O?}", "id", json_object_get(rec, "id"), "name",
        json_object_get(rec, "name"), "address", json_object_get(rec, "address"), "transport",
        json_object_get(rec, "transport"), "os_family", json_object_get(rec, "os_family"),
        "enabled", json_object_get(rec, "enabled"), "labels", json_object_get(rec, "labels"),
        "facts", json_object_get(rec, "facts"));
}

/* The page after `cursor` (an id; the records are in id order). */
static json_t *page(const json_t *records, size_t limit, const char *cursor, char next[40],
                    size_t *disabled)
{
    json_t *items = json_array();
    size_t i;
    json_t *r;
    next[0] = '\0';
    *disabled = 0;
    json_array_foreach((json_t *)records, i, r)
    {
        *disabled += json_is_false(json_object_get(r, "enabled"));
        if (cursor && strcmp(str(r, "id"), cursor) <= 0)
            continue;
        if (json_array_size(items) == limit) {
            snprintf(next, 40, "%s", str(json_array_get(items, limit - 1), "id"));
            continue;
        }
        json_array_append_new(items, member_view(r));
    }
    return items;
}

static int group_targets(http_req *req)
{
    size_t limit, disabled;
    const char *cursor;
    if (!rest_page(req, &limit, &cursor))
        return HTTP_DONE;
    json_t *records = NULL;
    char err[400] = "";
    int rc = fleet_resolve_group(req, http_req_param(req, "id"), &records, err, sizeof(err));
    if (rc == OPSC_ENOENT) {
        http_respond_error(req, 404, "not_found", NULL, "group not found");
    } else if (rc < 0) {
        http_respond_opsc_error(req, rc, "resolving the group: %s", err);
    } else {
        char next[40];
        json_t *items = page(records, limit, cursor, next, &disabled);
        json_t *body = rest_list(items, next);
        json_object_set_new(body, "total", json_integer((json_int_t)json_array_size(records)));
        json_object_set_new(body, "disabled", json_integer((json_int_t)disabled));
        http_respond_json(req, 200, body);
    }
    json_decref(records);
    return HTTP_DONE;
}

/* ---- routes ---------------------------------------------------------------------------------- */

#define GROUP_PROPS                                                                                \
    "\"name\":{\"type\":\"string\"},\"description\":{\"type\":\"string\"},\"members\":"            \
    "{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"description\":\"target ids\"},"         \
    "\"selector\":{\"type\":\"string\",\"description\":\"labels, e.g. env=prod,role in "           \
    "(web,db),!legacy\"},\"groups\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},"          \
    "\"description\":\"nested group ids\"}"
#define GROUP_SCHEMA                                                                               \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"}," GROUP_PROPS               \
    ",\"created_at\":{\"type\":\"string\"},\"updated_at\":{\"type\":\"string\"},\"version\":"      \
    "{\"type\":\"integer\"}}}"
#define MEMBERS_SCHEMA                                                                             \
    "{\"type\":\"object\",\"properties\":{\"total\":{\"type\":\"integer\"},\"disabled\":"          \
    "{\"type\":\"integer\"},\"next_cursor\":{\"type\":[\"string\",\"null\"]},\"items\":"           \
    "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":"         \
    "\"string\"},\"name\":{\"type\":\"string\"},\"address\":{\"type\":\"string\"},\"enabled\":"    \
    "{\"type\":\"boolean\"},\"labels\":{\"type\":\"object\"},\"facts\":{\"type\":\"object\"}}}}}}"

static const http_route routes[] = {
    {"GET", "/api/v1/groups", ROLE_VIEWER, list_groups, 0, "groups",
     "List groups (filter: name_prefix)", NULL,
     "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":" GROUP_SCHEMA
     "},\"next_cursor\":{\"type\":[\"string\",\"null\"]}}}"},
    {"POST", "/api/v1/groups", ROLE_OPERATOR, create_group, HTTP_ROUTE_JSON_BODY, "groups",
     "Create a group", "{\"type\":\"object\",\"properties\":{" GROUP_PROPS "}}", GROUP_SCHEMA, 201},
    {"GET", "/api/v1/groups/{id}", ROLE_VIEWER, get_group, 0, "groups", "Get a group", NULL,
     GROUP_SCHEMA},
    {"PATCH", "/api/v1/groups/{id}", ROLE_OPERATOR, update_group, HTTP_ROUTE_JSON_BODY, "groups",
     "Change a group (If-Match); a change that closes a nesting cycle is refused",
     "{\"type\":\"object\",\"properties\":{" GROUP_PROPS "}}", GROUP_SCHEMA},
    {"DELETE", "/api/v1/groups/{id}", ROLE_OPERATOR, delete_group, 0, "groups",
     "Delete a group; refused while nested in others, unless ?force=true", NULL, NULL, 204},
    {"GET", "/api/v1/groups/{id}/targets", ROLE_VIEWER, group_targets, 0, "groups",
     "The group's targets: members, selector matches and nested groups, deduplicated, in id "
     "order; disabled ones included with enabled false",
     NULL, MEMBERS_SCHEMA},
};

int api_groups_register(struct opsc_core *c)
{
    return http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
}
