/* oss_conn.c - connect and close: the target's hop and its jump hosts, shared bastion masters,
 * conn info for the host. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "oss_cert.h"
#include "oss_internal.h"

typedef struct build {
    oss_plugin *p;
    const opsc_target *t;
    const opsc_credential *cred;
    oss_options *o;
    char err[700];
    int code;
} build;

static int bad(build *b, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(build *b, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err, sizeof(b->err), fmt, ap);
    va_end(ap);
    b->code = code;
    return code;
}

/* ---- hops ------------------------------------------------------------------------------------ */

static char **copy_extra(oss_plugin *p, const oss_options *o)
{
    if (o->nextra == 0)
        return NULL;
    char **v = p->api->calloc(o->nextra + 1, sizeof(*v));
    for (size_t i = 0; v && i < o->nextra; i++)
        if (!(v[i] = oss_strdup(p, o->extra[i]))) {
            oss_argv_free(p, v);
            return NULL;
        }
    return v;
}

static int take_credential(build *b, oss_hop *h, const opsc_credential *c, const char *user)
{
    oss_plugin *p = b->p;
    const char *u = user && *user ? user : c ? c->username : NULL;
    if (!oss_user_ok(u))
        return bad(b, OPSC_EINVAL, "%s: the user name '%.64s' cannot be given to ssh", h->name,
                   u ? u : "");
    h->user = oss_strdup(p, u);
    if (c) {
        h->key = oss_strdup(p, c->private_key);
        h->passphrase =
            c->private_key && c->passphrase && *c->passphrase ? oss_strdup(p, c->passphrase) : NULL;
        h->password = c->private_key ? NULL : oss_strdup(p, c->password);
        if (c->private_key && c->certificate && *c->certificate &&
            c->size >= offsetof(opsc_credential, certificate) + sizeof(c->certificate))
            h->cert = oss_strdup(p, c->certificate);
    }
    if (!h->user || (c && c->private_key && !h->key) ||
        (c && c->password && !c->private_key && !h->password))
        return bad(b, OPSC_ENOMEM, "out of memory");
    if (!h->key && !h->password && !h->gssapi)
        return bad(b, OPSC_EINVAL, "%s: the credential holds neither a key nor a password",
                   h->name);
    return 0;
}

static int check_certificate(build *b, oss_hop *h)
{
    if (b->o->certificate == 1 && !h->cert)
        return bad(b, OPSC_EAUTH,
                   "transport_options.certificate is true but the credential of %s holds no "
                   "OpenSSH certificate",
                   h->name);
    if (!h->cert || b->o->certificate == 0)
        return 0;
    oss_cert cert;
    char why[300];
    if (oss_cert_parse(h->cert, &cert, why, sizeof(why)) < 0)
        return bad(b, OPSC_EAUTH, "%s: %s", h->name, why);
    uint64_t now = (uint64_t)(b->p->api->now_ms() / 1000);
    if (!oss_cert_valid_at(&cert, now, why, sizeof(why)))
        return bad(b, OPSC_EAUTH, "authentication as '%s' on %s cannot work: %s; renew it", h->user,
                   h->name, why);
    return 0;
}

static int target_hop(build *b, oss_hop *h)
{
    oss_plugin *p = b->p;
    const opsc_target *t = b->t;
    h->name = oss_strdup(p, t->name ? t->name : t->address);
    h->target_id = oss_strdup(p, t->id);
    h->host = oss_strdup(p, t->address);
    h->port = t->port ? t->port : 22;
    h->policy = oss_strdup(p, t->host_key_policy ? t->host_key_policy : "strict");
    h->pinned = oss_strdup(p, t->known_host_keys ? t->known_host_keys : "");
    h->timeout_ms = t->connect_timeout_ms;
    h->gssapi = b->o->gssapi;
    h->certificate = b->o->certificate;
    h->extra = copy_extra(p, b->o);
    if (!h->name || !h->host || !h->policy || !h->pinned || (b->o->nextra && !h->extra))
        return bad(b, OPSC_ENOMEM, "out of memory");
    int rc = take_credential(b, h, b->cred, NULL);
    return rc ? rc : check_certificate(b, h);
}

static const opsc_jump *resolved(const opsc_target *t, size_t index)
{
    if (t->size < offsetof(opsc_target, njumps) + sizeof(t->njumps))
        return NULL;
    for (size_t i = 0; i < t->njumps; i++)
        if (t->jumps[i].index == index)
            return &t->jumps[i];
    return NULL;
}

