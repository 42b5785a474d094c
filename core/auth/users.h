/* users.h - user records in the store: names, roles, lookup by name, the public view.
 *
 * A user is a record in the "users" database (id, created_at, updated_at,
 * version from the store) with: username (lowercase, unique through the
 * "users_by_name" index), display_name, email, role ("admin", "operator",
 * "viewer"), enabled, provider ("local", "ldap"...), last_login_at, and for
 * local users password_hash and password_changed_at. password_hash never
 * leaves this module's callers: users_public() drops it.
 *
 * Thread: functions taking a store_txn run inside that transaction, on
 * whichever thread owns it (read transactions may run on worker threads).
 * The rest are pure.
 */
#ifndef OPSC_USERS_H
#define OPSC_USERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "store.h"

#define USERNAME_MAX 64

/* Roles, as http.h orders them (ROLE_VIEWER < ROLE_OPERATOR < ROLE_ADMIN). */
int role_parse(const char *name); /* ROLE_* or -1 */
const char *role_name(int role);  /* "viewer"... or "public" */

/* Usernames: 1..64 of [a-z0-9._@-] after folding ASCII to lowercase, not
 * starting with '.' or '-'. users_fold() writes the folded form; returns
 * OPSC_EINVAL when the result is not a valid username. */
int users_fold(const char *in, char out[USERNAME_MAX + 1]);

int users_get(store_txn *txn, const char *id, json_t **out);
/* By (folded) username; OPSC_ENOENT when none. */
int users_find(store_txn *txn, const char *username, json_t **out);
/* Insert a new user (fields already validated) and its name index entry;
 * OPSC_EEXIST when the username is taken. */
int users_create(store_txn *txn, json_t *rec);
/* Replace; the username cannot change. */
int users_update(store_txn *txn, json_t *rec, int64_t expect_version);
/* Delete the user, its name index entry, its API tokens and refresh tokens. */
int users_delete(store_txn *txn, const char *id, int64_t expect_version);
/* Number of enabled admins other than `except_id` (NULL: all). */
int users_count_admins(store_txn *txn, const char *except_id, size_t *count);
/* True when the store has no user at all (first start). */
int users_empty(store_txn *txn, bool *empty);

/* A new reference to a copy of `rec` without internal fields. */
json_t *users_public(json_t *rec);

/* End every session of `user_id` but `except_session` (NULL: all): its
 * refresh tokens go and the access tokens issued in it stop working
 * (password change, disable, delete). */
int users_revoke_sessions(store_txn *txn, const char *user_id, const char *except_session);
/* Mark every API token of `user_id` revoked (disable): re-enabling the user
 * does not bring them back. */
int users_revoke_api_tokens(store_txn *txn, const char *user_id, const char *reason);

#endif
