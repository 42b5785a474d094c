/* notify_run.c - notices of runs, written in the executor's own transaction: started, ended,
 * fixed, failing; with the failed targets, their failed step and the end of their output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "log.h"
#include "notify_internal.h"
#include "run_read.h"
#include "util.h"

#define FAILED_TARGETS_MAX 20 /* failed targets a message names (the count goes on) */
#define OUTPUT_LINES       10 /* last lines of output per failed target */
#define LINE_MAX_CHARS     300

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static bool is_state(const char *s, const char *want)
{
    return s && strcmp(s, want) == 0;
}

json_t *nt_payload_base(notify *n, int ev, const char *summary, const char *link_path)
{
    char now[RFC3339_LEN];
    rfc3339_format(clock_now_ms(), now);
    json_t *p = json_pack("{s:{s:s, s:s, s:s, s:s, s:i}}", "event", "name", nt_event_name(ev),
                          "severity", nt_sev_name(nt_event_severity(ev)), "occurred_at", now,
                          "summary", summary, "count", 1);
    if (!p)
        return NULL;
    if (*n->public_url && link_path) {
        char *link = NULL;
        if (asprintf(&link, "%s%s", n->public_url, link_path) > 0)
            json_object_set_new(p, "link", json_string(link));
        free(link);
    } else {
        json_object_set_new(p, "link", json_null());
    }
    return p;
}

/* ---- failed targets ---------------------------------------------------------------------- */

static const json_t *failed_step(const json_t *t)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(t, "steps"), i, s)
    {
        const char *st = str(s, "state");
        if (st && !is_state(st, "succeeded") && !is_state(st, "skipped") &&
            !is_state(st, "queued") && !is_state(st, "running"))
            return s;
    }
    return NULL;
}

static void add_line(json_t *out, const char *text, size_t len)
{
    if (len && text[len - 1] == '\r')
        len--;
    if (len > LINE_MAX_CHARS) /* cut on a UTF-8 boundary */
        for (len = LINE_MAX_CHARS; len && ((unsigned char)text[len] & 0xC0) == 0x80; len--)
            ;
    json_array_append_new(out, json_stringn(text, len));
}

/* A log record holds what one read brought, maybe many lines: the last
 * OUTPUT_LINES lines of the last records. */
static json_t *output_lines(store_txn *txn, const char *run_id, uint32_t idx, const char *step)
{
    json_t *recs = NULL, *all = json_array(), *out = json_array();
    if (run_log_tail(txn, run_id, idx, step, OUTPUT_LINES, &recs) < 0) {
        json_decref(all);
        return out;
    }
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        const char *text = json_string_value(r);
        for (const char *nl; (nl = strchr(text, '\n')); text = nl + 1)
            add_line(all, text, (size_t)(nl - text));
        if (*text)
            add_line(all, text, strlen(text));
    }
    size_t n = json_array_size(all);
    for (i = n > OUTPUT_LINES ? n - OUTPUT_LINES : 0; i < n; i++)
        json_array_append(out, json_array_get(all, i));
    json_decref(all);
    json_decref(recs);
    return out;
}

static json_t *failed_target(store_txn *txn, const char *run_id, uint32_t idx, const json_t *t)
{
    const json_t *s = failed_step(t);
    json_t *step =
        s ? json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?}", "id", json_object_get(s, "id"), "name",
                      json_object_get(s, "name"), "state", json_object_get(s, "state"), "exit_code",
                      json_object_get(s, "exit_code"), "error", json_object_get(s, "error"))
          : json_null();
    if (json_is_object(step) && !json_object_get(step, "exit_code"))
        json_object_set_new(step, "exit_code", json_null());
    return json_pack("{s:O?, s:O?, s:O?, s:O?, s:o, s:o}", "target_id",
                     json_object_get(t, "target_id"), "name", json_object_get(t, "name"), "state",
                     json_object_get(t, "state"), "error", json_object_get(t, "error"), "step",
                     step, "output", output_lines(txn, run_id, idx, s ? str(s, "id") : NULL));
}

