/* auth.c - the identity service: signing key, limiters, provider chain, first admin, lifecycle. */
#include "auth_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <opsc/errors.h>

#include "b64.h"
#include "log.h"
#include "plugin_host.h"
#include "util.h"

#define BOOTSTRAP_PASSWORD_FILE "initial-admin-password"

static int join_default(char *buf, size_t n, const char *configured, const char *dir,
                        const char *name)
{
    if (configured && *configured)
        return snprintf(buf, n, "%s", configured) < (int)n ? 0 : OPSC_E2BIG;
    return fs_join(buf, n, dir, name);
}

/* A secret file must not be readable by others: refuse it rather than use a
 * key someone else may have copied. */
static int check_private(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    if (st.st_mode & 077) {
        snprintf(err, errlen, "%s is accessible by group or others (mode %04o): chmod 600 it", path,
                 (unsigned)(st.st_mode & 07777));
        return OPSC_EACCES;
    }
    return 0;
}

static int load_key_file(auth *a, const char *path, char *err, size_t errlen)
{
    int rc = check_private(path, err, errlen);
    if (rc < 0)
        return rc;
    char *text = NULL;
    size_t len = 0;
    rc = fs_read_file(path, 4096, &text, &len);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read signing key %s: %s", path, opsc_strerror(rc));
        return rc;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
    size_t n = 0;
    if (len > B64_LEN(sizeof(a->jwt_key)) || b64_decode(text, len, a->jwt_key, &n) < 0 ||
        n < ACCESS_KEY_MIN) {
        snprintf(err, errlen, "signing key %s is not base64 of at least %d bytes", path,
                 ACCESS_KEY_MIN);
        rc = OPSC_EINVAL;
    }
    secure_zero(text, len);
    free(text);
    a->jwt_key_len = n;
    return rc;
}

static int create_key_file(auth *a, const char *path, char *err, size_t errlen)
{
    a->jwt_key_len = 32;
    int rc = rand_bytes(a->jwt_key, a->jwt_key_len);
    char text[B64_LEN(32) + 2];
    size_t n = b64_encode(a->jwt_key, a->jwt_key_len, text);
    text[n++] = '\n';
    if (rc == 0)
        rc = fs_write_file(path, text, n, 0600);
    secure_zero(text, sizeof(text));
    if (rc < 0)
        snprintf(err, errlen, "cannot create signing key %s: %s", path, opsc_strerror(rc));
    else
        log_info("auth", "created the access token signing key %s", path);
    return rc;
}

static int load_signing_key(auth *a, char *err, size_t errlen)
{
    const char *secret = a->cfg->jwt_secret;
    if (secret && *secret) {
        size_t n = strlen(secret);
        if (n < ACCESS_KEY_MIN || n > sizeof(a->jwt_key)) {
            snprintf(err, errlen, "[auth] jwt_secret must have %d to %zu bytes", ACCESS_KEY_MIN,
                     sizeof(a->jwt_key));
            return OPSC_EINVAL;
        }
        memcpy(a->jwt_key, secret, n);
        a->jwt_key_len = n;
        return 0;
    }
    char path[4096];
    int rc = join_default(path, sizeof(path), a->cfg->jwt_key_file, a->data_dir, "jwt.key");
    if (rc < 0)
        return rc;
    if (access(path, F_OK) == 0)
        return load_key_file(a, path, err, errlen);
    return create_key_file(a, path, err, errlen);
}

/* ---- provider chain ------------------------------------------------------------- */

static int build_chain(auth *a, char *err, size_t errlen)
{
    char *list = strdup(a->cfg->providers ? a->cfg->providers : "");
    char *save = NULL;
    if (!list)
        return OPSC_ENOMEM;
    for (char *name = strtok_r(list, ", ", &save); name; name = strtok_r(NULL, ", ", &save)) {
        if (a->nproviders == AUTH_MAX_PROVIDERS) {
            snprintf(err, errlen, "[auth] providers lists more than %d providers",
                     AUTH_MAX_PROVIDERS);
            free(list);
            return OPSC_EINVAL;
        }
        const plugin_reg *r = a->plugins ? plugin_host_find(a->plugins, REG_AUTH, name) : NULL;
        auth_provider *p = &a->providers[a->nproviders];
        snprintf(p->name, sizeof(p->name), "%s", name);
        if (r) {
            p->desc = r->desc;
            p->state = r->state;
        } else if (strcmp(name, "local") == 0) {
            log_info("auth", "auth-local plugin not loaded: using the built-in local provider");
        } else {
            log_error("auth",
                      "[auth] providers: '%s' is not loaded (no plugin registered it); "
                      "logins skip it",
                      name);
            continue;
        }
        a->nproviders++;
    }
    free(list);
    if (a->nproviders == 0)
        log_warn("auth", "no auth provider is available: nobody can log in");
    return 0;
}

