/* job_export.c - jobs as portable JSON: references by name out, back to this installation's ids in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "job.h"
#include "util.h"

#define JOB_EXPORT_FORMAT "opsconductor.job/1"

/* The name of record `id` in `db`, or NULL (new string otherwise). */
static char *name_of(store_txn *txn, const char *db, const char *id)
{
    json_t *rec = NULL;
    if (!id || store_get(txn, db, id, &rec) < 0)
        return NULL;
    const char *n = json_string_value(json_object_get(rec, "name"));
    char *copy = n ? strdup(n) : NULL;
    json_decref(rec);
    return copy;
}

static json_t *names_of(store_txn *txn, const char *db, const json_t *ids, const char *what,
                        json_t *warnings)
{
    json_t *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        char *n = name_of(txn, db, json_string_value(v));
        if (n)
            json_array_append_new(out, json_string(n));
        else
            json_array_append_new(warnings, json_sprintf("%s %s no longer exists: left out", what,
                                                         json_string_value(v)));
        free(n);
    }
    return out;
}

static json_t *export_targets(store_txn *txn, const json_t *t, json_t *warnings)
{
    json_t *out = json_object();
    if (json_object_get(t, "ids"))
        json_object_set_new(
            out, "names", names_of(txn, "targets", json_object_get(t, "ids"), "target", warnings));
    if (json_object_get(t, "groups"))
        json_object_set_new(
            out, "groups",
            names_of(txn, "groups", json_object_get(t, "groups"), "group", warnings));
    if (json_object_get(t, "selector"))
        json_object_set(out, "selector", json_object_get(t, "selector"));
    return out;
}

/* Secret defaults that are credential ids become names. */
static void export_params(store_txn *txn, json_t *params)
{
    size_t i;
    json_t *p;
    json_array_foreach(params, i, p)
    {
        const char *def = json_string_value(json_object_get(p, "default"));
        if (!json_is_true(json_object_get(p, "secret")) || !def || !uuid_valid(def))
            continue;
        char *n = name_of(txn, "credentials", def);
        if (n)
            json_object_set_new(p, "default", json_string(n));
        free(n);
    }
}

int job_export(store_txn *txn, const json_t *rec, json_t **out, char *err, size_t errlen)
{
    static const char *const drop[] = {"id",         "created_at", "updated_at", "version",
                                       "created_by", "updated_by", NULL};
    json_t *job = json_deep_copy(rec), *warnings = json_array();
    if (!job || !warnings) {
        json_decref(job);
        json_decref(warnings);
        snprintf(err, errlen, "out of memory");
        return OPSC_ENOMEM;
    }
    for (const char *const *k = drop; *k; k++)
        json_object_del(job, *k);
    json_object_set_new(job, "targets",
                        export_targets(txn, json_object_get(rec, "targets"), warnings));
    export_params(txn, json_object_get(job, "parameters"));
    *out = json_pack("{s:s, s:o, s:O?, s:I, s:o}", "format", JOB_EXPORT_FORMAT, "job", job,
                     "source_id", json_object_get(rec, "id"), "source_version",
                     json_integer_value(json_object_get(rec, "version")), "warnings", warnings);
    return *out ? 0 : OPSC_ENOMEM;
}

/* ---- import ----------------------------------------------------------------------------- */

static json_t *ids_of(store_txn *txn, const char *index, const json_t *names, const char *what,
                      const char *path, json_t *errors)
{
    json_t *out = json_array();
    size_t i;
    json_t *v;
    if (names && !json_is_array(names)) {
        job_err_add(errors, path, NULL, NULL, 0, 0, "%s must be a list of names", path);
        return out;
    }
    json_array_foreach(names, i, v)
    {
        char id[40];
        const char *n = json_string_value(v);
        if (n && strlen(n) < 256 && store_index_get(txn, index, n, id) == 0)
            json_array_append_new(out, json_string(id));
        else
            job_err_add(errors, path, NULL, NULL, 0, 0, "no %s named '%s' here", what,
                        n ? n : "(not a string)");
    }
    return out;
}

static json_t *import_targets(store_txn *txn, const json_t *t, json_t *errors)
{
    json_t *out = json_object();
    if (!t)
        return out;
    if (!json_is_object(t)) {
        job_err_add(errors, "/job/targets", NULL, "targets", 0, 0,
                    "targets must be {names, groups, selector}");
        return out;
    }
    if (json_object_get(t, "names"))
        json_object_set_new(out, "ids",
                            ids_of(txn, "targets_by_name", json_object_get(t, "names"), "target",
                                   "/job/targets/names", errors));
    if (json_object_get(t, "groups"))
        json_object_set_new(out, "groups",
                            ids_of(txn, "groups_by_name", json_object_get(t, "groups"), "group",
                                   "/job/targets/groups", errors));
    if (json_object_get(t, "selector"))
        json_object_set(out, "selector", json_object_get(t, "selector"));
    return out;
}

static void import_secrets(store_txn *txn, const json_t *params, json_t *errors)
{
    size_t i;
    json_t *p;
    json_array_foreach(params, i, p)
    {
        const char *def = json_string_value(json_object_get(p, "default"));
        bool secret = json_is_true(json_object_get(p, "secret")) ||
                      (json_is_string(json_object_get(p, "type")) &&
                       strcmp(json_string_value(json_object_get(p, "type")), "secret") == 0);
        char id[40], path[64];
        if (!secret || !def || strlen(def) >= 256)
            continue;
        if (store_index_get(txn, "credentials_by_name", def, id) < 0) {
            snprintf(path, sizeof(path), "/job/parameters/%zu/default", i);
            job_err_add(errors, path, NULL, "default", 0, 0, "no credential named '%s' here", def);
        }
    }
}

int job_import(store_txn *txn, const json_t *doc, json_t **body, json_t **errors)
{
    *body = NULL;
    *errors = json_array();
    const char *format = json_string_value(json_object_get(doc, "format"));
    const json_t *job = json_object_get(doc, "job");
    if (!format || strcmp(format, JOB_EXPORT_FORMAT) != 0 || !json_is_object(job)) {
        job_err_add(*errors, "/format", NULL, "format", 0, 0,
                    "not an exported job: want {\"format\": \"%s\", \"job\": {...}}",
                    JOB_EXPORT_FORMAT);
        return OPSC_ESCHEMA;
    }
    json_t *b = json_deep_copy(job);
    if (!b)
        return OPSC_ENOMEM;
    json_object_set_new(b, "targets",
                        import_targets(txn, json_object_get(job, "targets"), *errors));
    import_secrets(txn, json_object_get(job, "parameters"), *errors);
    if (json_array_size(*errors) > 0) {
        json_decref(b);
        return OPSC_ESCHEMA;
    }
    json_decref(*errors);
    *errors = NULL;
    *body = b;
    return 0;
}
