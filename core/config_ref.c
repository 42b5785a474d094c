/* config_ref.c - the configuration reference (commented config file, man page) and --print-config.
 *
 * Both are written from the same tables that bind the configuration, so the
 * documentation of a key cannot drift from what the daemon accepts: the
 * shipped config/opsconductor.conf and opsconductord.conf(5) are generated
 * from here at build time (config/meson.build) and a test compares them.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* What each daemon section is for (kept apart from config.c's binding table). */
static const struct {
    const char *name, *doc;
} section_docs[] = {
    {"server", "The REST API: where it listens and the limits that protect it."},
    {"store", "The store: embedded LMDB in the data directory, or PostgreSQL (cluster mode)."},
    {"cluster", "Cluster mode (backend = postgresql): this node's labels, and the label keys "
                "that route runs to nodes."},
    {"log", "The daemon's own log."},
    {"plugins", "Where plugins are found, and which ones are not loaded."},
    {"auth", "Logins, access and refresh tokens, and the limits on failed logins."},
    {"vault", "The credentials vault's master key."},
    {"scheduler", "Cron schedules: late fires (misfires) and overlapping runs."},
    {"steplibs", "Step libraries uploaded through the API, and whose signatures admit them."},
    {"fleet", "Pooled connections to targets and connectivity tests."},
    {"executor", "Runs: how many targets at once, step worker threads, and run logs."},
};

static const char *section_doc(const char *name)
{
    for (size_t i = 0; i < sizeof(section_docs) / sizeof(section_docs[0]); i++)
        if (strcmp(section_docs[i].name, name) == 0)
            return section_docs[i].doc;
    return NULL;
}

/* ---- formatting values --------------------------------------------------------------------- */

/* The largest unit that divides v exactly: 86400000 -> "1d", 1500 -> "1500ms". */
static void format_duration(int64_t ms, char *buf, size_t n)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    if (ms == 0) {
        snprintf(buf, n, "0");
        return;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms % units[i].ms == 0) {
            snprintf(buf, n, "%" PRId64 "%s", ms / units[i].ms, units[i].unit);
            return;
        }
    }
    snprintf(buf, n, "%" PRId64 "ms", ms);
}

static void format_size(int64_t bytes, char *buf, size_t n)
{
    static const char units[] = "kMGT";
    int u = -1;
    while (u < 3 && bytes != 0 && bytes % 1024 == 0) {
        bytes /= 1024;
        u++;
    }
    if (u < 0)
        snprintf(buf, n, "%" PRId64, bytes);
    else
        snprintf(buf, n, "%" PRId64 "%c", bytes, units[u]);
}

static void format_bound(const opsc_cfg_entry *e, int64_t v, char *buf, size_t n)
{
    if (e->type == OPSC_CFG_DURATION)
        format_duration(v, buf, n);
    else if (e->type == OPSC_CFG_SIZE)
        format_size(v, buf, n);
    else
        snprintf(buf, n, "%" PRId64, v);
}

/* "duration, 1s to 1d; reload; secret": what a reader needs besides the doc. */
static void describe(const opsc_cfg_entry *e, char *buf, size_t n)
{
    static const char *const kinds[] = {
        [OPSC_CFG_STRING] = "",
        [OPSC_CFG_INT] = "integer",
        [OPSC_CFG_BOOL] = "true or false",
        [OPSC_CFG_DURATION] = "duration",
        [OPSC_CFG_SIZE] = "size",
        [OPSC_CFG_ENUM] = "one of",
    };
    size_t o = 0;
    buf[0] = '\0';
    if ((size_t)e->type < sizeof(kinds) / sizeof(kinds[0]) && kinds[e->type])
        o += (size_t)snprintf(buf, n, "%s", kinds[e->type]);
    if (e->type == OPSC_CFG_ENUM && e->choices) {
        for (const char *p = e->choices; *p && o + 3 < n; p++) {
            if (p == e->choices || *p == '|')
                buf[o++] = p == e->choices ? ' ' : ',';
            if (*p == '|')
                buf[o++] = ' ';
            else
                buf[o++] = *p;
        }
        buf[o] = '\0';
    }
    bool bounded = e->min <= e->max && (e->type == OPSC_CFG_INT || e->type == OPSC_CFG_DURATION ||
                                        e->type == OPSC_CFG_SIZE);
    if (bounded && o < n) {
        char lo[32], hi[32];
        format_bound(e, e->min, lo, sizeof(lo));
        format_bound(e, e->max, hi, sizeof(hi));
        o += (size_t)snprintf(buf + o, n - o, ", %s to %s", lo, hi);
    }
    static const struct {
        unsigned flag;
        const char *word;
    } flags[] = {
        {OPSC_CFG_REQUIRED, "required"}, {OPSC_CFG_RELOAD, "reload"}, {OPSC_CFG_SECRET, "secret"}};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]) && o < n; i++)
        if (e->flags & flags[i].flag)
            o += (size_t)snprintf(buf + o, n - o, "%s%s", o ? "; " : "", flags[i].word);
}

