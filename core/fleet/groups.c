/* groups.c - group records: members, selector, nested groups without cycles, and their indexes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "fields.h"
#include "fleet.h"
#include "fleet_internal.h"
#include "selector.h"
#include "strbuf.h"
#include "util.h"

#define GROUP_MEMBERS_MAX 10000
#define GROUP_NESTED_MAX  100
#define GROUP_DEPTH_MAX   32

static const fld group_fields[] = {
    {"name", FLD_STRING, 1, 128, NULL, 0, NULL},
    {"description", FLD_STRING, 0, 1024, NULL, FLD_NULLABLE | FLD_MULTILINE, NULL},
    {"members", FLD_ARRAY, 0, GROUP_MEMBERS_MAX, NULL, FLD_NULLABLE, NULL},
    {"selector", FLD_STRING, 0, SELECTOR_MAX_LEN, NULL, FLD_NULLABLE, NULL},
    {"groups", FLD_ARRAY, 0, GROUP_NESTED_MAX, NULL, FLD_NULLABLE, NULL},
    {"id", FLD_STRING, 0, 0, NULL, FLD_READ_ONLY, NULL},
    {"created_at", FLD_STRING, 0, 0, NULL, FLD_READ_ONLY, NULL},
    {"updated_at", FLD_STRING, 0, 0, NULL, FLD_READ_ONLY, NULL},
    {"version", FLD_INT, 0, 0, NULL, FLD_READ_ONLY, "send it as If-Match"},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

/* An array of ids, each a UUID string, without repeats (first kept). */
static int check_ids(json_t *rec, const char *field, const char *self, fleet_err *e)
{
    json_t *in = json_object_get(rec, field), *out = json_array();
    size_t i;
    json_t *v;
    int rc = out ? 0 : OPSC_ENOMEM;
    json_array_foreach(in, i, v)
    {
        const char *id = json_string_value(v);
        if (rc == 0 && (!id || !uuid_valid(id)))
            rc = fleet_fail(e, field, "%s[%zu] must be an id", field, i);
        if (rc == 0 && self && strcmp(id, self) == 0)
            rc = fleet_fail(e, field, "a group cannot contain itself");
        bool seen = false;
        for (size_t j = 0; rc == 0 && j < json_array_size(out) && !seen; j++)
            seen = strcmp(json_string_value(json_array_get(out, j)), id) == 0;
        if (rc == 0 && !seen)
            json_array_append(out, v);
    }
    if (rc == 0)
        json_object_set(rec, field, out);
    json_decref(out);
    return rc;
}

int group_build(const json_t *body, const json_t *existing, json_t **out, fleet_err *e)
{
    e->field = NULL;
    e->msg[0] = '\0';
    *out = NULL;
    json_t *defaults =
        json_pack("{s:s, s:[], s:s, s:[]}", "description", "", "members", "selector", "", "groups");
    json_t *rec = existing ? json_deep_copy(existing) : json_deep_copy(defaults);
    int rc = defaults && rec ? 0 : OPSC_ENOMEM;
    if (rc == 0)
        rc = fld_apply(group_fields, body, !existing, defaults, rec, NULL, e);
    if (rc == 0 && !fld_str(rec, "name"))
        rc = fleet_fail(e, "name", "name is required");
    const char *self = existing ? fld_str(existing, "id") : NULL;
    if (rc == 0)
        rc = check_ids(rec, "members", NULL, e);
    if (rc == 0)
        rc = check_ids(rec, "groups", self, e);
    selector *sel = NULL;
    char why[300];
    if (rc == 0 && selector_parse(fld_str(rec, "selector"), &sel, why, sizeof(why)) < 0)
        rc = fleet_fail(e, "selector", "selector: %s", why);
    selector_free(sel);
    json_decref(defaults);
    if (rc == 0) {
        *out = fld_ordered(group_fields, rec);
        rc = *out ? 0 : OPSC_ENOMEM;
    }
    json_decref(rec);
    return rc;
}

/* ---- storing ------------------------------------------------------------------------------ */

static bool exists(store_txn *txn, const char *db, const char *id)
{
    const void *v;
    size_t n;
    return store_kv_get(txn, db, id, strlen(id), &v, &n) == 0;
}

