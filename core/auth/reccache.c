/* reccache.c - a direct-mapped cache of parsed records keyed by their stored bytes. */
#include "reccache.h"

#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

typedef struct rc_entry {
    const char *db;
    char id[40];
    char *raw;
    size_t len;
    json_t *rec;
} rc_entry;

struct reccache {
    rc_entry *slots;
    size_t n;
    size_t max_len;      /* 0: any */
    rc_entry *transient; /* holds a record over max_len until the next call */
};

int reccache_new(reccache **out, size_t slots)
{
    reccache *c = calloc(1, sizeof(*c));
    if (!c || !(c->slots = calloc(slots ? slots : 1, sizeof(rc_entry)))) {
        free(c);
        return OPSC_ENOMEM;
    }
    c->n = slots ? slots : 1;
    *out = c;
    return 0;
}

static void clear(rc_entry *e)
{
    free(e->raw);
    json_decref(e->rec);
    memset(e, 0, sizeof(*e));
}

void reccache_set_max(reccache *c, size_t len)
{
    c->max_len = len;
}

void reccache_free(reccache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        clear(&c->slots[i]);
    free(c->slots);
    free(c);
}

static size_t slot_of(const reccache *c, const char *db, const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = db; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return (size_t)(h % c->n);
}

int reccache_get(reccache *c, store_txn *txn, const char *db, const char *id, json_t **out)
{
    const char *raw;
    size_t len;
    return reccache_get_raw(c, txn, db, id, out, &raw, &len);
}

int reccache_get_raw(reccache *c, store_txn *txn, const char *db, const char *id, json_t **out,
                     const char **raw_out, size_t *len_out)
{
    size_t idlen = strlen(id);
    if (c->transient) {
        clear(c->transient);
        c->transient = NULL;
    }
    if (idlen == 0 || idlen >= sizeof(c->slots[0].id))
        return OPSC_EINVAL;
    const void *val;
    size_t len;
    int rc = store_kv_get(txn, db, id, idlen, &val, &len);
    if (rc < 0)
        return rc;
    rc_entry *e = &c->slots[slot_of(c, db, id)];
    if (e->rec && e->db == db && strcmp(e->id, id) == 0 && e->len == len &&
        memcmp(e->raw, val, len) == 0) {
        *out = e->rec;
        *raw_out = e->raw;
        *len_out = e->len;
        return 0;
    }
    clear(e);
    json_t *rec = json_loadb(val, len, 0, NULL);
    if (!json_is_object(rec)) {
        json_decref(rec);
        return OPSC_ECORRUPT;
    }
    char *raw = malloc(len ? len : 1);
    if (!raw) {
        json_decref(rec);
        return OPSC_ENOMEM;
    }
    memcpy(raw, val, len);
    *e = (rc_entry){.db = db, .raw = raw, .len = len, .rec = rec};
    memcpy(e->id, id, idlen + 1);
    if (c->max_len && len > c->max_len)
        c->transient = e;
    *out = rec;
    *raw_out = raw;
    *len_out = len;
    return 0;
}
