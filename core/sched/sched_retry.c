/* sched_retry.c - fires whose run could not be stored for a passing reason, tried again with
 * backoff until stored, found a duplicate, or past the schedule's grace period.
 *
 * Why the fire and not a missed record: what failed it (a row lock held by a frozen node, a
 * statement timeout, a broken connection, a database that did not answer) fails a missed
 * record the same way, and passes within seconds; the fire was decided to run, and the misfire
 * grace says how late a run is still wanted. Past it the fire is recorded missed, and when even
 * that fails, logged as lost with the reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "log.h"
#include "sched_internal.h"

/* Bounded: a database down for a long time must not grow the list without end; past it a fire
 * is refused at once (a missed record, as before retries existed). */
#define RETRY_MAX      256
#define RETRY_FIRST_MS 500
#define RETRY_CAP_MS   16000
#define MISSED_KEEP_MS (10 * 60 * 1000)

/* The store's codes for what passes by itself: broken or refused connections (EIO, EPIPE,
 * ECONNRESET, ECONNREFUSED: also "did not answer"), statement_timeout (ETIMEDOUT),
 * lock_timeout (EBUSY), serialization failures left after the store's own retries (EAGAIN).
 * Not ENOSPC (a full disk, a full LMDB map: an operator's job, not seconds') nor anything that
 * says the fire itself is wrong (a deleted job, validation, no lease: ESTATE). */
bool sched_transient(int rc)
{
    static const int codes[] = {OPSC_EIO,        OPSC_EPIPE,     OPSC_ECONNRESET,
                                OPSC_ECONNREFUSED, OPSC_ETIMEDOUT, OPSC_EBUSY,
                                OPSC_EAGAIN,     OPSC_EHOSTUNREACH};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (rc == codes[i])
            return true;
    return false;
}

static void text_at(int64_t ms, char out[RFC3339_LEN])
{
    rfc3339_format(ms, out);
}

/* A new entry at its place by planned instant (tried, and committed, in order), or NULL. */
static sched_retry *insert(sched *s, sched_entry *e, int64_t planned_ms, int rc, const char *why)
{
    if (s->n_retries == RETRY_MAX ||
        sched_grow((void **)&s->retries, &s->cap_retries, s->n_retries, sizeof(*s->retries)) < 0)
        return NULL;
    size_t i = s->n_retries;
    while (i > 0 && s->retries[i - 1].planned_ms > planned_ms)
        i--;
    memmove(&s->retries[i + 1], &s->retries[i], (s->n_retries - i) * sizeof(*s->retries));
    s->n_retries++;
    sched_retry *r = &s->retries[i];
    memset(r, 0, sizeof(*r));
    snprintf(r->sid, sizeof(r->sid), "%s", e->def.id);
    r->planned_ms = planned_ms;
    r->tries = 1;
    r->rc = rc;
    snprintf(r->why, sizeof(r->why), "%s", why);
    return r;
}

int sched_retry_keep(sched *s, sched_entry *e, int64_t planned_ms, int rc, const char *why,
                     bool at_once)
{
    sched_retry *r = insert(s, e, planned_ms, rc, why);
    if (!r)
        return OPSC_ENOSPC;
    r->delay_ms = at_once ? 0 : RETRY_FIRST_MS;
    r->due_mono = s->mono_ms() + (uint64_t)r->delay_ms;
    return 0;
}

int sched_retry_keep_missed(sched *s, sched_entry *e, int64_t planned_ms, int rc, const char *why)
{
    sched_retry *r = insert(s, e, planned_ms, rc, why);
    if (!r)
        return OPSC_ENOSPC;
    r->missed = true;
    r->delay_ms = RETRY_FIRST_MS;
    r->due_mono = s->mono_ms() + (uint64_t)r->delay_ms;
    return 0;
}

static void drop(sched *s, size_t i)
{
    memmove(&s->retries[i], &s->retries[i + 1], (s->n_retries - i - 1) * sizeof(*s->retries));
    s->n_retries--;
}

/* An earlier fire of the same schedule still waits to start: this one waits behind it. (Not
 * behind a missed record: nothing runs for it, and the runs' order is what matters.) */
