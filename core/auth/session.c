/* session.c - login through the provider chain on a worker thread, refresh, logout, slow password
 * jobs. */
#include "auth_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "log.h"
#include "util.h"

/* ---- per-address logins in progress ----------------------------------------------- */

static inflight *inflight_slot(auth *a, const char *client, bool create)
{
    inflight *free_slot = NULL;
    for (size_t i = 0; i < AUTH_MAX_INFLIGHT; i++) {
        inflight *s = &a->inflight[i];
        if (s->n > 0 && strcmp(s->client, client) == 0)
            return s;
        if (s->n == 0 && !free_slot)
            free_slot = s;
    }
    if (create && free_slot)
        snprintf(free_slot->client, sizeof(free_slot->client), "%s", client);
    return create ? free_slot : NULL;
}

/* ---- login ------------------------------------------------------------------------- */

typedef struct login_job {
    auth *a;
    char username[USERNAME_MAX + 1]; /* folded; "" when the name was not a valid username */
    char shown[USERNAME_MAX + 1];    /* as typed (truncated), for the audit log */
    char *password;
    char client[48];
    auth_login_cb cb;
    void *ud;
    /* filled on the worker thread */
    int rc;
    opsc_identity id;
    char provider[32];
    char err[256];
} login_job;

static void wipe_password(login_job *j)
{
    if (j->password) {
        secure_zero(j->password, strlen(j->password));
        free(j->password);
        j->password = NULL;
    }
}

static int ask_provider(auth *a, const auth_provider *p, login_job *j)
{
    j->id = (opsc_identity){.size = sizeof(opsc_identity)};
    j->err[0] = '\0';
    if (!p->desc)
        return auth_local_verify(a, j->username, j->password, &j->id, j->err, sizeof(j->err));
    return p->desc->authenticate(p->state, j->username, j->password, &j->id, j->err,
                                 sizeof(j->err));
}

/* Worker thread: the first provider that knows the user decides. */
static void login_work(void *ud)
{
    login_job *j = ud;
    auth *a = j->a;
    j->rc = OPSC_EAUTH;
    if (!j->username[0]) {
        password_verify(j->password, a->dummy_hash); /* same cost as a real attempt */
        return;
    }
    for (size_t i = 0; i < a->nproviders; i++) {
        const auth_provider *p = &a->providers[i];
        int rc = ask_provider(a, p, j);
        if (rc == 0) {
            snprintf(j->provider, sizeof(j->provider), "%s", p->name);
            j->rc = 0;
            return;
        }
        if (rc == OPSC_EAUTH)
            return;
        if (rc != OPSC_ENOENT)
            log_warn("auth", "provider %s failed for a login: %s (%s)", p->name,
                     j->err[0] ? j->err : opsc_strerror(rc), opsc_err_name(rc));
    }
}

static void audit_login(auth *a, const login_job *j, const char *uid, const char *outcome,
                        const char *detail)
{
    audit_event ev = {.actor = j->shown,
                      .actor_id = uid,
                      .client = j->client,
                      .action = "login",
                      .object = j->shown,
                      .outcome = outcome,
                      .status = strcmp(outcome, "success") == 0 ? 200 : 401,
                      .detail = detail};
    audit_record(a->audit, &ev);
}

struct finish {
    login_job *j;
    auth_session *s;
    int result;
    const char *why;
};

static void copy_identity(json_t *u, const opsc_identity *id)
{
    if (id->display_name[0])
        json_object_set_new(u, "display_name", json_string(id->display_name));
    if (id->email[0])
        json_object_set_new(u, "email", json_string(id->email));
    if (role_parse(id->role) > 0)
        json_object_set_new(u, "role", json_string(id->role));
}

static json_t *new_external_user(const login_job *j)
{
    if (role_parse(j->id.role) < 0)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "username", j->username, "display_name",
                     j->id.display_name, "email", j->id.email, "role", j->id.role, "enabled", 1,
                     "provider", j->provider);
}

