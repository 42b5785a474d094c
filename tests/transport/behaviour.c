/* behaviour.c - transport behaviour tests shared by the SSH and local suites (cmocka asserts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "behaviour.h"

void bh_exports_only_the_entry_symbol(const char *so)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "nm -D --defined-only %s", so);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        const char *name = strrchr(line, ' ');
        assert_non_null(name);
        assert_string_equal(name + 1, "opsc_plugin_entry");
        n++;
    }
    pclose(f);
    assert_int_equal(n, 1);
}

int bh_count_processes(const char *pattern)
{
    char cmd[256];
    /* anchored, so the shell running pgrep does not count itself */
    snprintf(cmd, sizeof(cmd), "pgrep -f -c '^%s$'", pattern);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = -1;
        pclose(f);
    }
    return n;
}

/* "sleep 600.<pid><tag>": a command line no other test process on the machine
 * has, so counting it counts only this test's commands. */
static const char *sleep_cmd(char *buf, size_t n, int tag)
{
    snprintf(buf, n, "sleep 600.%d%d", (int)getpid(), tag);
    return buf;
}

int bh_await_processes(const char *pattern, int want, uint32_t ms)
{
    int n = bh_count_processes(pattern);
    bool never = false;
    /* A signalled process dies when the kernel next schedules it, and a
     * command starts when its server gets to it: on a loaded machine both take
     * a while, so poll for the count instead of reading it once. */
    for (uint32_t waited = 0; n != want && waited < ms; waited += 50) {
        th_run_until(&never, 50);
        n = bh_count_processes(pattern);
    }
    return n;
}

void bh_exit_codes_and_signals(th_plugin *p, opsc_conn *conn)
{
    th_exec e;
    assert_int_equal(th_exec_run(p, conn, "exit 3", &e), 0);
    assert_int_equal(e.status, 0);
    assert_int_equal(e.exit_code, 3);
    assert_string_equal(e.exit_signal, "");
    assert_int_equal(th_exec_run(p, conn, "kill -TERM $$", &e), 0);
    assert_int_equal(e.status, 0);
    assert_string_equal(e.exit_signal, "TERM");
    assert_int_equal(th_exec_run(p, conn, "echo out; echo err >&2; exit 0", &e), 0);
    assert_string_equal(e.out, "out\n");
    assert_string_equal(e.err, "err\n");
}

void bh_env_and_cwd(th_plugin *p, opsc_conn *conn)
{
    const char *env[] = {"GREETING=hello 'world'", "N=42", NULL};
    opsc_exec_req req = {sizeof(req)};
    req.command = "echo \"$GREETING $N\"; pwd";
    req.env = env;
    req.cwd = "/tmp";
    th_exec e;
    assert_int_equal(th_exec_start(p, conn, &req, &e), 0);
    assert_true(th_exec_wait(&e, 30000));
    assert_string_equal(e.out, "hello 'world' 42\n/tmp\n");
    req = (opsc_exec_req){sizeof(req)};
    req.command = "true";
    req.cwd = "/no/such/dir";
    assert_int_equal(th_exec_start(p, conn, &req, &e), 0);
    assert_true(th_exec_wait(&e, 30000));
    assert_int_equal(e.exit_code, 126);
}

void bh_stdin_fed_command(th_plugin *p, opsc_conn *conn)
{
    opsc_exec_req req = {sizeof(req)};
    req.command = "sha256sum";
    req.stdin_open = true;
    th_exec e;
    assert_int_equal(th_exec_start(p, conn, &req, &e), 0);
    assert_int_equal(p->t->exec_write(e.ex, "hello ", 6), 0);
    assert_int_equal(p->t->exec_write(e.ex, "world\n", 6), 0);
    assert_int_equal(p->t->exec_write(e.ex, "", 0), 0);
    assert_int_equal(p->t->exec_write(e.ex, "late", 4), OPSC_ESTATE);
    assert_true(th_exec_wait(&e, 30000));
    assert_int_equal(e.exit_code, 0);
    assert_non_null(
        strstr(e.out, "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"));
    assert_true(e.drained >= 1);
}

void bh_timeout_stops_the_remote_command(th_plugin *p, opsc_conn *conn)
{
    opsc_exec_req req = {sizeof(req)};
    char sleeper[64];
    req.command = sleep_cmd(sleeper, sizeof(sleeper), 25);
    req.timeout_ms = 500;
    th_exec e;
    assert_int_equal(th_exec_start(p, conn, &req, &e), 0);
    assert_true(th_exec_wait(&e, 15000));
    assert_int_equal(e.status, OPSC_ETIMEDOUT);
    assert_int_equal(bh_await_processes(sleeper, 0, 10000), 0);
    assert_true(p->t->conn_usable(conn));
}

