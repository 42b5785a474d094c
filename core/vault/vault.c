/* vault.c - master key custody: key file or environment, key check value in the store, rotation. */
#include "vault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "log.h"
#include "util.h"
#include "vault_internal.h"

#define META_KEY "vault.key"

struct key_meta {
    bool present;
    char kid[VAULT_KID_LEN];
    char kcv[VAULT_KCV_LEN];
};

static int read_meta(store_txn *txn, void *ud)
{
    struct key_meta *m = ud;
    const void *val;
    size_t n;
    int rc = store_kv_get(txn, "meta", META_KEY, strlen(META_KEY), &val, &n);
    if (rc == OPSC_ENOENT)
        return 0;
    json_t *j = rc == 0 ? json_loadb(val, n, 0, NULL) : NULL;
    const char *kid = json_string_value(json_object_get(j, "kid"));
    const char *kcv = json_string_value(json_object_get(j, "kcv"));
    if (rc == 0 && (!kid || !kcv || strlen(kid) >= sizeof(m->kid) || strlen(kcv) >= sizeof(m->kcv)))
        rc = OPSC_ECORRUPT;
    if (rc == 0) {
        m->present = true;
        snprintf(m->kid, sizeof(m->kid), "%s", kid);
        snprintf(m->kcv, sizeof(m->kcv), "%s", kcv);
    }
    json_decref(j);
    return rc;
}

int vault_write_meta(store_txn *txn, const vault_key *k)
{
    char kcv[VAULT_KCV_LEN];
    vault_key_check_value(k, kcv);
    json_t *j = json_pack("{s:s, s:s}", "kid", k->id, "kcv", kcv);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    int rc = text ? store_kv_put(txn, "meta", META_KEY, strlen(META_KEY), text, strlen(text))
                  : OPSC_ENOMEM;
    free(text);
    return rc;
}

static int write_meta_txn(store_txn *txn, void *ud)
{
    return vault_write_meta(txn, ud);
}

static bool key_matches(const vault_key *k, const struct key_meta *m)
{
    char kcv[VAULT_KCV_LEN];
    vault_key_check_value(k, kcv);
    return ct_equal(kcv, m->kcv, VAULT_KCV_LEN - 1) && strcmp(k->id, m->kid) == 0;
}

/* ---- the key file ------------------------------------------------------------------- */

static int read_key_file(const char *path, vault_key *k, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "master key file %s is accessible by group or others (mode %04o): "
                 "chmod 600 it",
                 path, (unsigned)(st.st_mode & 07777));
        return OPSC_EACCES;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = fs_read_file(path, 1024, &text, &len);
    if (rc == 0 && vault_key_parse(text, k) < 0) {
        snprintf(err, errlen, "master key file %s does not hold base64 of 32 bytes", path);
        rc = OPSC_EINVAL;
    } else if (rc < 0) {
        snprintf(err, errlen, "cannot read master key file %s: %s", path, opsc_strerror(rc));
    }
    if (text) {
        secure_zero(text, len);
        free(text);
    }
    return rc;
}

int vault_write_key_file(const char *path, const vault_key *k)
{
    char text[64];
    vault_key_format(k, text);
    int rc = fs_write_file(path, text, strlen(text), 0600);
    secure_zero(text, sizeof(text));
    return rc;
}

/* ---- open -------------------------------------------------------------------------------- */

static int load_key(vault *v, const vault_opts *o, const struct key_meta *m, char *err,
                    size_t errlen)
{
    if (o->env_key) {
        v->from_env = true;
        if (vault_key_parse(o->env_key, &v->key) < 0) {
            snprintf(err, errlen, "OPSC_MASTER_KEY is not base64 of 32 bytes");
            return OPSC_EINVAL;
        }
        return 0;
    }
    int rc = read_key_file(v->key_file, &v->key, err, errlen);
    if (rc != OPSC_ENOENT)
        return rc;
    char next[sizeof(v->key_file) + 8];
    snprintf(next, sizeof(next), "%s.new", v->key_file);
    if (m->present && access(next, F_OK) == 0 && rename(next, v->key_file) == 0) {
        log_warn("vault", "a key rotation died before renaming %s: renamed it", next);
        return read_key_file(v->key_file, &v->key, err, errlen);
    }
    if (m->present) {
        snprintf(err, errlen,
                 "master key file %s is missing, but the store holds credentials "
                 "sealed with master key %s: restore the file, or set "
                 "OPSC_MASTER_KEY",
                 v->key_file, m->kid);
        return OPSC_ENOENT;
    }
    rc = vault_key_generate(&v->key);
    if (rc == 0)
        rc = vault_write_key_file(v->key_file, &v->key);
    if (rc < 0)
        snprintf(err, errlen, "cannot create master key file %s: %s", v->key_file,
                 opsc_strerror(rc));
    else
        log_warn("vault",
                 "created master key %s in %s: back it up; without it stored "
                 "credentials cannot be decrypted",
                 v->key.id, v->key_file);
    return rc;
}

/* The key does not match the store: maybe a rotation committed and died
 * before renaming <key_file>.new into place. */
