/* plugin_internal.h - state shared by the loader (plugin_host.c) and the host API (host_api.c). */
#ifndef OPSC_PLUGIN_INTERNAL_H
#define OPSC_PLUGIN_INTERNAL_H

#include <stdbool.h>

#include "plugin_host.h"

/* RETIRED: deleted at run time; unregistered but still mapped (plugin_host_retire). */
enum plugin_state {
    PLUGIN_PENDING,
    PLUGIN_LOADED,
    PLUGIN_REFUSED,
    PLUGIN_DISABLED,
    PLUGIN_RETIRED
};

struct plugin {
    char *path;
    char *name;    /* copies: the descriptor is gone once a refused .so is closed */
    char *version;
    char *description;
    char *license;
    unsigned kinds;
    int abi_major, abi_minor;
    enum plugin_state state;
    char *reason;  /* why refused */
    void *dl;
    const opsc_plugin *desc;
    void *pstate;
    opsc_cfg_entry *cfg_map; /* a copy of the table init() bound its section with (the reference) */
    bool bundle;             /* a step library bundle (bundle.h): no .so, pstate is the bundle */
    bool manifest;           /* listed from its manifest (isolation.h): none of its code is here */
};

typedef struct reg_list {
    plugin_reg *items;
    size_t n, cap;
} reg_list;

struct plugin_host {
    struct uv_loop_s *loop;
    const cfg_file *cfg;
    plugin **plugins;
    size_t nplugins, cap;
    reg_list regs[REG__COUNT];
    reg_list retired;     /* registrations of retired plugins: alive until the host is freed */
    uint64_t generation;  /* counts changes of the registries (plugin_host_generation) */
    plugin *initialising; /* registration is allowed only while set */
    int reg_rc;           /* the first registration refused during init(), and why: */
    char reg_error[512];  /* they go into the plugin's refusal reason */
    char init_error[512]; /* the last error the plugin logged during init(): its own reason */
    const plugin_step_ops *step_ops;
    plugin_local_verify_fn local_verify; /* set by the identity service */
    void *local_verify_ud;
    char *data_dir; /* opsc_host_api.data_dir(); NULL until the core sets it */
    host_curl *curl;                       /* plugins' transfers (host_curl.c); NULL until used */
    plugin_notify_status_fn notify_status; /* set by the notification service */
    struct privsep *privsep; /* local processes; NULL: refused */
    struct isolation *iso;   /* step libraries out of process (isolation.h); NULL: none */
};

/* Load a plugin whose descriptor is in memory (`desc`, borrowed until its
 * shutdown; `state` is what its init() finds in *state): a step library
 * bundle. The same checks, refusals and options as plugin_host_load(). */
int plugin_host_load_desc(plugin_host *h, const char *path, const opsc_plugin *desc, void *state,
                          const plugin_load_opts *opts, plugin **out, char *err, size_t errlen);

/* The one host of this process: the ABI's functions carry no context so
 * plugin authors need not thread one through; a daemon has one host. */
extern plugin_host *plugin_host_current;

/* `compiled` (REG_STEPLIB) is owned by the registry from here on, even on failure. */
int plugin_host_register(enum plugin_reg_kind kind, const void *desc, const char *name,
                         void *state, steplib *compiled);
void plugin_host_unregister_owner(plugin_host *h, plugin *p);
/* Room for `more` items in `l`. */
int plugin_reg_reserve(reg_list *l, size_t more);
/* Remember why a registration during init() was refused (the first reason wins). */
void plugin_host_note_refusal(plugin_host *h, int rc, const char *fmt, ...) OPSC_PRINTF(3, 4);

#endif
