/* router.c - the route table: checking routes as they are added, matching paths to routes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "http_internal.h"
#include "log.h"

static const struct {
    const char *name;
    int method;
} methods[] = {
    {"GET", HTTP_GET},     {"POST", HTTP_POST},     {"PUT", HTTP_PUT},
    {"PATCH", HTTP_PATCH}, {"DELETE", HTTP_DELETE},
};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

static int method_id(const char *name)
{
    for (size_t i = 0; i < NMETHODS; i++)
        if (strcmp(methods[i].name, name) == 0)
            return methods[i].method;
    return -1;
}

/* Next segment of a pattern at *p (just past a '/'): its text and length. */
static size_t seg_len(const char *p)
{
    return strcspn(p, "/");
}

static bool is_param(const char *s, size_t n)
{
    return n >= 3 && s[0] == '{' && s[n - 1] == '}';
}

/* "/a/{id}/b": segments well formed, {name} only as a whole segment. */
static int check_pattern(const char *pattern, uint16_t *nsegs, bool *has_params)
{
    if (!pattern || pattern[0] != '/' || strlen(pattern) > UINT16_MAX)
        return OPSC_EINVAL;
    *nsegs = 0;
    *has_params = false;
    if (strcmp(pattern, "/") == 0)
        return 0;
    for (const char *p = pattern + 1;; p++) {
        size_t n = seg_len(p);
        if (n == 0 || *nsegs == HTTP_MAX_SEGMENTS)
            return OPSC_EINVAL;
        bool param = is_param(p, n);
        if (param && memchr(p + 1, '{', n - 2))
            return OPSC_EINVAL;
        if (!param && (memchr(p, '{', n) || memchr(p, '}', n)))
            return OPSC_EINVAL;
        *has_params |= param;
        (*nsegs)++;
        p += n;
        if (!*p)
            return 0;
    }
}

static bool schema_ok(const char *text)
{
    if (!text)
        return true;
    json_t *j = json_loads(text, 0, NULL);
    bool ok = json_is_object(j);
    json_decref(j);
    return ok;
}

/* Same method and the same shape: literals equal, parameters anywhere alike. */
static bool same_route(const struct route_entry *e, const http_route *r, int method, uint16_t n)
{
    if (e->nsegs != n || e->method != method)
        return false;
    const char *a = e->r->pattern + 1, *b = r->pattern + 1;
    for (uint16_t i = 0; i < n; i++) {
        size_t la = seg_len(a), lb = seg_len(b);
        bool pa = is_param(a, la), pb = is_param(b, lb);
        if (pa != pb || (!pa && (la != lb || memcmp(a, b, la) != 0)))
            return false;
        a += la + 1;
        b += lb + 1;
    }
    return true;
}

static int check_route(http_server *srv, const http_route *r, uint16_t *nsegs, bool *params)
{
    int method = r->method ? method_id(r->method) : -1;
    if (method < 0 || !r->handler || check_pattern(r->pattern, nsegs, params) < 0 ||
        !schema_ok(r->request_schema) || !schema_ok(r->response_schema) || r->role < 0 ||
        r->role > ROLE_ADMIN) {
        log_error("http", "route %s %s: bad method, pattern, handler, role or schema text",
                  r->method ? r->method : "(null)", r->pattern ? r->pattern : "(null)");
        return OPSC_EINVAL;
    }
    for (size_t i = 0; i < srv->nroutes; i++) {
        if (same_route(&srv->routes[i], r, method, *nsegs)) {
            log_error("http", "route %s %s is declared twice (as %s)", r->method, r->pattern,
                      srv->routes[i].r->pattern);
            return OPSC_EEXIST;
        }
    }
    return 0;
}

/* A checked pattern's segments: where each starts, its length, which are parameters. */
static void index_segments(struct route_entry *e)
{
    const char *pattern = e->r->pattern, *p = pattern + 1;
    for (uint16_t i = 0; i < e->nsegs; i++) {
        size_t n = seg_len(p);
        e->seg_at[i] = (uint16_t)(p - pattern);
        e->seg_len[i] = (uint16_t)n;
        if (is_param(p, n))
            e->params |= 1u << i;
        p += n + 1;
    }
}