static int refs_exist(store_txn *txn, const json_t *rec, fleet_err *e)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(rec, "members"), i, v)
    {
        if (!exists(txn, "targets", json_string_value(v)))
            return fleet_fail(e, "members", "members[%zu]: target %s does not exist", i,
                              json_string_value(v));
    }
    json_array_foreach(json_object_get(rec, "groups"), i, v)
    {
        if (!exists(txn, "groups", json_string_value(v)))
            return fleet_fail(e, "groups", "groups[%zu]: group %s does not exist", i,
                              json_string_value(v));
    }
    return 0;
}

/* Depth-first from `id` through the stored nesting (with `self`'s new list):
 * OPSC_ESCHEMA when `self` is reachable, the path in `path`. */
typedef struct walk {
    store_txn *txn;
    const char *self;
    const json_t *self_groups;
    json_t *seen;
    const char *path[GROUP_DEPTH_MAX + 1];
    int depth;
} walk;

static int visit(walk *w, const char *id, fleet_err *e);

static int visit_children(walk *w, const json_t *children, fleet_err *e)
{
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)children, i, v)
    {
        int rc = visit(w, json_string_value(v), e);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int cycle_error(walk *w, fleet_err *e)
{
    strbuf sb = STRBUF_INIT;
    for (int i = 0; i < w->depth; i++) {
        json_t *g = NULL;
        const char *name = w->path[i];
        if (i > 0 && store_get(w->txn, "groups", w->path[i], &g) == 0)
            name = fld_str(g, "name");
        sb_printf(&sb, "%s -> ", name);
        json_decref(g);
    }
    sb_puts(&sb, w->path[0]);
    fleet_fail(e, "groups", "nesting would close a cycle: %s", sb.buf ? sb.buf : "");
    sb_free(&sb);
    return OPSC_ESCHEMA;
}

static int visit(walk *w, const char *id, fleet_err *e)
{
    if (strcmp(id, w->self) == 0)
        return cycle_error(w, e);
    if (json_object_get(w->seen, id))
        return 0;
    if (w->depth == GROUP_DEPTH_MAX)
        return fleet_fail(e, "groups", "groups nest deeper than %d levels", GROUP_DEPTH_MAX);
    json_object_set_new(w->seen, id, json_true());
    json_t *g = NULL;
    int rc = store_get(w->txn, "groups", id, &g);
    if (rc == OPSC_ENOENT)
        return 0;
    w->path[w->depth++] = id;
    if (rc == 0)
        rc = visit_children(w, json_object_get(g, "groups"), e);
    w->depth--;
    json_decref(g);
    return rc;
}

static int check_cycles(store_txn *txn, const json_t *rec, fleet_err *e)
{
    walk w = {txn, fld_str(rec, "id"), json_object_get(rec, "groups"), json_object(), {0}, 1};
    if (!w.seen)
        return OPSC_ENOMEM;
    w.path[0] = fld_str(rec, "name"); /* the path starts and ends at the group written */
    int rc = visit_children(&w, w.self_groups, e);
    json_decref(w.seen);
    return rc;
}

static bool has_id(const json_t *arr, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)arr, i, v)
    {
        if (strcmp(json_string_value(v), id) == 0)
            return true;
    }
    return false;
}

/* Keep "<child>/<group>" links of `field` in `db` equal to the record's list. */
static int relink(store_txn *txn, const char *db, const char *field, const json_t *before,
                  const json_t *rec)
{
    const char *id = fld_str(rec, "id");
    const json_t *old = json_object_get(before, field), *now = json_object_get(rec, field);
    size_t i;
    json_t *v;
    int rc = 0;
    json_array_foreach((json_t *)old, i, v)
    {
        if (rc == 0 && !has_id(now, json_string_value(v)))
            rc = fleet_unlink(txn, db, json_string_value(v), id);
    }
    json_array_foreach((json_t *)now, i, v)
    {
        if (rc == 0 && !has_id(old, json_string_value(v)))
            rc = fleet_link(txn, db, json_string_value(v), id);
    }
    return rc;
}

