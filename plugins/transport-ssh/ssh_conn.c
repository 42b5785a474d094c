/* ssh_conn.c - one SSH connection on the loop: resolve, TCP connect, handshake, auth, pump, close.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <unistd.h>

#include "ssh_internal.h"

static void conn_fail_connect(opsc_conn *c, int code, const char *fmt, ...) OPSC_PRINTF(3, 4);
static void conn_update_poll(opsc_conn *c);
static void conn_finish_close(opsc_conn *c);

char *ssh_strdup(const opsc_host_api *api, const char *s)
{
    return s ? api->strdup(s) : NULL;
}

void ssh_wipe_free(const opsc_host_api *api, char *s)
{
    if (!s)
        return;
    volatile char *v = s;
    while (*v)
        *v++ = 0;
    api->free(s);
}

static void wipe_credential(opsc_conn *c)
{
    ssh_wipe_free(c->api, c->password);
    ssh_wipe_free(c->api, c->key);
    ssh_wipe_free(c->api, c->passphrase);
    c->password = c->key = c->passphrase = NULL;
}

/* libssh2 codes to OPSC codes, with the library's own words as detail. */
int ssh_map_error(opsc_conn *c, int rc, char *msg, size_t msglen)
{
    char *lerr = NULL;
    if (c->s)
        libssh2_session_last_error(c->s, &lerr, NULL, 0);
    snprintf(msg, msglen, "%s", lerr && *lerr ? lerr : "libssh2 error");
    switch (rc) {
    case LIBSSH2_ERROR_SOCKET_SEND:
    case LIBSSH2_ERROR_SOCKET_RECV:
    case LIBSSH2_ERROR_SOCKET_DISCONNECT:
        return OPSC_ECONNRESET;
    case LIBSSH2_ERROR_SOCKET_TIMEOUT:
    case LIBSSH2_ERROR_TIMEOUT:
        return OPSC_ETIMEDOUT;
    case LIBSSH2_ERROR_ALLOC:
        return OPSC_ENOMEM;
    case LIBSSH2_ERROR_AUTHENTICATION_FAILED:
    case LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
    case LIBSSH2_ERROR_PASSWORD_EXPIRED:
        return OPSC_EAUTH;
    case LIBSSH2_ERROR_FILE:
        return OPSC_EINVAL;
    default:
        return OPSC_EPROTO;
    }
}

void ssh_conn_note_eagain(opsc_conn *c)
{
    if (libssh2_session_block_directions(c->s) & LIBSSH2_SESSION_BLOCK_OUTBOUND)
        c->want_write = true;
}

/* ---- connect ------------------------------------------------------------ */

static void connect_report(opsc_conn *c, int code)
{
    opsc_connect_cb cb = c->connect_cb;
    c->connect_cb = NULL;
    wipe_credential(c);
    if (code == 0) {
        opsc_conn_info info = {sizeof(info)};
        info.host_key_type = c->key_type;
        info.host_key_sha256 = c->key_fp;
        info.host_key_learned = c->key_learned;
        info.server_banner = c->banner[0] ? c->banner : NULL;
        info.warning = c->warning[0] ? c->warning : NULL;
        cb(c->connect_ud, 0, c, &info, NULL);
        return;
    }
    cb(c->connect_ud, code, NULL, NULL, c->err);
}

static void conn_fail_connect(opsc_conn *c, int code, const char *fmt, ...)
{
    char msg[sizeof(c->err)]; /* the arguments may point into c->err */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    memcpy(c->err, msg, sizeof(msg));
    c->err_code = code;
    c->state = C_BROKEN;
    connect_report(c, code);
    c->closing = true; /* the host never saw this connection: free it ourselves */
    if (!c->pumping)
        conn_finish_close(c);
}

static void on_poll(uv_poll_t *h, int status, int events);

static void connect_timeout_cb(uv_timer_t *t)
{
    opsc_conn *c = t->data;
    static const char *const phase[] = {"resolving the name", "connecting", "SSH handshake",
                                        "authentication", "authentication"};
    conn_fail_connect(c, OPSC_ETIMEDOUT, "%s:%d: no answer within %u ms (%s)", c->host, c->port,
                      c->connect_timeout_ms, phase[c->state < C_READY ? c->state : 0]);
}

static void try_next_address(opsc_conn *c, int last_err);

static void on_handle_closed(uv_handle_t *h);

