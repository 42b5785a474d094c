/* login.c - /api/v1/auth: login, refresh, logout, me. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "auth.h"
#include "core.h"
#include "http.h"
#include "identity.h"
#include "rest.h"
#include "session_cookie.h"

static auth *auth_of(http_req *req)
{
    return ((struct opsc_core *)http_req_app(req))->auth;
}

/* ---- cookie mode (browser sessions, session_cookie.h) --------------------------------------- */

static int64_t refresh_ttl_s(http_req *req)
{
    return ((struct opsc_core *)http_req_app(req))->cfg.auth.refresh_ttl_ms / 1000;
}

/* In cookie mode the refresh token goes into the cookie and leaves the body. */
static json_t *cookie_mode_session(http_req *req, json_t *body, const auth_session *s)
{
    if (body && session_cookie_wanted(req)) {
        session_cookie_set(req, s->refresh_token, refresh_ttl_s(req));
        json_object_del(body, "refresh_token");
    }
    return body;
}

/* The refresh token of a request: the body's, else in cookie mode the cookie's (NULL when
 * there is none). *refused after a 403: cookie mode without a same-origin Origin. */
static const char *cookie_mode_token(http_req *req, const char *body_token, char *buf, size_t n,
                                     bool *refused)
{
    *refused = false;
    if (body_token || !session_cookie_wanted(req))
        return body_token;
    if (!session_cookie_origin_ok(req)) {
        *refused = true;
        return NULL;
    }
    return session_cookie_token(req, buf, n) ? buf : NULL;
}

/* A cookie whose session ended is expired on the client too. */
static void cookie_mode_end(http_req *req)
{
    if (session_cookie_wanted(req))
        session_cookie_set(req, NULL, 0);
}

/* ---- login, refresh, logout ------------------------------------------------------------------ */

/* Exactly the shape clients rely on (cookie mode moves refresh_token into the cookie). */
static void respond_session(http_req *req, auth_session *s)
{
    json_t *body = json_pack("{s:s, s:s, s:s, s:I}", "access_token", s->access_token,
                             "refresh_token", s->refresh_token, "token_type", "Bearer",
                             "expires_in", (json_int_t)s->expires_in);
    body = cookie_mode_session(req, body, s);
    http_set_header(req, "Cache-Control", "no-store");
    if (body)
        http_respond_json(req, 200, body);
    else
        http_respond_opsc_error(req, OPSC_ENOMEM, "out of memory");
}

static void retry_after(http_req *req, int64_t seconds)
{
    char v[32];
    snprintf(v, sizeof(v), "%lld", (long long)(seconds > 0 ? seconds : 1));
    http_set_header(req, "Retry-After", v);
}

static void login_done(void *ud, int status, auth_session *s)
{
    http_req *req = ud;
    if (status == 0) {
        respond_session(req, s);
    } else if (status == OPSC_EAUTH) {
        http_respond_error(req, 401, "invalid_credentials", NULL, "invalid username or password");
    } else if (status == OPSC_ECANCELED) {
        retry_after(req, 5);
        http_respond_error(req, 503, "unavailable", NULL, "the server is stopping");
    } else {
        http_respond_opsc_error(req, status, "login failed: %s", opsc_strerror(status));
    }
    http_req_unref(req);
}

static int login(http_req *req)
{
    json_t *body = rest_body(req);
    if (!body)
        return HTTP_DONE;
    json_t *u = json_object_get(body, "username"), *p = json_object_get(body, "password");
    if (!json_is_string(u) || !json_is_string(p) || json_string_length(u) == 0 ||
        json_string_length(u) > 256 || json_string_length(p) > 4096) {
        http_respond_error(req, 400, "bad_request", NULL,
                           "username and password are required strings");
        return HTTP_DONE;
    }
    int64_t wait_s = 0;
    http_req_ref(req);
    int rc = auth_login(auth_of(req), json_string_value(u), json_string_value(p),
                        http_req_client(req), &wait_s, login_done, req);
    rest_wipe_body(req); /* the job has its own copy of the password */
    if (rc == 0)
        return HTTP_ASYNC;
    http_req_unref(req);
    if (rc == OPSC_EAGAIN) {
        retry_after(req, wait_s);
        http_respond_error(req, 429, "too_many_requests", NULL,
                           "too many login attempts: retry in %lld s", (long long)wait_s);
    } else if (rc == OPSC_EBUSY || rc == OPSC_ECANCELED) {
        rest_busy(req, "too many logins in progress");
    } else {
        http_respond_opsc_error(req, rc, "login failed: %s", opsc_strerror(rc));
    }
    return HTTP_DONE;
}

