/* steptype.c - checking a step library's descriptor and compiling its schemas and templates. */
#include "steptype.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#define HAS_MEMBER(t, m) ((t)->size >= offsetof(opsc_step_type, m) + sizeof((t)->m))

static bool name_ok(const char *s, bool dots)
{
    if (!s || !*s || *s == '.')
        return false;
    for (const char *p = s; *p; p++) {
        bool ok = islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' ||
                  (dots && *p == '.' && p[1] && p[1] != '.');
        if (!ok)
            return false;
    }
    return true;
}

static bool version_ok(const char *v)
{
    int parts = 0;
    const char *p = v;
    while (p && parts < 3) {
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
        parts++;
        if (parts < 3 && *p++ != '.')
            return false;
    }
    return parts == 3 && (*p == '\0' || *p == '-' || *p == '+');
}

static bool name_in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, ","), end = len;
        while (end > 0 && p[end - 1] == ' ')
            end--;
        if (end == n && strncmp(p, name, n) == 0)
            return true;
        p += len + (p[len] == ',');
    }
    return false;
}

static int families(steptype *st, char *err, size_t errlen)
{
    const char *f = st->desc->os_families;
    bool imperative = st->desc->run != NULL;
    if (!f) { /* any: imperative steps run anywhere, declarative ones where they have a template */
        st->linux_ok = imperative || st->desc->posix_template;
        st->windows_ok = imperative || st->desc->powershell_template;
        return 0;
    }
    for (const char *p = f; *p;) {
        size_t n = strcspn(p, ",");
        if (n == 5 && strncmp(p, "linux", 5) == 0)
            st->linux_ok = true;
        else if (n == 7 && strncmp(p, "windows", 7) == 0)
            st->windows_ok = true;
        else {
            snprintf(err, errlen, "%s: os_families '%s': use linux, windows or both", st->name, f);
            return OPSC_EINVAL;
        }
        p += n + (p[n] == ',');
    }
    return 0;
}

static int compile_schema(steptype *st, const char *text, const char *field, jschema **out,
                          char *err, size_t errlen)
{
    char why[384];
    if (!text)
        return 0;
    int rc = jschema_compile_text(out, text, why, sizeof(why));
    if (rc < 0)
        snprintf(err, errlen, "%s: %s: %s", st->name, field, why);
    return rc;
}

static int check_raw_params(steptype *st, char *err, size_t errlen)
{
    const json_t *props = st->params ? jschema_properties(st->params) : NULL;
    for (const char *p = st->raw_params; p && *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, ","), end = n;
        while (end > 0 && p[end - 1] == ' ')
            end--;
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)(end < 63 ? end : 63), p);
        const json_t *prop = json_object_get(props, name);
        const char *type = json_string_value(json_object_get(prop, "type"));
        if (!type || strcmp(type, "string") != 0) {
            snprintf(err, errlen, "%s: raw_params: '%s' is not a string parameter", st->name, name);
            return OPSC_EINVAL;
        }
        p += n + (p[n] == ',');
    }
    return 0;
}

static int compile_template(steptype *st, const char *text, tpl_mode mode, const char *field,
                            tpl **out, char *err, size_t errlen)
{
    tpl_opts opts = {mode, st->raw_params, st->params ? jschema_properties(st->params) : NULL};
    tpl_err te;
    json_t *none = NULL;
    if (st->params && !opts.known_params) /* a schema without properties: no parameter exists */
        opts.known_params = none = json_object();
    int rc = tpl_compile(out, text, strlen(text), &opts, &te);
    json_decref(none);
    if (rc < 0)
        snprintf(err, errlen, "%s: %s %d:%d: %s", st->name, field, te.line, te.col, te.msg);
    return rc;
}

static int check_form(steptype *st, char *err, size_t errlen)
{
    const opsc_step_type *t = st->desc;
    bool has_tpl = t->posix_template || t->powershell_template;
    const char *why = NULL;
    if (t->run && has_tpl)
        why = "has both run() and templates";
    else if (!t->run && !has_tpl)
        why = "has neither run() nor a template";
    else if (!t->run && st->linux_ok && !t->posix_template)
        why = "supports linux but has no posix_template";
    else if (!t->run && st->windows_ok && !t->powershell_template)
        why = "supports windows but has no powershell_template";
    else if ((unsigned)t->output_rule > OPSC_OUTPUT_STDOUT_KEY_VALUE)
        why = "has an unknown output_rule";
    else if (!st->linux_ok && !st->windows_ok)
        why = "supports no OS family";
    if (why) {
        snprintf(err, errlen, "%s: %s", st->name, why);
        return OPSC_EINVAL;
    }
    return 0;
}

