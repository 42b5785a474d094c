/* dscan.c - running scans: starting a scanner, taking its hosts in, progress, the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "discovery_internal.h"
#include "log.h"
#include "plugin_host.h"
#include "util.h"

#define FLUSH_AT 256 /* hosts pending: write them now rather than at the next flush */

enum { END_FINISHED, END_CANCELLED, END_FAILED };
static const char *const end_names[] = {"finished", "cancelled", "failed"};

dscan *dscan_find(discovery *d, const char *id)
{
    for (dscan *s = d->scans; s; s = s->next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

json_t *dscan_progress(dscan *s)
{
    opsc_scan_progress p = {.size = sizeof(p), .total = s->total};
    if (s->handle && OPSC_SCANNER_HAS(s->sc, progress))
        s->sc->progress(s->handle, &p);
    if (!s->handle) {
        p.done = s->last_done;
        p.probes = s->last_probes;
    }
    if (p.icmp)
        snprintf(s->icmp, sizeof(s->icmp), "%s", p.icmp);
    double secs = (double)(clock_mono_ms() - s->t0) / 1000.0;
    if (secs < 0.001)
        secs = 0.001;
    json_t *out = json_pack("{s:I, s:I, s:I, s:f, s:f}", "done", (json_int_t)p.done, "total",
                            (json_int_t)s->total, "probes", (json_int_t)p.probes, "addresses_per_s",
                            (double)p.done / secs, "probes_per_s", (double)p.probes / secs);
    if (out && s->icmp[0])
        json_object_set_new(out, "icmp", json_string(s->icmp));
    return out;
}

/* The record with what only the running scan knows. */
static json_t *live_view(discovery *d, json_t *rec)
{
    json_t *v = json_deep_copy(rec);
    dscan *s = v ? dscan_find(d, json_string_value(json_object_get(v, "id"))) : NULL;
    if (s && strcmp(json_string_value(json_object_get(v, "state")), "running") == 0) {
        json_object_set_new(v, "progress", dscan_progress(s));
        json_object_set_new(v, "hosts_found", json_integer((json_int_t)s->found));
    }
    return v;
}

/* ---- reading ----------------------------------------------------------------------------- */

int discovery_scan_get(discovery *d, const char *id, json_t **scan)
{
    json_t *rec = NULL;
    int rc = dsc_get(d, "discovery_scans", id, &rec);
    *scan = rc == 0 ? live_view(d, rec) : NULL;
    json_decref(rec);
    return rc;
}

static bool in_state(const json_t *rec, void *ud)
{
    return !ud || strcmp(ud, json_string_value(json_object_get(rec, "state"))) == 0;
}

static int list_txn(store_txn *txn, void *ud)
{
    return dsc_page_txn(txn, ud);
}

/* Newest first. */
int discovery_scan_list(discovery *d, size_t limit, const char *cursor, const char *state,
                        json_t **items, char next[40])
{
    dsc_page p = {"discovery_scans", cursor, limit, true, in_state, (void *)state, NULL, "", false};
    int rc = store_read(d->core->store, list_txn, &p);
    *items = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(p.items, i, r) json_array_append_new(*items, live_view(d, r));
    json_decref(p.items);
    snprintf(next, 40, "%s", rc == 0 && p.more ? p.last : "");
    return rc;
}

bool discovery_scan_running(discovery *d, const char *id)
{
    return dscan_find(d, id) != NULL;
}

/* ---- hosts coming in ------------------------------------------------------------------------- */

static void on_host(void *ud, const opsc_found_host *h)
{
    dscan *s = ud;
    if (!h || !h->address || s->cancelling)
        return;
    json_t *found = dhost_found(h, json_object_get(s->names, h->address));
    if (!found)
        return;
    json_array_append_new(s->pending, found);
    s->found++;
    s->d->hosts_found++;
    if (json_array_size(s->pending) >= FLUSH_AT)
        dscan_flush_all(s->d);
    else
        dscan_flush_soon(s->d);
}

typedef struct flush_ud {
    discovery *d;
    json_t *events; /* [[type, subject, data]] published after commit */
} flush_ud;

static int flush_scan(store_txn *txn, dscan *s, flush_ud *f)
{
    size_t i;
    json_t *found;
    json_array_foreach(s->pending, i, found)
    {
        json_t *rec = NULL;
        int rc = dhost_merge(txn, s->id, s->profile_id, found, &rec, f->events);
        if (rc < 0)
            return rc;
        json_array_append_new(f->events, json_pack("[s, s, {s:s, s:o}]", "discovery.scan.host",
                                                   s->id, "scan_id", s->id, "host", rec));
    }
    return 0;
}

/* Runs again from the start when the map grows: nothing outside the txn changes. */
static int flush_txn(store_txn *txn, void *ud)
{
    flush_ud *f = ud;
    json_array_clear(f->events);
    for (dscan *s = f->d->scans; s; s = s->next) {
        int rc = flush_scan(txn, s, f);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void dscan_flush_all(discovery *d)
{
    size_t n = 0;
    for (dscan *s = d->scans; s; s = s->next)
        n += json_array_size(s->pending);
    if (n == 0)
        return;
    uv_timer_stop(&d->flush);
    flush_ud f = {d, json_array()};
    int rc = store_write(d->core->store, flush_txn, &f);
    if (rc < 0)
        log_error("discovery", "storing %zu hosts found: %s", n, opsc_strerror(rc));
    for (dscan *s = d->scans; s; s = s->next)
        json_array_clear(s->pending);
    if (rc == 0)
        dhost_publish(d, f.events); /* takes the events */
    else
        json_decref(f.events);
}

/* ---- the end ------------------------------------------------------------------------------- */

typedef struct end_ud {
    dscan *s;
    json_t *rec;
    size_t retention;
} end_ud;

static int key_one(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    (void)val, (void)vlen;
    json_array_append_new(ud, json_stringn(key, klen));
    return 0;
}

/* A scan and its "<scan id>/<host id>" links. */
static int drop_scan(store_txn *txn, const char *id)
{
    char prefix[48];
    int n = snprintf(prefix, sizeof(prefix), "%s/", id);
    json_t *keys = json_array();
    int rc = store_kv_scan(txn, "discovery_scan_hosts", prefix, (size_t)n, key_one, keys);
    for (size_t i = 0; rc == 0 && i < json_array_size(keys); i++) {
        json_t *k = json_array_get(keys, i);
        rc = store_kv_del(txn, "discovery_scan_hosts", json_string_value(k), json_string_length(k));
    }
    json_decref(keys);
    return rc == 0 ? store_delete(txn, "discovery_scans", id, 0) : rc;
}

static int count_one(const char *id, json_t *rec, void *ud)
{
    (void)rec;
    json_array_append_new(ud, json_string(id));
    return 0;
}

/* Keep the newest `retention` scans (never a running one: only ended ones are dropped). */
static int prune(store_txn *txn, size_t retention)
{
    json_t *ids = json_array();
    int rc = store_scan(txn, "discovery_scans", NULL, false, count_one, ids);
    size_t n = json_array_size(ids);
    for (size_t i = 0; rc == 0 && n > retention && i < n - retention; i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        const void *v;
        size_t vl;
        if (store_kv_get(txn, "discovery_scans_active", id, strlen(id), &v, &vl) == 0)
            continue;
        rc = drop_scan(txn, id);
    }
    json_decref(ids);
    return rc;
}

static int end_txn(store_txn *txn, void *ud)
{
    end_ud *e = ud;
    json_t *rec = json_deep_copy(e->rec);
    int rc = rec ? store_update(txn, "discovery_scans", rec, 0) : OPSC_ENOMEM;
    if (rc == 0)
        rc = store_kv_del(txn, "discovery_scans_active", e->s->id, strlen(e->s->id));
    if (rc == OPSC_ENOENT)
        rc = 0;
    if (rc == 0)
        rc = prune(txn, e->retention);
    json_decref(rec);
    return rc;
}

static void unlink_scan(discovery *d, dscan *s)
{
    for (dscan **p = &d->scans; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    d->running--;
}

static void scan_free(dscan *s)
{
    json_decref(s->rec);
    json_decref(s->names);
    json_decref(s->pending);
    free(s);
}

static void on_done(void *ud, int status, const char *error)
{
    dscan *s = ud;
    discovery *d = s->d;
    dscan_flush_all(d);
    json_t *progress = dscan_progress(s);
    s->last_done = (uint64_t)json_integer_value(json_object_get(progress, "done"));
    s->last_probes = (uint64_t)json_integer_value(json_object_get(progress, "probes"));
    s->handle = NULL;
    int end = status == 0 ? END_FINISHED : status == OPSC_ECANCELED ? END_CANCELLED : END_FAILED;
    char now[32];
    dsc_now(now);
    json_object_set_new(s->rec, "state", json_string(end_names[end]));
    json_object_set_new(s->rec, "finished_at", json_string(now));
    json_object_set(s->rec, "progress", progress);
    json_object_set_new(s->rec, "hosts_found", json_integer((json_int_t)s->found));
    if (end == END_FAILED)
        json_object_set_new(s->rec, "error",
                            json_string(error && *error ? error : opsc_strerror(status)));
    end_ud e = {s, s->rec, (size_t)d->cfg->scan_retention};
    int rc = store_write(d->core->store, end_txn, &e);
    if (rc < 0)
        log_error("discovery", "scan %s: recording its end: %s", s->id, opsc_strerror(rc));
    d->scans_ended[end]++;
    d->addresses_done += s->last_done;
    d->probes += (uint64_t)json_integer_value(json_object_get(progress, "probes"));
    json_decref(progress);
    log_info("discovery", "scan %s %s: %llu of %llu addresses, %llu hosts%s%s", s->id,
             end_names[end], (unsigned long long)s->last_done, (unsigned long long)s->total,
             (unsigned long long)s->found, end == END_FAILED ? ": " : "",
             end == END_FAILED ? json_string_value(json_object_get(s->rec, "error")) : "");
    unlink_scan(d, s);
    json_t *data = json_pack("{s:O}", "scan", s->rec);
    dsc_publish(d, "discovery.scan.state", s->id, data);
    json_decref(data);
    if (s->profile_id[0])
        dprof_scan_ended(d, s->profile_id, s->id, end == END_FINISHED);
    scan_free(s);
    discovery_scan_gone(d);
}

void dscan_tick(discovery *d)
{
    for (dscan *s = d->scans; s; s = s->next) {
        json_t *data = json_pack("{s:s, s:o, s:I}", "scan_id", s->id, "progress", dscan_progress(s),
                                 "hosts_found", (json_int_t)s->found);
        dsc_publish(d, "discovery.scan.progress", s->id, data);
        json_decref(data);
    }
}

int discovery_scan_cancel(discovery *d, const char *id)
{
    dscan *s = dscan_find(d, id);
    if (!s) {
        json_t *rec = NULL;
        int rc = discovery_scan_get(d, id, &rec);
        json_decref(rec);
        return rc < 0 ? rc : OPSC_ESTATE;
    }
    if (!s->cancelling && s->handle) {
        s->cancelling = true;
        log_info("discovery", "scan %s: cancel asked", s->id);
        s->sc->cancel(s->handle);
    }
    return 0;
}

/* ---- starting -------------------------------------------------------------------------------- */

static int loaded_scanners(discovery *d, char *buf, size_t n)
{
    size_t count = plugin_host_count(d->core->plugins, REG_SCANNER), o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < count && o < n; i++) {
        const opsc_scanner *sc = plugin_host_reg(d->core->plugins, REG_SCANNER, i)->desc;
        o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? ", " : "", sc->name);
    }
    if (!count)
        snprintf(buf, n, "none: no discovery plugin is loaded");
    return 0;
}

static int check_options(const opsc_scanner *sc, json_t *options, dsc_err *e)
{
    if (!sc->spec_schema) {
        if (json_object_size(options) == 0)
            return 0;
        return dsc_fail(e, 400, "invalid_scan", "options", "the %s scanner takes no options",
                        sc->name);
    }
    jschema *schema = NULL;
    char why[256];
    if (jschema_compile_text(&schema, sc->spec_schema, why, sizeof(why)) < 0)
        return dsc_fail(e, 500, "internal", NULL, "scanner %s: its options schema: %s", sc->name,
                        why);
    int rc = dsc_validate(schema, options, "invalid_scan", e);
    if (rc == OPSC_ESCHEMA) {
        dsc_err_prefix(e, "options: ");
        e->field = "options";
    }
    jschema_free(schema);
    return rc;
}

static int pick_scanner(discovery *d, dscan_req *r, dscan *s, dsc_err *e)
{
    const char *name = json_string_value(json_object_get(r->body, "scanner"));
    const plugin_reg *reg = plugin_host_find(d->core->plugins, REG_SCANNER, name);
    if (!reg) {
        char list[256];
        loaded_scanners(d, list, sizeof(list));
        return dsc_fail(e, 400, "unknown_scanner", "scanner", "no scanner '%.64s' is loaded (%s)",
                        name, list);
    }
    s->sc = reg->desc;
    s->sc_state = reg->state;
    return check_options(s->sc, json_object_get(r->body, "options"), e);
}

/* Which names the request gave each address, for the hosts' records. */
static json_t *names_by_address(const json_t *resolved)
{
    json_t *out = json_object();
    const char *name;
    json_t *addrs;
    json_object_foreach((json_t *)resolved, name, addrs)
    {
        size_t i;
        json_t *a;
        json_array_foreach(addrs, i, a)
        {
            const char *key = json_string_value(a);
            if (!json_object_get(out, key))
                json_object_set_new(out, key, json_array());
            json_array_append_new(json_object_get(out, key), json_string(name));
        }
    }
    return out;
}

static json_t *new_record(dscan *s, dscan_req *r, const json_t *spec, const char *by)
{
    char now[32];
    dsc_now(now);
    json_t *b = r->body, *rec = json_pack("{s:s, s:s}", "id", s->id, "state", "running");
    static const char *const copied[] = {"scanner",     "ranges",     "exclude", "ports",  "rate",
                                         "concurrency", "timeout_ms", "icmp",    "options"};
    for (size_t i = 0; rec && i < sizeof(copied) / sizeof(copied[0]); i++)
        json_object_set(rec, copied[i], json_object_get(b, copied[i]));
    json_t *pid = json_object_get(b, "profile_id");
    json_t *more =
        json_pack("{s:O, s:O, s:O, s:{s:i, s:I, s:i}, s:i, s:s, s:n, s:n, s:s?}", "profile_id",
                  pid ? pid : json_null(), "targets", json_object_get(spec, "targets"), "resolved",
                  r->resolved, "progress", "done", 0, "total", (json_int_t)s->total, "probes", 0,
                  "hosts_found", 0, "started_at", now, "finished_at", "error", "requested_by", by);
    if (!rec || !more || json_object_update(rec, more) < 0) {
        json_decref(rec);
        rec = NULL;
    }
    json_decref(more);
    return rec;
}

static int start_txn(store_txn *txn, void *ud)
{
    dscan *s = ud;
    json_t *rec = json_deep_copy(s->rec);
    int rc = rec ? store_create(txn, "discovery_scans", rec) : OPSC_ENOMEM;
    if (rc == 0) /* names its node: a restart or the leader's reaper ends only its own */
        rc = store_kv_put(txn, "discovery_scans_active", s->id, strlen(s->id),
                          s->d->core->node_id, strlen(s->d->core->node_id));
    if (rc == 0) {
        json_decref(s->rec);
        s->rec = json_incref(rec);
    }
    json_decref(rec);
    return rc;
}

static bool profile_exists(discovery *d, const char *pid)
{
    json_t *p = NULL;
    int rc = discovery_profile_get(d, pid, &p);
    json_decref(p);
    return rc == 0;
}

static int prepare(discovery *d, dscan_req *r, dscan *s, json_t **spec, dsc_err *e)
{
    if (d->stopping)
        return dsc_fail(e, 503, "unavailable", NULL, "the daemon is stopping");
    if (d->running >= (size_t)d->cfg->max_running)
        return dsc_fail(e, 409, "busy", NULL,
                        "%zu scans are running, the most [discovery] max_running_scans allows: "
                        "wait for one to end or cancel one",
                        d->running);
    json_int_t rate = json_integer_value(json_object_get(r->body, "rate"));
    if (rate > d->cfg->max_rate)
        return dsc_fail(e, 400, "invalid_scan", "rate",
                        "rate %lld is above [discovery] max_rate (%lld)", (long long)rate,
                        (long long)d->cfg->max_rate);
    const char *pid = json_string_value(json_object_get(r->body, "profile_id"));
    if (pid && !profile_exists(d, pid))
        return dsc_fail(e, 400, "invalid_scan", "profile_id", "no profile %.40s", pid);
    snprintf(s->profile_id, sizeof(s->profile_id), "%s", pid ? pid : "");
    int rc = pick_scanner(d, r, s, e);
    dscan_limits lim = {(uint64_t)d->cfg->max_addresses, &d->allowed};
    if (rc == 0)
        rc = dscan_req_finish(r, &lim, spec, e);
    return rc;
}

/* The scanner would not start: the scan is recorded as failed. */
static void start_failed(discovery *d, dscan *s, int rc)
{
    char now[32];
    dsc_now(now);
    json_object_set_new(s->rec, "state", json_string("failed"));
    json_object_set_new(s->rec, "finished_at", json_string(now));
    json_object_set_new(s->rec, "error", json_string(opsc_strerror(rc)));
    end_ud e = {s, s->rec, (size_t)d->cfg->scan_retention};
    store_write(d->core->store, end_txn, &e);
    d->scans_ended[END_FAILED]++;
}

static int run_scanner(discovery *d, dscan *s, json_t *spec)
{
    char *text = json_dumps(spec, JSON_COMPACT);
    if (!text)
        return OPSC_ENOMEM;
    s->t0 = clock_mono_ms();
    int rc = s->sc->scan(s->sc_state, text, on_host, on_done, s, &s->handle);
    free(text);
    if (rc < 0) {
        s->handle = NULL;
        return rc;
    }
    s->next = d->scans;
    d->scans = s;
    d->running++;
    d->scans_started++;
    return 0;
}

void dscan_launch(discovery *d, dscan_req *r, const char *requested_by, discovery_scan_cb cb,
                  void *ud)
{
    dsc_err e = {0};
    json_t *spec = NULL;
    dscan *s = calloc(1, sizeof(*s));
    int rc = s && uuid7_new(s->id) == 0 ? 0 : dsc_fail(&e, 500, "internal", NULL, "out of memory");
    if (rc == 0) {
        s->d = d;
        s->pending = json_array();
        rc = prepare(d, r, s, &spec, &e);
    }
    if (rc == 0) {
        s->total = (uint64_t)json_integer_value(json_object_get(spec, "total"));
        s->names = names_by_address(r->resolved);
        s->rec = new_record(s, r, spec, requested_by);
        rc = s->rec ? store_write(d->core->store, start_txn, s) : OPSC_ENOMEM;
        if (rc < 0)
            dsc_fail(&e, 500, "internal", NULL, "cannot record the scan: %s", opsc_strerror(rc));
    }
    if (rc == 0 && (rc = run_scanner(d, s, spec)) < 0) {
        log_warn("discovery", "scan %s: the %s scanner did not start: %s", s->id, s->sc->name,
                 opsc_strerror(rc));
        start_failed(d, s, rc);
        rc = 0; /* answered with the failed scan */
    }
    json_decref(spec);
    if (rc < 0) {
        cb(ud, NULL, &e);
        dsc_err_clear(&e);
        if (s)
            scan_free(s);
        return;
    }
    json_t *view = live_view(d, s->rec);
    if (s->handle) {
        log_info("discovery", "scan %s started: %s, %llu addresses, %zu ports", s->id, s->sc->name,
                 (unsigned long long)s->total, json_array_size(json_object_get(s->rec, "ports")));
        json_t *data = json_pack("{s:O}", "scan", view);
        dsc_publish(d, "discovery.scan.state", s->id, data);
        json_decref(data);
    }
    cb(ud, view, NULL);
    json_decref(view);
    if (!s->handle)
        scan_free(s);
}

/* ---- the request: checked, names resolved, launched ------------------------------------------ */

typedef struct start_ud {
    discovery *d;
    dscan_req req;
    char *by;
    discovery_scan_cb cb;
    void *ud;
} start_ud;

static void on_resolved(void *ud, dscan_req *r, const dsc_err *e)
{
    start_ud *st = ud;
    if (e)
        st->cb(st->ud, NULL, e);
    else
        dscan_launch(st->d, r, st->by, st->cb, st->ud);
    dscan_req_clear(&st->req);
    free(st->by);
    free(st);
}

void discovery_scan_start(discovery *d, const json_t *body, const char *requested_by,
                          discovery_scan_cb cb, void *ud)
{
    dsc_err e = {0};
    start_ud *st = calloc(1, sizeof(*st));
    int rc = st ? dscan_req_parse(d->scan_schema, body, &st->req, &e) : OPSC_ENOMEM;
    if (rc == 0 && json_array_size(st->req.names) == 0) {
        dscan_launch(d, &st->req, requested_by, cb, ud);
    } else if (rc == 0) {
        st->d = d;
        st->by = requested_by ? strdup(requested_by) : NULL;
        st->cb = cb;
        st->ud = ud;
        rc = dscan_resolve(d->core->loop, &st->req, d->cfg->resolve_timeout_ms, on_resolved, st);
        if (rc == 0)
            return;
    }
    if (rc < 0 && !e.status)
        dsc_fail(&e, 500, "internal", NULL, "%s", opsc_strerror(rc));
    if (rc < 0)
        cb(ud, NULL, &e);
    dsc_err_clear(&e);
    if (st) {
        dscan_req_clear(&st->req);
        free(st->by);
        free(st);
    }
}

/* ---- start-up, and the scans of dead nodes ----------------------------------------------- */

/* Which unfinished scans to end: a node's own at its start (an entry
 * without a node is from before cluster mode: the one daemon's), or those
 * of nodes not in `alive` for the leader's reaper. */
typedef struct orphans {
    const char *self;    /* at start: this node (NULL with `all`: one daemon, every scan) */
    bool all;
    const json_t *alive; /* reaping: the live nodes' ids */
    json_t *found;       /* [[scan id, node id], ...] */
} orphans;

static bool listed(const json_t *ids, const char *id, size_t len)
{
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        if (json_string_length(v) == len && memcmp(json_string_value(v), id, len) == 0)
            return true;
    }
    return false;
}

static int orphan_one(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    orphans *o = ud;
    const char *node = val;
    bool mine = o->all || vlen == 0 ||
                (o->self && strlen(o->self) == vlen && !memcmp(node, o->self, vlen));
    if (o->self ? !mine : vlen == 0 || listed(o->alive, node, vlen))
        return 0;
    json_array_append_new(o->found, json_pack("[s#, s#]", key, klen, node, vlen));
    return 0;
}

static int end_orphan(store_txn *txn, const char *id, const char *why, const char *now)
{
    json_t *rec = NULL;
    int rc = 0;
    if (store_get(txn, "discovery_scans", id, &rec) == 0) {
        json_object_set_new(rec, "state", json_string("failed"));
        json_object_set_new(rec, "finished_at", json_string(now));
        json_object_set_new(rec, "error", json_string(why));
        rc = store_update(txn, "discovery_scans", rec, 0);
    }
    json_decref(rec);
    if (rc == 0)
        rc = store_kv_del(txn, "discovery_scans_active", id, strlen(id));
    return rc == OPSC_ENOENT ? 0 : rc;
}

static int orphans_txn(store_txn *txn, void *ud)
{
    orphans *o = ud;
    json_array_clear(o->found);
    int rc = store_kv_scan(txn, "discovery_scans_active", NULL, 0, orphan_one, o);
    char now[32], why[200];
    dsc_now(now);
    size_t i;
    json_t *f;
    json_array_foreach(o->found, i, f)
    {
        const char *node = json_string_value(json_array_get(f, 1));
        if (o->self)
            snprintf(why, sizeof(why), "interrupted: the daemon stopped while the scan ran");
        else
            snprintf(why, sizeof(why),
                     "interrupted: node %s stopped while the scan ran (its heartbeat lapsed)",
                     node);
        if (rc == 0)
            rc = end_orphan(txn, json_string_value(json_array_get(f, 0)), why, now);
    }
    return rc;
}

int dscan_recover(discovery *d)
{
    /* On LMDB the one daemon owns every scan, whatever node id a restored
     * data directory gave it. */
    orphans o = {d->core->node_id, !store_is_shared(d->core->store), NULL, json_array()};
    int rc = o.found ? store_write(d->core->store, orphans_txn, &o) : OPSC_ENOMEM;
    if (rc == 0 && json_array_size(o.found))
        log_warn("discovery", "%zu scans were running when the daemon stopped: marked failed",
                 json_array_size(o.found));
    json_decref(o.found);
    return rc;
}

int discovery_reap_nodes(discovery *d, const json_t *alive)
{
    if (!d)
        return 0;
    orphans o = {NULL, false, alive, json_array()};
    int rc = o.found ? store_write(d->core->store, orphans_txn, &o) : OPSC_ENOMEM;
    size_t i;
    json_t *f;
    json_array_foreach(o.found, i, f)
    {
        if (rc == 0)
            log_warn("discovery", "scan %s was running on node %s, which died: marked failed",
                     json_string_value(json_array_get(f, 0)),
                     json_string_value(json_array_get(f, 1)));
    }
    json_decref(o.found);
    return rc;
}
