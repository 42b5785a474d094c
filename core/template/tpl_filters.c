/* tpl_filters.c - the template filters: default, upper, replace, join, json, b64encode... */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "tpl_internal.h"

/* Every filter takes ownership of `in`; `args` are borrowed. */

static int type_error(struct tpl_rstate *rs, const tpl_expr *e, tpl_val *in, const char *want)
{
    int rc = tpl_rerr(rs, e, "filter '%s' expects %s, got %s", e->fdef->name, want,
                      tpl_type_name(in->j));
    tpl_val_drop(in);
    return rc;
}

/* Hand back a new value (NULL from jansson means out of memory or bad UTF-8). */
static int give(struct tpl_rstate *rs, const tpl_expr *e, tpl_val *in, json_t *j, tpl_val *out)
{
    tpl_val_drop(in);
    if (!j)
        return tpl_rerr(rs, e, "filter '%s': result is not valid UTF-8 text", e->fdef->name);
    *out = (tpl_val){j, true};
    return 0;
}

static json_t *own(json_t *j)
{
    return json_incref(j);
}

static int f_default(struct tpl_rstate *rs, const tpl_expr *e, tpl_val in, const tpl_val *args,
                     tpl_val *out)
{
    (void)rs;
    bool if_falsy = e->nargs > 2 && json_is_true(args[1].j);
    bool use = !in.j || json_is_null(in.j);
    if (!use && if_falsy) {
        const json_t *j = in.j;
        use = json_is_false(j) || (json_is_string(j) && !json_string_length(j)) ||
              (json_is_integer(j) && !json_integer_value(j)) ||
              (json_is_array(j) && !json_array_size(j)) ||
              (json_is_object(j) && !json_object_size(j));
    }
    if (!use) {
        *out = in;
        return 0;
    }
    tpl_val_drop(&in);
    *out = (tpl_val){own(args[0].j), true};
    return 0;
}

static int f_case(struct tpl_rstate *rs, const tpl_expr *e, tpl_val in, const tpl_val *args,
                  tpl_val *out)
{
    (void)args;
    if (!json_is_string(in.j))
        return type_error(rs, e, &in, "a string");
    bool up = e->fdef->name[0] == 'u';
    size_t n = json_string_length(in.j);
    char *s = malloc(n + 1);
    if (!s) {
        tpl_val_drop(&in);
        return OPSC_ENOMEM;
    }
    memcpy(s, json_string_value(in.j), n + 1);
    for (size_t i = 0; i < n; i++) /* ASCII only: UTF-8 continuation bytes are untouched */
        s[i] = (char)(up ? toupper((unsigned char)s[i]) : tolower((unsigned char)s[i]));
    json_t *j = json_stringn_nocheck(s, n);
    free(s);
    return give(rs, e, &in, j, out);
}

static int f_trim(struct tpl_rstate *rs, const tpl_expr *e, tpl_val in, const tpl_val *args,
                  tpl_val *out)
{
    (void)args;
    if (!json_is_string(in.j))
        return type_error(rs, e, &in, "a string");
    const char *s = json_string_value(in.j);
    size_t a = 0, b = json_string_length(in.j);
    while (a < b && isspace((unsigned char)s[a]))
        a++;
    while (b > a && isspace((unsigned char)s[b - 1]))
        b--;
    return give(rs, e, &in, json_stringn_nocheck(s + a, b - a), out);
}

static int f_replace(struct tpl_rstate *rs, const tpl_expr *e, tpl_val in, const tpl_val *args,
                     tpl_val *out)
{
    if (!json_is_string(in.j))
        return type_error(rs, e, &in, "a string");
    const char *s = json_string_value(in.j), *from = json_string_value(args[0].j);
    size_t n = json_string_length(in.j), fl = json_string_length(args[0].j);
    if (fl == 0) {
        tpl_val_drop(&in);
        return tpl_rerr(rs, e, "filter 'replace': the text to replace is empty");
    }
    strbuf sb = STRBUF_INIT;
    for (size_t i = 0; i < n;) {
        if (i + fl <= n && memcmp(s + i, from, fl) == 0) {
            sb_append(&sb, json_string_value(args[1].j), json_string_length(args[1].j));
            i += fl;
        } else {
            sb_append(&sb, s + i++, 1);
        }
    }
    json_t *j = sb.oom ? NULL : json_stringn(sb.buf ? sb.buf : "", sb.len);
    sb_free(&sb);
    return give(rs, e, &in, j, out);
}

