/* jsonschema.c - compiling JSON Schemas into node trees and validating documents against them. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "jsonschema.h"

#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "strbuf.h"

enum {
    T_NULL = 1 << 0,
    T_BOOL = 1 << 1,
    T_OBJECT = 1 << 2,
    T_ARRAY = 1 << 3,
    T_NUMBER = 1 << 4,
    T_INTEGER = 1 << 5,
    T_STRING = 1 << 6,
};

#define PATTERN_MATCH_LIMIT 1000000u

typedef struct jsnode jsnode;

typedef struct jsprop {
    const char *name;
    jsnode *schema;
} jsprop;

typedef struct jslist {
    jsnode **v;
    size_t n;
} jslist;

struct jsnode {
    bool never;     /* the schema `false` */
    unsigned types; /* 0: any */
    jsprop *props;
    size_t nprops;
    const char **required;
    size_t nrequired;
    bool addl_forbidden;
    jsnode *addl, *names, *items, *not_;
    long long min_props, max_props, min_items, max_items, min_len, max_len; /* -1: unset */
    bool unique;
    pcre2_code *pattern;
    const char *pattern_src;
    bool has_min, has_max, has_xmin, has_xmax;
    double min, max, xmin, xmax, multiple;
    const json_t *enum_vals, *const_val, *def;
    jslist all, any, one;
};

struct jschema {
    json_t *src;
    jsnode *root;
    jsnode **nodes; /* every node, for freeing */
    size_t nnodes, cap;
    pcre2_match_context *mctx;
};

/* ---- compiling ------------------------------------------------------------------ */

typedef struct cstate {
    jschema *s;
    char *err;
    size_t errlen;
    char path[512];
    int depth;
} cstate;

static int cfail(cstate *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cfail(cstate *c, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->err)
        snprintf(c->err, c->errlen, "schema %s: %s", c->path[0] ? c->path : "/", msg);
    return OPSC_ESCHEMA;
}

static jsnode *new_node(cstate *c)
{
    jschema *s = c->s;
    if (s->nnodes == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        jsnode **v = realloc(s->nodes, cap * sizeof(*v));
        if (!v)
            return NULL;
        s->nodes = v;
        s->cap = cap;
    }
    jsnode *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->min_props = n->max_props = n->min_items = n->max_items = n->min_len = n->max_len = -1;
    s->nodes[s->nnodes++] = n;
    return n;
}

/* Append "/seg" (JSON Pointer escaped) to a path buffer; returns the old length. */
static size_t path_push(char *path, size_t cap, const char *seg)
{
    size_t len = strlen(path), o = len;
    if (o + 1 < cap)
        path[o++] = '/';
    for (const char *p = seg; *p && o + 2 < cap; p++) {
        if (*p == '~' || *p == '/') {
            path[o++] = '~';
            path[o++] = *p == '~' ? '0' : '1';
        } else {
            path[o++] = *p;
        }
    }
    path[o < cap ? o : cap - 1] = '\0';
    return len;
}

static int compile_node(cstate *c, json_t *j, jsnode **out);

static int compile_sub(cstate *c, const char *kw, const char *key, json_t *j, jsnode **out)
{
    size_t len = path_push(c->path, sizeof(c->path), kw);
    if (key)
        path_push(c->path, sizeof(c->path), key);
    int rc = compile_node(c, j, out);
    if (rc == 0)
        c->path[len] = '\0';
    return rc;
}

static int type_bit(cstate *c, const json_t *j, unsigned *bits)
{
    static const char *const names[] = {"null",   "boolean", "object", "array",
                                        "number", "integer", "string"};
    const char *name = json_string_value(j);
    for (int i = 0; name && i < 7; i++)
        if (strcmp(name, names[i]) == 0) {
            *bits |= 1u << i;
            return 0;
        }
    return cfail(c, "unknown type '%s'", name ? name : "(not a string)");
}

