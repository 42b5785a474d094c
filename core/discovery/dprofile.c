/* dprofile.c - scan profiles: saved specs, schedules and auto-onboard rules; what happens when
 * one of their scans ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "audit.h"
#include "core.h"
#include "discovery_internal.h"
#include "log.h"
#include "plugin_host.h"
#include "schedule.h"
#include "util.h"

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Members a client may send back from a GET; the server sets them. */
static const char *const read_only[] = {"id",          "created_at",   "updated_at", "version",
                                        "next_run_at", "last_scan_id", "last_run_at"};

/* ---- checking a body --------------------------------------------------------------------------
 */

typedef struct prof_ctx {
    discovery *d;
    const char *id;
    json_t *rec;
    dsc_err *e;
} prof_ctx;

static int check_spec(prof_ctx *p)
{
    json_t *spec = json_object_get(p->rec, "spec");
    if (!spec)
        return dsc_fail(p->e, 400, "invalid_profile", "spec", "spec is required");
    json_object_del(spec, "profile_id"); /* every scan of the profile carries its own */
    dscan_req r;
    int rc = dscan_req_parse(p->d->scan_schema, spec, &r, p->e);
    if (rc == OPSC_ESCHEMA) {
        dsc_err_prefix(p->e, "spec.");
        p->e->code = "invalid_profile";
        p->e->field = "spec";
    }
    /* The same limits as a scan now (names are resolved when it runs). */
    dscan_limits lim = {(uint64_t)p->d->cfg->max_addresses, &p->d->allowed,
                        json_array_size(r.names) > 0};
    json_t *out = NULL;
    if (rc == 0 && (rc = dscan_req_finish(&r, &lim, &out, p->e)) == OPSC_ESCHEMA) {
        dsc_err_prefix(p->e, "spec: ");
        p->e->code =
            p->e->code && strcmp(p->e->code, "invalid_scan") ? p->e->code : "invalid_profile";
    }
    json_decref(out);
    const char *scanner = str(r.body, "scanner");
    if (rc == 0 && !plugin_host_find(p->d->core->plugins, REG_SCANNER, scanner))
        rc = dsc_fail(p->e, 400, "unknown_scanner", "spec",
                      "spec.scanner: no scanner '%.64s' is loaded", scanner);
    dscan_req_clear(&r);
    return rc;
}

static int check_schedule(prof_ctx *p)
{
    sched_field_error se = {0};
    cron_t c;
    const tz_t *tz;
    const char *cron = str(p->rec, "cron");
    int rc = cron ? sched_cron_check(cron, p->id, "cron", &c, &se) : 0;
    if (rc == 0)
        rc = sched_tz_check(str(p->rec, "timezone"), "timezone", &tz, &se);
    if (rc < 0)
        return dsc_fail(p->e, 400, se.code, strcmp(se.field, "cron") == 0 ? "cron" : "timezone",
                        "%s", se.msg);
    return 0;
}

typedef struct refs_ud {
    const json_t *rules;
    char msg[200];
    const char *field;
} refs_ud;

