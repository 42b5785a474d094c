/* test_store_proc.c - the store across processes: lock, kill -9, online backup, readers,
 * permissions. */
#include "test_store.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "log.h"
#include "util.h"

/* ---- child processes ---------------------------------------------------------
 * Children never use cmocka asserts (they would run the parent's test
 * runner in the child); they report through their exit status and pipes. */

void writer_child(const char *dir, int64_t map, int ackfd, uint32_t limit, size_t pad)
{
    store *s = NULL;
    char err[256];
    store_opts o = {.map_size = map, .max_map_size = 1024 * MIB};
    if (store_open(&s, dir, &o, err, sizeof(err))) {
        fprintf(stderr, "writer child: %s\n", err);
        _exit(2);
    }
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "w%ld", (long)getpid());
    for (uint32_t n = 1; limit == 0 || n <= limit; n++) {
        if (put_targets(s, prefix, (int)n, 1, pad) != 0)
            _exit(3);
        if (write(ackfd, &n, sizeof(n)) != (ssize_t)sizeof(n))
            _exit(4);
    }
    store_close(s);
    _exit(0);
}

/* Acks are 4-byte writes, atomic on a pipe, so reads never split one. */
static long read_acks(int fd, long seen, long until, bool to_eof)
{
    uint32_t buf[256];
    long last = seen;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return last;
        last = buf[n / 4 - 1];
        if (!to_eof && last >= until)
            return last;
    }
}

long read_last_ack(int fd, long seen)
{
    return read_acks(fd, seen, 0, true);
}

long wait_ack(int fd, long n)
{
    return read_acks(fd, -1, n, false);
}

/* fork() with a pipe from child to parent: *fd is the write end in the
 * child (fork_piped returns 0), the read end in the parent. */
static pid_t fork_piped(int *fd)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    close(pid == 0 ? p[0] : p[1]);
    *fd = pid == 0 ? p[1] : p[0];
    return pid;
}

static pid_t fork_writer(const char *dir, int64_t map, size_t pad, int *ackfd)
{
    pid_t pid = fork_piped(ackfd);
    if (pid == 0)
        writer_child(dir, map, *ackfd, 0, pad);
    return pid;
}