/* Loop thread, in one write transaction: the user record (created on first
 * login through an external provider, refreshed from it on later ones),
 * last_login_at, and the session. Refusals commit nothing and set result. */
static int finish_login(store_txn *txn, void *ud)
{
    struct finish *f = ud;
    login_job *j = f->j;
    json_t *u = NULL;
    int rc = users_find(txn, j->username, &u);
    f->result = OPSC_EAUTH;
    if (rc == OPSC_ENOENT) {
        u = strcmp(j->provider, "local") == 0 ? NULL : new_external_user(j);
        f->why = u ? NULL : "the provider gave no role";
        rc = u ? users_create(txn, u) : 0;
    } else if (rc == 0) {
        const char *prov = json_string_value(json_object_get(u, "provider"));
        if (!prov || strcmp(prov, j->provider) != 0)
            f->why = "the user belongs to another provider";
        else if (!json_is_true(json_object_get(u, "enabled")))
            f->why = "the user is disabled";
        if (!f->why && strcmp(j->provider, "local") != 0)
            copy_identity(u, &j->id);
        if (!f->why) {
            char now[RFC3339_LEN];
            rfc3339_format(clock_now_ms(), now);
            json_object_set_new(u, "last_login_at", json_string(now));
            rc = users_update(txn, u, 0);
        }
    }
    if (rc == 0 && u && !f->why) {
        rc = auth_issue_session(j->a, txn, u, NULL, f->s);
        f->result = rc;
    }
    json_decref(u);
    return rc;
}

static void release(auth *a, const char *client)
{
    inflight *s = inflight_slot(a, client, false);
    if (s && s->n > 0)
        s->n--;
}

static void login_after(void *ud, int status)
{
    login_job *j = ud;
    auth *a = j->a;
    wipe_password(j);
    a->jobs--;
    auth_session s = {0};
    int result = status < 0 ? status : j->rc;
    if (a->closing && result == 0)
        result = OPSC_ECANCELED;
    if (!a->closing) {
        release(a, j->client);
        if (result == 0) {
            struct finish f = {j, &s, OPSC_EAUTH, NULL};
            int rc = store_write_essential(a->store, finish_login, &f);
            result = rc < 0 ? rc : f.result;
            if (result == OPSC_EAUTH)
                audit_login(a, j, NULL, "failure", f.why);
        } else if (result == OPSC_EAUTH) {
            audit_login(a, j, NULL, "failure", "invalid credentials");
        }
        if (result == OPSC_EAUTH) {
            int64_t now = clock_now_ms();
            ratelimit_failure(a->by_address, j->client, now);
            ratelimit_failure(a->by_user, j->username[0] ? j->username : j->shown, now);
        } else if (result == 0) {
            ratelimit_reset(a->by_user, j->username);
            audit_login(a, j, s.user_id, "success", j->provider);
        }
    }
    j->cb(j->ud, result, result == 0 ? &s : NULL);
    auth_session_clear(&s);
    free(j);
    auth_maybe_free(a);
}

static int64_t throttled_for(auth *a, const char *user, const char *client)
{
    int64_t now = clock_now_ms();
    int64_t u = ratelimit_check(a->by_user, user, now);
    int64_t c = ratelimit_check(a->by_address, client, now);
    int64_t ms = u > c ? u : c;
    if (ms == 0) {
        inflight *s = inflight_slot(a, client, false);
        if (s && s->n >= (unsigned)a->cfg->address_max_inflight)
            ms = 1000;
    }
    return ms;
}

static login_job *new_job(auth *a, const char *username, const char *password, const char *client)
{
    login_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->password = strdup(password))) {
        free(j);
        return NULL;
    }
    j->a = a;
    if (users_fold(username, j->username) < 0)
        j->username[0] = '\0';
    snprintf(j->shown, sizeof(j->shown), "%s", username);
    snprintf(j->client, sizeof(j->client), "%s", client);
    return j;
}

