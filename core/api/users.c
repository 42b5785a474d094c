/* users.c - /api/v1/users: admin CRUD, the caller's own record, password change. */
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

static auth *auth_of(http_req *req)
{
    return ((struct opsc_core *)http_req_app(req))->auth;
}

static store *store_of(http_req *req)
{
    return ((struct opsc_core *)http_req_app(req))->store;
}

/* A pending write of one user, possibly after a password hash. */
typedef struct user_op {
    http_req *req;
    json_t *fields; /* validated changes (create: the new record) */
    char id[40];    /* update/delete target; "" on create */
    int64_t expect; /* If-Match version, 0: none */
    bool create, revoke;
    bool no_content;  /* answer 204 (own password change) */
    json_t *result;   /* the public record written */
    const char *code; /* refusal (409): error code */
    const char *why;  /* and its text */
} user_op;

static void op_free(user_op *op)
{
    json_decref(op->fields);
    json_decref(op->result);
    free(op);
}

struct one {
    const char *id;
    json_t *user;
};

static int get_one(store_txn *txn, void *ud)
{
    struct one *o = ud;
    return users_get(txn, o->id, &o->user);
}

/* ---- validation ---------------------------------------------------------------------- */

static bool bad(http_req *req, const char *msg)
{
    http_respond_error(req, 400, "bad_request", NULL, "%s", msg);
    return false;
}

/* Copy the allowed members of body into fields, type-checked. */
/* Empty (no notifications by email), or one address without anything that
 * would break out of an SMTP command or a mail header. */
static bool notify_email_ok(const char *v)
{
    const char *at = v ? strchr(v, '@') : NULL;
    return v && (!*v || (at && at != v && at[1] && !strpbrk(v, " <>,;\"\r\n")));
}

static bool take_fields(http_req *req, json_t *body, json_t *fields, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok) {
            http_respond_error(req, 400, "bad_request", NULL, "field '%s' cannot be set here", key);
            return false;
        }
        if (strcmp(key, "enabled") == 0 ? !json_is_boolean(v) : !json_is_string(v))
            return bad(req, strcmp(key, "enabled") == 0 ? "enabled must be true or false"
                                                        : "user fields must be strings");
        if (json_is_string(v) && json_string_length(v) > (strcmp(key, "password") ? 256 : 1024))
            return bad(req, "a user field is too long");
        if (strcmp(key, "role") == 0 && role_parse(json_string_value(v)) < 0)
            return bad(req, "role must be admin, operator or viewer");
        if (strcmp(key, "email") == 0 && json_string_length(v) &&
            !strchr(json_string_value(v), '@'))
            return bad(req, "email must be an address");
        if (strcmp(key, "notify_email") == 0 && !notify_email_ok(json_string_value(v)))
            return bad(req, "notify_email must be an address (where rules send notifications)");
        json_object_set_new(fields, key, json_deep_copy(v)); /* the body gets wiped */
    }
    return true;
}

/* The new password in fields[key] (if any) against the policy, with what an
 * attacker knows of the user: its name, display name and email, as stored
 * (`user`, may be NULL) and as being set. */
static bool password_ok(http_req *req, json_t *fields, const char *key, const json_t *user)
{
    const char *pw = json_string_value(json_object_get(fields, key));
    if (!pw)
        return true;
    const char *words[8];
    size_t n = 0;
    static const char *const members[] = {"username", "display_name", "email"};
    for (size_t i = 0; i < 3; i++) {
        const char *a = json_string_value(json_object_get(fields, members[i]));
        const char *b = json_string_value(json_object_get(user, members[i]));
        if (a)
            words[n++] = a;
        if (b)
            words[n++] = b;
    }
    words[n] = NULL;
    char err[320];
    if (auth_password_check(auth_of(req), pw, words, err, sizeof(err)) < 0)
        return bad(req, err);
    return true;
}

/* ---- writing ---------------------------------------------------------------------------- */

