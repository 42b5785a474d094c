/* batch.c - testing many targets, a bounded number at once, results as they finish. */
#include <stdlib.h>

#include <opsc/errors.h>

#include "core.h"
#include "fleet.h"
#include "fleet_internal.h"
#include "util.h"

struct fleet_batch {
    fleet *f;
    json_t *ids;
    size_t next, running, ok, failed;
    int concurrency;
    bool stopped, finished;
    fleet_test_cb on_result;
    fleet_batch_done_cb done;
    void *ud;
    uint64_t t0;
    uv_timer_t start; /* the first tests start on the next loop turn */
};

static void on_closed(uv_handle_t *h)
{
    fleet_batch *b = h->data;
    json_decref(b->ids);
    free(b);
}

static void finish(fleet_batch *b)
{
    if (b->finished)
        return;
    b->finished = true;
    size_t total = json_array_size(b->ids);
    json_t *summary = json_pack("{s:I, s:I, s:I, s:I, s:I}", "total", (json_int_t)total, "ok",
                                (json_int_t)b->ok, "failed", (json_int_t)b->failed, "not_run",
                                (json_int_t)(total - b->ok - b->failed), "wall_ms",
                                (json_int_t)(clock_mono_ms() - b->t0));
    b->done(b->ud, summary);
    json_decref(summary);
    uv_close((uv_handle_t *)&b->start, on_closed);
}

static void pump(fleet_batch *b);

static void on_one(void *ud, json_t *result)
{
    fleet_batch *b = ud;
    b->running--;
    if (json_is_true(json_object_get(result, "ok")))
        b->ok++;
    else
        b->failed++;
    b->on_result(b->ud, result);
    pump(b);
}

static void pump(fleet_batch *b)
{
    size_t total = json_array_size(b->ids);
    while (!b->stopped && b->running < (size_t)b->concurrency && b->next < total) {
        const char *id = json_string_value(json_array_get(b->ids, b->next++));
        b->running++;
        int rc = fleet_test_target(b->f, id, on_one, b);
        if (rc < 0) { /* the pool is closing: no test can run any more */
            b->running--;
            b->stopped = true;
        }
    }
    if (b->running == 0 && (b->stopped || b->next == total))
        finish(b);
}

static void on_start(uv_timer_t *t)
{
    pump(t->data);
}

int fleet_batch_start(fleet *f, json_t *target_ids, int concurrency, fleet_test_cb on_result,
                      fleet_batch_done_cb done, void *ud, fleet_batch **out)
{
    if (!json_is_array(target_ids) || concurrency < 1 || !on_result || !done)
        return OPSC_EINVAL;
    fleet_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return OPSC_ENOMEM;
    b->f = f;
    b->ids = json_incref(target_ids);
    b->concurrency = concurrency;
    b->on_result = on_result;
    b->done = done;
    b->ud = ud;
    b->t0 = clock_mono_ms();
    uv_timer_init(fleet_core(f)->loop, &b->start);
    b->start.data = b;
    uv_timer_start(&b->start, on_start, 0, 0);
    if (out)
        *out = b;
    return 0;
}

void fleet_batch_stop(fleet_batch *b)
{
    b->stopped = true; /* the start timer or the last test still running finishes it */
}
