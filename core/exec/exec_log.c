/* exec_log.c - run logs: records numbered and published live, stored in chunks per target and
 * loop turn, and kept by age and size. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "core.h"
#include "events.h"
#include "exec_internal.h"
#include "log.h"
#include "run_read.h"
#include "runfiles.h"
#include "store.h"
#include "util.h"

#define LOG_PENDING_MAX (1u << 20) /* a target's pending records are written beyond this */

/* Length of the valid UTF-8 sequence at s[0] (no NUL, no overlong form, no
 * surrogate), or 0. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    if (c >= 0x01 && c < 0x80)
        return 1;
    size_t n = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || n > left)
        return 0;
    for (size_t k = 1; k < n; k++)
        if ((s[k] >> 6) != 2)
            return 0;
    if (n == 2)
        return c >= 0xc2 ? 2 : 0;
    if (n == 3) {
        unsigned cp = ((c & 0xfu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
        return cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff) ? 3 : 0;
    }
    unsigned cp = ((c & 7u) << 18) | ((s[1] & 0x3fu) << 12);
    return cp >= 0x10000 && cp <= 0x10ffff ? 4 : 0;
}

/* Valid UTF-8 without NUL: invalid bytes become U+FFFD, NUL becomes U+2400.
 * Runs of valid text are copied whole (this is on the path of every byte
 * of output). */
static char *sanitize(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    strbuf b = STRBUF_INIT;
    size_t i = 0, start = 0;
    while (i < len) {
        size_t n = utf8_len(u + i, len - i);
        if (n) {
            i += n;
            continue;
        }
        sb_append(&b, s + start, i - start);
        sb_puts(&b, u[i] == 0 ? "\xe2\x90\x80" : "\xef\xbf\xbd");
        start = ++i;
    }
    sb_append(&b, s + start, i - start);
    sb_append(&b, "", 0);
    return sb_steal(&b, NULL);
}

static void pending_record(ex_target *t, json_t *rec, uint64_t seq)
{
    char *text = json_dumps(rec, JSON_COMPACT);
    if (!text)
        return;
    if (t->log.len > 0)
        sb_append(&t->log, ",", 1);
    else
        t->log_first_seq = seq;
    sb_puts(&t->log, text);
    t->log_last_seq = seq;
    free(text);
    ex_mark_target(t);
    if (t->log.len > LOG_PENDING_MAX)
        ex_flush(t->run->ex);
}

void ex_log(ex_target *t, const char *step_id, const char *stream, const char *text, size_t len)
{
    ex_run *r = t->run;
    exec *ex = r->ex;
    if (t->log_capped)
        return;
    char *s = ex_redact(r, sanitize(text, len));
    if (!s)
        return;
    size_t n = strlen(s);
    if (t->log_bytes + n > (uint64_t)ex->opts.log_max_per_target) {
        t->log_capped = true;
        free(s);
        s = NULL;
        if (asprintf(&s, "[the log of this target reached %lld bytes: later output is not kept]\n",
                     (long long)ex->opts.log_max_per_target) < 0)
            return;
        stream = "system";
        n = strlen(s);
    }
    char ts[RFC3339_LEN];
    rfc3339_format(clock_now_ms(), ts);
    json_t *rec = json_pack("{s:s, s:s?, s:s, s:s}", "target_id", t->id, "step_id", step_id,
                            "stream", stream, "ts", ts);
    if (rec) /* sanitised above: valid UTF-8 */
        json_object_set_new_nocheck(rec, "text", json_stringn_nocheck(s, n));
    free(s);
    if (!rec)
        return;
    json_incref(rec);
    uint64_t seq = ex_publish(r, "run.log", rec);
    /* Subscribers may keep the published object: store a copy without what
     * the chunk's key says. */
    json_t *stored = json_copy(rec);
    json_decref(rec);
    json_object_del(stored, "run_id");
    json_object_del(stored, "target_id");
    pending_record(t, stored, seq);
    json_decref(stored);
    t->log_bytes += n;
    r->log_bytes += n;
    ex->counters.log_bytes += n;
    if (ex->log_total >= 0)
        ex->log_total += (int64_t)n;
}

void ex_logf(ex_target *t, const char *stream, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = strlen(msg);
    msg[len++] = '\n';
    const job_plan *p = t->run->plan;
    ex_log(t, t->step < p->nsteps ? p->steps[t->step].id : NULL, stream, msg, len);
}

/* Key "<run>/<target index>/<first seq>"; value "<last seq>\n[records]". */
int ex_log_put(store_txn *txn, ex_target *t)
{
    if (t->log.len == 0)
        return 0;
    char key[80];
    run_log_key(key, sizeof(key), t->run->id, t->idx, t->log_first_seq);
    strbuf v = STRBUF_INIT;
    sb_printf(&v, "%llu\n[", (unsigned long long)t->log_last_seq);
    sb_append(&v, t->log.buf, t->log.len);
    sb_append(&v, "]", 1);
    int rc = v.oom ? OPSC_ENOMEM : store_kv_put(txn, "run_logs", key, strlen(key), v.buf, v.len);
    sb_free(&v);
    return rc;
}

