/* bench_store.c - store throughput: durable writes (1 and 1000 per txn), point reads, scans.
 *
 * Usage: bench_store [DIR]   (DIR: where to create a scratch store; default
 * a new directory under /var/tmp, so the figures are for a real disk, not
 * tmpfs). Each record is a ~350-byte target JSON plus its name index entry,
 * as the API writes them. Every commit is durable (fsync), as in the daemon.
 */
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "log.h"
#include "store.h"
#include "util.h"

#define SINGLE_WRITES 2000
#define BATCHES       100
#define BATCH_SIZE    1000
#define GETS_BATCHED  200000
#define GETS_SINGLE   50000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct bench {
    store *s;
    char (*ids)[40];
    long nids;
    long next;     /* next record number */
    long per_txn;  /* records per write transaction, or gets per read */
    unsigned seed; /* for random reads */
    long found;
} bench;

static int write_targets(store_txn *t, void *ud)
{
    bench *b = ud;
    for (long i = 0; i < b->per_txn; i++) {
        char name[32];
        snprintf(name, sizeof(name), "host-%07ld.example.net", b->next + i);
        json_t *rec =
            json_pack("{s:s, s:s, s:i, s:s, s:s, s:{s:s, s:s}, s:s, s:i, s:b}", "name", name,
                      "address", "198.51.100.7", "port", 22, "os_family", "linux", "transport",
                      "ssh", "labels", "env", "prod", "role", "web", "host_key_policy", "strict",
                      "command_timeout_s", 600, "enabled", 1);
        int rc = rec ? store_create(t, "targets", rec) : OPSC_ENOMEM;
        if (rc == 0)
            rc = store_index_put(t, "targets_by_name", name,
                                 json_string_value(json_object_get(rec, "id")));
        json_decref(rec);
        if (rc)
            return rc;
    }
    return 0;
}

static double run_writes(bench *b, long txns, long per_txn)
{
    b->per_txn = per_txn;
    double t0 = now_s();
    for (long i = 0; i < txns; i++, b->next += per_txn) {
        int rc = store_write(b->s, write_targets, b);
        if (rc) {
            fprintf(stderr, "write: %s\n", opsc_strerror(rc));
            exit(1);
        }
    }
    return (double)(txns * per_txn) / (now_s() - t0);
}

static int collect_id(const char *id, json_t *rec, void *ud)
{
    bench *b = ud;
    (void)rec;
    snprintf(b->ids[b->nids++], sizeof(b->ids[0]), "%s", id);
    return 0;
}

static int scan_all(store_txn *t, void *ud)
{
    return store_scan(t, "targets", NULL, false, collect_id, ud);
}

static int random_gets(store_txn *t, void *ud)
{
    bench *b = ud;
    for (long i = 0; i < b->per_txn; i++) {
        json_t *rec;
        int rc = store_get(t, "targets", b->ids[rand_r(&b->seed) % b->nids], &rec);
        if (rc)
            return rc;
        b->found += json_object_size(rec) > 0;
        json_decref(rec);
    }
    return 0;
}

static double run_gets(bench *b, long total, long per_txn)
{
    b->per_txn = per_txn;
    double t0 = now_s();
    for (long done = 0; done < total; done += per_txn)
        if (store_read(b->s, random_gets, b) != 0)
            exit(1);
    return (double)total / (now_s() - t0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

int main(int argc, char **argv)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/opsc-bench-XXXXXX", argc > 1 ? argv[1] : "/var/tmp");
    if (!mkdtemp(dir)) {
        perror(dir);
        return 1;
    }
    log_set_level(OPSC_LOG_WARN);
    bench b = {.seed = 42};
    char err[256];
    if (store_open(&b.s, dir, NULL, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    long total = SINGLE_WRITES + (long)BATCHES * BATCH_SIZE;
    b.ids = malloc((size_t)total * sizeof(*b.ids));
    printf("store benchmark in %s (each commit fsynced)\n", dir);
    printf("writes, 1 record per txn:      %10.0f records/s (%d txns)\n",
           run_writes(&b, SINGLE_WRITES, 1), SINGLE_WRITES);
    printf("writes, %d records per txn:  %10.0f records/s (%d txns)\n", BATCH_SIZE,
           run_writes(&b, BATCHES, BATCH_SIZE), BATCHES);
    double t0 = now_s();
    store_read(b.s, scan_all, &b);
    printf("scan, all records:             %10.0f records/s (%ld records)\n",
           (double)b.nids / (now_s() - t0), b.nids);
    printf("reads by id, 1000 per txn:     %10.0f reads/s\n", run_gets(&b, GETS_BATCHED, 1000));
    printf("reads by id, 1 per txn:        %10.0f reads/s\n", run_gets(&b, GETS_SINGLE, 1));
    store_stats st;
    store_stats_get(b.s, &st);
    printf("data.mdb %.1f MiB, map %.0f MiB, %ld reads found\n", (double)st.file_bytes / 1048576,
           (double)st.map_size / 1048576, b.found);
    store_close(b.s);
    free(b.ids);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
