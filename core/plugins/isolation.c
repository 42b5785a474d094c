/* isolation.c - which step libraries run out of the daemon's process ([steplibs] isolation), their
 * records (host, restarts, crashes, quarantine), and what the API shows of them. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "build_config.h"
#include "isolation_internal.h"
#include "log.h"
#include "privsep.h"
#include "plugin_internal.h"
#include "util.h"

/* Loop: quarantines the reader threads noted. */
static void on_wake(uv_async_t *a)
{
    isolation *iso = a->data;
    pthread_mutex_lock(&iso->mu);
    for (iso_lib *l = iso->libs; l; l = l->next) {
        pthread_mutex_lock(&l->mu);
        bool tell = l->untold;
        char reason[sizeof(l->reason)];
        snprintf(reason, sizeof(reason), "%s", l->reason);
        l->untold = false;
        pthread_mutex_unlock(&l->mu);
        if (tell && iso->hook) /* name and version never change */
            iso->hook(iso->hook_ud, l->name, l->version, reason);
    }
    pthread_mutex_unlock(&iso->mu);
}

void plugin_host_set_quarantine_hook(plugin_host *h, iso_quarantine_fn fn, void *ud)
{
    if (!h || !h->iso)
        return;
    h->iso->hook = fn;
    h->iso->hook_ud = ud;
}

/* Who starts the hosts, said once: a daemon running as root starts them
 * itself (each drops to the host user on its own); one that dropped from
 * root to its own user, through the step hosts' helper; any other, itself,
 * and they run as its own user. */
