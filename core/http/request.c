/* request.c - a request's storage and accessors: URL decoding, query, headers, JSON body. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <opsc/errors.h>

#include "http_internal.h"

/* ---- life ------------------------------------------------------------------ */

static void req_reset(http_req *req)
{
    http_req keep = *req;
    memset(req, 0, sizeof(*req));
    req->arena = keep.arena;
    req->body = keep.body;
    req->resp_headers = keep.resp_headers;
    req->hdrs = keep.hdrs;
    req->hdrs_cap = keep.hdrs_cap;
    req->query = keep.query;
    req->query_cap = keep.query_cap;
    sb_reset(&req->arena);
    sb_reset(&req->body);
    sb_reset(&req->resp_headers);
}

int grow_array(void **v, uint32_t *cap, size_t elem)
{
    uint32_t n = *cap ? *cap * 2 : 16;
    void *p = realloc(*v, n * elem);
    if (!p)
        return -1;
    *v = p;
    *cap = n;
    return 0;
}

void req_free(http_req *req)
{
    sb_free(&req->arena);
    sb_free(&req->body);
    sb_free(&req->resp_headers);
    free(req->hdrs);
    free(req->query);
    free(req);
}

http_req *req_new(http_server *srv, http_conn *c)
{
    http_req *req = srv->free_reqs;
    if (req) {
        srv->free_reqs = req->next_free;
        srv->nfree_reqs--;
    } else {
        req = calloc(1, sizeof(*req));
        if (!req)
            return NULL;
    }
    req_reset(req);
    req->srv = srv;
    req->conn = c;
    req->refs = 1;
    req->method = "";
    req->start_ns = uv_hrtime();
    req->tls = c && c->tls;
    if (req->tls && srv->hsts[0])
        sb_puts(&req->resp_headers, srv->hsts);
    srv->live_reqs++;
    return req;
}

static void req_release(http_req *req)
{
    http_server *srv = req->srv;
    if (req->sink.close)
        req->sink.close(req->sink.ud, req->complete);
    if (req->principal && req->principal_free)
        req->principal_free(req->principal);
    json_decref(req->json);
    req->json = NULL;
    srv->live_reqs--;
    size_t held = req->arena.cap + req->body.cap + req->resp_headers.cap;
    if (srv->freed || held > HTTP_REQ_KEEP_BYTES || srv->nfree_reqs >= HTTP_REQ_POOL_MAX) {
        req_free(req);
    } else {
        req_reset(req);
        req->next_free = srv->free_reqs;
        srv->free_reqs = req;
        srv->nfree_reqs++;
    }
    if (srv->freed && srv->live_reqs == 0)
        srv_release(srv);
}

void http_req_ref(http_req *req)
{
    req->refs++;
}

void http_req_unref(http_req *req)
{
    if (--req->refs == 0)
        req_release(req);
}

void req_detach(http_req *req)
{
    http_conn *c = req->conn;
    if (c)
        memcpy(req->client, c->client, sizeof(req->client));
    req->conn = NULL;
    http_req_unref(req);
}

bool http_req_client_gone(http_req *req)
{
    return req->gone || (req->conn && req->conn->state == CONN_CLOSING);
}

/* ---- accessors --------------------------------------------------------------- */

void *http_req_app(http_req *req)
{
    return req->srv->app;
}

const char *http_req_method(http_req *req)
{
    return req->method;
}

const char *http_req_path(http_req *req)
{
    return req->path_off ? req_at(req, req->path_off) : "";
}

const char *http_req_param(http_req *req, const char *name)
{
    size_t n = strlen(name);
    for (uint32_t i = 0; i < req->nparams; i++)
        if (req->params[i].name_len == n && memcmp(req->params[i].name, name, n) == 0)
            return req_at(req, req->params[i].value);
    return NULL;
}

const char *http_req_query(http_req *req, const char *name)
{
    for (uint32_t i = 0; i < req->nquery; i++)
        if (strcmp(req_at(req, req->query[i].key), name) == 0)
            return req_at(req, req->query[i].value);
    return NULL;
}

const char *http_req_header(http_req *req, const char *name)
{
    for (uint32_t i = 0; i < req->nhdrs; i++)
        if (strcasecmp(req_at(req, req->hdrs[i].name), name) == 0)
            return req_at(req, req->hdrs[i].value);
    return NULL;
}

void http_req_set_body_sink(http_req *req, const http_body_sink *sink)
{
    req->sink = *sink;
}

void *http_req_body_sink_ud(http_req *req)
{
    return req->sink.close || req->sink.write ? req->sink.ud : NULL;
}

const char *http_req_body(http_req *req, size_t *len)
{
    if (len)
        *len = req->body.len;
    return req->body.len ? req->body.buf : "";
}

