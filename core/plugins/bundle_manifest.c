/* bundle_manifest.c - steplib.json: a bundle's name, version, ABI and step types, checked field by
 * field and turned into the same descriptors a C library registers. The manifest opsc-stephost
 * writes of a C library (shproto.h) lists its step libraries in the same form, read here too. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "bundle_internal.h"

static const char *const top_keys[] = {"name",    "version",    "abi",   "summary", "description",
                                       "license", "executable", "steps", NULL};
static const char *const step_keys[] = {"name",
                                        "summary",
                                        "params_schema",
                                        "outputs_schema",
                                        "os_families",
                                        "posix_template",
                                        "posix_template_file",
                                        "powershell_template",
                                        "output_rule",
                                        "raw_params",
                                        "powershell_template_file",
                                        "executable",
                                        NULL};
/* A C library's step, as opsc-stephost --manifest lists it: no files, no executables. */
static const char *const so_step_keys[] = {"name",
                                           "summary",
                                           "params_schema",
                                           "outputs_schema",
                                           "os_families",
                                           "posix_template",
                                           "powershell_template",
                                           "output_rule",
                                           "raw_params",
                                           "imperative",
                                           NULL};
static const char *const rules[] = {"none",   "json_last_line",   "key_value",
                                    "stdout", "stdout_key_value", NULL};

typedef struct parse {
    bundle *b;
    bool so; /* a C library's manifest: schemas as text, "imperative" instead of executables */
    bundle_file_fn file;
    void *ud;
    char *err;
    size_t errlen;
} parse;

static int bad(parse *ps, int rc, const char *fmt, ...) OPSC_PRINTF(3, 4);

static int bad(parse *ps, int rc, const char *fmt, ...)
{
    int n = snprintf(ps->err, ps->errlen, "%s: ", ps->so ? "its manifest" : BUNDLE_MANIFEST);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return rc;
}

static int only_keys(parse *ps, json_t *o, const char *const *valid, const char *where)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        size_t i = 0;
        while (valid[i] && strcmp(valid[i], key) != 0)
            i++;
        if (valid[i])
            continue;
        char list[400] = "";
        for (size_t k = 0, o2 = 0; valid[k] && o2 < sizeof(list); k++)
            o2 += (size_t)snprintf(list + o2, sizeof(list) - o2, "%s%s", k ? ", " : "", valid[k]);
        return bad(ps, OPSC_EINVAL, "%s%s: unknown key (valid: %s)", where, key, list);
    }
    return 0;
}

/* A string member, or NULL when absent; a member of another type is an error. */
static int str(parse *ps, json_t *o, const char *key, const char *where, bool required,
               const char **out)
{
    json_t *v = json_object_get(o, key);
    *out = json_string_value(v);
    if ((v && !json_is_string(v)) || (required && !*out))
        return bad(ps, OPSC_EINVAL, "%s%s: %s", where, key, v ? "must be a string" : "is required");
    return 0;
}

static const char *keep(parse *ps, json_t *s)
{
    json_array_append_new(ps->b->pool, s);
    return json_string_value(s);
}

static int schema(parse *ps, json_t *step, const char *key, const char *where, const char **out)
{
    json_t *v = json_object_get(step, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (ps->so && json_is_string(v)) { /* the library's text: compiling it names its faults */
        *out = json_string_value(v);
        return 0;
    }
    if (!json_is_object(v))
        return bad(ps, OPSC_EINVAL, "%s%s: must be a JSON Schema object", where, key);
    char *text = json_dumps(v, JSON_COMPACT);
    *out = text ? keep(ps, json_string(text)) : NULL;
    free(text);
    return *out ? 0 : OPSC_ENOMEM;
}

/* A ','-separated list from a string or an array of strings. */
static int list(parse *ps, json_t *step, const char *key, const char *where, const char **out)
{
    json_t *v = json_object_get(step, key), *item;
    *out = NULL;
    if (!v || json_is_string(v)) {
        *out = json_string_value(v);
        return 0;
    }
    char buf[512] = "";
    size_t i, o = 0;
    if (!json_is_array(v))
        return bad(ps, OPSC_EINVAL, "%s%s: must be a string or an array of strings", where, key);
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item) || o >= sizeof(buf) - 1)
            return bad(ps, OPSC_EINVAL, "%s%s[%zu]: must be a string", where, key, i);
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? "," : "",
                              json_string_value(item));
    }
    *out = keep(ps, json_string(buf));
    return 0;
}

