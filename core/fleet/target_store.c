/* target_store.c - writing target records with their indexes (name, credential, groups) and host
 * keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "fields.h"
#include "fleet.h"
#include "fleet_internal.h"
#include "util.h"

/* Credential types each built-in transport can use; other transports take
 * any type but a secret. */
static const struct cred_rule {
    const char *transport;
    const char *types[3];
    const char *text;
} cred_rules[] = {
    {"ssh", {"ssh_key", "ssh_password", NULL}, "ssh_key or ssh_password"},
    {"winrm", {"winrm", NULL, NULL}, "winrm"},
};

/* A transport that declares its types is asked; the table serves those that do not. */
static bool declared_suits(const char *declared, const char *type)
{
    size_t n = type ? strlen(type) : 0;
    for (const char *p = declared; n && *p;) {
        size_t len = strcspn(p, " ");
        if (len == n && memcmp(p, type, n) == 0)
            return true;
        p += len + (p[len] == ' ');
    }
    return false;
}

static bool type_suits(const char *transport, const char *declared, const char *type,
                       const char **want)
{
    if (declared) {
        *want = *declared ? declared : "no credential";
        return declared_suits(declared, type);
    }
    const struct cred_rule *rule = NULL;
    for (size_t i = 0; i < sizeof(cred_rules) / sizeof(cred_rules[0]); i++)
        if (strcmp(cred_rules[i].transport, transport) == 0)
            rule = &cred_rules[i];
    *want = rule ? rule->text : "a credential other than a secret";
    if (!type || strcmp(type, "secret") == 0)
        return false;
    for (const char *const *t = rule ? rule->types : NULL; t && *t; t++)
        if (strcmp(*t, type) == 0)
            return true;
    return !rule;
}

/* The credential must exist and be of a type the transport can use. */
static int check_credential(store_txn *txn, const json_t *rec, const char *declared, fleet_err *e)
{
    const char *cid = fld_str(rec, "credential_id");
    if (!cid)
        return 0;
    json_t *cred = NULL;
    int rc = store_get(txn, "credentials", cid, &cred);
    if (rc == OPSC_ENOENT)
        return fleet_fail(e, "credential_id", "credential %s does not exist", cid);
    if (rc < 0)
        return rc;
    const char *type = fld_str(cred, "type"), *tr = fld_str(rec, "transport"), *want;
    if (!type_suits(tr, declared, type, &want))
        rc = fleet_fail(e, "credential_id",
                        "credential '%s' is of type %s; the %s transport needs %s",
                        fld_str(cred, "name"), type ? type : "unknown", tr, want);
    json_decref(cred);
    return rc;
}

int target_insert(store_txn *txn, json_t *rec, const char *cred_types, fleet_err *e)
{
    char id[UUID_STR_LEN];
    int rc = 0;
    if (!fld_str(rec, "id")) {
        rc = uuid7_new(id);
        if (rc == 0)
            json_object_set_new(rec, "id", json_string(id));
    } else {
        snprintf(id, sizeof(id), "%s", fld_str(rec, "id"));
    }
    /* Every refusal comes before the first write, so one refused item of a
     * bulk import leaves the transaction clean for the others. */
    if (rc == 0)
        rc = check_credential(txn, rec, cred_types, e);
    if (rc == 0)
        rc = fleet_name_free(txn, "targets_by_name", "target", fld_str(rec, "name"), id, e);
    if (rc == 0)
        rc = store_create(txn, "targets", rec);
    if (rc == 0)
        rc = store_index_put(txn, "targets_by_name", fld_str(rec, "name"), id);
    const char *cid = fld_str(rec, "credential_id");
    if (rc == 0 && cid)
        rc = fleet_link(txn, "targets_by_credential", cid, id);
    return rc;
}

