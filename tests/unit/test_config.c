/* test_config.c - INI loading, typed binding, precedence and error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "config.h"
#include "log.h"

static char path[64];

static const char *write_conf(const char *text)
{
    snprintf(path, sizeof(path), "/tmp/opsc-test-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static int cleanup(void **state)
{
    (void)state;
    unlink(path);
    unsetenv("OPSC_SERVER_LISTEN");
    unsetenv("OPSC_LOG_LEVEL");
    return 0;
}

/* Load and bind `text`; returns the rc and leaves the message in err. */
static int bind_text(const char *text, struct config *cfg, char *err, size_t errlen)
{
    cfg_file *f = NULL;
    err[0] = '\0';
    int rc = cfg_file_load(&f, write_conf(text), err, errlen);
    if (rc < 0)
        return rc;
    return config_bind_all(cfg, f, err, errlen);
}

static void defaults_apply_without_a_file(void **state)
{
    (void)state;
    cfg_file *f = NULL;
    struct config cfg = {0};
    char err[512];
    assert_int_equal(cfg_file_load(&f, NULL, err, sizeof(err)), 0);
    assert_int_equal(config_bind_all(&cfg, f, err, sizeof(err)), 0);
    assert_string_equal(cfg.server.listen, "127.0.0.1:8080");
    assert_int_equal(cfg.server.max_header_bytes, 16 * 1024);
    assert_int_equal(cfg.server.idle_timeout_ms, 60000);
    assert_int_equal(cfg.log.level, OPSC_LOG_INFO);
    config_free(&cfg);
}

static void file_values_are_typed(void **state)
{
    (void)state;
    struct config cfg = {0};
    char err[512];
    assert_int_equal(bind_text("[server]\nlisten = 0.0.0.0:9000\nmax_body_size = 2M\n"
                               "idle_timeout = 5s\n[log]\nlevel = debug\nformat = json\n",
                               &cfg, err, sizeof(err)),
                     0);
    assert_string_equal(cfg.server.listen, "0.0.0.0:9000");
    assert_int_equal(cfg.server.max_body_bytes, 2 * 1024 * 1024);
    assert_int_equal(cfg.server.idle_timeout_ms, 5000);
    assert_int_equal(cfg.log.format, LOG_FORMAT_JSON);
    config_free(&cfg);
}

static void tls_keys_bind_and_origins_name_where_they_came_from(void **state)
{
    (void)state;
    struct config cfg = {0};
    char err[512], where[256], want[128];
    assert_int_equal(bind_text("[server]\nlisten = 127.0.0.1:1, [::]:2 tls\ntls_cert = c.pem\n"
                               "tls_key = k.pem\ntls_min_version = 1.3\ntls_client_required = yes\n"
                               "hsts_max_age = 0\nredirect_http = on\n",
                               &cfg, err, sizeof(err)),
                     0);
    assert_string_equal(cfg.server.listen, "127.0.0.1:1, [::]:2 tls");
    assert_string_equal(cfg.server.tls_key, "k.pem");
    assert_string_equal(cfg.server.tls_client_ca, "");
    assert_int_equal(cfg.server.tls_min_version, 1);
    assert_true(cfg.server.tls_client_required && cfg.server.redirect_http);
    assert_int_equal(cfg.server.hsts_max_age_ms, 0);
    cfg_origin(cfg.file, "server", "tls_key", where, sizeof(where));
    snprintf(want, sizeof(want), "%s:4", path);
    assert_string_equal(where, want);
    cfg_origin(cfg.file, "server", "tls_client_ca", where, sizeof(where));
    assert_string_equal(where, path); /* not set: the file, no line */
    assert_int_equal(cfg_file_set(cfg.file, "server", "listen", "x:1", "--listen"), 0);
    cfg_origin(cfg.file, "server", "listen", where, sizeof(where));
    assert_string_equal(where, "--listen");
    setenv("OPSC_SERVER_LISTEN", "y:2", 1);
    cfg_origin(cfg.file, "server", "listen", where, sizeof(where));
    assert_string_equal(where, "environment OPSC_SERVER_LISTEN");
    config_free(&cfg);
    assert_int_equal(bind_text("[server]\ntls_min_version = 1.1\n", &cfg, err, sizeof(err)),
                     OPSC_ESCHEMA);
    assert_non_null(strstr(err, "tls_min_version"));
    assert_non_null(strstr(err, "expected one of 1.2|1.3"));
    config_free(&cfg);
}

static void value_out_of_bounds_names_file_line_and_key(void **state)
{
    (void)state;
    struct config cfg = {0};
    char err[512];
    int rc = bind_text("[server]\n\nidle_timeout = 250ms\n", &cfg, err, sizeof(err));
    assert_int_equal(rc, OPSC_ESCHEMA);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, ":3: [server] idle_timeout"));
    assert_non_null(strstr(err, "out of range"));
    config_free(&cfg);
}

