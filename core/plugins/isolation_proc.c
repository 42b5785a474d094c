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
    iso_child_signal(p->lib->iso, &p->child, sig);
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
    iso_child_wait(l->iso, &p->child, true, &status);
    iso_child_release(l->iso, &p->child);
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

/* The program, its arguments and the policy's: the user, the memory limit. */
static void host_argv(const isolation *iso, const char *const *args, const char **argv,
                      char limit[32])
{
    size_t n = 0;
    argv[n++] = iso->stephost;
    for (size_t i = 0; args[i] && n < 10; i++)
        argv[n++] = args[i];
    snprintf(limit, 32, "%lld", (long long)iso->o.memory_limit);
    argv[n++] = "--memory-limit";
    argv[n++] = limit;
    if (!iso->hosts) { /* the helper names the user itself */
        argv[n++] = "--user";
        argv[n++] = iso->user;
    }
    argv[n] = NULL;
}

static int spawn_direct(const isolation *iso, const char **argv, const int stdio[3], int host,
                        pid_t *pid)
{
    char *const env[] = {NULL}; /* never the daemon's: it may hold the master key */
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    for (int i = 0; i < 3; i++)
        if (stdio[i] >= 0)
            posix_spawn_file_actions_adddup2(&fa, stdio[i], i);
        else if (i < 2)
            posix_spawn_file_actions_addopen(&fa, i, "/dev/null", i ? O_WRONLY : O_RDONLY, 0);
    if (host >= 0)
        posix_spawn_file_actions_adddup2(&fa, host, SHP_HOST_FD);
    posix_spawn_file_actions_addclosefrom_np(&fa, host >= 0 ? SHP_HOST_FD + 1 : 3);
    posix_spawnattr_init(&at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    /* Its own process group, so that everything it starts ends with it; and
     * none of the calling thread's blocked signals. */
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    int rc = posix_spawn(pid, iso->stephost, &fa, &at, (char *const *)argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return -rc;
}

/* Through the helper: it takes three descriptors, the third the host's socket for --library. */
static int spawn_helper(const isolation *iso, const char **argv, const int stdio[3], int host,
                        iso_child *c, char *err, size_t errlen)
{
    int null = -1;
    if ((stdio[0] < 0 || stdio[1] < 0) && (null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "/dev/null: %s", strerror(errno));
        return -errno;
    }
    int fds[3] = {stdio[0] >= 0 ? stdio[0] : null, stdio[1] >= 0 ? stdio[1] : null,
                  host >= 0 ? host : stdio[2] >= 0 ? stdio[2] : STDERR_FILENO};
    int rc = privsep_host_spawn(iso->hosts, argv, fds, &c->sid, &c->pid, err, errlen);
    if (null >= 0)
        close(null);
    return rc;
}

int iso_spawn(const isolation *iso, const char *const *args, const int stdio[3], int host,
              iso_child *c, char *err, size_t errlen)
{
    const char *argv[16];
    char limit[32];
    host_argv(iso, args, argv, limit);
    *c = (iso_child){-1, 0};
    if (iso->hosts)
        return spawn_helper(iso, argv, stdio, host, c, err, errlen);
    int rc = spawn_direct(iso, argv, stdio, host, &c->pid);
    if (rc < 0)
        snprintf(err, errlen, "%s", strerror(-rc));
    return rc;
}

void iso_child_signal(const isolation *iso, const iso_child *c, int sig)
{
    if (c->sid)
        privsep_host_signal(iso->hosts, c->sid, sig);
    else if (c->pid > 1)
        kill(-c->pid, sig);
}

bool iso_child_wait(const isolation *iso, const iso_child *c, bool block, int *status)
{
    if (c->sid)
        return privsep_host_wait(iso->hosts, c->sid, block ? -1 : 0, status) == 1;
    pid_t r;
    while ((r = waitpid(c->pid, status, block ? 0 : WNOHANG)) < 0 && errno == EINTR)
        ;
    return r == c->pid || r < 0;
}

void iso_child_release(const isolation *iso, iso_child *c)
{
    if (c->sid)
        privsep_host_release(iso->hosts, c->sid);
    c->sid = 0;
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

/* A host that never served: killed and waited for. */
static void bury(iso_proc *p)
{
    int status;
    iso_child_signal(p->lib->iso, &p->child, SIGKILL);
    iso_child_wait(p->lib->iso, &p->child, true, &status);
    iso_child_release(p->lib->iso, &p->child);
}

static iso_proc *start(iso_lib *l, char *why, size_t whylen)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(why, whylen, "socketpair: %s", strerror(errno));
        return NULL;
    }
    iso_proc *p = calloc(1, sizeof(*p));
    const char *args[] = {"--library", l->path, NULL};
    const int stdio[3] = {-1, -1, -1};
    char bad[200] = "out of memory";
    int rc = p ? iso_spawn(l->iso, args, stdio, sv[1], &p->child, bad, sizeof(bad)) : OPSC_ENOMEM;
    close(sv[1]);
    if (rc < 0) {
        snprintf(why, whylen, "the step host of %s %s did not start: %s", l->name, l->version,
                 bad);
        close(sv[0]);
        free(p);
        return NULL;
    }
    pid_t pid = p->child.pid;
    p->lib = l;
    p->fd = sv[0];
    p->refs = 1; /* the caller's */
    p->next_id = 1;
    p->last_heard = clock_mono_ms();
    pthread_mutex_init(&p->wmu, NULL);
    cond_init_monotonic(&p->rcv);
    l->starts++;
    l->last_pid = pid;
    bad[0] = '\0';
    if (hello(p, bad, sizeof(bad)) < 0) {
        bury(p);
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
        bury(p);
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
