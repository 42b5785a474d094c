/* test_transport_local.c - the local transport: the same behaviour as SSH, on the appliance itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "behaviour.h"
#include "harness.h"

#ifndef LOCAL_SO
#define LOCAL_SO "plugins/transport-local/transport-local.so"
#endif

#define LOCAL_USER "opsconductor-local" /* scripts/deps creates it */
#define SUDOERS    "/etc/sudoers.d/opsc-test-local"

static th_plugin plug;
static char uid_line[32];

/* The become tests: the local-steps user may run commands as nobody. */
static void write_sudoers(void)
{
    struct passwd *pw = getpwnam(LOCAL_USER);
    snprintf(uid_line, sizeof(uid_line), "%u\n", pw ? (unsigned)pw->pw_uid : 0u);
    FILE *f = fopen(SUDOERS, "w");
    if (f) {
        fputs(LOCAL_USER " ALL=(nobody) NOPASSWD: ALL\n", f);
        fclose(f);
        chmod(SUDOERS, 0440);
    }
}

static opsc_conn *connect_ok(void)
{
    opsc_target t = {sizeof(t)};
    t.name = "appliance";
    t.address = "localhost";
    t.os_family = "linux";
    opsc_credential c = {sizeof(c)};
    th_conn r;
    assert_int_equal(th_connect(&plug, &t, &c, &r), 0);
    assert_non_null(r.conn);
    return r.conn;
}

BH_TEST(exit_codes_and_signals)
BH_TEST(env_and_cwd)
BH_TEST(stdin_fed_command)
BH_TEST(timeout_stops_the_remote_command)
BH_TEST(cancel_leaves_no_remote_process)
BH_TEST(cancel_at_any_moment_of_the_start_leaves_nothing)
BH_TEST(output_100mb_streams_with_flat_memory)
BH_TEST(put_and_get_with_mode_and_checksum)
BH_TEST(sudo_without_a_password_prompt_keeps_stdin_clean)

static int setup(void **state)
{
    (void)state;
    return th_load(&plug, LOCAL_SO, "cancel_grace = 1s\n");
}

static int teardown(void **state)
{
    (void)state;
    th_unload(&plug);
    return th_no_leaks();
}

static void exports_only_the_entry_symbol(void **state)
{
    (void)state;
    bh_exports_only_the_entry_symbol(LOCAL_SO);
}

static void pty_is_not_supported(void **state)
{
    (void)state;
    opsc_conn *conn = connect_ok();
    opsc_exec_req req = {sizeof(req)};
    req.command = "tty";
    req.pty = true;
    th_exec e;
    assert_int_equal(th_exec_start(&plug, conn, &req, &e), OPSC_ENOTSUP);
    th_close(&plug, conn);
}

/* Local commands run as the local-steps user, never as the daemon's (root
 * here): `id` says so, and the daemon's environment does not reach them. */
static void commands_run_as_the_local_steps_user(void **state)
{
    (void)state;
    setenv("OPSC_MASTER_KEY", "must-not-leak", 1);
    opsc_conn *conn = connect_ok();
    th_exec e;
    assert_int_equal(th_exec_run(&plug, conn, "id -un; id -u; echo \"key=$OPSC_MASTER_KEY\"", &e),
                     0);
    unsetenv("OPSC_MASTER_KEY");
    assert_int_equal(e.exit_code, 0);
    char want[128];
    snprintf(want, sizeof(want), LOCAL_USER "\n%skey=\n", uid_line);
    assert_string_equal(e.out, want);
    th_close(&plug, conn);
}

/* sudo from the local-steps user to nobody (NOPASSWD in the sudoers entry
 * main() adds): the password line must not reach the command. */
static void sudo_as_another_user(void **state)
{
    (void)state;
    opsc_conn *conn = connect_ok();
    opsc_exec_req req = {sizeof(req)};
    req.command = "id -un";
    req.become_user = "nobody";
    th_exec e;
    assert_int_equal(th_exec_start(&plug, conn, &req, &e), 0);
    assert_true(th_exec_wait(&e, 30000));
    assert_int_equal(e.exit_code, 0);
    assert_string_equal(e.out, "nobody\n");
    th_close(&plug, conn);
}

static void close_cancels_running_commands(void **state)
{
    (void)state;
    bh_close_cancels_running_commands(&plug, connect_ok()); /* closes the connection itself */
}

static void write_script(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0755);
}

/* The target's sha256sum disagrees (a fake one first in PATH, set by the
 * shell the plugin is configured with): ECORRUPT, and nothing is left at
 * the destination. */