/* ---- the commented config file --------------------------------------------------------------- */

/* `text` as "; " comment lines of at most 80 columns, broken between words. */
static void comment(FILE *out, const char *text)
{
    const size_t width = 78;
    while (*text) {
        size_t len = strlen(text);
        if (len > width) {
            len = width;
            while (len > 0 && text[len] != ' ')
                len--;
            if (len == 0)
                len = strcspn(text, " ");
        }
        fprintf(out, "; %.*s\n", (int)len, text);
        text += len;
        text += strspn(text, " ");
    }
}

static void conf_section(FILE *out, const cfg_section_ref *s)
{
    fprintf(out, "\n[%s]\n", s->name);
    if (s->doc)
        comment(out, s->doc);
    for (const opsc_cfg_entry *e = s->map; e->key; e++) {
        char more[256];
        describe(e, more, sizeof(more));
        fprintf(out, "\n");
        comment(out, e->doc ? e->doc : "");
        if (more[0])
            fprintf(out, "; (%s)\n", more);
        fprintf(out, ";%s =%s%s\n", e->key, e->def && *e->def ? " " : "", e->def ? e->def : "");
    }
}

/* ---- the man page -------------------------------------------------------------------------- */

/* Text for a roff line: backslashes escaped, a leading '.' or '\'' defused. */
static void roff(FILE *out, const char *text)
{
    if (*text == '.' || *text == '\'')
        fputs("\\&", out);
    for (; *text; text++) {
        if (*text == '\\')
            fputs("\\e", out);
        else if (*text == '-')
            fputs("\\-", out);
        else
            fputc(*text, out);
    }
}

static void man_section(FILE *out, const cfg_section_ref *s)
{
    fprintf(out, ".SS [");
    roff(out, s->name);
    fprintf(out, "]\n");
    if (s->doc) {
        roff(out, s->doc);
        fputc('\n', out);
    }
    for (const opsc_cfg_entry *e = s->map; e->key; e++) {
        char more[256], env[256];
        describe(e, more, sizeof(more));
        cfg_env_name(s->name, e->key, env, sizeof(env));
        fprintf(out, ".TP\n\\fB");
        roff(out, e->key);
        fprintf(out, "\\fR = ");
        if (e->def && *e->def) {
            fputs("\\fI", out);
            roff(out, e->def);
            fputs("\\fR", out);
        } else {
            fputs("(empty)", out);
        }
        fputc('\n', out);
        roff(out, e->doc ? e->doc : "");
        fprintf(out, ".\n");
        if (more[0]) {
            fprintf(out, ".br\n");
            roff(out, more);
            fputc('\n', out);
        }
        fprintf(out, ".br\nEnvironment: \\fB");
        roff(out, env);
        fprintf(out, "\\fR\n");
    }
}

/* ---- all sections ---------------------------------------------------------------------------- */

static int cmp_section(const void *a, const void *b)
{
    return strcmp(((const cfg_section_ref *)a)->name, ((const cfg_section_ref *)b)->name);
}

typedef void (*section_fn)(FILE *out, const cfg_section_ref *s, void *ud);

