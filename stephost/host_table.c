/* host_table.c - the opsc_host_api that opsc-stephost hands the library: the same table as in the
 * daemon, with every step API call sent to the daemon and answered there by the real one. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <opsc/config.h>
#include <opsc/errors.h>

#include "shproto.h"
#include "stephost_internal.h"

/* ---- the round trip -------------------------------------------------------------------------- */

json_t *sh_call(hstep *s, json_t *req, bool reply, const void *data, size_t len)
{
    if (!req)
        return NULL;
    json_object_set_new(req, "op", json_string("call"));
    pthread_mutex_lock(&sh.wmu);
    int rc = shp_send_json(sh.fd, SHP_JSON, s->id, req);
    if (rc == 0 && data)
        rc = shp_send(sh.fd, SHP_DATA, s->id, data, len);
    pthread_mutex_unlock(&sh.wmu);
    json_decref(req);
    if (rc < 0 || !reply)
        return NULL;
    hmsg *m = sh_wait(s);
    json_t *ret = m->json ? json_incref(m->json) : NULL;
    sh_msg_free(m);
    return ret;
}

static int ret_rc(json_t *ret)
{
    json_t *rc = json_object_get(ret, "rc");
    return ret ? (json_is_integer(rc) ? (int)json_integer_value(rc) : OPSC_EPROTO) : OPSC_EPIPE;
}

/* Calls whose answer is a return code only. */
static int call_rc(hstep *s, json_t *req)
{
    json_t *ret = sh_call(s, req, true, NULL, 0);
    int rc = ret_rc(ret);
    json_decref(ret);
    return rc;
}

/* A C string as JSON (NULL as null). */
static json_t *str(const char *text)
{
    return shp_string(text, text ? strlen(text) : 0);
}

/* A string the step keeps until run() returns. */
static const char *keep(hstep *s, const char *text)
{
    if (!text)
        return NULL;
    if (s->npool == s->cappool) {
        size_t cap = s->cappool ? s->cappool * 2 : 16;
        char **v = realloc(s->pool, cap * sizeof(*v));
        if (!v)
            return NULL;
        s->pool = v;
        s->cappool = cap;
    }
    char *copy = strdup(text);
    if (copy)
        s->pool[s->npool++] = copy;
    return copy;
}

/* Calls whose answer is one string (or NULL). */
static const char *call_text(hstep *s, const char *fn, const char *arg)
{
    json_t *ret = sh_call(s, json_pack("{s:s, s:o}", "fn", fn, "arg", str(arg)), true, NULL, 0);
    const char *v = keep(s, json_string_value(json_object_get(ret, "value")));
    json_decref(ret);
    return v;
}

static const char *h_param(opsc_step_ctx *s, const char *name)
{
    return call_text(s, "param", name);
}

static const char *h_params_json(opsc_step_ctx *s)
{
    return call_text(s, "params_json", NULL);
}

static const char *h_target(opsc_step_ctx *s, const char *key)
{
    return call_text(s, "target", key);
}

static const char *h_secret(opsc_step_ctx *s, const char *name)
{
    return call_text(s, "secret", name);
}

static const char *h_quote(opsc_step_ctx *s, const char *value)
{
    return call_text(s, "quote", value);
}

/* The DATA frame after an exec's "ret": kept as the result's text. */
static const char *take_data(hstep *s, size_t *len)
{
    hmsg *m = sh_wait(s);
    const char *v = NULL;
    *len = 0;
    if (!m->json) {
        v = keep(s, m->data); /* strdup stops at a NUL: so does the length */
        *len = v ? strlen(v) : 0;
    }
    sh_msg_free(m);
    return v;
}

