/* rest.h - small helpers shared by the REST resources: bodies, If-Match/ETag, paging, list answers.
 *
 * Conventions they implement (ARCHITECTURE.md, HTTP API): POST answers 201
 * with the whole record; lists answer {"items": [...], "next_cursor": ...}
 * paged by `limit` (1..500, default 50) and `cursor` (the last id seen);
 * records carry `version`, sent as ETag "<version>" and checked against
 * If-Match on updates (412 on mismatch).
 *
 * Thread: loop thread.
 */
#ifndef OPSC_REST_H
#define OPSC_REST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "store.h"

#define REST_LIMIT_DEFAULT 50
#define REST_LIMIT_MAX     500

/* The JSON object body, or NULL after answering 400. */
json_t *rest_body(http_req *req);
/* If-Match as a version: 0 when absent; -1 after answering 400 when malformed. */
int64_t rest_if_match(http_req *req);
/* ETag: "<version>" of `rec`. */
void rest_etag(http_req *req, json_t *rec);
/* limit and cursor from the query; false after answering 400. */
bool rest_page(http_req *req, size_t *limit, const char **cursor);
/* Boolean query parameter ("true"/"1"); false when absent. */
bool rest_query_bool(http_req *req, const char *name);
/* {"items": items, "next_cursor": cursor or null}; steals `items`. */
json_t *rest_list(json_t *items, const char *next_cursor);
/* Answer an error code from a store or module with a message. */
void rest_error(http_req *req, int rc, const char *what);
/* 503 with Retry-After: 1 (the bounded slow-work queue is full). */
void rest_busy(http_req *req, const char *msg);
/* 201 with the record (stolen) and a Location header. */
void rest_created(http_req *req, const char *collection, json_t *rec);

/* One page of records of `db` in id order: `keep` decides (may be NULL),
 * `view` makes the public copy (NULL: the record itself). */
typedef struct rest_scan {
    const char *db;
    size_t limit;
    const char *cursor;
    bool (*keep)(json_t *rec, void *ud);
    json_t *(*view)(json_t *rec);
    void *ud;
    json_t *items; /* out */
    char next[40]; /* out: "" on the last page */
} rest_scan;
int rest_scan_page(store_txn *txn, rest_scan *s);
/* A whole list endpoint: limit and cursor from the query, one page of `scan`
 * read from `st`, answered {"items", "next_cursor"} (or the error, naming
 * `what`). Returns HTTP_DONE. */
int rest_list_records(http_req *req, store *st, rest_scan *scan, const char *what);

/* Optional string member: true when absent or a string of at most `max`
 * bytes (stored in *out, NULL when absent); else false after answering 400. */
bool rest_opt_string(http_req *req, json_t *body, const char *key, size_t max, const char **out);

/* Below the admin role, `v` loses its "path" members and those of the
 * objects in its "items", "versions" and "refused" lists (recursively):
 * file-system paths of the appliance are for its admins only. Returns `v`. */
json_t *rest_hide_paths(http_req *req, json_t *v);

/* Zero the request's raw body and every string of its JSON body in place,
 * once a handler has taken what it needs from a body holding secrets. */
void rest_wipe_body(http_req *req);

#endif
