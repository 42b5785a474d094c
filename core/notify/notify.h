/* notify.h - notifications: channels, rules, the durable outbox and its sender, inbound hooks.
 *
 * Channels ("notify_channels") are instances of a notifier plugin with its
 * settings and a vault credential holding the secret part. Rules
 * ("notify_rules") route events to channels, filtered by job, schedule,
 * target group, label selector and severity. A matching event becomes one
 * delivery per channel in the "outbox" database, in the same transaction as
 * the state change that caused it: the executor calls notify_run_persisted()
 * from its persist path, so a failed run and the pending notice of it are
 * one commit. Other events (schedule.missed, target.unreachable,
 * steplib.installed, user.locked) come from the core's event bus and are
 * written at the end of the loop turn, many in one transaction.
 *
 * The sender reads due deliveries from the "outbox_due" index (nothing of a
 * backlog is held in memory), renders the message per channel type, calls
 * the notifier's send() and records every attempt; failures are retried on
 * the back-off schedule of [notifications] retry_schedule until max_age,
 * honouring Retry-After; a rule's group_window_s merges identical notices;
 * a channel's rate_limit queues rather than drops.
 *
 * Inbound hooks ("hooks") start a job's run from a signed HTTP request:
 * hook_verify() checks Standard Webhooks, GitHub, GitLab or token
 * signatures in constant time, with replay protection in "hooks_seen".
 *
 * Thread: loop only; hook_verify() and the *_parse functions are pure.
 */
#ifndef OPSC_NOTIFY_CORE_H
#define OPSC_NOTIFY_CORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct opsc_core;
typedef struct notify notify;

/* ---- the service --------------------------------------------------------------------------- */

/* Uses core->loop, store, vault, plugins, events, audit, metrics and
 * cfg.notifications / cfg.server.public_url. Loads the rules; sends nothing
 * until notify_start(). OPSC_ESCHEMA with `err` for a bad retry_schedule. */
int notify_new(notify **out, struct opsc_core *c, char *err, size_t errlen);
/* Subscribe to the event bus, start the sender (unless paused). */
void notify_start(notify *n);
/* Stop sending (attempts in flight are left to end unrecorded: they are
 * sent again after a restart, under the same delivery id), write what is
 * pending, close the handles. The loop must run once more before
 * notify_free(). */
void notify_close(notify *n);
/* Cluster mode, after each heartbeat: whether this node leads. Only the
 * leader sends the outbox; a new term sends what is due at once. */
void notify_leading(notify *n, bool leading);
void notify_free(notify *n);

/* The executor's persist hook (exec_opts.on_run_persisted): called inside the
 * write transaction that stores run header `run` (borrowed), whose stored
 * state before was `previous`. Writes the deliveries the change causes and
 * the failure streaks of its job and schedule. Idempotent per transaction
 * attempt (the store may run it again after growing the map). */
int notify_run_persisted(void *n, store_txn *txn, const json_t *run, const char *previous);

/* ---- channels and rules (for the REST API) ------------------------------------------------ */

/* Build the record to store from a request body (a create when `existing`
 * is NULL, else a PATCH over it): name, type (a loaded notifier), settings
 * (its JSON Schema, defaults added, then its validate()), credential_id,
 * enabled, description, rate_limit. *out is a new record. OPSC_ESCHEMA with
 * `err` and *field naming the member. */
int notify_channel_build(notify *n, const json_t *body, const json_t *existing, json_t **out,
                         const char **field, char *err, size_t errlen);
/* Checks that need the store: the credential exists and is of type secret. */
int notify_channel_check(store_txn *txn, const json_t *rec, const char **field, char *err,
                         size_t errlen);
/* The same for rules: events, channels, filter, min_consecutive_failures,
 * long_running, group_window_s, template (compiled here: a syntax error
 * names template.<part> and line:col), users, enabled. */
int notify_rule_build(notify *n, const json_t *body, const json_t *existing, json_t **out,
                      const char **field, char *err, size_t errlen);
int notify_rule_check(store_txn *txn, const json_t *rec, const char **field, char *err,
                      size_t errlen);
/* Reload the rule cache after a committed change of rules. */
int notify_rules_reload(notify *n);
/* And have the other nodes of a cluster reload theirs (no-op on LMDB). */
void notify_rules_announce(notify *n);

