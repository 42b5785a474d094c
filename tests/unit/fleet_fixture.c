/* fleet_fixture.c - the partial daemon of the fleet tests. */
#include "fleet_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit.h"
#include "config.h"
#include "events.h"
#include "plugin_host.h"
#include "privsep.h"
#include "store.h"
#include "util.h"
#include "vault.h"

static int write_config(fleet_fx *f, const char *text, char *path, size_t n)
{
    snprintf(path, n, "%s/opsc.conf", f->dir);
    return fs_write_file(path, text, strlen(text), 0600);
}

static int open_all(fleet_fx *f, const char *plugin_config, const pool_opts *opts, char *err,
                    size_t errlen)
{
    struct opsc_core *c = &f->core;
    char path[128];
    int rc = store_open(&c->store, f->dir, NULL, err, errlen);
    vault_opts vo = {f->dir, NULL, NULL};
    if (rc == 0)
        rc = vault_open(&c->vault, c->store, &vo, err, errlen);
    if (rc == 0 && plugin_config)
        rc = write_config(f, plugin_config, path, sizeof(path));
    cfg_file *cfg = NULL;
    if (rc == 0)
        rc = cfg_file_load(&cfg, plugin_config ? path : NULL, err, errlen);
    c->cfg.file = cfg;
    if (rc == 0)
        rc = plugin_host_new(&c->plugins, &f->loop, cfg);
    /* Local commands start as the local-steps user through the real helper. */
    privsep_opts po = {SPAWNER, "opsconductor-local", NULL, 0, 0, NULL};
    if (rc == 0 && (rc = privsep_start(&c->privsep, &po)) == 0)
        rc = privsep_attach(c->privsep, &f->loop);
    if (rc == 0)
        plugin_host_set_privsep(c->plugins, c->privsep);
    if (rc == 0)
        rc = plugin_host_load_file(c->plugins, LOCAL_SO, err, errlen);
    if (rc == 0)
        rc = audit_open(&c->audit, &f->loop, c->store, 0);
    if (rc == 0)
        rc = events_new(&c->events);
    if (rc == 0)
        rc = pool_new(&c->pool, c, opts);
    fleet_opts fo = {8};
    if (rc == 0)
        rc = fleet_new(&c->fleet, c, &fo);
    return rc;
}

fleet_fx *fleet_fx_new(const char *plugin_config, const pool_opts *opts)
{
    fleet_fx *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    f->core.loop = &f->loop;
    snprintf(f->dir, sizeof(f->dir), "/tmp/opsc-test-fleet-XXXXXX");
    char err[512] = "";
    if (!mkdtemp(f->dir) || open_all(f, plugin_config, opts, err, sizeof(err)) < 0) {
        fprintf(stderr, "fleet fixture: %s\n", err);
        return NULL;
    }
    return f;
}

static void on_pool_closed(void *ud)
{
    ((fleet_fx *)ud)->pool_closed = true;
}

void fleet_fx_free(fleet_fx *f)
{
    struct opsc_core *c = &f->core;
    if (!f->pool_closed) {
        pool_close(c->pool, on_pool_closed, f);
        fleet_fx_run_until(f, &f->pool_closed, 5000);
    }
    fleet_close(c->fleet);
    audit_close(c->audit);
    plugin_host_free(c->plugins);
    privsep_close(c->privsep);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    pool_free(c->pool);
    fleet_free(c->fleet);
    events_free(c->events);
    vault_close(c->vault);
    store_close(c->store);
    cfg_file_free(c->cfg.file);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
}

static void on_timer(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

struct until {
    const bool *flag;
    bool expired;
};

/* Before the loop would block in poll: stop it once the flag is up, since
 * a callback run by the timers phase does not end a UV_RUN_ONCE turn. */
static void on_prepare(uv_prepare_t *h)
{
    struct until *u = h->data;
    if (*u->flag || u->expired)
        uv_stop(h->loop);
}

static void on_expired(uv_timer_t *t)
{
    ((struct until *)t->data)->expired = true;
}

void fleet_fx_run_until(fleet_fx *f, const bool *flag, int ms)
{
    struct until u = {flag, false};
    uv_timer_t watchdog;
    uv_prepare_t prep;
    uv_timer_init(&f->loop, &watchdog);
    uv_prepare_init(&f->loop, &prep);
    watchdog.data = prep.data = &u;
    uv_timer_start(&watchdog, on_expired, (uint64_t)ms, 0);
    uv_prepare_start(&prep, on_prepare);
    while (!*flag && !u.expired)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&watchdog, NULL);
    uv_close((uv_handle_t *)&prep, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (!*flag)
        fail_msg("timed out after %d ms waiting on the loop", ms);
}

void fleet_fx_run_for(fleet_fx *f, int ms)
{
    uv_timer_t t;
    bool fired = false;
    uv_timer_init(&f->loop, &t);
    t.data = &fired;
    uv_timer_start(&t, on_timer, (uint64_t)ms, 0);
    fleet_fx_run_until(f, &fired, ms + 5000);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

struct insert {
    json_t *rec;
    fleet_err e;
};

static int insert_txn(store_txn *txn, void *ud)
{
    struct insert *in = ud;
    return target_insert(txn, in->rec, NULL, &in->e);
}

static void insert(fleet_fx *f, json_t *rec, char id[40])
{
    struct insert in = {rec, {0}};
    int rc = store_write(f->core.store, insert_txn, &in);
    if (rc < 0)
        fail_msg("target_insert: %d %s", rc, in.e.msg);
    snprintf(id, 40, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
}

void fleet_fx_target(fleet_fx *f, const char *body_json, char id[40])
{
    json_t *body = json_loads(body_json, 0, NULL), *rec = NULL;
    assert_non_null(body);
    fleet_err e = {0};
    int rc = target_build(f->core.plugins, body, NULL, &rec, NULL, &e);
    json_decref(body);
    if (rc < 0)
        fail_msg("target_build: %s: %s", e.field ? e.field : "-", e.msg);
    insert(f, rec, id);
}

void fleet_fx_raw_target(fleet_fx *f, const char *rec_json, char id[40])
{
    json_t *rec = json_loads(rec_json, 0, NULL);
    assert_non_null(rec);
    insert(f, rec, id);
}

struct get {
    const char *db, *id;
    json_t *rec;
};

static int get_txn(store_txn *txn, void *ud)
{
    struct get *g = ud;
    return store_get(txn, g->db, g->id, &g->rec);
}

json_t *fleet_fx_get(fleet_fx *f, const char *db, const char *id)
{
    struct get g = {db, id, NULL};
    store_read(f->core.store, get_txn, &g);
    return g.rec;
}
