/* sandbox.c - what opsc-stephost gives up before it loads a step library: new privileges, core
 * dumps and unbounded memory, every file but the library's own folder and the system's
 * libraries (Landlock, when the kernel has it), the network, signals to other processes, and
 * every system call a step library has no business making (a seccomp allow-list). */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stephost_internal.h"

/* Landlock's ABI, spelled out: the system's headers may be older than the kernel. */
#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH      1
#define LL_FS_EXECUTE             (1ull << 0)
#define LL_FS_READ_FILE           (1ull << 2)
#define LL_FS_READ_DIR            (1ull << 3)
#define LL_NET_BIND_TCP           (1ull << 0)
#define LL_NET_CONNECT_TCP        (1ull << 1)
#define LL_SCOPE_ABSTRACT_UNIX    (1ull << 0)
#define LL_SCOPE_SIGNAL           (1ull << 1)

struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net; /* ABI 4 */
    uint64_t scoped;             /* ABI 6 */
};

struct ll_path_beneath {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

/* Everything the ABI can refuse on files: ABI 1 has 13 rights, REFER came
 * with 2, TRUNCATE with 3, IOCTL_DEV with 5. */
uint64_t sh_fs_rights(long abi)
{
    int bits = abi >= 5 ? 16 : abi >= 3 ? 15 : abi >= 2 ? 14 : 13;
    return (1ull << bits) - 1;
}

/* Rights that apply to a file (not a folder): EXECUTE, WRITE_FILE, READ_FILE, TRUNCATE, IOCTL_DEV. */
#define LL_FS_FILE_ONLY ((1ull << 0) | (1ull << 1) | (1ull << 2) | (1ull << 14) | (1ull << 15))

int sh_landlock_allow_fd(int ruleset, int fd, uint64_t rights)
{
    struct ll_path_beneath pb = {rights, fd};
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
        pb.allowed_access &= LL_FS_FILE_ONLY;
    return syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &pb, 0) < 0 ? -errno : 0;
}

int sh_landlock_allow_path(int ruleset, const char *path, uint64_t rights)
{
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    int rc = sh_landlock_allow_fd(ruleset, fd, rights);
    close(fd);
    return rc;
}

int sh_landlock_new(long *abi, uint64_t *handled, json_t *notes)
{
    *abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    if (*abi < 1) {
        json_array_append_new(notes, json_string("landlock unavailable"));
        return 0;
    }
    struct ll_ruleset_attr attr = {.handled_access_fs = sh_fs_rights(*abi)};
    size_t size = sizeof(uint64_t);
    if (*abi >= 4) {
        attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
        size = 2 * sizeof(uint64_t);
    }
    if (*abi >= 6) {
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
        size = sizeof(attr);
    }
    *handled = attr.handled_access_fs;
    int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    return rs < 0 ? -errno : rs;
}

int sh_landlock_apply(int ruleset, int rc, long abi, json_t *notes)
{
    if (rc == 0 && syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
        rc = -errno;
    close(ruleset);
    if (rc == 0)
        json_array_append_new(notes, json_sprintf("landlock abi %ld", abi));
    return rc;
}

/* Read and execute: the library's folder (opened before the user changed)
 * and the system's libraries. Nothing else. */
static int landlock(int libdir, json_t *notes)
{
    long abi;
    uint64_t handled;
    int rs = sh_landlock_new(&abi, &handled, notes);
    if (rs <= 0)
        return rs;
    const uint64_t ro = LL_FS_READ_FILE | LL_FS_READ_DIR | LL_FS_EXECUTE;
    /* /proc/self: its own (the library loads through /proc/self/fd; the
     * sanitizers' memory limit reads its RSS there). */
    const char *paths[] = {"/usr/lib", "/usr/lib64",       "/lib",
                           "/lib64",   "/etc/ld.so.cache", "/proc/self"};
    int rc = sh_landlock_allow_fd(rs, libdir, ro);
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]) && rc == 0; i++)
        rc = sh_landlock_allow_path(rs, paths[i], ro);
    return sh_landlock_apply(rs, rc, abi, notes);
}

/* The system calls a step's code and its libc need: memory, threads,
 * time, reading files (Landlock says which), and writing to what is open. */
static const char *const allowed[] = {
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "close",
    "fstat",
    "newfstatat",
    "statx",
    "lseek",
    "mmap",
    "mprotect",
    "munmap",
    "mremap",
    "madvise",
    "brk",
    "mincore",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "futex",
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "set_tid_address",
    "exit",
    "exit_group",
    "getpid",
    "gettid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "time",
    "sched_yield",
    "sched_getaffinity",
    "getrandom",
    "openat",
    "open",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "getcwd",
    "fcntl",
    "dup",
    "dup3",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "getrlimit",
    "uname",
    "sysinfo",
    "getdents64",
    "prctl",
    "membarrier",
    "restart_syscall",
    "getpriority",
    "sched_getparam",
    "sched_getscheduler",
    "recvmsg",
    "sendmsg",
    "recvfrom",
    "sendto",
    "shutdown",
};

static int seccomp(json_t *notes)
{
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (!f)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]) && rc == 0; i++) {
        int nr = seccomp_syscall_resolve_name(allowed[i]);
        if (nr != __NR_SCMP_ERROR)
            rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 0);
    }
    /* Threads, never processes: clone only with CLONE_THREAD, and clone3
     * (whose flags a filter cannot see) answers ENOSYS so libc falls back. */
    if (rc == 0)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
    if (rc == 0)
        rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    /* Signals to itself only (raise, abort). */
    if (rc == 0)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
    if (rc == 0)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
    /* Reading its limits, never raising them. */
    if (rc == 0)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, SCMP_A2(SCMP_CMP_EQ, 0));
    if (rc == 0)
        rc = seccomp_load(f);
    seccomp_release(f);
    if (rc == 0)
        json_array_append_new(notes, json_string("seccomp allow-list"));
    return rc;
}

