/* run_read.h - reading runs and their logs from the store: one run whole, lists, log pages.
 *
 * Storage (written by the executor):
 *   "runs"         run id -> the run without its targets (a record: id, created_at, version...)
 *   "run_targets"  "<run id>/<target index, 6 digits>" -> {target_id, name, state, steps: [...]}
 *   "run_logs"     "<run id>/<target index>/<first seq, 12 digits>" -> "<last seq>\n[records]"
 *                  records {seq, step_id, stream, ts, text}; `seq` numbers every event of a
 *                  run (log records and state changes), so it is the SSE event id too
 *   "runs_by_job", "runs_by_target"  "<job or target id>/<run id>" -> run id
 *   "runs_active"  run id -> "": queued or running (start-up marks them interrupted)
 *
 * Thread: any thread with a transaction of its own.
 */
#ifndef OPSC_RUN_READ_H
#define OPSC_RUN_READ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

void run_target_key(char *buf, size_t n, const char *run_id, uint32_t idx);
void run_log_key(char *buf, size_t n, const char *run_id, uint32_t idx, uint64_t first_seq);

/* The run with its "targets" array (per target and per step). OPSC_ENOENT. */
int run_read(store_txn *txn, const char *run_id, json_t **out);
/* 0 when the run exists, else OPSC_ENOENT (or the store's error). Its own transaction. */
int run_exists(store *s, const char *run_id);
/* Only the targets (array, index order). */
int run_read_targets(store_txn *txn, const char *run_id, json_t **out);

typedef struct run_filter {
    const char *job_id;    /* NULL: any */
    const char *target_id; /* NULL: any */
    const char *state;     /* NULL: any */
    const char *schedule_id; /* NULL: any; runs fired by that schedule */
    int64_t since_ms;      /* 0: any; runs created at or after */
    int64_t until_ms;      /* 0: any; runs created at or before */
} run_filter;

/* Runs newest first after `cursor` (a run id; NULL: the newest), at most
 * `limit`: *items (new array), next[] "" on the last page. */
int run_list(store_txn *txn, const run_filter *f, const char *cursor, size_t limit, json_t **items,
             char next[40]);

/* A page of log records, in target then sequence order, after the cursor
 * "<target index>.<seq>" (NULL: from the start). `target` -1: every target.
 * `stream` and `step_id` filter (NULL: all). Records get their target_id
 * from `targets` (run_read_targets). *next: the cursor, "" at the end. */
typedef struct run_log_query {
    const char *run_id;
    const json_t *targets;
    long target;
    const char *cursor;
    const char *stream;
    const char *step_id;
    size_t limit;
} run_log_query;
int run_log_page(store_txn *txn, const run_log_query *q, json_t **items, char next[48]);

/* Records of every target with seq > `after`, in seq order, about
 * `max_bytes` of them per call (at least one chunk). *more is true when
 * later records exist. Records carry target_id. */
int run_log_window(store_txn *txn, const char *run_id, const json_t *targets, uint64_t after,
                   size_t max_bytes, json_t **items, bool *more);

/* The text of the last `max_lines` stdout/stderr records of target `idx`
 * (of step `step_id`; NULL: any), oldest first: *lines is a new array. Only
 * the last few chunks are read, so a very chatty step may give fewer. */
int run_log_tail(store_txn *txn, const char *run_id, uint32_t idx, const char *step_id,
                 size_t max_lines, json_t **lines);

#endif
