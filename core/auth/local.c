/* local.c - the built-in local provider: check a password against the stored yescrypt hash (worker
 * thread). */
#include "auth_internal.h"

#include <stdio.h>
#include <string.h>

#include <opsc/errors.h>

#include "util.h"

struct local_lookup {
    const char *username;
    bool found;
    char hash[PASSWORD_HASH_MAX];
    opsc_identity id;
};

static void copy_field(json_t *u, const char *key, char *dst, size_t n)
{
    const char *v = json_string_value(json_object_get(u, key));
    snprintf(dst, n, "%s", v ? v : "");
}

static int lookup(store_txn *txn, void *ud)
{
    struct local_lookup *l = ud;
    json_t *u = NULL;
    int rc = users_find(txn, l->username, &u);
    if (rc == OPSC_ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    const char *provider = json_string_value(json_object_get(u, "provider"));
    const char *hash = json_string_value(json_object_get(u, "password_hash"));
    if (provider && strcmp(provider, "local") == 0 && hash && strlen(hash) < sizeof(l->hash)) {
        l->found = true;
        memcpy(l->hash, hash, strlen(hash) + 1);
        copy_field(u, "username", l->id.username, sizeof(l->id.username));
        copy_field(u, "display_name", l->id.display_name, sizeof(l->id.display_name));
        copy_field(u, "email", l->id.email, sizeof(l->id.email));
        copy_field(u, "role", l->id.role, sizeof(l->id.role));
    }
    json_decref(u);
    return 0;
}

int auth_local_verify(void *ud, const char *username, const char *password, opsc_identity *id,
                      char *err, size_t errlen)
{
    auth *a = ud;
    struct local_lookup l = {0};
    char folded[USERNAME_MAX + 1];
    int rc = 0;
    if (username && password && users_fold(username, folded) == 0) {
        l.username = folded;
        rc = store_read(a->store, lookup, &l);
    }
    if (rc < 0) {
        snprintf(err, errlen, "reading users: %s", opsc_strerror(rc));
        return rc;
    }
    /* Unknown users cost one hash too, so timing does not tell who exists. */
    bool ok = password_verify(password ? password : "", l.found ? l.hash : a->dummy_hash);
    secure_zero(l.hash, sizeof(l.hash));
    if (!l.found)
        return OPSC_ENOENT;
    if (!ok)
        return OPSC_EAUTH;
    memcpy(id->username, l.id.username, sizeof(id->username));
    memcpy(id->display_name, l.id.display_name, sizeof(id->display_name));
    memcpy(id->email, l.id.email, sizeof(id->email));
    memcpy(id->role, l.id.role, sizeof(id->role));
    return 0;
}
