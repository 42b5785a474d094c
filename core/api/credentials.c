/* credentials.c - /api/v1/credentials (metadata and fingerprints only, never secrets) and
 * /api/v1/vault/rotate-key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "auth.h"
#include "core.h"
#include "http.h"
#include "identity.h"
#include "rest.h"
#include "util.h"
#include "vault.h"

static struct opsc_core *core_of(http_req *req)
{
    return http_req_app(req);
}

/* A credential being written: validated fields, secrets, and what checking
 * the key material said. */
typedef struct cred_op {
    http_req *req;
    char id[40];
    int64_t expect;
    bool create;
    json_t *existing; /* PATCH: the stored record */
    json_t *meta;     /* clear fields */
    json_t *secrets;  /* full decrypted set to seal, or NULL to keep the stored envelope */
    json_t *warnings;
    int rc;
    char err[256];
    json_t *result;
} cred_op;

static void op_free(cred_op *op)
{
    json_decref(op->existing);
    json_decref(op->meta);
    vault_secrets_free(op->secrets);
    json_decref(op->warnings);
    json_decref(op->result);
    free(op);
}

/* ---- writing -------------------------------------------------------------------------- */

static int rename_index(store_txn *txn, json_t *before, json_t *after)
{
    const char *old = json_string_value(json_object_get(before, "name"));
    const char *now = json_string_value(json_object_get(after, "name"));
    const char *id = json_string_value(json_object_get(after, "id"));
    if (old && strcmp(old, now) == 0)
        return 0;
    int rc = store_index_put(txn, "credentials_by_name", now, id);
    if (rc == 0 && old)
        rc = store_index_del(txn, "credentials_by_name", old);
    return rc;
}

static int write_cred(store_txn *txn, void *ud)
{
    cred_op *op = ud;
    vault *v = core_of(op->req)->vault;
    json_t *rec = op->create ? json_object() : json_deep_copy(op->existing);
    int rc = rec ? 0 : OPSC_ENOMEM;
    if (rc == 0 && !op->create) { /* clear fields are replaced as a whole */
        static const char *const clear[] = {"name",     "description", "username",
                                            "domain",   "auth",        "fingerprint",
                                            "key_type", "key_bits",    NULL};
        for (const char *const *k = clear; *k; k++)
            if (op->secrets ||
                (strcmp(*k, "fingerprint") && strcmp(*k, "key_type") && strcmp(*k, "key_bits")))
                json_object_del(rec, *k);
    }
    if (rc == 0)
        rc = json_object_update(rec, op->meta) == 0 ? 0 : OPSC_ENOMEM;
    if (rc == 0)
        json_object_set_new(rec, "id", json_string(op->id));
    if (rc == 0 && op->secrets)
        rc = vault_secrets_seal(v, rec, op->secrets);
    if (rc == 0)
        rc = op->create ? store_create(txn, "credentials", rec)
                        : store_update(txn, "credentials", rec, op->expect);
    if (rc == 0)
        rc = rename_index(txn, op->create ? NULL : op->existing, rec);
    json_decref(op->result);
    op->result = rc == 0 ? credential_public(rec) : NULL;
    json_decref(rec);
    return rc;
}

static void respond_written(cred_op *op, int rc)
{
    http_req *req = op->req;
    if (rc == OPSC_ESCHEMA) {
        http_respond_error(req, 400, "invalid_credential", NULL, "%s", op->err);
        return;
    }
    if (rc == OPSC_EEXIST) {
        http_respond_error(req, 409, "conflict", NULL, "a credential with this name exists");
        return;
    }
    if (rc < 0) {
        rest_error(req, rc, "credential");
        return;
    }
    json_object_set(op->result, "warnings", op->warnings);
    auth_set_object(req, op->id);
    if (op->create) {
        rest_created(req, "/api/v1/credentials", json_incref(op->result));
    } else {
        rest_etag(req, op->result);
        http_respond_json(req, 200, json_incref(op->result));
    }
}

/* ---- checking key material on a worker ------------------------------------------------ */

static void check_work(void *ud)
{
    cred_op *op = ud;
    op->rc = credential_check(op->meta, op->secrets, op->warnings, op->err, sizeof(op->err));
}

static void check_after(void *ud, int status)
{
    cred_op *op = ud;
    int rc = status < 0 ? status : op->rc;
    if (rc == 0)
        rc = store_write(core_of(op->req)->store, write_cred, op);
    if (rc == OPSC_ECANCELED)
        http_respond_error(op->req, 503, "unavailable", NULL, "the server is stopping");
    else
        respond_written(op, rc);
    http_req_unref(op->req);
    op_free(op);
}