/* ---- retention -------------------------------------------------------------------------- */

typedef struct sweep {
    exec *ex;
    int64_t cutoff_ms; /* logs of runs that ended before go */
    int64_t total;     /* bytes of logs kept, counted */
    json_t *victims;   /* [{id, bytes, old}] of ended runs with logs, oldest first */
} sweep;

/* A run that logged nothing may still have kept files (runfiles.h). */
static bool kept_files(exec *ex, const char *run_id)
{
    char dir[4096];
    return ex->core &&
           runfiles_dir(ex->core->cfg.store.data_dir, run_id, NULL, false, dir, sizeof(dir)) == 0 &&
           access(dir, F_OK) == 0;
}

static int sweep_scan(const char *id, json_t *rec, void *ud)
{
    sweep *s = ud;
    if (json_is_true(json_object_get(rec, "logs_deleted")))
        return 0;
    json_int_t bytes = json_integer_value(json_object_get(rec, "log_bytes"));
    const char *fin = json_string_value(json_object_get(rec, "finished_at"));
    int state = ex_state_parse(json_string_value(json_object_get(rec, "state")));
    int64_t fin_ms = 0;
    if (fin)
        rfc3339_parse(fin, &fin_ms);
    if (!ex_terminal(state) || (bytes <= 0 && !kept_files(s->ex, id)))
        return 0; /* active runs are counted from memory */
    s->total += bytes;
    bool old = s->cutoff_ms > 0 && fin_ms > 0 && fin_ms < s->cutoff_ms;
    if (old || s->ex->opts.log_max_bytes > 0)
        json_array_append_new(s->victims,
                              json_pack("{s:s, s:I, s:b}", "id", id, "bytes", bytes, "old", old));
    return 0;
}

static int scan_txn(store_txn *txn, void *ud)
{
    return store_scan(txn, "runs", NULL, false, sweep_scan, ud);
}

static int collect_keys(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    (void)val;
    (void)vlen;
    json_array_append_new(ud, json_stringn(key, klen));
    return 0;
}

static int drop_txn(store_txn *txn, void *ud)
{
    const char *id = ud;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "%s/", id);
    json_t *keys = json_array();
    int rc = store_kv_scan(txn, "run_logs", prefix, strlen(prefix), collect_keys, keys);
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (rc == 0)
            rc = store_kv_del(txn, "run_logs", json_string_value(k), json_string_length(k));
    }
    json_decref(keys);
    json_t *rec = NULL;
    if (rc == 0 && (rc = store_get(txn, "runs", id, &rec)) == 0) {
        json_object_set_new(rec, "logs_deleted", json_true());
        rc = store_update(txn, "runs", rec, 0);
    }
    json_decref(rec);
    return rc;
}

/* What the run's steps fetched goes with its logs (runfiles.h). */
static void drop_files(exec *ex, const char *run_id)
{
    int rc = ex->core ? runfiles_remove(ex->core->cfg.store.data_dir, run_id) : 0;
    if (rc < 0)
        log_error("exec", "log retention: the files of run %s: %s", run_id, opsc_strerror(rc));
}

void ex_log_sweep(exec *ex)
{
    if (ex->opts.log_retention_ms <= 0 && ex->opts.log_max_bytes <= 0)
        return;
    sweep s = {ex, ex->opts.log_retention_ms > 0 ? clock_now_ms() - ex->opts.log_retention_ms : 0,
               0, json_array()};
    int rc = store_read(ex->store, scan_txn, &s);
    for (ex_run *r = ex->head; r; r = r->next_run)
        s.total += (int64_t)r->log_bytes;
    size_t dropped = 0, i;
    json_t *v;
    json_array_foreach(s.victims, i, v)
    {
        bool over = ex->opts.log_max_bytes > 0 && s.total > ex->opts.log_max_bytes;
        if (rc < 0 || (!over && !json_is_true(json_object_get(v, "old"))))
            continue;
        const char *id = json_string_value(json_object_get(v, "id"));
        rc = store_write(ex->store, drop_txn, (void *)id);
        if (rc == 0)
            drop_files(ex, id);
        if (rc == 0) {
            s.total -= json_integer_value(json_object_get(v, "bytes"));
            dropped++;
        }
    }
    if (rc < 0)
        log_error("exec", "log retention: %s", opsc_strerror(rc));
    ex->log_total = s.total;
    if (dropped)
        log_info("exec", "log retention: deleted the logs of %zu runs; %lld bytes of logs kept",
                 dropped, (long long)s.total);
    json_decref(s.victims);
}
