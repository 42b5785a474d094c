/* bench_scheduler.c - 10,000 schedules firing every minute: lateness from the planned instant to
 * the run's creation, and the scheduler's CPU share.
 *
 *   bench_scheduler [schedules=10000] [minutes=2] [burst|spread] [recorder|noop]
 *
 * burst: every schedule is "* * * * *" (all fire at second 0, the worst
 * case); spread: "H * * * * *" (each at a second hashed from its id). Real
 * clocks, a real loop and timer, a store on disk ($BENCH_DIR or /tmp, the
 * state committed with fsync at each wake). Runs are created by the exec
 * recorder (tests/unit/exec_recorder.c, quiet: it keeps what the executor
 * would be asked and publishes nothing), so the figures are the scheduler's
 * own, not the executor's. "noop" replaces even the recorder by functions
 * that do nothing (no run ids, no records): lateness is then the
 * scheduler's alone, and no runs are counted (fires are).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "exec_recorder.h"
#include "scheduler.h"
#include "store.h"
#include "util.h"

typedef struct bench {
    int n;
    const char *cron;
} bench;

static const char *const zones[] = {"UTC", "Europe/Berlin", "America/New_York", "Asia/Kathmandu",
                                    "Australia/Lord_Howe"};

static int add_all(store_txn *txn, void *ud)
{
    bench *b = ud;
    int64_t now = clock_now_ms();
    for (int i = 0; i < b->n; i++) {
        char id[UUID_STR_LEN];
        uuid7_new(id);
        json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s}", "id", id, "job_id",
                                "bench-job", "cron", b->cron, "timezone", zones[i % 5], "enabled",
                                1, "misfire_policy", "run_once", "overlap_policy", "allow");
        int rc = store_create(txn, "schedules", rec);
        if (rc == 0)
            rc = sched_state_reset_txn(txn, id, now);
        json_decref(rec);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The "noop" executor: accepts every start and only notes when it came. */
static int64_t *noop_late;
static size_t noop_n, noop_cap;

