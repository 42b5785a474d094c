/* privsep_hosts.c - the daemon's end of the step hosts' opsc-spawner (spawner/spawner_host.c):
 * starting step hosts as [steplibs] host_user, signalling them and hearing of their end, from any
 * thread, blocking.
 *
 * One reader thread (started with the first host) reads the helper's
 * answers into a record per host; callers wait on a condition for theirs.
 * Requests are sent whole under a mutex (SOCK_SEQPACKET: one packet each).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "build_config.h"
#include "privsep_internal.h"
#include "spawn_proto.h"

#define HELLO_MS 10000
#define START_MS 10000 /* a helper that does not answer a start in this long: refused */

enum rec_state { R_PENDING, R_STARTED, R_FAILED, R_EXITED };

typedef struct rec {
    uint64_t id;
    int state; /* enum rec_state */
    pid_t pid;
    int status; /* R_EXITED: as from waitpid */
    int err;    /* R_FAILED */
    char msg[SP_TEXT_MAX];
    struct rec *next;
} rec;

struct privsep_hosts {
    int fd;
    pid_t pid;
    bool ok;      /* hosts start through it */
    bool reading; /* the reader thread runs */
    bool closing;
    char why[SP_TEXT_MAX + 128];
    void (*log)(int level, const char *text);
    pthread_mutex_t mu; /* everything below, ok, why */
    pthread_cond_t cv;  /* a record changed, or users dropped */
    pthread_mutex_t wmu; /* one sender at a time */
    pthread_t reader;
    int users; /* threads in a call */
    uint64_t next_id;
    rec *recs;
    unsigned char *rbuf;
};

void privsep_find_stephost(const char *configured, char *out, size_t n)
{
    privsep_find_program(configured, "stephost/opsc-stephost", OPSC_STEPHOST_PATH, out, n);
}

/* ---- starting the helper ------------------------------------------------------------------- */

static void read_hello(privsep_hosts *h, const char *path)
{
    sp_msg m;
    const char *reason;
    if (privsep_read_hello(h->fd, h->rbuf, HELLO_MS, path, &m, &reason)) {
        snprintf(h->why, sizeof(h->why), "the step hosts' helper %.300s did not start (%s)", path,
                 reason);
        return;
    }
    h->ok = m.u32 != 0;
    if (!h->ok)
        snprintf(h->why, sizeof(h->why), "%s", m.text3);
    else
        snprintf(h->why, sizeof(h->why), "step hosts start as %s (uid %u) through opsc-spawner",
                 m.text, m.uid);
}

privsep_hosts *privsep_hosts_start(const privsep_opts *o, const char *path)
{
    if (!o->host_user || !*o->host_user)
        return NULL; /* the daemon starts its hosts itself */
    privsep_hosts *h = calloc(1, sizeof(*h));
    if (!h || !(h->rbuf = malloc(SP_MAX_PACKET))) {
        free(h);
        return NULL;
    }
    h->fd = -1;
    h->log = o->log;
    h->next_id = 1;
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->wmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    char stephost[PATH_MAX];
    privsep_find_stephost(o->stephost, stephost, sizeof(stephost));
    const char *argv[] = {path, "--stephost", stephost, "--user", o->host_user, NULL};
    int rc = privsep_fork_helper(path, argv, &h->fd, &h->pid);
    if (rc < 0)
        snprintf(h->why, sizeof(h->why), "the step hosts' helper did not start: %s",
                 strerror(-rc));
    else
        read_hello(h, path);
    return h;
}

int privsep_hosts_available(const privsep_hosts *h, char *why, size_t whylen)
{
    privsep_hosts *m = (privsep_hosts *)h; /* its mutex: the answer may change on the reader */
    pthread_mutex_lock(&m->mu);
    bool ok = h->ok;
    if (why && whylen)
        snprintf(why, whylen, "%s", h->why);
    pthread_mutex_unlock(&m->mu);
    return ok ? 0 : OPSC_EPERM;
}

/* ---- records ------------------------------------------------------------------------------- */

static rec *find(privsep_hosts *h, uint64_t id)
{
    rec *r = h->recs;
    while (r && r->id != id)
        r = r->next;
    return r;
}

static void unlink_rec(privsep_hosts *h, rec *r)
{
    for (rec **pp = &h->recs; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            free(r);
            return;
        }
}

/* With mu held: wait on cv until `until` (monotonic ms; 0: for ever). False once it passed. */
static bool wait_until(privsep_hosts *h, uint64_t until)
{
    if (!until) {
        pthread_cond_wait(&h->cv, &h->mu);
        return true;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000 >= until)
        return false;
    struct timespec ts = {(time_t)(until / 1000), (long)(until % 1000) * 1000000L};
    pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    return true;
}

