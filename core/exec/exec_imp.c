/* exec_imp.c - imperative steps: a bounded pool of worker threads runs each step's run(); its
 * step API calls are served on the loop (exec_stepapi.c) while the worker waits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "exec_internal.h"
#include "isolation.h"
#include "log.h"
#include "plugin_host.h"
#include "steptype.h"
#include "template.h"
#include "util.h"

struct ex_workers {
    pthread_t *threads;
    int n;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ex_imp *head, *tail;
    int busy;
    int exited;
    bool stop;
    exec *ex;
};

/* ---- the threads ------------------------------------------------------------------------- */

/* With qmu held. */
void ex_wake_locked(exec *ex)
{
    if (!ex->wake_closed)
        uv_async_send(&ex->wake);
}

static void hand_back(exec *ex, ex_imp *imp)
{
    pthread_mutex_lock(&ex->qmu);
    imp->next = ex->finished;
    ex->finished = imp;
    ex_wake_locked(ex);
    pthread_mutex_unlock(&ex->qmu);
}

static void *worker_main(void *arg)
{
    ex_workers *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->head)
            break;
        ex_imp *imp = w->head;
        w->head = imp->next;
        if (!w->head)
            w->tail = NULL;
        imp->next = NULL;
        w->busy++;
        pthread_mutex_unlock(&w->mu);
        /* Cancelled before a worker was free: it never starts. */
        imp->rc = atomic_load(&imp->cancelled) ? OPSC_ECANCELED
                  : imp->isolated              ? iso_run(imp->isolated, imp->type, imp)
                                               : imp->type->run(imp, imp->lib_state);
        hand_back(w->ex, imp);
        pthread_mutex_lock(&w->mu);
        w->busy--;
    }
    w->exited++;
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_lock(&w->ex->qmu); /* a close may be waiting for this */
    ex_wake_locked(w->ex);
    pthread_mutex_unlock(&w->ex->qmu);
    return NULL;
}

int ex_workers_start(exec *ex, int n)
{
    ex_workers *w = calloc(1, sizeof(*w));
    if (!w || !(w->threads = calloc((size_t)n, sizeof(pthread_t)))) {
        free(w);
        return OPSC_ENOMEM;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->ex = ex;
    ex->workers = w;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1u << 20);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&w->threads[i], &attr, worker_main, w) != 0) {
            log_error("exec", "could start only %d of %d step workers", i, n);
            break;
        }
        w->n++;
    }
    pthread_attr_destroy(&attr);
    return w->n > 0 ? 0 : OPSC_EIO;
}

bool ex_workers_stop(exec *ex)
{
    ex_workers *w = ex->workers;
    if (!w)
        return true;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    bool idle = w->busy == 0 && !w->head && w->exited == w->n;
    pthread_mutex_unlock(&w->mu);
    bool none_finished;
    pthread_mutex_lock(&ex->qmu);
    none_finished = !ex->finished && !ex->reqs;
    pthread_mutex_unlock(&ex->qmu);
    return idle && none_finished;
}

size_t ex_workers_busy(const exec *ex)
{
    ex_workers *w = ex->workers;
    if (!w)
        return 0;
    pthread_mutex_lock(&w->mu);
    size_t n = (size_t)w->busy;
    pthread_mutex_unlock(&w->mu);
    return n;
}

bool ex_workers_free(exec *ex)
{
    ex_workers *w = ex->workers;
    if (!w)
        return true;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    bool stuck = w->busy > 0;
    pthread_mutex_unlock(&w->mu);
    if (stuck) { /* a step that never returns: leave it, and what it may touch */
        for (int i = 0; i < w->n; i++)
            pthread_detach(w->threads[i]);
        log_error("exec", "a step worker is still inside a step's run(): left behind");
        return false;
    }
    for (int i = 0; i < w->n; i++)
        pthread_join(w->threads[i], NULL);
    while (w->head) { /* queued, never started */
        ex_imp *imp = w->head;
        w->head = imp->next;
        ex_imp_free(imp);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->threads);
    free(w);
    ex->workers = NULL;
    return true;
}