void bh_cancel_leaves_no_remote_process(th_plugin *p, opsc_conn *conn)
{
    opsc_exec_req req = {sizeof(req)};
    /* a child in the background too: the whole process group must go */
    char sleeper[64], cmd[160];
    sleep_cmd(sleeper, sizeof(sleeper), 5);
    snprintf(cmd, sizeof(cmd), "%s & %s; wait", sleeper, sleeper);
    req.command = cmd;
    th_exec e;
    assert_int_equal(th_exec_start(p, conn, &req, &e), 0);
    assert_int_equal(bh_await_processes(sleeper, 2, 10000), 2);
    p->t->exec_cancel(e.ex);
    assert_true(th_exec_wait(&e, 15000));
    assert_int_equal(e.status, OPSC_ECANCELED);
    assert_int_equal(bh_await_processes(sleeper, 0, 10000), 0);
    /* the connection is still good */
    th_exec ok;
    assert_int_equal(th_exec_run(p, conn, "echo ok", &ok), 0);
    assert_string_equal(ok.out, "ok\n");
}

/* A cancel at any moment of the start, from before the channel opens to after the command
 * runs but before its process group is reported: whenever the command did start, it is
 * stopped. */
void bh_cancel_at_any_moment_of_the_start_leaves_nothing(th_plugin *p, opsc_conn *conn)
{
    static const uint32_t after_ms[] = {0, 1, 2, 3, 5, 8, 12, 20, 40, 80};
    char sleeper[64];
    sleep_cmd(sleeper, sizeof(sleeper), 7);
    for (size_t i = 0; i < sizeof(after_ms) / sizeof(after_ms[0]); i++) {
        opsc_exec_req req = {sizeof(req)};
        req.command = sleeper;
        th_exec e;
        assert_int_equal(th_exec_start(p, conn, &req, &e), 0);
        bool never = false;
        if (after_ms[i])
            th_run_until(&never, after_ms[i]);
        p->t->exec_cancel(e.ex);
        assert_true(th_exec_wait(&e, 15000));
        assert_true(e.status == OPSC_ECANCELED || e.status == 0);
        assert_int_equal(bh_await_processes(sleeper, 0, 10000), 0);
    }
    th_exec ok;
    assert_int_equal(th_exec_run(p, conn, "echo ok", &ok), 0);
    assert_string_equal(ok.out, "ok\n");
}

void bh_output_100mb_streams_with_flat_memory(th_plugin *p, opsc_conn *conn)
{
    long rss0 = th_rss_kb();
    int64_t live0 = th_live_bytes();
    th_exec e;
    opsc_exec_req req = {sizeof(req)};
    req.command = "head -c 100000000 /dev/zero";
    assert_int_equal(th_exec_start(p, conn, &req, &e), 0);
    e.pause_after = 1; /* pause at the first output: flow control must stop the sender */
    bool never = false;
    assert_true(th_run_until(&e.paused, 10000));
    uint64_t held = e.total_out;
    th_run_until(&never, 300);
    assert_true(e.total_out == held); /* nothing delivered while paused */
    assert_true(th_live_bytes() - live0 < 8 << 20);
    uint64_t t0 = uv_hrtime();
    p->t->exec_resume(e.ex);
    assert_true(th_exec_wait(&e, 120000));
    fprintf(stderr, "100 MB of output in %.2f s\n", (double)(uv_hrtime() - t0) / 1e9);
    assert_int_equal(e.exit_code, 0);
    assert_true(e.total_out == 100000000);
    long grew = th_rss_kb() - rss0;
    fprintf(stderr, "100 MB: RSS grew %ld kB, plugin heap now %lld bytes\n", grew,
            (long long)(th_live_bytes() - live0));
#ifndef __SANITIZE_ADDRESS__ /* ASan's quarantine keeps freed blocks resident */
    assert_true(grew < 16 * 1024);
#endif
}

