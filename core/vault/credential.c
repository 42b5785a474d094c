/* credential.c - credential records: request validation, sealing, the public view, use by targets,
 * decryption. */
#include "vault_internal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "b64.h"
#include "sshkey.h"
#include "util.h"

static const char *const secret_fields[] = {CREDENTIAL_SECRET_FIELDS};
#define NSECRETS (sizeof(secret_fields) / sizeof(secret_fields[0]))

/* Field, its size limit, and the types it applies to ("*" = all). */
static const struct field {
    const char *name;
    size_t max;
    const char *types;
} fields[] = {
    {"name", 128, "*"},
    {"type", 16, "*"},
    {"description", 1024, "*"},
    {"username", 256, "ssh_key ssh_password winrm secret"},
    {"domain", 256, "winrm"},
    {"auth", 16, "winrm"},
    {"private_key", 64 * 1024, "ssh_key"},
    {"passphrase", 1024, "ssh_key"},
    {"password", 4096, "ssh_password winrm"},
    {"value", 64 * 1024, "secret"},
    {"certificate", 64 * 1024, "winrm ssh_key"},
};

static const struct field *find_field(const char *name)
{
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    return NULL;
}

static bool is_secret(const char *name)
{
    for (size_t i = 0; i < NSECRETS; i++)
        if (strcmp(secret_fields[i], name) == 0)
            return true;
    return false;
}

static bool applies(const struct field *f, const char *type)
{
    if (strcmp(f->types, "*") == 0)
        return true;
    const char *p = strstr(f->types, type);
    size_t n = strlen(type);
    return p && (p[n] == ' ' || p[n] == '\0') && (p == f->types || p[-1] == ' ');
}

static bool type_valid(const char *t)
{
    return t && (strcmp(t, "ssh_key") == 0 || strcmp(t, "ssh_password") == 0 ||
                 strcmp(t, "winrm") == 0 || strcmp(t, "secret") == 0);
}

static bool auth_valid(const char *a)
{
    return strcmp(a, "basic") == 0 || strcmp(a, "ntlm") == 0 || strcmp(a, "kerberos") == 0 ||
           strcmp(a, "certificate") == 0;
}

static int fail(char *err, size_t errlen, const char *fmt, const char *name)
{
    snprintf(err, errlen, fmt, name);
    return OPSC_ESCHEMA;
}

