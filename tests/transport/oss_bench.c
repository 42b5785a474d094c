/* oss_bench.c - benchmark driver for tests/bench/bench_openssh.sh: one transport plugin, N
 * targets at once, fresh connections and then the same connections again.
 *
 *   oss_bench PLUGIN.so CONFIG N PORT USER KEYFILE KNOWN_HOST_KEY COMMAND
 *
 * Prints one line of key=value: the wall time of COMMAND on N fresh connections (connect
 * included) and again on the open ones, the CPU of this process (the daemon's side) and of
 * the ssh processes it started, RSS growth per connection, and the PSS of the ssh masters per
 * connection (transport-openssh; 0 for an in-process transport).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "harness.h"

static double now_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

static double cpu_of(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* Proportional set size of our ssh processes (children, grandchildren of the helper). */
static long ssh_pss_kb(void)
{
    DIR *d = opendir("/proc");
    long total = 0;
    char me[32];
    snprintf(me, sizeof(me), "%d", getpid());
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[300];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        char *st = th_read_file(path);
        const char *close_paren = st ? strrchr(st, ')') : NULL;
        long ppid = close_paren ? strtol(close_paren + 4, NULL, 10) : 0;
        free(st);
        if (ppid != getpid())
            continue;
        snprintf(path, sizeof(path), "/proc/%s/smaps_rollup", e->d_name);
        char *sm = th_read_file(path);
        const char *pss = sm ? strstr(sm, "\nPss:") : NULL;
        if (pss)
            total += strtol(pss + 5, NULL, 10);
        free(sm);
    }
    if (d)
        closedir(d);
    return total;
}

static int run_all(th_plugin *p, th_conn *conns, th_exec *ex, int n, const char *cmd)
{
    int failed = 0;
    for (int i = 0; i < n; i++) {
        opsc_exec_req req = {sizeof(req)};
        req.command = cmd;
        if (conns[i].status || th_exec_start(p, conns[i].conn, &req, &ex[i]) < 0)
            ex[i].done = true, failed++;
    }
    for (int i = 0; i < n; i++)
        if (!ex[i].done && (!th_exec_wait(&ex[i], 300000) || ex[i].exit_code != 0))
            failed++;
    return failed;
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: see the top of oss_bench.c\n");
        return 2;
    }
    int n = atoi(argv[3]);
    char known[256], cfg[1024];
    snprintf(known, sizeof(known), "%s\n", argv[7]);
    snprintf(cfg, sizeof(cfg), "%s", argv[2]);
    for (char *c = cfg; *c; c++)
        if (*c == ';')
            *c = '\n';
    opsc_target t = {sizeof(t)};
    t.name = "bench";
    t.address = "127.0.0.1";
    t.port = atoi(argv[4]);
    t.os_family = "linux";
    t.host_key_policy = "strict";
    t.known_host_keys = known;
    t.connect_timeout_ms = 300000;
    t.options_json = "{}";
    char *key = th_read_file(argv[6]);
    opsc_credential c = {sizeof(c)};
    c.type = "ssh_key";
    c.username = argv[5];
    c.private_key = key;
    th_plugin p;
    if (th_load(&p, argv[1], cfg) != 0) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], th_last_log());
        return 1;
    }
    th_conn *conns = calloc((size_t)n, sizeof(*conns));
    th_exec *ex = calloc((size_t)n, sizeof(*ex));
    long rss0 = th_rss_kb();
    double t0 = now_s(), c0 = cpu_of(RUSAGE_SELF);
    for (int i = 0; i < n; i++)
        th_connect_start(&p, &t, &c, &conns[i]);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        th_run_until(&conns[i].done, 300000);
        if (conns[i].status && failed++ < 3)
            fprintf(stderr, "connect %d: %s\n", i, conns[i].error);
    }
    failed += run_all(&p, conns, ex, n, argv[8]);
    double fresh = now_s() - t0, cpu_fresh = cpu_of(RUSAGE_SELF) - c0;
    long rss_open = th_rss_kb(), pss = ssh_pss_kb();
    double t1 = now_s(), c1 = cpu_of(RUSAGE_SELF);
    failed += run_all(&p, conns, ex, n, argv[8]);
    double again = now_s() - t1, cpu_again = cpu_of(RUSAGE_SELF) - c1;
    for (int i = 0; i < n; i++)
        if (!conns[i].status)
            th_close(&p, conns[i].conn);
    th_loop_drain();
    printf("targets=%d failed=%d fresh_s=%.3f again_s=%.3f daemon_cpu_fresh_ms_per_target=%.2f "
           "daemon_cpu_again_ms_per_target=%.3f ssh_cpu_s=%.2f rss_per_conn_kb=%.1f "
           "ssh_pss_per_conn_kb=%.0f\n",
           n, failed, fresh, again, cpu_fresh * 1000 / n, cpu_again * 1000 / n,
           cpu_of(RUSAGE_CHILDREN), (double)(rss_open - rss0) / n, (double)pss / n);
    th_unload(&p);
    free(conns);
    free(ex);
    free(key);
    return failed ? 1 : 0;
}