/* The daemon's sections, then `extra` sorted by name (the order in which
 * plugins load depends on the directories given). */
static void each_section(FILE *out, cfg_section_ref *extra, size_t nextra, section_fn fn, void *ud)
{
    const char *name;
    const opsc_cfg_entry *map;
    for (size_t i = 0; (map = config_section_map(i, &name)); i++) {
        cfg_section_ref s = {name, section_doc(name), map};
        fn(out, &s, ud);
    }
    if (nextra)
        qsort(extra, nextra, sizeof(*extra), cmp_section);
    for (size_t i = 0; i < nextra; i++)
        fn(out, &extra[i], ud);
}

static void write_ref_section(FILE *out, const cfg_section_ref *s, void *ud)
{
    if (!s->map || !s->map->key)
        return;
    if (*(enum cfg_ref_format *)ud == CFG_REF_MAN)
        man_section(out, s);
    else
        conf_section(out, s);
}

void cfg_write_reference(FILE *out, enum cfg_ref_format fmt, cfg_section_ref *extra, size_t nextra)
{
    each_section(out, extra, nextra, write_ref_section, &fmt);
}

/* ---- the effective configuration ----------------------------------------------------------- */

static void write_effective_section(FILE *out, const cfg_section_ref *s, void *ud)
{
    const cfg_file *f = ud;
    fprintf(out, "\n[%s]\n", s->name);
    for (const opsc_cfg_entry *e = s->map; e && e->key; e++) {
        char origin[512], line[1024];
        const char *v = cfg_effective_text(f, s->name, e, origin, sizeof(origin));
        if (!v)
            v = "";
        if ((e->flags & OPSC_CFG_SECRET) && *v)
            v = "********";
        snprintf(line, sizeof(line), "%s = %s", e->key, v);
        fprintf(out, "%-44s ; %s\n", line, origin);
    }
}

void cfg_write_effective(FILE *out, const cfg_file *f, cfg_section_ref *extra, size_t nextra)
{
    fprintf(out, "; the effective configuration: every key, the value it takes and where that "
                 "comes from\n; (default, file:line, command-line flag or environment); "
                 "secrets are masked\n");
    each_section(out, extra, nextra, write_effective_section, (void *)f);
}

void config_print_keys(FILE *out)
{
    char env[128];
    const char *name;
    const opsc_cfg_entry *map;
    for (size_t i = 0; (map = config_section_map(i, &name)); i++) {
        fprintf(out, "  [%s]\n", name);
        for (const opsc_cfg_entry *e = map; e->key; e++) {
            cfg_env_name(name, e->key, env, sizeof(env));
            fprintf(out, "    %-18s %s (default: %s; env %s)\n", e->key, e->doc,
                    e->def && *e->def ? e->def : "none", env);
        }
    }
}

/* ---- copies of plugin tables -------------------------------------------------------------------
 */

static char *dup_opt(const char *s, bool *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

void cfg_map_free(opsc_cfg_entry *map)
{
    if (!map)
        return;
    for (opsc_cfg_entry *e = map; e->key; e++) {
        free((char *)e->key);
        free((char *)e->def);
        free((char *)e->choices);
        free((char *)e->doc);
    }
    free(map);
}

opsc_cfg_entry *cfg_map_dup(const opsc_cfg_entry *map)
{
    size_t n = 0;
    while (map[n].key)
        n++;
    opsc_cfg_entry *copy = calloc(n + 1, sizeof(*copy));
    if (!copy)
        return NULL;
    bool failed = false;
    for (size_t i = 0; i < n && !failed; i++) {
        copy[i] = map[i];
        copy[i].def = copy[i].choices = copy[i].doc = NULL;
        copy[i].key = dup_opt(map[i].key, &failed);
        if (failed) /* a NULL key ends the table: nothing after it may be allocated */
            break;
        copy[i].def = dup_opt(map[i].def, &failed);
        copy[i].choices = dup_opt(map[i].choices, &failed);
        copy[i].doc = dup_opt(map[i].doc, &failed);
    }
    if (failed) {
        cfg_map_free(copy);
        return NULL;
    }
    return copy;
}
