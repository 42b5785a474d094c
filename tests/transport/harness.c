/* harness.c - the test host for transport plugins (see harness.h). */
#include <ctype.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "harness.h"
#include "privsep.h"

struct opsc_config {
    const char *text; /* "key = value" lines */
};

static uv_loop_t *loop;
static th_plugin *loading;
static char last_log[2048];
static atomic_llong live_bytes;

/* ---- allocator: a size header lets the tests check for leaks ----------------- */

typedef union hdr {
    size_t n;
    max_align_t align;
} hdr;

static void *h_alloc(size_t n)
{
    hdr *h = malloc(sizeof(hdr) + n);
    if (!h)
        return NULL;
    h->n = n;
    atomic_fetch_add(&live_bytes, (long long)n);
    return h + 1;
}

static void h_free(void *p)
{
    if (!p)
        return;
    hdr *h = (hdr *)p - 1;
    atomic_fetch_sub(&live_bytes, (long long)h->n);
    free(h);
}

static void *h_calloc(size_t count, size_t n)
{
    if (n && count > SIZE_MAX / n)
        return NULL;
    void *p = h_alloc(count * n);
    if (p)
        memset(p, 0, count * n);
    return p;
}

static void *h_realloc(void *p, size_t n)
{
    if (!p)
        return h_alloc(n);
    hdr *h = (hdr *)p - 1;
    size_t old = h->n;
    hdr *nh = realloc(h, sizeof(hdr) + n);
    if (!nh)
        return NULL;
    nh->n = n;
    atomic_fetch_add(&live_bytes, (long long)n - (long long)old);
    return nh + 1;
}

static char *h_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = h_alloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int64_t th_live_bytes(void)
{
    return atomic_load(&live_bytes);
}

int th_no_leaks(void)
{
    if (th_live_bytes() == 0)
        return 0;
    fprintf(stderr, "leak: %lld bytes allocated through the host were not freed\n",
            (long long)th_live_bytes());
    return -1;
}

/* ---- log, loop, time ---------------------------------------------------------------- */

static void h_log(const char *component, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_log, sizeof(last_log), fmt, ap);
    va_end(ap);
    if (getenv("TH_VERBOSE") || level == OPSC_LOG_ERROR)
        fprintf(stderr, "[%s] %d %s\n", component, level, last_log);
}

const char *th_last_log(void)
{
    return last_log;
}

static bool h_log_enabled(int level)
{
    return level <= OPSC_LOG_INFO || getenv("TH_VERBOSE");
}

uv_loop_t *th_loop(void)
{
    if (!loop)
        loop = uv_default_loop();
    return loop;
}

static struct uv_loop_s *h_loop(void)
{
    return th_loop();
}

static int64_t h_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- worker threads (transport-winrm's Kerberos steps) ------------------------------ */

typedef struct h_work {
    uv_work_t req;
    void (*work)(void *ud);
    void (*after)(void *ud, int status);
    void *ud;
} h_work;

static void h_work_run(uv_work_t *r)
{
    h_work *w = r->data;
    w->work(w->ud);
}

static void h_work_after(uv_work_t *r, int status)
{
    h_work *w = r->data;
    w->after(w->ud, status ? OPSC_ECANCELED : 0);
    free(w);
}

static int h_queue_work(void (*work)(void *ud), void (*after)(void *ud, int status), void *ud)
{
    h_work *w = calloc(1, sizeof(*w));
    if (!w)
        return OPSC_ENOMEM;
    *w = (h_work){.work = work, .after = after, .ud = ud};
    w->req.data = w;
    int rc = uv_queue_work(th_loop(), &w->req, h_work_run, h_work_after);
    if (rc)
        free(w);
    return rc;
}

/* ---- config_bind: the few rules of the real host, in small ------------------------- */

static int parse_scaled(const char *v, opsc_cfg_type type, int64_t *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v)
        return -1;
    double mul = 1;
    if (type == OPSC_CFG_DURATION) {
        mul = 1000; /* bare number: seconds */
        if (!strcmp(end, "ms"))
            mul = 1;
        else if (!strcmp(end, "s"))
            mul = 1000;
        else if (!strcmp(end, "m"))
            mul = 60000;
        else if (!strcmp(end, "h"))
            mul = 3600000;
        else if (*end)
            return -1;
    } else if (type == OPSC_CFG_SIZE) {
        const char *u = "kMG";
        if (*end && strchr(u, *end) && !end[1])
            mul = *end == 'k' ? 1024 : *end == 'M' ? 1048576 : 1073741824;
        else if (*end)
            return -1;
    } else if (*end) {
        return -1;
    }
    *out = (int64_t)(d * mul);
    return 0;
}

