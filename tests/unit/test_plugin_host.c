/* test_plugin_host.c - loading, refusing and registering plugins through the real loader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "plugin_host.h"

struct fixture {
    uv_loop_t loop;
    cfg_file *cfg;
    plugin_host *host;
    char cfg_path[64];
};

static const char *plugin_dir(void)
{
    const char *d = getenv("OPSC_TEST_PLUGIN_DIR");
    return d ? d : "tests/plugins";
}

static void plugin_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s.so", plugin_dir(), name);
}

static int setup_with_config(void **state, const char *text)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[512];
    uv_loop_init(&f->loop);
    const char *path = NULL;
    if (text) {
        snprintf(f->cfg_path, sizeof(f->cfg_path), "/tmp/opsc-test-plugins-XXXXXX");
        int fd = mkstemp(f->cfg_path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        path = f->cfg_path;
    }
    assert_int_equal(cfg_file_load(&f->cfg, path, err, sizeof(err)), 0);
    assert_int_equal(plugin_host_new(&f->host, &f->loop, f->cfg), 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with_config(state, "[plugin.test-good]\ngreeting = hi\ncount = 3\n");
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    plugin_host_free(f->host);
    cfg_file_free(f->cfg);
    if (f->cfg_path[0])
        unlink(f->cfg_path);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static int load(struct fixture *f, const char *name, char *err, size_t errlen)
{
    char path[512];
    plugin_path(path, sizeof(path), name);
    err[0] = '\0';
    return plugin_host_load_file(f->host, path, err, errlen);
}

/* The reason recorded for the plugin whose path ends in name.so. */
static const char *reason_of(struct fixture *f, const char *name, json_t **keep)
{
    json_t *list = plugin_host_list_json(f->host);
    json_t *items = json_object_get(list, "items");
    size_t i;
    json_t *it;
    char suffix[128];
    snprintf(suffix, sizeof(suffix), "/%s.so", name);
    *keep = list;
    json_array_foreach(items, i, it)
    {
        const char *path = json_string_value(json_object_get(it, "path"));
        size_t pl = strlen(path), sl = strlen(suffix);
        if (pl >= sl && strcmp(path + pl - sl, suffix) == 0)
            return json_string_value(json_object_get(it, "reason"));
    }
    return NULL;
}

static void good_plugin_loads_and_registers_every_kind(void **state)
{
    struct fixture *f = *state;
    char err[512];
    assert_int_equal(load(f, "test-good", err, sizeof(err)), 0);
    assert_int_equal(plugin_host_loaded(f->host), 1);
    assert_non_null(plugin_host_find(f->host, REG_NOTIFIER, "test-echo"));
    assert_non_null(plugin_host_find(f->host, REG_AUTH, "test-nobody"));
    const plugin_reg *lib = plugin_host_steplib(f->host, "testgood", 1);
    assert_non_null(lib);
    assert_string_equal(((const opsc_steplib *)lib->desc)->version, "1.2.3");
    assert_null(plugin_host_steplib(f->host, "testgood", 2));
    assert_null(plugin_host_find(f->host, REG_TRANSPORT, "test-echo"));
}

