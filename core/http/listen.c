/* listen.c - the addresses the server listens on: "127.0.0.1:8080, [::]:8443 tls". */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <opsc/errors.h>

#include "http_internal.h"
#include "log.h"

/* "1.2.3.4:80", "[::1]:80" or "localhost:80". */
static int parse_addr(const char *text, struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text || (size_t)(colon - text) >= sizeof(host))
        return OPSC_EINVAL;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return OPSC_EINVAL;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (n < 3 || host[n - 1] != ']')
            return OPSC_EINVAL;
        host[n - 1] = '\0';
        return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss) == 0 ? 0 : OPSC_EINVAL;
    }
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 ? 0 : OPSC_EINVAL;
}

static void bad_entry(char *err, size_t errlen, const char *entry, const char *why)
{
    snprintf(err, errlen, "cannot listen on %s: %s", entry, why);
}

/* One entry: "ADDR:PORT" or "ADDR:PORT tls", blanks around. */
static int parse_entry(http_listener *l, char *entry, char *err, size_t errlen)
{
    char *word = entry + strspn(entry, " \t");
    size_t n = strcspn(word, " \t");
    char *flag = word + n + strspn(word + n, " \t");
    word[n] = '\0';
    if (!*word) {
        bad_entry(err, errlen, "\"\"", "an empty address in the list");
        return OPSC_EINVAL;
    }
    size_t flen = strlen(flag);
    while (flen && isspace((unsigned char)flag[flen - 1]))
        flag[--flen] = '\0';
    if (*flag && strcmp(flag, "tls") != 0) {
        bad_entry(err, errlen, word, "after the address only \"tls\" may follow");
        return OPSC_EINVAL;
    }
    if (n >= sizeof(l->text) || parse_addr(word, &l->addr) < 0) {
        bad_entry(err, errlen, word, "expected IPv4:port, [IPv6]:port or localhost:port");
        return OPSC_EINVAL;
    }
    snprintf(l->text, sizeof(l->text), "%s", word);
    l->tls = *flag != '\0';
    return 0;
}

int listeners_parse(http_server *srv, char *err, size_t errlen)
{
    char copy[1024];
    if (strlen(srv->opts.listen) >= sizeof(copy)) {
        bad_entry(err, errlen, "(listen)", "the list is too long");
        return OPSC_EINVAL;
    }
    snprintf(copy, sizeof(copy), "%s", srv->opts.listen);
    srv->nlisteners = 0;
    for (char *e = copy, *comma; e; e = comma ? comma + 1 : NULL) {
        comma = strchr(e, ',');
        if (comma)
            *comma = '\0';
        if (srv->nlisteners == HTTP_MAX_LISTENERS) {
            bad_entry(err, errlen, srv->opts.listen, "more than 8 addresses");
            return OPSC_EINVAL;
        }
        http_listener *l = &srv->listeners[srv->nlisteners];
        memset(l, 0, sizeof(*l));
        if (parse_entry(l, e, err, errlen) < 0)
            return OPSC_EINVAL;
        l->srv = srv;
        srv->nlisteners++;
    }
    if (srv->nlisteners == 0) {
        bad_entry(err, errlen, "\"\"", "no address given");
        return OPSC_EINVAL;
    }
    return 0;
}

static bool loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

static int start_one(http_server *srv, http_listener *l, uv_connection_cb cb, char *err,
                     size_t errlen)
{
    uv_tcp_init(srv->loop, &l->tcp);
    l->tcp.data = l;
    l->init = true;
    srv->handles_open++;
    /* [::] stays dual-stack, as it always was: it takes IPv4 clients too. */
    int rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&l->addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 1024, cb);
    if (rc < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", l->text, uv_strerror(rc));
        return rc;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &len) == 0)
        l->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    if (!l->tls && !loopback(&l->addr) && !srv->opts.redirect_http)
        log_warn("http",
                 "*** serving plain HTTP on %s, which is not a loopback address: passwords, "
                 "tokens and credentials cross the network in clear text. Listen with TLS "
                 "(\"%s tls\" and [server] tls_cert, tls_key) or put a TLS proxy in front. ***",
                 l->text, l->text);
    return 0;
}

int listeners_start(http_server *srv, uv_connection_cb cb, char *err, size_t errlen)
{
    for (int i = 0; i < srv->nlisteners; i++) {
        if (srv->listeners[i].tls && !srv->tls) {
            snprintf(err, errlen,
                     "cannot listen on %s with TLS: no certificate ([server] tls_cert, tls_key)",
                     srv->listeners[i].text);
            return OPSC_EINVAL;
        }
    }
    if (srv->opts.redirect_http && listeners_tls_port(srv) == 0 && srv->nlisteners) {
        snprintf(err, errlen, "redirect_http needs a listen address marked tls");
        return OPSC_EINVAL;
    }
    for (int i = 0; i < srv->nlisteners; i++) {
        int rc = start_one(srv, &srv->listeners[i], cb, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void listeners_close(http_server *srv, uv_close_cb cb)
{
    for (int i = 0; i < srv->nlisteners; i++) {
        uv_handle_t *h = (uv_handle_t *)&srv->listeners[i].tcp;
        if (srv->listeners[i].init && !uv_is_closing(h))
            uv_close(h, cb);
    }
}

int listeners_tls_port(const http_server *srv)
{
    for (int i = 0; i < srv->nlisteners; i++)
        if (srv->listeners[i].tls)
            return srv->listeners[i].port ? srv->listeners[i].port : -1;
    return 0;
}
