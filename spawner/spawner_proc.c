/* spawner_proc.c - opsc-spawner's processes: fork and exec as the local-steps user, status,
 * reaping, signals, orphans of a previous daemon, and killing everything at the end. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spawner_internal.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---- records ----------------------------------------------------------------------------- */

static sp_proc *find(spawner *s, uint64_t id)
{
    for (size_t i = 0; i < s->nprocs; i++)
        if (s->procs[i].id == id)
            return &s->procs[i];
    return NULL;
}

static void drop(spawner *s, sp_proc *p)
{
    if (p->status_fd >= 0)
        close(p->status_fd);
    *p = s->procs[--s->nprocs];
}

static sp_proc *add(spawner *s, uint64_t id)
{
    if (s->nprocs == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        sp_proc *v = realloc(s->procs, cap * sizeof(*v));
        if (!v)
            return NULL;
        s->procs = v;
        s->cap = cap;
    }
    sp_proc *p = &s->procs[s->nprocs++];
    memset(p, 0, sizeof(*p));
    p->id = id;
    p->status_fd = -1;
    return p;
}

static void answer_failed(spawner *s, uint64_t id, int err, const char *what)
{
    char pkt[SP_TEXT_MAX + 64], text[SP_TEXT_MAX];
    snprintf(text, sizeof(text), "%s: %s", what, strerror(err));
    sp_send(s, pkt, sp_encode_num_text(pkt, sizeof(pkt), SP_FAILED, id, -err, text));
}

uint64_t sp_proc_start(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    unsigned long long start = 0;
    /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
     * stime cutime cstime priority nice threads itrealvalue starttime(22) */
    if (!p || sscanf(p + 1,
                     " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
                     "%*d %*d %llu",
                     &start) != 1)
        return 0;
    return start;
}

/* ---- the child -------------------------------------------------------------------------- */

/* The status pipe carries the start time (8 bytes) once known, then, when
 * something fails, the errno (4 bytes); end of file after 8 means exec worked. */
static bool start_written;

static void child_fail(int fd, int err)
{
    uint64_t none = 0;
    int32_t e = err;
    if (!start_written)
        (void)!write(fd, &none, sizeof(none));
    (void)!write(fd, &e, sizeof(e));
    _exit(127);
}

/* Every capability set emptied. A switch away from root clears them by
 * itself; a switch between two other users (the helper started with
 * ambient CAP_SETUID and CAP_SETGID) keeps them, and the command would get
 * them back at exec. */
static int drop_capabilities(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 ||
        syscall(SYS_capset, &h, d) < 0 || syscall(SYS_capget, &h, d) < 0)
        return -1;
    unsigned left = d[0].permitted | d[0].effective | d[0].inheritable | d[1].permitted |
                    d[1].effective | d[1].inheritable;
    return left ? -1 : 0;
}

int sp_drop_to(const sp_user *u)
{
    if (setgroups((size_t)u->ngroups, u->groups) < 0 || setgid(u->gid) < 0 || setuid(u->uid) < 0)
        return -1;
    if (drop_capabilities() < 0 || getuid() != u->uid || geteuid() != u->uid ||
        getgid() != u->gid || getegid() != u->gid || setuid(0) == 0 || setgid(0) == 0) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

/* In step host mode: the step host's protocol socket, for --library (the third descriptor sent;
 * its stderr stays ours). stephost/shproto.h's SHP_HOST_FD. */
#define HOST_FD 3

/* Does this step host start take its socket as HOST_FD? */
static bool wants_host_fd(const spawner *s, const char **argv)
{
    return s->stephost && strcmp(argv[1], "--library") == 0;
}

/* The user switch: a step host switches itself, once it has opened its library
 * (spawner_host.c). */
static int become_user(const spawner *s)
{
    return s->stephost ? 0 : sp_drop_to(&s->user);
}

/* In the forked child: a new session, the user's credentials, the three
 * descriptors, nothing else open, default signals, then exec. */
static void child(const spawner *s, int status, int fds[3], const char **argv, char **envp,
                  const char *cwd)
{
    bool host_fd = wants_host_fd(s, argv);
    sigset_t none;
    sigemptyset(&none);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setsid() < 0)
        child_fail(status, errno);
    for (int i = 0; i < (host_fd ? 2 : 3); i++)
        if (dup2(fds[i], i) < 0)
            child_fail(status, errno);
    if (host_fd && dup2(fds[2], HOST_FD) < 0)
        child_fail(status, errno);
    if (become_user(s) < 0)
        child_fail(status, errno);
    /* Cleared by the switch of user above: set it after. It kills the
     * leader if the spawner dies without getting to kill its group. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != s->self)
        _exit(127);
    uint64_t start = sp_proc_start(getpid());
    start_written = write(status, &start, sizeof(start)) == (ssize_t)sizeof(start);
    if (chdir(cwd && *cwd ? cwd : s->user.home) < 0 && chdir("/") < 0)
        child_fail(status, errno);
    umask(022);
    int first = host_fd ? HOST_FD + 1 : 3;
    if (syscall(436 /* close_range */, first, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        for (int fd = first; fd < 1024; fd++)
            if (fd != status)
                close(fd);
    execve(argv[0], (char *const *)argv, envp);
    child_fail(status, errno);
}

