/* pool.c - the connection pool: waiters in order, leases within the session and connection
 * limits, the idle timeout, and closing. Opening connections is pool_conn.c. */
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "fields.h"
#include "plugin_host.h"
#include "pool_internal.h"
#include "store.h"

#define NBUCKETS 1024

/* ---- targets by id ------------------------------------------------------------------------ */

static size_t bucket_of(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *s = (const unsigned char *)id; *s; s++)
        h = (h ^ *s) * 16777619u;
    return h % NBUCKETS;
}

ptarget *pool_target_get(pool *p, const char *id, bool create)
{
    size_t b = bucket_of(id);
    for (ptarget *t = p->buckets[b]; t; t = t->hnext)
        if (strcmp(t->id, id) == 0)
            return t;
    if (!create || strlen(id) >= sizeof(((ptarget *)0)->id))
        return NULL;
    ptarget *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    strcpy(t->id, id);
    t->hnext = p->buckets[b];
    p->buckets[b] = t;
    p->ntargets++;
    return t;
}

/* Forget a target the pool no longer has anything for (only from on_kick). */
static void target_maybe_free(pool *p, ptarget *t)
{
    if (t->conns || t->wq || t->kicked || t->starved)
        return;
    ptarget **pp = &p->buckets[bucket_of(t->id)];
    while (*pp != t)
        pp = &(*pp)->hnext;
    *pp = t->hnext;
    p->ntargets--;
    free(t->key);
    free(t);
}

/* ---- scheduling --------------------------------------------------------------------------- */

static void on_kick(uv_timer_t *h);

void pool_kick(pool *p, ptarget *t)
{
    if (t && !t->kicked) {
        t->kicked = true;
        t->knext = NULL;
        if (p->kick_tail)
            p->kick_tail->knext = t;
        else
            p->kick_head = t;
        p->kick_tail = t;
    }
    if (!p->timers_closed && !uv_is_active((uv_handle_t *)&p->kick))
        uv_timer_start(&p->kick, on_kick, 0, 0);
}

static void starve(pool *p, ptarget *t)
{
    if (t->starved)
        return;
    t->starved = true;
    t->snext = NULL;
    if (p->starved_tail)
        p->starved_tail->snext = t;
    else
        p->starved_head = t;
    p->starved_tail = t;
}

void pool_kick_starved(pool *p)
{
    ptarget *t = p->starved_head;
    p->starved_head = p->starved_tail = NULL;
    while (t) {
        ptarget *next = t->snext;
        t->starved = false;
        pool_kick(p, t);
        t = next;
    }
}

static void append_failed(pool *p, pool_wait *w)
{
    w->t = NULL;
    w->next = NULL;
    if (p->failed_tail)
        p->failed_tail->next = w;
    else
        p->failed = w;
    p->failed_tail = w;
}

static void set_failure(pool_wait *w, int code, const char *msg)
{
    w->fail_code = code;
    free(w->fail_msg);
    w->fail_msg = strdup(msg ? msg : opsc_strerror(code));
}

static void unqueue(ptarget *t, pool_wait *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        t->wq = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        t->wq_tail = w->prev;
    w->next = w->prev = NULL;
    t->nwait--;
}

void pool_fail_waiters(pool *p, ptarget *t, int code, const char *msg)
{
    while (t->wq) {
        pool_wait *w = t->wq;
        unqueue(t, w);
        set_failure(w, code, msg);
        append_failed(p, w);
    }
    pool_kick(p, t);
}

static void waiter_free(pool_wait *w)
{
    json_decref(w->target);
    free(w->fail_msg);
    free(w);
}

/* Run the callbacks of the waiters failed so far (not those failed meanwhile). */
static void run_failed(pool *p)
{
    pool_wait *w = p->failed;
    p->failed = p->failed_tail = NULL;
    while (w) {
        pool_wait *next = w->next;
        w->cb(w->ud, w->fail_code, NULL, NULL, w->fail_msg);
        waiter_free(w);
        w = next;
    }
}

