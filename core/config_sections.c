/* config_sections.c - the daemon's own sections of the configuration: every key, its type,
 * default, bounds and help text, bound into struct config. Plugins declare theirs in their
 * descriptors ([plugin.<name>]); config.c loads the file and binds any such table. */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <opsc/errors.h>

#include "build_config.h"


#define SRV(field) offsetof(struct server_cfg, field)
static const opsc_cfg_entry server_map[] = {
    {"listen", OPSC_CFG_STRING, "127.0.0.1:8080", 0, -1, NULL, 0, SRV(listen),
     "address:port of the REST API ([::1]:8080 for IPv6), or several separated by ',', each "
     "followed by 'tls' for HTTPS: 127.0.0.1:8080, [::]:8443 tls"},
    {"max_connections", OPSC_CFG_INT, "4096", 1, 1000000, NULL, 0, SRV(max_connections),
     "concurrent client connections; more are answered 503"},
    {"max_header_size", OPSC_CFG_SIZE, "16k", 1024, 1 << 20, NULL, 0, SRV(max_header_bytes),
     "bytes of request line + headers; more is answered 431"},
    {"max_body_size", OPSC_CFG_SIZE, "8M", 1024, 1LL << 30, NULL, 0, SRV(max_body_bytes),
     "bytes of a JSON request body; more is answered 413"},
    {"max_upload_size", OPSC_CFG_SIZE, "256M", 1024, 1LL << 40, NULL, 0, SRV(max_upload_bytes),
     "bytes of an upload (step library, file); more is answered 413"},
    {"idle_timeout", OPSC_CFG_DURATION, "60s", 1000, 86400000, NULL, OPSC_CFG_RELOAD,
     SRV(idle_timeout_ms), "close keep-alive connections idle this long"},
    {"request_timeout", OPSC_CFG_DURATION, "30s", 100, 3600000, NULL, OPSC_CFG_RELOAD,
     SRV(request_timeout_ms), "a request must arrive whole within this time, else 408"},
    {"shutdown_timeout", OPSC_CFG_DURATION, "30s", 0, 3600000, NULL, 0, SRV(shutdown_timeout_ms),
     "on SIGTERM, how long running work may take to finish"},
    {"public_url", OPSC_CFG_STRING, "", 0, -1, NULL, 0, SRV(public_url),
     "the address users reach the daemon at (https://opsc.example.com): links in notifications"},
    {"user", OPSC_CFG_STRING, "", 0, -1, NULL, 0, SRV(user),
     "started as root: the user the daemon switches to once its helper for local steps runs "
     "(e.g. opsconductor); empty: stay as started"},
    {"tls_cert", OPSC_CFG_STRING, "", 0, -1, NULL, OPSC_CFG_RELOAD, SRV(tls_cert),
     "PEM certificate, then its chain, of the listen addresses marked tls; refused when expired "
     "or not yet valid"},
    {"tls_key", OPSC_CFG_STRING, "", 0, -1, NULL, OPSC_CFG_RELOAD, SRV(tls_key),
     "PEM private key of tls_cert, unencrypted; refused when group or others may read it "
     "(chmod 600)"},
    {"tls_client_ca", OPSC_CFG_STRING, "", 0, -1, NULL, OPSC_CFG_RELOAD, SRV(tls_client_ca),
     "PEM CA certificates of client certificates: one they verify authenticates as the user its "
     "subject CN names, when the request has no Authorization; empty: none asked"},
    {"tls_client_required", OPSC_CFG_BOOL, "false", 0, -1, NULL, OPSC_CFG_RELOAD,
     SRV(tls_client_required),
     "with tls_client_ca: refuse TLS connections that present no client certificate"},
    {"tls_min_version", OPSC_CFG_ENUM, "1.2", 0, -1, "1.2|1.3", OPSC_CFG_RELOAD,
     SRV(tls_min_version), "oldest TLS version accepted"},
    {"hsts_max_age", OPSC_CFG_DURATION, "365d", 0, 3650LL * 86400000, NULL, 0, SRV(hsts_max_age_ms),
     "Strict-Transport-Security max-age of answers over TLS; 0: none"},
    {"redirect_http", OPSC_CFG_BOOL, "false", 0, -1, NULL, 0, SRV(redirect_http),
     "plain HTTP addresses redirect to the first tls one (except /health and /ready)"},
    {NULL},
};
#undef SRV

