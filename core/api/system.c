/* system.c - /health, /ready, /metrics and the /api/v1 system routes (system, log level, plugins,
 * OpenAPI). */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "build_config.h"
#include "core.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "plugin_host.h"
#include "rest.h"
#include "store.h"
#include "util.h"

static struct opsc_core *core_of(http_req *req)
{
    return http_req_app(req);
}

/* Liveness: no JSON encoding, no allocation. */
static int h_health(http_req *req)
{
    static const char body[] = "{\"status\":\"ok\"}";
    http_respond_text(req, 200, "application/json", body, sizeof(body) - 1);
    return HTTP_DONE;
}

static int h_ready(http_req *req)
{
    struct opsc_core *c = core_of(req);
    if (c->ready && store_full(c->store)) { /* it serves reads and logins, nothing else */
        http_respond_error(req, 503, "store_full",
                           json_pack("{s:b, s:b, s:s}", "store_open", 1, "store_full", 1,
                                     "data_dir", c->cfg.store.data_dir),
                           "the data directory %s is full: writes are refused until space is "
                           "freed there",
                           c->cfg.store.data_dir);
    } else if (c->ready) {
        static const char body[] = "{\"status\":\"ready\"}";
        http_respond_text(req, 200, "application/json", body, sizeof(body) - 1);
    } else {
        http_respond_error(req, 503, "not_ready",
                           json_pack("{s:b, s:b, s:b}", "store_open", c->store != NULL,
                                     "plugins_loaded", c->plugins != NULL, "stopping", c->stopping),
                           c->stopping ? "the daemon is stopping" : "the daemon is starting");
    }
    return HTTP_DONE;
}

static int h_metrics(http_req *req)
{
    strbuf out = STRBUF_INIT;
    metrics_render(core_of(req)->metrics, &out);
    if (out.oom)
        http_respond_error(req, 500, "internal", NULL, "out of memory rendering metrics");
    else
        http_respond_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.buf, out.len);
    sb_free(&out);
    return HTTP_DONE;
}

static int h_system(http_req *req)
{
    struct opsc_core *c = core_of(req);
    char started[RFC3339_LEN], abi[16];
    rfc3339_format(c->started_ms, started);
    snprintf(abi, sizeof(abi), "%d.%d", OPSC_ABI_MAJOR, OPSC_ABI_MINOR);
    plugin_host *h = c->plugins;
    size_t n[REG__COUNT] = {0};
    for (int k = 0; h && k < REG__COUNT; k++)
        n[k] = plugin_host_count(h, (enum plugin_reg_kind)k);
    json_t *body = json_pack(
        "{s:s, s:s, s:s, s:f, s:b, s:{s:I, s:I}, s:I, s:I, s:I, s:I, s:I}", "version", OPSC_VERSION,
        "plugin_abi", abi, "started_at", started, "uptime_s", (double)core_uptime_ms(c) / 1000.0,
        "ready", c->ready, "plugins", "loaded", (json_int_t)(h ? plugin_host_loaded(h) : 0),
        "refused", (json_int_t)(h ? plugin_host_refused(h) : 0), "step_libraries",
        (json_int_t)n[REG_STEPLIB], "transports", (json_int_t)n[REG_TRANSPORT], "notifiers",
        (json_int_t)n[REG_NOTIFIER], "scanners", (json_int_t)n[REG_SCANNER], "auth_providers",
        (json_int_t)n[REG_AUTH]);
    http_respond_json(req, 200, body);
    return HTTP_DONE;
}

static int h_plugins(http_req *req)
{
    struct opsc_core *c = core_of(req);
    http_respond_json(req, 200,
                      rest_hide_paths(req, c->plugins ? plugin_host_list_json(c->plugins)
                                                      : json_pack("{s:[]}", "items")));
    return HTTP_DONE;
}

static int h_openapi(http_req *req)
{
    http_respond_json(req, 200, openapi_document(core_of(req)->http));
    return HTTP_DONE;
}

static int h_log_level(http_req *req)
{
    json_t *body = http_req_json(req);
    json_t *v = json_object_get(body, "level");
    int level = json_is_string(v) ? log_level_parse(json_string_value(v)) : -1;
    if (level < 0 || json_object_size(body) != 1) {
        http_respond_error(
            req, 400, "invalid",
            json_pack("{s:[s, s, s, s]}", "valid_levels", "error", "warn", "info", "debug"),
            "expected {\"level\": \"error\" | \"warn\" | \"info\" | \"debug\"}");
        return HTTP_DONE;
    }
    log_warn("api", "log level set to %s through the API (until the next reload)",
             log_level_name(level));
    log_set_level(level);
    http_respond_json(req, 200, json_pack("{s:s}", "level", log_level_name(level)));
    return HTTP_DONE;
}

#define LEVEL_SCHEMA                                                                               \
    "{\"type\": \"object\", \"required\": [\"level\"], \"additionalProperties\": false, "          \
    "\"properties\": {\"level\": {\"type\": \"string\", "                                          \
    "\"enum\": [\"error\", \"warn\", \"info\", \"debug\"]}}}"

#define STATUS_SCHEMA "{\"type\": \"object\", \"properties\": {\"status\": {\"type\": \"string\"}}}"