static int template(parse *ps, json_t *step, const char *key, const char *where, const char **out)
{
    char file_key[64];
    snprintf(file_key, sizeof(file_key), "%s_file", key);
    const char *inline_text, *file;
    int rc = str(ps, step, key, where, false, &inline_text);
    if (rc == 0)
        rc = str(ps, step, file_key, where, false, &file);
    if (rc < 0)
        return rc;
    if (inline_text && file)
        return bad(ps, OPSC_EINVAL, "%s%s: give %s or %s, not both", where, file_key, key,
                   file_key);
    *out = inline_text;
    if (!file)
        return 0;
    char *text = NULL;
    size_t len = 0;
    bool exec;
    if (ps->file(ps->ud, file, &text, &len, &exec) < 0)
        return bad(ps, OPSC_EINVAL, "%s%s: '%s' is not a file of the bundle", where, file_key,
                   file);
    json_t *s = memchr(text, '\0', len) ? NULL : json_stringn(text, len);
    free(text);
    if (!s)
        return bad(ps, OPSC_EINVAL, "%s%s: '%s' is not UTF-8 text", where, file_key, file);
    *out = keep(ps, s);
    return 0;
}

static int output_rule(parse *ps, json_t *step, const char *where, opsc_output_rule *out)
{
    json_t *n = json_object_get(step, "output_rule");
    if (ps->so && json_is_integer(n)) { /* none of the names: compiling refuses it */
        *out = (opsc_output_rule)json_integer_value(n);
        return 0;
    }
    const char *r;
    int rc = str(ps, step, "output_rule", where, false, &r);
    *out = OPSC_OUTPUT_NONE;
    for (int i = 0; rc == 0 && r && rules[i]; i++)
        if (strcmp(rules[i], r) == 0) {
            *out = (opsc_output_rule)i;
            return 0;
        }
    if (rc == 0 && r)
        rc = bad(ps, OPSC_EINVAL,
                 "%soutput_rule: '%s' is none of none, json_last_line, key_value, stdout, "
                 "stdout_key_value",
                 where, r);
    return rc;
}

/* Imperative steps never run in the daemon (isolation.c sends them to
 * bundle_run()); this is what a run() says when there is no step host. */
static int not_in_process(opsc_step_ctx *ctx, void *state)
{
    const bundle *b = state;
    return plugin_host_api()->step_fail(ctx,
                                        "%s %s: the steps of a %s run only in the step host "
                                        "(opsc-stephost), and this daemon has none configured",
                                        b->lib.name, b->lib.version,
                                        b->so ? "library loaded from its manifest" : "bundle");
}

/* A C library's imperative step: run() is in the library, which only a step host loads. */
static int so_imperative(parse *ps, json_t *step, const char *where, bundle_step *s)
{
    json_t *v = json_object_get(step, "imperative");
    if (v && !json_is_boolean(v))
        return bad(ps, OPSC_EINVAL, "%simperative: must be true or false", where);
    s->type.run = json_is_true(v) ? not_in_process : NULL;
    return 0;
}

static int step_exec(parse *ps, json_t *step, const char *where, const char *fallback,
                     bundle_step *s)
{
    const char *exe;
    int rc = str(ps, step, "executable", where, false, &exe);
    if (rc < 0)
        return rc;
    exe = exe ? exe : fallback;
    if (!exe)
        return bad(ps, OPSC_EINVAL,
                   "%s: neither a template (posix_template, powershell_template) nor an "
                   "executable (here or at the top)",
                   where);
    bool x = false;
    if (ps->file(ps->ud, exe, NULL, NULL, &x) < 0 || !x)
        return bad(ps, OPSC_EINVAL, "%sexecutable: '%s' is %s", where, exe,
                   x ? "" : "not an executable file of the bundle (mode 0755)");
    s->type.run = not_in_process;
    s->exec = strdup(exe);
    return s->exec ? 0 : OPSC_ENOMEM;
}