static uint64_t deadline(int ms)
{
    if (ms < 0)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000 + (uint64_t)ms + 1;
}

/* ---- the reader thread --------------------------------------------------------------------- */

/* With mu held: the helper is gone, and with it every host it started (it kills them). */
static void helper_gone(privsep_hosts *h, const char *why)
{
    if (h->ok && !h->closing && h->log) {
        char text[SP_TEXT_MAX + 64];
        snprintf(text, sizeof(text), "the step hosts' helper died (%s): restart the daemon", why);
        h->log(0, text);
    }
    h->ok = false;
    snprintf(h->why, sizeof(h->why), "the step hosts' helper died (%s): restart the daemon", why);
    for (rec *r = h->recs; r; r = r->next) {
        if (r->state == R_PENDING) {
            r->state = R_FAILED;
            r->err = OPSC_EIO;
            snprintf(r->msg, sizeof(r->msg), "%.400s", h->why);
        } else if (r->state == R_STARTED) {
            r->state = R_EXITED;
            r->status = SIGKILL; /* as waitpid() says of a process killed by it */
        }
    }
    pthread_cond_broadcast(&h->cv);
}

/* With mu held. */
static void on_message(privsep_hosts *h, const sp_msg *m)
{
    rec *r = find(h, m->id);
    if (m->type == SP_LOG && h->log) {
        h->log(m->i32 >= 0 && m->i32 <= 3 ? m->i32 : 1, m->text);
        return;
    }
    if (!r)
        return;
    if (m->type == SP_STARTED && r->state == R_PENDING) {
        r->state = R_STARTED;
        r->pid = (pid_t)m->a;
    } else if (m->type == SP_FAILED && r->state == R_PENDING) {
        r->state = R_FAILED;
        r->err = m->i32 < 0 && m->i32 > -4096 ? m->i32 : OPSC_EIO;
        snprintf(r->msg, sizeof(r->msg), "%s", m->text);
    } else if (m->type == SP_EXITED && r->state == R_STARTED) {
        r->state = R_EXITED;
        r->status = m->i32;
    }
    pthread_cond_broadcast(&h->cv);
}

static void *reader_main(void *arg)
{
    privsep_hosts *h = arg;
    for (;;) {
        ssize_t n = recv(h->fd, h->rbuf, SP_MAX_PACKET, 0);
        if (n < 0 && errno == EINTR)
            continue;
        pthread_mutex_lock(&h->mu);
        if (n <= 0) {
            helper_gone(h, n == 0 ? "it exited" : strerror(errno));
            pthread_mutex_unlock(&h->mu);
            return NULL;
        }
        sp_msg m;
        if (sp_decode(h->rbuf, (size_t)n, &m) == 0)
            on_message(h, &m);
        pthread_mutex_unlock(&h->mu);
    }
}

/* ---- requests ------------------------------------------------------------------------------ */

