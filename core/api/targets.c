/* targets.c - /api/v1/targets: create, read, list with filters, change, delete, bulk import,
 * known host keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "auth.h"
#include "core.h"
#include "events.h"
#include "fleet.h"
#include "fleet_routes.h"
#include "http.h"
#include "pool.h"
#include "rest.h"
#include "selector.h"
#include "util.h"

static struct opsc_core *core_of(http_req *req)
{
    return http_req_app(req);
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* The answer to a write: the record and the advice given while checking it. */
static json_t *with_warnings(json_t *rec, json_t *warnings)
{
    json_t *v = json_deep_copy(rec);
    if (v && json_array_size(warnings) > 0)
        json_object_set(v, "warnings", warnings);
    return v;
}

/* ---- create ------------------------------------------------------------------------------- */

struct insert {
    json_t *rec;
    fleet_err e;
    const char *cred_types;
};

static int insert_txn(store_txn *txn, void *ud)
{
    struct insert *in = ud;
    return target_insert(txn, in->rec, in->cred_types, &in->e);
}

static int create_target(http_req *req)
{
    json_t *body = rest_body(req);
    if (!body)
        return HTTP_DONE;
    struct opsc_core *c = core_of(req);
    json_t *warnings = json_array();
    struct insert in = {NULL, {0}, NULL};
    int rc = target_build(c->plugins, body, NULL, &in.rec, warnings, &in.e);
    const char *denied = rc == 0 && api_is_local_target(in.rec) ? api_local_denied(req) : NULL;
    if (denied) {
        rc = OPSC_EACCES;
    } else if (rc == 0) {
        in.cred_types = target_credential_types(c->plugins, in.rec);
        rc = store_write(c->store, insert_txn, &in);
    }
    if (denied) {
        api_local_refuse(req, denied);
    } else if (rc < 0) {
        fleet_respond_error(req, rc, &in.e, "target");
    } else {
        auth_set_object(req, str(in.rec, "id"));
        fleet_publish(req, "target.created", in.rec);
        rest_created(req, "/api/v1/targets", with_warnings(in.rec, warnings));
    }
    json_decref(in.rec);
    json_decref(warnings);
    return HTTP_DONE;
}

/* ---- read ---------------------------------------------------------------------------------- */

static int get_target(http_req *req)
{
    return fleet_get_record(req, "targets", "target");
}

/* Filters of the list: label (a selector), os, transport, name, name_prefix, enabled. */
typedef struct filter {
    selector *sel;
    const char *os, *transport, *name, *prefix;
    int enabled; /* -1: any */
} filter;

static bool keep(json_t *rec, void *ud)
{
    filter *f = ud;
    const char *name = str(rec, "name");
    if (f->os && strcmp(f->os, str(rec, "os_family")) != 0)
        return false;
    if (f->transport && strcmp(f->transport, str(rec, "transport")) != 0)
        return false;
    if (f->name && strcmp(f->name, name) != 0)
        return false;
    if (f->prefix && strncmp(f->prefix, name, strlen(f->prefix)) != 0)
        return false;
    if (f->enabled >= 0 && json_is_true(json_object_get(rec, "enabled")) != f->enabled)
        return false;
    return !f->sel || selector_match(f->sel, json_object_get(rec, "labels"));
}

static bool parse_filter(http_req *req, filter *f)
{
    const char *label = http_req_query(req, "label"), *en = http_req_query(req, "enabled");
    f->os = http_req_query(req, "os");
    f->transport = http_req_query(req, "transport");
    f->name = http_req_query(req, "name");
    f->prefix = http_req_query(req, "name_prefix");
    f->enabled = en ? (strcmp(en, "true") == 0 ? 1 : strcmp(en, "false") == 0 ? 0 : -2) : -1;
    if (f->enabled == -2) {
        http_respond_error(req, 400, "bad_request", NULL, "enabled must be true or false");
        return false;
    }
    char why[300];
    if (label && selector_parse(label, &f->sel, why, sizeof(why)) < 0) {
        http_respond_error(req, 400, "bad_request", json_pack("{s:s}", "field", "label"),
                           "label: %s", why);
        return false;
    }
    return true;
}