/* The process's whole environment: who it runs as, a PATH, then what the step asked for. */
static char **build_env(const spawner *s, const char **env, uint32_t envc)
{
    char **e = calloc(envc + 5, sizeof(*e));
    if (!e)
        return NULL;
    size_t n = 0;
    bool has_path = false;
    for (uint32_t i = 0; i < envc; i++)
        has_path |= strncmp(env[i], "PATH=", 5) == 0;
    if (asprintf(&e[n], "HOME=%s", s->user.home) >= 0)
        n++;
    if (asprintf(&e[n], "USER=%s", s->user.name) >= 0)
        n++;
    if (asprintf(&e[n], "LOGNAME=%s", s->user.name) >= 0)
        n++;
    if (!has_path && (e[n] = strdup(DEFAULT_PATH)))
        n++;
    for (uint32_t i = 0; i < envc; i++)
        e[n++] = (char *)env[i]; /* borrowed from the packet: not freed */
    return e;
}

static void free_env(char **e, uint32_t envc)
{
    size_t n = 0;
    while (e[n])
        n++;
    for (size_t i = 0; i + envc < n; i++)
        free(e[i]);
    free(e);
}

void sp_spawn(spawner *s, const sp_msg *m, int fds[3])
{
    const char *why = NULL;
    int err = 0;
    if (!s->can_switch)
        why = "local steps are refused", err = EPERM;
    else if (find(s, m->id))
        why = "a process of that number exists", err = EEXIST;
    else if (s->nprocs >= SPAWNER_MAX_PROCS)
        why = "too many local processes", err = EAGAIN;
    const char **vec = why ? NULL : calloc(m->argc + m->envc + 2, sizeof(*vec));
    char **envp = NULL;
    int st[2] = {-1, -1};
    sp_proc *p = NULL;
    const char *cwd = NULL;
    const char **argv = vec;
    if (!why && vec) {
        sp_spawn_strings(m, vec);
        cwd = vec[m->argc + m->envc];
        envp = build_env(s, vec + m->argc, m->envc);
        if (s->stephost && !(argv = sp_stephost_argv(s, vec, m->argc, m->envc)))
            why = "not a step host start", err = EPERM;
        vec[m->argc] = NULL; /* argv ends where env began */
    }
    if (!why && (!vec || !envp || pipe2(st, O_CLOEXEC) < 0 || !(p = add(s, m->id))))
        why = "cannot prepare the process", err = errno ? errno : ENOMEM;
    pid_t pid = why ? -1 : fork();
    if (pid == 0)
        child(s, st[1], fds, argv, envp, cwd);
    if (!why && pid < 0) {
        why = "fork", err = errno;
        s->nprocs--; /* the record just added */
    }
    if (st[1] >= 0)
        close(st[1]);
    if (why) {
        if (st[0] >= 0)
            close(st[0]);
        answer_failed(s, m->id, err, why);
    } else {
        p->pid = pid;
        p->status_fd = st[0];
    }
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    if (envp)
        free_env(envp, m->envc);
    if (argv != vec)
        free(argv);
    free(vec);
}

/* ---- status and exits ------------------------------------------------------------------- */

static void send_exited(spawner *s, sp_proc *p)
{
    char pkt[128];
    sp_send(s, pkt, sp_encode_num_text(pkt, sizeof(pkt), SP_EXITED, p->id, p->wait_status, NULL));
}

/* kill(target, sig) as root when `pinned` (the target cannot be a recycled
 * id) and we are root; otherwise as the local-steps user, who can only reach
 * that user's processes (and is the only way without CAP_KILL). */
static void kill_as(const spawner *s, pid_t target, int sig, bool pinned)
{
    if (pinned && geteuid() == 0) {
        kill(target, sig);
        return;
    }
    uid_t saved = geteuid();
    if (seteuid(s->user.uid) == 0) {
        kill(target, sig);
        if (seteuid(saved) < 0)
            _exit(3); /* never go on with the wrong identity */
    }
}

/* While its leader is our unreaped child, a group's id cannot be reused. */
static void signal_group(spawner *s, const sp_proc *p, int sig)
{
    if (p->pid > 1)
        kill_as(s, -p->pid, sig, !p->reaped);
}

/* The leader was reaped and its start is known: tell the daemon, or forget it. */
static void finish(spawner *s, sp_proc *p)
{
    if (p->id == 0)
        drop(s, p);
    else if (p->started)
        send_exited(s, p);
}

