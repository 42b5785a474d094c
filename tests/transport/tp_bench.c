/* tp_bench.c - benchmark driver for tests/bench/bench_ssh.sh: many targets at once, or one big put.
 *
 *   tp_bench exec N PORT USER KEYFILE "KNOWN_HOST_KEY" COMMAND
 *       opens N connections at once (one per target), runs COMMAND on each,
 *       closes them; prints wall time, CPU time and memory per session.
 *   tp_bench put PORT USER KEYFILE "KNOWN_HOST_KEY" LOCAL REMOTE
 *       sends one file and prints MB/s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "harness.h"

static double now_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static opsc_target make_target(int port, const char *known)
{
    opsc_target t = {sizeof(t)};
    t.name = "bench";
    t.address = "127.0.0.1";
    t.port = port;
    t.os_family = "linux";
    t.host_key_policy = "strict";
    t.known_host_keys = known;
    t.connect_timeout_ms = 60000;
    return t;
}

static int bench_exec(th_plugin *p, int n, opsc_target *t, opsc_credential *c, const char *cmd)
{
    th_conn *conns = calloc((size_t)n, sizeof(*conns));
    th_exec *ex = calloc((size_t)n, sizeof(*ex));
    long rss0 = th_rss_kb();
    double t0 = now_s(), c0 = cpu_s();
    for (int i = 0; i < n; i++)
        if (th_connect_start(p, t, c, &conns[i]) < 0)
            return 1;
    int failed = 0;
    for (int i = 0; i < n; i++) {
        th_run_until(&conns[i].done, 120000);
        if (conns[i].status && failed++ < 3)
            fprintf(stderr, "connect %d: %s\n", i, conns[i].error);
    }
    double t_conn = now_s() - t0;
    long rss_open = th_rss_kb();
    for (int i = 0; i < n; i++) {
        opsc_exec_req req = {sizeof(req)};
        req.command = cmd;
        if (!conns[i].status && th_exec_start(p, conns[i].conn, &req, &ex[i]) < 0)
            failed++;
    }
    for (int i = 0; i < n; i++)
        if (!conns[i].status && (!th_exec_wait(&ex[i], 120000) || ex[i].exit_code != 0))
            failed++;
    double t_exec = now_s() - t0;
    for (int i = 0; i < n; i++)
        if (!conns[i].status)
            th_close(p, conns[i].conn);
    double wall = now_s() - t0, cpu = cpu_s() - c0;
    printf("targets=%d failed=%d connect_s=%.3f connect_and_run_s=%.3f wall_s=%.3f cpu_s=%.3f "
           "rss_per_session_kb=%.1f peak_rss_kb=%ld\n",
           n, failed, t_conn, t_exec, wall, cpu, (double)(rss_open - rss0) / n, th_hwm_kb());
    free(conns);
    free(ex);
    return failed ? 1 : 0;
}

static int bench_put(th_plugin *p, opsc_target *t, opsc_credential *c, const char *local,
                     const char *remote)
{
    th_conn r;
    if (th_connect(p, t, c, &r) != 0) {
        fprintf(stderr, "connect: %s\n", r.error);
        return 1;
    }
    th_xfer x;
    double t0 = now_s(), c0 = cpu_s();
    int rc = th_put(p, r.conn, local, remote, -1, &x);
    double s = now_s() - t0;
    if (rc) {
        fprintf(stderr, "put: %s\n", x.error);
        return 1;
    }
    printf("bytes=%llu put_s=%.3f mb_per_s=%.1f cpu_s=%.3f sha256=%s\n",
           (unsigned long long)x.bytes, s, (double)x.bytes / 1e6 / s, cpu_s() - c0, x.sha256);
    th_close(p, r.conn);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: see the top of tp_bench.c\n");
        return 2;
    }
    bool exec = strcmp(argv[1], "exec") == 0;
    int a = exec ? 3 : 2;
    char known[256];
    snprintf(known, sizeof(known), "%s\n", argv[a + 3]);
    opsc_target t = make_target(atoi(argv[a]), known);
    char *key = th_read_file(argv[a + 2]);
    opsc_credential c = {sizeof(c)};
    c.type = "ssh_key";
    c.username = argv[a + 1];
    c.private_key = key;
    th_plugin p;
    if (th_load(&p, SSH_SO, "max_channels = 10\n") != 0) {
        fprintf(stderr, "cannot load %s: %s\n", SSH_SO, th_last_log());
        return 1;
    }
    int rc = exec ? bench_exec(&p, atoi(argv[2]), &t, &c, argv[a + 4])
                  : bench_put(&p, &t, &c, argv[a + 4], argv[a + 5]);
    th_unload(&p);
    free(key);
    return rc;
}