static int jump_hop(build *b, size_t i, oss_hop *h)
{
    oss_plugin *p = b->p;
    const oss_jump_spec *s = &b->o->jumps[i];
    const opsc_jump *j = resolved(b->t, i);
    char name[320];
    if (s->target_id[0]) {
        if (!j || !j->target)
            return bad(b, OPSC_ENOENT, "jump host %zu (target %s) was not resolved by the host",
                       i + 1, s->target_id);
        const opsc_target *jt = j->target;
        snprintf(name, sizeof(name), "jump host %s", jt->name ? jt->name : jt->address);
        h->name = oss_strdup(p, name);
        h->target_id = oss_strdup(p, jt->id);
        h->host = oss_strdup(p, jt->address);
        h->port = jt->port ? jt->port : 22;
        h->policy = oss_strdup(p, jt->host_key_policy ? jt->host_key_policy : "strict");
        h->pinned = oss_strdup(p, jt->known_host_keys ? jt->known_host_keys : "");
        if (!h->name || !h->host || !h->policy || !h->pinned)
            return bad(b, OPSC_ENOMEM, "out of memory");
        if (!j->credential)
            return bad(b, OPSC_EINVAL, "%s has no credential", name);
        return take_credential(b, h, j->credential, NULL);
    }
    snprintf(name, sizeof(name), "jump host %s:%d", s->host, s->port ? s->port : 22);
    h->name = oss_strdup(p, name);
    h->host = oss_strdup(p, s->host);
    h->port = s->port ? s->port : 22;
    h->policy = oss_strdup(p, s->policy[0] ? s->policy : "strict");
    h->pinned = oss_strdup(p, s->pinned);
    if (!h->name || !h->host || !h->policy || !h->pinned)
        return bad(b, OPSC_ENOMEM, "out of memory");
    if (s->credential && (!j || !j->credential))
        return bad(b, OPSC_ENOENT, "the credential of %s was not resolved by the host", name);
    return take_credential(b, h, s->credential ? j->credential : b->cred, s->user);
}

/* What makes two jump host masters interchangeable: the way there, the endpoint, the trust
 * and a digest of the secrets (never the secrets). */
static void share_key(const oss_hop *h, const oss_master *via, char *out, size_t cap)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const char *parts[] = {h->key, h->passphrase, h->password, h->cert};
    if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        for (size_t i = 0; i < 4; i++)
            EVP_DigestUpdate(ctx, parts[i] ? parts[i] : "-", parts[i] ? strlen(parts[i]) + 1 : 1);
        EVP_DigestFinal_ex(ctx, md, &mdlen);
    }
    EVP_MD_CTX_free(ctx);
    char hex[65];
    tp_hex(md, mdlen, hex);
    snprintf(out, cap, "%u|%s|%d|%s|%s|%s|%s", via ? via->id : 0, h->host, h->port, h->user,
             h->policy, h->pinned, hex);
}

/* The chain of jump host masters, shared with other targets behind the same ones. */
static int jump_chain(build *b, oss_master **last)
{
    oss_master *via = NULL;
    for (size_t i = 0; i < b->o->njumps; i++) {
        oss_hop h = {0};
        int rc = jump_hop(b, i, &h);
        char share[2048];
        if (rc == 0)
            share_key(&h, via, share, sizeof(share));
        oss_master *m = rc == 0 ? oss_master_find(b->p, share) : NULL;
        if (m) {
            oss_master_ref(m);
            oss_hop_free(b->p, &h);
        } else if (rc == 0) {
            rc = oss_master_new(b->p, &h, via, share, &m);
            oss_hop_free(b->p, &h);
        } else {
            oss_hop_free(b->p, &h);
        }
        if (via)
            oss_master_unref(via, NULL, NULL); /* m holds it now */
        if (rc < 0)
            return rc;
        via = m;
    }
    *last = via;
    return 0;
}

/* ---- connecting ------------------------------------------------------------------------------ */

static void warning_for(const oss_master *m, char *out, size_t cap)
{
    for (const oss_master *x = m; x; x = x->via) {
        if (strcmp(x->hop.policy, "off") != 0)
            continue;
        size_t used = strlen(out);
        snprintf(out + used, cap - used,
                 "%shost key checking is off for %s: accepted %s %s without verification",
                 used ? "; " : "", x->hop.name, x->log.key_type, x->log.key_fp);
    }
}

static void hop_keys(opsc_conn *c)
{
    c->nhops = 0;
    for (const oss_master *x = c->m->via; x && c->nhops < OSS_MAX_JUMPS; x = x->via) {
        if (!x->hop.target_id || !x->log.key_fp[0])
            continue;
        size_t i = c->nhops++;
        snprintf(c->hop_ids[i], sizeof(c->hop_ids[i]), "%s", x->hop.target_id);
        snprintf(c->hop_types[i], sizeof(c->hop_types[i]), "%s", x->log.key_type);
        snprintf(c->hop_fps[i], sizeof(c->hop_fps[i]), "%s", x->log.key_fp);
        c->hops[i] = (opsc_hop_key){sizeof(opsc_hop_key), c->hop_ids[i], c->hop_types[i],
                                    c->hop_fps[i], x->learned};
    }
}

