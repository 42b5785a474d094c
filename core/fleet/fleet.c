/* fleet.c - the fleet service: its options, and the batched writer of test results into targets. */
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "fleet.h"
#include "fleet_internal.h"
#include "log.h"

struct fleet {
    struct opsc_core *core;
    fleet_opts opts;
    uv_timer_t flush_timer;
    bool timer_closed;
    json_t *pending; /* target id -> {facts, last_test} */
};

int fleet_new(fleet **out, struct opsc_core *core, const fleet_opts *opts)
{
    fleet *f = calloc(1, sizeof(*f));
    if (!f || !(f->pending = json_object())) {
        free(f);
        return OPSC_ENOMEM;
    }
    f->core = core;
    f->opts = *opts;
    if (f->opts.test_concurrency <= 0)
        f->opts.test_concurrency = 64;
    uv_timer_init(core->loop, &f->flush_timer);
    f->flush_timer.data = f;
    *out = f;
    return 0;
}

int fleet_test_concurrency(const fleet *f)
{
    return f->opts.test_concurrency;
}

struct opsc_core *fleet_core(fleet *f)
{
    return f->core;
}

/* ---- test results, written in batches -------------------------------------------------- */

static int flush_txn(store_txn *txn, void *ud)
{
    json_t *pending = ud;
    const char *id;
    json_t *v;
    json_object_foreach(pending, id, v)
    {
        json_t *rec = NULL;
        int rc = store_get(txn, "targets", id, &rec);
        if (rc == OPSC_ENOENT)
            continue; /* deleted while it was tested */
        json_t *facts = json_object_get(v, "facts");
        if (rc == 0 && facts)
            json_object_set(rec, "facts", facts);
        if (rc == 0)
            json_object_set(rec, "last_test", json_object_get(v, "last_test"));
        if (rc == 0)
            rc = store_update(txn, "targets", rec, 0);
        json_decref(rec);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int fleet_flush(fleet *f)
{
    if (json_object_size(f->pending) == 0)
        return 0;
    json_t *batch = f->pending;
    f->pending = json_object();
    int rc = store_write(f->core->store, flush_txn, batch);
    if (rc < 0 && rc != OPSC_ENOSPC) /* a full disk is logged once, by the store */
        log_error("fleet", "storing the results of %zu target test(s) failed: %s",
                  json_object_size(batch), opsc_strerror(rc));
    json_decref(batch);
    return rc;
}

static void on_flush(uv_timer_t *t)
{
    fleet_flush(t->data);
}

void fleet_record_test(fleet *f, const char *target_id, const json_t *facts,
                       const json_t *last_test)
{
    json_t *v = json_object();
    if (facts)
        json_object_set_new(v, "facts", json_deep_copy(facts));
    json_object_set_new(v, "last_test", json_deep_copy(last_test));
    json_object_set_new(f->pending, target_id, v);
    if (!f->timer_closed && !uv_is_active((uv_handle_t *)&f->flush_timer))
        uv_timer_start(&f->flush_timer, on_flush, 0, 0);
}

/* ---- closing ------------------------------------------------------------------------------ */

void fleet_close(fleet *f)
{
    if (!f || f->timer_closed)
        return;
    fleet_flush(f);
    f->timer_closed = true;
    uv_close((uv_handle_t *)&f->flush_timer, NULL);
}

void fleet_free(fleet *f)
{
    if (!f)
        return;
    json_decref(f->pending);
    free(f);
}