static void on_poll_closed_retry(uv_handle_t *h)
{
    opsc_conn *c = h->data;
    if (c->closing) {
        on_handle_closed(h);
        return;
    }
    c->nhandles--;
    c->poll_init = false;
    close(c->fd);
    c->fd = -1;
    int err = c->err_code;
    c->err_code = 0;
    try_next_address(c, err);
}

static int start_poll(opsc_conn *c, int events)
{
    int rc = uv_poll_init_socket(c->loop, &c->poll, c->fd);
    if (rc < 0)
        return rc;
    c->poll.data = c;
    c->poll_init = true;
    c->nhandles++;
    c->poll_events = events;
    return uv_poll_start(&c->poll, events, on_poll);
}

static void try_next_address(opsc_conn *c, int last_err)
{
    for (; c->ai_next; c->ai_next = c->ai_next->ai_next) {
        struct addrinfo *ai = c->ai_next;
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last_err = -errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
            last_err = -errno;
            close(fd);
            continue;
        }
        c->ai_next = ai->ai_next;
        c->fd = fd;
        c->state = C_CONNECT;
        int rc = start_poll(c, UV_WRITABLE);
        if (rc < 0) {
            conn_fail_connect(c, OPSC_EIO, "%s:%d: cannot poll the socket: %s", c->host, c->port,
                              uv_strerror(rc));
        }
        return;
    }
    if (last_err == -ECONNREFUSED)
        conn_fail_connect(c, OPSC_ECONNREFUSED, "%s:%d: connection refused (no SSH server there?)",
                          c->host, c->port);
    else if (last_err == -ETIMEDOUT)
        conn_fail_connect(c, OPSC_ETIMEDOUT, "%s:%d: TCP connect timed out", c->host, c->port);
    else if (last_err == -EHOSTUNREACH || last_err == -ENETUNREACH)
        conn_fail_connect(c, OPSC_EHOSTUNREACH, "%s:%d: %s", c->host, c->port, strerror(-last_err));
    else
        conn_fail_connect(c, last_err ? last_err : OPSC_EIO, "%s:%d: cannot connect: %s", c->host,
                          c->port, last_err ? strerror(-last_err) : "no address");
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    opsc_conn *c = req->data;
    c->gai_pending = false;
    if (c->closing) {
        if (res)
            uv_freeaddrinfo(res);
        conn_finish_close(c);
        return;
    }
    if (status < 0) {
        conn_fail_connect(c, OPSC_EDNS, "cannot resolve '%s': %s", c->host, uv_strerror(status));
        return;
    }
    c->ai = c->ai_next = res;
    try_next_address(c, 0);
}

/* An address needs no resolver: answered at once, without a trip through
 * libuv's four-thread pool, where 200 connections or one slow DNS lookup of
 * another target would make it wait. */
static bool resolve_numeric(opsc_conn *c, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    if (getaddrinfo(c->host, port, &hints, &c->ai) != 0)
        return false;
    c->ai_next = c->ai;
    return true;
}

static void on_address_known(uv_timer_t *t)
{
    try_next_address(t->data, 0);
}

/* Any command's read may pull packets for the others out of the socket into
 * libssh2's queue, where no poll event will announce them; counting what
 * comes in tells the pump to go round again. */
static LIBSSH2_RECV_FUNC(counting_recv)
{
    opsc_conn *c = *abstract;
    ssize_t n = recv(socket, buffer, length, flags);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    c->rx_bytes += (uint64_t)n;
    return n;
}

static int session_open(opsc_conn *c)
{
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->s = libssh2_session_init_ex(ssh_mem_alloc, ssh_mem_free, ssh_mem_realloc, c);
    if (!c->s)
        return OPSC_ENOMEM;
    libssh2_session_set_blocking(c->s, 0);
    libssh2_session_callback_set(c->s, LIBSSH2_CALLBACK_RECV, (void *)counting_recv);
    if (c->p->cfg.keepalive_ms > 0)
        libssh2_keepalive_config(c->s, 0, 1);
    return ssh_hostkey_prefs(c);
}

/* TCP connected (or failed): check SO_ERROR, then move on to SSH. */
static void connect_done(opsc_conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        c->err_code = -err;
        uv_close((uv_handle_t *)&c->poll, on_poll_closed_retry);
        return;
    }
    if (c->ai) {
        uv_freeaddrinfo(c->ai);
        c->ai = c->ai_next = NULL;
    }
    int rc = session_open(c);
    if (rc < 0) {
        conn_fail_connect(c, rc, "%s:%d: cannot start an SSH session", c->host, c->port);
        return;
    }
    c->state = C_HANDSHAKE;
}

