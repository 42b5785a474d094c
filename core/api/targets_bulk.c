/* targets_bulk.c - POST /api/v1/targets/bulk: many targets in one request, one transaction per
 * chunk, a result per item. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "auth.h"
#include "core.h"
#include "fleet.h"
#include "fleet_routes.h"
#include "http.h"
#include "rest.h"

#define BULK_MAX   5000 /* targets in one request */
#define BULK_CHUNK 500  /* targets per transaction */

typedef struct item {
    json_t *rec; /* built record, NULL when refused */
    int rc;
    fleet_err e;
} item;

typedef struct chunk {
    item *items;
    size_t n;
    plugin_host *plugins;
} chunk;

static json_t *error_result(size_t index, int rc, const fleet_err *e)
{
    const char *code = rc == OPSC_ESCHEMA   ? "invalid_target"
                       : rc == OPSC_EEXIST  ? "conflict"
                       : rc == OPSC_EACCES ? "forbidden"
                                            : opsc_err_name(rc);
    json_t *err =
        json_pack("{s:s, s:s}", "code", code, "message", e->msg[0] ? e->msg : opsc_strerror(rc));
    if (e->field)
        json_object_set_new(err, "field", json_string(e->field));
    return json_pack("{s:I, s:s, s:o}", "index", (json_int_t)index, "status", "error", "error",
                     err);
}

/* Refusals (bad credential, name taken) leave the transaction clean for the
 * other items (target_insert refuses before writing); anything else aborts
 * the chunk. A map resize runs this again: every item starts over. */
static int chunk_txn(store_txn *txn, void *ud)
{
    chunk *c = ud;
    for (size_t i = 0; i < c->n; i++) {
        item *it = &c->items[i];
        if (!it->rec)
            continue; /* refused before the store */
        it->rc = target_insert(txn, it->rec, target_credential_types(c->plugins, it->rec), &it->e);
        if (it->rc < 0 && it->rc != OPSC_ESCHEMA && it->rc != OPSC_EEXIST)
            return it->rc;
    }
    return 0;
}

static json_t *parse_array(http_req *req)
{
    size_t len = 0;
    const char *body = http_req_body(req, &len);
    json_error_t je;
    json_t *arr = body && len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!arr && len) {
        http_respond_invalid_json(req, "the body must be a JSON array of targets", &je);
        return NULL;
    }
    if (!json_is_array(arr)) {
        http_respond_error(req, 400, "bad_request", NULL,
                           "the body must be a JSON array of targets");
        json_decref(arr);
        return NULL;
    }
    if (json_array_size(arr) > BULK_MAX) {
        http_respond_error(req, 413, "too_large", NULL, "at most %d targets per request", BULK_MAX);
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/* Check every item (no store needed), then write them chunk by chunk. */
static void import(http_req *req, json_t *arr, item *items, json_t *results, size_t *created)
{
    struct opsc_core *core = http_req_app(req);
    size_t n = json_array_size(arr);
    const char *denied = api_local_denied(req);
    for (size_t i = 0; i < n; i++) {
        json_t *body = json_array_get(arr, i);
        items[i].rc = OPSC_ESCHEMA;
        snprintf(items[i].e.msg, sizeof(items[i].e.msg), "each item must be a JSON object");
        if (json_is_object(body))
            items[i].rc = target_build(core->plugins, body, NULL, &items[i].rec, NULL, &items[i].e);
        if (items[i].rc == 0 && denied && api_is_local_target(items[i].rec)) {
            json_decref(items[i].rec);
            items[i].rec = NULL;
            items[i].rc = OPSC_EACCES;
            items[i].e.field = "transport";
            snprintf(items[i].e.msg, sizeof(items[i].e.msg), "%s", denied);
        }
    }
    for (size_t off = 0; off < n; off += BULK_CHUNK) {
        chunk c = {items + off, n - off < BULK_CHUNK ? n - off : BULK_CHUNK, core->plugins};
        int rc = store_write(core->store, chunk_txn, &c);
        for (size_t i = 0; i < c.n; i++) {
            item *it = &c.items[i];
            int irc = rc < 0 && it->rec ? rc : it->rc;
            if (irc < 0) {
                json_array_append_new(results, error_result(off + i, irc, &it->e));
                continue;
            }
            (*created)++;
            json_array_append_new(results, json_pack("{s:I, s:s, s:O, s:O}", "index",
                                                     (json_int_t)(off + i), "status", "created",
                                                     "id", json_object_get(it->rec, "id"), "name",
                                                     json_object_get(it->rec, "name")));
            fleet_publish(req, "target.created", it->rec);
        }
    }
}

int api_targets_bulk(http_req *req)
{
    json_t *arr = parse_array(req);
    if (!arr)
        return HTTP_DONE;
    size_t n = json_array_size(arr), created = 0;
    item *items = calloc(n ? n : 1, sizeof(*items));
    json_t *results = json_array();
    if (!items || !results) {
        http_respond_opsc_error(req, OPSC_ENOMEM, "out of memory");
    } else {
        import(req, arr, items, results, &created);
        char what[64];
        snprintf(what, sizeof(what), "bulk: %zu of %zu created", created, n);
        auth_set_object(req, what);
        http_respond_json(req, 200,
                          json_pack("{s:I, s:I, s:O}", "created", (json_int_t)created, "failed",
                                    (json_int_t)(n - created), "items", results));
    }
    for (size_t i = 0; items && i < n; i++)
        json_decref(items[i].rec);
    free(items);
    json_decref(results);
    json_decref(arr);
    return HTTP_DONE;
}
