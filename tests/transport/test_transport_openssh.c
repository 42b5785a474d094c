/* test_transport_openssh.c - transport-openssh against real OpenSSH sshds on loopback: keys of
 * every kind (RSA where libssh2 cannot), passwords, host key policies, commands over the master,
 * cancel, files, jump hosts and certificates. */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "behaviour.h"
#include "harness.h"

#ifndef OPENSSH_SO
#define OPENSSH_SO "plugins/transport-openssh/transport-openssh.so"
#endif

static th_plugin plug;
static th_sshd sshd;     /* keys, password, keyboard-interactive */
static th_sshd sshd_kbd; /* keyboard-interactive only, MaxSessions 3 */
static th_sshd sshd_rsa; /* RSA user keys only (rsa-sha2-512/256): what libssh2 1.10 cannot do */
static char rundir[64] = "/tmp/opsc-openssh-rt-XXXXXX";
static char known[256];

static opsc_conn *connect_ok(void);

static opsc_target target_for(th_sshd *s, const char *policy, const char *keys)
{
    opsc_target t = {sizeof(t)};
    t.id = "00000000-0000-7000-8000-000000000002";
    t.name = "openssh-test";
    t.address = "127.0.0.1";
    t.port = s->port;
    t.os_family = "linux";
    t.host_key_policy = policy;
    t.known_host_keys = keys;
    t.connect_timeout_ms = 10000;
    t.options_json = "{}";
    return t;
}

static opsc_target trusted(void)
{
    return target_for(&sshd, "strict", known);
}

static char *key_text;

static opsc_credential key_cred(th_sshd *s, const char *file, const char *passphrase)
{
    free(key_text);
    key_text = th_sshd_file(s, file);
    opsc_credential c = {sizeof(c)};
    c.type = "ssh_key";
    c.username = s->user;
    c.private_key = key_text;
    c.passphrase = passphrase;
    return c;
}

static opsc_credential password_cred(th_sshd *s, const char *password)
{
    opsc_credential c = {sizeof(c)};
    c.type = "ssh_password";
    c.username = s->user;
    c.password = password;
    return c;
}

static opsc_conn *connect_ok(void)
{
    opsc_target t = trusted();
    opsc_credential c = key_cred(&sshd, "key_ed25519", NULL);
    th_conn r;
    int rc = th_connect(&plug, &t, &c, &r);
    if (rc != 0)
        fprintf(stderr, "connect: %s\n", r.error);
    assert_int_equal(rc, 0);
    assert_non_null(r.conn);
    return r.conn;
}

static void run_id(opsc_conn *conn, const char *expect)
{
    th_exec e;
    assert_int_equal(th_exec_run(&plug, conn, "id -un", &e), 0);
    assert_int_equal(e.status, 0);
    assert_int_equal(e.exit_code, 0);
    assert_string_equal(e.out, expect);
}

/* Connect with `c`, run id -un, close: the credential works end to end. */
static void runs_as_test_user(opsc_target *t, opsc_credential *c)
{
    th_conn r;
    int rc = th_connect(&plug, t, c, &r);
    if (rc)
        fprintf(stderr, "connect: %s\n", r.error);
    assert_int_equal(rc, 0);
    run_id(r.conn, "opsctest\n");
    th_close(&plug, r.conn);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(rundir))
        return -1;
    if (th_sshd_start(&sshd, NULL) < 0 ||
        th_sshd_start(
            &sshd_kbd,
            "--option 'PasswordAuthentication no' --option 'MaxSessions 3' --option 'UsePAM yes'") <
            0 ||
        th_sshd_start(&sshd_rsa, "--option 'PubkeyAcceptedAlgorithms rsa-sha2-512,rsa-sha2-256'") <
            0)
        return -1;
    snprintf(known, sizeof(known), "ssh-ed25519 %s\nssh-rsa %s\n", sshd.host_ed25519,
             sshd.host_rsa);
    char cfg[256];
    snprintf(cfg, sizeof(cfg),
             "runtime_dir = %s\nssh_config = none\nkeepalive = 5s\ncancel_grace = 1s\n", rundir);
    return th_load(&plug, OPENSSH_SO, cfg);
}

static int teardown(void **state)
{
    (void)state;
    th_unload(&plug);
    th_sshd_stop(&sshd);
    th_sshd_stop(&sshd_kbd);
    th_sshd_stop(&sshd_rsa);
    free(key_text);
    key_text = NULL;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", rundir); /* what a failed test left behind */
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", rundir);
    return th_no_leaks();
}

