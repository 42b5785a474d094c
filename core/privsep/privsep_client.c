/* privsep_client.c - the daemon's end of opsc-spawner: starting it, and local processes through
 * it. */
#include "privsep.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "build_config.h"
#include "privsep_internal.h"
#include "spawn_proto.h"

#define BUCKETS 256

struct opsc_local_proc {
    privsep *ps;
    uint64_t id;
    opsc_local_cb cb;
    void *ud;
    bool exited, released;
    opsc_local_proc *next; /* hash chain, or the deferred-free list */
};

typedef struct out_pkt {
    struct out_pkt *next;
    size_t len;
    int fds[3], nfds;
    unsigned char data[];
} out_pkt;

typedef struct orphan_req {
    struct orphan_req *next;
    uint64_t id;
    void (*done)(void *ud, int killed, const char *msg);
    void *ud;
} orphan_req;

struct privsep {
    int fd;
    pid_t pid;
    bool ok; /* local processes can start */
    char why[SP_TEXT_MAX + 128];
    char summary[SP_TEXT_MAX + 128];
    char boot_id[SP_BOOT_ID];
    void (*log)(int level, const char *text);
    uv_loop_t *loop;
    uv_poll_t poll;
    bool attached, closing;
    int events;
    out_pkt *qhead, *qtail;
    uint64_t next_id;
    opsc_local_proc *buckets[BUCKETS];
    opsc_local_proc *dead; /* released during a callback: freed after it */
    int busy;              /* callbacks running */
    orphan_req *orphans;
    unsigned char *rbuf;
    privsep_hosts *hosts; /* the step hosts' helper, or NULL */
};

static void say(privsep *ps, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(privsep *ps, int level, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (ps->log)
        ps->log(level, text);
    else
        fprintf(stderr, "privsep: %s\n", text);
}

/* ---- starting the helper ------------------------------------------------------------------ */

void privsep_find_program(const char *configured, const char *rel, const char *installed,
                          char *out, size_t n)
{
    if (configured && *configured) {
        snprintf(out, n, "%s", configured);
        return;
    }
    char exe[PATH_MAX - 64];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash = len > 0 ? memrchr(exe, '/', (size_t)len) : NULL;
    if (slash) { /* a build tree: <build>/core/opsconductord, <build>/spawner/ ... */
        *slash = '\0';
        snprintf(out, n, "%s/../%s", exe, rel);
        if (access(out, X_OK) == 0)
            return;
    }
    snprintf(out, n, "%s", installed);
}

static void exec_helper(const char *path, int sock, const char *const *argv)
{
    if (sock != 3 && dup2(sock, 3) < 0)
        _exit(127);
    fcntl(3, F_SETFD, 0);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0)
        dup2(null, 0);
    syscall(436 /* close_range */, 4, ~0U, 0);
    char *const env[] = {NULL}; /* never the daemon's environment: it may hold the master key */
    execve(path, (char *const *)argv, env);
    _exit(127);
}

int privsep_fork_helper(const char *path, const char *const *argv, int *fd, pid_t *pid)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    int size = (int)SP_MAX_PACKET;
    for (int i = 0; i < 2; i++) {
        setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    }
    *pid = fork();
    if (*pid == 0)
        exec_helper(path, sv[1], argv);
    close(sv[1]);
    if (*pid < 0) {
        int rc = -errno;
        close(sv[0]);
        return rc;
    }
    *fd = sv[0];
    return 0;
}