static int h_exec(opsc_step_ctx *s, const char *command, const opsc_step_exec_opts *opts,
                  opsc_step_exec_result *res)
{
    if (!command || !res)
        return OPSC_EINVAL;
    opsc_step_exec_opts o = {.size = sizeof(o)};
    if (opts)
        memcpy(&o, opts, opts->size < sizeof(o) ? opts->size : sizeof(o));
    json_t *req = json_pack("{s:s, s:o, s:I, s:I, s:b, s:b, s:b}", "fn", "exec", "command",
                            str(command), "timeout_ms", (json_int_t)o.timeout_ms, "capture_limit",
                            (json_int_t)o.capture_limit, "log_output", o.log_output, "sensitive",
                            o.sensitive, "stdin", o.stdin_data != NULL);
    json_t *ret = sh_call(s, req, true, o.stdin_data ? o.stdin_data : NULL, o.stdin_len);
    int rc = ret_rc(ret);
    if (ret) {
        size_t size = res->size;
        memset(res, 0, size < sizeof(*res) ? size : sizeof(*res));
        res->size = size;
        res->exit_code = (int)json_integer_value(json_object_get(ret, "exit_code"));
        res->exit_signal = keep(s, json_string_value(json_object_get(ret, "exit_signal")));
        res->truncated = json_is_true(json_object_get(ret, "truncated"));
        res->out = take_data(s, &res->out_len);
        res->err = take_data(s, &res->err_len);
    }
    json_decref(ret);
    return rc;
}

static int h_put_file(opsc_step_ctx *s, const char *local, const char *remote, int mode)
{
    if (!local || !remote)
        return OPSC_EINVAL;
    return call_rc(s, json_pack("{s:s, s:o, s:o, s:i}", "fn", "put_file", "local", str(local),
                                "remote", str(remote), "mode", mode));
}

static int h_get_file(opsc_step_ctx *s, const char *remote, const char *local)
{
    if (!local || !remote)
        return OPSC_EINVAL;
    return call_rc(s, json_pack("{s:s, s:o, s:o}", "fn", "get_file", "local", str(local), "remote",
                                str(remote)));
}

static char *vformat(const char *fmt, va_list ap)
{
    char *text = NULL;
    if (vasprintf(&text, fmt ? fmt : "", ap) < 0)
        return NULL;
    return text;
}

static void h_log(opsc_step_ctx *s, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    if (!msg)
        return;
    sh_call(s, json_pack("{s:s, s:i, s:o}", "fn", "log", "level", level, "msg", str(msg)), false,
            NULL, 0);
    free(msg);
}

static int h_fail(opsc_step_ctx *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    sh_call(s, json_pack("{s:s, s:o}", "fn", "fail", "msg", str(msg ? msg : "failed")), false, NULL,
            0);
    free(msg);
    return OPSC_EREMOTE;
}

static int h_set_output(opsc_step_ctx *s, const char *key, const char *json_value)
{
    if (!key || !json_value)
        return OPSC_EINVAL;
    return call_rc(s, json_pack("{s:s, s:o, s:o}", "fn", "set_output", "key", str(key), "value",
                                str(json_value)));
}

static bool h_cancelled(opsc_step_ctx *s)
{
    if (atomic_load(&s->cancelled))
        return true;
    json_t *ret = sh_call(s, json_pack("{s:s}", "fn", "cancelled"), true, NULL, 0);
    bool yes = !ret || json_is_true(json_object_get(ret, "value"));
    json_decref(ret);
    return yes;
}

static int h_sleep(opsc_step_ctx *s, uint32_t ms)
{
    return call_rc(s, json_pack("{s:s, s:I}", "fn", "sleep", "ms", (json_int_t)ms));
}

static int h_render(opsc_step_ctx *s, const char *text, const char *vars_json, const char **out,
                    char *err, size_t errlen)
{
    if (!out)
        return OPSC_EINVAL;
    json_t *req =
        json_pack("{s:s, s:o, s:o}", "fn", "render", "text", str(text), "vars", str(vars_json));
    json_t *ret = sh_call(s, req, true, NULL, 0);
    int rc = ret_rc(ret);
    *out = rc == 0 ? keep(s, json_string_value(json_object_get(ret, "value"))) : NULL;
    if (rc < 0 && err && errlen)
        snprintf(err, errlen, "%s",
                 json_string_value(json_object_get(ret, "error"))
                     ? json_string_value(json_object_get(ret, "error"))
                     : opsc_strerror(rc));
    json_decref(ret);
    return rc;
}