static int noop_start(exec *ex, const exec_run_spec *spec, char run_id[UUID_STR_LEN], char *err,
                      size_t errlen)
{
    (void)ex, (void)err, (void)errlen;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (noop_n == noop_cap) {
        noop_cap = noop_cap ? noop_cap * 2 : 65536;
        noop_late = realloc(noop_late, noop_cap * sizeof(*noop_late));
    }
    noop_late[noop_n++] =
        (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - spec->planned_at_ms * 1000;
    memcpy(run_id, "00000000-0000-7000-8000-000000000000", UUID_STR_LEN);
    return 0;
}

static int noop_missed(exec *ex, const exec_run_spec *spec, const char *reason,
                       char run_id[UUID_STR_LEN])
{
    (void)ex, (void)spec, (void)reason, (void)run_id;
    return 0;
}

static int noop_cancel(exec *ex, const char *run_id, const char *by)
{
    (void)ex, (void)run_id, (void)by;
    return 0;
}

static size_t noop_active(exec *ex, const char *schedule_id)
{
    (void)ex, (void)schedule_id;
    return 0;
}

static const sched_exec_ops noop_ops = {noop_start, noop_missed, noop_cancel, noop_active};

static void on_stop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void report(exec *ex, sched *s, double wall, double cpu)
{
    size_t n = 0;
    int64_t *late = malloc((ex->n + noop_n + 1) * sizeof(*late));
    for (size_t i = 0; i < ex->n; i++)
        if (!ex->runs[i].missed) {
            late[n++] = ex->runs[i].created_us - ex->runs[i].planned_ms * 1000;
            if (getenv("BENCH_SLOW") && late[n - 1] > 10000)
                printf("slow: planned %lld late %.1f ms\n", (long long)ex->runs[i].planned_ms,
                       late[n - 1] / 1000.0);
        }
    for (size_t i = 0; i < noop_n; i++)
        late[n++] = noop_late[i];
    qsort(late, n, sizeof(*late), cmp_i64);
    sched_stats st;
    sched_get_stats(s, &st);
    printf("runs started        %zu (missed %zu, errors %llu)\n", n, exec_recorder_missed(ex, NULL),
           (unsigned long long)st.errors);
    if (n) {
        printf("lateness min        %.3f ms\n", late[0] / 1000.0);
        printf("lateness p50        %.3f ms\n", late[n / 2] / 1000.0);
        printf("lateness p99        %.3f ms\n", late[n * 99 / 100] / 1000.0);
        printf("lateness max        %.3f ms\n", late[n - 1] / 1000.0);
    }
    printf("fires               %llu, late by %.3f ms on average, %lld ms at most (ms clock)\n",
           (unsigned long long)st.fired, st.fired ? (double)st.late_ms_sum / st.fired : 0.0,
           (long long)st.late_ms_max);
    printf("scheduler CPU       %.3f s in %llu wakes = %.3f%% of %.0f s (%.2f us per fire)\n",
           st.tick_ns / 1e9, (unsigned long long)st.ticks, 100.0 * st.tick_ns / 1e9 / wall, wall,
           st.fired ? st.tick_ns / 1e3 / (double)st.fired : 0.0);
    printf("process CPU         %.3f s = %.3f%% (includes the recorder)\n", cpu,
           100.0 * cpu / wall);
    free(late);
    free(noop_late);
}

int main(int argc, char **argv)
{
    bench b = {argc > 1 ? atoi(argv[1]) : 10000, "* * * * *"};
    int minutes = argc > 2 ? atoi(argv[2]) : 2;
    if (argc > 3 && strcmp(argv[3], "spread") == 0)
        b.cron = "H * * * * *";
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/bench_sched.XXXXXX",
             getenv("BENCH_DIR") ? getenv("BENCH_DIR") : "/tmp");
    char err[256] = "";
    store *st = NULL;
    events *ev = NULL;
    sched *s = NULL;
    uv_loop_t loop;
    if (!mkdtemp(dir) || store_open(&st, dir, NULL, err, sizeof(err)) < 0 || events_new(&ev) < 0) {
        fprintf(stderr, "setup: %s\n", err);
        return 1;
    }
    exec *ex = exec_recorder_new(ev);
    ex->quiet = ex->end_at_once = true;
    uv_loop_init(&loop);
    if (store_write(st, add_all, &b) < 0)
        return 1;
    bool noop = argc > 4 && strcmp(argv[4], "noop") == 0;
    sched_opts o = {.loop = &loop,
                    .store = st,
                    .events = ev,
                    .exec = ex,
                    .exec_ops = noop ? &noop_ops : sched_exec_linked()};
    double t0 = mono_s();
    if (sched_new(&s, &o) < 0 || sched_start(s, err, sizeof(err)) < 0) {
        fprintf(stderr, "start: %s\n", err);
        return 1;
    }
    printf("bench_scheduler: %d schedules \"%s\" in 5 zones, %d minute(s), store in %s, %s\n", b.n,
           b.cron, minutes, dir, noop ? "no-op executor" : "exec recorder");
    printf("load                %.1f ms\n", (mono_s() - t0) * 1000);
    uv_timer_t stop;
    uv_timer_init(&loop, &stop);
    /* End just after the last minute's burst (and its spread) is done. */
    int64_t now = clock_now_ms(), end = (now / 60000 + minutes) * 60000 + 59500;
    if (strcmp(b.cron, "* * * * *") == 0)
        end = (now / 60000 + minutes) * 60000 + 2000;
    uv_timer_start(&stop, on_stop, (uint64_t)(end - now), 0);
    double w0 = mono_s(), c0 = cpu_s();
    uv_run(&loop, UV_RUN_DEFAULT);
    report(ex, s, mono_s() - w0, cpu_s() - c0);
    sched_close(s);
    uv_close((uv_handle_t *)&stop, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    exec_recorder_free(ex);
    events_free(ev);
    store_close(st);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
