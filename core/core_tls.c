/* core_tls.c - the [server] TLS keys turned into the HTTP server's TLS, at start and on SIGHUP. */
#include <stdio.h>

#include <opsc/errors.h>

#include "core.h"
#include "http.h"
#include "log.h"

/* A certificate this close to its end is worth a warning at every load. */
#define EXPIRY_WARN_S (30 * 86400)

bool core_tls_configured(const struct config *cfg)
{
    return *cfg->server.tls_cert || *cfg->server.tls_key;
}

int core_tls_load(const struct config *cfg, http_tls **out, char *err, size_t errlen)
{
    const struct server_cfg *s = &cfg->server;
    http_tls_opts o = {s->tls_cert, s->tls_key, s->tls_client_ca, s->tls_client_required,
                       s->tls_min_version == 1 ? 13 : 12};
    char why[1024];
    enum http_tls_file which = 0;
    *out = NULL;
    if (s->tls_client_required && !*s->tls_client_ca) {
        char origin[512];
        cfg_origin(cfg->file, "server", "tls_client_required", origin, sizeof(origin));
        snprintf(err, errlen,
                 "%s: [server] tls_client_required: needs tls_client_ca, the CAs that client "
                 "certificates are verified against",
                 origin);
        return OPSC_EINVAL;
    }
    int rc = http_tls_load(out, &o, why, sizeof(why), &which);
    if (rc < 0) {
        const char *key = which == HTTP_TLS_KEY         ? "tls_key"
                          : which == HTTP_TLS_CLIENT_CA ? "tls_client_ca"
                                                        : "tls_cert";
        char origin[512];
        cfg_origin(cfg->file, "server", key, origin, sizeof(origin));
        snprintf(err, errlen, "%s: [server] %s: %s", origin, key, why);
        return rc;
    }
    char line[1024];
    http_tls_describe(*out, line, sizeof(line));
    log_info("http", "TLS: %s", line);
    int64_t left = http_tls_expires_in(*out);
    if (left < EXPIRY_WARN_S)
        log_warn("http", "the TLS certificate %s expires in %lld hours: renew it, then SIGHUP",
                 s->tls_cert, (long long)(left / 3600));
    return 0;
}

static bool has_tls_listener(const http_server *srv)
{
    bool tls = false;
    for (int i = 0; http_server_listener_port(srv, i, &tls) >= 0; i++)
        if (tls)
            return true;
    return false;
}

void core_tls_ports(const http_server *srv, const struct config *cfg, char *buf, size_t n)
{
    bool tls = false;
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0, port; (port = http_server_listener_port(srv, i, &tls)) >= 0 && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%d%s", i ? ", " : "", port, tls ? " tls" : "");
    if (core_tls_configured(cfg) && !has_tls_listener(srv))
        log_warn("core", "[server] tls_cert is set but no listen address is marked tls: "
                         "nothing is served over HTTPS (listen = ADDR:PORT tls)");
}

void core_tls_reload(struct opsc_core *c, const struct config *fresh)
{
    if (!c->http || !has_tls_listener(c->http))
        return;
    if (!core_tls_configured(fresh)) {
        log_error("core", "SIGHUP: tls_cert and tls_key are gone from the configuration: the TLS "
                          "listeners keep their certificate until a restart");
        return;
    }
    char err[1536];
    http_tls *tls = NULL;
    if (core_tls_load(fresh, &tls, err, sizeof(err)) < 0) {
        log_error("core", "SIGHUP: TLS not reloaded, the certificate in use stays: %s", err);
        return;
    }
    http_server_set_tls(c->http, tls);
    log_info("core", "SIGHUP: TLS certificate reloaded (open connections keep theirs)");
}
