/* index.c - the fleet records' indexes: unique names and one-to-many links "<parent>/<child>". */
#include <stdio.h>
#include <string.h>

#include <opsc/errors.h>

#include "fields.h"
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

int fleet_name_free(store_txn *txn, const char *index_db, const char *kind, const char *name,
                    const char *id, fleet_err *e)
{
    char other[FLEET_ID_MAX];
    int rc = store_index_get(txn, index_db, name, other);
    if (rc == OPSC_ENOENT || (rc == 0 && strcmp(other, id) == 0))
        return 0;
    if (rc < 0)
        return rc;
    char q[FLEET_QUOTE_LEN];
    fleet_quote(name, strlen(name), q);
    fleet_fail(e, "name", "a %s named '%s' exists (%s)", kind, q, other);
    return OPSC_EEXIST;
}
