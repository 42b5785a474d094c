/* exec_start.c - making a run: the job version, parameters, targets and every check that can be
 * made before anything runs; then the run is stored queued and handed to the queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "events.h"
#include "exec_internal.h"
#include "core.h"
#include "fleet.h"
#include "log.h"
#include "plugin_host.h"
#include "reccache.h"
#include "run_read.h"
#include "steptype.h"
#include "util.h"

typedef struct prep {
    exec *ex;
    const exec_run_spec *spec;
    json_t *job;      /* the version's record */
    json_t *targets;  /* snapshots of the enabled targets */
    json_t *disabled; /* ids of matched targets that are disabled */
    char *err;
    size_t errlen;
} prep;

/* ---- reading the job and the targets ---------------------------------------------------- */

static json_t *snapshot(const json_t *t)
{
    static const char *const keep[] = {"id",        "name",   "address", "port", "os_family",
                                       "transport", "labels", "facts",   NULL};
    json_t *s = json_object();
    for (const char *const *k = keep; *k; k++) {
        json_t *v = json_object_get(t, *k);
        if (v)
            json_object_set(s, *k, v);
    }
    if (!json_object_get(s, "labels"))
        json_object_set_new(s, "labels", json_object());
    if (!json_object_get(s, "facts"))
        json_object_set_new(s, "facts", json_object());
    return s;
}

/* The job's current record (a new reference, read-only: shared with the
 * executor's record cache, which parses it again only when its stored bytes
 * changed; a schedule fires the same job over and over). */
static int job_current(exec *ex, store_txn *txn, const char *ref, json_t **out)
{
    if (!ex->records || !uuid_valid(ref))
        return job_get(txn, ref, out);
    int rc = reccache_get(ex->records, txn, "jobs", ref, out);
    if (rc == OPSC_ENOENT) /* a name that looks like an id */
        return job_get(txn, ref, out);
    if (rc == 0)
        json_incref(*out);
    return rc;
}

/* The targets as they are now: snapshots of the enabled ones, ids of the
 * disabled ones. Each record is read and parsed once. */
static void split_targets(prep *p, const json_t *records)
{
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        if (json_is_false(json_object_get(rec, "enabled")))
            json_array_append(p->disabled, json_object_get(rec, "id"));
        else
            json_array_append_new(p->targets, snapshot(rec));
    }
}

/* A run that exists already (rebuilt where it is claimed): its targets are
 * what it says, in its order. */
static int run_targets(prep *p, store_txn *txn)
{
    size_t i;
    json_t *id;
    json_array_foreach(p->spec->target_ids, i, id)
    {
        json_t *rec = NULL;
        int rc = store_get(txn, "targets", json_string_value(id), &rec);
        if (rc < 0)
            return rc;
        json_array_append_new(p->targets, snapshot(rec));
        json_decref(rec);
    }
    return 0;
}

static int load_txn(store_txn *txn, void *ud)
{
    prep *p = ud;
    json_t *cur = NULL;
    int rc = job_current(p->ex, txn, p->spec->job_id, &cur);
    if (rc == OPSC_ENOENT)
        snprintf(p->err, p->errlen, "no job '%s'", p->spec->job_id);
    int64_t want = p->spec->job_version;
    if (rc == 0 && want > 0 && want != json_integer_value(json_object_get(cur, "version"))) {
        rc = job_version_get(txn, json_string_value(json_object_get(cur, "id")), want, &p->job);
        if (rc == OPSC_ENOENT)
            snprintf(p->err, p->errlen, "job '%s' has no version %lld", p->spec->job_id,
                     (long long)want);
        json_decref(cur);
    } else if (rc == 0) {
        p->job = cur;
    }
    if (rc < 0)
        return rc;
    const json_t *spec = p->spec->targets ? p->spec->targets : json_object_get(p->job, "targets");
    p->targets = json_array();
    p->disabled = json_array();
    if (p->spec->target_ids)
        return run_targets(p, txn);
    json_t *records = NULL;
    rc = fleet_resolve_records(txn, spec, &records, p->err, p->errlen);
    if (rc == 0)
        split_targets(p, records);
    json_decref(records);
    return rc;
}

/* ---- checks before the run ------------------------------------------------------------------ */

