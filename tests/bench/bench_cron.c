/* bench_cron.c - cron_next() evaluations per second, and Debian's croniter in the same run.
 *
 * usage: bench_cron [--calls N] [--no-python]
 * Two modes per expression and zone:
 *   random  next() from 65536 random instants in 2020-2035 (a scheduler
 *           re-planning many schedules),
 *   chained t = next(t), restarted every 10000 steps (one schedule's run
 *           list, also what croniter's get_next does).
 * Then runs bench_croniter.py with /usr/bin/python3 for the same table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"

#define STARTS 65536

static const char *const exprs[] = {"*/5 * * * *", "0 3 * * 1-5", "30 2 * * *", "0 0 L * *"};
static const char *const zones[] = {"Europe/Berlin", "UTC"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double run_random(const cron_t *c, const tz_t *tz, const int64_t *starts, long calls,
                         int64_t *sink)
{
    double t0 = now_s();
    for (long i = 0; i < calls; i++)
        *sink += cron_next(c, tz, starts[i & (STARTS - 1)]);
    return now_s() - t0;
}

static double run_chained(const cron_t *c, const tz_t *tz, int64_t from, long calls, int64_t *sink)
{
    double t0 = now_s();
    int64_t t = from;
    for (long i = 0; i < calls; i++) {
        t = i % 10000 == 0 ? from : cron_next(c, tz, t);
        *sink += t;
    }
    return now_s() - t0;
}

static void report(const char *mode, const char *expr, const char *zone, long calls, double secs)
{
    printf("C        %-8s %-14s %-14s %8.2f M/s %7.1f ns/call\n", mode, expr, zone,
           (double)calls / secs / 1e6, secs * 1e9 / (double)calls);
}

int main(int argc, char **argv)
{
    long calls = 2000000;
    int python = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc)
            calls = atol(argv[++i]);
        else if (strcmp(argv[i], "--no-python") == 0)
            python = 0;
        else {
            fprintf(stderr, "usage: bench_cron [--calls N] [--no-python]\n");
            return 2;
        }
    }
    static int64_t starts[STARTS];
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < STARTS; i++) /* 2020-01-01 .. 2035-01-01 */
        starts[i] = 1577836800 + (int64_t)(xorshift(&seed) % (15ull * 365 * 86400));
    int64_t sink = 0;
    printf("engine   mode     expression     zone           throughput  latency\n");
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        const tz_t *tz;
        char err[256];
        if (tz_get(zones[z], &tz, err, sizeof(err))) {
            fprintf(stderr, "bench_cron: %s\n", err);
            return 1;
        }
        for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++) {
            cron_t c;
            if (cron_parse(exprs[e], "bench", &c, err, sizeof(err))) {
                fprintf(stderr, "bench_cron: %s\n", err);
                return 1;
            }
            run_random(&c, tz, starts, calls / 10, &sink); /* warm up */
            report("random", exprs[e], zones[z], calls, run_random(&c, tz, starts, calls, &sink));
            report("chained", exprs[e], zones[z], calls,
                   run_chained(&c, tz, starts[0], calls, &sink));
        }
    }
    printf("(checksum %lld, so the calls cannot be optimised away)\n", (long long)sink);
    tz_cache_clear();
    fflush(stdout);
    if (python && system("/usr/bin/python3 " BENCH_CRONITER_PY) != 0)
        fprintf(stderr, "bench_cron: croniter comparison failed (python3-croniter installed?)\n");
    return 0;
}
