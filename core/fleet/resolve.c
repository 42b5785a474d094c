/* resolve.c - from a target spec {ids, groups, selector} to the targets it names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "fields.h"
#include "fleet.h"
#include "selector.h"
#include "util.h"

#define RESOLVE_DEPTH_MAX 32

static int bad(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return OPSC_ESCHEMA;
}

static int check_id_list(const json_t *v, const char *what, char *err, size_t errlen)
{
    if (!v)
        return 0;
    if (!json_is_array(v)) {
        snprintf(err, errlen, "targets.%s must be an array of ids", what);
        return OPSC_ESCHEMA;
    }
    size_t i;
    json_t *id;
    json_array_foreach((json_t *)v, i, id)
    {
        if (!json_is_string(id) || !uuid_valid(json_string_value(id))) {
            snprintf(err, errlen, "targets.%s[%zu] must be an id", what, i);
            return OPSC_ESCHEMA;
        }
    }
    return 0;
}

int fleet_spec_check(const json_t *spec, char *err, size_t errlen)
{
    if (!json_is_object(spec))
        return bad(err, errlen, "targets must be an object {\"ids\", \"groups\", \"selector\"}");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)spec, k, v)
    {
        if (strcmp(k, "ids") && strcmp(k, "groups") && strcmp(k, "selector"))
            return bad(err, errlen, "targets takes only \"ids\", \"groups\" and \"selector\"");
    }
    int rc = check_id_list(json_object_get(spec, "ids"), "ids", err, errlen);
    if (rc == 0)
        rc = check_id_list(json_object_get(spec, "groups"), "groups", err, errlen);
    v = json_object_get(spec, "selector");
    if (rc == 0 && v && !json_is_string(v) && !json_is_null(v))
        rc = bad(err, errlen, "targets.selector must be a string");
    selector *sel = NULL;
    char why[300];
    if (rc == 0 && json_is_string(v) &&
        selector_parse(json_string_value(v), &sel, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "targets.selector: %s", why);
        rc = OPSC_ESCHEMA;
    }
    selector_free(sel);
    return rc;
}

/* ---- collecting --------------------------------------------------------------------------- */

typedef struct collect {
    store_txn *txn;
    json_t *ids;     /* set: id -> true, static members and spec ids */
    json_t *seen;    /* groups visited */
    selector **sels; /* every non-empty selector met */
    size_t nsels;
    json_t *found; /* id -> record, the result */
    char *err;
    size_t errlen;
} collect;

static int add_selector(collect *c, const char *text)
{
    if (!text || !*text)
        return 0;
    selector *s = NULL;
    char why[300];
    if (selector_parse(text, &s, why, sizeof(why)) < 0) {
        snprintf(c->err, c->errlen, "selector '%.200s': %s", text, why);
        return OPSC_ESCHEMA;
    }
    if (selector_empty(s)) {
        selector_free(s);
        return 0;
    }
    selector **v = realloc(c->sels, (c->nsels + 1) * sizeof(*v));
    if (!v) {
        selector_free(s);
        return OPSC_ENOMEM;
    }
    c->sels = v;
    c->sels[c->nsels++] = s;
    return 0;
}

static int add_group(collect *c, const char *id, int depth)
{
    if (json_object_get(c->seen, id) || depth > RESOLVE_DEPTH_MAX)
        return 0; /* cycles are refused on write; this only bounds a damaged store */
    json_object_set_new(c->seen, id, json_true());
    json_t *g = NULL;
    int rc = store_get(c->txn, "groups", id, &g);
    if (rc == OPSC_ENOENT && depth > 0)
        return 0; /* a nested group deleted under us */
    if (rc == OPSC_ENOENT)
        snprintf(c->err, c->errlen, "group %s does not exist", id);
    size_t i;
    json_t *v;
    json_array_foreach(rc == 0 ? json_object_get(g, "members") : NULL, i, v)
        json_object_set_new(c->ids, json_string_value(v), json_true());
    if (rc == 0)
        rc = add_selector(c, fld_str(g, "selector"));
    json_array_foreach(rc == 0 ? json_object_get(g, "groups") : NULL, i, v)
    {
        rc = add_group(c, json_string_value(v), depth + 1);
        if (rc < 0)
            break;
    }
    json_decref(g);
    return rc;
}

