/* core.h - the daemon's one context object: loop, config, store, HTTP, plugins.
 *
 * All mutable state of the daemon hangs off one struct opsc_core, owned by
 * main() and touched only on the loop thread. Modules receive the core (or
 * the part they need) instead of reaching for globals.
 */
#ifndef OPSC_CORE_H
#define OPSC_CORE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"

typedef struct store store;
typedef struct http_server http_server;
typedef struct plugin_host plugin_host;
typedef struct metrics metrics;
typedef struct auth auth;
typedef struct audit audit;
typedef struct vault vault;
typedef struct events events;
typedef struct sched sched;
typedef struct plugin_install plugin_install;
typedef struct pool pool;
typedef struct fleet fleet;
typedef struct exec exec;
typedef struct web_ui web_ui;
typedef struct notify notify;
typedef struct privsep privsep;
typedef struct discovery discovery;
typedef struct reccache reccache;

struct opsc_core {
    uv_loop_t *loop;
    struct config cfg;
    char *config_path; /* for SIGHUP reloads; NULL without a file */
    store *store;
    http_server *http;
    plugin_host *plugins;
    plugin_install *steplibs; /* step libraries installed at run time */
    metrics *metrics;
    vault *vault;          /* credentials vault: master key, credential records */
    audit *audit;          /* audit log */
    auth *auth;            /* users, logins, tokens, the HTTP auth hook */
    events *events;        /* state changes: runs, schedules, targets */
    sched *sched;          /* schedules firing runs through exec */
    pool *pool;            /* pooled connections to targets */
    fleet *fleet;          /* targets' test results writer, connectivity tests */
    exec *exec;            /* the executor: runs of jobs on targets */
    notify *notify;        /* notifications: channels, rules, outbox, inbound hooks */
    web_ui *web;           /* the web UI's files; NULL when not served */
    privsep *privsep;      /* the helper that starts local steps as the local-steps user */
    discovery *discovery;  /* network scans, the host inventory, profiles, onboarding */
    char node_id[40];      /* this node's id in a cluster (<data_dir>/node_id) */
    struct cluster *cluster; /* cluster mode (PostgreSQL store): heartbeat, lease; else NULL */
    struct json_t *node_labels; /* [cluster] labels: {"dc": "eu"} */
    struct json_t *route_by;    /* [cluster] route_by: ["dc"] */
    /* changes this node's schedules API committed (and gave to its own
     * scheduler) since the last heartbeat: cluster.c reloads only for others' */
    unsigned schedules_changed_here;
    reccache *records;     /* records GET handlers send as stored (fleet_get_record) */
    char files_dir[4096];  /* what /api/v1/files serves: the core step library's files_dir */
    int64_t started_ms;    /* wall clock at start */
    uint64_t started_mono; /* monotonic ms at start */
    bool ready;            /* store open and plugins loaded */
    bool stopping;
    int exit_code;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t stop_deadline;
    uv_timer_t heap_trim;
};

/* Open everything `cfg` describes and start serving. `cfg` and `ps` (the
 * helper for local steps, already started; may be NULL) are moved into the
 * core. On failure, `err` says why and the core is left closed. */
int core_start(struct opsc_core *c, uv_loop_t *loop, struct config *cfg, const char *config_path,
               privsep *ps, char *err, size_t errlen);
/* Begin a graceful stop: stop accepting, let work finish until the
 * shutdown deadline, then close. The loop ends when all is closed. */
void core_stop(struct opsc_core *c);
/* Free what core_start allocated, after the loop has ended. */
void core_free(struct opsc_core *c);

/* core_tls.c: the [server] TLS keys. True when tls_cert or tls_key is set. */
bool core_tls_configured(const struct config *cfg);
/* Load and check the certificate, key and client CAs the keys name, and
 * log what was loaded; errors name the origin (file:line) and the key. */
typedef struct http_tls http_tls;
int core_tls_load(const struct config *cfg, http_tls **out, char *err, size_t errlen);
/* SIGHUP: a new certificate for new connections; on any error the one in
 * use stays and the error is logged. */
void core_tls_reload(struct opsc_core *c, const struct config *fresh);
/* "8080, 8443 tls": the ports bound, for the ready line; warns when a
 * certificate is configured but no address is marked tls. */
void core_tls_ports(const http_server *srv, const struct config *cfg, char *buf, size_t n);

/* Open the store `cfg` describes: LMDB in [store] data_dir, or PostgreSQL
 * ([store] backend, postgresql_url; errors name where the URL was set,
 * never the URL). The daemon and its console commands both open it so. */
int core_store_open(const struct config *cfg, store **out, char *err, size_t errlen);

/* (Re)make the scheduler, closing the one there is, and start it when
 * `start` (in cluster mode cluster.c starts it on the leader only; the API
 * still updates a scheduler that is not started). */
int core_sched_open(struct opsc_core *c, bool start, char *err, size_t errlen);

/* heap_trim.c: from now on, now and then, hand the heap's free pages back to the kernel
 * (`t` initialised on the loop; closed with the other handles). */
void heap_trim_start(uv_timer_t *t);

/* Milliseconds since the daemon started (monotonic). */
uint64_t core_uptime_ms(const struct opsc_core *c);

#endif