json_t *http_req_json(http_req *req)
{
    return req->json;
}

const char *http_req_client(http_req *req)
{
    return req->conn ? req->conn->client : req->client;
}

bool http_req_tls(http_req *req)
{
    return req->tls;
}

const char *http_req_tls_client(http_req *req)
{
    return req->conn ? tls_conn_peer(req->conn) : NULL;
}

const http_route *http_req_route(http_req *req)
{
    return req->route;
}

double http_req_seconds(http_req *req)
{
    return (double)(uv_hrtime() - req->start_ns) / 1e9;
}

void http_req_set_principal(http_req *req, void *principal, void (*free_fn)(void *))
{
    if (req->principal && req->principal_free && req->principal != principal)
        req->principal_free(req->principal);
    req->principal = principal;
    req->principal_free = free_fn;
}

void *http_req_principal(http_req *req)
{
    return req->principal;
}

/* ---- URL decoding --------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode s[0..n) to out (room for n + 1), NUL-terminated. -1 on a bad
 * escape, -2 when the text holds a NUL. */
static int pct_decode(const char *s, size_t n, char *out, bool plus, size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (plus && ch == '+') {
            ch = ' ';
        }
        if (ch == '\0')
            return -2;
        out[o++] = ch;
    }
    out[o] = '\0';
    *outlen = o;
    return 0;
}

/* "." or "..", also hidden in a segment by %2F ("..%2Fetc"). */
static bool dot_segment(const char *s, size_t n)
{
    for (size_t i = 0; i <= n;) {
        size_t len = 0;
        while (i + len < n && s[i + len] != '/')
            len++;
        if ((len == 1 && s[i] == '.') || (len == 2 && s[i] == '.' && s[i + 1] == '.'))
            return true;
        i += len + 1;
    }
    return false;
}

/* Room for `extra` more bytes without moving the arena while we write. */
static bool arena_reserve(strbuf *a, size_t extra)
{
    if (a->len + extra + 1 <= a->cap)
        return true;
    size_t cap = a->cap ? a->cap : 256;
    while (cap < a->len + extra + 1)
        cap *= 2;
    char *buf = realloc(a->buf, cap);
    if (!buf)
        return false;
    a->buf = buf;
    a->cap = cap;
    return true;
}

static int decode_path(http_req *req, uint32_t off, size_t len, const char **why)
{
    strbuf *a = &req->arena;
    size_t i = 1; /* past the leading '/' */
    while (i <= len) {
        const char *raw = a->buf + off + i;
        size_t seglen = 0;
        while (i + seglen < len && raw[seglen] != '/')
            seglen++;
        if (i + seglen == len && seglen == 0 && req->nsegs > 0)
            break; /* one trailing slash is ignored */
        if (i == len && len == 1)
            break; /* "/" */
        if (req->nsegs == HTTP_MAX_SEGMENTS) {
            *why = "no such resource";
            return 404;
        }
        size_t dlen;
        char *out = a->buf + a->len;
        int rc = pct_decode(raw, seglen, out, false, &dlen);
        if (rc < 0) {
            *why = rc == -2 ? "the path contains a NUL byte" : "bad percent-encoding in the path";
            return 400;
        }
        if (dot_segment(out, dlen)) {
            *why = "the path contains a '.' or '..' segment";
            req->dot_segment = true;
            return 400;
        }
        req->segs[req->nsegs++] = (uint32_t)a->len;
        a->len += dlen + 1;
        i += seglen + 1;
    }
    /* The decoded path, segments joined again. */
    req->path_off = (uint32_t)a->len;
    char *p = a->buf + a->len;
    *p++ = '/';
    for (uint32_t s = 0; s < req->nsegs; s++) {
        size_t n = strlen(a->buf + req->segs[s]);
        memcpy(p, a->buf + req->segs[s], n);
        p += n;
        if (s + 1 < req->nsegs)
            *p++ = '/';
    }
    *p++ = '\0';
    a->len = (size_t)(p - a->buf);
    return 0;
}

static int add_query(http_req *req, uint32_t key, uint32_t value)
{
    if (req->nquery == req->query_cap &&
        grow_array((void **)&req->query, &req->query_cap, sizeof(*req->query)) < 0)
        return -1;
    req->query[req->nquery++] = (http_kv){key, value};
    return 0;
}