static const char *h_run_dir(opsc_step_ctx *s)
{
    return call_text(s, "run_dir", NULL);
}

/* The daemon fetches, stores and hashes: this process may not write there. */
static int h_fetch_file(opsc_step_ctx *s, const char *remote, const char *name,
                        opsc_step_file *info)
{
    if (!remote || !name)
        return OPSC_EINVAL;
    json_t *ret = sh_call(
        s,
        json_pack("{s:s, s:o, s:o}", "fn", "fetch_file", "remote", str(remote), "name", str(name)),
        true, NULL, 0);
    int rc = ret_rc(ret);
    if (rc == 0 && info) {
        opsc_step_file got = {.size = sizeof(got)};
        const char *sha = json_string_value(json_object_get(ret, "sha256"));
        snprintf(got.sha256, sizeof(got.sha256), "%s", sha ? sha : "");
        got.bytes = (uint64_t)json_integer_value(json_object_get(ret, "bytes"));
        got.changed = json_is_true(json_object_get(ret, "changed"));
        got.path = keep(s, json_string_value(json_object_get(ret, "path")));
        size_t n = info->size < sizeof(got) ? info->size : sizeof(got);
        memcpy((char *)info + sizeof(info->size), (char *)&got + sizeof(got.size),
               n > sizeof(got.size) ? n - sizeof(got.size) : 0);
    }
    json_decref(ret);
    return rc;
}

/* ---- the rest of the table ------------------------------------------------------------------- */

static void *h_alloc(size_t n)
{
    return malloc(n);
}

static void *h_calloc(size_t count, size_t n)
{
    return calloc(count, n);
}

static void *h_realloc(void *p, size_t n)
{
    return realloc(p, n);
}

static void h_free(void *p)
{
    free(p);
}

static char *h_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The daemon's log gets it, under the library's component name. */
static void h_daemon_log(const char *component, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    if (!msg)
        return;
    json_t *line = json_pack("{s:s, s:o, s:i, s:o}", "op", "log", "component", str(component),
                             "level", level, "msg", str(msg));
    free(msg);
    if (!sh.manifest)
        sh_send(0, line);
    else if (json_object_del(line, "op") == 0 && json_array_size(sh.init_log) < SH_MANIFEST_LOG_MAX)
        json_array_append_new(sh.init_log, line);
    else
        json_decref(line);
}

static bool h_log_enabled(int level)
{
    return level <= OPSC_LOG_INFO;
}

static struct uv_loop_s *h_loop(void)
{
    return NULL; /* no loop out of process: a step library has no use for one */
}

static int64_t h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int h_queue_work(void (*work)(void *), void (*after)(void *, int), void *ud)
{
    (void)work, (void)after, (void)ud;
    return OPSC_ENOTSUP;
}

/* A library's config section stays with the daemon: one that declares keys
 * cannot run out of process yet, and says so. */
static int h_config_bind(const opsc_config *cfg, const opsc_cfg_entry *map, void *dst, char *err,
                         size_t errlen)
{
    (void)cfg, (void)dst;
    if (map && map[0].key) {
        sh.config_keys = true;
        snprintf(err, errlen, "config keys of step libraries are not available out of process");
        return OPSC_ENOTSUP;
    }
    return 0;
}

static int h_register_steplib(const opsc_steplib *lib, void *state)
{
    if (sh.lib || !lib || !lib->name || !lib->version)
        return sh.lib ? OPSC_EEXIST : OPSC_EINVAL;
    sh.lib = lib;
    sh.lib_state = state;
    return 0;
}

/* A step host runs step libraries only. */
static int h_register_transport(const opsc_transport *t, void *state)
{
    (void)t, (void)state;
    return OPSC_ESTATE;
}

