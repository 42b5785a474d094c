/* auth.h - identity service: who is calling (the HTTP auth hook), logins, sessions, API tokens.
 *
 * One `auth` per daemon, opened after the store and the plugins. It owns
 * the JWT signing key (generated at first start into <data-dir>/jwt.key,
 * 0600, or [auth] jwt_secret), the login rate limiters, the bounded queue
 * of slow work (password hashes, key checks), the ordered auth-provider
 * chain ([auth] providers), and creates the first admin on an empty store.
 *
 * Every request to a route above ROLE_PUBLIC passes auth_http_hook(): the
 * bearer token (an access JWT or an API token "opsc_at_...") is verified,
 * the user is loaded from the store on every request (so disabling a user
 * or changing its role applies to its very next request), the route's role
 * is checked, and an auth_principal is attached to the request.
 *
 * Thread: loop thread, except auth_local_verify (any thread).
 */
#ifndef OPSC_AUTH_CORE_H
#define OPSC_AUTH_CORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <opsc/auth.h>

#include "access_token.h"
#include "audit.h"
#include "config.h"
#include "http.h"
#include "password.h"
#include "store.h"
#include "token.h"
#include "users.h"

typedef struct auth auth;
typedef struct plugin_host plugin_host;

typedef struct auth_principal {
    char user_id[40];
    char username[USERNAME_MAX + 1];
    int role;                 /* effective: the user's role, capped by an API token's */
    char token_id[40];        /* the API token's id; "" for an access JWT */
    char jti[ACCESS_JTI_LEN]; /* the access JWT's id; "" for an API token */
    char sid[40];             /* the access JWT's session (refresh family); "" for an API token */
    int64_t exp;              /* the access JWT's expiry (s); 0 for an API token */
    char object[80];          /* what a mutating handler acted on, for the audit log */
} auth_principal;

typedef struct auth_deps {
    uv_loop_t *loop;
    store *store;
    plugin_host *plugins; /* may be NULL (no plugins: the built-in local provider) */
    audit *audit;
    const struct auth_cfg *cfg; /* borrowed for the service's lifetime */
    const char *data_dir;
} auth_deps;

/* Open: signing key, limiters, provider chain, first admin. err explains a
 * failure (it never contains a secret). */
int auth_open(auth **out, const auth_deps *deps, char *err, size_t errlen);
/* Cancels queued slow work (callbacks run with OPSC_ECANCELED) and frees
 * once running work is done and the loop has closed the timers; then
 * `on_closed` (may be NULL) runs: only after it may the auth plugins go,
 * since running work calls them on worker threads. */
void auth_close(auth *a, void (*on_closed)(void *ud), void *ud);

/* The HTTP hooks (http_server_set_auth / http_server_set_done), ud = auth. */
int auth_http_hook(http_req *req, const http_route *route, void *ud);
void auth_http_done(http_req *req, const http_route *route, int status, void *ud);

/* http_server_set_sse_check(): 0 while the principal of an event stream may
 * still read it (the token not revoked, its session not ended, the user
 * enabled with a role >= `role`), else 1. ud = auth. */
int auth_sse_check(void *principal, int role, void *ud);

/* The principal of an authenticated request; NULL on public routes without a token. */
const auth_principal *auth_principal_of(http_req *req);
/* Name what a mutating handler acted on (an id), for the audit record. */
void auth_set_object(http_req *req, const char *object);

audit *auth_audit(auth *a);
hash_queue *auth_slow_queue(auth *a);
store *auth_store(auth *a);
int auth_password_cost(auth *a);
/* password_policy_check() with [auth] password_min_score and `words`. */
int auth_password_check(auth *a, const char *password, const char *const *words, char *err,
                        size_t errlen);

/* ---- sessions (session.c) ------------------------------------------------ */

typedef struct auth_session {
    char *access_token; /* heap; auth_session_clear() wipes and frees */
    char refresh_token[TOKEN_TEXT_MAX];
    int64_t expires_in; /* seconds */
    char session[40];   /* the refresh token family: the access token's sid */
    char user_id[40];
    char username[USERNAME_MAX + 1];
} auth_session;
void auth_session_clear(auth_session *s);

/* 0: `s` filled; OPSC_EAUTH: bad credentials, disabled user, no role;
 * OPSC_ECANCELED: the daemon is stopping; other: provider or store failure. */
typedef void (*auth_login_cb)(void *ud, int status, auth_session *s);

/* Log in. Immediate errors (cb never runs): OPSC_EAGAIN throttled
 * (*retry_after_s set), OPSC_EBUSY too many logins in progress (retry
 * after a second). Otherwise `cb` runs later on the loop. Everything is
 * audited here. The password is copied and wiped after use. */
int auth_login(auth *a, const char *username, const char *password, const char *client,
               int64_t *retry_after_s, auth_login_cb cb, void *ud);
/* Exchange a refresh token for a new pair (the old one is spent; spending a
 * spent one revokes its whole family). OPSC_EAUTH when it is unknown,
 * spent, expired, or its user is disabled or gone. */
int auth_refresh(auth *a, const char *refresh_token, const char *client, auth_session *s);
/* Revoke the caller's access token and, when given, its refresh token. */
int auth_logout(auth *a, const auth_principal *p, const char *refresh_token, const char *client);

/* Slow password work on the queue: verify `old_password` against
 * `old_hash` when both are given, then hash `new_password`. cb gets 0 and
 * the new hash, OPSC_EAUTH when the old password is wrong, OPSC_ECANCELED.
 * Immediate OPSC_EBUSY when the queue is full. */
typedef void (*auth_hash_cb)(void *ud, int status, const char *hash);
int auth_password_job(auth *a, const char *old_hash, const char *old_password,
                      const char *new_password, auth_hash_cb cb, void *ud);

/* ---- API tokens (tokens in the store) --------------------------------------- */

/* Create an API token for `p`'s user. *record is the stored record (public
 * view) and `token` the text, shown once. OPSC_EACCES when `role` is above
 * the caller's. expires_at_ms 0: never. */
int auth_token_create(auth *a, const auth_principal *p, const char *name, int role,
                      int64_t expires_at_ms, json_t **record, char token[TOKEN_TEXT_MAX]);
/* The public view of a token record (no hash). */
json_t *auth_token_public(json_t *rec);

/* ---- local users (local.c) ------------------------------------------------------ */

/* opsc_host_api.local_user_verify, with the service as `ud`. Any thread. */
int auth_local_verify(void *ud, const char *username, const char *password, opsc_identity *id,
                      char *err, size_t errlen);

/* ---- internal to the module (shared by its files) ----------------------------------- */

int auth_issue_session(auth *a, store_txn *txn, json_t *user, const char *family, auth_session *s);
const access_key *auth_access_key(auth *a);

#endif