int auth_login(auth *a, const char *username, const char *password, const char *client,
               int64_t *retry_after_s, auth_login_cb cb, void *ud)
{
    if (a->closing || !a->slow)
        return OPSC_ECANCELED;
    login_job *j = new_job(a, username, password, client);
    if (!j)
        return OPSC_ENOMEM;
    int64_t wait_ms = throttled_for(a, j->username[0] ? j->username : j->shown, client);
    inflight *slot = wait_ms ? NULL : inflight_slot(a, client, true);
    if (wait_ms || !slot) {
        *retry_after_s = wait_ms ? (wait_ms + 999) / 1000 : 1;
        audit_login(a, j, NULL, "throttled", "too many attempts");
        wipe_password(j);
        free(j);
        return OPSC_EAGAIN;
    }
    j->cb = cb;
    j->ud = ud;
    int rc = hash_queue_submit(a->slow, login_work, login_after, j);
    if (rc < 0) {
        audit_login(a, j, NULL, "throttled", "login queue full");
        wipe_password(j);
        free(j);
        return rc;
    }
    slot->n++;
    a->jobs++;
    return 0;
}

/* ---- refresh and logout ----------------------------------------------------------------- */

struct refresh {
    auth *a;
    const char *token;
    auth_session *s;
    int result;
    const char *why;
    char user_id[40];
};

static int do_refresh(store_txn *txn, void *ud)
{
    struct refresh *r = ud;
    char hash[TOKEN_HASH_HEX];
    token_hash(r->token, hash);
    const void *val;
    size_t vlen;
    r->result = OPSC_EAUTH;
    int rc = store_kv_get(txn, "refresh_tokens", hash, strlen(hash), &val, &vlen);
    if (rc == OPSC_ENOENT) {
        r->why = "unknown or revoked refresh token";
        return 0;
    }
    json_t *v = rc == 0 ? json_loadb(val, vlen, 0, NULL) : NULL;
    if (rc < 0 || !v)
        return rc < 0 ? rc : OPSC_ECORRUPT;
    const char *family = json_string_value(json_object_get(v, "family"));
    const char *uid = json_string_value(json_object_get(v, "user_id"));
    snprintf(r->user_id, sizeof(r->user_id), "%s", uid ? uid : "");
    json_t *u = NULL;
    if (json_is_true(json_object_get(v, "used"))) {
        r->why = "refresh token reused: its session family is revoked";
        rc = family ? auth_revoke_family(txn, family) : 0;
    } else if (json_integer_value(json_object_get(v, "expires_at_ms")) <= clock_now_ms()) {
        r->why = "refresh token expired";
        rc = store_kv_del(txn, "refresh_tokens", hash, strlen(hash));
    } else if (!uid || users_get(txn, uid, &u) < 0 ||
               !json_is_true(json_object_get(u, "enabled"))) {
        r->why = "the user is disabled or gone";
    } else {
        json_object_set_new(v, "used", json_true());
        char *text = json_dumps(v, JSON_COMPACT);
        rc = text ? store_kv_put(txn, "refresh_tokens", hash, strlen(hash), text, strlen(text))
                  : OPSC_ENOMEM;
        free(text);
        if (rc == 0)
            rc = auth_issue_session(r->a, txn, u, family, r->s);
        r->result = rc;
    }
    json_decref(u);
    json_decref(v);
    return rc;
}

int auth_refresh(auth *a, const char *refresh_token, const char *client, auth_session *s)
{
    struct refresh r = {a, refresh_token, s, OPSC_EAUTH, NULL, ""};
    int rc = token_is(refresh_token, TOKEN_PREFIX_REFRESH)
                 ? store_write_essential(a->store, do_refresh, &r)
                 : 0;
    if (!token_is(refresh_token, TOKEN_PREFIX_REFRESH))
        r.why = "not a refresh token";
    int result = rc < 0 ? rc : r.result;
    audit_event ev = {.actor = result == 0 ? s->username : "",
                      .actor_id = r.user_id[0] ? r.user_id : NULL,
                      .client = client,
                      .action = "token.refresh",
                      .outcome = result == 0 ? "success" : "failure",
                      .status = result == 0 ? 200 : 401,
                      .detail = r.why};
    audit_record(a->audit, &ev);
    return result;
}

