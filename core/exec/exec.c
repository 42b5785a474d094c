/* exec.c - the executor's life: start, limits and the queue of targets, timers, events, stop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "cluster.h"
#include "core.h"
#include "events.h"
#include "exec_internal.h"
#include "log.h"
#include "plugin_host.h"
#include "reccache.h"
#include "util.h"

/* Job records kept parsed (direct-mapped by id), each at most
 * EX_RECORD_CACHED_MAX bytes as stored: 2 MiB and their parsed forms. */
#define EX_RECORD_CACHE      64
#define EX_RECORD_CACHED_MAX (32 << 10)

static const char *const state_names[] = {"queued",      "running",   "succeeded",
                                          "failed",      "cancelled", "timed_out",
                                          "interrupted", "skipped",   "missed"};

const char *ex_state_name(int state)
{
    return state >= 0 && state <= EX_MISSED ? state_names[state] : "unknown";
}

int ex_state_parse(const char *name)
{
    for (int i = 0; name && i <= EX_MISSED; i++)
        if (strcmp(state_names[i], name) == 0)
            return i;
    return -1;
}

/* ---- timers owned by runs and targets: heap handles freed by their close --------------- */

static void free_handle(uv_handle_t *h)
{
    free(h);
}

void ex_timer_start(exec *ex, uv_timer_t **slot, uint64_t ms, uv_timer_cb cb, void *data)
{
    if (!*slot) {
        *slot = malloc(sizeof(uv_timer_t));
        if (!*slot) {
            log_error("exec", "out of memory for a timer");
            return;
        }
        uv_timer_init(ex->loop, *slot);
    }
    (*slot)->data = data;
    /* Timeouts count from now: the loop's cached time can be a long turn (a commit, loading
     * plugins before the loop runs) behind, and a 1 s step timeout then fired at once. */
    uv_update_time(ex->loop);
    uv_timer_start(*slot, cb, ms, 0);
}

void ex_timer_stop(uv_timer_t **slot)
{
    if (!*slot)
        return;
    uv_close((uv_handle_t *)*slot, free_handle);
    *slot = NULL;
}

/* ---- events -------------------------------------------------------------------------------- */

uint64_t ex_publish(ex_run *r, const char *type, json_t *data)
{
    if (!data)
        return 0;
    uint64_t seq = ++r->seq;
    json_object_set_new(data, "run_id", json_string(r->id));
    json_object_set_new(data, "seq", json_integer((json_int_t)seq));
    events_publish(r->ex->events, type, r->id, data);
    json_decref(data);
    return seq;
}

/* ---- writing at the end of the loop turn ------------------------------------------------- */

static void on_flush_check(uv_check_t *h)
{
    ex_flush(h->data);
}

static void on_flush_idle(uv_idle_t *h)
{
    (void)h; /* only keeps the poll phase from blocking until the check has written */
}

void ex_want_flush(exec *ex)
{
    if (uv_is_closing((uv_handle_t *)&ex->flush))
        return;
    if (!uv_is_active((uv_handle_t *)&ex->flush) && !uv_is_closing((uv_handle_t *)&ex->flush)) {
        uv_check_start(&ex->flush, on_flush_check);
        uv_idle_start(&ex->flush_idle, on_flush_idle);
    }
}

void ex_flush_done(exec *ex)
{
    uv_check_stop(&ex->flush);
    uv_idle_stop(&ex->flush_idle);
}

void ex_mark_run(ex_run *r)
{
    if (!r->dirty) {
        r->dirty = true;
        r->dirty_next = r->ex->dirty_runs;
        r->ex->dirty_runs = r;
    }
    ex_want_flush(r->ex);
}

void ex_mark_target(ex_target *t)
{
    exec *ex = t->run->ex;
    if (!t->dirty) {
        t->dirty = true;
        t->dirty_next = ex->dirty_targets;
        ex->dirty_targets = t;
    }
    ex_want_flush(ex);
}

void exec_flush(exec *ex)
{
    ex_flush(ex);
}

/* ---- one run per target unless the job allows more ---------------------------------------- */