static void add_failed_targets(store_txn *txn, json_t *p, const char *run_id)
{
    json_t *targets = NULL, *failed = json_array();
    size_t n = 0, i;
    json_t *t;
    if (run_read_targets(txn, run_id, &targets) == 0) {
        json_array_foreach(targets, i, t)
        {
            const char *st = str(t, "state");
            if (is_state(st, "succeeded") || is_state(st, "skipped"))
                continue;
            if (n++ < FAILED_TARGETS_MAX)
                json_array_append_new(failed, failed_target(txn, run_id, (uint32_t)i, t));
        }
    }
    json_decref(targets);
    json_object_set_new(p, "failed_targets", failed);
    json_object_set_new(p, "failed_count", json_integer((json_int_t)n));
}

/* ---- the payload ---------------------------------------------------------------------------- */

static void summary(int ev, const json_t *run, int streak, int failed, char *out, size_t n)
{
    const char *job = str(run, "job_name") ?: str(run, "job_id") ?: "?";
    json_int_t total = json_integer_value(json_object_get(run, "target_count"));
    switch (ev) {
    case EV_RUN_STARTED:
        snprintf(out, n, "Job \"%s\" started on %lld target(s)", job, (long long)total);
        break;
    case EV_RUN_SUCCEEDED:
        snprintf(out, n, "Job \"%s\" succeeded on %lld target(s)", job, (long long)total);
        break;
    case EV_RUN_FAILED:
        snprintf(out, n, "Job \"%s\" failed on %d of %lld target(s)", job, failed,
                 (long long)total);
        break;
    case EV_RUN_TIMED_OUT:
        snprintf(out, n, "Job \"%s\" timed out", job);
        break;
    case EV_RUN_CANCELLED:
        snprintf(out, n, "Job \"%s\" was cancelled", job);
        break;
    case EV_RUN_INTERRUPTED:
        snprintf(out, n, "Job \"%s\" was interrupted", job);
        break;
    case EV_RUN_FIXED:
        snprintf(out, n, "Job \"%s\" is fixed: it succeeded after %d failure(s)", job, streak);
        break;
    case EV_RUN_FAILING:
        snprintf(out, n, "Job \"%s\" failed %d times in a row", job, streak);
        break;
    default:
        snprintf(out, n, "Job \"%s\": %s", job, nt_event_name(ev));
        break;
    }
}

static json_t *run_view(const json_t *run)
{
    static const char *const keys[] = {"id",           "state",       "reason",      "job_id",
                                       "job_name",     "job_version", "schedule_id", "planned_at",
                                       "triggered_by", "started_at",  "finished_at", "target_count",
                                       "counts",       "retry_of",    NULL};
    json_t *v = json_object();
    for (const char *const *k = keys; *k; k++) {
        json_t *x = json_object_get(run, *k);
        json_object_set(v, *k, x ? x : json_null());
    }
    int64_t a = 0, b = 0;
    if (str(run, "started_at") && str(run, "finished_at") &&
        rfc3339_parse(str(run, "started_at"), &a) == 0 &&
        rfc3339_parse(str(run, "finished_at"), &b) == 0)
        json_object_set_new(v, "duration_s", json_real((double)(b - a) / 1000.0));
    return v;
}

json_t *nt_run_payload(notify *n, store_txn *txn, const json_t *run, int ev, int streak)
{
    const char *id = str(run, "id");
    bool failure = ev == EV_RUN_FAILED || ev == EV_RUN_TIMED_OUT || ev == EV_RUN_CANCELLED ||
                   ev == EV_RUN_INTERRUPTED || ev == EV_RUN_FAILING;
    json_t *tmp = json_object();
    if (failure)
        add_failed_targets(txn, tmp, id);
    char text[512], path[96];
    summary(ev, run, streak, (int)json_integer_value(json_object_get(tmp, "failed_count")), text,
            sizeof(text));
    snprintf(path, sizeof(path), "/api/v1/runs/%s", id);
    json_t *p = nt_payload_base(n, ev, text, path);
    if (!p) {
        json_decref(tmp);
        return NULL;
    }
    json_object_set_new(p, "run", run_view(run));
    json_object_set_new(p, "job",
                        json_pack("{s:O?, s:O?}", "id", json_object_get(run, "job_id"), "name",
                                  json_object_get(run, "job_name")));
    json_object_set_new(p, "schedule",
                        str(run, "schedule_id")
                            ? json_pack("{s:O}", "id", json_object_get(run, "schedule_id"))
                            : json_null());
    json_t *failed = json_object_get(tmp, "failed_targets");
    json_object_set_new(p, "failed_targets", failed ? json_incref(failed) : json_array());
    json_object_set_new(p, "failed_count",
                        json_integer(json_integer_value(json_object_get(tmp, "failed_count"))));
    if (ev == EV_RUN_FAILING || ev == EV_RUN_FIXED)
        json_object_set_new(json_object_get(p, "event"), "streak", json_integer(streak));
    json_decref(tmp);
    return p;
}

