/* sched_fixture.c - driving the scheduler under a virtual clock for test_scheduler. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "sched_fixture.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "util.h"

int64_t sfx_wall;
uint64_t sfx_mono;

static int64_t wall_fn(void)
{
    return sfx_wall;
}

static uint64_t mono_fn(void)
{
    return sfx_mono;
}

int64_t sfx_at(const char *rfc)
{
    int64_t ms = 0;
    if (rfc3339_parse(rfc, &ms) < 0)
        fail_msg("bad time %s", rfc);
    return ms;
}

struct sched_cfg sfx_cfg(void)
{
    struct sched_cfg c = {
        .misfire_grace_ms = HOUR_MS,
        .misfire_threshold_ms = 1000,
        .run_all_max = 10,
        .missed_max = 100,
        .overlap_limit = 10,
        .clock_check_ms = 5000,
    };
    return c;
}

static void on_schedule_event(const event *e, void *ud)
{
    sfx *f = ud;
    const char *why = json_string_value(json_object_get(e->data, "reason"));
    const char *err = json_string_value(json_object_get(e->data, "error"));
    if (strcmp(e->type, "schedule.missed") == 0) {
        f->missed++;
        snprintf(f->last_reason, sizeof(f->last_reason), "%s", why ? why : "");
    } else if (strcmp(e->type, "schedule.error") == 0) {
        f->errors++;
        snprintf(f->last_error, sizeof(f->last_error), "%s", err ? err : "");
    }
}

/* tmpfs when there is one: the state is committed (fsync) at every wake, and
 * a simulated year has tens of thousands of wakes. */
static void make_dir(sfx *f)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(f->dir, sizeof(f->dir), "%s/test_sched.XXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
}

sfx *sfx_new(const char *start, const struct sched_cfg *cfg, bool with_exec)
{
    sfx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    sfx_wall = sfx_at(start);
    sfx_mono = 1000000;
    clock_set_source(wall_fn);
    f->cfg = cfg ? *cfg : sfx_cfg();
    make_dir(f);
    char err[256] = "";
    assert_int_equal(uv_loop_init(&f->loop), 0);
    if (store_open(&f->st, f->dir, NULL, err, sizeof(err)) < 0)
        fail_msg("store_open: %s", err);
    assert_int_equal(events_new(&f->ev), 0);
    f->sub = events_subscribe(f->ev, "schedule.", NULL, on_schedule_event, f);
    assert_true(f->sub > 0);
    if (with_exec)
        assert_non_null(f->ex = exec_recorder_new(f->ev));
    sfx_up(f);
    return f;
}

void sfx_up(sfx *f)
{
    sched_opts o = {
        .loop = &f->loop,
        .store = f->st,
        .events = f->ev,
        .exec = f->ex,
        .exec_ops = sched_exec_linked(),
        .cfg = &f->cfg,
        .mono_ms = mono_fn,
    };
    char err[256] = "";
    assert_non_null(o.exec_ops); /* the recorder is linked in */
    assert_int_equal(sched_new(&f->s, &o), 0);
    if (sched_start(f->s, err, sizeof(err)) < 0)
        fail_msg("sched_start: %s", err);
    sched_tick(f->s); /* the wake sched_start() arms at once */
}

void sfx_down(sfx *f)
{
    sched_close(f->s);
    f->s = NULL;
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

void sfx_free(sfx *f)
{
    if (f->s)
        sfx_down(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    exec_recorder_free(f->ex);
    events_free(f->ev);
    store_close(f->st);
    nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    clock_set_source(NULL);
    free(f);
}

/* ---- schedules as the API writes them ---------------------------------------------------- */

typedef struct write_op {
    const char *id;
    json_t *changes;
    json_t *rec;
    int64_t anchor;
    bool del;
    sched_field_error fe;
} write_op;

static int write_txn(store_txn *txn, void *ud)
{
    write_op *w = ud;
    json_t *before = NULL;
    int rc = 0;
    w->anchor = -1;
    json_decref(w->rec);
    w->rec = NULL;
    if (store_get(txn, "schedules", w->id, &before) == OPSC_ENOENT)
        before = NULL;
    if (w->del) {
        json_decref(before);
        rc = store_delete(txn, "schedules", w->id, 0);
        return rc ? rc : sched_state_delete_txn(txn, w->id);
    }
    rc = sched_record_merge(before, w->changes, w->id, &w->rec, &w->fe);
    if (rc == 0) {
        json_object_set_new(w->rec, "id", json_string(w->id));
        rc = before ? store_update(txn, "schedules", w->rec, 0)
                    : store_create(txn, "schedules", w->rec);
    }
    if (rc == 0 && sched_change_resets(before, w->rec)) {
        w->anchor = clock_now_ms();
        rc = sched_state_reset_txn(txn, w->id, w->anchor);
    }
    json_decref(before);
    return rc;
}

static void write_schedule(sfx *f, const char *id, const char *text, bool del)
{
    json_error_t je;
    write_op w = {.id = id, .del = del};
    if (text && !(w.changes = json_loads(text, 0, &je)))
        fail_msg("bad JSON in test: %s", je.text);
    int rc = store_write(f->st, write_txn, &w);
    if (rc < 0)
        fail_msg("writing schedule %s: %d %s", text ? text : id, rc, w.fe.msg);
    if (del)
        sched_remove(f->s, id);
    else
        sched_upsert(f->s, w.rec, w.anchor);
    json_decref(w.rec);
    json_decref(w.changes);
}

const char *sfx_add(sfx *f, const char *json_body)
{
    assert_true(f->n_ids < SFX_MAX);
    char *id = f->ids[f->n_ids++];
    assert_int_equal(uuid7_new(id), 0);
    write_schedule(f, id, json_body, false);
    return id;
}

void sfx_change(sfx *f, const char *id, const char *json_changes)
{
    write_schedule(f, id, json_changes, false);
}

void sfx_delete(sfx *f, const char *id)
{
    write_schedule(f, id, NULL, true);
}

/* ---- driving ----------------------------------------------------------------------------- */

void sfx_jump(sfx *f, int64_t wall_ms, int64_t mono_ms)
{
    sfx_wall += wall_ms;
    sfx_mono += (uint64_t)mono_ms;
    sched_tick(f->s);
}

void sfx_step(sfx *f, int64_t ms)
{
    sfx_jump(f, ms, ms);
}

void sfx_run_until(sfx *f, int64_t until_ms)
{
    int64_t next;
    while ((next = sched_next_fire_ms(f->s)) >= 0 && next <= until_ms) {
        if (next > sfx_wall)
            sfx_step(f, next - sfx_wall);
        else
            sched_tick(f->s); /* due now (a drain, or several at one instant) */
    }
    if (until_ms > sfx_wall)
        sfx_step(f, until_ms - sfx_wall);
}
