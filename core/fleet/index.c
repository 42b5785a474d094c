/* index.c - one-to-many index links "<parent>/<child>" shared by the fleet's records. */
#include <stdio.h>
#include <string.h>

#include <opsc/errors.h>

#include "fleet_internal.h"
#include "util.h"

#define LINK_KEY_MAX (2 * UUID_STR_LEN + 2)

static int link_key(char key[LINK_KEY_MAX], const char *parent, const char *child)
{
    int n = snprintf(key, LINK_KEY_MAX, "%s/%s", parent, child);
    return n > 0 && n < LINK_KEY_MAX ? 0 : OPSC_EINVAL;
}

int fleet_link(store_txn *txn, const char *db, const char *parent, const char *child)
{
    char key[LINK_KEY_MAX];
    int rc = link_key(key, parent, child);
    return rc < 0 ? rc : store_kv_put(txn, db, key, strlen(key), child, strlen(child));
}

int fleet_unlink(store_txn *txn, const char *db, const char *parent, const char *child)
{
    char key[LINK_KEY_MAX];
    int rc = link_key(key, parent, child);
    if (rc == 0)
        rc = store_kv_del(txn, db, key, strlen(key));
    return rc == OPSC_ENOENT ? 0 : rc;
}

static int add_child(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    (void)key, (void)klen;
    json_t *v = json_stringn(val, vlen);
    return v && json_array_append_new(ud, v) == 0 ? 0 : OPSC_ENOMEM;
}

int fleet_links(store_txn *txn, const char *db, const char *parent, json_t **out)
{
    char prefix[UUID_STR_LEN + 2];
    int n = snprintf(prefix, sizeof(prefix), "%s/", parent);
    *out = json_array();
    if (!*out)
        return OPSC_ENOMEM;
    if (n <= 0 || (size_t)n >= sizeof(prefix))
        return 0; /* not an id: nothing links to it */
    int rc = store_kv_scan(txn, db, prefix, (size_t)n, add_child, *out);
    if (rc < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

bool fleet_same(const json_t *a, const json_t *b)
{
    return a == b || (a && b && json_equal(a, b));
}