static privsep_hosts *hosts_helper(plugin_host *h, const isolation *iso)
{
    privsep_hosts *hosts = privsep_hosts_of(h->privsep);
    char why[640];
    if (iso->o.mode == ISO_NEVER)
        return NULL;
    if (geteuid() == 0) {
        if (iso->user && *iso->user)
            log_info("steplibs", "step hosts start as root and become %s themselves", iso->user);
        else
            log_warn("steplibs", "step hosts run as root: no [steplibs] host_user is set");
        return NULL;
    }
    if (!hosts) {
        log_warn("steplibs",
                 "step hosts run as the daemon's own user (uid %u), not as %s: start the daemon "
                 "as root with [server] user, or with CAP_SETUID and CAP_SETGID, for that",
                 (unsigned)geteuid(), iso->user);
        return NULL;
    }
    if (privsep_hosts_available(hosts, why, sizeof(why)) < 0)
        log_error("steplibs", "step hosts cannot start: %s", why);
    else
        log_info("steplibs", "%s", why);
    return hosts;
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

int plugin_host_set_isolation(plugin_host *h, const iso_opts *o)
{
    isolation *iso = calloc(1, sizeof(*iso));
    uv_async_t *wake = malloc(sizeof(*wake));
    if (!iso || !wake || uv_async_init(h->loop, wake, on_wake) < 0) {
        free(iso);
        free(wake);
        return OPSC_ENOMEM;
    }
    wake->data = iso;
    uv_unref((uv_handle_t *)wake); /* it never keeps the loop alive */
    iso->wake = wake;
    iso->o = *o;
    iso->o.install_dir = iso->o.stephost = iso->o.user = NULL;
    iso->user = strdup(o->user && *o->user ? o->user : "");
    iso->install_raw = strdup(o->install_dir ? o->install_dir : "");
    privsep_find_stephost(o->stephost, iso->stephost, sizeof(iso->stephost));
    iso->hosts = hosts_helper(h, iso);
    iso->overrides = json_object();
    pthread_mutex_init(&iso->mu, NULL);
    if (h->iso)
        iso_free(h->iso);
    h->iso = iso;
    return 0;
}

/* Is `path` in the install directory (an uploaded library)? The policy is
 * set before install.c makes the folder: it is resolved once it exists. */
static bool installed_path(isolation *iso, const char *path)
{
    char real[PATH_MAX], dir[PATH_MAX];
    pthread_mutex_lock(&iso->mu);
    if (!iso->install_dir && iso->install_raw && *iso->install_raw &&
        realpath(iso->install_raw, dir)) {
        size_t n = strlen(dir);
        if ((iso->install_dir = malloc(n + 2)))
            snprintf(iso->install_dir, n + 2, "%s/", dir);
    }
    bool in = iso->install_dir && path && realpath(path, real) &&
              strncmp(real, iso->install_dir, strlen(iso->install_dir)) == 0;
    pthread_mutex_unlock(&iso->mu);
    return in;
}

/* Does the library at `path` run out of process? */
static bool isolated_path(isolation *iso, const char *path)
{
    if (!iso || iso->o.mode == ISO_NEVER)
        return false;
    return iso->o.mode == ISO_ALWAYS || installed_path(iso, path);
}

bool plugin_host_isolates(plugin_host *h, const char *path)
{
    return isolated_path(h ? h->iso : NULL, path);
}

bool plugin_host_uploaded(plugin_host *h, const char *path)
{
    return h && h->iso && installed_path(h->iso, path);
}

/* With iso->mu held. */
static iso_lib *find_lib(isolation *iso, const char *name, const char *version)
{
    for (iso_lib *l = iso->libs; l; l = l->next)
        if (strcmp(l->name, name) == 0 && strcmp(l->version, version) == 0)
            return l;
    return NULL;
}

static iso_lib *lib_new(isolation *iso, const char *name, const char *version, const char *path)
{
    iso_lib *l = calloc(1, sizeof(*l));
    if (!l || !(l->name = strdup(name)) || !(l->version = strdup(version)) ||
        !(l->path = strdup(path))) {
        if (l) {
            free(l->name);
            free(l->version);
        }
        free(l);
        return NULL;
    }
    l->iso = iso;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->next = iso->libs;
    iso->libs = l;
    return l;
}

/* ---- an admin's override ---------------------------------------------------------------------- */

static const char *const override_names[] = {"default", "process", "in_process"};

static int override_of(isolation *iso, const char *name)
{
    if (!iso || !name)
        return ISO_OV_DEFAULT;
    pthread_mutex_lock(&iso->mu);
    const char *v = json_string_value(json_object_get(iso->overrides, name));
    pthread_mutex_unlock(&iso->mu);
    return v && strcmp(v, "process") == 0      ? ISO_OV_PROCESS
           : v && strcmp(v, "in_process") == 0 ? ISO_OV_IN_PROCESS
                                               : ISO_OV_DEFAULT;
}

static bool may_run_here(isolation *iso, const char *path)
{
    size_t n = path ? strlen(path) : 0, s = strlen(BUNDLE_SUFFIX);
    bool is_bundle = n > s && strcmp(path + n - s, BUNDLE_SUFFIX) == 0;
    return !is_bundle && (!iso || iso->o.mode == ISO_NEVER || !installed_path(iso, path));
}

/* Do the steps of library `name` at `path` run in a host? `here`: the daemon
 * loaded its code (not only its manifest). */
static bool runs_in_host(isolation *iso, const char *name, const char *path, bool here)
{
    int ov = override_of(iso, name);
    if (ov == ISO_OV_PROCESS)
        return iso != NULL;
    if (ov == ISO_OV_IN_PROCESS && may_run_here(iso, path))
        return !here;
    return !here || isolated_path(iso, path);
}

/* The plugin loaded from `path`: its code is in the daemon (not only its manifest)? */
static bool loaded_here(plugin_host *h, const char *path)
{
    for (size_t i = 0; h && path && i < h->nplugins; i++)
        if (h->plugins[i]->path && strcmp(h->plugins[i]->path, path) == 0 &&
            h->plugins[i]->state == PLUGIN_LOADED)
            return !h->plugins[i]->manifest;
    return true;
}

int plugin_host_isolation_override(plugin_host *h, const char *name, int ov)
{
    isolation *iso = h ? h->iso : NULL;
    if (!iso || !name || ov < ISO_OV_DEFAULT || ov > ISO_OV_IN_PROCESS)
        return OPSC_EINVAL;
    iso_lib *mine[64]; /* its versions that ran out of process: records live until iso_free */
    size_t n = 0;
    pthread_mutex_lock(&iso->mu);
    int rc = ov == ISO_OV_DEFAULT
                 ? (json_object_del(iso->overrides, name), 0)
                 : json_object_set_new(iso->overrides, name, json_string(override_names[ov]));
    for (iso_lib *l = iso->libs; l && n < sizeof(mine) / sizeof(mine[0]); l = l->next)
        if (strcmp(l->name, name) == 0 && !l->bundle)
            mine[n++] = l;
    pthread_mutex_unlock(&iso->mu); /* may_run_here() takes it */
    /* A host it leaves idle goes now; one with steps in flight once they end (iso_run). */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        iso_lib *l = mine[i];
        bool retire = ov == ISO_OV_IN_PROCESS && may_run_here(iso, l->path) &&
                      loaded_here(h, l->path);
        pthread_mutex_lock(&l->mu);
        l->retire = retire;
        if (l->retire && l->users == 0 && l->proc) {
            l->proc->ours = true;
            iso_proc_kill(l->proc, SIGTERM, "was stopped: an admin moved the library in process");
        }
        pthread_mutex_unlock(&l->mu);
    }
    return rc < 0 ? OPSC_ENOMEM : 0;
}

int plugin_host_isolation_override_of(plugin_host *h, const char *name)
{
    return override_of(h ? h->iso : NULL, name);
}

bool plugin_host_isolation_may_run_here(plugin_host *h, const char *path)
{
    return may_run_here(h ? h->iso : NULL, path);
}

iso_lib *plugin_host_isolated(plugin_host *h, const plugin_reg *reg)
{
    isolation *iso = h ? h->iso : NULL;
    const opsc_steplib *d = reg ? reg->desc : NULL;
    const char *path = reg && reg->owner ? reg->owner->path : NULL;
    bool is_bundle =
        reg && bundle_is(reg->owner); /* whatever the policy: no code of it loads here */
    if (!d || !iso ||
        (!is_bundle && !runs_in_host(iso, d->name, path, reg->owner && !reg->owner->manifest)))
        return NULL;
    pthread_mutex_lock(&iso->mu);
    iso_lib *l = find_lib(iso, d->name, d->version);
    if (!l)
        l = lib_new(iso, d->name, d->version, path);
    if (l && is_bundle)
        l->bundle = reg->state;
    pthread_mutex_unlock(&iso->mu);
    if (l) {
        pthread_mutex_lock(&l->mu);
        l->retire = false;
        pthread_mutex_unlock(&l->mu);
    }
    return l;
}