static const char system_schema[] =
    "{\"type\": \"object\", \"properties\": {"
    "\"version\": {\"type\": \"string\"}, \"plugin_abi\": {\"type\": \"string\"},"
    "\"started_at\": {\"type\": \"string\", \"format\": \"date-time\"},"
    "\"uptime_s\": {\"type\": \"number\"}, \"ready\": {\"type\": \"boolean\"},"
    "\"plugins\": {\"type\": \"object\", \"properties\": {"
    "\"loaded\": {\"type\": \"integer\"}, \"refused\": {\"type\": \"integer\"}}},"
    "\"step_libraries\": {\"type\": \"integer\"}, \"transports\": {\"type\": \"integer\"},"
    "\"notifiers\": {\"type\": \"integer\"}, \"scanners\": {\"type\": \"integer\"},"
    "\"auth_providers\": {\"type\": \"integer\"}}}";

static const char plugins_schema[] =
    "{\"type\": \"object\", \"properties\": {\"items\": {\"type\": \"array\", \"items\": {"
    "\"type\": \"object\", \"properties\": {"
    "\"name\": {\"type\": \"string\"}, \"version\": {\"type\": \"string\"},"
    "\"state\": {\"type\": \"string\", \"enum\": [\"loaded\", \"refused\", \"disabled\"]},"
    "\"kinds\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}},"
    "\"reason\": {\"type\": \"string\"}}}}}}";

static const http_route system_routes[] = {
    {"GET", "/health", ROLE_PUBLIC, h_health, 0, "system", "Liveness: the process answers", NULL,
     STATUS_SCHEMA},
    {"GET", "/ready", ROLE_PUBLIC, h_ready, 0, "system",
     "Readiness: store open and plugins loaded (503 otherwise)", NULL, STATUS_SCHEMA},
    {"GET", "/metrics", ROLE_PUBLIC, h_metrics, 0, "system",
     "Prometheus metrics (text exposition format 0.0.4)", NULL, NULL},
    {"GET", "/api/v1/system", ROLE_VIEWER, h_system, 0, "system",
     "Version, uptime and what the plugins provide", NULL, system_schema},
    {"GET", "/api/v1/plugins", ROLE_VIEWER, h_plugins, 0, "system",
     "Plugins: loaded, disabled and refused (with the reason)", NULL, plugins_schema},
    {"PUT", "/api/v1/system/log", ROLE_ADMIN, h_log_level, HTTP_ROUTE_JSON_BODY, "system",
     "Set the log level until the next reload (SIGHUP)", LEVEL_SCHEMA, LEVEL_SCHEMA},
    {"GET", "/api/v1/openapi.json", ROLE_PUBLIC, h_openapi, HTTP_ROUTE_HIDDEN, "system",
     "This document", NULL, NULL},
};

static void observe(http_req *req, const http_route *route, int status, void *ud)
{
    struct opsc_core *c = ud;
    const char *method = http_req_method(req);
    metrics_http_observe(c->metrics, *method ? method : "unknown",
                         route ? route->pattern : "unmatched", status, http_req_seconds(req));
}

static void collect_core(strbuf *out, void *ud)
{
    struct opsc_core *c = ud;
    metrics_single(out, "opsc_uptime_seconds", "gauge", "Seconds since the daemon started.",
                   (double)core_uptime_ms(c) / 1000.0);
    metrics_single(out, "opsc_ready", "gauge", "1 when the daemon is ready.", c->ready);
    if (c->http) {
        http_stats st;
        http_server_stats(c->http, &st);
        metrics_single(out, "opsc_http_connections_open", "gauge", "Client connections open.",
                       (double)st.connections_open);
        metrics_single(out, "opsc_http_connections_accepted_total", "counter",
                       "Client connections accepted.", (double)st.connections_accepted);
        metrics_single(out, "opsc_http_connections_refused_total", "counter",
                       "Connections answered 503 (over max_connections).",
                       (double)st.connections_refused);
        metrics_single(out, "opsc_http_sse_streams", "gauge", "Event streams open.",
                       (double)st.sse_open);
        metrics_single(out, "opsc_tls_handshakes_total", "counter", "TLS handshakes completed.",
                       (double)st.tls_handshakes);
        metrics_single(out, "opsc_tls_resumed_total", "counter",
                       "TLS handshakes that resumed a session.", (double)st.tls_resumed);
        metrics_single(out, "opsc_tls_handshake_failures_total", "counter",
                       "TLS handshakes that failed or timed out.", (double)st.tls_failed);
    }
    store_stats ss;
    if (c->store && store_stats_get(c->store, &ss) == 0) {
        metrics_single(out, "opsc_store_map_size_bytes", "gauge", "LMDB map size.",
                       (double)ss.map_size);
        metrics_single(out, "opsc_store_used_bytes", "gauge", "LMDB pages in use, in bytes.",
                       (double)ss.used_bytes);
        metrics_single(out, "opsc_store_file_bytes", "gauge", "Size of data.mdb.",
                       (double)ss.file_bytes);
        metrics_single(out, "opsc_store_schema_version", "gauge", "Store schema version.",
                       ss.schema_version);
    }
    if (c->plugins) {
        metrics_single(out, "opsc_plugins_loaded", "gauge", "Plugins loaded.",
                       (double)plugin_host_loaded(c->plugins));
        metrics_single(out, "opsc_plugins_refused", "gauge", "Plugins refused.",
                       (double)plugin_host_refused(c->plugins));
    }
}

int api_system_register(struct opsc_core *c)
{
    int rc =
        http_add_routes(c->http, system_routes, sizeof(system_routes) / sizeof(system_routes[0]));
    if (rc == 0)
        rc = metrics_add_collector(c->metrics, collect_core, c);
    if (rc == 0)
        http_server_set_done(c->http, observe, c);
    return rc;
}
