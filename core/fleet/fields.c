/* fields.c - applying a request body to a record through a table of member rules. */
#include "fields.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <opsc/errors.h>

#include "strbuf.h"

int fleet_fail(fleet_err *e, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    e->field = field;
    return OPSC_ESCHEMA;
}

void fleet_quote(const char *s, size_t n, char out[FLEET_QUOTE_LEN])
{
    size_t j = 0;
    for (size_t i = 0; i < n && j < 64; i++)
        out[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (n > 64) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
}

const char *fld_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static const fld *find(const fld *table, const char *name)
{
    for (const fld *f = table; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static int unknown(const fld *table, const char *name, bool create, fleet_err *e)
{
    strbuf sb = STRBUF_INIT;
    for (const fld *f = table; f->name; f++)
        if (!(f->flags & FLD_READ_ONLY) && (create || !(f->flags & FLD_CREATE_ONLY)))
            sb_printf(&sb, "%s%s", sb.len ? ", " : "", f->name);
    char q[FLEET_QUOTE_LEN];
    fleet_quote(name, strlen(name), q);
    fleet_fail(e, NULL, "unknown field '%s' (valid: %s)", q, sb.buf ? sb.buf : "");
    sb_free(&sb);
    return OPSC_ESCHEMA;
}

static bool one_of(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *c = choices; *c;) {
        size_t len = strcspn(c, " ");
        if (len == n && memcmp(c, v, n) == 0)
            return true;
        c += len + (c[len] == ' ');
    }
    return false;
}

static int check_string(const fld *f, const json_t *v, fleet_err *e)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (f->choices && !one_of(f->choices, s))
        return fleet_fail(e, f->name, "%s must be one of: %s", f->name, f->choices);
    if ((int64_t)n < f->min || (int64_t)n > f->max)
        return fleet_fail(e, f->name, "%s must be %lld to %lld bytes long", f->name,
                          (long long)f->min, (long long)f->max);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ws = c == '\n' || c == '\t' || c == '\r';
        if ((c < 0x20 || c == 0x7f) && !(ws && (f->flags & FLD_MULTILINE)))
            return fleet_fail(e, f->name, "%s must not hold control characters", f->name);
    }
    return 0;
}

static const char *const type_names[] = {"a string", "an integer", "true or false", "an object",
                                         "an array"};

static int check_value(const fld *f, const json_t *v, fleet_err *e)
{
    bool ok =
        (f->type == FLD_STRING && json_is_string(v)) ||
        (f->type == FLD_INT && json_is_integer(v)) || (f->type == FLD_BOOL && json_is_boolean(v)) ||
        (f->type == FLD_OBJECT && json_is_object(v)) || (f->type == FLD_ARRAY && json_is_array(v));
    if (!ok)
        return fleet_fail(e, f->name, "%s must be %s", f->name, type_names[f->type]);
    if (f->type == FLD_STRING)
        return check_string(f, v, e);
    if (f->type == FLD_INT && (json_integer_value(v) < f->min || json_integer_value(v) > f->max))
        return fleet_fail(e, f->name, "%s must be %lld to %lld", f->name, (long long)f->min,
                          (long long)f->max);
    if (f->type == FLD_ARRAY && (int64_t)json_array_size(v) > f->max)
        return fleet_fail(e, f->name, "%s holds at most %lld items", f->name, (long long)f->max);
    return 0;
}

int fld_apply(const fld *table, const json_t *body, bool create, const json_t *defaults,
              json_t *rec, json_t *transient, fleet_err *e)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v)
    {
        const fld *f = find(table, k);
        if (!f)
            return unknown(table, k, create, e);
        if (!create && (f->flags & FLD_CREATE_ONLY))
            return fleet_fail(e, f->name, "%s is set at creation only%s%s", f->name,
                              f->hint ? ": " : "", f->hint ? f->hint : "");
        if (f->flags & FLD_READ_ONLY)
            return fleet_fail(e, f->name, "%s is read-only%s%s", f->name, f->hint ? ": " : "",
                              f->hint ? f->hint : "");
        json_t *dst = (f->flags & FLD_TRANSIENT) ? transient : rec;
        if (json_is_null(v)) {
            if (!(f->flags & (FLD_NULLABLE | FLD_NULL_VALUE)))
                return fleet_fail(e, f->name, "%s cannot be null", f->name);
            json_t *d = json_object_get(defaults, k);
            if (dst)
                json_object_set_new(dst, k, d ? json_deep_copy(d) : json_null());
            continue;
        }
        int rc = check_value(f, v, e);
        if (rc < 0)
            return rc;
        if (dst && json_object_set_new(dst, k, json_deep_copy(v)) < 0)
            return OPSC_ENOMEM;
    }
    return 0;
}

json_t *fld_ordered(const fld *table, const json_t *rec)
{
    json_t *out = json_object();
    json_t *id = json_object_get(rec, "id");
    if (out && id)
        json_object_set(out, "id", id);
    for (const fld *f = table; out && f->name; f++) {
        json_t *v = json_object_get(rec, f->name);
        if (v && !json_object_get(out, f->name))
            json_object_set(out, f->name, v);
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)rec, k, v)
    {
        if (out && !json_object_get(out, k))
            json_object_set(out, k, v);
    }
    return out;
}
