/* exec_more.c - runs that do not run: dry runs (rendered commands), missed fires; and retries of
 * the targets a run did not succeed on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "events.h"
#include "exec_internal.h"
#include "log.h"
#include "run_read.h"
#include "steptype.h"
#include "util.h"

/* ---- dry run ------------------------------------------------------------------------------ */

static json_t *dry_step(ex_target *t, const job_step *s)
{
    json_t *e = json_pack("{s:s, s:s}", "id", s->id, "type", s->type);
    char err[512];
    if (s->when_text)
        json_object_set_new(e, "when", json_string(s->when_text));
    json_t *params = ex_step_params(t, s, err, sizeof(err));
    if (!params) {
        bool later = strstr(err, "steps") != NULL;
        json_object_set_new(e, "error", json_string(err));
        if (later)
            json_object_set_new(e, "note",
                                json_string("uses outputs of earlier steps: rendered "
                                            "when the step runs"));
        return e;
    }
    if (s->st->desc->run) {
        json_object_set_new(e, "imperative", json_true());
        ex_redact_json(t->run, params);
        json_object_set_new(e, "params", params);
        return e;
    }
    json_t *ctx = json_pack("{s:o, s:O, s:O, s:O}", "params", params, "target", t->rec, "steps",
                            t->steps_ctx, "run", t->run->ctx_run);
    char *command = NULL;
    tpl_err te = {0};
    int rc = tpl_render_str(steptype_template(s->st, t->os_family), ctx, &command, &te);
    json_decref(ctx);
    if (rc < 0) {
        snprintf(err, sizeof(err), "%d:%d: %s", te.line, te.col, te.msg);
        json_object_set_new(e, "error", json_string(err));
    } else {
        command = ex_redact(t->run, command);
        json_object_set_new(e, "command", json_string(command));
    }
    free(command);
    return e;
}

int exec_dry_run(exec *ex, const exec_run_spec *spec, json_t **out, char *err, size_t errlen)
{
    ex_run *r = NULL;
    *out = NULL;
    int rc = ex_prepare(ex, spec, NULL, &r, err, errlen);
    if (rc < 0)
        return rc;
    json_object_set_new(r->ctx_run, "id", json_string("dry-run"));
    json_t *targets = json_array();
    for (uint32_t i = 0; i < r->ntargets; i++) {
        ex_target *t = &r->targets[i];
        json_t *steps = json_array();
        for (size_t s = 0; s < r->plan->nsteps; s++)
            json_array_append_new(steps, dry_step(t, &r->plan->steps[s]));
        json_array_append_new(targets,
                              json_pack("{s:s, s:O, s:O, s:o}", "target_id", t->id, "name",
                                        json_object_get(t->rec, "name"), "os_family",
                                        json_object_get(t->rec, "os_family"), "steps", steps));
    }
    *out = json_pack("{s:b, s:s, s:I, s:O, s:o, s:O}", "dry_run", 1, "job_id", r->plan->job_id,
                     "job_version", (json_int_t)r->plan->version, "params",
                     json_object_get(r->hdr, "params"), "targets", targets, "disabled_targets",
                     json_object_get(r->hdr, "disabled_targets"));
    ex_run_free(r);
    return *out ? 0 : OPSC_ENOMEM;
}

/* ---- missed fires ---------------------------------------------------------------------------- */

typedef struct missed {
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
    missed m = {spec, reason};
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

/* ---- retry -------------------------------------------------------------------------------- */

struct old_run {
    const char *id;
    json_t *rec;
};

static int old_txn(store_txn *txn, void *ud)
{
    struct old_run *o = ud;
    return run_read(txn, o->id, &o->rec);
}

int exec_run_retry(exec *ex, const char *run_id, const char *by, char new_id[UUID_STR_LEN],
                   char *err, size_t errlen)
{
    struct old_run o = {run_id, NULL};
    new_id[0] = '\0';
    int rc = store_read(ex->store, old_txn, &o);
    if (rc < 0) {
        snprintf(err, errlen, "no run %s", run_id);
        return rc;
    }
    int state = ex_state_parse(json_string_value(json_object_get(o.rec, "state")));
    json_t *ids = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(o.rec, "targets"), i, t)
    {
        const char *s = json_string_value(json_object_get(t, "state"));
        if (s && strcmp(s, "succeeded") != 0)
            json_array_append(ids, json_object_get(t, "target_id"));
    }
    if (!ex_terminal(state) || state == EX_MISSED) {
        snprintf(err, errlen, "run %s is %s: only a run that ran and ended can be retried", run_id,
                 ex_state_name(state));
        rc = OPSC_ESTATE;
    } else if (json_array_size(ids) == 0) {
        snprintf(err, errlen, "run %s succeeded on every target: nothing to retry", run_id);
        rc = OPSC_ESTATE;
    }
    json_t *targets = json_pack("{s:O}", "ids", ids);
    exec_run_spec spec = {
        .job_id = json_string_value(json_object_get(o.rec, "job_id")),
        .job_version = json_integer_value(json_object_get(o.rec, "job_version")),
        .params = json_object_get(o.rec, "params"),
        .targets = targets,
        .triggered_by = by,
    };
    if (rc == 0)
        rc = ex_start_run(ex, &spec, run_id, new_id, err, errlen);
    json_decref(targets);
    json_decref(ids);
    json_decref(o.rec);
    return rc;
}