void sp_status_ready(spawner *s, sp_proc *p)
{
    ssize_t n = read(p->status_fd, p->status + p->nstatus, sizeof(p->status) - p->nstatus);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n > 0) {
        p->nstatus += (size_t)n;
        if (p->nstatus < sizeof(p->status))
            return;
    }
    close(p->status_fd); /* end of file: the exec happened, or the child said why not */
    p->status_fd = -1;
    char pkt[128];
    if (p->nstatus == 8 && p->id) {
        memcpy(&p->start, p->status, 8);
        p->started = true;
        sp_send(s, pkt, sp_encode_started(pkt, sizeof(pkt), p->id, (uint64_t)p->pid, p->start));
    } else if (p->nstatus == 8) {
        signal_group(s, p, SIGKILL); /* released before it started */
    } else {
        int32_t err = EIO;
        if (p->nstatus == 12)
            memcpy(&err, p->status + 8, 4);
        if (p->id)
            answer_failed(s, p->id, err, "cannot start the process as the local-steps user");
        p->id = 0; /* nothing to signal: forgotten once reaped */
    }
    if (p->reaped)
        finish(s, p);
}

void sp_reap(spawner *s)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        sp_proc *p = NULL;
        for (size_t i = 0; i < s->nprocs && !p; i++)
            if (s->procs[i].pid == pid && !s->procs[i].reaped)
                p = &s->procs[i];
        if (!p) /* an orphan that came back to us (subreaper) */
            continue;
        p->reaped = true;
        p->wait_status = st;
        if (p->status_fd < 0)
            finish(s, p);
    }
}

/* ---- signals ---------------------------------------------------------------------------- */

void sp_signal(spawner *s, uint64_t id, int sig)
{
    sp_proc *p = find(s, id);
    if (p && p->started)
        signal_group(s, p, sig);
}

void sp_release(spawner *s, uint64_t id)
{
    sp_proc *p = find(s, id);
    if (!p)
        return;
    if (p->reaped && p->status_fd < 0) {
        drop(s, p);
        return;
    }
    if (p->started) /* let go of while running: it must not outlive the record */
        signal_group(s, p, SIGKILL);
    p->id = 0;
}

/* ---- the end: nothing we started survives us -------------------------------------------- */

static size_t children(spawner *s, pid_t *out, size_t max)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)s->self);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    size_t k = 0;
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    for (char *p = buf, *end; k < max; p = end) {
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        out[k++] = (pid_t)v;
    }
    return k;
}

void sp_kill_everything(spawner *s)
{
    for (size_t i = 0; i < s->nprocs; i++)
        signal_group(s, &s->procs[i], SIGKILL);
    /* Subreaper: whatever left its group (setsid, double fork) is our child
     * now, or the child of one; kill children until none is left. */
    for (int round = 0; round < 500; round++) {
        pid_t kids[512];
        size_t n = children(s, kids, 512);
        int st;
        while (waitpid(-1, &st, WNOHANG) > 0)
            ;
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) { /* our unreaped children: their ids are pinned */
            kill_as(s, kids[i], SIGKILL, true);
            kill_as(s, -kids[i], SIGKILL, false);
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* ---- orphans of a previous daemon --------------------------------------------------------- */

/* Members of group `pgid` this user can see, started no earlier than its leader was. */
static int kill_members(pid_t pgid, uint64_t start, uid_t uid)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        char path[64], buf[1024];
        struct stat st;
        if (*end || pid <= 1)
            continue;
        snprintf(path, sizeof(path), "/proc/%ld", pid);
        if (stat(path, &st) < 0 || st.st_uid != uid)
            continue;
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t r = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (fd >= 0)
            close(fd);
        int pgrp = 0;
        char state = 0;
        char *p = r > 0 ? (buf[r] = '\0', strrchr(buf, ')')) : NULL;
        if (!p || sscanf(p + 1, " %c %*d %d", &state, &pgrp) != 2 || pgrp != pgid || state == 'Z')
            continue; /* a zombie is dead already */
        if (sp_proc_start((pid_t)pid) >= start && kill((pid_t)pid, SIGKILL) == 0)
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* As the local-steps user, in a throw-away child: it can only touch that
 * user's processes, and it sees them even where /proc hides other users'. */
static int orphan_child(const spawner *s, pid_t pgid, uint64_t start)
{
    if (sp_drop_to(&s->user) < 0)
        return 0;
    uint64_t leader = sp_proc_start(pgid);
    if (leader != 0 && leader != start) /* the id belongs to another process now */
        return 0;
    return kill_members(pgid, start, s->user.uid);
}

void sp_orphan(spawner *s, const sp_msg *m)
{
    char pkt[SP_TEXT_MAX + 64];
    const char *why = NULL;
    int killed = 0;
    if (!s->can_switch)
        why = "local steps are refused";
    else if (strcmp(m->text, s->boot_id) != 0)
        why = "the machine restarted since: the group is gone";
    else {
        pid_t pid = fork();
        if (pid == 0)
            _exit(orphan_child(s, (pid_t)m->a, m->b) & 0x7f);
        int st = 0;
        while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        killed = pid > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : 0;
        why = killed ? "killed" : "no process of it was left";
    }
    sp_send(s, pkt, sp_encode_num_text(pkt, sizeof(pkt), SP_DONE, m->id, killed, why));
}
