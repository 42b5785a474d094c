/* core.c - bringing the daemon up in order, and down gracefully. */
#include "core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "api.h"
#include "audit.h"
#include "auth.h"
#include "cluster.h"
#include "discovery.h"
#include "files.h"
#include "discovery_routes.h"
#include "events.h"
#include "exec.h"
#include "fleet.h"
#include "fleet_routes.h"
#include "http.h"
#include "identity.h"
#include "install.h"
#include "isolation.h"
#include "jobs_routes.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "plugin_host.h"
#include "pool.h"
#include "privsep.h"
#include "reccache.h"
#include "scheduler.h"
#include "store.h"
#include "util.h"
#include "vault.h"
#include "web.h"

uint64_t core_uptime_ms(const struct opsc_core *c)
{
    return clock_mono_ms() - c->started_mono;
}

static int open_data_dir(const char *dir, char *err, size_t errlen)
{
    int rc = fs_mkdir_p(dir, 0700);
    if (rc == 0 && access(dir, R_OK | W_OK | X_OK) < 0)
        rc = -errno;
    if (rc < 0)
        snprintf(err, errlen, "data directory %s: %s", dir, strerror(-rc));
    return rc;
}

int core_store_open(const struct config *cfg, store **out, char *err, size_t errlen)
{
    bool pg = cfg->store.backend == STORE_BACKEND_POSTGRESQL;
    store_opts opts = {
        .map_size = cfg->store.map_size,
        .max_map_size = cfg->store.max_map_size,
        .postgresql_url = pg ? cfg->store.postgresql_url : NULL,
    };
    char origin[512];
    bool no_url = pg && !*cfg->store.postgresql_url;
    cfg_origin(cfg->file, "store", no_url ? "backend" : "postgresql_url", origin, sizeof(origin));
    if (no_url) {
        snprintf(err, errlen,
                 "%s: [store] backend: postgresql needs [store] postgresql_url (or "
                 "OPSC_STORE_POSTGRESQL_URL)",
                 origin);
        return OPSC_EINVAL;
    }
    int rc = store_open(out, cfg->store.data_dir, &opts, err, errlen);
    if (rc < 0 && pg) { /* say where the URL came from, never what it is */
        char why[768];
        snprintf(why, sizeof(why), "%s", err);
        snprintf(err, errlen, "%s: [store] postgresql_url: %s", origin, why);
    }
    return rc;
}

static int open_store(struct opsc_core *c, char *err, size_t errlen)
{
    return core_store_open(&c->cfg, &c->store, err, errlen);
}

/* Records GET handlers send as stored: the hot ones of a read-heavy client. */
#define CORE_RECORD_CACHE 256

/* Vault, audit log and identity service: after the store and the plugins
 * (the auth providers), before the HTTP server that needs the auth hook. */
static int open_identity(struct opsc_core *c, char *err, size_t errlen)
{
    vault_opts vo = {c->cfg.store.data_dir, c->cfg.vault.key_file, getenv("OPSC_MASTER_KEY")};
    int rc = vault_open(&c->vault, c->store, &vo, err, errlen);
    if (rc == 0)
        rc = audit_open(&c->audit, c->loop, c->store, c->cfg.auth.audit_retention_ms);
    auth_deps deps = {c->loop, c->store, c->plugins, c->audit, &c->cfg.auth, c->cfg.store.data_dir};
    if (rc == 0)
        rc = auth_open(&c->auth, &deps, err, errlen);
    if (rc == 0)
        rc = reccache_new(&c->records, CORE_RECORD_CACHE);
    return rc;
}

/* After the store and the executor it starts runs through, before the
 * HTTP server whose schedule routes use it. */
int core_sched_open(struct opsc_core *c, bool start, char *err, size_t errlen)
{
    sched_close(c->sched);
    c->sched = NULL;
    sched_opts o = {
        .loop = c->loop,
        .store = c->store,
        .events = c->events,
        .exec = c->exec,
        .exec_ops = sched_exec_linked(),
        .cfg = &c->cfg.scheduler,
    };
    int rc = sched_new(&c->sched, &o);
    if (rc == 0 && start)
        rc = sched_start(c->sched, err, errlen);
    return rc;
}