static bool needs_check(cred_op *op, json_t *changes)
{
    const char *type = json_string_value(json_object_get(op->meta, "type"));
    if (strcmp(type, "ssh_key") == 0)
        return op->create || json_object_get(changes, "private_key") ||
               json_object_get(changes, "passphrase") || json_object_get(changes, "certificate");
    return strcmp(type, "winrm") == 0 && json_object_get(changes, "certificate");
}

static int submit(cred_op *op, json_t *changes)
{
    if (!op->secrets || !needs_check(op, changes)) {
        respond_written(op, store_write(core_of(op->req)->store, write_cred, op));
        op_free(op);
        return HTTP_DONE;
    }
    http_req_ref(op->req);
    int rc =
        hash_queue_submit(auth_slow_queue(core_of(op->req)->auth), check_work, check_after, op);
    if (rc == 0)
        return HTTP_ASYNC;
    http_req_unref(op->req);
    rest_busy(op->req, "too much key checking in progress");
    op_free(op);
    return HTTP_DONE;
}

static cred_op *new_op(http_req *req, bool create)
{
    cred_op *op = calloc(1, sizeof(*op));
    if (op && !(op->warnings = json_array())) {
        free(op);
        op = NULL;
    }
    if (!op)
        http_respond_opsc_error(req, OPSC_ENOMEM, "out of memory");
    else {
        op->req = req;
        op->create = create;
    }
    return op;
}

/* ---- handlers ------------------------------------------------------------------------------ */

static int create_credential(http_req *req)
{
    json_t *body = rest_body(req);
    cred_op *op = body ? new_op(req, true) : NULL;
    if (!op)
        return HTTP_DONE;
    int rc = credential_parse(body, true, NULL, &op->meta, &op->secrets, op->err, sizeof(op->err));
    if (rc == 0)
        rc = uuid7_new(op->id);
    rest_wipe_body(req); /* secrets now live in op->secrets only */
    if (rc < 0) {
        respond_written(op, rc);
        op_free(op);
        return HTTP_DONE;
    }
    return submit(op, op->secrets);
}

struct one {
    const char *id;
    json_t *rec;
};

static int get_txn(store_txn *txn, void *ud)
{
    struct one *o = ud;
    return store_get(txn, "credentials", o->id, &o->rec);
}

static int update_credential(http_req *req)
{
    json_t *body = rest_body(req);
    int64_t expect = body ? rest_if_match(req) : -1;
    cred_op *op = expect >= 0 ? new_op(req, false) : NULL;
    if (!op)
        return HTTP_DONE;
    op->expect = expect;
    snprintf(op->id, sizeof(op->id), "%s", http_req_param(req, "id"));
    struct one o = {op->id, NULL};
    json_t *changes = NULL;
    int rc = store_read(core_of(req)->store, get_txn, &o);
    op->existing = o.rec;
    if (rc == 0)
        rc = credential_parse(body, false, op->existing, &op->meta, &changes, op->err,
                              sizeof(op->err));
    rest_wipe_body(req);
    if (rc == 0 && json_object_size(changes) > 0) { /* re-seal the whole set under a new DEK */
        rc = vault_secrets_open(core_of(req)->vault, op->existing, &op->secrets);
        if (rc == 0)
            credential_merge_secrets(op->secrets, changes);
    }
    if (rc < 0) {
        vault_secrets_free(changes);
        respond_written(op, rc);
        op_free(op);
        return HTTP_DONE;
    }
    int r = submit(op, changes);
    vault_secrets_free(changes);
    return r;
}

static int get_credential(http_req *req)
{
    struct one o = {http_req_param(req, "id"), NULL};
    int rc = store_read(core_of(req)->store, get_txn, &o);
    if (rc < 0) {
        rest_error(req, rc, "credential");
        return HTTP_DONE;
    }
    rest_etag(req, o.rec);
    http_respond_json(req, 200, credential_public(o.rec));
    json_decref(o.rec);
    return HTTP_DONE;
}

struct del {
    const char *id;
    int64_t expect;
    bool force;
    json_t *users;
};

static int delete_txn(store_txn *txn, void *ud)
{
    struct del *d = ud;
    json_t *rec = NULL;
    int rc = store_get(txn, "credentials", d->id, &rec);
    if (rc == 0)
        rc = credential_users(txn, d->id, &d->users);
    if (rc == 0 && json_array_size(d->users) > 0 && !d->force)
        rc = OPSC_EBUSY;
    if (rc == 0)
        rc = store_delete(txn, "credentials", d->id, d->expect);
    if (rc == 0)
        rc = store_index_del(txn, "credentials_by_name",
                             json_string_value(json_object_get(rec, "name")));
    json_decref(rec);
    return rc;
}

