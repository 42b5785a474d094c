/* notify_send.c - the sender: due deliveries from the index, one attempt each through the
 * channel's notifier, the answer judged by one policy (back-off, Retry-After, give up, disable). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "cluster.h"
#include "core.h"
#include "log.h"
#include "notify_internal.h"
#include "plugin_host.h"
#include "util.h"

#define ATTEMPTS_KEPT     50 /* attempts a delivery lists (the first and the newest) */
#define LEADER_PASS_BEATS 5  /* the leader's fallback pass, every this many heartbeats */

enum { R_DELIVERED, R_RETRY, R_GAVE_UP };

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* ---- waking ---------------------------------------------------------------------------------- */

/* On a shared store only the leader sends (docs/cluster.md 2.6): every node
 * writes deliveries in its events' transactions, the leader's passes take
 * them from the one due index, so each goes out once and a channel's rate
 * limit holds cluster-wide. */
static bool sending(const notify *n)
{
    return !store_is_shared(n->store) || cluster_leading(n->core->cluster, NULL);
}

static void on_wake(uv_timer_t *t)
{
    notify *n = t->data;
    n->wake_at = 0;
    nt_pump(n);
}

void nt_wake_at(notify *n, int64_t due_ms)
{
    if (n->closed || n->paused || !sending(n) || (n->wake_at && n->wake_at <= due_ms))
        return;
    int64_t wait = due_ms - clock_now_ms();
    n->wake_at = due_ms;
    uv_timer_start(&n->wake, on_wake, (uint64_t)(wait > 0 ? wait : 0), 0);
}

/* ---- attempts ----------------------------------------------------------------------------------
 */

static void attempt_free(nt_attempt *a)
{
    json_decref(a->rec);
    nt_secret_free(a->secret);
    free(a->settings);
    free(a->subject);
    free(a->text);
    free(a->link);
    free(a->payload);
    free(a->body);
    free(a->recipients);
    free(a);
}

static void unlink_attempt(notify *n, nt_attempt *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else
        n->inflight = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->prev = a->next = NULL;
    n->ninflight--;
}

/* The secret must not reach the history or the log, whatever a plugin wrote. */
static void redact(const char *secret, char *text)
{
    size_t sl = secret ? strlen(secret) : 0;
    if (sl < 4)
        return;
    for (char *p = strstr(text, secret); p; p = strstr(p, secret)) {
        memcpy(p, "[secret]", 8 < sl ? 8 : sl);
        memmove(p + (8 < sl ? 8 : sl), p + sl, strlen(p + sl) + 1);
    }
}

static int judge(const nt_attempt *a, int status, bool retryable, bool *disable)
{
    *disable = false;
    int s = a->http_status;
    if (s > 0) {
        if (s >= 200 && s < 300)
            return R_DELIVERED;
        if (s == 410) {
            *disable = true;
            return R_GAVE_UP;
        }
        return s == 408 || s == 429 || s >= 500 ? R_RETRY : R_GAVE_UP;
    }
    if (status == 0)
        return R_DELIVERED;
    return retryable ? R_RETRY : R_GAVE_UP;
}

static void append_attempt(nt_attempt *a, int result, const char *error, int64_t now)
{
    char at[RFC3339_LEN];
    rfc3339_format(now, at);
    static const char *const names[] = {"delivered", "retry", "gave_up"};
    json_t *att = json_pack("{s:s, s:o, s:s?, s:s, s:I}", "at", at, "status",
                            a->http_status > 0 ? json_integer(a->http_status) : json_null(),
                            "error", error, "result", names[result], "duration_ms",
                            (json_int_t)(clock_mono_ms() - a->started_mono));
    json_t *list = json_object_get(a->rec, "attempts");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(a->rec, "attempts", list);
    }
    if (json_array_size(list) >= ATTEMPTS_KEPT)
        json_array_remove(list, 1);
    json_array_append_new(list, att);
}

/* The next attempt: the schedule's delay for the attempts made so far, not
 * before Retry-After; past max_age the delivery is given up. */