#define STO(field) offsetof(struct store_cfg, field)
static const opsc_cfg_entry store_map[] = {
    {"data_dir", OPSC_CFG_STRING, OPSC_DATA_DIR_DEFAULT, 0, -1, NULL, 0, STO(data_dir),
     "directory of the LMDB store, keys and spool"},
    {"map_size", OPSC_CFG_SIZE, "64M", 1 << 20, 1LL << 40, NULL, 0, STO(map_size),
     "initial LMDB map size; it grows by itself when full"},
    {"max_map_size", OPSC_CFG_SIZE, "64G", 1 << 20, 1LL << 44, NULL, 0, STO(max_map_size),
     "the map never grows beyond this"},
    {"backend", OPSC_CFG_ENUM, "lmdb", 0, -1, "lmdb|postgresql", 0, STO(backend),
     "where the records live: the embedded LMDB store in data_dir, or a PostgreSQL database "
     "that several daemons share (cluster mode, docs/cluster.md)"},
    {"postgresql_url", OPSC_CFG_STRING, "", 0, -1, NULL, OPSC_CFG_SECRET, STO(postgresql_url),
     "backend = postgresql: a libpq URL or connection string; keep the password out of it "
     "(PGPASSWORD, PGPASSFILE or a client certificate)"},
    {"lease_ttl", OPSC_CFG_DURATION, "15s", 1000, 600000, NULL, 0, STO(lease_ttl_ms),
     "backend = postgresql: how long the leader's lease lasts unrenewed; nodes beat every fifth "
     "of it, a leader steps down when two thirds passed without renewal, and a node silent for "
     "this long is dead"},
    {NULL},
};
#undef STO

#define CLU(field) offsetof(struct cluster_cfg, field)
static const opsc_cfg_entry cluster_map[] = {
    {"labels", OPSC_CFG_STRING, "", 0, -1, NULL, 0, CLU(labels),
     "backend = postgresql: this node's labels, ','-separated key=value pairs (dc=eu,rack=3), "
     "as targets' labels are written; GET /api/v1/cluster shows them"},
    {"route_by", OPSC_CFG_STRING, "", 0, -1, NULL, 0, CLU(route_by),
     "backend = postgresql: ','-separated label keys (dc) that route runs: a run made on this "
     "node is claimed only by a node whose labels have its targets' value of each key; targets "
     "that need different nodes are refused (409); give every node the same"},
    {NULL},
};
#undef CLU

#define LOG(field) offsetof(struct log_cfg, field)
static const opsc_cfg_entry log_map[] = {
    {"level", OPSC_CFG_ENUM, "info", 0, -1, "error|warn|info|debug", OPSC_CFG_RELOAD, LOG(level),
     "least severe level written"},
    {"format", OPSC_CFG_ENUM, "text", 0, -1, "text|json", 0, LOG(format),
     "one line per event: text or JSON"},
    {"file", OPSC_CFG_STRING, "", 0, -1, NULL, 0, LOG(file),
     "log file (reopened on SIGHUP); empty: standard error"},
    {NULL},
};
#undef LOG

#define PLG(field) offsetof(struct plugins_cfg, field)
static const opsc_cfg_entry plugins_map[] = {
    {"dirs", OPSC_CFG_STRING, OPSC_PLUGIN_DIRS_DEFAULT, 0, -1, NULL, 0, PLG(dirs),
     "':'-separated directories searched (two levels deep) for plugin .so files"},
    {"disabled", OPSC_CFG_STRING, "", 0, -1, NULL, 0, PLG(disabled),
     "','-separated names of plugins not to load"},
    {NULL},
};
#undef PLG

