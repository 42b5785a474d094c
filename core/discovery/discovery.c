/* discovery.c - the discovery service: schemas, limits, the progress tick, shutdown, metrics. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "discovery_internal.h"
#include "discovery_schemas.h"
#include "events.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define TICK_MS 500

void dsc_err_clear(dsc_err *e)
{
    json_decref(e->details);
    memset(e, 0, sizeof(*e));
}

int dsc_fail(dsc_err *e, int status, const char *code, const char *field, const char *fmt, ...)
{
    e->status = status;
    e->code = code;
    e->field = field;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return status == 404 ? OPSC_ENOENT : status >= 500 ? OPSC_EIO : OPSC_ESCHEMA;
}

void dsc_err_prefix(dsc_err *e, const char *prefix)
{
    size_t p = strlen(prefix), n = strlen(e->msg);
    if (p >= sizeof(e->msg))
        return;
    if (p + n >= sizeof(e->msg))
        n = sizeof(e->msg) - p - 1;
    memmove(e->msg + p, e->msg, n);
    memcpy(e->msg, prefix, p);
    e->msg[p + n] = '\0';
}

/* "/spec/ranges/0" -> "spec.ranges[0]", as the other messages name members. */
static void member_path(const char *pointer, char *out, size_t n)
{
    size_t o = 0;
    out[0] = '\0';
    for (const char *p = pointer; *p == '/' && o + 1 < n;) {
        size_t len = strcspn(p + 1, "/");
        if (len && strspn(p + 1, "0123456789") >= len)
            o += (size_t)snprintf(out + o, n - o, "[%.*s]", (int)len, p + 1);
        else
            o += (size_t)snprintf(out + o, n - o, "%s%.*s", o ? "." : "", (int)len, p + 1);
        p += len + 1;
    }
}

int dsc_validate(const jschema *schema, json_t *body, const char *code, dsc_err *e)
{
    jschema_err errs[8];
    size_t n = 0;
    int rc = jschema_validate(schema, body, JSCHEMA_DEFAULTS, NULL, errs, 8, &n);
    if (rc != OPSC_ESCHEMA)
        return rc;
    char path[256] = "";
    member_path(errs[0].path, path, sizeof(path));
    dsc_fail(e, 400, code, NULL, "%s%s%s", path, path[0] ? ": " : "", errs[0].msg);
    e->details = json_pack("{s:o}", "errors", jschema_errors_json(errs, n));
    return rc;
}

typedef struct get_ud {
    const char *db, *id;
    json_t *rec;
} get_ud;

static int get_txn(store_txn *txn, void *ud)
{
    get_ud *g = ud;
    json_decref(g->rec);
    g->rec = NULL;
    return store_get(txn, g->db, g->id, &g->rec);
}

static int page_one(const char *id, json_t *rec, void *ud)
{
    dsc_page *p = ud;
    if (p->keep && !p->keep(rec, p->ud))
        return 0;
    if (json_array_size(p->items) == p->limit) {
        p->more = true;
        return 1;
    }
    json_array_append(p->items, rec);
    snprintf(p->last, sizeof(p->last), "%s", id);
    return 0;
}

int dsc_page_txn(store_txn *txn, dsc_page *p)
{
    json_decref(p->items);
    p->items = json_array();
    p->more = false;
    p->last[0] = '\0';
    return p->items ? store_scan(txn, p->db, p->cursor, p->reverse, page_one, p) : OPSC_ENOMEM;
}

int dsc_get(discovery *d, const char *db, const char *id, json_t **rec)
{
    get_ud g = {db, id, NULL};
    int rc = store_read(d->core->store, get_txn, &g);
    *rec = rc == 0 ? g.rec : NULL;
    if (rc < 0)
        json_decref(g.rec);
    return rc;
}

void dsc_publish(discovery *d, const char *type, const char *subject, json_t *data)
{
    if (d->core->events && data)
        events_publish(d->core->events, type, subject, data);
}

void dsc_now(char out[32])
{
    rfc3339_format(clock_now_ms(), out);
}

/* ---- metrics -------------------------------------------------------------------------------- */

static void collect(strbuf *out, void *ud)
{
    discovery *d = ud;
    static const char *const states[] = {"finished", "cancelled", "failed"};
    metrics_family(out, "opsc_discovery_scans_total", "counter",
                   "Scans started, and ended by final state");
    sb_printf(out, "opsc_discovery_scans_total{state=\"started\"} %llu\n",
              (unsigned long long)d->scans_started);
    for (int i = 0; i < 3; i++)
        sb_printf(out, "opsc_discovery_scans_total{state=\"%s\"} %llu\n", states[i],
                  (unsigned long long)d->scans_ended[i]);
    metrics_single(out, "opsc_discovery_scans_running", "gauge", "Scans running now",
                   (double)d->running);
    uint64_t done = d->addresses_done, probes = d->probes;
    for (dscan *s = d->scans; s; s = s->next) {
        json_t *p = dscan_progress(s);
        done += (uint64_t)json_integer_value(json_object_get(p, "done"));
        probes += (uint64_t)json_integer_value(json_object_get(p, "probes"));
        json_decref(p);
    }
    metrics_single(out, "opsc_discovery_addresses_probed_total", "counter",
                   "Addresses scans have finished probing", (double)done);
    metrics_single(out, "opsc_discovery_probes_total", "counter",
                   "Connection attempts (or packets) scanners have sent", (double)probes);
    metrics_single(out, "opsc_discovery_hosts_found_total", "counter",
                   "Hosts reported by scans (a host seen by two scans counts twice)",
                   (double)d->hosts_found);
    metrics_single(out, "opsc_discovery_hosts_new_total", "counter",
                   "Addresses seen for the first time", (double)d->hosts_new);
}

