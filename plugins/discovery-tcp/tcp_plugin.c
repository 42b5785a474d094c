/* tcp_plugin.c - discovery-tcp: the "tcp" scanner (TCP connect, SSH banner and host key,
 * WS-Management Identify, reverse names, ICMP where allowed), all on the host's loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <curl/curl.h>

#include "tcp_internal.h"
#include "tcp_options.h"

const opsc_host_api *tcp_host;

typedef struct tplugin {
    tcp_settings cfg;
    tscan **scans; /* running, so shutdown can stop them */
    size_t n, cap;
} tplugin;

static tplugin *plugin;

static const opsc_cfg_entry settings_map[] = {
    {"rdns", OPSC_CFG_BOOL, "true", 0, -1, NULL, 0, offsetof(tcp_settings, rdns),
     "look up the reverse DNS name of every host found"},
    {"rdns_timeout", OPSC_CFG_DURATION, "2s", 100, 60000, NULL, 0,
     offsetof(tcp_settings, rdns_timeout_ms), "a reverse lookup is given up after this"},
    {"max_concurrency", OPSC_CFG_INT, "4096", 1, 65536, NULL, 0,
     offsetof(tcp_settings, max_concurrency),
     "connections one scan keeps in flight at most, whatever it asks (and never more than the "
     "file descriptor limit allows)"},
    {"wsman_path", OPSC_CFG_STRING, "/wsman", 0, -1, NULL, 0, offsetof(tcp_settings, wsman_path),
     "the WS-Management path Identify is sent to"},
    {NULL},
};

/* ---- the scanner
 * ---------------------------------------------------------------------------------- */

static void forget(tscan *s)
{
    for (size_t i = 0; i < plugin->n; i++)
        if (plugin->scans[i] == s) {
            plugin->scans[i] = plugin->scans[--plugin->n];
            return;
        }
}

static int remember(tscan *s)
{
    if (plugin->n == plugin->cap) {
        size_t cap = plugin->cap ? plugin->cap * 2 : 8;
        tscan **v = tcp_host->realloc(plugin->scans, cap * sizeof(*v));
        if (!v)
            return OPSC_ENOMEM;
        plugin->scans = v;
        plugin->cap = cap;
    }
    plugin->scans[plugin->n++] = s;
    return 0;
}

void tcp_scan_over(tscan *s)
{
    if (plugin)
        forget(s);
}

/* Descriptors left for the daemon's own use: never all of them to one scan. */
static int fd_room(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return 65536;
    return rl.rlim_cur > 512 ? (int)(rl.rlim_cur - 256) / 2 : 64;
}

static void setup_icmp(tscan *s)
{
    s->icmp_sock = ticmp_open(s, s->icmp_why, sizeof(s->icmp_why));
    s->icmp_note = s->icmp_sock ? "sent" : s->icmp_why;
    if (!s->icmp_sock)
        tcp_host->log("discovery-tcp", OPSC_LOG_INFO, "ICMP asked for, not used: %s", s->icmp_why);
}

static void on_start(uv_timer_t *t)
{
    tscan_pump(t->data);
}

static int tcp_scan(void *state, const char *spec_json, opsc_scan_host_cb on_host,
                    opsc_scan_done_cb done, void *ud, opsc_scan **out)
{
    tplugin *p = state;
    tscan *s = tcp_host->calloc(1, sizeof(*s));
    if (!s || remember(s) < 0) {
        tcp_host->free(s);
        return OPSC_ENOMEM;
    }
    *s = (tscan){
        .cfg = &p->cfg, .loop = tcp_host->loop(), .on_host = on_host, .done = done, .ud = ud};
    int rc = tscan_spec(s, spec_json);
    if (rc == 0 && s->concurrency > fd_room())
        s->concurrency = fd_room();
    if (rc == 0 && twsman_new(&s->wsman) == OPSC_ENOMEM)
        rc = OPSC_ENOMEM;
    if (rc < 0) {
        tcp_host->log("discovery-tcp", OPSC_LOG_WARN, "scan refused: %s", s->error);
        forget(s);
        json_decref(s->http_ports);
        json_decref(s->https_ports);
        tcp_host->free(s->blocks);
        tcp_host->free(s->ports);
        tcp_host->free(s);
        return rc;
    }
    uv_timer_init(s->loop, &s->pump);
    uv_timer_init(s->loop, &s->deadline);
    s->pump.data = s->deadline.data = s;
    s->handles = 2;
    if (s->icmp)
        setup_icmp(s);
    uv_timer_start(&s->pump, on_start, 0, 0); /* the first probes go on the next turn */
    *out = (opsc_scan *)s;
    return 0;
}

static void tcp_cancel(opsc_scan *scan)
{
    tscan_end((tscan *)scan, OPSC_ECANCELED, NULL);
}

static void tcp_progress(opsc_scan *scan, opsc_scan_progress *out)
{
    tscan *s = (tscan *)scan;
    out->done = s->ndone;
    out->total = s->total;
    out->probes = s->probes;
    if (out->size >= offsetof(opsc_scan_progress, icmp) + sizeof(out->icmp))
        out->icmp = s->icmp_note;
}

static const opsc_scanner scanner = {
    .size = sizeof(opsc_scanner),
    .name = "tcp",
    .summary = "TCP connect scan on the daemon's loop: open, closed and filtered ports at a "
               "bounded rate; SSH banner and host key; WS-Management Identify; reverse names; "
               "ICMP echo where unprivileged ICMP is allowed",
    .spec_schema = TCP_SCHEMA_tcp_options,
    .scan = tcp_scan,
    .cancel = tcp_cancel,
    .progress = tcp_progress,
};

/* ---- the plugin
 * ----------------------------------------------------------------------------------- */

static int tcp_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    tcp_host = api;
    tplugin *p = api->calloc(1, sizeof(*p));
    if (!p)
        return OPSC_ENOMEM;
    char err[512];
    int rc = api->config_bind(cfg, settings_map, &p->cfg, err, sizeof(err));
    if (rc < 0)
        api->log("discovery-tcp", OPSC_LOG_ERROR, "%s", err);
    /* Process-wide and not thread-safe: here, on the loop thread, at load. */
    if (rc == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        api->log("discovery-tcp", OPSC_LOG_ERROR, "libcurl would not initialise");
        rc = OPSC_ENOMEM;
    }
    if (rc == 0)
        rc = api->register_scanner(&scanner, p);
    if (rc < 0) {
        api->free(p);
        return rc;
    }
    plugin = p;
    *state = p;
    return 0;
}

/* Scans still running when the daemon goes (a second signal): they stop, quietly. */
static void tcp_shutdown(void *state)
{
    tplugin *p = state;
    for (size_t i = 0; i < p->n; i++) {
        p->scans[i]->done = NULL;
        p->scans[i]->on_host = NULL;
        tscan_end(p->scans[i], OPSC_ECANCELED, NULL);
    }
    plugin = NULL;
    tcp_host->free(p->scans);
    tcp_host->free(p);
}

OPSC_PLUGIN_DEFINE("discovery-tcp", "1.0.0", OPSC_KIND_SCANNER,
                   "TCP connect scanner: ports, SSH host keys, WinRM Identify, names", "Apache-2.0",
                   tcp_init, tcp_shutdown)
