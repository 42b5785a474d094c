/* isolation_run.c - one step out of process, on the executor's worker thread: hand it to the host,
 * answer its step API calls with the daemon's own, escalate a cancel, name the crash. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <opsc/errors.h>

#include "isolation_internal.h"
#include "plugin_internal.h"
#include "util.h"

#define TICK_MS 50 /* how often a waiting step looks at its cancel */

/* ---- the step's frames ----------------------------------------------------------------------- */

/* The next frame of `c` within TICK_MS; NULL when none came or the host is gone. */
static iso_msg *next_msg(iso_call *c)
{
    iso_lib *l = c->proc->lib;
    pthread_mutex_lock(&l->mu);
    iso_proc_wait(c, TICK_MS);
    iso_msg *m = c->head;
    if (m) {
        c->head = m->next;
        if (!c->head)
            c->tail = NULL;
        c->proc->queued -= m->len;
    }
    pthread_mutex_unlock(&l->mu);
    return m;
}

/* The DATA frame that follows a call (an exec's stdin), waiting for it. */
static iso_msg *next_data(iso_call *c)
{
    for (;;) {
        iso_msg *m = next_msg(c);
        if (m && !m->json)
            return m;
        iso_msg_free(m);
        if (m || c->proc->dead)
            return NULL;
    }
}

static iso_call *call_new(iso_proc *p)
{
    iso_call *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    cond_init_monotonic(&c->cv);
    c->proc = p;
    c->id = p->next_id++;
    if (p->next_id == 0)
        p->next_id = 1;
    c->next = p->calls;
    p->calls = c;
    return c;
}

/* With lib->mu held. */
static void call_free(iso_call *c)
{
    iso_proc *p = c->proc;
    iso_call **pp = &p->calls;
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp)
        *pp = c->next;
    while (c->head) {
        iso_msg *m = c->head;
        c->head = m->next;
        p->queued -= m->len;
        iso_msg_free(m);
    }
    pthread_cond_destroy(&c->cv);
    free(c);
}

/* ---- its calls ------------------------------------------------------------------------------- */

static const char *arg(json_t *msg, const char *key)
{
    return json_string_value(json_object_get(msg, key));
}

static void ret(iso_call *c, json_t *reply, const void *data, size_t len)
{
    json_object_set_new(reply, "op", json_string("ret"));
    iso_proc_send(c->proc, c->id, reply, data, len);
}