static int refresh(http_req *req)
{
    json_t *body = rest_body(req);
    if (!body)
        return HTTP_DONE;
    char cookie[TOKEN_TEXT_MAX];
    bool refused;
    const char *tok =
        cookie_mode_token(req, json_string_value(json_object_get(body, "refresh_token")), cookie,
                          sizeof(cookie), &refused);
    if (refused)
        return HTTP_DONE;
    if (!tok) {
        if (session_cookie_wanted(req))
            http_respond_error(req, 401, "invalid_token", NULL, "no session cookie");
        else
            http_respond_error(req, 400, "bad_request", NULL, "refresh_token is required");
        return HTTP_DONE;
    }
    auth_session s = {0};
    int rc = auth_refresh(auth_of(req), tok, http_req_client(req), &s);
    rest_wipe_body(req);
    explicit_bzero(cookie, sizeof(cookie));
    if (rc != 0)
        cookie_mode_end(req);
    if (rc == 0)
        respond_session(req, &s);
    else if (rc == OPSC_EAUTH)
        http_respond_error(req, 401, "invalid_token", NULL,
                           "the refresh token is invalid, expired or revoked");
    else
        http_respond_opsc_error(req, rc, "refresh failed: %s", opsc_strerror(rc));
    auth_session_clear(&s);
    return HTTP_DONE;
}

static int logout(http_req *req)
{
    size_t len = 0;
    const char *raw = http_req_body(req, &len); /* the body is optional here */
    json_t *body = len ? json_loadb(raw, len, 0, NULL) : NULL;
    char cookie[TOKEN_TEXT_MAX];
    bool refused;
    const char *tok =
        cookie_mode_token(req, json_string_value(json_object_get(body, "refresh_token")), cookie,
                          sizeof(cookie), &refused);
    int rc =
        refused ? 0 : auth_logout(auth_of(req), auth_principal_of(req), tok, http_req_client(req));
    json_decref(body);
    rest_wipe_body(req);
    explicit_bzero(cookie, sizeof(cookie));
    if (refused)
        return HTTP_DONE;
    cookie_mode_end(req);
    if (rc == 0)
        http_respond_empty(req, 204);
    else
        http_respond_opsc_error(req, rc, "logout failed: %s", opsc_strerror(rc));
    return HTTP_DONE;
}

struct me {
    const char *id;
    json_t *user;
};

static int load_me(store_txn *txn, void *ud)
{
    struct me *m = ud;
    return users_get(txn, m->id, &m->user);
}

static int me(http_req *req)
{
    const auth_principal *p = auth_principal_of(req);
    struct me m = {p->user_id, NULL};
    int rc = store_read(auth_store(auth_of(req)), load_me, &m);
    if (rc < 0) {
        rest_error(req, rc, "user");
        return HTTP_DONE;
    }
    /* A principal without a token id or a JWT id came from a client certificate. */
    const char *by = p->token_id[0] ? "api_token"
                     : p->jti[0]    ? "access_token"
                                    : "client_certificate";
    json_t *body = json_pack("{s:o, s:s, s:s, s:s?}", "user", users_public(m.user),
                             "effective_role", role_name(p->role), "authenticated_by", by,
                             "token_id", p->token_id[0] ? p->token_id : NULL);
    json_decref(m.user);
    http_respond_json(req, 200, body);
    return HTTP_DONE;
}

#define SESSION_SCHEMA                                                                             \
    "{\"type\":\"object\",\"required\":[\"access_token\",\"token_type\","                          \
    "\"expires_in\"],\"properties\":{\"access_token\":{\"type\":\"string\"},"                      \
    "\"refresh_token\":{\"type\":\"string\"},\"token_type\":{\"type\":\"string\","                 \
    "\"enum\":[\"Bearer\"]},\"expires_in\":{\"type\":\"integer\"}}}"

static const http_route routes[] = {
    {"POST", "/api/v1/auth/login", ROLE_PUBLIC, login, HTTP_ROUTE_JSON_BODY, "auth",
     "Log in with a username and password; answers an access and a refresh token (with the "
     "header X-OPSC-Session: cookie, the refresh token comes as an HttpOnly SameSite=Strict "
     "cookie instead of in the body)",
     "{\"type\":\"object\",\"required\":[\"username\",\"password\"],\"properties\":{"
     "\"username\":{\"type\":\"string\"},\"password\":{\"type\":\"string\",\"writeOnly\":true}}}",
     SESSION_SCHEMA},
    {"POST", "/api/v1/auth/refresh", ROLE_PUBLIC, refresh, HTTP_ROUTE_JSON_BODY, "auth",
     "Exchange a refresh token for a new pair (the old one is spent); with X-OPSC-Session: "
     "cookie and a same-origin Origin, the token comes from the session cookie",
     "{\"type\":\"object\",\"properties\":{"
     "\"refresh_token\":{\"type\":\"string\"}}}",
     SESSION_SCHEMA},
    {"POST", "/api/v1/auth/logout", ROLE_VIEWER, logout, 0, "auth",
     "Revoke the calling access token and, when given, its refresh token (in cookie mode: the "
     "session cookie's, and the cookie is expired)",
     "{\"type\":\"object\",\"properties\":{\"refresh_token\":{\"type\":\"string\"}}}", NULL, 204},
    {"GET", "/api/v1/auth/me", ROLE_VIEWER, me, 0, "auth",
     "The calling user and how it authenticated", NULL,
     "{\"type\":\"object\",\"properties\":{\"user\":{\"type\":\"object\"},"
     "\"effective_role\":{\"type\":\"string\"},\"authenticated_by\":{\"type\":\"string\"}}}"},
};

int api_login_register(struct opsc_core *c)
{
    return http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
}