/* ---- plugin shape ------------------------------------------------------------------------------
 */

static void exports_only_the_entry_symbol(void **state)
{
    (void)state;
    bh_exports_only_the_entry_symbol(OPENSSH_SO);
}

static void unknown_config_key_is_refused(void **state)
{
    (void)state;
    th_plugin other;
    assert_int_equal(th_load(&other, OPENSSH_SO, "ssh_confg = none\n"), OPSC_ESCHEMA);
    assert_non_null(strstr(th_last_log(), "ssh_config"));
    other.t = NULL;
    th_unload(&other);
}

static void registers_openssh_with_limits_and_schema(void **state)
{
    (void)state;
    assert_string_equal(plug.t->name, "openssh");
    assert_int_equal(plug.t->default_port, 22);
    assert_int_equal(plug.t->max_sessions, 9);
    assert_string_equal(plug.t->credential_types, "ssh_key ssh_password");
    assert_non_null(strstr(plug.t->options_schema, "\"jump\""));
    struct stat st;
    assert_int_equal(stat(rundir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

static int validate(const char *json, char *err, size_t errlen)
{
    return plug.t->validate_options(plug.state, json, err, errlen);
}

static void options_are_checked(void **state)
{
    (void)state;
    char err[512];
    static const char *const good[] = {
        "{}",
        "{\"jump\": \"bastion.example.com\"}",
        "{\"jump\": [\"ops@10.0.0.1:2222\", \"[::1]:22\", "
        "\"0190d7a2-5c3e-7000-8000-00000000abcd\"]}",
        "{\"jump\": [{\"host\": \"b.example\", \"host_key_policy\": \"off\"}]}",
        "{\"certificate\": true, \"gssapi\": false}",
        "{\"options\": {\"Ciphers\": \"aes256-gcm@openssh.com\", \"ServerAliveInterval\": 10, "
        "\"Compression\": true, \"kexalgorithms\": \"^sntrup761x25519-sha512@openssh.com\"}}",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int rc = validate(good[i], err, sizeof(err));
        if (rc)
            fprintf(stderr, "%s: %s\n", good[i], err);
        assert_int_equal(rc, 0);
    }
    static const char *const bad[][2] = {
        {"{\"jumps\": \"x\"}", "unknown key 'jumps'"},
        {"{\"jump\": \"-oProxyCommand=sh\"}", "jump host"},
        {"{\"jump\": \"a b\"}", "jump host"},
        {"{\"jump\": \"host:99999\"}", "port"},
        {"{\"jump\": \"us%er@host\"}", "user name"},
        {"{\"jump\": [{\"host\": \"b\", \"host_key_policy\": \"tofu\"}]}", "must be a target"},
        {"{\"certificate\": \"yes\"}", "true or false"},
        {"{\"options\": {\"Ciphers\": \"aes256-ctr -oProxyCommand=x\"}}", "no spaces"},
        {"{\"options\": {\"Ciphers\": \"aes256-ctr\\nProxyCommand x\"}}", "no spaces"},
        {"{\"options\": {\"Ciphers\": \"%h\"}}", "no spaces"},
        {"{\"options\": {\"-oProxyCommand\": \"x\"}}", "not an ssh option name"},
        {"{\"options\": {\"Ciphers=x ProxyCommand\": \"x\"}}", "not an ssh option name"},
        {"{\"options\": {\"NoSuchOption\": \"x\"}}", "not one of the ssh options"},
        {"[]", "JSON object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(validate(bad[i][0], err, sizeof(err)), OPSC_ESCHEMA);
        if (!strstr(err, bad[i][1]))
            fprintf(stderr, "%s: %s\n", bad[i][0], err);
        assert_non_null(strstr(err, bad[i][1]));
    }
}

static void dangerous_options_are_refused_by_name(void **state)
{
    (void)state;
    static const char *const names[] = {
        "ProxyCommand",
        "LocalCommand",
        "PermitLocalCommand",
        "KnownHostsCommand",
        "ProxyJump",
        "PKCS11Provider",
        "Match",
        "Include",
        "IdentityFile",
        "ControlPath",
        "StrictHostKeyChecking",
        "UserKnownHostsFile",
        "RemoteCommand",
        "SecurityKeyProvider",
        "LocalForward",
        "ForwardAgent",
        "proxycommand",
        "XAuthLocation",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char json[200], err[512];
        snprintf(json, sizeof(json), "{\"options\": {\"%s\": \"x\"}}", names[i]);
        assert_int_equal(validate(json, err, sizeof(err)), OPSC_ESCHEMA);
        assert_non_null(strstr(err, "is refused"));
    }
}

/* ---- authentication -----------------------------------------------------------------------------
 */

static void key_auth_runs_a_command_and_reports_algorithms(void **state)
{
    (void)state;
    opsc_target t = trusted();
    opsc_credential c = key_cred(&sshd, "key_ed25519", NULL);
    th_conn r;
    assert_int_equal(th_connect(&plug, &t, &c, &r), 0);
    assert_string_equal(r.key_type, "ssh-ed25519");
    assert_string_equal(r.key_fp, sshd.host_ed25519);
    assert_false(r.learned);
    assert_true(plug.t->conn_usable(r.conn));
    run_id(r.conn, "opsctest\n");
    th_close(&plug, r.conn);
}

static void rsa_user_key_works_against_an_rsa_sha2_only_server(void **state)
{
    (void)state;
    char keys[128];
    snprintf(keys, sizeof(keys), "ssh-ed25519 %s\n", sshd_rsa.host_ed25519);
    opsc_target t = target_for(&sshd_rsa, "strict", keys);
    opsc_credential c = key_cred(&sshd_rsa, "key_rsa", NULL);
    runs_as_test_user(&t, &c);
}

static void pem_ecdsa_key_works(void **state)
{
    (void)state;
    opsc_target t = trusted();
    opsc_credential c = key_cred(&sshd, "key_ecdsa_pem", NULL);
    runs_as_test_user(&t, &c);
}

static void encrypted_key_with_passphrase(void **state)
{
    (void)state;
    opsc_target t = trusted();
    opsc_credential c = key_cred(&sshd, "key_ed25519_enc", sshd.passphrase);
    runs_as_test_user(&t, &c);
}

static void wrong_passphrase_is_eauth(void **state)
{
    (void)state;
    opsc_target t = trusted();
    opsc_credential c = key_cred(&sshd, "key_ed25519_enc", "not the passphrase");
    th_conn r;
    assert_int_equal(th_connect(&plug, &t, &c, &r), OPSC_EAUTH);
    assert_non_null(strstr(r.error, "passphrase"));
    assert_null(strstr(r.error, "not the passphrase"));
}

static void password_auth(void **state)
{
    (void)state;
    opsc_target t = trusted();
    opsc_credential c = password_cred(&sshd, sshd.password);
    runs_as_test_user(&t, &c);
}

static void keyboard_interactive_auth(void **state)
{
    (void)state;
    char keys[128];
    snprintf(keys, sizeof(keys), "ssh-ed25519 %s\n", sshd_kbd.host_ed25519);
    opsc_target t = target_for(&sshd_kbd, "strict", keys);
    opsc_credential c = password_cred(&sshd_kbd, sshd_kbd.password);
    runs_as_test_user(&t, &c);
}

static void wrong_password_names_offered_methods(void **state)
{
    (void)state;
    opsc_target t = trusted();
    opsc_credential c = password_cred(&sshd, "definitely-wrong");
    th_conn r;
    assert_int_equal(th_connect(&plug, &t, &c, &r), OPSC_EAUTH);
    assert_non_null(strstr(r.error, "publickey"));
    assert_non_null(strstr(r.error, "tried: password"));
    assert_null(strstr(r.error, "definitely-wrong"));
}

/* ---- host keys
 * ----------------------------------------------------------------------------------- */

static void strict_unknown_host_key_fails_with_fingerprint(void **state)
{
    (void)state;
    opsc_target t = target_for(&sshd, "strict", "");
    opsc_credential c = key_cred(&sshd, "key_ed25519", NULL);
    th_conn r;
    assert_int_equal(th_connect(&plug, &t, &c, &r), OPSC_EHOSTKEY);
    assert_non_null(strstr(r.error, sshd.host_ed25519));
    assert_non_null(strstr(r.error, "strict"));
}

static void tofu_learns_then_a_changed_key_is_refused(void **state)
{
    (void)state;
    opsc_target t = target_for(&sshd, "tofu", "");
    opsc_credential c = key_cred(&sshd, "key_ed25519", NULL);
    th_conn r;
    assert_int_equal(th_connect(&plug, &t, &c, &r), 0);
    assert_true(r.learned);
    assert_string_equal(r.key_fp, sshd.host_ed25519);
    th_close(&plug, r.conn);
    const char *old = "ssh-ed25519 SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
    t = target_for(&sshd, "tofu", old);
    c = key_cred(&sshd, "key_ed25519", NULL);
    assert_int_equal(th_connect(&plug, &t, &c, &r), OPSC_EHOSTKEY);
    assert_non_null(strstr(r.error, "CHANGED"));
    assert_non_null(strstr(r.error, "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    assert_non_null(strstr(r.error, sshd.host_ed25519));
}

static void a_recorded_rsa_key_is_the_one_asked_for(void **state)
{
    (void)state;
    char keys[128];
    snprintf(keys, sizeof(keys), "ssh-rsa %s\n", sshd.host_rsa);
    opsc_target t = target_for(&sshd, "strict", keys);
    opsc_credential c = key_cred(&sshd, "key_ed25519", NULL);
    th_conn r;
    assert_int_equal(th_connect(&plug, &t, &c, &r), 0);
    assert_string_equal(r.key_type, "ssh-rsa");
    assert_string_equal(r.key_fp, sshd.host_rsa);
    th_close(&plug, r.conn);
}

static void policy_off_accepts_with_a_warning(void **state)
{
    (void)state;
    opsc_target t = target_for(&sshd, "off", "");
    opsc_credential c = key_cred(&sshd, "key_ed25519", NULL);
    th_conn r;
    assert_int_equal(th_connect(&plug, &t, &c, &r), 0);
    assert_non_null(strstr(r.warning, "off"));
    assert_non_null(strstr(r.warning, sshd.host_ed25519));
    th_close(&plug, r.conn);
}

/* ---- connection failures
 * ----------------------------------------------------------------------------- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static void connection_refused(void **state)
{
    (void)state;
    opsc_target t = trusted();
    t.port = free_port();
    opsc_credential c = key_cred(&sshd, "key_ed25519", NULL);
    th_conn r;
    assert_int_equal(th_connect(&plug, &t, &c, &r), OPSC_ECONNREFUSED);
    assert_non_null(strstr(r.error, "refused"));
}

static void unknown_name_is_edns(void **state)
{
    (void)state;
    opsc_target t = trusted();
    t.address = "no-such-host.invalid";
    opsc_credential c = key_cred(&sshd, "key_ed25519", NULL);
    th_conn r;
    assert_int_equal(th_connect(&plug, &t, &c, &r), OPSC_EDNS);
    assert_non_null(strstr(r.error, "no-such-host.invalid"));
}

static void silent_server_times_out(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 16), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    opsc_target t = trusted();
    t.port = ntohs(a.sin_port);
    t.connect_timeout_ms = 1500;
    opsc_credential c = key_cred(&sshd, "key_ed25519", NULL);
    th_conn r;
    uint64_t t0 = uv_hrtime();
    assert_int_equal(th_connect(&plug, &t, &c, &r), OPSC_ETIMEDOUT);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_true(ms >= 1000 && ms < 5000);
    assert_non_null(strstr(r.error, "handshake") ? r.error : strstr(r.error, "banner"));
    close(fd);
}

/* ---- commands
 * --------------------------------------------------------------------------------------- */

BH_TEST(exit_codes_and_signals)
BH_TEST(env_and_cwd)
BH_TEST(stdin_fed_command)
BH_TEST(output_100mb_streams_with_flat_memory)
BH_TEST(put_and_get_with_mode_and_checksum)
BH_TEST(sudo_without_a_password_prompt_keeps_stdin_clean)

/* The behaviour tests count `sleep 600.5` machine-wide; other suites run them at the same
 * time on this machine, so these use a sleep of their own. */
static char tag[32];

static const char *unique_sleep(const char *fmt)
{
    static char cmd[128];
    snprintf(tag, sizeof(tag), "sleep 7%05d.%d", getpid() % 100000, rand() % 1000);
    snprintf(cmd, sizeof(cmd), fmt, tag, tag);
    return cmd;
}

static void timeout_stops_the_remote_command(void **state)
{
    (void)state;
    opsc_conn *conn = connect_ok();
    opsc_exec_req req = {sizeof(req)};
    req.command = unique_sleep("%s");
    req.timeout_ms = 500;
    th_exec e;
    assert_int_equal(th_exec_start(&plug, conn, &req, &e), 0);
    assert_true(th_exec_wait(&e, 15000));
    assert_int_equal(e.status, OPSC_ETIMEDOUT);
    assert_int_equal(bh_count_processes(tag), 0);
    assert_true(plug.t->conn_usable(conn));
    th_close(&plug, conn);
}

static void cancel_leaves_no_remote_process(void **state)
{
    (void)state;
    opsc_conn *conn = connect_ok();
    opsc_exec_req req = {sizeof(req)};
    req.command = unique_sleep("%s & %s; wait"); /* the background child goes too */
    th_exec e;
    assert_int_equal(th_exec_start(&plug, conn, &req, &e), 0);
    bool never = false;
    for (int i = 0; i < 100 && bh_count_processes(tag) < 2; i++)
        th_run_until(&never, 100);
    assert_int_equal(bh_count_processes(tag), 2);
    plug.t->exec_cancel(e.ex);
    assert_true(th_exec_wait(&e, 15000));
    assert_int_equal(e.status, OPSC_ECANCELED);
    assert_int_equal(bh_count_processes(tag), 0);
    run_id(conn, "opsctest\n"); /* the connection is still good */
    th_close(&plug, conn);
}

/* Cancelled before the process group was known: it is stopped once it is. */
static void cancel_right_after_the_start_leaves_no_remote_process(void **state)
{
    (void)state;
    opsc_conn *conn = connect_ok();
    opsc_exec_req req = {sizeof(req)};
    req.command = unique_sleep("%s");
    th_exec e;
    assert_int_equal(th_exec_start(&plug, conn, &req, &e), 0);
    plug.t->exec_cancel(e.ex);
    assert_true(th_exec_wait(&e, 15000));
    assert_int_equal(e.status, OPSC_ECANCELED);
    bool never = false;
    th_run_until(&never, 300);
    assert_int_equal(bh_count_processes(tag), 0);
    run_id(conn, "opsctest\n");
    th_close(&plug, conn);
}

static void close_cancels_running_commands(void **state)
{
    (void)state;
    opsc_conn *conn = connect_ok();
    opsc_exec_req req = {sizeof(req)};
    req.command = unique_sleep("%s");
    th_exec e;
    assert_int_equal(th_exec_start(&plug, conn, &req, &e), 0);
    bool never = false;
    for (int i = 0; i < 100 && bh_count_processes(tag) < 1; i++)
        th_run_until(&never, 100);
    assert_int_equal(bh_count_processes(tag), 1);
    th_close(&plug, conn);
    assert_true(e.done);
    assert_int_equal(e.status, OPSC_ECANCELED);
    for (int i = 0; i < 50 && bh_count_processes(tag) > 0; i++)
        th_run_until(&never, 100);
    assert_int_equal(bh_count_processes(tag), 0); /* stopped on the target before the close */
}

static void pty_is_not_offered(void **state)
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

static void concurrent_commands_on_one_connection(void **state)
{
    (void)state;
    opsc_conn *conn = connect_ok();
    enum { N = 8 };
    static th_exec e[N];
    char cmds[N][64];
    for (int i = 0; i < N; i++) {
        snprintf(cmds[i], sizeof(cmds[i]), "sleep 0.3; echo %d", i);
        opsc_exec_req req = {sizeof(req)};
        req.command = cmds[i];
        assert_int_equal(th_exec_start(&plug, conn, &req, &e[i]), 0);
    }
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < N; i++) {
        assert_true(th_exec_wait(&e[i], 30000));
        char want[16];
        snprintf(want, sizeof(want), "%d\n", i);
        assert_string_equal(e[i].out, want);
    }
    assert_true((uv_hrtime() - t0) / 1000000 < 2000); /* in parallel */
    th_close(&plug, conn);
}

static void server_refusing_a_session_fails_that_command_only(void **state)
{
    (void)state;
    char keys[128];
    snprintf(keys, sizeof(keys), "ssh-ed25519 %s\n", sshd_kbd.host_ed25519);
    opsc_target t = target_for(&sshd_kbd, "strict", keys);
    opsc_credential c = password_cred(&sshd_kbd, sshd_kbd.password);
    th_conn r;
    assert_int_equal(th_connect(&plug, &t, &c, &r), 0);
    enum { N = 5 };
    static th_exec e[N];
    for (int i = 0; i < N; i++) {
        opsc_exec_req req = {sizeof(req)};
        req.command = "sleep 0.5";
        assert_int_equal(th_exec_start(&plug, r.conn, &req, &e[i]), 0);
    }
    int refused = 0;
    for (int i = 0; i < N; i++) {
        assert_true(th_exec_wait(&e[i], 30000));
        if (e[i].status) {
            assert_int_equal(e[i].status, OPSC_EPROTO);
            assert_non_null(strstr(e[i].error, "MaxSessions"));
            refused++;
        }
    }
    assert_int_equal(refused, 2);
    assert_true(plug.t->conn_usable(r.conn));
    run_id(r.conn, "opsctest\n");
    th_close(&plug, r.conn);
}

static void commands_never_reach_a_process_list(void **state)
{
    (void)state;
    opsc_conn *conn = connect_ok();
    opsc_exec_req req = {sizeof(req)};
    req.command = "sleep 2.2 # opsc-secret-marker-4711";
    th_exec e;
    assert_int_equal(th_exec_start(&plug, conn, &req, &e), 0);
    bool never = false;
    th_run_until(&never, 500);
    /* on the target it runs, of course; locally no ssh process carries it */
    FILE *f = popen("{ for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done; } "
                    "2>/dev/null | grep '^/usr/bin/ssh\\|^ssh' | grep -c opsc-secret-marker",
                    "r");
    int n = -1;
    assert_int_equal(fscanf(f, "%d", &n), 1);
    pclose(f);
    assert_int_equal(n, 0);
    assert_true(th_exec_wait(&e, 10000));
    th_close(&plug, conn);
}

/* ---- privilege escalation
 * -------------------------------------------------------------------------- */

static void sudo_with_password(void **state)
{
    (void)state;
    opsc_conn *conn = connect_ok();
    opsc_exec_req req = {sizeof(req)};
    req.command = "id -un; cat";
    req.become_user = "root";
    req.become_password = sshd.password;
    req.stdin_open = true;
    th_exec e;
    assert_int_equal(th_exec_start(&plug, conn, &req, &e), 0);
    assert_int_equal(plug.t->exec_write(e.ex, "stdin line\n", 11), 0);
    assert_int_equal(plug.t->exec_write(e.ex, "", 0), 0);
    assert_true(th_exec_wait(&e, 30000));
    assert_int_equal(e.exit_code, 0);
    assert_string_equal(e.out, "root\nstdin line\n");
    assert_null(strstr(e.err, sshd.password));
    th_close(&plug, conn);
}

static void sudo_wrong_password_is_eauth(void **state)
{
    (void)state;
    opsc_conn *conn = connect_ok();
    opsc_exec_req req = {sizeof(req)};
    req.command = "id -un";
    req.become_user = "root";
    req.become_password = "wrong-password";
    th_exec e;
    assert_int_equal(th_exec_start(&plug, conn, &req, &e), 0);
    assert_true(th_exec_wait(&e, 30000));
    assert_int_equal(e.status, OPSC_EAUTH);
    assert_non_null(strstr(e.error, "sudo"));
    th_close(&plug, conn);
}

/* The suite copies 128 MiB; OPSC_OPENSSH_BIG_FILE=1073741824 runs the full gigabyte. */
static void big_put_and_get_with_checksums(void **state)
{
    (void)state;
    const char *env = getenv("OPSC_OPENSSH_BIG_FILE");
    opsc_conn *conn = connect_ok();
    bh_big_put_and_get(&plug, conn, env ? strtoull(env, NULL, 10) : 128ULL << 20);
    th_close(&plug, conn);
}

/* ---- scale ------------------------------------------------------------------------------------
 */

static void two_hundred_connections_at_once(void **state)
{
    (void)state;
    enum { N = 200 };
    static th_conn r[N];
    static th_exec e[N];
    /* The suite runs 200 targets through the daemon (test_runs_openssh.py); this is the
     * plugin alone, for OPSC_OPENSSH_SCALE=N. */
    int n = getenv("OPSC_OPENSSH_SCALE") ? atoi(getenv("OPSC_OPENSSH_SCALE")) : 0;
    if (n <= 0 || n > N)
        skip();
    opsc_target t = trusted();
    t.connect_timeout_ms = 120000; /* 200 handshakes share two cores with everything else */
    opsc_credential c = key_cred(&sshd, "key_ed25519", NULL);
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < n; i++)
        assert_int_equal(th_connect_start(&plug, &t, &c, &r[i]), 0);
    uint64_t t_started = uv_hrtime();
    for (int i = 0; i < n; i++) {
        assert_true(th_run_until(&r[i].done, 120000));
        if (r[i].status)
            fprintf(stderr, "conn %d: %s\n", i, r[i].error);
        assert_int_equal(r[i].status, 0);
    }
    uint64_t t_conn = uv_hrtime();
    for (int i = 0; i < n; i++) {
        opsc_exec_req req = {sizeof(req)};
        req.command = "echo ok";
        assert_int_equal(th_exec_start(&plug, r[i].conn, &req, &e[i]), 0);
    }
    for (int i = 0; i < n; i++) {
        assert_true(th_exec_wait(&e[i], 120000));
        assert_string_equal(e[i].out, "ok\n");
    }
    fprintf(stderr, "200 connections: started in %.2f s, up in %.2f s, a command on each %.2f s\n",
            (double)(t_started - t0) / 1e9, (double)(t_conn - t0) / 1e9,
            (double)(uv_hrtime() - t_conn) / 1e9);
    for (int i = 0; i < n; i++)
        th_close(&plug, r[i].conn);
}

static void loop_closes_clean(void **state)
{
    (void)state;
    assert_true(th_loop_drain());
    DIR *d = opendir(rundir);
    assert_non_null(d);
    int left = 0;
    for (struct dirent *e; (e = readdir(d));)
        left += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(left, 0); /* every socket and certificate file went with its master */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exports_only_the_entry_symbol),
        cmocka_unit_test(unknown_config_key_is_refused),
        cmocka_unit_test(registers_openssh_with_limits_and_schema),
        cmocka_unit_test(options_are_checked),
        cmocka_unit_test(dangerous_options_are_refused_by_name),
        cmocka_unit_test(key_auth_runs_a_command_and_reports_algorithms),
        cmocka_unit_test(rsa_user_key_works_against_an_rsa_sha2_only_server),
        cmocka_unit_test(pem_ecdsa_key_works),
        cmocka_unit_test(encrypted_key_with_passphrase),
        cmocka_unit_test(wrong_passphrase_is_eauth),
        cmocka_unit_test(password_auth),
        cmocka_unit_test(keyboard_interactive_auth),
        cmocka_unit_test(wrong_password_names_offered_methods),
        cmocka_unit_test(strict_unknown_host_key_fails_with_fingerprint),
        cmocka_unit_test(tofu_learns_then_a_changed_key_is_refused),
        cmocka_unit_test(a_recorded_rsa_key_is_the_one_asked_for),
        cmocka_unit_test(policy_off_accepts_with_a_warning),
        cmocka_unit_test(connection_refused),
        cmocka_unit_test(unknown_name_is_edns),
        cmocka_unit_test(silent_server_times_out),
        cmocka_unit_test(exit_codes_and_signals),
        cmocka_unit_test(env_and_cwd),
        cmocka_unit_test(stdin_fed_command),
        cmocka_unit_test(pty_is_not_offered),
        cmocka_unit_test(concurrent_commands_on_one_connection),
        cmocka_unit_test(server_refusing_a_session_fails_that_command_only),
        cmocka_unit_test(commands_never_reach_a_process_list),
        cmocka_unit_test(timeout_stops_the_remote_command),
        cmocka_unit_test(cancel_leaves_no_remote_process),
        cmocka_unit_test(cancel_right_after_the_start_leaves_no_remote_process),
        cmocka_unit_test(close_cancels_running_commands),
        cmocka_unit_test(output_100mb_streams_with_flat_memory),
        cmocka_unit_test(sudo_with_password),
        cmocka_unit_test(sudo_without_a_password_prompt_keeps_stdin_clean),
        cmocka_unit_test(sudo_wrong_password_is_eauth),
        cmocka_unit_test(put_and_get_with_mode_and_checksum),
        cmocka_unit_test(big_put_and_get_with_checksums),
        cmocka_unit_test(two_hundred_connections_at_once),
        cmocka_unit_test(loop_closes_clean),
    };
    if (geteuid() != 0) {
        fprintf(stderr, "skipped: the transport tests run as root\n");
        return 77;
    }
    if (getenv("TH_FILTER"))
        cmocka_set_test_filter(getenv("TH_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