/* A step library version quarantined after its step host kept crashing. */
static void audit_quarantine(void *ud, const char *name, const char *version, const char *reason)
{
    struct opsc_core *c = ud;
    char object[160];
    snprintf(object, sizeof(object), "%s@%s", name, version);
    audit_event ev = {.actor = "system",
                      .action = "steplib.quarantine",
                      .object = object,
                      .outcome = "failure",
                      .detail = reason};
    if (c->audit)
        audit_record(c->audit, &ev);
}

static int steplibs_dir(const struct opsc_core *c, char *dir, size_t n)
{
    const struct steplibs_cfg *s = &c->cfg.steplibs;
    if (*s->dir)
        snprintf(dir, n, "%s", s->dir);
    else if (fs_join(dir, n, c->cfg.store.data_dir, "steplibs") < 0)
        return OPSC_E2BIG;
    return 0;
}

/* Before any plugin loads: a library that runs out of process is listed
 * from its manifest, never loaded in the daemon (isolation.h). */
static int set_isolation(struct opsc_core *c)
{
    char dir[4096];
    const struct steplibs_cfg *s = &c->cfg.steplibs;
    int rc = steplibs_dir(c, dir, sizeof(dir));
    iso_opts io = {s->isolation,         dir,
                   s->stephost,          s->host_user,
                   s->host_memory_limit, s->host_stop_grace_ms,
                   s->host_heartbeat_ms, s->host_load_timeout_ms};
    if (rc == 0)
        rc = plugin_host_set_isolation(c->plugins, &io);
    if (rc == 0)
        plugin_host_set_quarantine_hook(c->plugins, audit_quarantine, c);
    return rc;
}

/* After the bundled plugins, so that an upload cannot take a bundled name and version. */
static int open_steplibs(struct opsc_core *c, char *err, size_t errlen)
{
    char dir[4096];
    const struct steplibs_cfg *s = &c->cfg.steplibs;
    if (steplibs_dir(c, dir, sizeof(dir)) < 0)
        return OPSC_E2BIG;
    install_opts o = {dir, s->trusted_keys, s->require_signature};
    return install_open(&c->steplibs, c->loop, c->plugins, c->store, &o, err, errlen);
}

/* The connection pool and the fleet service: after the identity service
 * (the pool records learned host keys in the audit log). */
static int open_fleet(struct opsc_core *c, char *err, size_t errlen)
{
    const struct fleet_cfg *f = &c->cfg.fleet;
    pool_opts po = {f->idle_timeout_ms, (int)f->max_per_target, (int)f->max_total};
    fleet_opts fo = {(int)f->test_concurrency};
    int rc = pool_new(&c->pool, c, &po);
    if (rc == 0)
        rc = fleet_new(&c->fleet, c, &fo);
    if (rc < 0)
        snprintf(err, errlen, "fleet: %s", opsc_strerror(rc));
    return rc;
}

/* The executor: after the pool it leases connections from; it marks runs a
 * previous process left running as interrupted before anything starts. */
static int open_exec(struct opsc_core *c, char *err, size_t errlen)
{
    const struct exec_cfg *e = &c->cfg.executor;
    exec_opts o = {
        .max_parallel = (int)e->max_parallel,
        .step_workers = (int)e->step_workers,
        .default_step_timeout_ms = e->step_timeout_ms,
        .log_retention_ms = e->log_retention_ms,
        .log_max_bytes = e->log_max_bytes,
        .log_max_per_target = e->log_max_per_target,
        .log_sweep_interval_ms = e->log_sweep_interval_ms,
        .capture_limit = e->capture_limit,
        .on_run_persisted = notify_run_persisted,
        .on_run_persisted_ud = c->notify,
        .on_run_new = cluster_on_run_new,
        .on_run_new_ud = c,
        .node_id = store_is_shared(c->store) ? c->node_id : NULL,
        .labels = c->node_labels,
        .route_by = c->route_by,
    };
    return exec_new(&c->exec, c, &o, err, errlen);
}

