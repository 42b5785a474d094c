/* pool_conn.c - opening a pooled connection (target, credential, known host keys), recording a
 * key learned on first use, and closing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "audit.h"
#include "core.h"
#include "events.h"
#include "fields.h"
#include "fleet.h"
#include "log.h"
#include "plugin_host.h"
#include "pool_internal.h"
#include "store.h"
#include "vault.h"

char *pool_conn_key(const json_t *target, const json_t *cred)
{
    static const char *const keys[] = {"address",           "port",          "transport",
                                       "transport_options", "credential_id", "host_key_policy",
                                       "connect_timeout_s", "os_family"};
    json_t *k = json_object();
    for (size_t i = 0; k && i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(target, keys[i]);
        json_object_set_new(k, keys[i], v ? json_deep_copy(v) : json_null());
    }
    json_t *cv = json_object_get(cred, "version");
    if (k)
        json_object_set_new(k, "credential_version", cv ? json_deep_copy(cv) : json_null());
    char *s = k ? json_dumps(k, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(k);
    return s;
}

/* ---- freeing ---------------------------------------------------------------------------- */

static void drop_connect_state(pconn *c)
{
    vault_credential_close(&c->cred); /* wiped: the transport has what it needed */
    pool_jumps_free(&c->jumps);
    json_decref(c->target);
    c->target = NULL;
    free(c->known_hosts);
    free(c->options);
    c->known_hosts = c->options = NULL;
}

void pool_conn_discard(pconn *c)
{
    drop_connect_state(c);
    pool_idle_remove(c);
    free(c->key);
    free(c->host_key_type);
    free(c->host_key_sha256);
    free(c->banner);
    free(c->warning);
    free(c->algorithms);
    free(c);
}