static void parse_banner(opsc_conn *c)
{
    const char *b = libssh2_session_banner_get(c->s);
    snprintf(c->banner, sizeof(c->banner), "%s", b ? b : "");
}

/* One step of the SSH part of connecting. Returns 1 to wait for I/O. */
static int connect_step(opsc_conn *c)
{
    int rc;
    switch (c->state) {
    case C_HANDSHAKE:
        rc = libssh2_session_handshake(c->s, c->fd);
        if (rc == LIBSSH2_ERROR_EAGAIN)
            return 1;
        if (rc) {
            char msg[256];
            int code = ssh_map_error(c, rc, msg, sizeof(msg));
            conn_fail_connect(c, code, "%s:%d: SSH handshake failed: %s", c->host, c->port, msg);
            return -1;
        }
        parse_banner(c);
        if (ssh_hostkey_check(c) < 0) {
            conn_fail_connect(c, OPSC_EHOSTKEY, "%s", c->err);
            return -1;
        }
        c->state = C_AUTHLIST;
        return 0;
    case C_AUTHLIST:
    case C_AUTH:
        rc = ssh_auth_step(c);
        if (rc < 0) {
            conn_fail_connect(c, rc, "%s", c->err);
            return -1;
        }
        if (rc > 0)
            return 1;
        c->state = C_READY;
        uv_timer_stop(&c->timer);
        return 0;
    default:
        return 1;
    }
}

/* ---- keepalive and idle --------------------------------------------------- */

/* A keepalive is a tiny packet libssh2 drops on EAGAIN; sending it while
 * another packet is half-written would wedge the session, so only send on
 * an empty socket queue. With want_reply off, the server sends nothing
 * back, so an idle session never has input we must consume. */
static void keepalive_cb(uv_timer_t *t)
{
    opsc_conn *c = t->data;
    int outq = 0;
    if (c->state != C_READY || c->send_owner || ioctl(c->fd, SIOCOUTQ, &outq) < 0 || outq != 0)
        return;
    int next = 0;
    int rc = libssh2_keepalive_send(c->s, &next);
    if (rc && rc != LIBSSH2_ERROR_EAGAIN)
        ssh_conn_broken(c, OPSC_ECONNRESET, "%s:%d: keepalive failed: connection lost", c->host,
                        c->port);
}

/* Readable with nothing running: the server closed or is about to. Peek so
 * that anything else stays for libssh2. */
static void idle_readable(opsc_conn *c)
{
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
        ssh_conn_broken(c, OPSC_ECONNRESET, "%s:%d: the server closed the connection", c->host,
                        c->port);
    else
        c->poll_events = -1; /* data for libssh2: stop polling until a command runs */
}

/* ---- the pump --------------------------------------------------------------- */

static void on_kick(uv_timer_t *t)
{
    ssh_conn_pump(t->data);
}

void ssh_conn_kick(opsc_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->kick))
        uv_timer_start(&c->kick, on_kick, 0, 0);
}

/* One command's read (even of stderr, for its own stdout) may pull packets
 * for another out of the socket into libssh2's queue; no poll event will
 * announce them, so go round again until a pass reads nothing new. */
static void pump_execs(opsc_conn *c, bool *more)
{
    bool progress = true;
    for (int pass = 0; progress && pass < 16; pass++) {
        progress = false;
        uint64_t rx = c->rx_bytes;
        /* Commands added while we iterate are appended and run in this pass. */
        for (opsc_exec *ex = c->execs; ex; ex = ex->next)
            if (ex->st != EX_DONE)
                ssh_exec_pump(ex, more, &progress);
        if (c->rx_bytes != rx)
            progress = true;
    }
    if (progress)
        *more = true;
    opsc_exec *ex = c->execs;
    while (ex) {
        opsc_exec *next = ex->next;
        if (ex->st == EX_DONE)
            ssh_exec_release(ex);
        ex = next;
    }
}

