/* bundle_proto.c - decoding what a bundle's step executable writes: lines, bounded, and each one
 * checked member by member before the daemon acts on it. */
#include "bundle_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

/* Members a request must have, with their JSON types: 's' string, 'i' integer,
 * 'b' boolean, 'o' object, '*' anything; upper case: optional. */
static const struct {
    const char *type;
    enum bp_kind kind;
    const char *members;
} kinds[] = {
    {"log", BP_LOG, "level:s message:s"},
    {"exec", BP_EXEC, "command:s stdin:S timeout_ms:I capture_limit:I log_output:B sensitive:B"},
    {"put_file", BP_PUT_FILE, "local:s remote:s mode:I"},
    {"get_file", BP_GET_FILE, "remote:s local:s"},
    {"set_output", BP_SET_OUTPUT, "key:s value:*"},
    {"secret", BP_SECRET, "name:s"},
    {"cancelled", BP_CANCELLED, ""},
    {"target_facts", BP_TARGET_FACTS, ""},
    {"result", BP_RESULT, "ok:b message:S outputs:O"},
};

static bool has_type(json_t *v, char t)
{
    switch (t) {
    case 's':
        return json_is_string(v);
    case 'i':
        return json_is_integer(v) && json_integer_value(v) >= 0;
    case 'b':
        return json_is_boolean(v);
    case 'o':
        return json_is_object(v);
    default:
        return v != NULL;
    }
}

static const char *type_name(char t)
{
    return t == 's'   ? "a string"
           : t == 'i' ? "a non-negative integer"
           : t == 'b' ? "a boolean"
           : t == 'o' ? "an object"
                      : "present";
}

static int check_members(json_t *o, const char *type, const char *spec, char *err, size_t errlen)
{
    for (const char *p = spec; *p;) {
        size_t n = strcspn(p, ":");
        char key[32], t = p[n + 1];
        snprintf(key, sizeof(key), "%.*s", (int)n, p);
        bool optional = t >= 'A' && t <= 'Z';
        char want = optional ? (char)(t - 'A' + 'a') : t;
        json_t *v = json_object_get(o, key);
        if (!(optional && (!v || json_is_null(v))) && !has_type(v, want)) {
            snprintf(err, errlen, "%s: \"%s\" must be %s", type, key, type_name(want));
            return OPSC_EPROTO;
        }
        p += n + 2;
        p += *p == ' ';
    }
    return 0;
}

int bp_decode(const char *line, size_t len, bp_msg *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        snprintf(err, errlen, "not JSON (%d:%d: %s)", je.line, je.column, je.text);
        return OPSC_EPROTO;
    }
    const char *type = json_string_value(json_object_get(o, "type"));
    size_t k = 0;
    while (type && k < sizeof(kinds) / sizeof(kinds[0]) && strcmp(kinds[k].type, type) != 0)
        k++;
    int rc = 0;
    if (!json_is_object(o) || !type) {
        snprintf(err, errlen, "not an object with a string \"type\"");
        rc = OPSC_EPROTO;
    } else if (k == sizeof(kinds) / sizeof(kinds[0])) {
        snprintf(err, errlen, "unknown type \"%.40s\"", type);
        rc = OPSC_EPROTO;
    }
    json_t *id = rc == 0 ? json_object_get(o, "id") : NULL;
    if (rc == 0 && kinds[k].kind != BP_RESULT &&
        (!json_is_integer(id) || json_integer_value(id) < 1 ||
         json_integer_value(id) > BP_MAX_ID)) {
        snprintf(err, errlen, "%s: \"id\" must be an integer from 1 to 2^52", type);
        rc = OPSC_EPROTO;
    }
    if (rc == 0)
        rc = check_members(o, type, kinds[k].members, err, errlen);
    if (rc < 0) {
        json_decref(o);
        return rc;
    }
    m->kind = kinds[k].kind;
    m->id = id ? json_integer_value(id) : 0;
    m->json = o;
    return 0;
}

void bp_msg_clear(bp_msg *m)
{
    json_decref(m->json);
    memset(m, 0, sizeof(*m));
}

/* ---- lines ----------------------------------------------------------------------------------- */

int bp_feed(bp_reader *r, const void *data, size_t n)
{
    if (r->off > 0 && r->off == r->len) {
        r->off = r->len = 0;
    } else if (r->off > r->cap / 2) {
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n)
            cap *= 2;
        char *grown = realloc(r->buf, cap);
        if (!grown)
            return OPSC_ENOMEM;
        r->buf = grown;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    /* A line still open beyond the limit: no need to see its end. */
    const char *nl = memrchr(r->buf + r->off, '\n', r->len - r->off);
    size_t open = r->len - (nl ? (size_t)(nl - r->buf) + 1 : r->off);
    if (open > BP_MAX_LINE)
        return OPSC_E2BIG;
    return 0;
}

int bp_next(bp_reader *r, const char **line, size_t *len)
{
    char *start = r->buf + r->off;
    char *nl = r->len > r->off ? memchr(start, '\n', r->len - r->off) : NULL;
    if (!nl)
        return 0;
    *line = start;
    *len = (size_t)(nl - start);
    if (*len > BP_MAX_LINE)
        return OPSC_E2BIG;
    r->off += *len + 1;
    return 1;
}

void bp_reader_free(bp_reader *r)
{
    free(r->buf);
    memset(r, 0, sizeof(*r));
}
