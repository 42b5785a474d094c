/* pool_internal.h - the pool's structures, shared by pool.c (leases, waiters, limits) and
 * pool_conn.c (opening and closing connections). */
#ifndef OPSC_POOL_INTERNAL_H
#define OPSC_POOL_INTERNAL_H

#include <jansson.h>
#include <uv.h>

#include "pool.h"
#include "util.h"

typedef struct ptarget ptarget;
typedef struct pconn pconn;

/* The jump hosts of one connect (pool_jump.c): records and credentials,
 * held until the transport's connect callback has run. */
#define POOL_MAX_JUMPS 8
typedef struct pool_jumps {
    size_t n;
    json_t *recs[POOL_MAX_JUMPS];
    char *known[POOL_MAX_JUMPS];
    opsc_target targets[POOL_MAX_JUMPS];
    opsc_credential creds[POOL_MAX_JUMPS];
    opsc_jump jumps[POOL_MAX_JUMPS];
} pool_jumps;

enum pconn_state { PC_CONNECTING, PC_READY, PC_CLOSING, PC_CLOSED };

/* One connection of a target. It lives until it is closed and no lease
 * refers to it any more. */
struct pconn {
    pool *p;
    ptarget *t;
    pconn *next, *prev;   /* the target's connections */
    pconn *inext, *iprev; /* the pool's idle list, oldest first */
    bool idle;
    enum pconn_state state;
    const opsc_transport *tr;
    void *tr_state;
    opsc_conn *conn;
    unsigned leases;
    unsigned max_sessions; /* 0: unlimited */
    bool counted;          /* counts against the target's max_connections */
    bool stale;            /* the target changed or was invalidated: no new leases */
    bool broken;           /* a lease holder said so: no new leases */
    bool close_pending;    /* close at the next kick (never from inside a transport callback) */
    uint64_t idle_since;   /* monotonic ms */
    char *key;             /* what it was opened with (pool_conn_key) */
    /* During the connect only: */
    json_t *target;
    char *known_hosts, *options;
    opsc_credential cred;
    pool_jumps jumps;
    /* The transport's conn info, kept for the first lease and, for a
     * warning, for every lease. */
    opsc_conn_info info, warn_info;
    bool info_fresh; /* not yet handed to a lease */
    char *host_key_type, *host_key_sha256, *banner, *warning, *algorithms;
};

struct pool_wait {
    pool *p;
    ptarget *t; /* NULL once failed (on the pool's failed list) */
    pool_wait *next, *prev;
    pool_acquire_cb cb;
    void *ud;
    json_t *target; /* the record read at acquire */
    int fail_code;
    char *fail_msg;
};

struct pool_lease {
    pconn *c;
    json_t *target;
};

struct ptarget {
    char id[UUID_STR_LEN];
    ptarget *hnext; /* hash chain */
    pconn *conns;
    int nconns;              /* not closed, not stale: counted against max_connections */
    pool_wait *wq, *wq_tail; /* FIFO of waiters */
    size_t nwait;
    char *key; /* the connection key of the latest record seen */
    bool kicked, starved;
    ptarget *knext, *snext; /* kick list, starved list */
};

struct pool {
    struct opsc_core *core;
    pool_opts opts;
    uv_timer_t kick, idle;
    int handles;        /* open timers, counted down by their close callbacks */
    bool timers_closed; /* uv_close() called on both */
    ptarget **buckets;
    size_t nbuckets, ntargets;
    ptarget *kick_head, *kick_tail;
    ptarget *starved_head, *starved_tail;
    pool_wait *failed, *failed_tail; /* waiters whose callback runs at the next kick */
    pconn *idle_head, *idle_tail;
    int total; /* connections not yet freed */
    pool_transport_stats tstats[POOL_MAX_TRANSPORTS];
    size_t ntstats;
    int closing_conns;
    bool closing;
    void (*close_cb)(void *ud);
    void *close_ud;
};

/* pool.c */
/* The counters of `transport` (NULL when the table is full: more transports than fit). */
pool_transport_stats *pool_transport_counters(pool *p, const char *transport);
ptarget *pool_target_get(pool *p, const char *id, bool create);
void pool_kick(pool *p, ptarget *t);
void pool_kick_starved(pool *p);
/* Fail every waiter of `t` with `code` and `msg` (at the next kick). */
void pool_fail_waiters(pool *p, ptarget *t, int code, const char *msg);
void pool_idle_remove(pconn *c);
/* Stop counting `c` against its target's max_connections (stale, broken, closing). */
void pool_conn_retire(pconn *c);
/* The target's connection key is now `key` (taken): connections opened
 * with another one go stale. */
void pool_target_set_key(pool *p, ptarget *t, char *key);
/* After a connection is freed: finish pool_close() when nothing is left. */
void pool_maybe_finish(pool *p);

/* pool_jump.c */
struct vault;
/* Resolve the entries of the target's transport_options.jump that name a
 * target or a credential. On error `err` says which and *j is empty. */
int pool_jumps_read(store_txn *txn, struct vault *v, const json_t *target, pool_jumps *j, char *err,
                    size_t errlen);
void pool_jumps_free(pool_jumps *j);

/* pool_conn.c */
/* The connection-relevant part of a target record and its credential's
 * version (heap text; NULL on ENOMEM). */
char *pool_conn_key(const json_t *target, const json_t *cred);
/* Read the target and open a connection for `t`. On failure the waiters
 * are failed with the reason; returns the code. */
int pool_conn_open(pool *p, ptarget *t);
/* Close (the transport closes; the pconn is freed once no lease holds it).
 * Only from the pool's own timers or pool_close(): elsewhere we may be
 * inside a callback of that very connection; use pool_conn_close_later(). */
void pool_conn_close(pconn *c);
void pool_conn_close_later(pconn *c);
/* Free a pconn whose transport connection is closed and that no lease holds. */
void pool_conn_free(pconn *c);
/* Free its memory only, the transport left alone (pool_free after a deadline). */
void pool_conn_discard(pconn *c);
/* The info to hand to a lease of `c` (NULL when there is none to give). */
const opsc_conn_info *pool_conn_info(pconn *c);

#endif
