/* hook.c - the HTTP auth hook (bearer token -> principal, role check) and the audit completion
 * hook. */
#include "auth_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include <opsc/errors.h>

#include "log.h"
#include "util.h"

/* ---- verifying a bearer token ------------------------------------------------------- */

struct lookup {
    auth *a;
    const char *hash; /* API token: its hash; NULL for a JWT */
    const char *jti;  /* JWT: its id */
    const char *sid;  /* JWT: its session */
    const char *sub;  /* JWT: the user id */
    const char *name; /* client certificate: the (folded) username its CN names */
    auth_principal *p;
    const char *why;
};

static int load_user(store_txn *txn, const char *id, struct lookup *l)
{
    json_t *u = NULL; /* borrowed from the record cache */
    int rc = reccache_get(l->a->records, txn, "users", id, &u);
    if (rc == OPSC_ENOENT) {
        l->why = "user no longer exists";
        return OPSC_EAUTH;
    }
    if (rc < 0)
        return rc;
    int role = role_parse(json_string_value(json_object_get(u, "role")));
    const char *name = json_string_value(json_object_get(u, "username"));
    if (!json_is_true(json_object_get(u, "enabled")) || role < 0 || !name) {
        l->why = "user is disabled";
        return OPSC_EAUTH;
    }
    snprintf(l->p->user_id, sizeof(l->p->user_id), "%s", id);
    snprintf(l->p->username, sizeof(l->p->username), "%s", name);
    /* An API token's role caps the user's current role; never raises it. */
    l->p->role = l->p->role ? (role < l->p->role ? role : l->p->role) : role;
    return 0;
}

static int check_api_token(store_txn *txn, struct lookup *l)
{
    char id[40];
    json_t *t = NULL; /* borrowed from the record cache */
    int rc = store_index_get(txn, "tokens_by_hash", l->hash, id);
    if (rc == 0)
        rc = reccache_get(l->a->records, txn, "tokens", id, &t);
    if (rc == OPSC_ENOENT) {
        l->why = "unknown or revoked API token";
        return OPSC_EAUTH;
    }
    if (rc < 0)
        return rc;
    if (json_object_get(t, "revoked_at")) { /* its user was disabled: never again */
        l->why = "API token revoked";
        return OPSC_EAUTH;
    }
    const char *exp = json_string_value(json_object_get(t, "expires_at"));
    const char *uid = json_string_value(json_object_get(t, "user_id"));
    int64_t exp_ms = 0;
    l->p->role = role_parse(json_string_value(json_object_get(t, "role")));
    if (!uid || l->p->role <= 0 || (exp && rfc3339_parse(exp, &exp_ms) < 0))
        return OPSC_ECORRUPT;
    if (exp && exp_ms <= clock_now_ms()) {
        l->why = "API token expired";
        return OPSC_EAUTH;
    }
    snprintf(l->p->token_id, sizeof(l->p->token_id), "%s", id);
    char owner[40]; /* `t` is borrowed: the next cache lookup may drop it */
    snprintf(owner, sizeof(owner), "%s", uid);
    return load_user(txn, owner, l);
}

/* A client certificate verified by the TLS handshake names its user by CN. */
static int check_cert_user(store_txn *txn, struct lookup *l)
{
    char id[40];
    int rc = store_index_get(txn, "users_by_name", l->name, id);
    if (rc == OPSC_ENOENT) {
        l->why = "the client certificate's CN names no user";
        return OPSC_EAUTH;
    }
    return rc < 0 ? rc : load_user(txn, id, l);
}

static int lookup_txn(store_txn *txn, void *ud)
{
    struct lookup *l = ud;
    if (l->name)
        return check_cert_user(txn, l);
    if (l->hash)
        return check_api_token(txn, l);
    bool revoked = false, ended = false;
    int rc = auth_access_revoked(txn, l->jti, &revoked);
    if (rc == 0)
        rc = auth_session_revoked(txn, l->sid, &ended);
    if (rc == 0 && (revoked || ended)) {
        l->why = revoked ? "access token revoked (logged out)"
                         : "session ended (logout, password change, disabled user or reused "
                           "refresh token)";
        return OPSC_EAUTH;
    }
    return rc < 0 ? rc : load_user(txn, l->sub, l);
}

/* ---- verified access tokens ---------------------------------------------------------- */

/* Slots are chosen by the payload (not secret); the whole token is then
 * compared in constant time, so timing tells nothing about signatures. */