int group_write(store_txn *txn, const json_t *before, json_t *rec, int64_t expect, fleet_err *e)
{
    char id[UUID_STR_LEN];
    int rc = 0;
    if (!fld_str(rec, "id")) {
        rc = uuid7_new(id);
        json_object_set_new(rec, "id", json_string(id));
    }
    const char *name = fld_str(rec, "name"), *old = before ? fld_str(before, "name") : NULL;
    if (rc == 0)
        rc = refs_exist(txn, rec, e);
    if (rc == 0 && before)
        rc = check_cycles(txn, rec, e);
    if (rc == 0)
        rc = fleet_name_free(txn, "groups_by_name", "group", name, fld_str(rec, "id"), e);
    if (rc == 0)
        rc = before ? store_update(txn, "groups", rec, expect) : store_create(txn, "groups", rec);
    if (rc == 0 && (!old || strcmp(old, name) != 0))
        rc = store_index_put(txn, "groups_by_name", name, fld_str(rec, "id"));
    if (rc == 0 && old && strcmp(old, name) != 0)
        rc = store_index_del(txn, "groups_by_name", old);
    if (rc == 0)
        rc = relink(txn, "groups_by_target", "members", before, rec);
    if (rc == 0)
        rc = relink(txn, "groups_by_group", "groups", before, rec);
    return rc;
}

/* Remove `id` from the array `field` of group `gid` and drop the link. */
static int unlist(store_txn *txn, const char *gid, const char *field, const char *db,
                  const char *id)
{
    json_t *g = NULL;
    int rc = store_get(txn, "groups", gid, &g);
    json_t *arr = json_object_get(g, field);
    for (size_t i = 0; rc == 0 && i < json_array_size(arr); i++)
        if (strcmp(json_string_value(json_array_get(arr, i)), id) == 0)
            json_array_remove(arr, i--);
    if (rc == 0)
        rc = store_update(txn, "groups", g, 0);
    json_decref(g);
    if (rc == OPSC_ENOENT)
        rc = 0; /* a stale link */
    return rc == 0 ? fleet_unlink(txn, db, id, gid) : rc;
}

int group_drop_target(store_txn *txn, const char *target_id)
{
    json_t *groups = NULL;
    int rc = fleet_links(txn, "groups_by_target", target_id, &groups);
    for (size_t i = 0; rc == 0 && i < json_array_size(groups); i++)
        rc = unlist(txn, json_string_value(json_array_get(groups, i)), "members",
                    "groups_by_target", target_id);
    json_decref(groups);
    return rc;
}

static int parents_view(store_txn *txn, const json_t *ids, json_t **out)
{
    *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)ids, i, v)
    {
        json_t *g = NULL;
        if (store_get(txn, "groups", json_string_value(v), &g) == 0)
            json_array_append_new(*out, json_pack("{s:O, s:O}", "id", json_object_get(g, "id"),
                                                  "name", json_object_get(g, "name")));
        json_decref(g);
    }
    return *out ? 0 : OPSC_ENOMEM;
}

static int unlink_all(store_txn *txn, const char *db, const json_t *ids, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)ids, i, v)
    {
        int rc = fleet_unlink(txn, db, json_string_value(v), id);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int group_remove(store_txn *txn, const char *id, int64_t expect, bool force, json_t **parents)
{
    json_t *rec = NULL, *up = NULL;
    *parents = NULL;
    int rc = store_get(txn, "groups", id, &rec);
    if (rc == 0)
        rc = fleet_links(txn, "groups_by_group", id, &up);
    if (rc == 0 && json_array_size(up) > 0 && !force) {
        rc = parents_view(txn, up, parents);
        if (rc == 0)
            rc = OPSC_EBUSY;
    }
    for (size_t i = 0; rc == 0 && i < json_array_size(up); i++)
        rc = unlist(txn, json_string_value(json_array_get(up, i)), "groups", "groups_by_group", id);
    if (rc == 0)
        rc = store_delete(txn, "groups", id, expect);
    if (rc == 0)
        rc = store_index_del(txn, "groups_by_name", fld_str(rec, "name"));
    if (rc == 0)
        rc = unlink_all(txn, "groups_by_target", json_object_get(rec, "members"), id);
    if (rc == 0)
        rc = unlink_all(txn, "groups_by_group", json_object_get(rec, "groups"), id);
    json_decref(up);
    json_decref(rec);
    return rc;
}
