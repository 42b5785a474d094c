/* plugin_host.c - finding, checking, loading and listing plugins; the registries. */
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "isolation.h"
#include "log.h"
#include "plugin_internal.h"
#include "steptype.h"

plugin_host *plugin_host_current;

int plugin_host_new(plugin_host **out, struct uv_loop_s *loop, const cfg_file *cfg)
{
    plugin_host *h = calloc(1, sizeof(*h));
    if (!h)
        return OPSC_ENOMEM;
    h->loop = loop;
    h->cfg = cfg;
    plugin_host_current = h;
    *out = h;
    return 0;
}

static void plugin_free(plugin *p)
{
    free(p->path);
    free(p->name);
    free(p->version);
    free(p->description);
    free(p->license);
    free(p->reason);
    cfg_map_free(p->cfg_map);
    free(p);
}

static int add_plugin(plugin_host *h, plugin *p)
{
    if (h->nplugins == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        plugin **v = realloc(h->plugins, cap * sizeof(*v));
        if (!v)
            return OPSC_ENOMEM;
        h->plugins = v;
        h->cap = cap;
    }
    h->plugins[h->nplugins++] = p;
    return 0;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static bool name_valid(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-' && *s != '_')
            return false;
    return true;
}

static bool in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        while (*p == ',' || *p == ' ')
            p++;
        size_t len = strcspn(p, ", ");
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p += len;
    }
    return false;
}

/* Step libraries may be installed in several versions side by side; every
 * other plugin is identified by its name alone. */
static plugin *find_loaded(plugin_host *h, const opsc_plugin *d)
{
    for (size_t i = 0; i < h->nplugins; i++) {
        plugin *p = h->plugins[i];
        if (p->state != PLUGIN_LOADED || strcmp(p->name, d->name) != 0)
            continue;
        if (d->kinds == OPSC_KIND_STEPLIB && p->kinds == OPSC_KIND_STEPLIB &&
            strcmp(p->version, d->version ? d->version : "") != 0)
            continue;
        return p;
    }
    return NULL;
}

const char *plugin_host_loaded_path(plugin_host *h, const char *name, const char *version)
{
    opsc_plugin d = {.name = name, .version = version, .kinds = OPSC_KIND_STEPLIB};
    plugin *p = find_loaded(h, &d);
    return p ? p->path : NULL;
}

static int refuse(plugin *p, int code, char *err, size_t errlen, const char *fmt, ...)
    OPSC_PRINTF(5, 6);

static int refuse(plugin *p, int code, char *err, size_t errlen, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    p->state = PLUGIN_REFUSED;
    free(p->reason);
    p->reason = strdup(why);
    snprintf(err, errlen, "%s", why);
    log_error("plugins", "refused %s: %s", p->path, why);
    if (p->dl) {
        dlclose(p->dl);
        p->dl = NULL;
    }
    p->desc = NULL;
    return code;
}

static void copy_descriptor(plugin *p, const opsc_plugin *d)
{
    free(p->name);
    p->name = dup_or_empty(d->name);
    p->version = dup_or_empty(d->version);
    p->description = dup_or_empty(d->description);
    p->license = dup_or_empty(d->license);
    p->kinds = d->kinds;
    p->abi_major = d->abi_major;
    p->abi_minor = d->abi_minor;
}

/* Open the .so and read its descriptor; every failure is a refusal. */
static int open_descriptor(plugin *p, char *err, size_t errlen)
{
    dlerror();
    p->dl = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl)
        return refuse(p, OPSC_EPLUGIN, err, errlen, "cannot load: %s", dlerror());
    opsc_plugin_entry_fn entry;
    *(void **)&entry = dlsym(p->dl, OPSC_PLUGIN_ENTRY_SYMBOL);
    if (!entry)
        return refuse(p, OPSC_EPLUGIN, err, errlen, "no %s symbol: not an OpsConductor plugin",
                      OPSC_PLUGIN_ENTRY_SYMBOL);
    const opsc_plugin *d = entry();
    if (!d || d->size < offsetof(opsc_plugin, shutdown) + sizeof(d->shutdown))
        return refuse(p, OPSC_EPLUGIN, err, errlen, "%s returned no valid descriptor",
                      OPSC_PLUGIN_ENTRY_SYMBOL);
    copy_descriptor(p, d);
    p->desc = d;
    return 0;
}