static int list_targets(http_req *req)
{
    filter f = {0};
    if (!parse_filter(req, &f))
        return HTTP_DONE;
    rest_scan s = {.db = "targets", .keep = keep, .ud = &f};
    rest_list_records(req, core_of(req)->store, &s, "targets");
    selector_free(f.sel);
    return HTTP_DONE;
}

/* ---- change and delete --------------------------------------------------------------------- */

typedef struct patch {
    plugin_host *plugins;
    const char *denied; /* the caller may not touch local targets: why */
    const char *id;
    json_t *body;
    int64_t expect;
    json_t *warnings;
    json_t *before, *after;
    fleet_err e;
} patch;

/* Read, build and write in one transaction: the record built on is the one replaced. */
static int patch_txn(store_txn *txn, void *ud)
{
    patch *p = ud;
    json_decref(p->before);
    json_decref(p->after);
    p->before = p->after = NULL;
    json_array_clear(p->warnings);
    int rc = store_get(txn, "targets", p->id, &p->before);
    if (rc == 0)
        rc = target_build(p->plugins, p->body, p->before, &p->after, p->warnings, &p->e);
    if (rc == 0 && p->denied && (api_is_local_target(p->before) || api_is_local_target(p->after)))
        rc = OPSC_EACCES; /* neither into nor out of the local transport */
    if (rc == 0)
        rc = target_replace(txn, p->before, p->after, p->expect,
                            target_credential_types(p->plugins, p->after), &p->e);
    return rc;
}

static int update_target(http_req *req)
{
    json_t *body = rest_body(req);
    int64_t expect = body ? rest_if_match(req) : -1;
    if (expect < 0)
        return HTTP_DONE;
    struct opsc_core *c = core_of(req);
    patch p = {c->plugins, api_local_denied(req), http_req_param(req, "id"), body, expect,
               json_array(), NULL, NULL, {0}};
    int rc = store_write(c->store, patch_txn, &p);
    if (rc == OPSC_EACCES) {
        api_local_refuse(req, p.denied);
    } else if (rc < 0) {
        fleet_respond_error(req, rc, &p.e, "target");
    } else {
        if (target_conn_changed(p.before, p.after))
            pool_invalidate(c->pool, p.id);
        fleet_publish(req, "target.updated", p.after);
        rest_etag(req, p.after);
        http_respond_json(req, 200, with_warnings(p.after, p.warnings));
    }
    json_decref(p.before);
    json_decref(p.after);
    json_decref(p.warnings);
    return HTTP_DONE;
}

struct del {
    const char *id;
    int64_t expect;
    json_t *rec;
    const char *denied;
};

static int delete_txn(store_txn *txn, void *ud)
{
    struct del *d = ud;
    json_decref(d->rec);
    d->rec = NULL;
    json_t *rec = NULL;
    int rc = d->denied ? store_get(txn, "targets", d->id, &rec) : 0;
    bool local = rc == 0 && api_is_local_target(rec);
    json_decref(rec);
    if (rc < 0 || local)
        return rc < 0 ? rc : OPSC_EACCES;
    return target_remove(txn, d->id, d->expect, &d->rec);
}

static int delete_target(http_req *req)
{
    struct del d = {http_req_param(req, "id"), rest_if_match(req), NULL, api_local_denied(req)};
    if (d.expect < 0)
        return HTTP_DONE;
    struct opsc_core *c = core_of(req);
    int rc = store_write(c->store, delete_txn, &d);
    if (rc == OPSC_EACCES) {
        api_local_refuse(req, d.denied);
    } else if (rc < 0) {
        rest_error(req, rc, "target");
    } else {
        pool_invalidate(c->pool, d.id);
        fleet_publish(req, "target.deleted", d.rec);
        http_respond_empty(req, 204);
    }
    json_decref(d.rec);
    return HTTP_DONE;
}

/* ---- known host keys ----------------------------------------------------------------------- */

struct hostkey {
    const char *id, *type, *fp;
    int64_t expect;
    bool added;
    json_t *rec;
    fleet_err e;
};

static int add_key_txn(store_txn *txn, void *ud)
{
    struct hostkey *h = ud;
    json_decref(h->rec);
    return target_host_key_add(txn, h->id, h->type, h->fp, "api", &h->added, &h->rec, &h->e);
}