static int check_last_admin(store_txn *txn, json_t *before, json_t *after, user_op *op)
{
    bool was = json_is_true(json_object_get(before, "enabled")) &&
               role_parse(json_string_value(json_object_get(before, "role"))) == ROLE_ADMIN;
    bool is = after && json_is_true(json_object_get(after, "enabled")) &&
              role_parse(json_string_value(json_object_get(after, "role"))) == ROLE_ADMIN;
    size_t others = 0;
    int rc = was && !is ? users_count_admins(txn, op->id, &others) : 0;
    if (rc == 0 && was && !is && others == 0) {
        op->code = "last_admin";
        op->why = "this is the last enabled admin";
        return OPSC_ESTATE;
    }
    return rc;
}

static int write_create(store_txn *txn, user_op *op)
{
    json_t *rec = json_deep_copy(op->fields);
    int rc = rec ? users_create(txn, rec) : OPSC_ENOMEM;
    if (rc == 0)
        op->result = users_public(rec);
    json_decref(rec);
    return rc;
}

/* A password change ends the user's other sessions (the caller's own one
 * goes on when it changes its own password); a disable ends them all and
 * revokes its API tokens, so that enabling it again revives nothing. */
static int end_sessions(store_txn *txn, user_op *op, json_t *before, json_t *after)
{
    bool was = json_is_true(json_object_get(before, "enabled"));
    bool is = json_is_true(json_object_get(after, "enabled"));
    const auth_principal *p = auth_principal_of(op->req);
    bool self = p && strcmp(p->user_id, op->id) == 0 && p->sid[0];
    int rc = 0;
    if (op->revoke || !is)
        rc = users_revoke_sessions(txn, op->id, is && self ? p->sid : NULL);
    if (rc == 0 && was && !is)
        rc = users_revoke_api_tokens(txn, op->id, "the user was disabled");
    return rc;
}

static int write_update(store_txn *txn, user_op *op)
{
    json_t *u = NULL;
    int rc = users_get(txn, op->id, &u);
    json_t *before = rc == 0 ? json_deep_copy(u) : NULL;
    const char *prov = json_string_value(json_object_get(u, "provider"));
    if (rc == 0 && json_object_get(op->fields, "password_hash") &&
        (!prov || strcmp(prov, "local") != 0)) {
        op->code = "conflict";
        op->why = "this user's password is managed by its provider";
        rc = OPSC_ESTATE;
    }
    if (rc == 0)
        rc = json_object_update(u, op->fields) == 0 ? 0 : OPSC_ENOMEM;
    if (rc == 0)
        rc = check_last_admin(txn, before, u, op);
    if (rc == 0)
        rc = users_update(txn, u, op->expect);
    if (rc == 0)
        rc = end_sessions(txn, op, before, u);
    if (rc == 0)
        op->result = users_public(u);
    json_decref(before);
    json_decref(u);
    return rc;
}

static int write_user(store_txn *txn, void *ud)
{
    user_op *op = ud;
    json_decref(op->result);
    op->result = NULL;
    return op->create ? write_create(txn, op) : write_update(txn, op);
}

static void finish(user_op *op, int rc)
{
    http_req *req = op->req;
    if (rc == 0 && op->create) {
        auth_set_object(req, json_string_value(json_object_get(op->result, "id")));
        rest_created(req, "/api/v1/users", json_incref(op->result));
    } else if (rc == 0) {
        rest_etag(req, op->result);
        http_respond_json(req, 200, json_incref(op->result));
    } else if (rc == OPSC_ESTATE) {
        http_respond_error(req, 409, op->code, NULL, "%s", op->why);
    } else if (rc == OPSC_EINVAL) {
        http_respond_error(req, 400, "bad_request", NULL, "username cannot change");
    } else {
        rest_error(req, rc, "user");
    }
}

static void hashed(void *ud, int status, const char *hash)
{
    user_op *op = ud;
    int rc = status;
    if (rc == 0) {
        char now[RFC3339_LEN];
        rfc3339_format(clock_now_ms(), now);
        json_object_set_new(op->fields, "password_hash", json_string(hash));
        json_object_set_new(op->fields, "password_changed_at", json_string(now));
        op->revoke = true;
        rc = store_write(store_of(op->req), write_user, op);
    }
    if (rc == OPSC_EAUTH)
        http_respond_error(op->req, 403, "forbidden", NULL, "the old password is wrong");
    else if (rc == OPSC_ECANCELED)
        http_respond_error(op->req, 503, "unavailable", NULL, "the server is stopping");
    else if (rc == 0 && op->no_content)
        http_respond_empty(op->req, 204);
    else
        finish(op, rc);
    http_req_unref(op->req);
    op_free(op);
}