static int one_step(parse *ps, json_t *step, size_t i, const char *fallback, bundle_step *s)
{
    char where[48];
    snprintf(where, sizeof(where), "steps[%zu].", i);
    opsc_step_type *t = &s->type;
    t->size = sizeof(*t);
    if (!json_is_object(step))
        return bad(ps, OPSC_EINVAL, "steps[%zu]: must be an object", i);
    int rc = only_keys(ps, step, ps->so ? so_step_keys : step_keys, where);
    if (rc == 0)
        rc = str(ps, step, "name", where, true, &t->name);
    if (rc == 0)
        rc = str(ps, step, "summary", where, false, &t->summary);
    if (rc == 0)
        rc = schema(ps, step, "params_schema", where, &t->params_schema);
    if (rc == 0)
        rc = schema(ps, step, "outputs_schema", where, &t->outputs_schema);
    if (rc == 0)
        rc = list(ps, step, "os_families", where, &t->os_families);
    if (rc == 0)
        rc = list(ps, step, "raw_params", where, &t->raw_params);
    if (rc == 0)
        rc = template(ps, step, "posix_template", where, &t->posix_template);
    if (rc == 0)
        rc = template(ps, step, "powershell_template", where, &t->powershell_template);
    if (rc == 0)
        rc = output_rule(ps, step, where, &t->output_rule);
    if (rc == 0 && ps->so)
        rc = so_imperative(ps, step, where, s); /* both or neither: compiling says which */
    else if (rc == 0 && !t->posix_template && !t->powershell_template)
        rc = step_exec(ps, step, where, fallback, s);
    else if (rc == 0 && json_object_get(step, "executable"))
        rc = bad(ps, OPSC_EINVAL, "%sexecutable: a step with a template runs no executable", where);
    return rc;
}

static int abi(parse *ps, json_t *m)
{
    const char *v;
    int rc = str(ps, m, "abi", "", true, &v);
    unsigned major = 0, minor = 0;
    char end;
    if (rc == 0 && sscanf(v, "%u.%u%c", &major, &minor, &end) != 2)
        rc = bad(ps, OPSC_EINVAL, "abi: '%s' is not major.minor (this daemon speaks %d.%d)", v,
                 OPSC_ABI_MAJOR, OPSC_ABI_MINOR);
    if (rc == 0 && (major != OPSC_ABI_MAJOR || minor > OPSC_ABI_MINOR))
        rc = bad(ps, OPSC_EABI, "abi: written for %u.%u, the daemon speaks %d.%d: %s", major, minor,
                 OPSC_ABI_MAJOR, OPSC_ABI_MINOR,
                 major != OPSC_ABI_MAJOR ? "the major version must match" : "upgrade the daemon");
    ps->b->plugin.abi_major = (uint16_t)major;
    ps->b->plugin.abi_minor = (uint16_t)minor;
    return rc;
}

static int header(parse *ps, json_t *m, const char **exe)
{
    bundle *b = ps->b;
    int rc = only_keys(ps, m, top_keys, "");
    if (rc == 0)
        rc = str(ps, m, "name", "", true, &b->lib.name);
    if (rc == 0)
        rc = str(ps, m, "version", "", true, &b->lib.version);
    if (rc == 0)
        rc = str(ps, m, "summary", "", false, &b->lib.summary);
    if (rc == 0)
        rc = str(ps, m, "description", "", false, &b->plugin.description);
    if (rc == 0)
        rc = str(ps, m, "license", "", false, &b->plugin.license);
    if (rc == 0)
        rc = str(ps, m, "executable", "", false, exe);
    if (rc == 0)
        rc = abi(ps, m);
    if (rc == 0 && (strlen(b->lib.name) > 63 || strlen(b->lib.version) > 31))
        rc = bad(ps, OPSC_EINVAL, "%s: longer than %d bytes",
                 strlen(b->lib.name) > 63 ? "name" : "version", strlen(b->lib.name) > 63 ? 63 : 31);
    if (rc == 0 && !json_is_array(json_object_get(m, "steps")))
        rc = bad(ps, OPSC_EINVAL, "steps: must be an array of step types");
    return rc;
}