static bool behind(const sched *s, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (!s->retries[j].missed && strcmp(s->retries[j].sid, s->retries[i].sid) == 0)
            return true;
    return false;
}

enum outcome { SETTLED, FAILED };

static enum outcome lost(sched *s, sched_entry *e, const sched_retry *r, int rc)
{
    char at[RFC3339_LEN];
    text_at(r->planned_ms, at);
    s->stats.lost++;
    log_error("sched",
              "schedule %s: the fire at %s is lost: %s; recording it missed failed too: %s",
              e->def.id, at, r->why, opsc_strerror(rc));
    return SETTLED;
}

/* The next try after `delay`, but not after the deadline (a last try there); true when the
 * deadline has passed. */
static bool back_off(sched *s, sched_retry *r, int64_t deadline, int64_t now);

/* Store the missed record `r` stands for. A failure that passes keeps it (10 minutes at most:
 * a leader cut off that long has stepped down, and its list is dropped anyway). */
static enum outcome try_missed(sched *s, sched_entry *e, sched_retry *r)
{
    exec_run_spec spec = sched_spec_of(e, r->planned_ms);
    sched_run_id run_id = "";
    r->tries++;
    int rc = s->ops->run_record_missed(s->exec, &spec, r->why, run_id);
    if (rc == 0) {
        sched_missed_announce(s, e, r->planned_ms, run_id, r->why);
        return SETTLED;
    }
    if (rc == OPSC_EEXIST || rc == OPSC_ESTATE)
        return SETTLED; /* recorded by another leader, or no longer this node's to record */
    if (!sched_transient(rc) || back_off(s, r, r->planned_ms + MISSED_KEEP_MS, clock_now_ms()))
        return lost(s, e, r, rc);
    log_warn("sched", "schedule %s: recording the missed fire at %lld failed on try %u (%s): "
             "next in %lld ms", e->def.id, (long long)r->planned_ms, r->tries,
             opsc_strerror(rc), (long long)(r->due_mono - s->mono_ms()));
    return FAILED;
}

/* Past the grace period the fire becomes a missed record, tried like one. */
static enum outcome give_up(sched *s, sched_entry *e, sched_retry *r, int64_t now)
{
    char why[SCHED_WHY_MAX];
    snprintf(why, sizeof(why),
             "error: the run could not start after %u tries in %lld s, past the grace period "
             "of %lld s: %.200s",
             r->tries, (long long)((now - r->planned_ms) / 1000),
             (long long)(e->def.grace_ms / 1000), r->why);
    snprintf(e->error, sizeof(e->error), "%.255s", why + strlen("error: "));
    snprintf(r->why, sizeof(r->why), "%s", why);
    r->missed = true;
    r->tries = 0;
    r->delay_ms = 0;
    return try_missed(s, e, r);
}

/* The next try after `delay`, but not after the deadline (a last try there); true when the
 * deadline has passed. */
static bool back_off(sched *s, sched_retry *r, int64_t deadline, int64_t now)
{
    if (now >= deadline)
        return true;
    r->delay_ms = r->delay_ms ? r->delay_ms * 2 : RETRY_FIRST_MS;
    if (r->delay_ms > RETRY_CAP_MS)
        r->delay_ms = RETRY_CAP_MS;
    int64_t wait = r->delay_ms < deadline - now ? r->delay_ms : deadline - now;
    r->due_mono = s->mono_ms() + (uint64_t)wait;
    return false;
}

