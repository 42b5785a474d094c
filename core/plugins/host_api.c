/* host_api.c - the opsc_host_api table: what plugins may call, and registration. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "build_config.h"
#include "config.h"
#include "isolation.h"
#include "log.h"
#include "plugin_internal.h"
#include "privsep.h"
#include "steplib_bundled.h"
#include "steptype.h"
#include "threadpool.h"
#include "util.h"

/* ---- memory, logging, time ------------------------------------------- */

static void *api_alloc(size_t n)
{
    return malloc(n);
}

static void *api_calloc(size_t count, size_t n)
{
    return calloc(count, n);
}

static void *api_realloc(void *p, size_t n)
{
    return realloc(p, n);
}

static void api_free(void *p)
{
    free(p);
}

static char *api_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* An error logged inside init() is why the plugin refuses to load: the
 * refusal in GET /api/v1/plugins says it too, not only the code. */
static void api_log(const char *component, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    plugin_host *h = plugin_host_current;
    if (h && h->initialising && level == OPSC_LOG_ERROR) {
        va_list copy;
        va_copy(copy, ap);
        vsnprintf(h->init_error, sizeof(h->init_error), fmt, copy);
        va_end(copy);
    }
    log_vmsg(component ? component : "plugin", level, fmt, ap);
    va_end(ap);
}

static bool api_log_enabled(int level)
{
    return log_enabled(level);
}

static struct uv_loop_s *api_loop(void)
{
    return plugin_host_current ? plugin_host_current->loop : NULL;
}

static int64_t api_now_ms(void)
{
    return clock_now_ms();
}

/* ---- worker threads ------------------------------------------------------ */

static int api_queue_work(void (*fn)(void *ud), void (*after)(void *ud, int status), void *ud)
{
    if (!plugin_host_current || !fn || !after)
        return OPSC_EINVAL;
    return threadpool_queue(plugin_host_current->loop, fn, after, ud);
}

/* ---- config ---------------------------------------------------------------- */

static int api_config_bind(const opsc_config *cfg, const opsc_cfg_entry *map, void *dst, char *err,
                           size_t errlen)
{
    if (!cfg || !map || !dst)
        return OPSC_EINVAL;
    plugin *p = plugin_host_current ? plugin_host_current->initialising : NULL;
    if (p) { /* kept for the config reference and --print-config */
        cfg_map_free(p->cfg_map);
        p->cfg_map = cfg_map_dup(map);
    }
    if (!cfg->file) { /* no config file: defaults and environment only */
        cfg_file *empty = NULL;
        if (cfg_file_load(&empty, NULL, err, errlen) < 0)
            return OPSC_ENOMEM;
        /* Defaults point into the map (static data), so freeing `empty` is safe. */
        int rc = cfg_bind(empty, cfg->section, map, dst, err, errlen);
        cfg_file_free(empty);
        return rc;
    }
    return cfg_bind(cfg->file, cfg->section, map, dst, err, errlen);
}

/* ---- registration -------------------------------------------------------- */

int plugin_reg_reserve(reg_list *l, size_t more)
{
    if (l->n + more <= l->cap)
        return 0;
    size_t cap = l->cap ? l->cap : 8;
    while (cap < l->n + more)
        cap *= 2;
    plugin_reg *v = realloc(l->items, cap * sizeof(*v));
    if (!v)
        return OPSC_ENOMEM;
    l->items = v;
    l->cap = cap;
    return 0;
}

static int reg_append(reg_list *l, const plugin_reg *r)
{
    int rc = plugin_reg_reserve(l, 1);
    if (rc == 0)
        l->items[l->n++] = *r;
    return rc;
}

void plugin_host_note_refusal(plugin_host *h, int rc, const char *fmt, ...)
{
    if (!h || h->reg_rc)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->reg_error, sizeof(h->reg_error), fmt, ap);
    va_end(ap);
    h->reg_rc = rc;
    log_error("plugins", "%s: %s", h->initialising ? h->initialising->name : "?", h->reg_error);
}