static int decode_query(http_req *req, uint32_t off, size_t len, const char **why)
{
    strbuf *a = &req->arena;
    size_t i = 0;
    while (i < len) {
        const char *raw = a->buf + off + i;
        size_t n = 0;
        while (i + n < len && raw[n] != '&')
            n++;
        size_t klen = 0;
        while (klen < n && raw[klen] != '=')
            klen++;
        if (n > 0) {
            uint32_t key = (uint32_t)a->len, value;
            size_t dlen;
            int rc = pct_decode(raw, klen, a->buf + a->len, true, &dlen);
            a->len += dlen + 1;
            value = (uint32_t)a->len;
            if (rc == 0)
                rc = pct_decode(raw + klen + (klen < n), n - klen - (klen < n), a->buf + a->len,
                                true, &dlen);
            if (rc < 0) {
                *why = rc == -2 ? "the query contains a NUL byte"
                                : "bad percent-encoding in the query";
                return 400;
            }
            a->len += dlen + 1;
            if (add_query(req, key, value) < 0) {
                *why = "out of memory";
                return 400;
            }
        }
        i += n + 1;
    }
    return 0;
}

/* Locate path and query in the request target: origin-form ("/p?q") or
 * absolute-form ("http://h/p?q"). */
static int split_target(http_req *req, uint32_t *poff, size_t *plen, uint32_t *qoff, size_t *qlen)
{
    const char *url = req_at(req, req->url_off);
    size_t n = req->url_len;
    if (n > 0 && url[0] == '/') {
        size_t p = strcspn(url, "?#");
        *poff = req->url_off;
        *plen = p;
        if (url[p] == '?') {
            *qoff = req->url_off + (uint32_t)p + 1;
            *qlen = strcspn(url + p + 1, "#");
        }
        return 0;
    }
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, n, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH)))
        return -1;
    *poff = req->url_off + u.field_data[UF_PATH].off;
    *plen = u.field_data[UF_PATH].len;
    if (u.field_set & (1 << UF_QUERY)) {
        *qoff = req->url_off + u.field_data[UF_QUERY].off;
        *qlen = u.field_data[UF_QUERY].len;
    }
    return 0;
}

int req_finish_headers(http_req *req, const char **why)
{
    uint32_t poff = 0, qoff = 0;
    size_t plen = 0, qlen = 0;
    if (split_target(req, &poff, &plen, &qoff, &qlen) < 0 || plen == 0 ||
        req_at(req, poff)[0] != '/') {
        *why = "bad request target";
        return 400;
    }
    /* Decoding never grows text: twice the target plus terminators fits. */
    if (!arena_reserve(&req->arena, 2 * (plen + qlen) + 2 * HTTP_MAX_SEGMENTS + qlen + 8)) {
        *why = "out of memory";
        return 400;
    }
    int status = decode_path(req, poff, plen, why);
    if (status == 0 && qlen)
        status = decode_query(req, qoff, qlen, why);
    return status;
}

/* ---- body ------------------------------------------------------------------------- */

bool req_content_type_json(http_req *req)
{
    const char *ct = http_req_header(req, "Content-Type");
    if (!ct)
        return false;
    size_t n = strcspn(ct, "; \t");
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return true;
    /* application/merge-patch+json, application/problem+json... */
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + n - 5, "+json", 5) == 0;
}

int req_parse_json(http_req *req)
{
    if (req->body.len == 0) {
        http_respond_error(req, 400, "bad_request", NULL, "a JSON object is required as the body");
        return -1;
    }
    json_error_t e;
    json_t *j =
        json_loadb(req->body.buf, req->body.len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        http_respond_invalid_json(req, NULL, &e);
        return -1;
    }
    if (!json_is_object(j)) {
        static const char *const kinds[] = {"an object", "an array", "a string", "a number",
                                            "a number",  "true",     "false",    "null"};
        http_respond_error(req, 400, "bad_request", NULL, "the body must be a JSON object, not %s",
                           kinds[json_typeof(j)]);
        json_decref(j);
        return -1;
    }
    req->json = j;
    return 0;
}

const char *http_json_error_text(const json_error_t *e)
{
    switch (json_error_code(e)) {
    case json_error_out_of_memory:
        return "out of memory";
    case json_error_stack_overflow:
        return "nested too deep";
    case json_error_invalid_utf8:
        return "not valid UTF-8";
    case json_error_premature_end_of_input:
        return "the text ends too early";
    case json_error_end_of_input_expected:
        return "more text after the value";
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return "a NUL character";
    case json_error_duplicate_key:
        return "a member name appears twice";
    case json_error_numeric_overflow:
        return "a number out of range";
    case json_error_invalid_syntax:
    default:
        return "a character that cannot be there";
    }
}

void http_respond_invalid_json(http_req *req, const char *prefix, const json_error_t *e)
{
    http_respond_error(
        req, 400, "invalid_json",
        json_pack("{s:i, s:i, s:i}", "line", e->line, "column", e->column, "position", e->position),
        "%s%sinvalid JSON at line %d, column %d: %s", prefix ? prefix : "", prefix ? ": " : "",
        e->line, e->column, http_json_error_text(e));
}