int privsep_read_hello(int fd, void *rbuf, int timeout_ms, const char *path, sp_msg *m,
                       const char **reason)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    int rc;
    while ((rc = poll(&pfd, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    ssize_t n = rc > 0 ? recv(fd, rbuf, SP_MAX_PACKET, 0) : -1;
    if (n > 0 && sp_decode(rbuf, (size_t)n, m) == 0 && m->type == SP_HELLO)
        return 0;
    *reason = rc == 0 ? "no answer" : access(path, X_OK) < 0 ? strerror(errno) : "it exited";
    return -1;
}

static void read_hello(privsep *ps, int timeout_ms, const char *path)
{
    sp_msg m;
    const char *reason;
    if (privsep_read_hello(ps->fd, ps->rbuf, timeout_ms, path, &m, &reason)) {
        snprintf(ps->why, sizeof(ps->why),
                 "local steps are refused: the helper %.300s did not start (%s)", path, reason);
        return;
    }
    ps->ok = m.u32 != 0;
    snprintf(ps->boot_id, sizeof(ps->boot_id), "%s", m.text2);
    if (!ps->ok) {
        snprintf(ps->why, sizeof(ps->why), "local steps are refused: %s", m.text3);
        return;
    }
    snprintf(ps->summary, sizeof(ps->summary), "local steps run as %s (uid %u)%s%s%s%s", m.text,
             m.uid, m.flags & SP_HELLO_PRIVATE_PROC ? ", with a /proc that hides the daemon" : "",
             m.flags & SP_HELLO_HIDDEN_PATHS ? ", the data directory and keys covered" : "",
             m.text3[0] ? "; " : "", m.text3);
}

int privsep_start(privsep **out, const privsep_opts *o)
{
    privsep *ps = calloc(1, sizeof(*ps));
    unsigned char *buf = malloc(SP_MAX_PACKET);
    if (!ps || !buf) {
        free(ps);
        free(buf);
        return OPSC_ENOMEM;
    }
    ps->rbuf = buf;
    ps->fd = -1;
    ps->pid = -1;
    ps->log = o->log;
    ps->next_id = 1;
    char path[PATH_MAX];
    privsep_find_program(o->spawner, "spawner/opsc-spawner", OPSC_SPAWNER_PATH, path, sizeof(path));
    const char *argv[8 + 2 * 16];
    size_t a = 0;
    argv[a++] = path;
    argv[a++] = "--user";
    argv[a++] = o->local_user && *o->local_user ? o->local_user : "opsconductor-local";
    for (size_t i = 0; i < o->nhide && i < 16; i++) {
        argv[a++] = "--hide";
        argv[a++] = o->hide[i];
    }
    argv[a] = NULL;
    int rc = privsep_fork_helper(path, argv, &ps->fd, &ps->pid);
    if (rc < 0) {
        snprintf(ps->why, sizeof(ps->why), "local steps are refused: cannot start the helper: %s",
                 strerror(-rc));
        ps->hosts = privsep_hosts_start(o, path);
        *out = ps;
        return 0;
    }
    read_hello(ps, o->hello_timeout_ms > 0 ? o->hello_timeout_ms : 10000, path);
    fcntl(ps->fd, F_SETFL, fcntl(ps->fd, F_GETFL) | O_NONBLOCK);
    ps->hosts = privsep_hosts_start(o, path);
    *out = ps;
    return 0;
}

int privsep_available(const privsep *ps, char *why, size_t whylen)
{
    if (ps && ps->ok && !ps->closing)
        return 0;
    if (why && whylen)
        snprintf(why, whylen, "%s",
                 ps && ps->why[0] ? ps->why : "local steps are refused: no local process helper");
    return OPSC_EPERM;
}

privsep_hosts *privsep_hosts_of(const privsep *ps)
{
    return ps ? ps->hosts : NULL;
}

const char *privsep_summary(const privsep *ps)
{
    return ps->ok ? ps->summary : ps->why;
}

/* ---- records ----------------------------------------------------------------------------- */

static opsc_local_proc **slot(privsep *ps, uint64_t id)
{
    return &ps->buckets[id % BUCKETS];
}

static opsc_local_proc *find(privsep *ps, uint64_t id)
{
    for (opsc_local_proc *p = *slot(ps, id); p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

static void unlink_proc(opsc_local_proc *p)
{
    for (opsc_local_proc **pp = slot(p->ps, p->id); *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            return;
        }
}

static void enter(privsep *ps)
{
    ps->busy++;
}

static void leave(privsep *ps)
{
    if (--ps->busy > 0)
        return;
    while (ps->dead) {
        opsc_local_proc *p = ps->dead;
        ps->dead = p->next;
        free(p);
    }
}

/* ---- sending ----------------------------------------------------------------------------- */

static void helper_gone(privsep *ps, const char *why);

static void pkt_free(out_pkt *q)
{
    for (int i = 0; i < q->nfds; i++)
        close(q->fds[i]);
    free(q);
}

static void on_poll(uv_poll_t *h, int status, int events);

static void flush(privsep *ps)
{
    while (ps->qhead) {
        out_pkt *q = ps->qhead;
        struct iovec iov = {q->data, q->len};
        char ctl[CMSG_SPACE(3 * sizeof(int))];
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        if (q->nfds) {
            memset(ctl, 0, sizeof(ctl));
            mh.msg_control = ctl;
            mh.msg_controllen = CMSG_SPACE(3 * sizeof(int));
            struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(3 * sizeof(int));
            memcpy(CMSG_DATA(c), q->fds, 3 * sizeof(int));
        }
        if (sendmsg(ps->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (ps->attached)
                    uv_poll_start(&ps->poll, UV_READABLE | UV_WRITABLE, on_poll);
                ps->events = UV_READABLE | UV_WRITABLE;
                return;
            }
            helper_gone(ps, strerror(errno));
            return;
        }
        ps->qhead = q->next;
        if (!ps->qhead)
            ps->qtail = NULL;
        pkt_free(q);
    }
    if (ps->attached && ps->events != UV_READABLE) {
        ps->events = UV_READABLE;
        uv_poll_start(&ps->poll, UV_READABLE, on_poll);
    }
}

/* Queue a packet of `len` bytes from `data` (and copies of `fds`), then try to send. */
static int enqueue(privsep *ps, const void *data, size_t len, const int *fds)
{
    if (len == 0)
        return OPSC_E2BIG;
    out_pkt *q = malloc(sizeof(*q) + len);
    if (!q)
        return OPSC_ENOMEM;
    q->next = NULL;
    q->len = len;
    q->nfds = 0;
    memcpy(q->data, data, len);
    for (int i = 0; fds && i < 3; i++) {
        q->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
        if (q->fds[i] < 0) {
            int rc = -errno;
            pkt_free(q);
            return rc;
        }
        q->nfds++;
    }
    if (ps->qtail)
        ps->qtail->next = q;
    else
        ps->qhead = q;
    ps->qtail = q;
    if (ps->qhead == q)
        flush(ps);
    return 0;
}

/* ---- receiving --------------------------------------------------------------------------- */

static void started(privsep *ps, const sp_msg *m)
{
    opsc_local_proc *p = find(ps, m->id);
    if (!p || p->released || !p->cb.on_started)
        return;
    char handle[96];
    snprintf(handle, sizeof(handle), "local:%s:%" PRIu64 ":%" PRIu64, ps->boot_id, m->a, m->b);
    p->cb.on_started(p->ud, (long)m->a, handle);
}

static void exited(privsep *ps, const sp_msg *m)
{
    opsc_local_proc *p = find(ps, m->id);
    if (!p || p->released || p->exited)
        return;
    p->exited = true;
    if (m->type == SP_FAILED) {
        int err = m->i32 < 0 && m->i32 > -4096 ? m->i32 : OPSC_EIO;
        p->cb.on_exit(p->ud, err, 0, 0, m->text);
        return;
    }
    int st = m->i32;
    if (WIFSIGNALED(st))
        p->cb.on_exit(p->ud, 0, 0, WTERMSIG(st), NULL);
    else
        p->cb.on_exit(p->ud, 0, WIFEXITED(st) ? WEXITSTATUS(st) : 0, 0, NULL);
}

static void orphan_done(privsep *ps, uint64_t id, int killed, const char *msg)
{
    for (orphan_req **pp = &ps->orphans; *pp; pp = &(*pp)->next) {
        if ((*pp)->id != id)
            continue;
        orphan_req *r = *pp;
        *pp = r->next;
        if (r->done)
            r->done(r->ud, killed, msg);
        free(r);
        return;
    }
}

static void dispatch(privsep *ps, const sp_msg *m)
{
    switch (m->type) {
    case SP_STARTED:
        started(ps, m);
        break;
    case SP_FAILED:
    case SP_EXITED:
        exited(ps, m);
        break;
    case SP_DONE:
        orphan_done(ps, m->id, m->i32, m->text);
        break;
    case SP_LOG:
        say(ps, m->i32 >= 0 && m->i32 <= 3 ? m->i32 : 1, "%s", m->text);
        break;
    default:
        say(ps, 0, "unexpected message %u from the local process helper", m->type);
    }
}

static void read_packets(privsep *ps)
{
    enter(ps);
    while (!ps->closing && ps->fd >= 0) {
        ssize_t n = recv(ps->fd, ps->rbuf, SP_MAX_PACKET, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            helper_gone(ps, n == 0 ? "it exited" : strerror(errno));
            break;
        }
        sp_msg m;
        if (sp_decode(ps->rbuf, (size_t)n, &m) == 0)
            dispatch(ps, &m);
        else
            say(ps, 0, "malformed message from the local process helper");
    }
    leave(ps);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    privsep *ps = h->data;
    if (status < 0) {
        helper_gone(ps, uv_strerror(status));
        return;
    }
    if (events & UV_WRITABLE)
        flush(ps);
    if (events & (UV_READABLE | UV_DISCONNECT))
        read_packets(ps);
}

/* Every live process ends with an error, and no new one starts. */
static void helper_gone(privsep *ps, const char *why)
{
    if (!ps->ok && ps->why[0] && strstr(ps->why, "helper died"))
        return;
    bool was_ok = ps->ok;
    ps->ok = false;
    snprintf(ps->why, sizeof(ps->why),
             "local steps are refused: the local process helper died "
             "(%s); restart the daemon",
             why);
    if (was_ok && !ps->closing)
        say(ps, 0, "%s", ps->why);
    if (ps->attached && !ps->closing)
        uv_poll_stop(&ps->poll);
    while (ps->qhead) {
        out_pkt *q = ps->qhead;
        ps->qhead = q->next;
        pkt_free(q);
    }
    ps->qtail = NULL;
    enter(ps);
    for (size_t b = 0; b < BUCKETS; b++)
        for (opsc_local_proc *p = ps->buckets[b], *next; p; p = next) {
            next = p->next;
            if (p->exited || p->released)
                continue;
            p->exited = true;
            p->cb.on_exit(p->ud, OPSC_EIO, 0, 0,
                          "the local process helper died: the process was "
                          "killed");
        }
    while (ps->orphans)
        orphan_done(ps, ps->orphans->id, OPSC_EIO, "the local process helper died");
    leave(ps);
}

int privsep_attach(privsep *ps, uv_loop_t *loop)
{
    if (ps->fd < 0)
        return 0;
    int rc = uv_poll_init(loop, &ps->poll, ps->fd);
    if (rc < 0)
        return rc;
    ps->poll.data = ps;
    ps->loop = loop;
    ps->attached = true;
    ps->events = UV_READABLE;
    return uv_poll_start(&ps->poll, UV_READABLE, on_poll);
}

/* ---- processes ---------------------------------------------------------------------------- */

int privsep_spawn(privsep *ps, const opsc_local_spawn *req, const opsc_local_cb *cb, void *ud,
                  opsc_local_proc **out, char *err, size_t errlen)
{
    if (!req || !req->argv || !req->argv[0] || !cb || !cb->on_exit || !out) {
        snprintf(err, errlen, "invalid arguments");
        return OPSC_EINVAL;
    }
    if (privsep_available(ps, err, errlen) < 0 || !ps->attached)
        return OPSC_EPERM;
    if (req->argv[0][0] != '/') {
        snprintf(err, errlen, "the program must be an absolute path: %s", req->argv[0]);
        return OPSC_EINVAL;
    }
    opsc_local_proc *p = calloc(1, sizeof(*p));
    unsigned char *pkt = malloc(SP_MAX_PACKET);
    size_t len =
        p && pkt ? sp_encode_spawn(pkt, SP_MAX_PACKET, ps->next_id, req->argv, req->env, req->cwd)
                 : 0;
    int rc = !p || !pkt ? OPSC_ENOMEM : len == 0 ? OPSC_E2BIG : 0;
    if (rc == 0)
        rc = enqueue(ps, pkt, len, req->stdio);
    free(pkt);
    if (rc < 0) {
        free(p);
        snprintf(err, errlen, "%s",
                 rc == OPSC_E2BIG ? "the command and its environment are "
                                    "too large for one local process"
                                  : opsc_strerror(rc));
        return rc;
    }
    p->ps = ps;
    p->id = ps->next_id++;
    size_t n = cb->size < sizeof(p->cb) ? cb->size : sizeof(p->cb);
    memcpy(&p->cb, cb, n);
    p->ud = ud;
    p->next = *slot(ps, p->id);
    *slot(ps, p->id) = p;
    *out = p;
    return 0;
}

int privsep_signal(opsc_local_proc *p, int sig)
{
    if (!p || p->released)
        return OPSC_ESTATE;
    privsep *ps = p->ps;
    if (!ps->ok)
        return OPSC_EPIPE;
    unsigned char pkt[64];
    return enqueue(ps, pkt, sp_encode_u32(pkt, sizeof(pkt), SP_SIGNAL, p->id, (uint32_t)sig), NULL);
}

void privsep_release(opsc_local_proc *p)
{
    if (!p || p->released)
        return;
    privsep *ps = p->ps;
    p->released = true;
    if (ps->ok) {
        unsigned char pkt[64];
        enqueue(ps, pkt, sp_encode_u32(pkt, sizeof(pkt), SP_RELEASE, p->id, 0), NULL);
    }
    unlink_proc(p);
    if (ps->busy) {
        p->next = ps->dead;
        ps->dead = p;
    } else {
        free(p);
    }
}

int privsep_kill_recorded(privsep *ps, const char *handle,
                          void (*done)(void *ud, int killed, const char *msg), void *ud)
{
    char boot[SP_BOOT_ID];
    unsigned long long pgid = 0, start = 0;
    if (!handle || sscanf(handle, "local:%39[0-9a-f-]:%llu:%llu", boot, &pgid, &start) != 3 ||
        pgid < 2)
        return OPSC_EINVAL;
    if (privsep_available(ps, NULL, 0) < 0 || !ps->attached)
        return OPSC_EPERM;
    orphan_req *r = calloc(1, sizeof(*r));
    if (!r)
        return OPSC_ENOMEM;
    unsigned char pkt[256];
    r->id = ps->next_id++;
    int rc = enqueue(ps, pkt, sp_encode_orphan(pkt, sizeof(pkt), r->id, pgid, start, boot), NULL);
    if (rc < 0) {
        free(r);
        return rc;
    }
    r->done = done;
    r->ud = ud;
    r->next = ps->orphans;
    ps->orphans = r;
    return 0;
}

/* ---- the end ----------------------------------------------------------------------------- */

static void free_all(privsep *ps)
{
    while (ps->qhead) {
        out_pkt *q = ps->qhead;
        ps->qhead = q->next;
        pkt_free(q);
    }
    for (size_t b = 0; b < BUCKETS; b++)
        for (opsc_local_proc *p = ps->buckets[b], *next; p; p = next) {
            next = p->next;
            free(p);
        }
    while (ps->dead) {
        opsc_local_proc *p = ps->dead;
        ps->dead = p->next;
        free(p);
    }
    while (ps->orphans) {
        orphan_req *r = ps->orphans;
        ps->orphans = r->next;
        free(r);
    }
    privsep_hosts_close(ps->hosts);
    if (ps->fd >= 0)
        close(ps->fd); /* the helper sees end of file: it kills what it started and exits */
    if (ps->pid > 0)
        waitpid(ps->pid, NULL, WNOHANG);
    free(ps->rbuf);
    free(ps);
}

static void on_closed(uv_handle_t *h)
{
    free_all(h->data);
}

void privsep_close(privsep *ps)
{
    if (!ps || ps->closing)
        return;
    ps->closing = true;
    if (ps->attached)
        uv_close((uv_handle_t *)&ps->poll, on_closed);
    else
        free_all(ps);
}
