/* notify_filter.c - a rule compiled from its record, and whether it takes a notice: events,
 * failure streaks, jobs, schedules, target groups, label selectors, severity. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "fleet.h"
#include "notify_internal.h"
#include "selector.h"

/* ---- names -------------------------------------------------------------------------------- */

static const char *const event_names[EV__COUNT] = {"run.started",
                                                   "run.succeeded",
                                                   "run.failed",
                                                   "run.timed_out",
                                                   "run.cancelled",
                                                   "run.interrupted",
                                                   "run.fixed",
                                                   "run.failing",
                                                   "run.long_running",
                                                   "schedule.missed",
                                                   "target.unreachable",
                                                   "steplib.installed",
                                                   "user.locked",
                                                   "test",
                                                   "discovery.host_found",
                                                   "discovery.host_vanished",
                                                   "discovery.host_changed"};

static const int event_sev[EV__COUNT] = {
    SEV_INFO,    SEV_INFO,  SEV_ERROR,   SEV_ERROR,   SEV_WARNING, SEV_WARNING,
    SEV_INFO,    SEV_ERROR, SEV_WARNING, SEV_WARNING, SEV_ERROR,   SEV_INFO,
    SEV_WARNING, SEV_INFO,  SEV_INFO,    SEV_WARNING, SEV_WARNING};

static const char *const sev_names[] = {"info", "warning", "error"};

const char *nt_event_name(int ev)
{
    return ev >= 0 && ev < EV__COUNT ? event_names[ev] : "unknown";
}

int nt_event_parse(const char *name)
{
    for (int i = 0; name && i < EV__COUNT; i++)
        if (strcmp(event_names[i], name) == 0)
            return i;
    return -1;
}

int nt_event_severity(int ev)
{
    return ev >= 0 && ev < EV__COUNT ? event_sev[ev] : SEV_INFO;
}

const char *nt_sev_name(int sev)
{
    return sev >= SEV_INFO && sev <= SEV_ERROR ? sev_names[sev] : "info";
}

int nt_sev_parse(const char *name)
{
    for (int i = SEV_INFO; name && i <= SEV_ERROR; i++)
        if (strcmp(sev_names[i], name) == 0)
            return i;
    return -1;
}

/* ---- compiling ------------------------------------------------------------------------------ */

static int compile_part(const json_t *tmpl, const char *part, tpl **out, const char **field,
                        char *err, size_t errlen)
{
    static const char *const fields[] = {"template.subject", "template.text", "template.body"};
    const char *text = json_string_value(json_object_get(tmpl, part));
    if (!text)
        return 0;
    tpl_err te = {0};
    int rc = nt_tpl_compile(text, out, &te);
    if (rc < 0) {
        *field = fields[part[0] == 's' ? 0 : part[0] == 't' ? 1 : 2];
        snprintf(err, errlen, "%s: %d:%d: %s", *field, te.line, te.col, te.msg);
        return OPSC_ESCHEMA;
    }
    return 0;
}

static int compile_filter(const json_t *f, nrule *r, const char **field, char *err, size_t errlen)
{
    r->job_ids = json_object_get(f, "job_ids");
    r->schedule_ids = json_object_get(f, "schedule_ids");
    r->group_ids = json_object_get(f, "group_ids");
    r->profile_ids = json_object_get(f, "profile_ids");
    if (dspec_set_parse_json(json_object_get(f, "ranges"), "filter.ranges", &r->ranges, err,
                             errlen) < 0) {
        *field = "filter.ranges";
        return OPSC_ESCHEMA;
    }
    const char *sev = json_string_value(json_object_get(f, "severity"));
    r->min_sev = sev ? nt_sev_parse(sev) : SEV_INFO;
    const char *sel = json_string_value(json_object_get(f, "selector"));
    if (sel && *sel) {
        char why[256];
        if (selector_parse(sel, &r->sel, why, sizeof(why)) < 0) {
            *field = "filter.selector";
            snprintf(err, errlen, "filter.selector: %s", why);
            return OPSC_ESCHEMA;
        }
    }
    return r->min_sev < 0 ? OPSC_ESCHEMA : 0;
}

