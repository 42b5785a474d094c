/* oss_agent.c - ssh-agents that hold a credential's key while masters authenticate with it.
 *
 * The key reaches the agent through ssh-add reading a pipe; its passphrase through the askpass
 * socket. An agent is shared by the connects that use the same key at the same time (a job on
 * 200 targets loads the key once, not 200 times: an encrypted key costs a bcrypt KDF run per
 * load), and stops when the last of them has authenticated. */
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "oss_internal.h"

static void maybe_free(oss_agent *a);

static void digest(const char *key, const char *passphrase, unsigned char out[32])
{
    unsigned int n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    memset(out, 0, 32);
    if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        EVP_DigestUpdate(ctx, key, strlen(key) + 1);
        if (passphrase)
            EVP_DigestUpdate(ctx, passphrase, strlen(passphrase));
        EVP_DigestFinal_ex(ctx, out, &n);
    }
    EVP_MD_CTX_free(ctx);
}

/* ---- handles ----------------------------------------------------------------------------------
 */

static void on_closed(uv_handle_t *h)
{
    oss_agent *a = h->data;
    a->handles--;
    maybe_free(a);
}

static void close_pipe(uv_pipe_t *pipe, bool *open)
{
    if (!*open)
        return;
    *open = false;
    uv_close((uv_handle_t *)pipe, on_closed);
}

static void forget_secrets(oss_agent *a)
{
    oss_wipe_free(a->p, a->key);
    oss_wipe_free(a->p, a->passphrase);
    a->key = a->passphrase = NULL;
    oss_askpass_close(a->ask);
    a->ask = NULL;
}

static void settle(oss_agent *a, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void settle(oss_agent *a, int code, const char *fmt, ...)
{
    if (a->st == AG_READY || a->st == AG_FAILED || a->st == AG_CLOSING)
        return;
    if (code) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(a->err, sizeof(a->err), fmt, ap);
        va_end(ap);
        a->code = code;
        oss_child_kill(&a->agent, SIGTERM);
    }
    a->st = code ? AG_FAILED : AG_READY;
    forget_secrets(a);
    close_pipe(&a->out, &a->out_open);
    oss_waiter *w = a->waiters;
    a->waiters = NULL;
    while (w) {
        oss_waiter *next = w->next;
        oss_ready_cb cb = w->cb;
        void *ud = w->ud;
        a->p->api->free(w);
        cb(ud, NULL);
        w = next;
    }
}

/* ---- ssh-add
 * ------------------------------------------------------------------------------------- */