static enum outcome try_again(sched *s, sched_retry *r)
{
    sched_entry *e = sched_map_get(s, r->sid);
    char at[RFC3339_LEN];
    text_at(r->planned_ms, at);
    /* A missed record is still written for a paused schedule: the instant was due. */
    if (!e || (!r->missed && (!e->valid || !e->def.enabled))) {
        log_warn("sched", "schedule %s: its fire at %s is not tried again: the schedule is %s",
                 r->sid, at, e ? "paused or no longer valid" : "deleted");
        return SETTLED;
    }
    if (r->missed)
        return try_missed(s, e, r);
    int64_t deadline = r->planned_ms + e->def.grace_ms;
    if (clock_now_ms() > deadline)
        return give_up(s, e, r, clock_now_ms());
    exec_run_spec spec = sched_spec_of(e, r->planned_ms);
    sched_run_id run_id = "";
    char err[512] = "";
    r->tries++;
    int rc = s->ops->run_start(s->exec, &spec, run_id, err, sizeof(err)); /* alone: a duplicate
                                                                             is this one */
    if (rc == 0) {
        log_info("sched", "schedule %s: the fire at %s started run %s on try %u", e->def.id, at,
                 run_id, r->tries);
        s->stats.retried++;
        sched_started(s, e, run_id, r->planned_ms);
        return SETTLED;
    }
    if (rc == OPSC_EEXIST || rc == OPSC_ESTATE) {
        log_info("sched", "schedule %s: the fire at %s %s", e->def.id, at,
                 rc == OPSC_EEXIST ? "exists already (another leader stored it): dropped"
                                   : "is not this node's any more (no lease): the leader's "
                                     "catch-up decides it");
        e->error[0] = '\0';
        return SETTLED;
    }
    if (!sched_transient(rc)) {
        sched_refuse_start(s, e, &spec, rc, err);
        return SETTLED;
    }
    r->rc = rc;
    snprintf(r->why, sizeof(r->why), "%.300s", *err ? err : opsc_strerror(rc));
    if (back_off(s, r, deadline, clock_now_ms()))
        return give_up(s, e, r, clock_now_ms());
    log_warn("sched", "schedule %s: the fire at %s did not start on try %u (%s): next in %lld ms",
             e->def.id, at, r->tries, r->why, (long long)(r->due_mono - s->mono_ms()));
    return FAILED;
}

/* One failure ends the pass: what failed one fire (a database away, a lock) likely fails the
 * next, and each try may wait a store timeout; the others come on the next loop turn. */
void sched_retry_run(sched *s)
{
    uint64_t mono = s->mono_ms();
    for (size_t i = 0; s->exec && i < s->n_retries;) {
        sched_retry *r = &s->retries[i];
        if (r->due_mono > mono || behind(s, i)) {
            i++;
            continue;
        }
        if (try_again(s, r) == FAILED)
            break;
        drop(s, i);
    }
}

int64_t sched_retry_wait(sched *s)
{
    if (!s->n_retries)
        return -1;
    uint64_t mono = s->mono_ms(), due = UINT64_MAX;
    for (size_t i = 0; i < s->n_retries; i++)
        if (s->retries[i].due_mono < due)
            due = s->retries[i].due_mono;
    return due > mono ? (int64_t)(due - mono) : 0;
}

int64_t sched_retry_oldest(const sched *s)
{
    return s->n_retries ? s->retries[0].planned_ms : -1;
}

void sched_retry_forget(sched *s, sched_entry *e, const char *why)
{
    for (size_t i = 0; i < s->n_retries;) {
        if (strcmp(s->retries[i].sid, e->def.id) != 0) {
            i++;
            continue;
        }
        const sched_retry *r = &s->retries[i];
        int rc = 0;
        if (why && r->missed) /* already a missed record: its reason stands */
            rc = sched_add_action(s, e, SCHED_ACT_MISS, r->planned_ms, "%s", r->why);
        else if (why)
            rc = sched_add_action(s, e, SCHED_ACT_MISS, r->planned_ms,
                                  "error: %s while this fire waited to be tried again (%.200s)",
                                  why, r->why);
        if (rc < 0)
            log_error("sched", "schedule %s: out of memory recording a dropped fire", e->def.id);
        drop(s, i);
    }
}

void sched_retry_drop_all(sched *s, const char *why)
{
    for (size_t i = 0; i < s->n_retries; i++) {
        char at[RFC3339_LEN];
        text_at(s->retries[i].planned_ms, at);
        log_warn("sched",
                 "schedule %s: its fire at %s is not tried again: %s (the next scheduler decides "
                 "it as a misfire, unless a later fire of the schedule was stored)",
                 s->retries[i].sid, at, why);
    }
    s->n_retries = 0;
}