static int steptype_compile(steptype *st, const opsc_steplib *lib, const opsc_step_type *t,
                            bool shell_check, char *err, size_t errlen)
{
    memset(st, 0, sizeof(*st));
    st->desc = t;
    snprintf(st->name, sizeof(st->name), "%s.%s", lib->name, t && t->name ? t->name : "?");
    if (!t || t->size < offsetof(opsc_step_type, run) + sizeof(t->run) || !name_ok(t->name, true)) {
        snprintf(err, errlen, "%s: bad step type descriptor or name (want [a-z0-9_.]+)", st->name);
        return OPSC_EINVAL;
    }
    st->raw_params = HAS_MEMBER(t, raw_params) ? t->raw_params : NULL;
    int rc = families(st, err, errlen);
    if (rc < 0 || (rc = check_form(st, err, errlen)) < 0 ||
        (rc = compile_schema(st, t->params_schema, "params_schema", &st->params, err, errlen)) <
            0 ||
        (rc = compile_schema(st, t->outputs_schema, "outputs_schema", &st->outputs, err, errlen)) <
            0 ||
        (rc = check_raw_params(st, err, errlen)) < 0)
        return rc;
    if (!t->run && st->linux_ok &&
        ((rc = compile_template(st, t->posix_template, TPL_POSIX, "posix_template", &st->posix, err,
                                errlen)) < 0 ||
         (shell_check && (rc = steptype_check_posix(st, err, errlen)) < 0)))
        return rc;
    if (!t->run && st->windows_ok &&
        (rc = compile_template(st, t->powershell_template, TPL_POWERSHELL, "powershell_template",
                               &st->powershell, err, errlen)) < 0)
        return rc;
    return 0;
}

static void steptype_clear(steptype *st)
{
    jschema_free(st->params);
    jschema_free(st->outputs);
    tpl_free(st->posix);
    tpl_free(st->powershell);
}

static int compile_lib(steplib **out, const opsc_steplib *lib, bool shell_check, char *err,
                       size_t errlen)
{
    *out = NULL;
    if (!lib || lib->size < sizeof(opsc_steplib) || !name_ok(lib->name, false) || !lib->version ||
        !version_ok(lib->version) || !lib->types) {
        snprintf(err, errlen,
                 "step library '%s': bad descriptor, name ([a-z0-9_]+) or version "
                 "(x.y.z)",
                 lib && lib->name ? lib->name : "?");
        return OPSC_EINVAL;
    }
    size_t n = 0;
    while (lib->types[n])
        n++;
    steplib *l = calloc(1, sizeof(*l));
    if (!l || !(l->types = calloc(n ? n : 1, sizeof(*l->types)))) {
        free(l);
        return OPSC_ENOMEM;
    }
    l->desc = lib;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = steptype_compile(&l->types[i], lib, lib->types[i], shell_check, err, errlen);
        l->ntypes = i + 1;
        for (size_t k = 0; k < i && rc == 0; k++)
            if (strcmp(l->types[k].name, l->types[i].name) == 0) {
                snprintf(err, errlen, "%s: defined twice", l->types[i].name);
                rc = OPSC_EEXIST;
            }
    }
    if (rc < 0) {
        steplib_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

int steplib_compile(steplib **out, const opsc_steplib *lib, char *err, size_t errlen)
{
    return compile_lib(out, lib, true, err, errlen);
}

int steplib_compile_bundled(steplib **out, const opsc_steplib *lib, char *err, size_t errlen)
{
    return compile_lib(out, lib, false, err, errlen);
}

void steplib_free(steplib *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->ntypes; i++)
        steptype_clear(&l->types[i]);
    free(l->types);
    free(l);
}

const steptype *steplib_find(const steplib *l, const char *step_name)
{
    for (size_t i = 0; i < l->ntypes; i++)
        if (strcmp(l->types[i].desc->name, step_name) == 0)
            return &l->types[i];
    return NULL;
}

bool steptype_supports(const steptype *st, const char *os_family)
{
    if (!os_family)
        return false;
    return strcmp(os_family, "linux") == 0     ? st->linux_ok
           : strcmp(os_family, "windows") == 0 ? st->windows_ok
                                               : false;
}

const tpl *steptype_template(const steptype *st, const char *os_family)
{
    if (!steptype_supports(st, os_family))
        return NULL;
    return strcmp(os_family, "linux") == 0 ? st->posix : st->powershell;
}

/* ---- rendering a job's parameter values --------------------------------------------------- */

static bool has_tags(const char *s)
{
    return strstr(s, "{{") || strstr(s, "{%") || strstr(s, "{#");
}