/* Is the secret `name` set after this request? */
static bool secret_present(json_t *secrets, json_t *existing, const char *name)
{
    json_t *v = json_object_get(secrets, name);
    if (v)
        return json_is_string(v);
    json_t *sealed = json_object_get(json_object_get(existing, "secret"), "fields");
    return json_object_get(sealed, name) != NULL;
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int check_required(json_t *meta, json_t *secrets, json_t *existing, char *err, size_t errlen)
{
    const char *type = str(meta, "type");
    const char *name = str(meta, "name");
    if (!name || !*name)
        return fail(err, errlen, "%s is required", "name");
    if (strcmp(type, "ssh_key") == 0 || strcmp(type, "ssh_password") == 0 ||
        strcmp(type, "winrm") == 0) {
        const char *u = str(meta, "username");
        if (!u || !*u)
            return fail(err, errlen, "%s is required", "username");
    }
    const char *need = strcmp(type, "ssh_key") == 0        ? "private_key"
                       : strcmp(type, "ssh_password") == 0 ? "password"
                       : strcmp(type, "secret") == 0       ? "value"
                                                           : NULL;
    if (strcmp(type, "winrm") == 0) {
        if (!str(meta, "auth"))
            json_object_set_new(meta, "auth", json_string("ntlm"));
        if (!auth_valid(str(meta, "auth")))
            return fail(err, errlen, "%s must be basic, ntlm, kerberos or certificate", "auth");
        need = strcmp(str(meta, "auth"), "certificate") == 0 ? "certificate" : "password";
    }
    if (need && !secret_present(secrets, existing, need))
        return fail(err, errlen, "%s is required for this type", need);
    return 0;
}

/* One member of the body: type-check and file it as clear or secret. */
static int take(const char *key, json_t *v, const char *type, json_t *meta, json_t *secrets,
                char *err, size_t errlen)
{
    const struct field *f = find_field(key);
    if (!f)
        return fail(err, errlen, "unknown or read-only field '%s'", key);
    if (!applies(f, type))
        return fail(err, errlen, "%s does not apply to this credential type", key);
    if (json_is_null(v) && strcmp(key, "name") != 0 && strcmp(key, "type") != 0) {
        json_object_del(meta, key); /* null clears an optional field */
        return is_secret(key) ? json_object_set_new(secrets, key, json_null()) : 0;
    }
    if (!json_is_string(v))
        return fail(err, errlen, "%s must be a string", key);
    if (json_string_length(v) > f->max || memchr(json_string_value(v), '\0', json_string_length(v)))
        return fail(err, errlen, "%s is too long or holds a NUL character", key);
    /* A copy: the request body is wiped once parsed. */
    return json_object_set_new(is_secret(key) ? secrets : meta, key, json_deep_copy(v)) == 0
               ? 0
               : OPSC_ENOMEM;
}

int credential_parse(json_t *body, bool create, json_t *existing, json_t **meta_out,
                     json_t **secrets_out, char *err, size_t errlen)
{
    if (!json_is_object(body))
        return fail(err, errlen, "%s", "the body must be a JSON object");
    const char *type = create ? str(body, "type") : str(existing, "type");
    if (!type_valid(type))
        return fail(err, errlen, "%s must be ssh_key, ssh_password, winrm or secret", "type");
    if (!create && json_object_get(body, "type") &&
        !json_equal(json_object_get(body, "type"), json_object_get(existing, "type")))
        return fail(err, errlen, "%s cannot change; create another credential", "type");
    json_t *meta = json_object(), *secrets = json_object();
    int rc = meta && secrets ? 0 : OPSC_ENOMEM;
    if (rc == 0 && !create) { /* start from the stored clear fields */
        const char *k;
        json_t *v;
        json_object_foreach(existing, k, v) if (find_field(k) && !is_secret(k))
            json_object_set(meta, k, v);
    }
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (rc == 0)
            rc = take(key, v, type, meta, secrets, err, errlen);
    }
    if (rc == 0)
        rc = check_required(meta, secrets, existing, err, errlen);
    if (rc < 0) {
        json_decref(meta);
        vault_secrets_free(secrets);
        return rc;
    }
    *meta_out = meta;
    *secrets_out = secrets;
    return 0;
}

/* ---- sealing and opening ------------------------------------------------------------------ */

int vault_secrets_seal(vault *v, json_t *rec, json_t *secrets)
{
    const char *id = str(rec, "id");
    json_t *env = NULL;
    int rc = id ? vault_envelope_seal(&v->key, id, secrets, &env) : OPSC_EINVAL;
    if (rc == 0)
        rc = json_object_set_new(rec, "secret", env) == 0 ? 0 : OPSC_ENOMEM;
    return rc;
}

int vault_secrets_open(vault *v, json_t *rec, json_t **out)
{
    json_t *secrets = json_object();
    json_t *env = json_object_get(rec, "secret");
    const char *id = str(rec, "id");
    int rc = secrets ? 0 : OPSC_ENOMEM;
    json_t *sealed = json_object_get(env, "fields");
    const char *name;
    json_t *blob;
    json_object_foreach(sealed, name, blob)
    {
        char *value = NULL;
        (void)blob;
        if (rc == 0)
            rc = id ? vault_envelope_open(&v->key, id, env, name, &value) : OPSC_ECORRUPT;
        if (rc == 0 && value)
            rc = json_object_set_new(secrets, name, json_string(value)) == 0 ? 0 : OPSC_ENOMEM;
        vault_secret_free(value);
    }
    if (rc < 0) {
        vault_secrets_free(secrets);
        return rc;
    }
    *out = secrets;
    return 0;
}