static int h_register_notifier(const opsc_notifier *n, void *state)
{
    (void)n, (void)state;
    return OPSC_ESTATE;
}

static int h_register_scanner(const opsc_scanner *sc, void *state)
{
    (void)sc, (void)state;
    return OPSC_ESTATE;
}

static int h_register_auth(const opsc_auth_provider *p, void *state)
{
    (void)p, (void)state;
    return OPSC_ESTATE;
}

static int h_user_verify(const char *u, const char *p, opsc_identity *id, char *err, size_t n)
{
    (void)u, (void)p, (void)id, (void)err, (void)n;
    return OPSC_ENOTSUP;
}

static const char *h_data_dir(void)
{
    return "/nonexistent"; /* the daemon's data stays the daemon's */
}

static int h_curl_start(void *easy, opsc_curl_done_cb done, void *ud)
{
    (void)easy, (void)done, (void)ud;
    return OPSC_ENOTSUP;
}

static void h_curl_cancel(void *easy)
{
    (void)easy;
}

static void h_notify_status(void *ud, int status, int64_t retry_after_ms)
{
    (void)ud, (void)status, (void)retry_after_ms;
}

static int h_local_available(char *why, size_t whylen)
{
    snprintf(why, whylen, "local processes are not available to a step library out of process");
    return OPSC_EPERM;
}

static int h_local_spawn(const opsc_local_spawn *req, const opsc_local_cb *cb, void *ud,
                         opsc_local_proc **out, char *err, size_t errlen)
{
    (void)req, (void)cb, (void)ud, (void)out;
    return h_local_available(err, errlen);
}

static int h_local_signal(opsc_local_proc *p, int sig)
{
    (void)p, (void)sig;
    return OPSC_ESTATE;
}

static void h_local_release(opsc_local_proc *p)
{
    (void)p;
}

static int h_kill_recorded(const char *handle, void (*done)(void *, int, const char *), void *ud)
{
    (void)handle, (void)done, (void)ud;
    return OPSC_EPERM;
}

static const opsc_host_api table = {
    .size = sizeof(opsc_host_api),
    .abi_major = OPSC_ABI_MAJOR,
    .abi_minor = OPSC_ABI_MINOR,
    .host_version = "opsc-stephost",
    .alloc = h_alloc,
    .calloc = h_calloc,
    .realloc = h_realloc,
    .free = h_free,
    .strdup = h_strdup,
    .log = h_daemon_log,
    .log_enabled = h_log_enabled,
    .loop = h_loop,
    .now_ms = h_now_ms,
    .queue_work = h_queue_work,
    .config_bind = h_config_bind,
    .register_transport = h_register_transport,
    .register_steplib = h_register_steplib,
    .register_notifier = h_register_notifier,
    .register_scanner = h_register_scanner,
    .register_auth_provider = h_register_auth,
    .step_param = h_param,
    .step_params_json = h_params_json,
    .step_target = h_target,
    .step_secret = h_secret,
    .step_quote = h_quote,
    .step_exec = h_exec,
    .step_put_file = h_put_file,
    .step_get_file = h_get_file,
    .step_log = h_log,
    .step_set_output = h_set_output,
    .step_fail = h_fail,
    .step_cancelled = h_cancelled,
    .step_sleep = h_sleep,
    .local_user_verify = h_user_verify,
    .step_render = h_render,
    .data_dir = h_data_dir,
    .curl_start = h_curl_start,
    .curl_cancel = h_curl_cancel,
    .notify_http_status = h_notify_status,
    .local_available = h_local_available,
    .local_spawn = h_local_spawn,
    .local_signal = h_local_signal,
    .local_release = h_local_release,
    .local_kill_recorded = h_kill_recorded,
    .step_run_dir = h_run_dir,
    .step_fetch_file = h_fetch_file,
};

const opsc_host_api *sh_host_api(void)
{
    return &table;
}
