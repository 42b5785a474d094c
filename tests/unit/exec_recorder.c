/* exec_recorder.c - a test double of exec.h that records what the scheduler asks and publishes run
 * states. */
#include "exec_recorder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <opsc/errors.h>

exec *exec_recorder_new(events *ev)
{
    exec *ex = calloc(1, sizeof(*ex));
    if (ex)
        ex->ev = ev;
    return ex;
}

void exec_recorder_free(exec *ex)
{
    if (!ex)
        return;
    for (size_t i = 0; i < ex->n; i++) {
        free(ex->runs[i].reason);
        free(ex->runs[i].params);
        free(ex->runs[i].targets);
    }
    free(ex->runs);
    free(ex->active);
    free(ex->started);
    free(ex);
}

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t want = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, want * size);
    if (!p)
        return OPSC_ENOMEM;
    *arr = p;
    *cap = want;
    return 0;
}

static void publish(exec *ex, rec_run *r, const char *previous)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s?}", "run_id", r->run_id, "job_id", r->job_id,
                          "schedule_id", r->schedule_id, "state", r->state, "previous", previous);
    events_publish(ex->ev, "run.state", r->run_id, d);
    json_decref(d);
}

static void set_state(exec *ex, size_t i, const char *state)
{
    char prev[16];
    snprintf(prev, sizeof(prev), "%s", ex->runs[i].state);
    snprintf(ex->runs[i].state, sizeof(ex->runs[i].state), "%s", state);
    publish(ex, &ex->runs[i], prev[0] ? prev : NULL);
}

static void copy(char *dst, size_t n, const char *src)
{
    size_t len = src ? strnlen(src, n - 1) : 0;
    memcpy(dst, src ? src : "", len);
    dst[len] = '\0';
}