int http_add_routes(http_server *srv, const http_route *routes, size_t n)
{
    if (srv->nroutes + n > srv->routes_cap) {
        size_t cap = srv->routes_cap ? srv->routes_cap : 32;
        while (cap < srv->nroutes + n)
            cap *= 2;
        struct route_entry *v = realloc(srv->routes, cap * sizeof(*v));
        if (!v)
            return OPSC_ENOMEM;
        srv->routes = v;
        srv->routes_cap = cap;
    }
    size_t first = srv->nroutes;
    for (size_t i = 0; i < n; i++) {
        struct route_entry e = {.r = &routes[i],
                                .method = method_id(routes[i].method ? routes[i].method : "")};
        int rc = check_route(srv, &routes[i], &e.nsegs, &e.has_params);
        if (rc < 0) {
            srv->nroutes = first; /* all or nothing */
            return rc;
        }
        index_segments(&e);
        srv->routes[srv->nroutes++] = e;
    }
    return 0;
}

void http_foreach_route(http_server *srv, void (*fn)(const http_route *r, void *ud), void *ud)
{
    for (size_t i = 0; i < srv->nroutes; i++)
        fn(srv->routes[i].r, ud);
}

/* Literal segments score by position, so the first literal-vs-param
 * difference decides between two matching patterns. */
static bool match(const struct route_entry *e, http_req *req, uint32_t *score)
{
    *score = 0;
    for (uint32_t i = 0; i < req->nsegs; i++) {
        const char *seg = req_at(req, req->segs[i]);
        if (e->params & (1u << i)) {
            if (!*seg)
                return false; /* a parameter is never empty */
            continue;
        }
        size_t n = e->seg_len[i];
        if (memcmp(seg, e->r->pattern + e->seg_at[i], n) != 0 || seg[n] != '\0')
            return false;
        *score |= 1u << (31 - i);
    }
    return true;
}

static void bind_params(const struct route_entry *e, http_req *req)
{
    req->nparams = 0;
    for (uint32_t i = 0; i < req->nsegs && e->has_params; i++)
        if ((e->params & (1u << i)) && req->nparams < HTTP_MAX_PARAMS)
            req->params[req->nparams++] = (http_param){
                e->r->pattern + e->seg_at[i] + 1, (uint32_t)e->seg_len[i] - 2, req->segs[i]};
}

static void allow_list(uint64_t mask, char *out, size_t n)
{
    static const int order[] = {HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_PUT, HTTP_PATCH, HTTP_DELETE};
    size_t o = 0;
    out[0] = '\0';
    if (mask & (1ull << HTTP_GET))
        mask |= 1ull << HTTP_HEAD;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (mask & (1ull << order[i]))
            o += (size_t)snprintf(out + o, n - o, "%s%s", o ? ", " : "",
                                  http_method_str((enum http_method)order[i]));
    snprintf(out + o, n - o, "%sOPTIONS", o ? ", " : "");
}

enum route_result router_match(http_server *srv, http_req *req, int method, char *allow,
                               size_t allowlen)
{
    int want = method == HTTP_HEAD ? HTTP_GET : method;
    const struct route_entry *best = NULL;
    uint32_t best_score = 0, score;
    uint64_t seen = 0;
    for (size_t i = 0; i < srv->nroutes; i++) {
        const struct route_entry *e = &srv->routes[i];
        if (e->nsegs != req->nsegs || !match(e, req, &score))
            continue;
        int m = e->method;
        seen |= 1ull << m;
        if (m == want && (!best || score > best_score)) {
            best = e;
            best_score = score;
        }
    }
    if (best) {
        req->route = best->r;
        bind_params(best, req);
        return ROUTE_FOUND;
    }
    if (!seen)
        return ROUTE_NO_PATH;
    allow_list(seen, allow, allowlen);
    return ROUTE_NO_METHOD;
}

void http_server_set_fallback(http_server *srv, const http_route *route)
{
    srv->fallback = route;
}

/* The first segment of some route's pattern: the path belongs to the API. */
static bool api_segment(http_server *srv, const char *seg)
{
    size_t n = strlen(seg);
    for (size_t i = 0; i < srv->nroutes; i++) {
        const char *p = srv->routes[i].r->pattern + 1;
        if (seg_len(p) == n && !is_param(p, n) && memcmp(p, seg, n) == 0)
            return true;
    }
    return false;
}

bool router_fallback_takes(http_server *srv, http_req *req, int method)
{
    if (!srv->fallback || (method != HTTP_GET && method != HTTP_HEAD))
        return false;
    return req->nsegs == 0 || !api_segment(srv, req_at(req, req->segs[0]));
}