#define AUT(field) offsetof(struct auth_cfg, field)
static const opsc_cfg_entry auth_map[] = {
    {"providers", OPSC_CFG_STRING, "local", 0, -1, NULL, 0, AUT(providers),
     "','-separated auth providers asked in order at login (local, ldap)"},
    {"issuer", OPSC_CFG_STRING, "opsconductor", 0, -1, NULL, 0, AUT(issuer),
     "iss claim written into and required of access tokens"},
    {"access_ttl", OPSC_CFG_DURATION, "15m", 60000, 86400000, NULL, 0, AUT(access_ttl_ms),
     "lifetime of an access token (JWT)"},
    {"refresh_ttl", OPSC_CFG_DURATION, "7d", 60000, 90LL * 86400000, NULL, 0, AUT(refresh_ttl_ms),
     "lifetime of a refresh token"},
    {"jwt_secret", OPSC_CFG_STRING, "", 0, -1, NULL, OPSC_CFG_SECRET, AUT(jwt_secret),
     "HMAC key of access tokens (32 to 64 bytes); empty: jwt_key_file"},
    {"jwt_key_file", OPSC_CFG_STRING, "", 0, -1, NULL, 0, AUT(jwt_key_file),
     "file holding the HMAC key, created 0600 at first start; empty: <data_dir>/jwt.key"},
    {"password_cost", OPSC_CFG_INT, "7", 1, 11, NULL, 0, AUT(password_cost),
     "yescrypt cost of new password hashes (7: ~100 ms, 64 MiB)"},
    {"password_min_score", OPSC_CFG_INT, "3", 0, 4, NULL, 0, AUT(password_min_score),
     "weakest password strength accepted, zxcvbn's 0-4 (3: ~10^8 guesses; the username, display "
     "name and 'opsconductor' count against it); 0 checks the length only"},
    {"hash_workers", OPSC_CFG_INT, "1", 1, 64, NULL, 0, AUT(hash_workers),
     "password hashes computed at once (each takes one core)"},
    {"hash_queue", OPSC_CFG_INT, "64", 0, 100000, NULL, 0, AUT(hash_queue),
     "logins waiting for a hash at most; more are answered 503"},
    {"user_free_failures", OPSC_CFG_INT, "5", 0, 1000, NULL, 0, AUT(user_free_failures),
     "failed logins of one username before it is delayed"},
    {"address_free_failures", OPSC_CFG_INT, "20", 0, 100000, NULL, 0, AUT(address_free_failures),
     "failed logins from one address before it is delayed"},
    {"lockout_base", OPSC_CFG_DURATION, "1s", 100, 3600000, NULL, 0, AUT(lockout_base_ms),
     "first delay after the free failures; it doubles with each failure"},
    {"lockout_max", OPSC_CFG_DURATION, "15m", 100, 86400000, NULL, 0, AUT(lockout_max_ms),
     "longest delay"},
    {"address_max_inflight", OPSC_CFG_INT, "2", 1, 1000, NULL, 0, AUT(address_max_inflight),
     "logins from one address in progress at once; more are answered 429"},
    {"audit_retention", OPSC_CFG_DURATION, "90d", 0, 3650LL * 86400000, NULL, 0,
     AUT(audit_retention_ms), "audit records older than this are deleted; 0 keeps all"},
    {NULL},
};
#undef AUT

static const opsc_cfg_entry vault_map[] = {
    {"key_file", OPSC_CFG_STRING, "", 0, -1, NULL, 0, offsetof(struct vault_cfg, key_file),
     "master key file, created 0600 at first start; empty: <data_dir>/master.key "
     "(OPSC_MASTER_KEY, base64, overrides it)"},
    {NULL},
};

#define SCH(field) offsetof(struct sched_cfg, field)
static const opsc_cfg_entry sched_map[] = {
    {"misfire_grace", OPSC_CFG_DURATION, "1h", 0, 366LL * 86400000, NULL, 0, SCH(misfire_grace_ms),
     "a late fire may still run this long after its planned time (per-schedule default)"},
    {"misfire_threshold", OPSC_CFG_DURATION, "1s", 10, 3600000, NULL, 0,
     SCH(misfire_threshold_ms), "a fire later than this counts as a misfire (daemon down, clock "
                                "jump); the misfire policy decides"},
    {"run_all_max", OPSC_CFG_INT, "10", 1, 10000, NULL, 0, SCH(run_all_max),
     "misfire_policy run_all: late fires run at most, the latest ones; the rest are missed"},
    {"missed_max", OPSC_CFG_INT, "100", 1, 100000, NULL, 0, SCH(missed_max),
     "missed runs recorded one by one per catch-up; older ones are summed up in one"},
    {"overlap_limit", OPSC_CFG_INT, "10", 1, 1000, NULL, 0, SCH(overlap_limit),
     "default N of overlap_policy allow (runs at once) and queue (fires waiting)"},
    {"clock_check_interval", OPSC_CFG_DURATION, "5s", 100, 3600000, NULL, 0, SCH(clock_check_ms),
     "the scheduler wakes at least this often to notice wall-clock jumps"},
    {NULL},
};
#undef SCH

