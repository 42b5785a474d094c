/* isolation_proc.c - opsc-stephost processes: starting one (socketpair, empty environment,
 * HELLO both ways), reading its frames on a thread of its own, noticing its death (end of stream,
 * then waitpid) or its silence (heartbeat), counting crashes toward a quarantine. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "isolation_internal.h"
#include "log.h"
#include "util.h"

#define HELLO_TIMEOUT_MS 10000
#define MAX_QUEUED       (64u << 20) /* bytes a host may send ahead of what was read */
#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   5000

void iso_msg_free(iso_msg *m)
{
    if (!m)
        return;
    json_decref(m->json);
    free(m->data);
    free(m);
}

const char *iso_signame(int sig)
{
    static __thread char buf[24];
    const char *name = sigabbrev_np(sig);
    if (name)
        snprintf(buf, sizeof(buf), "SIG%s", name);
    else
        snprintf(buf, sizeof(buf), "signal %d", sig);
    return buf;
}

int iso_proc_send(iso_proc *p, uint32_t id, json_t *msg, const void *data, size_t len)
{
    pthread_mutex_lock(&p->wmu);
    int rc = msg ? shp_send_json(p->fd, SHP_JSON, id, msg) : 0;
    if (rc == 0 && data)
        rc = shp_send(p->fd, SHP_DATA, id, data, len);
    pthread_mutex_unlock(&p->wmu);
    json_decref(msg);
    return rc;
}

void iso_proc_kill(iso_proc *p, int sig, const char *why)
{
    if (p->dead)
        return;
    if (why && !p->why[0])
        snprintf(p->why, sizeof(p->why), "%s", why);
    kill(p->pid, sig);
}

static void proc_free(iso_proc *p)
{
    close(p->fd);
    shp_reader_free(&p->rd);
    pthread_mutex_destroy(&p->wmu);
    pthread_cond_destroy(&p->rcv);
    free(p);
}

void iso_proc_release(iso_proc *p)
{
    if (--p->refs == 0)
        proc_free(p);
}

/* ---- a crash ---------------------------------------------------------------------------------
 */

static void describe_end(iso_proc *p, int status)
{
    char what[120];
    if (WIFSIGNALED(status))
        snprintf(what, sizeof(what), "crashed (%s)", iso_signame(WTERMSIG(status)));
    else
        snprintf(what, sizeof(what), "exited (status %d)", WEXITSTATUS(status));
    if (!p->why[0])
        snprintf(p->why, sizeof(p->why), "%s", what);
}

/* With lib->mu held. */
static void count_crash(iso_lib *l, const char *why)
{
    uint64_t now = clock_mono_ms();
    l->crash_ms[l->ncrash % ISO_CRASHES] = now;
    l->ncrash++;
    int recent = 0;
    for (int i = 0; i < ISO_CRASHES && i < l->ncrash; i++)
        recent += now - l->crash_ms[i] <= ISO_CRASH_WINDOW;
    uint64_t backoff = BACKOFF_MIN_MS << (recent > 6 ? 6 : recent - 1);
    l->not_before = now + (backoff > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff);
    log_warn("steplibs", "step host of %s %s (pid %d) %s", l->name, l->version, (int)l->last_pid,
             why);
    if (recent >= ISO_CRASHES && !l->quarantined) {
        l->quarantined = true;
        snprintf(l->reason, sizeof(l->reason),
                 "%s %s is quarantined: its step host crashed %d times in %d s (last: %s); an "
                 "admin can re-enable it",
                 l->name, l->version, recent, ISO_CRASH_WINDOW / 1000, why);
        log_error("steplibs", "%s", l->reason);
        l->untold = true;
        uv_async_send(l->iso->wake);
    }
}

/* ---- the reader thread ----------------------------------------------------------------------- */

static iso_call *find_call(iso_proc *p, uint32_t id)
{
    iso_call *c = p->calls;
    while (c && c->id != id)
        c = c->next;
    return c;
}