void ssh_conn_pump(opsc_conn *c)
{
    if (c->pumping) {
        c->repump = true;
        return;
    }
    c->pumping = true;
    bool more = false;
    do {
        c->repump = false;
        c->want_write = false;
        if (c->state >= C_HANDSHAKE && c->state < C_READY) {
            int rc;
            while ((rc = connect_step(c)) == 0 && c->state < C_READY)
                ;
            if (rc == 0 && c->state == C_READY) {
                if (c->p->cfg.keepalive_ms > 0)
                    uv_timer_start(&c->timer, keepalive_cb, (uint64_t)c->p->cfg.keepalive_ms,
                                   (uint64_t)c->p->cfg.keepalive_ms);
                connect_report(c, 0);
            } else if (rc > 0) {
                ssh_conn_note_eagain(c);
            }
        }
        if (c->state == C_READY || c->state == C_BROKEN)
            pump_execs(c, &more);
    } while (c->repump);
    c->pumping = false;
    if (c->closing && !c->execs) {
        conn_finish_close(c);
        return;
    }
    if (more)
        ssh_conn_kick(c);
    conn_update_poll(c);
}

static void conn_update_poll(opsc_conn *c)
{
    if (!c->poll_init || c->state == C_RESOLVE || c->state == C_CONNECT)
        return;
    int ev = 0;
    if (c->state == C_BROKEN) {
        ev = 0;
    } else if (c->state < C_READY) {
        int dirs = libssh2_session_block_directions(c->s);
        ev = (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND) ? UV_WRITABLE : 0;
        ev |= UV_READABLE;
    } else {
        bool reader = false;
        for (opsc_exec *ex = c->execs; ex && !reader; ex = ex->next)
            reader = ssh_exec_reads(ex);
        if (reader || (!c->execs && c->poll_events != -1))
            ev |= UV_READABLE;
        if (c->want_write)
            ev |= UV_WRITABLE;
    }
    if (ev == c->poll_events)
        return;
    c->poll_events = ev;
    if (ev)
        uv_poll_start(&c->poll, ev, on_poll);
    else
        uv_poll_stop(&c->poll);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    opsc_conn *c = h->data;
    if (c->state == C_CONNECT) {
        connect_done(c);
        if (c->state == C_HANDSHAKE)
            ssh_conn_pump(c);
        return;
    }
    if (status < 0 && c->state >= C_READY) {
        ssh_conn_broken(c, OPSC_ECONNRESET, "%s:%d: socket error: %s", c->host, c->port,
                        uv_strerror(status));
        return;
    }
    if (c->state == C_READY && !c->execs && (events & UV_READABLE)) {
        idle_readable(c);
        conn_update_poll(c);
        return;
    }
    ssh_conn_pump(c);
}

/* The session is dead: every command fails, the connection is unusable. */
void ssh_conn_broken(opsc_conn *c, int code, const char *fmt, ...)
{
    if (c->state == C_BROKEN)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    c->err_code = code;
    c->state = C_BROKEN;
    uv_timer_stop(&c->timer);
    for (opsc_exec *ex = c->execs; ex; ex = ex->next)
        if (ex->st != EX_DONE)
            ssh_exec_fail(ex, code, c->err);
    ssh_conn_pump(c);
}

/* ---- public entry points -------------------------------------------------------- */

static int copy_target(opsc_conn *c, const opsc_target *t, const opsc_credential *cred)
{
    const opsc_host_api *api = c->api;
    c->name = ssh_strdup(api, t->name ? t->name : t->address);
    c->host = ssh_strdup(api, t->address);
    c->policy = ssh_strdup(api, t->host_key_policy ? t->host_key_policy : "strict");
    c->known = ssh_strdup(api, t->known_host_keys ? t->known_host_keys : "");
    c->user = ssh_strdup(api, cred->username);
    c->password = ssh_strdup(api, cred->password);
    c->key = ssh_strdup(api, cred->private_key);
    c->passphrase = ssh_strdup(api, cred->passphrase);
    if (!c->name || !c->host || !c->policy || !c->known || !c->user)
        return OPSC_ENOMEM;
    if ((cred->password && !c->password) || (cred->private_key && !c->key) ||
        (cred->passphrase && !c->passphrase))
        return OPSC_ENOMEM;
    return 0;
}

static void conn_free(opsc_conn *c)
{
    const opsc_host_api *api = c->api;
    wipe_credential(c);
    api->free(c->name);
    api->free(c->host);
    api->free(c->policy);
    api->free(c->known);
    api->free(c->user);
    api->free(c->methods);
    api->free(c);
}

static bool target_valid(const opsc_target *t, const opsc_credential *cred)
{
    if (!t || !cred || !t->address || !*t->address || !cred->username || !*cred->username)
        return false;
    if (t->port < 0 || t->port > 65535)
        return false;
    const char *pol = t->host_key_policy;
    return !pol || !strcmp(pol, "strict") || !strcmp(pol, "tofu") || !strcmp(pol, "off");
}