#define STL(field) offsetof(struct steplibs_cfg, field)
static const opsc_cfg_entry steplibs_map[] = {
    {"dir", OPSC_CFG_STRING, "", 0, -1, NULL, 0, STL(dir),
     "where uploaded step libraries are installed; empty: <data_dir>/steplibs"},
    {"trusted_keys", OPSC_CFG_STRING, "", 0, -1, NULL, 0, STL(trusted_keys),
     "':'-separated files of Ed25519 public keys (PEM or OpenSSH) of trusted publishers"},
    {"require_signature", OPSC_CFG_ENUM, "auto", 0, -1, "auto|yes|no", 0, STL(require_signature),
     "refuse unsigned uploads: auto means yes when trusted_keys is set"},
    {"isolation", OPSC_CFG_ENUM, "untrusted", 0, -1, "untrusted|always|never", 0, STL(isolation),
     "where imperative steps run: untrusted runs uploaded libraries in a sandboxed opsc-stephost "
     "process and the bundled ones in the daemon; always, every library out of process; never, "
     "all in the daemon"},
    {"host_memory_limit", OPSC_CFG_SIZE, "1G", 64 << 20, (int64_t)1 << 40, NULL, 0,
     STL(host_memory_limit), "address space of one step host process"},
    {"host_stop_grace", OPSC_CFG_DURATION, "1s", 100, 60000, NULL, 0, STL(host_stop_grace_ms),
     "a cancelled step that does not stop: its host gets SIGTERM after this, SIGKILL after twice"},
    {"host_heartbeat", OPSC_CFG_DURATION, "5s", 100, 600000, NULL, 0, STL(host_heartbeat_ms),
     "a silent step host is pinged this often; three unanswered and it is killed as crashed"},
    {"host_load_timeout", OPSC_CFG_DURATION, "10s", 100, 600000, NULL, 0,
     STL(host_load_timeout_ms),
     "a library that runs out of process is loaded by a step host to read what it declares; "
     "one whose constructors or init() take longer is refused"},
    {"host_user", OPSC_CFG_STRING, "opsconductor-steplib", 0, -1, NULL, 0, STL(host_user),
     "step hosts run as this user (scripts/deps creates it) when the daemon can switch users "
     "at start (root, or CAP_SETUID and CAP_SETGID), also once it gave that up (through "
     "opsc-spawner); a daemon that never could starts its hosts as itself"},
    {"stephost", OPSC_CFG_STRING, "", 0, -1, NULL, 0, STL(stephost),
     "path of opsc-stephost; empty: next to the daemon's executable, else the installed one"},
    {NULL},
};
#undef STL
#define FLT(field) offsetof(struct fleet_cfg, field)
static const opsc_cfg_entry fleet_map[] = {
    {"idle_timeout", OPSC_CFG_DURATION, "5m", 1000, 86400000, NULL, 0, FLT(idle_timeout_ms),
     "close a pooled connection to a target after it was idle this long"},
    {"max_connections_per_target", OPSC_CFG_INT, "4", 1, 64, NULL, 0, FLT(max_per_target),
     "pooled connections to one target at once (each carries the transport's sessions)"},
    {"max_connections", OPSC_CFG_INT, "1000", 1, 100000, NULL, 0, FLT(max_total),
     "pooled connections to all targets at once; the oldest idle one makes room"},
    {"test_concurrency", OPSC_CFG_INT, "64", 1, 1000, NULL, 0, FLT(test_concurrency),
     "targets of a group connectivity test probed at once"},
    {NULL},
};
#undef FLT