/* With lib->mu held. False: the host broke the protocol. */
static bool dispatch(iso_proc *p, const shp_frame *f)
{
    if (f->type == SHP_HELLO)
        return false; /* said once, before the reader started */
    json_t *msg = f->type == SHP_JSON ? shp_json(f) : NULL;
    if (f->type == SHP_JSON && !msg)
        return false;
    const char *op = json_string_value(json_object_get(msg, "op"));
    if (f->id == 0) {
        const char *text = json_string_value(json_object_get(msg, "msg"));
        /* The library's own log lines, never above a warning: it does not get to raise alarms. */
        if (op && strcmp(op, "log") == 0 && text)
            log_msg("steplibs",
                    json_integer_value(json_object_get(msg, "level")) > OPSC_LOG_WARN
                        ? OPSC_LOG_INFO
                        : OPSC_LOG_WARN,
                    "%s %s: %s", p->lib->name, p->lib->version, text);
        bool known = !msg || (op && (strcmp(op, "log") == 0 || strcmp(op, "pong") == 0));
        json_decref(msg);
        return known;
    }
    iso_call *c = find_call(p, f->id);
    if (!c) { /* a step that ended: nothing waits for it */
        json_decref(msg);
        return true;
    }
    iso_msg *m = calloc(1, sizeof(*m));
    if (!m || (!msg && !(m->data = malloc(f->len + 1)))) {
        free(m);
        json_decref(msg);
        return false;
    }
    m->json = msg;
    if (!msg) {
        memcpy(m->data, f->payload, f->len);
        m->data[f->len] = '\0';
    }
    m->len = f->len;
    p->queued += f->len;
    if (p->queued > MAX_QUEUED) {
        iso_msg_free(m);
        return false;
    }
    if (c->tail)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
    pthread_cond_broadcast(&c->cv);
    return true;
}

/* ---- who reads ------------------------------------------------------------------------------ */

/* With lib->mu held: wait on `cv` until `until` (monotonic ms) at the latest. */
static void wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t until)
{
    struct timespec ts = {(time_t)(until / 1000), (long)(until % 1000) * 1000000L};
    pthread_cond_timedwait(cv, mu, &ts);
}

/* With lib->mu held and the read side taken: read what the host sends within
 * `ms` (a step: spinning first, shproto.h) and hand each frame to its step,
 * lib->mu dropped while it waits. An end of stream or a broken frame sets eof. */
static void read_some(iso_proc *p, int ms, shp_spin *spin)
{
    iso_lib *l = p->lib;
    pthread_mutex_unlock(&l->mu);
    int n = shp_poll(p->fd, ms, spin);
    int rc = n > 0 ? shp_fill(&p->rd, p->fd) : n < 0 && errno != EINTR ? -errno : 1;
    pthread_mutex_lock(&l->mu);
    if (rc <= 0) { /* it died, or closed it */
        p->eof = true;
        return;
    }
    if (n <= 0)
        return;
    shp_frame f;
    p->last_heard = clock_mono_ms();
    while ((rc = shp_next(&p->rd, &f)) == 1)
        if (!dispatch(p, &f))
            break;
    if (rc != 0) {
        iso_proc_kill(p, SIGKILL, "broke the step host protocol");
        p->eof = true;
    }
}

/* With lib->mu held: give the read side back; the steps waiting behind it
 * compete for it, and an end of stream goes to the reader thread. */
static void let_go(iso_proc *p, bool step)
{
    p->reading = false;
    if (step)
        p->idle_since = clock_mono_ms();
    for (iso_call *c = p->calls; c; c = c->next)
        if (c->waiting && !c->head)
            pthread_cond_signal(&c->cv);
    if (p->eof)
        pthread_cond_signal(&p->rcv);
}

void iso_proc_wait(iso_call *c, int ms)
{
    iso_proc *p = c->proc;
    uint64_t until = clock_mono_ms() + (uint64_t)ms;
    while (!c->head && !p->dead) {
        uint64_t now = clock_mono_ms();
        if (now >= until)
            return;
        if (!p->reading && !p->eof) {
            p->reading = true;
            read_some(p, (int)(until - now), &c->spin);
            let_go(p, true);
            continue;
        }
        c->waiting = true;
        p->waiters++;
        wait_until(&c->cv, &p->lib->mu, until);
        p->waiters--;
        c->waiting = false;
    }
}