int ssh_connect(void *state, const opsc_target *t, const opsc_credential *cred, opsc_connect_cb cb,
                void *ud);
int ssh_connect(void *state, const opsc_target *t, const opsc_credential *cred, opsc_connect_cb cb,
                void *ud)
{
    ssh_plugin *p = state;
    if (!cb || !target_valid(t, cred))
        return OPSC_EINVAL;
    if (!cred->password && !cred->private_key)
        return OPSC_EINVAL;
    opsc_conn *c = p->api->calloc(1, sizeof(*c));
    if (!c)
        return OPSC_ENOMEM;
    c->p = p;
    c->api = p->api;
    c->loop = p->api->loop();
    c->fd = -1;
    c->port = t->port ? t->port : 22;
    c->connect_timeout_ms =
        t->connect_timeout_ms ? t->connect_timeout_ms : (uint32_t)p->cfg.connect_timeout_ms;
    int rc = copy_target(c, t, cred);
    if (rc < 0) {
        conn_free(c);
        return rc;
    }
    char port[8];
    snprintf(port, sizeof(port), "%d", c->port);
    bool numeric = resolve_numeric(c, port);
    if (!numeric) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        c->gai.data = c;
        rc = uv_getaddrinfo(c->loop, &c->gai, on_resolved, c->host, port, &hints);
        if (rc < 0) {
            conn_free(c);
            return OPSC_EIO;
        }
        c->gai_pending = true;
    }
    uv_timer_init(c->loop, &c->timer);
    uv_timer_init(c->loop, &c->kick);
    c->timer.data = c->kick.data = c;
    c->nhandles += 2;
    if (numeric) /* callbacks never run inside connect(): go on at the next loop turn */
        uv_timer_start(&c->kick, on_address_known, 0, 0);
    /* The deadline counts from now, not from the loop's cached time: a host that
     * did something long since the loop last woke would see the connect expire
     * at once (the 1 GiB test generates its file first and failed so). */
    uv_update_time(c->loop);
    uv_timer_start(&c->timer, connect_timeout_cb, c->connect_timeout_ms, 0);
    c->connect_cb = cb;
    c->connect_ud = ud;
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    opsc_conn *c = h->data;
    if (--c->nhandles > 0)
        return;
    if (c->fd >= 0)
        close(c->fd);
    opsc_close_cb cb = c->close_cb;
    void *ud = c->close_ud;
    conn_free(c);
    if (cb)
        cb(ud);
}

/* Free the session without blocking: shut the socket down first so that a
 * libssh2 call that wants to write fails at once instead of waiting. */
static void session_free(opsc_conn *c)
{
    if (!c->s)
        return;
    if (c->state == C_READY)
        libssh2_session_disconnect(c->s, "closed by OpsConductor");
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
    libssh2_session_set_blocking(c->s, 1);
    libssh2_session_free(c->s);
    c->s = NULL;
    ssh_mem_release(c);
}

static void conn_finish_close(opsc_conn *c)
{
    if (c->gai_pending) {
        /* on_resolved comes back here, cancelled or not. */
        uv_cancel((uv_req_t *)&c->gai);
        return;
    }
    if (c->ai) {
        uv_freeaddrinfo(c->ai);
        c->ai = c->ai_next = NULL;
    }
    session_free(c);
    c->state = C_BROKEN;
    /* Close the handles once; the last close callback frees. */
    if (uv_is_closing((uv_handle_t *)&c->kick))
        return;
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->kick, on_handle_closed);
    if (c->poll_init && !uv_is_closing((uv_handle_t *)&c->poll))
        uv_close((uv_handle_t *)&c->poll, on_handle_closed);
}

void ssh_close(opsc_conn *c, opsc_close_cb cb, void *ud);
void ssh_close(opsc_conn *c, opsc_close_cb cb, void *ud)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_cb = cb;
    c->close_ud = ud;
    for (opsc_exec *ex = c->execs; ex; ex = ex->next)
        if (ex->st != EX_DONE)
            ssh_exec_fail(ex, OPSC_ECANCELED, "the connection was closed");
    /* Defer: close() may be called from inside one of our callbacks. */
    uv_timer_start(&c->kick, on_kick, 0, 0);
}

bool ssh_conn_usable(opsc_conn *c);
bool ssh_conn_usable(opsc_conn *c)
{
    return c && c->state == C_READY && !c->closing;
}
