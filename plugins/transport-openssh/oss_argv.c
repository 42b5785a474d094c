/* oss_argv.c - the command lines of ssh, ssh-agent and ssh-add: built as argv, never as a shell
 * line, from values oss_options.c and the fleet have already checked. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "oss_internal.h"

typedef struct vec {
    oss_plugin *p;
    char **v;
    size_t n, cap;
    bool failed;
} vec;

static void push(vec *a, const char *s)
{
    if (a->failed)
        return;
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        char **nv = a->p->api->realloc(a->v, cap * sizeof(*nv));
        if (!nv) {
            a->failed = true;
            return;
        }
        a->v = nv;
        a->cap = cap;
    }
    char *copy = oss_strdup(a->p, s);
    if (!copy) {
        a->failed = true;
        return;
    }
    a->v[a->n++] = copy;
    a->v[a->n] = NULL;
}

static void vpush(vec *a, const char *opt_flag, const char *fmt, va_list ap)
{
    char buf[2048];
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        a->failed = true;
        return;
    }
    if (opt_flag)
        push(a, opt_flag);
    push(a, buf);
}

static void pushf(vec *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pushf(vec *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vpush(a, NULL, fmt, ap);
    va_end(ap);
}

/* -o Keyword=value */
static void opt(vec *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void opt(vec *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vpush(a, "-o", fmt, ap);
    va_end(ap);
}

static char **finish(vec *a)
{
    if (!a->failed && a->v)
        return a->v;
    oss_argv_free(a->p, a->v);
    return NULL;
}

void oss_argv_free(oss_plugin *p, char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        oss_wipe_free(p, v[i]);
    if (v)
        p->api->free(v);
}

/* ssh expands %-tokens in the options that run commands: ours carry none. */
static void no_tokens(const char *in, char *out, size_t cap)
{
    size_t j = 0;
    for (; *in && j + 2 < cap; in++) {
        if (*in == '%')
            out[j++] = '%';
        out[j++] = *in;
    }
    out[j] = '\0';
}

/* Single-quoted for the shell that runs ProxyCommand. */
static void sh_quote(const char *in, char *out, size_t cap)
{
    size_t j = 0;
    out[j++] = '\'';
    for (; *in && j + 6 < cap; in++) {
        if (*in == '\'') {
            memcpy(out + j, "'\\''", 4);
            j += 4;
        } else {
            out[j++] = *in;
        }
    }
    out[j++] = '\'';
    out[j] = '\0';
}

/* The helper wrapper: the child dies with the daemon. */
static void with_pdeathsig(vec *a, const char *prog)
{
    push(a, a->p->helper);
    push(a, "exec");
    push(a, a->p->ppid);
    push(a, prog);
}

void oss_hostkey_algs(const char *pinned, char *out, size_t cap)
{
    static const char *const map[][2] = {
        {"ssh-ed25519", "ssh-ed25519"},
        {"ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"},
        {"ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384"},
        {"ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521"},
        {"ssh-rsa", "rsa-sha2-512,rsa-sha2-256"},
    };
    out[0] = '\0';
    for (const char *l = pinned ? pinned : ""; *l;) {
        size_t n = strcspn(l, " \n");
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
            if (strlen(map[i][0]) != n || memcmp(map[i][0], l, n) != 0 || strstr(out, map[i][1]))
                continue;
            size_t used = strlen(out);
            snprintf(out + used, cap - used, "%s%s", used ? "," : "", map[i][1]);
        }
        l += strcspn(l, "\n");
        l += *l == '\n';
    }
}

/* Fingerprints of the recorded keys, joined by ',' ("-" when none). */
static void pins(const char *pinned, char *out, size_t cap)
{
    size_t j = 0;
    for (const char *l = pinned ? pinned : ""; *l;) {
        const char *sp = strchr(l, ' ');
        size_t eol = strcspn(l, "\n");
        if (sp && (size_t)(sp - l) < eol) {
            size_t n = eol - (size_t)(sp - l) - 1;
            if (j + n + 2 < cap) {
                if (j)
                    out[j++] = ',';
                memcpy(out + j, sp + 1, n);
                j += n;
            }
        }
        l += eol + (l[eol] == '\n');
    }
    out[j] = '\0';
    if (!j)
        snprintf(out, cap, "-");
}

static void host_keys(vec *a, oss_master *m)
{
    char helper[1024], list[OSS_MAX_PINNED * 80], algs[256];
    no_tokens(m->p->helper, helper, sizeof(helper));
    pins(m->hop.pinned, list, sizeof(list));
    opt(a, "StrictHostKeyChecking=yes");
    opt(a, "UserKnownHostsFile=/dev/null");
    opt(a, "GlobalKnownHostsFile=/dev/null");
    opt(a, "KnownHostsCommand=\"%s\" hostkey %s %s %%H %%I %%t %%K %%f", helper, m->hop.policy,
        list);
    opt(a, "CheckHostIP=no");
    opt(a, "UpdateHostKeys=no");
    opt(a, "VerifyHostKeyDNS=no");
    oss_hostkey_algs(m->hop.pinned, algs, sizeof(algs));
    if (algs[0])
        opt(a, "HostKeyAlgorithms=^%s", algs);
}

