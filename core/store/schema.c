/* schema.c - the store's named databases and its ordered schema migrations. */
#include <string.h>

#include "store_internal.h"
#include "util.h"

/* Record databases hold id -> compact JSON. Index databases are named
 * "<entity>_by_<field>" and map a key to a record id: a unique key for
 * names and hashes; "<parent id>/<child id>" for one-to-many indexes
 * (runs_by_job, runs_by_target), listed with store_kv_scan() on the
 * "<parent id>/" prefix in creation order. */
const store_db_def store_dbs[] = {
    {"meta", 0},
    {"users", 0},
    {"tokens", 0},
    {"refresh_tokens", 0},
    {"credentials", 0},
    {"targets", 0},
    {"groups", 0},
    {"jobs", 0},
    {"job_versions", 0},
    {"schedules", 0},
    {"schedule_state", 0}, /* schedule id -> {last_ms, anchor, queue}: the scheduler's progress */
    {"runs", 0},
    {"run_logs", 0},
    {"audit", 0},
    {"outbox", 0},
    {"steplibs", 0},
    {"users_by_name", 0},
    {"targets_by_name", 0},
    {"groups_by_name", 0},
    {"jobs_by_name", 0},
    {"credentials_by_name", 0},
    {"runs_by_job", 0},
    {"runs_by_target", 0},
    {"tokens_by_hash", 0},
    {"revoked_tokens", 0},        /* access token jti -> exp (s), until it expires */
    {"targets_by_credential", 0}, /* "<credential id>/<target id>" -> target id */
    {"groups_by_target", 0},      /* "<target id>/<group id>" -> group id: static members */
    {"groups_by_group", 0},       /* "<child group id>/<parent group id>" -> parent id */
    {"run_targets", 0},           /* "<run id>/<target index>" -> a run's target and its steps */
    {"runs_active", 0},           /* run id -> "" while queued or running (start-up recovery) */
    /* Notifications (core/notify): "outbox" holds the deliveries. */
    {"notify_channels", 0},
    {"notify_channels_by_name", 0},
    {"notify_rules", 0},
    {"notify_rules_by_name", 0},
    {"outbox_due", 0},     /* "<due ms, 16 hex>/<delivery id>" -> "" while a delivery is open */
    {"outbox_groups", 0},  /* "<rule>/<channel>/<event>/<subject>" -> {delivery, until}: merging */
    {"notify_streaks", 0}, /* "job/<id>", "schedule/<id>" -> consecutive failures (decimal) */
    {"hooks", 0},
    {"hooks_by_name", 0},
    {"hooks_seen", 0}, /* "<hook id>/<message id>" -> ms first seen: replays refused */
    {"revoked_sessions", 0},      /* session (refresh family) -> until (s): its access tokens */
    {"discovery_scans", 0},
    {"discovery_scans_active", 0},     /* scan id -> "" while running (start-up recovery) */
    {"discovery_hosts", 0},            /* one per address ever found */
    {"discovery_hosts_by_address", 0}, /* address -> host id */
    {"discovery_scan_hosts", 0},       /* "<scan id>/<host id>" -> host id: what a scan saw */
    {"discovery_profiles", 0},
    {"discovery_profiles_by_name", 0},
    {"discovery_profile_hosts", 0}, /* "<profile id>/<host id>" -> host id */
    {"discovery_profile_state", 0}, /* profile id -> {last_scan_id, last_run_at} */
};
const size_t store_db_count = sizeof(store_dbs) / sizeof(store_dbs[0]);

/* Version 1: give the data directory an identity, so a backup or a log
 * line can say which store it came from. */
static int m1_identity(store_txn *txn)
{
    char id[UUID_STR_LEN], now[RFC3339_LEN];
    int rc = uuid7_new(id);
    if (rc < 0)
        return rc;
    rfc3339_format(clock_now_ms(), now);
    rc = store_kv_put(txn, "meta", "store_id", strlen("store_id"), id, strlen(id));
    if (rc == 0)
        rc = store_kv_put(txn, "meta", "created_at", strlen("created_at"), now, strlen(now));
    return rc;
}

/* Append only; never renumber or edit a released migration. Each runs once,
 * in order, in the single write transaction of store_open(). */
const store_migration store_migrations[] = {
    {1, "store identity (meta: store_id, created_at)", m1_identity},
};
const size_t store_migration_count = sizeof(store_migrations) / sizeof(store_migrations[0]);
