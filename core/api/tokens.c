/* tokens.c - /api/v1/tokens: API tokens for automation, shown once, listed and revoked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "auth.h"
#include "core.h"
#include "http.h"
#include "identity.h"
#include "rest.h"
#include "util.h"

static store *store_of(http_req *req)
{
    return ((struct opsc_core *)http_req_app(req))->store;
}

static bool mine(json_t *rec, const auth_principal *p)
{
    const char *owner = json_string_value(json_object_get(rec, "user_id"));
    return owner && strcmp(owner, p->user_id) == 0;
}

/* ---- create -------------------------------------------------------------------------- */

static bool parse_expiry(http_req *req, json_t *body, int64_t *expires_at_ms)
{
    json_t *at = json_object_get(body, "expires_at");
    json_t *days = json_object_get(body, "expires_in_days");
    int64_t now = clock_now_ms();
    *expires_at_ms = 0;
    if (at && !json_is_null(at) &&
        (!json_is_string(at) || rfc3339_parse(json_string_value(at), expires_at_ms) < 0)) {
        http_respond_error(req, 400, "bad_request", NULL, "expires_at must be RFC 3339 time");
        return false;
    }
    if (days && (!json_is_integer(days) || json_integer_value(days) < 1 ||
                 json_integer_value(days) > 3650)) {
        http_respond_error(req, 400, "bad_request", NULL, "expires_in_days must be 1 to 3650");
        return false;
    }
    if (days)
        *expires_at_ms = now + json_integer_value(days) * 86400000LL;
    if (*expires_at_ms && *expires_at_ms <= now) {
        http_respond_error(req, 400, "bad_request", NULL, "the expiry is in the past");
        return false;
    }
    return true;
}

static int create_token(http_req *req)
{
    json_t *body = rest_body(req);
    if (!body)
        return HTTP_DONE;
    const auth_principal *p = auth_principal_of(req);
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "name") && strcmp(key, "role") && strcmp(key, "expires_at") &&
            strcmp(key, "expires_in_days")) {
            http_respond_error(req, 400, "bad_request", NULL, "unknown field '%s'", key);
            return HTTP_DONE;
        }
    }
    const char *name = json_string_value(json_object_get(body, "name"));
    json_t *rv = json_object_get(body, "role");
    int role = rv ? role_parse(json_string_value(rv)) : p->role;
    int64_t exp = 0;
    if (!name || !*name || strlen(name) > 128) {
        http_respond_error(req, 400, "bad_request", NULL, "name is required (1-128 characters)");
        return HTTP_DONE;
    }
    if (role < 0) {
        http_respond_error(req, 400, "bad_request", NULL, "role must be admin, operator or viewer");
        return HTTP_DONE;
    }
    if (!parse_expiry(req, body, &exp))
        return HTTP_DONE;
    json_t *rec = NULL;
    char token[TOKEN_TEXT_MAX];
    int rc = auth_token_create(((struct opsc_core *)http_req_app(req))->auth, p, name, role, exp,
                               &rec, token);
    if (rc == OPSC_EACCES) {
        http_respond_error(req, 403, "forbidden", NULL,
                           "a token cannot have a role above yours (%s)", role_name(p->role));
        return HTTP_DONE;
    }
    if (rc < 0) {
        rest_error(req, rc, "token");
        return HTTP_DONE;
    }
    json_object_set_new(rec, "token", json_string(token)); /* shown this once */
    secure_zero(token, sizeof(token));
    auth_set_object(req, json_string_value(json_object_get(rec, "id")));
    http_set_header(req, "Cache-Control", "no-store");
    rest_created(req, "/api/v1/tokens", rec);
    return HTTP_DONE;
}

/* ---- read, list, revoke ------------------------------------------------------------------ */

struct one {
    const char *id;
    json_t *rec;
};

static int get_txn(store_txn *txn, void *ud)
{
    struct one *o = ud;
    return store_get(txn, "tokens", o->id, &o->rec);
}

/* Own tokens, or anyone's for an admin; others' are "not found". */
static json_t *load_visible(http_req *req)
{
    const auth_principal *p = auth_principal_of(req);
    struct one o = {http_req_param(req, "id"), NULL};
    int rc = store_read(store_of(req), get_txn, &o);
    if (rc == 0 && p->role < ROLE_ADMIN && !mine(o.rec, p))
        rc = OPSC_ENOENT;
    if (rc < 0) {
        rest_error(req, rc, "token");
        json_decref(o.rec);
        return NULL;
    }
    return o.rec;
}