static int register_entry(enum plugin_reg_kind kind, const void *desc, const char *name,
                          void *state, steplib *compiled)
{
    plugin_host *h = plugin_host_current;
    if (!h || !h->initialising) {
        log_error("plugins", "registration of '%s' outside of init() refused",
                  name ? name : "?");
        return OPSC_ESTATE;
    }
    if (!desc || !name || !*name) {
        plugin_host_note_refusal(h, OPSC_EINVAL, "registration with no descriptor or name");
        return OPSC_EINVAL;
    }
    if (kind != REG_STEPLIB && plugin_host_find(h, kind, name)) {
        plugin_host_note_refusal(h, OPSC_EEXIST, "'%s' is already registered by another plugin",
                                 name);
        return OPSC_EEXIST;
    }
    plugin_reg r = {desc, state, h->initialising, compiled};
    h->generation++;
    return reg_append(&h->regs[kind], &r);
}

int plugin_host_register(enum plugin_reg_kind kind, const void *desc, const char *name,
                         void *state, steplib *compiled)
{
    int rc = register_entry(kind, desc, name, state, compiled);
    if (rc < 0)
        steplib_free(compiled);
    return rc;
}

void plugin_host_unregister_owner(plugin_host *h, plugin *p)
{
    h->generation++;
    for (int k = 0; k < REG__COUNT; k++) {
        reg_list *l = &h->regs[k];
        size_t o = 0;
        for (size_t i = 0; i < l->n; i++) {
            if (l->items[i].owner != p)
                l->items[o++] = l->items[i];
            else
                steplib_free(l->items[i].compiled);
        }
        l->n = o;
    }
}

static int api_register_transport(const opsc_transport *t, void *state)
{
    if (t && (t->size < offsetof(opsc_transport, close) + sizeof(t->close) || !t->connect ||
              !t->exec || !t->close))
        return OPSC_EINVAL;
    return plugin_host_register(REG_TRANSPORT, t, t ? t->name : NULL, state, NULL);
}

static int steplib_duplicate(const opsc_steplib *lib)
{
    plugin_host *h = plugin_host_current;
    for (size_t i = 0; h && i < h->regs[REG_STEPLIB].n; i++) {
        const opsc_steplib *o = h->regs[REG_STEPLIB].items[i].desc;
        if (strcmp(o->name, lib->name) == 0 && strcmp(o->version, lib->version) == 0)
            return OPSC_EEXIST;
    }
    return 0;
}

/* One of the daemon's own step libraries (steplib_bundled.c), never an upload or a bundle. */
static bool registering_bundled(plugin_host *h, const opsc_steplib *lib)
{
    const plugin *p = h ? h->initialising : NULL;
    return p && !p->bundle && !plugin_host_uploaded(h, p->path) &&
           steplib_bundled(p->path, p->name, lib->name);
}

static int api_register_steplib(const opsc_steplib *lib, void *state)
{
    plugin_host *h = plugin_host_current;
    if (lib && (lib->size < sizeof(opsc_steplib) || !lib->version || !lib->types)) {
        plugin_host_note_refusal(h, OPSC_EINVAL, "step library descriptor without %s",
                                 lib->size < sizeof(opsc_steplib) ? "a valid size"
                                 : !lib->version                  ? "a version"
                                                                  : "types");
        return OPSC_EINVAL;
    }
    if (lib && steplib_duplicate(lib) < 0) {
        plugin_host_note_refusal(h, OPSC_EEXIST, "step library %s %s is already loaded", lib->name,
                                 lib->version);
        return OPSC_EEXIST;
    }
    /* A broken library is refused now, with the step and field at fault,
     * rather than failing runs later. */
    steplib *compiled = NULL;
    char err[1024];
    if (lib) {
        int rc = registering_bundled(h, lib)
                     ? steplib_compile_bundled(&compiled, lib, err, sizeof(err))
                     : steplib_compile(&compiled, lib, err, sizeof(err));
        if (rc < 0) {
            plugin_host_note_refusal(h, rc, "step library %s %s: %s", lib->name ? lib->name : "?",
                                     lib->version, err);
            return rc;
        }
    }
    return plugin_host_register(REG_STEPLIB, lib, lib ? lib->name : NULL, state, compiled);
}

static int api_register_notifier(const opsc_notifier *n, void *state)
{
    if (n && (n->size < sizeof(opsc_notifier) || !n->send))
        return OPSC_EINVAL;
    return plugin_host_register(REG_NOTIFIER, n, n ? n->name : NULL, state, NULL);
}