static int64_t next_due(notify *n, nt_attempt *a, int64_t now, int64_t made)
{
    size_t k = (size_t)made < n->nretry ? (size_t)made : n->nretry - 1;
    int64_t delay = n->retry_ms[k];
    if (a->retry_after_ms > delay)
        delay = a->retry_after_ms;
    int64_t created = uuid7_time_ms(a->id);
    if (created > 0 && now + delay > created + n->max_age_ms)
        return -1;
    return now + delay;
}

static void set_time(json_t *rec, const char *key, int64_t ms)
{
    char at[RFC3339_LEN];
    rfc3339_format(ms, at);
    json_object_set_new(rec, key, ms > 0 ? json_string(at) : json_null());
}

static void queue_write(notify *n, json_t *rec, int64_t old_due)
{
    json_array_append_new(n->writes, json_pack("{s:s, s:O, s:I}", "db", "outbox", "rec", rec,
                                               "old_due", (json_int_t)old_due));
    json_object_set_new(n->busy, str(rec, "id"), json_true());
    nt_want_results_flush(n);
}

static void record(notify *n, nt_attempt *a, int result, bool disable, const char *error)
{
    int64_t now = clock_now_ms();
    int64_t old_due = (int64_t)json_integer_value(json_object_get(a->rec, "due_ms"));
    bool test = json_is_true(json_object_get(a->rec, "test"));
    append_attempt(a, result, error, now);
    int64_t made = (int64_t)json_array_size(json_object_get(a->rec, "attempts"));
    int64_t due = result == R_RETRY && !test ? next_due(n, a, now, made) : -1;
    const char *state = result == R_DELIVERED ? "delivered" : due > 0 ? "failed" : "gave_up";
    json_object_set_new(a->rec, "state", json_string(state));
    json_object_set_new(a->rec, "error", error ? json_string(error) : json_null());
    if (result == R_RETRY && due < 0 && !test) {
        char why[160];
        snprintf(why, sizeof(why), "gave up after %lld attempts: older than max_age",
                 (long long)made);
        json_object_set_new(a->rec, "gave_up_reason", json_string(why));
    }
    if (result == R_DELIVERED)
        set_time(a->rec, "delivered_at", now);
    set_time(a->rec, "next_attempt_at", due > 0 ? due : 0);
    json_object_set_new(a->rec, "due_ms", json_integer(due > 0 ? due : 0));
    nt_count(n, a->type, result == R_DELIVERED ? "delivered" : due > 0 ? "retried" : "gave_up");
    if (result == R_DELIVERED)
        n->stats.delivered++;
    else if (due > 0)
        n->stats.retried++;
    else
        n->stats.gave_up++;
    if (disable) {
        json_array_append_new(n->writes, json_pack("{s:s, s:s}", "disable", a->channel_id, "why",
                                                   "the receiver answered 410 Gone"));
        json_array_append_new(n->audits, json_pack("{s:s, s:s}", "id", a->channel_id, "why",
                                                   "the receiver answered 410 Gone"));
    }
    queue_write(n, a->rec, test ? -1 : old_due);
}

/* The answer to a test request reports a durable record: write it now. */
static void finish_test(notify *n, nt_attempt *a)
{
    nt_flush_now(n);
    a->test_cb(a->test_ud, 0, a->rec, NULL);
}

static void on_done(void *ud, int status, bool retryable, const char *error)
{
    nt_attempt *a = ud;
    notify *n = a->n;
    if (!n) { /* answered after the service closed, or after its time was up */
        attempt_free(a);
        return;
    }
    unlink_attempt(n, a);
    char err[1024] = "";
    if (status != 0 || (a->http_status > 0 && (a->http_status < 200 || a->http_status > 299)))
        snprintf(err, sizeof(err), "%s", error && *error ? error : opsc_strerror(status));
    redact(a->secret, err);
    bool disable = false;
    int result = judge(a, status, retryable, &disable);
    if (result != R_DELIVERED && !*err)
        snprintf(err, sizeof(err), "the receiver answered %d", a->http_status);
    if (result != R_DELIVERED)
        log_info("notify", "delivery %s via %s: %s", a->id, a->type, err);
    record(n, a, result, disable, result == R_DELIVERED ? NULL : err);
    if (a->test_cb)
        finish_test(n, a);
    attempt_free(a);
    /* The next pass waits for the loop's next turn: the answers of one turn
     * free their slots together and one pass fills them all. */
    nt_wake_at(n, clock_now_ms());
}