static bool busy_take(exec *ex, ex_target *t)
{
    json_t *v = json_object_get(ex->busy, t->id);
    json_int_t n = v ? json_integer_value(v) : 0;
    bool shared = t->run->plan->allow_concurrent;
    if (n < 0 || (n > 0 && !shared))
        return false;
    json_object_set_new(ex->busy, t->id, json_integer(shared ? n + 1 : -1));
    t->busy_held = true;
    return true;
}

static void busy_give(exec *ex, ex_target *t)
{
    if (!t->busy_held)
        return;
    t->busy_held = false;
    json_int_t n = json_integer_value(json_object_get(ex->busy, t->id));
    if (n <= 1)
        json_object_del(ex->busy, t->id);
    else
        json_object_set_new(ex->busy, t->id, json_integer(n - 1));
}

void ex_target_released(ex_target *t)
{
    exec *ex = t->run->ex;
    busy_give(ex, t);
    if (ex->running_targets > 0)
        ex->running_targets--;
    if (t->run->active > 0)
        t->run->active--;
}

/* ---- starting targets as limits allow ------------------------------------------------------ */

static void start_targets(exec *ex, ex_run *r)
{
    uint32_t limit = r->plan->max_parallel > 0 ? (uint32_t)r->plan->max_parallel : UINT32_MAX;
    while (r->next < r->ntargets && r->targets[r->next].state != EX_QUEUED)
        r->next++;
    for (uint32_t i = r->next; i < r->batch_end && r->active < limit; i++) {
        if (ex->running_targets >= (uint32_t)ex->opts.max_parallel)
            return;
        ex_target *t = &r->targets[i];
        if (t->state != EX_QUEUED || !busy_take(ex, t))
            continue;
        ex->running_targets++;
        r->active++;
        if (r->state == EX_QUEUED)
            ex_run_set_state(r, EX_RUNNING, NULL);
        ex_target_start(t);
    }
}

void ex_pump(exec *ex)
{
    if (ex->pumping) {
        ex->pump_again = true;
        return;
    }
    ex->pumping = true;
    do {
        ex->pump_again = false;
        for (ex_run *r = ex->head; r && !ex->stopping; r = r->next_run) {
            if (ex->running_targets >= (uint32_t)ex->opts.max_parallel)
                break;
            if (!r->abort)
                start_targets(ex, r);
        }
    } while (ex->pump_again);
    ex->pumping = false;
}

/* ---- the tick: prompts without a newline reach the log; retention -------------------------- */