/* Trust a key checked out of band: {"type", "fingerprint"} or {"key": "<type> SHA256:..."}. */
static int add_host_key(http_req *req)
{
    json_t *body = rest_body(req);
    if (!body)
        return HTTP_DONE;
    struct opsc_core *c = core_of(req);
    char type[72] = "", fp[72] = "";
    if (str(body, "key")) {
        sscanf(str(body, "key"), "%71s %71s", type, fp);
    } else if (str(body, "type") && str(body, "fingerprint")) {
        snprintf(type, sizeof(type), "%s", str(body, "type"));
        snprintf(fp, sizeof(fp), "%s", str(body, "fingerprint"));
    }
    struct hostkey h = {http_req_param(req, "id"), type, fp, 0, false, NULL, {0}};
    int rc = store_write(c->store, add_key_txn, &h);
    if (rc < 0) {
        fleet_respond_error(req, rc, &h.e, "host_key");
    } else {
        pool_invalidate(c->pool, h.id);
        if (h.added)
            fleet_publish(req, "target.host_key_added", h.rec);
        rest_etag(req, h.rec);
        http_respond_json(req, h.added ? 201 : 200, json_incref(h.rec));
    }
    json_decref(h.rec);
    return HTTP_DONE;
}

static int reset_keys_txn(store_txn *txn, void *ud)
{
    struct hostkey *h = ud;
    json_decref(h->rec);
    h->rec = NULL;
    return target_host_keys_reset(txn, h->id, h->expect, &h->rec);
}

/* After a legitimate rekey: forget every recorded key. */
static int reset_host_keys(http_req *req)
{
    struct opsc_core *c = core_of(req);
    struct hostkey h = {
        http_req_param(req, "id"), NULL, NULL, rest_if_match(req), false, NULL, {0}};
    if (h.expect < 0)
        return HTTP_DONE;
    fleet_flush(c->fleet); /* nothing queued may land after the reset */
    int rc = store_write(c->store, reset_keys_txn, &h);
    if (rc < 0) {
        rest_error(req, rc, "target");
    } else {
        pool_invalidate(c->pool, h.id);
        fleet_publish(req, "target.host_keys_reset", h.rec);
        http_respond_empty(req, 204);
    }
    json_decref(h.rec);
    return HTTP_DONE;
}

/* ---- routes ------------------------------------------------------------------------------- */

#define TARGET_PROPS                                                                               \
    "\"name\":{\"type\":\"string\"},\"address\":{\"type\":\"string\",\"description\":\"DNS "       \
    "name, IPv4 or IPv6\"},\"port\":{\"type\":\"integer\"},\"os_family\":{\"type\":\"string\","    \
    "\"enum\":[\"linux\",\"windows\"]},\"transport\":{\"type\":\"string\",\"enum\":[\"ssh\","      \
    "\"winrm\",\"local\"]},\"credential_id\":{\"type\":[\"string\",\"null\"]},\"labels\":"         \
    "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}},\"host_key_policy\":"    \
    "{\"type\":\"string\",\"enum\":[\"strict\",\"tofu\",\"off\"]},\"connect_timeout_s\":"          \
    "{\"type\":\"integer\"},\"command_timeout_s\":{\"type\":\"integer\"},\"transport_options\":"   \
    "{\"type\":\"object\"},\"enabled\":{\"type\":\"boolean\"},\"description\":{\"type\":"          \
    "\"string\"}"
#define HOST_KEYS_SCHEMA                                                                           \
    "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"type\":{\"type\":"       \
    "\"string\"},\"fingerprint\":{\"type\":\"string\"},\"source\":{\"type\":\"string\",\"enum\":"  \
    "[\"tofu\",\"api\"]},\"added_at\":{\"type\":\"string\"}}}}"