/* ---- streaks --------------------------------------------------------------------------------- */

static int streak_get(store_txn *txn, const char *kind, const char *id, int *out)
{
    char key[64];
    const void *v = NULL;
    size_t len = 0;
    *out = 0;
    if (!id)
        return 0;
    snprintf(key, sizeof(key), "%s/%s", kind, id);
    int rc = store_kv_get(txn, "notify_streaks", key, strlen(key), &v, &len);
    if (rc == OPSC_ENOENT)
        return 0;
    if (rc == 0 && len < 12) {
        char num[12];
        memcpy(num, v, len);
        num[len] = '\0';
        *out = atoi(num);
    }
    return rc;
}

static int streak_put(store_txn *txn, const char *kind, const char *id, int before, int after)
{
    char key[64], num[12];
    if (!id || before == after)
        return 0;
    snprintf(key, sizeof(key), "%s/%s", kind, id);
    if (after == 0) {
        int rc = store_kv_del(txn, "notify_streaks", key, strlen(key));
        return rc == OPSC_ENOENT ? 0 : rc;
    }
    snprintf(num, sizeof(num), "%d", after);
    return store_kv_put(txn, "notify_streaks", key, strlen(key), num, strlen(num));
}

/* Failed and timed-out runs extend a streak; a success ends it; cancelled
 * and interrupted runs say nothing about the job's health. */
static int streaks(store_txn *txn, notice *no, const char *state)
{
    bool failure = is_state(state, "failed") || is_state(state, "timed_out");
    bool success = is_state(state, "succeeded");
    int rc = streak_get(txn, "job", no->job_id, &no->prev_job);
    if (rc == 0)
        rc = streak_get(txn, "schedule", no->schedule_id, &no->prev_sched);
    no->cur_job = failure ? no->prev_job + 1 : success ? 0 : no->prev_job;
    no->cur_sched = failure ? no->prev_sched + 1 : success ? 0 : no->prev_sched;
    if (rc == 0)
        rc = streak_put(txn, "job", no->job_id, no->prev_job, no->cur_job);
    if (rc == 0 && no->schedule_id)
        rc = streak_put(txn, "schedule", no->schedule_id, no->prev_sched, no->cur_sched);
    return rc;
}

/* ---- the hook -------------------------------------------------------------------------------- */

static json_t *build_run(notify *n, store_txn *txn, notice *no)
{
    int streak =
        no->ev == EV_RUN_FIXED     ? (no->prev_job > no->prev_sched ? no->prev_job : no->prev_sched)
        : no->ev == EV_RUN_FAILING ? (no->cur_job > no->cur_sched ? no->cur_job : no->cur_sched)
                                   : 0;
    return nt_run_payload(n, txn, no->run, no->ev, streak);
}

int nt_run_target_ids(store_txn *txn, const char *run_id, json_t **out)
{
    json_t *targets = NULL;
    *out = json_array();
    int rc = run_read_targets(txn, run_id, &targets);
    size_t i;
    json_t *t;
    json_array_foreach(targets, i, t)
    {
        json_array_append(*out, json_object_get(t, "target_id"));
    }
    json_decref(targets);
    return rc == OPSC_ENOENT ? 0 : rc;
}