static int set_value(const opsc_cfg_entry *e, const char *v, void *dst, char *err, size_t errlen)
{
    char *at = (char *)dst + e->offset;
    int64_t n = 0;
    switch (e->type) {
    case OPSC_CFG_STRING:
        *(const char **)at = v; /* the harness keeps config text alive */
        return 0;
    case OPSC_CFG_BOOL:
        *(bool *)at =
            !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1");
        return 0;
    case OPSC_CFG_ENUM:
        *(int *)at = 0;
        return 0;
    default:
        if (parse_scaled(v, e->type, &n) < 0 || (e->min <= e->max && (n < e->min || n > e->max))) {
            snprintf(err, errlen, "%s: bad value '%s'", e->key, v);
            return OPSC_ESCHEMA;
        }
        *(int64_t *)at = n;
        return 0;
    }
}

static int h_config_bind(const opsc_config *cfg, const opsc_cfg_entry *map, void *dst, char *err,
                         size_t errlen)
{
    for (const opsc_cfg_entry *e = map; e->key; e++)
        if (e->def && set_value(e, e->def, dst, err, errlen) < 0)
            return OPSC_ESCHEMA;
    /* String settings point into this copy: it lives as long as the plugin that bound it. */
    char *cfg_copy = strdup(cfg && cfg->text ? cfg->text : "");
    if (loading) {
        free(loading->cfg_text);
        loading->cfg_text = cfg_copy;
    }
    for (char *line = strtok(cfg_copy, "\n"); line; line = strtok(NULL, "\n")) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        char *k = line, *v = eq + 1;
        *eq = '\0';
        while (isspace((unsigned char)*k))
            k++;
        for (char *t = eq - 1; t >= k && isspace((unsigned char)*t); t--)
            *t = '\0';
        while (isspace((unsigned char)*v))
            v++;
        const opsc_cfg_entry *e = map;
        while (e->key && strcmp(e->key, k) != 0)
            e++;
        if (!e->key) {
            int n = snprintf(err, errlen, "unknown key '%s' (valid:", k);
            for (e = map; e->key && n > 0 && (size_t)n < errlen; e++)
                n += snprintf(err + n, errlen - (size_t)n, " %s", e->key);
            if (n > 0 && (size_t)n < errlen)
                snprintf(err + n, errlen - (size_t)n, ")");
            return OPSC_ESCHEMA;
        }
        if (set_value(e, v, dst, err, errlen) < 0)
            return OPSC_ESCHEMA;
    }
    return 0;
}

static int h_register_transport(const opsc_transport *t, void *state)
{
    if (!loading || !t || !t->connect || !t->exec || !t->close)
        return OPSC_EINVAL;
    loading->t = t;
    loading->state = state;
    return 0;
}

/* ---- local processes: the real helper, started on first use ---------------------------- */

static privsep *local_helper;

static privsep *helper(void)
{
    if (!local_helper) {
        privsep_opts o = {TH_SPAWNER, "opsconductor-local", NULL, 0, 0, NULL};
        if (privsep_start(&local_helper, &o) == 0)
            privsep_attach(local_helper, h_loop());
    }
    return local_helper;
}

static int h_local_available(char *why, size_t whylen)
{
    return privsep_available(helper(), why, whylen);
}

static int h_local_spawn(const opsc_local_spawn *req, const opsc_local_cb *cb, void *ud,
                         opsc_local_proc **out, char *err, size_t errlen)
{
    return privsep_spawn(helper(), req, cb, ud, out, err, errlen);
}

static int h_local_kill_recorded(const char *handle,
                                 void (*done)(void *ud, int killed, const char *msg), void *ud)
{
    return privsep_kill_recorded(helper(), handle, done, ud);
}

static int h_register_scanner(const opsc_scanner *s, void *state)
{
    if (!loading || !s || !s->scan || !s->cancel)
        return OPSC_EINVAL;
    loading->scanner = s;
    loading->state = state;
    return 0;
}

