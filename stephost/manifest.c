/* manifest.c - opsc-stephost --manifest: what a step library declares (its descriptor, and the
 * step types its init() registers), read inside the sandbox so that the daemon never runs any of
 * the library's code to learn it (shproto.h describes the document). */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "shproto.h"
#include "stephost_internal.h"

static const char *const rules[] = {"none", "json_last_line", "key_value", "stdout",
                                    "stdout_key_value"};

static json_t *str(const char *s)
{
    return shp_string(s, s ? strlen(s) : 0);
}

/* Absent, not null: what the library left NULL (steplib.json has no nulls). */
static void set(json_t *o, const char *key, const char *s)
{
    if (s)
        json_object_set_new(o, key, str(s));
}

static json_t *step_json(const opsc_step_type *t)
{
    json_t *o = json_object();
    if (t->size < offsetof(opsc_step_type, run) + sizeof(t->run)) /* the daemon refuses it */
        return o;
    unsigned rule = (unsigned)t->output_rule;
    set(o, "name", t->name);
    set(o, "summary", t->summary);
    set(o, "params_schema", t->params_schema);
    set(o, "outputs_schema", t->outputs_schema);
    set(o, "os_families", t->os_families);
    set(o, "posix_template", t->posix_template);
    set(o, "powershell_template", t->powershell_template);
    json_object_set_new(o, "output_rule",
                        rule < sizeof(rules) / sizeof(rules[0]) ? json_string(rules[rule])
                                                                : json_integer(rule));
    if (t->size >= offsetof(opsc_step_type, raw_params) + sizeof(t->raw_params))
        set(o, "raw_params", t->raw_params);
    json_object_set_new(o, "imperative", json_boolean(t->run != NULL));
    return o;
}

/* A steplib.json document (bundle.h) of the registered library. */
static json_t *steplib_json(const opsc_steplib *lib, char *err, size_t errlen)
{
    char abi[32];
    snprintf(abi, sizeof(abi), "%u.%u", sh.plugin->abi_major, sh.plugin->abi_minor);
    json_t *steps = json_array();
    size_t n = 0;
    for (const opsc_step_type *const *t = lib->types; t && *t; t++) {
        if (++n > SHP_MANIFEST_TYPES) {
            snprintf(err, errlen, "registers more than %d step types", SHP_MANIFEST_TYPES);
            json_decref(steps);
            return NULL;
        }
        json_array_append_new(steps, step_json(*t));
    }
    json_t *o = json_pack("{s:s, s:o}", "abi", abi, "steps", steps);
    set(o, "name", lib->name);
    set(o, "version", lib->version);
    set(o, "summary", lib->summary);
    set(o, "description", sh.plugin->description);
    set(o, "license", sh.plugin->license);
    return o;
}

static json_t *plugin_json(const opsc_plugin *d)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:i, s:i, s:i, s:b}", "name", str(d->name), "version",
                     str(d->version), "description", str(d->description), "license",
                     str(d->license), "kinds", (int)d->kinds, "abi_major", (int)d->abi_major,
                     "abi_minor", (int)d->abi_minor, "init", d->init != NULL);
}

/* init() only for what the daemon would call it for: a step library of its ABI. */
static void run_init(json_t *m)
{
    const opsc_plugin *d = sh.plugin;
    if (d->abi_major != OPSC_ABI_MAJOR || d->abi_minor > OPSC_ABI_MINOR || !d->init ||
        d->kinds != OPSC_KIND_STEPLIB)
        return;
    sh.manifest = true;
    sh.init_log = json_array();
    void *state = NULL;
    int rc = d->init(sh_host_api(), (const opsc_config *)&sh, &state);
    json_object_set_new(
        m, "init",
        json_pack("{s:i, s:b, s:O}", "rc", rc, "config_keys", sh.config_keys, "log", sh.init_log));
    json_t *libs = json_array();
    char err[128] = "";
    json_t *lib = rc == 0 && sh.lib ? steplib_json(sh.lib, err, sizeof(err)) : NULL;
    if (lib)
        json_array_append_new(libs, lib);
    json_object_set_new(m, "steplibs", libs);
    if (err[0])
        json_object_set_new(m, "error", json_string(err));
}

/* The daemon's own words for these refusals (plugin_host.c). */
static void describe(const char *path, json_t *m)
{
    char err[600];
    dlerror();
    sh.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!sh.dl) {
        snprintf(err, sizeof(err), "cannot load: %s", dlerror());
        json_object_set_new(m, "error", str(err));
        return;
    }
    opsc_plugin_entry_fn entry = (opsc_plugin_entry_fn)dlsym(sh.dl, OPSC_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        json_object_set_new(
            m, "error",
            json_string("no " OPSC_PLUGIN_ENTRY_SYMBOL " symbol: not an OpsConductor plugin"));
        return;
    }
    sh.plugin = entry();
    if (!sh.plugin ||
        sh.plugin->size < offsetof(opsc_plugin, shutdown) + sizeof(sh.plugin->shutdown)) {
        json_object_set_new(m, "error",
                            json_string(OPSC_PLUGIN_ENTRY_SYMBOL " returned no valid descriptor"));
        return;
    }
    json_object_set_new(m, "plugin", plugin_json(sh.plugin));
    run_init(m);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

void sh_manifest(const char *library, const char *user, uint64_t memory_limit)
{
    /* The document goes to the daemon's pipe; what the library prints goes nowhere. */
    int out = fcntl(1, F_DUPFD_CLOEXEC, 3);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (out < 0 || null < 0 || dup2(null, 1) < 0)
        _exit(2);
    close(null);
    signal(SIGPIPE, SIG_IGN);
    json_t *m = json_pack("{s:i}", "manifest", 1);
    json_t *notes = json_array();
    char err[512] = "", load_path[64 + PATH_MAX];
    if (sh_sandbox(library, user, memory_limit, notes, load_path, sizeof(load_path), err,
                   sizeof(err)) < 0) {
        json_object_set_new(m, "error", str(err));
        json_object_set_new(m, "unconfined", json_true()); /* the library was not touched */
    } else
        describe(load_path, m);
    json_object_set_new(m, "sandbox", notes);
    char *text = json_dumps(m, JSON_COMPACT);
    if (text && strlen(text) <= SHP_MANIFEST_MAX)
        write_all(out, text, strlen(text));
    else
        dprintf(out, "{\"manifest\": 1, \"error\": \"its manifest is larger than %u bytes\"}",
                SHP_MANIFEST_MAX);
    /* _exit: no destructors of a library that may be in any state. */
    _exit(0);
}