void bh_put_and_get_with_mode_and_checksum(th_plugin *p, opsc_conn *conn)
{
    /* per process: the transport suites run at the same time */
    char local[64];
    snprintf(local, sizeof(local), "/tmp/opsc-put-small-%d.txt", (int)getpid());
    FILE *f = fopen(local, "w");
    fputs("hello transport\n", f);
    fclose(f);
    th_xfer x;
    char remote[256];
    snprintf(remote, sizeof(remote), "/tmp/opsc-remote-%d.txt", getpid());
    assert_int_equal(th_put(p, conn, local, remote, 0640, &x), 0);
    assert_int_equal(x.bytes, 16);
    struct stat st;
    assert_int_equal(stat(remote, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_string_equal(x.sha256,
                        "81ae420a4be2ee010e4d48b3611ce86248ba3c3acf83daa54cd17f8e45623ad8");
    char back[256];
    snprintf(back, sizeof(back), "%s.back", local);
    assert_int_equal(th_get(p, conn, remote, back, &x), 0);
    char *text = th_read_file(back);
    assert_string_equal(text, "hello transport\n");
    free(text);
    assert_int_equal(stat(back, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(th_get(p, conn, "/no/such/file", back, &x), OPSC_ENOENT);
    assert_int_equal(access(back, F_OK), 0); /* the earlier download stays */
    unlink(remote);
    unlink(back);
    unlink(local);
}

void bh_sudo_without_a_password_prompt_keeps_stdin_clean(th_plugin *p, opsc_conn *conn)
{
    opsc_exec_req req = {sizeof(req)};
    req.command = "id -un; cat";
    req.become_user = "nobody";            /* NOPASSWD in the fixture's sudoers, or we are root */
    req.become_password = "some password"; /* never read: sudo needs none here */
    req.stdin_open = true;
    th_exec e;
    assert_int_equal(th_exec_start(p, conn, &req, &e), 0);
    assert_int_equal(p->t->exec_write(e.ex, "data\n", 5), 0);
    assert_int_equal(p->t->exec_write(e.ex, "", 0), 0);
    assert_true(th_exec_wait(&e, 30000));
    assert_string_equal(e.out, "nobody\ndata\n");
}

void bh_close_cancels_running_commands(th_plugin *p, opsc_conn *conn)
{
    opsc_exec_req req = {sizeof(req)};
    char sleeper[64];
    req.command = sleep_cmd(sleeper, sizeof(sleeper), 75);
    th_exec e;
    assert_int_equal(th_exec_start(p, conn, &req, &e), 0);
    assert_int_equal(bh_await_processes(sleeper, 1, 10000), 1);
    th_close(p, conn);
    assert_true(e.done);
    assert_int_equal(e.status, OPSC_ECANCELED);
    assert_int_equal(bh_await_processes(sleeper, 0, 10000), 0);
}

void bh_big_put_and_get(th_plugin *p, opsc_conn *conn, unsigned long long size)
{
    /* per process: another suite on the machine may run this test at the same time */
    char local[64], remote[64], back[64], cmd[160];
    snprintf(local, sizeof(local), "/tmp/opsc-bh-big-%d.bin", (int)getpid());
    snprintf(remote, sizeof(remote), "/tmp/opsc-bh-big-%d.remote", (int)getpid());
    snprintf(back, sizeof(back), "/tmp/opsc-bh-big-%d.back", (int)getpid());
    /* generated, not sparse: a sparse file would hide read costs */
    snprintf(cmd, sizeof(cmd), "head -c %llu /dev/urandom > %s", size, local);
    if (system(cmd) != 0)
        fail();
    long rss0 = th_rss_kb();
    th_xfer x;
    uint64_t t0 = uv_hrtime();
    int rc = th_put(p, conn, local, remote, -1, &x);
    if (rc)
        fprintf(stderr, "put: %s\n", x.error);
    assert_int_equal(rc, 0);
    double put_s = (double)(uv_hrtime() - t0) / 1e9;
    assert_true(x.bytes == size);
    char sha[65];
    snprintf(sha, sizeof(sha), "%s", x.sha256);
    t0 = uv_hrtime();
    assert_int_equal(th_get(p, conn, remote, back, &x), 0);
    double get_s = (double)(uv_hrtime() - t0) / 1e9;
    assert_string_equal(x.sha256, sha);
    fprintf(stderr, "%llu MiB: put %.1f MB/s, get %.1f MB/s, RSS grew %ld kB\n", size >> 20,
            (double)size / 1e6 / put_s, (double)size / 1e6 / get_s, th_rss_kb() - rss0);
#ifndef __SANITIZE_ADDRESS__ /* ASan's quarantine keeps freed blocks resident */
    assert_true(th_rss_kb() - rss0 < 32 * 1024);
#endif
    unlink(remote);
    unlink(back);
    unlink(local);
}
