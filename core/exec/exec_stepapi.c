/* exec_stepapi.c - the step API of opsc_host_api for imperative steps: what a worker may answer
 * itself from its copies, and what it asks the loop to do (commands, files, log lines). */
#include <stdarg.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "exec_internal.h"
#include "log.h"
#include "core.h"
#include "files.h"
#include "plugin_host.h"
#include "runfiles.h"
#include "template.h"
#include "util.h"

/* ---- strings handed to the step: kept until run() returns ----------------------------------- */

static const char *keep(ex_imp *imp, char *s)
{
    if (!s)
        return NULL;
    pthread_mutex_lock(&imp->mu);
    if (imp->npool == imp->cappool) {
        size_t cap = imp->cappool ? imp->cappool * 2 : 16;
        char **v = realloc(imp->pool, cap * sizeof(*v));
        if (!v) {
            pthread_mutex_unlock(&imp->mu);
            free(s);
            return NULL;
        }
        imp->pool = v;
        imp->cappool = cap;
    }
    imp->pool[imp->npool++] = s;
    pthread_mutex_unlock(&imp->mu);
    return s;
}

static const char *json_text(ex_imp *imp, json_t *v)
{
    if (!v)
        return NULL;
    if (json_is_string(v))
        return json_string_value(v);
    return keep(imp, json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT));
}

/* ---- answered on the worker ------------------------------------------------------------------ */

static const char *op_param(opsc_step_ctx *imp, const char *name)
{
    json_t *ref = json_object_get(imp->secret_refs, name);
    return json_text(imp, ref ? ref : json_object_get(imp->params, name));
}

static const char *op_params_json(opsc_step_ctx *imp)
{
    return imp->params_text;
}

static const char *op_target(opsc_step_ctx *imp, const char *key)
{
    if (!key)
        return NULL;
    const char *dot = strchr(key, '.');
    if (dot && (strncmp(key, "labels.", 7) == 0 || strncmp(key, "facts.", 6) == 0)) {
        char member[16];
        snprintf(member, sizeof(member), "%.*s", (int)(dot - key), key);
        return json_text(imp, json_object_get(json_object_get(imp->target, member), dot + 1));
    }
    return json_text(imp, json_object_get(imp->target, key));
}

static const char *op_secret(opsc_step_ctx *imp, const char *name)
{
    return json_string_value(json_object_get(imp->secrets, name));
}

static const char *op_quote(opsc_step_ctx *imp, const char *value)
{
    strbuf b = STRBUF_INIT;
    if (!value || tpl_quote((tpl_mode)imp->tpl_mode, value, strlen(value), &b) < 0) {
        sb_free(&b);
        return NULL;
    }
    sb_append(&b, "", 0);
    return keep(imp, sb_steal(&b, NULL));
}

static bool op_cancelled(opsc_step_ctx *imp)
{
    return atomic_load(&imp->cancelled) || clock_mono_ms() >= imp->deadline_mono;
}

static int op_sleep(opsc_step_ctx *imp, uint32_t ms)
{
    uint64_t until = clock_mono_ms() + ms;
    if (until > imp->deadline_mono)
        until = imp->deadline_mono;
    pthread_mutex_lock(&imp->mu);
    while (!atomic_load(&imp->cancelled) && clock_mono_ms() < until) {
        uint64_t left = until - clock_mono_ms();
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(left / 1000);
        ts.tv_nsec += (long)(left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&imp->cv, &imp->mu, &ts);
    }
    pthread_mutex_unlock(&imp->mu);
    return op_cancelled(imp) ? OPSC_ECANCELED : 0;
}

static bool key_ok(const char *k)
{
    if (!k || !*k || strlen(k) > 64)
        return false;
    for (const char *p = k; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
            return false;
    return true;
}

/* A refused call explains itself: a library that passes the error on gets this as the
 * step's error rather than a bare "invalid argument" (its own step_fail() wins). */
static int refuse(ex_imp *imp, const char *fmt, ...) OPSC_PRINTF(2, 3);
static int refuse(ex_imp *imp, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&imp->mu);
    if (!imp->failure)
        imp->failure = strdup(msg);
    pthread_mutex_unlock(&imp->mu);
    return OPSC_EINVAL;
}