static verified_token *verified_slot(auth *a, const char *token, size_t len)
{
    const char *p = memchr(token, '.', len);
    uint64_t h = 1469598103934665603ULL;
    for (p = p ? p + 1 : token; *p && *p != '.'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return &a->verified[h % AUTH_TOKEN_CACHE];
}

/* Signature and claims of `token`, from the cache or checked now. */
static int check_access_token(auth *a, const char *token, access_claims *c, char *why,
                              size_t whylen)
{
    size_t len = strlen(token);
    int64_t now = clock_now_ms() / 1000;
    verified_token *v = verified_slot(a, token, len);
    if (v->text && v->len == len && CRYPTO_memcmp(v->text, token, len) == 0 &&
        v->claims.exp > now) {
        *c = v->claims;
        return 0;
    }
    int rc = access_token_verify(&a->key, token, now, c, why, whylen);
    char *copy = rc == 0 ? strdup(token) : NULL;
    if (copy) {
        free(v->text);
        *v = (verified_token){copy, len, *c};
    }
    return rc;
}

/* The SHA-256 of an API token, remembered per token text (compared in
 * constant time); the slot comes from the token's last characters. */
static void api_token_hash(auth *a, const char *token, char hash[TOKEN_HASH_HEX])
{
    size_t len = strlen(token);
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = len > 8 ? len - 8 : 0; i < len; i++)
        h = (h ^ (unsigned char)token[i]) * 1099511628211ULL;
    hashed_token *e = &a->hashed[h % AUTH_TOKEN_CACHE];
    if (strlen(e->text) == len && CRYPTO_memcmp(e->text, token, len) == 0) {
        memcpy(hash, e->hash, TOKEN_HASH_HEX);
        return;
    }
    token_hash(token, hash);
    if (len < sizeof(e->text)) {
        memcpy(e->text, token, len + 1);
        memcpy(e->hash, hash, TOKEN_HASH_HEX);
    }
}

/* 0 and *p, OPSC_EAUTH (why says which check failed), or a store error. */
static int verify_bearer(auth *a, const char *token, auth_principal *p, char *why, size_t whylen)
{
    memset(p, 0, sizeof(*p));
    struct lookup l = {.a = a, .p = p};
    char hash[TOKEN_HASH_HEX];
    access_claims c;
    int rc;
    if (token_is(token, TOKEN_PREFIX_API)) {
        api_token_hash(a, token, hash);
        l.hash = hash;
    } else if (check_access_token(a, token, &c, why, whylen) != 0) {
        return OPSC_EAUTH;
    } else {
        l.jti = c.jti;
        l.sid = c.sid;
        l.sub = c.sub;
        snprintf(p->jti, sizeof(p->jti), "%s", c.jti);
        snprintf(p->sid, sizeof(p->sid), "%s", c.sid);
        p->exp = c.exp;
    }
    rc = store_read(a->store, lookup_txn, &l);
    snprintf(why, whylen, "%s", l.why ? l.why : "store error");
    return rc;
}

/* The user a verified client certificate names; OPSC_EAUTH when none. */
static int verify_cert(auth *a, const char *cn, auth_principal *p, char *why, size_t whylen)
{
    char name[USERNAME_MAX + 1];
    memset(p, 0, sizeof(*p));
    if (users_fold(cn, name) < 0) {
        snprintf(why, whylen, "the client certificate's CN is not a username");
        return OPSC_EAUTH;
    }
    struct lookup l = {.a = a, .p = p, .name = name};
    int rc = store_read(a->store, lookup_txn, &l);
    snprintf(why, whylen, "%s", l.why ? l.why : "store error");
    return rc;
}