/* Hash the password in fields[key] (if any) first, then write. */
static int run(user_op *op, const char *key, const char *old_hash, const char *old_pw)
{
    json_t *pw = json_object_get(op->fields, key);
    if (!pw) {
        int rc = store_write(store_of(op->req), write_user, op);
        finish(op, rc);
        op_free(op);
        return HTTP_DONE;
    }
    char *copy = strdup(json_string_value(pw));
    json_object_del(op->fields, key);
    http_req_ref(op->req);
    int rc = copy ? auth_password_job(auth_of(op->req), old_hash, old_pw, copy, hashed, op)
                  : OPSC_ENOMEM;
    if (copy) {
        secure_zero(copy, strlen(copy));
        free(copy);
    }
    rest_wipe_body(op->req);
    if (rc == 0)
        return HTTP_ASYNC;
    http_req_unref(op->req);
    rest_busy(op->req, "too much password work in progress");
    op_free(op);
    return HTTP_DONE;
}

static user_op *new_op(http_req *req, bool create)
{
    user_op *op = calloc(1, sizeof(*op));
    if (op && !(op->fields = json_object())) {
        free(op);
        op = NULL;
    }
    if (!op) {
        http_respond_opsc_error(req, OPSC_ENOMEM, "out of memory");
        return NULL;
    }
    op->req = req;
    op->create = create;
    return op;
}

/* ---- handlers ------------------------------------------------------------------------------- */

static int create_user(http_req *req)
{
    static const char *const allowed[] = {"username", "display_name", "email",    "role",
                                          "enabled",  "provider",     "password", "notify_email",
                                          NULL};
    json_t *body = rest_body(req);
    user_op *op = body ? new_op(req, true) : NULL;
    if (!op)
        return HTTP_DONE;
    char name[USERNAME_MAX + 1];
    const char *provider = json_string_value(json_object_get(body, "provider"));
    bool ok = take_fields(req, body, op->fields, allowed) &&
              (users_fold(json_string_value(json_object_get(body, "username")), name) == 0 ||
               bad(req, "username: 1-64 of a-z 0-9 . _ @ -, not starting with . or -")) &&
              (json_object_get(body, "role") || bad(req, "role is required")) &&
              password_ok(req, op->fields, "password", NULL);
    bool local = !provider || strcmp(provider, "local") == 0;
    if (ok && local && !json_object_get(body, "password"))
        ok = bad(req, "password is required for a local user");
    if (ok && !local && json_object_get(body, "password"))
        ok = bad(req, "users of another provider have no password here");
    if (!ok) {
        op_free(op);
        return HTTP_DONE;
    }
    json_object_set_new(op->fields, "username", json_string(name));
    if (!json_object_get(op->fields, "enabled"))
        json_object_set_new(op->fields, "enabled", json_true());
    if (!provider)
        json_object_set_new(op->fields, "provider", json_string("local"));
    if (!json_object_get(op->fields, "display_name"))
        json_object_set_new(op->fields, "display_name", json_string(name));
    if (!json_object_get(op->fields, "email"))
        json_object_set_new(op->fields, "email", json_string(""));
    return run(op, "password", NULL, NULL);
}

static int update_user(http_req *req)
{
    static const char *const allowed[] = {"display_name", "email",    "role",
                                          "enabled",      "password", "notify_email", NULL};
    json_t *body = rest_body(req);
    int64_t expect = body ? rest_if_match(req) : -1;
    user_op *op = expect >= 0 ? new_op(req, false) : NULL;
    if (!op)
        return HTTP_DONE;
    snprintf(op->id, sizeof(op->id), "%s", http_req_param(req, "id"));
    op->expect = expect;
    struct one o = {op->id, NULL};
    bool ok = take_fields(req, body, op->fields, allowed);
    if (ok && json_object_get(op->fields, "password"))
        store_read(store_of(req), get_one, &o); /* who the password is for */
    ok = ok && password_ok(req, op->fields, "password", o.user);
    json_decref(o.user);
    if (!ok) {
        op_free(op);
        return HTTP_DONE;
    }
    return run(op, "password", NULL, NULL);
}