static void unknown_key_lists_valid_keys(void **state)
{
    (void)state;
    struct config cfg = {0};
    char err[1024];
    int rc = bind_text("[log]\nlevel = info\ncolour = red\n", &cfg, err, sizeof(err));
    assert_int_equal(rc, OPSC_ESCHEMA);
    assert_non_null(strstr(err, ":3: [log] colour: unknown key (valid keys: level, format, file)"));
    config_free(&cfg);
}

static void unknown_section_is_an_error(void **state)
{
    (void)state;
    struct config cfg = {0};
    char err[1024];
    int rc = bind_text("[server]\n[sevrer]\nlisten = x\n", &cfg, err, sizeof(err));
    assert_int_equal(rc, OPSC_ESCHEMA);
    assert_non_null(strstr(err, ":2: [sevrer]: unknown section"));
    config_free(&cfg);
}

static void bad_enum_value_says_the_choices(void **state)
{
    (void)state;
    struct config cfg = {0};
    char err[1024];
    int rc = bind_text("[log]\nlevel = loud\n", &cfg, err, sizeof(err));
    assert_int_equal(rc, OPSC_ESCHEMA);
    assert_non_null(strstr(err, "invalid value 'loud': expected one of error|warn|info|debug"));
    config_free(&cfg);
}

static void syntax_error_names_the_line(void **state)
{
    (void)state;
    cfg_file *f = NULL;
    char err[512] = "";
    assert_int_equal(
        cfg_file_load(&f, write_conf("[server]\nlisten = x\n[broken\n"), err, sizeof(err)),
        OPSC_ESYNTAX);
    assert_non_null(strstr(err, ":3: syntax error"));
    assert_null(f);
}

static void key_outside_a_section_names_the_line(void **state)
{
    (void)state;
    cfg_file *f = NULL;
    char err[512] = "";
    assert_int_equal(cfg_file_load(&f, write_conf("; comment\nlisten = x\n"), err, sizeof(err)),
                     OPSC_ESYNTAX);
    assert_non_null(strstr(err, ":2: key outside of any [section]"));
}

