/* plugin_host.h - loads plugin .so files, keeps what they register, serves the host API.
 *
 * One host per daemon. Plugins are found in the configured directories (two
 * levels deep), checked (entry symbol, ABI, name), initialised on the loop
 * thread, and refused with a reason when anything is wrong; a refused plugin
 * is listed, logged, and otherwise ignored. Registries map names to what
 * the plugins registered: transports, step libraries, notifiers, scanners,
 * auth providers.
 */
#ifndef OPSC_PLUGIN_HOST_H
#define OPSC_PLUGIN_HOST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <opsc/plugin.h>

struct uv_loop_s;
typedef struct cfg_file cfg_file;
typedef struct plugin_host plugin_host;
typedef struct plugin plugin;

/* One registered thing: its descriptor, the state handed back to it, and
 * the plugin that owns it. */
typedef struct steplib steplib;
typedef struct steptype steptype;

typedef struct plugin_reg {
    const void *desc; /* opsc_transport *, opsc_steplib *, ... */
    void *state;
    plugin *owner;
    steplib *compiled; /* REG_STEPLIB: schemas and templates compiled at registration */
} plugin_reg;

enum plugin_reg_kind {
    REG_TRANSPORT,
    REG_STEPLIB,
    REG_NOTIFIER,
    REG_SCANNER,
    REG_AUTH,
    REG__COUNT,
};

/* The step API is serviced by the executor; it installs these functions
 * when it starts. Until then the host's step_* members answer OPSC_ENOTSUP. */
typedef struct plugin_step_ops plugin_step_ops;

int plugin_host_new(plugin_host **out, struct uv_loop_s *loop, const cfg_file *cfg);
/* Load every *.so under the ':'-separated `dirs`, skipping the
 * ','-separated `disabled` names. Never fails because of a bad plugin. */
void plugin_host_load_dirs(plugin_host *h, const char *dirs, const char *disabled);
/* Load one file (also used for run-time installs). Returns 0 when it loaded,
 * or the refusal code with the reason in err. */
int plugin_host_load_file(plugin_host *h, const char *path, char *err, size_t errlen);
/* Run-time installs (core/plugins/install.c). */
typedef struct plugin_load_opts {
    unsigned only_kinds; /* non-zero: refuse, before init(), a plugin declaring other kinds */
    bool forget_refused; /* a refused file leaves no entry behind (the caller reports why) */
    /* The manifest opsc-stephost wrote of it (an upload fetches it on its
     * worker; isolation.h), borrowed: listed from it, never loaded here.
     * NULL: loaded, or fetched now, as [steplibs] isolation says. */
    const char *manifest;
    size_t manifest_len;
} plugin_load_opts;
/* plugin_host_load_file() with options; on success *out (may be NULL) is the
 * plugin. The reason of a refused registration (the step, field and
 * position of a broken step library; a duplicate name and version) is part
 * of err, and a duplicate is OPSC_EEXIST. */
int plugin_host_load(plugin_host *h, const char *path, const plugin_load_opts *opts, plugin **out,
                     char *err, size_t errlen);
/* Shut down, unregister, dlclose and forget a plugin that has just loaded
 * and that nothing has used yet (an install refusing it after init()). */
void plugin_host_forget(plugin_host *h, plugin *p);
/* Deleting at run time: take the plugin's registrations out of the
 * registries, so that nothing new resolves to it, but keep the .so mapped
 * and its compiled step types alive until the host is freed (its shutdown()
 * runs then): a run that resolved a step type before the delete keeps
 * calling it safely. Listed as "removed". OPSC_ESTATE unless loaded. */
int plugin_host_retire(plugin_host *h, plugin *p);
/* The file moved (an install renames it into place). */
int plugin_host_set_path(plugin *p, const char *path);

/* The config table each plugin bound its section with during init(), for
 * the config reference and --print-config: a copy owned by the host, kept
 * when the plugin was refused (its keys may be what refused it). In load
 * order; `description` may be "". */
typedef void (*plugin_config_fn)(const char *plugin_name, const char *description,
                                 const opsc_cfg_entry *map, void *ud);
void plugin_host_foreach_config(plugin_host *h, plugin_config_fn fn, void *ud);

/* The data directory plugins see through opsc_host_api.data_dir() (copied). */
int plugin_host_set_data_dir(plugin_host *h, const char *dir);

/* Warn about [plugin.x] sections for plugins that are not loaded. */
void plugin_host_check_sections(plugin_host *h);
/* Shut every loaded plugin down (reverse load order) and free the host. */
void plugin_host_free(plugin_host *h);

/* Registries. A plugin_reg pointer is valid until the next load, install or
 * delete (the arrays move): keep its desc, state and compiled members, which
 * live until the host is freed, rather than the pointer. */
size_t plugin_host_count(plugin_host *h, enum plugin_reg_kind kind);
const plugin_reg *plugin_host_reg(plugin_host *h, enum plugin_reg_kind kind, size_t i);
/* By name: transports, notifiers, scanners, auth providers. For step
 * libraries use plugin_host_steplib(). */
const plugin_reg *plugin_host_find(plugin_host *h, enum plugin_reg_kind kind, const char *name);
/* The step library `name` with the highest version whose major is `major`
 * (0: any major). */
