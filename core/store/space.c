/* space.c - the data directory running out of space: a reserve to keep logins working, writes
 * refused at once while full, one log line, and noticing when space is back.
 *
 * A file system that fills up makes every LMDB commit fail with ENOSPC; LMDB
 * aborts the transaction and the store stays consistent. Left alone, every
 * part of the daemon would then log its own I/O error on every attempt, and
 * logins (which write a refresh token) would fail with the rest. So the
 * store keeps a reserve file of STORE_RESERVE bytes in its directory: the
 * first ENOSPC logs one line, gives the reserve back to the file system and
 * marks the store full. While full, ordinary writes fail at once with
 * OPSC_ENOSPC (the API answers 507 store_full) without touching the disk,
 * and essential ones (logins, refresh, logout, revocations) go on in the
 * room the reserve left. At most once a second a write looks whether the
 * file system has room again; when it does, the reserve comes back and the
 * store is no longer full (one more log line).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "log.h"
#include "store_internal.h"
#include "util.h"

#define STORE_RESERVE  (4 << 20)
#define RECHECK_MS     1000
#define ROOM_TO_RESUME (1 << 20) /* free beyond the reserve before writes go on */

static void reserve_path(const store *s, char *buf, size_t n)
{
    fs_join(buf, n, s->dir, "reserve");
}

/* Claim the reserve's blocks for real (fallocate: a sparse file would give nothing back). */
static int make_reserve(store *s)
{
    char path[PATH_MAX];
    reserve_path(s, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = posix_fallocate(fd, 0, STORE_RESERVE);
    close(fd);
    if (rc != 0) {
        unlink(path);
        return -rc;
    }
    return 0;
}

void store_space_init(store *s)
{
    if (s->read_only)
        return;
    int rc = make_reserve(s);
    if (rc < 0 && rc != -ENOSPC && rc != -EDQUOT)
        log_warn("store", "no space reserve in %s: %s (logins may fail when the disk fills up)",
                 s->dir, strerror(-rc));
    else if (rc < 0)
        store_space_failed(s, OPSC_ENOSPC); /* already full at start */
}

bool store_space_error(int rc)
{
    return rc == -ENOSPC || rc == -EDQUOT;
}

int store_space_failed(store *s, int rc)
{
    if (!store_space_error(rc))
        return rc;
    s->space_checked_ms = clock_mono_ms();
    if (s->full)
        return OPSC_ENOSPC;
    s->full = true;
    char path[PATH_MAX];
    reserve_path(s, path, sizeof(path));
    unlink(path); /* its blocks are the room logins will use now */
    log_error("store",
              "the data directory %s is full: writes are refused (HTTP 507 store_full) "
              "until space is freed there; reads and logins go on",
              s->dir);
    return OPSC_ENOSPC;
}

static bool room_again(const store *s)
{
    struct statvfs v;
    return statvfs(s->dir, &v) == 0 &&
           (uint64_t)v.f_bavail * v.f_frsize >= (uint64_t)STORE_RESERVE + ROOM_TO_RESUME;
}

int store_space_gate(store *s, bool essential)
{
    if (!s->full)
        return 0;
    uint64_t now = clock_mono_ms();
    if (now - s->space_checked_ms >= RECHECK_MS) {
        s->space_checked_ms = now;
        if (room_again(s) && make_reserve(s) == 0) {
            s->full = false;
            log_info("store", "the data directory %s has room again: writes go on", s->dir);
            return 0;
        }
    }
    return essential ? 0 : OPSC_ENOSPC;
}

bool store_full(const store *s)
{
    return s && s->full;
}
