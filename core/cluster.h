/* cluster.h - cluster mode on the loop: this node's heartbeat, the leader lease, and the
 * scheduler on the leader only (docs/cluster.md 2.1-2.3).
 *
 * On a PostgreSQL store every node beats every fifth of [store] lease_ttl:
 * one statement (store_cluster_beat) on a connection of its own, run on
 * the loop like every store call and bounded like them by the statement
 * timeout (the leader's digest and view add two reads). The node that gets the lease starts its
 * scheduler, which loads every schedule and fires what is due; a leader
 * whose last renewal was sent two thirds of the lease ago steps down
 * (stops firing) before the database can give the lease to another node,
 * and every run it creates from a fire is fenced with its epoch. While it
 * leads it reloads the schedules when their records changed (an API write
 * on any node). On LMDB none of this exists: the one daemon fires.
 *
 * Thread: loop only.
 */
#ifndef OPSC_CLUSTER_H
#define OPSC_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct opsc_core;
typedef struct cluster cluster;
typedef struct store_txn store_txn;

/* Join: the first beat is queued at once. After the HTTP server (the
 * node's address is its bound port). 0 or OPSC_ENOMEM. */
int cluster_start(cluster **out, struct opsc_core *c);
/* Stop beating and leave (row and lease deleted: another node leads at its
 * next beat); the scheduler is the caller's to stop. Idempotent. */
void cluster_stop(cluster *cl);
/* After the loop stopped running work (core_free). NULL is a no-op. */
void cluster_free(cluster *cl);
/* Whether this node leads now, and with which epoch. */
bool cluster_leading(const cluster *cl, int64_t *epoch);
/* exec_opts.on_run_new: a run of a schedule's fire is created only by the
 * leader at its epoch and only once per (schedule, planned instant). `ud`
 * is the core. */
int cluster_on_run_new(void *ud, store_txn *txn, const json_t *run);

#endif
