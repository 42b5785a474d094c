/* bench_stephost.c - what running a step library out of process costs: one step API call in
 * process and through opsc-stephost (p50/p99), no-op imperative steps per second (one at a time
 * and four at once), host start to the end of its first step, memory of an idle host. The step
 * API is the unit tests' fake step host, so the figures are the isolation's own, not the
 * executor's or a transport's.
 *   ninja -C build tests/bench/bench_stephost && build/tests/bench/bench_stephost [calls] [steps]
 * (BENCH_STEPHOST=path: another opsc-stephost, to compare two builds side by side)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include <opsc/errors.h>

#include "fake_step_host.h"
#include "isolation.h"

static plugin_host *host;
static const plugin_reg *reg;
static iso_lib *lib;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static const opsc_step_type *type_of(const char *name)
{
    for (const opsc_step_type *const *t = ((const opsc_steplib *)reg->desc)->types; *t; t++)
        if (strcmp((*t)->name, name) == 0)
            return *t;
    fprintf(stderr, "no step type %s\n", name);
    exit(1);
}

static int run_step(const char *type, const char *params, bool out)
{
    opsc_step_ctx *ctx = fake_ctx_new(params, "linux");
    int rc = out ? iso_run(lib, type_of(type), ctx) : type_of(type)->run(ctx, reg->state);
    if (rc != 0)
        fprintf(stderr, "step %s failed: %d %s\n", type, rc, ctx->failure);
    fake_ctx_free(ctx);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Per-call latency: steps of `n` calls, the cost of a call being the step's time over n. */
static void api_calls(int n, bool out)
{
    enum { STEPS = 200 };
    double per[STEPS];
    char params[64];
    snprintf(params, sizeof(params), "{\"n\": %d}", n);
    for (int i = 0; i < STEPS; i++) {
        double t0 = now_us();
        run_step("calls", params, out);
        per[i] = (now_us() - t0) / n;
    }
    qsort(per, STEPS, sizeof(per[0]), cmp_double);
    printf("step_param call %-15s p50 %7.2f us   p99 %7.2f us   (%d steps of %d calls)\n",
           out ? "out of process" : "in process", per[STEPS / 2], per[STEPS * 99 / 100], STEPS, n);
}

struct worker {
    int steps;
};

static void *noop_worker(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->steps; i++)
        run_step("noop", "{}", true);
    return NULL;
}

static void noop_rate(int steps, int threads)
{
    pthread_t th[8];
    struct worker w = {steps / threads};
    double t0 = now_us();
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, noop_worker, &w);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    double s = (now_us() - t0) / 1e6;
    printf("no-op steps out of process, %d at once: %8.0f steps/s (%d steps)\n", threads,
           w.steps * threads / s, w.steps * threads);
}

static long rss_kib(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

int main(int argc, char **argv)
{
    int calls = argc > 1 ? atoi(argv[1]) : 100, steps = argc > 2 ? atoi(argv[2]) : 4000;
    uv_loop_t loop;
    char err[512];
    uv_loop_init(&loop);
    if (plugin_host_new(&host, &loop, NULL) < 0)
        return 1;
    fake_host_install(host);
    if (plugin_host_load_file(host, EXEC_STEPS_SO, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    reg = plugin_host_steplib(host, "testexec", 1);
    iso_opts o = {.mode = ISO_ALWAYS,
                  .stephost = getenv("BENCH_STEPHOST") ? getenv("BENCH_STEPHOST") : STEPHOST,
                  .memory_limit = 1 << 30,
                  .stop_grace_ms = 1000,
                  .heartbeat_ms = 5000};
    plugin_host_set_isolation(host, &o);
    lib = plugin_host_isolated(host, reg);
    double t0 = now_us();
    run_step("noop", "{}", true);
    printf("host start to the end of its first no-op step: %.1f ms\n", (now_us() - t0) / 1e3);
    json_t *iso = plugin_host_isolation_json(host, "testexec", "1.0.0", EXEC_STEPS_SO);
    long pid = (long)json_integer_value(json_object_get(iso, "pid"));
    json_decref(iso);
    printf("idle host (pid %ld) resident memory: %ld KiB\n", pid, rss_kib(pid));
    api_calls(calls, false);
    api_calls(calls, true);
    noop_rate(steps, 1);
    noop_rate(steps, 4);
    plugin_host_free(host);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
