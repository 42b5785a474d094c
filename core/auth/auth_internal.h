/* auth_internal.h - the identity service's state, shared by auth.c, hook.c, session.c, local.c,
 * tokens.c. */
#ifndef OPSC_AUTH_INTERNAL_H
#define OPSC_AUTH_INTERNAL_H

#include "auth.h"
#include "ratelimit.h"
#include "reccache.h"

#define AUTH_MAX_PROVIDERS 8
#define AUTH_MAX_INFLIGHT  256  /* distinct addresses with a login in progress */
#define AUTH_TOKEN_CACHE   512  /* verified access tokens remembered (hook.c) */
#define AUTH_RECORD_CACHE  1024 /* parsed user and API token records (reccache.h) */

/* An access token that passed every check, so the next request carrying it
 * skips the signature and claim checks (not the store lookups). */
typedef struct verified_token {
    char *text;
    size_t len;
    access_claims claims;
} verified_token;

/* An API token's SHA-256, so a known token is not hashed again. */
typedef struct hashed_token {
    char text[TOKEN_TEXT_MAX];
    char hash[TOKEN_HASH_HEX];
} hashed_token;

typedef struct auth_provider {
    char name[32];
    const opsc_auth_provider *desc; /* NULL: the built-in local provider */
    void *state;
} auth_provider;

typedef struct inflight {
    char client[48];
    unsigned n;
} inflight;

struct auth {
    uv_loop_t *loop;
    store *store;
    plugin_host *plugins;
    audit *audit;
    const struct auth_cfg *cfg;
    const char *data_dir;
    uint8_t jwt_key[64];
    size_t jwt_key_len;
    access_key key;
    char dummy_hash[PASSWORD_HASH_MAX];
    ratelimit *by_user, *by_address;
    inflight inflight[AUTH_MAX_INFLIGHT];
    hash_queue *slow;
    auth_provider providers[AUTH_MAX_PROVIDERS];
    size_t nproviders;
    verified_token verified[AUTH_TOKEN_CACHE];
    hashed_token hashed[AUTH_TOKEN_CACHE];
    reccache *records;
    uv_timer_t sweep_timer;
    unsigned jobs; /* slow jobs submitted and not yet answered */
    bool closing;
    void (*on_closed)(void *ud);
    void *on_closed_ud;
    bool timer_closed;
    bool verifies_for_plugins; /* plugin_host_set_local_verify(a) was done: undone at free */
};

/* Expired refresh tokens and revoked access tokens are swept hourly. */
void auth_sessions_start_sweep(auth *a);
/* Revocation helpers (tokens.c), inside a write transaction. */
int auth_revoke_family(store_txn *txn, const char *family);
int auth_revoke_access(store_txn *txn, const char *jti, int64_t exp_s);
int auth_access_revoked(store_txn *txn, const char *jti, bool *revoked);
int auth_session_revoked(store_txn *txn, const char *sid, bool *revoked);

/* Free `a` once it is closing, its timer closed and no job is pending. */
void auth_maybe_free(auth *a);

#endif
