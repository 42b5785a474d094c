/* sched_fire.c - carrying out a tick's decisions through the executor, and following runs' states.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "civil.h"
#include "exec/exec.h"
#include "log.h"
#include "sched_internal.h"

/* ---- the runs a schedule has active -----------------------------------------------------------
 */

static ssize_t active_index(const sched_entry *e, const char *run_id)
{
    for (size_t i = 0; i < e->n_active; i++)
        if (strcmp(e->active[i], run_id) == 0)
            return (ssize_t)i;
    return -1;
}

int sched_active_add(sched_entry *e, const char *run_id)
{
    if (active_index(e, run_id) >= 0)
        return 0;
    int rc = sched_grow((void **)&e->active, &e->cap_active, e->n_active, sizeof(*e->active));
    if (rc == 0)
        snprintf(e->active[e->n_active++], sizeof(sched_run_id), "%.36s", run_id);
    return rc;
}

static void active_del(sched_entry *e, const char *run_id)
{
    ssize_t i = active_index(e, run_id);
    if (i < 0)
        return;
    memmove(e->active[i], e->active[i + 1], (e->n_active - (size_t)i - 1) * sizeof(*e->active));
    e->n_active--;
}

/* The executor is the authority on what is active; our list names them.
 * Runs started but not yet stored count too: they are active once stored. */
size_t sched_active_count(sched *s, sched_entry *e)
{
    return (s->exec ? s->ops->active_for_schedule(s->exec, e->def.id) : e->n_active) + e->storing;
}

static bool terminal(const char *state)
{
    static const char *const ends[] = {"succeeded",   "failed", "cancelled", "timed_out",
                                       "interrupted", "missed", NULL};
    for (const char *const *p = ends; *p; p++)
        if (strcmp(*p, state) == 0)
            return true;
    return false;
}

static void on_kick(uv_timer_t *t)
{
    sched_tick(t->data);
}

void sched_want_drain(sched *s, sched_entry *e)
{
    if (e->drain || !e->n_queue)
        return;
    if (sched_grow((void **)&s->drains, &s->cap_drains, s->n_drains, sizeof(*s->drains)) < 0) {
        log_error("sched", "schedule %s: out of memory: its queued fires wait for the next end",
                  e->def.id);
        return;
    }
    s->drains[s->n_drains++] = e;
    e->drain = true;
    if (!s->stopping && !uv_is_closing((uv_handle_t *)&s->kick))
        uv_timer_start(&s->kick, on_kick, 0, 0);
}

void sched_on_run_state(const event *ev, void *ud)
{
    sched *s = ud;
    const char *sid = json_string_value(json_object_get(ev->data, "schedule_id"));
    const char *rid = json_string_value(json_object_get(ev->data, "run_id"));
    const char *state = json_string_value(json_object_get(ev->data, "state"));
    sched_entry *e = sid ? sched_map_get(s, sid) : NULL;
    if (!e || !rid || !state)
        return;
    if (!terminal(state)) {
        if (sched_active_add(e, rid) < 0)
            log_error("sched", "schedule %s: out of memory tracking run %s", sid, rid);
        return;
    }
    active_del(e, rid);
    sched_want_drain(s, e);
}

/* ---- carrying out -----------------------------------------------------------------------------
 */

static json_t *planned_json(int64_t planned_ms)
{
    char at[RFC3339_LEN];
    rfc3339_format(planned_ms, at);
    return json_string(at);
}

static void publish(sched *s, const char *type, sched_entry *e, const char *run_id,
                    int64_t planned_ms, const char *key, json_t *val)
{
    json_t *d =
        json_pack("{s:s, s:s, s:o, s:o, s:o}", "schedule_id", e->def.id, "job_id", e->def.job_id,
                  "run_id", run_id && *run_id ? json_string(run_id) : json_null(), "planned_at",
                  planned_json(planned_ms), key, val);
    if (d)
        events_publish(s->events, type, e->def.id, d);
    json_decref(d);
}

void sched_missed_announce(sched *s, sched_entry *e, int64_t planned_ms, const char *run_id,
                           const char *why)
{
    log_info("sched", "schedule %s missed its fire at %lld: %s", e->def.id, (long long)planned_ms,
             why);
    s->stats.missed++;
    publish(s, "schedule.missed", e, run_id, planned_ms, "reason", json_string(why));
}