/* A file the daemon reads or writes for the step: never one of its own. */
static bool local_path_ok(const char *path, bool exists)
{
    const char *data = plugin_host_current ? plugin_host_current->data_dir : NULL;
    char real[PATH_MAX], dir[PATH_MAX], probe[PATH_MAX];
    if (!data || !realpath(data, dir))
        return true;
    snprintf(probe, sizeof(probe), "%s", path);
    if (!exists) { /* a file to be made: its folder */
        char *slash = strrchr(probe, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(probe, sizeof(probe), ".");
    }
    if (!realpath(probe, real))
        return true; /* the transfer fails on its own */
    size_t n = strlen(dir);
    return !(strncmp(real, dir, n) == 0 && (real[n] == '/' || real[n] == '\0'));
}

static void call_exec(iso_call *c, opsc_step_ctx *ctx, json_t *msg)
{
    const opsc_host_api *api = plugin_host_api();
    iso_msg *in = json_is_true(json_object_get(msg, "stdin")) ? next_data(c) : NULL;
    opsc_step_exec_opts o = {
        .size = sizeof(o),
        .timeout_ms = (uint32_t)json_integer_value(json_object_get(msg, "timeout_ms")),
        .capture_limit = (size_t)json_integer_value(json_object_get(msg, "capture_limit")),
        .stdin_data = in ? in->data : NULL,
        .stdin_len = in ? in->len : 0,
        .log_output = json_is_true(json_object_get(msg, "log_output")),
        .sensitive = json_is_true(json_object_get(msg, "sensitive")),
    };
    opsc_step_exec_result res = {.size = sizeof(res)};
    const char *command = arg(msg, "command");
    int rc = command ? api->step_exec(ctx, command, &o, &res) : OPSC_EINVAL;
    iso_msg_free(in);
    json_t *r =
        json_pack("{s:i, s:i, s:o, s:b}", "rc", rc, "exit_code", res.exit_code, "exit_signal",
                  shp_string(res.exit_signal, res.exit_signal ? strlen(res.exit_signal) : 0),
                  "truncated", res.truncated);
    pthread_mutex_lock(&c->proc->wmu); /* the result and its two streams go together */
    json_object_set_new(r, "op", json_string("ret"));
    shp_send_json(c->proc->fd, SHP_JSON, c->id, r);
    shp_send(c->proc->fd, SHP_DATA, c->id, res.out ? res.out : "", res.out ? res.out_len : 0);
    shp_send(c->proc->fd, SHP_DATA, c->id, res.err ? res.err : "", res.err ? res.err_len : 0);
    pthread_mutex_unlock(&c->proc->wmu);
    json_decref(r);
}

/* step_sleep in slices: a host that dies meanwhile ends the wait. */
static int sleep_while_alive(iso_call *c, opsc_step_ctx *ctx, uint32_t ms)
{
    const opsc_host_api *api = plugin_host_api();
    uint64_t until = clock_mono_ms() + ms;
    for (;;) {
        uint64_t now = clock_mono_ms();
        pthread_mutex_lock(&c->proc->lib->mu);
        bool dead = c->proc->dead;
        pthread_mutex_unlock(&c->proc->lib->mu);
        if (dead || now >= until)
            return 0;
        int rc = api->step_sleep(ctx, until - now < 100 ? (uint32_t)(until - now) : 100);
        if (rc < 0)
            return rc;
    }
}

/* step_fetch_file for the host: the daemon fetches and hashes; the host gets the digest. */
static void call_fetch(iso_call *c, opsc_step_ctx *ctx, json_t *msg)
{
    const opsc_host_api *api = plugin_host_api();
    const char *remote = arg(msg, "remote"), *name = arg(msg, "name");
    opsc_step_file info = {.size = sizeof(info)};
    int rc = remote && name ? api->step_fetch_file(ctx, remote, name, &info) : OPSC_EINVAL;
    json_t *r = json_pack("{s:i}", "rc", rc);
    if (rc == 0)
        json_object_update_new(r,
                               json_pack("{s:s, s:I, s:b, s:o}", "sha256", info.sha256, "bytes",
                                         (json_int_t)info.bytes, "changed", info.changed, "path",
                                         shp_string(info.path, info.path ? strlen(info.path) : 0)));
    ret(c, r, NULL, 0);
}

static json_t *text_reply(const char *value)
{
    return json_pack("{s:i, s:o}", "rc", 0, "value", shp_string(value, value ? strlen(value) : 0));
}

static void serve(iso_call *c, opsc_step_ctx *ctx, json_t *msg)
{
    const opsc_host_api *api = plugin_host_api();
    const char *fn = arg(msg, "fn") ? arg(msg, "fn") : "";
    const char *a = arg(msg, "arg");
    if (strcmp(fn, "log") == 0) {
        api->step_log(ctx, (int)json_integer_value(json_object_get(msg, "level")), "%s",
                      arg(msg, "msg") ? arg(msg, "msg") : "");
    } else if (strcmp(fn, "fail") == 0) {
        api->step_fail(ctx, "%s", arg(msg, "msg") ? arg(msg, "msg") : "failed");
    } else if (strcmp(fn, "exec") == 0) {
        call_exec(c, ctx, msg);
    } else if (strcmp(fn, "param") == 0) {
        ret(c, text_reply(a ? api->step_param(ctx, a) : NULL), NULL, 0);
    } else if (strcmp(fn, "params_json") == 0) {
        ret(c, text_reply(api->step_params_json(ctx)), NULL, 0);
    } else if (strcmp(fn, "target") == 0) {
        ret(c, text_reply(a ? api->step_target(ctx, a) : NULL), NULL, 0);
    } else if (strcmp(fn, "secret") == 0) {
        ret(c, text_reply(a ? api->step_secret(ctx, a) : NULL), NULL, 0);
    } else if (strcmp(fn, "quote") == 0) {
        ret(c, text_reply(a ? api->step_quote(ctx, a) : NULL), NULL, 0);
    } else if (strcmp(fn, "cancelled") == 0) {
        ret(c, json_pack("{s:i, s:b}", "rc", 0, "value", api->step_cancelled(ctx)), NULL, 0);
    } else if (strcmp(fn, "sleep") == 0) {
        int rc =
            sleep_while_alive(c, ctx, (uint32_t)json_integer_value(json_object_get(msg, "ms")));
        ret(c, json_pack("{s:i}", "rc", rc), NULL, 0);
    } else if (strcmp(fn, "set_output") == 0) {
        const char *k = arg(msg, "key"), *v = arg(msg, "value");
        int rc = k && v ? api->step_set_output(ctx, k, v) : OPSC_EINVAL;
        ret(c, json_pack("{s:i}", "rc", rc), NULL, 0);
    } else if (strcmp(fn, "put_file") == 0 || strcmp(fn, "get_file") == 0) {
        bool put = fn[0] == 'p';
        const char *local = arg(msg, "local"), *remote = arg(msg, "remote");
        int rc = !local || !remote            ? OPSC_EINVAL
                 : !local_path_ok(local, put) ? OPSC_EACCES
                 : put                        ? api->step_put_file(ctx, local, remote,
                                                                   (int)json_integer_value(json_object_get(msg, "mode")))
                                              : api->step_get_file(ctx, remote, local);
        ret(c, json_pack("{s:i}", "rc", rc), NULL, 0);
    } else if (strcmp(fn, "run_dir") == 0) {
        ret(c, text_reply(api->step_run_dir(ctx)), NULL, 0);
    } else if (strcmp(fn, "fetch_file") == 0) {
        call_fetch(c, ctx, msg);
    } else if (strcmp(fn, "render") == 0) {
        const char *out = NULL;
        char err[256] = "";
        int rc = api->step_render(ctx, arg(msg, "text") ? arg(msg, "text") : "", arg(msg, "vars"),
                                  &out, err, sizeof(err));
        json_t *r = text_reply(rc == 0 ? out : NULL);
        json_object_set_new(r, "rc", json_integer(rc));
        json_object_set_new(r, "error", json_string(err));
        ret(c, r, NULL, 0);
    } else {
        ret(c, json_pack("{s:i}", "rc", OPSC_ENOTSUP), NULL, 0);
    }
}

/* ---- the step -------------------------------------------------------------------------------- */

/* CANCEL at once, SIGTERM after stop_grace, SIGKILL after another: a step
 * that will not stop takes its host (and the steps beside it) down. */
static void escalate(iso_call *c, const opsc_step_type *type, uint64_t *since)
{
    iso_lib *l = c->proc->lib;
    uint64_t now = clock_mono_ms(), grace = (uint64_t)l->iso->o.stop_grace_ms;
    if (!*since) {
        *since = now;
        iso_proc_send(c->proc, c->id, json_pack("{s:s}", "op", "cancel"), NULL, 0);
        return;
    }
    if (now - *since < grace)
        return;
    char why[200];
    snprintf(why, sizeof(why), "was stopped: step %s did not stop when cancelled", type->name);
    pthread_mutex_lock(&l->mu);
    c->proc->ours = true;
    iso_proc_kill(c->proc, now - *since < 2 * grace ? SIGTERM : SIGKILL, why);
    pthread_mutex_unlock(&l->mu);
}

static int converse(iso_call *c, const opsc_step_type *type, opsc_step_ctx *ctx)
{
    const opsc_host_api *api = plugin_host_api();
    iso_lib *l = c->proc->lib;
    uint64_t cancel_since = 0;
    if (iso_proc_send(c->proc, c->id, json_pack("{s:s, s:s}", "op", "start", "step", type->name),
                      NULL, 0) < 0)
        cancel_since = 0; /* the host is going: its end says why */
    for (;;) {
        iso_msg *m = next_msg(c);
        const char *op = m ? arg(m->json, "op") : NULL;
        if (op && strcmp(op, "done") == 0) {
            int rc = (int)json_integer_value(json_object_get(m->json, "rc"));
            iso_msg_free(m);
            return rc > 0 ? OPSC_EPROTO : rc;
        }
        if (op && strcmp(op, "call") == 0)
            serve(c, ctx, m->json);
        iso_msg_free(m);
        if (m)
            continue;
        pthread_mutex_lock(&l->mu);
        bool dead = c->proc->dead;
        char why[sizeof(c->proc->why)];
        snprintf(why, sizeof(why), "%s", c->proc->why);
        pthread_mutex_unlock(&l->mu);
        if (dead && cancel_since)
            return OPSC_ECANCELED;
        if (dead)
            return api->step_fail(ctx, "%s %s: step %s %s", l->name, l->version, type->name, why);
        if (api->step_cancelled(ctx))
            escalate(c, type, &cancel_since);
    }
}

int iso_run(iso_lib *l, const opsc_step_type *type, opsc_step_ctx *ctx)
{
    if (l->bundle)
        return bundle_run(l, type, ctx);
    char why[400] = "";
    pthread_mutex_lock(&l->mu);
    l->users++;
    iso_proc *p = iso_proc_get(l, why, sizeof(why));
    iso_call *c = p ? call_new(p) : NULL;
    pthread_mutex_unlock(&l->mu);
    int rc = c ? converse(c, type, ctx)
               : plugin_host_api()->step_fail(ctx, "%s", why[0] ? why : "out of memory");
    pthread_mutex_lock(&l->mu);
    if (c)
        call_free(c);
    if (p)
        iso_proc_release(p);
    l->users--;
    if (l->retire && l->users == 0 && l->proc) { /* an admin moved it in process */
        l->proc->ours = true;
        iso_proc_kill(l->proc, SIGTERM, "was stopped: an admin moved the library in process");
    }
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return rc;
}