/* ---- the service ---------------------------------------------------------------------------- */

static void on_tick(uv_timer_t *t)
{
    dscan_tick(t->data);
}

static void on_flush(uv_timer_t *t)
{
    dscan_flush_all(t->data);
}

void dscan_flush_soon(discovery *d)
{
    if (!uv_is_active((uv_handle_t *)&d->flush) && !uv_is_closing((uv_handle_t *)&d->flush))
        uv_timer_start(&d->flush, on_flush, 50, 0);
}

static int compile(jschema **out, const char *text, char *err, size_t errlen)
{
    char why[256];
    int rc = jschema_compile_text(out, text, why, sizeof(why));
    if (rc < 0)
        snprintf(err, errlen, "discovery: built-in schema: %s", why);
    return rc;
}

static int compile_all(discovery *d, char *err, size_t errlen)
{
    int rc = compile(&d->scan_schema, DSC_SCHEMA_scan_request, err, errlen);
    if (rc == 0)
        rc = compile(&d->profile_schema, DSC_SCHEMA_profile_request, err, errlen);
    if (rc == 0)
        rc = compile(&d->onboard_schema, DSC_SCHEMA_onboard_request, err, errlen);
    if (rc == 0)
        rc = compile(&d->filter_schema, DSC_SCHEMA_host_filter, err, errlen);
    return rc;
}

int discovery_new(discovery **out, struct opsc_core *core, char *err, size_t errlen)
{
    discovery *d = calloc(1, sizeof(*d));
    if (!d)
        return OPSC_ENOMEM;
    d->core = core;
    d->cfg = &core->cfg.discovery;
    uv_timer_init(core->loop, &d->tick);
    uv_timer_init(core->loop, &d->flush);
    d->tick.data = d->flush.data = d;
    d->handles_open = 2;
    *out = d;
    char why[300], loc[300];
    int rc = dspec_set_parse_list(d->cfg->allowed_ranges, "allowed_ranges", &d->allowed, why,
                                  sizeof(why));
    if (rc < 0) {
        cfg_origin(core->cfg.file, "discovery", "allowed_ranges", loc, sizeof(loc));
        snprintf(err, errlen, "%.200s: [discovery] %s", loc, why);
    }
    if (rc == 0)
        rc = compile_all(d, err, errlen);
    if (rc == 0)
        rc = dscan_recover(d);
    if (rc == 0)
        rc = dprof_sched_new(d, &d->sched);
    if (rc == 0 && core->metrics)
        rc = metrics_add_collector(core->metrics, collect, d);
    if (rc == 0)
        uv_timer_start(&d->tick, on_tick, TICK_MS, TICK_MS);
    else if (!err[0])
        snprintf(err, errlen, "discovery: %s", opsc_strerror(rc));
    return rc;
}

int discovery_profiles_reload(discovery *d)
{
    return d && d->sched && !d->stopping ? dprof_sched_reload(d->sched) : 0;
}

static void maybe_closed(discovery *d)
{
    if (!d->closed_cb || d->running || d->handles_open || d->sched)
        return;
    void (*cb)(void *) = d->closed_cb;
    d->closed_cb = NULL;
    cb(d->closed_ud);
}

void discovery_stop(discovery *d)
{
    if (!d || d->stopping)
        return;
    d->stopping = true;
    if (d->sched)
        dprof_sched_stop(d->sched);
    for (dscan *s = d->scans; s; s = s->next)
        if (!s->cancelling && s->handle) {
            s->cancelling = true;
            s->sc->cancel(s->handle);
        }
}

static void on_handle_closed(uv_handle_t *h)
{
    discovery *d = h->data;
    d->handles_open--;
    maybe_closed(d);
}

static void on_sched_closed(void *ud)
{
    discovery *d = ud;
    d->sched = NULL;
    maybe_closed(d);
}

/* Called again by dscan.c each time a scan ends while closing. */
void discovery_close(discovery *d, void (*cb)(void *ud), void *ud)
{
    if (!d) {
        cb(ud);
        return;
    }
    discovery_stop(d);
    d->closed_cb = cb;
    d->closed_ud = ud;
    if (!uv_is_closing((uv_handle_t *)&d->tick))
        uv_close((uv_handle_t *)&d->tick, on_handle_closed);
    if (d->sched)
        dprof_sched_close(d->sched, on_sched_closed, d);
    discovery_scan_gone(d);
}

/* Each scan ending while closing calls this; the last one finishes the close. */
void discovery_scan_gone(discovery *d)
{
    if (!d->closed_cb || d->running)
        return;
    dscan_flush_all(d); /* what the last scans found */
    if (!uv_is_closing((uv_handle_t *)&d->flush))
        uv_close((uv_handle_t *)&d->flush, on_handle_closed);
    maybe_closed(d);
}

void discovery_free(discovery *d)
{
    if (!d)
        return;
    dprof_sched_free(d->sched); /* only when it was never closed */
    dspec_set_free(&d->allowed);
    jschema_free(d->scan_schema);
    jschema_free(d->profile_schema);
    jschema_free(d->onboard_schema);
    jschema_free(d->filter_schema);
    free(d);
}