static int update_me(http_req *req)
{
    static const char *const allowed[] = {"display_name", "email", "notify_email", NULL};
    json_t *body = rest_body(req);
    int64_t expect = body ? rest_if_match(req) : -1;
    user_op *op = expect >= 0 ? new_op(req, false) : NULL;
    if (!op)
        return HTTP_DONE;
    snprintf(op->id, sizeof(op->id), "%s", auth_principal_of(req)->user_id);
    op->expect = expect;
    if (!take_fields(req, body, op->fields, allowed)) {
        op_free(op);
        return HTTP_DONE;
    }
    return run(op, "password", NULL, NULL);
}

static int respond_user(http_req *req, const char *id)
{
    struct one o = {id, NULL};
    int rc = store_read(store_of(req), get_one, &o);
    if (rc < 0) {
        rest_error(req, rc, "user");
        return HTTP_DONE;
    }
    rest_etag(req, o.user);
    http_respond_json(req, 200, users_public(o.user));
    json_decref(o.user);
    return HTTP_DONE;
}

static int get_user(http_req *req)
{
    return respond_user(req, http_req_param(req, "id"));
}

static int get_me(http_req *req)
{
    return respond_user(req, auth_principal_of(req)->user_id);
}

static int change_own_password(http_req *req)
{
    json_t *body = rest_body(req);
    if (!body)
        return HTTP_DONE;
    const char *old_pw = json_string_value(json_object_get(body, "old_password"));
    const char *new_pw = json_string_value(json_object_get(body, "new_password"));
    if (!old_pw || !new_pw) {
        bad(req, "old_password and new_password are required");
        return HTTP_DONE;
    }
    struct one o = {auth_principal_of(req)->user_id, NULL};
    int rc = store_read(store_of(req), get_one, &o);
    if (rc == 0 && !password_ok(req, body, "new_password", o.user)) {
        json_decref(o.user);
        return HTTP_DONE;
    }
    const char *hash = json_string_value(json_object_get(o.user, "password_hash"));
    char *old_hash = rc == 0 && hash ? strdup(hash) : NULL;
    json_decref(o.user);
    if (rc < 0) {
        rest_error(req, rc, "user");
        return HTTP_DONE;
    }
    if (!old_hash) {
        http_respond_error(req, 409, "conflict", NULL,
                           "this user's password is managed by its provider");
        return HTTP_DONE;
    }
    user_op *op = new_op(req, false);
    int r = HTTP_DONE;
    if (op) {
        snprintf(op->id, sizeof(op->id), "%s", o.id);
        op->no_content = true;
        json_object_set_new(op->fields, "new_password", json_string(new_pw));
        r = run(op, "new_password", old_hash, old_pw);
    }
    secure_zero(old_hash, strlen(old_hash));
    free(old_hash);
    return r;
}

static bool not_self(http_req *req, const char *id)
{
    if (strcmp(auth_principal_of(req)->user_id, id) != 0)
        return true;
    http_respond_error(req, 409, "conflict", NULL, "you cannot delete yourself");
    return false;
}

static int delete_txn(store_txn *txn, void *ud)
{
    user_op *op = ud;
    json_t *u = NULL;
    int rc = users_get(txn, op->id, &u);
    if (rc == 0)
        rc = check_last_admin(txn, u, NULL, op);
    if (rc == 0)
        rc = users_delete(txn, op->id, op->expect);
    json_decref(u);
    return rc;
}

static int delete_user(http_req *req)
{
    int64_t expect = rest_if_match(req);
    const char *id = http_req_param(req, "id");
    user_op *op = expect >= 0 && not_self(req, id) ? new_op(req, false) : NULL;
    if (!op)
        return HTTP_DONE;
    snprintf(op->id, sizeof(op->id), "%s", id);
    op->expect = expect;
    int rc = store_write(store_of(req), delete_txn, op);
    if (rc == 0)
        http_respond_empty(req, 204);
    else if (rc == OPSC_ESTATE)
        http_respond_error(req, 409, op->code, NULL, "%s", op->why);
    else
        rest_error(req, rc, "user");
    op_free(op);
    return HTTP_DONE;
}

