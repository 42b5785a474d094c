/* reccache.h - parsed copies of store records, reused while their stored bytes are unchanged.
 *
 * The auth hook reads the caller's user (and API token) record on every
 * request, so that a change applies to the very next request. Reading is
 * cheap (LMDB hands out the stored bytes); parsing the JSON is not. This
 * cache keeps the parsed record next to a copy of the bytes it came from:
 * each lookup still reads the current bytes in the caller's transaction
 * and parses again whenever they differ, so it never answers stale data.
 *
 * Direct-mapped by (database, id); a collision just costs a parse.
 * Thread: one thread (the loop).
 */
#ifndef OPSC_RECCACHE_H
#define OPSC_RECCACHE_H

#include <jansson.h>
#include <stddef.h>

#include "store.h"

typedef struct reccache reccache;

int reccache_new(reccache **out, size_t slots);
void reccache_free(reccache *c);
/* Keep no record longer than `len` bytes as stored (0: no limit): such a
 * record is still answered, and dropped at the next call. */
void reccache_set_max(reccache *c, size_t len);

/* The record `id` of `db` (a static string) as stored now. *out is borrowed
 * until the next call on the cache. OPSC_ENOENT when there is none. */
int reccache_get(reccache *c, store_txn *txn, const char *db, const char *id, json_t **out);
/* The same, with the stored bytes (compact JSON) the record was parsed from:
 * a handler can send them as they are instead of encoding the record again.
 * *raw is borrowed like *out. */
int reccache_get_raw(reccache *c, store_txn *txn, const char *db, const char *id, json_t **out,
                     const char **raw, size_t *len);

#endif