/* Discovery: after the fleet (onboarding writes targets and tests them) and
 * the plugins (scanners), before the HTTP server whose routes use it. */
static int open_discovery(struct opsc_core *c, char *err, size_t errlen)
{
    return discovery_new(&c->discovery, c, err, errlen);
}

/* One completion hook serves metrics and the audit log. */
static void on_request_done(http_req *req, const http_route *route, int status, void *ud)
{
    struct opsc_core *c = ud;
    const char *method = http_req_method(req);
    metrics_http_observe(c->metrics, *method ? method : "unknown",
                         route ? route->pattern : "unmatched", status, http_req_seconds(req));
    if (c->auth)
        auth_http_done(req, route, status, c->auth);
}

static int serve_ui(http_req *req)
{
    struct opsc_core *c = http_req_app(req);
    return web_ui_serve(c->web, req);
}

/* Not in the route table: the fallback of GET and HEAD paths outside the API. */
static const http_route ui_route = {
    .method = "GET", .pattern = "/", .role = ROLE_PUBLIC, .handler = serve_ui, .tag = "web"};

/* The UI is optional: without its files the daemon serves the API alone and says why. */
static void open_web(struct opsc_core *c)
{
    const struct web_cfg *w = &c->cfg.web;
    char err[512] = "";
    if (!w->enabled)
        return;
    if (web_ui_open(&c->web, w->dir, err, sizeof(err)) < 0) {
        log_warn("core", "web UI not served: %s", err);
        return;
    }
    web_ui_stats st;
    web_ui_stats_get(c->web, &st);
    log_info("core", "web UI: %zu files (%zu kB, %zu kB precompressed) from %s", st.files,
             st.bytes / 1024, st.gz_bytes / 1024, w->dir);
    http_server_set_fallback(c->http, &ui_route);
}

static int start_http(struct opsc_core *c, char *err, size_t errlen)
{
    const struct server_cfg *s = &c->cfg.server;
    http_tls *tls = NULL;
    int rc = core_tls_configured(&c->cfg) ? core_tls_load(&c->cfg, &tls, err, errlen) : 0;
    if (rc < 0)
        return rc;
    http_opts opts = {
        .listen = s->listen,
        .max_connections = (int)s->max_connections,
        .max_header_bytes = s->max_header_bytes,
        .max_body_bytes = s->max_body_bytes,
        .max_upload_bytes = s->max_upload_bytes,
        .idle_timeout_ms = s->idle_timeout_ms,
        .request_timeout_ms = s->request_timeout_ms,
        .hsts_max_age_s = s->hsts_max_age_ms / 1000,
        .redirect_http = s->redirect_http,
    };
    rc = http_server_new(&c->http, c->loop, &opts);
    if (rc < 0) {
        http_tls_free(tls);
        snprintf(err, errlen, "http server: %s", opsc_strerror(rc));
        return rc;
    }
    http_server_set_tls(c->http, tls);
    http_server_set_app(c->http, c);
    char full[1024];
    snprintf(full, sizeof(full),
             "the data directory %.900s is full: nothing can be written until space is freed "
             "there (reads and logins still work)",
             c->cfg.store.data_dir);
    http_server_set_full_message(c->http, full);
    rc = api_system_register(c);
    if (rc == 0)
        rc = api_identity_register(c);
    if (rc == 0)
        rc = api_steplibs_register(c);
    if (rc == 0)
        rc = api_fleet_register(c);
    if (rc == 0)
        rc = api_jobs_register(c);
    if (rc == 0)
        rc = api_runs_register(c);
    if (rc == 0)
        rc = api_schedules_register(c);
    if (rc == 0)
        rc = api_notifications_register(c);
    if (rc == 0)
        rc = api_discovery_register(c);
    if (rc == 0)
        rc = api_files_register(c);
    if (rc == 0)
        rc = api_cluster_register(c);
    if (rc == 0)
        open_web(c);
    if (rc == 0) {
        http_server_set_auth(c->http, auth_http_hook, c->auth);
        http_server_set_sse_check(c->http, auth_sse_check, c->auth);
        http_server_set_done(c->http, on_request_done, c);
    }
    if (rc < 0) {
        snprintf(err, errlen, "registering routes: %s", opsc_strerror(rc));
        return rc;
    }
    rc = http_server_listen(c->http, err, errlen);
    if (rc == OPSC_EINVAL) { /* the listen list or its keys: say where they were set */
        char origin[512], why[768];
        snprintf(why, sizeof(why), "%s", err);
        cfg_origin(c->cfg.file, "server", "listen", origin, sizeof(origin));
        snprintf(err, errlen, "%s: [server] listen: %s", origin, why);
    }
    return rc;
}

