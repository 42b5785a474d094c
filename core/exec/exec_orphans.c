/* exec_orphans.c - what the commands of interrupted runs left running: stopped at start-up
 * through the target's transport, only if they are still those processes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "exec_internal.h"
#include "log.h"

typedef struct orphan {
    exec *ex;
    char run_id[UUID_STR_LEN];
    char target_id[40];
    char *handle;
    pool_lease *lease;
} orphan;

static void orphan_free(orphan *o)
{
    if (o->lease)
        pool_release(o->lease, false);
    free(o->handle);
    free(o);
}

static void on_killed(void *ud, int killed, const char *msg)
{
    orphan *o = ud;
    if (killed > 0)
        log_warn("exec", "run %s, target %s: killed %d process(es) its command left running "
                 "when the daemon stopped",
                 o->run_id, o->target_id, killed);
    else if (killed < 0)
        log_warn("exec", "run %s, target %s: cannot stop what its command left running: %s",
                 o->run_id, o->target_id, msg ? msg : opsc_strerror(killed));
    else
        log_info("exec", "run %s, target %s: nothing of its command was left running (%s)",
                 o->run_id, o->target_id, msg ? msg : "gone");
    orphan_free(o);
}

static void on_lease(void *ud, int status, pool_lease *lease, const opsc_conn_info *info,
                     const char *error)
{
    (void)info;
    orphan *o = ud;
    if (status < 0) { /* unreachable now: nothing more can be done from here */
        on_killed(o, status, error);
        return;
    }
    o->lease = lease;
    const opsc_transport *tp = pool_lease_transport(lease);
    bool has = tp->size >= offsetof(opsc_transport, kill_orphan) + sizeof(tp->kill_orphan) &&
               tp->kill_orphan;
    int rc = has ? tp->kill_orphan(pool_lease_conn(lease), o->handle, on_killed, o) : OPSC_ENOTSUP;
    if (rc < 0)
        on_killed(o, rc, has ? NULL : "its transport cannot stop the processes of another daemon");
}

void ex_kill_orphans(exec *ex)
{
    size_t i;
    json_t *v;
    json_array_foreach(ex->orphans, i, v)
    {
        orphan *o = calloc(1, sizeof(*o));
        const char *handle = json_string_value(json_object_get(v, "handle"));
        if (!o || !handle || !(o->handle = strdup(handle))) {
            free(o);
            continue;
        }
        o->ex = ex;
        snprintf(o->run_id, sizeof(o->run_id), "%s",
                 json_string_value(json_object_get(v, "run_id")));
        snprintf(o->target_id, sizeof(o->target_id), "%s",
                 json_string_value(json_object_get(v, "target_id")));
        pool_wait *w = NULL;
        int rc = pool_acquire(ex->pool, o->target_id, on_lease, o, &w);
        if (rc < 0)
            on_killed(o, rc, "cannot reach the target");
    }
    json_decref(ex->orphans);
    ex->orphans = NULL;
}