/* A 1.0 descriptor ends before `progress`: it is still whole. */
static int api_register_scanner(const opsc_scanner *s, void *state)
{
    if (s && (s->size < offsetof(opsc_scanner, progress) || !s->scan || !s->cancel))
        return OPSC_EINVAL;
    return plugin_host_register(REG_SCANNER, s, s ? s->name : NULL, state, NULL);
}

static int api_register_auth_provider(const opsc_auth_provider *p, void *state)
{
    if (p && (p->size < sizeof(opsc_auth_provider) || !p->authenticate))
        return OPSC_EINVAL;
    return plugin_host_register(REG_AUTH, p, p ? p->name : NULL, state, NULL);
}

/* ---- step API: forwarded to the executor ----------------------------------- */

void plugin_host_set_step_ops(plugin_host *h, const plugin_step_ops *ops)
{
    h->step_ops = ops;
}

static const plugin_step_ops *step_ops(void)
{
    return plugin_host_current ? plugin_host_current->step_ops : NULL;
}

#define STEP_FORWARD(fn, fallback, ...)                                                            \
    const plugin_step_ops *ops = step_ops();                                                       \
    return ops && ops->fn ? ops->fn(__VA_ARGS__) : (fallback)

static const char *api_step_param(opsc_step_ctx *ctx, const char *name)
{
    STEP_FORWARD(param, NULL, ctx, name);
}

static const char *api_step_params_json(opsc_step_ctx *ctx)
{
    STEP_FORWARD(params_json, NULL, ctx);
}

static const char *api_step_target(opsc_step_ctx *ctx, const char *key)
{
    STEP_FORWARD(target, NULL, ctx, key);
}

static const char *api_step_secret(opsc_step_ctx *ctx, const char *name)
{
    STEP_FORWARD(secret, NULL, ctx, name);
}

static const char *api_step_quote(opsc_step_ctx *ctx, const char *value)
{
    STEP_FORWARD(quote, NULL, ctx, value);
}

static int api_step_exec(opsc_step_ctx *ctx, const char *command, const opsc_step_exec_opts *opts,
                         opsc_step_exec_result *res)
{
    STEP_FORWARD(exec, OPSC_ENOTSUP, ctx, command, opts, res);
}

static int api_step_put_file(opsc_step_ctx *ctx, const char *local, const char *remote, int mode)
{
    STEP_FORWARD(put_file, OPSC_ENOTSUP, ctx, local, remote, mode);
}

static int api_step_get_file(opsc_step_ctx *ctx, const char *remote, const char *local)
{
    STEP_FORWARD(get_file, OPSC_ENOTSUP, ctx, remote, local);
}

static int api_step_set_output(opsc_step_ctx *ctx, const char *key, const char *json_value)
{
    STEP_FORWARD(set_output, OPSC_ENOTSUP, ctx, key, json_value);
}

static bool api_step_cancelled(opsc_step_ctx *ctx)
{
    STEP_FORWARD(cancelled, true, ctx);
}

static int api_step_sleep(opsc_step_ctx *ctx, uint32_t ms)
{
    STEP_FORWARD(sleep, OPSC_ENOTSUP, ctx, ms);
}

static int api_step_render(opsc_step_ctx *ctx, const char *text, const char *vars_json,
                           const char **out, char *err, size_t errlen)
{
    STEP_FORWARD(render, OPSC_ENOTSUP, ctx, text, vars_json, out, err, errlen);
}

static const char *api_step_run_dir(opsc_step_ctx *ctx)
{
    STEP_FORWARD(run_dir, NULL, ctx);
}

static int api_step_fetch_file(opsc_step_ctx *ctx, const char *remote, const char *name,
                               opsc_step_file *info)
{
    STEP_FORWARD(fetch_file, OPSC_ENOTSUP, ctx, remote, name, info);
}

static void api_step_log(opsc_step_ctx *ctx, int level, const char *fmt, ...)
{
    const plugin_step_ops *ops = step_ops();
    if (!ops || !ops->log)
        return;
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ops->log(ctx, level, msg);
}

static int api_step_fail(opsc_step_ctx *ctx, const char *fmt, ...)
{
    const plugin_step_ops *ops = step_ops();
    if (!ops || !ops->fail)
        return OPSC_EREMOTE;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ops->fail(ctx, msg);
}

/* ---- local users: forwarded to the identity service ---------------------------- */

void plugin_host_set_local_verify(plugin_host *h, plugin_local_verify_fn fn, void *ud)
{
    h->local_verify = fn;
    h->local_verify_ud = ud;
}

