/* fleet.h - the fleet: target and group records, resolving target specs, connectivity tests.
 *
 * Targets ("targets" database, unique names through "targets_by_name") are
 * the machines the daemon reaches through a transport. Every target write
 * keeps, in the same transaction, the index "targets_by_credential"
 * ("<credential id>/<target id>", read by the vault's in-use check) and
 * drops a deleted target from the groups that list it ("groups_by_target":
 * "<target id>/<group id>").
 *
 * Groups ("groups", "groups_by_name") hold static members (target ids), an
 * optional label selector (selector.h; empty: none) and nested groups
 * ("groups_by_group": "<child id>/<parent id>"); a write that would close a
 * cycle is refused, naming it.
 *
 * Events on the core's bus (subject: the record's id; data {id, name, ...}):
 * "target.created", "target.updated", "target.deleted", "target.tested"
 * (data: the test result), "target.host_key_learned" (TOFU, also audited as
 * action "target.host_key_learned" by actor "system"), "target.host_key_mismatch" (a
 * connect refused because the server's key is not the recorded one; audited, outcome
 * "denied"), "target.host_key_added",
 * "target.host_keys_reset", "group.created", "group.updated", "group.deleted".
 *
 * A target spec, as in jobs and schedules, is {"ids": [target ids],
 * "groups": [group ids], "selector": "..."}: every member optional, the
 * union of what each names.
 *
 * Thread: loop thread, except the store_txn functions, which run in
 * whatever transaction they are given.
 */
#ifndef OPSC_FLEET_H
#define OPSC_FLEET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct opsc_core;
typedef struct plugin_host plugin_host;
typedef struct fleet fleet;

/* A refusal: the request field it is about (static text, may be NULL) and why. */
typedef struct fleet_err {
    const char *field;
    char msg[320];
} fleet_err;

/* ---- targets (targets.c) ---------------------------------------------------------------- */

/* Build the record to store from a request body: a create when `existing`
 * is NULL, else a PATCH over it (null clears an optional field; labels and
 * transport_options are replaced whole). Checks everything that needs no
 * store: field types and ranges, the address, labels, that the transport
 * is loaded and accepts transport_options, host_key_policy "off" only with
 * "allow_insecure": true. Advice goes to `warnings` (array; may be NULL).
 * *out is a new record without bookkeeping fields. OPSC_ESCHEMA with `e`. */
int target_build(plugin_host *h, const json_t *body, const json_t *existing, json_t **out,
                 json_t *warnings, fleet_err *e);
/* The credential types the record's transport declares it can use
 * (opsc_transport.credential_types, static), or NULL when it does not say. */
const char *target_credential_types(plugin_host *h, const json_t *rec);
/* Store a built record (its id is assigned here unless it has one): the
 * credential must exist and suit the transport (`cred_types`, from
 * target_credential_types(); NULL: the built-in rule), the name be free.
 * OPSC_ESCHEMA / OPSC_EEXIST with `e`; any other code aborts the txn. */
int target_insert(store_txn *txn, json_t *rec, const char *cred_types, fleet_err *e);
/* Replace `before` with `rec` (same id), If-Match `expect` (0: any). */
int target_replace(store_txn *txn, const json_t *before, json_t *rec, int64_t expect,
                   const char *cred_types, fleet_err *e);
/* Delete, with its indexes and group memberships; *before (may be NULL)
 * gets the deleted record. */
int target_remove(store_txn *txn, const char *id, int64_t expect, json_t **before);
/* True when a change between the two records affects how to connect
 * (address, port, transport, options, credential, policy, timeouts, enabled). */
bool target_conn_changed(const json_t *before, const json_t *after);

/* Known host keys: add one {type, fingerprint} (`source` "tofu" or "api").
 * Adding a known one is a no-op (*added false). A key of the same type with
 * another fingerprint is OPSC_EHOSTKEY, both fingerprints in `e` (TOFU
 * never replaces a key). OPSC_ESCHEMA for a malformed type or fingerprint. */
int target_host_key_add(store_txn *txn, const char *id, const char *type, const char *fingerprint,
                        const char *source, bool *added, json_t **rec, fleet_err *e);