static int delete_credential(http_req *req)
{
    struct del d = {http_req_param(req, "id"), rest_if_match(req), rest_query_bool(req, "force"),
                    NULL};
    if (d.expect < 0)
        return HTTP_DONE;
    int rc = store_write(core_of(req)->store, delete_txn, &d);
    if (rc == OPSC_EBUSY) {
        http_respond_error(req, 409, "in_use", json_pack("{s:O}", "used_by", d.users),
                           "the credential is used by %zu target(s); delete with ?force=true to "
                           "delete it anyway",
                           json_array_size(d.users));
    } else if (rc < 0) {
        rest_error(req, rc, "credential");
    } else {
        http_respond_empty(req, 204);
    }
    json_decref(d.users);
    return HTTP_DONE;
}

static int list_credentials(http_req *req)
{
    rest_scan s = {.db = "credentials", .view = credential_public};
    return rest_list_records(req, core_of(req)->store, &s, "credentials");
}

static int rotate_key(http_req *req)
{
    struct opsc_core *c = core_of(req);
    char err[512] = "";
    size_t n = 0;
    int rc = vault_rotate(c->vault, NULL, &n, err, sizeof(err));
    if (rc == OPSC_EINVAL) {
        http_respond_error(req, 409, "conflict", NULL, "%s", err);
        return HTTP_DONE;
    }
    if (rc < 0 && n == 0) {
        http_respond_opsc_error(req, rc, "%s", err);
        return HTTP_DONE;
    }
    auth_set_object(req, vault_key_id(c->vault));
    http_respond_json(
        req, 200,
        json_pack("{s:s, s:I}", "key_id", vault_key_id(c->vault), "rewrapped", (json_int_t)n));
    return HTTP_DONE;
}

#define CRED_PROPS                                                                                 \
    "\"name\":{\"type\":\"string\"},\"type\":{\"type\":\"string\",\"enum\":[\"ssh_key\","          \
    "\"ssh_password\",\"winrm\",\"secret\"]},\"username\":{\"type\":\"string\"},"                  \
    "\"description\":{\"type\":\"string\"},\"domain\":{\"type\":\"string\"},\"auth\":"             \
    "{\"type\":\"string\",\"enum\":[\"basic\",\"ntlm\",\"kerberos\",\"certificate\"]}"
#define CRED_SCHEMA                                                                                \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"}," CRED_PROPS                \
    ",\"fingerprint\":{\"type\":\"string\",\"readOnly\":true},\"key_type\":{\"type\":"             \
    "\"string\"},\"warnings\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"               \
    "\"created_at\":{\"type\":\"string\"},\"updated_at\":{\"type\":\"string\"},"                   \
    "\"version\":{\"type\":\"integer\"}}}"
#define CRED_WRITE_SCHEMA                                                                          \
    "{\"type\":\"object\",\"properties\":{" CRED_PROPS                                             \
    ",\"private_key\":{\"type\":\"string\",\"writeOnly\":true},\"passphrase\":{\"type\":"          \
    "\"string\",\"writeOnly\":true},\"password\":{\"type\":\"string\",\"writeOnly\":true},"        \
    "\"value\":{\"type\":\"string\",\"writeOnly\":true},\"certificate\":{\"type\":\"string\","     \
    "\"writeOnly\":true}}}"

static const http_route routes[] = {
    {"GET", "/api/v1/credentials", ROLE_VIEWER, list_credentials, 0, "credentials",
     "List credentials (metadata only)", NULL,
     "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":" CRED_SCHEMA
     "},\"next_cursor\":{\"type\":[\"string\",\"null\"]}}}"},
    {"POST", "/api/v1/credentials", ROLE_OPERATOR, create_credential, HTTP_ROUTE_JSON_BODY,
     "credentials", "Store a credential; secrets are encrypted and never returned",
     CRED_WRITE_SCHEMA, CRED_SCHEMA, 201},
    {"GET", "/api/v1/credentials/{id}", ROLE_VIEWER, get_credential, 0, "credentials",
     "Get a credential's metadata and fingerprint", NULL, CRED_SCHEMA},
    {"PATCH", "/api/v1/credentials/{id}", ROLE_OPERATOR, update_credential, HTTP_ROUTE_JSON_BODY,
     "credentials", "Change a credential (If-Match); null clears an optional field",
     CRED_WRITE_SCHEMA, CRED_SCHEMA},
    {"DELETE", "/api/v1/credentials/{id}", ROLE_OPERATOR, delete_credential, 0, "credentials",
     "Delete a credential; refused with its users while targets use it, unless ?force=true", NULL,
     NULL, 204},
    {"POST", "/api/v1/vault/rotate-key", ROLE_ADMIN, rotate_key, 0, "vault",
     "Rotate the master key: re-wrap every credential's data key", NULL,
     "{\"type\":\"object\",\"properties\":{\"key_id\":{\"type\":\"string\"},\"rewrapped\":"
     "{\"type\":\"integer\"}}}"},
};

int api_credentials_register(struct opsc_core *c)
{
    return http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
}