/* SIGHUP: reopen the log (logrotate) and apply the keys that may change
 * without a restart. Everything else needs a restart and says so. */
static void reload(struct opsc_core *c)
{
    int rc = log_reopen();
    if (rc < 0)
        log_error("core", "cannot reopen log file: %s", strerror(-rc));
    if (!c->config_path) {
        log_info("core", "SIGHUP: log reopened (no config file to reload)");
        return;
    }
    char err[1024] = "";
    cfg_file *f = NULL;
    struct config fresh = {0};
    rc = cfg_file_load(&f, c->config_path, err, sizeof(err));
    if (rc == 0)
        rc = config_bind_all(&fresh, f, err, sizeof(err));
    else
        cfg_file_free(f);
    if (rc < 0) {
        log_error("core", "SIGHUP: config not reloaded: %s", err);
        config_free(&fresh);
        return;
    }
    log_set_level(fresh.log.level);
    if (c->http)
        http_server_set_timeouts(c->http, fresh.server.idle_timeout_ms,
                                 fresh.server.request_timeout_ms);
    core_tls_reload(c, &fresh);
    log_info("core", "SIGHUP: log reopened, log level now %s", log_level_name(fresh.log.level));
    config_free(&fresh);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct opsc_core *c = h->data;
    if (signum == SIGHUP) {
        reload(c);
        return;
    }
    if (c->stopping) {
        log_warn("core", "second %s: stopping now", strsignal(signum));
        uv_stop(c->loop);
        return;
    }
    log_info("core", "%s: stopping gracefully (deadline %lld ms)", strsignal(signum),
             (long long)c->cfg.server.shutdown_timeout_ms);
    core_stop(c);
}

/* Handles are initialised first thing, so a failed start can close them all. */
static void init_handles(struct opsc_core *c)
{
    uv_signal_t *sigs[] = {&c->sig_term, &c->sig_int, &c->sig_hup};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(c->loop, sigs[i]);
        sigs[i]->data = c;
    }
    uv_timer_init(c->loop, &c->stop_deadline);
    c->stop_deadline.data = c;
    uv_timer_init(c->loop, &c->heap_trim);
}

static void start_signals(struct opsc_core *c)
{
    uv_signal_start(&c->sig_term, on_signal, SIGTERM);
    uv_signal_start(&c->sig_int, on_signal, SIGINT);
    uv_signal_start(&c->sig_hup, on_signal, SIGHUP);
}