#define EXE(field) offsetof(struct exec_cfg, field)
static const opsc_cfg_entry exec_map[] = {
    {"max_parallel", OPSC_CFG_INT, "256", 1, 100000, NULL, 0, EXE(max_parallel),
     "targets running at once, all runs together (each job may set a lower max_parallel)"},
    {"step_workers", OPSC_CFG_INT, "8", 1, 1024, NULL, 0, EXE(step_workers),
     "worker threads for imperative steps (steps written in C); more wait their turn"},
    {"step_timeout", OPSC_CFG_DURATION, "1h", 1000, 7LL * 86400000, NULL, 0, EXE(step_timeout_ms),
     "timeout of a step whose job gives none (timeout_s)"},
    {"log_retention", OPSC_CFG_DURATION, "30d", 0, 3650LL * 86400000, NULL, 0,
     EXE(log_retention_ms), "run logs are deleted this long after their run ended; 0 keeps them"},
    {"log_max_size", OPSC_CFG_SIZE, "2G", 0, 1LL << 44, NULL, 0, EXE(log_max_bytes),
     "all run logs together; beyond it the oldest runs' logs are deleted; 0: no limit"},
    {"log_max_per_target", OPSC_CFG_SIZE, "32M", 4096, 1LL << 36, NULL, 0, EXE(log_max_per_target),
     "log kept of one target in one run; later output is dropped"},
    {"log_sweep_interval", OPSC_CFG_DURATION, "10m", 1000, 86400000, NULL, 0,
     EXE(log_sweep_interval_ms), "how often log retention is applied"},
    {"output_capture", OPSC_CFG_SIZE, "1M", 1024, 1LL << 30, NULL, 0, EXE(capture_limit),
     "stdout kept per command for a step's outputs (the log keeps all of it)"},
    {"local_user", OPSC_CFG_STRING, "opsconductor-local", 0, -1, NULL, 0, EXE(local_user),
     "unprivileged user that local steps run as (never the daemon's user); local steps are "
     "refused when the daemon cannot switch to it"},
    {"local_targets", OPSC_CFG_ENUM, "admin", 0, -1, "admin|operator|disabled", 0,
     EXE(local_targets),
     "role needed to create, change or run jobs on targets of the local "
     "transport; disabled refuses them all"},
    {"spawner", OPSC_CFG_STRING, "", 0, -1, NULL, 0, EXE(spawner),
     "path of opsc-spawner, the helper that starts local steps; empty: next to the daemon's "
     "build, else the installed one"},
    {NULL},
};
#undef EXE

#define WEB(field) offsetof(struct web_cfg, field)
static const opsc_cfg_entry web_map[] = {
    {"enabled", OPSC_CFG_BOOL, "true", 0, -1, NULL, 0, WEB(enabled),
     "serve the web UI at / (the API stays under /api/v1 either way)"},
    {"dir", OPSC_CFG_STRING, OPSC_WEB_DIR_DEFAULT, 0, -1, NULL, 0, WEB(dir),
     "directory of the built web UI (index.html, assets/), read into memory at start"},
    {NULL},
};
#undef WEB
#define NTF(field) offsetof(struct notify_cfg, field)
static const opsc_cfg_entry notify_map[] = {
    {"retry_schedule", OPSC_CFG_STRING, "0,5s,5m,30m,2h,5h,10h", 0, -1, NULL, 0,
     NTF(retry_schedule), "delays before each attempt of a delivery; the last one repeats"},
    {"max_age", OPSC_CFG_DURATION, "3d", 1000, 365LL * 86400000, NULL, 0, NTF(max_age_ms),
     "a delivery not sent within this time is given up"},
    {"max_in_flight", OPSC_CFG_INT, "64", 1, 10000, NULL, 0, NTF(max_in_flight),
     "deliveries being sent at once"},
    {"paused", OPSC_CFG_BOOL, "false", 0, -1, NULL, 0, NTF(paused),
     "keep deliveries in the outbox and send none (maintenance)"},
    {"attempt_timeout", OPSC_CFG_DURATION, "2m", 1000, 3600000, NULL, 0, NTF(attempt_timeout_ms),
     "an attempt whose notifier has not answered by then fails (and is retried)"},
    {"hook_max_body", OPSC_CFG_SIZE, "1M", 1024, 64LL << 20, NULL, 0, NTF(hook_max_body),
     "bytes of an inbound webhook's body; more is answered 413"},
    {"history_retention", OPSC_CFG_DURATION, "30d", 3600000, 3650LL * 86400000, NULL, 0,
     NTF(history_ms), "delivered and given-up deliveries are deleted this long after they were made"},
    {NULL},
};
#undef NTF
#define DSC(field) offsetof(struct discovery_cfg, field)
static const opsc_cfg_entry discovery_map[] = {
    {"max_addresses", OPSC_CFG_INT, "65536", 1, 1LL << 32, NULL, 0, DSC(max_addresses),
     "addresses one scan may cover (after exclusions); a larger request is refused"},
    {"allowed_ranges", OPSC_CFG_STRING, "", 0, -1, NULL, 0, DSC(allowed_ranges),
     "','-separated CIDR blocks, ranges and addresses scans may touch; empty: any"},
    {"vanish_after", OPSC_CFG_INT, "3", 1, 1000, NULL, 0, DSC(vanish_after),
     "a host the last N scans of a profile did not see is vanished (per-profile default)"},
    {"max_running_scans", OPSC_CFG_INT, "4", 1, 64, NULL, 0, DSC(max_running),
     "scans running at once; more are refused (409) until one ends"},
    {"max_rate", OPSC_CFG_INT, "20000", 1, 1000000, NULL, 0, DSC(max_rate),
     "the highest rate (connection attempts per second) a scan may ask for"},
    {"resolve_timeout", OPSC_CFG_DURATION, "5s", 100, 60000, NULL, 0, DSC(resolve_timeout_ms),
     "host names in a scan request must resolve within this"},
    {"scan_retention", OPSC_CFG_INT, "1000", 10, 1000000, NULL, 0, DSC(scan_retention),
     "finished scans kept (the inventory keeps every host regardless)"},
    {NULL},
};
#undef DSC