/* The API's view of a delivery (internal bookkeeping left out). New reference. */
json_t *notify_delivery_public(json_t *rec);

/* Send a test message through channel `id` now (one attempt, recorded as a
 * delivery of event "test"); `cb` runs once on the loop with the delivery
 * record (borrowed), or with rc < 0 (OPSC_ECANCELED: the daemon stopped).
 * Errors (`cb` never runs then): OPSC_ENOENT for an unknown channel, or why
 * the attempt could not start (its credential cannot be opened...) with a
 * message in `err`. */
typedef void (*notify_test_cb)(void *ud, int rc, json_t *delivery, const char *error);
int notify_channel_test(notify *n, const char *id, notify_test_cb cb, void *ud, char *err,
                        size_t errlen);

/* Figures for /metrics and tests. */
typedef struct notify_stats {
    uint64_t created, delivered, retried, gave_up, merged;
    size_t in_flight;
} notify_stats;
void notify_stats_get(const notify *n, notify_stats *st);
/* Counters for /metrics, borrowed: {"<type>/<outcome>": n} of attempts and
 * {"<outcome>": n} of inbound hook requests. */
void notify_metrics(const notify *n, json_t **by_type, json_t **hooks);

/* An inbound hook's record and its secret (heap; wipe with notify_secret_free;
 * NULL when its credential cannot be opened). OPSC_ENOENT: no such hook. */
int notify_hook_load(notify *n, const char *id, json_t **hook, char **secret);
void notify_secret_free(char *secret);

/* ---- inbound hooks -------------------------------------------------------------------------- */

/* Build a hook record from a body (create or PATCH): name, job_id, verify
 * (standard/github/gitlab/token), credential_id, params (job parameter ->
 * "body.a.b" or "query.x"), filter {path, equals}, tolerance_s, enabled,
 * description. OPSC_ESCHEMA with `err` and *field. */
int hook_build(const json_t *body, const json_t *existing, json_t **out, const char **field,
               char *err, size_t errlen);
/* Checks with the store: the job exists, the credential is of type secret. */
int hook_check(store_txn *txn, const json_t *rec, const char **field, char *err, size_t errlen);

enum hook_scheme { HOOK_STANDARD, HOOK_GITHUB, HOOK_GITLAB, HOOK_TOKEN };
int hook_scheme_parse(const char *name); /* -1 when unknown */

/* One request to verify. Header values may be NULL when absent. */
typedef struct hook_request {
    const char *webhook_id, *webhook_timestamp, *webhook_signature; /* Standard Webhooks */
    const char *hub_signature_256, *github_delivery;                /* GitHub */
    const char *gitlab_token, *gitlab_event_uuid;                   /* GitLab */
    const char *authorization;                                      /* token: "Bearer <secret>" */
    const void *body;
    size_t body_len;
} hook_request;

/* Verify `req` against `secret` (the credential's value) for `scheme`, at
 * `now_s` with `tolerance_s` for timestamps. 0 when authentic, with the
 * message id to deduplicate in msg_id ("" when the scheme has none);
 * otherwise OPSC_EAUTH and the reason in `why` (for the audit log only,
 * never the answer). Comparisons are constant-time. */
int hook_verify(int scheme, const char *secret, const hook_request *req, int64_t now_s,
                int64_t tolerance_s, char msg_id[256], char *why, size_t whylen);

/* The value at `path` ("a.b.0.c") of `root`, or NULL (borrowed). */
json_t *hook_path_get(json_t *root, const char *path);
/* Job parameters from a hook's `params` mapping, the JSON body and the
 * query (a callback giving a query parameter or NULL). New object; values
 * the body lacks are left out. */
json_t *hook_params(const json_t *mapping, json_t *body,
                    const char *(*query)(void *ud, const char *name), void *ud);
/* The hook's optional filter {path, equals} holds for `body`. */
bool hook_filter_ok(const json_t *filter, json_t *body);

/* Remember message `msg_id` of hook `hook_id` as seen at `now_ms`: OPSC_EEXIST
 * when it was seen before (a replay). Entries older than `keep_ms` are swept
 * by notify's periodic sweep. */
int hook_seen_put(store_txn *txn, const char *hook_id, const char *msg_id, int64_t now_ms);
void notify_count_hook(notify *n, const char *outcome);

#endif
