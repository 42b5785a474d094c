/* spawner.c - opsc-spawner: the daemon's privileged helper that starts local steps as the
 * local-steps user, and its loop.
 *
 * Usage (by opsconductord only): opsc-spawner --user NAME [--hide PATH]...
 * with the daemon's socket as fd 3; or, to start step hosts and nothing
 * else, opsc-spawner --stephost PATH --user NAME (spawner_host.c). It refuses to run anything as root, as
 * its own user (the daemon's) or without being able to switch; the HELLO it
 * sends first says which, so the daemon can refuse local steps with the
 * reason. When it can (root), it also gives itself, and so every local
 * step, a private /proc that hides other users' processes and covers the
 * paths the daemon names (data directory, key files, config) with empty,
 * unreadable ones. It exits when the daemon's socket closes (the daemon
 * ended, even by SIGKILL), after killing everything it started.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawner_internal.h"

#define MAX_HIDE 16

/* ---- talking to the daemon ---------------------------------------------------------- */

void sp_send(spawner *s, const void *pkt, size_t len)
{
    if (len == 0)
        return;
    while (send(s->sock, pkt, len, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
}

void sp_log(spawner *s, int level, const char *fmt, ...)
{
    char text[SP_TEXT_MAX], pkt[SP_TEXT_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    sp_send(s, pkt, sp_encode_num_text(pkt, sizeof(pkt), SP_LOG, 0, level, text));
}

/* ---- the local-steps user ----------------------------------------------------------- */

static int lookup_user(spawner *s, const char *name, char *why, size_t n)
{
    struct passwd *pw = getpwnam(name);
    if (!pw && s->stephost) {
        snprintf(why, n, "the step host user '%s' does not exist (scripts/deps creates it)", name);
        return -1;
    }
    if (!pw) {
        snprintf(why, n,
                 "the local-steps user '%s' does not exist (create it: useradd --system "
                 "--no-create-home --shell /usr/sbin/nologin %s)",
                 name, name);
        return -1;
    }
    sp_user *u = &s->user;
    snprintf(u->name, sizeof(u->name), "%s", pw->pw_name);
    struct stat st;
    snprintf(u->home, sizeof(u->home), "%s",
             pw->pw_dir && stat(pw->pw_dir, &st) == 0 && S_ISDIR(st.st_mode) ? pw->pw_dir : "/");
    u->uid = pw->pw_uid;
    u->gid = pw->pw_gid;
    u->ngroups = (int)(sizeof(u->groups) / sizeof(u->groups[0]));
    if (getgrouplist(pw->pw_name, pw->pw_gid, u->groups, &u->ngroups) < 0)
        u->ngroups = 0;
    if (u->uid == 0 || u->gid == 0) {
        snprintf(why, n, "the local-steps user '%s' is root or in group root", name);
        return -1;
    }
    if (u->uid == getuid()) {
        snprintf(why, n,
                 "the local-steps user '%s' is the daemon's own user: local steps would "
                 "read its keys",
                 name);
        return -1;
    }
    return 0;
}

/* Switching is tried for real in a throw-away child: capabilities alone do
 * not say whether setgroups() is allowed (user namespaces, seccomp). */
static int probe_switch(spawner *s, char *why, size_t n)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(sp_drop_to(&s->user) == 0 ? 0 : 1);
    int st = 0;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    snprintf(why, n,
             "the daemon cannot switch to the local-steps user '%s': start it as root "
             "(with [server] user) or give it CAP_SETUID and CAP_SETGID",
             s->user.name);
    return -1;
}

/* ---- a private view of the system for local steps ------------------------------------- */

static bool kernel_has_private_proc(void)
{
    struct utsname u;
    int major = 0, minor = 0;
    /* Before 5.8 every proc mount of a pid namespace shared its options:
     * hidepid here would have changed the whole machine's /proc. */
    return uname(&u) == 0 && sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
           (major > 5 || (major == 5 && minor >= 8));
}

/* Cover a file with an empty mode-000 file from a tmpfs only this namespace sees. */
static int cover_file(const char *path, const char *blank)
{
    return mount(blank, path, NULL, MS_BIND, NULL);
}

static int cover_dir(const char *path)
{
    return mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 "size=4k,nr_inodes=2,mode=000");
}

static int make_blank(char dir[64], char blank[80])
{
    snprintf(dir, 64, "/tmp/opsc-spawner-XXXXXX");
    if (!mkdtemp(dir) || mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                               "size=4k,nr_inodes=4,mode=700") < 0)
        return -1;
    snprintf(blank, 80, "%s/blank", dir);
    int fd = open(blank, O_CREAT | O_WRONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static unsigned hide_paths(spawner *s, char **hide, int nhide)
{
    char dir[64] = "", blank[80];
    int covered = 0;
    for (int i = 0; i < nhide; i++) {
        struct stat st;
        if (stat(hide[i], &st) < 0)
            continue;
        int rc;
        if (S_ISDIR(st.st_mode))
            rc = cover_dir(hide[i]);
        else if (!dir[0] && make_blank(dir, blank) < 0)
            rc = -1;
        else
            rc = cover_file(hide[i], blank);
        if (rc < 0)
            sp_log(s, 1, "cannot hide %s from local steps: %s", hide[i], strerror(errno));
        else
            covered++;
    }
    if (dir[0]) { /* the bind mounts keep the blank file; its directory goes */
        umount2(dir, MNT_DETACH);
        rmdir(dir);
    }
    return covered == nhide ? SP_HELLO_HIDDEN_PATHS : 0;
}

static unsigned private_view(spawner *s, char **hide, int nhide, char *note, size_t n)
{
    if (geteuid() != 0) {
        snprintf(note, n,
                 "not root: local steps see the system's /proc (file permissions and "
                 "the daemon's non-dumpable state protect it)");
        return 0;
    }
    if (!kernel_has_private_proc() || unshare(CLONE_NEWNS) < 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        snprintf(note, n, "no private mount namespace for local steps (%s)", strerror(errno));
        return 0;
    }
    unsigned flags = 0;
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible") ==
            0 ||
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2") == 0)
        flags |= SP_HELLO_PRIVATE_PROC;
    else
        snprintf(note, n, "cannot mount a private /proc for local steps: %s", strerror(errno));
    return flags | hide_paths(s, hide, nhide);
}

/* ---- start-up --------------------------------------------------------------------------- */

static void read_boot_id(spawner *s)
{
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, s->boot_id, sizeof(s->boot_id) - 1) : -1;
    if (fd >= 0)
        close(fd);
    s->boot_id[n > 0 ? n : 0] = '\0';
    s->boot_id[strcspn(s->boot_id, "\n")] = '\0';
}

static int setup_signals(spawner *s)
{
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN); /* a terminal's ^C is the daemon's to handle */
    signal(SIGHUP, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    s->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    return s->sigfd < 0 ? -1 : 0;
}

static void hello(spawner *s, const char *user, char **hide, int nhide)
{
    char why[SP_TEXT_MAX] = "", note[SP_TEXT_MAX] = "";
    unsigned flags = 0;
    s->can_switch =
        lookup_user(s, user, why, sizeof(why)) == 0 && probe_switch(s, why, sizeof(why)) == 0;
    if (s->can_switch)
        flags = private_view(s, hide, nhide, note, sizeof(note));
    char pkt[2048];
    sp_send(s, pkt,
            sp_encode_hello(pkt, sizeof(pkt), s->can_switch, s->user.uid, s->user.gid, flags,
                            s->user.name[0] ? s->user.name : user, s->boot_id,
                            s->can_switch ? note : why));
}

/* ---- the loop ---------------------------------------------------------------------------- */

static void close_fds(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* One packet from the daemon: 0 to go on, -1 when the daemon is gone. */
static int on_packet(spawner *s)
{
    char ctl[CMSG_SPACE(8 * sizeof(int))];
    struct iovec iov = {s->buf, SP_MAX_PACKET};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
    ssize_t n = recvmsg(s->sock, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : -1;
    if (n == 0)
        return -1;
    int fds[8], nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < k && nfds < 8; i++)
                memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        }
    sp_msg m;
    bool ok = !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && sp_decode(s->buf, (size_t)n, &m) == 0 &&
              (m.type == SP_SPAWN ? nfds == 3 : nfds == 0);
    if (!ok) {
        close_fds(fds, nfds);
        sp_log(s, 0, "refused a malformed request from the daemon");
        return 0;
    }
    if (m.type == SP_SPAWN)
        sp_spawn(s, &m, fds);
    else if (m.type == SP_SIGNAL)
        sp_signal(s, m.id, (int)m.u32);
    else if (m.type == SP_RELEASE)
        sp_release(s, m.id);
    else if (m.type == SP_ORPHAN)
        sp_orphan(s, &m);
    return 0;
}

/* SIGTERM does not end us: a service stop sends it to the daemon and to us at once, and the
 * daemon still needs us while it stops its runs. We end when the daemon's end of our socket
 * closes (its stop, or its death), killing what we started. */
static void on_signals(spawner *s)
{
    struct signalfd_siginfo si;
    while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        ;
    sp_reap(s);
}

static void run(spawner *s)
{
    struct pollfd *pfd = NULL;
    size_t cap = 0;
    for (;;) {
        size_t n = 2;
        for (size_t i = 0; i < s->nprocs; i++)
            n += s->procs[i].status_fd >= 0;
        if (n > cap) {
            struct pollfd *v = realloc(pfd, n * 2 * sizeof(*v));
            if (!v)
                break;
            pfd = v;
            cap = n * 2;
        }
        pfd[0] = (struct pollfd){s->sock, POLLIN, 0};
        pfd[1] = (struct pollfd){s->sigfd, POLLIN, 0};
        size_t k = 2;
        for (size_t i = 0; i < s->nprocs; i++)
            if (s->procs[i].status_fd >= 0)
                pfd[k++] = (struct pollfd){s->procs[i].status_fd, POLLIN, 0};
        if (poll(pfd, k, -1) < 0 && errno != EINTR)
            break;
        if (pfd[1].revents)
            on_signals(s);
        for (size_t i = 2; i < k; i++) {
            if (!pfd[i].revents)
                continue;
            for (size_t j = 0; j < s->nprocs; j++)
                if (s->procs[j].status_fd == pfd[i].fd) {
                    sp_status_ready(s, &s->procs[j]);
                    break;
                }
        }
        if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && on_packet(s) < 0)
            break;
    }
    free(pfd);
}