void vault_secrets_free(json_t *secrets)
{
    const char *k;
    json_t *v;
    json_object_foreach(secrets, k, v) if (json_is_string(v))
        secure_zero((char *)json_string_value(v), json_string_length(v));
    json_decref(secrets);
}

json_t *credential_public(json_t *rec)
{
    json_t *pub = json_copy(rec);
    if (pub)
        json_object_del(pub, "secret");
    return pub;
}

/* ---- users of a credential ----------------------------------------------------------------- */

struct users_scan {
    store_txn *txn;
    size_t prefix_len;
    json_t *users;
};

static int add_user(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    struct users_scan *u = ud;
    (void)val, (void)vlen;
    char target[64];
    size_t n = klen - u->prefix_len;
    if (klen <= u->prefix_len || n >= sizeof(target))
        return 0;
    memcpy(target, (const char *)key + u->prefix_len, n);
    target[n] = '\0';
    json_t *t = NULL;
    const char *name = NULL;
    if (store_get(u->txn, "targets", target, &t) == 0)
        name = str(t, "name");
    json_t *e = json_pack("{s:s, s:s?}", "id", target, "name", name);
    json_decref(t);
    return e && json_array_append_new(u->users, e) == 0 ? 0 : OPSC_ENOMEM;
}

int credential_users(store_txn *txn, const char *id, json_t **users)
{
    char prefix[64];
    int n = snprintf(prefix, sizeof(prefix), "%s/", id);
    struct users_scan u = {txn, (size_t)n, json_array()};
    if (!u.users)
        return OPSC_ENOMEM;
    int rc = store_kv_scan(txn, "targets_by_credential", prefix, (size_t)n, add_user, &u);
    if (rc < 0) {
        json_decref(u.users);
        return rc;
    }
    *users = u.users;
    return 0;
}

/* ---- for transports ------------------------------------------------------------------------ */

static char *dup_opt(json_t *o, const char *k)
{
    const char *v = str(o, k);
    return v ? strdup(v) : NULL;
}

int vault_credential_open(vault *v, store_txn *txn, const char *id, opsc_credential *out, char *err,
                          size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->size = sizeof(*out);
    json_t *rec = NULL, *secrets = NULL;
    int rc = store_get(txn, "credentials", id, &rec);
    if (rc == 0)
        rc = vault_secrets_open(v, rec, &secrets);
    if (rc == 0) {
        out->type = dup_opt(rec, "type");
        out->username = dup_opt(rec, "username");
        out->domain = dup_opt(rec, "domain");
        out->auth = dup_opt(rec, "auth");
        out->password = dup_opt(secrets, "password");
        out->private_key = dup_opt(secrets, "private_key");
        out->passphrase = dup_opt(secrets, "passphrase");
        out->certificate = dup_opt(secrets, "certificate");
    }
    if (rc < 0)
        snprintf(err, errlen, "credential %s: %s", id,
                 rc == OPSC_ECRYPTO ? "cannot be decrypted with the current master key"
                                    : opsc_strerror(rc));
    vault_secrets_free(secrets);
    json_decref(rec);
    return rc;
}

static void free_field(const char **f)
{
    char *s = (char *)*f;
    if (s) {
        secure_zero(s, strlen(s));
        free(s);
    }
    *f = NULL;
}

void vault_credential_close(opsc_credential *c)
{
    free_field(&c->type);
    free_field(&c->username);
    free_field(&c->domain);
    free_field(&c->auth);
    free_field(&c->password);
    free_field(&c->private_key);
    free_field(&c->passphrase);
    free_field(&c->certificate);
}

/* ---- key material checks (blocking) ------------------------------------------------------ */