static int op_set_output(opsc_step_ctx *imp, const char *key, const char *json_value)
{
    if (!key_ok(key))
        return refuse(imp, "step_set_output: output key '%.64s' must be 1 to 64 of [a-z0-9_]",
                      key ? key : "(null)");
    json_error_t je;
    json_t *v = json_value ? json_loads(json_value, JSON_DECODE_ANY, &je) : NULL;
    if (!v)
        return refuse(imp, "step_set_output: the value of output '%s' is not JSON text%s%s", key,
                      json_value ? ": " : " (NULL)", json_value ? je.text : "");
    pthread_mutex_lock(&imp->mu);
    json_object_set_new(imp->outputs, key, v);
    pthread_mutex_unlock(&imp->mu);
    return 0;
}

static int op_fail(opsc_step_ctx *imp, const char *msg)
{
    pthread_mutex_lock(&imp->mu);
    free(imp->failure);
    imp->failure = strdup(msg ? msg : "failed");
    pthread_mutex_unlock(&imp->mu);
    return OPSC_EREMOTE;
}

static int op_render(opsc_step_ctx *imp, const char *text, const char *vars_json, const char **out,
                     char *err, size_t errlen)
{
    json_t *vars = vars_json ? json_loads(vars_json, 0, NULL) : json_object();
    if (!json_is_object(vars)) {
        json_decref(vars);
        snprintf(err, errlen, "vars must be a JSON object");
        return OPSC_EINVAL;
    }
    json_t *ctx = json_deep_copy(imp->render_ctx);
    json_object_set_new(ctx, "vars", vars);
    tpl *t = NULL;
    tpl_err te = {0};
    char *r = NULL;
    int rc = tpl_compile(&t, text ? text : "", text ? strlen(text) : 0, NULL, &te);
    if (rc == 0)
        rc = tpl_render_str(t, ctx, &r, &te);
    tpl_free(t);
    json_decref(ctx);
    if (rc < 0) {
        snprintf(err, errlen, "%d:%d: %s", te.line, te.col, te.msg);
        free(r);
        return rc;
    }
    *out = keep(imp, r);
    return *out ? 0 : OPSC_ENOMEM;
}

/* ---- asked of the loop -------------------------------------------------------------------- */

static void post(exec *ex, ex_req *q)
{
    q->next = NULL;
    pthread_mutex_lock(&ex->qmu);
    if (ex->reqs_tail)
        ex->reqs_tail->next = q;
    else
        ex->reqs = q;
    ex->reqs_tail = q;
    ex_wake_locked(ex);
    pthread_mutex_unlock(&ex->qmu);
}

static int ask(ex_imp *imp, ex_req *q)
{
    if (atomic_load(&imp->cancelled))
        return OPSC_ECANCELED;
    q->imp = imp;
    post(imp->ex, q);
    pthread_mutex_lock(&imp->mu);
    while (!q->done)
        pthread_cond_wait(&imp->cv, &imp->mu);
    pthread_mutex_unlock(&imp->mu);
    return q->rc;
}

void ex_req_complete(ex_req *q, int rc)
{
    ex_imp *imp = q->imp;
    imp->inflight = NULL;
    pthread_mutex_lock(&imp->mu);
    q->rc = rc;
    q->done = true;
    pthread_cond_broadcast(&imp->cv);
    pthread_mutex_unlock(&imp->mu);
}

static int op_exec(opsc_step_ctx *imp, const char *command, const opsc_step_exec_opts *opts,
                   opsc_step_exec_result *res)
{
    if (!command || !res)
        return OPSC_EINVAL;
    ex_req q = {.kind = REQ_EXEC, .command = (char *)command, .res = res};
    if (opts)
        memcpy(&q.opts, opts, opts->size < sizeof(q.opts) ? opts->size : sizeof(q.opts));
    return ask(imp, &q);
}

static int op_put_file(opsc_step_ctx *imp, const char *local, const char *remote, int mode)
{
    if (!local || !remote)
        return OPSC_EINVAL;
    ex_req q = {.kind = REQ_PUT, .local = (char *)local, .remote = (char *)remote, .mode = mode};
    return ask(imp, &q);
}

