/* notify_bus.c - notices from the core's event bus: missed schedules, unreachable targets,
 * installed step libraries, locked users, long-running runs, discovered hosts. Queued during the
 * loop turn and matched in one transaction at its end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "events.h"
#include "log.h"
#include "notify_internal.h"
#include "util.h"

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

void nt_on_event(const struct event *ev, void *ud)
{
    notify *n = ud;
    if (n->closed)
        return;
    if (strcmp(ev->type, "notify.outbox") == 0) { /* another node wrote deliveries */
        nt_wake_at(n, clock_now_ms());
        return;
    }
    if (strcmp(ev->type, "notify.rules") == 0) { /* or changed rules */
        if (notify_rules_reload(n) < 0)
            log_warn("notify", "reloading the rules another node changed failed");
        return;
    }
    if (strcmp(ev->type, "run.state") == 0) {
        const char *state = str(ev->data, "state");
        if (state && strcmp(state, "running") == 0 && n->any_long_running && ev->subject) {
            json_array_append_new(n->lr_runs, json_string(ev->subject));
            nt_want_flush(n);
        } else if (state && strcmp(state, "queued") && strcmp(state, "running") && ev->subject) {
            nt_longrun_forget(n, ev->subject);
        }
        return;
    }
    json_t *item = json_pack("{s:s, s:s?, s:o}", "type", ev->type, "subject", ev->subject, "data",
                             ev->data ? json_deep_copy(ev->data) : json_object());
    if (item) {
        json_array_append_new(n->bus, item);
        nt_want_flush(n);
    }
}

/* ---- one notice per kind ------------------------------------------------------------------- */

static json_t *job_ref(store_txn *txn, const char *job_id)
{
    json_t *job = NULL;
    json_t *out = json_pack("{s:s?, s:n}", "id", job_id, "name");
    if (job_id && store_get(txn, "jobs", job_id, &job) == 0)
        json_object_set(out, "name", json_object_get(job, "name"));
    json_decref(job);
    return out;
}

int nt_missed_notice(notify *n, store_txn *txn, const json_t *d, notice *no)
{
    no->job_id = str(d, "job_id");
    no->schedule_id = str(d, "schedule_id");
    no->run_id = str(d, "run_id");
    json_t *job = job_ref(txn, no->job_id);
    char text[512], path[96];
    snprintf(text, sizeof(text), "Schedule of job \"%s\" missed its fire at %s: %s",
             str(job, "name") ?: no->job_id ?: "?", str(d, "planned_at") ?: "?",
             str(d, "reason") ?: "missed");
    snprintf(path, sizeof(path), "/api/v1/schedules/%s", no->schedule_id ?: "");
    no->payload = nt_payload_base(n, EV_SCHEDULE_MISSED, text, path);
    if (!no->payload) {
        json_decref(job);
        return OPSC_ENOMEM;
    }
    json_object_set_new(no->payload, "job", job);
    json_object_set_new(no->payload, "schedule",
                        json_pack("{s:s?, s:O?, s:O?, s:s?}", "id", no->schedule_id, "planned_at",
                                  json_object_get(d, "planned_at"), "reason",
                                  json_object_get(d, "reason"), "run_id", no->run_id));
    return 0;
}

static int unreachable(notify *n, store_txn *txn, const json_t *d, const char *subject, notice *no,
                       json_t **hold)
{
    no->target_id = str(d, "target_id") ?: subject;
    json_t *t = NULL;
    if (no->target_id && store_get(txn, "targets", no->target_id, &t) < 0)
        t = NULL;
    *hold = t; /* the target as stored: its name and address */
    json_t *ids = json_pack("[s?]", no->target_id);
    no->target_ids = ids;
    char text[600], path[96];
    snprintf(text, sizeof(text), "Target \"%s\" is unreachable: %s",
             str(t, "name") ?: no->target_id ?: "?", str(d, "error") ?: "connect failed");
    snprintf(path, sizeof(path), "/api/v1/targets/%s", no->target_id ?: "");
    no->payload = nt_payload_base(n, EV_TARGET_UNREACHABLE, text, path);
    if (!no->payload)
        return OPSC_ENOMEM;
    json_object_set_new(no->payload, "target",
                        json_pack("{s:s?, s:O?, s:O?, s:O?}", "id", no->target_id, "name",
                                  json_object_get(t, "name"), "address",
                                  json_object_get(t, "address"), "error",
                                  json_object_get(d, "error")));
    return 0;
}

