/* test_transport_winrm.c - transport-winrm in the shared transport host, against the WinRM test
 * server (tests/winrm/server.py runs commands with /bin/sh, so the POSIX behaviours apply with
 * transport_options.shell "sh"). The WinRM specifics (auth modes, faults, PowerShell text) are in
 * tests/integration/test_winrm_transport*.py. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "behaviour.h"
#include "harness.h"

#ifndef WINRM_SO
#define WINRM_SO "plugins/transport-winrm/transport-winrm.so"
#endif
#ifndef WINRM_SERVER
#define WINRM_SERVER "tests/winrm/server.py"
#endif

static th_plugin plug;

typedef struct winrm_server {
    char dir[64];
    pid_t pid;
    int port;
} winrm_server;

static winrm_server basic_srv, ntlm_srv;

/* Starts server.py with `config` (JSON) and waits for the port it picked. */
static int server_start(winrm_server *s, const char *config)
{
    snprintf(s->dir, sizeof s->dir, "/tmp/opsc-winrm-XXXXXX");
    if (!mkdtemp(s->dir))
        return -1;
    char cfg[128], port_file[128];
    snprintf(cfg, sizeof cfg, "%s/config.json", s->dir);
    snprintf(port_file, sizeof port_file, "%s/port", s->dir);
    FILE *f = fopen(cfg, "w");
    if (!f)
        return -1;
    fputs(config, f);
    fclose(f);
    s->pid = fork();
    if (s->pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execl("/usr/bin/python3", "python3", WINRM_SERVER, "--config", cfg, "--port-file",
              port_file, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && s->pid > 0; i++) {
        char *text = th_read_file(port_file);
        s->port = text ? atoi(text) : 0;
        free(text);
        if (s->port > 0)
            return 0;
        usleep(100 * 1000);
    }
    return -1;
}

static void server_stop(winrm_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s->dir);
}

static opsc_conn *connect_to(const winrm_server *s, const char *auth, const char *options)
{
    opsc_target t = {sizeof(t)};
    t.name = "winrm-test";
    t.address = "127.0.0.1";
    t.port = s->port;
    t.os_family = "windows";
    t.options_json = options;
    t.connect_timeout_ms = 10000;
    opsc_credential c = {sizeof(c)};
    c.type = "winrm";
    c.username = "alice";
    c.password = "Winrm-Pass-1";
    c.auth = auth;
    th_conn r;
    assert_int_equal(th_connect(&plug, &t, &c, &r), 0);
    assert_int_equal(r.status, 0);
    assert_non_null(r.conn);
    return r.conn;
}

/* Basic over plain HTTP (the server allows it): fast, for the POSIX behaviours. */
static opsc_conn *connect_ok(void)
{
    return connect_to(&basic_srv, "basic",
                      "{\"scheme\": \"http\", \"shell\": \"sh\", \"allow_unencrypted\": true}");
}

BH_TEST(stdin_fed_command)
BH_TEST(timeout_stops_the_remote_command)
BH_TEST(cancel_leaves_no_remote_process)
BH_TEST(output_100mb_streams_with_flat_memory)
BH_TEST(put_and_get_with_mode_and_checksum)

static void exports_only_the_entry_symbol(void **state)
{
    (void)state;
    bh_exports_only_the_entry_symbol(WINRM_SO);
}

/* A default Windows host: NTLM with every message sealed. */
static void ntlm_sealed_exec_exit_codes_and_streams(void **state)
{
    (void)state;
    opsc_conn *conn = connect_to(&ntlm_srv, "ntlm", "{\"scheme\": \"http\", \"shell\": \"sh\"}");
    th_exec e;
    assert_int_equal(th_exec_run(&plug, conn, "exit 3", &e), 0);
    assert_int_equal(e.status, 0);
    assert_int_equal(e.exit_code, 3);
    assert_int_equal(th_exec_run(&plug, conn, "echo out; echo err >&2", &e), 0);
    assert_string_equal(e.out, "out\n");
    assert_string_equal(e.err, "err\n");
    assert_int_equal(
        th_exec_run(&plug, conn, "echo -1073741510 > \"$WINRM_TEST_EXIT_CODE_FILE\"", &e), 0);
    assert_int_equal(e.exit_code, -1073741510);
    th_close(&plug, conn);
}

static void close_cancels_running_commands(void **state)
{
    (void)state;
    bh_close_cancels_running_commands(&plug, connect_ok()); /* closes the connection itself */
}

static void wrong_password_is_eauth(void **state)
{
    (void)state;
    opsc_target t = {sizeof(t)};
    t.address = "127.0.0.1";
    t.port = ntlm_srv.port;
    t.options_json = "{\"scheme\": \"http\"}";
    opsc_credential c = {sizeof(c)};
    c.type = "winrm";
    c.username = "alice";
    c.password = "not-the-password";
    c.auth = "ntlm";
    th_conn r;
    assert_int_equal(th_connect(&plug, &t, &c, &r), OPSC_EAUTH);
    assert_int_equal(r.status, OPSC_EAUTH);
    assert_null(r.conn);
    assert_null(strstr(r.error, "not-the-password"));
}

static int setup(void **state)
{
    (void)state;
    const char *users = "\"users\": [{\"name\": \"alice\", \"password\": \"Winrm-Pass-1\"}]";
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"auth\": [\"basic\"], \"allow_unencrypted\": true, \"chunk_size\": 262144, "
             "\"request_log\": null, %s}",
             users);
    if (server_start(&basic_srv, cfg))
        return -1;
    snprintf(cfg, sizeof cfg, "{\"strict\": true, %s}", users);
    if (server_start(&ntlm_srv, cfg))
        return -1;
    return th_load(&plug, WINRM_SO, "operation_timeout = 2s\n");
}

static int teardown(void **state)
{
    (void)state;
    th_unload(&plug);
    server_stop(&basic_srv);
    server_stop(&ntlm_srv);
    return th_no_leaks();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exports_only_the_entry_symbol),
        cmocka_unit_test(ntlm_sealed_exec_exit_codes_and_streams),
        cmocka_unit_test(wrong_password_is_eauth),
        cmocka_unit_test(stdin_fed_command),
        cmocka_unit_test(timeout_stops_the_remote_command),
        cmocka_unit_test(cancel_leaves_no_remote_process),
        cmocka_unit_test(close_cancels_running_commands),
        cmocka_unit_test(output_100mb_streams_with_flat_memory),
        cmocka_unit_test(put_and_get_with_mode_and_checksum),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
