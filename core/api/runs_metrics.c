/* runs_metrics.c - the /metrics families of runs, targets, steps, workers and connections. */
#include "api.h"
#include "core.h"
#include "exec.h"
#include "jobs_routes.h"
#include "metrics.h"
#include "pool.h"

static void render_runs(strbuf *out, const exec_counters *k)
{
    metrics_family(out, "opsc_runs_started_total", "counter", "Runs started, by trigger.");
    for (int t = 0; t < EXEC_TRIGGERS; t++)
        sb_printf(out, "opsc_runs_started_total{trigger=\"%s\"} %llu\n", exec_trigger_name(t),
                  (unsigned long long)k->runs_started[t]);
    metrics_family(out, "opsc_runs_finished_total", "counter",
                   "Runs that ended, by trigger and outcome.");
    for (int t = 0; t < EXEC_TRIGGERS; t++)
        for (int s = 0; s < EXEC_STATES; s++)
            if (k->runs_finished[t][s])
                sb_printf(out, "opsc_runs_finished_total{trigger=\"%s\",outcome=\"%s\"} %llu\n",
                          exec_trigger_name(t), exec_state_name(s),
                          (unsigned long long)k->runs_finished[t][s]);
    metrics_family(out, "opsc_run_duration_seconds", "histogram",
                   "Time from a run's start to its end.");
    metrics_hist_render(out, "opsc_run_duration_seconds", "", &k->run_seconds);
}

/* One family of counters by outcome: only outcomes that happened, so a
 * scrape stays short. */
static void render_outcomes(strbuf *out, const char *name, const char *help, const uint64_t *n)
{
    metrics_family(out, name, "counter", help);
    for (int s = 0; s < EXEC_STATES; s++)
        if (n[s])
            sb_printf(out, "%s{outcome=\"%s\"} %llu\n", name, exec_state_name(s),
                      (unsigned long long)n[s]);
}

static void render_executor(strbuf *out, const exec *ex)
{
    const exec_counters *k = exec_counters_get(ex);
    exec_stats st;
    exec_stats_get(ex, &st);
    render_runs(out, k);
    render_outcomes(out, "opsc_targets_finished_total", "Targets of runs that ended, by outcome.",
                    k->targets_finished);
    render_outcomes(out, "opsc_steps_finished_total",
                    "Steps that ended on a target, by outcome (retried attempts count once).",
                    k->steps_finished);
    metrics_family(out, "opsc_step_duration_seconds", "histogram",
                   "Time of the attempt that ended a step.");
    metrics_hist_render(out, "opsc_step_duration_seconds", "", &k->step_seconds);
    metrics_single(out, "opsc_runs_active", "gauge", "Runs queued or running.",
                   (double)st.runs_active);
    metrics_single(out, "opsc_targets_queued", "gauge", "Targets of active runs not started yet.",
                   (double)st.targets_queued);
    metrics_single(out, "opsc_targets_running", "gauge", "Targets running now.",
                   (double)st.targets_running);
    metrics_single(out, "opsc_step_workers_busy", "gauge",
                   "Step worker threads running an imperative step.", (double)st.workers_busy);
    metrics_single(out, "opsc_log_bytes_written_total", "counter", "Bytes written to run logs.",
                   (double)k->log_bytes);
}

static void render_pool(strbuf *out, const pool *p)
{
    pool_transport_stats ts[POOL_MAX_TRANSPORTS];
    size_t n = pool_transport_stats_get(p, ts, POOL_MAX_TRANSPORTS);
    metrics_family(out, "opsc_connections_open", "gauge",
                   "Connections to targets open, by transport.");
    for (size_t i = 0; i < n; i++)
        sb_printf(out, "opsc_connections_open{transport=\"%s\"} %zu\n", ts[i].name, ts[i].open);
    metrics_family(out, "opsc_connections_idle", "gauge",
                   "Connections pooled for reuse (no lease), by transport.");
    for (size_t i = 0; i < n; i++)
        sb_printf(out, "opsc_connections_idle{transport=\"%s\"} %zu\n", ts[i].name, ts[i].idle);
    metrics_family(out, "opsc_connections_opened_total", "counter",
                   "Connects that succeeded, by transport.");
    for (size_t i = 0; i < n; i++)
        sb_printf(out, "opsc_connections_opened_total{transport=\"%s\"} %llu\n", ts[i].name,
                  (unsigned long long)ts[i].opened);
    metrics_family(out, "opsc_connect_failures_total", "counter",
                   "Connects that failed, by transport and reason.");
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < ts[i].nfailed; j++)
            sb_printf(out, "opsc_connect_failures_total{transport=\"%s\",reason=\"%s\"} %llu\n",
                      ts[i].name, ts[i].failed[j].reason, (unsigned long long)ts[i].failed[j].n);
}

static void collect(strbuf *out, void *ud)
{
    struct opsc_core *c = ud;
    if (c->exec)
        render_executor(out, c->exec);
    if (c->pool)
        render_pool(out, c->pool);
}

int api_runs_metrics_register(struct opsc_core *c)
{
    return c->metrics ? metrics_add_collector(c->metrics, collect, c) : 0;
}