/* A missed record the store could not take for a passing reason (a row lock a frozen leader
 * holds, a database away) is kept and tried again: lost, the instant would be in no record. */
int sched_record_missed(sched *s, sched_entry *e, const exec_run_spec *spec, const char *why)
{
    sched_run_id run_id = "";
    int rc = 0;
    if (s->exec) {
        rc = s->ops->run_record_missed(s->exec, spec, why, run_id);
        if (rc < 0 && sched_transient(rc) &&
            sched_retry_keep_missed(s, e, spec->planned_at_ms, rc, why) == 0) {
            log_warn("sched", "schedule %s: recording a missed run failed: %s; trying again",
                     e->def.id, opsc_strerror(rc));
            return 0;
        }
        if (rc < 0) {
            log_error("sched", "schedule %s: recording a missed run failed: %s", e->def.id,
                      opsc_strerror(rc));
            run_id[0] = '\0';
        }
    }
    sched_missed_announce(s, e, spec->planned_at_ms, run_id, why);
    return rc;
}

/* A fire that did not start: in the status, the log and an event. */
static void report(sched *s, sched_entry *e, const exec_run_spec *spec, const char *why)
{
    snprintf(e->error, sizeof(e->error), "%s", why);
    log_error("sched", "schedule %s: the fire at %lld did not start: %s", e->def.id,
              (long long)spec->planned_at_ms, why);
    s->stats.errors++;
    publish(s, "schedule.error", e, NULL, spec->planned_at_ms, "error", json_string(why));
}

/* A fire that cannot start: reported, and (when there is an executor to
 * record it) a missed run. */
static void refuse(sched *s, sched_entry *e, const exec_run_spec *spec, const char *why)
{
    report(s, e, spec, why);
    if (s->exec) {
        char reason[SCHED_WHY_MAX + 32];
        snprintf(reason, sizeof(reason), "error: %s", why);
        sched_record_missed(s, e, spec, reason);
    }
}

static void cancel_active(sched *s, sched_entry *e)
{
    size_t n = e->n_active;
    sched_run_id ids[n ? n : 1];
    memcpy(ids, e->active, n * sizeof(*ids)); /* cancelling publishes, which edits the list */
    for (size_t i = 0; i < n; i++) {
        int rc = s->ops->run_cancel(s->exec, ids[i], "scheduler");
        if (rc == OPSC_ENOENT || rc == OPSC_ESTATE)
            active_del(e, ids[i]);
        else if (rc < 0)
            log_warn("sched", "schedule %s: cancelling run %s to replace it: %s", e->def.id, ids[i],
                     opsc_strerror(rc));
    }
}

exec_run_spec sched_spec_of(const sched_entry *e, int64_t planned_ms)
{
    return (exec_run_spec){
        .job_id = e->def.job_id,
        .params = e->def.params,
        .targets = e->def.targets,
        .schedule_id = e->def.id,
        .planned_at_ms = planned_ms,
        .triggered_by = "scheduler",
        .actor_role = e->def.saved_role,
    };
}

void sched_refuse_start(sched *s, sched_entry *e, const exec_run_spec *spec, int rc,
                        const char *err)
{
    char why[SCHED_WHY_MAX];
    snprintf(why, sizeof(why), "the run could not start: %.280s", *err ? err : opsc_strerror(rc));
    refuse(s, e, spec, why);
}

/* A run that was not stored. A duplicate is another leader's fire: dropped. A failure that
 * passes by itself is tried again (sched_retry.c), and so is a duplicate when the commit held
 * other fires too (it failed them all; alone, each finds out whether it is the one). Anything
 * else is a missed fire at once. */