/* What an admin chose, and whether it waits for the next start. */
static json_t *with_override(json_t *v, int ov, bool restart)
{
    json_object_set_new(v, "override",
                        ov == ISO_OV_DEFAULT ? json_null() : json_string(override_names[ov]));
    json_object_set_new(v, "restart_needed", json_boolean(restart));
    return v;
}

json_t *plugin_host_isolation_json(plugin_host *h, const char *name, const char *version,
                                   const char *path)
{
    isolation *iso = h ? h->iso : NULL;
    size_t n = path ? strlen(path) : 0, s = strlen(BUNDLE_SUFFIX);
    bool is_bundle = n > s && strcmp(path + n - s, BUNDLE_SUFFIX) == 0;
    int ov = override_of(iso, name);
    bool in_host = is_bundle || runs_in_host(iso, name, path, loaded_here(h, path));
    bool restart = ov == ISO_OV_IN_PROCESS && in_host && may_run_here(iso, path);
    if (!in_host)
        return with_override(json_pack("{s:s, s:n, s:i, s:i, s:b, s:n}", "runs", "in_process",
                                       "pid", "restarts", 0, "crashes", 0, "quarantined", false,
                                       "reason"),
                             ov, false);
    iso_lib *l = NULL;
    if (iso) {
        pthread_mutex_lock(&iso->mu);
        l = find_lib(iso, name, version);
        pthread_mutex_unlock(&iso->mu);
    }
    if (!l)
        return with_override(json_pack("{s:s, s:n, s:i, s:i, s:b, s:n}", "runs", "process", "pid",
                                       "restarts", 0, "crashes", 0, "quarantined", false, "reason"),
                             ov, restart);
    pthread_mutex_lock(&l->mu);
    uint64_t now = clock_mono_ms();
    int recent = 0;
    for (int i = 0; i < ISO_CRASHES && i < l->ncrash; i++)
        recent += now - l->crash_ms[i] <= ISO_CRASH_WINDOW;
    json_t *v =
        json_pack("{s:s, s:o, s:i, s:i, s:b, s:o}", "runs", "process", "pid",
                  l->proc && !l->proc->dead ? json_integer(l->proc->child.pid) : json_null(), "restarts",
                  l->starts > 0 ? l->starts - 1 : 0, "crashes", recent, "quarantined",
                  l->quarantined, "reason", l->quarantined ? json_string(l->reason) : json_null());
    pthread_mutex_unlock(&l->mu);
    return with_override(v, ov, restart);
}

int plugin_host_isolation_reenable(plugin_host *h, const char *name, const char *version)
{
    isolation *iso = h ? h->iso : NULL;
    if (!iso)
        return OPSC_ENOENT;
    pthread_mutex_lock(&iso->mu);
    iso_lib *l = find_lib(iso, name, version);
    pthread_mutex_unlock(&iso->mu);
    if (!l)
        return OPSC_ENOENT;
    pthread_mutex_lock(&l->mu);
    int rc = l->quarantined ? 0 : OPSC_ESTATE;
    l->quarantined = false;
    l->ncrash = 0;
    l->not_before = 0;
    pthread_mutex_unlock(&l->mu);
    if (rc == 0)
        log_warn("steplibs", "%s %s re-enabled after its quarantine", name, version);
    return rc;
}

/* Kill its host and wait (a little) for the threads that use it. */
static bool lib_stop(iso_lib *l)
{
    pthread_mutex_lock(&l->mu);
    if (l->proc) {
        l->proc->ours = true;
        iso_proc_kill(l->proc, SIGKILL, "was stopped with the daemon");
    }
    uint64_t until = clock_mono_ms() + 3000;
    while ((l->readers > 0 || l->users > 0) && clock_mono_ms() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    }
    bool idle = l->readers == 0 && l->users == 0 && !l->proc;
    pthread_mutex_unlock(&l->mu);
    return idle;
}

void iso_free(isolation *iso)
{
    if (!iso)
        return;
    bool stuck = false;
    while (iso->libs) {
        iso_lib *l = iso->libs;
        iso->libs = l->next;
        if (!lib_stop(l)) { /* a thread still uses it: leave it, as the executor leaves a step */
            log_error("steplibs", "the step host of %s %s did not end", l->name, l->version);
            stuck = true;
            continue;
        }
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
        free(l->name);
        free(l->version);
        free(l->path);
        free(l);
    }
    uv_close((uv_handle_t *)iso->wake, free_handle);
    if (stuck) /* what is left behind still reads the policy */
        return;
    pthread_mutex_destroy(&iso->mu);
    json_decref(iso->overrides);
    free(iso->install_dir);
    free(iso->install_raw);
    free(iso->user);
    free(iso);
}