static void auth(vec *a, oss_master *m)
{
    const oss_hop *h = &m->hop;
    bool key = h->key != NULL, pw = h->password != NULL;
    char pref[128] = "";
    if (h->gssapi)
        snprintf(pref, sizeof(pref), "gssapi-with-mic,");
    size_t used = strlen(pref);
    snprintf(pref + used, sizeof(pref) - used, "%s",
             key  ? "publickey"
             : pw ? "password,keyboard-interactive"
                  : "");
    used = strlen(pref);
    if (used && pref[used - 1] == ',')
        pref[used - 1] = '\0';
    opt(a, "PreferredAuthentications=%s", pref[0] ? pref : "none");
    opt(a, "PubkeyAuthentication=%s", key ? "yes" : "no");
    opt(a, "PasswordAuthentication=%s", pw ? "yes" : "no");
    opt(a, "KbdInteractiveAuthentication=%s", pw ? "yes" : "no");
    opt(a, "GSSAPIAuthentication=%s", h->gssapi ? "yes" : "no");
    opt(a, "GSSAPIDelegateCredentials=no");
    opt(a, "HostbasedAuthentication=no");
    opt(a, "NumberOfPasswordPrompts=1");
    opt(a, "BatchMode=%s", pw ? "no" : "yes");
    if (key)
        opt(a, "IdentityAgent=a%u.agent", m->agent_id);
    else
        opt(a, "IdentityAgent=none");
    opt(a, "IdentityFile=none");
    opt(a, "IdentitiesOnly=no"); /* the agent holds the credential's key and nothing else */
    if (h->cert)
        opt(a, "CertificateFile=c%u-cert.pub", m->id);
    opt(a, "AddKeysToAgent=no");
}

/* Through the previous jump host's master: a stdio forward on its control socket. */
static void proxy(vec *a, oss_master *m)
{
    char ssh[1100], ctl[64], dest[300], line[2048];
    sh_quote(m->p->cfg.ssh, ssh, sizeof(ssh));
    snprintf(ctl, sizeof(ctl), "c%u.ctl", m->via->id);
    char hp[290];
    snprintf(hp, sizeof(hp), "[%s]:%d", m->hop.host, m->hop.port);
    sh_quote(hp, dest, sizeof(dest));
    snprintf(line, sizeof(line),
             "%s -F /dev/null -o ControlMaster=no -o ControlPath=%s -o ProxyCommand=/bin/false "
             "-o BatchMode=yes -o LogLevel=ERROR -W %s opsc-jump",
             ssh, ctl, dest);
    char expanded[4200];
    no_tokens(line, expanded, sizeof(expanded));
    opt(a, "ProxyCommand=%s", expanded);
}

static void transport_opts(vec *a, oss_master *m)
{
    const oss_settings *cfg = &m->p->cfg;
    uint32_t t = m->hop.timeout_ms ? m->hop.timeout_ms : (uint32_t)cfg->connect_timeout_ms;
    opt(a, "ControlPersist=no");
    opt(a, "ConnectTimeout=%u", (t + 999) / 1000);
    opt(a, "ConnectionAttempts=1");
    if (cfg->keepalive_ms > 0) {
        opt(a, "ServerAliveInterval=%lld", (long long)((cfg->keepalive_ms + 999) / 1000));
        opt(a, "ServerAliveCountMax=3");
    }
    if (m->via)
        proxy(a, m);
    opt(a, "ForwardAgent=no");
    opt(a, "ForwardX11=no");
    opt(a, "ClearAllForwardings=yes");
    opt(a, "PermitLocalCommand=no");
    opt(a, "EscapeChar=none");
    opt(a, "RequestTTY=no");
    opt(a, "Tunnel=no");
}

char **oss_argv_master(oss_master *m)
{
    vec a = {m->p};
    const char *cfg = m->p->cfg.ssh_config;
    with_pdeathsig(&a, m->p->cfg.ssh);
    if (cfg[0]) {
        push(&a, "-F");
        push(&a, strcmp(cfg, "none") == 0 ? "/dev/null" : cfg);
    }
    push(&a, "-v");
    push(&a, "-M");
    push(&a, "-N");
    push(&a, "-T");
    push(&a, "-S");
    pushf(&a, "c%u.ctl", m->id);
    /* First value wins in ssh: ours come before the target's options and any ssh_config. */
    host_keys(&a, m);
    auth(&a, m);
    transport_opts(&a, m);
    for (size_t i = 0; m->hop.extra && m->hop.extra[i]; i++) {
        push(&a, "-o");
        push(&a, m->hop.extra[i]);
    }
    push(&a, "-l");
    push(&a, m->hop.user);
    push(&a, "-p");
    pushf(&a, "%d", m->hop.port);
    push(&a, "--");
    push(&a, m->hop.host);
    return finish(&a);
}

char **oss_env(oss_plugin *p, const char *ask, const char *agent)
{
    vec a = {p};
    for (size_t i = 0; p->env[i]; i++)
        push(&a, p->env[i]);
    if (ask)
        pushf(&a, "OPSC_ASKPASS=%s", ask);
    if (agent)
        pushf(&a, "SSH_AUTH_SOCK=%s", agent);
    return finish(&a);
}
