/* config.h - the daemon's configuration: INI file, command line, environment.
 *
 * The file is read with libinih into a list of items (section, key, value,
 * line). Command-line flags are added as items after the file's, so they
 * win; environment variables OPSC_<SECTION>_<KEY> are looked up while
 * binding and win over both. Every section is bound to a struct through an
 * opsc_cfg_entry table (opsc/config.h): the same mechanism serves the
 * daemon's own sections and each plugin's [plugin.<name>] section.
 * Errors name the origin (file and line, flag, or variable), the section,
 * the key, and the valid keys.
 */
#ifndef OPSC_CONFIG_CORE_H
#define OPSC_CONFIG_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <opsc/config.h>

typedef struct cfg_file cfg_file;

/* The handle a plugin's init() receives: its section of the file. */
struct opsc_config {
    const cfg_file *file;
    const char *section; /* "plugin.<name>" */
};

/* Load `path` (NULL: an empty configuration). Syntax errors name file and line. */
int cfg_file_load(cfg_file **out, const char *path, char *err, size_t errlen);
void cfg_file_free(cfg_file *f);
const char *cfg_file_path(const cfg_file *f);
/* Add an override (command line). `origin` names it in errors ("--listen"). */
int cfg_file_set(cfg_file *f, const char *section, const char *key, const char *value,
                 const char *origin);
/* Append `value` to a list-valued item, separated by ':' (repeatable flags). */
int cfg_file_append(cfg_file *f, const char *section, const char *key, const char *value,
                    const char *origin);
/* True when the file has a section of that name. */
bool cfg_file_has_section(const cfg_file *f, const char *section);
/* Call fn for each distinct section name, in file order. */
void cfg_file_foreach_section(const cfg_file *f, void (*fn)(const char *section, int line, void *ud),
                              void *ud);

/* Bind `section` of `f` to `dst` following `map`: defaults first, then file
 * and overrides, then OPSC_* environment variables. Returns 0 or OPSC_ESCHEMA
 * with a message in err. Strings stored in dst are borrowed from `f` (or the
 * map's defaults) and live as long as `f`. */
int cfg_bind(const cfg_file *f, const char *section, const opsc_cfg_entry *map, void *dst,
             char *err, size_t errlen);

/* Parse one value of `e` from text into dst (used by cfg_bind and tests). */
int cfg_parse_value(const opsc_cfg_entry *e, const char *text, void *dst, char *err, size_t errlen);
int cfg_parse_duration_ms(const char *text, int64_t *out);
int cfg_parse_size(const char *text, int64_t *out);

/* Where the value of [section] key comes from, for error messages:
 * "FILE:LINE", "--flag", "environment OPSC_X", or the file's path when the
 * key is not set (its default is used). */
void cfg_origin(const cfg_file *f, const char *section, const char *key, char *buf, size_t n);

/* Environment variable name for a key: OPSC_SERVER_LISTEN,
 * OPSC_PLUGIN_TRANSPORT_SSH_KEEPALIVE. */
void cfg_env_name(const char *section, const char *key, char *buf, size_t n);

/* ---- the daemon's own sections --------------------------------------- */

struct server_cfg {
    const char *listen;
    int64_t max_connections;
    int64_t max_header_bytes;
    int64_t max_body_bytes;
    int64_t max_upload_bytes;
    int64_t idle_timeout_ms;
    int64_t request_timeout_ms;
    int64_t shutdown_timeout_ms;
    const char *public_url; /* how users reach the daemon: links in notifications */
    const char *user;       /* switch to this user after starting the spawner (root only) */
    const char *tls_cert;   /* PEM chain of the listen addresses marked tls */
    const char *tls_key;    /* PEM key, mode 0600 */
    const char *tls_client_ca; /* "" -> no client certificates asked */
    bool tls_client_required;
    int tls_min_version; /* enum tls_min: 0 -> 1.2, 1 -> 1.3 */
    int64_t hsts_max_age_ms;
    bool redirect_http;
};

