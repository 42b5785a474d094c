/* notify_routes.h - what the notification resources share: one CRUD over a named record type
 * (channels, rules, hooks), built and checked by the notification service. */
#ifndef OPSC_NOTIFY_ROUTES_H
#define OPSC_NOTIFY_ROUTES_H

#include <jansson.h>

#include "http.h"
#include "notify.h"

typedef struct nres {
    const char *db, *by_name; /* records and their unique-name index */
    const char *what;         /* "channel": error codes and messages */
    const char *collection;   /* "/api/v1/notifications/channels": Location of a create */
    int (*build)(notify *n, const json_t *body, const json_t *existing, json_t **out,
                 const char **field, char *err, size_t errlen);
    int (*check)(store_txn *txn, const json_t *rec, const char **field, char *err, size_t errlen);
    /* Refuse a delete (OPSC_EBUSY with *users, a new array) while others refer to it; may be NULL.
     */
    int (*in_use)(store_txn *txn, const char *id, json_t **users);
    json_t *(*view)(json_t *rec); /* the API's copy (new reference) */
    void (*changed)(notify *n);   /* after a committed write; may be NULL */
    /* What every node caches of these records: its version is bumped in
     * each write's transaction (store_version_bump; other nodes reload on
     * their heartbeat). NULL: nothing cached. */
    const char *version;
} nres;

int nres_list(http_req *req, const nres *r);
int nres_create(http_req *req, const nres *r);
int nres_get(http_req *req, const nres *r);
int nres_update(http_req *req, const nres *r);
int nres_delete(http_req *req, const nres *r);

int api_deliveries_register(struct opsc_core *c);
int api_hooks_register(struct opsc_core *c);

#endif