static int finish_rotation(vault *v, const struct key_meta *m, char *err, size_t errlen)
{
    char next[sizeof(v->key_file) + 8];
    snprintf(next, sizeof(next), "%s.new", v->key_file);
    vault_key k = {0};
    if (v->from_env || read_key_file(next, &k, err, errlen) < 0 || !key_matches(&k, m)) {
        snprintf(err, errlen,
                 "master key %s (from %s) does not match key %s that the store's "
                 "credentials are sealed with: refusing to start with a wrong key; "
                 "restore the right key file or OPSC_MASTER_KEY",
                 v->key.id, v->from_env ? "OPSC_MASTER_KEY" : v->key_file, m->kid);
        vault_key_wipe(&k);
        return OPSC_ECRYPTO;
    }
    int rc = rename(next, v->key_file) < 0 ? -errno : 0;
    if (rc == 0) {
        vault_key_wipe(&v->key);
        v->key = k;
        log_warn("vault", "finished an interrupted key rotation: master key is now %s", k.id);
    }
    vault_key_wipe(&k);
    return rc;
}

int vault_open(vault **out, store *s, const vault_opts *o, char *err, size_t errlen)
{
    vault *v = calloc(1, sizeof(*v));
    if (!v)
        return OPSC_ENOMEM;
    v->store = s;
    int rc = 0;
    if (o->key_file && *o->key_file)
        snprintf(v->key_file, sizeof(v->key_file), "%s", o->key_file);
    else
        rc = fs_join(v->key_file, sizeof(v->key_file), o->data_dir, "master.key");
    struct key_meta m = {0};
    if (rc == 0)
        rc = store_read(s, read_meta, &m);
    if (rc == 0)
        rc = load_key(v, o, &m, err, errlen);
    if (rc == 0 && m.present && !key_matches(&v->key, &m))
        rc = finish_rotation(v, &m, err, errlen);
    if (rc == 0 && !m.present)
        rc = store_write(s, write_meta_txn, &v->key);
    if (rc < 0) {
        if (!*err)
            snprintf(err, errlen, "vault: %s", opsc_strerror(rc));
        vault_close(v);
        return rc;
    }
    *out = v;
    return 0;
}

void vault_close(vault *v)
{
    if (!v)
        return;
    vault_key_wipe(&v->key);
    free(v);
}

const char *vault_key_id(const vault *v)
{
    return v->key.id;
}

/* ---- rotation ------------------------------------------------------------------------------ */

struct rotate {
    vault *v;
    const vault_key *fresh;
    size_t n;
};

static int collect_id(const char *id, json_t *rec, void *ud)
{
    (void)rec;
    json_t *ids = ud;
    return json_array_append_new(ids, json_string(id)) == 0 ? 0 : OPSC_ENOMEM;
}

static int rewrap_all(store_txn *txn, void *ud)
{
    struct rotate *r = ud;
    r->n = 0;
    json_t *ids = json_array();
    int rc = ids ? store_scan(txn, "credentials", NULL, false, collect_id, ids) : OPSC_ENOMEM;
    size_t i;
    json_t *idv;
    json_array_foreach(ids, i, idv)
    {
        json_t *rec = NULL;
        if (rc == 0)
            rc = store_get(txn, "credentials", json_string_value(idv), &rec);
        json_t *env = json_object_get(rec, "secret");
        if (rc == 0 && env)
            rc = vault_envelope_rewrap(&r->v->key, r->fresh, json_string_value(idv), env);
        if (rc == 0 && env)
            rc = store_update(txn, "credentials", rec, 0);
        r->n += rc == 0 && env;
        json_decref(rec);
    }
    json_decref(ids);
    return rc < 0 ? rc : vault_write_meta(txn, r->fresh);
}

int vault_rotate(vault *v, const vault_key *fresh, size_t *rewrapped, char *err, size_t errlen)
{
    vault_key k;
    if (!fresh && v->from_env) {
        snprintf(err, errlen,
                 "the master key comes from OPSC_MASTER_KEY: give the new key "
                 "(OPSC_MASTER_KEY_NEW) to rotate it");
        return OPSC_EINVAL;
    }
    int rc = fresh ? 0 : vault_key_generate(&k);
    if (fresh)
        k = *fresh;
    char next[sizeof(v->key_file) + 8];
    snprintf(next, sizeof(next), "%s.new", v->key_file);
    if (rc == 0 && !v->from_env)
        rc = vault_write_key_file(next, &k);
    if (rc < 0) {
        snprintf(err, errlen, "cannot write %s: %s", next, opsc_strerror(rc));
        vault_key_wipe(&k);
        return rc;
    }
    struct rotate r = {v, &k, 0};
    rc = store_write(v->store, rewrap_all, &r);
    if (rc < 0) {
        snprintf(err, errlen, "re-wrapping data keys failed: %s (nothing changed)",
                 opsc_strerror(rc));
        if (!v->from_env)
            unlink(next);
        vault_key_wipe(&k);
        return rc;
    }
    if (!v->from_env && rename(next, v->key_file) < 0) {
        rc = -errno; /* the store uses the new key; the next open finishes the rename */
        snprintf(err, errlen, "rotated, but renaming %s to %s failed: %s", next, v->key_file,
                 strerror(errno));
    }
    log_info("vault", "master key rotated from %s to %s: %zu data keys re-wrapped", v->key.id, k.id,
             r.n);
    vault_key_wipe(&v->key);
    v->key = k;
    vault_key_wipe(&k);
    *rewrapped = r.n;
    return rc;
}