static int check_descriptor(plugin_host *h, plugin *p, unsigned only_kinds, char *err,
                            size_t errlen)
{
    const opsc_plugin *d = p->desc;
    if (d->abi_major != OPSC_ABI_MAJOR)
        return refuse(p, OPSC_EABI, err, errlen,
                      "built for ABI %u.%u, host speaks %d.%d: the major version must match",
                      d->abi_major, d->abi_minor, OPSC_ABI_MAJOR, OPSC_ABI_MINOR);
    if (d->abi_minor > OPSC_ABI_MINOR)
        return refuse(p, OPSC_EABI, err, errlen,
                      "built for ABI %u.%u, newer than the host's %d.%d: upgrade the daemon",
                      d->abi_major, d->abi_minor, OPSC_ABI_MAJOR, OPSC_ABI_MINOR);
    if (!name_valid(d->name))
        return refuse(p, OPSC_EINVAL, err, errlen, "invalid plugin name (want [a-z0-9-]+)");
    if (!d->init)
        return refuse(p, OPSC_EINVAL, err, errlen, "descriptor has no init function");
    if (only_kinds && (!d->kinds || (d->kinds & ~only_kinds)))
        return refuse(p, OPSC_EINVAL, err, errlen,
                      "declares plugin kinds this installation path does not accept (kinds 0x%x; "
                      "only step libraries can be installed at run time)",
                      d->kinds);
    plugin *other = find_loaded(h, d);
    if (other && d->kinds == OPSC_KIND_STEPLIB && other->kinds == OPSC_KIND_STEPLIB)
        return refuse(p, OPSC_EEXIST, err, errlen, "%s %s is already loaded from %s", d->name,
                      other->version, other->path);
    if (other)
        return refuse(p, OPSC_EEXIST, err, errlen, "name '%s' is already taken by %s", d->name,
                      other->path);
    return 0;
}

static int init_plugin(plugin_host *h, plugin *p, char *err, size_t errlen)
{
    char section[128];
    snprintf(section, sizeof(section), "plugin.%s", p->name);
    struct opsc_config cfg = {h->cfg, section};
    h->initialising = p;
    h->reg_rc = 0;
    h->reg_error[0] = '\0';
    h->init_error[0] = '\0';
    int rc = p->desc->init(plugin_host_api(), &cfg, &p->pstate);
    h->initialising = NULL;
    if (rc != 0) {
        plugin_host_unregister_owner(h, p);
        /* The refused registration says more than init's code (and a
         * duplicate stays a duplicate whatever init returned). */
        int code = h->reg_rc ? h->reg_rc : rc < 0 ? rc : OPSC_EPLUGIN;
        const char *why = h->reg_rc ? h->reg_error : h->init_error;
        return refuse(p, code, err, errlen, "init failed: %s (%s)%s%s", opsc_err_name(rc),
                      opsc_strerror(rc), *why ? ": " : "", why);
    }
    p->state = PLUGIN_LOADED;
    log_info("plugins", "loaded %s %s from %s", p->name, p->version, p->path);
    return 0;
}

static void forget(plugin_host *h, plugin *p)
{
    for (size_t i = 0; i < h->nplugins; i++) {
        if (h->plugins[i] == p) {
            memmove(&h->plugins[i], &h->plugins[i + 1], (h->nplugins - i - 1) * sizeof(p));
            h->nplugins--;
            break;
        }
    }
    plugin_free(p);
}

/* A listed plugin for the file at `path`. */
static plugin *new_plugin(plugin_host *h, const char *path)
{
    plugin *p = calloc(1, sizeof(*p));
    if (!p || !(p->path = strdup(path)) || add_plugin(h, p) < 0) {
        if (p)
            plugin_free(p);
        return NULL;
    }
    return p;
}

/* The end of a load: a refused plugin forgotten when asked. */
static int finish_load(plugin_host *h, plugin *p, int rc, const plugin_load_opts *opts,
                       plugin **out)
{
    if (rc < 0 && opts && opts->forget_refused) {
        forget(h, p);
        p = NULL;
    }
    if (out)
        *out = rc == 0 ? p : NULL;
    return rc;
}

static int check_and_init(plugin_host *h, plugin *p, const plugin_load_opts *opts, plugin **out,
                          char *err, size_t errlen)
{
    int rc = check_descriptor(h, p, opts ? opts->only_kinds : 0, err, errlen);
    if (rc == 0)
        rc = init_plugin(h, p, err, errlen);
    return finish_load(h, p, rc, opts, out);
}