static int simple(notify *n, int ev, const json_t *d, notice *no)
{
    char text[512];
    const char *key = ev == EV_STEPLIB_INSTALLED ? "steplib" : "user";
    if (ev == EV_STEPLIB_INSTALLED)
        snprintf(text, sizeof(text), "Step library %s %s was installed", str(d, "name") ?: "?",
                 str(d, "version") ?: "");
    else
        snprintf(text, sizeof(text), "User \"%s\" is locked out after failed logins",
                 str(d, "username") ?: "?");
    no->payload =
        nt_payload_base(n, ev, text, ev == EV_STEPLIB_INSTALLED ? "/api/v1/steplibs" : NULL);
    if (!no->payload)
        return OPSC_ENOMEM;
    json_object_set_new(no->payload, key, json_deep_copy(d));
    return 0;
}

/* `*hold` keeps the run record (the notice's strings point into it) until dispatched. */
static int long_running(notify *n, store_txn *txn, const json_t *d, notice *no, json_t **hold)
{
    json_t *run = NULL;
    const char *id = str(d, "run_id");
    int rc = id ? store_get(txn, "runs", id, &run) : OPSC_ENOENT;
    *hold = run;
    if (rc == OPSC_ENOENT || (rc == 0 && strcmp(str(run, "state") ?: "", "running") != 0))
        return 1; /* ended meanwhile: nothing to say */
    if (rc < 0)
        return rc;
    no->job_id = str(run, "job_id");
    no->schedule_id = str(run, "schedule_id");
    no->run_id = str(run, "id");
    no->only_rule = str(d, "rule_id");
    json_t *ids = NULL;
    if ((rc = nt_run_target_ids(txn, no->run_id, &ids)) < 0)
        return rc;
    no->target_ids = ids;
    no->payload = nt_run_payload(n, txn, run, EV_RUN_LONG_RUNNING, 0);
    int64_t started = 0;
    if (!no->payload)
        return OPSC_ENOMEM;
    if (str(run, "started_at") && rfc3339_parse(str(run, "started_at"), &started) == 0) {
        long long s = (long long)((clock_now_ms() - started) / 1000);
        char text[512];
        snprintf(text, sizeof(text), "Job \"%s\" is still running after %lld s",
                 str(run, "job_name") ?: "?", s);
        json_t *e = json_object_get(no->payload, "event");
        json_object_set_new(e, "summary", json_string(text));
        json_object_set_new(e, "elapsed_s", json_integer(s));
        json_object_set_new(
            e, "threshold_s",
            json_integer(json_integer_value(json_object_get(d, "threshold_ms")) / 1000));
    }
    return 0;
}

int nt_bus_dispatch(notify *n, store_txn *txn, json_t *item)
{
    const char *type = str(item, "type");
    json_t *d = json_object_get(item, "data");
    notice no = {0};
    json_t *hold = NULL;
    int rc = 0, ev = -1;
    if (strcmp(type, "schedule.missed") == 0 && !str(d, "run_id")) {
        /* with a missed run, the notice was written with it (notify_run_persisted) */
        ev = EV_SCHEDULE_MISSED;
        rc = nt_missed_notice(n, txn, d, &no);
    } else if (strcmp(type, "target.unreachable") == 0) {
        ev = EV_TARGET_UNREACHABLE;
        rc = unreachable(n, txn, d, str(item, "subject"), &no, &hold);
    } else if (strcmp(type, "steplib.installed") == 0 || strcmp(type, "user.locked") == 0) {
        ev = type[0] == 's' ? EV_STEPLIB_INSTALLED : EV_USER_LOCKED;
        rc = simple(n, ev, d, &no);
    } else if (strcmp(type, "notify.long_running") == 0) {
        ev = EV_RUN_LONG_RUNNING;
        rc = long_running(n, txn, d, &no, &hold);
    } else if ((ev = nt_discovery_event(type)) >= 0) {
        rc = nt_discovery_notice(n, txn, ev, d, &no, &hold);
    }
    if (rc == 0 && ev >= 0) {
        no.ev = ev;
        no.sev = nt_event_severity(ev);
        rc = nt_dispatch(n, txn, &no);
    }
    json_decref((json_t *)no.target_ids);
    nt_notice_clear(&no);
    json_decref(hold);
    return rc < 0 ? rc : 0;
}
