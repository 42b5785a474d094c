/* store.c - opening the store: data directory, exclusive lock, LMDB environment, migrations. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "log.h"
#include "store_internal.h"
#include "util.h"

#define MIB               (INT64_C(1) << 20)
#define DEFAULT_MAP_SIZE  (64 * MIB)
#define DEFAULT_MAX_MAP   (64 * 1024 * MIB)
#define DATA_FILE_MODE    0600
#define MIGRATION_KEY_FMT "migration.%04d"

int store_fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* What an access failure means to whoever reads the message. */
static const char *access_hint(int rc)
{
    if (rc == OPSC_EACCES || rc == OPSC_EPERM)
        return " (the daemon's user needs read, write and search permission on the data "
               "directory)";
    return "";
}

/* ---- data directory and exclusive lock --------------------------------- */

static void holder_pid(int fd, char *pid, size_t n)
{
    ssize_t got = pread(fd, pid, n - 1, 0);
    pid[got > 0 ? got : 0] = '\0';
    pid[strcspn(pid, "\n")] = '\0';
    if (!pid[0])
        snprintf(pid, n, "unknown");
}

/* flock(), not fcntl(): the lock belongs to the open file description, so
 * it goes when the holder dies (even by SIGKILL), an unrelated close() of
 * the file elsewhere in the process does not drop it, and a second open in
 * the same process conflicts too. O_CLOEXEC keeps it from exec'd children.
 * The file also says who holds it, for the refusal message. */
