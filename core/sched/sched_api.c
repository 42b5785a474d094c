/* sched_api.c - what the REST API asks of the scheduler: take changes, answer status and next
 * fires. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "civil.h"
#include "log.h"
#include "sched_internal.h"

bool sched_change_resets(const json_t *before, const json_t *after)
{
    static const char *const keys[] = {"cron", "timezone", "start_at", "end_at", NULL};
    if (!before)
        return true;
    if (!json_is_true(json_object_get(before, "enabled")) &&
        json_is_true(json_object_get(after, "enabled")))
        return true;
    for (const char *const *k = keys; *k; k++)
        if (!json_equal(json_object_get(before, *k), json_object_get(after, *k)))
            return true;
    return false;
}

/* Waiting fires that will never get their turn are missed, like any other. */
static void drop_queue(sched *s, sched_entry *e, const char *why)
{
    for (size_t i = 0; i < e->n_queue; i++)
        if (sched_add_action(s, e, SCHED_ACT_MISS, e->queue[i],
                             "overlap: %s while this fire "
                             "waited for the active run",
                             why) < 0)
            log_error("sched", "schedule %s: out of memory recording a dropped fire", e->def.id);
    e->n_queue = 0;
    sched_mark_dirty(s, e);
}

/* Outside a tick: persist and carry out what drop_queue() decided. */
static void settle(sched *s)
{
    if (s->in_tick)
        return;
    sched_state_save(s, -1);
    sched_perform(s);
    sched_store_runs(s);
}

void sched_upsert(sched *s, const json_t *rec, int64_t anchor_ms)
{
    const char *id = json_string_value(json_object_get(rec, "id"));
    sched_entry *e = sched_map_get(s, id);
    bool fresh = e == NULL;
    if (fresh && !(e = calloc(1, sizeof(*e)))) {
        log_error("sched", "schedule %s: out of memory: it will fire after a restart", id);
        return;
    }
    if (fresh) {
        e->heap_idx = SCHED_NOT_ARMED;
        e->last_ms = anchor_ms >= 0 ? anchor_ms : clock_now_ms();
        e->last_fire_ms = SCHED_NO_FIRE;
    } else {
        sched_heap_remove(s, e);
        sched_def_clear(&e->def);
    }
    e->error[0] = '\0';
    e->valid = sched_def_parse(rec, &s->dft, &e->def, e->error, sizeof(e->error)) == 0;
    e->hint_after = INT64_MIN; /* the cron or zone may have changed */
    if (!e->valid)
        snprintf(e->def.id, sizeof(e->def.id), "%s", id);
    if (!fresh && anchor_ms >= 0) {
        e->last_ms = anchor_ms;
        if (e->n_queue)
            drop_queue(s, e, "the schedule changed");
        sched_retry_forget(s, e, "the schedule changed");
    }
    if (e->n_queue && (!e->valid || !e->def.enabled))
        drop_queue(s, e, "the schedule was paused");
    if (!e->valid || !e->def.enabled)
        sched_retry_forget(s, e, "the schedule was paused");
    if (fresh && sched_map_put(s, e) < 0) {
        log_error("sched", "schedule %s: out of memory: it will fire after a restart", id);
        sched_entry_free(e);
        return;
    }
    e->next_ms = sched_compute_next(e);
    if (e->next_ms != SCHED_NO_FIRE && sched_heap_push(s, e) < 0)
        log_error("sched", "schedule %s: out of memory: it will fire after a restart", id);
    settle(s);
    if (!s->in_tick)
        sched_rearm(s); /* the earliest fire may have changed */
}

void sched_remove(sched *s, const char *id)
{
    sched_entry *e = sched_map_get(s, id);
    if (!e)
        return;
    sched_heap_remove(s, e);
    sched_map_del(s, e);
    for (size_t i = 0; i < s->n_drains; i++)
        if (s->drains[i] == e)
            s->drains[i--] = s->drains[--s->n_drains];
    if (e->n_queue)
        drop_queue(s, e, "the schedule was deleted");
    sched_retry_forget(s, e, "the schedule was deleted");
    for (size_t i = 0; i < s->n_dirty; i++) /* its state is gone with the record */
        if (s->dirty[i] == e)
            s->dirty[i--] = s->dirty[--s->n_dirty];
    e->dirty = false;
    settle(s);
    sched_entry_free(e);
}

static json_t *time_or_null(int64_t ms)
{
    char t[RFC3339_LEN];
    if (ms == SCHED_NO_FIRE)
        return json_null();
    rfc3339_format(ms, t);
    return json_string(t);
}

json_t *sched_status(sched *s, const char *id)
{
    sched_entry *e = sched_map_get(s, id);
    if (!e)
        return NULL;
    json_t *q = json_array();
    for (size_t i = 0; q && i < e->n_queue; i++)
        json_array_append_new(q, time_or_null(e->queue[i]));
    return json_pack("{s:o, s:o, s:o, s:o, s:I, s:o}", "next_fire_at", time_or_null(e->next_ms),
                     "last_fire_at", time_or_null(e->last_fire_ms), "last_run_id",
                     e->last_run_id[0] ? json_string(e->last_run_id) : json_null(), "last_error",
                     e->error[0] ? json_string(e->error) : json_null(), "active_runs",
                     (json_int_t)sched_active_count(s, e), "queued", q ? q : json_array());
}

int sched_upcoming(sched *s, const char *id, int count, json_t **out)
{
    sched_entry *e = sched_map_get(s, id);
    if (!e)
        return OPSC_ENOENT;
    if (e->next_ms == SCHED_NO_FIRE) {
        *out = json_pack("{s:[]}", "times");
    } else {
        int64_t end = e->def.end_ms == SCHED_TIME_NONE_HI ? CRON_TIME_MAX
                                                          : civil_floor_div(e->def.end_ms, 1000);
        *out = sched_times_json(&e->def.cron, e->def.tz, e->next_ms / 1000 - 1, end, count);
    }
    return *out ? 0 : OPSC_ENOMEM;
}