int core_start(struct opsc_core *c, uv_loop_t *loop, struct config *cfg, const char *config_path,
               privsep *ps, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    c->privsep = ps;
    if (ps)
        privsep_attach(ps, loop);
    c->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    c->config_path = config_path ? strdup(config_path) : NULL;
    c->started_ms = clock_now_ms();
    c->started_mono = clock_mono_ms();
    init_handles(c);

    int rc = metrics_new(&c->metrics);
    if (rc == 0)
        rc = events_new(&c->events);
    if (rc == 0)
        rc = open_data_dir(c->cfg.store.data_dir, err, errlen);
    if (rc == 0) /* before the executor: in a cluster its runs carry the node id */
        rc = cluster_node_id_load(c->cfg.store.data_dir, c->node_id, err, errlen);
    if (rc == 0) /* ... and are routed by labels */
        rc = cluster_labels_load(c, err, errlen);
    if (rc == 0)
        rc = open_store(c, err, errlen);
    if (rc == 0)
        rc = plugin_host_new(&c->plugins, loop, c->cfg.file);
    if (rc == 0)
        rc = plugin_host_set_data_dir(c->plugins, c->cfg.store.data_dir);
    if (rc == 0)
        plugin_host_set_privsep(c->plugins, c->privsep);
    if (rc == 0)
        rc = set_isolation(c);
    if (rc == 0)
        rc = api_steplibs_load_isolation(c);
    if (rc == 0) {
        plugin_host_load_dirs(c->plugins, c->cfg.plugins.dirs, c->cfg.plugins.disabled);
        plugin_host_check_sections(c->plugins);
        rc = open_steplibs(c, err, errlen);
    }
    if (rc == 0)
        rc = open_identity(c, err, errlen);
    if (rc == 0)
        rc = open_fleet(c, err, errlen);
    if (rc == 0) /* before the executor: its recovery of interrupted runs notifies */
        rc = notify_new(&c->notify, c, err, errlen);
    if (rc == 0)
        rc = open_exec(c, err, errlen);
    if (rc == 0) /* on a shared store it fires on the leader only: cluster.c starts it */
        rc = core_sched_open(c, !store_is_shared(c->store), err, errlen);
    if (rc == 0)
        rc = open_discovery(c, err, errlen);
    if (rc == 0)
        rc = start_http(c, err, errlen);
    if (rc == 0 && store_is_shared(c->store))
        rc = cluster_start(&c->cluster, c);
    if (rc < 0)
        return rc;
    start_signals(c);
    notify_start(c->notify);
    heap_trim_start(&c->heap_trim);
    c->ready = true;
    char ports[128];
    core_tls_ports(c->http, &c->cfg, ports, sizeof(ports));
    log_info("core",
             "opsconductord ready on %s (port %s), data %s, %zu plugins loaded, %zu refused, "
             "in %llu ms",
             c->cfg.server.listen, ports, c->cfg.store.data_dir, plugin_host_loaded(c->plugins),
             plugin_host_refused(c->plugins), (unsigned long long)core_uptime_ms(c));
    return 0;
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Plugins close their own loop handles in shutdown(). They go after the
 * identity service: its running logins call auth plugins on worker threads. */
static void free_plugins(void *ud)
{
    struct opsc_core *c = ud;
    plugin_host_free(c->plugins);
    c->plugins = NULL;
    privsep_close(c->privsep); /* no local process is left to serve */
    c->privsep = NULL;
}

/* After the pool: nothing uses a connection or records a test any more. */
static void close_services(void *ud)
{
    struct opsc_core *c = ud;
    uv_timer_stop(&c->stop_deadline);
    close_handle((uv_handle_t *)&c->stop_deadline);
    close_handle((uv_handle_t *)&c->heap_trim);
    notify_close(c->notify); /* before the audit log it writes to, and the notifiers */
    fleet_close(c->fleet);
    plugin_host_set_quarantine_hook(c->plugins, NULL, NULL); /* the audit log goes now */
    audit_close(c->audit);
    c->audit = NULL;
    install_close(c->steplibs); /* before the plugins go: uploads still pending answer 503 */
    c->steplibs = NULL;
    auth *a = c->auth;
    c->auth = NULL;
    auth_close(a, free_plugins, c);
}

static void on_pool_deadline(uv_timer_t *t)
{
    log_warn("core", "pooled connections did not close in time: stopping now");
    uv_stop(t->loop);
}

/* Scans have ended (their scanner plugins still loaded): the pool next. */
static void after_discovery(void *ud)
{
    struct opsc_core *c = ud;
    if (c->pool)
        pool_close(c->pool, close_services, c);
    else
        close_services(c);
}

/* Everything that depends on the loop is closed from here; what remains is
 * freed by core_free() once uv_run() returns. Runs are over (ended, or
 * interrupted at the deadline): pooled connections close before the
 * plugins that own them go, within a deadline of their own. */
static void after_exec(void *ud)
{
    struct opsc_core *c = ud;
    uv_timer_start(&c->stop_deadline, on_pool_deadline, 5000, 0);
    close_handle((uv_handle_t *)&c->sig_term);
    close_handle((uv_handle_t *)&c->sig_int);
    close_handle((uv_handle_t *)&c->sig_hup);
    sched_close(c->sched);
    c->sched = NULL;
    discovery_close(c->discovery, after_discovery, c);
}

/* Running steps get what is left of the shutdown deadline; a second signal
 * still stops at once (the signal handles stay open until then). */
static void finish_stop(struct opsc_core *c)
{
    uint64_t left =
        uv_is_active((uv_handle_t *)&c->stop_deadline) ? uv_timer_get_due_in(&c->stop_deadline) : 0;
    uv_timer_stop(&c->stop_deadline);
    if (c->exec)
        exec_close(c->exec, (int64_t)left, after_exec, c);
    else
        after_exec(c);
}

static void on_http_closed(void *ud)
{
    finish_stop(ud);
}

static void on_deadline(uv_timer_t *t)
{
    struct opsc_core *c = t->data;
    log_warn("core", "shutdown deadline reached: closing what is still running");
    if (c->http)
        http_server_abort(c->http);
    else
        uv_stop(c->loop);
}

void core_stop(struct opsc_core *c)
{
    if (c->stopping)
        return;
    c->stopping = true;
    c->ready = false;
    cluster_stop(c->cluster); /* another node may lead at once */
    if (c->sched)
        sched_stop(c->sched);     /* no run starts once stopping began */
    discovery_stop(c->discovery); /* scans are cancelled: they end within a second */
    exec_stop(c->exec);           /* no run or target starts any more */
    if (c->cfg.server.shutdown_timeout_ms > 0)
        uv_timer_start(&c->stop_deadline, on_deadline, (uint64_t)c->cfg.server.shutdown_timeout_ms,
                       0);
    if (c->http)
        http_server_close(c->http, on_http_closed, c);
    else
        finish_stop(c);
}

static void close_walk(uv_handle_t *h, void *ud)
{
    (void)ud;
    close_handle(h);
}

void core_free(struct opsc_core *c)
{
    /* After a deadline uv_stop(), handles may remain: close them all and let
     * their close callbacks run so nothing is freed while the loop uses it. */
    install_close(c->steplibs);
    c->steplibs = NULL;
    notify_close(c->notify); /* before the notifiers: their last answers find it closed */
    plugin_host_free(c->plugins);
    c->plugins = NULL;
    privsep_close(c->privsep);
    c->privsep = NULL;
    sched_close(c->sched); /* when a second signal stopped the loop before finish_stop() */
    c->sched = NULL;
    uv_walk(c->loop, close_walk, NULL);
    uv_run(c->loop, UV_RUN_DEFAULT);
    if (c->http)
        http_server_free(c->http);
    cluster_free(c->cluster);
    exec_free(c->exec);
    json_decref(c->node_labels);
    json_decref(c->route_by);
    notify_free(c->notify);
    discovery_free(c->discovery);
    pool_free(c->pool);
    fleet_free(c->fleet);
    web_ui_free(c->web);
    vault_close(c->vault);
    reccache_free(c->records);
    store_close(c->store);
    metrics_free(c->metrics);
    events_free(c->events);
    config_free(&c->cfg);
    free(c->config_path);
    memset(c, 0, sizeof(*c));
}