static int op_get_file(opsc_step_ctx *imp, const char *remote, const char *local)
{
    if (!local || !remote)
        return OPSC_EINVAL;
    ex_req q = {.kind = REQ_GET, .local = (char *)local, .remote = (char *)remote};
    return ask(imp, &q);
}

/* ---- files of the run ----------------------------------------------------------------- */

/* From the worker's copies: no cost for the steps that never ask. */
static int run_dir_of(opsc_step_ctx *imp, char *dir, size_t n)
{
    const char *run_id =
        json_string_value(json_object_get(json_object_get(imp->render_ctx, "run"), "id"));
    const char *target_id = json_string_value(json_object_get(imp->target, "id"));
    const char *data = imp->ex->core ? imp->ex->core->cfg.store.data_dir : NULL;
    int rc = data ? runfiles_dir(data, run_id, target_id, true, dir, n) : OPSC_ENOTSUP;
    if (rc < 0)
        log_error("exec", "cannot create the folder of run %s for target %s: %s",
                  run_id ? run_id : "?", target_id ? target_id : "?", opsc_strerror(rc));
    return rc;
}

static const char *op_run_dir(opsc_step_ctx *imp)
{
    char dir[PATH_MAX];
    pthread_mutex_lock(&imp->mu);
    if (!imp->run_dir && run_dir_of(imp, dir, sizeof(dir)) == 0)
        imp->run_dir = strdup(dir);
    pthread_mutex_unlock(&imp->mu);
    return imp->run_dir;
}

/* A name a transfer in progress could collide with is no name. */
static bool fetch_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0, part = sizeof(".opsc-part") - 1;
    return n && !files_name_check(name, n) &&
           !(n > part && strcmp(name + n - part, ".opsc-part") == 0);
}

#define INFO_HAS(info, m) ((info)->size >= offsetof(opsc_step_file, m) + sizeof((info)->m))

static void fill_info(opsc_step_ctx *imp, opsc_step_file *info, const runfiles_digest *d,
                      bool changed, const char *name)
{
    if (!info)
        return;
    if (INFO_HAS(info, sha256))
        memcpy(info->sha256, d->sha256, sizeof(info->sha256));
    if (INFO_HAS(info, bytes))
        info->bytes = d->size;
    if (INFO_HAS(info, changed))
        info->changed = changed;
    if (INFO_HAS(info, path)) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", strrchr(imp->run_dir, '/') + 1, name);
        info->path = keep(imp, strdup(path));
    }
}

static int op_fetch_file(opsc_step_ctx *imp, const char *remote, const char *name,
                         opsc_step_file *info)
{
    if (!remote || !fetch_name_ok(name))
        return OPSC_EINVAL;
    const char *dir = op_run_dir(imp);
    char path[PATH_MAX];
    if (!dir)
        return OPSC_EIO;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return OPSC_E2BIG;
    int rc = op_get_file(imp, remote, path);
    if (rc < 0)
        return rc;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    runfiles_digest d;
    bool changed = false;
    rc = dfd < 0 ? -errno : runfiles_digest_record(dfd, name, &d, &changed);
    if (dfd >= 0)
        close(dfd);
    if (rc == 0)
        fill_info(imp, info, &d, changed, name);
    return rc;
}

/* A log line does not wait: it is queued in order with the step's other calls. */
static void op_log(opsc_step_ctx *imp, int level, const char *msg)
{
    ex_req *q = calloc(1, sizeof(*q));
    if (!q || !(q->text = strdup(msg ? msg : ""))) {
        free(q);
        return;
    }
    q->kind = REQ_LOG;
    q->level = level;
    q->imp = imp;
    post(imp->ex, q);
}

static const plugin_step_ops step_ops = {
    .param = op_param,
    .params_json = op_params_json,
    .target = op_target,
    .secret = op_secret,
    .quote = op_quote,
    .exec = op_exec,
    .put_file = op_put_file,
    .get_file = op_get_file,
    .log = op_log,
    .set_output = op_set_output,
    .fail = op_fail,
    .cancelled = op_cancelled,
    .sleep = op_sleep,
    .render = op_render,
    .run_dir = op_run_dir,
    .fetch_file = op_fetch_file,
};

const plugin_step_ops *ex_step_ops(void)
{
    return &step_ops;
}
