/* exec_plans.c - the compiled plans of recently run job versions, so that a schedule firing an
 * unchanged job does not compile its step types, conditions and parameter schema again.
 *
 * A plan depends on the job version's record and on the step libraries loaded, nothing else:
 * parameters, targets and secrets are the run's own and stay out of it. An entry is served only
 * when its record equals the one read for this run (a job deleted and made again under the same
 * id and version, another node's write in cluster mode) and no plugin registration changed
 * since it was compiled (a library installed or removed resolves step types differently).
 * One entry per job: a newer version replaces the older. Bounded by exec_opts.plan_cache_max
 * entries and EX_PLANS_BYTES of records as JSON (the compiled forms are in proportion); a record
 * bigger than EX_PLANS_RECORD_MAX is not kept. The least recently served entry goes first. */
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "exec_internal.h"
#include "plugin_host.h"

#define EX_PLANS_BYTES      (4u << 20)
#define EX_PLANS_RECORD_MAX (256u << 10)

typedef struct ex_plan_slot {
    job_plan *plan; /* one reference; NULL: free */
    uint64_t plugins_gen;
    size_t bytes;
    uint64_t used; /* ex_plans.tick when last served */
} ex_plan_slot;

struct ex_plans {
    ex_plan_slot *slots;
    size_t nslots;
    json_t *by_job; /* job id -> slot index */
    size_t bytes;
    uint64_t tick;
};

static void slot_clear(ex_plans *c, size_t i)
{
    ex_plan_slot *s = &c->slots[i];
    if (!s->plan)
        return;
    json_object_del(c->by_job, s->plan->job_id);
    c->bytes -= s->bytes;
    job_plan_free(s->plan);
    *s = (ex_plan_slot){0};
}

/* A free slot, the least recently served one freed when none is. */
static size_t slot_take(ex_plans *c)
{
    size_t lru = 0;
    for (size_t i = 0; i < c->nslots; i++) {
        if (!c->slots[i].plan)
            return i;
        if (c->slots[i].used < c->slots[lru].used)
            lru = i;
    }
    slot_clear(c, lru);
    return lru;
}

static void evict_to_fit(ex_plans *c, size_t more)
{
    while (c->bytes + more > EX_PLANS_BYTES) {
        size_t lru = c->nslots;
        for (size_t i = 0; i < c->nslots; i++)
            if (c->slots[i].plan && (lru == c->nslots || c->slots[i].used < c->slots[lru].used))
                lru = i;
        if (lru == c->nslots)
            return;
        slot_clear(c, lru);
    }
}

/* Made at the first run: NULL (nothing kept) when out of memory. */
static ex_plans *plans_of(exec *ex)
{
    if (ex->plans)
        return ex->plans;
    ex_plans *c = calloc(1, sizeof(*c));
    size_t n = (size_t)ex->opts.plan_cache_max;
    if (!c || !(c->slots = calloc(n, sizeof(*c->slots))) || !(c->by_job = json_object())) {
        if (c)
            free(c->slots);
        free(c);
        return NULL;
    }
    c->nslots = n;
    return ex->plans = c;
}

static void remember(ex_plans *c, job_plan *plan, uint64_t gen)
{
    size_t bytes = json_dumpb(plan->rec, NULL, 0, JSON_COMPACT);
    if (bytes == 0 || bytes > EX_PLANS_RECORD_MAX)
        return;
    evict_to_fit(c, bytes);
    size_t i = slot_take(c);
    if (json_object_set_new(c->by_job, plan->job_id, json_integer((json_int_t)i)) < 0)
        return;
    c->slots[i] = (ex_plan_slot){job_plan_ref(plan), gen, bytes, ++c->tick};
    c->bytes += bytes;
}

int ex_plan_get(exec *ex, const json_t *rec, job_plan **out, json_t **errors)
{
    *errors = NULL;
    ex_plans *c = plans_of(ex);
    const char *job_id = json_string_value(json_object_get(rec, "id"));
    uint64_t gen = plugin_host_generation(ex->plugins);
    json_t *at = c && job_id ? json_object_get(c->by_job, job_id) : NULL;
    if (at) {
        size_t i = (size_t)json_integer_value(at);
        ex_plan_slot *s = &c->slots[i];
        if (s->plugins_gen == gen && json_equal(s->plan->rec, rec)) {
            s->used = ++c->tick;
            ex->plans_reused++;
            *out = job_plan_ref(s->plan);
            return 0;
        }
        slot_clear(c, i); /* a newer version, or compiled against other libraries */
    }
    int rc = job_plan_compile(ex->plugins, rec, out, errors);
    if (rc < 0)
        return rc;
    ex->plans_compiled++;
    if (c && job_id)
        remember(c, *out, gen);
    return 0;
}

void exec_job_forget(exec *ex, const char *job_id)
{
    json_t *at = ex && ex->plans ? json_object_get(ex->plans->by_job, job_id) : NULL;
    if (at)
        slot_clear(ex->plans, (size_t)json_integer_value(at));
}

void ex_plans_free(exec *ex)
{
    ex_plans *c = ex->plans;
    if (!c)
        return;
    for (size_t i = 0; i < c->nslots; i++)
        slot_clear(c, i);
    json_decref(c->by_job);
    free(c->slots);
    free(c);
    ex->plans = NULL;
}

size_t ex_plans_count(const exec *ex)
{
    return ex->plans ? json_object_size(ex->plans->by_job) : 0;
}
