/* oss_master.c - one ssh master: an agent holding the key, ssh -M -N on a control socket, its -v
 * output read for facts and failures, and a clean stop when the pool drops the connection. */
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oss_internal.h"

static void fail(oss_master *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void maybe_free(oss_master *m);
static void start_ssh(oss_master *m);

/* ---- memory ---------------------------------------------------------------------------------- */

char *oss_strdup(oss_plugin *p, const char *s)
{
    return s ? p->api->strdup(s) : NULL;
}

void oss_wipe_free(oss_plugin *p, char *s)
{
    if (!s)
        return;
    volatile char *v = s;
    while (*v)
        *v++ = 0;
    p->api->free(s);
}

static void wipe_secrets(oss_master *m)
{
    oss_plugin *p = m->p;
    oss_wipe_free(p, m->hop.key);
    oss_wipe_free(p, m->hop.passphrase);
    oss_wipe_free(p, m->hop.password);
    oss_wipe_free(p, m->ask_secret);
    m->hop.key = m->hop.passphrase = m->hop.password = m->ask_secret = NULL;
}

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

/* ---- files ----------------------------------------------------------------------------------- */

/* Our own sockets live in the runtime dir; when its path is too long for sun_path, the same
 * directory is reached through our descriptor of it. */
int oss_master_sockpath(oss_master *m, const char *suffix, char *buf, size_t len)
{
    size_t cap = len < 108 ? len : 108;
    int n = snprintf(buf, cap, "%s/c%u.%s", m->p->rundir, m->id, suffix);
    if (n > 0 && (size_t)n < cap)
        return 0;
    n = snprintf(buf, cap, "/proc/self/fd/%d/c%u.%s", m->p->rundir_fd, m->id, suffix);
    return n > 0 && (size_t)n < cap ? 0 : OPSC_ERANGE;
}

static void unlink_files(oss_master *m)
{
    static const char *const suffixes[] = {"ctl", "agent", "ask"};
    char name[64];
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(name, sizeof(name), "c%u.%s", m->id, suffixes[i]);
        unlinkat(m->p->rundir_fd, name, 0);
    }
    snprintf(name, sizeof(name), "c%u-cert.pub", m->id);
    unlinkat(m->p->rundir_fd, name, 0);
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

/* ---- handles ----------------------------------------------------------------------------------
 */

static void on_handle_closed(uv_handle_t *h)
{
    oss_master *m = h->data;
    m->handles--;
    maybe_free(m);
}

static void close_handle(oss_master *m, uv_handle_t *h, bool *open)
{
    (void)m; /* h->data is m: on_handle_closed counts it */
    if (open && !*open)
        return;
    if (open)
        *open = false;
    if (!uv_is_closing(h))
        uv_close(h, on_handle_closed);
}

static void kill_child(oss_child *c, int sig)
{
    if (c->spawned && !c->exited)
        uv_process_kill(&c->proc, sig);
}

static int spawn(oss_master *m, oss_child *c, char **argv, char **env, uv_stdio_container_t *stdio,
                 uv_exit_cb exit_cb)
{
    uv_process_options_t o = {0};
    o.file = argv[0];
    o.args = argv;
    o.env = env;
    o.cwd = m->p->rundir;
    o.exit_cb = exit_cb;
    o.stdio_count = 3;
    o.stdio = stdio;
    /* Its own session: a terminal's Ctrl-C reaches the daemon, which closes masters itself. */
    o.flags = UV_PROCESS_DETACHED;
    c->proc.data = m;
    int rc = uv_spawn(m->p->loop, &c->proc, &o);
    c->spawned = true;
    m->handles++;
    if (rc < 0) {
        c->exited = true;
        c->closed = true;
        uv_close((uv_handle_t *)&c->proc, on_handle_closed);
    }
    return rc;
}

static void child_exited(oss_master *m, oss_child *c, int64_t status, int sig)
{
    c->exited = true;
    c->status = status;
    c->term_signal = sig;
    if (!c->closed) {
        c->closed = true;
        uv_close((uv_handle_t *)&c->proc, on_handle_closed);
    }
    (void)m;
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

/* After the connect, up or not: the agent, ssh-add and the askpass socket are done with. */
static void connect_over(oss_master *m)
{
    uv_timer_stop(&m->timer);
    kill_child(&m->agent, SIGTERM);
    kill_child(&m->add, SIGKILL);
    close_handle(m, (uv_handle_t *)&m->agent_out, &m->agent_out_open);
    close_handle(m, (uv_handle_t *)&m->add_in, &m->add_in_open);
    close_handle(m, (uv_handle_t *)&m->ask, &m->ask_open);
    wipe_secrets(m);
}

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
    kill_child(&m->ssh, SIGTERM);
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
    if (h->pinned && h->pinned[0]) {
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
    if (h->cert && !l->cert_offered)
        extra = "; the certificate was not offered";
    else if (h->cert)
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

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h, (void)suggested;
    static char chunk[8192]; /* delivered before the next read: one buffer is enough */
    *buf = uv_buf_init(chunk, sizeof(chunk));
}

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
        close_handle(m, (uv_handle_t *)&m->ssh_err, &m->ssh_err_open);
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

static void on_ssh_exit(uv_process_t *proc, int64_t status, int sig)
{
    oss_master *m = proc->data;
    child_exited(m, &m->ssh, status, sig);
    if (m->nline) {
        on_line(m, m->line, m->nline);
        m->nline = 0;
    }
    if (m->st == MS_SSH || m->st == MS_AGENT || m->st == MS_ADD)
        connect_failed(m);
    else if (m->st == MS_READY)
        fail(m, OPSC_ECONNRESET, "%s (%s:%d): the connection was lost%s%s", m->hop.name,
             m->hop.host, m->hop.port, m->log.first_error[0] ? ": " : "", m->log.first_error);
    maybe_free(m);
}

static void start_ssh(oss_master *m)
{
    oss_plugin *p = m->p;
    m->st = MS_SSH;
    if (m->hop.cert && m->hop.certificate != 0 && write_cert(m) < 0) {
        fail(m, OPSC_EIO, "cannot write the certificate into %s", p->rundir);
        return;
    }
    char **argv = oss_argv_master(m);
    char **env = oss_env_for(m, false);
    uv_pipe_init(p->loop, &m->ssh_err, 0);
    m->ssh_err.data = m;
    m->ssh_err_open = true;
    m->handles++;
    uv_stdio_container_t stdio[3] = {
        {UV_IGNORE, {0}},
        {UV_IGNORE, {0}},
        {UV_CREATE_PIPE | UV_WRITABLE_PIPE, {.stream = (uv_stream_t *)&m->ssh_err}},
    };
    int rc = argv && env ? spawn(m, &m->ssh, argv, env, stdio, on_ssh_exit) : UV_ENOMEM;
    oss_argv_free(p, argv);
    oss_argv_free(p, env);
    if (rc < 0) {
        fail(m, OPSC_EPLUGIN, "cannot run %s: %s", p->cfg.ssh, uv_strerror(rc));
        return;
    }
    uv_read_start((uv_stream_t *)&m->ssh_err, alloc_cb, on_ssh_err);
}

/* ---- the one-shot askpass socket ----------------------------------------------------------- */

typedef struct ask_client {
    uv_pipe_t pipe;
    uv_write_t w;
    oss_master *m;
    char *secret;
} ask_client;

static void on_ask_client_closed(uv_handle_t *h)
{
    ask_client *a = h->data;
    oss_master *m = a->m;
    oss_wipe_free(m->p, a->secret);
    m->p->api->free(a);
    m->handles--;
    maybe_free(m);
}

static void on_ask_written(uv_write_t *w, int status)
{
    (void)status;
    ask_client *a = w->data;
    uv_close((uv_handle_t *)&a->pipe, on_ask_client_closed);
}

static void on_ask_conn(uv_stream_t *server, int status)
{
    oss_master *m = server->data;
    ask_client *a = status == 0 ? m->p->api->calloc(1, sizeof(*a)) : NULL;
    if (!a)
        return;
    a->m = m;
    uv_pipe_init(m->p->loop, &a->pipe, 0);
    a->pipe.data = a;
    m->handles++;
    /* Served once: whoever asks next (a second prompt) finds no socket. */
    a->secret = m->ask_secret;
    m->ask_secret = NULL;
    if (uv_accept(server, (uv_stream_t *)&a->pipe) < 0 || !a->secret) {
        uv_close((uv_handle_t *)&a->pipe, on_ask_client_closed);
    } else {
        uv_buf_t b = uv_buf_init(a->secret, (unsigned)strlen(a->secret));
        a->w.data = a;
        if (uv_write(&a->w, (uv_stream_t *)&a->pipe, &b, 1, on_ask_written) < 0)
            uv_close((uv_handle_t *)&a->pipe, on_ask_client_closed);
    }
    close_handle(m, (uv_handle_t *)&m->ask, &m->ask_open);
    char name[64];
    snprintf(name, sizeof(name), "c%u.ask", m->id);
    unlinkat(m->p->rundir_fd, name, 0);
}

static int serve_secret(oss_master *m, const char *secret)
{
    char path[128];
    int rc = oss_master_sockpath(m, "ask", path, sizeof(path));
    if (rc < 0)
        return rc;
    if (!(m->ask_secret = oss_strdup(m->p, secret)))
        return OPSC_ENOMEM;
    uv_pipe_init(m->p->loop, &m->ask, 0);
    m->ask.data = m;
    m->ask_open = true;
    m->handles++;
    rc = uv_pipe_bind(&m->ask, path);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->ask, 4, on_ask_conn);
    return rc < 0 ? OPSC_EIO : 0;
}

/* ---- agent and ssh-add ------------------------------------------------------------------------
 */

static void on_add_exit(uv_process_t *proc, int64_t status, int sig)
{
    oss_master *m = proc->data;
    child_exited(m, &m->add, status, sig);
    if (m->st != MS_ADD) {
        maybe_free(m);
        return;
    }
    if (status == 0 && !sig) {
        start_ssh(m);
        return;
    }
    /* ssh-add asks for a passphrase once (a second askpass finds no socket) and says little. */
    const char *t = m->add_text;
    if (m->hop.passphrase || strstr(t, "passphrase"))
        fail(m, OPSC_EAUTH, "the private key for '%s' cannot be used: wrong passphrase",
             m->hop.user);
    else
        fail(m, OPSC_EAUTH,
             "the private key for '%s' cannot be used: it is encrypted and the credential has no "
             "passphrase, or ssh-add cannot read it%s%s",
             m->hop.user, t[0] ? ": " : "", t);
}

static void on_add_err(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    oss_master *m = s->data;
    if (n < 0) {
        close_handle(m, (uv_handle_t *)&m->add_err, &m->add_err_open);
        return;
    }
    size_t used = strlen(m->add_text);
    for (ssize_t i = 0; i < n && used + 1 < sizeof(m->add_text); i++) {
        char c = buf->base[i];
        m->add_text[used++] = (c == '\n' || c == '\r') ? ' ' : (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    m->add_text[used] = '\0';
}

static void on_key_written(uv_write_t *w, int status)
{
    (void)status;
    oss_master *m = w->data;
    close_handle(m, (uv_handle_t *)&m->add_in, &m->add_in_open); /* EOF: ssh-add reads the key */
}

static void start_add(oss_master *m)
{
    oss_plugin *p = m->p;
    m->st = MS_ADD;
    if (m->hop.passphrase && serve_secret(m, m->hop.passphrase) < 0) {
        fail(m, OPSC_EIO, "cannot open the askpass socket in %s", p->rundir);
        return;
    }
    char **argv = oss_argv_add(m);
    char **env = oss_env_for(m, true);
    uv_pipe_init(p->loop, &m->add_in, 0);
    uv_pipe_init(p->loop, &m->add_err, 0);
    m->add_in.data = m->add_err.data = m;
    m->add_in_open = m->add_err_open = true;
    m->handles += 2;
    uv_stdio_container_t stdio[3] = {
        {UV_CREATE_PIPE | UV_READABLE_PIPE, {.stream = (uv_stream_t *)&m->add_in}},
        {UV_IGNORE, {0}},
        {UV_CREATE_PIPE | UV_WRITABLE_PIPE, {.stream = (uv_stream_t *)&m->add_err}},
    };
    int rc = argv && env ? spawn(m, &m->add, argv, env, stdio, on_add_exit) : UV_ENOMEM;
    oss_argv_free(p, argv);
    oss_argv_free(p, env);
    if (rc < 0) {
        fail(m, OPSC_EPLUGIN, "cannot run %s: %s", p->cfg.ssh_add, uv_strerror(rc));
        return;
    }
    uv_read_start((uv_stream_t *)&m->add_err, alloc_cb, on_add_err);
    /* The key goes through a pipe: never a file, never argv. */
    uv_buf_t b = uv_buf_init(m->hop.key, (unsigned)strlen(m->hop.key));
    m->add_write.data = m;
    if (uv_write(&m->add_write, (uv_stream_t *)&m->add_in, &b, 1, on_key_written) < 0)
        close_handle(m, (uv_handle_t *)&m->add_in, &m->add_in_open);
}

static void on_agent_out(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    oss_master *m = s->data;
    if (n < 0) {
        close_handle(m, (uv_handle_t *)&m->agent_out, &m->agent_out_open);
        return;
    }
    /* It prints its socket once it listens. */
    if (m->st == MS_AGENT && memmem(buf->base, (size_t)n, "SSH_AUTH_SOCK=", 14)) {
        close_handle(m, (uv_handle_t *)&m->agent_out, &m->agent_out_open);
        start_add(m);
    }
}

static void on_agent_exit(uv_process_t *proc, int64_t status, int sig)
{
    oss_master *m = proc->data;
    child_exited(m, &m->agent, status, sig);
    if (m->st == MS_AGENT || m->st == MS_ADD)
        fail(m, OPSC_EPLUGIN, "%s exited before the key was loaded (status %lld)",
             m->p->cfg.ssh_agent, (long long)status);
    maybe_free(m);
}

static void start_agent(oss_master *m)
{
    oss_plugin *p = m->p;
    m->st = MS_AGENT;
    char **argv = oss_argv_agent(m);
    char **env = oss_env_for(m, false);
    uv_pipe_init(p->loop, &m->agent_out, 0);
    m->agent_out.data = m;
    m->agent_out_open = true;
    m->handles++;
    uv_stdio_container_t stdio[3] = {
        {UV_IGNORE, {0}},
        {UV_CREATE_PIPE | UV_WRITABLE_PIPE, {.stream = (uv_stream_t *)&m->agent_out}},
        {UV_IGNORE, {0}},
    };
    int rc = argv && env ? spawn(m, &m->agent, argv, env, stdio, on_agent_exit) : UV_ENOMEM;
    oss_argv_free(p, argv);
    oss_argv_free(p, env);
    if (rc < 0) {
        fail(m, OPSC_EPLUGIN, "cannot run %s: %s", p->cfg.ssh_agent, uv_strerror(rc));
        return;
    }
    uv_read_start((uv_stream_t *)&m->agent_out, alloc_cb, on_agent_out);
}

/* ---- starting ---------------------------------------------------------------------------------
 */

static void on_timeout(uv_timer_t *t)
{
    oss_master *m = t->data;
    if (m->st == MS_CLOSING) { /* the grace after SIGTERM is over */
        kill_child(&m->ssh, SIGKILL);
        kill_child(&m->agent, SIGKILL);
        kill_child(&m->add, SIGKILL);
        return;
    }
    static const char *const phase[] = {"starting ssh", "connecting", "SSH handshake",
                                        "authentication", "authentication"};
    uint32_t ms = m->hop.timeout_ms ? m->hop.timeout_ms : (uint32_t)m->p->cfg.connect_timeout_ms;
    fail(m, OPSC_ETIMEDOUT, "%s:%d: no answer within %u ms (%s)", m->hop.host, m->hop.port, ms,
         m->st == MS_WAIT_VIA ? "waiting for the jump host" : phase[m->log.phase]);
}

static void begin(oss_master *m)
{
    if (m->hop.password && serve_secret(m, m->hop.password) < 0) {
        fail(m, OPSC_EIO, "cannot open the askpass socket in %s", m->p->rundir);
        return;
    }
    if (m->hop.key)
        start_agent(m);
    else
        start_ssh(m);
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
    m->timer.data = m;
    m->handles++;
    uint32_t ms = m->hop.timeout_ms ? m->hop.timeout_ms : (uint32_t)p->cfg.connect_timeout_ms;
    uv_timer_start(&m->timer, on_timeout, ms, 0);
    unlink_files(m); /* a leftover of a daemon that was killed */
    *out = m;
    if (via) {
        oss_master_ref(via);
        m->via = via;
        m->st = MS_WAIT_VIA;
        int rc = oss_master_wait(via, on_via, m);
        if (rc != 0) /* already settled: go on at once */
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
    oss_waiter *w = m->waiters;
    while (w) {
        oss_waiter *n = w->next;
        p->api->free(w);
        w = n;
    }
    oss_hop_free(p, &m->hop);
    oss_wipe_free(p, m->ask_secret);
    p->api->free(m->share);
    p->api->free(m);
    if (cb)
        cb(cud);
}

static bool running(const oss_master *m)
{
    return (m->ssh.spawned && !m->ssh.exited) || (m->agent.spawned && !m->agent.exited) ||
           (m->add.spawned && !m->add.exited);
}

static void maybe_free(oss_master *m)
{
    if (m->st != MS_CLOSING)
        return;
    if (!running(m) && !uv_is_closing((uv_handle_t *)&m->timer))
        uv_close((uv_handle_t *)&m->timer, on_handle_closed);
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
        notify(m); /* nobody should wait on an unreferenced master, but be safe */
    }
    m->st = MS_CLOSING;
    connect_over(m);
    kill_child(&m->ssh, SIGTERM);
    close_handle(m, (uv_handle_t *)&m->ssh_err, &m->ssh_err_open);
    close_handle(m, (uv_handle_t *)&m->add_err, &m->add_err_open);
    uv_timer_start(&m->timer, on_timeout, 3000, 0);
    maybe_free(m);
}