/* ---- a step on a worker ---------------------------------------------------------------------- */

static void secrets_for(ex_imp *imp, ex_run *r)
{
    size_t i;
    json_t *n;
    json_array_foreach(r->plan->secret_params, i, n)
    {
        const char *name = json_string_value(n);
        json_t *value = json_object_get(r->ctx_params, name);
        json_t *ref = json_object_get(json_object_get(r->hdr, "params"), name);
        if (!json_is_string(value))
            continue;
        /* A step parameter whose whole value is a secret is that secret. */
        const char *k;
        json_t *v;
        json_object_foreach(imp->params, k, v) if (json_equal(v, value))
        {
            json_object_set(imp->secrets, k, value);
            json_object_set(imp->secret_refs, k, ref);
        }
        if (!json_object_get(imp->secrets, name))
            json_object_set(imp->secrets, name, value);
    }
}

static char *params_text(ex_imp *imp)
{
    json_t *shown = json_deep_copy(imp->params);
    json_object_update(shown, imp->secret_refs);
    char *text = json_dumps(shown, JSON_COMPACT);
    json_decref(shown);
    return text;
}

static ex_imp *imp_new(ex_target *t, json_t *params)
{
    ex_run *r = t->run;
    const job_step *s = &r->plan->steps[t->step];
    ex_imp *imp = calloc(1, sizeof(*imp));
    json_t *ctx = ex_ctx(t);
    if (!imp || !ctx) {
        free(imp);
        json_decref(ctx);
        json_decref(params);
        return NULL;
    }
    pthread_mutex_init(&imp->mu, NULL);
    pthread_cond_init(&imp->cv, NULL);
    atomic_init(&imp->cancelled, false);
    imp->ex = r->ex;
    imp->t = t;
    imp->type = s->st->desc;
    imp->lib_state = s->lib ? s->lib->state : NULL;
    imp->isolated = plugin_host_isolated(r->ex->plugins, s->lib);
    imp->params = params;
    imp->target = json_deep_copy(t->rec);
    imp->render_ctx = json_deep_copy(ctx); /* the loop changes its own copy meanwhile */
    imp->secrets = json_object();
    imp->secret_refs = json_object();
    imp->outputs = json_object();
    imp->tpl_mode =
        t->os_family && strcmp(t->os_family, "windows") == 0 ? TPL_POWERSHELL : TPL_POSIX;
    int64_t timeout = s->timeout_ms ? s->timeout_ms : r->ex->opts.default_step_timeout_ms;
    imp->deadline_mono = clock_mono_ms() + (uint64_t)timeout;
    json_decref(ctx);
    secrets_for(imp, r);
    imp->params_text = params_text(imp);
    return imp;
}

void ex_imp_free(ex_imp *imp)
{
    if (!imp)
        return;
    /* Secret values are shared with the run's context, wiped when the run is freed. */
    for (size_t i = 0; i < imp->npool; i++)
        free(imp->pool[i]);
    free(imp->pool);
    free(imp->last_out);
    free(imp->last_err);
    free(imp->last_sig);
    free(imp->failure);
    free(imp->params_text);
    free(imp->run_dir);
    json_decref(imp->params);
    json_decref(imp->target);
    json_decref(imp->render_ctx);
    json_decref(imp->secrets);
    json_decref(imp->secret_refs);
    json_decref(imp->outputs);
    pthread_mutex_destroy(&imp->mu);
    pthread_cond_destroy(&imp->cv);
    free(imp);
}

