/* sandbox_exec.c - opsc-stephost --exec: the sandbox of a bundle's step executable (a script in any
 * language), then execve(). The same layers as a C library's host (own user, no capabilities,
 * no_new_privs, rlimits, Landlock, seccomp) shaped for a program that must start interpreters and
 * commands: files only beneath its bundle (read, execute), the system's programs and libraries,
 * and its own scratch folder (read, write); no network; processes, but only in its own process
 * group (the daemon ends the group), and none of the system calls that reach beyond it. This
 * process stays as the program's parent (supervise()) so that the group ends with the daemon. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stephost_internal.h"

#define BUNDLE_FD 3 /* the step finds its bundle at /proc/self/fd/3 */

/* Landlock's file rights (sandbox.c has the rest). */
#define LL_EXECUTE    (1ull << 0)
#define LL_WRITE_FILE (1ull << 1)
#define LL_READ_FILE  (1ull << 2)
#define LL_READ_DIR   (1ull << 3)
#define LL_TRUNCATE   (1ull << 14)

/* What a script needs of the file system, and nothing of the daemon's. */
static int landlock(int bundle, int scratch, json_t *notes)
{
    long abi;
    uint64_t all;
    int rs = sh_landlock_new(&abi, &all, notes);
    if (rs <= 0)
        return rs;
    const uint64_t ro = LL_READ_FILE | LL_READ_DIR | LL_EXECUTE,
                   dev = (LL_READ_FILE | LL_WRITE_FILE | LL_TRUNCATE) & all;
    static const char *const system[] = {"/usr",           "/bin",
                                         "/sbin",          "/lib",
                                         "/lib64",         "/etc/ld.so.cache",
                                         "/etc/localtime", "/etc/passwd",
                                         "/etc/group",     "/etc/nsswitch.conf",
                                         "/proc/self",     NULL};
    static const char *const devices[] = {"/dev/null", "/dev/zero", "/dev/urandom", "/dev/random",
                                          NULL};
    int rc = sh_landlock_allow_fd(rs, bundle, ro);
    if (rc == 0)
        rc = sh_landlock_allow_fd(rs, scratch, all);
    for (int i = 0; system[i] && rc == 0; i++)
        rc = sh_landlock_allow_path(rs, system[i], ro);
    for (int i = 0; devices[i] && rc == 0; i++)
        rc = sh_landlock_allow_path(rs, devices[i], dev);
    return sh_landlock_apply(rs, rc, abi, notes);
}

/* Refused whatever their arguments: nothing a step's script needs, everything that would reach
 * out of its sandbox or its process group. */
static const char *const denied[] = {
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "setsid",
    "setpgid",
    "reboot",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "io_uring_setup",
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "syslog",
    "kcmp",
    "fanotify_init",
    "vhangup",
    "ioperm",
    "iopl",
    "fsopen",
    "fsmount",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "pidfd_getfd",
    "setpriority",
    "sched_setscheduler",
};

static int seccomp_exec(json_t *notes)
{
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
    if (!f)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]) && rc == 0; i++) {
        int nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr != __NR_SCMP_ERROR)
            rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), nr, 0);
    }
    /* No network: sockets of the local kind only (a pipe's cousin). */
    if (rc == 0)
        rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
                              SCMP_A0(SCMP_CMP_NE, AF_UNIX));
    /* Processes, never namespaces; clone3's flags a filter cannot see: ENOSYS, libc falls back. */
    static const unsigned long ns[] = {CLONE_NEWNS,  CLONE_NEWUSER, CLONE_NEWPID,   CLONE_NEWNET,
                                       CLONE_NEWUTS, CLONE_NEWIPC,  CLONE_NEWCGROUP};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]) && rc == 0; i++)
        rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, ns[i], ns[i]));
    if (rc == 0)
        rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc == 0)
        rc = seccomp_load(f);
    seccomp_release(f);
    if (rc == 0)
        json_array_append_new(notes, json_string("seccomp deny-list"));
    return rc;
}

static int die(const char *what, const char *why)
{
    fprintf(stderr, "opsc-stephost: the step's sandbox did not start: %s%s%s\n", what,
            why ? ": " : "", why ? why : "");
    return 125;
}

/* Its folder (opened without following a link: never through its path, which a daemon that is
 * not root named, spawner/spawner_host.c) is given to the step's user. A daemon running as root
 * reaches everything: the folder becomes the user's. One that dropped to its own user keeps it,
 * to put and get files there and remove it, and shares it with the step by group (setgid: what
 * the step makes there stays in that group). */