static int send_packet(privsep_hosts *h, const void *pkt, size_t len, const int *fds)
{
    if (len == 0)
        return OPSC_E2BIG;
    struct iovec iov = {(void *)pkt, len};
    char ctl[CMSG_SPACE(3 * sizeof(int))];
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fds) {
        memset(ctl, 0, sizeof(ctl));
        mh.msg_control = ctl;
        mh.msg_controllen = sizeof(ctl);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(3 * sizeof(int));
        memcpy(CMSG_DATA(c), fds, 3 * sizeof(int));
    }
    pthread_mutex_lock(&h->wmu);
    ssize_t n;
    while ((n = sendmsg(h->fd, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    int rc = n < 0 ? -errno : 0;
    pthread_mutex_unlock(&h->wmu);
    return rc;
}

static void send_u32(privsep_hosts *h, uint32_t type, uint64_t id, uint32_t v)
{
    unsigned char pkt[64];
    send_packet(h, pkt, sp_encode_u32(pkt, sizeof(pkt), type, id, v), NULL);
}

/* With mu held: a thread enters a call (the helper is still there), or leaves it. */
static bool enter(privsep_hosts *h, char *err, size_t errlen)
{
    if (!h->ok) {
        snprintf(err, errlen, "%s", h->why);
        return false;
    }
    if (!h->reading && pthread_create(&h->reader, NULL, reader_main, h) != 0) {
        snprintf(err, errlen, "cannot start a thread for the step hosts' helper");
        return false;
    }
    h->reading = true;
    h->users++;
    return true;
}

static void leave(privsep_hosts *h)
{
    if (--h->users == 0)
        pthread_cond_broadcast(&h->cv);
}

int privsep_host_spawn(privsep_hosts *h, const char *const *argv, const int fds[3],
                       uint64_t *id, pid_t *pid, char *err, size_t errlen)
{
    char *const none[] = {NULL};
    if (errlen)
        err[0] = '\0';
    unsigned char *pkt = malloc(SP_MAX_PACKET);
    rec *r = calloc(1, sizeof(*r));
    pthread_mutex_lock(&h->mu);
    if (!pkt || !r || !enter(h, err, errlen)) {
        if (!pkt || !r)
            snprintf(err, errlen, "out of memory");
        pthread_mutex_unlock(&h->mu);
        free(pkt);
        free(r);
        return OPSC_EPERM;
    }
    r->id = h->next_id++;
    r->next = h->recs;
    h->recs = r;
    uint64_t my = r->id;
    pthread_mutex_unlock(&h->mu);
    size_t len = sp_encode_spawn(pkt, SP_MAX_PACKET, my, argv, (const char *const *)none, "");
    int rc = send_packet(h, pkt, len, fds);
    free(pkt);
    pthread_mutex_lock(&h->mu);
    uint64_t until = deadline(START_MS);
    while (rc == 0 && (r = find(h, my)) && r->state == R_PENDING)
        if (!wait_until(h, until)) {
            rc = OPSC_ETIMEDOUT;
            snprintf(err, errlen, "the step hosts' helper did not answer");
        }
    r = find(h, my);
    if (rc == 0 && r->state == R_FAILED) {
        rc = r->err;
        snprintf(err, errlen, "%s", r->msg);
    } else if (rc < 0 && !err[0]) {
        snprintf(err, errlen, "cannot ask the step hosts' helper: %s", opsc_strerror(rc));
    }
    if (rc == 0) {
        *id = my;
        *pid = r->pid;
    } else if (r) {
        unlink_rec(h, r);
    }
    leave(h);
    pthread_mutex_unlock(&h->mu);
    if (rc == OPSC_ETIMEDOUT)
        send_u32(h, SP_RELEASE, my, 0); /* started late: the helper kills it */
    return rc;
}

int privsep_host_signal(privsep_hosts *h, uint64_t id, int sig)
{
    char err[8];
    pthread_mutex_lock(&h->mu);
    bool in = enter(h, err, sizeof(err));
    pthread_mutex_unlock(&h->mu);
    if (!in)
        return OPSC_EPIPE;
    send_u32(h, SP_SIGNAL, id, (uint32_t)sig);
    pthread_mutex_lock(&h->mu);
    leave(h);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

int privsep_host_wait(privsep_hosts *h, uint64_t id, int ms, int *status)
{
    pthread_mutex_lock(&h->mu);
    h->users++;
    uint64_t until = deadline(ms);
    rec *r;
    while ((r = find(h, id)) && r->state == R_STARTED && wait_until(h, until))
        ;
    int done = !r || r->state != R_STARTED;
    *status = !r ? SIGKILL : r->status;
    leave(h);
    pthread_mutex_unlock(&h->mu);
    return done;
}

void privsep_host_release(privsep_hosts *h, uint64_t id)
{
    pthread_mutex_lock(&h->mu);
    rec *r = find(h, id);
    if (r)
        unlink_rec(h, r);
    bool tell = h->ok;
    h->users += tell;
    pthread_mutex_unlock(&h->mu);
    if (!tell)
        return;
    send_u32(h, SP_RELEASE, id, 0);
    pthread_mutex_lock(&h->mu);
    leave(h);
    pthread_mutex_unlock(&h->mu);
}

/* ---- the end ------------------------------------------------------------------------------- */

void privsep_hosts_close(privsep_hosts *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->closing = true;
    if (h->fd >= 0)
        shutdown(h->fd, SHUT_RDWR); /* the helper kills what it started; the reader ends */
    bool reading = h->reading;
    bool busy = h->users > 0;
    pthread_mutex_unlock(&h->mu);
    if (busy) /* a thread left behind still waits on it (the daemon is stopping anyway) */
        return;
    if (reading)
        pthread_join(h->reader, NULL);
    while (h->recs)
        unlink_rec(h, h->recs);
    if (h->fd >= 0)
        close(h->fd);
    if (h->pid > 0)
        waitpid(h->pid, NULL, WNOHANG);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->wmu);
    pthread_cond_destroy(&h->cv);
    free(h->rbuf);
    free(h);
}
