/* https.c - plain HTTP that must go to HTTPS: the redirect of redirect_http, the error of a TLS
 * port. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "http_internal.h"

/* Liveness and readiness probes of a load balancer or the service manager
 * stay on plain HTTP: they carry no secret. */
static bool probe(const char *path)
{
    return strcmp(path, "/health") == 0 || strcmp(path, "/ready") == 0;
}

/* The host of a Host header ("h", "h:p", "[v6]:p") without its port, when
 * it holds only what a host name or address may. */
static bool host_part(const char *host, char *out, size_t n)
{
    if (!host || !*host)
        return false;
    size_t len;
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        if (!end)
            return false;
        len = (size_t)(end - host) + 1;
    } else {
        len = strcspn(host, ":");
    }
    if (len == 0 || len >= n)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)host[i]) && !strchr(".-_[]:", host[i]))
            return false;
    memcpy(out, host, len);
    out[len] = '\0';
    return true;
}

/* ":port" of the Host header on a TLS port (the client's own way to reach
 * it, maybe through NAT); the first TLS listener's from a plain one. */
static void port_part(http_conn *c, const char *after_host, char *out, size_t n)
{
    if (c->tls_port) {
        size_t digits = after_host[0] == ':' ? strspn(after_host + 1, "0123456789") : 0;
        if (digits && digits <= 5 && !after_host[1 + digits])
            snprintf(out, n, "%s", after_host);
        return;
    }
    int port = listeners_tls_port(c->srv);
    if (port != 443)
        snprintf(out, n, ":%d", port);
}

/* https://host[:port]/target. */
static bool location(http_conn *c, http_req *req, char *out, size_t n)
{
    char host[256];
    const char *header = http_req_header(req, "Host");
    if (!host_part(header, host, sizeof(host)))
        return false;
    char portpart[8] = "";
    port_part(c, header + strlen(host), portpart, sizeof(portpart));
    const char *target = req_at(req, req->url_off);
    if (target[0] != '/')
        target = "/";
    return (size_t)snprintf(out, n, "https://%s%s%s", host, portpart, target) < n;
}

bool https_answer(http_conn *c, http_req *req)
{
    if (!c->tls_port && probe(http_req_path(req)))
        return false;
    c->close_after = true;
    char loc[2048];
    bool known = location(c, req, loc, sizeof(loc));
    if (known && c->srv->opts.redirect_http) {
        http_set_header(req, "Location", loc);
        http_respond_error(req, req->head || strcmp(req->method, "GET") == 0 ? 301 : 308,
                           "https_required", NULL, "this server is served over HTTPS: %s", loc);
    } else if (c->tls_port) {
        http_respond_error(req, 400, "https_required", NULL,
                           "this port speaks HTTPS, not plain HTTP: use %s",
                           known ? loc : "https://");
    } else {
        http_respond_error(req, 400, "https_required", NULL,
                           "this server is served over HTTPS on port %d; the request names no "
                           "Host to send it to",
                           listeners_tls_port(c->srv));
    }
    return true;
}