static const struct section {
    const char *name;
    const opsc_cfg_entry *map;
    size_t offset;
} sections[] = {
    {"server", server_map, offsetof(struct config, server)},
    {"store", store_map, offsetof(struct config, store)},
    {"cluster", cluster_map, offsetof(struct config, cluster)},
    {"log", log_map, offsetof(struct config, log)},
    {"plugins", plugins_map, offsetof(struct config, plugins)},
    {"auth", auth_map, offsetof(struct config, auth)},
    {"vault", vault_map, offsetof(struct config, vault)},
    {"scheduler", sched_map, offsetof(struct config, scheduler)},
    {"steplibs", steplibs_map, offsetof(struct config, steplibs)},
    {"fleet", fleet_map, offsetof(struct config, fleet)},
    {"executor", exec_map, offsetof(struct config, executor)},
    {"web", web_map, offsetof(struct config, web)},
    {"notifications", notify_map, offsetof(struct config, notifications)},
    {"discovery", discovery_map, offsetof(struct config, discovery)},
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

struct unknown_check {
    const cfg_file *f;
    char *err;
    size_t errlen;
    int rc;
};

static void check_section(const char *name, int line, void *ud)
{
    struct unknown_check *c = ud;
    if (c->rc || strncmp(name, "plugin.", 7) == 0)
        return;
    for (size_t i = 0; i < NSECTIONS; i++)
        if (strcmp(sections[i].name, name) == 0)
            return;
    char names[256] = "";
    size_t o = 0;
    for (size_t i = 0; i < NSECTIONS; i++)
        o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s", i ? ", " : "", sections[i].name);
    snprintf(c->err, c->errlen, "%s:%d: [%s]: unknown section (valid: %s, plugin.<name>)",
             cfg_file_path(c->f), line, name, names);
    c->rc = OPSC_ESCHEMA;
}

int config_bind_all(struct config *cfg, cfg_file *f, char *err, size_t errlen)
{
    cfg->file = f;
    struct unknown_check check = {f, err, errlen, 0};
    cfg_file_foreach_section(f, check_section, &check);
    if (check.rc)
        return check.rc;
    for (size_t i = 0; i < NSECTIONS; i++) {
        int rc = cfg_bind(f, sections[i].name, sections[i].map, (char *)cfg + sections[i].offset,
                          err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

void config_free(struct config *cfg)
{
    cfg_file_free(cfg->file);
    cfg->file = NULL;
}

const opsc_cfg_entry *config_section_map(size_t i, const char **name)
{
    if (i >= NSECTIONS)
        return NULL;
    *name = sections[i].name;
    return sections[i].map;
}

