/* notify_internal.h - the notification service's state: rule cache, notices, attempts, writes.
 *
 * Ownership: the service owns its rule cache (rebuilt whole on reload), the
 * notices and writes waiting for the end of the loop turn, the attempts in
 * flight (each owns copies of everything its notifier borrows), the rate
 * limiters and the long-running watches. An attempt outlives the service
 * when its notifier answers after notify_close(): it then only frees itself.
 */
#ifndef OPSC_NOTIFY_INTERNAL_H
#define OPSC_NOTIFY_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <opsc/notify.h>

#include "dspec.h"
#include "notify.h"
#include "template.h"

struct opsc_core;
typedef struct selector selector;

enum nt_sev { SEV_INFO, SEV_WARNING, SEV_ERROR };
int nt_sev_parse(const char *name); /* -1 when unknown */
const char *nt_sev_name(int sev);

/* Events a rule may name. Appended only (they are bits of nrule.events). */
enum nt_event {
    EV_RUN_STARTED,
    EV_RUN_SUCCEEDED,
    EV_RUN_FAILED,
    EV_RUN_TIMED_OUT,
    EV_RUN_CANCELLED,
    EV_RUN_INTERRUPTED,
    EV_RUN_FIXED,
    EV_RUN_FAILING,
    EV_RUN_LONG_RUNNING,
    EV_SCHEDULE_MISSED,
    EV_TARGET_UNREACHABLE,
    EV_STEPLIB_INSTALLED,
    EV_USER_LOCKED,
    EV_TEST, /* channel tests only; no rule subscribes to it */
    EV_DISCOVERY_HOST_FOUND,
    EV_DISCOVERY_HOST_VANISHED,
    EV_DISCOVERY_HOST_CHANGED,
    EV__COUNT
};
const char *nt_event_name(int ev);
int nt_event_parse(const char *name); /* -1 when unknown */
int nt_event_severity(int ev);

/* A compiled rule. Arrays point into `rec`, which the rule holds. */
typedef struct nrule {
    char id[40];
    json_t *rec;
    unsigned events; /* 1u << enum nt_event */
    const json_t *channels, *users, *job_ids, *schedule_ids, *group_ids, *profile_ids;
    selector *sel;
    dspec_set ranges; /* filter.ranges: discovered hosts' addresses; empty: any */
    int min_sev;
    int min_failures;           /* run.failing fires at exactly this streak */
    int64_t lr_after_ms;        /* run.long_running: absolute threshold, 0 none */
    int lr_percent;             /* or this much over the job's recent average, 0 none */
    int64_t window_ms;          /* group_window_s */
    tpl *subject, *text, *body; /* template overrides, or NULL */
} nrule;

/* Something that happened, about to be matched against the rules. */
typedef struct notice notice;
struct notice {
    int ev;
    int sev;
    const char *job_id, *schedule_id, *run_id, *target_id; /* borrowed; NULL when none */
    const char *profile_id, *address; /* discovery events: the scan's profile, the host's */
    const json_t *target_ids; /* targets involved, for group and selector filters; may be NULL */
    int prev_job, prev_sched; /* failure streaks before this run (run.fixed) */
    int cur_job, cur_sched;   /* and after it (run.failing) */
    const char *only_rule;    /* long-running watches fire for their rule only */
    const json_t *run;        /* run events: the run header (borrowed) */
    /* The event as delivered (the templates' context), built on first use by
     * `build` (when a rule matches): owned, free with nt_notice_clear(). */
    json_t *payload;
    json_t *(*build)(notify *n, store_txn *txn, notice *no);
};
/* The payload, built if needed (NULL when out of memory). */
json_t *nt_notice_payload(notify *n, store_txn *txn, notice *no);
void nt_notice_clear(notice *no);
/* A body over an existing record (null removes a member; bookkeeping dropped). */
json_t *nt_merged(const json_t *body, const json_t *existing);
/* Validate `rec` against a resource's JSON Schema text, adding defaults. */
int nt_schema_apply(const char *schema_text, json_t *rec, const char **field, char *err,
                    size_t errlen);

/* A delivery being sent. */
typedef struct nt_attempt nt_attempt;
struct nt_attempt {
    notify *n; /* NULL once the service closed */
    char id[40];
    char channel_id[40];
    char type[32];
    json_t *rec; /* the delivery as it will be written */
    char *settings, *secret, *subject, *text, *link, *payload, *body, *recipients;
    opsc_notify_msg msg;
    int http_status; /* notify_http_status(), -1 when not called */
    int64_t retry_after_ms;
    uint64_t started_mono;
    notify_test_cb test_cb;
    void *test_ud;
    nt_attempt *prev, *next;
};