static void ping(iso_proc *p)
{
    /* A writer stuck on a host that reads nothing holds wmu: no ping then,
     * and the silence is counted all the same. */
    if (pthread_mutex_trylock(&p->wmu) != 0)
        return;
    json_t *msg = json_pack("{s:s}", "op", "ping");
    shp_send_json(p->fd, SHP_JSON, 0, msg);
    json_decref(msg);
    pthread_mutex_unlock(&p->wmu);
}

/* The reader thread, until the stream ends: reads when no step has for
 * ISO_READ_IDLE_MS, pings a quiet host, kills a silent one. */
static void watch(iso_proc *p)
{
    iso_lib *l = p->lib;
    uint64_t hb = l->iso->o.heartbeat_ms > 0 ? (uint64_t)l->iso->o.heartbeat_ms : 5000;
    pthread_mutex_lock(&l->mu);
    while (!p->eof) {
        uint64_t now = clock_mono_ms();
        if (now - p->last_heard >= 3 * hb) {
            iso_proc_kill(p, SIGKILL, "stopped answering its heartbeat");
            break;
        }
        if (now - p->last_heard >= hb && now - p->last_ping >= hb) {
            p->last_ping = now;
            pthread_mutex_unlock(&l->mu);
            ping(p);
            pthread_mutex_lock(&l->mu);
            continue;
        }
        bool idle = !p->reading && p->waiters == 0;
        if (idle && now >= p->idle_since + ISO_READ_IDLE_MS) {
            p->reading = true;
            read_some(p, (int)hb, NULL);
            let_go(p, false);
            continue;
        }
        /* A step reads: look again soon, in case it stops without a word.
         * Not at once: what only this thread would read (a pong, the
         * library's log, an end of stream nobody waits for) can wait. */
        wait_until(&p->rcv, &l->mu,
                   idle ? p->idle_since + ISO_READ_IDLE_MS : now + ISO_READ_LOOK_MS);
    }
    pthread_mutex_unlock(&l->mu);
}

static void *reader_main(void *arg)
{
    iso_proc *p = arg;
    iso_lib *l = p->lib;
    watch(p);
    shutdown(p->fd, SHUT_RDWR);
    int status = 0;
    while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&l->mu);
    describe_end(p, status);
    p->dead = true;
    if (!p->ours)
        count_crash(l, p->why);
    if (l->proc == p) {
        l->proc = NULL;
        iso_proc_release(p); /* the library's reference */
    }
    for (iso_call *c = p->calls; c; c = c->next)
        pthread_cond_broadcast(&c->cv);
    l->readers--;
    pthread_cond_broadcast(&l->cv);
    iso_proc_release(p); /* the reader's */
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- starting one ---------------------------------------------------------------------------- */

int iso_spawn(const isolation *iso, const char *mode, const char *path, int fd, int as_fd,
              pid_t *pid)
{
    char limit[32];
    snprintf(limit, sizeof(limit), "%lld", (long long)iso->o.memory_limit);
    char *const argv[] = {(char *)iso->stephost, (char *)mode, (char *)path, "--user", iso->user,
                          "--memory-limit",      limit,        NULL};
    char *const env[] = {NULL}; /* never the daemon's: it may hold the master key */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, as_fd);
    if (as_fd != 0)
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (as_fd != 1)
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&fa, as_fd > 2 ? as_fd + 1 : 3);
    int rc = posix_spawn(pid, iso->stephost, &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    return -rc;
}

