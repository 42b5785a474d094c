/* discovery_internal.h - what the discovery module's files share: the service, scan requests,
 * running scans, host merging and matching, profiles. */
#ifndef OPSC_DISCOVERY_INTERNAL_H
#define OPSC_DISCOVERY_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <opsc/discovery.h>

#include "config.h"
#include "cron.h"
#include "discovery.h"
#include "dspec.h"
#include "jsonschema.h"
#include "store.h"

typedef struct dscan dscan;
typedef struct dprof_sched dprof_sched;

#define DSC_DEFAULT_RATE        100
#define DSC_DEFAULT_CONCURRENCY 256
#define DSC_DEFAULT_TIMEOUT_MS  1000
#define DSC_PORTS_MAX           1024
#define DSC_NAMES_MAX           64 /* host names in one request */
#define DSC_HOSTNAMES_MAX       16 /* names kept per host */

struct discovery {
    struct opsc_core *core;
    const struct discovery_cfg *cfg;
    dspec_set allowed; /* [discovery] allowed_ranges; empty: any */
    jschema *scan_schema, *profile_schema, *onboard_schema, *filter_schema;
    dscan *scans; /* running, newest first */
    size_t running;
    bool stopping;
    void (*closed_cb)(void *ud);
    void *closed_ud;
    dprof_sched *sched;
    uv_timer_t tick;  /* progress events */
    uv_timer_t flush; /* hosts found are written in batches, soon after they arrive */
    int handles_open;
    /* /metrics */
    uint64_t scans_started, scans_ended[4], addresses_done, probes, hosts_found, hosts_new;
};