int nt_rule_compile(const json_t *rec, nrule *r, char *err, size_t errlen, const char **field)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", json_string_value(json_object_get(rec, "id")) ?: "");
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(rec, "events"), i, e)
    {
        int ev = nt_event_parse(json_string_value(e));
        if (ev < 0 || ev == EV_TEST) {
            *field = "events";
            snprintf(err, errlen, "events: unknown event '%s'", json_string_value(e) ?: "?");
            return OPSC_ESCHEMA;
        }
        r->events |= 1u << ev;
    }
    r->channels = json_object_get(rec, "channels");
    r->users = json_object_get(rec, "users");
    json_int_t mcf = json_integer_value(json_object_get(rec, "min_consecutive_failures"));
    r->min_failures = mcf > 0 ? (int)mcf : 3;
    const json_t *lr = json_object_get(rec, "long_running");
    r->lr_after_ms = (int64_t)json_integer_value(json_object_get(lr, "after_s")) * 1000;
    r->lr_percent = (int)json_integer_value(json_object_get(lr, "percent_over_average"));
    r->window_ms = (int64_t)json_integer_value(json_object_get(rec, "group_window_s")) * 1000;
    if ((r->events & (1u << EV_RUN_LONG_RUNNING)) && !r->lr_after_ms && !r->lr_percent) {
        *field = "long_running";
        snprintf(err, errlen,
                 "long_running: run.long_running needs {\"after_s\": N} or "
                 "{\"percent_over_average\": N}");
        return OPSC_ESCHEMA;
    }
    int rc = compile_filter(json_object_get(rec, "filter"), r, field, err, errlen);
    const json_t *t = json_object_get(rec, "template");
    if (rc == 0)
        rc = compile_part(t, "subject", &r->subject, field, err, errlen);
    if (rc == 0)
        rc = compile_part(t, "text", &r->text, field, err, errlen);
    if (rc == 0)
        rc = compile_part(t, "body", &r->body, field, err, errlen);
    if (rc == 0)
        r->rec = json_incref((json_t *)rec);
    else
        nt_rule_clear(r);
    return rc;
}

void nt_rule_clear(nrule *r)
{
    selector_free(r->sel);
    dspec_set_free(&r->ranges);
    tpl_free(r->subject);
    tpl_free(r->text);
    tpl_free(r->body);
    json_decref(r->rec);
    memset(r, 0, sizeof(*r));
}

/* ---- matching ---------------------------------------------------------------------------------
 */

static bool listed(const json_t *list, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (id && json_string_value(v) && strcmp(json_string_value(v), id) == 0)
            return true;
    }
    return false;
}

/* Some target of the notice belongs to one of the rule's groups (members,
 * selector and nested groups alike: the fleet resolves them). */
static int in_groups(store_txn *txn, const nrule *r, const notice *no, bool *match)
{
    *match = false;
    size_t i;
    json_t *g;
    json_array_foreach(r->group_ids, i, g)
    {
        json_t *spec = json_pack("{s:[O]}", "groups", g), *recs = NULL;
        char why[256];
        int rc = spec ? fleet_resolve_records(txn, spec, &recs, why, sizeof(why)) : OPSC_ENOMEM;
        json_decref(spec);
        if (rc == OPSC_ENOENT) /* a group deleted since: it matches nothing */
            continue;
        size_t k;
        json_t *t;
        json_array_foreach(recs, k, t)
        {
            if (listed(no->target_ids, json_string_value(json_object_get(t, "id"))))
                *match = true;
        }
        json_decref(recs);
        if (rc < 0 || *match)
            return rc;
    }
    return 0;
}

static int selector_hit(store_txn *txn, const nrule *r, const notice *no, bool *match)
{
    *match = false;
    size_t i;
    json_t *id;
    json_array_foreach(no->target_ids, i, id)
    {
        json_t *t = NULL;
        int rc = store_get(txn, "targets", json_string_value(id), &t);
        if (rc == OPSC_ENOENT)
            continue;
        if (rc < 0)
            return rc;
        *match = selector_match(r->sel, json_object_get(t, "labels"));
        json_decref(t);
        if (*match)
            break;
    }
    return 0;
}

static bool streak_ok(const nrule *r, const notice *no)
{
    bool by_schedule = json_array_size(r->schedule_ids) > 0;
    if (no->ev == EV_RUN_FAILING)
        return (by_schedule ? no->cur_sched : no->cur_job) == r->min_failures;
    if (no->ev == EV_RUN_FIXED)
        return (by_schedule ? no->prev_sched : no->prev_job) > 0;
    return true;
}

int nt_rule_matches(notify *n, store_txn *txn, const nrule *r, const notice *no, bool *match)
{
    (void)n;
    *match = false;
    if (!json_is_true(json_object_get(r->rec, "enabled")) || !(r->events & (1u << no->ev)))
        return 0;
    if (no->only_rule && strcmp(no->only_rule, r->id) != 0)
        return 0;
    if (no->sev < r->min_sev || !streak_ok(r, no))
        return 0;
    if (json_array_size(r->job_ids) && !listed(r->job_ids, no->job_id))
        return 0;
    if (json_array_size(r->schedule_ids) && !listed(r->schedule_ids, no->schedule_id))
        return 0;
    if (json_array_size(r->profile_ids) && !listed(r->profile_ids, no->profile_id))
        return 0;
    if (r->ranges.n && !(no->address && dspec_set_has(&r->ranges, no->address)))
        return 0;
    int rc = 0;
    bool hit = true;
    if (json_array_size(r->group_ids))
        rc = in_groups(txn, r, no, &hit);
    if (rc == 0 && hit && r->sel && !selector_empty(r->sel))
        rc = selector_hit(txn, r, no, &hit);
    *match = rc == 0 && hit;
    return rc;
}