static const opsc_host_api host_api = {
    .size = sizeof(opsc_host_api),
    .abi_major = OPSC_ABI_MAJOR,
    .abi_minor = OPSC_ABI_MINOR,
    .host_version = "test-harness",
    .alloc = h_alloc,
    .calloc = h_calloc,
    .realloc = h_realloc,
    .free = h_free,
    .strdup = h_strdup,
    .log = h_log,
    .log_enabled = h_log_enabled,
    .loop = h_loop,
    .now_ms = h_now_ms,
    .queue_work = h_queue_work,
    .config_bind = h_config_bind,
    .register_transport = h_register_transport,
    .local_available = h_local_available,
    .local_spawn = h_local_spawn,
    .local_signal = privsep_signal,
    .local_release = privsep_release,
    .local_kill_recorded = h_local_kill_recorded,
    .register_scanner = h_register_scanner,
};

const opsc_host_api *th_api(void)
{
    return &host_api;
}

int th_load(th_plugin *p, const char *path, const char *config)
{
    memset(p, 0, sizeof(*p));
    p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        snprintf(last_log, sizeof(last_log), "%s", dlerror());
        return OPSC_EPLUGIN;
    }
    opsc_plugin_entry_fn entry;
    *(void **)&entry = dlsym(p->dl, OPSC_PLUGIN_ENTRY_SYMBOL);
    if (!entry)
        return OPSC_EPLUGIN;
    p->desc = entry();
    if (!p->desc || p->desc->abi_major != OPSC_ABI_MAJOR || p->desc->abi_minor > OPSC_ABI_MINOR)
        return OPSC_EABI;
    struct opsc_config cfg = {config};
    void *state = NULL;
    loading = p;
    int rc = p->desc->init(&host_api, &cfg, &state);
    loading = NULL;
    p->pstate = state;
    if (rc == 0 && !p->t && !p->scanner)
        rc = OPSC_EPLUGIN;
    return rc;
}

void th_unload(th_plugin *p)
{
    if (p->desc && p->desc->shutdown && (p->t || p->scanner))
        p->desc->shutdown(p->pstate);
    if (p->dl)
        dlclose(p->dl);
    free(p->cfg_text);
    memset(p, 0, sizeof(*p));
    privsep_close(local_helper); /* its handle must not keep the loop open */
    local_helper = NULL;
}

/* ---- running the loop ---------------------------------------------------------------- */

struct wait {
    volatile bool *flag;
    bool expired;
};

static void guard_cb(uv_timer_t *t)
{
    ((struct wait *)t->data)->expired = true;
}

/* uv_run(UV_RUN_ONCE) runs due timers and then still blocks for I/O: stop
 * the loop before it polls once the flag is up. */
static void prepare_cb(uv_prepare_t *p)
{
    struct wait *w = p->data;
    if (*w->flag || w->expired)
        uv_stop(p->loop);
}

bool th_run_until(volatile bool *flag, uint32_t ms)
{
    struct wait w = {flag, false};
    uv_timer_t guard;
    uv_prepare_t prep;
    uv_timer_init(th_loop(), &guard);
    uv_prepare_init(th_loop(), &prep);
    guard.data = prep.data = &w;
    uv_timer_start(&guard, guard_cb, ms, 0);
    uv_prepare_start(&prep, prepare_cb);
    while (!*flag && !w.expired)
        uv_run(th_loop(), UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_close((uv_handle_t *)&prep, NULL);
    uv_run(th_loop(), UV_RUN_NOWAIT);
    return *flag;
}

static void walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    fprintf(stderr, "harness: handle left open: type %s active %d\n",
            uv_handle_type_name(uv_handle_get_type(h)), uv_is_active(h));
}

bool th_loop_drain(void)
{
    for (int i = 0; i < 1000 && uv_run(th_loop(), UV_RUN_NOWAIT); i++)
        uv_sleep(1);
    if (uv_loop_alive(th_loop())) {
        uv_walk(th_loop(), walk_cb, NULL);
        return false;
    }
    return true;
}

/* ---- connect / exec / transfer -------------------------------------------------------------- */