static void on_tick(uv_timer_t *h)
{
    exec *ex = h->data;
    for (ex_run *r = ex->head; r; r = r->next_run)
        for (uint32_t i = 0; i < r->ntargets; i++)
            if (r->targets[i].cmd)
                ex_cmd_flush_lines(r->targets[i].cmd, false);
    /* cluster mode: one node sweeps the shared logs, the leader */
    bool sweeps = !ex_queued(ex) || cluster_leading(ex->core->cluster, NULL);
    if (clock_mono_ms() >= ex->next_sweep_mono && !ex->stopping && sweeps) {
        ex->next_sweep_mono = clock_mono_ms() + (uint64_t)ex->opts.log_sweep_interval_ms;
        ex_log_sweep(ex);
    }
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static void defaults(exec_opts *o)
{
    if (o->max_parallel <= 0)
        o->max_parallel = 256;
    if (o->step_workers <= 0)
        o->step_workers = 8;
    if (o->default_step_timeout_ms <= 0)
        o->default_step_timeout_ms = 3600 * 1000;
    if (o->log_max_per_target <= 0)
        o->log_max_per_target = 32LL << 20;
    if (o->log_sweep_interval_ms <= 0)
        o->log_sweep_interval_ms = 10 * 60 * 1000;
    if (o->capture_limit <= 0)
        o->capture_limit = 1 << 20;
    if (o->abandon_grace_ms <= 0)
        o->abandon_grace_ms = 5000;
    if (o->plan_cache_max <= 0)
        o->plan_cache_max = 256;
}

static void on_handle_closed(uv_handle_t *h)
{
    exec *ex = h->data;
    ex->open_handles--;
    ex_maybe_closed(ex);
}

int exec_new(exec **out, struct opsc_core *c, const exec_opts *o, char *err, size_t errlen)
{
    exec *ex = calloc(1, sizeof(*ex));
    if (!ex || !(ex->busy = json_object())) {
        free(ex);
        snprintf(err, errlen, "executor: out of memory");
        return OPSC_ENOMEM;
    }
    ex->core = c;
    ex->loop = c->loop;
    ex->store = c->store;
    ex->events = c->events;
    ex->plugins = c->plugins;
    ex->vault = c->vault;
    ex->pool = c->pool;
    ex->opts = o ? *o : (exec_opts){0};
    ex->log_total = -1;
    if (reccache_new(&ex->records, EX_RECORD_CACHE) < 0)
        ex->records = NULL; /* slower, not wrong */
    else
        reccache_set_max(ex->records, EX_RECORD_CACHED_MAX);
    ex_metrics_init(ex);
    defaults(&ex->opts);
    pthread_mutex_init(&ex->qmu, NULL);
    uv_check_init(ex->loop, &ex->flush);
    uv_idle_init(ex->loop, &ex->flush_idle);
    uv_timer_init(ex->loop, &ex->tick);
    uv_timer_init(ex->loop, &ex->claim);
    uv_async_init(ex->loop, &ex->wake, ex_on_wake);
    ex->flush.data = ex->flush_idle.data = ex->tick.data = ex->wake.data = ex->claim.data = ex;
    ex->open_handles = 5;
    uv_unref((uv_handle_t *)&ex->wake);
    int rc = ex_recover(ex);
    if (rc == 0)
        rc = ex_workers_start(ex, ex->opts.step_workers);
    if (rc < 0) {
        snprintf(err, errlen, "executor: %s", opsc_strerror(rc));
        ex->stopping = ex->closing = true;
        uv_close((uv_handle_t *)&ex->flush, on_handle_closed);
        uv_close((uv_handle_t *)&ex->flush_idle, on_handle_closed);
        uv_close((uv_handle_t *)&ex->tick, on_handle_closed);
        uv_close((uv_handle_t *)&ex->wake, on_handle_closed);
        uv_close((uv_handle_t *)&ex->claim, on_handle_closed);
        *out = ex; /* the caller frees it after the loop closed the handles */
        return rc;
    }
    /* Not during start-up, unless the interval asks for sooner. */
    ex->next_sweep_mono =
        clock_mono_ms() +
        (uint64_t)(ex->opts.log_sweep_interval_ms < 60000 ? ex->opts.log_sweep_interval_ms : 60000);
    uv_timer_start(&ex->tick, on_tick, 1000, 1000);
    uv_unref((uv_handle_t *)&ex->tick);
    plugin_host_set_step_ops(ex->plugins, ex_step_ops());
    ex_kill_orphans(ex);
    if (ex_queued(ex))
        ex_queue_start(ex);
    *out = ex;
    return 0;
}

void exec_stop(exec *ex)
{
    if (!ex || ex->stopping)
        return;
    ex_flush(ex); /* runs already accepted are stored and started, then stopped like the rest */
    ex->stopping = true;
    for (ex_run *r = ex->head; r; r = r->next_run)
        for (uint32_t i = r->next; i < r->ntargets; i++)
            if (r->targets[i].state == EX_QUEUED)
                ex_target_end_unstarted(&r->targets[i], EX_INTERRUPTED,
                                        "the daemon stopped before this target started");
}

/* Steps still inside a plugin's run() after their cancel and its grace:
 * close without them (their threads are left, exec_free() keeps what they
 * use). */
static void on_close_force(uv_timer_t *h)
{
    exec *ex = h->data;
    log_error("exec", "step workers still busy at shutdown: closing without them");
    ex->force_close = true;
    ex_maybe_closed(ex);
}

static void on_close_deadline(uv_timer_t *h)
{
    exec *ex = h->data;
    for (ex_run *r = ex->head; r;) {
        ex_run *next = r->next_run;
        ex_run_abort(r, EX_INTERRUPTED, "the daemon stopped while the run was running");
        r = next;
    }
    uv_timer_start(&ex->tick, on_close_force, (uint64_t)ex->opts.abandon_grace_ms + 2000, 0);
    ex_maybe_closed(ex);
}

void exec_close(exec *ex, int64_t deadline_ms, void (*cb)(void *ud), void *ud)
{
    exec_stop(ex);
    ex->closing = true;
    ex->close_cb = cb;
    ex->close_ud = ud;
    uv_timer_stop(&ex->tick);
    uv_ref((uv_handle_t *)&ex->tick);
    uv_timer_start(&ex->tick, on_close_deadline, deadline_ms > 0 ? (uint64_t)deadline_ms : 0, 0);
    ex_maybe_closed(ex);
}

/* Called whenever something ends while closing: the end comes when no run
 * is active, everything is written and no worker is busy; then the handles
 * close. Never frees anything itself (callers may still hold a run). */
void ex_maybe_closed(exec *ex)
{
    if (!ex->closing)
        return;
    if (ex->dirty_runs || ex->dirty_targets) {
        ex_want_flush(ex); /* the flush comes back here */
        return;
    }
    if (ex->head || (!ex_workers_stop(ex) && !ex->force_close))
        return;
    if (!uv_is_closing((uv_handle_t *)&ex->tick)) {
        plugin_host_set_step_ops(ex->plugins, NULL);
        pthread_mutex_lock(&ex->qmu); /* a worker left behind must not wake a closed handle */
        ex->wake_closed = true;
        pthread_mutex_unlock(&ex->qmu);
        uv_close((uv_handle_t *)&ex->flush, on_handle_closed);
        uv_close((uv_handle_t *)&ex->flush_idle, on_handle_closed);
        uv_close((uv_handle_t *)&ex->tick, on_handle_closed);
        uv_close((uv_handle_t *)&ex->wake, on_handle_closed);
        uv_close((uv_handle_t *)&ex->claim, on_handle_closed);
        ex_queue_close(ex);
        return;
    }
    if (ex->open_handles == 0 && ex->close_cb) {
        void (*cb)(void *) = ex->close_cb;
        ex->close_cb = NULL;
        cb(ex->close_ud);
    }
}

void exec_free(exec *ex)
{
    if (!ex)
        return;
    if (!ex_workers_free(ex))
        return; /* a thread still runs a step: it may use all of this until it ends */
    while (ex->head) {
        ex_run *r = ex->head;
        ex->head = r->next_run;
        ex_run_free(r);
    }
    ex_plans_free(ex);
    reccache_free(ex->records);
    pthread_mutex_destroy(&ex->qmu);
    json_decref(ex->busy);
    json_decref(ex->orphans);
    json_decref(ex->remote);
    json_decref(ex->by_schedule);
    free(ex);
}

void ex_count_schedule(exec *ex, const json_t *schedule_id, int delta)
{
    const char *sid = json_string_value(schedule_id);
    if (!sid || (!ex->by_schedule && !(ex->by_schedule = json_object())))
        return;
    json_int_t n = json_integer_value(json_object_get(ex->by_schedule, sid)) + delta;
    if (n > 0)
        json_object_set_new(ex->by_schedule, sid, json_integer(n));
    else
        json_object_del(ex->by_schedule, sid);
}

size_t exec_active_for_schedule(exec *ex, const char *schedule_id)
{
    if (!ex || !schedule_id)
        return 0;
    return (size_t)json_integer_value(json_object_get(ex->by_schedule, schedule_id));
}

void exec_stats_get(const exec *ex, exec_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->runs_active = ex->nruns;
    st->targets_running = ex->running_targets;
    st->workers_busy = ex_workers_busy(ex);
    for (const ex_run *r = ex->head; r; r = r->next_run)
        for (uint32_t i = r->next; i < r->ntargets; i++)
            st->targets_queued += r->targets[i].state == EX_QUEUED;
    st->runs_started = ex->stat_started;
    st->runs_finished = ex->stat_finished;
    st->plans_cached = ex_plans_count(ex);
    st->plans_compiled = ex->plans_compiled;
    st->plans_reused = ex->plans_reused;
}