static int render_value(json_t *v, const tpl_opts *opts, const json_t *ctx, const char *field,
                        char *err, size_t errlen, json_t **out);

static int render_string(const json_t *v, const tpl_opts *opts, const json_t *ctx,
                         const char *field, char *err, size_t errlen, json_t **out)
{
    const char *text = json_string_value(v);
    if (!has_tags(text)) {
        *out = json_incref((json_t *)v);
        return 0;
    }
    tpl *t;
    tpl_err te;
    char *rendered = NULL;
    int rc = tpl_compile(&t, text, json_string_length(v), opts, &te);
    if (rc == 0) {
        rc = tpl_render_str(t, ctx, &rendered, &te);
        tpl_free(t);
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s %d:%d: %s", field, te.line, te.col, te.msg);
        return rc;
    }
    *out = json_string(rendered);
    free(rendered);
    if (!*out) {
        snprintf(err, errlen, "%s: the result is not valid UTF-8", field);
        return OPSC_EINVAL;
    }
    return 0;
}

static int render_value(json_t *v, const tpl_opts *opts, const json_t *ctx, const char *field,
                        char *err, size_t errlen, json_t **out)
{
    char sub[256];
    int rc = 0;
    if (json_is_string(v))
        return render_string(v, opts, ctx, field, err, errlen, out);
    if (json_is_array(v)) {
        *out = json_array();
        for (size_t i = 0; *out && rc == 0 && i < json_array_size(v); i++) {
            json_t *item;
            snprintf(sub, sizeof(sub), "%s[%zu]", field, i);
            if ((rc = render_value(json_array_get(v, i), opts, ctx, sub, err, errlen, &item)) == 0)
                json_array_append_new(*out, item);
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *m;
        *out = json_object();
        json_object_foreach(v, k, m)
        {
            json_t *item;
            snprintf(sub, sizeof(sub), "%s.%s", field, k);
            if (rc == 0 && *out && (rc = render_value(m, opts, ctx, sub, err, errlen, &item)) == 0)
                json_object_set_new(*out, k, item);
        }
    } else {
        *out = json_incref(v);
    }
    if (rc == 0 && !*out)
        rc = OPSC_ENOMEM;
    if (rc < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int steptype_render_params(const steptype *st, const json_t *params, const json_t *ctx,
                           const char *os_family, json_t **out, char *err, size_t errlen)
{
    tpl_mode shell = os_family && strcmp(os_family, "windows") == 0 ? TPL_POWERSHELL : TPL_POSIX;
    const char *k;
    json_t *v;
    int rc = 0;
    *out = json_object();
    if (!*out)
        return OPSC_ENOMEM;
    json_object_foreach((json_t *)params, k, v)
    {
        char field[160];
        json_t *r;
        /* A raw parameter is shell code: values inserted into it must be quoted. */
        bool raw = st->raw_params && name_in_list(st->raw_params, k) && json_is_string(v);
        tpl_opts opts = {raw ? shell : TPL_TEXT, NULL, NULL};
        snprintf(field, sizeof(field), "params.%s", k);
        if ((rc = render_value(v, &opts, ctx, field, err, errlen, &r)) < 0)
            break;
        json_object_set_new(*out, k, r);
    }
    if (rc < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

/* The messages above read "<lib>.<step>: <field>[ <line>:<col>]: <reason>"; an API client
 * wants those parts apart, as job validation gives them. */
json_t *steptype_error_details(const char *msg)
{
    static const char *const fields[] = {"params_schema",       "outputs_schema", "posix_template",
                                         "powershell_template", "raw_params",     "os_families"};
    for (size_t i = 0; msg && i < sizeof(fields) / sizeof(*fields); i++) {
        char needle[40];
        snprintf(needle, sizeof(needle), ": %s", fields[i]);
        const char *f = strstr(msg, needle);
        if (!f)
            continue;
        const char *step = f;
        while (step > msg && !(step[-1] == ' ' && step - 1 > msg && step[-2] == ':'))
            step--;
        const char *after = f + strlen(needle);
        int line = 0, col = 0, used = 0;
        if (sscanf(after, " %d:%d%n", &line, &col, &used) == 2)
            after += used;
        if (strncmp(after, ": ", 2) != 0 || !strchr(step, '.') || strchr(step, '.') > f)
            continue;
        json_t *d = json_pack("{s:s%, s:s, s:s}", "step", step, (size_t)(f - step), "field",
                              fields[i], "message", after + 2);
        if (d && line > 0)
            json_object_set_new(d, "position", json_sprintf("%d:%d", line, col));
        return d;
    }
    return NULL;
}