static int fill(parse *ps, json_t *m)
{
    bundle *b = ps->b;
    const char *exe = NULL;
    int rc = header(ps, m, &exe);
    if (rc < 0)
        return rc;
    json_t *steps = json_object_get(m, "steps");
    b->nsteps = json_array_size(steps);
    b->steps = calloc(b->nsteps + 1, sizeof(*b->steps));
    b->types = calloc(b->nsteps + 1, sizeof(*b->types));
    if (!b->steps || !b->types)
        return OPSC_ENOMEM;
    for (size_t i = 0; i < b->nsteps && rc == 0; i++) {
        rc = one_step(ps, json_array_get(steps, i), i, exe, &b->steps[i]);
        b->types[i] = &b->steps[i].type;
    }
    b->lib.size = sizeof(b->lib);
    b->lib.types = b->types;
    b->plugin.size = sizeof(b->plugin);
    b->plugin.name = b->lib.name;
    b->plugin.version = b->lib.version;
    b->plugin.kinds = OPSC_KIND_STEPLIB;
    return rc;
}

static int from_json(json_t *m, bool so, bundle_file_fn file, void *ud, bundle **out, char *err,
                     size_t errlen)
{
    bundle *b = calloc(1, sizeof(*b));
    if (!b || !(b->pool = json_array())) {
        free(b);
        json_decref(m);
        return OPSC_ENOMEM;
    }
    b->manifest = m;
    b->so = so;
    parse ps = {b, so, file, ud, err, errlen};
    int rc = fill(&ps, m);
    if (rc < 0) {
        bundle_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int bundle_manifest_parse(const char *text, size_t len, bundle_file_fn file, void *ud, bundle **out,
                          char *err, size_t errlen)
{
    *out = NULL;
    json_error_t je;
    json_t *m = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!m || !json_is_object(m)) {
        if (m)
            snprintf(err, errlen, BUNDLE_MANIFEST ": must be a JSON object");
        else
            snprintf(err, errlen, BUNDLE_MANIFEST " %d:%d: %s", je.line, je.column, je.text);
        json_decref(m);
        return OPSC_EINVAL;
    }
    return from_json(m, false, file, ud, out, err, errlen);
}

/* A C library's files are its own business: no template comes from one. */
static int no_file(void *ud, const char *path, char **text, size_t *len, bool *exec)
{
    (void)ud, (void)path, (void)text, (void)len, (void)exec;
    return OPSC_ENOENT;
}

int bundle_manifest_so(json_t *lib, bundle **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!json_is_object(lib)) {
        json_decref(lib);
        snprintf(err, errlen, "its manifest: a step library must be a JSON object");
        return OPSC_EINVAL;
    }
    return from_json(lib, true, no_file, NULL, out, err, errlen);
}

void bundle_free(bundle *b)
{
    if (!b)
        return;
    for (size_t i = 0; b->steps && i < b->nsteps; i++)
        free(b->steps[i].exec);
    free(b->steps);
    free(b->types);
    json_decref(b->manifest);
    json_decref(b->pool);
    free(b->dir);
    free(b);
}

const char *bundle_step_exec(const bundle *b, const opsc_step_type *t)
{
    for (size_t i = 0; i < b->nsteps; i++)
        if (&b->steps[i].type == t)
            return b->steps[i].exec;
    return NULL;
}

const char *bundle_dir(const bundle *b)
{
    return b->dir;
}
