/* pool.h - connections to targets: opened through the target's transport, pooled, reused.
 *
 * The executor and the connectivity test ask for a lease on a target; the
 * pool hands out an open connection of the target's transport (SSH, WinRM,
 * local), opening one when none is idle. Opening one loads the target, asks
 * the vault for its credential (decrypted for the connect only, wiped
 * after), passes the known host keys and the policy, and records a key the
 * transport learned under TOFU (audit-logged). Per target: at most
 * `max_sessions` leases at once on one connection (the transport's limit),
 * at most `max_connections` connections; waiters queue in order. Idle
 * connections close after the idle timeout. A lease returned as broken
 * closes its connection.
 *
 * Thread: loop only. Callbacks follow the SDK rule: if a call returns an
 * error its callback never runs; otherwise it runs exactly once, never from
 * inside the call.
 */
#ifndef OPSC_POOL_H
#define OPSC_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include <opsc/transport.h>

struct opsc_core;
typedef struct pool pool;
typedef struct pool_lease pool_lease;
typedef struct pool_wait pool_wait;

typedef struct pool_opts {
    int64_t idle_timeout_ms; /* close idle connections after this */
    int max_connections;     /* per target */
    int max_total;           /* connections across all targets */
} pool_opts;

/* Uses core->loop, ->store, ->vault, ->plugins, and ->audit and ->events
 * when set (TOFU records). Zero options take the defaults: 5 min, 4, 1000. */
int pool_new(pool **out, struct opsc_core *core, const pool_opts *opts);
/* Close every connection; `cb` runs when all are closed. Waiting acquires
 * fail with OPSC_ECANCELED first. */
void pool_close(pool *p, void (*cb)(void *ud), void *ud);
void pool_free(pool *p);

/* status 0: `lease` is yours until pool_release(). status < 0: `error` says
 * why (borrowed until return): unknown or disabled target, no transport of
 * that name loaded, credential missing, connect failure (OPSC_EDNS,
 * OPSC_ETIMEDOUT, OPSC_EAUTH, OPSC_EHOSTKEY...). `info` (may be NULL;
 * borrowed until return) is the transport's conn info when this lease
 * opened a new connection; on a reused connection it is NULL, except that a
 * connection with a warning (host key policy off) hands every lease an
 * info carrying just that warning: it belongs in every run log. */
typedef void (*pool_acquire_cb)(void *ud, int status, pool_lease *lease, const opsc_conn_info *info,
                                const char *error);
int pool_acquire(pool *p, const char *target_id, pool_acquire_cb cb, void *ud, pool_wait **out);
/* Give up waiting: the callback runs with OPSC_ECANCELED. */
void pool_acquire_cancel(pool_wait *w);

const opsc_transport *pool_lease_transport(const pool_lease *l);
opsc_conn *pool_lease_conn(const pool_lease *l);
/* The target record (borrowed until release): name, address, os_family, labels, facts. */
struct json_t *pool_lease_target(const pool_lease *l);
/* Return the lease. `broken`: the connection misbehaved (protocol error,
 * reset): close it rather than reuse it. May be called from inside a
 * transport callback of that connection (on_done...): a close it causes
 * happens on the next loop turn. */
void pool_release(pool_lease *l, bool broken);

/* Forget pooled connections of a target (its address, credential or host
 * keys changed): idle ones close now, leased ones when released. A change
 * of the target's connection fields or of its credential's version is also
 * noticed by the next pool_acquire(), which then stops reusing connections
 * opened before it. */
void pool_invalidate(pool *p, const char *target_id);

/* Counts for tests, benchmarks and /metrics. */
typedef struct pool_stats {
    size_t targets;     /* targets the pool tracks */
    size_t connections; /* open, opening or closing */
    size_t connecting;
    size_t idle;
    size_t leases;
    size_t waiting;
} pool_stats;
void pool_stats_get(const pool *p, pool_stats *st);

/* Per transport: connects since start, succeeded and failed by reason, and
 * the connections open and idle now. */
#define POOL_MAX_TRANSPORTS 8
#define POOL_MAX_REASONS 16
typedef struct pool_transport_stats {
    char name[32];   /* the transport's name ("ssh", "winrm") */
    uint64_t opened; /* connects that succeeded */
    size_t open, idle;
    struct pool_failures {
        const char *reason; /* opsc_err_name() of the failure: static */
        uint64_t n;
    } failed[POOL_MAX_REASONS];
    size_t nfailed;
} pool_transport_stats;
/* Fills up to `max` entries; returns how many. */
size_t pool_transport_stats_get(const pool *p, pool_transport_stats *out, size_t max);

#endif
