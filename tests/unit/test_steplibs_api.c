/* test_steplibs_api.c - run-time step library installs: uploads, refusals, versions, pins, deletes,
 * restarts and signatures, with the real plugin host, store and loop. */
#include "steplibs_api_test.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "config.h"
#include "install.h"
#include "install_internal.h"
#include "log.h"
#include "plugin_internal.h"
#include "util.h"

struct fx {
    char dir[64];
    char data[128], libdir[128];
    uv_loop_t loop;
    cfg_file *cfg;
    plugin_host *h;
    store *st;
    plugin_install *in;
};

static const char *plugin_dir(void)
{
    const char *d = getenv("OPSC_TEST_PLUGIN_DIR");
    return d ? d : "tests/plugins";
}

/* A test plugin file: "test-uplib-1.0.0.upload", "test-good.so"... */
static void test_plugin(char *buf, size_t n, const char *file)
{
    snprintf(buf, n, "%s/%s", plugin_dir(), file);
}

static void host_up(struct fx *f)
{
    char err[512];
    assert_int_equal(cfg_file_load(&f->cfg, NULL, err, sizeof(err)), 0);
    assert_int_equal(plugin_host_new(&f->h, &f->loop, f->cfg), 0);
    assert_int_equal(store_open(&f->st, f->data, NULL, err, sizeof(err)), 0);
}

static int open_install(struct fx *f, const char *keys, int policy, char *err, size_t errlen)
{
    install_opts o = {f->libdir, keys, policy};
    return install_open(&f->in, &f->loop, f->h, f->st, &o, err, errlen);
}

static void host_down(struct fx *f)
{
    install_close(f->in);
    f->in = NULL;
    plugin_host_free(f->h);
    f->h = NULL;
    store_close(f->st);
    f->st = NULL;
    cfg_file_free(f->cfg);
    f->cfg = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

/* Stop and start again on the same directories (a daemon restart). */
static void restart(struct fx *f, const char *keys, int policy)
{
    char err[512] = "";
    host_down(f);
    host_up(f);
    assert_int_equal(open_install(f, keys, policy, err, sizeof(err)), 0);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/opsc-stlapi-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->data, sizeof(f->data), "%s/data", f->dir);
    snprintf(f->libdir, sizeof(f->libdir), "%s/data/steplibs", f->dir);
    assert_int_equal(fs_mkdir_p(f->data, 0700), 0);
    uv_loop_init(&f->loop);
    host_up(f);
    *state = f;
    return 0;
}