static int kw_type(cstate *c, jsnode *n, json_t *v)
{
    if (json_is_string(v))
        return type_bit(c, v, &n->types);
    if (!json_is_array(v) || json_array_size(v) == 0)
        return cfail(c, "'type' must be a type name or a non-empty list of them");
    size_t i;
    json_t *t;
    json_array_foreach(v, i, t)
    {
        int rc = type_bit(c, t, &n->types);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int kw_count(cstate *c, const char *kw, json_t *v, long long *out)
{
    double d = json_number_value(v);
    if (!json_is_number(v) || d < 0 || d != floor(d) || d > 1e15)
        return cfail(c, "'%s' must be a non-negative integer", kw);
    *out = (long long)d;
    return 0;
}

static int kw_number(cstate *c, const char *kw, json_t *v, bool *has, double *out)
{
    if (!json_is_number(v))
        return cfail(c, "'%s' must be a number", kw);
    *has = true;
    *out = json_number_value(v);
    return 0;
}

static int kw_properties(cstate *c, jsnode *n, json_t *v)
{
    if (!json_is_object(v))
        return cfail(c, "'properties' must be an object");
    n->props = calloc(json_object_size(v) + 1, sizeof(*n->props));
    if (!n->props)
        return OPSC_ENOMEM;
    const char *k;
    json_t *sub;
    json_object_foreach(v, k, sub)
    {
        jsprop *p = &n->props[n->nprops++];
        p->name = k; /* owned by the source document, which the schema keeps */
        int rc = compile_sub(c, "properties", k, sub, &p->schema);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int kw_required(cstate *c, jsnode *n, json_t *v)
{
    if (!json_is_array(v))
        return cfail(c, "'required' must be a list of property names");
    n->required = calloc(json_array_size(v) + 1, sizeof(*n->required));
    if (!n->required)
        return OPSC_ENOMEM;
    size_t i;
    json_t *name;
    json_array_foreach(v, i, name)
    {
        if (!json_is_string(name))
            return cfail(c, "'required' must be a list of property names");
        n->required[n->nrequired++] = json_string_value(name);
    }
    return 0;
}

static int kw_list(cstate *c, const char *kw, json_t *v, jslist *l)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return cfail(c, "'%s' must be a non-empty list of schemas", kw);
    l->v = calloc(json_array_size(v), sizeof(*l->v));
    if (!l->v)
        return OPSC_ENOMEM;
    size_t i;
    json_t *sub;
    json_array_foreach(v, i, sub)
    {
        char idx[24];
        snprintf(idx, sizeof(idx), "%zu", i);
        int rc = compile_sub(c, kw, idx, sub, &l->v[l->n++]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int kw_pattern(cstate *c, jsnode *n, json_t *v)
{
    if (!json_is_string(v))
        return cfail(c, "'pattern' must be a string");
    int code;
    PCRE2_SIZE off;
    n->pattern_src = json_string_value(v);
    n->pattern = pcre2_compile((PCRE2_SPTR)n->pattern_src, json_string_length(v),
                               PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY, &code,
                               &off, NULL);
    if (!n->pattern) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof(msg));
        return cfail(c, "bad pattern at offset %zu: %s", (size_t)off, (const char *)msg);
    }
    return 0;
}

static bool annotation(const char *k)
{
    static const char *const names[] = {"description", "title",      "examples", "format",
                                        "$schema",     "$id",        "$comment", "readOnly",
                                        "writeOnly",   "deprecated", "default",  NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(k, names[i]) == 0)
            return true;
    return strncmp(k, "x-", 2) == 0;
}

static int keyword(cstate *c, jsnode *n, const char *k, json_t *v)
{
    if (strcmp(k, "type") == 0)
        return kw_type(c, n, v);
    if (strcmp(k, "properties") == 0)
        return kw_properties(c, n, v);
    if (strcmp(k, "required") == 0)
        return kw_required(c, n, v);
    if (strcmp(k, "additionalProperties") == 0) {
        if (json_is_false(v))
            n->addl_forbidden = true;
        return json_is_boolean(v) ? 0 : compile_sub(c, k, NULL, v, &n->addl);
    }
    if (strcmp(k, "propertyNames") == 0)
        return compile_sub(c, k, NULL, v, &n->names);
    if (strcmp(k, "items") == 0)
        return compile_sub(c, k, NULL, v, &n->items);
    if (strcmp(k, "not") == 0)
        return compile_sub(c, k, NULL, v, &n->not_);
    if (strcmp(k, "allOf") == 0 || strcmp(k, "anyOf") == 0 || strcmp(k, "oneOf") == 0)
        return kw_list(c, k, v, k[0] == 'o' ? &n->one : k[1] == 'l' ? &n->all : &n->any);
    static const char *const counts[] = {"minProperties", "maxProperties", "minItems", "maxItems",
                                         "minLength",     "maxLength",     NULL};
    long long *slots[] = {&n->min_props, &n->max_props, &n->min_items,
                          &n->max_items, &n->min_len,   &n->max_len};
    for (int i = 0; counts[i]; i++)
        if (strcmp(k, counts[i]) == 0)
            return kw_count(c, k, v, slots[i]);
    if (strcmp(k, "minimum") == 0)
        return kw_number(c, k, v, &n->has_min, &n->min);
    if (strcmp(k, "maximum") == 0)
        return kw_number(c, k, v, &n->has_max, &n->max);
    if (strcmp(k, "exclusiveMinimum") == 0)
        return kw_number(c, k, v, &n->has_xmin, &n->xmin);
    if (strcmp(k, "exclusiveMaximum") == 0)
        return kw_number(c, k, v, &n->has_xmax, &n->xmax);
    if (strcmp(k, "multipleOf") == 0) {
        bool has;
        int rc = kw_number(c, k, v, &has, &n->multiple);
        return rc == 0 && n->multiple <= 0 ? cfail(c, "'multipleOf' must be positive") : rc;
    }
    if (strcmp(k, "uniqueItems") == 0) {
        n->unique = json_is_true(v);
        return json_is_boolean(v) ? 0 : cfail(c, "'uniqueItems' must be a boolean");
    }
    if (strcmp(k, "pattern") == 0)
        return kw_pattern(c, n, v);
    if (strcmp(k, "enum") == 0) {
        n->enum_vals = v;
        return json_is_array(v) && json_array_size(v) ? 0
                                                      : cfail(c, "'enum' must be a non-empty list");
    }
    if (strcmp(k, "const") == 0) {
        n->const_val = v;
        return 0;
    }
    if (annotation(k))
        return 0;
    return cfail(c, "unknown or unsupported keyword '%s'", k);
}

static int check_default(cstate *c, jsnode *n);

static int compile_node(cstate *c, json_t *j, jsnode **out)
{
    if (++c->depth > 64)
        return cfail(c, "schema nested too deeply");
    jsnode *n = new_node(c);
    if (!n)
        return OPSC_ENOMEM;
    *out = n;
    int rc = 0;
    if (json_is_boolean(j)) {
        n->never = json_is_false(j);
    } else if (!json_is_object(j)) {
        rc = cfail(c, "a schema must be an object or a boolean");
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            if ((rc = keyword(c, n, k, v)) < 0)
                break;
        }
        n->def = json_object_get(j, "default");
        if (rc == 0 && n->def)
            rc = check_default(c, n);
    }
    c->depth--;
    return rc;
}

/* ---- validating -------------------------------------------------------------------- */

typedef struct vstate {
    const jschema *s;
    unsigned flags;
    jschema_err *errs;
    size_t max, n;
    char path[256];
    bool oom;
} vstate;

static void verr(vstate *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void verr(vstate *v, const char *fmt, ...)
{
    if (v->errs && v->n < v->max) {
        jschema_err *e = &v->errs[v->n];
        snprintf(e->path, sizeof(e->path), "%s", v->path);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
    }
    v->n++;
}

/* Equality as JSON Schema means it: 1 and 1.0 are the same number, at any depth. */
static bool json_same(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (json_is_array(a) && json_is_array(b)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_same(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    if (json_is_object(a) && json_is_object(b)) {
        const char *k;
        json_t *v;
        if (json_object_size(a) != json_object_size(b))
            return false;
        json_object_foreach((json_t *)a, k, v)
        {
            const json_t *w = json_object_get(b, k);
            if (!w || !json_same(v, w))
                return false;
        }
        return true;
    }
    return json_equal(a, b);
}

static unsigned type_of(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return T_OBJECT;
    case JSON_ARRAY:
        return T_ARRAY;
    case JSON_STRING:
        return T_STRING;
    case JSON_INTEGER:
        return T_INTEGER | T_NUMBER;
    case JSON_REAL: {
        double d = json_real_value(j);
        return d == floor(d) && fabs(d) < 9e15 ? (T_INTEGER | T_NUMBER) : T_NUMBER;
    }
    case JSON_TRUE:
    case JSON_FALSE:
        return T_BOOL;
    default:
        return T_NULL;
    }
}

static const char *type_name(const json_t *j)
{
    unsigned t = type_of(j);
    return t & T_OBJECT         ? "object"
           : t & T_ARRAY        ? "array"
           : t & T_STRING       ? "string"
           : json_is_integer(j) ? "integer"
           : t & T_NUMBER       ? "number"
           : t & T_BOOL         ? "boolean"
                                : "null";
}

static void expected_types(unsigned types, char *buf, size_t n)
{
    static const char *const names[] = {"null",   "boolean", "object", "array",
                                        "number", "integer", "string"};
    buf[0] = '\0';
    for (int i = 0; i < 7; i++)
        if (types & (1u << i))
            snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", buf[0] ? " or " : "", names[i]);
}

static void validate(vstate *v, const jsnode *n, json_t *j);

/* Validate a child value at path + "/seg". */
static void validate_at(vstate *v, const jsnode *n, json_t *j, const char *seg)
{
    size_t len = path_push(v->path, sizeof(v->path), seg);
    validate(v, n, j);
    v->path[len] = '\0';
}

static void apply_defaults(vstate *v, const jsnode *n, json_t *obj)
{
    for (size_t i = 0; i < n->nprops; i++) {
        const jsprop *p = &n->props[i];
        if (p->schema->def && !json_object_get(obj, p->name) &&
            json_object_set_new(obj, p->name, json_deep_copy(p->schema->def)) < 0)
            v->oom = true;
    }
}

static const jsnode *prop_schema(const jsnode *n, const char *key)
{
    for (size_t i = 0; i < n->nprops; i++)
        if (strcmp(n->props[i].name, key) == 0)
            return n->props[i].schema;
    return NULL;
}

static void validate_object(vstate *v, const jsnode *n, json_t *obj)
{
    if (v->flags & JSCHEMA_DEFAULTS)
        apply_defaults(v, n, obj);
    for (size_t i = 0; i < n->nrequired; i++)
        if (!json_object_get(obj, n->required[i])) {
            size_t len = path_push(v->path, sizeof(v->path), n->required[i]);
            verr(v, "is required");
            v->path[len] = '\0';
        }
    size_t size = json_object_size(obj);
    if (n->min_props >= 0 && (long long)size < n->min_props)
        verr(v, "must have at least %lld properties", n->min_props);
    if (n->max_props >= 0 && (long long)size > n->max_props)
        verr(v, "must have at most %lld properties", n->max_props);
    const char *k;
    json_t *val;
    json_object_foreach(obj, k, val)
    {
        const jsnode *ps = prop_schema(n, k);
        if (n->names) {
            json_t *name = json_string(k);
            size_t len = path_push(v->path, sizeof(v->path), k);
            if (!name)
                v->oom = true;
            else
                validate(v, n->names, name);
            json_decref(name);
            v->path[len] = '\0';
        }
        if (ps)
            validate_at(v, ps, val, k);
        else if (n->addl)
            validate_at(v, n->addl, val, k);
        else if (n->addl_forbidden) {
            size_t len = path_push(v->path, sizeof(v->path), k);
            verr(v, "is not an allowed property");
            v->path[len] = '\0';
        }
    }
}

static void validate_array(vstate *v, const jsnode *n, json_t *arr)
{
    size_t size = json_array_size(arr);
    if (n->min_items >= 0 && (long long)size < n->min_items)
        verr(v, "must have at least %lld items", n->min_items);
    if (n->max_items >= 0 && (long long)size > n->max_items)
        verr(v, "must have at most %lld items", n->max_items);
    for (size_t i = 0; n->items && i < size; i++) {
        char idx[24];
        snprintf(idx, sizeof(idx), "%zu", i);
        validate_at(v, n->items, json_array_get(arr, i), idx);
    }
    for (size_t i = 0; n->unique && i < size; i++)
        for (size_t k = i + 1; k < size; k++)
            if (json_same(json_array_get(arr, i), json_array_get(arr, k))) {
                verr(v, "items %zu and %zu are equal (items must be unique)", i, k);
                return;
            }
}

static void validate_string(vstate *v, const jsnode *n, const json_t *str)
{
    const char *s = json_string_value(str);
    size_t bytes = json_string_length(str), cps = 0;
    for (size_t i = 0; i < bytes; i++)
        cps += ((unsigned char)s[i] & 0xC0) != 0x80;
    if (n->min_len >= 0 && (long long)cps < n->min_len)
        verr(v, "must be at least %lld characters long", n->min_len);
    if (n->max_len >= 0 && (long long)cps > n->max_len)
        verr(v, "must be at most %lld characters long", n->max_len);
    if (!n->pattern)
        return;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(n->pattern, NULL);
    if (!md) {
        v->oom = true;
        return;
    }
    int rc = pcre2_match(n->pattern, (PCRE2_SPTR)s, bytes, 0, 0, md, v->s->mctx);
    pcre2_match_data_free(md);
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT)
        verr(v, "is too costly to match against the pattern %s", n->pattern_src);
    else if (rc < 0)
        verr(v, "does not match the pattern %s", n->pattern_src);
}

static void validate_number(vstate *v, const jsnode *n, const json_t *num)
{
    double d = json_number_value(num);
    if (n->has_min && d < n->min)
        verr(v, "must be at least %g", n->min);
    if (n->has_max && d > n->max)
        verr(v, "must be at most %g", n->max);
    if (n->has_xmin && d <= n->xmin)
        verr(v, "must be greater than %g", n->xmin);
    if (n->has_xmax && d >= n->xmax)
        verr(v, "must be less than %g", n->xmax);
    if (n->multiple > 0) {
        double q = d / n->multiple;
        if (fabs(q - round(q)) > 1e-9)
            verr(v, "must be a multiple of %g", n->multiple);
    }
}

/* Errors a sub-schema would report, without reporting them. */
static size_t count_errors(vstate *v, const jsnode *n, json_t *j)
{
    vstate sub = *v;
    sub.errs = NULL;
    sub.n = 0;
    sub.flags = 0; /* a failing branch must not add defaults */
    validate(&sub, n, j);
    v->oom |= sub.oom;
    return sub.n;
}

static void validate_combinators(vstate *v, const jsnode *n, json_t *j)
{
    for (size_t i = 0; i < n->all.n; i++)
        validate(v, n->all.v[i], j);
    if (n->any.n) {
        bool ok = false;
        for (size_t i = 0; i < n->any.n && !ok; i++)
            ok = count_errors(v, n->any.v[i], j) == 0;
        if (!ok)
            verr(v, "does not match any of the allowed forms (anyOf)");
    }
    if (n->one.n) {
        size_t matches = 0;
        for (size_t i = 0; i < n->one.n; i++)
            matches += count_errors(v, n->one.v[i], j) == 0;
        if (matches != 1)
            verr(v, "must match exactly one of the allowed forms (oneOf), matches %zu", matches);
    }
    if (n->not_ && count_errors(v, n->not_, j) == 0)
        verr(v, "matches a form that is not allowed (not)");
}

static void validate_enum(vstate *v, const jsnode *n, const json_t *j)
{
    if (n->const_val && !json_same(n->const_val, j)) {
        char *text = json_dumps(n->const_val, JSON_COMPACT | JSON_ENCODE_ANY);
        verr(v, "must be %.200s", text ? text : "the constant value");
        free(text);
    }
    if (!n->enum_vals)
        return;
    for (size_t i = 0; i < json_array_size(n->enum_vals); i++)
        if (json_same(json_array_get(n->enum_vals, i), j))
            return;
    char *text = json_dumps(n->enum_vals, JSON_COMPACT);
    verr(v, "must be one of %.200s", text ? text : "the allowed values");
    free(text);
}

static void validate(vstate *v, const jsnode *n, json_t *j)
{
    if (n->never) {
        verr(v, "is not allowed");
        return;
    }
    unsigned t = type_of(j);
    if (n->types && !(n->types & t)) {
        char want[96];
        expected_types(n->types, want, sizeof(want));
        verr(v, "must be %s %s, not %s", strchr("aeiou", want[0]) ? "an" : "a", want, type_name(j));
        return; /* type-specific checks would only add noise */
    }
    validate_enum(v, n, j);
    if (t & T_OBJECT)
        validate_object(v, n, j);
    else if (t & T_ARRAY)
        validate_array(v, n, j);
    else if (t & T_STRING)
        validate_string(v, n, j);
    else if (t & T_NUMBER)
        validate_number(v, n, j);
    validate_combinators(v, n, j);
}

static int check_default(cstate *c, jsnode *n)
{
    vstate v = {.s = c->s};
    jschema_err e;
    v.errs = &e;
    v.max = 1;
    validate(&v, n, (json_t *)n->def);
    if (v.oom)
        return OPSC_ENOMEM;
    if (v.n)
        return cfail(c, "'default' is not valid: %s%s%s", e.path, e.path[0] ? " " : "", e.msg);
    return 0;
}

/* ---- public ---------------------------------------------------------------------------- */

int jschema_compile(jschema **out, json_t *schema, char *err, size_t errlen)
{
    *out = NULL;
    jschema *s = calloc(1, sizeof(*s));
    if (!s || !(s->mctx = pcre2_match_context_create(NULL))) {
        free(s);
        return OPSC_ENOMEM;
    }
    pcre2_set_match_limit(s->mctx, PATTERN_MATCH_LIMIT);
    pcre2_set_depth_limit(s->mctx, PATTERN_MATCH_LIMIT / 10);
    s->src = json_incref(schema);
    cstate c = {.s = s, .err = err, .errlen = errlen};
    int rc = compile_node(&c, schema, &s->root);
    if (rc < 0) {
        if (rc == OPSC_ENOMEM && err)
            snprintf(err, errlen, "out of memory");
        jschema_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int jschema_compile_text(jschema **out, const char *text, char *err, size_t errlen)
{
    json_error_t je;
    *out = NULL;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    if (!j) {
        if (err)
            snprintf(err, errlen, "schema is not JSON: %d:%d: %s", je.line, je.column, je.text);
        return OPSC_ESCHEMA;
    }
    int rc = jschema_compile(out, j, err, errlen);
    json_decref(j);
    return rc;
}

void jschema_free(jschema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nnodes; i++) {
        jsnode *n = s->nodes[i];
        free(n->props);
        free(n->required);
        free(n->all.v);
        free(n->any.v);
        free(n->one.v);
        pcre2_code_free(n->pattern);
        free(n);
    }
    free(s->nodes);
    pcre2_match_context_free(s->mctx);
    json_decref(s->src);
    free(s);
}

int jschema_validate(const jschema *s, json_t *instance, unsigned flags, const char *base,
                     jschema_err *errs, size_t max, size_t *nerr)
{
    vstate v = {.s = s, .flags = flags, .errs = errs, .max = errs ? max : 0};
    snprintf(v.path, sizeof(v.path), "%s", base ? base : "");
    validate(&v, s->root, instance);
    if (nerr)
        *nerr = v.n;
    if (v.oom)
        return OPSC_ENOMEM;
    return v.n ? OPSC_ESCHEMA : 0;
}

json_t *jschema_errors_json(const jschema_err *errs, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:s, s:s}", "path", errs[i].path, "message", errs[i].msg));
    return arr;
}

const json_t *jschema_source(const jschema *s)
{
    return s->src;
}

const json_t *jschema_properties(const jschema *s)
{
    return json_is_object(s->src) ? json_object_get(s->src, "properties") : NULL;
}
