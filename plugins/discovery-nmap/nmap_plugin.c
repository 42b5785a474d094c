/* nmap_plugin.c - discovery-nmap: the "nmap" scanner. Debian's nmap runs as a child process
 * (a TCP connect scan, -oX - on stdout, the targets on stdin), its XML is read as it streams
 * and mapped to the same host records as discovery-tcp's. Refused at load when nmap is not
 * installed. A scanner that is not ours behind the same SDK. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include <opsc/plugin.h>

#include "nmap_options.h"
#include "nmap_xml.h"

#define ARGS_MAX 40

static const opsc_host_api *host;

typedef struct nsettings {
    const char *nmap; /* a path, or a name looked up in PATH */
    bool scripts;     /* banner and ssh-hostkey scripts: SSH banners and host keys */
} nsettings;

typedef struct nplugin {
    nsettings cfg;
    char path[4096]; /* nmap, found */
} nplugin;

static const opsc_cfg_entry settings_map[] = {
    {"nmap", OPSC_CFG_STRING, "nmap", 0, -1, NULL, 0, offsetof(nsettings, nmap),
     "the nmap executable: a path, or a name looked up in PATH"},
    {"scripts", OPSC_CFG_BOOL, "true", 0, -1, NULL, 0, offsetof(nsettings, scripts),
     "run nmap's banner and ssh-hostkey scripts on open ports (SSH banners and host keys)"},
    {NULL},
};

typedef struct nscan {
    nplugin *p;
    opsc_scan_host_cb on_host;
    opsc_scan_done_cb done;
    void *ud;
    json_t *spec;
    uint16_t *ports;
    size_t nports;
    uint64_t total, family_total[2], family_done;
    int family; /* 0: IPv4 targets, 1: IPv6 (nmap scans one family per run) */
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_write_t wreq;
    char *targets; /* stdin of the running child */
    int open;      /* handles of the running child not yet closed */
    bool running, cancelled, exited;
    int64_t exit_status;
    int term_signal;
    nmap_stream stream;
    char errtail[512];
    char error[600];
} nscan;

/* ---- finding nmap -----------------------------------------------------------------------------
 */

static bool find_nmap(const char *name, char *out, size_t n)
{
    if (strchr(name, '/')) {
        snprintf(out, n, "%s", name);
        return access(out, X_OK) == 0;
    }
    const char *path = getenv("PATH");
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        size_t len = strcspn(p, ":");
        snprintf(out, n, "%.*s/%s", (int)len, p, name);
        if (len && access(out, X_OK) == 0)
            return true;
        p += len + (p[len] == ':');
    }
    return false;
}

/* ---- the child
 * ----------------------------------------------------------------------------------- */

static void start_family(nscan *s);

/* The host may still ask for progress inside `done`: the scan goes after it. */
static void finish(nscan *s, int status, const char *error)
{
    s->done(s->ud, status, status && error && *error ? error : NULL);
    nmap_stream_free(&s->stream);
    json_decref(s->spec);
    host->free(s->ports);
    host->free(s);
}

/* Every handle of the child is closed: the next family, or the end. */
static void child_over(nscan *s)
{
    host->free(s->targets);
    s->targets = NULL;
    s->running = false;
    s->family_done += s->family_total[s->family];
    if (s->cancelled) {
        finish(s, OPSC_ECANCELED, NULL);
    } else if (s->term_signal || s->exit_status != 0) {
        snprintf(s->error, sizeof(s->error), "nmap %s %d%s%s",
                 s->term_signal ? "was killed by signal" : "exited with status",
                 s->term_signal ? s->term_signal : (int)s->exit_status, s->errtail[0] ? ": " : "",
                 s->errtail);
        finish(s, OPSC_EIO, s->error);
    } else if (s->family == 0 && s->family_total[1]) {
        s->family = 1;
        start_family(s);
    } else {
        finish(s, 0, NULL);
    }
}

static void on_closed(uv_handle_t *h)
{
    nscan *s = h->data;
    if (--s->open == 0)
        child_over(s);
}

/* The pipes give what is left, then EOF, and close then: the child is over once all four
 * handles are closed, whatever the order. */
static void on_child_exit(uv_process_t *proc, int64_t status, int signal)
{
    nscan *s = proc->data;
    s->exited = true;
    s->exit_status = status;
    s->term_signal = s->cancelled ? 0 : signal;
    uv_close((uv_handle_t *)proc, on_closed);
}