struct store_cfg {
    const char *data_dir;
    int64_t map_size;
    int64_t max_map_size;
    int backend;                /* enum store_backend */
    const char *postgresql_url; /* secret: libpq URL or connection string */
    int64_t lease_ttl_ms;       /* cluster mode: the leader lease (docs/cluster.md 2.2) */
};

/* [store] backend: where records live (docs/cluster.md). */
enum store_backend { STORE_BACKEND_LMDB, STORE_BACKEND_POSTGRESQL };

struct log_cfg {
    int level;  /* OPSC_LOG_* */
    int format; /* enum log_format */
    const char *file;
};

struct plugins_cfg {
    const char *dirs;     /* ':'-separated directories searched for *.so */
    const char *disabled; /* ','-separated plugin names not to load */
};

struct auth_cfg {
    const char *providers; /* ','-separated auth provider names, tried in order */
    const char *issuer;    /* JWT iss */
    int64_t access_ttl_ms;
    int64_t refresh_ttl_ms;
    const char *jwt_secret;   /* secret; "" -> jwt_key_file */
    const char *jwt_key_file; /* "" -> <data_dir>/jwt.key */
    int64_t password_cost;    /* yescrypt cost 1..11 */
    int64_t password_min_score; /* zxcvbn 0..4; 0: length only */
    int64_t hash_workers;     /* slow hashes running at once */
    int64_t hash_queue;       /* slow hashes waiting at most */
    int64_t user_free_failures;
    int64_t address_free_failures;
    int64_t lockout_base_ms;
    int64_t lockout_max_ms;
    int64_t address_max_inflight; /* logins of one address in progress at once */
    int64_t audit_retention_ms;
};

struct vault_cfg {
    const char *key_file; /* "" -> <data_dir>/master.key */
};

struct sched_cfg {
    int64_t misfire_grace_ms;     /* default grace of a schedule's late fires */
    int64_t misfire_threshold_ms; /* a fire later than this is a misfire */
    int64_t run_all_max;          /* misfire_policy run_all: late fires run at most */
    int64_t missed_max;           /* missed runs recorded one by one per catch-up */
    int64_t overlap_limit;        /* default N of overlap_policy allow and queue */
    int64_t clock_check_ms;       /* longest sleep: how soon a wall-clock jump is seen */
};

struct steplibs_cfg {
    const char *dir;          /* "" -> <data_dir>/steplibs */
    const char *trusted_keys; /* ':'-separated Ed25519 public key files */
    int require_signature;    /* enum install_sig_policy: auto, yes, no */
    int isolation;            /* enum iso_mode: untrusted, always, never */
    int64_t host_memory_limit;  /* address space of a step host */
    int64_t host_stop_grace_ms; /* CANCEL -> SIGTERM -> SIGKILL */
    int64_t host_heartbeat_ms;
    int64_t host_load_timeout_ms; /* opsc-stephost --manifest of a library */
    const char *stephost; /* opsc-stephost path; "" -> found */
    const char *host_user; /* a step host of a daemon running as root runs as this user */
};

struct fleet_cfg {
    int64_t idle_timeout_ms;  /* pooled connection idle this long closes */
    int64_t max_per_target;   /* pooled connections per target */
    int64_t max_total;        /* pooled connections in all */
    int64_t test_concurrency; /* targets of a group test probed at once */
};

struct exec_cfg {
    int64_t max_parallel;     /* targets running at once, all runs */
    int64_t step_workers;     /* threads for imperative steps */
    int64_t step_timeout_ms;  /* steps without timeout_s */
    int64_t log_retention_ms; /* 0: keep */
    int64_t log_max_bytes;    /* all logs; 0: no limit */
    int64_t log_max_per_target;
    int64_t log_sweep_interval_ms;
    int64_t capture_limit;  /* stdout kept per command for outputs */
    const char *local_user; /* local steps run as this user */
    int local_targets;      /* enum exec_local_policy */
    const char *spawner;    /* opsc-spawner path; "" -> found */
};