/* ---- connections of a target ---------------------------------------------------------- */

void pool_conn_retire(pconn *c)
{
    if (c->counted) {
        c->counted = false;
        c->t->nconns--;
    }
}

void pool_target_set_key(pool *p, ptarget *t, char *key)
{
    free(t->key);
    t->key = key;
    for (pconn *c = t->conns; c; c = c->next) {
        if (c->stale || strcmp(c->key, key) == 0)
            continue;
        c->stale = true;
        pool_conn_retire(c);
        if (c->leases == 0)
            pool_conn_close_later(c);
    }
    pool_kick(p, t);
}

void pool_conn_close_later(pconn *c)
{
    c->close_pending = true;
    pool_kick(c->p, c->t);
}

static void close_pending(ptarget *t)
{
    for (pconn *c = t->conns; c; c = c->next)
        if (c->close_pending && c->state == PC_READY && c->leases == 0)
            pool_conn_close(c);
}

static pconn *find_ready(ptarget *t)
{
    for (pconn *c = t->conns, *next; c; c = next) {
        next = c->next;
        if (c->state != PC_READY || c->stale || c->broken)
            continue;
        if (c->max_sessions && c->leases >= c->max_sessions)
            continue;
        if (!c->tr->conn_usable || c->tr->conn_usable(c->conn))
            return c;
        c->broken = true; /* went away while idle, or is closing */
        pool_conn_retire(c);
        if (c->leases == 0)
            pool_conn_close(c);
    }
    return NULL;
}

/* Leases the connections being opened will be able to give. */
static size_t opening_capacity(const ptarget *t)
{
    size_t n = 0;
    for (const pconn *c = t->conns; c; c = c->next)
        if (c->state == PC_CONNECTING && c->counted)
            n += c->max_sessions ? c->max_sessions : (size_t)1 << 20;
    return n;
}

static void grant(pool *p, ptarget *t, pconn *c)
{
    pool_wait *w = t->wq;
    unqueue(t, w);
    pool_lease *l = calloc(1, sizeof(*l));
    if (!l) {
        set_failure(w, OPSC_ENOMEM, "out of memory");
        append_failed(p, w);
        pool_kick(p, NULL);
        return;
    }
    c->leases++;
    if (c->idle)
        pool_idle_remove(c);
    l->c = c;
    l->target = w->target;
    w->target = NULL;
    w->cb(w->ud, 0, l, pool_conn_info(c), NULL);
    waiter_free(w);
}

/* Room for one more connection in the total: counting those closing as
 * gone, and closing the oldest idle connection of any target if need be. */
static bool room_for_one(pool *p)
{
    if (p->total - p->closing_conns < p->opts.max_total)
        return true;
    if (!p->idle_head)
        return false;
    pool_conn_close(p->idle_head);
    return p->total - p->closing_conns < p->opts.max_total;
}

static void dispatch(pool *p, ptarget *t)
{
    while (t->wq && !p->closing) {
        pconn *c = find_ready(t);
        if (c) {
            grant(p, t, c);
            continue;
        }
        if (t->nwait <= opening_capacity(t))
            break; /* the connections being opened will take them */
        if (t->nconns >= p->opts.max_connections)
            break; /* wait for a session to come back */
        if (!room_for_one(p)) {
            starve(p, t);
            break;
        }
        pool_conn_open(p, t); /* on failure the waiters have been failed */
    }
}

static void on_kick(uv_timer_t *h)
{
    pool *p = h->data;
    run_failed(p);
    ptarget *t = p->kick_head;
    p->kick_head = p->kick_tail = NULL;
    while (t) {
        ptarget *next = t->knext;
        t->kicked = false;
        close_pending(t);
        if (!p->closing)
            dispatch(p, t);
        target_maybe_free(p, t);
        t = next;
    }
}

