/* job_steps.c - a job's steps checked at save: ids, types, parameters, templates, `when`. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "job.h"
#include "plugin_host.h"
#include "steptype.h"

static bool has_tags(const char *s)
{
    return strstr(s, "{{") || strstr(s, "{%") || strstr(s, "{#");
}

/* ---- templated values --------------------------------------------------------------------- */

static void pointer_append(char *buf, size_t n, const char *base, const char *key)
{
    size_t o = (size_t)snprintf(buf, n, "%s/", base);
    for (const char *p = key; *p && o + 3 < n; p++) { /* RFC 6901 escapes */
        if (*p == '~' || *p == '/') {
            buf[o++] = '~';
            buf[o++] = *p == '~' ? '0' : '1';
        } else {
            buf[o++] = *p;
        }
    }
    buf[o < n ? o : n - 1] = '\0';
}

void job_templated_paths(const json_t *v, const char *base, json_t *paths)
{
    char sub[512];
    if (json_is_string(v)) {
        if (has_tags(json_string_value(v)))
            json_array_append_new(paths, json_string(base));
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            snprintf(sub, sizeof(sub), "%s/%zu", base, i);
            job_templated_paths(m, sub, paths);
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)v, k, m)
        {
            pointer_append(sub, sizeof(sub), base, k);
            job_templated_paths(m, sub, paths);
        }
    }
}

bool job_path_deferred(const json_t *paths, const char *path)
{
    size_t i;
    json_t *p;
    json_array_foreach(paths, i, p)
    {
        const char *d = json_string_value(p);
        size_t n = strlen(d);
        if (strncmp(path, d, n) == 0 && (path[n] == '\0' || path[n] == '/'))
            return true;
    }
    return false;
}

/* `name` is one of the ','-separated names of `list` (spaces around them ignored). */
static bool in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    const char *p = n ? list : NULL; /* "" is found everywhere and never moves on */
    while (p && (p = strstr(p, name))) {
        const char *before = p, *after = p + n;
        while (before > list && before[-1] == ' ')
            before--;
        while (*after == ' ')
            after++;
        if ((before == list || before[-1] == ',') && (*after == ',' || *after == '\0'))
            return true;
        p += n;
    }
    return false;
}

/* A raw parameter is shell code: it must compile for one of the step's shells. */
static int compile_raw(const steptype *st, const char *text, const json_t *known, tpl_err *te)
{
    tpl_mode modes[2];
    int n = 0;
    if (st->linux_ok)
        modes[n++] = TPL_POSIX;
    if (st->windows_ok)
        modes[n++] = TPL_POWERSHELL;
    int rc = OPSC_ESYNTAX;
    tpl_err first = {0};
    for (int i = 0; i < n && rc < 0; i++) {
        tpl_opts o = {modes[i], NULL, known};
        tpl *t = NULL;
        rc = tpl_compile(&t, text, strlen(text), &o, i == 0 ? &first : te);
        tpl_free(t);
    }
    if (rc < 0)
        *te = first;
    return rc;
}

static void check_templates(const steptype *st, const json_t *v, bool raw, const json_t *known,
                            const char *path, const char *field, const char *step_id,
                            json_t *errors)
{
    char sub[512], subf[256];
    if (json_is_string(v) && has_tags(json_string_value(v))) {
        const char *text = json_string_value(v);
        tpl_err te = {0};
        int rc;
        if (raw) {
            rc = compile_raw(st, text, known, &te);
        } else {
            tpl_opts o = {TPL_TEXT, NULL, known};
            tpl *t = NULL;
            rc = tpl_compile(&t, text, json_string_length(v), &o, &te);
            tpl_free(t);
        }
        if (rc < 0)
            job_err_add(errors, path, step_id, field, te.line, te.col, "%s", te.msg);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            snprintf(sub, sizeof(sub), "%s/%zu", path, i);
            snprintf(subf, sizeof(subf), "%s[%zu]", field, i);
            check_templates(st, m, false, known, sub, subf, step_id, errors);
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)v, k, m)
        {
            pointer_append(sub, sizeof(sub), path, k);
            snprintf(subf, sizeof(subf), "%s.%s", field, k);
            check_templates(st, m, false, known, sub, subf, step_id, errors);
        }
    }
}