static int emit(notify *n, store_txn *txn, notice *no, int ev)
{
    no->ev = ev;
    no->sev = nt_event_severity(ev);
    int rc = nt_dispatch(n, txn, no);
    nt_notice_clear(no);
    return rc;
}

static int terminal_event(const char *state)
{
    static const struct {
        const char *state;
        int ev;
    } map[] = {{"succeeded", EV_RUN_SUCCEEDED},
               {"failed", EV_RUN_FAILED},
               {"timed_out", EV_RUN_TIMED_OUT},
               {"cancelled", EV_RUN_CANCELLED},
               {"interrupted", EV_RUN_INTERRUPTED}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (is_state(state, map[i].state))
            return map[i].ev;
    return -1;
}

/* A notice that cannot be written must never cost the run its record: it is
 * lost, loudly. (Store failures abort the write either way.) */
static int settle(notify *n, int rc, const json_t *run)
{
    if (rc == 0 && !n->closed)
        nt_wake_at(n, clock_now_ms());
    if (rc < 0 && rc != OPSC_ENOSPC && rc != OPSC_EIO && rc != OPSC_ECORRUPT) {
        log_error("notify", "notices of run %s (%s) lost: %s", str(run, "id") ?: "?",
                  str(run, "state") ?: "?", opsc_strerror(rc));
        rc = 0;
    }
    return rc;
}

/* A fire the scheduler skipped, recorded as a missed run: its schedule.missed
 * notice commits with that record. */
static int missed_persisted(notify *n, store_txn *txn, const json_t *run)
{
    if (!(n->events & (1u << EV_SCHEDULE_MISSED)))
        return 0;
    json_t *d = json_pack(
        "{s:O?, s:O?, s:O?, s:O?, s:O?}", "job_id", json_object_get(run, "job_id"), "schedule_id",
        json_object_get(run, "schedule_id"), "run_id", json_object_get(run, "id"), "planned_at",
        json_object_get(run, "planned_at"), "reason", json_object_get(run, "reason"));
    notice no = {0};
    int rc = d ? nt_missed_notice(n, txn, d, &no) : OPSC_ENOMEM;
    if (rc == 0)
        rc = emit(n, txn, &no, EV_SCHEDULE_MISSED);
    nt_notice_clear(&no);
    json_decref(d);
    return settle(n, rc, run);
}

int notify_run_persisted(void *ud, store_txn *txn, const json_t *run, const char *previous)
{
    notify *n = ud;
    const char *state = str(run, "state");
    if (!n || !state || json_is_true(json_object_get(run, "dry_run")) ||
        (previous && strcmp(previous, state) == 0))
        return 0;
    if (is_state(state, "missed"))
        return missed_persisted(n, txn, run);
    notice no = {.job_id = str(run, "job_id"),
                 .schedule_id = str(run, "schedule_id"),
                 .run_id = str(run, "id"),
                 .run = run,
                 .build = build_run};
    int end = terminal_event(state);
    bool started = (!previous || is_state(previous, "queued")) && !is_state(state, "queued") &&
                   str(run, "started_at");
    int rc = end >= 0 ? streaks(txn, &no, state) : 0;
    unsigned may = (started ? 1u << EV_RUN_STARTED : 0) |
                   (end >= 0 ? 1u << end | 1u << EV_RUN_FIXED | 1u << EV_RUN_FAILING : 0);
    if (rc < 0 || !(n->events & may)) /* no rule wants to hear: the run's write stays lean */
        return rc;
    json_t *ids = NULL;
    rc = nt_run_target_ids(txn, no.run_id, &ids);
    no.target_ids = ids;
    if (rc == 0 && started)
        rc = emit(n, txn, &no, EV_RUN_STARTED);
    if (rc == 0 && end >= 0)
        rc = emit(n, txn, &no, end);
    if (rc == 0 && end == EV_RUN_SUCCEEDED && (no.prev_job > 0 || no.prev_sched > 0))
        rc = emit(n, txn, &no, EV_RUN_FIXED);
    if (rc == 0 && (no.cur_job > no.prev_job || no.cur_sched > no.prev_sched))
        rc = emit(n, txn, &no, EV_RUN_FAILING);
    json_decref(ids);
    return settle(n, rc, run);
}