static int setup_open(void **state)
{
    setup(state);
    char err[512] = "";
    assert_int_equal(open_install(*state, "", INSTALL_SIG_AUTO, err, sizeof(err)), 0);
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    host_down(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* ---- uploading through the real worker/loop path ------------------------------- */

struct up {
    bool done;
    int rc;
    bool unchanged;
    char code[32], message[1024], name[64], version[32];
    size_t warnings;
};

static void on_done(const install_result *r, void *ud)
{
    struct up *u = ud;
    u->done = true;
    u->rc = r->rc;
    u->unchanged = r->unchanged;
    snprintf(u->code, sizeof(u->code), "%s", r->code ? r->code : "");
    snprintf(u->message, sizeof(u->message), "%s", r->message ? r->message : "");
    snprintf(u->name, sizeof(u->name), "%s", r->name ? r->name : "");
    snprintf(u->version, sizeof(u->version), "%s", r->version ? r->version : "");
    u->warnings = json_array_size(r->warnings);
}

/* Upload `file` (a test plugin, or a path when it has a '/'), signed by `key`
 * when not NULL, claiming `claimed` (NULL: the real SHA-256). */
static struct up upload_as(struct fx *f, const char *file, EVP_PKEY *key, const char *claimed)
{
    char path[512], sha[65];
    if (strchr(file, '/'))
        snprintf(path, sizeof(path), "%s", file);
    else
        test_plugin(path, sizeof(path), file);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(fs_read_file(path, INSTALL_FILE_MAX, &data, &len), 0);
    install_sha256_hex(data, len, sha);
    uint8_t sig[64];
    if (key)
        test_sign(key, data, len, sig);
    install_request rq = {data, len, "", key ? sig : NULL, key ? 64 : 0, "tester"};
    snprintf(rq.sha256, sizeof(rq.sha256), "%s", claimed ? claimed : sha);
    struct up u = {0};
    assert_int_equal(install_upload(f->in, &rq, on_done, &u), 0);
    assert_false(u.done); /* never from inside the call */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(u.done);
    free(data);
    return u;
}

static struct up upload(struct fx *f, const char *file)
{
    return upload_as(f, file, NULL, NULL);
}

static void expect_ok(struct up u, const char *version)
{
    if (u.rc != 0)
        fail_msg("upload of %s refused: %s: %s", version, u.code, u.message);
    assert_string_equal(u.name, "uplib");
    assert_string_equal(u.version, version);
}

static void expect_refused(struct up u, int rc, const char *code, const char *why)
{
    if (u.rc != rc || strcmp(u.code, code) != 0 || !strstr(u.message, why))
        fail_msg("want %s (%s) '%s', got %s (%s) '%s'", opsc_err_name(rc), code, why,
                 opsc_err_name(u.rc), u.code, u.message);
}

/* Files in the install directory, hidden ones included. */
static size_t files_in(struct fx *f, const char *prefix)
{
    size_t n = 0;
    DIR *d = opendir(f->libdir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
             strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static bool resolves(struct fx *f, const char *ref, const char *version)
{
    char err[256];
    const plugin_reg *r = NULL;
    if (!plugin_host_steptype(f->h, ref, &r, err, sizeof(err)))
        return false;
    return !version || strcmp(((const opsc_steplib *)r->desc)->version, version) == 0;
}

static void upload_installs_renames_records_and_a_second_upload_changes_nothing(void **state)
{
    struct fx *f = *state;
    struct up u = upload(f, "test-uplib-1.0.0.upload");
    expect_ok(u, "1.0.0");
    assert_false(u.unchanged);
    assert_int_equal(u.warnings, 1); /* unsigned, no keys configured */
    assert_true(resolves(f, "uplib.echo@1", "1.0.0"));

    install_lib lib;
    assert_true(install_find(f->in, "uplib", "1.0.0", &lib));
    assert_false(lib.bundled);
    char want[256];
    snprintf(want, sizeof(want), "%s/uplib-1.0.0-%.12s.so", f->libdir, lib.sha256);
    assert_string_equal(lib.path, want);
    struct stat st;
    assert_int_equal(stat(want, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(stat(f->libdir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0755);
    assert_string_equal(json_string_value(json_object_get(lib.record, "installed_by")), "tester");
    assert_true(json_is_null(json_object_get(lib.record, "signer")));
    assert_int_equal(files_in(f, ""), 1);

    u = upload(f, "test-uplib-1.0.0.upload");
    expect_ok(u, "1.0.0");
    assert_true(u.unchanged);
    assert_int_equal(files_in(f, ""), 1);
    assert_int_equal(plugin_host_loaded(f->h), 1);
}

static void refused_uploads_say_why_and_leave_no_file_nor_plugin_entry(void **state)
{
    struct fx *f = *state;
    char text[256];
    snprintf(text, sizeof(text), "%s/notes.txt", f->dir);
    assert_int_equal(fs_write_file(text, "not a library\n", 14, 0644), 0);
    expect_ok(upload(f, "test-uplib-1.0.0.upload"), "1.0.0");

    expect_refused(upload_as(f, "test-uplib-2.0.0.upload", NULL,
                             "0000000000000000000000000000000000000000000000000000000000000000"),
                   OPSC_EINVAL, "checksum_mismatch", "not the 0000");
    expect_refused(upload(f, text), OPSC_EINVAL, "not_elf", "not an ELF file");
    expect_refused(upload(f, "test-bad-major.so"), OPSC_EABI, "refused",
                   "it was built for ABI 2.0");
    expect_refused(upload(f, "test-no-entry.so"), OPSC_EINVAL, "not_elf", "no plugin note");
    expect_refused(upload(f, "test-uplib-badschema.upload"), OPSC_ESCHEMA, "refused",
                   "uplib.echo: params_schema: schema /properties/message: unknown or unsupported "
                   "keyword 'typ'");
    expect_refused(upload(f, "test-broken-steplib.so"), OPSC_ESYNTAX, "refused",
                   "broken.typo: posix_template 1:22: unknown parameter 'nmae'");
    expect_refused(upload(f, "test-good.so"), OPSC_EINVAL, "refused",
                   "only step libraries can be installed");
    expect_refused(upload(f, "test-unresolved.so"), OPSC_EPLUGIN, "refused",
                   "opsc_symbol_that_does_not_exist");
    /* Refused from its ELF file: its constructor never ran. */
    char mark[512];
    snprintf(mark, sizeof(mark), "%s/constructor-ran", f->dir);
    setenv("OPSC_TEST_CTOR_MARK", mark, 1);
    expect_refused(upload(f, "test-uplib-1.0.0-other.upload"), OPSC_EEXIST, "conflict",
                   "test-uplib 1.0.0 is already loaded from");
    unsetenv("OPSC_TEST_CTOR_MARK");
    assert_int_equal(access(mark, F_OK), -1);

    assert_int_equal(files_in(f, ""), 1);
    assert_int_equal(plugin_host_refused(f->h), 0);
    assert_int_equal(plugin_host_loaded(f->h), 1);
    assert_true(resolves(f, "uplib.echo", "1.0.0"));
}

static void versions_install_side_by_side_and_bundled_ones_stay(void **state)
{
    struct fx *f = *state;
    char path[512], err[512] = "";
    test_plugin(path, sizeof(path), "test-uplib-1.0.0.upload"); /* loaded like a bundled one */
    assert_int_equal(plugin_host_load_file(f->h, path, err, sizeof(err)), 0);
    assert_int_equal(open_install(f, "", INSTALL_SIG_AUTO, err, sizeof(err)), 0);

    expect_refused(upload(f, "test-uplib-1.0.0-other.upload"), OPSC_EEXIST, "conflict",
                   "already loaded");
    expect_ok(upload(f, "test-uplib-1.1.0.upload"), "1.1.0");
    expect_ok(upload(f, "test-uplib-2.0.0.upload"), "2.0.0");
    assert_true(resolves(f, "uplib.echo", "2.0.0"));
    assert_true(resolves(f, "uplib.echo@1", "1.1.0"));
    assert_true(resolves(f, "uplib.extra", NULL) == false); /* 2.0.0 has no "extra" */
    assert_true(resolves(f, "uplib.extra@1", "1.1.0"));

    install_lib lib;
    assert_true(install_find(f->in, "uplib", "1.0.0", &lib));
    assert_true(lib.bundled);
    assert_null(lib.record);
    assert_int_equal(strlen(lib.sha256), 64);

    json_t *jobs = NULL;
    assert_int_equal(install_delete(f->in, "uplib", "1.0.0", &jobs, err, sizeof(err)), OPSC_EPERM);
    assert_non_null(strstr(err, "bundled"));
    assert_int_equal(install_delete(f->in, "uplib", "9.9.9", &jobs, err, sizeof(err)), OPSC_ENOENT);
    assert_int_equal(install_delete(f->in, "uplib", "2.0.0", &jobs, err, sizeof(err)), 0);
    assert_null(jobs);
    assert_true(resolves(f, "uplib.echo", "1.1.0"));
    assert_false(resolves(f, "uplib.noop@2", NULL));
    assert_int_equal(files_in(f, "uplib-2.0.0"), 0);
    assert_false(install_find(f->in, "uplib", "2.0.0", &lib));

    /* Removed, not unloaded: listed as such, and uploading it again installs it again. */
    json_t *list = plugin_host_list_json(f->h);
    size_t i, removed = 0;
    json_t *p;
    json_array_foreach(json_object_get(list, "items"), i, p) removed +=
        strcmp(json_string_value(json_object_get(p, "state")), "removed") == 0;
    json_decref(list);
    assert_int_equal(removed, 1);
    struct up u = upload(f, "test-uplib-2.0.0.upload");
    expect_ok(u, "2.0.0");
    assert_false(u.unchanged);
    assert_true(resolves(f, "uplib.noop@2", "2.0.0"));
}

/* ---- pins ------------------------------------------------------------------------- */

static int put_jobs_txn(store_txn *txn, void *ud)
{
    (void)ud;
    static const char *const jobs[] = {
        "{\"name\": \"echo-one\", \"steps\": [{\"id\": \"a\", \"type\": \"uplib.echo@1\"}]}",
        "{\"name\": \"extra-one\", \"steps\": [{\"id\": \"a\", \"type\": \"core.shell.command\"},"
        " {\"id\": \"b\", \"type\": \"uplib.extra@1\"}]}",
        "{\"name\": \"latest\", \"steps\": [{\"id\": \"a\", \"type\": \"uplib.echo\"}]}",
        "{\"name\": \"noop-two\", \"steps\": [{\"id\": \"a\", \"type\": \"uplib.noop@2\"},"
        " {\"id\": \"b\", \"type\": \"uplib.echo@2\"}]}",
        "{\"name\": \"broken\", \"steps\": [{\"id\": \"a\", \"type\": \"uplib.nosuch@1\"},"
        " {\"id\": \"b\"}, {\"id\": \"c\", \"type\": 7}]}",
        "{\"name\": \"no-steps\"}",
    };
    for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
        json_t *rec = json_loads(jobs[i], 0, NULL);
        int rc = store_create(txn, "jobs", rec);
        json_decref(rec);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The names of the jobs pinning `version`, sorted, joined by ','. */
static void pinning(struct fx *f, const char *version, char *out, size_t n)
{
    char err[512];
    json_t *jobs = NULL;
    int rc = install_delete(f->in, "uplib", version, &jobs, err, sizeof(err));
    out[0] = '\0';
    if (rc == 0) {
        snprintf(out, n, "deleted");
        return;
    }
    assert_int_equal(rc, OPSC_EBUSY);
    assert_non_null(strstr(err, "still needed by jobs"));
    size_t i, o = 0;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        o += (size_t)snprintf(out + o, n - o, "%s%s", i ? "," : "",
                              json_string_value(json_object_get(j, "name")));
        assert_true(json_array_size(json_object_get(j, "steps")) > 0);
        assert_non_null(json_string_value(json_object_get(j, "id")));
    }
    json_decref(jobs);
}

static void a_version_is_deleted_only_when_every_job_still_resolves_without_it(void **state)
{
    struct fx *f = *state;
    char names[256];
    expect_ok(upload(f, "test-uplib-1.0.0.upload"), "1.0.0");
    expect_ok(upload(f, "test-uplib-1.1.0.upload"), "1.1.0");
    expect_ok(upload(f, "test-uplib-2.0.0.upload"), "2.0.0");
    assert_int_equal(store_write(f->st, put_jobs_txn, NULL), 0);

    /* 2.0.0: noop@2 and echo@2 have no other 2.x; "latest" would fall to 1.1.0. */
    pinning(f, "2.0.0", names, sizeof(names));
    assert_string_equal(names, "noop-two");
    /* 1.1.0: only it has "extra"; echo@1 would fall to 1.0.0. */
    pinning(f, "1.1.0", names, sizeof(names));
    assert_string_equal(names, "extra-one");
    /* 1.0.0: nothing resolves to it now. */
    pinning(f, "1.0.0", names, sizeof(names));
    assert_string_equal(names, "deleted");
    /* Now echo@1 resolves only to 1.1.0. */
    pinning(f, "1.1.0", names, sizeof(names));
    assert_string_equal(names, "echo-one,extra-one");
    assert_true(resolves(f, "uplib.echo@1", "1.1.0"));
}

/* ---- restarts ---------------------------------------------------------------------- */

static void installed_libraries_load_again_after_a_restart(void **state)
{
    struct fx *f = *state;
    expect_ok(upload(f, "test-uplib-1.0.0.upload"), "1.0.0");
    expect_ok(upload(f, "test-uplib-2.0.0.upload"), "2.0.0");
    char stale[256];
    snprintf(stale, sizeof(stale), "%s/" INSTALL_INCOMING "0123456789abcdef.so", f->libdir);
    assert_int_equal(fs_write_file(stale, "half an upload", 14, 0644), 0);

    restart(f, "", INSTALL_SIG_AUTO);
    assert_true(resolves(f, "uplib.echo@1", "1.0.0"));
    assert_true(resolves(f, "uplib.noop@2", "2.0.0"));
    install_lib lib;
    assert_true(install_find(f->in, "uplib", "2.0.0", &lib));
    assert_false(lib.bundled);
    assert_string_equal(json_string_value(json_object_get(lib.record, "installed_by")), "tester");
    assert_int_equal(files_in(f, INSTALL_INCOMING), 0);
    assert_int_equal(json_array_size(install_refused(f->in)), 0);
    expect_ok(upload(f, "test-uplib-2.0.0.upload"), "2.0.0"); /* still the same bytes */
}

/* ---- bundles --------------------------------------------------------------------------- */

/* <dir>/<name>.tar.gz made by tar(1) from a manifest and one executable. */
static void make_bundle(struct fx *f, const char *name, const char *manifest, char *path, size_t n)
{
    char src[256], file[300], cmd[1024];
    snprintf(src, sizeof(src), "%s/src-%s", f->dir, name);
    assert_int_equal(fs_mkdir_p(src, 0755), 0);
    snprintf(file, sizeof(file), "%s/steplib.json", src);
    assert_int_equal(fs_write_file(file, manifest, strlen(manifest), 0644), 0);
    snprintf(file, sizeof(file), "%s/run.sh", src);
    assert_int_equal(fs_write_file(file, "#!/bin/sh\n", 10, 0755), 0);
    snprintf(path, n, "%s/%s.tar.gz", f->dir, name);
    snprintf(cmd, sizeof(cmd), "tar -czf '%s' -C '%s' steplib.json run.sh", path, src);
    assert_int_equal(system(cmd), 0);
}

static void a_bundle_installs_unpacked_loads_again_after_a_restart_and_deletes(void **state)
{
    struct fx *f = *state;
    char path[300], bad[300], dir[300];
    make_bundle(f, "good",
                "{\"name\": \"scripted\", \"version\": \"1.0.0\", \"abi\": \"1.2\", \"steps\": "
                "[{\"name\": \"go\", \"executable\": \"run.sh\"}, {\"name\": \"say\", "
                "\"posix_template\": \"echo hi\"}]}",
                path, sizeof(path));
    make_bundle(
        f, "bad",
        "{\"name\": \"scripted\", \"version\": \"1.1.0\", \"abi\": \"1.2\", \"steps\": "
        "[{\"name\": \"go\", \"params_schema\": {\"type\": 3}, \"executable\": \"run.sh\"}]}",
        bad, sizeof(bad));
    expect_refused(upload(f, bad), OPSC_ESCHEMA, "refused", "scripted.go: params_schema");
    assert_int_equal(files_in(f, ""), 0); /* neither the archive nor its folder stays */
    struct up u = upload(f, path);
    assert_int_equal(u.rc, 0);
    assert_string_equal(u.name, "scripted");
    install_lib lib;
    assert_true(install_find(f->in, "scripted", "1.0.0", &lib));
    assert_non_null(strstr(lib.path, ".tar.gz"));
    snprintf(dir, sizeof(dir), "%.*s.d/run.sh", (int)(strlen(lib.path) - 7), lib.path);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0755);
    assert_true(resolves(f, "scripted.go@1", "1.0.0"));
    assert_true(upload(f, path).unchanged);

    unlink(dir); /* the folder is made again from the archive at start */
    restart(f, "", INSTALL_SIG_AUTO);
    assert_true(resolves(f, "scripted.say", "1.0.0"));
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(files_in(f, INSTALL_INCOMING), 0);
    json_t *jobs = NULL;
    char err[256];
    assert_int_equal(install_delete(f->in, "scripted", "1.0.0", &jobs, err, sizeof(err)), 0);
    assert_false(resolves(f, "scripted.go", NULL));
    assert_int_equal(files_in(f, "scripted-1.0.0-"), 1); /* the folder, until the next start */
}

/* ---- signatures ------------------------------------------------------------------------- */

static void
signatures_are_required_when_keys_are_configured_and_checked_again_at_start(void **state)
{
    struct fx *f = *state;
    char pem[256], other_pem[256], err[512] = "";
    snprintf(pem, sizeof(pem), "%s/publisher.pem", f->dir);
    snprintf(other_pem, sizeof(other_pem), "%s/other.pem", f->dir);
    EVP_PKEY *k = test_keygen(), *other = test_keygen();
    test_write_pem(k, pem);
    test_write_pem(other, other_pem);
    assert_int_equal(open_install(f, pem, INSTALL_SIG_AUTO, err, sizeof(err)), 0);
    assert_true(install_requires_signature(f->in));

    expect_refused(upload(f, "test-uplib-1.0.0.upload"), OPSC_EAUTH, "signature_required",
                   "signature");
    expect_refused(upload_as(f, "test-uplib-1.0.0.upload", other, NULL), OPSC_EAUTH,
                   "bad_signature", "does not verify");
    struct up u = upload_as(f, "test-uplib-1.0.0.upload", k, NULL);
    expect_ok(u, "1.0.0");
    assert_int_equal(u.warnings, 0);
    install_lib lib;
    assert_true(install_find(f->in, "uplib", "1.0.0", &lib));
    const json_t *signer = json_object_get(lib.record, "signer");
    assert_string_equal(json_string_value(json_object_get(signer, "name")), "publisher.pem");
    assert_int_equal(files_in(f, ""), 1);

    restart(f, pem, INSTALL_SIG_AUTO); /* same key: loads, signer checked again */
    assert_true(install_find(f->in, "uplib", "1.0.0", &lib));
    assert_non_null(json_object_get(json_object_get(lib.record, "signer"), "fingerprint"));

    restart(f, other_pem, INSTALL_SIG_AUTO); /* the publisher's key was withdrawn */
    assert_false(install_find(f->in, "uplib", "1.0.0", &lib));
    const json_t *refused = install_refused(f->in);
    assert_int_equal(json_array_size(refused), 1);
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(refused, 0), "reason")),
                           "does not verify"));

    restart(f, other_pem, INSTALL_SIG_NO); /* allowed unsigned: loads, signer unknown */
    assert_true(install_find(f->in, "uplib", "1.0.0", &lib));
    assert_true(json_is_null(json_object_get(lib.record, "signer")));
    u = upload(f, "test-uplib-2.0.0.upload");
    expect_ok(u, "2.0.0");
    assert_int_equal(u.warnings, 1);

    /* Withdrawn again; the refused file is deleted by its name and version. */
    restart(f, other_pem, INSTALL_SIG_AUTO);
    assert_int_equal(json_array_size(install_refused(f->in)), 2);
    json_t *jobs = NULL;
    assert_int_equal(install_delete(f->in, "uplib", "1.0.0", &jobs, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(install_refused(f->in)), 1);
    assert_int_equal(files_in(f, "uplib-1.0.0-"), 0);
    assert_int_equal(files_in(f, "uplib-2.0.0-"), 1);
    assert_int_equal(install_delete(f->in, "uplib", "1.0.0", &jobs, err, sizeof(err)), OPSC_ENOENT);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}

static void a_signature_sent_before_keys_were_configured_is_verified_once_they_are(void **state)
{
    struct fx *f = *state;
    char pem[256], err[512] = "";
    snprintf(pem, sizeof(pem), "%s/publisher.pem", f->dir);
    EVP_PKEY *k = test_keygen();
    test_write_pem(k, pem);
    assert_int_equal(open_install(f, "", INSTALL_SIG_AUTO, err, sizeof(err)), 0);
    struct up u = upload_as(f, "test-uplib-1.0.0.upload", k, NULL);
    expect_ok(u, "1.0.0");
    assert_int_equal(u.warnings, 1); /* the signature could not be checked */
    install_lib lib;
    assert_true(install_find(f->in, "uplib", "1.0.0", &lib));
    assert_true(json_is_null(json_object_get(lib.record, "signer")));

    restart(f, pem, INSTALL_SIG_AUTO); /* signatures now required: this one verifies */
    assert_true(install_find(f->in, "uplib", "1.0.0", &lib));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(lib.record, "signer"), "name")),
        "publisher.pem");
    EVP_PKEY_free(k);
}