/* The host's HELLO: 0, or why it cannot serve. */
static int hello(iso_proc *p, char *why, size_t whylen)
{
    struct pollfd pfd = {p->fd, POLLIN, 0};
    uint64_t until = clock_mono_ms() + HELLO_TIMEOUT_MS;
    shp_frame f;
    int rc;
    while ((rc = shp_next(&p->rd, &f)) == 0) {
        uint64_t now = clock_mono_ms();
        if (now >= until || poll(&pfd, 1, (int)(until - now)) == 0) {
            snprintf(why, whylen, "did not say hello within %d s", HELLO_TIMEOUT_MS / 1000);
            return OPSC_ETIMEDOUT;
        }
        if ((rc = shp_fill(&p->rd, p->fd)) <= 0) {
            snprintf(why, whylen, "ended before it said hello");
            return OPSC_EIO;
        }
    }
    json_t *msg = rc == 1 && f.type == SHP_HELLO ? shp_json(&f) : NULL;
    json_t *versions = json_object_get(msg, "versions");
    const char *error = json_string_value(json_object_get(msg, "error"));
    size_t i;
    json_t *v;
    bool speaks = false;
    json_array_foreach(versions, i, v) speaks |= json_integer_value(v) == SHP_VERSION;
    if (!msg || !speaks || error)
        snprintf(why, whylen, "%s%s", error ? "did not start: " : "",
                 error ? error : "does not speak protocol version 1");
    json_decref(msg);
    if (why[0])
        return OPSC_EPROTO;
    json_t *agreed = json_pack("{s:i}", "version", SHP_VERSION);
    rc = shp_send_json(p->fd, SHP_HELLO, 0, agreed);
    json_decref(agreed);
    return rc == 0 ? 0 : OPSC_EIO;
}

static iso_proc *start(iso_lib *l, char *why, size_t whylen)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(why, whylen, "socketpair: %s", strerror(errno));
        return NULL;
    }
    iso_proc *p = calloc(1, sizeof(*p));
    pid_t pid = -1;
    int rc = p ? iso_spawn(l->iso, "--library", l->path, sv[1], SHP_HOST_FD, &pid) : OPSC_ENOMEM;
    close(sv[1]);
    if (rc < 0) {
        snprintf(why, whylen, "the step host %s did not start: %s", l->iso->stephost,
                 strerror(-rc));
        close(sv[0]);
        free(p);
        return NULL;
    }
    p->lib = l;
    p->pid = pid;
    p->fd = sv[0];
    p->refs = 1; /* the caller's */
    p->next_id = 1;
    p->last_heard = clock_mono_ms();
    pthread_mutex_init(&p->wmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->rcv, &ca);
    pthread_condattr_destroy(&ca);
    l->starts++;
    l->last_pid = pid;
    char bad[200] = "";
    if (hello(p, bad, sizeof(bad)) < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        snprintf(why, whylen, "the step host of %s %s %s", l->name, l->version, bad);
        count_crash(l, bad);
        proc_free(p);
        return NULL;
    }
    p->refs += 2; /* the reader's and the library's */
    l->readers++;
    pthread_t th;
    if (pthread_create(&th, NULL, reader_main, p) != 0) {
        l->readers--;
        p->refs -= 2;
        p->ours = true;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        snprintf(why, whylen, "cannot start a thread for the step host");
        iso_proc_release(p);
        return NULL;
    }
    pthread_detach(th);
    l->proc = p;
    log_info("steplibs", "step host of %s %s started (pid %d)", l->name, l->version, (int)pid);
    return p;
}

iso_proc *iso_proc_get(iso_lib *l, char *why, size_t whylen)
{
    if (l->quarantined) {
        snprintf(why, whylen, "%s", l->reason);
        return NULL;
    }
    if (l->proc && !l->proc->dead) {
        l->proc->refs++;
        return l->proc;
    }
    uint64_t now = clock_mono_ms();
    if (now < l->not_before) { /* back-off after a crash */
        pthread_mutex_unlock(&l->mu);
        usleep((useconds_t)(l->not_before - now) * 1000);
        pthread_mutex_lock(&l->mu);
        if (l->proc && !l->proc->dead) {
            l->proc->refs++;
            return l->proc;
        }
    }
    return start(l, why, whylen);
}
