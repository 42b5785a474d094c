/* test_auth.c - the identity service on a real store: first admin, local verification, logins,
 * sessions, tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "auth.h"
#include "util.h"

#define ADMIN_PW "Admin-Pw-for-tests"

typedef struct fixture {
    char dir[64];
    store *s;
    uv_loop_t loop;
    audit *audit;
    auth *a;
    struct auth_cfg cfg;
} fixture;

static const struct auth_cfg defaults = {
    .providers = "local",
    .issuer = "opsconductor",
    .access_ttl_ms = 900000,
    .refresh_ttl_ms = 7 * 86400000LL,
    .jwt_secret = "",
    .jwt_key_file = "",
    .password_cost = 1,
    .hash_workers = 1,
    .hash_queue = 8,
    .user_free_failures = 2,
    .address_free_failures = 100,
    .lockout_base_ms = 1000,
    .lockout_max_ms = 60000,
    .address_max_inflight = 2,
    .audit_retention_ms = 0,
};

static int open_auth(fixture *f)
{
    auth_deps d = {&f->loop, f->s, NULL, f->audit, &f->cfg, f->dir};
    char err[512] = "";
    int rc = auth_open(&f->a, &d, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "auth_open: %s\n", err);
    return rc;
}

static int setup_with(void **state, const char *bootstrap)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/opsc-test-auth-XXXXXX");
    char err[256];
    store_opts o = {0};
    if (!mkdtemp(f->dir) || store_open(&f->s, f->dir, &o, err, sizeof(err)) < 0)
        return -1;
    uv_loop_init(&f->loop);
    f->cfg = defaults;
    if (bootstrap)
        setenv("OPSC_BOOTSTRAP_ADMIN_PASSWORD", bootstrap, 1);
    else
        unsetenv("OPSC_BOOTSTRAP_ADMIN_PASSWORD");
    if (audit_open(&f->audit, &f->loop, f->s, 0) < 0 || open_auth(f) < 0)
        return -1;
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, ADMIN_PW);
}

static int setup_random(void **state)
{
    return setup_with(state, NULL);
}

static int teardown(void **state)
{
    fixture *f = *state;
    auth_close(f->a, NULL, NULL);
    audit_close(f->audit);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int loop_rc = uv_loop_close(&f->loop);
    store_close(f->s);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 && loop_rc == 0 ? 0 : -1;
}

static void first_start_creates_admin_from_the_environment(void **state)
{
    fixture *f = *state;
    opsc_identity id = {sizeof(id)};
    char err[128];
    assert_int_equal(auth_local_verify(f->a, "admin", ADMIN_PW, &id, err, sizeof(err)), 0);
    assert_string_equal(id.role, "admin");
    assert_string_equal(id.username, "admin");
    assert_null(getenv("OPSC_BOOTSTRAP_ADMIN_PASSWORD")); /* not inherited by children */
    char path[128];
    snprintf(path, sizeof(path), "%s/initial-admin-password", f->dir);
    assert_int_equal(access(path, F_OK), -1);
}

