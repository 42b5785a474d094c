/* fleet_internal.h - what the fleet module's files share: host key entries, group links, equality.
 */
#ifndef OPSC_FLEET_INTERNAL_H
#define OPSC_FLEET_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "fleet.h"
#include "store.h"

/* store_index_get()'s id buffer. */
#define FLEET_ID_MAX 40

/* Host key type names as SSH spells them ("ssh-ed25519", "ecdsa-sha2-nistp256"). */
bool host_key_type_valid(const char *type);
/* {type, fingerprint, source, added_at: now}; new reference. */
json_t *host_key_entry(const char *type, const char *fp, const char *source);

/* Take a deleted target out of every group that lists it (groups.c). */
int group_drop_target(store_txn *txn, const char *target_id);

/* One-to-many index keys "<parent>/<child>" -> child (store.h convention). */
int fleet_link(store_txn *txn, const char *db, const char *parent, const char *child);
int fleet_unlink(store_txn *txn, const char *db, const char *parent, const char *child);
/* The children under "<parent>/" in `db`; *out a new array of ids. */
int fleet_links(store_txn *txn, const char *db, const char *parent, json_t **out);

/* The core a fleet service belongs to (fleet.c). */
struct opsc_core *fleet_core(fleet *f);

/* A unique name in `index_db` free for record `id` (or already its own):
 * else OPSC_EEXIST with "a <kind> named '<name>' exists (<id>)" in `e`. */
int fleet_name_free(store_txn *txn, const char *index_db, const char *kind, const char *name,
                    const char *id, fleet_err *e);

/* json_equal that also holds for two missing members. */
bool fleet_same(const json_t *a, const json_t *b);

#endif