/* "/port/0" -> "params.port[0]"-ish: the field name users see. */
static void field_of(const char *pointer, char *buf, size_t n)
{
    size_t o = (size_t)snprintf(buf, n, "params");
    for (const char *p = pointer; *p && o + 2 < n; p++)
        buf[o++] = *p == '/' ? '.' : *p;
    buf[o < n ? o : n - 1] = '\0';
}

void job_step_params_check(const steptype *st, const json_t *params, const json_t *known_params,
                           const char *base, const char *step_id, json_t *errors)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/params", base);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)params, k, v)
    {
        char sub[512], field[256];
        pointer_append(sub, sizeof(sub), path, k);
        snprintf(field, sizeof(field), "params.%s", k);
        bool raw = st->raw_params && in_list(st->raw_params, k) && json_is_string(v);
        check_templates(st, v, raw, known_params, sub, field, step_id, errors);
    }
    if (!st->params) {
        if (json_object_size(params) > 0)
            job_err_add(errors, path, step_id, "params", 0, 0, "%s takes no parameters", st->name);
        return;
    }
    json_t *deferred = json_array(), *copy = json_deep_copy(params);
    job_templated_paths(params, "", deferred);
    jschema_err errs[32];
    size_t ne = 0;
    jschema_validate(st->params, copy, 0, "", errs, 32, &ne);
    for (size_t i = 0; i < ne && i < 32; i++) {
        if (job_path_deferred(deferred, errs[i].path))
            continue;
        char p2[600], field[300];
        snprintf(p2, sizeof(p2), "%.256s%.256s", path, errs[i].path);
        field_of(errs[i].path, field, sizeof(field));
        job_err_add(errors, p2, step_id, field, 0, 0, "%s", errs[i].msg);
    }
    json_decref(copy);
    json_decref(deferred);
}

/* ---- `when` -------------------------------------------------------------------------------- */

#define WHEN_PREFIX "{% if "
#define WHEN_SUFFIX " %}1{% endif %}"
#define WHEN_MAX    1024

static char *when_wrap(const char *expr)
{
    size_t n = strlen(expr);
    char *t = malloc(n + sizeof(WHEN_PREFIX) + sizeof(WHEN_SUFFIX));
    if (t) {
        memcpy(t, WHEN_PREFIX, sizeof(WHEN_PREFIX) - 1);
        memcpy(t + sizeof(WHEN_PREFIX) - 1, expr, n);
        memcpy(t + sizeof(WHEN_PREFIX) - 1 + n, WHEN_SUFFIX, sizeof(WHEN_SUFFIX));
    }
    return t;
}

static int when_tags(const char *expr, int *col)
{
    static const char *const tags[] = {"{{", "}}", "{%", "%}", "{#", "#}"};
    for (size_t i = 0; i < 6; i++) {
        const char *p = strstr(expr, tags[i]);
        if (p) {
            *col = (int)(p - expr) + 1;
            return OPSC_ESYNTAX;
        }
    }
    return 0;
}

/* Each `steps.<id>` or `steps['<id>']` outside string literals must name an earlier step. */
static int when_step_refs(const char *expr, const json_t *earlier, int *col, char *msg,
                          size_t msglen)
{
    char quote = 0;
    for (const char *p = expr; *p; p++) {
        if (quote) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == quote)
                quote = 0;
            continue;
        }
        if (*p == '\'' || *p == '"') {
            quote = *p;
            continue;
        }
        bool start = p == expr || !(isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == '.');
        if (!start || strncmp(p, "steps", 5) != 0 || (p[5] != '.' && p[5] != '['))
            continue;
        const char *q = p + 6;
        char id[JOB_ID_MAX + 1];
        size_t n = 0;
        char end = 0;
        if (p[5] == '[' && (*q == '\'' || *q == '"'))
            end = *q++;
        while (*q && n < JOB_ID_MAX &&
               (end ? *q != end : (isalnum((unsigned char)*q) || *q == '_' || *q == '-')))
            id[n++] = *q++;
        id[n] = '\0';
        bool found = false;
        size_t i;
        json_t *e;
        json_array_foreach(earlier, i, e) found = found || strcmp(json_string_value(e), id) == 0;
        if (!found) {
            *col = (int)(p - expr) + 1;
            snprintf(msg, msglen, "'%s' is not an earlier step of this job", id);
            return OPSC_ESYNTAX;
        }
        p = q - 1;
    }
    return 0;
}