static int match_one(const char *id, json_t *rec, void *ud)
{
    collect *c = ud;
    for (size_t i = 0; i < c->nsels; i++)
        if (selector_match(c->sels[i], json_object_get(rec, "labels")))
            return json_object_set(c->found, id, rec) == 0 ? 0 : OPSC_ENOMEM;
    return 0;
}

/* Static ids not matched by a selector yet: load them (unknown ones were
 * deleted after the group listed them and are skipped). */
static int load_ids(collect *c)
{
    const char *id;
    json_t *v;
    json_object_foreach(c->ids, id, v)
    {
        if (json_object_get(c->found, id))
            continue;
        json_t *rec = NULL;
        int rc = store_get(c->txn, "targets", id, &rec);
        if (rc == 0)
            json_object_set_new(c->found, id, rec);
        else if (rc != OPSC_ENOENT)
            return rc;
    }
    return 0;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *sorted_records(json_t *found)
{
    size_t n = json_object_size(found), i = 0;
    const char **keys = malloc((n ? n : 1) * sizeof(*keys));
    json_t *out = json_array();
    if (!keys || !out) {
        free(keys);
        json_decref(out);
        return NULL;
    }
    const char *id;
    json_t *v;
    json_object_foreach(found, id, v) keys[i++] = id;
    qsort(keys, n, sizeof(*keys), by_id);
    for (i = 0; i < n; i++)
        json_array_append(out, json_object_get(found, keys[i]));
    free(keys);
    return out;
}

static int spec_ids(collect *c, const json_t *spec)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(spec, "ids"), i, v)
    {
        const char *id = json_string_value(v);
        const void *val;
        size_t len;
        int rc = store_kv_get(c->txn, "targets", id, strlen(id), &val, &len);
        if (rc == OPSC_ENOENT)
            snprintf(c->err, c->errlen, "target %s does not exist", id);
        if (rc < 0)
            return rc;
        json_object_set_new(c->ids, id, json_true());
    }
    json_array_foreach(json_object_get(spec, "groups"), i, v)
    {
        int rc = add_group(c, json_string_value(v), 0);
        if (rc < 0)
            return rc;
    }
    return add_selector(c, fld_str(spec, "selector"));
}

int fleet_resolve_records(store_txn *txn, const json_t *spec, json_t **records, char *err,
                          size_t errlen)
{
    *records = NULL;
    int rc = fleet_spec_check(spec, err, errlen);
    if (rc < 0)
        return rc;
    collect c = {txn, json_object(), json_object(), NULL, 0, json_object(), err, errlen};
    rc = c.ids && c.seen && c.found ? 0 : OPSC_ENOMEM;
    if (rc == 0)
        rc = spec_ids(&c, spec);
    if (rc == 0 && c.nsels > 0)
        rc = store_scan(txn, "targets", NULL, false, match_one, &c);
    if (rc == 0)
        rc = load_ids(&c);
    if (rc == 0 && !(*records = sorted_records(c.found)))
        rc = OPSC_ENOMEM;
    for (size_t i = 0; i < c.nsels; i++)
        selector_free(c.sels[i]);
    free(c.sels);
    json_decref(c.ids);
    json_decref(c.seen);
    json_decref(c.found);
    return rc;
}

int fleet_resolve(store_txn *txn, const json_t *spec, fleet_resolved *out, char *err, size_t errlen)
{
    json_t *recs = NULL;
    out->ids = out->disabled = NULL;
    int rc = fleet_resolve_records(txn, spec, &recs, err, errlen);
    if (rc < 0)
        return rc;
    out->ids = json_array();
    out->disabled = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        json_t *dst = json_is_false(json_object_get(r, "enabled")) ? out->disabled : out->ids;
        json_array_append(dst, json_object_get(r, "id"));
    }
    json_decref(recs);
    if (!out->ids || !out->disabled) {
        fleet_resolved_clear(out);
        return OPSC_ENOMEM;
    }
    return 0;
}

void fleet_resolved_clear(fleet_resolved *r)
{
    json_decref(r->ids);
    json_decref(r->disabled);
    r->ids = r->disabled = NULL;
}