/* ---- first start ----------------------------------------------------------------- */

static int insert_admin(store_txn *txn, void *ud)
{
    json_t *rec = json_deep_copy(ud);
    int rc = rec ? users_create(txn, rec) : OPSC_ENOMEM;
    json_decref(rec);
    return rc;
}

static int bootstrap_password(auth *a, char *pw, size_t n, bool *generated, char *err,
                              size_t errlen)
{
    const char *env = getenv("OPSC_BOOTSTRAP_ADMIN_PASSWORD");
    *generated = !env;
    if (env) {
        static const char *const words[] = {"admin", "Administrator", NULL};
        char why[384] = "";
        int rc = auth_password_check(a, env, words, why, sizeof(why));
        if (rc < 0 || strlen(env) >= n) {
            snprintf(err, errlen, "OPSC_BOOTSTRAP_ADMIN_PASSWORD: %s", rc < 0 ? why : "too long");
            return OPSC_EINVAL;
        }
        snprintf(pw, n, "%s", env);
        unsetenv("OPSC_BOOTSTRAP_ADMIN_PASSWORD"); /* no child inherits it */
        return 0;
    }
    uint8_t raw[18];
    int rc = rand_bytes(raw, sizeof(raw));
    if (rc == 0)
        b64url_encode(raw, sizeof(raw), pw); /* 24 characters */
    secure_zero(raw, sizeof(raw));
    return rc;
}

static int bootstrap_admin(auth *a, char *err, size_t errlen)
{
    char pw[PASSWORD_MAX_LEN + 1], hash[PASSWORD_HASH_MAX];
    bool generated;
    int rc = bootstrap_password(a, pw, sizeof(pw), &generated, err, errlen);
    if (rc == 0)
        rc = password_hash(pw, (unsigned)a->cfg->password_cost, hash);
    char path[4096] = "";
    if (rc == 0 && generated) {
        rc = fs_join(path, sizeof(path), a->data_dir, BOOTSTRAP_PASSWORD_FILE);
        if (rc == 0)
            rc = fs_write_file(path, pw, strlen(pw), 0600);
        if (rc < 0)
            snprintf(err, errlen, "cannot write %s: %s", path, opsc_strerror(rc));
    }
    secure_zero(pw, sizeof(pw));
    if (rc < 0)
        return rc;
    char now[RFC3339_LEN];
    rfc3339_format(clock_now_ms(), now);
    json_t *rec =
        json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s}", "username", "admin", "display_name",
                  "Administrator", "email", "", "role", "admin", "enabled", 1, "provider", "local",
                  "password_hash", hash, "password_changed_at", now);
    rc = rec ? store_write(a->store, insert_admin, rec) : OPSC_ENOMEM;
    json_decref(rec);
    secure_zero(hash, sizeof(hash));
    if (rc < 0) {
        snprintf(err, errlen, "cannot create the first admin: %s", opsc_strerror(rc));
        return rc;
    }
    if (generated)
        log_warn("auth",
                 "first start: created user 'admin'; its password is in %s (read it, "
                 "then delete the file)",
                 path);
    else
        log_info("auth", "first start: created user 'admin' with OPSC_BOOTSTRAP_ADMIN_PASSWORD");
    return 0;
}

