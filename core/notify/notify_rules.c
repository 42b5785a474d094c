/* notify_rules.c - rules: built from REST bodies, cached compiled, matched against notices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "jsonschema.h"
#include "log.h"
#include "notify_data.h"
#include "notify_internal.h"

/* ---- bodies -------------------------------------------------------------------------------- */

/* The record a body makes: a copy of `existing` with the body's members
 * over it (null removes an optional member), bookkeeping fields dropped. */
json_t *nt_merged(const json_t *body, const json_t *existing)
{
    json_t *out = existing ? json_deep_copy(existing) : json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v)
    {
        if (json_is_null(v))
            json_object_del(out, k);
        else
            json_object_set(out, k, v);
    }
    static const char *const ro[] = {"id", "created_at", "updated_at", "version", NULL};
    for (const char *const *f = ro; *f; f++)
        json_object_del(out, *f);
    return out;
}

/* The JSON Schema of a resource (compiled once per call: writes are rare). */
int nt_schema_apply(const char *schema_text, json_t *rec, const char **field, char *err,
                    size_t errlen)
{
    jschema *s = NULL;
    int rc = jschema_compile_text(&s, schema_text, err, errlen);
    if (rc < 0)
        return rc;
    jschema_err e = {0};
    size_t nerr = 0;
    rc = jschema_validate(s, rec, JSCHEMA_DEFAULTS, NULL, &e, 1, &nerr);
    jschema_free(s);
    if (rc == OPSC_ESCHEMA) {
        static char path[sizeof(e.path)]; /* loop thread only: names a member of the body */
        const char *src = e.path[0] == '/' ? e.path + 1 : e.path;
        size_t len = strnlen(src, sizeof(path) - 1);
        memcpy(path, src, len);
        path[len] = '\0';
        for (char *p = path; *p; p++)
            if (*p == '/')
                *p = '.';
        *field = path;
        snprintf(err, errlen, "%s: %s", *path ? path : "body", e.msg);
    }
    return rc;
}

static int require(const json_t *rec, const char *const *names, const char **field, char *err,
                   size_t errlen)
{
    for (const char *const *k = names; *k; k++) {
        if (!json_object_get(rec, *k)) {
            *field = *k;
            snprintf(err, errlen, "%s is required", *k);
            return OPSC_ESCHEMA;
        }
    }
    return 0;
}

int notify_rule_build(notify *n, const json_t *body, const json_t *existing, json_t **out,
                      const char **field, char *err, size_t errlen)
{
    (void)n;
    static const char *const req[] = {"name", "events", "channels", NULL};
    *out = NULL;
    *field = NULL;
    json_t *rec = nt_merged(body, existing);
    int rc = rec ? nt_schema_apply(J_rule, rec, field, err, errlen) : OPSC_ENOMEM;
    if (rc == 0)
        rc = require(rec, req, field, err, errlen);
    nrule r;
    if (rc == 0 && (rc = nt_rule_compile(rec, &r, err, errlen, field)) == 0)
        nt_rule_clear(&r);
    if (rc < 0) {
        json_decref(rec);
        return rc;
    }
    *out = rec;
    return 0;
}

static int exists(store_txn *txn, const char *db, const char *id)
{
    json_t *rec = NULL;
    int rc = store_get(txn, db, id, &rec);
    json_decref(rec);
    return rc;
}