static void report(opsc_conn *c)
{
    opsc_connect_cb cb = c->connect_cb;
    void *ud = c->connect_ud;
    c->connect_cb = NULL;
    oss_master *m = c->m;
    if (!m || !oss_master_up(m)) {
        char err[sizeof(c->fail)];
        int code = c->fail_code;
        snprintf(err, sizeof(err), "%s", c->fail);
        if (m) {
            code = m->code ? m->code : OPSC_ECONNRESET;
            snprintf(err, sizeof(err), "%s", m->err[0] ? m->err : "the connection failed");
        }
        oss_close(c, NULL, NULL); /* the host never saw this connection */
        cb(ud, code, NULL, NULL, err);
        return;
    }
    char warning[600] = "", algs[600];
    warning_for(m, warning, sizeof(warning));
    oss_sshlog_algorithms(&m->log, algs, sizeof(algs));
    hop_keys(c);
    opsc_conn_info info = {sizeof(info)};
    info.host_key_type = m->log.key_type[0] ? m->log.key_type : NULL;
    info.host_key_sha256 = m->log.key_fp[0] ? m->log.key_fp : NULL;
    info.host_key_learned = m->learned;
    info.server_banner = m->log.banner[0] ? m->log.banner : NULL;
    info.warning = warning[0] ? warning : NULL;
    info.algorithms = algs;
    info.hop_keys = c->nhops ? c->hops : NULL;
    info.nhop_keys = c->nhops;
    cb(ud, 0, c, &info, NULL);
}

static void on_master(void *ud, oss_master *m)
{
    (void)m;
    opsc_conn *c = ud;
    if (c->connect_cb)
        report(c);
}

static void on_defer(uv_timer_t *t)
{
    opsc_conn *c = t->data;
    if (c->connect_cb)
        report(c);
}

static void defer_closed(uv_handle_t *h)
{
    opsc_conn *c = h->data;
    oss_plugin *p = c->p;
    opsc_close_cb cb = c->close_cb;
    void *ud = c->close_ud;
    p->api->free(c->name);
    p->api->free(c);
    if (cb)
        cb(ud);
}

static bool target_ok(const opsc_target *t, const opsc_credential *cred)
{
    if (!t || !cred || !t->address || !*t->address || t->port < 0 || t->port > 65535)
        return false;
    const char *pol = t->host_key_policy;
    return !pol || !strcmp(pol, "strict") || !strcmp(pol, "tofu") || !strcmp(pol, "off");
}

static int start(opsc_conn *c, const opsc_target *t, build *b)
{
    char err[300];
    b->o = c->p->api->calloc(1, sizeof(*b->o));
    if (!b->o)
        return bad(b, OPSC_ENOMEM, "out of memory");
    if (oss_options_parse(t->options_json, b->o, err, sizeof(err)) < 0)
        return bad(b, OPSC_EINVAL, "%s", err);
    oss_hop h = {0};
    oss_master *via = NULL;
    int rc = target_hop(b, &h);
    if (rc == 0)
        rc = jump_chain(b, &via);
    if (rc == 0)
        rc = oss_master_new(c->p, &h, via, NULL, &c->m);
    oss_hop_free(c->p, &h);
    if (via)
        oss_master_unref(via, NULL, NULL); /* the target's master holds it */
    return rc;
}

int oss_connect(void *state, const opsc_target *t, const opsc_credential *cred, opsc_connect_cb cb,
                void *ud)
{
    oss_plugin *p = state;
    if (!cb || !target_ok(t, cred))
        return OPSC_EINVAL;
    opsc_conn *c = p->api->calloc(1, sizeof(*c));
    if (!c)
        return OPSC_ENOMEM;
    c->p = p;
    c->connect_cb = cb;
    c->connect_ud = ud;
    c->name = oss_strdup(p, t->name ? t->name : t->address);
    uv_timer_init(p->loop, &c->defer);
    c->defer.data = c;
    build b = {p, t, cred, NULL, "", 0};
    int rc = start(c, t, &b);
    p->api->free(b.o);
    if (rc < 0) {
        /* Refused before anything ran (bad options, an expired certificate...): the host gets
         * the reason through the callback, on the next loop turn. */
        c->fail_code = rc;
        snprintf(c->fail, sizeof(c->fail), "%s", b.err[0] ? b.err : opsc_strerror(rc));
        uv_timer_start(&c->defer, on_defer, 0, 0);
        return 0;
    }
    if (oss_master_wait(c->m, on_master, c) != 0) /* settled already */
        uv_timer_start(&c->defer, on_defer, 0, 0);
    return 0;
}

/* ---- closing -------------------------------------------------------------------------------- */

static void master_released(void *ud)
{
    opsc_conn *c = ud;
    uv_close((uv_handle_t *)&c->defer, defer_closed);
}

static void close_finish(opsc_conn *c)
{
    if (c->execs || c->finishing)
        return;
    c->finishing = true;
    oss_master *m = c->m;
    c->m = NULL;
    if (m)
        oss_master_unref(m, master_released, c); /* may call back at once */
    else
        master_released(c);
}

void oss_conn_exec_gone(opsc_conn *c)
{
    if (c->closing)
        close_finish(c);
}

void oss_close(opsc_conn *c, opsc_close_cb cb, void *ud)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_cb = cb;
    c->close_ud = ud;
    uv_timer_stop(&c->defer);
    oss_exec_close_all(c);
    close_finish(c);
}

bool oss_conn_usable(opsc_conn *c)
{
    return c && !c->closing && c->m && oss_master_up(c->m);
}