/* A daemon started as root would hand the host every capability: none of
 * them, now or after an execve (bounding and ambient sets too). */
void sh_drop_bounding_set(void)
{
    for (int cap = 0; cap <= 63; cap++)
        prctl(PR_CAPBSET_DROP, cap, 0, 0, 0); /* fails harmlessly without CAP_SETPCAP */
}

void sh_drop_capabilities(json_t *notes)
{
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    if (syscall(SYS_capset, &h, d) == 0)
        json_array_append_new(notes, json_string("no capabilities"));
}

void sh_limit(int resource, uint64_t value)
{
    struct rlimit rl = {value, value};
    setrlimit(resource, &rl);
}

static bool sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return true;
#endif
#endif
    return false;
}

bool sh_may_switch(void)
{
    if (geteuid() == 0)
        return true;
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    unsigned need = (1u << CAP_SETUID) | (1u << CAP_SETGID);
    return syscall(SYS_capget, &h, d) == 0 && (d[0].effective & need) == need;
}

/* Started as root (by a daemon running as root), or with CAP_SETUID and
 * CAP_SETGID (by the step hosts' opsc-spawner of a daemon that gave them up):
 * become `user`, every capability gone. 1 when it did, 0 when there was
 * nothing to switch from, or -errno. */
int sh_switch_user(const char *user, json_t *notes, char *err, size_t errlen)
{
    if (!user || !*user || !sh_may_switch()) {
        json_array_append_new(notes, json_sprintf("uid %u (the daemon's)", (unsigned)geteuid()));
        return 0;
    }
    struct passwd *pw = getpwnam(user);
    if (!pw || pw->pw_uid == 0) {
        snprintf(err, errlen, "the step host user '%s' %s", user,
                 pw ? "is root: name an unprivileged user ([steplibs] host_user)"
                    : "does not exist (scripts/deps creates it)");
        return -ENOENT;
    }
    /* From another user than root the capabilities survive the switch: they go (this thread's;
     * a sanitizer's own thread keeps them, so no setuid(0) then: glibc aborts when its threads
     * disagree) before the check that there is no way back. */
    bool was_root = geteuid() == 0;
    if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0 ||
        (sh_drop_capabilities(NULL), was_root && setuid(0) == 0) || sh_may_switch() ||
        geteuid() != pw->pw_uid) {
        snprintf(err, errlen, "cannot become the step host user '%s': %s", user, strerror(errno));
        return -EPERM;
    }
    /* Its /proc/self/fd stays its own: the library is loaded through it. */
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    json_array_append_new(notes, json_sprintf("user %s (uid %u)", user, (unsigned)pw->pw_uid));
    return 1;
}

/* The library and its folder, opened while the daemon's rights hold. */
static int open_library(const char *library, int *libfd, int *dirfd, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (!realpath(library, path) || (*libfd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "cannot open the library %s: %s", library, strerror(errno));
        return -errno;
    }
    char *slash = strrchr(path, '/');
    if (slash && slash != path)
        *slash = '\0';
    if ((*dirfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "cannot open the library's folder: %s", strerror(errno));
        close(*libfd);
        return -errno;
    }
    return 0;
}

static int confine(const char *user, uint64_t memory_limit, int libdir, json_t *notes, char *err,
                   size_t errlen);

int sh_sandbox(const char *library, const char *user, uint64_t memory_limit, json_t *notes,
               char *load_path, size_t n, char *err, size_t errlen)
{
    int libfd = -1, libdir = -1;
    int rc = open_library(library, &libfd, &libdir, err, errlen);
    if (rc < 0)
        return rc;
    rc = confine(user, memory_limit, libdir, notes, err, errlen);
    close(libdir);
    if (rc == 1) /* another user: the folder may be closed to it, the open file is not */
        snprintf(load_path, n, "/proc/self/fd/%d", libfd);
    else {
        snprintf(load_path, n, "%s", library);
        close(libfd);
    }
    return rc < 0 ? rc : 0;
}

/* 1 when it switched users, 0, or -errno. */
static int confine(const char *user, uint64_t memory_limit, int libdir, json_t *notes, char *err,
                   size_t errlen)
{
    sh_drop_bounding_set(); /* while it may: CAP_SETPCAP goes with the user */
    int switched = sh_switch_user(user, notes, err, errlen);
    if (switched < 0)
        return switched;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        snprintf(err, errlen, "no_new_privs: %s", strerror(errno));
        return -errno;
    }
    json_array_append_new(notes, json_string("no_new_privs"));
    sh_drop_capabilities(notes);
    if (!switched) /* nothing of its memory to ptrace (and seccomp refuses ptrace anyway) */
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    sh_limit(RLIMIT_CORE, 0);
    sh_limit(RLIMIT_NOFILE, 128);
    /* The sanitizers reserve terabytes of address space: their own
     * soft_rss_limit_mb (stephost.c) bounds memory there instead. */
    if (memory_limit && !sanitized()) {
        sh_limit(RLIMIT_AS, memory_limit);
        json_array_append_new(notes, json_sprintf("address space %llu MiB",
                                                  (unsigned long long)(memory_limit >> 20)));
    }
    int rc = landlock(libdir, notes);
    if (rc < 0) {
        snprintf(err, errlen, "landlock: %s", strerror(-rc));
        return rc;
    }
    rc = seccomp(notes);
    if (rc < 0) {
        snprintf(err, errlen, "seccomp: %s", strerror(-rc));
        return rc;
    }
    return switched;
}