static int take_lock(store *s, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (fs_join(path, sizeof(path), s->dir, "lock"))
        return store_fail(OPSC_E2BIG, err, errlen, "data directory path too long: %s", s->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, DATA_FILE_MODE);
    if (fd < 0) {
        int rc = -errno;
        return store_fail(rc, err, errlen, "cannot open lock file %s: %s%s", path, strerror(errno),
                          access_hint(rc));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char pid[32];
        holder_pid(fd, pid, sizeof(pid));
        close(fd);
        if (e == EWOULDBLOCK)
            return store_fail(OPSC_EBUSY, err, errlen,
                              "data directory %s is in use by another process (pid %s holds %s)",
                              s->dir, pid, path);
        return store_fail(-e, err, errlen, "cannot lock %s: %s", path, strerror(e));
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (fchmod(fd, DATA_FILE_MODE) < 0 || ftruncate(fd, 0) < 0 || pwrite(fd, pid, n, 0) != n) {
        int e = errno;
        close(fd);
        return store_fail(-e, err, errlen, "cannot write lock file %s: %s", path, strerror(e));
    }
    s->lock_fd = fd;
    return 0;
}

static int prepare_dir(store *s, char *err, size_t errlen)
{
    struct stat st;
    if (s->read_only) {
        char path[PATH_MAX];
        if (fs_join(path, sizeof(path), s->dir, "data.mdb") == 0 && stat(path, &st) < 0) {
            int rc = -errno;
            if (rc == OPSC_ENOENT)
                return store_fail(rc, err, errlen, "no store in %s (no data.mdb)", s->dir);
            return store_fail(rc, err, errlen, "cannot access the store in %s: %s%s", s->dir,
                              strerror(-rc), access_hint(rc));
        }
        return 0;
    }
    int rc = fs_mkdir_p(s->dir, 0700);
    if (rc < 0)
        return store_fail(rc, err, errlen, "cannot create data directory %s: %s%s", s->dir,
                          strerror(-rc), access_hint(rc));
    if (stat(s->dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return store_fail(OPSC_EINVAL, err, errlen, "data directory %s is not a directory", s->dir);
    return take_lock(s, err, errlen);
}

/* LMDB creates its files 0600 minus the umask; a copy restored by hand may
 * be wider. Records hold credentials metadata and token hashes: narrow it. */
static void narrow_modes(const store *s)
{
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[PATH_MAX];
        struct stat st;
        if (fs_join(path, sizeof(path), s->dir, files[i]) || stat(path, &st) < 0)
            continue;
        if ((st.st_mode & 07777) == DATA_FILE_MODE)
            continue;
        log_warn("store", "%s had mode %04o: setting 0600", path, (unsigned)(st.st_mode & 07777));
        if (chmod(path, DATA_FILE_MODE) < 0)
            log_error("store", "chmod %s: %s", path, strerror(errno));
    }
}

/* ---- environment -------------------------------------------------------- */

static int open_env(store *s, int64_t map_size, char *err, size_t errlen)
{
    int rc = mdb_env_create(&s->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(s->env, (MDB_dbi)store_db_count);
    /* Read-only: take the map size the writer last recorded. */
    if (rc == 0 && !s->read_only)
        rc = mdb_env_set_mapsize(s->env, (size_t)map_size);
    unsigned int flags = MDB_NOTLS | (s->read_only ? MDB_RDONLY : 0);
    if (rc == 0)
        rc = mdb_env_open(s->env, s->dir, flags, DATA_FILE_MODE);
    if (rc) {
        int code = store_mdb_err(NULL, rc, "opening the environment");
        return store_fail(code, err, errlen, "cannot open the store in %s: %s%s", s->dir,
                          mdb_strerror(rc), access_hint(code));
    }
    if (!s->read_only)
        narrow_modes(s);
    int dead = 0;
    rc = mdb_reader_check(s->env, &dead);
    if (rc)
        log_warn("store", "stale reader check failed: %s", mdb_strerror(rc));
    else if (dead > 0)
        log_info("store", "cleared %d stale reader slot(s) left by dead processes", dead);
    else
        log_debug("store", "no stale readers");
    return 0;
}

/* ---- schema version and migrations -------------------------------------- */

static int read_schema_version(store_txn *t, int *version)
{
    const void *val;
    size_t vlen;
    int rc = store_kv_get(t, "meta", STORE_META_SCHEMA_VERSION, strlen(STORE_META_SCHEMA_VERSION),
                          &val, &vlen);
    if (rc == OPSC_ENOENT) {
        *version = 0; /* a new store */
        return 0;
    }
    if (rc)
        return rc;
    char buf[16];
    char *end;
    if (vlen == 0 || vlen >= sizeof(buf))
        return OPSC_ECORRUPT;
    memcpy(buf, val, vlen);
    buf[vlen] = '\0';
    long v = strtol(buf, &end, 10);
    if (*end || v < 0 || v > INT_MAX)
        return OPSC_ECORRUPT;
    *version = (int)v;
    return 0;
}

static int write_schema_version(store_txn *t, const store_migration *m)
{
    char key[32], val[16], now[RFC3339_LEN];
    snprintf(key, sizeof(key), MIGRATION_KEY_FMT, m->version);
    rfc3339_format(clock_now_ms(), now);
    json_t *note = json_pack("{s:s, s:s}", "description", m->description, "applied_at", now);
    char *text = note ? json_dumps(note, JSON_COMPACT) : NULL;
    json_decref(note);
    if (!text)
        return OPSC_ENOMEM;
    int rc = store_kv_put(t, "meta", key, strlen(key), text, strlen(text));
    free(text);
    int n = snprintf(val, sizeof(val), "%d", m->version);
    if (rc == 0)
        rc = store_kv_put(t, "meta", STORE_META_SCHEMA_VERSION, strlen(STORE_META_SCHEMA_VERSION),
                          val, (size_t)n);
    return rc;
}

typedef struct migrate_ctx {
    const store_migration *migs;
    size_t n;
    int from;
    char *err;
    size_t errlen;
} migrate_ctx;

static int open_dbis(store_txn *t, unsigned int flags)
{
    if (t->s->pg)
        return 0; /* the handles are the table's names (store_pg_open) */
    for (size_t i = 0; i < store_db_count; i++) {
        int rc = mdb_dbi_open(t->txn, store_dbs[i].name, flags | store_dbs[i].flags, &t->s->dbi[i]);
        if (rc == MDB_NOTFOUND && !(flags & MDB_CREATE)) {
            t->s->dbi[i] = 0; /* read-only open of an older store */
            continue;
        }
        if (rc)
            return store_mdb_err(t, rc, store_dbs[i].name);
    }
    return 0;
}

static int latest_version(const migrate_ctx *m)
{
    return m->n ? m->migs[m->n - 1].version : 0;
}

static int check_version(const migrate_ctx *m, const char *dir, int version)
{
    if (version <= latest_version(m))
        return 0;
    return store_fail(OPSC_ENOTSUP, m->err, m->errlen,
                      "the store in %s has schema version %d, newer than this opsconductord knows "
                      "(%d): run a newer opsconductord, or restore a backup made by this version",
                      dir, version, latest_version(m));
}

/* Runs inside store_write(): creates the databases, then every pending
 * migration, all in one transaction so a failure leaves the store as it was. */
static int migrate_txn(store_txn *t, void *ud)
{
    migrate_ctx *m = ud;
    m->err[0] = '\0'; /* from an attempt that ran out of map */
    int rc = open_dbis(t, MDB_CREATE);
    if (rc == 0)
        rc = read_schema_version(t, &m->from);
    if (rc == 0)
        rc = check_version(m, t->s->dir, m->from);
    for (size_t i = 0; rc == 0 && i < m->n; i++) {
        const store_migration *mig = &m->migs[i];
        if (mig->version <= m->from)
            continue;
        rc = mig->apply(t);
        if (rc == 0)
            rc = write_schema_version(t, mig);
        if (rc)
            store_fail(rc, m->err, m->errlen,
                       "migration %d (%s) failed: %s; the store is unchanged", mig->version,
                       mig->description, opsc_strerror(rc));
    }
    return rc;
}

static int validate_migrations(const store_migration *migs, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        int prev = i ? migs[i - 1].version : 0;
        if (migs[i].version <= prev || !migs[i].apply || !migs[i].description)
            return store_fail(
                OPSC_EINVAL, err, errlen,
                "migration list: entry %zu (version %d) is out of order or incomplete", i,
                migs[i].version);
    }
    return 0;
}

static int run_migrations(store *s, migrate_ctx *m)
{
    int rc = store_write(s, migrate_txn, m);
    if (rc) {
        if (!m->err[0])
            store_fail(rc, m->err, m->errlen, "cannot prepare the store in %s: %s", s->dir,
                       opsc_strerror(rc));
        return rc;
    }
    s->schema_version = m->from > latest_version(m) ? m->from : latest_version(m);
    if (s->schema_version != m->from)
        log_info("store", "migrated %s from schema version %d to %d", s->dir, m->from,
                 s->schema_version);
    return 0;
}

/* Read-only: no migrations; refuse a schema this binary cannot read. */
static int open_read_only(store *s, migrate_ctx *m)
{
    store_txn t = {.s = s};
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t.txn);
    if (rc)
        return store_fail(store_mdb_err(NULL, rc, "read-only open"), m->err, m->errlen,
                          "cannot read the store in %s: %s", s->dir, mdb_strerror(rc));
    rc = open_dbis(&t, 0);
    if (rc == 0)
        rc = read_schema_version(&t, &s->schema_version);
    if (rc) {
        mdb_txn_abort(t.txn);
        return store_fail(rc, m->err, m->errlen, "cannot read the store in %s: %s", s->dir,
                          opsc_strerror(rc));
    }
    rc = mdb_txn_commit(t.txn); /* keeps the database handles */
    if (rc)
        return store_fail(store_mdb_err(NULL, rc, "read-only open"), m->err, m->errlen,
                          "cannot read the store in %s: %s", s->dir, mdb_strerror(rc));
    return check_version(m, s->dir, s->schema_version);
}

/* ---- open / close ------------------------------------------------------- */

static int check_opts(const char *dir, const store_opts *o, int64_t *map, int64_t *max, char *err,
                      size_t errlen)
{
    if (!dir || !*dir)
        return store_fail(OPSC_EINVAL, err, errlen, "no data directory given");
    *map = o && o->map_size ? o->map_size : DEFAULT_MAP_SIZE;
    *max = o && o->max_map_size ? o->max_map_size : DEFAULT_MAX_MAP;
    if (*map < 0 || *max < 0 || *map > *max)
        return store_fail(OPSC_EINVAL, err, errlen,
                          "map size %" PRId64 " must be positive and at most max_map_size %" PRId64,
                          *map, *max);
    return 0;
}

static store *store_alloc(const char *dir, bool read_only)
{
    store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->lock_fd = -1;
    s->read_only = read_only;
    s->dir = strdup(dir);
    s->dbi = calloc(store_db_count, sizeof(*s->dbi));
    /* Prefer the resizer: readers on worker threads overlap continuously and
     * would otherwise starve it. Hence also: never nest store_read(). */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int lrc = pthread_rwlock_init(&s->resize_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (!s->dir || !s->dbi || lrc != 0) {
        free(s->dir);
        free(s->dbi);
        free(s);
        return NULL;
    }
    return s;
}

int store_open_with(store **out, const char *dir, const store_opts *opts,
                    const store_migration *migs, size_t nmigs, char *err, size_t errlen)
{
    char scratch[256];
    if (!err || !errlen) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    err[0] = '\0';
    if (!out)
        return store_fail(OPSC_EINVAL, err, errlen, "no handle to open into");
    *out = NULL;
    int64_t map = 0, max = 0;
    int rc = check_opts(dir, opts, &map, &max, err, errlen);
    if (rc == 0)
        rc = validate_migrations(migs, nmigs, err, errlen);
    if (rc)
        return rc;
    store *s = store_alloc(dir, opts && opts->read_only);
    if (!s)
        return store_fail(OPSC_ENOMEM, err, errlen, "out of memory");
    s->max_map_size = max;
    migrate_ctx m = {.migs = migs, .n = nmigs, .err = err, .errlen = errlen};
    const char *pg_url =
        opts && opts->postgresql_url && *opts->postgresql_url ? opts->postgresql_url : NULL;
    rc = prepare_dir(s, err, errlen);
    if (rc == 0)
        rc = pg_url ? store_pg_open(s, pg_url, err, errlen) : open_env(s, map, err, errlen);
    if (rc == 0)
        rc = s->read_only ? open_read_only(s, &m) : run_migrations(s, &m);
    if (rc == 0 && s->pg)
        rc = store_pg_migrated(s, err, errlen);
    if (rc) {
        store_close(s);
        return rc;
    }
    if (s->pg) {
        *out = s;
        return 0;
    }
    store_space_init(s);
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    log_info("store", "opened %s%s: schema version %d, map %zu MiB", dir,
             s->read_only ? " read-only" : "", s->schema_version, info.me_mapsize >> 20);
    *out = s;
    return 0;
}

int store_open(store **out, const char *dir, const store_opts *opts, char *err, size_t errlen)
{
    return store_open_with(out, dir, opts, store_migrations, store_migration_count, err, errlen);
}

void store_close(store *s)
{
    if (!s)
        return;
    store_pg_close(s);
    if (s->env)
        mdb_env_close(s->env);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    pthread_rwlock_destroy(&s->resize_lock);
    free(s->dbi);
    free(s->dir);
    free(s);
}

int store_stats_get(store *s, store_stats *st)
{
    if (!s || !st)
        return OPSC_EINVAL;
    if (s->pg)
        return store_pg_stats(s, st);
    MDB_envinfo info;
    MDB_stat ms;
    int rc = mdb_env_info(s->env, &info);
    if (rc == 0)
        rc = mdb_env_stat(s->env, &ms);
    if (rc)
        return store_mdb_err(NULL, rc, "reading statistics");
    char path[PATH_MAX];
    struct stat fst;
    if (fs_join(path, sizeof(path), s->dir, "data.mdb") || stat(path, &fst) < 0)
        return OPSC_EIO;
    st->map_size = (int64_t)info.me_mapsize;
    st->used_bytes = ((int64_t)info.me_last_pgno + 1) * (int64_t)ms.ms_psize;
    st->file_bytes = (int64_t)fst.st_size;
    st->schema_version = s->schema_version;
    return 0;
}