/* A listed plugin for the file at `path`, named by the file until its descriptor is read. */
static plugin *new_file_plugin(plugin_host *h, const char *path)
{
    plugin *p = new_plugin(h, path);
    const char *base = strrchr(path, '/');
    if (p && !(p->name = strdup(base ? base + 1 : path))) {
        forget(h, p);
        return NULL;
    }
    return p;
}

static bool disable(plugin *p, const char *disabled)
{
    if (!disabled || !in_list(disabled, p->name))
        return false;
    p->state = PLUGIN_DISABLED;
    if (p->dl)
        dlclose(p->dl);
    p->dl = NULL;
    p->desc = NULL;
    log_info("plugins", "%s is disabled by configuration", p->name);
    return true;
}

/* The manifest of a library that runs out of process (isolation.h): the one
 * an upload fetched on its worker, or one fetched now. NULL with why. */
static iso_manifest *manifest_of(plugin_host *h, const char *path, const plugin_load_opts *opts,
                                 int *rc, char *why, size_t whylen)
{
    char *text = NULL;
    size_t len = 0;
    iso_manifest *m = NULL;
    if (opts && opts->manifest)
        *rc = iso_manifest_parse(opts->manifest, opts->manifest_len, &m, why, whylen);
    else if ((*rc = iso_manifest_fetch(h, path, &text, &len, why, whylen)) == 0)
        *rc = iso_manifest_parse(text, len, &m, why, whylen);
    free(text);
    return m;
}

/* Listed and registered from its manifest, none of its code loaded here; 1
 * when the daemon loads it itself after all (isolation.h: a plugin of its
 * own directories that needs to be). */
static int load_manifest(plugin_host *h, const char *path, const char *disabled,
                         const plugin_load_opts *opts, plugin **out, char *err, size_t errlen)
{
    char why[512];
    int rc;
    iso_manifest *m = manifest_of(h, path, opts, &rc, why, sizeof(why));
    bool own = !plugin_host_uploaded(h, path);
    if (own && !m && rc == OPSC_ESTATE) {
        log_warn("plugins", "%s: %s: loaded in the daemon", path, why);
        return 1;
    }
    if (own && m && iso_manifest_overridden(h, m)) {
        log_info("plugins", "%s: an admin set its step library to run in process: loaded in the daemon",
                 path);
        iso_manifest_free(m);
        return 1;
    }
    if (own && m && iso_manifest_wants_process(m)) {
        log_info("plugins",
                 "%s provides more than step libraries or binds config keys: loaded "
                 "in the daemon, its imperative steps still run in a step host",
                 path);
        iso_manifest_free(m);
        return 1;
    }
    plugin *p = new_file_plugin(h, path);
    if (!p) {
        iso_manifest_free(m);
        return OPSC_ENOMEM;
    }
    if (!m)
        return finish_load(h, p, refuse(p, rc, err, errlen, "%s", why), opts, out);
    copy_descriptor(p, iso_manifest_plugin(m));
    p->desc = iso_manifest_plugin(m);
    p->pstate = m; /* its init() finds it in *state */
    p->manifest = true;
    if (disable(p, disabled)) {
        iso_manifest_free(m);
        p->pstate = NULL;
        return 0;
    }
    rc = check_descriptor(h, p, opts ? opts->only_kinds : 0, err, errlen);
    if (rc == 0)
        rc = init_plugin(h, p, err, errlen);
    if (rc < 0) { /* refused, so never shut down: the manifest is still ours */
        iso_manifest_free(m);
        p->pstate = NULL;
    }
    return finish_load(h, p, rc, opts, out);
}

static int load_file(plugin_host *h, const char *path, const char *disabled,
                     const plugin_load_opts *opts, plugin **out, char *err, size_t errlen)
{
    if ((opts && opts->manifest) || plugin_host_isolates(h, path)) {
        int rc = load_manifest(h, path, disabled, opts, out, err, errlen);
        if (rc != 1)
            return rc;
    }
    plugin *p = new_file_plugin(h, path);
    if (!p)
        return OPSC_ENOMEM;
    int rc = open_descriptor(p, err, errlen);
    if (rc == 0 && disable(p, disabled))
        return 0;
    return rc < 0 ? finish_load(h, p, rc, opts, out) : check_and_init(h, p, opts, out, err, errlen);
}