static int rule_refs_txn(store_txn *txn, void *ud)
{
    refs_ud *r = ud;
    size_t i;
    json_t *rule;
    json_array_foreach((json_t *)r->rules, i, rule)
    {
        static const char *const refs[][2] = {{"credential_id", "credentials"},
                                              {"group_id", "groups"}};
        for (int k = 0; k < 2; k++) {
            const char *id = str(rule, refs[k][0]);
            json_t *rec = NULL;
            int rc = id ? store_get(txn, refs[k][1], id, &rec) : 0;
            json_decref(rec);
            if (rc == OPSC_ENOENT) {
                snprintf(r->msg, sizeof(r->msg), "auto_onboard[%zu].%s: no %s %.40s", i, refs[k][0],
                         k ? "group" : "credential", id);
                return OPSC_ENOENT;
            }
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int check_rules(prof_ctx *p)
{
    json_t *rules = json_object_get(p->rec, "auto_onboard");
    size_t i;
    json_t *rule;
    json_array_foreach(rules, i, rule)
    {
        dspec_set set;
        char why[256], what[48];
        snprintf(what, sizeof(what), "auto_onboard[%zu].ranges", i);
        if (dspec_set_parse_json(json_object_get(rule, "ranges"), what, &set, why, sizeof(why)) < 0)
            return dsc_fail(p->e, 400, "invalid_profile", "auto_onboard", "%s", why);
        dspec_set_free(&set);
    }
    refs_ud r = {rules, "", NULL};
    int rc = store_read(p->d->core->store, rule_refs_txn, &r);
    if (rc == OPSC_ENOENT)
        return dsc_fail(p->e, 400, "invalid_profile", "auto_onboard", "%s", r.msg);
    return rc < 0 ? dsc_fail(p->e, 500, "internal", NULL, "%s", opsc_strerror(rc)) : 0;
}

/* The body over the existing record (or the defaults): null clears an optional member. */
static int merge(prof_ctx *p, const json_t *existing, const json_t *body)
{
    json_t *b = json_deep_copy(body);
    for (size_t i = 0; b && i < sizeof(read_only) / sizeof(read_only[0]); i++)
        json_object_del(b, read_only[i]);
    int rc = b ? dsc_validate(p->d->profile_schema, b, "invalid_profile", p->e) : OPSC_ENOMEM;
    p->rec = existing ? json_deep_copy(existing)
                      : json_pack("{s:n, s:n, s:s, s:b, s:n, s:[]}", "description", "cron",
                                  "timezone", "UTC", "enabled", 1, "vanish_after", "auto_onboard");
    if (rc == 0 && p->rec)
        rc = json_object_update(p->rec, b) == 0 ? 0 : OPSC_ENOMEM;
    json_decref(b);
    if (rc == 0 && json_is_null(json_object_get(p->rec, "timezone")))
        json_object_set_new(p->rec, "timezone", json_string("UTC"));
    if (rc == 0 && !str(p->rec, "name"))
        rc = dsc_fail(p->e, 400, "invalid_profile", "name", "name is required");
    if (rc == 0)
        rc = check_spec(p);
    if (rc == 0)
        rc = check_schedule(p);
    if (rc == 0)
        rc = check_rules(p);
    return rc;
}

/* ---- storing -----------------------------------------------------------------------------------
 */

typedef struct put_ud {
    prof_ctx *p;
    const json_t *before;
    int64_t expect;
    char taken[40];
} put_ud;

static int put_txn(store_txn *txn, void *ud)
{
    put_ud *u = ud;
    json_t *rec = u->p->rec;
    const char *name = str(rec, "name"), *old = u->before ? str(u->before, "name") : NULL;
    char other[40];
    int rc = store_index_get(txn, "discovery_profiles_by_name", name, other);
    if (rc == 0 && strcmp(other, u->p->id) != 0) {
        snprintf(u->taken, sizeof(u->taken), "%s", other);
        return OPSC_EEXIST;
    }
    rc = u->before ? store_update(txn, "discovery_profiles", rec, u->expect)
                   : store_create(txn, "discovery_profiles", rec);
    if (rc == 0)
        rc = store_index_put(txn, "discovery_profiles_by_name", name, u->p->id);
    if (rc == 0 && old && strcmp(old, name) != 0)
        rc = store_index_del(txn, "discovery_profiles_by_name", old);
    if (rc == 0) /* the other nodes' schedulers reload (cluster.c) */
        rc = store_version_bump(txn, "discovery_profiles");
    return rc;
}

typedef struct get_ud {
    const char *id;
    json_t *rec, *state;
} get_ud;

static int get_txn(store_txn *txn, void *ud)
{
    get_ud *g = ud;
    json_decref(g->rec);
    g->rec = NULL;
    int rc = store_get(txn, "discovery_profiles", g->id, &g->rec);
    const void *v;
    size_t vl;
    if (rc == 0 && store_kv_get(txn, "discovery_profile_state", g->id, strlen(g->id), &v, &vl) == 0)
        g->state = json_loadb(v, vl, 0, NULL);
    return rc;
}

static json_t *view(discovery *d, json_t *rec, const json_t *state)
{
    json_t *v = json_deep_copy(rec);
    int64_t next = dprof_sched_next(d->sched, str(rec, "id"));
    char when[32];
    if (next >= 0)
        rfc3339_format(next * 1000, when);
    json_object_set_new(v, "next_run_at", next >= 0 ? json_string(when) : json_null());
    json_object_set(v, "last_scan_id",
                    json_object_get(state, "last_scan_id") ? json_object_get(state, "last_scan_id")
                                                           : json_null());
    json_object_set(v, "last_run_at",
                    json_object_get(state, "last_run_at") ? json_object_get(state, "last_run_at")
                                                          : json_null());
    return v;
}

int discovery_profile_get(discovery *d, const char *id, json_t **profile)
{
    get_ud g = {id, NULL, NULL};
    int rc = store_read(d->core->store, get_txn, &g);
    *profile = rc == 0 ? view(d, g.rec, g.state) : NULL;
    json_decref(g.rec);
    json_decref(g.state);
    return rc;
}

int discovery_profile_put(discovery *d, const char *id, const json_t *body, int64_t expect,
                          json_t **profile, dsc_err *e)
{
    *profile = NULL;
    char fresh[40];
    get_ud g = {id, NULL, NULL};
    int rc = id ? store_read(d->core->store, get_txn, &g) : uuid7_new(fresh);
    if (rc == OPSC_ENOENT)
        return dsc_fail(e, 404, "not_found", NULL, "no profile %.40s", id);
    prof_ctx p = {d, id ? id : fresh, NULL, e};
    if (rc == 0)
        rc = merge(&p, g.rec, body);
    if (rc == 0) {
        json_object_set_new(p.rec, "id", json_string(p.id));
        put_ud u = {&p, g.rec, expect, ""};
        rc = store_write(d->core->store, put_txn, &u);
        if (rc == OPSC_EEXIST)
            dsc_fail(e, 409, "conflict", "name", "a profile named '%.100s' exists (%s)",
                     str(p.rec, "name"), u.taken);
        else if (rc == OPSC_ECONFLICT)
            dsc_fail(e, 412, "version_conflict", NULL,
                     "the profile changed since version %lld: read it again", (long long)expect);
    }
    if (rc == 0) {
        dprof_sched_update(d->sched, p.id);
        *profile = view(d, p.rec, g.state);
    } else if (!e->status) {
        dsc_fail(e, 500, "internal", NULL, "%s", opsc_strerror(rc));
    }
    json_decref(p.rec);
    json_decref(g.rec);
    json_decref(g.state);
    return rc;
}

typedef struct del_ud {
    const char *id;
    int64_t expect;
} del_ud;

static int del_txn(store_txn *txn, void *ud)
{
    del_ud *u = ud;
    json_t *rec = NULL;
    int rc = store_get(txn, "discovery_profiles", u->id, &rec);
    if (rc == 0)
        rc = store_delete(txn, "discovery_profiles", u->id, u->expect);
    if (rc == 0)
        rc = store_index_del(txn, "discovery_profiles_by_name", str(rec, "name"));
    if (rc == 0)
        store_kv_del(txn, "discovery_profile_state", u->id, strlen(u->id));
    if (rc == 0)
        rc = dhost_profile_forget(txn, u->id);
    if (rc == 0)
        rc = store_version_bump(txn, "discovery_profiles");
    json_decref(rec);
    return rc;
}

int discovery_profile_delete(discovery *d, const char *id, int64_t expect)
{
    del_ud u = {id, expect};
    int rc = store_write(d->core->store, del_txn, &u);
    if (rc == 0)
        dprof_sched_update(d->sched, id);
    return rc;
}

typedef struct list_ud {
    dsc_page page;
    json_t *states;
} list_ud;

static int list_txn(store_txn *txn, void *ud)
{
    list_ud *l = ud;
    int rc = dsc_page_txn(txn, &l->page);
    size_t i;
    json_t *r;
    json_array_foreach(l->page.items, i, r)
    {
        const char *id = str(r, "id");
        const void *v;
        size_t vl;
        if (store_kv_get(txn, "discovery_profile_state", id, strlen(id), &v, &vl) == 0)
            json_object_set_new(l->states, id, json_loadb(v, vl, 0, NULL));
    }
    return rc;
}

int discovery_profile_list(discovery *d, size_t limit, const char *cursor, json_t **items,
                           char next[40])
{
    list_ud l = {{"discovery_profiles", cursor, limit, false, NULL, NULL, NULL, "", false},
                 json_object()};
    int rc = store_read(d->core->store, list_txn, &l);
    *items = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(l.page.items, i, r)
        json_array_append_new(*items, view(d, r, json_object_get(l.states, str(r, "id"))));
    json_decref(l.page.items);
    json_decref(l.states);
    snprintf(next, 40, "%s", rc == 0 && l.page.more ? l.page.last : "");
    return rc;
}

/* ---- running
 * -------------------------------------------------------------------------------------- */

typedef struct state_ud {
    const char *id;
    json_t *state;
} state_ud;

static int state_txn(store_txn *txn, void *ud)
{
    state_ud *s = ud;
    char *text = json_dumps(s->state, JSON_COMPACT);
    int rc = text ? store_kv_put(txn, "discovery_profile_state", s->id, strlen(s->id), text,
                                 strlen(text))
                  : OPSC_ENOMEM;
    free(text);
    return rc;
}

typedef struct run_ud {
    discovery *d;
    char id[40];
    discovery_scan_cb cb;
    void *ud;
} run_ud;

static void on_started(void *ud, json_t *scan, const dsc_err *e)
{
    run_ud *r = ud;
    if (scan) {
        json_t *state = json_pack("{s:O, s:O}", "last_scan_id", json_object_get(scan, "id"),
                                  "last_run_at", json_object_get(scan, "started_at"));
        state_ud s = {r->id, state};
        store_write(r->d->core->store, state_txn, &s);
        json_decref(state);
    }
    if (r->cb)
        r->cb(r->ud, scan, e);
    else if (e)
        log_warn("discovery", "profile %s: the scheduled scan did not start: %s", r->id, e->msg);
    free(r);
}

void dprof_start_scan(discovery *d, const json_t *rec, const char *requested_by,
                      discovery_scan_cb cb, void *ud)
{
    run_ud *r = calloc(1, sizeof(*r));
    json_t *body = json_deep_copy(json_object_get(rec, "spec"));
    if (!r || !body) {
        free(r);
        json_decref(body);
        dsc_err e = {0};
        dsc_fail(&e, 500, "internal", NULL, "out of memory");
        if (cb)
            cb(ud, NULL, &e);
        return;
    }
    *r = (run_ud){d, "", cb, ud};
    snprintf(r->id, sizeof(r->id), "%s", str(rec, "id"));
    json_object_set_new(body, "profile_id", json_string(r->id));
    discovery_scan_start(d, body, requested_by, on_started, r);
    json_decref(body);
}

void discovery_profile_run(discovery *d, const char *id, const char *requested_by,
                           discovery_scan_cb cb, void *ud)
{
    get_ud g = {id, NULL, NULL};
    int rc = store_read(d->core->store, get_txn, &g);
    if (rc < 0) {
        dsc_err e = {0};
        dsc_fail(&e, rc == OPSC_ENOENT ? 404 : 500, rc == OPSC_ENOENT ? "not_found" : "internal",
                 NULL, "%s %.40s", rc == OPSC_ENOENT ? "no profile" : opsc_strerror(rc), id);
        cb(ud, NULL, &e);
    } else {
        dprof_start_scan(d, g.rec, requested_by, cb, ud);
    }
    json_decref(g.rec);
    json_decref(g.state);
}

int discovery_profile_next(discovery *d, const char *id, int count, json_t **out, dsc_err *e)
{
    get_ud g = {id, NULL, NULL};
    int rc = store_read(d->core->store, get_txn, &g);
    cron_t c;
    const tz_t *tz = NULL;
    *out = NULL;
    if (rc == OPSC_ENOENT)
        rc = dsc_fail(e, 404, "not_found", NULL, "no profile %.40s", id);
    else if (rc == 0 && dprof_schedule(g.rec, &c, &tz))
        *out = sched_times_json(&c, tz, clock_now_ms() / 1000, CRON_TIME_MAX, count);
    else if (rc == 0)
        *out = json_pack("{s:[]}", "times");
    json_decref(g.rec);
    json_decref(g.state);
    return rc;
}

bool dprof_schedule(const json_t *rec, cron_t *cron, const tz_t **tz)
{
    const char *expr = str(rec, "cron");
    if (!expr || cron_parse(expr, str(rec, "id"), cron, NULL, 0) < 0)
        return false;
    return tz_get(str(rec, "timezone") ? str(rec, "timezone") : "UTC", tz, NULL, 0) == 0;
}

/* ---- after a scan: vanished hosts, auto-onboarding
 * -------------------------------------------------- */

typedef struct sweep_ud {
    const char *pid, *scan_id;
    int64_t vanish_after;
    json_t *events;
} sweep_ud;

static int sweep_txn(store_txn *txn, void *ud)
{
    sweep_ud *s = ud;
    json_array_clear(s->events);
    return dhost_profile_sweep(txn, s->pid, s->scan_id, s->vanish_after, s->events);
}

typedef struct auto_ud {
    discovery *d;
    char pid[40], rule[24];
} auto_ud;

static void on_auto_done(void *ud, json_t *result)
{
    auto_ud *a = ud;
    json_int_t created = json_integer_value(json_object_get(result, "created"));
    json_int_t failed = json_integer_value(json_object_get(result, "failed"));
    log_info("discovery", "profile %s auto-onboard rule %s: %lld created, %lld failed", a->pid,
             a->rule, (long long)created, (long long)failed);
    char detail[96];
    snprintf(detail, sizeof(detail), "rule %s: %lld targets created, %lld failed", a->rule,
             (long long)created, (long long)failed);
    audit_event ev = {"system", NULL, NULL, "discovery.auto_onboard", a->pid, "success", 0, detail};
    if (a->d->core->audit && (created || failed))
        audit_record(a->d->core->audit, &ev);
    free(a);
}

static void onboard_rule(discovery *d, const char *pid, size_t index, const json_t *rule,
                         json_t *ids)
{
    auto_ud *a = calloc(1, sizeof(*a));
    if (!a)
        return;
    a->d = d;
    snprintf(a->pid, sizeof(a->pid), "%s", pid);
    snprintf(a->rule, sizeof(a->rule), "%zu", index);
    donboard_opts o = {str(rule, "credential_id"),
                       str(rule, "group_id"),
                       json_object_get(rule, "labels"),
                       str(rule, "name_template"),
                       NULL,
                       json_is_true(json_object_get(rule, "test"))};
    o.transport = str(rule, "transport") ? str(rule, "transport") : "ssh";
    dsc_err e = {0};
    if (donboard_run(d, ids, &o, on_auto_done, a, &e) < 0) {
        log_warn("discovery", "profile %s auto-onboard rule %zu: %s", pid, index, e.msg);
        free(a);
    }
    dsc_err_clear(&e);
}

void dprof_scan_ended(discovery *d, const char *profile_id, const char *scan_id, bool ok)
{
    json_t *rec = NULL;
    if (!ok || discovery_profile_get(d, profile_id, &rec) < 0) {
        json_decref(rec);
        return;
    }
    json_int_t n = json_integer_value(json_object_get(rec, "vanish_after"));
    sweep_ud s = {profile_id, scan_id, n > 0 ? n : d->cfg->vanish_after, json_array()};
    int rc = store_write(d->core->store, sweep_txn, &s);
    if (rc == 0)
        dhost_publish(d, s.events);
    else
        json_decref(s.events);
    json_t *claims = NULL;
    if (rc == 0 && json_array_size(json_object_get(rec, "auto_onboard")))
        rc = dprof_auto_select(d, rec, scan_id, &claims);
    size_t i;
    json_t *ids;
    json_array_foreach(claims, i, ids)
    {
        if (json_array_size(ids))
            onboard_rule(d, profile_id, i, json_array_get(json_object_get(rec, "auto_onboard"), i),
                         ids);
    }
    json_decref(claims);
    json_decref(rec);
}
