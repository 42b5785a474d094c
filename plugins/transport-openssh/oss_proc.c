/* oss_proc.c - child processes and files of the runtime directory, for masters and agents. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oss_internal.h"

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

/* Sockets live in the runtime dir; when its path is too long for sun_path, the same directory
 * is reached through our descriptor of it. */
int oss_sockpath(oss_plugin *p, const char *name, char *buf, size_t len)
{
    size_t cap = len < 108 ? len : 108;
    int n = snprintf(buf, cap, "%s/%s", p->rundir, name);
    if (n > 0 && (size_t)n < cap)
        return 0;
    n = snprintf(buf, cap, "/proc/self/fd/%d/%s", p->rundir_fd, name);
    return n > 0 && (size_t)n < cap ? 0 : OPSC_ERANGE;
}

void oss_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h, (void)suggested;
    static char chunk[65536]; /* each read is delivered before the next one */
    *buf = uv_buf_init(chunk, sizeof(chunk));
}

/* posix_spawn (vfork-like: no copy of the daemon's page tables, the loop waits only until the
 * child execs) and a pidfd polled on the loop for its exit. uv_spawn forks the whole daemon and
 * then waits for the child to exec: a job on 200 targets held the loop for seconds that way. */
static int child_stdio(posix_spawn_file_actions_t *fa, uv_stdio_container_t *stdio, int ours[3],
                       int theirs_out[3])
{
    for (int i = 0; i < 3; i++) {
        ours[i] = theirs_out[i] = -1;
        if (!(stdio[i].flags & UV_CREATE_PIPE)) {
            posix_spawn_file_actions_addopen(fa, i, "/dev/null", i ? O_WRONLY : O_RDONLY, 0);
            continue;
        }
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0)
            return -errno;
        bool child_reads = stdio[i].flags & UV_READABLE_PIPE;
        ours[i] = child_reads ? fds[1] : fds[0];
        int theirs = child_reads ? fds[0] : fds[1];
        posix_spawn_file_actions_adddup2(fa, theirs, i); /* dup2 clears close-on-exec */
        posix_spawn_file_actions_addclose(fa, theirs);
        theirs_out[i] = theirs; /* ours to close once the child has its copy */
    }
    return 0;
}

static void on_pidfd(uv_poll_t *h, int status, int events)
{
    (void)status, (void)events;
    oss_child *c = h->data;
    siginfo_t si = {0};
    if (waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
        return;
    uv_poll_stop(h);
    int64_t st = si.si_code == CLD_EXITED ? si.si_status : 0;
    int sig = si.si_code == CLD_EXITED ? 0 : si.si_status;
    c->exit_cb(c, st, sig);
}

int oss_spawn(oss_plugin *p, oss_child *c, char **argv, char **env, uv_stdio_container_t *stdio,
              oss_exit_cb exit_cb)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    /* Its own session (a terminal's Ctrl-C reaches the daemon, which closes masters itself),
     * default signal handling and nothing blocked, as after a login. */
    posix_spawnattr_setflags(&attr,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawn_file_actions_addchdir_np(&fa, p->rundir);
    int ours[3], theirs[3];
    int rc = child_stdio(&fa, stdio, ours, theirs);
    pid_t pid = -1;
    if (rc == 0)
        rc = -posix_spawn(&pid, argv[0], &fa, &attr, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    for (int i = 0; i < 3; i++)
        if (theirs[i] >= 0)
            close(theirs[i]);
    int pidfd = rc == 0 ? pidfd_open(pid, 0) : -1;
    if (rc == 0 && pidfd < 0) {
        rc = -errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    for (int i = 0; i < 3; i++) {
        if (ours[i] < 0)
            continue;
        if (rc == 0 && uv_pipe_open((uv_pipe_t *)stdio[i].data.stream, ours[i]) == 0)
            continue;
        close(ours[i]);
    }
    if (rc < 0)
        return rc;
    c->pid = pid;
    c->pidfd = pidfd;
    c->exit_cb = exit_cb;
    c->spawned = true;
    uv_poll_init(p->loop, &c->poll, pidfd);
    c->poll.data = c;
    uv_poll_start(&c->poll, UV_READABLE, on_pidfd);
    return 0;
}

/* The child is reaped: close its poll handle (`close_cb` runs once it is closed). */
void oss_child_exited(oss_child *c, int64_t status, int sig, uv_close_cb close_cb)
{
    c->exited = true;
    c->status = status;
    c->term_signal = sig;
    if (!c->closed) {
        c->closed = true;
        c->poll.data = c->data; /* close callbacks count the owner's handles */
        uv_close((uv_handle_t *)&c->poll, close_cb);
        close(c->pidfd);
        c->pidfd = -1;
    }
}

void oss_child_kill(oss_child *c, int sig)
{
    if (c->spawned && !c->exited)
        pidfd_send_signal(c->pidfd, sig, NULL, 0);
}

void oss_waiters_drop(oss_plugin *p, oss_waiter **list, void *ud)
{
    for (oss_waiter **pp = list; *pp;) {
        oss_waiter *w = *pp;
        if (w->ud == ud) {
            *pp = w->next;
            p->api->free(w);
        } else {
            pp = &w->next;
        }
    }
}
