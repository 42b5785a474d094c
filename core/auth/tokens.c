/* tokens.c - refresh tokens and API tokens in the store; revoked access tokens; their hourly sweep.
 */
#include "auth_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "log.h"
#include "util.h"

#define SWEEP_EVERY_MS (3600 * 1000)

void auth_session_clear(auth_session *s)
{
    if (s->access_token) {
        secure_zero(s->access_token, strlen(s->access_token));
        free(s->access_token);
    }
    secure_zero(s, sizeof(*s));
}

/* Refresh tokens live in "refresh_tokens" as hash -> {"user_id", "family",
 * "expires_at_ms", "used"}; a spent token stays (used: true) until it
 * expires, so spending it again is recognised as theft. */
int auth_issue_session(auth *a, store_txn *txn, json_t *user, const char *family, auth_session *s)
{
    auth_session_clear(s);
    const char *uid = json_string_value(json_object_get(user, "id"));
    const char *role = json_string_value(json_object_get(user, "role"));
    const char *name = json_string_value(json_object_get(user, "username"));
    char fam[UUID_STR_LEN], hash[TOKEN_HASH_HEX];
    int rc = uid && role && name ? token_new(TOKEN_PREFIX_REFRESH, s->refresh_token) : OPSC_EINVAL;
    if (rc == 0 && !family)
        rc = uuid7_new(fam);
    int64_t now = clock_now_ms();
    json_t *v = NULL;
    if (rc == 0) {
        token_hash(s->refresh_token, hash);
        v = json_pack("{s:s, s:s, s:I, s:b}", "user_id", uid, "family", family ? family : fam,
                      "expires_at_ms", (json_int_t)(now + a->cfg->refresh_ttl_ms), "used", 0);
        rc = v ? 0 : OPSC_ENOMEM;
    }
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (rc == 0)
        rc = text ? store_kv_put(txn, "refresh_tokens", hash, strlen(hash), text, strlen(text))
                  : OPSC_ENOMEM;
    free(text);
    int64_t ttl_s = a->cfg->access_ttl_ms / 1000;
    if (rc == 0)
        rc = access_token_issue(&a->key, uid, role, family ? family : fam, now / 1000, ttl_s,
                                &s->access_token, NULL);
    if (rc < 0) {
        auth_session_clear(s);
        return rc;
    }
    s->expires_in = ttl_s;
    snprintf(s->session, sizeof(s->session), "%s", family ? family : fam);
    snprintf(s->user_id, sizeof(s->user_id), "%s", uid);
    snprintf(s->username, sizeof(s->username), "%s", name);
    return 0;
}

/* ---- revocation by family ------------------------------------------------------- */

/* A session (refresh token family) once revoked stays in "revoked_sessions"
 * as long as an access token issued in it could live (a day at most), so
 * that those stop working with it. */
#define SESSION_REVOKED_S (86400 + 60)

struct key_list {
    const char *family;  /* match this family, or */
    const char *user_id; /* this user's, but for the family `except` (may be NULL), or */
    const char *except;
    int64_t expired_at; /* entries expired at this time (both NULL) */
    json_t *families;   /* user_id: the families met, to revoke their access tokens */
    char (*keys)[72];
    size_t n, cap;
};

static int add_key(struct key_list *l, const void *key, size_t klen)
{
    if (klen >= sizeof(l->keys[0]))
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char(*k)[72] = realloc(l->keys, cap * sizeof(*k));
        if (!k)
            return OPSC_ENOMEM;
        l->keys = k;
        l->cap = cap;
    }
    memcpy(l->keys[l->n], key, klen);
    l->keys[l->n++][klen] = '\0';
    return 0;
}

static bool user_hit(struct key_list *l, const char *uid, const char *fam)
{
    if (!uid || strcmp(uid, l->user_id) != 0 || (fam && l->except && strcmp(fam, l->except) == 0))
        return false;
    if (fam && l->families)
        json_object_set_new(l->families, fam, json_true());
    return true;
}

static int match_refresh(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    struct key_list *l = ud;
    json_t *v = json_loadb(val, vlen, 0, NULL);
    const char *fam = json_string_value(json_object_get(v, "family"));
    const char *uid = json_string_value(json_object_get(v, "user_id"));
    json_int_t exp = json_integer_value(json_object_get(v, "expires_at_ms"));
    bool hit = l->family    ? fam && strcmp(fam, l->family) == 0
               : l->user_id ? user_hit(l, uid, fam)
                            : !v || exp <= l->expired_at;
    json_decref(v);
    return hit ? add_key(l, key, klen) : 0;
}

static int match_revoked(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    struct key_list *l = ud;
    char buf[32];
    if (vlen >= sizeof(buf))
        return add_key(l, key, klen);
    memcpy(buf, val, vlen);
    buf[vlen] = '\0';
    return strtoll(buf, NULL, 10) * 1000 <= l->expired_at ? add_key(l, key, klen) : 0;
}

static int delete_keys(store_txn *txn, const char *db, struct key_list *l)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l->n; i++) {
        rc = store_kv_del(txn, db, l->keys[i], strlen(l->keys[i]));
        if (rc == OPSC_ENOENT)
            rc = 0;
    }
    free(l->keys);
    l->keys = NULL;
    l->n = l->cap = 0;
    return rc;
}

static int revoke_matching(store_txn *txn, struct key_list *l)
{
    int rc = store_kv_scan(txn, "refresh_tokens", "", 0, match_refresh, l);
    if (rc < 0) {
        free(l->keys);
        return rc;
    }
    return delete_keys(txn, "refresh_tokens", l);
}