static int api_local_user_verify(const char *username, const char *password, opsc_identity *id,
                                 char *err, size_t errlen)
{
    plugin_host *h = plugin_host_current;
    if (!h || !h->local_verify)
        return OPSC_ENOTSUP;
    return h->local_verify(h->local_verify_ud, username, password, id, err, errlen);
}

static const char *api_data_dir(void)
{
    return plugin_host_current && plugin_host_current->data_dir ? plugin_host_current->data_dir
                                                                : ".";
}

/* ---- libcurl transfers and notifier answers ------------------------------------ */

void plugin_host_set_notify_status(plugin_host *h, plugin_notify_status_fn fn)
{
    h->notify_status = fn;
}

static void api_notify_http_status(void *ud, int http_status, int64_t retry_after_ms)
{
    plugin_host *h = plugin_host_current;
    if (h && h->notify_status && ud)
        h->notify_status(ud, http_status, retry_after_ms);
}

static int api_curl_start(void *easy, opsc_curl_done_cb done, void *ud)
{
    return plugin_host_curl_start(plugin_host_current, easy, done, ud);
}

static void api_curl_cancel(void *easy)
{
    plugin_host_curl_cancel(plugin_host_current, easy);
}

/* ---- local processes: forwarded to the privileged helper --------------------------------- */

void plugin_host_set_privsep(plugin_host *h, struct privsep *ps)
{
    h->privsep = ps;
}

static privsep *current_privsep(void)
{
    return plugin_host_current ? plugin_host_current->privsep : NULL;
}

static int api_local_available(char *why, size_t whylen)
{
    return privsep_available(current_privsep(), why, whylen);
}

static int api_local_spawn(const opsc_local_spawn *req, const opsc_local_cb *cb, void *ud,
                           opsc_local_proc **out, char *err, size_t errlen)
{
    privsep *ps = current_privsep();
    if (!ps)
        return privsep_available(NULL, err, errlen);
    return privsep_spawn(ps, req, cb, ud, out, err, errlen);
}

static int api_local_kill_recorded(const char *handle,
                                   void (*done)(void *ud, int killed, const char *msg), void *ud)
{
    privsep *ps = current_privsep();
    return ps ? privsep_kill_recorded(ps, handle, done, ud) : OPSC_EPERM;
}

static const opsc_host_api host_api = {
    .size = sizeof(opsc_host_api),
    .abi_major = OPSC_ABI_MAJOR,
    .abi_minor = OPSC_ABI_MINOR,
    .host_version = OPSC_VERSION,
    .alloc = api_alloc,
    .calloc = api_calloc,
    .realloc = api_realloc,
    .free = api_free,
    .strdup = api_strdup,
    .log = api_log,
    .log_enabled = api_log_enabled,
    .loop = api_loop,
    .now_ms = api_now_ms,
    .queue_work = api_queue_work,
    .config_bind = api_config_bind,
    .register_transport = api_register_transport,
    .register_steplib = api_register_steplib,
    .register_notifier = api_register_notifier,
    .register_scanner = api_register_scanner,
    .register_auth_provider = api_register_auth_provider,
    .step_param = api_step_param,
    .step_params_json = api_step_params_json,
    .step_target = api_step_target,
    .step_secret = api_step_secret,
    .step_quote = api_step_quote,
    .step_exec = api_step_exec,
    .step_put_file = api_step_put_file,
    .step_get_file = api_step_get_file,
    .step_log = api_step_log,
    .step_set_output = api_step_set_output,
    .step_fail = api_step_fail,
    .step_cancelled = api_step_cancelled,
    .step_sleep = api_step_sleep,
    .local_user_verify = api_local_user_verify,
    .step_render = api_step_render,
    .data_dir = api_data_dir,
    .curl_start = api_curl_start,
    .curl_cancel = api_curl_cancel,
    .notify_http_status = api_notify_http_status,
    .local_available = api_local_available,
    .local_spawn = api_local_spawn,
    .local_signal = privsep_signal,
    .local_release = privsep_release,
    .local_kill_recorded = api_local_kill_recorded,
    .step_run_dir = api_step_run_dir,
    .step_fetch_file = api_step_fetch_file,
};

const opsc_host_api *plugin_host_api(void)
{
    return &host_api;
}