static void on_host_xml(void *ud, const char *xml, size_t len)
{
    nscan *s = ud;
    char err[160];
    json_t *h =
        s->cancelled ? NULL : nmap_host_parse(xml, len, s->ports, s->nports, err, sizeof(err));
    if (!h) {
        if (!s->cancelled && err[0])
            host->log("discovery-nmap", OPSC_LOG_WARN, "skipped a host: %s", err);
        return;
    }
    char *facts = json_dumps(json_object_get(h, "facts"), JSON_COMPACT);
    opsc_found_host f = {sizeof(f), json_string_value(json_object_get(h, "address")),
                         json_string_value(json_object_get(h, "hostname")),
                         json_string_value(json_object_get(h, "os_family")), facts};
    if (facts)
        s->on_host(s->ud, &f);
    free(facts);
    json_decref(h);
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h;
    buf->base = host->alloc(size);
    buf->len = buf->base ? size : 0;
}

static void pipe_done(uv_stream_t *st)
{
    uv_read_stop(st);
    if (!uv_is_closing((uv_handle_t *)st))
        uv_close((uv_handle_t *)st, on_closed);
}

static void on_out(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    nscan *s = st->data;
    if (n > 0 && nmap_stream_feed(&s->stream, buf->base, (size_t)n, on_host_xml, s) < 0 &&
        !s->cancelled) {
        snprintf(s->errtail, sizeof(s->errtail), "its output is not nmap XML");
        uv_process_kill(&s->proc, SIGTERM);
    }
    host->free(buf->base);
    if (n < 0)
        pipe_done(st);
}

/* stderr: the last line is kept for the error message. */
static void on_err(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    nscan *s = st->data;
    if (n > 0) {
        size_t len = (size_t)n;
        while (len && (buf->base[len - 1] == '\n' || buf->base[len - 1] == '\r'))
            len--;
        const char *line = buf->base;
        for (size_t i = len; i > 0; i--)
            if (buf->base[i - 1] == '\n') {
                line = buf->base + i;
                break;
            }
        size_t l = len - (size_t)(line - buf->base);
        if (l)
            snprintf(s->errtail, sizeof(s->errtail), "%.*s", (int)(l > 400 ? 400 : l), line);
    }
    host->free(buf->base);
    if (n < 0)
        pipe_done(st);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    nscan *s = req->data;
    if (!uv_is_closing((uv_handle_t *)&s->in))
        uv_close((uv_handle_t *)&s->in, on_closed); /* EOF: nmap starts */
}

/* ---- starting a child --------------------------------------------------------------------------
 */

/* The spec's CIDR blocks of one family, one a line, for nmap's -iL -. */
static char *targets_of(const json_t *spec, int family, uint64_t *count)
{
    size_t cap = 64, len = 0, i;
    char *out = host->alloc(cap);
    json_t *t;
    *count = 0;
    json_array_foreach(json_object_get(spec, "targets"), i, t)
    {
        const char *cidr = json_string_value(t);
        if (!out || !cidr || (strchr(cidr, ':') != NULL) != (family == 1))
            continue;
        size_t n = strlen(cidr);
        if (len + n + 2 > cap) {
            cap = (len + n + 2) * 2;
            char *grown = host->realloc(out, cap);
            if (!grown) {
                host->free(out);
                return NULL;
            }
            out = grown;
        }
        memcpy(out + len, cidr, n);
        out[len + n] = '\n';
        len += n + 1;
        const char *slash = strchr(cidr, '/');
        int bits = (family ? 128 : 32) - (slash ? atoi(slash + 1) : (family ? 128 : 32));
        *count += bits >= 63 ? (uint64_t)1 << 62 : (uint64_t)1 << bits;
    }
    if (out)
        out[len] = '\0';
    return out;
}

typedef struct args {
    char *v[ARGS_MAX];
    char text[6][4096];
    int n;
} args;

static void add(args *a, const char *s)
{
    if (a->n < ARGS_MAX - 1)
        a->v[a->n++] = (char *)s;
    a->v[a->n] = NULL;
}