static int get_token(http_req *req)
{
    json_t *rec = load_visible(req);
    if (rec) {
        rest_etag(req, rec);
        http_respond_json(req, 200, auth_token_public(rec));
        json_decref(rec);
    }
    return HTTP_DONE;
}

static int delete_txn(store_txn *txn, void *ud)
{
    json_t *rec = ud;
    const char *hash = json_string_value(json_object_get(rec, "token_hash"));
    int rc = hash ? store_index_del(txn, "tokens_by_hash", hash) : 0;
    if (rc == 0 || rc == OPSC_ENOENT)
        rc = store_delete(txn, "tokens", json_string_value(json_object_get(rec, "id")), 0);
    return rc;
}

static int delete_token(http_req *req)
{
    json_t *rec = load_visible(req);
    if (!rec)
        return HTTP_DONE;
    int rc = store_write(store_of(req), delete_txn, rec);
    json_decref(rec);
    if (rc < 0)
        rest_error(req, rc, "token");
    else
        http_respond_empty(req, 204);
    return HTTP_DONE;
}

struct filter {
    const char *user_id; /* NULL: all */
};

static bool keep_token(json_t *rec, void *ud)
{
    struct filter *f = ud;
    const char *owner = json_string_value(json_object_get(rec, "user_id"));
    return !f->user_id || (owner && strcmp(owner, f->user_id) == 0);
}

static int list_tokens(http_req *req)
{
    const auth_principal *p = auth_principal_of(req);
    struct filter f = {p->user_id};
    const char *who = http_req_query(req, "user_id");
    if ((who || rest_query_bool(req, "all")) && p->role < ROLE_ADMIN) {
        http_respond_error(req, 403, "forbidden", NULL, "only admins list others' tokens");
        return HTTP_DONE;
    }
    if (who || rest_query_bool(req, "all"))
        f.user_id = who;
    rest_scan s = {.db = "tokens", .keep = keep_token, .view = auth_token_public, .ud = &f};
    return rest_list_records(req, store_of(req), &s, "tokens");
}

#define TOKEN_SCHEMA                                                                               \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"name\":{\"type\":"        \
    "\"string\"},\"user_id\":{\"type\":\"string\"},\"username\":{\"type\":\"string\"},"            \
    "\"role\":{\"type\":\"string\"},\"prefix\":{\"type\":\"string\"},\"expires_at\":{\"type\":"    \
    "[\"string\",\"null\"]},\"revoked_at\":{\"type\":\"string\",\"description\":\"set when its "   \
    "user was disabled: it never works again\"},\"revoked_reason\":{\"type\":\"string\"},"         \
    "\"token\":{\"type\":\"string\",\"description\":\"only in the "                                \
    "answer to POST\"},\"created_at\":{\"type\":\"string\"},\"version\":{\"type\":\"integer\"}}}"

static const http_route routes[] = {
    {"GET", "/api/v1/tokens", ROLE_VIEWER, list_tokens, 0, "tokens",
     "List one's API tokens (admins: ?all=true or ?user_id=)", NULL,
     "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":" TOKEN_SCHEMA
     "},\"next_cursor\":{\"type\":[\"string\",\"null\"]}}}"},
    {"POST", "/api/v1/tokens", ROLE_VIEWER, create_token, HTTP_ROUTE_JSON_BODY, "tokens",
     "Create an API token (role no higher than one's own); the token is shown once",
     "{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{\"name\":{\"type\":"
     "\"string\"},\"role\":{\"type\":\"string\"},\"expires_at\":{\"type\":\"string\"},"
     "\"expires_in_days\":{\"type\":\"integer\"}}}",
     TOKEN_SCHEMA, 201},
    {"GET", "/api/v1/tokens/{id}", ROLE_VIEWER, get_token, 0, "tokens", "Get an API token", NULL,
     TOKEN_SCHEMA},
    {"DELETE", "/api/v1/tokens/{id}", ROLE_VIEWER, delete_token, 0, "tokens",
     "Revoke an API token (one's own; admins: anyone's)", NULL, NULL, 204},
};

int api_tokens_register(struct opsc_core *c)
{
    return http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
}
