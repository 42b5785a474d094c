/* notify.c - the notification service's life: options, the event bus, writes at the end of the
 * loop turn, counters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "audit.h"
#include "config.h"
#include "core.h"
#include "events.h"
#include "log.h"
#include "notify_internal.h"
#include "plugin_host.h"
#include "util.h"

/* ---- options --------------------------------------------------------------------------------- */

static int parse_schedule(notify *n, const char *text, char *err, size_t errlen)
{
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    n->retry_ms = calloc(cap, sizeof(*n->retry_ms));
    if (!n->retry_ms)
        return OPSC_ENOMEM;
    char *copy = strdup(text), *save = NULL;
    int rc = copy ? 0 : OPSC_ENOMEM;
    for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && rc == 0;
         tok = strtok_r(NULL, ",", &save)) {
        tok += strspn(tok, " \t");
        int64_t ms = 0;
        if (cfg_parse_duration_ms(tok, &ms) < 0 || ms < 0 || ms > 7LL * 86400000)
            rc = OPSC_ESCHEMA;
        else
            n->retry_ms[n->nretry++] = ms;
    }
    free(copy);
    if (rc == 0 && n->nretry == 0)
        rc = OPSC_ESCHEMA;
    if (rc == OPSC_ESCHEMA)
        snprintf(err, errlen,
                 "[notifications] retry_schedule: expected durations separated by ',' "
                 "(\"0,5s,5m,30m,2h,5h,10h\"), each at most 7d");
    return rc;
}

/* ---- counters -------------------------------------------------------------------------------- */

void nt_count(notify *n, const char *type, const char *outcome)
{
    char key[96];
    snprintf(key, sizeof(key), "%s/%s", type, outcome);
    json_t *v = json_object_get(n->by_type, key);
    json_object_set_new(n->by_type, key, json_integer(json_integer_value(v) + 1));
}

void notify_count_hook(notify *n, const char *outcome)
{
    if (!n)
        return;
    json_t *v = json_object_get(n->hooks_by_outcome, outcome);
    json_object_set_new(n->hooks_by_outcome, outcome, json_integer(json_integer_value(v) + 1));
}

void notify_stats_get(const notify *n, notify_stats *st)
{
    *st = n->stats;
    st->in_flight = n->ninflight;
}

void notify_metrics(const notify *n, json_t **by_type, json_t **hooks)
{
    *by_type = n->by_type;
    *hooks = n->hooks_by_outcome;
}

/* ---- the end of the loop turn ------------------------------------------------------------ */

typedef struct flush_ctx {
    notify *n;
    json_t *watches; /* long-running watches of the runs that started */
} flush_ctx;

static int disable_channel(store_txn *txn, const char *id, const char *why)
{
    json_t *ch = NULL;
    int rc = store_get(txn, "notify_channels", id, &ch);
    if (rc == 0 && json_is_true(json_object_get(ch, "enabled"))) {
        json_object_set_new(ch, "enabled", json_false());
        json_object_set_new(ch, "disabled_reason", json_string(why));
        rc = store_update(txn, "notify_channels", ch, 0);
    }
    json_decref(ch);
    return rc;
}