static int check_families(const job_plan *plan, const json_t *targets, char *err, size_t errlen)
{
    for (size_t s = 0; s < plan->nsteps; s++) {
        size_t i;
        json_t *t;
        json_array_foreach(targets, i, t)
        {
            const char *fam = json_string_value(json_object_get(t, "os_family"));
            if (!steptype_supports(plan->steps[s].st, fam)) {
                snprintf(err, errlen, "step '%s' (%s) cannot run on target '%s' (os_family %s)",
                         plan->steps[s].id, plan->steps[s].st->name,
                         json_string_value(json_object_get(t, "name")), fam ? fam : "unset");
                return OPSC_ESCHEMA;
            }
        }
    }
    return 0;
}

bool exec_local_allowed(int policy, int role)
{
    if (policy == LOCAL_TARGETS_DISABLED)
        return false;
    return role >= (policy == LOCAL_TARGETS_OPERATOR ? EXEC_ROLE_OPERATOR : EXEC_ROLE_ADMIN);
}

/* [executor] local_targets: commands on the appliance itself need the role
 * it names (a dry run only renders them). */
static int check_local(exec *ex, const exec_run_spec *spec, const json_t *targets, char *err,
                       size_t errlen)
{
    int policy = ex->core ? ex->core->cfg.executor.local_targets : LOCAL_TARGETS_ADMIN;
    bool disabled = policy == LOCAL_TARGETS_DISABLED;
    if (spec->dry_run ||
        (!disabled && (spec->actor_role == 0 || exec_local_allowed(policy, spec->actor_role))))
        return 0;
    size_t i;
    json_t *t;
    json_array_foreach(targets, i, t)
    {
        const char *tr = json_string_value(json_object_get(t, "transport"));
        if (!tr || strcmp(tr, "local") != 0)
            continue;
        snprintf(err, errlen,
                 "target '%s' runs its commands on this appliance (transport local): %s",
                 json_string_value(json_object_get(t, "name")),
                 disabled ? "local targets are disabled ([executor] local_targets = disabled)"
                          : "running jobs on local targets needs the admin role ([executor] "
                            "local_targets = admin)");
        return OPSC_EACCES;
    }
    return 0;
}

static int precheck(ex_run *r, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < r->ntargets; i++) {
        ex_target *t = &r->targets[i];
        json_t *ctx = ex_ctx(t);
        for (size_t s = 0; s < r->plan->nsteps; s++) {
            char e[512];
            if (ex_precheck_step(&r->plan->steps[s], t->os_family, ctx, e, sizeof(e)) < 0) {
                snprintf(err, errlen, "step '%s' on target '%s': %s", r->plan->steps[s].id,
                         json_string_value(json_object_get(t->rec, "name")), e);
                ex_redact_inplace(r, err);
                json_decref(ctx);
                return OPSC_ESCHEMA;
            }
        }
        json_decref(ctx);
    }
    return 0;
}

/* ---- the run ------------------------------------------------------------------------------ */

static json_t *time_json(int64_t ms)
{
    char at[RFC3339_LEN];
    if (ms <= 0)
        return json_null();
    rfc3339_format(ms, at);
    return json_string(at);
}

static ex_run *run_new(exec *ex, const exec_run_spec *spec, job_plan *plan, json_t *params,
                       json_t *targets, json_t *disabled, const char *retry_of)
{
    ex_run *r = calloc(1, sizeof(*r));
    size_t n = json_array_size(targets);
    if (!r || !(r->targets = calloc(n ? n : 1, sizeof(*r->targets))) || uuid7_new(r->id) < 0) {
        if (r)
            free(r->targets);
        free(r);
        return NULL;
    }
    r->ex = ex;
    r->plan = plan;
    const char *job_name = json_string_value(json_object_get(plan->rec, "name"));
    r->hdr =
        json_pack("{s:s, s:s, s:s?, s:I, s:s, s:O, s:s?, s:o, s:s?, s:s?, s:I, s:O, s:o, s:b}",
                  "id", r->id, "job_id", plan->job_id, "job_name", job_name, "job_version",
                  (json_int_t)plan->version, "state", "queued", "params", params, "schedule_id",
                  spec->schedule_id, "planned_at", time_json(spec->planned_at_ms), "triggered_by",
                  spec->triggered_by, "retry_of", retry_of, "target_count", (json_int_t)n,
                  "disabled_targets", disabled, "started_at", json_null(), "dry_run", 0);
    r->ctx_run = json_pack("{s:s, s:s, s:s?, s:I, s:s?, s:s?}", "id", r->id, "job_id", plan->job_id,
                           "job_name", job_name, "job_version", (json_int_t)plan->version,
                           "triggered_by", spec->triggered_by, "schedule_id", spec->schedule_id);
    if (r->hdr && !spec->schedule_id)
        json_object_set_new(r->hdr, "schedule_id", json_null());
    r->ctx_params = json_deep_copy(params);
    r->ntargets = (uint32_t)n;
    for (uint32_t i = 0; i < r->ntargets; i++) {
        ex_target *t = &r->targets[i];
        t->run = r;
        t->idx = i;
        t->rec = json_incref(json_array_get(targets, i));
        snprintf(t->id, sizeof(t->id), "%s", json_string_value(json_object_get(t->rec, "id")));
        t->os_family = json_string_value(json_object_get(t->rec, "os_family"));
        t->steps = calloc(plan->nsteps ? plan->nsteps : 1, sizeof(*t->steps));
        t->steps_ctx = json_object();
    }
    return r;
}