const plugin_reg *plugin_host_steplib(plugin_host *h, const char *name, int major);

/* Resolve a job step's type reference "<library>.<step>" or
 * "<library>.<step>@<major>" to its compiled step type: the highest loaded
 * version of the library (with that major, when pinned). On failure NULL
 * with a message in err naming what is missing (library, major, step). When
 * `lib_out` is not NULL it receives the registration (for the version and
 * the state handed back to imperative steps). */
const steptype *plugin_host_steptype(plugin_host *h, const char *ref, const plugin_reg **lib_out,
                                     char *err, size_t errlen);
/* The same as if the plugin `except` were not loaded (may be NULL): would a
 * reference still resolve once that version is deleted? */
const steptype *plugin_host_steptype_except(plugin_host *h, const char *ref, const plugin *except,
                                            const plugin_reg **lib_out, char *err, size_t errlen);

/* Changes whenever a registration is added or taken out (load, install,
 * delete): what resolved a step type before may resolve differently now. */
uint64_t plugin_host_generation(const plugin_host *h);

/* Compare "a.b.c" semantic versions numerically (<0, 0, >0). */
int plugin_semver_cmp(const char *a, const char *b);

/* Counts for /api/v1/system and /ready. */
size_t plugin_host_loaded(plugin_host *h);
/* The path of the loaded step library plugin `name` `version` (which would
 * refuse another of the same), or NULL. */
const char *plugin_host_loaded_path(plugin_host *h, const char *name, const char *version);
size_t plugin_host_refused(plugin_host *h);
/* GET /api/v1/plugins: {"items": [...]} with loaded, disabled and refused plugins. */
json_t *plugin_host_list_json(plugin_host *h);

/* The table handed to plugins (also used by tests that drive a plugin). */
const opsc_host_api *plugin_host_api(void);

/* Executor hook-up of the step API. `ops` is borrowed until replaced. */
struct plugin_step_ops {
    const char *(*param)(opsc_step_ctx *ctx, const char *name);
    const char *(*params_json)(opsc_step_ctx *ctx);
    const char *(*target)(opsc_step_ctx *ctx, const char *key);
    const char *(*secret)(opsc_step_ctx *ctx, const char *name);
    const char *(*quote)(opsc_step_ctx *ctx, const char *value);
    int (*exec)(opsc_step_ctx *ctx, const char *command, const opsc_step_exec_opts *opts,
                opsc_step_exec_result *res);
    int (*put_file)(opsc_step_ctx *ctx, const char *local, const char *remote, int mode);
    int (*get_file)(opsc_step_ctx *ctx, const char *remote, const char *local);
    void (*log)(opsc_step_ctx *ctx, int level, const char *msg);
    int (*set_output)(opsc_step_ctx *ctx, const char *key, const char *json_value);
    int (*fail)(opsc_step_ctx *ctx, const char *msg);
    bool (*cancelled)(opsc_step_ctx *ctx);
    int (*sleep)(opsc_step_ctx *ctx, uint32_t ms);
    int (*render)(opsc_step_ctx *ctx, const char *template_text, const char *vars_json,
                  const char **out, char *err, size_t errlen);
    const char *(*run_dir)(opsc_step_ctx *ctx);
    int (*fetch_file)(opsc_step_ctx *ctx, const char *remote, const char *name,
                      opsc_step_file *info);
};
void plugin_host_set_step_ops(plugin_host *h, const plugin_step_ops *ops);

/* The identity service hooks up opsc_host_api.local_user_verify; until then
 * (and after NULL) the member answers OPSC_ENOTSUP. `ud` is passed back. */
typedef int (*plugin_local_verify_fn)(void *ud, const char *username, const char *password,
                                      opsc_identity *id, char *err, size_t errlen);
void plugin_host_set_local_verify(plugin_host *h, plugin_local_verify_fn fn, void *ud);

/* The notification service hooks up opsc_host_api.notify_http_status
 * (`attempt` is the ud its send() handed out); until then it does nothing. */
typedef void (*plugin_notify_status_fn)(void *attempt, int http_status, int64_t retry_after_ms);
void plugin_host_set_notify_status(plugin_host *h, plugin_notify_status_fn fn);

/* Plugins' libcurl transfers on the loop (host_curl.c), behind
 * opsc_host_api.curl_start / curl_cancel. plugin_host_curl_stop() ends every
 * transfer still running with CURLE_ABORTED_BY_CALLBACK and closes the loop
 * handles (memory goes with their close callbacks); plugin_host_free() calls
 * it before the plugins shut down. */
typedef struct host_curl host_curl;
int plugin_host_curl_start(plugin_host *h, void *easy, opsc_curl_done_cb done, void *ud);
void plugin_host_curl_cancel(plugin_host *h, void *easy);
void plugin_host_curl_stop(plugin_host *h);
size_t plugin_host_curl_active(const plugin_host *h); /* transfers running now */
/* The helper that starts local processes (privsep.h), behind the host API's
 * local_* members; NULL: they answer OPSC_EPERM. Borrowed: the core closes
 * it after the plugins are gone. */
struct privsep;
void plugin_host_set_privsep(plugin_host *h, struct privsep *ps);

#endif
