/* oss_master.c - one ssh master: ssh -M -N on a control socket, authenticated from an agent or
 * an askpass socket, its -v output read for facts and failures, closed with the pooled
 * connection. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oss_internal.h"

static void maybe_free(oss_master *m);

void oss_hop_free(oss_plugin *p, oss_hop *h)
{
    oss_wipe_free(p, h->key);
    oss_wipe_free(p, h->passphrase);
    oss_wipe_free(p, h->password);
    p->api->free(h->cert);
    p->api->free(h->name);
    p->api->free(h->target_id);
    p->api->free(h->host);
    p->api->free(h->user);
    p->api->free(h->policy);
    p->api->free(h->pinned);
    oss_argv_free(p, h->extra);
    memset(h, 0, sizeof(*h));
}

int oss_master_ctl(oss_master *m, char *buf, size_t len)
{
    char name[32];
    snprintf(name, sizeof(name), "c%u.ctl", m->id);
    return oss_sockpath(m->p, name, buf, len);
}

static void unlink_files(oss_master *m)
{
    static const char *const suffixes[] = {".ctl", ".ask", "-cert.pub"};
    char name[64];
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(name, sizeof(name), "c%u%s", m->id, suffixes[i]);
        unlinkat(m->p->rundir_fd, name, 0);
    }
}

/* A certificate is public: it may sit in a file (0600, in our 0700 dir) for CertificateFile. */
static int write_cert(oss_master *m)
{
    char name[64];
    snprintf(name, sizeof(name), "c%u-cert.pub", m->id);
    int fd = openat(m->p->rundir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return OPSC_EIO;
    size_t n = strlen(m->hop.cert);
    bool ok = write(fd, m->hop.cert, n) == (ssize_t)n && write(fd, "\n", 1) == 1;
    close(fd);
    return ok ? 0 : OPSC_EIO;
}

static void on_handle_closed(uv_handle_t *h)
{
    oss_master *m = h->data;
    m->handles--;
    maybe_free(m);
}

/* ---- settling ---------------------------------------------------------------------------------
 */

static void notify(oss_master *m)
{
    oss_waiter *w = m->waiters;
    m->waiters = NULL;
    while (w) {
        oss_waiter *next = w->next;
        oss_ready_cb cb = w->cb;
        void *ud = w->ud;
        m->p->api->free(w);
        cb(ud, m);
        w = next;
    }
}

/* After the connect, up or not: the agent and the askpass socket are done with. */
static void connect_over(oss_master *m)
{
    uv_timer_stop(&m->timer);
    if (m->agent) {
        oss_waiters_drop(m->p, &m->agent->waiters, m);
        oss_agent_unref(m->agent);
    }
    m->agent = NULL;
    if (m->via)
        oss_waiters_drop(m->p, &m->via->waiters, m);
    oss_askpass_close(m->ask);
    m->ask = NULL;
    oss_wipe_free(m->p, m->hop.key);
    oss_wipe_free(m->p, m->hop.passphrase);
    oss_wipe_free(m->p, m->hop.password);
    m->hop.key = m->hop.passphrase = m->hop.password = NULL;
}

static void fail(oss_master *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(oss_master *m, int code, const char *fmt, ...)
{
    if (m->st == MS_FAILED || m->st == MS_CLOSING)
        return;
    va_list ap;
    va_start(ap, fmt);
    char msg[sizeof(m->err)];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    memcpy(m->err, msg, sizeof(msg));
    m->code = code;
    bool was_up = m->st == MS_READY;
    m->st = MS_FAILED;
    connect_over(m);
    oss_child_kill(&m->ssh, SIGTERM);
    if (!was_up)
        notify(m);
}

static void recorded_list(const char *pinned, char *out, size_t cap)
{
    size_t j = 0;
    out[0] = '\0';
    for (const char *l = pinned ? pinned : ""; *l && j + 4 < cap;) {
        size_t n = strcspn(l, "\n");
        j += (size_t)snprintf(out + j, cap - j, "%s%.*s", j ? ", " : "", (int)n, l);
        l += n + (l[n] == '\n');
    }
}

static void hostkey_failure(oss_master *m)
{
    const oss_hop *h = &m->hop;
    const oss_sshlog *l = &m->log;
    if (h->pinned && h->pinned[0] && strcmp(h->policy, "off") != 0) {
        char rec[OSS_MAX_PINNED * 80];
        recorded_list(h->pinned, rec, sizeof(rec));
        fail(m, OPSC_EHOSTKEY,
             "host key of %s (%s:%d) has CHANGED: recorded %s, server offered %s %s. Someone may "
             "be intercepting the connection; if the host was reinstalled, replace the recorded "
             "key",
             h->name, h->host, h->port, rec, l->key_type, l->key_fp);
        return;
    }
    fail(m, OPSC_EHOSTKEY,
         "unknown host key for %s (%s:%d): server offered %s %s and host_key_policy is strict; "
         "record this key for the target after checking it, or use tofu",
         h->name, h->host, h->port, l->key_type, l->key_fp);
}

static void auth_failure(oss_master *m)
{
    const oss_hop *h = &m->hop;
    const oss_sshlog *l = &m->log;
    const char *extra = "";
    if (h->cert && h->certificate != 0 && !l->cert_offered)
        extra = "; the certificate was not offered";
    else if (h->cert && h->certificate != 0)
        extra = "; the server refused the certificate (principals, CA or validity?)";
    fail(m, OPSC_EAUTH, "authentication as '%s' on %s failed (tried: %s; the server offers: %s)%s",
         h->user, h->name, l->tried[0] ? l->tried : "nothing", l->methods[0] ? l->methods : "none",
         extra);
}

/* ssh is gone before it was up: say why, in its own words where it gave them. */
static void connect_failed(oss_master *m)
{
    const oss_sshlog *l = &m->log;
    const oss_hop *h = &m->hop;
    int code = l->code ? l->code : OPSC_EPROTO;
    if (code == OPSC_EHOSTKEY) {
        hostkey_failure(m);
        return;
    }
    if (code == OPSC_EAUTH) {
        auth_failure(m);
        return;
    }
    const char *why = l->detail[0] ? l->detail : l->first_error[0] ? l->first_error : NULL;
    char status[64] = "";
    if (!why)
        snprintf(status, sizeof(status), "ssh exited with %lld%s", (long long)m->ssh.status,
                 m->ssh.term_signal ? " (signal)" : "");
    fail(m, code, "%s (%s:%d)%s: %s", h->name, h->host, h->port,
         m->via ? " through the jump host" : "", why ? why : status);
}

static void became_ready(oss_master *m)
{
    m->st = MS_READY;
    m->learned = strcmp(m->hop.policy, "tofu") == 0 && (!m->hop.pinned || !m->hop.pinned[0]);
    connect_over(m);
    notify(m);
}

/* ---- the master's stderr -------------------------------------------------------------------- */

static void on_line(oss_master *m, const char *line, size_t n)
{
    oss_sshlog_line(&m->log, line, n);
    if (m->st == MS_SSH && m->log.ready)
        became_ready(m);
}

static void on_ssh_err(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    oss_master *m = s->data;
    if (n < 0) {
        if (m->ssh_err_open) {
            m->ssh_err_open = false;
            uv_close((uv_handle_t *)&m->ssh_err, on_handle_closed);
        }
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        char c = buf->base[i];
        if (c == '\n') {
            on_line(m, m->line, m->nline);
            m->nline = 0;
        } else if (m->nline < sizeof(m->line)) {
            m->line[m->nline++] = c;
        }
    }
}

static void on_ssh_exit(oss_child *c, int64_t status, int sig)
{
    oss_master *m = c->data;
    oss_child_exited(&m->ssh, status, sig, on_handle_closed);
    if (m->nline) {
        on_line(m, m->line, m->nline);
        m->nline = 0;
    }
    if (m->st == MS_SSH)
        connect_failed(m);
    else if (m->st == MS_READY)
        fail(m, OPSC_ECONNRESET, "%s (%s:%d): the connection was lost%s%s", m->hop.name,
             m->hop.host, m->hop.port, m->log.first_error[0] ? ": " : "", m->log.first_error);
    maybe_free(m);
}

static void start_ssh(oss_master *m)
{
    oss_plugin *p = m->p;
    if (m->hop.cert && m->hop.certificate != 0 && write_cert(m) < 0) {
        fail(m, OPSC_EIO, "cannot write the certificate into %s", p->rundir);
        return;
    }
    char ask[32];
    snprintf(ask, sizeof(ask), "c%u.ask", m->id);
    if (m->hop.password && oss_askpass_open(p, ask, m->hop.password, &m->ask) < 0) {
        fail(m, OPSC_EIO, "cannot open the askpass socket in %s", p->rundir);
        return;
    }
    char **argv = oss_argv_master(m);
    char **env = oss_env(p, ask, NULL);
    uv_pipe_init(p->loop, &m->ssh_err, 0);
    m->ssh_err.data = m;
    m->ssh_err_open = true;
    m->handles++;
    uv_stdio_container_t stdio[3] = {
        {UV_IGNORE, {0}},
        {UV_IGNORE, {0}},
        {UV_CREATE_PIPE | UV_WRITABLE_PIPE, {.stream = (uv_stream_t *)&m->ssh_err}},
    };
    m->ssh.data = m;
    int rc = argv && env ? oss_spawn(p, &m->ssh, argv, env, stdio, on_ssh_exit) : -ENOMEM;
    oss_argv_free(p, argv);
    oss_argv_free(p, env);
    if (rc < 0) {
        fail(m, OPSC_EPLUGIN, "cannot run %s: %s", p->cfg.ssh, strerror(-rc));
        return;
    }
    m->handles++;
    uv_read_start((uv_stream_t *)&m->ssh_err, oss_alloc_cb, on_ssh_err);
}

/* ---- starting ---------------------------------------------------------------------------------
 */

/* A spawn holds the loop until the child execs, which takes long on a busy machine: when a
 * burst of masters start (an agent loaded the key for 200 of them), a few go per loop turn and
 * the rest on later turns, so that requests and output are served in between. */
#define SPAWNS_PER_TURN 8

static void request_ssh(oss_master *m);

static void on_kick(uv_timer_t *t)
{
    oss_master *m = t->data;
    if (m->st == MS_SSH && !m->ssh.spawned)
        request_ssh(m);
}

static void request_ssh(oss_master *m)
{
    oss_plugin *p = m->p;
    uint64_t now = uv_now(p->loop);
    if (now != p->spawn_ms) {
        p->spawn_ms = now;
        p->spawns = 0;
    }
    m->st = MS_SSH;
    if (p->spawns++ < SPAWNS_PER_TURN)
        start_ssh(m);
    else
        uv_timer_start(&m->kick, on_kick, 1, 0);
}

static void on_agent(void *ud, oss_master *unused)
{
    (void)unused;
    oss_master *m = ud;
    if (m->st != MS_AGENT)
        return;
    if (m->agent->st != AG_READY) {
        fail(m, m->agent->code ? m->agent->code : OPSC_EAUTH,
             "the private key for '%s' cannot be used: %s", m->hop.user, m->agent->err);
        return;
    }
    request_ssh(m);
}

static void begin(oss_master *m)
{
    if (!m->hop.key) {
        request_ssh(m);
        return;
    }
    m->st = MS_AGENT;
    int rc = oss_agent_get(m->p, m->hop.key, m->hop.passphrase, &m->agent);
    if (rc < 0) {
        fail(m, rc, "cannot start an agent for the key");
        return;
    }
    m->agent_id = m->agent->id;
    rc = oss_agent_wait(m->agent, on_agent, m);
    if (rc != 0)
        on_agent(m, NULL);
}

static void on_timeout(uv_timer_t *t)
{
    oss_master *m = t->data;
    if (m->st == MS_CLOSING) { /* the grace after SIGTERM is over */
        oss_child_kill(&m->ssh, SIGKILL);
        return;
    }
    static const char *const phase[] = {"starting ssh", "connecting", "SSH handshake",
                                        "authentication", "authentication"};
    uint32_t ms = m->hop.timeout_ms ? m->hop.timeout_ms : (uint32_t)m->p->cfg.connect_timeout_ms;
    const char *where = m->st == MS_WAIT_VIA ? "waiting for the jump host"
                        : m->st == MS_AGENT  ? "loading the key into the agent"
                                             : phase[m->log.phase];
    fail(m, OPSC_ETIMEDOUT, "%s:%d: no answer within %u ms (%s)", m->hop.host, m->hop.port, ms,
         where);
}

static void on_via(void *ud, oss_master *via)
{
    oss_master *m = ud;
    if (m->st != MS_WAIT_VIA)
        return;
    if (!oss_master_up(via)) {
        fail(m, via->code ? via->code : OPSC_ECONNRESET, "jump host %s: %s", via->hop.name,
             via->err);
        return;
    }
    begin(m);
}

int oss_master_new(oss_plugin *p, oss_hop *hop, oss_master *via, const char *share,
                   oss_master **out)
{
    oss_master *m = p->api->calloc(1, sizeof(*m));
    if (!m)
        return OPSC_ENOMEM;
    m->p = p;
    m->id = ++p->next_id;
    m->refs = 1;
    m->hop = *hop;
    memset(hop, 0, sizeof(*hop));
    m->share = oss_strdup(p, share);
    m->next = p->masters;
    if (p->masters)
        p->masters->prev = m;
    p->masters = m;
    uv_timer_init(p->loop, &m->timer);
    uv_timer_init(p->loop, &m->kick);
    m->timer.data = m->kick.data = m;
    m->handles += 2;
    uint32_t ms = m->hop.timeout_ms ? m->hop.timeout_ms : (uint32_t)p->cfg.connect_timeout_ms;
    uv_timer_start(&m->timer, on_timeout, ms, 0);
    unlink_files(m); /* a leftover of a daemon that was killed */
    *out = m;
    if (via) {
        oss_master_ref(via);
        m->via = via;
        m->st = MS_WAIT_VIA;
        if (oss_master_wait(via, on_via, m) != 0) /* already settled: go on at once */
            on_via(m, via);
        return 0;
    }
    begin(m);
    return 0;
}

int oss_master_wait(oss_master *m, oss_ready_cb cb, void *ud)
{
    if (m->st == MS_READY)
        return 1;
    if (m->st == MS_FAILED || m->st == MS_CLOSING)
        return m->code ? m->code : OPSC_ECONNRESET;
    oss_waiter *w = m->p->api->calloc(1, sizeof(*w));
    if (!w)
        return OPSC_ENOMEM;
    w->cb = cb;
    w->ud = ud;
    oss_waiter **pp = &m->waiters;
    while (*pp)
        pp = &(*pp)->next;
    *pp = w;
    return 0;
}

bool oss_master_up(const oss_master *m)
{
    return m->st == MS_READY && !m->ssh.exited;
}

oss_master *oss_master_find(oss_plugin *p, const char *share)
{
    for (oss_master *m = p->masters; m; m = m->next)
        if (m->share && strcmp(m->share, share) == 0 && m->st != MS_FAILED && m->st != MS_CLOSING &&
            !m->ssh.exited)
            return m;
    return NULL;
}

void oss_master_ref(oss_master *m)
{
    m->refs++;
}

/* ---- closing ----------------------------------------------------------------------------------
 */

static void finish(void *ud)
{
    oss_master *m = ud;
    oss_plugin *p = m->p;
    if (m->via && !m->via_released) {
        m->via_released = true;
        oss_master_unref(m->via, finish, m); /* may come back here at once */
        return;
    }
    if (m->prev)
        m->prev->next = m->next;
    else
        p->masters = m->next;
    if (m->next)
        m->next->prev = m->prev;
    unlink_files(m);
    void (*cb)(void *) = m->close_cb;
    void *cud = m->close_ud;
    for (oss_waiter *w = m->waiters, *n; w; w = n) {
        n = w->next;
        p->api->free(w);
    }
    oss_hop_free(p, &m->hop);
    p->api->free(m->share);
    p->api->free(m);
    if (cb)
        cb(cud);
}

static void maybe_free(oss_master *m)
{
    if (m->st != MS_CLOSING)
        return;
    bool running = m->ssh.spawned && !m->ssh.exited;
    if (!running && !uv_is_closing((uv_handle_t *)&m->timer)) {
        uv_close((uv_handle_t *)&m->timer, on_handle_closed);
        uv_close((uv_handle_t *)&m->kick, on_handle_closed);
    }
    if (m->handles == 0)
        finish(m);
}

void oss_master_unref(oss_master *m, void (*cb)(void *ud), void *ud)
{
    if (--m->refs > 0) {
        if (cb)
            cb(ud);
        return;
    }
    m->close_cb = cb;
    m->close_ud = ud;
    if (m->st != MS_FAILED && m->st != MS_READY) {
        m->code = OPSC_ECANCELED;
        snprintf(m->err, sizeof(m->err), "the connect was abandoned");
        notify(m);
    }
    m->st = MS_CLOSING;
    connect_over(m);
    uv_timer_stop(&m->kick);
    oss_child_kill(&m->ssh, SIGTERM);
    if (m->ssh_err_open) {
        m->ssh_err_open = false;
        uv_close((uv_handle_t *)&m->ssh_err, on_handle_closed);
    }
    uv_timer_start(&m->timer, on_timeout, 3000, 0);
    maybe_free(m);
}
