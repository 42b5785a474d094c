/* discovery.h - network discovery: scans through scanner plugins, the host inventory, saved
 * profiles on cron schedules, and onboarding found hosts into targets.
 *
 * Scans ("discovery_scans"). A request names a scanner, address ranges,
 * exclusions, ports, a rate, a concurrency cap and a per-probe timeout
 * (dspec.h says what ranges may be). The service checks it against
 * [discovery] max_addresses and allowed_ranges, resolves host names, and
 * hands the scanner plugin a normalized spec (opsc/discovery.h). While it
 * runs, a scan has live progress; it ends finished, cancelled or failed.
 * Scans a previous process left running are failed at start-up.
 *
 * Inventory ("discovery_hosts", one record per address ever found). Each
 * host found is merged into its record: ports, names, SSH banner and host
 * key, WinRM Identify, OS guess, first and last seen, the last scan. A host
 * whose SSH host key or OS family differs from the recorded one is
 * `changed` until someone accepts the change; a host that the last N scans
 * of a profile did not see is `vanished`; otherwise it is `known` when a
 * target has its address, one of its names, its host key or its TLS
 * certificate, else `new`. The state is worked out when read, so creating
 * or deleting a target is reflected at once.
 *
 * Events on the core's bus (subject: the host's or scan's id):
 *   "discovery.host_found"    {host}: first seen, or seen again after vanishing
 *   "discovery.host_changed"  {host, change}: host key or OS changed
 *   "discovery.host_vanished" {host, profile_id}
 *   "discovery.scan.state"    {scan}: started, and ended (state not running)
 *   "discovery.scan.host"     {scan_id, host}: a host this scan found
 *   "discovery.scan.progress" {scan_id, progress, hosts_found}: about twice a second
 *
 * Profiles ("discovery_profiles") are saved scan specs with an optional cron
 * expression and time zone (the scheduler's engine and DST rule), a
 * vanish_after count and auto-onboard rules applied to new hosts after each
 * of their scans. Onboarding turns hosts into targets through the fleet's
 * own checks, with the host key the scan saw pinned (strict policy).
 *
 * Thread: loop thread.
 */
#ifndef OPSC_DISCOVERY_CORE_H
#define OPSC_DISCOVERY_CORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct opsc_core;
typedef struct discovery discovery;

/* A refusal for the API: status (400, 404, 409, 412, 503), code, member, why. */
typedef struct dsc_err {
    int status;
    const char *code;  /* "invalid_scan", "unknown_scanner", "not_found", ... */
    const char *field; /* static text, or NULL */
    json_t *details;   /* owned; NULL or extra detail (schema errors) */
    char msg[400];
} dsc_err;
void dsc_err_clear(dsc_err *e);

/* Needs core->store, ->plugins, ->events, ->metrics, ->loop, ->cfg. Fails
 * scans left running, loads the profiles and arms their timer. */
int discovery_new(discovery **out, struct opsc_core *core, char *err, size_t errlen);
/* Cancel every running scan and disarm profiles; no new scan starts. */
void discovery_stop(discovery *d);
/* After discovery_stop(): `cb` runs on the loop once every scan has ended
 * (its scanner called done) and every handle is closed. */
void discovery_close(discovery *d, void (*cb)(void *ud), void *ud);
void discovery_free(discovery *d);
/* Cluster mode, the leader: scans left unfinished by nodes not in `alive`
 * (array of node ids) are marked failed, the error naming the node. */
int discovery_reap_nodes(discovery *d, const json_t *alive);
/* Cluster mode: another node changed profiles; their schedules are read
 * again (a profile whose cron and timezone stayed keeps its next fire). */
int discovery_profiles_reload(discovery *d);

/* ---- scans ------------------------------------------------------------------------------ */

/* `scan` (the record as GET shows it) on success, else NULL and `e`; borrowed. */
typedef void (*discovery_scan_cb)(void *ud, json_t *scan, const dsc_err *e);
/* Check the request body, resolve names, start. `cb` runs exactly once,
 * possibly before this returns. `requested_by` may be NULL. */
void discovery_scan_start(discovery *d, const json_t *body, const char *requested_by,
                          discovery_scan_cb cb, void *ud);
/* The scan with live progress (new reference), or OPSC_ENOENT. */
int discovery_scan_get(discovery *d, const char *id, json_t **scan);
/* A page of scans, newest first, with live progress. */
int discovery_scan_list(discovery *d, size_t limit, const char *cursor, const char *state,
                        json_t **items, char next[40]);
/* Ask a running scan to stop; OPSC_ENOENT (unknown), OPSC_ESTATE (not running). */
int discovery_scan_cancel(discovery *d, const char *id);
bool discovery_scan_running(discovery *d, const char *id);
/* The hosts a scan found so far (host views, new array). */
int discovery_scan_hosts(discovery *d, const char *scan_id, json_t **hosts);

/* ---- inventory -------------------------------------------------------------------------- */

/* Host filters from query values (each may be NULL). */
int discovery_hosts_list(discovery *d, const json_t *filter, size_t limit, const char *cursor,
                         json_t **items, char next[40], dsc_err *e);
int discovery_host_get(discovery *d, const char *id, json_t **host);
/* Accept a host's pending changes (its new key / OS become the reference). */
int discovery_host_accept(discovery *d, const char *id, int64_t expect, json_t **host);
int discovery_host_delete(discovery *d, const char *id, int64_t expect);

/* ---- onboarding ------------------------------------------------------------------------- */

/* {created, failed, existing, items, test}; borrowed. */
typedef void (*discovery_onboard_cb)(void *ud, json_t *result);
/* Refused requests answer false with `e`; otherwise `cb` runs once (later
 * when the request asks for a test, else before this returns). */
bool discovery_onboard(discovery *d, const json_t *body, discovery_onboard_cb cb, void *ud,
                       dsc_err *e);

/* ---- profiles ----------------------------------------------------------------------------- */

/* Create (`id` NULL) or update (`expect`: If-Match, 0 any) from a body;
 * *profile the stored record as GET shows it. */
int discovery_profile_put(discovery *d, const char *id, const json_t *body, int64_t expect,
                          json_t **profile, dsc_err *e);
int discovery_profile_get(discovery *d, const char *id, json_t **profile);
int discovery_profile_list(discovery *d, size_t limit, const char *cursor, json_t **items,
                           char next[40]);
int discovery_profile_delete(discovery *d, const char *id, int64_t expect);
/* Start a scan of the profile now. */
void discovery_profile_run(discovery *d, const char *id, const char *requested_by,
                           discovery_scan_cb cb, void *ud);
/* The next `count` fire times {"times": [{utc, local}]}. */
int discovery_profile_next(discovery *d, const char *id, int count, json_t **out, dsc_err *e);

#endif
