/* config.c - the configuration file (libinih): items and where each came from, value parsers,
 * table-driven binding with environment overrides. The daemon's tables: config_sections.c. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "build_config.h"
#include "log.h"

typedef struct cfg_item {
    char *section;
    char *key;
    char *value;
    int line;         /* 0 for overrides */
    int section_line; /* line of the item's [section] header */
    char *origin; /* flag name for overrides, NULL for file items */
} cfg_item;

struct cfg_file {
    char *path;
    cfg_item *items;
    size_t n, cap;
};

static int add_item(cfg_file *f, const char *section, const char *key, const char *value, int line,
                    const char *origin)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 32;
        cfg_item *items = realloc(f->items, cap * sizeof(*items));
        if (!items)
            return OPSC_ENOMEM;
        f->items = items;
        f->cap = cap;
    }
    cfg_item *it = &f->items[f->n];
    it->section = strdup(section);
    it->key = strdup(key);
    it->value = strdup(value);
    it->origin = origin ? strdup(origin) : NULL;
    it->line = line;
    it->section_line = 0;
    if (!it->section || !it->key || !it->value || (origin && !it->origin)) {
        free(it->section);
        free(it->key);
        free(it->value);
        free(it->origin);
        return OPSC_ENOMEM;
    }
    f->n++;
    return 0;
}

/* Debian's libinih is built without INI_HANDLER_LINENO and without
 * INI_CALL_HANDLER_ON_NEW_SECTION, so our line reader keeps track: the
 * handler runs right after the reader returned the line it is about. */
struct ini_reader_state {
    FILE *fp;
    cfg_file *f;
    int line;
    int header_line;     /* line of the last [section] header */
    int sectionless_line; /* first key before any section, 0 if none */
};

static char *read_line(char *str, int num, void *stream)
{
    struct ini_reader_state *st = stream;
    char *s = fgets(str, num, st->fp);
    if (s) {
        st->line++;
        s += strspn(s, " \t");
        if (*s == '[')
            st->header_line = st->line;
    }
    return s ? str : NULL;
}

static int on_ini_item(void *ud, const char *section, const char *key, const char *value)
{
    struct ini_reader_state *st = ud;
    if (!*section) {
        if (!st->sectionless_line)
            st->sectionless_line = st->line;
        return 1;
    }
    if (add_item(st->f, section, key, value, st->line, NULL) < 0)
        return 0;
    st->f->items[st->f->n - 1].section_line = st->header_line;
    return 1;
}

int cfg_file_load(cfg_file **out, const char *path, char *err, size_t errlen)
{
    cfg_file *f = calloc(1, sizeof(*f));
    if (!f)
        return OPSC_ENOMEM;
    f->path = strdup(path ? path : "(defaults)");
    if (!path) {
        *out = f;
        return 0;
    }
    FILE *fp = fopen(path, "r");
    if (!fp) {
        int e = -errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        cfg_file_free(f);
        return e;
    }
    struct ini_reader_state st = {fp, f, 0, 0, 0};
    int rc = ini_parse_stream(read_line, &st, on_ini_item, &st);
    fclose(fp);
    if (rc == 0 && st.sectionless_line) {
        snprintf(err, errlen, "%s:%d: key outside of any [section]", path, st.sectionless_line);
        rc = st.sectionless_line;
    }
    if (rc != 0) {
        if (rc > 0 && !*err)
            snprintf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)", path,
                     rc);
        else if (rc < 0)
            snprintf(err, errlen, "%s: cannot read", path);
        cfg_file_free(f);
        return OPSC_ESYNTAX;
    }
    *out = f;
    return 0;
}

void cfg_file_free(cfg_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->items[i].section);
        free(f->items[i].key);
        free(f->items[i].value);
        free(f->items[i].origin);
    }
    free(f->items);
    free(f->path);
    free(f);
}

const char *cfg_file_path(const cfg_file *f)
{
    return f->path;
}

int cfg_file_set(cfg_file *f, const char *section, const char *key, const char *value,
                 const char *origin)
{
    return add_item(f, section, key, value, 0, origin);
}

static cfg_item *find_last(const cfg_file *f, const char *section, const char *key)
{
    for (size_t i = f->n; i-- > 0;)
        if (strcmp(f->items[i].section, section) == 0 && strcmp(f->items[i].key, key) == 0)
            return &f->items[i];
    return NULL;
}

int cfg_file_append(cfg_file *f, const char *section, const char *key, const char *value,
                    const char *origin)
{
    cfg_item *it = find_last(f, section, key);
    if (!it || !it->origin) /* the first flag replaces the file's value */
        return cfg_file_set(f, section, key, value, origin);
    size_t len = strlen(it->value) + strlen(value) + 2;
    char *joined = malloc(len);
    if (!joined)
        return OPSC_ENOMEM;
    snprintf(joined, len, "%s:%s", it->value, value);
    free(it->value);
    it->value = joined;
    return 0;
}

bool cfg_file_has_section(const cfg_file *f, const char *section)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->items[i].section, section) == 0)
            return true;
    return false;
}