/* Forget every known host key; *rec (may be NULL) gets the updated record. */
int target_host_keys_reset(store_txn *txn, const char *id, int64_t expect, json_t **rec);
/* The lines "<type> SHA256:<b64>\n" of opsc_target.known_host_keys (heap). */
char *target_known_hosts(const json_t *rec);
/* An RFC 1123 host name (dot-separated labels of letters, digits, '-' and '_', no '-' at
 * either end of a label, the last label not all digits), with or without a trailing dot. */
bool dns_name_ok(const char *s);
/* "SHA256:" + 43 base64 characters, unpadded (as OpenSSH prints them). */
bool host_key_fingerprint_valid(const char *fp);

/* ---- groups (groups.c) -------------------------------------------------------------------- */

/* As target_build, for groups: name, description, members, selector, groups. */
int group_build(const json_t *body, const json_t *existing, json_t **out, fleet_err *e);
/* Store a built group: members and nested groups must exist, no cycle.
 * `before` NULL creates. OPSC_ESCHEMA / OPSC_EEXIST / OPSC_ECONFLICT. */
int group_write(store_txn *txn, const json_t *before, json_t *rec, int64_t expect, fleet_err *e);
/* Delete. A group nested in others is OPSC_EBUSY with *parents (new array of
 * {id, name}) unless `force`, which takes it out of them. */
int group_remove(store_txn *txn, const char *id, int64_t expect, bool force, json_t **parents);

/* ---- resolving target specs (resolve.c) ----------------------------------------------- */

/* Check the shape of a spec and its selector without the store: OPSC_ESCHEMA
 * with a message naming the member (and the selector's column). */
int fleet_spec_check(const json_t *spec, char *err, size_t errlen);

/* The targets a spec names, deduplicated, in id (creation) order, disabled
 * ones included: *records is a new array of the stored records. Unknown
 * ids or groups are OPSC_ENOENT naming them; a bad spec OPSC_ESCHEMA. */
int fleet_resolve_records(store_txn *txn, const json_t *spec, json_t **records, char *err,
                          size_t errlen);

/* What the executor runs on: ids of the enabled targets and, apart, of the
 * disabled ones that matched (reported, not run). Both new arrays, id order. */
typedef struct fleet_resolved {
    json_t *ids;
    json_t *disabled;
} fleet_resolved;
int fleet_resolve(store_txn *txn, const json_t *spec, fleet_resolved *out, char *err,
                  size_t errlen);
void fleet_resolved_clear(fleet_resolved *r);

/* ---- the fleet service (fleet.c): facts writer, connectivity tests ------------------------ */

typedef struct fleet_opts {
    int test_concurrency; /* targets of a group test probed at once */
} fleet_opts;

/* Needs core->store, ->pool, ->plugins, ->events, ->loop at use. */
int fleet_new(fleet **out, struct opsc_core *core, const fleet_opts *opts);
/* Write what is pending and close the timer (the loop must run once more
 * before fleet_free). */
void fleet_close(fleet *f);
void fleet_free(fleet *f);
int fleet_test_concurrency(const fleet *f);

/* Queue facts of a target (`facts` may be NULL) and the summary of its last
 * test for one batched write on the next loop turn; both are copied. */
void fleet_record_test(fleet *f, const char *target_id, const json_t *facts,
                       const json_t *last_test);
/* Write what is queued now. */
int fleet_flush(fleet *f);

/* Connectivity test of one target (probe.c): a fresh connection through
 * the pool (connect + authenticate), then a fact probe (uname -srm,
 * hostname, /etc/os-release; a PowerShell probe on windows); facts are
 * stored. `result` (borrowed for the call): {target_id, name, ok,
 * connect_ms, probe_ms, facts | error {code, message, stage}, warning}. */
typedef void (*fleet_test_cb)(void *ud, json_t *result);
int fleet_test_target(fleet *f, const char *target_id, fleet_test_cb cb, void *ud);

/* Many targets, at most `concurrency` at once, results as they finish,
 * then `done` with {total, ok, failed, wall_ms}. fleet_batch_stop() starts
 * no more tests (those running finish; `done` still runs). */
typedef struct fleet_batch fleet_batch;
typedef void (*fleet_batch_done_cb)(void *ud, json_t *summary);
int fleet_batch_start(fleet *f, json_t *target_ids, int concurrency, fleet_test_cb on_result,
                      fleet_batch_done_cb done, void *ud, fleet_batch **out);
void fleet_batch_stop(fleet_batch *b);

#endif
