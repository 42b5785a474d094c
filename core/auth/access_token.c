/* access_token.c - HS256 access tokens: issue with libjwt, verify with libjwt plus pinned algorithm
 * and claim checks. */
#include "access_token.h"

#include <jansson.h>
#include <jwt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>
#include <opsc/host.h> /* OPSC_PRINTF */

#include "b64.h"
#include "util.h"

static bool role_valid(const char *role)
{
    return strcmp(role, "admin") == 0 || strcmp(role, "operator") == 0 ||
           strcmp(role, "viewer") == 0;
}

int access_token_issue(const access_key *k, const char *sub, const char *role, const char *sid,
                       int64_t now_s, int64_t ttl_s, char **out, access_claims *claims)
{
    if (!k || k->len < ACCESS_KEY_MIN || k->len > INT32_MAX || !sub || !*sub ||
        strlen(sub) >= sizeof(claims->sub) || !role || !role_valid(role) || ttl_s <= 0 || !sid ||
        !*sid || strlen(sid) >= sizeof(claims->sid))
        return OPSC_EINVAL;
    char jti[ACCESS_JTI_LEN];
    if (rand_hex(jti, 16) < 0)
        return OPSC_ECRYPTO;
    json_t *grants = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s}", "sub", sub, "role", role,
                               "iat", (json_int_t)now_s, "exp", (json_int_t)(now_s + ttl_s), "iss",
                               k->issuer, "jti", jti, "sid", sid);
    char *text = grants ? json_dumps(grants, JSON_COMPACT) : NULL;
    json_decref(grants);
    jwt_t *j = NULL;
    int rc = text ? jwt_new(&j) : ENOMEM;
    if (rc == 0)
        rc = jwt_add_grants_json(j, text);
    if (rc == 0)
        rc = jwt_set_alg(j, JWT_ALG_HS256, k->key, (int)k->len);
    char *tok = rc == 0 ? jwt_encode_str(j) : NULL;
    jwt_free(j);
    free(text);
    if (!tok)
        return rc == ENOMEM ? OPSC_ENOMEM : OPSC_ECRYPTO;
    if (claims) {
        memset(claims, 0, sizeof(*claims));
        snprintf(claims->sub, sizeof(claims->sub), "%s", sub);
        snprintf(claims->sid, sizeof(claims->sid), "%s", sid);
        snprintf(claims->role, sizeof(claims->role), "%s", role);
        memcpy(claims->jti, jti, sizeof(jti));
        claims->iat = now_s;
        claims->exp = now_s + ttl_s;
    }
    *out = tok;
    return 0;
}

static int refuse(char *why, size_t whylen, const char *fmt, ...) OPSC_PRINTF(3, 4);
static int refuse(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && whylen)
        vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return OPSC_EAUTH;
}

/* Decode one base64url segment of the token as a JSON object. */
static json_t *segment_json(const char *seg, size_t len)
{
    uint8_t buf[ACCESS_TOKEN_MAX];
    size_t n;
    if (len == 0 || len > sizeof(buf) || b64url_decode(seg, len, buf, &n) < 0)
        return NULL;
    json_t *v = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    if (v && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* The header must be exactly {"alg":"HS256"} plus an optional "typ":"JWT":
 * anything else (another alg, "none", "kid", "jku", "crit"...) is refused
 * before libjwt sees the token. */
static bool header_pinned(const char *token, size_t len)
{
    json_t *h = segment_json(token, len);
    if (!h)
        return false;
    bool ok = json_object_size(h) >= 1;
    const char *key;
    json_t *v;
    json_object_foreach(h, key, v)
    {
        if (strcmp(key, "alg") == 0)
            ok = ok && json_is_string(v) && strcmp(json_string_value(v), "HS256") == 0;
        else if (strcmp(key, "typ") == 0)
            ok = ok && json_is_string(v) && strcmp(json_string_value(v), "JWT") == 0;
        else
            ok = false;
    }
    ok = ok && json_object_get(h, "alg");
    json_decref(h);
    return ok;
}

/* Split into header.payload.signature; only base64url characters allowed. */
static bool split(const char *token, size_t *hlen, const char **payload, size_t *plen)
{
    const char *d1 = strchr(token, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.') || d2[1] == '\0')
        return false;
    for (const char *p = token; *p; p++)
        if (*p != '.' && *p != '-' && *p != '_' && !(*p >= '0' && *p <= '9') &&
            !(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z'))
            return false;
    *hlen = (size_t)(d1 - token);
    *payload = d1 + 1;
    *plen = (size_t)(d2 - d1 - 1);
    return true;
}

static bool copy_string(json_t *claims, const char *name, char *dst, size_t n)
{
    json_t *v = json_object_get(claims, name);
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= n)
        return false;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return true;
}

static bool get_time(json_t *claims, const char *name, int64_t *out, bool required)
{
    json_t *v = json_object_get(claims, name);
    if (!v) {
        *out = 0;
        return !required;
    }
    if (!json_is_integer(v))
        return false;
    *out = json_integer_value(v);
    return true;
}

static int check_claims(const access_key *k, json_t *c, int64_t now, access_claims *out, char *why,
                        size_t whylen)
{
    json_t *iss = json_object_get(c, "iss");
    if (!json_is_string(iss) || strcmp(json_string_value(iss), k->issuer) != 0)
        return refuse(why, whylen, "wrong issuer");
    if (!copy_string(c, "sub", out->sub, sizeof(out->sub)) ||
        !copy_string(c, "jti", out->jti, sizeof(out->jti)) ||
        !copy_string(c, "role", out->role, sizeof(out->role)) || !role_valid(out->role))
        return refuse(why, whylen, "missing or malformed sub, jti or role");
    /* Without its session a token could not be revoked with it (logout,
     * password change, disable): tokens from before sessions are refused. */
    if (!copy_string(c, "sid", out->sid, sizeof(out->sid)))
        return refuse(why, whylen, "missing or malformed sid");
    if (!get_time(c, "iat", &out->iat, true) || !get_time(c, "exp", &out->exp, true) ||
        !get_time(c, "nbf", &out->nbf, false))
        return refuse(why, whylen, "missing or malformed iat, exp or nbf");
    if (out->exp <= now)
        return refuse(why, whylen, "expired");
    if (out->nbf > now + ACCESS_LEEWAY_S)
        return refuse(why, whylen, "not yet valid");
    if (out->iat > now + ACCESS_LEEWAY_S)
        return refuse(why, whylen, "issued in the future");
    return 0;
}

int access_token_verify(const access_key *k, const char *token, int64_t now_s,
                        access_claims *claims, char *why, size_t whylen)
{
    size_t hlen, plen;
    const char *payload;
    if (!token || strlen(token) > ACCESS_TOKEN_MAX || !split(token, &hlen, &payload, &plen))
        return refuse(why, whylen, "malformed token");
    if (!header_pinned(token, hlen))
        return refuse(why, whylen, "algorithm or header not accepted");
    jwt_t *j = NULL;
    if (jwt_decode(&j, token, k->key, (int)k->len) != 0 || !j) {
        jwt_free(j);
        return refuse(why, whylen, "bad signature");
    }
    jwt_alg_t alg = jwt_get_alg(j);
    jwt_free(j);
    if (alg != JWT_ALG_HS256)
        return refuse(why, whylen, "algorithm not accepted");
    json_t *c = segment_json(payload, plen);
    if (!c)
        return refuse(why, whylen, "malformed claims");
    memset(claims, 0, sizeof(*claims));
    int rc = check_claims(k, c, now_s, claims, why, whylen);
    json_decref(c);
    return rc;
}
