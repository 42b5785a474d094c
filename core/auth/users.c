/* users.c - user records, the username index, and cleanup of what hangs off a user. */
#include "users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "http.h"
#include "util.h"

int role_parse(const char *name)
{
    if (!name)
        return -1;
    if (strcmp(name, "viewer") == 0)
        return ROLE_VIEWER;
    if (strcmp(name, "operator") == 0)
        return ROLE_OPERATOR;
    if (strcmp(name, "admin") == 0)
        return ROLE_ADMIN;
    return -1;
}

const char *role_name(int role)
{
    switch (role) {
    case ROLE_VIEWER:
        return "viewer";
    case ROLE_OPERATOR:
        return "operator";
    case ROLE_ADMIN:
        return "admin";
    default:
        return "public";
    }
}

int users_fold(const char *in, char out[USERNAME_MAX + 1])
{
    size_t n = in ? strlen(in) : 0;
    if (n == 0 || n > USERNAME_MAX)
        return OPSC_EINVAL;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '@' || c == '-';
        if (!ok || (i == 0 && (c == '.' || c == '-')))
            return OPSC_EINVAL;
        out[i] = c;
    }
    out[n] = '\0';
    return 0;
}

int users_get(store_txn *txn, const char *id, json_t **out)
{
    return store_get(txn, "users", id, out);
}

int users_find(store_txn *txn, const char *username, json_t **out)
{
    char id[40];
    int rc = store_index_get(txn, "users_by_name", username, id);
    return rc < 0 ? rc : store_get(txn, "users", id, out);
}

int users_create(store_txn *txn, json_t *rec)
{
    const char *name = json_string_value(json_object_get(rec, "username"));
    if (!name)
        return OPSC_EINVAL;
    int rc = store_create(txn, "users", rec);
    if (rc == 0)
        rc = store_index_put(txn, "users_by_name", name,
                             json_string_value(json_object_get(rec, "id")));
    return rc;
}

int users_update(store_txn *txn, json_t *rec, int64_t expect_version)
{
    const char *id = json_string_value(json_object_get(rec, "id"));
    json_t *old = NULL;
    int rc = id ? users_get(txn, id, &old) : OPSC_EINVAL;
    if (rc == 0 && !json_equal(json_object_get(old, "username"), json_object_get(rec, "username")))
        rc = OPSC_EINVAL;
    json_decref(old);
    return rc < 0 ? rc : store_update(txn, "users", rec, expect_version);
}

struct owned {
    const char *user_id;
    char (*ids)[40];
    size_t n, cap;
    int rc;
};

static bool owned_by(json_t *rec, const char *user_id)
{
    const char *owner = json_string_value(json_object_get(rec, "user_id"));
    return owner && strcmp(owner, user_id) == 0;
}

static int collect_owned(const char *id, json_t *rec, void *ud)
{
    struct owned *o = ud;
    if (!owned_by(rec, o->user_id))
        return 0;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        char(*v)[40] = realloc(o->ids, cap * sizeof(*v));
        if (!v)
            return OPSC_ENOMEM;
        o->ids = v;
        o->cap = cap;
    }
    snprintf(o->ids[o->n++], 40, "%s", id);
    return 0;
}

/* API tokens: records in "tokens" plus "tokens_by_hash" entries. */
static int delete_api_tokens(store_txn *txn, const char *user_id)
{
    struct owned o = {.user_id = user_id};
    int rc = store_scan(txn, "tokens", NULL, false, collect_owned, &o);
    for (size_t i = 0; rc == 0 && i < o.n; i++) {
        json_t *t = NULL;
        rc = store_get(txn, "tokens", o.ids[i], &t);
        const char *hash = json_string_value(json_object_get(t, "token_hash"));
        if (rc == 0 && hash)
            rc = store_index_del(txn, "tokens_by_hash", hash);
        if (rc == OPSC_ENOENT)
            rc = 0;
        if (rc == 0)
            rc = store_delete(txn, "tokens", o.ids[i], 0);
        json_decref(t);
    }
    free(o.ids);
    return rc;
}

int users_delete(store_txn *txn, const char *id, int64_t expect_version)
{
    json_t *u = NULL;
    int rc = users_get(txn, id, &u);
    if (rc == 0)
        rc = store_delete(txn, "users", id, expect_version);
    if (rc == 0)
        rc = store_index_del(txn, "users_by_name",
                             json_string_value(json_object_get(u, "username")));
    if (rc == 0)
        rc = delete_api_tokens(txn, id);
    if (rc == 0)
        rc = users_revoke_sessions(txn, id, NULL);
    json_decref(u);
    return rc;
}

int users_revoke_api_tokens(store_txn *txn, const char *user_id, const char *reason)
{
    struct owned o = {.user_id = user_id};
    int rc = store_scan(txn, "tokens", NULL, false, collect_owned, &o);
    char now[RFC3339_LEN];
    rfc3339_format(clock_now_ms(), now);
    for (size_t i = 0; rc == 0 && i < o.n; i++) {
        json_t *t = NULL;
        rc = store_get(txn, "tokens", o.ids[i], &t);
        if (rc == 0 && !json_object_get(t, "revoked_at")) {
            json_object_set_new(t, "revoked_at", json_string(now));
            json_object_set_new(t, "revoked_reason", json_string(reason));
            rc = store_update(txn, "tokens", t, 0);
        }
        json_decref(t);
    }
    free(o.ids);
    return rc;
}

struct admin_count {
    const char *except;
    size_t n;
};

static int count_admin(const char *id, json_t *rec, void *ud)
{
    struct admin_count *c = ud;
    if ((!c->except || strcmp(id, c->except) != 0) &&
        json_is_true(json_object_get(rec, "enabled")) &&
        role_parse(json_string_value(json_object_get(rec, "role"))) == ROLE_ADMIN)
        c->n++;
    return 0;
}

int users_count_admins(store_txn *txn, const char *except_id, size_t *count)
{
    struct admin_count c = {except_id, 0};
    int rc = store_scan(txn, "users", NULL, false, count_admin, &c);
    *count = c.n;
    return rc;
}

static int stop_at_first(const char *id, json_t *rec, void *ud)
{
    (void)id, (void)rec;
    *(bool *)ud = false;
    return 1;
}

int users_empty(store_txn *txn, bool *empty)
{
    *empty = true;
    return store_scan(txn, "users", NULL, false, stop_at_first, empty);
}

json_t *users_public(json_t *rec)
{
    json_t *pub = json_copy(rec);
    if (pub)
        json_object_del(pub, "password_hash");
    return pub;
}