static void first_start_without_environment_writes_a_0600_password_file(void **state)
{
    fixture *f = *state;
    char path[128], *pw = NULL;
    snprintf(path, sizeof(path), "%s/initial-admin-password", f->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(fs_read_file(path, 256, &pw, NULL), 0);
    assert_true(strlen(pw) >= 20);
    opsc_identity id = {sizeof(id)};
    char err[128];
    assert_int_equal(auth_local_verify(f->a, "ADMIN", pw, &id, err, sizeof(err)), 0);
    free(pw);
    snprintf(path, sizeof(path), "%s/jwt.key", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void local_verify_tells_wrong_password_from_unknown_user(void **state)
{
    fixture *f = *state;
    opsc_identity id = {sizeof(id)};
    char err[128];
    assert_int_equal(auth_local_verify(f->a, "admin", "wrong", &id, err, sizeof(err)), OPSC_EAUTH);
    assert_int_equal(auth_local_verify(f->a, "nobody", "x", &id, err, sizeof(err)), OPSC_ENOENT);
    assert_int_equal(auth_local_verify(f->a, "bad name!", "x", &id, err, sizeof(err)), OPSC_ENOENT);
    assert_int_equal(auth_local_verify(f->a, NULL, NULL, &id, err, sizeof(err)), OPSC_ENOENT);
}

/* ---- logins through the loop ------------------------------------------------------ */

struct result {
    int status;
    bool done;
    char access[1024];
    char refresh[TOKEN_TEXT_MAX];
};

static void on_login(void *ud, int status, auth_session *s)
{
    struct result *r = ud;
    r->done = true;
    r->status = status;
    if (s) {
        snprintf(r->access, sizeof(r->access), "%s", s->access_token);
        snprintf(r->refresh, sizeof(r->refresh), "%s", s->refresh_token);
    }
}

static int login(fixture *f, const char *user, const char *pw, struct result *r)
{
    memset(r, 0, sizeof(*r));
    int64_t wait = 0;
    int rc = auth_login(f->a, user, pw, "192.0.2.1", &wait, on_login, r);
    if (rc < 0)
        return rc;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(r->done);
    return r->status;
}

static void login_issues_a_verifiable_access_token_and_a_refresh_token(void **state)
{
    fixture *f = *state;
    struct result r;
    assert_int_equal(login(f, "admin", ADMIN_PW, &r), 0);
    access_claims c;
    char why[64];
    assert_int_equal(access_token_verify(auth_access_key(f->a), r.access, clock_now_ms() / 1000, &c,
                                         why, sizeof(why)),
                     0);
    assert_string_equal(c.role, "admin");
    assert_int_equal(c.exp - c.iat, 900);
    assert_true(token_is(r.refresh, TOKEN_PREFIX_REFRESH));
}

static void failures_are_throttled_per_user(void **state)
{
    fixture *f = *state;
    struct result r;
    assert_int_equal(login(f, "admin", "nope", &r), OPSC_EAUTH);
    assert_int_equal(login(f, "admin", "nope", &r), OPSC_EAUTH);
    assert_int_equal(login(f, "admin", "nope", &r), OPSC_EAUTH); /* third: now delayed */
    int64_t wait = 0;
    assert_int_equal(auth_login(f->a, "admin", ADMIN_PW, "192.0.2.9", &wait, on_login, &r),
                     OPSC_EAGAIN);
    assert_true(wait >= 1);
    /* Another user is not affected. */
    assert_int_equal(login(f, "someone", "x", &r), OPSC_EAUTH);
}

static void logins_in_flight_per_address_are_capped(void **state)
{
    fixture *f = *state;
    struct result r[3];
    int64_t wait = 0;
    memset(r, 0, sizeof(r));
    assert_int_equal(auth_login(f->a, "admin", ADMIN_PW, "192.0.2.7", &wait, on_login, &r[0]), 0);
    assert_int_equal(auth_login(f->a, "admin", ADMIN_PW, "192.0.2.7", &wait, on_login, &r[1]), 0);
    assert_int_equal(auth_login(f->a, "admin", ADMIN_PW, "192.0.2.7", &wait, on_login, &r[2]),
                     OPSC_EAGAIN);
    assert_int_equal(auth_login(f->a, "admin", ADMIN_PW, "192.0.2.8", &wait, on_login, &r[2]), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(r[0].done && r[1].done && r[2].done);
    assert_int_equal(r[0].status, 0);
}

static void refresh_rotates_and_reuse_revokes_the_family(void **state)
{
    fixture *f = *state;
    struct result r;
    assert_int_equal(login(f, "admin", ADMIN_PW, &r), 0);
    auth_session s1 = {0}, s2 = {0}, s3 = {0};
    assert_int_equal(auth_refresh(f->a, r.refresh, "192.0.2.1", &s1), 0);
    assert_string_not_equal(s1.refresh_token, r.refresh);
    assert_int_equal(auth_refresh(f->a, r.refresh, "192.0.2.1", &s2), OPSC_EAUTH);
    assert_int_equal(auth_refresh(f->a, s1.refresh_token, "192.0.2.1", &s3), OPSC_EAUTH);
    assert_int_equal(auth_refresh(f->a, "opsc_rt_garbage", "192.0.2.1", &s3), OPSC_EAUTH);
    auth_session_clear(&s1);
    auth_session_clear(&s2);
    auth_session_clear(&s3);
}

static void api_tokens_cannot_exceed_the_callers_role(void **state)
{
    fixture *f = *state;
    auth_principal p = {.role = ROLE_OPERATOR};
    snprintf(p.user_id, sizeof(p.user_id), "0190a6e4-7a2b-7c3d-8e4f-001122334455");
    snprintf(p.username, sizeof(p.username), "op");
    json_t *rec = NULL;
    char tok[TOKEN_TEXT_MAX];
    assert_int_equal(auth_token_create(f->a, &p, "t", ROLE_ADMIN, 0, &rec, tok), OPSC_EACCES);
    assert_int_equal(auth_token_create(f->a, &p, "t", ROLE_VIEWER, 0, &rec, tok), 0);
    assert_true(token_is(tok, TOKEN_PREFIX_API));
    assert_null(json_object_get(rec, "token_hash"));
    assert_string_equal(json_string_value(json_object_get(rec, "role")), "viewer");
    assert_true(json_is_null(json_object_get(rec, "expires_at")));
    json_decref(rec);
}

struct pw {
    int status;
    char hash[PASSWORD_HASH_MAX];
};

static void on_hash(void *ud, int status, const char *hash)
{
    struct pw *p = ud;
    p->status = status;
    if (hash)
        snprintf(p->hash, sizeof(p->hash), "%s", hash);
}

static void password_jobs_verify_the_old_password_first(void **state)
{
    fixture *f = *state;
    char old[PASSWORD_HASH_MAX];
    assert_int_equal(password_hash("old-password", 1, old), 0);
    struct pw p = {-1, ""};
    assert_int_equal(auth_password_job(f->a, old, "not-it", "new-password", on_hash, &p), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(p.status, OPSC_EAUTH);
    assert_int_equal(auth_password_job(f->a, old, "old-password", "new-password", on_hash, &p), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(p.status, 0);
    assert_true(password_verify("new-password", p.hash));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(first_start_creates_admin_from_the_environment, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(first_start_without_environment_writes_a_0600_password_file,
                                        setup_random, teardown),
        cmocka_unit_test_setup_teardown(local_verify_tells_wrong_password_from_unknown_user, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(login_issues_a_verifiable_access_token_and_a_refresh_token,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(failures_are_throttled_per_user, setup, teardown),
        cmocka_unit_test_setup_teardown(logins_in_flight_per_address_are_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(refresh_rotates_and_reuse_revokes_the_family, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(api_tokens_cannot_exceed_the_callers_role, setup, teardown),
        cmocka_unit_test_setup_teardown(password_jobs_verify_the_old_password_first, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
