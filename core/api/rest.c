/* rest.c - request body, If-Match/ETag, paging and list helpers for the REST resources. */
#include "rest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "auth.h"
#include "util.h"

json_t *rest_body(http_req *req)
{
    json_t *b = http_req_json(req);
    if (!json_is_object(b)) {
        http_respond_error(req, 400, "bad_request", NULL, "the body must be a JSON object");
        return NULL;
    }
    return b;
}

int64_t rest_if_match(http_req *req)
{
    const char *h = http_req_header(req, "If-Match");
    if (!h)
        return 0;
    if (strncmp(h, "W/", 2) == 0)
        h += 2;
    char *end;
    long long v = strtoll(h + (*h == '"'), &end, 10);
    bool quoted = *h == '"';
    if (v <= 0 || (quoted ? strcmp(end, "\"") != 0 : *end != '\0')) {
        http_respond_error(req, 400, "bad_request", NULL,
                           "If-Match must be the record's ETag (its version in quotes)");
        return -1;
    }
    return v;
}

void rest_etag(http_req *req, json_t *rec)
{
    char etag[32];
    snprintf(etag, sizeof(etag), "\"%lld\"",
             (long long)json_integer_value(json_object_get(rec, "version")));
    http_set_header(req, "ETag", etag);
}

bool rest_page(http_req *req, size_t *limit, const char **cursor)
{
    const char *l = http_req_query(req, "limit");
    const char *c = http_req_query(req, "cursor");
    *limit = REST_LIMIT_DEFAULT;
    if (l) {
        char *end;
        long v = strtol(l, &end, 10);
        if (*end || v < 1 || v > REST_LIMIT_MAX) {
            http_respond_error(req, 400, "bad_request", NULL, "limit must be 1 to %d",
                               REST_LIMIT_MAX);
            return false;
        }
        *limit = (size_t)v;
    }
    if (c && *c && !uuid_valid(c)) {
        http_respond_error(req, 400, "bad_request", NULL, "cursor is not one this API gave");
        return false;
    }
    *cursor = c && *c ? c : NULL;
    return true;
}

bool rest_query_bool(http_req *req, const char *name)
{
    const char *v = http_req_query(req, name);
    return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

json_t *rest_list(json_t *items, const char *next_cursor)
{
    return json_pack("{s:o, s:o}", "items", items ? items : json_array(), "next_cursor",
                     next_cursor && *next_cursor ? json_string(next_cursor) : json_null());
}

void rest_error(http_req *req, int rc, const char *what)
{
    switch (rc) {
    case OPSC_ENOENT:
        http_respond_error(req, 404, "not_found", NULL, "%s not found", what);
        break;
    case OPSC_ECONFLICT:
        http_respond_error(req, 412, "version_conflict", NULL,
                           "%s was changed by someone else: fetch it again", what);
        break;
    case OPSC_EEXIST:
        http_respond_error(req, 409, "conflict", NULL, "%s already exists", what);
        break;
    default:
        http_respond_opsc_error(req, rc, "%s: %s", what, opsc_strerror(rc));
    }
}

void rest_busy(http_req *req, const char *msg)
{
    http_set_header(req, "Retry-After", "1");
    http_respond_error(req, 503, "unavailable", NULL, "%s", msg);
}

void rest_created(http_req *req, const char *collection, json_t *rec)
{
    char loc[256];
    snprintf(loc, sizeof(loc), "%s/%s", collection, json_string_value(json_object_get(rec, "id")));
    http_set_header(req, "Location", loc);
    rest_etag(req, rec);
    http_respond_json(req, 201, rec);
}

struct page_ud {
    rest_scan *s;
    bool more;
};

static int page_one(const char *id, json_t *rec, void *ud)
{
    struct page_ud *p = ud;
    rest_scan *s = p->s;
    if (s->keep && !s->keep(rec, s->ud))
        return 0;
    if (json_array_size(s->items) == s->limit) {
        p->more = true;
        return 1;
    }
    json_t *v = s->view ? s->view(rec) : json_incref(rec);
    if (!v || json_array_append_new(s->items, v) < 0)
        return OPSC_ENOMEM;
    snprintf(s->next, sizeof(s->next), "%s", id);
    return 0;
}

int rest_scan_page(store_txn *txn, rest_scan *s)
{
    struct page_ud p = {s, false};
    s->items = json_array();
    s->next[0] = '\0';
    if (!s->items)
        return OPSC_ENOMEM;
    int rc = store_scan(txn, s->db, s->cursor, false, page_one, &p);
    if (!p.more)
        s->next[0] = '\0';
    if (rc < 0) {
        json_decref(s->items);
        s->items = NULL;
    }
    return rc;
}

static int page_txn(store_txn *txn, void *ud)
{
    return rest_scan_page(txn, ud);
}

int rest_list_records(http_req *req, store *st, rest_scan *scan, const char *what)
{
    if (!rest_page(req, &scan->limit, &scan->cursor))
        return HTTP_DONE;
    int rc = store_read(st, page_txn, scan);
    if (rc < 0)
        rest_error(req, rc, what);
    else
        http_respond_json(req, 200, rest_list(scan->items, scan->next));
    return HTTP_DONE;
}

bool rest_opt_string(http_req *req, json_t *body, const char *key, size_t max, const char **out)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v)
        return true;
    if (!json_is_string(v) || json_string_length(v) > max) {
        http_respond_error(req, 400, "bad_request", NULL,
                           "%s must be a string of at most %zu bytes", key, max);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

static void wipe_json(json_t *v)
{
    const char *k;
    json_t *m;
    size_t i;
    if (json_is_string(v))
        secure_zero((char *)json_string_value(v), json_string_length(v));
    else if (json_is_object(v))
        json_object_foreach(v, k, m) wipe_json(m);
    else if (json_is_array(v))
        json_array_foreach(v, i, m) wipe_json(m);
}

void rest_wipe_body(http_req *req)
{
    size_t len = 0;
    const char *raw = http_req_body(req, &len);
    if (raw && len)
        secure_zero((char *)raw, len);
    wipe_json(http_req_json(req));
}

/* The answer's own "path" members: of the object, of its items, versions and
 * refused files (never inside schemas, where "path" may name a parameter). */
static void drop_paths(json_t *v)
{
    static const char *const lists[] = {"items", "versions", "refused"};
    if (!json_is_object(v))
        return;
    json_object_del(v, "path");
    for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++) {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(v, lists[k]), i, m) drop_paths(m);
    }
}

json_t *rest_hide_paths(http_req *req, json_t *v)
{
    const auth_principal *p = auth_principal_of(req);
    if (!p || p->role < ROLE_ADMIN)
        drop_paths(v);
    return v;
}