int target_replace(store_txn *txn, const json_t *before, json_t *rec, int64_t expect,
                   const char *cred_types, fleet_err *e)
{
    const char *id = fld_str(rec, "id");
    const char *old = fld_str(before, "name"), *now = fld_str(rec, "name");
    const char *ocred = fld_str(before, "credential_id"), *ncred = fld_str(rec, "credential_id");
    bool renamed = strcmp(old, now) != 0;
    bool recred = !fleet_same(json_object_get(before, "credential_id"),
                              json_object_get(rec, "credential_id"));
    int rc = check_credential(txn, rec, cred_types, e);
    if (rc == 0 && renamed)
        rc = fleet_name_free(txn, "targets_by_name", "target", now, id, e);
    if (rc == 0)
        rc = store_update(txn, "targets", rec, expect);
    if (rc == 0 && renamed)
        rc = store_index_put(txn, "targets_by_name", now, id);
    if (rc == 0 && renamed)
        rc = store_index_del(txn, "targets_by_name", old);
    if (rc == 0 && recred && ocred)
        rc = fleet_unlink(txn, "targets_by_credential", ocred, id);
    if (rc == 0 && recred && ncred)
        rc = fleet_link(txn, "targets_by_credential", ncred, id);
    return rc;
}

int target_remove(store_txn *txn, const char *id, int64_t expect, json_t **before)
{
    json_t *rec = NULL;
    int rc = store_get(txn, "targets", id, &rec);
    if (rc == 0)
        rc = store_delete(txn, "targets", id, expect);
    if (rc == 0)
        rc = store_index_del(txn, "targets_by_name", fld_str(rec, "name"));
    const char *cid = fld_str(rec, "credential_id");
    if (rc == 0 && cid)
        rc = fleet_unlink(txn, "targets_by_credential", cid, id);
    if (rc == 0)
        rc = group_drop_target(txn, id);
    if (rc == 0 && before)
        *before = json_incref(rec);
    json_decref(rec);
    return rc;
}

/* ---- host keys ------------------------------------------------------------------------------ */

int target_host_key_add(store_txn *txn, const char *id, const char *type, const char *fingerprint,
                        const char *source, bool *added, json_t **out, fleet_err *e)
{
    *added = false;
    if (out)
        *out = NULL;
    if (!host_key_type_valid(type) || !host_key_fingerprint_valid(fingerprint))
        return fleet_fail(e, "fingerprint",
                          "a host key is a type (\"ssh-ed25519\") and a fingerprint "
                          "\"SHA256:<43 base64 characters>\"");
    json_t *rec = NULL;
    int rc = store_get(txn, "targets", id, &rec);
    json_t *keys = rc == 0 ? json_object_get(rec, "host_keys") : NULL;
    if (rc == 0 && !json_is_array(keys)) {
        keys = json_array();
        json_object_set_new(rec, "host_keys", keys);
    }
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (rc < 0 || strcmp(fld_str(k, "type"), type) != 0)
            continue;
        if (strcmp(fld_str(k, "fingerprint"), fingerprint) == 0)
            goto done; /* known already */
        fleet_fail(e, "fingerprint",
                   "host key of %s has CHANGED: recorded %s %s, now %s %s; if the host was "
                   "legitimately rekeyed, reset its host keys (DELETE "
                   "/api/v1/targets/%s/host-keys)",
                   fld_str(rec, "name"), type, fld_str(k, "fingerprint"), type, fingerprint, id);
        rc = OPSC_EHOSTKEY;
    }
    if (rc == 0)
        rc = json_array_append_new(keys, host_key_entry(type, fingerprint, source)) == 0
                 ? 0
                 : OPSC_ENOMEM;
    if (rc == 0)
        rc = store_update(txn, "targets", rec, 0);
    *added = rc == 0;
done:
    if (rc == 0 && out)
        *out = json_incref(rec);
    json_decref(rec);
    return rc;
}

int target_host_keys_reset(store_txn *txn, const char *id, int64_t expect, json_t **out)
{
    json_t *rec = NULL;
    int rc = store_get(txn, "targets", id, &rec);
    if (rc == 0)
        rc = json_object_set_new(rec, "host_keys", json_array()) == 0 ? 0 : OPSC_ENOMEM;
    if (rc == 0)
        rc = store_update(txn, "targets", rec, expect);
    if (rc == 0 && out)
        *out = json_incref(rec);
    json_decref(rec);
    return rc;
}