void nt_http_status(void *ud, int status, int64_t retry_after_ms)
{
    nt_attempt *a = ud;
    if (!a || !a->n)
        return;
    a->http_status = status;
    a->retry_after_ms = retry_after_ms > 0 ? retry_after_ms : 0;
}

/* ---- preparing and starting ---------------------------------------------------------------- */

static void on_sweep(uv_timer_t *t)
{
    nt_attempt_timeouts(t->data);
}

static char *dump(const json_t *j)
{
    return j ? json_dumps(j, JSON_COMPACT) : NULL;
}

static int prepare(notify *n, store_txn *txn, nt_attempt *a, const json_t *ch, char *err,
                   size_t errlen)
{
    const json_t *payload = json_object_get(a->rec, "payload");
    const nrule *r = nt_rule_find(n, str(a->rec, "rule_id"));
    int rc = nt_render(n, a->type, r, payload, &a->subject, &a->text, &a->body, err, errlen);
    const char *cred = str(ch, "credential_id");
    if (rc == 0 && cred && (rc = nt_secret_open(n, txn, cred, &a->secret)) < 0)
        snprintf(err, errlen, "the channel's credential %s cannot be opened: %s", cred,
                 opsc_strerror(rc));
    a->settings = dump(json_object_get(ch, "settings"));
    a->payload = dump(payload);
    a->link = str(payload, "link") ? strdup(str(payload, "link")) : NULL;
    if (json_array_size(json_object_get(a->rec, "recipients")))
        a->recipients = dump(json_object_get(a->rec, "recipients"));
    if (rc == 0 && (!a->settings || !a->payload))
        rc = OPSC_ENOMEM;
    a->msg = (opsc_notify_msg){
        .size = sizeof(opsc_notify_msg),
        .id = a->id,
        .event = str(a->rec, "event"),
        .severity = str(a->rec, "severity"),
        .subject = a->subject,
        .text = a->text,
        .link = a->link,
        .payload_json = a->payload,
        .body = a->body,
        .recipients_json = a->recipients,
    };
    return rc;
}

static nt_attempt *attempt_new(notify *n, json_t *rec, const json_t *ch)
{
    nt_attempt *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->n = n;
    a->rec = rec;
    a->http_status = -1;
    snprintf(a->id, sizeof(a->id), "%s", str(rec, "id") ?: "");
    snprintf(a->channel_id, sizeof(a->channel_id), "%s", str(ch, "id") ?: "");
    snprintf(a->type, sizeof(a->type), "%s", str(ch, "type") ?: "");
    return a;
}

/* Hand the attempt to its notifier; a refusal is recorded at once. */
static void launch(notify *n, nt_attempt *a)
{
    const plugin_reg *reg = plugin_host_find(n->core->plugins, REG_NOTIFIER, a->type);
    a->started_mono = clock_mono_ms();
    a->next = n->inflight;
    if (n->inflight)
        n->inflight->prev = a;
    n->inflight = a;
    n->ninflight++;
    json_object_set_new(n->busy, a->id, json_true());
    if (n->ninflight == 1 && !n->closed)
        uv_timer_start(&n->sweep, on_sweep, 1000, 1000);
    int rc = OPSC_ENOENT;
    char why[256];
    snprintf(why, sizeof(why), "no notifier of type %s is loaded", a->type);
    if (reg) {
        const opsc_notifier *d = reg->desc;
        rc = d->send(reg->state, &a->msg, a->settings, a->secret, on_done, a);
        snprintf(why, sizeof(why), "the %s notifier refused the message: %s", a->type,
                 opsc_strerror(rc));
    }
    if (rc < 0) /* a missing plugin may come back (a restart): worth retrying */
        on_done(a, rc, !reg, why);
}