void cfg_file_foreach_section(const cfg_file *f, void (*fn)(const char *section, int line, void *ud),
                              void *ud)
{
    for (size_t i = 0; i < f->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(f->items[j].section, f->items[i].section) == 0;
        if (!seen)
            fn(f->items[i].section, f->items[i].section_line, ud);
    }
}

void cfg_origin(const cfg_file *f, const char *section, const char *key, char *buf, size_t n)
{
    const opsc_cfg_entry e = {.key = key};
    cfg_effective_text(f, section, &e, buf, n);
    if (strcmp(buf, "default") == 0) /* not set: the file that could set it */
        snprintf(buf, n, "%s", f->path);
}

void cfg_env_name(const char *section, const char *key, char *buf, size_t n)
{
    size_t o = (size_t)snprintf(buf, n, "OPSC_");
    const char *parts[2] = {section, key};
    for (int p = 0; p < 2; p++) {
        for (const char *s = parts[p]; *s && o + 2 < n; s++)
            buf[o++] = isalnum((unsigned char)*s) ? (char)toupper((unsigned char)*s) : '_';
        if (p == 0 && o + 2 < n)
            buf[o++] = '_';
    }
    buf[o < n ? o : n - 1] = '\0';
}

/* ---- value parsers --------------------------------------------------- */

static int parse_int(const char *text, int64_t *out, const char **rest)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || errno)
        return OPSC_EINVAL;
    *out = v;
    *rest = end;
    return 0;
}

int cfg_parse_duration_ms(const char *text, int64_t *out)
{
    static const struct {
        const char *suffix;
        int64_t ms;
    } units[] = {{"ms", 1},        {"s", 1000},        {"", 1000},
                 {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 86400 * 1000}};
    int64_t v;
    const char *rest;
    if (parse_int(text, &v, &rest) < 0 || v < 0)
        return OPSC_EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(rest, units[i].suffix) == 0) {
            if (v > INT64_MAX / units[i].ms)
                return OPSC_ERANGE;
            *out = v * units[i].ms;
            return 0;
        }
    }
    return OPSC_EINVAL;
}

int cfg_parse_size(const char *text, int64_t *out)
{
    int64_t v;
    const char *rest;
    if (parse_int(text, &v, &rest) < 0 || v < 0)
        return OPSC_EINVAL;
    int shift;
    switch (*rest) {
    case '\0':
        shift = 0;
        break;
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'M':
        shift = 20;
        break;
    case 'G':
        shift = 30;
        break;
    case 'T':
        shift = 40;
        break;
    default:
        return OPSC_EINVAL;
    }
    if (*rest && rest[1] && strcmp(rest + 1, "B") != 0 && strcmp(rest + 1, "iB") != 0)
        return OPSC_EINVAL;
    if (v > (INT64_MAX >> shift))
        return OPSC_ERANGE;
    *out = v << shift;
    return 0;
}

static int parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return OPSC_EINVAL;
}

static int parse_enum(const char *choices, const char *text, int *out)
{
    int idx = 0;
    size_t tlen = strlen(text);
    for (const char *p = choices; *p; idx++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == tlen && strncmp(p, text, len) == 0) {
            *out = idx;
            return 0;
        }
        p += len + (bar ? 1 : 0);
    }
    return OPSC_EINVAL;
}

static int check_bounds(const opsc_cfg_entry *e, int64_t v, char *err, size_t errlen)
{
    if (e->min <= e->max && (v < e->min || v > e->max)) {
        snprintf(err, errlen, "value out of range [%" PRId64 ", %" PRId64 "]", e->min, e->max);
        return OPSC_ERANGE;
    }
    return 0;
}

int cfg_parse_value(const opsc_cfg_entry *e, const char *text, void *dst, char *err, size_t errlen)
{
    void *field = (char *)dst + e->offset;
    int64_t v = 0;
    int rc = 0;
    switch (e->type) {
    case OPSC_CFG_STRING:
        *(const char **)field = text;
        return 0;
    case OPSC_CFG_BOOL:
        rc = parse_bool(text, (bool *)field);
        if (rc < 0)
            snprintf(err, errlen, "expected true or false");
        return rc;
    case OPSC_CFG_ENUM:
        rc = parse_enum(e->choices, text, (int *)field);
        if (rc < 0)
            snprintf(err, errlen, "expected one of %s", e->choices);
        return rc;
    case OPSC_CFG_INT: {
        const char *rest;
        rc = parse_int(text, &v, &rest);
        if (rc == 0 && *rest)
            rc = OPSC_EINVAL;
        if (rc < 0)
            snprintf(err, errlen, "expected an integer");
        break;
    }
    case OPSC_CFG_DURATION:
        rc = cfg_parse_duration_ms(text, &v);
        if (rc < 0)
            snprintf(err, errlen, "expected a duration like 250ms, 30s, 5m, 2h, 1d");
        break;
    case OPSC_CFG_SIZE:
        rc = cfg_parse_size(text, &v);
        if (rc < 0)
            snprintf(err, errlen, "expected a size like 512, 64k, 16M, 2G");
        break;
    default:
        snprintf(err, errlen, "unsupported type in config table");
        return OPSC_EINVAL;
    }
    if (rc == 0)
        rc = check_bounds(e, v, err, errlen);
    if (rc == 0)
        *(int64_t *)field = v;
    return rc;
}

