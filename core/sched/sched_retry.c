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

int sched_retry_keep(sched *s, sched_entry *e, int64_t planned_ms, int rc, const char *why,
                     bool at_once)
{
    if (s->n_retries == RETRY_MAX ||
        sched_grow((void **)&s->retries, &s->cap_retries, s->n_retries, sizeof(*s->retries)) < 0)
        return OPSC_ENOSPC;
    size_t i = s->n_retries; /* by planned instant: tried, and committed, in order */
    while (i > 0 && s->retries[i - 1].planned_ms > planned_ms)
        i--;
    memmove(&s->retries[i + 1], &s->retries[i], (s->n_retries - i) * sizeof(*s->retries));
    s->n_retries++;
    sched_retry *r = &s->retries[i];
    memset(r, 0, sizeof(*r));
    snprintf(r->sid, sizeof(r->sid), "%s", e->def.id);
    r->planned_ms = planned_ms;
    r->delay_ms = at_once ? 0 : RETRY_FIRST_MS;
    r->due_mono = s->mono_ms() + (uint64_t)r->delay_ms;
    r->tries = 1;
    r->rc = rc;
    snprintf(r->why, sizeof(r->why), "%s", why);
    return 0;
}

static void drop(sched *s, size_t i)
{
    memmove(&s->retries[i], &s->retries[i + 1], (s->n_retries - i - 1) * sizeof(*s->retries));
    s->n_retries--;
}

/* An earlier instant of the same schedule still waits: this one waits behind it. */
static bool behind(const sched *s, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(s->retries[j].sid, s->retries[i].sid) == 0)
            return true;
    return false;
}

static void give_up(sched *s, sched_entry *e, const sched_retry *r, int64_t now)
{
    char why[SCHED_WHY_MAX], at[RFC3339_LEN];
    snprintf(why, sizeof(why),
             "error: the run could not start after %u tries in %lld s, past the grace period "
             "of %lld s: %.200s",
             r->tries, (long long)((now - r->planned_ms) / 1000),
             (long long)(e->def.grace_ms / 1000), r->why);
    snprintf(e->error, sizeof(e->error), "%.255s", why + strlen("error: "));
    exec_run_spec spec = sched_spec_of(e, r->planned_ms);
    int rc = sched_record_missed(s, e, &spec, why);
    if (rc == 0)
        return;
    text_at(r->planned_ms, at);
    s->stats.lost++;
    log_error("sched",
              "schedule %s: the fire at %s is lost: %s; recording it missed failed too: %s",
              e->def.id, at, why, opsc_strerror(rc));
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

enum outcome { SETTLED, FAILED };

static enum outcome try_again(sched *s, sched_retry *r)
{
    sched_entry *e = sched_map_get(s, r->sid);
    char at[RFC3339_LEN];
    text_at(r->planned_ms, at);
    if (!e || !e->valid || !e->def.enabled) {
        log_warn("sched", "schedule %s: its fire at %s is not tried again: the schedule is %s",
                 r->sid, at, e ? "paused or no longer valid" : "deleted");
        return SETTLED;
    }
    int64_t deadline = r->planned_ms + e->def.grace_ms;
    if (clock_now_ms() > deadline) {
        give_up(s, e, r, clock_now_ms());
        return SETTLED;
    }
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
    if (back_off(s, r, deadline, clock_now_ms())) {
        give_up(s, e, r, clock_now_ms());
        return SETTLED;
    }
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
        if (why && sched_add_action(s, e, SCHED_ACT_MISS, s->retries[i].planned_ms,
                                    "error: %s while this fire waited to be tried again (%.200s)",
                                    why, s->retries[i].why) < 0)
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