/* Everything up to a run ready to store. On failure `err` says why. */
int ex_prepare(exec *ex, const exec_run_spec *spec, const char *retry_of, ex_run **out, char *err,
               size_t errlen)
{
    *out = NULL;
    if (!spec || !spec->job_id) {
        snprintf(err, errlen, "no job given");
        return OPSC_EINVAL;
    }
    prep p = {ex, spec, NULL, NULL, NULL, err, errlen};
    job_plan *plan = NULL;
    json_t *errors = NULL, *params = NULL;
    *err = '\0';
    int rc = store_read(ex->store, load_txn, &p);
    if (rc == 0 && (rc = ex_plan_get(ex, p.job, &plan, &errors)) < 0 && errors)
        job_err_summary(errors, err, errlen);
    if (rc == 0 && (rc = job_plan_params(plan, spec->params, &params, &errors)) < 0 && errors)
        job_err_summary(errors, err, errlen);
    if (rc == 0 && json_array_size(p.targets) == 0) {
        snprintf(err, errlen, "no target to run on: the targets match none%s",
                 json_array_size(p.disabled) ? " that is enabled" : "");
        rc = OPSC_ESCHEMA;
    }
    if (rc == 0)
        rc = check_families(plan, p.targets, err, errlen);
    if (rc == 0)
        rc = check_local(ex, spec, p.targets, err, errlen);
    ex_run *r = NULL;
    if (rc == 0 && !(r = run_new(ex, spec, plan, params, p.targets, p.disabled, retry_of)))
        rc = OPSC_ENOMEM;
    if (r)
        plan = NULL; /* the run owns it */
    if (rc == 0)
        rc = ex_secrets_resolve(ex, r, params, err, errlen);
    if (rc == 0)
        rc = precheck(r, err, errlen);
    if (rc < 0 && !*err)
        snprintf(err, errlen, "%s", opsc_strerror(rc));
    json_decref(errors);
    json_decref(params);
    json_decref(p.job);
    json_decref(p.targets);
    json_decref(p.disabled);
    job_plan_free(plan);
    if (rc < 0) {
        ex_run_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* ---- cluster mode: routing by labels ---------------------------------------------------- */

/* Each target's values of the routed keys (null: it has none): what the
 * refusal shows. */
static json_t *route_refusal(const ex_run *r, const json_t *keys)
{
    json_t *targets = json_array();
    for (uint32_t t = 0; t < r->ntargets; t++) {
        json_t *labels = json_object_get(r->targets[t].rec, "labels"), *vals = json_object();
        size_t i;
        json_t *key;
        json_array_foreach(keys, i, key)
        {
            json_t *v = json_object_get(labels, json_string_value(key));
            json_object_set(vals, json_string_value(key), v ? v : json_null());
        }
        json_array_append_new(targets, json_pack("{s:s, s:O?, s:o}", "id", r->targets[t].id,
                                                 "name", json_object_get(r->targets[t].rec, "name"),
                                                 "labels", vals));
    }
    return json_pack("{s:O, s:o}", "route_by", keys, "targets", targets);
}

static const char *target_name(const ex_target *t)
{
    const char *name = json_string_value(json_object_get(t->rec, "name"));
    return name ? name : t->id;
}

/* [cluster] route_by: the value of each routed key the run's targets carry,
 * which the node that claims it must carry too (a target without the key
 * leaves it free). Targets that disagree need different nodes: refused,
 * their values in *spec->refusal. */
static int route_of(exec *ex, ex_run *r, const exec_run_spec *spec, char *err, size_t errlen)
{
    const json_t *keys = ex->opts.route_by;
    if (!ex_queued(ex) || json_array_size(keys) == 0)
        return 0;
    json_t *route = json_object();
    size_t i;
    json_t *key;
    json_array_foreach(keys, i, key)
    {
        const char *k = json_string_value(key);
        const ex_target *first = NULL;
        for (uint32_t t = 0; t < r->ntargets; t++) {
            json_t *v = json_object_get(json_object_get(r->targets[t].rec, "labels"), k);
            json_t *have = json_object_get(route, k);
            if (!json_is_string(v))
                continue;
            if (!have) {
                json_object_set(route, k, v);
                first = &r->targets[t];
            } else if (!json_equal(have, v)) {
                snprintf(err, errlen,
                         "the run's targets need different nodes ([cluster] route_by): target "
                         "'%s' has %s=%s, target '%s' has %s=%s",
                         target_name(first), k, json_string_value(have),
                         target_name(&r->targets[t]), k, json_string_value(v));
                if (spec->refusal)
                    *spec->refusal = route_refusal(r, keys);
                json_decref(route);
                return OPSC_ESTATE;
            }
        }
    }
    r->route = route;
    return 0;
}

int ex_start_run_async(exec *ex, const exec_run_spec *spec, const char *retry_of,
                       char run_id[UUID_STR_LEN], char *err, size_t errlen, exec_started_cb cb,
                       void *ud)
{
    if (ex->stopping) {
        snprintf(err, errlen, "the daemon is stopping");
        return OPSC_ESTATE;
    }
    ex_run *r = NULL;
    int rc = ex_prepare(ex, spec, retry_of, &r, err, errlen);
    if (rc == 0 && (rc = route_of(ex, r, spec, err, errlen)) < 0)
        ex_run_free(r);
    if (rc == 0)
        memcpy(run_id, r->id, UUID_STR_LEN);
    if (rc == 0 && (rc = ex_queue_new_run(ex, r, cb, ud)) < 0) {
        snprintf(err, errlen, "%s", opsc_strerror(rc));
        ex_run_free(r);
    }
    return rc;
}

struct sync_start {
    bool done;
    int rc;
};

static void sync_started(void *ud, int status, const char *run_id, const json_t *run)
{
    (void)run_id;
    (void)run;
    struct sync_start *s = ud;
    s->done = true;
    s->rc = status;
}

/* Queued like the others, then flushed at once: one commit with whatever
 * else this turn created or changed, and stored before this returns. */
int ex_start_run(exec *ex, const exec_run_spec *spec, const char *retry_of,
                 char run_id[UUID_STR_LEN], char *err, size_t errlen)
{
    struct sync_start st = {false, 0};
    int rc = ex_start_run_async(ex, spec, retry_of, run_id, err, errlen, sync_started, &st);
    if (rc < 0)
        return rc;
    ex_flush(ex);
    if (!st.done) /* a flush already running (re-entered) stores it: not ours to wait for */
        st.rc = OPSC_EBUSY;
    if (st.rc < 0) {
        snprintf(err, errlen, "storing the run failed: %s", opsc_strerror(st.rc));
        run_id[0] = '\0';
    }
    return st.rc;
}

int exec_run_start(exec *ex, const exec_run_spec *spec, char run_id[UUID_STR_LEN], char *err,
                   size_t errlen)
{
    run_id[0] = '\0';
    if (spec && spec->dry_run) { /* validated and rendered; nothing stored, nothing runs */
        json_t *out = NULL;
        int rc = exec_dry_run(ex, spec, &out, err, errlen);
        json_decref(out);
        return rc;
    }
    return ex_start_run(ex, spec, NULL, run_id, err, errlen);
}

int exec_run_start_async(exec *ex, const exec_run_spec *spec, char run_id[UUID_STR_LEN], char *err,
                         size_t errlen, exec_started_cb cb, void *ud)
{
    run_id[0] = '\0';
    if (!cb || (spec && spec->dry_run))
        return OPSC_EINVAL;
    return ex_start_run_async(ex, spec, NULL, run_id, err, errlen, cb, ud);
}