static void on_connect(void *ud, int status, opsc_conn *conn, const opsc_conn_info *info,
                       const char *error)
{
    th_conn *c = ud;
    c->status = status;
    c->conn = conn;
    snprintf(c->error, sizeof(c->error), "%s", error ? error : "");
    if (info) {
        snprintf(c->key_type, sizeof(c->key_type), "%s",
                 info->host_key_type ? info->host_key_type : "");
        snprintf(c->key_fp, sizeof(c->key_fp), "%s",
                 info->host_key_sha256 ? info->host_key_sha256 : "");
        snprintf(c->warning, sizeof(c->warning), "%s", info->warning ? info->warning : "");
        c->learned = info->host_key_learned;
    }
    c->done = true;
}

int th_connect_start(th_plugin *p, const opsc_target *t, const opsc_credential *cred, th_conn *out)
{
    memset(out, 0, sizeof(*out));
    return p->t->connect(p->state, t, cred, on_connect, out);
}

int th_connect(th_plugin *p, const opsc_target *t, const opsc_credential *cred, th_conn *out)
{
    int rc = th_connect_start(p, t, cred, out);
    if (rc < 0)
        return rc;
    if (!th_run_until(&out->done, 120000))
        return OPSC_ETIMEDOUT;
    if (out->status && getenv("TH_VERBOSE"))
        fprintf(stderr, "harness: connect: %s\n", out->error);
    return out->status;
}

static void on_closed(void *ud)
{
    *(bool *)ud = true;
}

void th_close(th_plugin *p, opsc_conn *conn)
{
    bool closed = false;
    p->t->close(conn, on_closed, &closed);
    th_run_until(&closed, 30000);
}

static void on_output(void *ud, int stream, const char *data, size_t len)
{
    th_exec *e = ud;
    char *buf = stream == OPSC_STDOUT ? e->out : e->err;
    size_t *n = stream == OPSC_STDOUT ? &e->nout : &e->nerr;
    size_t room = sizeof(e->out) - 1 - *n;
    size_t k = len < room ? len : room;
    memcpy(buf + *n, data, k);
    *n += k;
    buf[*n] = '\0';
    if (stream == OPSC_STDOUT)
        e->total_out += len;
    else
        e->total_err += len;
    if (e->pause_after && !e->paused && e->total_out >= e->pause_after) {
        e->paused = true;
        e->p->t->exec_pause(e->ex);
    }
}

static void on_done(void *ud, const opsc_exec_result *res)
{
    th_exec *e = ud;
    e->status = res->status;
    e->exit_code = res->exit_code;
    snprintf(e->exit_signal, sizeof(e->exit_signal), "%s",
             res->exit_signal ? res->exit_signal : "");
    snprintf(e->error, sizeof(e->error), "%s", res->error ? res->error : "");
    e->ex = NULL;
    e->done = true;
}

static void on_drained(void *ud)
{
    ((th_exec *)ud)->drained++;
}

static const opsc_exec_cb exec_cb = {sizeof(opsc_exec_cb), on_output, on_done, on_drained};

int th_exec_start(th_plugin *p, opsc_conn *conn, const opsc_exec_req *req, th_exec *e)
{
    memset(e, 0, sizeof(*e));
    e->p = p;
    return p->t->exec(conn, req, &exec_cb, e, &e->ex);
}

/* A command that did not finish in time is cancelled and waited for: the
 * failing test returns and its th_exec goes with its stack frame, so no
 * callback may reach it later. */
bool th_exec_wait(th_exec *e, uint32_t ms)
{
    if (th_run_until(&e->done, ms))
        return true;
    e->p->t->exec_cancel(e->ex);
    if (!th_run_until(&e->done, 30000))
        abort(); /* a callback would land in a dead frame: stop here, loudly */
    return false;
}

int th_exec_run(th_plugin *p, opsc_conn *conn, const char *command, th_exec *e)
{
    opsc_exec_req req = {sizeof(req)};
    req.command = command;
    int rc = th_exec_start(p, conn, &req, e);
    if (rc < 0)
        return rc;
    if (!th_exec_wait(e, 120000))
        return OPSC_ETIMEDOUT;
    return 0;
}

static void on_xfer(void *ud, const opsc_xfer_result *res)
{
    th_xfer *x = ud;
    x->status = res->status;
    x->bytes = res->bytes;
    snprintf(x->sha256, sizeof(x->sha256), "%s", res->sha256 ? res->sha256 : "");
    snprintf(x->error, sizeof(x->error), "%s", res->error ? res->error : "");
    x->done = true;
}