typedef struct nt_limiter {
    char channel_id[40];
    int64_t next_ms; /* the next slot not given out */
    int64_t sent_ms; /* the last message sent */
    struct nt_limiter *next;
} nt_limiter;

typedef struct nt_watch {
    char run_id[40];
    char rule_id[40];
    int64_t due_ms, threshold_ms;
    struct nt_watch *next;
} nt_watch;

struct notify {
    struct opsc_core *core;
    uv_loop_t *loop;
    store *store;
    char *public_url;
    int64_t *retry_ms; /* delays before attempt 1, 2, ... (the last repeats) */
    size_t nretry;
    int64_t max_age_ms, attempt_timeout_ms, history_ms;
    int max_in_flight;
    bool paused, closed;
    /* rules */
    nrule *rules;
    size_t nrules;
    bool any_long_running;
    unsigned events; /* every event some rule names (1u << enum nt_event) */
    /* default messages per channel type */
    tpl *subject_tpl, *text_tpl, *slack_tpl, *teams_tpl;
    /* end of the loop turn: notices from the bus, results of attempts */
    uv_check_t flush;
    uv_idle_t flush_idle;
    json_t *bus;     /* events queued for matching: [{type, subject, data}] */
    json_t *writes;  /* deliveries and channels to store: [{db, rec, old_due}] */
    json_t *audits;  /* channel disables to audit after the write */
    json_t *lr_runs; /* runs that started: long-running watches to set up */
    /* the sender */
    uv_timer_t wake;
    int64_t wake_at; /* ms of the armed wake-up, 0 none */
    bool pumping, pump_again;
    bool led;           /* cluster: the last beat found this node leading (notify_leading) */
    unsigned beats_led;
    nt_attempt *inflight;
    size_t ninflight;
    nt_limiter *limiters;
    uv_timer_t sweep;   /* attempt timeouts, while attempts are in flight */
    uv_timer_t maint;   /* hourly: old hooks_seen and outbox_groups entries go */
    uv_timer_t results; /* attempts' results are written together, RESULTS_DELAY_MS after one */
    /* long-running watches */
    nt_watch *watches;
    uv_timer_t lr_timer;
    int64_t bus_subs[10];
    int open_handles;
    notify_stats stats;
    json_t *by_type; /* "type/outcome" -> count, for /metrics */
    json_t *hooks_by_outcome;
    json_t *busy; /* delivery id -> true: in flight, or its new state not yet written */
};

/* ---- notify.c ------------------------------------------------------------------------------ */
void nt_want_flush(notify *n);
/* Results of attempts: written within RESULTS_DELAY_MS, many in one commit.
 * Losing them to a crash only means sending again under the same id. */
#define RESULTS_DELAY_MS 20
void nt_want_results_flush(notify *n);
/* Write what is queued now (the end of the turn would). */
void nt_flush_now(notify *n);
void nt_count(notify *n, const char *type, const char *outcome);

/* ---- notify_rules.c ------------------------------------------------------------------------ */
/* Match `no` against the cached rules and add one delivery per channel of
 * every matching rule. */
int nt_dispatch(notify *n, store_txn *txn, notice *no);
void nt_rules_free(notify *n);
/* The rule `id` in the cache, or NULL. */
const nrule *nt_rule_find(const notify *n, const char *id);

/* ---- notify_filter.c ------------------------------------------------------------------------- */
/* Does rule `r` take notice `no`? (event, streaks, filters, severity) */
int nt_rule_matches(notify *n, store_txn *txn, const nrule *r, const notice *no, bool *match);
int nt_rule_compile(const json_t *rec, nrule *out, char *err, size_t errlen, const char **field);
void nt_rule_clear(nrule *r);

/* Delete hooks_seen entries older than `keep_ms` (notify_hooks.c). */
int nt_hooks_seen_sweep(store_txn *txn, int64_t now_ms, int64_t keep_ms);

/* ---- notify_outbox.c ------------------------------------------------------------------------- */
void nt_due_key(char *buf, size_t n, int64_t due_ms, const char *id);
/* Add (or merge into an open one within the rule's window) a delivery of
 * `no` to `channel` for rule `r` (NULL: a test). *created gets its id. */
int nt_outbox_add(notify *n, store_txn *txn, const nrule *r, const json_t *channel,
                  const notice *no, char created[40]);