/* ---- idle connections ------------------------------------------------------------------- */

static void on_idle(uv_timer_t *h);

static void arm_idle(pool *p)
{
    if (!p->idle_head || p->timers_closed)
        return;
    uint64_t now = clock_mono_ms(),
             due = p->idle_head->idle_since + (uint64_t)p->opts.idle_timeout_ms;
    uv_timer_start(&p->idle, on_idle, due > now ? due - now : 0, 0);
}

static void idle_push(pool *p, pconn *c)
{
    c->idle = true;
    c->idle_since = clock_mono_ms();
    c->inext = NULL;
    c->iprev = p->idle_tail;
    if (p->idle_tail)
        p->idle_tail->inext = c;
    else
        p->idle_head = c;
    p->idle_tail = c;
    if (!uv_is_active((uv_handle_t *)&p->idle))
        arm_idle(p);
}

void pool_idle_remove(pconn *c)
{
    pool *p = c->p;
    if (!c->idle)
        return;
    if (c->iprev)
        c->iprev->inext = c->inext;
    else
        p->idle_head = c->inext;
    if (c->inext)
        c->inext->iprev = c->iprev;
    else
        p->idle_tail = c->iprev;
    c->idle = false;
    c->inext = c->iprev = NULL;
}

static void on_idle(uv_timer_t *h)
{
    pool *p = h->data;
    uint64_t now = clock_mono_ms();
    while (p->idle_head && p->idle_head->idle_since + (uint64_t)p->opts.idle_timeout_ms <= now)
        pool_conn_close(p->idle_head);
    arm_idle(p);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

int pool_new(pool **out, struct opsc_core *core, const pool_opts *opts)
{
    pool *p = calloc(1, sizeof(*p));
    if (!p || !(p->buckets = calloc(NBUCKETS, sizeof(*p->buckets)))) {
        free(p);
        return OPSC_ENOMEM;
    }
    p->core = core;
    p->opts = *opts;
    if (p->opts.idle_timeout_ms <= 0)
        p->opts.idle_timeout_ms = 300000;
    if (p->opts.max_connections <= 0)
        p->opts.max_connections = 4;
    if (p->opts.max_total <= 0)
        p->opts.max_total = 1000;
    uv_timer_init(core->loop, &p->kick);
    uv_timer_init(core->loop, &p->idle);
    p->kick.data = p->idle.data = p;
    p->handles = 2;
    *out = p;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    pool *p = h->data;
    if (--p->handles == 0 && p->close_cb)
        p->close_cb(p->close_ud);
}

void pool_maybe_finish(pool *p)
{
    if (!p->closing || p->total > 0 || p->timers_closed)
        return;
    run_failed(p); /* waiters that failed while the last connections closed */
    p->timers_closed = true;
    uv_close((uv_handle_t *)&p->kick, on_timer_closed);
    uv_close((uv_handle_t *)&p->idle, on_timer_closed);
}

/* ---- acquiring ---------------------------------------------------------------------------- */

typedef struct acq_read {
    const char *id;
    json_t *rec, *cred;
} acq_read;

static int acq_txn(store_txn *txn, void *ud)
{
    acq_read *a = ud;
    int rc = store_get(txn, "targets", a->id, &a->rec);
    const char *cid = rc == 0 ? fld_str(a->rec, "credential_id") : NULL;
    if (cid && store_get(txn, "credentials", cid, &a->cred) == OPSC_ENOENT)
        a->cred = NULL;
    return rc == OPSC_ENOENT ? 0 : rc;
}

/* Why the target cannot be used now, or 0. */
static int check_target(pool *p, acq_read *a, char *msg, size_t len)
{
    const char *name = a->rec ? fld_str(a->rec, "name") : NULL;
    if (!a->rec) {
        snprintf(msg, len, "target %s does not exist", a->id);
        return OPSC_ENOENT;
    }
    if (json_is_false(json_object_get(a->rec, "enabled"))) {
        snprintf(msg, len, "target %s is disabled", name);
        return OPSC_ESTATE;
    }
    const char *tr = fld_str(a->rec, "transport");
    if (!plugin_host_find(p->core->plugins, REG_TRANSPORT, tr)) {
        snprintf(msg, len, "target %s uses the %s transport, which is not loaded", name, tr);
        return OPSC_EPLUGIN;
    }
    const char *cid = fld_str(a->rec, "credential_id");
    if (cid && !a->cred) {
        snprintf(msg, len, "credential %s of target %s does not exist", cid, name);
        return OPSC_ENOENT;
    }
    return 0;
}

int pool_acquire(pool *p, const char *target_id, pool_acquire_cb cb, void *ud, pool_wait **out)
{
    if (p->closing)
        return OPSC_ECANCELED;
    if (!cb || !target_id)
        return OPSC_EINVAL;
    pool_wait *w = calloc(1, sizeof(*w));
    if (!w)
        return OPSC_ENOMEM;
    w->p = p;
    w->cb = cb;
    w->ud = ud;
    acq_read a = {target_id, NULL, NULL};
    char msg[300];
    int rc = store_read(p->core->store, acq_txn, &a);
    if (rc < 0)
        snprintf(msg, sizeof(msg), "reading target %s: %s", target_id, opsc_strerror(rc));
    else
        rc = check_target(p, &a, msg, sizeof(msg));
    char *key = rc == 0 ? pool_conn_key(a.rec, a.cred) : NULL;
    ptarget *t = key ? pool_target_get(p, target_id, true) : NULL;
    if (rc == 0 && !t) {
        rc = OPSC_ENOMEM;
        snprintf(msg, sizeof(msg), "out of memory");
    }
    json_decref(a.cred);
    if (rc < 0) {
        free(key);
        json_decref(a.rec);
        set_failure(w, rc, msg);
        append_failed(p, w);
        pool_kick(p, NULL);
    } else {
        if (!t->key || strcmp(t->key, key) != 0)
            pool_target_set_key(p, t, key);
        else
            free(key);
        w->target = a.rec;
        w->t = t;
        w->prev = t->wq_tail;
        if (t->wq_tail)
            t->wq_tail->next = w;
        else
            t->wq = w;
        t->wq_tail = w;
        t->nwait++;
        pool_kick(p, t);
    }
    if (out)
        *out = w;
    return 0;
}

void pool_acquire_cancel(pool_wait *w)
{
    ptarget *t = w->t;
    if (!t)
        return; /* already failed: its callback is on the way */
    unqueue(t, w);
    set_failure(w, OPSC_ECANCELED, "gave up waiting for a connection");
    append_failed(w->p, w);
    pool_kick(w->p, t);
}

/* ---- leases --------------------------------------------------------------------------------- */

const opsc_transport *pool_lease_transport(const pool_lease *l)
{
    return l->c->tr;
}

opsc_conn *pool_lease_conn(const pool_lease *l)
{
    return l->c->conn;
}

json_t *pool_lease_target(const pool_lease *l)
{
    return l->target;
}

void pool_release(pool_lease *l, bool broken)
{
    pconn *c = l->c;
    pool *p = c->p;
    json_decref(l->target);
    free(l);
    c->leases--;
    if (broken && !c->broken) {
        c->broken = true;
        pool_conn_retire(c);
    }
    if (c->state == PC_CLOSED) {
        if (c->leases == 0)
            pool_conn_free(c);
        return;
    }
    if (c->state != PC_READY || c->leases > 0) {
        pool_kick(p, c->t);
        return;
    }
    if (c->broken || c->stale || p->closing || (c->tr->conn_usable && !c->tr->conn_usable(c->conn)))
        pool_conn_close_later(c);
    else
        idle_push(p, c);
    pool_kick(p, c->t);
    pool_kick_starved(p); /* an idle connection can make room for another target */
}

void pool_invalidate(pool *p, const char *target_id)
{
    ptarget *t = pool_target_get(p, target_id, false);
    if (!t)
        return;
    for (pconn *c = t->conns; c; c = c->next) {
        if (c->stale)
            continue;
        c->stale = true;
        pool_conn_retire(c);
        if (c->leases == 0)
            pool_conn_close_later(c);
    }
    free(t->key);
    t->key = NULL;
    pool_kick(p, t);
}

/* ---- closing -------------------------------------------------------------------------------- */

void pool_close(pool *p, void (*cb)(void *ud), void *ud)
{
    p->closing = true;
    p->close_cb = cb;
    p->close_ud = ud;
    for (size_t b = 0; b < NBUCKETS; b++)
        for (ptarget *t = p->buckets[b]; t; t = t->hnext)
            while (t->wq) {
                pool_wait *w = t->wq;
                unqueue(t, w);
                set_failure(w, OPSC_ECANCELED, "the daemon is stopping");
                append_failed(p, w);
            }
    run_failed(p);
    for (size_t b = 0; b < NBUCKETS; b++)
        for (ptarget *t = p->buckets[b]; t; t = t->hnext)
            for (pconn *c = t->conns; c; c = c->next)
                if (c->state == PC_READY)
                    pool_conn_close(c); /* connecting ones close when connected */
    pool_maybe_finish(p);
}

void pool_free(pool *p)
{
    if (!p)
        return;
    for (pool_wait *w = p->failed, *next; w; w = next) {
        next = w->next;
        waiter_free(w);
    }
    for (size_t b = 0; b < NBUCKETS; b++) {
        for (ptarget *t = p->buckets[b], *tn; t; t = tn) {
            tn = t->hnext;
            for (pool_wait *w = t->wq, *next; w; w = next) {
                next = w->next;
                waiter_free(w);
            }
            /* Only after a shutdown deadline: the transports are gone with
             * their plugins; what is left is our own memory. */
            while (t->conns) {
                pconn *c = t->conns;
                t->conns = c->next;
                pool_conn_discard(c);
            }
            free(t->key);
            free(t);
        }
    }
    free(p->buckets);
    free(p);
}

void pool_stats_get(const pool *p, pool_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->targets = p->ntargets;
    for (size_t b = 0; b < NBUCKETS; b++)
        for (const ptarget *t = p->buckets[b]; t; t = t->hnext) {
            st->waiting += t->nwait;
            for (const pconn *c = t->conns; c; c = c->next) {
                st->connections++;
                st->connecting += c->state == PC_CONNECTING;
                st->idle += c->idle;
                st->leases += c->leases;
            }
        }
}

pool_transport_stats *pool_transport_counters(pool *p, const char *transport)
{
    for (size_t i = 0; i < p->ntstats; i++)
        if (strcmp(p->tstats[i].name, transport) == 0)
            return &p->tstats[i];
    if (p->ntstats == POOL_MAX_TRANSPORTS)
        return NULL;
    pool_transport_stats *ts = &p->tstats[p->ntstats++];
    snprintf(ts->name, sizeof(ts->name), "%s", transport);
    return ts;
}

size_t pool_transport_stats_get(const pool *p, pool_transport_stats *out, size_t max)
{
    size_t n = p->ntstats < max ? p->ntstats : max;
    memcpy(out, p->tstats, n * sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i].open = out[i].idle = 0;
    for (size_t b = 0; b < NBUCKETS; b++)
        for (const ptarget *t = p->buckets[b]; t; t = t->hnext)
            for (const pconn *c = t->conns; c; c = c->next)
                for (size_t i = 0; c->tr && i < n; i++)
                    if (strcmp(out[i].name, c->tr->name) == 0) {
                        out[i].open++;
                        out[i].idle += c->idle;
                    }
    return n;
}