static int list_users(http_req *req)
{
    rest_scan s = {.db = "users", .view = users_public};
    return rest_list_records(req, store_of(req), &s, "users");
}

#define USER_SCHEMA                                                                                \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},"                           \
    "\"username\":{\"type\":\"string\"},\"display_name\":{\"type\":\"string\"},"                   \
    "\"email\":{\"type\":\"string\"},\"notify_email\":{\"type\":\"string\"},"                        \
    "\"role\":{\"type\":\"string\",\"enum\":[\"admin\","                                             \
    "\"operator\",\"viewer\"]},\"enabled\":{\"type\":\"boolean\"},\"provider\":{\"type\":"         \
    "\"string\"},\"last_login_at\":{\"type\":\"string\"},\"created_at\":{\"type\":\"string\"},"    \
    "\"updated_at\":{\"type\":\"string\"},\"version\":{\"type\":\"integer\"}}}"
#define USER_WRITE_SCHEMA                                                                          \
    "{\"type\":\"object\",\"properties\":{\"username\":{\"type\":\"string\"},"                     \
    "\"display_name\":{\"type\":\"string\"},\"email\":{\"type\":\"string\"},"                       \
    "\"notify_email\":{\"type\":\"string\"},\"role\":"                                              \
    "{\"type\":\"string\",\"enum\":[\"admin\",\"operator\",\"viewer\"]},\"enabled\":"              \
    "{\"type\":\"boolean\"},\"provider\":{\"type\":\"string\"},\"password\":{\"type\":"            \
    "\"string\",\"writeOnly\":true}}}"
#define LIST_SCHEMA                                                                                \
    "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":" USER_SCHEMA    \
    "},\"next_cursor\":{\"type\":[\"string\",\"null\"]}}}"

static const http_route routes[] = {
    /* Viewers read everything but secrets and the audit log: users too. */
    {"GET", "/api/v1/users", ROLE_VIEWER, list_users, 0, "users", "List users", NULL, LIST_SCHEMA},
    {"POST", "/api/v1/users", ROLE_ADMIN, create_user, HTTP_ROUTE_JSON_BODY, "users",
     "Create a user (local users need a password)", USER_WRITE_SCHEMA, USER_SCHEMA, 201},
    {"GET", "/api/v1/users/me", ROLE_VIEWER, get_me, 0, "users", "The calling user", NULL,
     USER_SCHEMA},
    {"PATCH", "/api/v1/users/me", ROLE_VIEWER, update_me, HTTP_ROUTE_JSON_BODY, "users",
     "Change one's display name, email or notify_email (where rules send one notifications)",
     "{\"type\":\"object\",\"properties\":{\"display_name\":{\"type\":\"string\"},"
     "\"email\":{\"type\":\"string\"},\"notify_email\":{\"type\":\"string\"}}}",
     USER_SCHEMA},
    {"POST", "/api/v1/users/me/password", ROLE_VIEWER, change_own_password, HTTP_ROUTE_JSON_BODY,
     "users", "Change one's password (needs the old one); ends one's other sessions",
     "{\"type\":\"object\",\"required\":[\"old_password\",\"new_password\"],\"properties\":"
     "{\"old_password\":{\"type\":\"string\",\"writeOnly\":true},\"new_password\":{\"type\":"
     "\"string\",\"writeOnly\":true}}}",
     NULL, 204},
    {"GET", "/api/v1/users/{id}", ROLE_VIEWER, get_user, 0, "users", "Get a user", NULL,
     USER_SCHEMA},
    {"PATCH", "/api/v1/users/{id}", ROLE_ADMIN, update_user, HTTP_ROUTE_JSON_BODY, "users",
     "Change a user's profile, role, enabled flag or password (If-Match)", USER_WRITE_SCHEMA,
     USER_SCHEMA},
    {"DELETE", "/api/v1/users/{id}", ROLE_ADMIN, delete_user, 0, "users",
     "Delete a user with its API tokens and sessions (If-Match)", NULL, NULL, 204},
};

int api_users_register(struct opsc_core *c)
{
    return http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
}