static int no_prompt(char *buf, int size, int rwflag, void *ud)
{
    (void)buf, (void)size, (void)rwflag, (void)ud;
    return 0; /* OpenSSL's default callback would read /dev/tty */
}

static void sha256_fingerprint(const unsigned char *md, size_t n, char *out)
{
    memcpy(out, "SHA256:", 7);
    b64_encode(md, n, out + 7);
    char *pad = strchr(out, '=');
    if (pad)
        *pad = '\0'; /* ssh-keygen style: no padding */
}

static int check_certificate(const char *pem, json_t *meta, char *err, size_t errlen)
{
    BIO *b1 = BIO_new_mem_buf(pem, -1), *b2 = BIO_new_mem_buf(pem, -1);
    X509 *x = b1 ? PEM_read_bio_X509(b1, NULL, no_prompt, NULL) : NULL;
    EVP_PKEY *k = b2 ? PEM_read_bio_PrivateKey(b2, NULL, no_prompt, NULL) : NULL;
    int rc = 0;
    if (!x)
        rc = fail(err, errlen, "%s holds no PEM certificate", "certificate");
    else if (!k)
        rc = fail(err, errlen, "%s holds no unencrypted PEM private key", "certificate");
    else if (X509_check_private_key(x, k) != 1)
        rc = fail(err, errlen, "%s: the private key does not match the certificate", "certificate");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char fp[7 + B64_LEN(EVP_MAX_MD_SIZE) + 1];
    if (rc == 0 && X509_digest(x, EVP_sha256(), md, &n) == 1) {
        sha256_fingerprint(md, n, fp);
        json_object_set_new(meta, "fingerprint", json_string(fp));
    }
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(b1);
    BIO_free(b2);
    return rc;
}

static int check_ssh_key(json_t *meta, json_t *secrets, json_t *warnings, char *err, size_t errlen)
{
    sshkey_info info;
    int rc = sshkey_validate(str(secrets, "private_key"), str(secrets, "passphrase"), &info, err,
                             errlen);
    if (rc < 0)
        return OPSC_ESCHEMA;
    const char *cert = str(secrets, "certificate");
    if (cert && sshkey_cert_check(cert, &info, err, errlen) < 0)
        return OPSC_ESCHEMA;
    json_object_set_new(meta, "fingerprint", json_string(info.fingerprint));
    json_object_set_new(meta, "key_type", json_string(info.type));
    json_object_set_new(meta, "key_bits", json_integer(info.bits));
    if (info.warning[0])
        json_array_append_new(warnings, json_string(info.warning));
    if (info.passphrase_unused) {
        json_array_append_new(warnings,
                              json_string("passphrase ignored: the private key is not encrypted"));
        json_t *p = json_object_get(secrets, "passphrase");
        if (json_is_string(p))
            secure_zero((char *)json_string_value(p), json_string_length(p));
        json_object_del(secrets, "passphrase");
    }
    return 0;
}

int credential_check(json_t *meta, json_t *secrets, json_t *warnings, char *err, size_t errlen)
{
    const char *type = str(meta, "type");
    json_object_del(meta, "fingerprint");
    json_object_del(meta, "key_type");
    json_object_del(meta, "key_bits");
    if (type && strcmp(type, "ssh_key") == 0)
        return check_ssh_key(meta, secrets, warnings, err, errlen);
    if (type && strcmp(type, "winrm") == 0 && str(secrets, "certificate"))
        return check_certificate(str(secrets, "certificate"), meta, err, errlen);
    return 0;
}

void credential_merge_secrets(json_t *merged, json_t *changes)
{
    const char *k;
    json_t *v;
    json_object_foreach(changes, k, v)
    {
        json_t *old = json_object_get(merged, k);
        if (json_is_string(old))
            secure_zero((char *)json_string_value(old), json_string_length(old));
        if (json_is_null(v))
            json_object_del(merged, k);
        else
            json_object_set_new(merged, k, json_deep_copy(v)); /* `changes` gets wiped */
    }
}
