/* exec_missed.c - fires the scheduler skipped, recorded as runs in state "missed" with their
 * reason (and, in the same commit, the notices they cause) and announced. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "events.h"
#include "exec_internal.h"
#include "util.h"

typedef struct missed {
    exec *ex;
    const exec_run_spec *spec;
    const char *reason;
    json_t *rec;
} missed;

static int missed_txn(store_txn *txn, void *ud)
{
    missed *m = ud;
    json_t *job = NULL;
    char at[RFC3339_LEN], planned[RFC3339_LEN];
    rfc3339_format(clock_now_ms(), at);
    rfc3339_format(m->spec->planned_at_ms, planned);
    if (job_get(txn, m->spec->job_id, &job) < 0)
        job = NULL;
    json_t *rec = json_deep_copy(m->rec);
    json_object_set_new(rec, "job_name",
                        job ? json_incref(json_object_get(job, "name")) : json_null());
    json_object_set_new(rec, "job_version",
                        job ? json_incref(json_object_get(job, "version")) : json_null());
    json_object_set_new(rec, "finished_at", json_string(at));
    json_object_set_new(rec, "planned_at",
                        m->spec->planned_at_ms ? json_string(planned) : json_null());
    json_decref(job);
    int rc = store_create(txn, "runs", rec);
    const char *id = json_string_value(json_object_get(rec, "id"));
    char key[96];
    snprintf(key, sizeof(key), "%.40s/%s", m->spec->job_id, id);
    if (rc == 0)
        rc = store_kv_put(txn, "runs_by_job", key, strlen(key), id, strlen(id));
    if (rc == 0 && m->ex->opts.on_run_new)
        rc = m->ex->opts.on_run_new(m->ex->opts.on_run_new_ud, txn, rec);
    if (rc == 0 && m->ex->opts.on_run_persisted) /* its schedule.missed notice commits with it */
        rc = m->ex->opts.on_run_persisted(m->ex->opts.on_run_persisted_ud, txn, rec, NULL);
    json_decref(rec);
    return rc;
}

int exec_run_record_missed(exec *ex, const exec_run_spec *spec, const char *reason,
                           char run_id[UUID_STR_LEN])
{
    run_id[0] = '\0';
    if (!spec || !spec->job_id)
        return OPSC_EINVAL;
    int rc = uuid7_new(run_id);
    if (rc < 0)
        return rc;
    missed m = {ex, spec, reason, NULL};
    m.rec = json_pack("{s:s, s:s, s:s, s:O, s:s?, s:s?, s:s, s:O, s:i, s:o, s:b}", "id", run_id,
                      "job_id", spec->job_id, "state", "missed", "params",
                      spec->params ? spec->params : json_null(), "schedule_id", spec->schedule_id,
                      "triggered_by", spec->triggered_by, "reason", reason ? reason : "missed",
                      "targets_spec", spec->targets ? spec->targets : json_null(), "target_count",
                      0, "started_at", json_null(), "dry_run", 0);
    if (!m.rec)
        return OPSC_ENOMEM;
    if (!spec->schedule_id)
        json_object_set_new(m.rec, "schedule_id", json_null());
    rc = store_write(ex->store, missed_txn, &m);
    if (rc == 0) {
        json_t *d = json_pack("{s:s, s:s, s:O, s:s, s:s, s:s, s:i}", "run_id", run_id, "job_id",
                              spec->job_id, "schedule_id", json_object_get(m.rec, "schedule_id"),
                              "state", "missed", "previous", "missed", "reason",
                              reason ? reason : "missed", "seq", 1);
        events_publish(ex->events, "run.state", run_id, d);
        json_decref(d);
    } else {
        run_id[0] = '\0';
    }
    json_decref(m.rec);
    return rc;
}