static int when_tpl(const char *expr, const json_t *known, tpl **out, tpl_err *te)
{
    char *text = when_wrap(expr);
    if (!text)
        return OPSC_ENOMEM;
    tpl_opts o = {TPL_TEXT, NULL, known};
    int rc = tpl_compile(out, text, strlen(text), &o, te);
    free(text);
    return rc;
}

/* A template position back in the expression's own columns. */
static int when_col(const tpl_err *te, const char *expr)
{
    int c = te->line == 1 ? te->col - (int)strlen(WHEN_PREFIX) : 0;
    return c < 1 ? 1 : c > (int)strlen(expr) ? (int)strlen(expr) : c;
}

int job_when_check(const char *expr, const json_t *earlier, const json_t *known_params, int *col,
                   char *msg, size_t msglen)
{
    *col = 1;
    if (strlen(expr) == 0 || strlen(expr) > WHEN_MAX) {
        snprintf(msg, msglen, "when must be an expression of 1 to %d bytes", WHEN_MAX);
        return OPSC_ESYNTAX;
    }
    if (when_tags(expr, col) < 0) {
        snprintf(msg, msglen, "when is an expression, without {{ }} or {%% %%}");
        return OPSC_ESYNTAX;
    }
    tpl *t = NULL;
    tpl_err te = {0};
    int rc = when_tpl(expr, known_params, &t, &te);
    tpl_free(t);
    if (rc < 0) {
        *col = when_col(&te, expr);
        snprintf(msg, msglen, "%s", te.msg);
        return rc;
    }
    return when_step_refs(expr, earlier, col, msg, msglen);
}

int job_when_compile(const char *expr, tpl **out, char *err, size_t errlen)
{
    int col;
    tpl_err te = {0};
    int rc = when_tags(expr, &col) < 0 ? OPSC_ESYNTAX : when_tpl(expr, NULL, out, &te);
    if (rc < 0)
        snprintf(err, errlen, "when %d: %s", when_col(&te, expr),
                 te.msg[0] ? te.msg : "not an expression");
    return rc;
}

int job_when_eval(const tpl *when, const json_t *ctx, bool *out, char *err, size_t errlen)
{
    char *r = NULL;
    tpl_err te = {0};
    int rc = tpl_render_str(when, ctx, &r, &te);
    if (rc < 0) {
        snprintf(err, errlen, "when: %s", te.msg);
        free(r);
        return rc;
    }
    *out = strcmp(r, "1") == 0;
    free(r);
    return 0;
}

/* ---- steps ------------------------------------------------------------------------------ */

static bool step_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > JOB_ID_MAX || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
        return false;
    for (const char *p = s; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_' && *p != '-')
            return false;
    return true;
}

static void step_int(json_t *s, const char *key, json_int_t min, json_int_t max, json_int_t def,
                     const char *base, const char *id, json_t *errors)
{
    json_t *v = json_object_get(s, key);
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", base, key);
    if (!v || json_is_null(v))
        json_object_set_new(s, key, json_integer(def));
    else if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        job_err_add(errors, path, id, key, 0, 0, "%s must be an integer from %lld to %lld", key,
                    (long long)min, (long long)max);
}

static void step_fields(json_t *s, const char *base, const char *id, json_t *errors)
{
    static const char *const known[] = {"id",        "name",       "type",          "params",
                                        "timeout_s", "retries",    "retry_delay_s", "on_failure",
                                        "when",      "idempotent", NULL};
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v)
    {
        bool ok = false;
        for (const char *const *q = known; *q && !ok; q++)
            ok = strcmp(*q, k) == 0;
        if (!ok)
            job_err_add(errors, base, id, k, 0, 0, "unknown step field '%s'", k);
    }
    json_t *name = json_object_get(s, "name");
    if (name && (!json_is_string(name) || json_string_length(name) > 200))
        job_err_add(errors, base, id, "name", 0, 0, "name must be a string of at most 200 bytes");
    step_int(s, "timeout_s", 0, 7LL * 86400, 0, base, id, errors);
    step_int(s, "retries", 0, 100, 0, base, id, errors);
    step_int(s, "retry_delay_s", 0, 3600, 5, base, id, errors);
    json_t *idem = json_object_get(s, "idempotent");
    if (!idem || json_is_null(idem))
        json_object_set_new(s, "idempotent", json_false());
    else if (!json_is_boolean(idem))
        job_err_add(errors, base, id, "idempotent", 0, 0, "idempotent must be true or false");
    json_t *of = json_object_get(s, "on_failure");
    if (!of || json_is_null(of))
        json_object_set_new(s, "on_failure", json_string("stop"));
    else if (!json_is_string(of) ||
             (strcmp(json_string_value(of), "stop") && strcmp(json_string_value(of), "continue")))
        job_err_add(errors, base, id, "on_failure", 0, 0, "on_failure must be stop or continue");
}