static void give_scratch(const char *user, int fd, const char *scratch)
{
    struct passwd *pw = user && *user && sh_may_switch() ? getpwnam(user) : NULL;
    struct stat st;
    if (!pw || pw->pw_uid == 0 || fstat(fd, &st) < 0)
        return;
    bool shared = st.st_uid != 0;
    /* Not root: its owner may give it to a group it is in (sh_switch_user() clears them). */
    if (shared && geteuid() != 0)
        setgroups(1, &pw->pw_gid);
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
    if (fchownat(fd, "", shared ? st.st_uid : pw->pw_uid, pw->pw_gid, AT_EMPTY_PATH) < 0 ||
        (shared && chmod(self, 02770) < 0))
        fprintf(stderr, "opsc-stephost: giving %s to %s: %s\n", scratch, user, strerror(errno));
}

static int confine(const char *user, int bundle, int scratch, json_t *notes, char *err,
                   size_t errlen)
{
    sh_drop_bounding_set();
    int switched = sh_switch_user(user, notes, err, errlen);
    if (switched < 0)
        return switched;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        snprintf(err, errlen, "no_new_privs: %s", strerror(errno));
        return -errno;
    }
    sh_drop_capabilities(notes);
    sh_limit(RLIMIT_CORE, 0);
    sh_limit(RLIMIT_NOFILE, 256);
    /* Counted per user: only a user of its own makes this a bound on the step alone. */
    if (switched)
        sh_limit(RLIMIT_NPROC, 512);
    int rc = landlock(bundle, scratch, notes);
    if (rc < 0) {
        snprintf(err, errlen, "landlock: %s", strerror(-rc));
        return rc;
    }
    rc = seccomp_exec(notes);
    if (rc < 0)
        snprintf(err, errlen, "seccomp: %s", strerror(-rc));
    return rc;
}

/* The daemon is gone (SIGKILL, a crash): end the step's whole process group, this one too. */
static void on_daemon_gone(int sig)
{
    (void)sig;
    kill(0, SIGKILL);
}

/* The step's program runs as a child of this process, which stays, confined like it, to tie
 * its process group to the daemon: when the daemon's thread that started us ends, the group
 * ends. The program's end is ours: its status, or its signal raised again. */
static int supervise(const char *path, char *const argv[], char *const env[], uint64_t memory_limit)
{
    pid_t daemon = getppid();
    pid_t pid = fork();
    if (pid < 0)
        return die("fork", strerror(errno));
    if (pid == 0) {
        /* Here, not before the fork: the sanitizers of this process want address space. */
        if (memory_limit)
            sh_limit(RLIMIT_AS, memory_limit);
        execve(path, argv, env);
        _exit(die(argv[0] + strlen("/proc/self/fd/3/"), strerror(errno)));
    }
    signal(SIGTERM, SIG_IGN); /* the daemon's SIGTERM is for the program: SIGKILL ends us */
    signal(SIGUSR1, on_daemon_gone);
    prctl(PR_SET_PDEATHSIG, SIGUSR1);
    if (getppid() != daemon)
        on_daemon_gone(SIGUSR1);
    close(0); /* the protocol's ends are the program's alone */
    close(1);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status)) {
        signal(WTERMSIG(status), SIG_DFL);
        raise(WTERMSIG(status));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}

int sh_exec_step(const char *exe, const char *bundle, const char *scratch, const char *user,
                 uint64_t memory_limit)
{
    if (!exe || !bundle || !scratch || exe[0] == '/' || strstr(exe, ".."))
        return die("usage", "--exec RELATIVE-PATH --bundle DIR --scratch DIR");
    int b = open(bundle, O_PATH | O_DIRECTORY), s = open(scratch, O_PATH | O_DIRECTORY | O_NOFOLLOW);
    if (b < 0 || s < 0)
        return die(b < 0 ? bundle : scratch, strerror(errno));
    if (b != BUNDLE_FD && (dup2(b, BUNDLE_FD) < 0 || close(b) < 0))
        return die("dup2", strerror(errno));
    give_scratch(user, s, scratch);
    char err[512] = "";
    json_t *notes = json_array();
    int rc = confine(user, BUNDLE_FD, s, notes, err, sizeof(err));
    json_decref(notes);
    close(s);
    if (rc < 0)
        return die(err, NULL);
    if (chdir(scratch) < 0)
        return die(scratch, strerror(errno));
    char path[4096], home[4200], tmp[4200];
    snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", BUNDLE_FD, exe);
    snprintf(home, sizeof(home), "HOME=%s", scratch);
    snprintf(tmp, sizeof(tmp), "TMPDIR=%s", scratch);
    char *const argv[] = {path, NULL};
    char *const env[] = {"PATH=/usr/local/bin:/usr/bin:/bin",
                         "LANG=C.UTF-8",
                         home,
                         tmp,
                         "OPSC_BUNDLE_DIR=/proc/self/fd/3",
                         "OPSC_STEP_PROTOCOL=1",
                         "PYTHONDONTWRITEBYTECODE=1",
                         NULL};
    return supervise(path, argv, env, memory_limit);
}