static void checksum_mismatch_is_ecorrupt_and_leaves_nothing(void **state)
{
    (void)state;
    const char *bin = "/tmp/opsc-fakebin";
    mkdir(bin, 0755);
    write_script("/tmp/opsc-fakebin/sha256sum",
                 "#!/bin/sh\ncat > /dev/null\necho "
                 "0000000000000000000000000000000000000000000000000000000000000000 '  -'\n");
    write_script("/tmp/opsc-fakebin/sh",
                 "#!/bin/sh\nPATH=/tmp/opsc-fakebin:$PATH exec /bin/sh \"$@\"\n");
    unlink("/tmp/opsc-corrupt.dst"); /* a stale one, another user's, would stay */
    FILE *f = fopen("/tmp/opsc-corrupt.src", "w");
    fputs("payload\n", f);
    fclose(f);
    th_plugin fake;
    assert_int_equal(th_load(&fake, LOCAL_SO, "shell = /tmp/opsc-fakebin/sh\n"), 0);
    opsc_target t = {sizeof(t)};
    opsc_credential c = {sizeof(c)};
    th_conn r;
    int crc = th_connect(&fake, &t, &c, &r);
    if (crc)
        fprintf(stderr, "connect: %s\n", r.error);
    assert_int_equal(crc, 0);
    opsc_conn *conn = r.conn;
    th_xfer x;
    int rc = th_put(&fake, conn, "/tmp/opsc-corrupt.src", "/tmp/opsc-corrupt.dst", -1, &x);
    assert_int_equal(rc, OPSC_ECORRUPT);
    assert_non_null(strstr(x.error, "checksum mismatch"));
    assert_int_equal(access("/tmp/opsc-corrupt.dst", F_OK), -1);
    assert_int_not_equal(system("ls /tmp/opsc-corrupt.dst.opsc-* >/dev/null 2>&1"), 0);
    th_close(&fake, conn);
    th_unload(&fake);
    unlink("/tmp/opsc-corrupt.src");
    unlink("/tmp/opsc-fakebin/sha256sum");
    unlink("/tmp/opsc-fakebin/sh");
    rmdir(bin);
}

static void missing_shell_is_enoent(void **state)
{
    (void)state;
    th_plugin other;
    assert_int_equal(th_load(&other, LOCAL_SO, "shell = /no/such/sh\n"), 0);
    opsc_target t = {sizeof(t)};
    opsc_credential c = {sizeof(c)};
    th_conn r;
    assert_int_equal(th_connect(&other, &t, &c, &r), 0);
    th_exec e; /* the helper finds out when it execs: on_done says why */
    assert_int_equal(th_exec_run(&other, r.conn, "true", &e), 0);
    assert_int_equal(e.status, OPSC_ENOENT);
    assert_non_null(strstr(e.error, "No such file"));
    th_close(&other, r.conn);
    th_unload(&other);
}

static void loop_closes_clean(void **state)
{
    (void)state;
    assert_true(th_loop_drain());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exports_only_the_entry_symbol),
        cmocka_unit_test(exit_codes_and_signals),
        cmocka_unit_test(env_and_cwd),
        cmocka_unit_test(pty_is_not_supported),
        cmocka_unit_test(stdin_fed_command),
        cmocka_unit_test(timeout_stops_the_remote_command),
        cmocka_unit_test(cancel_leaves_no_remote_process),
        cmocka_unit_test(cancel_at_any_moment_of_the_start_leaves_nothing),
        cmocka_unit_test(close_cancels_running_commands),
        cmocka_unit_test(output_100mb_streams_with_flat_memory),
        cmocka_unit_test(commands_run_as_the_local_steps_user),
        cmocka_unit_test(sudo_as_another_user),
        cmocka_unit_test(sudo_without_a_password_prompt_keeps_stdin_clean),
        cmocka_unit_test(put_and_get_with_mode_and_checksum),
        cmocka_unit_test(checksum_mismatch_is_ecorrupt_and_leaves_nothing),
        cmocka_unit_test(missing_shell_is_enoent),
        cmocka_unit_test(loop_closes_clean),
    };
    if (geteuid() != 0) { /* the fixture creates a user, sudoers entries, sshd */
        fprintf(stderr, "skipped: the transport tests run as root\n");
        return 77; /* meson: skipped */
    }
    if (getenv("TH_FILTER"))
        cmocka_set_test_filter(getenv("TH_FILTER"));
    write_sudoers();
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    unlink(SUDOERS);
    return rc;
}