/* Text of any value: scalars as text, arrays and objects as JSON. */
static void any_text(const json_t *j, strbuf *sb)
{
    if (tpl_scalar_text(j, sb) == 0)
        return;
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text)
        sb_puts(sb, text);
    else
        sb->oom = true;
    free(text);
}

static int f_join(struct tpl_rstate *rs, const tpl_expr *e, tpl_val in, const tpl_val *args,
                  tpl_val *out)
{
    if (!json_is_array(in.j))
        return type_error(rs, e, &in, "an array");
    strbuf sb = STRBUF_INIT;
    sb_append(&sb, "", 0);
    for (size_t i = 0; i < json_array_size(in.j); i++) {
        if (i && e->nargs > 1)
            sb_append(&sb, json_string_value(args[0].j), json_string_length(args[0].j));
        any_text(json_array_get(in.j, i), &sb);
    }
    json_t *j = sb.oom ? NULL : json_stringn(sb.buf, sb.len);
    sb_free(&sb);
    return give(rs, e, &in, j, out);
}

static int f_split(struct tpl_rstate *rs, const tpl_expr *e, tpl_val in, const tpl_val *args,
                   tpl_val *out)
{
    if (!json_is_string(in.j))
        return type_error(rs, e, &in, "a string");
    const char *s = json_string_value(in.j), *sep = json_string_value(args[0].j);
    size_t n = json_string_length(in.j), sl = json_string_length(args[0].j);
    if (sl == 0) {
        tpl_val_drop(&in);
        return tpl_rerr(rs, e, "filter 'split': the separator is empty");
    }
    json_t *arr = json_array();
    size_t start = 0;
    for (size_t i = 0; arr && i <= n;) {
        if (i == n || (i + sl <= n && memcmp(s + i, sep, sl) == 0)) {
            if (json_array_append_new(arr, json_stringn(s + start, i - start)) < 0)
                json_decref(arr), arr = NULL;
            i += i == n ? 1 : sl;
            start = i;
        } else {
            i++;
        }
    }
    return give(rs, e, &in, arr, out);
}

static int f_length(struct tpl_rstate *rs, const tpl_expr *e, tpl_val in, const tpl_val *args,
                    tpl_val *out)
{
    (void)args;
    size_t n = 0;
    if (json_is_string(in.j)) {
        const char *s = json_string_value(in.j);
        for (size_t i = 0; i < json_string_length(in.j); i++)
            n += ((unsigned char)s[i] & 0xC0) != 0x80;
    } else if (json_is_array(in.j)) {
        n = json_array_size(in.j);
    } else if (json_is_object(in.j)) {
        n = json_object_size(in.j);
    } else {
        return type_error(rs, e, &in, "a string, array or object");
    }
    return give(rs, e, &in, json_integer((json_int_t)n), out);
}

static int f_first_last(struct tpl_rstate *rs, const tpl_expr *e, tpl_val in, const tpl_val *args,
                        tpl_val *out)
{
    (void)args;
    if (!json_is_array(in.j))
        return type_error(rs, e, &in, "an array");
    size_t n = json_array_size(in.j);
    if (n == 0) {
        tpl_val_drop(&in);
        return tpl_rerr(rs, e, "filter '%s': the array is empty", e->fdef->name);
    }
    json_t *j = own(json_array_get(in.j, e->fdef->name[0] == 'f' ? 0 : n - 1));
    return give(rs, e, &in, j, out);
}

static int f_keys(struct tpl_rstate *rs, const tpl_expr *e, tpl_val in, const tpl_val *args,
                  tpl_val *out)
{
    (void)args;
    if (!json_is_object(in.j))
        return type_error(rs, e, &in, "an object");
    json_t *arr = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(in.j, k, v)
    {
        if (arr && json_array_append_new(arr, json_string(k)) < 0)
            json_decref(arr), arr = NULL;
    }
    return give(rs, e, &in, arr, out);
}