int nt_attempt_prepare(notify *n, store_txn *txn, json_t *rec, const json_t *channel,
                       notify_test_cb cb, void *ud, nt_attempt **out, char *err, size_t errlen)
{
    nt_attempt *a = attempt_new(n, json_incref(rec), channel);
    *out = NULL;
    if (!a)
        return OPSC_ENOMEM;
    a->test_cb = cb;
    a->test_ud = ud;
    int rc = prepare(n, txn, a, channel, err, errlen);
    if (rc < 0) {
        attempt_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void nt_attempt_launch(notify *n, nt_attempt *a)
{
    launch(n, a);
}

/* ---- the pass ------------------------------------------------------------------------------ */

typedef struct pass {
    notify *n;
    int64_t now, next_due;
    int budget;
    json_t *due;      /* delivery ids due now */
    json_t *channels; /* channel id -> record (null: gone) */
    nt_attempt **ready;
    size_t nready;
} pass;

static int scan_due(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    (void)val, (void)vlen;
    pass *p = ud;
    char k[96];
    if (klen >= sizeof(k) || klen < 18)
        return 0;
    memcpy(k, key, klen);
    k[klen] = '\0';
    int64_t due = (int64_t)strtoull(k, NULL, 16);
    if (due > p->now) {
        p->next_due = due;
        return 1;
    }
    if (json_object_get(p->n->busy, k + 17))
        return 0;
    if ((int)json_array_size(p->due) >= p->budget) {
        p->next_due = p->now; /* more is due: the next pass takes it */
        return 1;
    }
    json_array_append_new(p->due, json_string(k + 17));
    return 0;
}

static const json_t *channel_of(pass *p, store_txn *txn, const char *id)
{
    json_t *ch = json_object_get(p->channels, id);
    if (!ch) {
        if (store_get(txn, "notify_channels", id, &ch) < 0)
            ch = json_null();
        json_object_set_new(p->channels, id, ch);
    }
    return json_is_object(ch) ? ch : NULL;
}

/* A delivery that will not be sent: its channel is gone or disabled. */
static void give_up(notify *n, json_t *rec, const char *why)
{
    int64_t old_due = (int64_t)json_integer_value(json_object_get(rec, "due_ms"));
    json_object_set_new(rec, "state", json_string("gave_up"));
    json_object_set_new(rec, "error", json_string(why));
    json_object_set_new(rec, "gave_up_reason", json_string(why));
    json_object_set_new(rec, "next_attempt_at", json_null());
    json_object_set_new(rec, "due_ms", json_integer(0));
    nt_count(n, str(rec, "channel_type") ?: "unknown", "gave_up");
    n->stats.gave_up++;
    queue_write(n, rec, old_due);
}

static void defer(notify *n, json_t *rec, int64_t until)
{
    int64_t old_due = (int64_t)json_integer_value(json_object_get(rec, "due_ms"));
    json_object_set_new(rec, "due_ms", json_integer(until));
    set_time(rec, "next_attempt_at", until);
    queue_write(n, rec, old_due);
}

static void consider(pass *p, store_txn *txn, json_t *rec)
{
    notify *n = p->n;
    const json_t *ch = channel_of(p, txn, str(rec, "channel_id") ?: "");
    int64_t next = 0;
    if (!ch) {
        give_up(n, rec, "the channel was deleted");
    } else if (!json_is_true(json_object_get(ch, "enabled"))) {
        give_up(n, rec, "the channel is disabled");
    } else if (!nt_limit_take(n, ch, json_is_true(json_object_get(rec, "rate_slot")), p->now,
                              &next)) {
        /* The channel's rate limit: queued, not dropped, in a slot of its own. */
        json_object_set_new(rec, "rate_slot", json_true());
        defer(n, rec, next);
    } else {
        json_object_del(rec, "rate_slot");
        nt_attempt *a = attempt_new(n, json_incref(rec), ch);
        char err[512];
        if (a && prepare(n, txn, a, ch, err, sizeof(err)) == 0) {
            p->ready[p->nready++] = a;
        } else if (a) {
            /* Nothing can render or open it now; try again on the schedule. */
            a->started_mono = clock_mono_ms();
            record(n, a, R_RETRY, false, err);
            attempt_free(a);
        }
    }
}

static int pass_txn(store_txn *txn, void *ud)
{
    pass *p = ud;
    int rc = store_kv_scan(txn, "outbox_due", NULL, 0, scan_due, p);
    size_t i;
    json_t *id;
    json_array_foreach(p->due, i, id)
    {
        json_t *rec = NULL;
        if (rc < 0)
            break;
        rc = store_get(txn, "outbox", json_string_value(id), &rec);
        if (rc == OPSC_ENOENT) { /* an index entry without its record: drop it */
            rc = 0;
            continue;
        }
        if (rc == 0)
            consider(p, txn, rec);
        json_decref(rec);
    }
    return rc;
}

static void pass_once(notify *n)
{
    pass p = {n,
              clock_now_ms(),
              0,
              n->max_in_flight - (int)n->ninflight,
              json_array(),
              json_object(),
              NULL,
              0};
    p.ready = calloc((size_t)(p.budget > 0 ? p.budget : 1), sizeof(*p.ready));
    int rc = p.due && p.channels && p.ready && p.budget > 0 ? store_read(n->store, pass_txn, &p)
                                                            : (p.budget > 0 ? OPSC_ENOMEM : 0);
    if (rc < 0)
        log_error("notify", "reading the outbox failed: %s", opsc_strerror(rc));
    for (size_t i = 0; i < p.nready; i++)
        launch(n, p.ready[i]);
    free(p.ready);
    json_decref(p.due);
    json_decref(p.channels);
    if (p.next_due && p.next_due > p.now)
        nt_wake_at(n, p.next_due);
    else if (p.next_due && (int)n->ninflight < n->max_in_flight)
        n->pump_again = true;
}

void nt_pump(notify *n)
{
    if (n->closed || n->paused || !sending(n))
        return;
    if (n->pumping) {
        n->pump_again = true;
        return;
    }
    n->pumping = true;
    do {
        n->pump_again = false;
        pass_once(n);
    } while (n->pump_again && !n->closed);
    n->pumping = false;
}

/* A term begins: what is due now, whichever node wrote it or was sending it
 * when it died, goes out (at least once). While it lasts, a pass every few
 * beats catches an announcement lost with the listening connection. A node
 * that stepped down sends nothing new; its attempts in flight end and are
 * recorded. */
void notify_leading(notify *n, bool leading)
{
    if (!n || n->closed)
        return;
    if (!leading) {
        uv_timer_stop(&n->wake);
        n->wake_at = 0;
        n->led = false;
        return;
    }
    if (!n->led || ++n->beats_led % LEADER_PASS_BEATS == 0)
        nt_wake_at(n, clock_now_ms());
    if (!n->led)
        log_info("notify", "sending the cluster's notifications from this node (the leader)");
    n->led = true;
}

/* ---- time limits and closing --------------------------------------------------------------- */

void nt_attempt_timeouts(notify *n)
{
    uint64_t now = clock_mono_ms();
    for (nt_attempt *a = n->inflight, *next; a; a = next) {
        next = a->next;
        if (now - a->started_mono < (uint64_t)n->attempt_timeout_ms)
            continue;
        /* The notifier still holds the message: the attempt lives on, alone,
         * until its `done` (if ever); the delivery goes back to the queue. */
        unlink_attempt(n, a);
        json_t *rec = json_deep_copy(a->rec);
        nt_attempt *ghost = a;
        ghost->n = NULL;
        nt_attempt *b = attempt_new(n, rec, NULL);
        if (b) {
            snprintf(b->type, sizeof(b->type), "%s", ghost->type);
            snprintf(b->channel_id, sizeof(b->channel_id), "%s", ghost->channel_id);
            b->started_mono = ghost->started_mono;
            record(n, b, R_RETRY, false, "the notifier did not answer in time");
            if (ghost->test_cb)
                ghost->test_cb(ghost->test_ud, 0, b->rec, NULL);
            ghost->test_cb = NULL;
            attempt_free(b);
        }
    }
    if (n->ninflight == 0)
        uv_timer_stop(&n->sweep);
}

void nt_sender_close(notify *n)
{
    uv_timer_stop(&n->wake);
    uv_timer_stop(&n->sweep);
    for (nt_attempt *a = n->inflight, *next; a; a = next) {
        next = a->next;
        a->n = NULL; /* its notifier frees it by answering (curl transfers end at stop) */
        if (a->test_cb)
            a->test_cb(a->test_ud, OPSC_ECANCELED, NULL, "the server is stopping");
        a->test_cb = NULL;
        a->prev = a->next = NULL;
    }
    n->inflight = NULL;
    n->ninflight = 0;
}