static void build_args(nscan *s, args *a)
{
    const json_t *spec = s->spec, *opts = json_object_get(spec, "options");
    size_t o = 0;
    for (size_t i = 0; i < s->nports && o < sizeof(a->text[0]) - 8; i++)
        o += (size_t)snprintf(a->text[0] + o, sizeof(a->text[0]) - o, "%s%u", i ? "," : "",
                              s->ports[i]);
    json_int_t timeout = json_integer_value(json_object_get(spec, "timeout_ms"));
    snprintf(a->text[1], sizeof(a->text[1]), "%lld",
             (long long)json_integer_value(json_object_get(spec, "rate")));
    snprintf(a->text[2], sizeof(a->text[2]), "%lld",
             (long long)json_integer_value(json_object_get(spec, "concurrency")));
    snprintf(a->text[3], sizeof(a->text[3]), "%lldms", (long long)timeout);
    snprintf(a->text[4], sizeof(a->text[4]), "banner.timeout=%lldms", (long long)timeout);
    json_int_t timing = json_integer_value(json_object_get(opts, "timing"));
    snprintf(a->text[5], sizeof(a->text[5]), "-T%d",
             json_object_get(opts, "timing") ? (int)timing : 4);
    const char *fixed[] = {s->p->path,      "-sT",
                           "-Pn",           "-n",
                           "-oX",           "-",
                           "--stats-every", "1s",
                           "--max-retries", "1",
                           "-iL",           "-",
                           a->text[5],      "-p",
                           a->text[0],      "--max-rate",
                           a->text[1],      "--max-parallelism",
                           a->text[2],      "--max-rtt-timeout",
                           a->text[3]};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        add(a, fixed[i]);
    bool scripts = s->p->cfg.scripts && !json_is_false(json_object_get(opts, "scripts"));
    if (scripts) {
        add(a, "--script");
        add(a, "banner,ssh-hostkey");
        add(a, "--script-args");
        add(a, a->text[4]);
    }
    if (s->family == 1)
        add(a, "-6");
}

static int spawn(nscan *s)
{
    uv_loop_t *loop = host->loop();
    uv_pipe_init(loop, &s->in, 0);
    uv_pipe_init(loop, &s->out, 0);
    uv_pipe_init(loop, &s->err, 0);
    s->in.data = s->out.data = s->err.data = s->proc.data = s->wreq.data = s;
    args a = {.n = 0};
    build_args(s, &a);
    uv_stdio_container_t stdio[3] = {
        {UV_CREATE_PIPE | UV_READABLE_PIPE, {.stream = (uv_stream_t *)&s->in}},
        {UV_CREATE_PIPE | UV_WRITABLE_PIPE, {.stream = (uv_stream_t *)&s->out}},
        {UV_CREATE_PIPE | UV_WRITABLE_PIPE, {.stream = (uv_stream_t *)&s->err}},
    };
    uv_process_options_t o = {.exit_cb = on_child_exit,
                              .file = s->p->path,
                              .args = a.v,
                              .stdio_count = 3,
                              .stdio = stdio};
    int rc = uv_spawn(loop, &s->proc, &o);
    s->open = rc == 0 ? 4 : 3;
    if (rc < 0) { /* the pipes close; the process handle was never made */
        uv_close((uv_handle_t *)&s->in, on_closed);
        uv_close((uv_handle_t *)&s->out, on_closed);
        uv_close((uv_handle_t *)&s->err, on_closed);
        snprintf(s->errtail, sizeof(s->errtail), "cannot run %.200s: %s", s->p->path,
                 uv_strerror(rc));
        s->exit_status = 127;
        return rc;
    }
    s->running = true;
    uv_buf_t buf = uv_buf_init(s->targets, (unsigned)strlen(s->targets));
    uv_read_start((uv_stream_t *)&s->out, on_alloc, on_out);
    uv_read_start((uv_stream_t *)&s->err, on_alloc, on_err);
    if (uv_write(&s->wreq, (uv_stream_t *)&s->in, &buf, 1, on_written) < 0)
        uv_close((uv_handle_t *)&s->in, on_closed);
    return 0;
}

static void start_family(nscan *s)
{
    uint64_t n;
    s->exited = false;
    s->exit_status = 0;
    s->term_signal = 0;
    s->stream.percent = 0;
    s->targets = targets_of(s->spec, s->family, &n);
    if (!s->targets) {
        snprintf(s->errtail, sizeof(s->errtail), "out of memory");
        s->exit_status = 1;
        child_over(s);
        return;
    }
    spawn(s);
}