#define TARGET_SCHEMA                                                                              \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"}," TARGET_PROPS              \
    ",\"host_keys\":" HOST_KEYS_SCHEMA ",\"facts\":{\"type\":\"object\",\"readOnly\":true,"        \
    "\"properties\":{\"os_name\":{\"type\":\"string\"},\"os_version\":{\"type\":\"string\"},"      \
    "\"kernel\":{\"type\":\"string\"},\"arch\":{\"type\":\"string\"},\"hostname\":{\"type\":"      \
    "\"string\"},\"last_seen\":{\"type\":\"string\"},\"latency_ms\":{\"type\":\"integer\"}}},"     \
    "\"last_test\":{\"type\":[\"object\",\"null\"],\"readOnly\":true},\"warnings\":{\"type\":"     \
    "\"array\",\"items\":{\"type\":\"string\"}},\"created_at\":{\"type\":\"string\"},"             \
    "\"updated_at\":{\"type\":\"string\"},\"version\":{\"type\":\"integer\"}}}"
#define TARGET_WRITE_SCHEMA                                                                        \
    "{\"type\":\"object\",\"properties\":{" TARGET_PROPS ",\"allow_insecure\":{\"type\":"          \
    "\"boolean\",\"description\":\"required to set host_key_policy "                               \
    "off\"},\"host_keys\":{\"type\":"                                                              \
    "\"array\",\"description\":\"on create only: \\\"<type> SHA256:<b64>\\\" strings\"}}}"
#define BULK_RESULT_SCHEMA                                                                         \
    "{\"type\":\"object\",\"properties\":{\"created\":{\"type\":\"integer\"},\"failed\":"          \
    "{\"type\":\"integer\"},\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\","         \
    "\"properties\":{\"index\":{\"type\":\"integer\"},\"status\":{\"type\":\"string\",\"enum\":"   \
    "[\"created\",\"error\"]},\"id\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},"        \
    "\"error\":{\"type\":\"object\",\"properties\":{\"code\":{\"type\":\"string\"},\"field\":"     \
    "{\"type\":\"string\"},\"message\":{\"type\":\"string\"}}}}}}}}"

static const http_route routes[] = {
    {"GET", "/api/v1/targets", ROLE_VIEWER, list_targets, 0, "targets",
     "List targets; filters: label (a selector: env=prod,role in (web,db),!legacy), os, transport, "
     "name, name_prefix, enabled",
     NULL,
     "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":" TARGET_SCHEMA
     "},\"next_cursor\":{\"type\":[\"string\",\"null\"]}}}"},
    {"POST", "/api/v1/targets", ROLE_OPERATOR, create_target, HTTP_ROUTE_JSON_BODY, "targets",
     "Create a target", TARGET_WRITE_SCHEMA, TARGET_SCHEMA, 201},
    {"POST", "/api/v1/targets/bulk", ROLE_OPERATOR, api_targets_bulk, 0, "targets",
     "Import many targets (a JSON array of target bodies); per-item results",
     "{\"type\":\"array\",\"items\":" TARGET_WRITE_SCHEMA "}", BULK_RESULT_SCHEMA},
    {"GET", "/api/v1/targets/{id}", ROLE_VIEWER, get_target, 0, "targets",
     "Get a target with its facts and known host keys", NULL, TARGET_SCHEMA},
    {"PATCH", "/api/v1/targets/{id}", ROLE_OPERATOR, update_target, HTTP_ROUTE_JSON_BODY, "targets",
     "Change a target (If-Match); null resets a field to its default", TARGET_WRITE_SCHEMA,
     TARGET_SCHEMA},
    {"DELETE", "/api/v1/targets/{id}", ROLE_OPERATOR, delete_target, 0, "targets",
     "Delete a target (and its group memberships)", NULL, NULL, 204},
    {"POST", "/api/v1/targets/{id}/host-keys", ROLE_OPERATOR, add_host_key, HTTP_ROUTE_JSON_BODY,
     "targets", "Trust a host key checked out of band ({type, fingerprint} or {key})",
     "{\"type\":\"object\",\"properties\":{\"type\":{\"type\":\"string\"},\"fingerprint\":"
     "{\"type\":\"string\"},\"key\":{\"type\":\"string\"}}}",
     TARGET_SCHEMA, 201},
    {"DELETE", "/api/v1/targets/{id}/host-keys", ROLE_OPERATOR, reset_host_keys, 0, "targets",
     "Forget the target's known host keys (after a legitimate rekey)", NULL, NULL, 204},
};

int api_targets_register(struct opsc_core *c)
{
    return http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
}