static int xfer(th_plugin *p, opsc_conn *conn, bool put, const char *local, const char *remote,
                int mode, th_xfer *x)
{
    memset(x, 0, sizeof(*x));
    opsc_xfer_req req = {sizeof(req)};
    req.local_path = local;
    req.remote_path = remote;
    req.mode = mode;
    opsc_xfer *h = NULL;
    int rc = put ? p->t->put_file(conn, &req, on_xfer, x, &h)
                 : p->t->get_file(conn, &req, on_xfer, x, &h);
    if (rc < 0)
        return rc;
    if (!th_run_until(&x->done, 600000))
        return OPSC_ETIMEDOUT;
    if (x->status && getenv("TH_VERBOSE"))
        fprintf(stderr, "harness: %s: %s\n", put ? "put" : "get", x->error);
    return x->status;
}

int th_put(th_plugin *p, opsc_conn *conn, const char *local, const char *remote, int mode,
           th_xfer *x)
{
    return xfer(p, conn, true, local, remote, mode, x);
}

int th_get(th_plugin *p, opsc_conn *conn, const char *remote, const char *local, th_xfer *x)
{
    return xfer(p, conn, false, local, remote, -1, x);
}

/* ---- the sshd fixture -------------------------------------------------------------------- */

#ifndef TH_FIXTURE
#define TH_FIXTURE "tests/integration/fixtures/sshd.py"
#endif

static void copy_str(json_t *o, const char *key, char *dst, size_t n)
{
    const char *v = json_string_value(json_object_get(o, key));
    snprintf(dst, n, "%s", v ? v : "");
}

int th_sshd_start(th_sshd *s, const char *options)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "/tmp/opsc-sshd-XXXXXX");
    if (!mkdtemp(s->dir))
        return -1;
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s start %s %s", TH_FIXTURE, s->dir,
             options ? options : "");
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    if (pclose(f) != 0)
        return -1;
    json_t *o = json_loads(buf, 0, NULL);
    if (!o)
        return -1;
    s->port = (int)json_integer_value(json_object_get(o, "port"));
    s->pid = (long)json_integer_value(json_object_get(o, "pid"));
    copy_str(o, "user", s->user, sizeof(s->user));
    copy_str(o, "password", s->password, sizeof(s->password));
    copy_str(o, "passphrase", s->passphrase, sizeof(s->passphrase));
    copy_str(o, "host_ed25519", s->host_ed25519, sizeof(s->host_ed25519));
    copy_str(o, "host_rsa", s->host_rsa, sizeof(s->host_rsa));
    json_decref(o);
    return s->port > 0 ? 0 : -1;
}

void th_sshd_stop(th_sshd *s)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 %s stop %s && { [ -n \"$TH_KEEP\" ] || rm -rf %s; }", TH_FIXTURE,
             s->dir, s->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "harness: stopping sshd in %s failed\n", s->dir);
}

void th_sshd_kill_sessions(th_sshd *s)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s kill-sessions %s", TH_FIXTURE, s->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "harness: kill-sessions failed\n");
}

long th_sshd_children_cpu_ms(th_sshd *s)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/stat", s->pid);
    char *stat = th_read_file(path);
    const char *p = stat ? strrchr(stat, ')') : NULL;
    long long cutime = 0, cstime = 0;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime stime cutime cstime (fields 3..17 of proc(5)) */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %lld %lld",
                     &cutime, &cstime) != 2)
        cutime = cstime = -1;
    free(stat);
    return cutime < 0 ? -1 : (long)((cutime + cstime) * 1000 / sysconf(_SC_CLK_TCK));
}

char *th_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb)
                break;
            buf = nb;
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

char *th_sshd_file(th_sshd *s, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", s->dir, name);
    return th_read_file(path);
}

static long status_kb(const char *key)
{
    char *st = th_read_file("/proc/self/status");
    long kb = -1;
    const char *p = st ? strstr(st, key) : NULL;
    if (p)
        kb = strtol(p + strlen(key), NULL, 10);
    free(st);
    return kb;
}

long th_rss_kb(void)
{
    return status_kb("VmRSS:");
}

long th_hwm_kb(void)
{
    return status_kb("VmHWM:");
}
