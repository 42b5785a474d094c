/* test_vault.c - master key custody against a real store: creation, wrong or missing keys,
 * rotation, credentials. */
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

#include "store.h"
#include "util.h"
#include "vault.h"

typedef struct fixture {
    char dir[64];
    char keyfile[128];
    store *s;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/opsc-test-vault-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->keyfile, sizeof(f->keyfile), "%s/master.key", f->dir);
    char err[512] = "";
    store_opts o = {0};
    if (store_open(&f->s, f->dir, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static vault *open_ok(fixture *f, const char *env_key)
{
    vault_opts o = {f->dir, NULL, env_key};
    vault *v = NULL;
    char err[512] = "";
    int rc = vault_open(&v, f->s, &o, err, sizeof(err));
    if (rc < 0)
        fail_msg("vault_open: %s", err);
    return v;
}

static int open_err(fixture *f, const char *env_key, char *err, size_t errlen)
{
    vault_opts o = {f->dir, NULL, env_key};
    vault *v = NULL;
    err[0] = '\0';
    int rc = vault_open(&v, f->s, &o, err, errlen);
    assert_null(v);
    return rc;
}

static void first_open_creates_a_0600_key_file(void **state)
{
    fixture *f = *state;
    vault *v = open_ok(f, NULL);
    struct stat st;
    assert_int_equal(stat(f->keyfile, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char id[VAULT_KID_LEN];
    snprintf(id, sizeof(id), "%s", vault_key_id(v));
    vault_close(v);
    v = open_ok(f, NULL);
    assert_string_equal(vault_key_id(v), id);
    vault_close(v);
}

static void replaced_key_file_is_refused_naming_both_ids(void **state)
{
    fixture *f = *state;
    vault *v = open_ok(f, NULL);
    char id[VAULT_KID_LEN];
    snprintf(id, sizeof(id), "%s", vault_key_id(v));
    vault_close(v);
    vault_key other;
    vault_key_generate(&other);
    char text[64];
    vault_key_format(&other, text);
    assert_int_equal(fs_write_file(f->keyfile, text, strlen(text), 0600), 0);
    char err[512];
    assert_int_equal(open_err(f, NULL, err, sizeof(err)), OPSC_ECRYPTO);
    assert_non_null(strstr(err, id));
    assert_non_null(strstr(err, other.id));
    assert_non_null(strstr(err, "does not match"));
}

static void missing_key_file_is_refused_once_data_exists(void **state)
{
    fixture *f = *state;
    vault_close(open_ok(f, NULL));
    assert_int_equal(unlink(f->keyfile), 0);
    char err[512];
    assert_int_equal(open_err(f, NULL, err, sizeof(err)), OPSC_ENOENT);
    assert_non_null(strstr(err, "missing"));
    assert_int_equal(access(f->keyfile, F_OK), -1); /* never silently re-created */
}

static void key_file_readable_by_others_is_refused(void **state)
{
    fixture *f = *state;
    vault_close(open_ok(f, NULL));
    assert_int_equal(chmod(f->keyfile, 0640), 0);
    char err[512];
    assert_int_equal(open_err(f, NULL, err, sizeof(err)), OPSC_EACCES);
    assert_non_null(strstr(err, "chmod 600"));
}

static void environment_key_is_used_and_checked(void **state)
{
    fixture *f = *state;
    vault_key k;
    vault_key_generate(&k);
    char text[64];
    vault_key_format(&k, text);
    vault *v = open_ok(f, text);
    assert_string_equal(vault_key_id(v), k.id);
    assert_int_equal(access(f->keyfile, F_OK), -1); /* no file with an environment key */
    size_t n;
    char err[512];
    assert_int_equal(vault_rotate(v, NULL, &n, err, sizeof(err)), OPSC_EINVAL);
    vault_close(v);
    char wrong[64];
    vault_key w;
    vault_key_generate(&w);
    vault_key_format(&w, wrong);
    assert_int_equal(open_err(f, wrong, err, sizeof(err)), OPSC_ECRYPTO);
    assert_non_null(strstr(err, "OPSC_MASTER_KEY"));
    assert_int_equal(open_err(f, "not base64!", err, sizeof(err)), OPSC_EINVAL);
}

/* ---- credentials ----------------------------------------------------------------- */

struct put {
    vault *v;
    const char *id;
    json_t *secrets;
};

static int put_cred(store_txn *txn, void *ud)
{
    struct put *p = ud;
    json_t *rec = json_pack("{s:s, s:s, s:s, s:s}", "id", p->id, "name", "c", "type",
                            "ssh_password", "username", "root");
    int rc = vault_secrets_seal(p->v, rec, p->secrets);
    if (rc == 0)
        rc = store_create(txn, "credentials", rec);
    json_decref(rec);
    return rc;
}

struct get {
    vault *v;
    const char *id;
    opsc_credential c;
    int rc;
};

static int get_cred(store_txn *txn, void *ud)
{
    struct get *g = ud;
    char err[256];
    g->rc = vault_credential_open(g->v, txn, g->id, &g->c, err, sizeof(err));
    return 0;
}

static void store_cred(fixture *f, vault *v, const char *id, const char *password)
{
    json_t *s = json_pack("{s:s}", "password", password);
    struct put p = {v, id, s};
    assert_int_equal(store_write(f->s, put_cred, &p), 0);
    vault_secrets_free(s);
}

static void credential_opens_for_transports_and_is_wiped_on_close(void **state)
{
    fixture *f = *state;
    vault *v = open_ok(f, NULL);
    char id[UUID_STR_LEN];
    uuid7_new(id);
    store_cred(f, v, id, "hunter2-secret");
    struct get g = {v, id, {0}, -1};
    assert_int_equal(store_read(f->s, get_cred, &g), 0);
    assert_int_equal(g.rc, 0);
    assert_string_equal(g.c.type, "ssh_password");
    assert_string_equal(g.c.username, "root");
    assert_string_equal(g.c.password, "hunter2-secret");
    assert_null(g.c.private_key);
    vault_credential_close(&g.c);
    assert_null(g.c.password);
    g.id = "0190a6e4-7a2b-7c3d-8e4f-001122334455";
    assert_int_equal(store_read(f->s, get_cred, &g), 0);
    assert_int_equal(g.rc, OPSC_ENOENT);
    vault_credential_close(&g.c);
    vault_close(v);
}

static void rotation_rewraps_every_data_key_and_replaces_the_file(void **state)
{
    fixture *f = *state;
    vault *v = open_ok(f, NULL);
    char ids[3][UUID_STR_LEN];
    for (int i = 0; i < 3; i++) {
        uuid7_new(ids[i]);
        store_cred(f, v, ids[i], "pw");
    }
    char old[VAULT_KID_LEN];
    snprintf(old, sizeof(old), "%s", vault_key_id(v));
    size_t n = 0;
    char err[512] = "";
    assert_int_equal(vault_rotate(v, NULL, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 3);
    assert_string_not_equal(vault_key_id(v), old);
    struct get g = {v, ids[2], {0}, -1};
    assert_int_equal(store_read(f->s, get_cred, &g), 0);
    assert_int_equal(g.rc, 0);
    assert_string_equal(g.c.password, "pw");
    vault_credential_close(&g.c);
    char next[160];
    snprintf(next, sizeof(next), "%s.new", f->keyfile);
    assert_int_equal(access(next, F_OK), -1);
    char newid[VAULT_KID_LEN];
    snprintf(newid, sizeof(newid), "%s", vault_key_id(v));
    vault_close(v);
    v = open_ok(f, NULL); /* the file holds the new key */
    assert_string_equal(vault_key_id(v), newid);
    vault_close(v);
}

static void a_rotation_that_died_before_its_rename_is_finished_at_open(void **state)
{
    fixture *f = *state;
    vault *v = open_ok(f, NULL);
    char id[UUID_STR_LEN];
    uuid7_new(id);
    store_cred(f, v, id, "pw");
    char *old_text = NULL;
    assert_int_equal(fs_read_file(f->keyfile, 1024, &old_text, NULL), 0);
    size_t n;
    char err[512];
    assert_int_equal(vault_rotate(v, NULL, &n, err, sizeof(err)), 0);
    char newid[VAULT_KID_LEN];
    snprintf(newid, sizeof(newid), "%s", vault_key_id(v));
    vault_close(v);
    /* Simulate the crash: the new key still in .new, the old one in place. */
    char next[160];
    snprintf(next, sizeof(next), "%s.new", f->keyfile);
    assert_int_equal(rename(f->keyfile, next), 0);
    assert_int_equal(fs_write_file(f->keyfile, old_text, strlen(old_text), 0600), 0);
    free(old_text);
    v = open_ok(f, NULL);
    assert_string_equal(vault_key_id(v), newid);
    assert_int_equal(access(next, F_OK), -1);
    vault_close(v);
}

static void parse_splits_clear_and_secret_fields_and_checks_types(void **state)
{
    (void)state;
    json_t *meta, *secrets;
    char err[256];
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", "w", "type", "winrm", "username",
                             "Administrator", "password", "P@ss", "domain", "CORP");
    assert_int_equal(credential_parse(body, true, NULL, &meta, &secrets, err, sizeof(err)), 0);
    assert_string_equal(json_string_value(json_object_get(meta, "auth")), "ntlm");
    assert_null(json_object_get(meta, "password"));
    assert_string_equal(json_string_value(json_object_get(secrets, "password")), "P@ss");
    json_decref(meta);
    vault_secrets_free(secrets);
    json_decref(body);
    body = json_pack("{s:s, s:s, s:s}", "name", "x", "type", "secret", "value", "v");
    json_object_set_new(body, "private_key", json_string("k"));
    assert_int_equal(credential_parse(body, true, NULL, &meta, &secrets, err, sizeof(err)),
                     OPSC_ESCHEMA);
    assert_non_null(strstr(err, "private_key"));
    json_decref(body);
    body = json_pack("{s:s, s:s, s:i}", "name", "x", "type", "secret", "value", 3);
    assert_int_equal(credential_parse(body, true, NULL, &meta, &secrets, err, sizeof(err)),
                     OPSC_ESCHEMA);
    json_decref(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(first_open_creates_a_0600_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(replaced_key_file_is_refused_naming_both_ids, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(missing_key_file_is_refused_once_data_exists, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(key_file_readable_by_others_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(environment_key_is_used_and_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(credential_opens_for_transports_and_is_wiped_on_close,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(rotation_rewraps_every_data_key_and_replaces_the_file,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_rotation_that_died_before_its_rename_is_finished_at_open,
                                        setup, teardown),
        cmocka_unit_test(parse_splits_clear_and_secret_fields_and_checks_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