struct notify_cfg {
    const char *retry_schedule; /* ','-separated delays before each attempt */
    int64_t max_age_ms;         /* a delivery older than this is given up */
    int64_t max_in_flight;      /* deliveries being sent at once */
    bool paused;                /* queue deliveries but send none (maintenance, benchmarks) */
    int64_t attempt_timeout_ms; /* a notifier that has not answered by then has failed */
    int64_t hook_max_body;      /* bytes of an inbound webhook's body */
    int64_t history_ms;         /* finished deliveries are kept this long */
};

struct web_cfg {
    bool enabled;    /* serve the UI's files */
    const char *dir; /* the built UI (index.html, assets/) */
};

/* [executor] local_targets: who may create, change and run jobs on local targets. */
enum exec_local_policy { LOCAL_TARGETS_ADMIN, LOCAL_TARGETS_OPERATOR, LOCAL_TARGETS_DISABLED };
struct discovery_cfg {
    int64_t max_addresses;      /* addresses one scan may cover */
    const char *allowed_ranges; /* ','-separated CIDR blocks, ranges, addresses; "": any */
    int64_t vanish_after;       /* profile scans in a row a host may miss before it vanishes */
    int64_t max_running;        /* scans at once */
    int64_t max_rate;           /* highest rate a scan may ask for */
    int64_t resolve_timeout_ms; /* host names of a scan request */
    int64_t scan_retention;     /* finished scans kept; the oldest go */
};

/* [cluster]: this node among the others (docs/cluster.md 2.4, labels). */
struct cluster_cfg {
    const char *labels;   /* "dc=eu,rack=3": this node's labels */
    const char *route_by; /* "dc,...": label keys that route runs to nodes */
};

struct config {
    cfg_file *file;
    struct server_cfg server;
    struct store_cfg store;
    struct cluster_cfg cluster;
    struct log_cfg log;
    struct plugins_cfg plugins;
    struct auth_cfg auth;
    struct vault_cfg vault;
    struct sched_cfg scheduler;
    struct steplibs_cfg steplibs;
    struct fleet_cfg fleet;
    struct exec_cfg executor;
    struct web_cfg web;
    struct notify_cfg notifications;
    struct discovery_cfg discovery;
};

/* Bind every daemon section of `f` into `cfg` (which takes ownership of `f`)
 * and reject unknown sections. */
int config_bind_all(struct config *cfg, cfg_file *f, char *err, size_t errlen);
void config_free(struct config *cfg);
/* The daemon's own sections in file order: the table of section `i` and its
 * name; NULL past the last. */
const opsc_cfg_entry *config_section_map(size_t i, const char **name);
/* The text of the value a key takes, and where it comes from, in the order
 * cfg_bind applies them: the environment, else the last command-line flag or
 * file line, else the default (NULL when there is none). `origin` receives
 * "environment OPSC_...", "--listen", "path:line" or "default". */
const char *cfg_effective_text(const cfg_file *f, const char *section, const opsc_cfg_entry *e,
                               char *origin, size_t n);

/* ---- the reference and the effective configuration (config_ref.c) ---- */

/* A section as documented: its name, one line about it (may be NULL) and its table. */
typedef struct cfg_section_ref {
    const char *name;
    const char *doc;
    const opsc_cfg_entry *map;
} cfg_section_ref;

enum cfg_ref_format { CFG_REF_CONF, CFG_REF_MAN };

/* The daemon's sections followed by `extra` (plugin sections, sorted here by
 * name), as commented defaults of the config file or as roff for
 * opsconductord.conf(5). Sections without keys are left out. */
void cfg_write_reference(FILE *out, enum cfg_ref_format fmt, cfg_section_ref *extra, size_t nextra);
/* --print-config: every key of the daemon's sections and of `extra`, with
 * the value it takes and its origin; secrets masked. */
void cfg_write_effective(FILE *out, const cfg_file *f, cfg_section_ref *extra, size_t nextra);
/* Every daemon key with its default and doc (for --help). */
void config_print_keys(FILE *out);
/* A deep copy of a table (a plugin's table outlives its refused .so); NULL
 * when out of memory. */
opsc_cfg_entry *cfg_map_dup(const opsc_cfg_entry *map);
void cfg_map_free(opsc_cfg_entry *map);

#endif