/* "Bearer <token>", scheme case-insensitive; NULL when malformed. */
static const char *bearer(const char *h)
{
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

static void unauthorized(http_req *req, const char *msg)
{
    http_set_header(req, "WWW-Authenticate", "Bearer realm=\"opsconductor\"");
    http_respond_error(req, 401, "unauthorized", NULL, "%s", msg);
}

int auth_http_hook(http_req *req, const http_route *route, void *ud)
{
    auth *a = ud;
    const char *h = http_req_header(req, "Authorization");
    const char *tok = bearer(h);
    /* An Authorization header, when sent, says who is calling; else a client certificate may. */
    const char *cn = h ? NULL : http_req_tls_client(req);
    if (route->role == ROLE_PUBLIC && !tok && !cn)
        return 0;
    if (!tok && !cn) {
        unauthorized(req, h ? "Authorization must be 'Bearer <token>'" : "authentication required");
        return 1;
    }
    auth_principal *p = malloc(sizeof(*p));
    char why[96] = "";
    int rc = !p    ? OPSC_ENOMEM
             : tok ? verify_bearer(a, tok, p, why, sizeof(why))
                   : verify_cert(a, cn, p, why, sizeof(why));
    if (rc < 0) {
        free(p);
        if (route->role == ROLE_PUBLIC) /* a stale token must not block login */
            return 0;
        if (rc != OPSC_EAUTH) {
            log_error("auth", "verifying a token: %s", opsc_strerror(rc));
            http_respond_opsc_error(req, rc, "cannot verify the token");
            return 1;
        }
        log_debug("auth", "401 for %s %s: %s", http_req_method(req), http_req_path(req), why);
        unauthorized(req, tok ? "invalid or expired token" : why);
        return 1;
    }
    http_req_set_principal(req, p, free); /* also on a 403: the audit record names who */
    if (p->role < route->role) {
        http_respond_error(req, 403, "forbidden", NULL, "this needs the %s role",
                           role_name(route->role));
        return 1;
    }
    return 0;
}

/* ---- event streams: asked again while they last -------------------------------------- */

static int recheck_txn(store_txn *txn, void *ud)
{
    struct lookup *l = ud;
    if (l->hash) { /* an API token: still there and not revoked, its user enabled */
        json_t *t = NULL;
        int rc = reccache_get(l->a->records, txn, "tokens", l->p->token_id, &t);
        if (rc < 0 || json_object_get(t, "revoked_at"))
            return rc < 0 ? rc : OPSC_EAUTH;
        l->p->role = role_parse(json_string_value(json_object_get(t, "role")));
        char owner[40];
        snprintf(owner, sizeof(owner), "%s", json_string_value(json_object_get(t, "user_id")));
        return load_user(txn, owner, l);
    }
    return lookup_txn(txn, l);
}

int auth_sse_check(void *principal, int role, void *ud)
{
    auth *a = ud;
    const auth_principal *was = principal;
    auth_principal now = *was;
    struct lookup l = {.a = a, .p = &now};
    if (was->token_id[0]) {
        l.hash = "";
    } else if (!was->jti[0]) { /* a client certificate: its user as it is now */
        l.name = was->username;
        now.role = 0;
    } else {
        l.jti = was->jti;
        l.sid = was->sid;
        l.sub = was->user_id;
        now.role = 0; /* load_user sets it from the user as it is now */
    }
    int rc = store_read(a->store, recheck_txn, &l);
    if (rc == OPSC_EAUTH || rc == OPSC_ENOENT || (rc == 0 && now.role < role)) {
        log_info("auth", "event stream of %s closed: %s", was->username,
                 rc == 0 ? "its role no longer allows it"
                 : l.why ? l.why
                         : "token revoked");
        return 1;
    }
    return 0;
}

const auth_principal *auth_principal_of(http_req *req)
{
    return http_req_principal(req);
}

void auth_set_object(http_req *req, const char *object)
{
    auth_principal *p = http_req_principal(req);
    if (p && object)
        snprintf(p->object, sizeof(p->object), "%s", object);
}

/* ---- audit of mutating calls ---------------------------------------------------------- */

static const char *outcome_of(int status)
{
    if (status < 400)
        return "success";
    if (status == 401 || status == 403)
        return "denied";
    return "failure";
}

void auth_http_done(http_req *req, const http_route *route, int status, void *ud)
{
    auth *a = ud;
    const char *m = http_req_method(req);
    if (!route || strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0)
        return;
    if (strncmp(route->pattern, "/api/v1/auth/", 13) == 0)
        return; /* login, refresh and logout write their own, richer records */
    const auth_principal *p = http_req_principal(req);
    char action[160];
    snprintf(action, sizeof(action), "%s %s", m, route->pattern);
    const char *object = p && p->object[0] ? p->object : http_req_param(req, "id");
    audit_event ev = {.actor = p ? p->username : "",
                      .actor_id = p ? p->user_id : NULL,
                      .client = http_req_client(req),
                      .action = action,
                      .object = object,
                      .outcome = outcome_of(status),
                      .status = status};
    audit_record(a->audit, &ev);
}
