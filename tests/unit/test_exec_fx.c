/* test_exec_fx.c - the executor test fixture: a partial daemon with an executor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core.h"
#include "events.h"
#include "job.h"
#include "plugin_host.h"
#include "run_read.h"
#include "store.h"
#include "test_exec.h"
#include "util.h"

static void record(const event *ev, void *ud)
{
    exec_fx *x = ud;
    json_array_append_new(x->events, json_pack("{s:s, s:O}", "type", ev->type, "data", ev->data));
}

static void load(exec_fx *x, const char *path)
{
    char err[512] = "";
    if (plugin_host_load_file(x->f->core.plugins, path, err, sizeof(err)) < 0)
        fail_msg("loading %s: %s", path, err);
}

int xfx_setup(void **state)
{
    *state = xfx_new(NULL);
    return 0;
}

int xfx_teardown(void **state)
{
    xfx_free(*state);
    return 0;
}

void xfx_contains(const char *hay, const char *needle)
{
    if (!hay || !strstr(hay, needle))
        fail_msg("'%s' not found in:\n%s", needle, hay ? hay : "(null)");
}

void xfx_lacks(const char *hay, const char *needle)
{
    if (hay && strstr(hay, needle))
        fail_msg("'%s' found in:\n%s", needle, hay);
}

exec_fx *xfx_new(const exec_opts *opts)
{
    exec_fx *x = calloc(1, sizeof(*x));
    pool_opts po = {0};
    x->f = fleet_fx_new(NULL, &po);
    assert_non_null(x->f);
    char path[512];
    const char *dir = getenv("OPSC_STEPLIB_BUILD_DIR");
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s/steplib-%s.so", dir ? dir : "steplibs",
                 i ? "linux" : "core", i ? "linux" : "core");
        load(x, path);
    }
    load(x, EXEC_STEPS_SO);
    x->events = json_array();
    x->sub = events_subscribe(x->f->core.events, "run.", NULL, record, x);
    exec_opts o = opts ? *opts : (exec_opts){0};
    if (!o.abandon_grace_ms)
        o.abandon_grace_ms = 300;
    char err[512] = "";
    if (exec_new(&x->ex, &x->f->core, &o, err, sizeof(err)) < 0)
        fail_msg("exec_new: %s", err);
    x->f->core.exec = x->ex;
    return x;
}

static void on_closed(void *ud)
{
    ((exec_fx *)ud)->closed = true;
}

void xfx_free(exec_fx *x)
{
    exec_close(x->ex, 2000, on_closed, x);
    fleet_fx_run_until(x->f, &x->closed, 10000);
    exec_free(x->ex);
    events_unsubscribe(x->f->core.events, x->sub);
    json_decref(x->events);
    fleet_fx_free(x->f);
    free(x);
}

void xfx_target(exec_fx *x, const char *name, const char *labels_json, char id[40])
{
    char body[512];
    snprintf(body, sizeof(body), "{\"name\": \"%s\", \"transport\": \"local\", \"labels\": %s}",
             name, labels_json ? labels_json : "{}");
    fleet_fx_target(x->f, body, id);
}

struct put {
    json_t *rec;
};

static int put_txn(store_txn *txn, void *ud)
{
    return job_insert(txn, ((struct put *)ud)->rec);
}

void xfx_job(exec_fx *x, char id[40], const char *fmt, ...)
{
    char text[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    json_error_t je;
    json_t *body = json_loads(text, 0, &je), *rec = NULL, *errors = NULL;
    if (!body)
        fail_msg("job JSON %d:%d: %s in %s", je.line, je.column, je.text, text);
    int rc = job_build(x->f->core.plugins, body, NULL, &rec, &errors);
    if (rc < 0) {
        char *e = json_dumps(errors, 0);
        fail_msg("job_build: %s", e);
    }
    struct put p = {rec};
    assert_int_equal(store_write(x->f->core.store, put_txn, &p), 0);
    snprintf(id, 40, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    json_decref(body);
}

json_t *xfx_once(exec_fx *x, const char *target_id, const char *steps_fmt, ...)
{
    static int n;
    char steps[6144], job[40], run[UUID_STR_LEN];
    va_list ap;
    va_start(ap, steps_fmt);
    vsnprintf(steps, sizeof(steps), steps_fmt, ap);
    va_end(ap);
    xfx_job(x, job, "{\"name\": \"once-%d\", \"targets\": {\"ids\": [\"%s\"]}, \"steps\": %s}", ++n,
            target_id, steps);
    xfx_run(x, job, NULL, NULL, run);
    return xfx_wait(x, run, 20000);
}

static json_t *parse(const char *text)
{
    if (!text)
        return NULL;
    json_t *j = json_loads(text, 0, NULL);
    if (!j)
        fail_msg("bad JSON: %s", text);
    return j;
}

void xfx_run(exec_fx *x, const char *job_id, const char *params_json, const char *targets_json,
             char run_id[UUID_STR_LEN])
{
    json_t *params = parse(params_json), *targets = parse(targets_json);
    exec_run_spec spec = {
        .job_id = job_id, .params = params, .targets = targets, .triggered_by = "test"};
    char err[1024] = "";
    int rc = exec_run_start(x->ex, &spec, run_id, err, sizeof(err));
    json_decref(params);
    json_decref(targets);
    if (rc < 0)
        fail_msg("exec_run_start: %d %s", rc, err);
}

const char *xfx_refused(exec_fx *x, const char *job_id, const char *params_json, int want)
{
    static char err[1024];
    char run_id[UUID_STR_LEN];
    json_t *params = parse(params_json);
    exec_run_spec spec = {.job_id = job_id, .params = params, .triggered_by = "test"};
    int rc = exec_run_start(x->ex, &spec, run_id, err, sizeof(err));
    json_decref(params);
    if (rc != want)
        fail_msg("exec_run_start answered %d (want %d): %s", rc, want, err);
    return err;
}

static bool seen(exec_fx *x, const char *run_id, const char *type, const char *key,
                 const char *value)
{
    size_t i;
    json_t *e;
    json_array_foreach(x->events, i, e)
    {
        json_t *d = json_object_get(e, "data");
        const char *t = json_string_value(json_object_get(e, "type"));
        const char *rid = json_string_value(json_object_get(d, "run_id"));
        const char *v = json_string_value(json_object_get(d, key));
        if (strcmp(t, type) == 0 && rid && strcmp(rid, run_id) == 0 && v &&
            (!value || strcmp(v, value) == 0))
            return true;
    }
    return false;
}

static bool ended(exec_fx *x, const char *run_id)
{
    static const char *const ends[] = {"succeeded", "failed",      "cancelled",
                                       "timed_out", "interrupted", NULL};
    for (const char *const *s = ends; *s; s++)
        if (seen(x, run_id, "run.state", "state", *s))
            return true;
    return false;
}

struct poll_ud {
    exec_fx *x;
    const char *run_id, *type, *key, *value;
    bool done;
    uv_prepare_t prep;
};

static void on_prep(uv_prepare_t *h)
{
    struct poll_ud *p = h->data;
    p->done = p->type ? seen(p->x, p->run_id, p->type, p->key, p->value) : ended(p->x, p->run_id);
}

static void wait_for(exec_fx *x, struct poll_ud *p, int ms)
{
    uv_prepare_init(&x->f->loop, &p->prep);
    p->prep.data = p;
    uv_prepare_start(&p->prep, on_prep);
    on_prep(&p->prep);
    if (!p->done)
        fleet_fx_run_until(x->f, &p->done, ms);
    uv_close((uv_handle_t *)&p->prep, NULL);
    uv_run(&x->f->loop, UV_RUN_NOWAIT);
}

json_t *xfx_wait(exec_fx *x, const char *run_id, int ms)
{
    struct poll_ud p = {x, run_id, NULL, NULL, NULL, false};
    wait_for(x, &p, ms);
    return xfx_read(x, run_id);
}

void xfx_wait_event(exec_fx *x, const char *run_id, const char *type, const char *key,
                    const char *value, int ms)
{
    struct poll_ud p = {x, run_id, type, key, value, false};
    wait_for(x, &p, ms);
}

struct rd {
    const char *id;
    json_t *rec, *items;
};

static int read_txn(store_txn *txn, void *ud)
{
    struct rd *r = ud;
    return run_read(txn, r->id, &r->rec);
}

json_t *xfx_read(exec_fx *x, const char *run_id)
{
    exec_flush(x->ex);
    struct rd r = {run_id, NULL, NULL};
    assert_int_equal(store_read(x->f->core.store, read_txn, &r), 0);
    return r.rec;
}

static int log_txn(store_txn *txn, void *ud)
{
    struct rd *r = ud;
    json_t *targets = NULL;
    int rc = run_read_targets(txn, r->id, &targets);
    run_log_query q = {.run_id = r->id, .targets = targets, .target = -1, .limit = 100000};
    char next[48];
    if (rc == 0)
        rc = run_log_page(txn, &q, &r->items, next);
    json_decref(targets);
    return rc;
}

json_t *xfx_log(exec_fx *x, const char *run_id)
{
    exec_flush(x->ex);
    struct rd r = {run_id, NULL, NULL};
    assert_int_equal(store_read(x->f->core.store, log_txn, &r), 0);
    return r.items;
}

char *xfx_log_text(exec_fx *x, const char *run_id)
{
    json_t *items = xfx_log(x, run_id);
    size_t i, n = 1;
    json_t *r;
    json_array_foreach(items, i, r) n += json_string_length(json_object_get(r, "text"));
    char *s = calloc(1, n);
    json_array_foreach(items, i, r) strcat(s, json_string_value(json_object_get(r, "text")));
    json_decref(items);
    return s;
}

json_t *xfx_step(json_t *run, size_t t, size_t i)
{
    return json_array_get(
        json_object_get(json_array_get(json_object_get(run, "targets"), t), "steps"), i);
}

const char *xfx_tstate(json_t *run, size_t t)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(run, "targets"), t), "state"));
}