static int flush_txn(store_txn *txn, void *ud)
{
    flush_ctx *f = ud;
    notify *n = f->n;
    json_array_clear(f->watches); /* the store may run us twice */
    size_t i;
    json_t *item;
    int rc = 0;
    json_array_foreach(n->bus, i, item)
    {
        rc = nt_bus_dispatch(n, txn, item);
        if (rc < 0)
            return rc;
    }
    json_array_foreach(n->lr_runs, i, item)
    {
        rc = nt_longrun_plan(n, txn, json_string_value(item), f->watches);
        if (rc < 0)
            return rc;
    }
    json_array_foreach(n->writes, i, item)
    {
        json_t *rec = json_object_get(item, "rec");
        const char *off = json_string_value(json_object_get(item, "disable"));
        if (off)
            rc = disable_channel(txn, off, json_string_value(json_object_get(item, "why")));
        else
            rc = nt_outbox_put(txn, rec, json_integer_value(json_object_get(item, "old_due")));
        if (rc == OPSC_ENOENT) /* deleted meanwhile: nothing left to update */
            rc = 0;
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void audit_disables(notify *n)
{
    size_t i;
    json_t *a;
    json_array_foreach(n->audits, i, a)
    {
        audit_event ev = {
            .actor = "system",
            .action = "notification.channel.disabled",
            .object = json_string_value(json_object_get(a, "id")),
            .outcome = "success",
            .detail = json_string_value(json_object_get(a, "why")),
        };
        if (n->core->audit)
            audit_record(n->core->audit, &ev);
        log_warn("notify", "channel %s disabled: %s", ev.object, ev.detail);
    }
    json_array_clear(n->audits);
}

void nt_flush_now(notify *n)
{
    uv_timer_stop(&n->results);
    flush_ctx f = {n, json_array()};
    bool had_bus = json_array_size(n->bus) > 0;
    int rc = f.watches ? store_write(n->store, flush_txn, &f) : OPSC_ENOMEM;
    if (rc < 0)
        log_error("notify", "writing notifications failed: %s (%zu events, %zu results lost)",
                  opsc_strerror(rc), json_array_size(n->bus), json_array_size(n->writes));
    else
        nt_longrun_add(n, f.watches);
    json_decref(f.watches);
    size_t i;
    json_t *w;
    json_array_foreach(n->writes, i, w)
    {
        json_object_del(n->busy,
                        json_string_value(json_object_get(json_object_get(w, "rec"), "id")));
    }
    bool had_writes = json_array_size(n->writes) > 0;
    json_array_clear(n->bus);
    json_array_clear(n->lr_runs);
    json_array_clear(n->writes);
    audit_disables(n);
    if (had_bus || had_writes)
        nt_wake_at(n, clock_now_ms());
}

static void on_flush(uv_check_t *h)
{
    notify *n = h->data;
    uv_check_stop(&n->flush);
    uv_idle_stop(&n->flush_idle);
    nt_flush_now(n);
}

static void on_flush_idle(uv_idle_t *h)
{
    (void)h; /* keeps the poll phase from blocking before the check has written */
}

static void on_results(uv_timer_t *t)
{
    nt_flush_now(t->data);
}

void nt_want_results_flush(notify *n)
{
    if (n->closed || uv_is_active((uv_handle_t *)&n->results))
        return;
    /* A backlog of results is written at the end of the turn all the same. */
    if (json_array_size(n->writes) >= (size_t)n->max_in_flight * 4)
        nt_want_flush(n);
    else
        uv_timer_start(&n->results, on_results, RESULTS_DELAY_MS, 0);
}

void nt_want_flush(notify *n)
{
    if (n->closed || uv_is_active((uv_handle_t *)&n->flush))
        return;
    uv_check_start(&n->flush, on_flush);
    uv_idle_start(&n->flush_idle, on_flush_idle);
}

/* ---- upkeep --------------------------------------------------------------------------------- */

#define SEEN_KEEP_MS (2LL * 86400000) /* longer than the longest tolerance_s */

typedef struct maint {
    notify *n;
    bool more;
} maint;

static int maint_txn(store_txn *txn, void *ud)
{
    maint *m = ud;
    int64_t now = clock_now_ms();
    int rc = nt_groups_sweep(txn, now);
    if (rc == 0)
        rc = nt_hooks_seen_sweep(txn, now, SEEN_KEEP_MS);
    if (rc == 0) /* a bounded share per transaction: the loop goes on meanwhile */
        rc = nt_history_sweep(txn, now - m->n->history_ms, 5000, &m->more);
    return rc;
}

static void on_maint(uv_timer_t *t)
{
    maint m = {t->data, false};
    int rc = store_write(m.n->store, maint_txn, &m);
    if (rc < 0)
        log_error("notify", "sweeping old deliveries, group windows and hook ids failed: %s",
                  opsc_strerror(rc));
    else if (m.more)
        uv_timer_start(t, on_maint, 1000, 3600000);
}

/* ---- life ---------------------------------------------------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
    notify *n = h->data;
    n->open_handles--;
}

int notify_new(notify **out, struct opsc_core *c, char *err, size_t errlen)
{
    *out = NULL;
    notify *n = calloc(1, sizeof(*n));
    if (!n)
        return OPSC_ENOMEM;
    const struct notify_cfg *cfg = &c->cfg.notifications;
    n->core = c;
    n->loop = c->loop;
    n->store = c->store;
    n->max_age_ms = cfg->max_age_ms ? cfg->max_age_ms : 3LL * 86400000;
    n->attempt_timeout_ms = cfg->attempt_timeout_ms ? cfg->attempt_timeout_ms : 120000;
    n->history_ms = cfg->history_ms ? cfg->history_ms : 30LL * 86400000;
    n->max_in_flight = cfg->max_in_flight > 0 ? (int)cfg->max_in_flight : 64;
    n->paused = cfg->paused;
    const char *url = c->cfg.server.public_url ? c->cfg.server.public_url : "";
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/')
        ul--;
    n->public_url = strndup(url, ul);
    n->bus = json_array();
    n->writes = json_array();
    n->audits = json_array();
    n->lr_runs = json_array();
    n->by_type = json_object();
    n->hooks_by_outcome = json_object();
    n->busy = json_object();
    int rc = n->public_url && n->bus && n->writes && n->audits && n->lr_runs && n->by_type &&
                     n->hooks_by_outcome && n->busy
                 ? 0
                 : OPSC_ENOMEM;
    if (rc == 0)
        rc = parse_schedule(n, cfg->retry_schedule ? cfg->retry_schedule : "0,5s,5m,30m,2h,5h,10h",
                            err, errlen);
    if (rc == 0)
        rc = nt_render_init(n, err, errlen);
    if (rc == 0)
        rc = notify_rules_reload(n);
    if (rc < 0) {
        if (!*err)
            snprintf(err, errlen, "notifications: %s", opsc_strerror(rc));
        notify_free(n);
        return rc;
    }
    uv_check_init(n->loop, &n->flush);
    uv_idle_init(n->loop, &n->flush_idle);
    uv_timer_init(n->loop, &n->wake);
    uv_timer_init(n->loop, &n->sweep);
    uv_timer_init(n->loop, &n->lr_timer);
    uv_timer_init(n->loop, &n->maint);
    uv_timer_init(n->loop, &n->results);
    n->flush.data = n->flush_idle.data = n->wake.data = n->sweep.data = n->lr_timer.data = n;
    n->maint.data = n->results.data = n;
    n->open_handles = 7;
    plugin_host_set_notify_status(c->plugins, nt_http_status);
    *out = n;
    return 0;
}

static const char *const bus_types[] = {
    "run.state",   "schedule.missed",      "target.unreachable",      "steplib.installed",
    "user.locked", "discovery.host_found", "discovery.host_vanished", "discovery.host_changed",
    "notify.outbox", "notify.rules"};

void notify_start(notify *n)
{
    for (size_t i = 0; i < sizeof(bus_types) / sizeof(bus_types[0]); i++) {
        int64_t id = events_subscribe(n->core->events, bus_types[i], NULL, nt_on_event, n);
        if (id < 0)
            log_error("notify", "cannot subscribe to %s: %s", bus_types[i], opsc_strerror((int)id));
        else
            n->bus_subs[i] = id;
    }
    nt_longrun_start(n);
    uv_timer_start(&n->maint, on_maint, 60000, 3600000);
    if (n->paused)
        log_warn("notify", "[notifications] paused: deliveries are kept in the outbox, none sent");
    else
        nt_wake_at(n, clock_now_ms());
}

void notify_close(notify *n)
{
    if (!n || n->closed)
        return;
    for (size_t i = 0; i < sizeof(bus_types) / sizeof(bus_types[0]); i++) {
        if (n->bus_subs[i] > 0)
            events_unsubscribe(n->core->events, n->bus_subs[i]);
        n->bus_subs[i] = 0;
    }
    if (uv_is_active((uv_handle_t *)&n->flush) || uv_is_active((uv_handle_t *)&n->results))
        nt_flush_now(n);
    n->closed = true;
    nt_sender_close(n);
    plugin_host_set_notify_status(n->core->plugins, NULL);
    uv_handle_t *hs[] = {(uv_handle_t *)&n->flush,    (uv_handle_t *)&n->flush_idle,
                         (uv_handle_t *)&n->wake,     (uv_handle_t *)&n->sweep,
                         (uv_handle_t *)&n->lr_timer, (uv_handle_t *)&n->maint,
                         (uv_handle_t *)&n->results};
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], handle_closed);
}

void notify_free(notify *n)
{
    if (!n)
        return;
    nt_rules_free(n);
    nt_render_free(n);
    nt_limiters_free(n);
    nt_longrun_free(n);
    json_decref(n->bus);
    json_decref(n->writes);
    json_decref(n->audits);
    json_decref(n->lr_runs);
    json_decref(n->by_type);
    json_decref(n->hooks_by_outcome);
    json_decref(n->busy);
    free(n->retry_ms);
    free(n->public_url);
    free(n);
}