int plugin_host_load_desc(plugin_host *h, const char *path, const opsc_plugin *desc, void *state,
                          const plugin_load_opts *opts, plugin **out, char *err, size_t errlen)
{
    plugin *p = new_plugin(h, path);
    if (!p)
        return OPSC_ENOMEM;
    copy_descriptor(p, desc);
    p->desc = desc;
    p->pstate = state; /* init() finds it in *state */
    p->bundle = true;
    return check_and_init(h, p, opts, out, err, errlen);
}

int plugin_host_load_file(plugin_host *h, const char *path, char *err, size_t errlen)
{
    return load_file(h, path, NULL, NULL, NULL, err, errlen);
}

int plugin_host_load(plugin_host *h, const char *path, const plugin_load_opts *opts, plugin **out,
                     char *err, size_t errlen)
{
    return load_file(h, path, NULL, opts, out, err, errlen);
}

void plugin_host_forget(plugin_host *h, plugin *p)
{
    if (p->state == PLUGIN_LOADED && p->desc->shutdown)
        p->desc->shutdown(p->pstate);
    plugin_host_unregister_owner(h, p);
    if (p->dl)
        dlclose(p->dl);
    log_info("plugins", "unloaded %s %s from %s", p->name, p->version, p->path);
    forget(h, p);
}

uint64_t plugin_host_generation(const plugin_host *h)
{
    return h ? h->generation : 0;
}

int plugin_host_retire(plugin_host *h, plugin *p)
{
    if (p->state != PLUGIN_LOADED)
        return OPSC_ESTATE;
    size_t owned = 0;
    for (int k = 0; k < REG__COUNT; k++)
        for (size_t i = 0; i < h->regs[k].n; i++)
            owned += h->regs[k].items[i].owner == p;
    if (plugin_reg_reserve(&h->retired, owned) < 0)
        return OPSC_ENOMEM;
    for (int k = 0; k < REG__COUNT; k++) {
        reg_list *l = &h->regs[k];
        size_t o = 0;
        for (size_t i = 0; i < l->n; i++) {
            if (l->items[i].owner == p)
                h->retired.items[h->retired.n++] = l->items[i];
            else
                l->items[o++] = l->items[i];
        }
        l->n = o;
    }
    p->state = PLUGIN_RETIRED;
    h->generation++;
    log_info("plugins",
             "removed %s %s (%s): nothing new resolves to it; it stays mapped until "
             "the daemon stops",
             p->name, p->version, p->path);
    return 0;
}

int plugin_host_set_path(plugin *p, const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return OPSC_ENOMEM;
    free(p->path);
    p->path = copy;
    return 0;
}

static bool is_so(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && strcmp(name + n - 3, ".so") == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collect *.so paths under dir (and one level of subdirectories), sorted so
 * that load order, and so name-collision winners, are stable. */
static void collect(const char *dir, int depth, char ***paths, size_t *n, size_t *cap)
{
    DIR *d = opendir(dir);
    if (!d) {
        log_warn("plugins", "cannot read plugin directory %s", dir);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
            continue;
        struct stat st;
        if (stat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth > 0) {
            collect(path, depth - 1, paths, n, cap);
        } else if (S_ISREG(st.st_mode) && is_so(e->d_name)) {
            if (*n == *cap) {
                *cap = *cap ? *cap * 2 : 32;
                *paths = realloc(*paths, *cap * sizeof(char *));
            }
            (*paths)[(*n)++] = strdup(path);
        }
    }
    closedir(d);
}

void plugin_host_load_dirs(plugin_host *h, const char *dirs, const char *disabled)
{
    char **paths = NULL;
    size_t n = 0, cap = 0;
    char *copy = strdup(dirs ? dirs : "");
    char *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        size_t first = n;
        collect(dir, 1, &paths, &n, &cap);
        if (n > first) /* an empty directory leaves paths NULL */
            qsort(paths + first, n - first, sizeof(char *), cmp_str);
    }
    free(copy);
    char err[512];
    for (size_t i = 0; i < n; i++) {
        load_file(h, paths[i], disabled, NULL, NULL, err, sizeof(err));
        free(paths[i]);
    }
    free(paths);
}

static void warn_orphan_section(const char *section, int line, void *ud)
{
    plugin_host *h = ud;
    if (strncmp(section, "plugin.", 7) != 0)
        return;
    /* A refused plugin has said why already (often this very section). */
    for (size_t i = 0; i < h->nplugins; i++) {
        const plugin *p = h->plugins[i];
        if (strcmp(p->name, section + 7) != 0)
            continue;
        if (p->state == PLUGIN_DISABLED)
            log_warn("plugins", "%s:%d: [%s]: the plugin is disabled; section ignored",
                     cfg_file_path(h->cfg), line, section);
        return;
    }
    log_warn("plugins", "%s:%d: [%s]: no such plugin is loaded; section ignored",
             cfg_file_path(h->cfg), line, section);
}