void ex_imp_start(ex_target *t, json_t *params)
{
    ex_workers *w = t->run->ex->workers;
    ex_imp *imp = imp_new(t, params);
    if (!imp) {
        ex_step_finish(t, EX_FAILED, 0, false, NULL, "out of memory");
        return;
    }
    t->imp = imp;
    t->act = ACT_IMP;
    /* Plugin code may run in the daemon's process: if it crashes it, the
     * run's history must already say which step was running. */
    ex_flush(t->run->ex);
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = imp;
    else
        w->head = imp;
    w->tail = imp;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* ---- its end -------------------------------------------------------------------------------- */

static void imp_done(ex_imp *imp)
{
    ex_target *t = imp->t;
    if (!t) { /* the target gave up on it */
        ex_imp_free(imp);
        return;
    }
    t->imp = NULL;
    ex_timer_stop(&t->delay);
    pthread_mutex_lock(&imp->mu);
    json_t *outputs = imp->outputs;
    imp->outputs = NULL;
    char *failure = imp->failure ? strdup(imp->failure) : NULL;
    pthread_mutex_unlock(&imp->mu);
    int rc = imp->rc;
    char why[512];
    if (rc == 0 && (rc = ex_outputs_check(t, outputs, why, sizeof(why))) < 0) {
        free(failure);
        failure = strdup(why);
    } else if (rc < 0 && !failure)
        snprintf(why, sizeof(why), "the step failed: %s", opsc_strerror(rc));
    ex_imp_free(imp);
    ex_step_finish(t, rc == 0 ? EX_SUCCEEDED : EX_FAILED, 0, false, outputs,
                   rc == 0   ? NULL
                   : failure ? failure
                             : why);
    free(failure);
}

static void on_abandon(uv_timer_t *h)
{
    ex_target *t = h->data;
    ex_imp *imp = t->imp;
    ex_timer_stop(&t->delay);
    if (!imp)
        return;
    if (imp->inflight) { /* the loop still serves one of its calls: wait for that */
        ex_timer_start(t->run->ex, &t->delay, 500, on_abandon, t);
        return;
    }
    imp->t = NULL;
    t->imp = NULL;
    char why[200];
    snprintf(why, sizeof(why),
             "the step did not return within %lld ms of being stopped; its worker thread is left "
             "to finish",
             (long long)t->run->ex->opts.abandon_grace_ms);
    log_warn("exec", "run %s target %s step %s: %s", t->run->id, t->id,
             t->run->plan->steps[t->step].id, why);
    ex_step_finish(t, EX_FAILED, 0, false, NULL, why);
}

void ex_imp_cancel(ex_imp *imp)
{
    if (!imp)
        return;
    atomic_store(&imp->cancelled, true);
    pthread_mutex_lock(&imp->mu);
    pthread_cond_broadcast(&imp->cv);
    pthread_mutex_unlock(&imp->mu);
    ex_target *t = imp->t;
    if (imp->cmd)
        ex_cmd_cancel(imp->cmd);
    if (t && t->wait && imp->inflight)
        pool_acquire_cancel(t->wait);
    if (imp->xfer && imp->xfer_tp && imp->xfer_tp->xfer_cancel)
        imp->xfer_tp->xfer_cancel(imp->xfer);
    if (t)
        ex_timer_start(imp->ex, &t->delay, (uint64_t)imp->ex->opts.abandon_grace_ms, on_abandon, t);
}

void ex_on_wake(uv_async_t *a)
{
    exec *ex = a->data;
    pthread_mutex_lock(&ex->qmu);
    ex_req *reqs = ex->reqs;
    ex_imp *done = ex->finished;
    ex->reqs = ex->reqs_tail = NULL;
    ex->finished = NULL;
    pthread_mutex_unlock(&ex->qmu);
    while (reqs) {
        ex_req *next = reqs->next;
        ex_req_serve(ex, reqs);
        reqs = next;
    }
    /* Finished in the order they were handed back, oldest first. */
    ex_imp *rev = NULL;
    while (done) {
        ex_imp *next = done->next;
        done->next = rev;
        rev = done;
        done = next;
    }
    while (rev) {
        ex_imp *next = rev->next;
        imp_done(rev);
        rev = next;
    }
    ex_maybe_closed(ex);
}