static int f_string(struct tpl_rstate *rs, const tpl_expr *e, tpl_val in, const tpl_val *args,
                    tpl_val *out)
{
    (void)args;
    if (json_is_string(in.j)) {
        *out = in;
        return 0;
    }
    strbuf sb = STRBUF_INIT;
    sb_append(&sb, "", 0);
    any_text(in.j, &sb);
    json_t *j = sb.oom ? NULL : json_stringn(sb.buf, sb.len);
    sb_free(&sb);
    return give(rs, e, &in, j, out);
}

static int f_json(struct tpl_rstate *rs, const tpl_expr *e, tpl_val in, const tpl_val *args,
                  tpl_val *out)
{
    (void)args;
    char *text = json_dumps(in.j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_t *j = text ? json_string(text) : NULL;
    free(text);
    return give(rs, e, &in, j, out);
}

static int f_int(struct tpl_rstate *rs, const tpl_expr *e, tpl_val in, const tpl_val *args,
                 tpl_val *out)
{
    (void)args;
    json_int_t v;
    if (json_is_integer(in.j)) {
        *out = in;
        return 0;
    } else if (json_is_real(in.j) && json_real_value(in.j) > -9.2e18 &&
               json_real_value(in.j) < 9.2e18) {
        v = (json_int_t)json_real_value(in.j);
    } else if (json_is_boolean(in.j)) {
        v = json_is_true(in.j);
    } else if (json_is_string(in.j)) {
        const char *s = json_string_value(in.j);
        char *end;
        v = strtoll(s, &end, 10);
        if (!*s || *end || isspace((unsigned char)*s)) {
            tpl_val_drop(&in);
            return tpl_rerr(rs, e, "filter 'int': '%.40s' is not an integer", s);
        }
    } else {
        return type_error(rs, e, &in, "a number, boolean or numeric string");
    }
    return give(rs, e, &in, json_integer(v), out);
}

static int f_path(struct tpl_rstate *rs, const tpl_expr *e, tpl_val in, const tpl_val *args,
                  tpl_val *out)
{
    (void)args;
    if (!json_is_string(in.j))
        return type_error(rs, e, &in, "a string");
    const char *s = json_string_value(in.j);
    size_t n = json_string_length(in.j);
    while (n > 1 && (s[n - 1] == '/' || s[n - 1] == '\\')) /* trailing separators */
        n--;
    size_t cut = n;
    while (cut > 0 && s[cut - 1] != '/' && s[cut - 1] != '\\')
        cut--;
    json_t *j;
    if (e->fdef->name[0] == 'b')
        j = json_stringn_nocheck(s + cut, n - cut);
    else if (cut == 0)
        j = json_string(".");
    else
        j = json_stringn_nocheck(s, cut > 1 ? cut - 1 : 1);
    return give(rs, e, &in, j, out);
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int f_b64encode(struct tpl_rstate *rs, const tpl_expr *e, tpl_val in, const tpl_val *args,
                       tpl_val *out)
{
    (void)args;
    if (!json_is_string(in.j))
        return type_error(rs, e, &in, "a string");
    const unsigned char *s = (const unsigned char *)json_string_value(in.j);
    size_t n = json_string_length(in.j), o = 0;
    char *buf = malloc((n + 2) / 3 * 4 + 1);
    if (!buf) {
        tpl_val_drop(&in);
        return OPSC_ENOMEM;
    }
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        buf[o++] = b64chars[v >> 18 & 63];
        buf[o++] = b64chars[v >> 12 & 63];
        buf[o++] = i + 1 < n ? b64chars[v >> 6 & 63] : '=';
        buf[o++] = i + 2 < n ? b64chars[v & 63] : '=';
    }
    json_t *j = json_stringn_nocheck(buf, o);
    free(buf);
    return give(rs, e, &in, j, out);
}

static int b64val(char c)
{
    const char *p = c ? strchr(b64chars, c) : NULL;
    return p ? (int)(p - b64chars) : -1;
}

static int f_b64decode(struct tpl_rstate *rs, const tpl_expr *e, tpl_val in, const tpl_val *args,
                       tpl_val *out)
{
    (void)args;
    if (!json_is_string(in.j))
        return type_error(rs, e, &in, "a string");
    const char *s = json_string_value(in.j);
    size_t n = json_string_length(in.j), o = 0;
    while (n && s[n - 1] == '=')
        n--;
    char *buf = malloc(n * 3 / 4 + 3);
    bool bad = !buf || n % 4 == 1;
    for (size_t i = 0; !bad && i < n; i += 4) {
        int v[4] = {0};
        for (size_t k = 0; k < 4 && !bad; k++)
            bad = i + k < n && (v[k] = b64val(s[i + k])) < 0;
        unsigned w =
            (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        buf[o++] = (char)(w >> 16);
        if (i + 2 < n)
            buf[o++] = (char)(w >> 8 & 255);
        if (i + 3 < n)
            buf[o++] = (char)(w & 255);
    }
    json_t *j = bad ? NULL : json_stringn(buf, o);
    free(buf);
    if (bad) {
        tpl_val_drop(&in);
        return tpl_rerr(rs, e, "filter 'b64decode': not valid base64");
    }
    return give(rs, e, &in, j, out);
}

static int f_raw(struct tpl_rstate *rs, const tpl_expr *e, tpl_val in, const tpl_val *args,
                 tpl_val *out)
{
    (void)args, (void)out;
    tpl_val_drop(&in);
    return tpl_rerr(rs, e, "'%s' is only allowed as the last filter of {{ ... }}", e->fdef->name);
}

const tpl_filter_def tpl_filter_raw = {"raw", 0, 0, {ARG_ANY, ARG_ANY}, false, f_raw};
const tpl_filter_def tpl_filter_args = {"args", 0, 0, {ARG_ANY, ARG_ANY}, false, f_raw};

static const tpl_filter_def filters[] = {
    {"default", 1, 2, {ARG_ANY, ARG_BOOL}, true, f_default},
    {"upper", 0, 0, {ARG_ANY, ARG_ANY}, false, f_case},
    {"lower", 0, 0, {ARG_ANY, ARG_ANY}, false, f_case},
    {"trim", 0, 0, {ARG_ANY, ARG_ANY}, false, f_trim},
    {"replace", 2, 2, {ARG_STRING, ARG_STRING}, false, f_replace},
    {"join", 0, 1, {ARG_STRING, ARG_ANY}, false, f_join},
    {"split", 1, 1, {ARG_STRING, ARG_ANY}, false, f_split},
    {"length", 0, 0, {ARG_ANY, ARG_ANY}, false, f_length},
    {"first", 0, 0, {ARG_ANY, ARG_ANY}, false, f_first_last},
    {"last", 0, 0, {ARG_ANY, ARG_ANY}, false, f_first_last},
    {"keys", 0, 0, {ARG_ANY, ARG_ANY}, false, f_keys},
    {"string", 0, 0, {ARG_ANY, ARG_ANY}, false, f_string},
    {"int", 0, 0, {ARG_ANY, ARG_ANY}, false, f_int},
    {"json", 0, 0, {ARG_ANY, ARG_ANY}, false, f_json},
    {"b64encode", 0, 0, {ARG_ANY, ARG_ANY}, false, f_b64encode},
    {"b64decode", 0, 0, {ARG_ANY, ARG_ANY}, false, f_b64decode},
    {"basename", 0, 0, {ARG_ANY, ARG_ANY}, false, f_path},
    {"dirname", 0, 0, {ARG_ANY, ARG_ANY}, false, f_path},
};

const tpl_filter_def *tpl_filter_find(const char *name, size_t len)
{
    if (len == 3 && memcmp(name, "raw", 3) == 0)
        return &tpl_filter_raw;
    if (len == 4 && memcmp(name, "args", 4) == 0)
        return &tpl_filter_args;
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
        if (strlen(filters[i].name) == len && memcmp(filters[i].name, name, len) == 0)
            return &filters[i];
    return NULL;
}