static void require_signature_without_keys_or_with_a_bad_key_file_fails_to_open(void **state)
{
    struct fx *f = *state;
    char err[512] = "";
    assert_int_equal(open_install(f, "", INSTALL_SIG_YES, err, sizeof(err)), OPSC_EINVAL);
    assert_non_null(strstr(err, "require_signature = yes needs trusted_keys"));
    assert_null(f->in);
    char missing[256];
    snprintf(missing, sizeof(missing), "%s/nope.pem", f->dir);
    assert_true(open_install(f, missing, INSTALL_SIG_AUTO, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "nope.pem: cannot read"));
}

int main(void)
{
    log_init(getenv("OPSC_TEST_VERBOSE") ? OPSC_LOG_DEBUG : OPSC_LOG_ERROR, LOG_FORMAT_TEXT, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            upload_installs_renames_records_and_a_second_upload_changes_nothing, setup_open,
            teardown),
        cmocka_unit_test_setup_teardown(refused_uploads_say_why_and_leave_no_file_nor_plugin_entry,
                                        setup_open, teardown),
        cmocka_unit_test_setup_teardown(versions_install_side_by_side_and_bundled_ones_stay, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            a_version_is_deleted_only_when_every_job_still_resolves_without_it, setup_open,
            teardown),
        cmocka_unit_test_setup_teardown(
            a_bundle_installs_unpacked_loads_again_after_a_restart_and_deletes, setup_open,
            teardown),
        cmocka_unit_test_setup_teardown(installed_libraries_load_again_after_a_restart, setup_open,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            signatures_are_required_when_keys_are_configured_and_checked_again_at_start, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            a_signature_sent_before_keys_were_configured_is_verified_once_they_are, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            require_signature_without_keys_or_with_a_bad_key_file_fails_to_open, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("steplibs_api", tests, NULL, NULL);
    failed += _cmocka_run_group_tests("trusted_keys", trust_tests, trust_test_count, NULL, NULL);
    return failed ? 1 : 0;
}