static int check_ids(store_txn *txn, const json_t *list, const char *db, const char *what,
                     const char **field, char *err, size_t errlen)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        int rc = exists(txn, db, json_string_value(v));
        if (rc == OPSC_ENOENT) {
            *field = what;
            snprintf(err, errlen, "%s: no %s with id %s", what,
                     strcmp(db, "users") == 0             ? "user"
                     : strcmp(db, "notify_channels") == 0 ? "channel"
                     : strcmp(db, "jobs") == 0            ? "job"
                     : strcmp(db, "schedules") == 0       ? "schedule"
                                                          : "group",
                     json_string_value(v));
            return OPSC_ESCHEMA;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int notify_rule_check(store_txn *txn, const json_t *rec, const char **field, char *err,
                      size_t errlen)
{
    const json_t *f = json_object_get(rec, "filter");
    int rc = check_ids(txn, json_object_get(rec, "channels"), "notify_channels", "channels", field,
                       err, errlen);
    if (rc == 0)
        rc = check_ids(txn, json_object_get(rec, "users"), "users", "users", field, err, errlen);
    if (rc == 0)
        rc = check_ids(txn, json_object_get(f, "job_ids"), "jobs", "filter.job_ids", field, err,
                       errlen);
    if (rc == 0)
        rc = check_ids(txn, json_object_get(f, "schedule_ids"), "schedules", "filter.schedule_ids",
                       field, err, errlen);
    if (rc == 0)
        rc = check_ids(txn, json_object_get(f, "group_ids"), "groups", "filter.group_ids", field,
                       err, errlen);
    return rc;
}

/* ---- the cache ------------------------------------------------------------------------------ */

typedef struct load {
    nrule *rules;
    size_t n, cap;
} load;

static int load_one(const char *id, json_t *rec, void *ud)
{
    load *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        nrule *r = realloc(l->rules, cap * sizeof(*r));
        if (!r)
            return OPSC_ENOMEM;
        l->rules = r;
        l->cap = cap;
    }
    char err[512];
    const char *field = NULL;
    if (nt_rule_compile(rec, &l->rules[l->n], err, sizeof(err), &field) < 0)
        log_error("notify", "rule %s is ignored: %s", id, err);
    else
        l->n++;
    return 0;
}

static int load_txn(store_txn *txn, void *ud)
{
    load *l = ud;
    for (size_t i = 0; i < l->n; i++)
        nt_rule_clear(&l->rules[i]);
    l->n = 0;
    return store_scan(txn, "notify_rules", NULL, false, load_one, l);
}

void nt_rules_free(notify *n)
{
    for (size_t i = 0; i < n->nrules; i++)
        nt_rule_clear(&n->rules[i]);
    free(n->rules);
    n->rules = NULL;
    n->nrules = 0;
}

int notify_rules_reload(notify *n)
{
    load l = {0};
    int rc = store_read(n->store, load_txn, &l);
    if (rc < 0) {
        for (size_t i = 0; i < l.n; i++)
            nt_rule_clear(&l.rules[i]);
        free(l.rules);
        return rc;
    }
    nt_rules_free(n);
    n->rules = l.rules;
    n->nrules = l.n;
    n->events = 0;
    for (size_t i = 0; i < n->nrules; i++)
        n->events |= n->rules[i].events;
    n->any_long_running = n->events & (1u << EV_RUN_LONG_RUNNING);
    return 0;
}

static int announce_txn(store_txn *txn, void *ud)
{
    notify *n = ud;
    return store_announce(txn, "notify.rules", n->core->node_id);
}

/* After the change committed, in a transaction of its own: the fast path.
 * A node that misses it (its listening connection broke) reloads at its
 * next heartbeat, which compares the rules' version the write bumped
 * (cluster.c). */
void notify_rules_announce(notify *n)
{
    if (!store_is_shared(n->store))
        return;
    int rc = store_write(n->store, announce_txn, n);
    if (rc < 0)
        log_warn("notify", "telling the other nodes that rules changed failed: %s",
                 opsc_strerror(rc));
}

const nrule *nt_rule_find(const notify *n, const char *id)
{
    for (size_t i = 0; id && i < n->nrules; i++)
        if (strcmp(n->rules[i].id, id) == 0)
            return &n->rules[i];
    return NULL;
}

/* ---- dispatch -------------------------------------------------------------------------------- */

static int to_channels(notify *n, store_txn *txn, const nrule *r, const notice *no)
{
    size_t i;
    json_t *cid;
    json_array_foreach(r->channels, i, cid)
    {
        json_t *ch = NULL;
        int rc = store_get(txn, "notify_channels", json_string_value(cid), &ch);
        if (rc == OPSC_ENOENT)
            continue; /* deleted since the rule was written */
        if (rc == 0 && json_is_true(json_object_get(ch, "enabled"))) {
            char id[40];
            rc = nt_outbox_add(n, txn, r, ch, no, id);
        }
        json_decref(ch);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int nt_dispatch(notify *n, store_txn *txn, notice *no)
{
    for (size_t i = 0; i < n->nrules; i++) {
        bool match = false;
        int rc = nt_rule_matches(n, txn, &n->rules[i], no, &match);
        if (rc == 0 && match)
            rc = to_channels(n, txn, &n->rules[i], no);
        if (rc < 0)
            return rc;
    }
    return 0;
}