static void missing_file_is_a_clear_error(void **state)
{
    (void)state;
    cfg_file *f = NULL;
    char err[512] = "";
    assert_int_equal(cfg_file_load(&f, "/nonexistent/opsc.conf", err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/opsc.conf: cannot open"));
}

static void flags_override_file_and_environment_overrides_flags(void **state)
{
    (void)state;
    cfg_file *f = NULL;
    struct config cfg = {0};
    char err[512];
    assert_int_equal(cfg_file_load(&f,
                                   write_conf("[server]\nlisten = 1.1.1.1:1\n[log]\n"
                                              "level = error\n"),
                                   err, sizeof(err)),
                     0);
    assert_int_equal(cfg_file_set(f, "server", "listen", "2.2.2.2:2", "--listen"), 0);
    assert_int_equal(cfg_file_set(f, "log", "level", "warn", "--log-level"), 0);
    setenv("OPSC_LOG_LEVEL", "debug", 1);
    assert_int_equal(config_bind_all(&cfg, f, err, sizeof(err)), 0);
    assert_string_equal(cfg.server.listen, "2.2.2.2:2");
    assert_int_equal(cfg.log.level, OPSC_LOG_DEBUG);
    config_free(&cfg);
}

static void bad_flag_value_names_the_flag(void **state)
{
    (void)state;
    cfg_file *f = NULL;
    struct config cfg = {0};
    char err[512];
    assert_int_equal(cfg_file_load(&f, NULL, err, sizeof(err)), 0);
    assert_int_equal(cfg_file_set(f, "log", "level", "chatty", "--log-level"), 0);
    assert_int_equal(config_bind_all(&cfg, f, err, sizeof(err)), OPSC_ESCHEMA);
    assert_non_null(strstr(err, "--log-level: [log] level: invalid value 'chatty'"));
    config_free(&cfg);
}

static void bad_environment_value_names_the_variable(void **state)
{
    (void)state;
    cfg_file *f = NULL;
    struct config cfg = {0};
    char err[512];
    setenv("OPSC_LOG_LEVEL", "chatty", 1);
    assert_int_equal(cfg_file_load(&f, NULL, err, sizeof(err)), 0);
    assert_int_equal(config_bind_all(&cfg, f, err, sizeof(err)), OPSC_ESCHEMA);
    assert_non_null(strstr(err, "environment OPSC_LOG_LEVEL"));
    config_free(&cfg);
}

static void repeated_plugin_dir_flags_join(void **state)
{
    (void)state;
    cfg_file *f = NULL;
    struct config cfg = {0};
    char err[512];
    assert_int_equal(
        cfg_file_load(&f, write_conf("[plugins]\ndirs = /from/file\n"), err, sizeof(err)), 0);
    assert_int_equal(cfg_file_append(f, "plugins", "dirs", "/a", "--plugin-dir"), 0);
    assert_int_equal(cfg_file_append(f, "plugins", "dirs", "/b", "--plugin-dir"), 0);
    assert_int_equal(config_bind_all(&cfg, f, err, sizeof(err)), 0);
    assert_string_equal(cfg.plugins.dirs, "/a:/b");
    config_free(&cfg);
}

static void env_names_are_derived_from_section_and_key(void **state)
{
    (void)state;
    char name[128];
    cfg_env_name("plugin.transport-ssh", "keepalive", name, sizeof(name));
    assert_string_equal(name, "OPSC_PLUGIN_TRANSPORT_SSH_KEEPALIVE");
}

static void durations_and_sizes_parse_with_units(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(cfg_parse_duration_ms("250ms", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(cfg_parse_duration_ms("30", &v), 0);
    assert_int_equal(v, 30000);
    assert_int_equal(cfg_parse_duration_ms("2h", &v), 0);
    assert_int_equal(v, 7200000);
    assert_int_equal(cfg_parse_duration_ms("1d", &v), 0);
    assert_int_equal(v, 86400000);
    assert_int_equal(cfg_parse_duration_ms("5x", &v), OPSC_EINVAL);
    assert_int_equal(cfg_parse_duration_ms("-5s", &v), OPSC_EINVAL);
    assert_int_equal(cfg_parse_duration_ms("99999999999999999d", &v), OPSC_ERANGE);
    assert_int_equal(cfg_parse_size("64k", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(cfg_parse_size("16MiB", &v), 0);
    assert_int_equal(v, 16 << 20);
    assert_int_equal(cfg_parse_size("2G", &v), 0);
    assert_int_equal(v, 2LL << 30);
    assert_int_equal(cfg_parse_size("9999999999T", &v), OPSC_ERANGE);
    assert_int_equal(cfg_parse_size("12q", &v), OPSC_EINVAL);
    assert_int_equal(cfg_parse_size("", &v), OPSC_EINVAL);
}

static void secret_values_are_not_echoed_in_errors(void **state)
{
    (void)state;
    struct s {
        int64_t n;
    } dst;
    static const opsc_cfg_entry map[] = {
        {"token", OPSC_CFG_INT, NULL, 0, 10, NULL, OPSC_CFG_SECRET, 0, "a secret number"},
        {NULL},
    };
    cfg_file *f = NULL;
    char err[512];
    assert_int_equal(
        cfg_file_load(&f, write_conf("[plugin.x]\ntoken = hunter2\n"), err, sizeof(err)), 0);
    assert_int_equal(cfg_bind(f, "plugin.x", map, &dst, err, sizeof(err)), OPSC_ESCHEMA);
    assert_null(strstr(err, "hunter2"));
    assert_non_null(strstr(err, "[plugin.x] token"));
    cfg_file_free(f);
}

static void required_key_missing_is_an_error(void **state)
{
    (void)state;
    struct s {
        const char *url;
    } dst;
    static const opsc_cfg_entry map[] = {
        {"url", OPSC_CFG_STRING, NULL, 0, -1, NULL, OPSC_CFG_REQUIRED, 0, "server URL"},
        {NULL},
    };
    cfg_file *f = NULL;
    char err[512];
    assert_int_equal(cfg_file_load(&f, NULL, err, sizeof(err)), 0);
    assert_int_equal(cfg_bind(f, "plugin.x", map, &dst, err, sizeof(err)), OPSC_ESCHEMA);
    assert_non_null(strstr(err, "[plugin.x] url: required key is missing"));
    cfg_file_free(f);
}

/* A plugin table as the reference and --print-config see it. */
static const opsc_cfg_entry ref_map[] = {
    {"wait", OPSC_CFG_DURATION, "90s", 1000, 86400000, NULL, OPSC_CFG_RELOAD, 0, "how long"},
    {"mode", OPSC_CFG_ENUM, "fast", 0, -1, "fast|safe", 0, 0, "how"},
    {"token", OPSC_CFG_STRING, "", 0, -1, NULL, OPSC_CFG_SECRET, 0, "a secret"},
    {"url", OPSC_CFG_STRING, NULL, 0, -1, NULL, OPSC_CFG_REQUIRED, 0, "server URL"},
    {NULL},
};

static char *captured(void (*write)(FILE *out, void *ud), void *ud)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    write(out, ud);
    fclose(out);
    return text;
}

static void write_conf_reference(FILE *out, void *ud)
{
    cfg_write_reference(out, CFG_REF_CONF, ud, 1);
}

static void write_man_reference(FILE *out, void *ud)
{
    cfg_write_reference(out, CFG_REF_MAN, ud, 1);
}

static void reference_documents_every_key_with_default_type_and_marks(void **state)
{
    (void)state;
    opsc_cfg_entry *copy = cfg_map_dup(ref_map);
    assert_non_null(copy);
    assert_true(copy[0].doc != ref_map[0].doc);
    assert_string_equal(copy[1].choices, "fast|safe");
    assert_null(copy[3].def);
    assert_null(copy[4].key);
    cfg_section_ref s = {"plugin.x-y", "what x-y does", copy};
    char *conf = captured(write_conf_reference, &s);
    assert_non_null(strstr(conf, "\n[server]\n; The REST API"));
    assert_non_null(strstr(conf, "\n[plugin.x-y]\n; what x-y does\n"));
    assert_non_null(strstr(conf, "; how long\n; (duration, 1s to 1d; reload)\n;wait = 90s\n"));
    assert_non_null(strstr(conf, "; (one of fast, safe)\n;mode = fast\n"));
    assert_non_null(strstr(conf, "; (secret)\n;token =\n"));
    assert_non_null(strstr(conf, "; (required)\n;url =\n"));
    char *man = captured(write_man_reference, &s);
    assert_non_null(strstr(man, ".SS [plugin.x\\-y]\n"));
    assert_non_null(strstr(man, "\\fBwait\\fR = \\fI90s\\fR\nhow long.\n"));
    assert_non_null(strstr(man, "Environment: \\fBOPSC_PLUGIN_X_Y_WAIT\\fR"));
    free(conf);
    free(man);
    cfg_map_free(copy);
}

static void effective_text_says_where_a_value_comes_from(void **state)
{
    (void)state;
    cfg_file *f = NULL;
    char err[512], origin[512];
    assert_int_equal(
        cfg_file_load(&f, write_conf("[plugin.x]\nwait = 5s\nmode = safe\n"), err, sizeof(err)), 0);
    assert_int_equal(cfg_file_set(f, "plugin.x", "mode", "fast", "--mode"), 0);
    setenv("OPSC_PLUGIN_X_TOKEN", "t0k", 1);
    assert_string_equal(cfg_effective_text(f, "plugin.x", &ref_map[0], origin, sizeof(origin)),
                        "5s");
    char want[128];
    snprintf(want, sizeof(want), "%s:2", path);
    assert_string_equal(origin, want);
    assert_string_equal(cfg_effective_text(f, "plugin.x", &ref_map[1], origin, sizeof(origin)),
                        "fast");
    assert_string_equal(origin, "--mode");
    assert_string_equal(cfg_effective_text(f, "plugin.x", &ref_map[2], origin, sizeof(origin)),
                        "t0k");
    assert_string_equal(origin, "environment OPSC_PLUGIN_X_TOKEN");
    assert_null(cfg_effective_text(f, "plugin.x", &ref_map[3], origin, sizeof(origin)));
    assert_string_equal(origin, "default");
    unsetenv("OPSC_PLUGIN_X_TOKEN");
    cfg_file_free(f);
}

int main(void)
{
    log_init(OPSC_LOG_ERROR, LOG_FORMAT_TEXT, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(defaults_apply_without_a_file, cleanup),
        cmocka_unit_test_teardown(file_values_are_typed, cleanup),
        cmocka_unit_test_teardown(value_out_of_bounds_names_file_line_and_key, cleanup),
        cmocka_unit_test_teardown(unknown_key_lists_valid_keys, cleanup),
        cmocka_unit_test_teardown(unknown_section_is_an_error, cleanup),
        cmocka_unit_test_teardown(bad_enum_value_says_the_choices, cleanup),
        cmocka_unit_test_teardown(syntax_error_names_the_line, cleanup),
        cmocka_unit_test_teardown(key_outside_a_section_names_the_line, cleanup),
        cmocka_unit_test_teardown(missing_file_is_a_clear_error, cleanup),
        cmocka_unit_test_teardown(flags_override_file_and_environment_overrides_flags, cleanup),
        cmocka_unit_test_teardown(bad_flag_value_names_the_flag, cleanup),
        cmocka_unit_test_teardown(bad_environment_value_names_the_variable, cleanup),
        cmocka_unit_test_teardown(repeated_plugin_dir_flags_join, cleanup),
        cmocka_unit_test(env_names_are_derived_from_section_and_key),
        cmocka_unit_test(durations_and_sizes_parse_with_units),
        cmocka_unit_test_teardown(tls_keys_bind_and_origins_name_where_they_came_from, cleanup),
        cmocka_unit_test_teardown(secret_values_are_not_echoed_in_errors, cleanup),
        cmocka_unit_test_teardown(required_key_missing_is_an_error, cleanup),
        cmocka_unit_test(reference_documents_every_key_with_default_type_and_marks),
        cmocka_unit_test_teardown(effective_text_says_where_a_value_comes_from, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