void plugin_host_foreach_config(plugin_host *h, plugin_config_fn fn, void *ud)
{
    for (size_t i = 0; i < h->nplugins; i++)
        if (h->plugins[i]->cfg_map)
            fn(h->plugins[i]->name, h->plugins[i]->description, h->plugins[i]->cfg_map, ud);
}

void plugin_host_check_sections(plugin_host *h)
{
    if (h->cfg)
        cfg_file_foreach_section(h->cfg, warn_orphan_section, h);
}

void plugin_host_free(plugin_host *h)
{
    if (!h)
        return;
    plugin_host_curl_stop(h);
    iso_free(h->iso); /* before the libraries go: their hosts hold them open */
    h->iso = NULL;
    for (size_t i = h->nplugins; i-- > 0;) {
        plugin *p = h->plugins[i];
        if ((p->state == PLUGIN_LOADED || p->state == PLUGIN_RETIRED) && p->desc->shutdown)
            p->desc->shutdown(p->pstate);
        plugin_host_unregister_owner(h, p);
    }
    for (size_t i = 0; i < h->retired.n; i++)
        steplib_free(h->retired.items[i].compiled);
    free(h->retired.items);
    for (size_t i = h->nplugins; i-- > 0;) {
        if (h->plugins[i]->dl)
            dlclose(h->plugins[i]->dl);
        plugin_free(h->plugins[i]);
    }
    for (int k = 0; k < REG__COUNT; k++)
        free(h->regs[k].items);
    free(h->plugins);
    free(h->data_dir);
    if (plugin_host_current == h)
        plugin_host_current = NULL;
    free(h);
}

int plugin_host_set_data_dir(plugin_host *h, const char *dir)
{
    char *copy = dir ? strdup(dir) : NULL;
    if (dir && !copy)
        return OPSC_ENOMEM;
    free(h->data_dir);
    h->data_dir = copy;
    return 0;
}

/* ---- registries ------------------------------------------------------- */

size_t plugin_host_count(plugin_host *h, enum plugin_reg_kind kind)
{
    return h->regs[kind].n;
}

const plugin_reg *plugin_host_reg(plugin_host *h, enum plugin_reg_kind kind, size_t i)
{
    return i < h->regs[kind].n ? &h->regs[kind].items[i] : NULL;
}

/* Every registrable descriptor starts with size_t size, then const char *name. */
static const char *reg_name(const plugin_reg *r)
{
    return ((const struct {
               size_t size;
               const char *name;
           } *)r->desc)
        ->name;
}

const plugin_reg *plugin_host_find(plugin_host *h, enum plugin_reg_kind kind, const char *name)
{
    for (size_t i = 0; i < h->regs[kind].n; i++)
        if (strcmp(reg_name(&h->regs[kind].items[i]), name) == 0)
            return &h->regs[kind].items[i];
    return NULL;
}

int plugin_semver_cmp(const char *a, const char *b)
{
    for (int i = 0; i < 3; i++) {
        long x = strtol(a, (char **)&a, 10), y = strtol(b, (char **)&b, 10);
        if (x != y)
            return x < y ? -1 : 1;
        a += *a == '.';
        b += *b == '.';
    }
    return 0;
}

static const plugin_reg *best_steplib(plugin_host *h, const char *name, int major,
                                      const plugin *except)
{
    const plugin_reg *best = NULL;
    for (size_t i = 0; i < h->regs[REG_STEPLIB].n; i++) {
        const plugin_reg *r = &h->regs[REG_STEPLIB].items[i];
        const opsc_steplib *lib = r->desc;
        if (strcmp(lib->name, name) != 0 || (major > 0 && atoi(lib->version) != major) ||
            r->owner == except)
            continue;
        if (!best ||
            plugin_semver_cmp(lib->version, ((const opsc_steplib *)best->desc)->version) > 0)
            best = r;
    }
    return best;
}

const plugin_reg *plugin_host_steplib(plugin_host *h, const char *name, int major)
{
    return best_steplib(h, name, major, NULL);
}

const steptype *plugin_host_steptype(plugin_host *h, const char *ref, const plugin_reg **lib_out,
                                     char *err, size_t errlen)
{
    return plugin_host_steptype_except(h, ref, NULL, lib_out, err, errlen);
}