/* Store a delivery record after an attempt or a deferral, moving its due key. */
int nt_outbox_put(store_txn *txn, json_t *rec, int64_t old_due);
/* Delete the entries of kv database `db` that `stale` judges old against `cutoff`. */
int nt_kv_prune(store_txn *txn, const char *db,
                bool (*stale)(const void *val, size_t vlen, int64_t cutoff), int64_t cutoff);
/* Delete finished deliveries made before `cutoff_ms`, at most `max`; *more
 * says whether older ones remain. */
int nt_history_sweep(store_txn *txn, int64_t cutoff_ms, size_t max, bool *more);
/* Remove outbox_groups entries whose window closed before `now_ms`. */
int nt_groups_sweep(store_txn *txn, int64_t now_ms);

/* ---- notify_run.c ---------------------------------------------------------------------------- */
/* The notice's payload for a run event (run, job, schedule, failed targets
 * with their failed step, exit code and last lines of output). */
json_t *nt_run_payload(notify *n, store_txn *txn, const json_t *run, int ev, int streak);
/* The target ids of a run (new array; empty when it has none). */
int nt_run_target_ids(store_txn *txn, const char *run_id, json_t **out);
/* Base payload {event: {name, severity, occurred_at, summary}, link}. */
json_t *nt_payload_base(notify *n, int ev, const char *summary, const char *link_path);

/* ---- notify_bus.c ------------------------------------------------------------------------------
 */
struct event;
void nt_on_event(const struct event *ev, void *ud);
/* The schedule.missed notice of d {job_id, schedule_id, run_id, planned_at,
 * reason}; its strings point into d. */
int nt_missed_notice(notify *n, store_txn *txn, const json_t *d, notice *no);
int nt_bus_dispatch(notify *n, store_txn *txn, json_t *item);

/* ---- notify_discovery.c ------------------------------------------------------------------- */
/* The event of a discovery bus type ("discovery.host_found"), -1 when none. */
int nt_discovery_event(const char *type);
/* The notice of a discovery event: the host, its ports, names, keys, the
 * change or absence, and a link. `*hold` keeps what its strings point into. */
int nt_discovery_notice(notify *n, store_txn *txn, int ev, const json_t *d, notice *no,
                        json_t **hold);

/* ---- notify_longrun.c ---------------------------------------------------------------------- */
int nt_longrun_plan(notify *n, store_txn *txn, const char *run_id, json_t *out);
void nt_longrun_add(notify *n, json_t *watches);
void nt_longrun_forget(notify *n, const char *run_id);
void nt_longrun_start(notify *n);
void nt_longrun_free(notify *n);

/* ---- notify_render.c ---------------------------------------------------------------------- */
int nt_render_init(notify *n, char *err, size_t errlen);
void nt_render_free(notify *n);
/* Compile a rule's template part (TPL_TEXT, the message roots). */
int nt_tpl_compile(const char *text, tpl **out, tpl_err *te);
/* subject, text (per channel `type`) and body (rule's body template, or NULL). */
int nt_render(notify *n, const char *type, const nrule *r, const json_t *payload, char **subject,
              char **text, char **body, char *err, size_t errlen);

/* ---- notify_send.c ------------------------------------------------------------------------- */
void nt_pump(notify *n);
void nt_wake_at(notify *n, int64_t due_ms);
void nt_sender_close(notify *n);
void nt_attempt_timeouts(notify *n);
/* An attempt of delivery `rec` through `channel`, rendered and with its
 * secret, inside a read transaction; then launched outside of it. */
int nt_attempt_prepare(notify *n, store_txn *txn, json_t *rec, const json_t *channel,
                       notify_test_cb cb, void *ud, nt_attempt **out, char *err, size_t errlen);
void nt_attempt_launch(notify *n, nt_attempt *a);
/* The notifier's answer (opsc_host_api.notify_http_status). */
void nt_http_status(void *attempt, int status, int64_t retry_after_ms);

/* ---- notify_channels.c ---------------------------------------------------------------------- */
/* The secret value of credential `id`: heap copy, wipe with nt_secret_free. */
int nt_secret_open(notify *n, store_txn *txn, const char *id, char **out);
void nt_secret_free(char *s);
/* Rate limit of a channel: may one be sent now? Otherwise *next_ms says when
 * (a slot given to this message when not `reserved` yet). */
bool nt_limit_take(notify *n, const json_t *channel, bool reserved, int64_t now_ms,
                   int64_t *next_ms);
void nt_limiters_free(notify *n);

#endif
