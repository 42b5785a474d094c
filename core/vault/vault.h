/* vault.h - the credentials vault: master key custody and rotation, credential records, decryption
 * for transports.
 *
 * Master key. 32 random bytes, from OPSC_MASTER_KEY (base64) when set, else
 * from the key file ([vault] key_file, default <data-dir>/master.key, mode
 * 0600 required), which is created at first start. The store keeps the key's
 * id and check value ("meta" vault.key); at open the key must match them:
 * a replaced or missing key file, or a wrong OPSC_MASTER_KEY, is a start-up
 * error naming both key ids, never a vault that decrypts garbage. A missing
 * key file is only created when the store holds no key check value yet.
 *
 * Rotation re-wraps every credential's data key with a new master key in
 * one write transaction. With a key file, the new key is first written to
 * <key_file>.new (fsynced), the transaction commits, then the file is
 * renamed over the old one; a crash between the two is finished at the next
 * open (the .new key matches the stored check value).
 *
 * Credentials are records of the "credentials" database (name unique
 * through "credentials_by_name"): metadata in clear, the secret fields
 * sealed in an envelope (envelope.h) under "secret", never returned by the
 * API. A credential is in use when the "targets_by_credential" index (keys
 * "<credential id>/<target id>", maintained by the targets module) has
 * entries under its id.
 *
 * Thread: loop thread (the master key may change under rotation), except
 * where a function says otherwise.
 */
#ifndef OPSC_VAULT_H
#define OPSC_VAULT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include <opsc/transport.h>

#include "envelope.h"
#include "store.h"

typedef struct vault vault;

typedef struct vault_opts {
    const char *data_dir;
    const char *key_file; /* "" or NULL: <data_dir>/master.key */
    const char *env_key;  /* the value of OPSC_MASTER_KEY, or NULL */
} vault_opts;

int vault_open(vault **out, store *s, const vault_opts *o, char *err, size_t errlen);
void vault_close(vault *v); /* wipes the key */

const char *vault_key_id(const vault *v);

/* Re-wrap every data key under `fresh` (NULL: a new random key). With a key
 * from the environment there is no file to write: `fresh` is required
 * (OPSC_EINVAL otherwise) and the caller must hand the new key over. */
int vault_rotate(vault *v, const vault_key *fresh, size_t *rewrapped, char *err, size_t errlen);

/* ---- credential records (credential.c) ------------------------------------ */

#define CREDENTIAL_SECRET_FIELDS "private_key", "passphrase", "password", "value", "certificate"

/* Validate a request body (`create`: POST; else PATCH over `existing`).
 * Splits it into the clear record fields (*meta, a new object) and the
 * secret fields (*secrets, a new object; wipe with vault_secrets_free).
 * 0 or OPSC_ESCHEMA with a message naming the field (never its value). */
int credential_parse(json_t *body, bool create, json_t *existing, json_t **meta, json_t **secrets,
                     char *err, size_t errlen);

/* Check the key material of a parsed credential (blocking: an encrypted
 * OpenSSH key costs a bcrypt_pbkdf run; call it on a worker thread). SSH
 * keys: format, passphrase, type; sets meta fingerprint, key_type,
 * key_bits, appends advice to `warnings`, and drops a passphrase the key does
 * not need. WinRM certificates: PEM certificate + matching unencrypted key;
 * sets the certificate's fingerprint. OPSC_ESCHEMA with a message. */
int credential_check(json_t *meta, json_t *secrets, json_t *warnings, char *err, size_t errlen);
/* Apply PATCH `changes` (null removes) to decrypted `merged` secrets. */
void credential_merge_secrets(json_t *merged, json_t *changes);

/* Decrypt every secret field of a stored record into a new object. */
int vault_secrets_open(vault *v, json_t *rec, json_t **secrets);
/* Zero the strings of `secrets` in place, then release it. */
void vault_secrets_free(json_t *secrets);

/* Seal `secrets` into rec["secret"] for the record id rec["id"]. */
int vault_secrets_seal(vault *v, json_t *rec, json_t *secrets);

/* The API's view of a record: everything but "secret". */
json_t *credential_public(json_t *rec);

/* Targets (id and name) that use the credential; *users is a new array. */
int credential_users(store_txn *txn, const char *id, json_t **users);

/* Fill `out` with the decrypted credential `id` for one connect. Every
 * string is a private copy wiped by vault_credential_close(). OPSC_ENOENT,
 * OPSC_ECRYPTO (wrong key or tampering), OPSC_ECORRUPT. */
int vault_credential_open(vault *v, store_txn *txn, const char *id, opsc_credential *out, char *err,
                          size_t errlen);
void vault_credential_close(opsc_credential *c);

#endif