static void on_add_err(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    oss_agent *a = s->data;
    if (n < 0) {
        close_pipe(&a->add_err, &a->add_err_open);
        return;
    }
    size_t used = strlen(a->add_text);
    for (ssize_t i = 0; i < n && used + 1 < sizeof(a->add_text); i++) {
        char c = buf->base[i];
        a->add_text[used++] = (c == '\n' || c == '\r') ? ' ' : (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    a->add_text[used] = '\0';
}

static void on_add_exit(oss_child *c, int64_t status, int sig)
{
    oss_agent *a = c->data;
    oss_child_exited(&a->add, status, sig, on_closed);
    if (status == 0 && !sig)
        settle(a, 0, "%s", "");
    else if (a->passphrase || strstr(a->add_text, "passphrase"))
        settle(a, OPSC_EAUTH, "wrong passphrase");
    else
        settle(
            a, OPSC_EAUTH,
            "it is encrypted and the credential has no passphrase, or ssh-add cannot read it%s%s",
            a->add_text[0] ? ": " : "", a->add_text);
    maybe_free(a);
}

static void on_key_written(uv_write_t *w, int status)
{
    (void)status;
    oss_agent *a = w->data;
    close_pipe(&a->add_in, &a->add_in_open); /* EOF: ssh-add reads the key */
}

static void start_add(oss_agent *a)
{
    oss_plugin *p = a->p;
    char ask[64], sock[64];
    snprintf(ask, sizeof(ask), "a%u.ask", a->id);
    snprintf(sock, sizeof(sock), "a%u.agent", a->id);
    a->st = AG_LOADING;
    if (a->passphrase && oss_askpass_open(p, ask, a->passphrase, &a->ask) < 0) {
        settle(a, OPSC_EIO, "cannot open the askpass socket in %s", p->rundir);
        return;
    }
    char *argv[] = {(char *)p->cfg.ssh_add, "-q", "-", NULL};
    char **env = oss_env(p, ask, sock);
    uv_pipe_init(p->loop, &a->add_in, 0);
    uv_pipe_init(p->loop, &a->add_err, 0);
    a->add_in.data = a->add_err.data = a;
    a->add_in_open = a->add_err_open = true;
    a->handles += 2;
    uv_stdio_container_t stdio[3] = {
        {UV_CREATE_PIPE | UV_READABLE_PIPE, {.stream = (uv_stream_t *)&a->add_in}},
        {UV_IGNORE, {0}},
        {UV_CREATE_PIPE | UV_WRITABLE_PIPE, {.stream = (uv_stream_t *)&a->add_err}},
    };
    a->add.data = a;
    int rc = env ? oss_spawn(p, &a->add, argv, env, stdio, on_add_exit) : -ENOMEM;
    if (rc == 0)
        a->handles++;
    oss_argv_free(p, env);
    if (rc < 0) {
        settle(a, OPSC_EPLUGIN, "cannot run %s: %s", p->cfg.ssh_add, strerror(-rc));
        return;
    }
    uv_read_start((uv_stream_t *)&a->add_err, oss_alloc_cb, on_add_err);
    /* The key goes through a pipe: never a file, never argv. */
    uv_buf_t b = uv_buf_init(a->key, (unsigned)strlen(a->key));
    a->add_write.data = a;
    if (uv_write(&a->add_write, (uv_stream_t *)&a->add_in, &b, 1, on_key_written) < 0)
        close_pipe(&a->add_in, &a->add_in_open);
}

/* ---- the agent ----------------------------------------------------------------------------------
 */

static void on_agent_out(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    oss_agent *a = s->data;
    if (n < 0) {
        close_pipe(&a->out, &a->out_open);
        return;
    }
    /* It prints its socket once it listens. */
    if (a->st == AG_STARTING && memmem(buf->base, (size_t)n, "SSH_AUTH_SOCK=", 14)) {
        close_pipe(&a->out, &a->out_open);
        start_add(a);
    }
}

static void on_agent_exit(oss_child *c, int64_t status, int sig)
{
    oss_agent *a = c->data;
    oss_child_exited(&a->agent, status, sig, on_closed);
    settle(a, OPSC_EPLUGIN, "%s exited before the key was loaded (status %lld)",
           a->p->cfg.ssh_agent, (long long)status);
    maybe_free(a);
}

static int start_agent(oss_agent *a)
{
    oss_plugin *p = a->p;
    char sock[64];
    snprintf(sock, sizeof(sock), "a%u.agent", a->id);
    unlinkat(p->rundir_fd, sock, 0);
    char *argv[] = {p->helper, "exec", p->ppid, (char *)p->cfg.ssh_agent, "-D", "-a", sock, NULL};
    char **env = oss_env(p, NULL, NULL);
    uv_pipe_init(p->loop, &a->out, 0);
    a->out.data = a;
    a->out_open = true;
    a->handles++;
    uv_stdio_container_t stdio[3] = {
        {UV_IGNORE, {0}},
        {UV_CREATE_PIPE | UV_WRITABLE_PIPE, {.stream = (uv_stream_t *)&a->out}},
        {UV_IGNORE, {0}},
    };
    a->agent.data = a;
    int rc = env ? oss_spawn(p, &a->agent, argv, env, stdio, on_agent_exit) : -ENOMEM;
    if (rc == 0)
        a->handles++;
    oss_argv_free(p, env);
    if (rc < 0)
        return rc;
    uv_read_start((uv_stream_t *)&a->out, oss_alloc_cb, on_agent_out);
    return 0;
}

/* ---- public -------------------------------------------------------------------------------------
 */

int oss_agent_get(oss_plugin *p, const char *key, const char *passphrase, oss_agent **out)
{
    unsigned char d[32];
    digest(key, passphrase, d);
    for (oss_agent *a = p->agents; a; a = a->next) {
        if ((a->st == AG_STARTING || a->st == AG_LOADING || a->st == AG_READY) &&
            !a->agent.exited && memcmp(a->digest, d, 32) == 0) {
            a->refs++;
            *out = a;
            return 0;
        }
    }
    oss_agent *a = p->api->calloc(1, sizeof(*a));
    if (!a)
        return OPSC_ENOMEM;
    a->p = p;
    a->id = ++p->next_id;
    a->refs = 1;
    memcpy(a->digest, d, 32);
    a->key = oss_strdup(p, key);
    a->passphrase = passphrase && *passphrase ? oss_strdup(p, passphrase) : NULL;
    a->next = p->agents;
    if (p->agents)
        p->agents->prev = a;
    p->agents = a;
    *out = a;
    int rc = a->key ? start_agent(a) : -ENOMEM;
    if (rc < 0)
        settle(a, OPSC_EPLUGIN, "cannot run %s: %s", p->cfg.ssh_agent, strerror(-rc));
    return 0;
}

int oss_agent_wait(oss_agent *a, oss_ready_cb cb, void *ud)
{
    if (a->st == AG_READY)
        return 1;
    if (a->st != AG_STARTING && a->st != AG_LOADING)
        return a->code ? a->code : OPSC_EPLUGIN;
    oss_waiter *w = a->p->api->calloc(1, sizeof(*w));
    if (!w)
        return OPSC_ENOMEM;
    *w = (oss_waiter){a->waiters, cb, ud};
    a->waiters = w;
    return 0;
}

static void maybe_free(oss_agent *a)
{
    if (a->st != AG_CLOSING || a->handles > 0)
        return;
    oss_plugin *p = a->p;
    if (a->prev)
        a->prev->next = a->next;
    else
        p->agents = a->next;
    if (a->next)
        a->next->prev = a->prev;
    char sock[64];
    snprintf(sock, sizeof(sock), "a%u.agent", a->id);
    unlinkat(p->rundir_fd, sock, 0);
    p->api->free(a);
}

void oss_agent_unref(oss_agent *a)
{
    if (--a->refs > 0)
        return;
    settle(a, OPSC_ECANCELED, "abandoned");
    a->st = AG_CLOSING;
    oss_child_kill(&a->agent, SIGTERM);
    oss_child_kill(&a->add, SIGKILL);
    close_pipe(&a->add_in, &a->add_in_open);
    close_pipe(&a->add_err, &a->add_err_open);
    maybe_free(a);
}