/* ---- the scanner -------------------------------------------------------------------------------
 */

static int nmap_scan(void *state, const char *spec_json, opsc_scan_host_cb on_host,
                     opsc_scan_done_cb done, void *ud, opsc_scan **out)
{
    nscan *s = host->calloc(1, sizeof(*s));
    if (!s)
        return OPSC_ENOMEM;
    *s = (nscan){.p = state, .on_host = on_host, .done = done, .ud = ud};
    s->spec = json_loads(spec_json, 0, NULL);
    json_t *ports = json_object_get(s->spec, "ports");
    s->nports = json_array_size(ports);
    s->ports = host->calloc(s->nports ? s->nports : 1, sizeof(uint16_t));
    for (size_t i = 0; s->ports && i < s->nports; i++)
        s->ports[i] = (uint16_t)json_integer_value(json_array_get(ports, i));
    s->total = (uint64_t)json_integer_value(json_object_get(s->spec, "total"));
    for (int f = 0; f < 2; f++) {
        uint64_t n = 0;
        char *t = targets_of(s->spec, f, &n);
        host->free(t);
        s->family_total[f] = n;
    }
    if (!s->spec || !s->ports || !s->nports) {
        json_decref(s->spec);
        host->free(s->ports);
        host->free(s);
        return OPSC_EINVAL;
    }
    s->family = s->family_total[0] ? 0 : 1;
    start_family(s); /* a failed spawn ends through the close callbacks, never from here */
    *out = (opsc_scan *)s;
    return 0;
}

static void nmap_cancel(opsc_scan *scan)
{
    nscan *s = (nscan *)scan;
    if (s->cancelled)
        return;
    s->cancelled = true;
    if (s->running && !s->exited)
        uv_process_kill(&s->proc, SIGTERM);
}

static void nmap_progress(opsc_scan *scan, opsc_scan_progress *out)
{
    nscan *s = (nscan *)scan;
    uint64_t now =
        s->running ? (uint64_t)(s->stream.percent / 100.0 * (double)s->family_total[s->family]) : 0;
    out->total = s->total;
    out->done = s->family_done + now;
    if (out->done > s->total)
        out->done = s->total;
    out->probes = out->done * s->nports;
}

static const opsc_scanner scanner = {
    .size = sizeof(opsc_scanner),
    .name = "nmap",
    .summary = "Debian's nmap as a child process: a TCP connect scan (-sT) with its banner and "
               "ssh-hostkey scripts, XML read as it streams",
    .spec_schema = NMAP_SCHEMA_nmap_options,
    .scan = nmap_scan,
    .cancel = nmap_cancel,
    .progress = nmap_progress,
};

/* ---- the plugin ---------------------------------------------------------------------------------
 */

static int nmap_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    host = api;
    nplugin *p = api->calloc(1, sizeof(*p));
    if (!p)
        return OPSC_ENOMEM;
    char err[512];
    int rc = api->config_bind(cfg, settings_map, &p->cfg, err, sizeof(err));
    if (rc < 0) {
        api->log("discovery-nmap", OPSC_LOG_ERROR, "%s", err);
    } else if (!find_nmap(p->cfg.nmap, p->path, sizeof(p->path))) {
        api->log("discovery-nmap", OPSC_LOG_ERROR,
                 "nmap is not installed: no executable '%s'%s (install Debian's nmap package, or "
                 "set [plugin.discovery-nmap] nmap)",
                 p->cfg.nmap, strchr(p->cfg.nmap, '/') ? "" : " in PATH");
        rc = OPSC_ENOENT;
    }
    if (rc == 0)
        rc = api->register_scanner(&scanner, p);
    if (rc < 0) {
        api->free(p);
        return rc;
    }
    api->log("discovery-nmap", OPSC_LOG_INFO, "using %s", p->path);
    *state = p;
    return 0;
}

static void nmap_shutdown(void *state)
{
    host->free(state);
}

OPSC_PLUGIN_DEFINE("discovery-nmap", "1.0.0", OPSC_KIND_SCANNER,
                   "nmap scanner: Debian's nmap as a child process, its XML as host records",
                   "Apache-2.0", nmap_init, nmap_shutdown)