static char *dump(const json_t *v)
{
    return v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

static rec_run *new_run(exec *ex, const exec_run_spec *spec, bool missed)
{
    if (grow((void **)&ex->runs, &ex->cap, ex->n, sizeof(*ex->runs)) < 0)
        return NULL;
    rec_run *r = &ex->runs[ex->n++];
    memset(r, 0, sizeof(*r));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r->created_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    r->created_ms = clock_now_ms();
    r->missed = missed;
    uuid7_new(r->run_id);
    copy(r->schedule_id, sizeof(r->schedule_id), spec->schedule_id);
    copy(r->job_id, sizeof(r->job_id), spec->job_id);
    copy(r->triggered_by, sizeof(r->triggered_by), spec->triggered_by);
    r->planned_ms = spec->planned_at_ms;
    if (!ex->quiet) {
        r->params = dump(spec->params);
        r->targets = dump(spec->targets);
    }
    return r;
}

static int persist_txn(store_txn *txn, void *ud)
{
    const rec_run *r = ud;
    char planned[RFC3339_LEN];
    rfc3339_format(r->planned_ms, planned);
    json_t *rec = json_pack("{s:s, s:s, s:s, s:s}", "id", r->run_id, "schedule_id", r->schedule_id,
                            "planned_at", planned, "state", r->missed ? "missed" : "queued");
    int rc = rec ? store_create(txn, "runs", rec) : OPSC_ENOMEM;
    json_decref(rec);
    return rc;
}

static int persist(exec *ex, const rec_run *r)
{
    return ex->store ? store_write(ex->store, persist_txn, (void *)r) : 0;
}

/* The next code of a list of planned failures (0 when it is empty). */
static int next_fail(int *codes, size_t *n)
{
    if (!*n)
        return 0;
    int rc = codes[0];
    memmove(codes, codes + 1, --*n * sizeof(*codes));
    return rc;
}

static int refused(exec *ex, const exec_run_spec *spec, char *err, size_t errlen)
{
    snprintf(err, errlen, "job %s: no such job (recorder)", spec->job_id);
    return ex->fail_start;
}

static int start_stored(exec *ex, const exec_run_spec *spec, char run_id[UUID_STR_LEN])
{
    rec_run *r = new_run(ex, spec, false);
    if (!r || grow((void **)&ex->active, &ex->cap_active, ex->n_active, sizeof(size_t)) < 0)
        return OPSC_ENOMEM;
    size_t i = ex->n - 1;
    int rc = persist(ex, r);
    if (rc < 0)
        return rc;
    memcpy(run_id, r->run_id, UUID_STR_LEN);
    if (ex->end_at_once && ex->quiet) {
        copy(r->state, sizeof(r->state), "succeeded");
        return 0;
    }
    ex->active[ex->n_active++] = i;
    set_state(ex, i, "queued");
    set_state(ex, i, "running");
    if (ex->end_at_once)
        exec_recorder_end(ex, run_id, "succeeded");
    return 0;
}

int exec_run_start(exec *ex, const exec_run_spec *spec, char run_id[UUID_STR_LEN], char *err,
                   size_t errlen)
{
    if (ex->fail_start)
        return refused(ex, spec, err, errlen);
    int failed = next_fail(ex->commit_fails, &ex->n_commit_fails);
    if (failed) {
        snprintf(err, errlen, "storing the run failed: %s (recorder)", opsc_strerror(failed));
        return failed;
    }
    return start_stored(ex, spec, run_id);
}

/* Recorded (and stored) at once like exec_run_start; the callback waits for
 * exec_flush(), as the executor's waits for its commit. */
struct rec_started {
    exec_started_cb cb;
    void *ud;
    int status;
    char run_id[UUID_STR_LEN];
};

int exec_run_start_async(exec *ex, const exec_run_spec *spec, char run_id[UUID_STR_LEN], char *err,
                         size_t errlen, exec_started_cb cb, void *ud)
{
    if (grow((void **)&ex->started, &ex->cap_started, ex->n_started, sizeof(*ex->started)) < 0)
        return OPSC_ENOMEM;
    if (ex->fail_start)
        return refused(ex, spec, err, errlen);
    int failed = next_fail(ex->commit_fails, &ex->n_commit_fails);
    int rc = failed ? uuid7_new(run_id) : start_stored(ex, spec, run_id); /* a lost commit's id */
    if (rc < 0)
        return rc;
    struct rec_started *st = &ex->started[ex->n_started++];
    st->cb = cb;
    st->ud = ud;
    st->status = failed;
    memcpy(st->run_id, run_id, UUID_STR_LEN);
    return 0;
}

void exec_flush(exec *ex)
{
    for (size_t i = 0; i < ex->n_started; i++) /* callbacks may start more: n is read anew */
        ex->started[i].cb(ex->started[i].ud, ex->started[i].status, ex->started[i].run_id, NULL);
    ex->n_started = 0;
}

int exec_run_record_missed(exec *ex, const exec_run_spec *spec, const char *reason,
                           char run_id[UUID_STR_LEN])
{
    run_id[0] = '\0';
    int failed = next_fail(ex->missed_fails, &ex->n_missed_fails);
    if (failed)
        return failed;
    rec_run *r = new_run(ex, spec, true);
    if (!r || !(r->reason = strdup(reason)))
        return OPSC_ENOMEM;
    int rc = persist(ex, r);
    if (rc < 0)
        return rc;
    snprintf(run_id, UUID_STR_LEN, "%s", r->run_id);
    set_state(ex, ex->n - 1, "missed");
    return 0;
}

static ssize_t active_slot(exec *ex, const char *run_id)
{
    for (size_t k = 0; k < ex->n_active; k++)
        if (strcmp(ex->runs[ex->active[k]].run_id, run_id) == 0)
            return (ssize_t)k;
    return -1;
}

int exec_recorder_end(exec *ex, const char *run_id, const char *state)
{
    ssize_t k = active_slot(ex, run_id);
    if (k < 0)
        return OPSC_ENOENT;
    size_t i = ex->active[k];
    ex->active[k] = ex->active[--ex->n_active];
    set_state(ex, i, state);
    return 0;
}

int exec_run_cancel(exec *ex, const char *run_id, const char *by)
{
    (void)by;
    if (active_slot(ex, run_id) < 0) {
        for (size_t i = 0; i < ex->n; i++)
            if (strcmp(ex->runs[i].run_id, run_id) == 0)
                return OPSC_ESTATE;
        return OPSC_ENOENT;
    }
    ex->cancels++;
    return exec_recorder_end(ex, run_id, "cancelled");
}

size_t exec_active_for_schedule(exec *ex, const char *schedule_id)
{
    size_t n = 0;
    for (size_t k = 0; k < ex->n_active; k++)
        n += strcmp(ex->runs[ex->active[k]].schedule_id, schedule_id) == 0;
    return n;
}

size_t exec_recorder_end_all(exec *ex, const char *schedule_id, const char *state)
{
    size_t ended = 0;
    for (size_t k = ex->n_active; k-- > 0;) {
        if (k >= ex->n_active)
            continue; /* a subscriber ended more than one */
        rec_run *r = &ex->runs[ex->active[k]];
        if (schedule_id && strcmp(r->schedule_id, schedule_id) != 0)
            continue;
        char id[UUID_STR_LEN];
        snprintf(id, sizeof(id), "%s", r->run_id);
        ended += exec_recorder_end(ex, id, state) == 0;
    }
    return ended;
}

static bool of(const rec_run *r, const char *schedule_id, bool missed)
{
    return r->missed == missed && (!schedule_id || strcmp(r->schedule_id, schedule_id) == 0);
}

size_t exec_recorder_started(const exec *ex, const char *schedule_id)
{
    size_t n = 0;
    for (size_t i = 0; i < ex->n; i++)
        n += of(&ex->runs[i], schedule_id, false);
    return n;
}

size_t exec_recorder_missed(const exec *ex, const char *schedule_id)
{
    size_t n = 0;
    for (size_t i = 0; i < ex->n; i++)
        n += of(&ex->runs[i], schedule_id, true);
    return n;
}

const rec_run *exec_recorder_next(const exec *ex, const char *schedule_id, bool missed,
                                  const rec_run *prev)
{
    for (size_t k = prev ? (size_t)(prev - ex->runs) + 1 : 0; k < ex->n; k++)
        if (of(&ex->runs[k], schedule_id, missed))
            return &ex->runs[k];
    return NULL;
}

const rec_run *exec_recorder_nth(const exec *ex, const char *schedule_id, bool missed, size_t i)
{
    for (size_t k = 0; k < ex->n; k++)
        if (of(&ex->runs[k], schedule_id, missed) && i-- == 0)
            return &ex->runs[k];
    return NULL;
}
