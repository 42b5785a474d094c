/* job_build.c - a job record from a request body: fields, parameters, targets; errors collected. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "fleet.h"
#include "job.h"

void job_err_add(json_t *errors, const char *path, const char *step, const char *field, int line,
                 int col, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *e = json_pack("{s:s, s:s}", "path", path ? path : "", "message", msg);
    if (!e)
        return;
    if (step && *step)
        json_object_set_new(e, "step", json_string(step));
    if (field && *field)
        json_object_set_new(e, "field", json_string(field));
    if (line > 0) {
        char pos[32];
        snprintf(pos, sizeof(pos), "%d:%d", line, col);
        json_object_set_new(e, "position", json_string(pos));
    }
    json_array_append_new(errors, e);
}

void job_err_summary(const json_t *errors, char *buf, size_t n)
{
    const json_t *e = json_array_get(errors, 0);
    const char *step = json_string_value(json_object_get(e, "step"));
    const char *field = json_string_value(json_object_get(e, "field"));
    const char *path = json_string_value(json_object_get(e, "path"));
    const char *pos = json_string_value(json_object_get(e, "position"));
    size_t more = json_array_size(errors) > 0 ? json_array_size(errors) - 1 : 0;
    char where[256];
    if (step)
        snprintf(where, sizeof(where), "step '%s'%s%s%s%s", step, field ? " " : "",
                 field ? field : "", pos ? " " : "", pos ? pos : "");
    else
        snprintf(where, sizeof(where), "%s", field ? field : path && *path ? path : "job");
    snprintf(buf, n, "%s: %s%s", where,
             e ? json_string_value(json_object_get(e, "message")) : "invalid",
             more ? " (and more errors in details)" : "");
}

/* ---- small field checks -------------------------------------------------------------------- */

static bool is_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
            return false;
    return isalnum((unsigned char)s[0]);
}