static int revoke_session(store_txn *txn, const char *family)
{
    char v[32];
    int n = snprintf(v, sizeof(v), "%lld", (long long)(clock_now_ms() / 1000 + SESSION_REVOKED_S));
    return store_kv_put(txn, "revoked_sessions", family, strlen(family), v, (size_t)n);
}

int auth_revoke_family(store_txn *txn, const char *family)
{
    struct key_list l = {.family = family};
    int rc = revoke_matching(txn, &l);
    return rc == 0 ? revoke_session(txn, family) : rc;
}

int users_revoke_sessions(store_txn *txn, const char *user_id, const char *except_session)
{
    struct key_list l = {.user_id = user_id, .except = except_session, .families = json_object()};
    int rc = l.families ? revoke_matching(txn, &l) : OPSC_ENOMEM;
    const char *fam;
    json_t *v;
    json_object_foreach(l.families, fam, v)
    {
        if (rc == 0)
            rc = revoke_session(txn, fam);
    }
    json_decref(l.families);
    return rc;
}

int auth_revoke_access(store_txn *txn, const char *jti, int64_t exp_s)
{
    char v[32];
    int n = snprintf(v, sizeof(v), "%lld", (long long)exp_s);
    return store_kv_put(txn, "revoked_tokens", jti, strlen(jti), v, (size_t)n);
}

static int is_listed(store_txn *txn, const char *db, const char *key, bool *listed)
{
    const void *v;
    size_t n;
    int rc = store_kv_get(txn, db, key, strlen(key), &v, &n);
    *listed = rc == 0;
    return rc == OPSC_ENOENT ? 0 : rc;
}

int auth_access_revoked(store_txn *txn, const char *jti, bool *revoked)
{
    return is_listed(txn, "revoked_tokens", jti, revoked);
}

int auth_session_revoked(store_txn *txn, const char *sid, bool *revoked)
{
    return is_listed(txn, "revoked_sessions", sid, revoked);
}

/* ---- sweep ---------------------------------------------------------------------- */

static int sweep(store_txn *txn, void *ud)
{
    int64_t now = *(int64_t *)ud;
    struct key_list l = {.expired_at = now};
    int rc = store_kv_scan(txn, "refresh_tokens", "", 0, match_refresh, &l);
    if (rc == 0)
        rc = delete_keys(txn, "refresh_tokens", &l);
    if (rc == 0)
        rc = store_kv_scan(txn, "revoked_tokens", "", 0, match_revoked, &l);
    if (rc == 0)
        rc = delete_keys(txn, "revoked_tokens", &l);
    if (rc == 0)
        rc = store_kv_scan(txn, "revoked_sessions", "", 0, match_revoked, &l);
    if (rc == 0)
        rc = delete_keys(txn, "revoked_sessions", &l);
    free(l.keys);
    return rc;
}

static void sweep_tick(uv_timer_t *t)
{
    auth *a = t->data;
    int64_t now = clock_now_ms();
    int rc = store_write(a->store, sweep, &now);
    if (rc < 0 && rc != OPSC_ENOSPC)
        log_error("auth", "sweeping expired tokens failed: %s", opsc_strerror(rc));
}

void auth_sessions_start_sweep(auth *a)
{
    uv_timer_start(&a->sweep_timer, sweep_tick, 0, SWEEP_EVERY_MS);
    uv_unref((uv_handle_t *)&a->sweep_timer);
}

/* ---- API tokens -------------------------------------------------------------------- */

json_t *auth_token_public(json_t *rec)
{
    json_t *pub = json_copy(rec);
    if (pub)
        json_object_del(pub, "token_hash");
    return pub;
}

struct token_create {
    json_t *proto;
    const char *hash;
    json_t *out;
};

static int insert_token(store_txn *txn, void *ud)
{
    struct token_create *c = ud;
    json_decref(c->out);
    c->out = json_deep_copy(c->proto);
    if (!c->out)
        return OPSC_ENOMEM;
    int rc = store_create(txn, "tokens", c->out);
    if (rc == 0)
        rc = store_index_put(txn, "tokens_by_hash", c->hash,
                             json_string_value(json_object_get(c->out, "id")));
    return rc;
}

int auth_token_create(auth *a, const auth_principal *p, const char *name, int role,
                      int64_t expires_at_ms, json_t **record, char token[TOKEN_TEXT_MAX])
{
    if (role > p->role)
        return OPSC_EACCES;
    char hash[TOKEN_HASH_HEX], exp[RFC3339_LEN], prefix[16];
    int rc = token_new(TOKEN_PREFIX_API, token);
    if (rc < 0)
        return rc;
    token_hash(token, hash);
    snprintf(prefix, sizeof(prefix), "%.12s", token);
    rfc3339_format(expires_at_ms, exp);
    json_t *proto =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", name, "user_id", p->user_id, "username",
                  p->username, "role", role_name(role), "prefix", prefix, "token_hash", hash);
    if (proto)
        json_object_set_new(proto, "expires_at", expires_at_ms ? json_string(exp) : json_null());
    struct token_create c = {proto, hash, NULL};
    rc = proto ? store_write(a->store, insert_token, &c) : OPSC_ENOMEM;
    json_decref(proto);
    if (rc == 0)
        *record = auth_token_public(c.out);
    json_decref(c.out);
    if (rc < 0)
        secure_zero(token, TOKEN_TEXT_MAX);
    return rc;
}
