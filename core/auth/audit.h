/* audit.h - the audit log: who did what, when, from where, with what outcome.
 *
 * Every mutating API call (through the HTTP completion hook) and every
 * login attempt is recorded in the "audit" database, keyed by UUIDv7 so
 * records sort by time. Events are buffered and written together on the
 * next loop turn (one durable transaction for many events); a periodic
 * sweep deletes records older than the retention. An event never carries a
 * secret: callers pass names, ids and short reasons only.
 *
 * Thread: loop thread only (audit_list runs in any read transaction).
 */
#ifndef OPSC_AUDIT_H
#define OPSC_AUDIT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "store.h"

typedef struct audit audit;

typedef struct audit_event {
    const char *actor;    /* username; NULL or "" for anonymous */
    const char *actor_id; /* user id, or NULL */
    const char *client;   /* client address */
    const char *action;   /* "login", "logout", "token.refresh", "POST /api/v1/users"... */
    const char *object;   /* what was acted on: an id or a name; may be NULL */
    const char *outcome;  /* "success", "failure", "denied", "throttled" */
    int status;           /* HTTP status, 0 when none */
    const char *detail;   /* short reason; may be NULL */
} audit_event;

/* `retention_ms` 0 keeps everything. Sweeps run at open and hourly. */
int audit_open(audit **out, uv_loop_t *loop, store *s, int64_t retention_ms);
/* Write buffered events, stop the timers and free (after the loop has run
 * the close callbacks). */
void audit_close(audit *a);

/* Buffer one event (the strings are copied). */
void audit_record(audit *a, const audit_event *ev);
/* Write the buffer now. */
int audit_flush(audit *a);
/* Delete records older than the retention at `now_ms`; *deleted counts them. */
int audit_sweep(audit *a, int64_t now_ms, size_t *deleted);

typedef struct audit_query {
    const char *actor, *action, *outcome, *object, *client; /* exact matches; NULL: any */
    int64_t since_ms, until_ms;                             /* 0: unbounded */
    size_t limit;                                           /* 1..500 */
    const char *cursor; /* next_cursor of the previous page, or NULL */
} audit_query;

/* Newest first. *items is a new array; next_cursor is "" on the last page. */
int audit_list(store_txn *txn, const audit_query *q, json_t **items, char next_cursor[40]);

#endif