static int check_empty(store_txn *txn, void *ud)
{
    return users_empty(txn, ud);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static int open_limiters(auth *a)
{
    ratelimit_opts o = {
        .free_failures = (unsigned)a->cfg->user_free_failures,
        .base_delay_ms = a->cfg->lockout_base_ms,
        .max_delay_ms = a->cfg->lockout_max_ms < a->cfg->lockout_base_ms ? a->cfg->lockout_base_ms
                                                                         : a->cfg->lockout_max_ms,
        .forget_after_ms = 15 * 60 * 1000,
        .max_entries = 10000,
    };
    int rc = ratelimit_new(&a->by_user, &o);
    o.free_failures = (unsigned)a->cfg->address_free_failures;
    if (rc == 0)
        rc = ratelimit_new(&a->by_address, &o);
    return rc;
}

int auth_open(auth **out, const auth_deps *deps, char *err, size_t errlen)
{
    auth *a = calloc(1, sizeof(*a));
    if (!a)
        return OPSC_ENOMEM;
    a->loop = deps->loop;
    a->store = deps->store;
    a->plugins = deps->plugins;
    a->audit = deps->audit;
    a->cfg = deps->cfg;
    a->data_dir = deps->data_dir;
    a->key.issuer = a->cfg->issuer;
    a->key.key = a->jwt_key;
    uv_timer_init(a->loop, &a->sweep_timer);
    a->sweep_timer.data = a;
    int rc = load_signing_key(a, err, errlen);
    a->key.len = a->jwt_key_len;
    if (rc == 0)
        rc = password_dummy_setting((unsigned)a->cfg->password_cost, a->dummy_hash);
    if (rc == 0)
        rc = open_limiters(a);
    if (rc == 0)
        rc = reccache_new(&a->records, AUTH_RECORD_CACHE);
    if (rc == 0)
        rc = hash_queue_new(&a->slow, a->loop, (unsigned)a->cfg->hash_workers,
                            (unsigned)a->cfg->hash_queue);
    if (rc == 0)
        rc = build_chain(a, err, errlen);
    bool empty = false;
    if (rc == 0)
        rc = store_read(a->store, check_empty, &empty);
    if (rc == 0 && empty)
        rc = bootstrap_admin(a, err, errlen);
    if (rc == 0 && a->plugins) {
        plugin_host_set_local_verify(a->plugins, auth_local_verify, a);
        a->verifies_for_plugins = true;
    }
    if (rc < 0) {
        if (!*err)
            snprintf(err, errlen, "auth: %s", opsc_strerror(rc));
        auth_close(a, NULL, NULL);
        return rc;
    }
    auth_sessions_start_sweep(a);
    *out = a;
    return 0;
}

void auth_maybe_free(auth *a)
{
    if (!a->closing || !a->timer_closed || a->jobs > 0)
        return;
    /* only then: after a failed open the core frees the plugin host before this runs */
    if (a->verifies_for_plugins)
        plugin_host_set_local_verify(a->plugins, NULL, NULL);
    ratelimit_free(a->by_user);
    ratelimit_free(a->by_address);
    reccache_free(a->records);
    for (size_t i = 0; i < AUTH_TOKEN_CACHE; i++) {
        if (a->verified[i].text)
            secure_zero(a->verified[i].text, a->verified[i].len);
        free(a->verified[i].text);
    }
    secure_zero(a->hashed, sizeof(a->hashed));
    void (*cb)(void *) = a->on_closed;
    void *ud = a->on_closed_ud;
    secure_zero(a->jwt_key, sizeof(a->jwt_key));
    free(a);
    if (cb)
        cb(ud);
}

static void on_timer_closed(uv_handle_t *h)
{
    auth *a = h->data;
    a->timer_closed = true;
    auth_maybe_free(a);
}

/* Waiting slow jobs are answered OPSC_ECANCELED now; running ones still read
 * the store and the providers, so `a` lives until they are answered. */
void auth_close(auth *a, void (*on_closed)(void *ud), void *ud)
{
    if (!a) {
        if (on_closed)
            on_closed(ud);
        return;
    }
    a->closing = true;
    a->on_closed = on_closed;
    a->on_closed_ud = ud;
    hash_queue_close(a->slow);
    a->slow = NULL;
    uv_close((uv_handle_t *)&a->sweep_timer, on_timer_closed);
}

audit *auth_audit(auth *a)
{
    return a->audit;
}

hash_queue *auth_slow_queue(auth *a)
{
    return a->slow;
}

store *auth_store(auth *a)
{
    return a->store;
}

int auth_password_cost(auth *a)
{
    return (int)a->cfg->password_cost;
}

int auth_password_check(auth *a, const char *password, const char *const *words, char *err,
                        size_t errlen)
{
    return password_policy_check(password, (int)a->cfg->password_min_score, words, err, errlen);
}

const access_key *auth_access_key(auth *a)
{
    return &a->key;
}
