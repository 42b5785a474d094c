/* fake_step_host.c - the step API served on this machine, for step library tests. */
#include "fake_step_host.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "files.h"
#include "runfiles.h"
#include "template.h"
#include "util.h"

static const char *keep(opsc_step_ctx *ctx, char *s)
{
    if (!s)
        return NULL;
    ctx->pool = realloc(ctx->pool, (ctx->npool + 1) * sizeof(*ctx->pool));
    ctx->pool[ctx->npool++] = s;
    return s;
}

static tpl_mode mode_of(opsc_step_ctx *ctx)
{
    const char *f = json_string_value(json_object_get(ctx->target, "os_family"));
    return f && strcmp(f, "windows") == 0 ? TPL_POWERSHELL : TPL_POSIX;
}

/* ---- running commands ------------------------------------------------------------ */

static void drain(int fd, strbuf *sb, bool *open)
{
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0)
        sb_append(sb, buf, (size_t)n);
    else if (n == 0 || errno != EINTR)
        *open = false;
}

int fake_run_shell(const char *shell, const char *script, uint32_t timeout_ms, char **out,
                   size_t *out_len, int *exit_code)
{
    int po[2];
    if (pipe2(po, O_CLOEXEC) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(po[1], 1);
        execl(shell, shell, "-c", script, (char *)NULL);
        _exit(127);
    }
    close(po[1]);
    strbuf sb = STRBUF_INIT;
    sb_append(&sb, "", 0);
    bool open_ = true;
    uint64_t deadline = timeout_ms ? clock_mono_ms() + timeout_ms : 0;
    int rc = 0;
    while (open_) {
        struct pollfd pfd = {po[0], POLLIN, 0};
        if (poll(&pfd, 1, 50) > 0)
            drain(po[0], &sb, &open_);
        if (deadline && clock_mono_ms() > deadline) {
            kill(pid, SIGKILL);
            rc = OPSC_ETIMEDOUT;
            break;
        }
    }
    close(po[0]);
    int status;
    waitpid(pid, &status, 0);
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    *out_len = sb.len;
    *out = sb_steal(&sb, NULL);
    return rc;
}

static int f_exec(opsc_step_ctx *ctx, const char *command, const opsc_step_exec_opts *opts,
                  opsc_step_exec_result *res)
{
    ctx->exec_calls++;
    free(ctx->out);
    ctx->out = NULL;
    memset(res, 0, sizeof(*res));
    res->size = sizeof(*res);
    if (ctx->cancel)
        return OPSC_ECANCELED;
    if (ctx->exec_hook)
        return ctx->exec_hook(ctx, command, res);
    size_t len;
    int rc = fake_run_shell("/bin/sh", command, opts ? opts->timeout_ms : 0, &ctx->out, &len,
                            &res->exit_code);
    res->out = ctx->out;
    res->out_len = len;
    res->err = "";
    return rc;
}

/* ---- files ------------------------------------------------------------------------ */

static int copy_file(const char *from, const char *to, int mode)
{
    char *data;
    size_t len;
    int rc = fs_read_file(from, 64u << 20, &data, &len);
    if (rc < 0)
        return rc;
    rc = fs_write_file(to, data, len, mode >= 0 ? (mode_t)mode : 0600);
    free(data);
    return rc;
}

static int f_put(opsc_step_ctx *ctx, const char *local, const char *remote, int mode)
{
    (void)ctx;
    return copy_file(local, remote, mode);
}

static int f_get(opsc_step_ctx *ctx, const char *remote, const char *local)
{
    (void)ctx;
    return copy_file(remote, local, 0600);
}

static const char *f_run_dir(opsc_step_ctx *ctx)
{
    return ctx->run_dir;
}

/* As the executor does: copy into the run's folder, then hash once into the sidecar. */
static int f_fetch(opsc_step_ctx *ctx, const char *remote, const char *name, opsc_step_file *info)
{
    char path[512];
    if (!ctx->run_dir || files_name_check(name, strlen(name)))
        return OPSC_EINVAL;
    snprintf(path, sizeof(path), "%s/%s", ctx->run_dir, name);
    int rc = fs_mkdir_p(ctx->run_dir, 0700);
    if (rc == 0)
        rc = f_get(ctx, remote, path);
    int dir = rc == 0 ? open(ctx->run_dir, O_RDONLY | O_DIRECTORY) : -1;
    runfiles_digest d;
    if (rc == 0)
        rc = dir < 0 ? -errno : runfiles_digest_record(dir, name, &d, &info->changed);
    if (dir >= 0)
        close(dir);
    if (rc == 0) {
        memcpy(info->sha256, d.sha256, sizeof(info->sha256));
        info->bytes = d.size;
        snprintf(path, sizeof(path), "web-1/%s", name);
        info->path = keep(ctx, strdup(path));
    }
    return rc;
}

/* ---- values --------------------------------------------------------------------------- */

static const char *f_param(opsc_step_ctx *ctx, const char *name)
{
    json_t *v = json_object_get(ctx->params, name);
    if (!v || json_is_string(v))
        return json_string_value(v);
    return keep(ctx, json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY));
}