struct logout {
    const auth_principal *p;
    const char *refresh;
};

static int do_logout(store_txn *txn, void *ud)
{
    struct logout *l = ud;
    int rc = 0;
    if (l->p->jti[0])
        rc = auth_revoke_access(txn, l->p->jti, l->p->exp);
    if (rc == 0 && l->p->sid[0]) /* the session: its refresh token and its other access tokens */
        rc = auth_revoke_family(txn, l->p->sid);
    if (rc == 0 && l->refresh && token_is(l->refresh, TOKEN_PREFIX_REFRESH)) {
        char hash[TOKEN_HASH_HEX];
        token_hash(l->refresh, hash);
        const void *val;
        size_t vlen;
        json_t *v = NULL;
        if (store_kv_get(txn, "refresh_tokens", hash, strlen(hash), &val, &vlen) == 0)
            v = json_loadb(val, vlen, 0, NULL);
        const char *uid = json_string_value(json_object_get(v, "user_id"));
        const char *fam = json_string_value(json_object_get(v, "family"));
        if (uid && fam && strcmp(uid, l->p->user_id) == 0) /* only one's own sessions */
            rc = auth_revoke_family(txn, fam);
        json_decref(v);
    }
    return rc;
}

int auth_logout(auth *a, const auth_principal *p, const char *refresh_token, const char *client)
{
    struct logout l = {p, refresh_token};
    int rc = store_write_essential(a->store, do_logout, &l);
    audit_event ev = {.actor = p->username,
                      .actor_id = p->user_id,
                      .client = client,
                      .action = "logout",
                      .outcome = rc == 0 ? "success" : "failure",
                      .status = rc == 0 ? 204 : 500};
    audit_record(a->audit, &ev);
    return rc;
}

/* ---- password jobs ------------------------------------------------------------------------- */

typedef struct pw_job {
    auth *a;
    char *old_hash, *old_pw, *new_pw;
    char hash[PASSWORD_HASH_MAX];
    int rc;
    auth_hash_cb cb;
    void *ud;
} pw_job;

static void free_secret(char **s)
{
    if (*s) {
        secure_zero(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

static void pw_work(void *ud)
{
    pw_job *j = ud;
    if (j->old_hash && !password_verify(j->old_pw, j->old_hash)) {
        j->rc = OPSC_EAUTH;
        return;
    }
    j->rc = password_hash(j->new_pw, (unsigned)j->a->cfg->password_cost, j->hash);
}

static void pw_after(void *ud, int status)
{
    pw_job *j = ud;
    auth *a = j->a;
    a->jobs--;
    free_secret(&j->old_hash);
    free_secret(&j->old_pw);
    free_secret(&j->new_pw);
    int rc = status < 0 ? status : j->rc;
    j->cb(j->ud, rc, rc == 0 ? j->hash : NULL);
    secure_zero(j->hash, sizeof(j->hash));
    free(j);
    auth_maybe_free(a);
}

int auth_password_job(auth *a, const char *old_hash, const char *old_password,
                      const char *new_password, auth_hash_cb cb, void *ud)
{
    if (a->closing || !a->slow)
        return OPSC_ECANCELED;
    pw_job *j = calloc(1, sizeof(*j));
    if (!j)
        return OPSC_ENOMEM;
    *j = (pw_job){.a = a, .cb = cb, .ud = ud};
    bool ok = (j->new_pw = strdup(new_password)) != NULL;
    if (ok && old_hash) {
        j->old_hash = strdup(old_hash);
        j->old_pw = strdup(old_password ? old_password : "");
        ok = j->old_hash && j->old_pw;
    }
    int rc = ok ? hash_queue_submit(a->slow, pw_work, pw_after, j) : OPSC_ENOMEM;
    if (rc < 0) {
        free_secret(&j->old_hash);
        free_secret(&j->old_pw);
        free_secret(&j->new_pw);
        free(j);
        return rc;
    }
    a->jobs++;
    return 0;
}
