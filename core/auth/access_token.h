/* access_token.h - access tokens: HS256 JWTs issued and verified over libjwt, with our own checks.
 *
 * Debian 12's libjwt (1.10) verifies the signature of whatever algorithm the
 * token's header names and checks no claim. So verification here pins the
 * algorithm before and after libjwt looks at it (the header must say
 * exactly {"alg":"HS256"} with an optional "typ":"JWT"; "none", HS384/512,
 * RS*, ES* and unknown header members are refused), then checks every
 * claim's type and value in our code: iss equal to ours, sub, jti and sid
 * non-empty strings, role one of admin/operator/viewer, iat not in the
 * future, exp in the future, nbf (when present) not in the future. A small
 * leeway absorbs clock skew between processes of one host only.
 *
 * Thread: pure functions, any thread. The key is borrowed until return.
 */
#ifndef OPSC_ACCESS_TOKEN_H
#define OPSC_ACCESS_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define ACCESS_KEY_MIN   32   /* bytes of HMAC key we accept */
#define ACCESS_TOKEN_MAX 2048 /* longer bearer text is refused before parsing */
#define ACCESS_LEEWAY_S  5    /* seconds of clock skew tolerated on iat and nbf */
#define ACCESS_JTI_LEN   33   /* 32 hex characters + NUL */

typedef struct access_key {
    const uint8_t *key;
    size_t len;
    const char *issuer; /* the iss we write and require */
} access_key;

typedef struct access_claims {
    char sub[128]; /* the user's id */
    char sid[40];  /* the session: the family of refresh tokens it was issued in */
    char role[16];
    char jti[ACCESS_JTI_LEN];
    int64_t iat, exp, nbf; /* seconds since the epoch; nbf 0 when absent */
} access_claims;

/* Issue a token for `sub` with `role` in session `sid` (its refresh token
 * family: revoking the session revokes it), valid `ttl_s` seconds from
 * `now_s`. Fills claims (with a fresh random jti) when not NULL. *out is
 * heap text (free()). 0, OPSC_EINVAL, OPSC_ENOMEM or OPSC_ECRYPTO. */
int access_token_issue(const access_key *k, const char *sub, const char *role, const char *sid,
                       int64_t now_s, int64_t ttl_s, char **out, access_claims *claims);

/* Verify `token` at time `now_s`. 0 and *claims filled, or OPSC_EAUTH with a
 * short reason in `why` (for the debug log; never contains the token). */
int access_token_verify(const access_key *k, const char *token, int64_t now_s,
                        access_claims *claims, char *why, size_t whylen);

#endif