static const char *f_params_json(opsc_step_ctx *ctx)
{
    return keep(ctx, json_dumps(ctx->params, JSON_COMPACT));
}

static const char *f_target(opsc_step_ctx *ctx, const char *key)
{
    const json_t *v = ctx->target;
    char path[256];
    snprintf(path, sizeof(path), "%s", key);
    for (char *seg = strtok(path, "."); seg && v; seg = strtok(NULL, "."))
        v = json_object_get(v, seg);
    return json_string_value(v);
}

static const char *f_secret(opsc_step_ctx *ctx, const char *name)
{
    return json_string_value(json_object_get(ctx->secrets, name));
}

static const char *f_quote(opsc_step_ctx *ctx, const char *value)
{
    strbuf sb = STRBUF_INIT;
    if (tpl_quote(mode_of(ctx), value, strlen(value), &sb) < 0) {
        sb_free(&sb);
        return NULL;
    }
    return keep(ctx, sb_steal(&sb, NULL));
}

static void f_log(opsc_step_ctx *ctx, int level, const char *msg)
{
    (void)level;
    sb_printf(&ctx->log, "%s\n", msg);
}

static int f_set_output(opsc_step_ctx *ctx, const char *key, const char *json_value)
{
    json_t *v = json_loads(json_value, JSON_DECODE_ANY, NULL);
    if (!v || !*key || strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(key)) {
        json_decref(v);
        return OPSC_EINVAL;
    }
    return json_object_set_new(ctx->outputs, key, v) == 0 ? 0 : OPSC_ENOMEM;
}

static int f_fail(opsc_step_ctx *ctx, const char *msg)
{
    snprintf(ctx->failure, sizeof(ctx->failure), "%s", msg);
    return OPSC_EREMOTE;
}

static bool f_cancelled(opsc_step_ctx *ctx)
{
    return ctx->cancel;
}

static int f_sleep(opsc_step_ctx *ctx, uint32_t ms)
{
    uint64_t end = clock_mono_ms() + ms;
    while (clock_mono_ms() < end) {
        if (ctx->cancel)
            return OPSC_ECANCELED;
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    return ctx->cancel ? OPSC_ECANCELED : 0;
}

static int f_render(opsc_step_ctx *ctx, const char *text, const char *vars_json, const char **out,
                    char *err, size_t errlen)
{
    tpl *t;
    tpl_err te;
    int rc = tpl_compile(&t, text, strlen(text), NULL, &te);
    json_t *vars = vars_json ? json_loads(vars_json, 0, NULL) : json_object();
    json_t *run =
        json_pack("{s:O, s:O, s:{}, s:{s:s}, s:o}", "params", ctx->job, "target", ctx->target,
                  "steps", "run", "id", "01900000-0000-7000-8000-0000000000aa", "vars", vars);
    char *s = NULL;
    if (rc == 0) {
        rc = tpl_render_str(t, run, &s, &te);
        tpl_free(t);
    }
    json_decref(run);
    if (rc < 0) {
        snprintf(err, errlen, "%d:%d: %s", te.line, te.col, te.msg);
        return rc;
    }
    *out = keep(ctx, s);
    return 0;
}

static const plugin_step_ops fake_ops = {
    .param = f_param,
    .params_json = f_params_json,
    .target = f_target,
    .secret = f_secret,
    .quote = f_quote,
    .exec = f_exec,
    .put_file = f_put,
    .get_file = f_get,
    .log = f_log,
    .set_output = f_set_output,
    .fail = f_fail,
    .cancelled = f_cancelled,
    .sleep = f_sleep,
    .render = f_render,
    .run_dir = f_run_dir,
    .fetch_file = f_fetch,
};

void fake_host_install(plugin_host *h)
{
    plugin_host_set_step_ops(h, &fake_ops);
}

opsc_step_ctx *fake_ctx_new(const char *params_json, const char *os_family)
{
    opsc_step_ctx *ctx = calloc(1, sizeof(*ctx));
    ctx->params = json_loads(params_json, 0, NULL);
    ctx->target = json_pack("{s:s, s:s, s:s, s:s, s:{s:s}, s:{}}", "id",
                            "01900000-0000-7000-8000-000000000005", "name", "web-1", "address",
                            "127.0.0.1", "os_family", os_family, "labels", "env", "test", "facts");
    ctx->job = json_pack("{s:s}", "release", "1.4.2");
    ctx->secrets = json_object();
    ctx->outputs = json_object();
    return ctx;
}

void fake_ctx_free(opsc_step_ctx *ctx)
{
    json_decref(ctx->params);
    json_decref(ctx->target);
    json_decref(ctx->job);
    json_decref(ctx->secrets);
    json_decref(ctx->outputs);
    sb_free(&ctx->log);
    free(ctx->out);
    for (size_t i = 0; i < ctx->npool; i++)
        free(ctx->pool[i]);
    free(ctx->pool);
    free(ctx);
}