int main(int argc, char **argv)
{
    spawner s = {.sock = 3, .sigfd = -1, .self = getpid()};
    const char *user = NULL;
    char *hide[MAX_HIDE];
    int nhide = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--user") == 0)
            user = argv[i + 1];
        else if (strcmp(argv[i], "--stephost") == 0)
            s.stephost = argv[i + 1];
        else if (strcmp(argv[i], "--hide") == 0 && nhide < MAX_HIDE && argv[i + 1][0] == '/')
            hide[nhide++] = argv[i + 1];
    }
    int type = 0;
    socklen_t tl = sizeof(type);
    if (s.stephost && s.stephost[0] != '/') { /* never fall back to starting anything */
        fprintf(stderr, "opsc-spawner: --stephost needs an absolute path\n");
        return 2;
    }
    if (!user || getsockopt(s.sock, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
        type != SOCK_SEQPACKET) {
        fprintf(stderr, "opsc-spawner: started by opsconductord only (a socket as fd 3)\n");
        return 2;
    }
    fcntl(s.sock, F_SETFD, FD_CLOEXEC);
    setsid();
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); /* orphans of local steps come back to us */
#ifndef __SANITIZE_ADDRESS__
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* nobody of the same user may ptrace us (LeakSanitizer
                                           must, in the sanitizer build) */
#endif
    s.buf = malloc(SP_MAX_PACKET);
    if (!s.buf || setup_signals(&s) < 0)
        return 1;
    read_boot_id(&s);
    hello(&s, user, hide, nhide);
    run(&s);
    sp_kill_everything(&s);
    free(s.buf);
    free(s.procs);
    return 0;
}
