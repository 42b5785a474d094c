/* backup.c - online compacted copy of a store into an empty directory, verified by reopening. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "log.h"
#include "store_internal.h"
#include "util.h"

static int dir_is_empty(const char *path, bool *empty)
{
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    struct dirent *e;
    *empty = true;
    while (*empty && (e = readdir(d)) != NULL)
        *empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return 0;
}

/* Create `dest` 0700, or accept an existing empty directory. */
static int prepare_dest(const char *dest, bool *created, char *err, size_t errlen)
{
    struct stat st;
    *created = false;
    if (stat(dest, &st) < 0) {
        if (errno != ENOENT)
            return store_fail(-errno, err, errlen, "backup destination %s: %s", dest,
                              strerror(errno));
        int rc = fs_mkdir_p(dest, 0700);
        if (rc < 0)
            return store_fail(rc, err, errlen, "cannot create backup directory %s: %s", dest,
                              strerror(-rc));
        *created = true;
        return 0;
    }
    if (!S_ISDIR(st.st_mode))
        return store_fail(OPSC_EEXIST, err, errlen, "backup destination %s is not a directory",
                          dest);
    bool empty = false;
    int rc = dir_is_empty(dest, &empty);
    if (rc < 0)
        return store_fail(rc, err, errlen, "backup destination %s: %s", dest, strerror(-rc));
    if (!empty)
        return store_fail(OPSC_EEXIST, err, errlen,
                          "backup destination %s is not empty: refusing to overwrite", dest);
    return 0;
}

/* mdb_env_copyfd2 begins its own read transaction, which reports
 * MDB_MAP_RESIZED when the daemon grew the map since we opened. */
static int copy_env(store *s, int fd)
{
    for (int tries = 0;; tries++) {
        int rc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
        if (rc != MDB_MAP_RESIZED || tries == 3)
            return rc;
        rc = store_adopt_map_size(s);
        if (rc)
            return rc;
        if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
            return errno;
    }
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* Copy into dest/data.mdb, created 0600 by us (not by LMDB's 0666 & umask). */
static int write_copy(store *s, const char *file, const char *dest, bool *made, char *err,
                      size_t errlen)
{
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return store_fail(-errno, err, errlen, "cannot create %s: %s", file, strerror(errno));
    *made = true;
    int rc = 0, mrc = copy_env(s, fd);
    if (mrc)
        rc = store_fail(store_mdb_err(NULL, mrc, "backup copy"), err, errlen,
                        "copying %s to %s: %s", s->dir, dest, mdb_strerror(mrc));
    else if (fsync(fd) < 0)
        rc = store_fail(-errno, err, errlen, "fsync %s: %s", file, strerror(errno));
    close(fd);
    if (rc == 0 && (rc = fsync_path(dest)) < 0)
        store_fail(rc, err, errlen, "fsync %s: %s", dest, strerror(-rc));
    return rc;
}

static int count_entries(store_txn *t, void *ud)
{
    size_t *entries = ud;
    for (size_t i = 0; i < store_db_count; i++) {
        MDB_stat ms;
        if (!t->s->dbi[i])
            continue;
        int rc = mdb_stat(t->txn, t->s->dbi[i], &ms);
        if (rc)
            return store_mdb_err(t, rc, store_dbs[i].name);
        *entries += ms.ms_entries;
    }
    return 0;
}

/* The copy must open as a store this binary understands, every database
 * root readable. */
static int verify_copy(const char *dest, store_stats *st, size_t *entries, char *err, size_t errlen)
{
    store *s;
    store_opts ro = {.read_only = true};
    char why[256];
    int rc = store_open(&s, dest, &ro, why, sizeof(why));
    if (rc)
        return store_fail(rc, err, errlen, "the backup in %s does not open: %s", dest, why);
    *entries = 0;
    rc = store_stats_get(s, st);
    if (rc == 0)
        rc = store_read(s, count_entries, entries);
    store_close(s);
    if (rc)
        return store_fail(rc, err, errlen, "the backup in %s is unreadable: %s", dest,
                          opsc_strerror(rc));
    return 0;
}

static int backup_into(store *s, const char *dest, char *err, size_t errlen)
{
    char file[PATH_MAX], lockfile[PATH_MAX];
    if (fs_join(file, sizeof(file), dest, "data.mdb") ||
        fs_join(lockfile, sizeof(lockfile), dest, "lock.mdb"))
        return store_fail(OPSC_E2BIG, err, errlen, "backup path too long: %s", dest);
    bool created, made = false;
    int rc = prepare_dest(dest, &created, err, errlen);
    if (rc)
        return rc;
    store_stats st;
    size_t entries;
    rc = write_copy(s, file, dest, &made, err, errlen);
    if (rc == 0)
        rc = verify_copy(dest, &st, &entries, err, errlen);
    if (made)
        unlink(lockfile); /* made by the verifying open; LMDB recreates it at need */
    if (rc) {
        if (made)
            unlink(file);
        if (created)
            rmdir(dest);
        return rc;
    }
    log_info("store", "backup of %s written to %s: %lld bytes, %zu entries, schema version %d",
             s->dir, dest, (long long)st.file_bytes, entries, st.schema_version);
    return 0;
}

int store_backup_from(store *s, const char *dest, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!s || !dest || !*dest)
        return store_fail(OPSC_EINVAL, err, errlen, "backup needs a store and a destination");
    if (s->pg)
        return store_fail(OPSC_ENOTSUP, err, errlen,
                          "the store is in PostgreSQL: back it up with pg_dump");
    return backup_into(s, dest, err, errlen);
}

int store_backup(const char *dir, const char *dest, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!dir || !*dir || !dest || !*dest)
        return store_fail(OPSC_EINVAL, err, errlen,
                          "backup needs a data directory and a destination");
    store *s;
    store_opts ro = {.read_only = true};
    int rc = store_open(&s, dir, &ro, err, errlen);
    if (rc)
        return rc;
    rc = backup_into(s, dest, err, errlen);
    store_close(s);
    return rc;
}