/* The API error of a refusal; returns `status` != 0 as a negative code for chaining. */
int dsc_fail(dsc_err *e, int status, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Put `prefix` before the message ("spec." + "rate: ..."). */
void dsc_err_prefix(dsc_err *e, const char *prefix);
/* Validate `body` against `schema` (applying defaults); 400 `code` listing the errors. */
int dsc_validate(const jschema *schema, json_t *body, const char *code, dsc_err *e);
/* One page of records of `db` after `cursor` (newest first when `reverse`), those `keep`
 * takes (NULL: all); one more beyond the page sets `more`. */
typedef struct dsc_page {
    const char *db, *cursor;
    size_t limit;
    bool reverse;
    bool (*keep)(const json_t *rec, void *ud);
    void *ud;
    json_t *items; /* out: the stored records (new array) */
    char last[40]; /* out: the cursor of the next page when `more` */
    bool more;
} dsc_page;
int dsc_page_txn(store_txn *txn, dsc_page *p);

/* One record of `db`, read in its own transaction (new reference). */
int dsc_get(discovery *d, const char *db, const char *id, json_t **rec);
/* Publish on the core's bus (data borrowed). */
void dsc_publish(discovery *d, const char *type, const char *subject, json_t *data);
/* Now as RFC 3339. */
void dsc_now(char out[32]);

/* ---- scan requests (dscan_req.c) ------------------------------------------------------------ */

typedef struct dscan_limits {
    uint64_t max_addresses;
    const dspec_set *allowed; /* NULL or empty: any */
    bool names_pending;       /* names resolve later (a profile): no addresses yet is fine */
} dscan_limits;

typedef struct dscan_req {
    json_t *body;  /* the request with defaults applied */
    dspec_set set; /* addresses of ranges (names added as they resolve) */
    dspec_set exclude;
    uint16_t *ports;
    size_t nports;
    json_t *names;    /* [{"name", "index"}] still to resolve */
    json_t *resolved; /* name -> [addresses] */
} dscan_req;

/* Validate a scan request (schema, ranges, exclusions, ports). The body is
 * copied. OPSC_ESCHEMA with `e` (400 invalid_scan). */
int dscan_req_parse(const jschema *schema, const json_t *body, dscan_req *out, dsc_err *e);
/* Add the addresses a name resolved to (IP literals). */
int dscan_req_add_name(dscan_req *r, const char *name, json_t *addresses);
/* Exclusions, limits and the spec for the scanner: *spec new reference. */
int dscan_req_finish(dscan_req *r, const dscan_limits *lim, json_t **spec, dsc_err *e);
void dscan_req_clear(dscan_req *r);
/* Resolve the request's names on the loop, then `done` (e filled when one failed). */
typedef void (*dscan_resolved_cb)(void *ud, dscan_req *r, const dsc_err *e);
int dscan_resolve(uv_loop_t *loop, dscan_req *r, int64_t timeout_ms, dscan_resolved_cb done,
                  void *ud);

/* ---- running scans (dscan.c) ------------------------------------------------------------------
 */

struct dscan {
    discovery *d;
    dscan *next;
    char id[40];
    char profile_id[40];
    const opsc_scanner *sc;
    void *sc_state;
    opsc_scan *handle; /* NULL once the scanner called done */
    json_t *rec;       /* the scan record as stored when it started */
    json_t *names;     /* address -> [names given in the request] */
    json_t *pending;   /* hosts found, not yet merged */
    uint64_t total, found, last_done, last_probes;
    char icmp[160]; /* the scanner's word on ICMP, kept past its end */
    uint64_t t0;    /* monotonic ms */
    bool cancelling;
};

/* Merge what is pending of every running scan (one transaction). */
void dscan_flush_all(discovery *d);
/* The scan's progress now: {done, total, probes, addresses_per_s, probes_per_s}. */
json_t *dscan_progress(dscan *s);
dscan *dscan_find(discovery *d, const char *id);
/* Fail scans a previous process left running (at start). */
int dscan_recover(discovery *d);
/* Start from a checked request (the profile runner and the API). */
void dscan_launch(discovery *d, dscan_req *r, const char *requested_by, discovery_scan_cb cb,
                  void *ud);
/* The progress tick: events of running scans. */
void dscan_tick(discovery *d);
/* Hosts arrived: write them soon (batched). */
void dscan_flush_soon(discovery *d);
/* A scan ended while the service closes (discovery.c). */
void discovery_scan_gone(discovery *d);

/* ---- inventory (dhosts.c, dmatch.c)
 * --------------------------------------------------------------- */

/* One host a scanner reported, as queued: {address, hostname, os_family, facts, names}. */
json_t *dhost_found(const opsc_found_host *h, const json_t *names);

/* Merge `found` into the inventory for `scan_id` (and its profile, may be
 * ""): *rec the stored host, *events the bus events due after commit
 * ([["type", data]...], appended). */
int dhost_merge(store_txn *txn, const char *scan_id, const char *profile_id, json_t *found,
                json_t **rec, json_t *evs);
/* After a profile's scan ended: hosts of the profile it did not see miss
 * once more; at `vanish_after` misses they vanish. Events appended. */
int dhost_profile_sweep(store_txn *txn, const char *profile_id, const char *scan_id,
                        int64_t vanish_after, json_t *evs);
/* Forget a profile's links (profile deleted). */
int dhost_profile_forget(store_txn *txn, const char *profile_id);

/* Targets by address, name, host key and certificate, for `known`. */
typedef struct dmatch dmatch;
int dmatch_load(store_txn *txn, dmatch **out);
void dmatch_free(dmatch *m);
/* The target id a host record matches, or NULL (borrowed from the matcher). */
const char *dmatch_target(const dmatch *m, const json_t *host);
/* The public view of a stored host: state, target_id (new reference). */
json_t *dhost_view(const json_t *rec, const dmatch *m);
/* "changed", "vanished", "known" or "new". */
const char *dhost_state(const json_t *rec, const dmatch *m);
/* Publish the events collected by merges and sweeps (and free them). */
void dhost_publish(discovery *d, json_t *evs);

/* A parsed host filter. */
typedef struct dfilter {
    const char *state, *os, *scan_id, *profile_id;
    int port;
    bool has_range;
    dspec_iv range;
} dfilter;
/* From an object of query values or a request's "filter" (validated by the schema). */
int dfilter_parse(discovery *d, json_t *obj, dfilter *f, dsc_err *e);
bool dfilter_match(const dfilter *f, const json_t *rec, const dmatch *m);
/* The ids of the hosts matching `f` (new array), in id order, at most `max`. */
int dhosts_select(discovery *d, const dfilter *f, size_t max, json_t **ids);
int dhosts_select_txn(store_txn *txn, const dfilter *f, size_t max, json_t **ids);

/* ---- onboarding (donboard.c) ------------------------------------------------------------------
 */

typedef struct donboard_opts {
    const char *credential_id;
    const char *group_id; /* NULL: none */
    const json_t *labels; /* NULL: none */
    const char *name_template;
    const char *transport; /* NULL: from what the scan saw */
    bool test;
} donboard_opts;
/* Onboard `host_ids`; `cb` as for discovery_onboard(). 0 or a refusal in `e`
 * (bad template, unknown group or credential). */
int donboard_run(discovery *d, json_t *host_ids, const donboard_opts *o, discovery_onboard_cb cb,
                 void *ud, dsc_err *e);

/* ---- profiles (dprofile.c, dprofile_sched.c) ------------------------------------------------- */

int dprof_sched_new(discovery *d, dprof_sched **out);
/* Re-read one profile (created, updated, deleted) and re-arm. */
void dprof_sched_update(dprof_sched *s, const char *id);
/* Re-read every profile (discovery_profiles_reload). */
int dprof_sched_reload(dprof_sched *s);
/* The next fire of a profile (unix s), or -1. */
int64_t dprof_sched_next(dprof_sched *s, const char *id);
void dprof_sched_stop(dprof_sched *s);
/* Free without closing (the loop has closed every handle already: a failed start). */
void dprof_sched_free(dprof_sched *s);
/* Close the timer and free; `cb` when closed. */
void dprof_sched_close(dprof_sched *s, void (*cb)(void *ud), void *ud);
/* Start a scan of profile `rec` (stored record). */
void dprof_start_scan(discovery *d, const json_t *rec, const char *requested_by,
                      discovery_scan_cb cb, void *ud);
/* A profile's scan ended: sweep vanished hosts, then auto-onboard. */
void dprof_scan_ended(discovery *d, const char *profile_id, const char *scan_id, bool ok);
/* Per auto-onboard rule of `profile`, the new hosts of `scan_id` it takes
 * (each host to the first rule that takes it): *claims an array of id arrays. */
int dprof_auto_select(discovery *d, const json_t *profile, const char *scan_id, json_t **claims);
/* Parse cron + timezone of a stored profile; false when it has no schedule. */
bool dprof_schedule(const json_t *rec, cron_t *cron, const tz_t **tz);

#endif