static int wait_status(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

static int kill_wait(pid_t pid)
{
    kill(pid, SIGKILL);
    return wait_status(pid);
}

static int wait_exit(pid_t pid)
{
    int st = wait_status(pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run fn(dir, fd) in a child; returns its exit status and what it wrote to fd. */
static int in_child(void (*fn)(const char *dir, int fd), const char *dir, char *out, size_t n)
{
    int fd;
    pid_t pid = fork_piped(&fd);
    if (pid == 0) {
        fn(dir, fd);
        _exit(0);
    }
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (r = read(fd, out + got, n - 1 - got)) > 0)
        got += (size_t)r;
    out[got] = '\0';
    close(fd);
    return wait_exit(pid);
}

/* ---- exclusive lock ----------------------------------------------------------- */

static void lock_second_process_gets_ebusy_until_holder_dies(void **state)
{
    int ack;
    pid_t pid = fork_writer(*state, 0, 0, &ack);
    long seen = wait_ack(ack, 1);
    assert_true(seen >= 1);
    store *s;
    char err[256], want[32];
    assert_int_equal(store_open(&s, *state, NULL, err, sizeof(err)), OPSC_EBUSY);
    snprintf(want, sizeof(want), "(pid %ld ", (long)pid);
    assert_non_null(strstr(err, want));
    kill_wait(pid);
    long acked = read_last_ack(ack, seen);
    close(ack);
    s = open_ok(*state, 0, 0);
    assert_true(check_targets(s) >= acked);
    store_close(s);
}

static void read_only_open_takes_no_lock_while_daemon_runs(void **state)
{
    int ack;
    pid_t pid = fork_writer(*state, 0, 0, &ack);
    long acked = wait_ack(ack, 5);
    store *s;
    char err[256];
    store_opts ro = {.read_only = true};
    assert_int_equal(store_open(&s, *state, &ro, err, sizeof(err)), 0);
    assert_true(check_targets(s) >= acked); /* a consistent snapshot of a live store */
    assert_int_equal(store_write(s, txn_fail_eio, NULL), OPSC_EPERM);
    store_close(s);
    kill_wait(pid);
    close(ack);
}

/* ---- crashes -------------------------------------------------------------------- */

static void kill9_during_writes_leaves_a_consistent_store(void **state)
{
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    printf("kill -9 test seed %u\n", seed);
    long total_acked = 0, records = 0;
    for (int round = 0; round < 6; round++) {
        int ack;
        pid_t pid = fork_writer(*state, 1 * MIB, 500, &ack); /* tiny map: grows as it goes */
        long seen = wait_ack(ack, 1);
        assert_true(seen >= 1);
        usleep(1000 * (useconds_t)(rand_r(&seed) % 150));
        int st = kill_wait(pid);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        /* The acks read so far count when none arrived after them. */
        total_acked += read_last_ack(ack, seen);
        close(ack);
        store *s = open_ok(*state, 1 * MIB, 1024 * MIB);
        records = check_targets(s);
        store_close(s);
        /* Every acknowledged commit survived; at most one per round committed
         * without its acknowledgement reaching us. */
        assert_in_range(records, total_acked, total_acked + round + 1);
    }
    printf("kill -9 test: %ld records after 6 kills, all consistent\n", records);
}

/* ---- backup --------------------------------------------------------------------- */

static void check_backup(const char *dest, long at_least)
{
    char p[PATH_MAX];
    struct stat st;
    join(p, sizeof(p), dest, "data.mdb");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    join(p, sizeof(p), dest, "lock.mdb");
    assert_int_equal(access(p, F_OK), -1);
    store *s;
    char err[256];
    store_opts ro = {.read_only = true};
    assert_int_equal(store_open(&s, dest, &ro, err, sizeof(err)), 0);
    long n = check_targets(s);
    assert_true(n >= at_least);
    store_close(s);
    s = open_ok(dest, 0, 0); /* and it is a store a daemon can run on */
    assert_int_equal(check_targets(s), n);
    store_close(s);
}

static void backup_while_writer_runs_is_consistent(void **state)
{
    char data[PATH_MAX], dest[2][PATH_MAX], err[256];
    join(data, sizeof(data), *state, "data");
    join(dest[0], sizeof(dest[0]), *state, "backups/one");
    join(dest[1], sizeof(dest[1]), *state, "backups/two");
    int ack;
    pid_t pid = fork_writer(data, 1 * MIB, 1000, &ack);
    long acked[2];
    for (int i = 0; i < 2; i++) {
        acked[i] = wait_ack(ack, 50 * (i + 1));
        int rc = store_backup(data, dest[i], err, sizeof(err));
        if (rc)
            fprintf(stderr, "backup: %s\n", err);
        assert_int_equal(rc, 0);
    }
    kill_wait(pid);
    close(ack);
    struct stat st;
    assert_int_equal(stat(dest[0], &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    check_backup(dest[0], acked[0]);
    check_backup(dest[1], acked[1]);
}

static void backup_refuses_bad_destinations(void **state)
{
    char data[PATH_MAX], dest[PATH_MAX], file[PATH_MAX], err[256];
    join(data, sizeof(data), *state, "data");
    join(dest, sizeof(dest), *state, "dest");
    join(file, sizeof(file), *state, "file");
    assert_int_equal(store_backup(data, dest, err, sizeof(err)), OPSC_ENOENT);
    assert_non_null(strstr(err, data));
    assert_int_equal(access(dest, F_OK), -1); /* a failed backup leaves nothing */
    store *s = open_ok(data, 0, 0);
    assert_int_equal(put_targets(s, "b", 0, 10, 0), 0);
    store_close(s);
    assert_int_equal(mkdir(dest, 0755), 0); /* an existing empty directory is fine */
    assert_int_equal(store_backup(data, dest, err, sizeof(err)), 0);
    check_backup(dest, 10);
    assert_int_equal(store_backup(data, dest, err, sizeof(err)), OPSC_EEXIST);
    assert_non_null(strstr(err, "not empty"));
    assert_int_equal(fs_write_file(file, "x", 1, 0600), 0);
    assert_int_equal(store_backup(data, file, err, sizeof(err)), OPSC_EEXIST);
    assert_int_equal(store_backup(NULL, dest, err, sizeof(err)), OPSC_EINVAL);
}

static void backup_from_open_store_in_same_process(void **state)
{
    char data[PATH_MAX], dest[PATH_MAX], err[256];
    join(data, sizeof(data), *state, "data");
    join(dest, sizeof(dest), *state, "dest");
    store *s = open_ok(data, 0, 0);
    assert_int_equal(put_targets(s, "live", 0, 100, 100), 0);
    assert_int_equal(store_backup_from(s, dest, err, sizeof(err)), 0);
    assert_int_equal(put_targets(s, "live", 100, 10, 100), 0); /* the daemon goes on */
    assert_int_equal(check_targets(s), 110);
    assert_int_equal(store_backup_from(s, dest, err, sizeof(err)), OPSC_EEXIST);
    assert_int_equal(store_backup_from(NULL, dest, err, sizeof(err)), OPSC_EINVAL);
    store_close(s);
    check_backup(dest, 100);
}

/* ---- readers in other processes --------------------------------------------------- */

static void read_only_reader_adopts_map_grown_by_writer(void **state)
{
    int ack;
    /* 20 kB records: the map grows past 1 MiB within a few hundred commits (durable ones are
     * the test's cost) */
    pid_t pid = fork_writer(*state, 1 * MIB, 20000, &ack);
    assert_true(wait_ack(ack, 1) >= 1);
    store *s;
    char err[256];
    store_opts ro = {.read_only = true};
    assert_int_equal(store_open(&s, *state, &ro, err, sizeof(err)), 0);
    store_stats before, after;
    assert_int_equal(store_stats_get(s, &before), 0);
    long acked = wait_ack(ack, 150); /* 3 MB of records: the writer's map grew */
    assert_true(check_targets(s) >= acked);
    assert_int_equal(store_stats_get(s, &after), 0);
    assert_true(after.map_size > before.map_size);
    store_close(s);
    kill_wait(pid);
    close(ack);
}

static int ack_and_pause(store_txn *t, void *ud)
{
    uint32_t one = 1;
    (void)t;
    if (write(*(int *)ud, &one, sizeof(one)) != (ssize_t)sizeof(one))
        return OPSC_EIO;
    for (;;)
        pause(); /* killed here, inside the read transaction */
}

/* Opens read-only; then with `hold` >= 0 waits for a byte on it, with -1
 * acknowledges from inside a read transaction and waits to be killed. */
static pid_t fork_reader(const char *dir, int *ack, int hold)
{
    pid_t pid = fork_piped(ack);
    if (pid == 0) {
        store *s;
        char err[256], c;
        store_opts ro = {.read_only = true};
        if (store_open(&s, dir, &ro, err, sizeof(err)))
            _exit(2);
        if (hold < 0)
            store_read(s, ack_and_pause, ack);
        uint32_t one = 1;
        if (write(*ack, &one, sizeof(one)) != (ssize_t)sizeof(one) || read(hold, &c, 1) != 1)
            _exit(3);
        store_close(s);
        _exit(0);
    }
    return pid;
}

static void stale_reader_slots_are_cleared_at_open(void **state)
{
    store_close(open_ok(*state, 0, 0));
    int hold[2], ack_a, ack_b;
    assert_int_equal(pipe(hold), 0);
    /* A keeps the environment open, so LMDB does not reset the reader
     * table; B dies holding a reader slot. */
    pid_t a = fork_reader(*state, &ack_a, hold[0]);
    assert_int_equal(wait_ack(ack_a, 1), 1);
    pid_t b = fork_reader(*state, &ack_b, -1);
    assert_int_equal(wait_ack(ack_b, 1), 1);
    kill_wait(b);
    char logp[PATH_MAX], *text;
    join(logp, sizeof(logp), *state, "store.log");
    assert_int_equal(log_init(OPSC_LOG_INFO, LOG_FORMAT_TEXT, logp), 0);
    store *s = open_ok(*state, 0, 0);
    log_close();
    assert_int_equal(fs_read_file(logp, 1 << 20, &text, NULL), 0);
    assert_non_null(strstr(text, "cleared 1 stale reader slot"));
    free(text);
    store_close(s);
    assert_int_equal(write(hold[1], "x", 1), 1);
    assert_int_equal(wait_exit(a), 0);
    close(hold[0]);
    close(hold[1]);
    close(ack_a);
    close(ack_b);
}

/* ---- permissions ------------------------------------------------------------------ */

static bool perm_read_only;

/* Root bypasses permission bits: drop to nobody first. */
static void unprivileged_open_child(const char *dir, int fd)
{
    if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0))
        _exit(3);
    store *s;
    char err[256] = "";
    store_opts o = {.read_only = perm_read_only};
    int rc = store_open(&s, dir, &o, err, sizeof(err));
    ssize_t w = write(fd, err, strlen(err));
    (void)w;
    _exit(rc == OPSC_EACCES ? 0 : 1);
}

static void data_dir_without_permission_gives_clear_error(void **state)
{
    char dir[PATH_MAX], msg[512];
    join(dir, sizeof(dir), *state, "data");
    store_close(open_ok(dir, 0, 0));
    assert_int_equal(chmod(dir, 0), 0);
    for (int ro = 0; ro < 2; ro++) {
        perm_read_only = ro;
        assert_int_equal(in_child(unprivileged_open_child, dir, msg, sizeof(msg)), 0);
        assert_non_null(strstr(msg, dir));
        assert_non_null(strstr(msg, "Permission denied"));
        assert_non_null(
            strstr(msg, "needs read, write and search permission on the data directory"));
    }
    chmod(dir, 0700);
}

const struct CMUnitTest store_proc_tests[] = {
    TMP_TEST(lock_second_process_gets_ebusy_until_holder_dies),
    TMP_TEST(read_only_open_takes_no_lock_while_daemon_runs),
    TMP_TEST(kill9_during_writes_leaves_a_consistent_store),
    TMP_TEST(backup_while_writer_runs_is_consistent),
    TMP_TEST(backup_refuses_bad_destinations),
    TMP_TEST(backup_from_open_store_in_same_process),
    TMP_TEST(read_only_reader_adopts_map_grown_by_writer),
    TMP_TEST(stale_reader_slots_are_cleared_at_open),
    TMP_TEST(data_dir_without_permission_gives_clear_error),
};
const size_t store_proc_test_count = sizeof(store_proc_tests) / sizeof(store_proc_tests[0]);