static void not_stored(sched *s, sched_entry *e, const exec_run_spec *spec, int rc,
                       const char *err, bool shared)
{
    char at[RFC3339_LEN], why[SCHED_WHY_MAX];
    bool dup = rc == OPSC_EEXIST;
    if (dup && !shared) {
        rfc3339_format(spec->planned_at_ms, at);
        log_info("sched", "schedule %s: the fire at %s exists already (another leader stored it)",
                 e->def.id, at);
        return;
    }
    if (!dup && !sched_transient(rc)) {
        sched_refuse_start(s, e, spec, rc, err);
        return;
    }
    snprintf(why, sizeof(why), "%.280s", *err ? err : opsc_strerror(rc));
    if (sched_retry_keep(s, e, spec->planned_at_ms, rc, why, dup) < 0) {
        sched_refuse_start(s, e, spec, rc, err); /* too many wait already */
        return;
    }
    if (!dup) {
        snprintf(why, sizeof(why), "the run could not start: %.200s; trying again",
                 *err ? err : opsc_strerror(rc));
        report(s, e, spec, why);
    }
}

void sched_started(sched *s, sched_entry *e, const char *run_id, int64_t planned_ms)
{
    /* The executor announces the run as queued while starting it; if it did
     * not (or it has ended already), its own count says whether to track it. */
    if (active_index(e, run_id) < 0 &&
        s->ops->active_for_schedule(s->exec, e->def.id) > e->n_active)
        sched_active_add(e, run_id);
    memcpy(e->last_run_id, run_id, sizeof(e->last_run_id));
    e->error[0] = '\0';
    s->stats.fired++;
    /* The executor announces the run ("run.state"); the scheduler counts how late it came. */
    int64_t late = clock_now_ms() - planned_ms;
    s->stats.late_ms_sum += (uint64_t)(late > 0 ? late : 0);
    if (late > s->stats.late_ms_max)
        s->stats.late_ms_max = late;
}

/* A fire whose run waits for the slice's commit (sched_store_runs). */
typedef struct storing {
    sched *s;
    sched_entry *e; /* alive: the commit comes within the same tick */
    int64_t planned_ms;
} storing;

static void on_stored(void *ud, int status, const char *run_id, const json_t *run)
{
    (void)run;
    storing *st = ud;
    sched_entry *e = st->e;
    e->storing--;
    if (status < 0) {
        exec_run_spec spec = sched_spec_of(e, st->planned_ms);
        char err[128];
        snprintf(err, sizeof(err), "storing the run failed: %s", opsc_strerror(status));
        not_stored(st->s, e, &spec, status, err, true);
    } else {
        sched_started(st->s, e, run_id, st->planned_ms);
    }
    free(st);
}

static void start_run(sched *s, sched_entry *e, const sched_action *a, const exec_run_spec *spec)
{
    if (!s->exec) {
        refuse(s, e, spec, "no executor is running in this daemon: the fire cannot start a run");
        return;
    }
    if (a->replace && (e->n_active || e->storing)) {
        sched_store_runs(s); /* a run it replaces must exist to be cancelled */
        cancel_active(s, e);
    }
    sched_run_id run_id = "";
    char err[512] = "";
    storing *st = s->ops->run_start_async && s->ops->flush ? malloc(sizeof(*st)) : NULL;
    int rc;
    if (st) {
        *st = (storing){s, e, spec->planned_at_ms};
        rc = s->ops->run_start_async(s->exec, spec, run_id, err, sizeof(err), on_stored, st);
        if (rc == 0) {
            e->storing++;
            s->storing = true;
            return;
        }
        free(st);
    } else {
        rc = s->ops->run_start(s->exec, spec, run_id, err, sizeof(err));
    }
    if (rc < 0)
        not_stored(s, e, spec, rc, err, false);
    else
        sched_started(s, e, run_id, spec->planned_at_ms);
}

void sched_store_runs(sched *s)
{
    if (s->storing && s->exec)
        s->ops->flush(s->exec);
    s->storing = false;
}

void sched_perform(sched *s)
{
    /* Actions may publish events whose subscribers end runs and ask for
     * drains; those append to s->drains, never to s->acts. */
    for (size_t i = 0; i < s->n_acts; i++) {
        sched_action *a = &s->acts[i];
        sched_entry *e = a->e;
        exec_run_spec spec = sched_spec_of(e, a->planned_ms);
        if (a->kind == SCHED_ACT_RUN)
            start_run(s, e, a, &spec);
        else if (a->kind == SCHED_ACT_MISS)
            sched_record_missed(s, e, &spec, a->why);
        else
            refuse(s, e, &spec, a->why);
        e->starting = 0;
    }
    s->n_acts = 0;
}