static void step_when(json_t *s, const json_t *earlier, const json_t *known, const char *base,
                      const char *id, json_t *errors)
{
    json_t *w = json_object_get(s, "when");
    if (!w || json_is_null(w)) {
        json_object_del(s, "when");
        return;
    }
    char path[128], msg[320];
    snprintf(path, sizeof(path), "%s/when", base);
    int col = 0;
    if (!json_is_string(w))
        job_err_add(errors, path, id, "when", 0, 0, "when must be an expression (a string)");
    else if (job_when_check(json_string_value(w), earlier, known, &col, msg, sizeof(msg)) < 0)
        job_err_add(errors, path, id, "when", 1, col, "%s", msg);
}

static void check_step(plugin_host *h, json_t *s, size_t i, json_t *earlier, const json_t *known,
                       json_t *errors)
{
    char base[64];
    snprintf(base, sizeof(base), "/steps/%zu", i);
    if (!json_is_object(s)) {
        job_err_add(errors, base, NULL, NULL, 0, 0, "a step must be an object");
        return;
    }
    json_t *idv = json_object_get(s, "id");
    if (!idv || json_is_null(idv)) {
        char gen[32];
        snprintf(gen, sizeof(gen), "step%zu", i + 1);
        json_object_set_new(s, "id", json_string(gen));
    }
    const char *id = json_string_value(json_object_get(s, "id"));
    if (!id || !step_id_ok(id)) {
        job_err_add(errors, base, NULL, "id", 0, 0,
                    "a step id is 1 to %d characters [a-z0-9_-], starting with a letter or digit",
                    JOB_ID_MAX);
        id = NULL;
    } else {
        size_t k;
        json_t *e;
        json_array_foreach(earlier, k, e) if (strcmp(json_string_value(e), id) == 0)
            job_err_add(errors, base, id, "id", 0, 0, "step id '%s' is used twice", id);
    }
    step_fields(s, base, id, errors);
    step_when(s, earlier, known, base, id, errors);
    json_t *params = json_object_get(s, "params");
    if (!params || json_is_null(params))
        json_object_set_new(s, "params", params = json_object());
    const char *type = json_string_value(json_object_get(s, "type"));
    char err[320];
    const steptype *st = type ? plugin_host_steptype(h, type, NULL, err, sizeof(err)) : NULL;
    char tpath[80];
    snprintf(tpath, sizeof(tpath), "%s/type", base);
    if (!type)
        job_err_add(errors, tpath, id, "type", 0, 0,
                    "type is required: a step type such as core.shell.command");
    else if (!st)
        job_err_add(errors, tpath, id, "type", 0, 0, "%s", err);
    if (!json_is_object(params))
        job_err_add(errors, base, id, "params", 0, 0, "params must be an object");
    else if (st)
        job_step_params_check(st, params, known, base, id, errors);
    if (id)
        json_array_append_new(earlier, json_string(id));
}

void job_steps_check(plugin_host *h, json_t *rec, json_t *errors)
{
    json_t *steps = json_object_get(rec, "steps");
    if (!json_is_array(steps) || json_array_size(steps) == 0 ||
        json_array_size(steps) > JOB_MAX_STEPS) {
        job_err_add(errors, "/steps", NULL, "steps", 0, 0, "steps must be a list of 1 to %d steps",
                    JOB_MAX_STEPS);
        return;
    }
    /* Templates may name only the job's parameters. */
    json_t *known = json_object();
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(rec, "parameters"), i, p)
    {
        const char *n = json_string_value(json_object_get(p, "name"));
        if (n)
            json_object_set_new(known, n, json_true());
    }
    json_t *earlier = json_array();
    json_t *s;
    json_array_foreach(steps, i, s) check_step(h, s, i, earlier, known, errors);
    json_decref(earlier);
    json_decref(known);
}