/* ---- binding ----------------------------------------------------------- */

static void valid_keys(const opsc_cfg_entry *map, char *buf, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
    for (const opsc_cfg_entry *e = map; e->key && o < n; e++)
        o += (size_t)snprintf(buf + o, n - o, "%s%s", o ? ", " : "", e->key);
}

static void where(const cfg_file *f, const cfg_item *it, char *buf, size_t n)
{
    if (it->origin)
        snprintf(buf, n, "%s", it->origin);
    else
        snprintf(buf, n, "%s:%d", f->path, it->line);
}

static const opsc_cfg_entry *find_entry(const opsc_cfg_entry *map, const char *key)
{
    for (const opsc_cfg_entry *e = map; e->key; e++)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static int bind_defaults(const char *section, const opsc_cfg_entry *map, void *dst, char *err,
                         size_t errlen)
{
    char why[256];
    for (const opsc_cfg_entry *e = map; e->key; e++) {
        if (!e->def)
            continue;
        if (cfg_parse_value(e, e->def, dst, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "built-in default of [%s] %s: %s", section, e->key, why);
            return OPSC_ESCHEMA;
        }
    }
    return 0;
}

static int bind_items(const cfg_file *f, const char *section, const opsc_cfg_entry *map, void *dst,
                      char *err, size_t errlen)
{
    char why[256], loc[512], keys[1024];
    for (size_t i = 0; i < f->n; i++) {
        const cfg_item *it = &f->items[i];
        if (strcmp(it->section, section) != 0 || !*it->key)
            continue;
        where(f, it, loc, sizeof(loc));
        const opsc_cfg_entry *e = find_entry(map, it->key);
        if (!e) {
            valid_keys(map, keys, sizeof(keys));
            snprintf(err, errlen, "%s: [%s] %s: unknown key (valid keys: %s)", loc, section,
                     it->key, keys);
            return OPSC_ESCHEMA;
        }
        if (cfg_parse_value(e, it->value, dst, why, sizeof(why)) < 0) {
            if (e->flags & OPSC_CFG_SECRET)
                snprintf(err, errlen, "%s: [%s] %s: invalid value: %s", loc, section, it->key, why);
            else
                snprintf(err, errlen, "%s: [%s] %s: invalid value '%s': %s", loc, section, it->key,
                         it->value, why);
            return OPSC_ESCHEMA;
        }
    }
    return 0;
}

static int bind_env(const char *section, const opsc_cfg_entry *map, void *dst, char *err,
                    size_t errlen)
{
    char name[256], why[256];
    for (const opsc_cfg_entry *e = map; e->key; e++) {
        cfg_env_name(section, e->key, name, sizeof(name));
        const char *v = getenv(name);
        if (!v)
            continue;
        if (cfg_parse_value(e, v, dst, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "environment %s: [%s] %s: invalid value: %s", name, section,
                     e->key, why);
            return OPSC_ESCHEMA;
        }
    }
    return 0;
}

static int check_required(const cfg_file *f, const char *section, const opsc_cfg_entry *map,
                          char *err, size_t errlen)
{
    char name[256];
    for (const opsc_cfg_entry *e = map; e->key; e++) {
        if (!(e->flags & OPSC_CFG_REQUIRED))
            continue;
        cfg_env_name(section, e->key, name, sizeof(name));
        if (!find_last(f, section, e->key) && !getenv(name)) {
            snprintf(err, errlen, "%s: [%s] %s: required key is missing (%s)", f->path, section,
                     e->key, e->doc ? e->doc : "no default");
            return OPSC_ESCHEMA;
        }
    }
    return 0;
}

int cfg_bind(const cfg_file *f, const char *section, const opsc_cfg_entry *map, void *dst,
             char *err, size_t errlen)
{
    int rc = bind_defaults(section, map, dst, err, errlen);
    if (rc == 0)
        rc = check_required(f, section, map, err, errlen);
    if (rc == 0)
        rc = bind_items(f, section, map, dst, err, errlen);
    if (rc == 0)
        rc = bind_env(section, map, dst, err, errlen);
    return rc;
}

const char *cfg_effective_text(const cfg_file *f, const char *section, const opsc_cfg_entry *e,
                               char *origin, size_t n)
{
    char env[256];
    cfg_env_name(section, e->key, env, sizeof(env));
    const char *v = getenv(env);
    if (v) {
        snprintf(origin, n, "environment %s", env);
        return v;
    }
    const cfg_item *it = find_last(f, section, e->key);
    if (it) {
        where(f, it, origin, n);
        return it->value;
    }
    snprintf(origin, n, "default");
    return e->def;
}