static void step_references_resolve_to_compiled_step_types(void **state)
{
    struct fixture *f = *state;
    char err[512];
    const plugin_reg *lib = NULL;
    assert_int_equal(load(f, "test-good", err, sizeof(err)), 0);
    assert_non_null(plugin_host_steptype(f->host, "testgood.hello", &lib, err, sizeof(err)));
    assert_string_equal(((const opsc_steplib *)lib->desc)->version, "1.2.3");
    assert_non_null(plugin_host_steptype(f->host, "testgood.hello@1", NULL, err, sizeof(err)));
    const struct {
        const char *ref, *message;
    } bad[] = {
        {"testgood.hello@2", "version 2.x is not installed"},
        {"testgood.nope", "has no step 'nope'"},
        {"nolib.step", "no step library 'nolib'"},
        {"nodot", "is not a step type"},
        {"testgood.hello@x", "must be a number"},
        {".hello", "is not a step type"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_null(plugin_host_steptype(f->host, bad[i].ref, NULL, err, sizeof(err)));
        if (!strstr(err, bad[i].message))
            fail_msg("%s: '%s' lacks '%s'", bad[i].ref, err, bad[i].message);
    }
}

static void broken_step_library_is_refused_at_load(void **state)
{
    struct fixture *f = *state;
    char err[512];
    assert_int_equal(load(f, "test-broken-steplib", err, sizeof(err)), OPSC_ESYNTAX);
    assert_int_equal(plugin_host_count(f->host, REG_STEPLIB), 0);
}

static void wrong_abi_major_is_refused(void **state)
{
    struct fixture *f = *state;
    char err[512];
    json_t *keep;
    assert_int_equal(load(f, "test-bad-major", err, sizeof(err)), OPSC_EABI);
    assert_non_null(strstr(err, "major version must match"));
    assert_non_null(strstr(reason_of(f, "test-bad-major", &keep), "ABI 2.0"));
    json_decref(keep);
    assert_int_equal(plugin_host_refused(f->host), 1);
}

static void newer_abi_minor_is_refused(void **state)
{
    struct fixture *f = *state;
    char err[512];
    assert_int_equal(load(f, "test-newer-minor", err, sizeof(err)), OPSC_EABI);
    assert_non_null(strstr(err, "newer than the host"));
}

static void missing_entry_symbol_is_refused(void **state)
{
    struct fixture *f = *state;
    char err[512];
    assert_int_equal(load(f, "test-no-entry", err, sizeof(err)), OPSC_EPLUGIN);
    assert_non_null(strstr(err, "opsc_plugin_entry"));
}

static void duplicate_name_is_refused(void **state)
{
    struct fixture *f = *state;
    char err[512];
    assert_int_equal(load(f, "test-good", err, sizeof(err)), 0);
    assert_int_equal(load(f, "test-zdup", err, sizeof(err)), OPSC_EEXIST);
    assert_non_null(strstr(err, "already taken"));
    assert_int_equal(plugin_host_loaded(f->host), 1);
}

static void init_failure_is_refused_and_its_registrations_undone(void **state)
{
    struct fixture *f = *state;
    char err[512];
    assert_int_equal(load(f, "test-init-fail", err, sizeof(err)), OPSC_EHOSTUNREACH);
    assert_non_null(strstr(err, "init failed: EHOSTUNREACH"));
    assert_non_null(strstr(err, ": cannot reach the moon")); /* the error it logged, its reason */
    assert_null(plugin_host_find(f->host, REG_NOTIFIER, "test-ghost"));
}

static void unresolved_symbol_is_refused(void **state)
{
    struct fixture *f = *state;
    char err[512];
    assert_int_equal(load(f, "test-unresolved", err, sizeof(err)), OPSC_EPLUGIN);
    assert_non_null(strstr(err, "opsc_symbol_that_does_not_exist"));
}

static void missing_file_is_refused(void **state)
{
    struct fixture *f = *state;
    char err[512];
    assert_int_equal(load(f, "no-such-plugin", err, sizeof(err)), OPSC_EPLUGIN);
    assert_non_null(strstr(err, "cannot load"));
}

static int setup_bad_config(void **state)
{
    return setup_with_config(state, "[plugin.test-good]\ncount = 11\n");
}

static void plugin_config_out_of_bounds_refuses_the_plugin(void **state)
{
    struct fixture *f = *state;
    char err[512];
    assert_int_equal(load(f, "test-good", err, sizeof(err)), OPSC_ESCHEMA);
    assert_int_equal(plugin_host_loaded(f->host), 0);
}

static int setup_unknown_key(void **state)
{
    return setup_with_config(state, "[plugin.test-good]\ncolour = blue\n");
}

static void plugin_config_unknown_key_refuses_the_plugin(void **state)
{
    struct fixture *f = *state;
    char err[512];
    assert_int_equal(load(f, "test-good", err, sizeof(err)), OPSC_ESCHEMA);
}

static void registration_outside_init_is_refused(void **state)
{
    (void)state;
    static const opsc_notifier late = {.size = sizeof(opsc_notifier), .name = "late", .send = NULL};
    const opsc_host_api *api = plugin_host_api();
    assert_int_equal(api->register_notifier(&late, NULL), OPSC_EINVAL);
    static const opsc_auth_provider p = {
        .size = sizeof(opsc_auth_provider), .name = "late", .authenticate = (void *)1};
    assert_int_equal(api->register_auth_provider(&p, NULL), OPSC_ESTATE);
}

static void load_dirs_loads_good_refuses_bad_and_skips_disabled(void **state)
{
    struct fixture *f = *state;
    plugin_host_load_dirs(f->host, plugin_dir(), "test-init-fail");
    assert_int_equal(plugin_host_loaded(f->host), 1);
    /* broken-steplib, bad-major, newer-minor, no-entry, zdup, unresolved */
    assert_int_equal(plugin_host_refused(f->host), 6);
    json_t *list = plugin_host_list_json(f->host);
    char *text = json_dumps(list, 0);
    assert_non_null(strstr(text, "\"state\": \"disabled\""));
    free(text);
    json_decref(list);
}

static void host_api_reports_its_size_and_abi(void **state)
{
    (void)state;
    const opsc_host_api *api = plugin_host_api();
    assert_int_equal(api->size, sizeof(opsc_host_api));
    assert_int_equal(api->abi_major, OPSC_ABI_MAJOR);
    assert_true(OPSC_HOST_HAS(api, step_sleep));
    opsc_host_api older = *api;
    older.size = offsetof(opsc_host_api, step_sleep);
    assert_false(OPSC_HOST_HAS(&older, step_sleep));
}

static void step_api_without_executor_answers_not_supported(void **state)
{
    (void)state;
    const opsc_host_api *api = plugin_host_api();
    assert_int_equal(api->step_exec(NULL, "true", NULL, NULL), OPSC_ENOTSUP);
    assert_true(api->step_cancelled(NULL));
}

int main(void)
{
    log_init(OPSC_LOG_ERROR + (getenv("OPSC_TEST_VERBOSE") ? 3 : 0), LOG_FORMAT_TEXT, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(good_plugin_loads_and_registers_every_kind, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(step_references_resolve_to_compiled_step_types, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(broken_step_library_is_refused_at_load, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_abi_major_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(newer_abi_minor_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_entry_symbol_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(duplicate_name_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(init_failure_is_refused_and_its_registrations_undone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(unresolved_symbol_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_file_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(plugin_config_out_of_bounds_refuses_the_plugin,
                                        setup_bad_config, teardown),
        cmocka_unit_test_setup_teardown(plugin_config_unknown_key_refuses_the_plugin,
                                        setup_unknown_key, teardown),
        cmocka_unit_test_setup_teardown(registration_outside_init_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(load_dirs_loads_good_refuses_bad_and_skips_disabled, setup,
                                        teardown),
        cmocka_unit_test(host_api_reports_its_size_and_abi),
        cmocka_unit_test(step_api_without_executor_answers_not_supported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