static bool is_ident(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || !(islower((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
            return false;
    return true;
}

/* An optional integer member in [min, max]; absent takes `def`. */
static void int_field(json_t *rec, const char *key, json_int_t min, json_int_t max, json_int_t def,
                      const char *base, json_t *errors)
{
    json_t *v = json_object_get(rec, key);
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", base, key);
    if (!v || json_is_null(v)) {
        json_object_set_new(rec, key, json_integer(def));
        return;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        job_err_add(errors, path, NULL, key, 0, 0, "%s must be an integer from %lld to %lld", key,
                    (long long)min, (long long)max);
}

static void bool_field(json_t *rec, const char *key, bool def, const char *base, json_t *errors)
{
    json_t *v = json_object_get(rec, key);
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", base, key);
    if (!v || json_is_null(v))
        json_object_set_new(rec, key, json_boolean(def));
    else if (!json_is_boolean(v))
        job_err_add(errors, path, NULL, key, 0, 0, "%s must be true or false", key);
}

static void string_field(json_t *rec, const char *key, size_t max, bool required, const char *base,
                         json_t *errors)
{
    json_t *v = json_object_get(rec, key);
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", base, key);
    if (!v || json_is_null(v)) {
        json_object_del(rec, key);
        if (required)
            job_err_add(errors, path, NULL, key, 0, 0, "%s is required", key);
        return;
    }
    if (!json_is_string(v) || json_string_length(v) > max)
        job_err_add(errors, path, NULL, key, 0, 0, "%s must be a string of at most %zu bytes", key,
                    max);
}

/* ---- parameters --------------------------------------------------------------------------- */

static const char *const param_types[] = {"string", "int", "bool", "choice", "secret", NULL};

static bool type_known(const char *t)
{
    for (const char *const *p = param_types; *p; p++)
        if (strcmp(*p, t) == 0)
            return true;
    return false;
}

/* The JSON Schema of one parameter's value. */
static json_t *param_schema(const json_t *p)
{
    const char *type = json_string_value(json_object_get(p, "type"));
    json_t *s = json_object();
    if (strcmp(type, "int") == 0) {
        json_object_set_new(s, "type", json_string("integer"));
    } else if (strcmp(type, "bool") == 0) {
        json_object_set_new(s, "type", json_string("boolean"));
    } else if (strcmp(type, "choice") == 0) {
        json_object_set_new(s, "type", json_string("string"));
        json_object_set(s, "enum", json_object_get(p, "choices"));
    } else {
        json_object_set_new(s, "type", json_string("string"));
        if (strcmp(type, "secret") == 0)
            json_object_set_new(s, "minLength", json_integer(1));
    }
    json_t *pattern = json_object_get(p, "pattern");
    if (json_is_string(pattern))
        json_object_set(s, "pattern", pattern);
    json_t *def = json_object_get(p, "default");
    if (def && !json_is_null(def))
        json_object_set(s, "default", def);
    return s;
}

json_t *job_params_schema(const json_t *parameters)
{
    json_t *props = json_object(), *req = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(parameters, i, p)
    {
        const char *name = json_string_value(json_object_get(p, "name"));
        if (!name)
            continue;
        json_object_set_new(props, name, param_schema(p));
        json_t *def = json_object_get(p, "default");
        if (json_is_true(json_object_get(p, "required")) && (!def || json_is_null(def)))
            json_array_append_new(req, json_string(name));
    }
    return json_pack("{s:s, s:b, s:o, s:o}", "type", "object", "additionalProperties", 0,
                     "properties", props, "required", req);
}

static void param_choices(json_t *p, const char *path, json_t *errors)
{
    json_t *c = json_object_get(p, "choices");
    size_t i;
    json_t *v;
    bool ok = json_is_array(c) && json_array_size(c) > 0 && json_array_size(c) <= 1000;
    json_array_foreach(c, i, v) ok = ok && json_is_string(v);
    if (!ok)
        job_err_add(errors, path, NULL, "choices", 0, 0,
                    "a choice parameter needs choices: a list of 1 to 1000 strings");
}

/* The value schema compiles (a pattern may not) and the default fits it. */
static void param_default(json_t *p, const char *path, json_t *errors)
{
    json_t *def = json_object_get(p, "default");
    json_t *s = param_schema(p);
    json_object_del(s, "default");
    jschema *js = NULL;
    char why[384];
    jschema_err e[1];
    size_t ne = 0;
    int rc = jschema_compile(&js, s, why, sizeof(why));
    if (rc < 0) /* only a pattern can break the schema */
        job_err_add(errors, path, NULL, "pattern", 0, 0, "pattern: %s", why);
    else if (def && !json_is_null(def) && jschema_validate(js, def, 0, "", e, 1, &ne) < 0 && ne > 0)
        job_err_add(errors, path, NULL, "default", 0, 0, "default: %s", e[0].msg);
    jschema_free(js);
    json_decref(s);
}

static void check_param(json_t *p, size_t i, json_t *seen, json_t *errors)
{
    char path[64];
    snprintf(path, sizeof(path), "/parameters/%zu", i);
    if (!json_is_object(p)) {
        job_err_add(errors, path, NULL, NULL, 0, 0, "a parameter must be an object");
        return;
    }
    static const char *const known[] = {"name",    "type",   "required",    "default", "pattern",
                                        "choices", "secret", "description", NULL};
    const char *k;
    json_t *v;
    json_object_foreach(p, k, v)
    {
        bool ok = false;
        for (const char *const *q = known; *q && !ok; q++)
            ok = strcmp(*q, k) == 0;
        if (!ok)
            job_err_add(errors, path, NULL, k, 0, 0, "unknown parameter field '%s'", k);
    }
    const char *name = json_string_value(json_object_get(p, "name"));
    if (!name || !is_ident(name)) {
        job_err_add(errors, path, NULL, "name", 0, 0,
                    "a parameter needs a name of 1 to 64 characters [a-z0-9_], not starting "
                    "with a digit");
        return;
    }
    if (json_object_get(seen, name))
        job_err_add(errors, path, NULL, "name", 0, 0, "parameter '%s' is defined twice", name);
    json_object_set_new(seen, name, json_true());
    json_t *type = json_object_get(p, "type");
    bool secret = json_is_true(json_object_get(p, "secret"));
    if (!type)
        json_object_set_new(p, "type", json_string(secret ? "secret" : "string"));
    const char *t = json_string_value(json_object_get(p, "type"));
    if (!t || !type_known(t)) {
        job_err_add(errors, path, NULL, "type", 0, 0,
                    "type must be string, int, bool, choice or secret");
        return;
    }
    if (secret && strcmp(t, "secret") != 0 && strcmp(t, "string") != 0) {
        job_err_add(errors, path, NULL, "secret", 0, 0,
                    "secret: true marks a secret reference; a %s cannot be one", t);
        return;
    }
    if (secret)
        json_object_set_new(p, "type", json_string(t = "secret"));
    json_object_set_new(p, "secret", json_boolean(strcmp(t, "secret") == 0));
    bool_field(p, "required", false, path, errors);
    string_field(p, "description", 4096, false, path, errors);
    json_t *pattern = json_object_get(p, "pattern");
    if (pattern && !json_is_null(pattern) &&
        (!json_is_string(pattern) || (strcmp(t, "string") != 0 && strcmp(t, "secret") != 0)))
        job_err_add(errors, path, NULL, "pattern", 0, 0,
                    "pattern is a regular expression for string parameters");
    if (strcmp(t, "choice") == 0)
        param_choices(p, path, errors);
    else if (json_object_get(p, "choices"))
        job_err_add(errors, path, NULL, "choices", 0, 0, "choices belong to choice parameters");
    param_default(p, path, errors);
}

static void check_params(json_t *rec, json_t *errors)
{
    json_t *ps = json_object_get(rec, "parameters");
    if (!ps || json_is_null(ps)) {
        json_object_set_new(rec, "parameters", json_array());
        return;
    }
    if (!json_is_array(ps) || json_array_size(ps) > JOB_MAX_PARAMS) {
        job_err_add(errors, "/parameters", NULL, "parameters", 0, 0,
                    "parameters must be a list of at most %d parameters", JOB_MAX_PARAMS);
        return;
    }
    json_t *seen = json_object();
    size_t i;
    json_t *p;
    json_array_foreach(ps, i, p) check_param(p, i, seen, errors);
    json_decref(seen);
}

/* ---- targets ---------------------------------------------------------------------------------- */

/* The fleet's own check: members, ids, and the selector parsed. */
static void check_targets(json_t *rec, json_t *errors)
{
    json_t *t = json_object_get(rec, "targets");
    char err[512];
    if (!t || json_is_null(t))
        json_object_set_new(rec, "targets", t = json_object());
    if (fleet_spec_check(t, err, sizeof(err)) < 0)
        job_err_add(errors, "/targets", NULL, "targets", 0, 0, "%s", err);
}

/* ---- the record --------------------------------------------------------------------------- */

static void check_top(json_t *rec, json_t *errors)
{
    static const char *const known[] = {
        "name",       "description", "parameters",       "targets", "steps",      "max_parallel",
        "batch_size", "timeout_s",   "allow_concurrent", "id",      "created_at", "updated_at",
        "version",    "created_by",  "updated_by",       NULL};
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(rec, tmp, k, v)
    {
        bool ok = false;
        for (const char *const *q = known; *q && !ok; q++)
            ok = strcmp(*q, k) == 0;
        if (!ok) {
            char path[160];
            snprintf(path, sizeof(path), "/%.150s", k);
            job_err_add(errors, path, NULL, k, 0, 0, "unknown job field '%s'", k);
        }
    }
    string_field(rec, "name", 128, true, "", errors);
    const char *name = json_string_value(json_object_get(rec, "name"));
    if (name && !is_name(name, 128))
        job_err_add(errors, "/name", NULL, "name", 0, 0,
                    "name: letters, digits, '.', '_' and '-', starting with a letter or digit");
    string_field(rec, "description", 4096, false, "", errors);
    int_field(rec, "max_parallel", 0, 100000, 0, "", errors);
    int_field(rec, "batch_size", 0, 100000, 0, "", errors);
    int_field(rec, "timeout_s", 0, 30LL * 86400, 0, "", errors);
    bool_field(rec, "allow_concurrent", false, "", errors);
}

int job_build(plugin_host *h, const json_t *body, const json_t *existing, json_t **out,
              json_t **errors)
{
    *out = NULL;
    *errors = json_array();
    json_t *rec = existing ? json_deep_copy(existing) : json_object();
    if (!rec || !*errors) {
        json_decref(rec);
        return OPSC_ENOMEM;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v)
    {
        if (strcmp(k, "id") == 0 || strcmp(k, "created_at") == 0 || strcmp(k, "updated_at") == 0 ||
            strcmp(k, "version") == 0 || strcmp(k, "created_by") == 0 ||
            strcmp(k, "updated_by") == 0)
            continue; /* read-only: ignored, as an edited GET answer is a fair PATCH */
        if (json_is_null(v))
            json_object_del(rec, k);
        else
            json_object_set_new(rec, k, json_deep_copy(v));
    }
    check_top(rec, *errors);
    check_params(rec, *errors);
    check_targets(rec, *errors);
    job_steps_check(h, rec, *errors);
    if (json_array_size(*errors) > 0) {
        json_decref(rec);
        return OPSC_ESCHEMA;
    }
    json_decref(*errors);
    *errors = NULL;
    *out = rec;
    return 0;
}
