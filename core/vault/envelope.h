/* envelope.h - the vault's cryptography: master keys, AES-256-GCM, and per-record envelopes.
 *
 * Every credential record gets its own random data key (DEK). Each secret
 * field is sealed with the DEK; the DEK is sealed ("wrapped") with the
 * master key. Rotating the master key re-wraps DEKs only. Both layers are
 * AES-256-GCM with a fresh random 96-bit nonce per seal, and bind where the
 * ciphertext belongs through the AAD, so a blob copied to another record,
 * field, or key cannot be opened:
 *   wrapped DEK: "opsc-dek\0" record id "\0" master key id
 *   field:       "opsc-field\0" record id "\0" field name "\0" DEK id
 * The sealed form of a record's secrets, stored as JSON in the record:
 *   {"v": 1, "kid": master key id, "dek_id": "<hex>", "dek": "<b64>",
 *    "fields": {"<name>": "<b64 nonce||ciphertext||tag>", ...}}
 *
 * A master key has a public id (HMAC of a label, 16 hex) and a key check
 * value (HMAC of another label, 64 hex) that the store keeps, so a wrong
 * key is recognised at start-up instead of producing garbage later.
 *
 * Thread: pure functions, any thread. Keys are borrowed until return.
 * Decrypted text is returned in heap buffers to be released with
 * vault_secret_free(), which wipes them.
 */
#ifndef OPSC_ENVELOPE_H
#define OPSC_ENVELOPE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define VAULT_KEY_LEN       32
#define VAULT_NONCE_LEN     12
#define VAULT_TAG_LEN       16
#define VAULT_KID_LEN       17 /* 16 hex + NUL */
#define VAULT_KCV_LEN       65 /* 64 hex + NUL */
#define VAULT_SEAL_OVERHEAD (VAULT_NONCE_LEN + VAULT_TAG_LEN)
#define VAULT_FIELD_MAX     (1 << 20) /* one secret field holds at most 1 MiB */

typedef struct vault_key {
    uint8_t bytes[VAULT_KEY_LEN];
    char id[VAULT_KID_LEN];
} vault_key;

/* A new random key. */
int vault_key_generate(vault_key *k);
/* Parse base64 text (surrounding whitespace ignored) of exactly 32 bytes.
 * OPSC_EINVAL otherwise. */
int vault_key_parse(const char *text, vault_key *k);
/* Base64 text of the key + "\n", for the key file (wipe after use). */
void vault_key_format(const vault_key *k, char out[64]);
/* The key check value stored next to the data. */
void vault_key_check_value(const vault_key *k, char out[VAULT_KCV_LEN]);
void vault_key_wipe(vault_key *k);

/* AES-256-GCM. seal: out = nonce || ciphertext || tag (ptlen + overhead
 * bytes). open: OPSC_ECRYPTO when the tag does not verify (wrong key, AAD,
 * or tampering); pt gets inlen - overhead bytes. */
int vault_aead_seal(const uint8_t key[VAULT_KEY_LEN], const void *aad, size_t aadlen,
                    const void *pt, size_t ptlen, uint8_t *out);
int vault_aead_open(const uint8_t key[VAULT_KEY_LEN], const void *aad, size_t aadlen,
                    const uint8_t *in, size_t inlen, uint8_t *pt, size_t *ptlen);

/* Seal the string members of `plain` ({"field": "secret"}) for record
 * `record_id` under a new DEK. *out is a new reference (the sealed form). */
int vault_envelope_seal(const vault_key *master, const char *record_id, json_t *plain,
                        json_t **out);
/* Open one field. *value is a NUL-terminated heap copy (vault_secret_free()),
 * or NULL with 0 when the envelope has no such field. OPSC_ECRYPTO when the
 * key is wrong or the data was tampered with, OPSC_ECORRUPT when the sealed
 * form is malformed. */
int vault_envelope_open(const vault_key *master, const char *record_id, json_t *sealed,
                        const char *field, char **value);
/* Re-wrap the DEK of `sealed` (modified in place) from `old` to `fresh`. */
int vault_envelope_rewrap(const vault_key *old, const vault_key *fresh, const char *record_id,
                          json_t *sealed);
/* The master key id an envelope is wrapped with, or NULL. */
const char *vault_envelope_kid(json_t *sealed);

/* Wipe and free a decrypted secret. NULL is fine. */
void vault_secret_free(char *s);

#endif
