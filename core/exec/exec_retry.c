/* exec_retry.c - a new run of an ended run's job version and parameters on the targets that did
 * not succeed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "exec_internal.h"
#include "run_read.h"

struct old_run {
    const char *id;
    json_t *rec;
};

static int old_txn(store_txn *txn, void *ud)
{
    struct old_run *o = ud;
    return run_read(txn, o->id, &o->rec);
}

int exec_run_retry(exec *ex, const char *run_id, const char *by, int actor_role,
                   char new_id[UUID_STR_LEN], char *err, size_t errlen)
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
        .actor_role = actor_role,
    };
    if (rc == 0)
        rc = ex_start_run(ex, &spec, run_id, new_id, err, errlen);
    json_decref(targets);
    json_decref(ids);
    json_decref(o.rec);
    return rc;
}
