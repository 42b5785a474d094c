/* pool_jump.c - the jump hosts of a connect: entries of transport_options.jump that name a target
 * or a credential, read and decrypted in the connect's snapshot, handed to the transport as
 * opsc_target.jumps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "fields.h"
#include "fleet.h"
#include "pool_internal.h"
#include "util.h"
#include "vault.h"

static int read_credential(store_txn *txn, vault *v, const char *cid, pool_jumps *j, size_t k,
                           const char *what, char *err, size_t errlen)
{
    json_t *cred = NULL;
    int rc = store_get(txn, "credentials", cid, &cred);
    json_decref(cred);
    if (rc == OPSC_ENOENT) {
        snprintf(err, errlen, "the credential %s of %s does not exist", cid, what);
        return rc;
    }
    if (rc == 0)
        rc = vault_credential_open(v, txn, cid, &j->creds[k], err, errlen);
    if (rc == 0)
        j->creds[k].size = sizeof(j->creds[k]);
    return rc;
}

static int read_target(store_txn *txn, vault *v, const char *id, size_t i, pool_jumps *j, char *err,
                       size_t errlen)
{
    size_t k = j->n;
    int rc = store_get(txn, "targets", id, &j->recs[k]);
    if (rc == OPSC_ENOENT)
        snprintf(err, errlen, "jump host %zu: target %s does not exist", i + 1, id);
    if (rc < 0)
        return rc;
    const json_t *r = j->recs[k];
    char what[200];
    snprintf(what, sizeof(what), "jump host %s", fld_str(r, "name"));
    const char *cid = fld_str(r, "credential_id");
    if (cid && (rc = read_credential(txn, v, cid, j, k, what, err, errlen)) < 0)
        return rc;
    j->known[k] = target_known_hosts(r);
    if (!j->known[k])
        return OPSC_ENOMEM;
    json_int_t timeout_s = json_integer_value(json_object_get(r, "connect_timeout_s"));
    j->targets[k] = (opsc_target){
        .size = sizeof(opsc_target),
        .id = fld_str(r, "id"),
        .name = fld_str(r, "name"),
        .address = fld_str(r, "address"),
        .port = (int)json_integer_value(json_object_get(r, "port")),
        .os_family = fld_str(r, "os_family"),
        .host_key_policy = fld_str(r, "host_key_policy"),
        .known_host_keys = j->known[k],
        .connect_timeout_ms = (uint32_t)(timeout_s > 0 ? timeout_s * 1000 : 0),
        .options_json = "{}",
    };
    j->jumps[k] = (opsc_jump){sizeof(opsc_jump), i, &j->targets[k], cid ? &j->creds[k] : NULL};
    j->n++;
    return 0;
}

int pool_jumps_read(store_txn *txn, vault *v, const json_t *target, pool_jumps *j, char *err,
                    size_t errlen)
{
    memset(j, 0, sizeof(*j));
    json_t *list = json_object_get(json_object_get(target, "transport_options"), "jump");
    if (json_is_string(list) || json_is_object(list))
        list = json_pack("[O]", list);
    else
        json_incref(list);
    size_t i;
    json_t *e;
    int rc = 0;
    json_array_foreach(list, i, e)
    {
        if (rc < 0 || j->n == POOL_MAX_JUMPS)
            break;
        const char *id = json_string_value(e);
        const char *cid = fld_str(e, "credential_id");
        if (id && uuid_valid(id)) {
            rc = read_target(txn, v, id, i, j, err, errlen);
        } else if (cid) {
            char what[64];
            snprintf(what, sizeof(what), "jump host %zu", i + 1);
            rc = read_credential(txn, v, cid, j, j->n, what, err, errlen);
            if (rc == 0) {
                j->jumps[j->n] = (opsc_jump){sizeof(opsc_jump), i, NULL, &j->creds[j->n]};
                j->n++;
            }
        }
    }
    json_decref(list);
    if (rc < 0)
        pool_jumps_free(j);
    return rc;
}

void pool_jumps_free(pool_jumps *j)
{
    for (size_t k = 0; k < POOL_MAX_JUMPS; k++) {
        vault_credential_close(&j->creds[k]);
        json_decref(j->recs[k]);
        free(j->known[k]);
    }
    memset(j, 0, sizeof(*j));
}
