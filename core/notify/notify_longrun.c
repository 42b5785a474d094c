/* notify_longrun.c - run.long_running: watches set when a run starts (an absolute threshold, or
 * a percentage over the job's recent average duration), fired by one timer while it still runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "log.h"
#include "notify_internal.h"
#include "util.h"

#define AVG_RUNS 10 /* succeeded runs the average duration is taken over */

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* ---- the job's recent average ------------------------------------------------------------- */

typedef struct recent {
    char ids[AVG_RUNS * 3][40]; /* the newest run ids, a ring */
    size_t n;
} recent;

static int keep_recent(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    (void)key, (void)klen;
    recent *r = ud;
    size_t len = vlen < 39 ? vlen : 39;
    memcpy(r->ids[r->n % (AVG_RUNS * 3)], val, len);
    r->ids[r->n % (AVG_RUNS * 3)][len] = '\0';
    r->n++;
    return 0;
}

static int64_t duration_ms(const json_t *run)
{
    int64_t a = 0, b = 0;
    if (!str(run, "started_at") || !str(run, "finished_at") ||
        rfc3339_parse(str(run, "started_at"), &a) < 0 ||
        rfc3339_parse(str(run, "finished_at"), &b) < 0 || b < a)
        return -1;
    return b - a;
}

/* Average of the job's last succeeded runs other than `self`; 0 without history. */
static int64_t average_ms(store_txn *txn, const char *job_id, const char *self)
{
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "%s/", job_id);
    recent *r = calloc(1, sizeof(*r));
    if (!r || store_kv_scan(txn, "runs_by_job", prefix, strlen(prefix), keep_recent, r) < 0) {
        free(r);
        return 0;
    }
    size_t have = r->n < AVG_RUNS * 3 ? r->n : AVG_RUNS * 3, used = 0;
    int64_t sum = 0;
    for (size_t i = 0; i < have && used < AVG_RUNS; i++) {
        const char *id = r->ids[(r->n - 1 - i) % (AVG_RUNS * 3)];
        json_t *run = NULL;
        if (strcmp(id, self) != 0 && store_get(txn, "runs", id, &run) == 0 &&
            strcmp(str(run, "state") ?: "", "succeeded") == 0) {
            int64_t d = duration_ms(run);
            if (d >= 0) {
                sum += d;
                used++;
            }
        }
        json_decref(run);
    }
    free(r);
    return used ? sum / (int64_t)used : 0;
}

/* ---- planning, inside the end-of-turn transaction -------------------------------------- */

int nt_longrun_plan(notify *n, store_txn *txn, const char *run_id, json_t *out)
{
    json_t *run = NULL, *ids = NULL;
    int rc = store_get(txn, "runs", run_id, &run);
    if (rc == OPSC_ENOENT)
        return 0;
    if (rc == 0)
        rc = nt_run_target_ids(txn, run_id, &ids);
    int64_t started = clock_now_ms();
    if (rc == 0 && str(run, "started_at"))
        rfc3339_parse(str(run, "started_at"), &started);
    notice no = {.ev = EV_RUN_LONG_RUNNING,
                 .sev = nt_event_severity(EV_RUN_LONG_RUNNING),
                 .job_id = str(run, "job_id"),
                 .schedule_id = str(run, "schedule_id"),
                 .run_id = run_id,
                 .target_ids = ids};
    int64_t avg = -1;
    for (size_t i = 0; rc == 0 && i < n->nrules; i++) {
        const nrule *r = &n->rules[i];
        bool match = false;
        if (!(r->events & (1u << EV_RUN_LONG_RUNNING)) ||
            (rc = nt_rule_matches(n, txn, r, &no, &match)) < 0 || !match)
            continue;
        int64_t threshold = r->lr_after_ms;
        if (!threshold && r->lr_percent > 0 && no.job_id) {
            if (avg < 0)
                avg = average_ms(txn, no.job_id, run_id);
            threshold = avg * (100 + r->lr_percent) / 100;
        }
        if (threshold <= 0)
            continue; /* no history yet: nothing to compare with */
        json_array_append_new(out, json_pack("{s:s, s:s, s:I, s:I}", "run_id", run_id, "rule_id",
                                             r->id, "due_ms", (json_int_t)(started + threshold),
                                             "threshold_ms", (json_int_t)threshold));
    }
    json_decref(ids);
    json_decref(run);
    return rc;
}

/* ---- the watches ----------------------------------------------------------------------------- */

static void on_fire(uv_timer_t *t);

static void arm(notify *n)
{
    int64_t first = 0;
    for (nt_watch *w = n->watches; w; w = w->next)
        if (!first || w->due_ms < first)
            first = w->due_ms;
    if (n->closed || !first) {
        uv_timer_stop(&n->lr_timer);
        return;
    }
    int64_t wait = first - clock_now_ms();
    uv_timer_start(&n->lr_timer, on_fire, (uint64_t)(wait > 0 ? wait : 0), 0);
}

static void on_fire(uv_timer_t *t)
{
    notify *n = t->data;
    int64_t now = clock_now_ms();
    for (nt_watch **p = &n->watches; *p;) {
        nt_watch *w = *p;
        if (w->due_ms > now) {
            p = &w->next;
            continue;
        }
        *p = w->next;
        json_t *item = json_pack("{s:s, s:s, s:{s:s, s:s, s:I}}", "type", "notify.long_running",
                                 "subject", w->run_id, "data", "run_id", w->run_id, "rule_id",
                                 w->rule_id, "threshold_ms", (json_int_t)w->threshold_ms);
        if (item)
            json_array_append_new(n->bus, item);
        free(w);
        nt_want_flush(n);
    }
    arm(n);
}

void nt_longrun_add(notify *n, json_t *watches)
{
    size_t i;
    json_t *j;
    json_array_foreach(watches, i, j)
    {
        const char *run = str(j, "run_id"), *rule = str(j, "rule_id");
        bool known = false;
        for (nt_watch *w = n->watches; w && !known; w = w->next)
            known = strcmp(w->run_id, run) == 0 && strcmp(w->rule_id, rule) == 0;
        nt_watch *w = known ? NULL : calloc(1, sizeof(*w));
        if (!w)
            continue;
        snprintf(w->run_id, sizeof(w->run_id), "%s", run);
        snprintf(w->rule_id, sizeof(w->rule_id), "%s", rule);
        w->due_ms = (int64_t)json_integer_value(json_object_get(j, "due_ms"));
        w->threshold_ms = (int64_t)json_integer_value(json_object_get(j, "threshold_ms"));
        w->next = n->watches;
        n->watches = w;
    }
    if (json_array_size(watches))
        arm(n);
}

void nt_longrun_forget(notify *n, const char *run_id)
{
    bool any = false;
    for (nt_watch **p = &n->watches; *p;) {
        nt_watch *w = *p;
        if (strcmp(w->run_id, run_id) == 0) {
            *p = w->next;
            free(w);
            any = true;
        } else {
            p = &w->next;
        }
    }
    if (any)
        arm(n);
}

void nt_longrun_start(notify *n)
{
    arm(n);
}

void nt_longrun_free(notify *n)
{
    while (n->watches) {
        nt_watch *w = n->watches;
        n->watches = w->next;
        free(w);
    }
}