void pool_conn_free(pconn *c)
{
    pool *p = c->p;
    ptarget *t = c->t;
    pool_conn_retire(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        t->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    p->total--;
    pool_conn_discard(c);
    pool_kick(p, t);
    pool_kick_starved(p);
    pool_maybe_finish(p);
}

/* ---- closing ------------------------------------------------------------------------------- */

static void on_closed(void *ud)
{
    pconn *c = ud;
    c->state = PC_CLOSED;
    c->conn = NULL;
    c->p->closing_conns--;
    if (c->leases == 0)
        pool_conn_free(c);
}

void pool_conn_close(pconn *c)
{
    if (c->state != PC_READY)
        return; /* a connecting one closes when its connect ends */
    c->state = PC_CLOSING;
    pool_conn_retire(c);
    pool_idle_remove(c);
    c->p->closing_conns++;
    c->tr->close(c->conn, on_closed, c);
    pool_kick_starved(c->p);
}

/* ---- conn info ----------------------------------------------------------------------------- */

static char *dup_opt(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void keep_info(pconn *c, const opsc_conn_info *info)
{
    if (!info)
        return;
    c->host_key_type = dup_opt(info->host_key_type);
    c->host_key_sha256 = dup_opt(info->host_key_sha256);
    c->banner = dup_opt(info->server_banner);
    c->warning = dup_opt(info->warning);
    bool has_algs = info->size >= offsetof(opsc_conn_info, algorithms) + sizeof(info->algorithms);
    c->algorithms = has_algs ? dup_opt(info->algorithms) : NULL;
    c->info = (opsc_conn_info){sizeof(opsc_conn_info), c->host_key_type, c->host_key_sha256,
                               info->host_key_learned, c->banner,        c->warning};
    c->info.algorithms = c->algorithms;
    c->warn_info = (opsc_conn_info){sizeof(opsc_conn_info), NULL, NULL, false, NULL, c->warning};
    c->info_fresh = true;
}

const opsc_conn_info *pool_conn_info(pconn *c)
{
    if (c->info_fresh) {
        c->info_fresh = false;
        return &c->info;
    }
    return c->warning ? &c->warn_info : NULL;
}

/* ---- trust on first use ------------------------------------------------------------------- */

typedef struct learn {
    const char *id, *type, *fp;
    bool added;
    json_t *rec;
    fleet_err e;
} learn;

static int learn_txn(store_txn *txn, void *ud)
{
    learn *l = ud;
    json_decref(l->rec);
    l->rec = NULL;
    return target_host_key_add(txn, l->id, l->type, l->fp, "tofu", &l->added, &l->rec, &l->e);
}

/* Record the key the transport accepted under TOFU before any lease uses
 * the connection: audit-logged and published. A key of the same type that
 * another connection recorded meanwhile makes this one an error. */
static int record_learned(pool *p, const char *id, const char *type, const char *fp, char *err,
                          size_t errlen)
{
    struct opsc_core *core = p->core;
    learn l = {id, type, fp, false, NULL, {0}};
    int rc = store_write(core->store, learn_txn, &l);
    const char *name = rc == 0 ? fld_str(l.rec, "name") : id;
    if (rc < 0) {
        snprintf(err, errlen, "%s", l.e.msg[0] ? l.e.msg : opsc_strerror(rc));
        json_decref(l.rec);
        return rc == OPSC_ESCHEMA ? OPSC_EHOSTKEY : rc;
    }
    if (l.added) {
        char detail[160];
        snprintf(detail, sizeof(detail), "%s %s (trust on first use)", l.type, l.fp);
        log_info("pool", "%s: learned host key %s", name, detail);
        audit_event ev = {.actor = "system",
                          .client = "",
                          .action = "target.host_key_learned",
                          .object = id,
                          .outcome = "success",
                          .detail = detail};
        if (core->audit)
            audit_record(core->audit, &ev);
        json_t *data = json_pack("{s:s, s:s?, s:s, s:s}", "id", id, "name", name, "type", l.type,
                                 "fingerprint", l.fp);
        if (core->events && data)
            events_publish(core->events, "target.host_key_learned", id, data);
        json_decref(data);
    }
    json_decref(l.rec);
    return 0;
}

/* Keys the connect learned on jump hosts that are targets go to those targets. */
static int record_hop_keys(pool *p, const opsc_conn_info *info, char *err, size_t errlen)
{
    if (info->size < offsetof(opsc_conn_info, nhop_keys) + sizeof(info->nhop_keys))
        return 0;
    for (size_t i = 0; i < info->nhop_keys; i++) {
        const opsc_hop_key *k = &info->hop_keys[i];
        if (!k->learned || !k->target_id || !k->host_key_type || !k->host_key_sha256)
            continue;
        int rc = record_learned(p, k->target_id, k->host_key_type, k->host_key_sha256, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- connecting ---------------------------------------------------------------------------- */

static bool others_live(const pconn *c)
{
    for (const pconn *o = c->t->conns; o; o = o->next)
        if (o != c && o->counted)
            return true;
    return false;
}

/* A host key that is not the recorded one is a security event, whatever the transport: it
 * goes to the audit log and the event bus, fingerprints included. */
static void hostkey_refused(pconn *c, const char *msg)
{
    struct opsc_core *core = c->p->core;
    audit_event ev = {.actor = "system",
                      .client = "",
                      .action = "target.host_key_mismatch",
                      .object = c->t->id,
                      .outcome = "denied",
                      .detail = msg};
    if (core->audit)
        audit_record(core->audit, &ev);
    json_t *data = json_pack("{s:s, s:s}", "id", c->t->id, "error", msg);
    if (core->events && data)
        events_publish(core->events, "target.host_key_mismatch", c->t->id, data);
    json_decref(data);
}

/* A connect that failed: its waiters fail too unless another connection
 * of the target may still serve them. */
/* "target.unreachable" on the bus, for runs and tests alike (notifications). */
static void publish_unreachable(pconn *c, int code, const char *msg)
{
    struct opsc_core *core = c->p->core;
    json_t *d = json_pack("{s:s, s:s, s:s}", "target_id", c->t->id, "error", msg, "code",
                          opsc_err_name(code));
    if (d && core && core->events)
        events_publish(core->events, "target.unreachable", c->t->id, d);
    json_decref(d);
}

static void count_connect(pconn *c, int code)
{
    pool_transport_stats *ts = pool_transport_counters(c->p, c->tr->name);
    if (!ts)
        return;
    if (code == 0) {
        ts->opened++;
        return;
    }
    const char *reason = opsc_err_name(code);
    size_t i = 0;
    while (i < ts->nfailed && strcmp(ts->failed[i].reason, reason) != 0)
        i++;
    if (i == ts->nfailed && i < POOL_MAX_REASONS)
        ts->failed[ts->nfailed++].reason = reason;
    if (i < ts->nfailed)
        ts->failed[i].n++;
}

static void connect_failed(pconn *c, int code, const char *msg)
{
    log_info("pool", "connecting to %s failed: %s", c->t->id, msg);
    count_connect(c, code);
    if (code == OPSC_EHOSTKEY)
        hostkey_refused(c, msg);
    publish_unreachable(c, code, msg);
    c->state = PC_CLOSED;
    pool_conn_retire(c);
    if (!others_live(c))
        pool_fail_waiters(c->p, c->t, code, msg);
    pool_conn_free(c);
}

static void on_connected(void *ud, int status, opsc_conn *conn, const opsc_conn_info *info,
                         const char *error)
{
    pconn *c = ud;
    pool *p = c->p;
    vault_credential_close(&c->cred);
    if (status < 0) {
        char msg[600];
        snprintf(msg, sizeof(msg), "%s", error && *error ? error : opsc_strerror(status));
        drop_connect_state(c);
        connect_failed(c, status, msg);
        return;
    }
    c->conn = conn;
    c->state = PC_READY;
    count_connect(c, 0);
    keep_info(c, info);
    char err[600];
    int rc = 0;
    if (info && info->host_key_learned && c->host_key_type && c->host_key_sha256)
        rc = record_learned(p, c->t->id, c->host_key_type, c->host_key_sha256, err, sizeof(err));
    if (rc == 0 && info)
        rc = record_hop_keys(p, info, err, sizeof(err));
    if (c->warning)
        log_warn("pool", "%s: %s", fld_str(c->target, "name"), c->warning);
    drop_connect_state(c);
    if (rc < 0) {
        c->broken = true;
        pool_conn_retire(c);
        if (!others_live(c))
            pool_fail_waiters(p, c->t, rc, err);
    }
    if (c->broken || c->stale || p->closing)
        pool_conn_close_later(c);
    pool_kick(p, c->t);
}

typedef struct open_read {
    vault *v;
    const char *id;
    json_t *rec, *cred_rec;
    opsc_credential cred;
    pool_jumps jumps;
    char err[300];
} open_read;

/* The target as it is now, and its credential decrypted, in one snapshot. */
static int open_txn(store_txn *txn, void *ud)
{
    open_read *o = ud;
    int rc = store_get(txn, "targets", o->id, &o->rec);
    if (rc == OPSC_ENOENT)
        snprintf(o->err, sizeof(o->err), "target %s does not exist", o->id);
    const char *cid = rc == 0 ? fld_str(o->rec, "credential_id") : NULL;
    if (cid)
        rc = store_get(txn, "credentials", cid, &o->cred_rec);
    if (cid && rc == 0)
        rc = vault_credential_open(o->v, txn, cid, &o->cred, o->err, sizeof(o->err));
    else if (cid && rc == OPSC_ENOENT)
        snprintf(o->err, sizeof(o->err), "credential %s of target %s does not exist", cid,
                 fld_str(o->rec, "name"));
    if (rc == 0)
        rc = pool_jumps_read(txn, o->v, o->rec, &o->jumps, o->err, sizeof(o->err));
    return rc;
}

static pconn *conn_new(pool *p, ptarget *t, const plugin_reg *reg, open_read *o)
{
    pconn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->p = p;
    c->t = t;
    c->tr = reg->desc;
    c->tr_state = reg->state;
    c->max_sessions = c->tr->max_sessions;
    c->state = PC_CONNECTING;
    c->key = pool_conn_key(o->rec, o->cred_rec);
    c->target = json_incref(o->rec);
    c->known_hosts = target_known_hosts(o->rec);
    c->options = json_dumps(json_object_get(o->rec, "transport_options"), JSON_COMPACT);
    c->cred = o->cred; /* moved: wiped by vault_credential_close after the connect */
    memset(&o->cred, 0, sizeof(o->cred));
    c->jumps = o->jumps; /* moved too; the pointers inside point at c->jumps' own members */
    memset(&o->jumps, 0, sizeof(o->jumps));
    for (size_t i = 0; i < c->jumps.n; i++) {
        if (c->jumps.jumps[i].target)
            c->jumps.jumps[i].target = &c->jumps.targets[i];
        if (c->jumps.jumps[i].credential)
            c->jumps.jumps[i].credential = &c->jumps.creds[i];
    }
    if (!c->key || !c->known_hosts || !c->options) {
        pool_conn_discard(c);
        return NULL;
    }
    c->cred.size = sizeof(c->cred);
    c->counted = true;
    t->nconns++;
    c->next = t->conns;
    if (t->conns)
        t->conns->prev = c;
    t->conns = c;
    p->total++;
    return c;
}

static int start_connect(pconn *c)
{
    const json_t *r = c->target;
    json_int_t timeout_s = json_integer_value(json_object_get(r, "connect_timeout_s"));
    opsc_target ot = {
        .size = sizeof(ot),
        .id = c->t->id,
        .name = fld_str(r, "name"),
        .address = fld_str(r, "address"),
        .port = (int)json_integer_value(json_object_get(r, "port")),
        .os_family = fld_str(r, "os_family"),
        .host_key_policy = fld_str(r, "host_key_policy"),
        .known_host_keys = c->known_hosts,
        .connect_timeout_ms = (uint32_t)(timeout_s > 0 ? timeout_s * 1000 : 0),
        .options_json = c->options,
        .jumps = c->jumps.n ? c->jumps.jumps : NULL,
        .njumps = c->jumps.n,
    };
    return c->tr->connect(c->tr_state, &ot, &c->cred, on_connected, c);
}

static int open_fail(pool *p, ptarget *t, int rc, const char *msg)
{
    pool_fail_waiters(p, t, rc, msg && *msg ? msg : opsc_strerror(rc));
    return rc;
}

int pool_conn_open(pool *p, ptarget *t)
{
    struct opsc_core *core = p->core;
    open_read o = {core->vault, t->id, NULL, NULL, {0}, {0}, ""};
    int rc = store_read(core->store, open_txn, &o);
    const plugin_reg *reg = NULL;
    if (rc == 0 && json_is_false(json_object_get(o.rec, "enabled"))) {
        snprintf(o.err, sizeof(o.err), "target %s is disabled", fld_str(o.rec, "name"));
        rc = OPSC_ESTATE;
    }
    if (rc == 0 &&
        !(reg = plugin_host_find(core->plugins, REG_TRANSPORT, fld_str(o.rec, "transport")))) {
        snprintf(o.err, sizeof(o.err), "the %s transport is not loaded",
                 fld_str(o.rec, "transport"));
        rc = OPSC_EPLUGIN;
    }
    pconn *c = rc == 0 ? conn_new(p, t, reg, &o) : NULL;
    if (rc == 0 && !c)
        rc = OPSC_ENOMEM;
    vault_credential_close(&o.cred);
    pool_jumps_free(&o.jumps);
    json_decref(o.rec);
    json_decref(o.cred_rec);
    if (rc < 0)
        return open_fail(p, t, rc, o.err);
    if (!t->key || strcmp(t->key, c->key) != 0) {
        char *key = strdup(c->key);
        if (key)
            pool_target_set_key(p, t, key);
    }
    rc = start_connect(c);
    if (rc < 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "cannot connect to %s over %s: %s", fld_str(c->target, "name"),
                 c->tr->name, opsc_strerror(rc));
        drop_connect_state(c);
        c->state = PC_CLOSED;
        pool_conn_free(c);
        return open_fail(p, t, rc, msg);
    }
    return 0;
}
