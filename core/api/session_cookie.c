/* session_cookie.c - the refresh token in an HttpOnly cookie for browser sessions, with the
 * CSRF checks that go with it (see session_cookie.h). */
#include "session_cookie.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

bool cookie_value(const char *header, const char *name, char *out, size_t n)
{
    size_t nlen = strlen(name);
    for (const char *p = header; p && *p;) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, ";");
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t vlen = len - nlen - 1;
            while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            if (vlen + 1 > n)
                return false;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return true;
        }
        p += len;
        if (*p == ';')
            p++;
    }
    return false;
}

bool origin_is_host(const char *origin, const char *host)
{
    if (!origin || !host || !*host)
        return false;
    const char *rest = NULL;
    if (strncasecmp(origin, "http://", 7) == 0)
        rest = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        rest = origin + 8;
    return rest && strcasecmp(rest, host) == 0;
}

bool session_cookie_wanted(http_req *req)
{
    const char *v = http_req_header(req, SESSION_COOKIE_HEADER);
    return v && strcasecmp(v, "cookie") == 0;
}

bool session_cookie_origin_ok(http_req *req)
{
    if (origin_is_host(http_req_header(req, "Origin"), http_req_header(req, "Host")))
        return true;
    http_respond_error(req, 403, "forbidden", NULL,
                       "a cookie session needs an Origin header naming this host");
    return false;
}

/* The page is https: the connection is TLS, the browser said so (Origin), or the TLS proxy
 * in front did. */
static bool over_tls(http_req *req)
{
    if (http_req_tls(req))
        return true;
    const char *origin = http_req_header(req, "Origin");
    const char *proto = http_req_header(req, "X-Forwarded-Proto");
    return (origin && strncasecmp(origin, "https://", 8) == 0) ||
           (proto && strcasecmp(proto, "https") == 0);
}

void session_cookie_set(http_req *req, const char *token, int64_t max_age_s)
{
    char v[256];
    snprintf(v, sizeof(v), "%s=%s; Path=%s; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
             SESSION_COOKIE_NAME, max_age_s > 0 ? token : "", SESSION_COOKIE_PATH,
             (long long)(max_age_s > 0 ? max_age_s : 0), over_tls(req) ? "; Secure" : "");
    http_set_header(req, "Set-Cookie", v);
}

bool session_cookie_token(http_req *req, char *out, size_t n)
{
    return cookie_value(http_req_header(req, "Cookie"), SESSION_COOKIE_NAME, out, n) && *out;
}
