/* fleet_common.c - what the fleet resources share: refusals, events, one record, a group's targets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "events.h"
#include "fleet.h"
#include "fleet_routes.h"
#include "http.h"
#include "reccache.h"
#include "rest.h"
#include "util.h"

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

void fleet_respond_error(http_req *req, int rc, const fleet_err *e, const char *what)
{
    char code[48];
    if (rc == OPSC_ESCHEMA || rc == OPSC_EEXIST || rc == OPSC_EHOSTKEY) {
        snprintf(code, sizeof(code), "invalid_%s", what);
        json_t *details = e->field ? json_pack("{s:s}", "field", e->field) : NULL;
        http_respond_error(req, rc == OPSC_ESCHEMA ? 400 : 409,
                           rc == OPSC_ESCHEMA ? code : "conflict", details, "%s", e->msg);
        return;
    }
    rest_error(req, rc, what);
}

void fleet_publish(http_req *req, const char *type, const json_t *rec)
{
    struct opsc_core *c = http_req_app(req);
    json_t *data = json_pack("{s:O?, s:O?}", "id", json_object_get(rec, "id"), "name",
                             json_object_get(rec, "name"));
    if (c->events && data)
        events_publish(c->events, type, str(rec, "id"), data);
    json_decref(data);
}

struct one {
    const char *db, *id;
    json_t *rec;
};

static int get_txn(store_txn *txn, void *ud)
{
    struct one *o = ud;
    return store_get(txn, o->db, o->id, &o->rec);
}

int fleet_read_record(store *s, const char *db, const char *id, json_t **rec)
{
    struct one o = {db, id, NULL};
    int rc = store_read(s, get_txn, &o);
    *rec = o.rec;
    return rc;
}

struct cached {
    reccache *cache;
    const char *db, *id;
    json_t *rec;     /* borrowed from the cache */
    const char *raw; /* the stored compact JSON, borrowed from the cache */
    size_t len;
};

static int cached_txn(store_txn *txn, void *ud)
{
    struct cached *o = ud;
    return reccache_get_raw(o->cache, txn, o->db, o->id, &o->rec, &o->raw, &o->len);
}

/* The stored bytes are the compact JSON http_respond_json() would encode
 * from them again, so they go out as they are: a GET of an unchanged record
 * costs no parse and no encoding (the cache re-parses when its bytes change,
 * for the ETag). */
int fleet_get_record(http_req *req, const char *db, const char *what)
{
    struct opsc_core *c = http_req_app(req);
    struct cached o = {c->records, db, http_req_param(req, "id"), NULL, NULL, 0};
    int rc = o.id && o.cache ? store_read(c->store, cached_txn, &o) : OPSC_ENOENT;
    if (rc < 0) {
        rest_error(req, rc, what);
        return HTTP_DONE;
    }
    rest_etag(req, o.rec);
    http_respond_text(req, 200, "application/json", o.raw, o.len);
    return HTTP_DONE;
}

struct resolve {
    json_t *spec, *records;
    char *err;
    size_t errlen;
};

static int resolve_txn(store_txn *txn, void *ud)
{
    struct resolve *r = ud;
    json_decref(r->records);
    return fleet_resolve_records(txn, r->spec, &r->records, r->err, r->errlen);
}

int fleet_resolve_group(http_req *req, const char *gid, json_t **records, char *err, size_t errlen)
{
    struct opsc_core *c = http_req_app(req);
    struct resolve r = {json_pack("{s:[s]}", "groups", gid), NULL, err, errlen};
    int rc = uuid_valid(gid) && r.spec ? store_read(c->store, resolve_txn, &r) : OPSC_ENOENT;
    json_decref(r.spec);
    *records = rc == 0 ? r.records : NULL;
    if (rc < 0)
        json_decref(r.records);
    return rc;
}