const steptype *plugin_host_steptype_except(plugin_host *h, const char *ref, const plugin *except,
                                            const plugin_reg **lib_out, char *err, size_t errlen)
{
    char lib[64];
    const char *dot = strchr(ref, '.');
    const char *at = strchr(ref, '@');
    size_t llen = dot ? (size_t)(dot - ref) : 0;
    if (!dot || llen == 0 || llen >= sizeof(lib) || (at && at < dot) || !dot[1] || dot + 1 == at) {
        snprintf(err, errlen, "'%s' is not a step type (want <library>.<step>[@<major>])", ref);
        return NULL;
    }
    memcpy(lib, ref, llen);
    lib[llen] = '\0';
    char *end = NULL;
    long major = at ? strtol(at + 1, &end, 10) : 0;
    if (at && (end == at + 1 || *end || major < 1 || major > 1000)) {
        snprintf(err, errlen, "'%s': the pinned major version after '@' must be a number >= 1", ref);
        return NULL;
    }
    const plugin_reg *r = best_steplib(h, lib, (int)major, except);
    if (!r) {
        if (major && best_steplib(h, lib, 0, except))
            snprintf(err, errlen, "step library '%s' version %ld.x is not installed", lib, major);
        else
            snprintf(err, errlen, "no step library '%s' is loaded", lib);
        return NULL;
    }
    char step[128];
    size_t slen = at ? (size_t)(at - dot - 1) : strlen(dot + 1);
    if (slen >= sizeof(step)) {
        snprintf(err, errlen, "'%s': step name too long", ref);
        return NULL;
    }
    memcpy(step, dot + 1, slen);
    step[slen] = '\0';
    const steptype *st = steplib_find(r->compiled, step);
    if (!st) {
        snprintf(err, errlen, "step library '%s' %s has no step '%s'", lib,
                 ((const opsc_steplib *)r->desc)->version, step);
        return NULL;
    }
    if (lib_out)
        *lib_out = r;
    return st;
}

size_t plugin_host_loaded(plugin_host *h)
{
    size_t n = 0;
    for (size_t i = 0; i < h->nplugins; i++)
        n += h->plugins[i]->state == PLUGIN_LOADED;
    return n;
}

size_t plugin_host_refused(plugin_host *h)
{
    size_t n = 0;
    for (size_t i = 0; i < h->nplugins; i++)
        n += h->plugins[i]->state == PLUGIN_REFUSED;
    return n;
}

static json_t *kinds_json(unsigned kinds)
{
    static const char *const names[] = {"transport", "steplib", "notifier", "scanner", "auth"};
    json_t *a = json_array();
    for (unsigned i = 0; i < 5; i++)
        if (kinds & (1u << i))
            json_array_append_new(a, json_string(names[i]));
    return a;
}

static json_t *provides_json(plugin_host *h, plugin *p)
{
    static const char *const keys[REG__COUNT] = {"transports", "steplibs", "notifiers", "scanners",
                                                 "auth_providers"};
    json_t *o = json_object();
    for (int k = 0; k < REG__COUNT; k++) {
        json_t *a = json_array();
        for (size_t i = 0; i < h->regs[k].n; i++)
            if (h->regs[k].items[i].owner == p)
                json_array_append_new(a, json_string(reg_name(&h->regs[k].items[i])));
        json_object_set_new(o, keys[k], a);
    }
    return o;
}

json_t *plugin_host_list_json(plugin_host *h)
{
    static const char *const states[] = {"pending", "loaded", "refused", "disabled", "removed"};
    json_t *items = json_array();
    for (size_t i = 0; i < h->nplugins; i++) {
        plugin *p = h->plugins[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s}", "name", p->name, "version",
                              p->version ? p->version : "", "state", states[p->state], "path",
                              p->path, "description", p->description ? p->description : "",
                              "kinds", kinds_json(p->kinds), "license",
                              p->license ? p->license : "");
        if (p->version) {
            char abi[32];
            snprintf(abi, sizeof(abi), "%d.%d", p->abi_major, p->abi_minor);
            json_object_set_new(o, "abi", json_string(abi));
        }
        if (p->reason)
            json_object_set_new(o, "reason", json_string(p->reason));
        if (p->state == PLUGIN_LOADED)
            json_object_set_new(o, "provides", provides_json(h, p));
        json_array_append_new(items, o);
    }
    return json_pack("{s:o}", "items", items);
}
