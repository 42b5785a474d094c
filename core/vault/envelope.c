/* envelope.c - AES-256-GCM through OpenSSL EVP, master-key ids and checks, per-record envelopes. */
#include "envelope.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "b64.h"
#include "util.h"

#define DEK_ID_BYTES 8
#define AAD_MAX      512

static void to_hex(const uint8_t *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void key_hmac(const vault_key *k, const char *label, uint8_t out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), k->bytes, VAULT_KEY_LEN, (const unsigned char *)label, strlen(label), out,
         &n);
}

static void key_set_id(vault_key *k)
{
    uint8_t mac[32];
    key_hmac(k, "opsconductor vault key id v1", mac);
    to_hex(mac, 8, k->id);
}

int vault_key_generate(vault_key *k)
{
    int rc = rand_bytes(k->bytes, VAULT_KEY_LEN);
    if (rc < 0)
        return rc;
    key_set_id(k);
    return 0;
}

int vault_key_parse(const char *text, vault_key *k)
{
    while (isspace((unsigned char)*text))
        text++;
    size_t len = strlen(text);
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    uint8_t buf[64];
    size_t n = 0;
    if (len > B64_LEN(sizeof(buf) - 2) || b64_decode(text, len, buf, &n) < 0 ||
        n != VAULT_KEY_LEN) {
        secure_zero(buf, sizeof(buf));
        return OPSC_EINVAL;
    }
    memcpy(k->bytes, buf, VAULT_KEY_LEN);
    secure_zero(buf, sizeof(buf));
    key_set_id(k);
    return 0;
}

void vault_key_format(const vault_key *k, char out[64])
{
    size_t n = b64_encode(k->bytes, VAULT_KEY_LEN, out);
    out[n] = '\n';
    out[n + 1] = '\0';
}

void vault_key_check_value(const vault_key *k, char out[VAULT_KCV_LEN])
{
    uint8_t mac[32];
    key_hmac(k, "opsconductor vault key check v1", mac);
    to_hex(mac, sizeof(mac), out);
}

void vault_key_wipe(vault_key *k)
{
    secure_zero(k, sizeof(*k));
}

/* ---- AES-256-GCM ----------------------------------------------------------- */

int vault_aead_seal(const uint8_t key[VAULT_KEY_LEN], const void *aad, size_t aadlen,
                    const void *pt, size_t ptlen, uint8_t *out)
{
    if (ptlen > VAULT_FIELD_MAX || aadlen > INT32_MAX)
        return OPSC_E2BIG;
    uint8_t *nonce = out, *ct = out + VAULT_NONCE_LEN, *tag = ct + ptlen;
    int rc = rand_bytes(nonce, VAULT_NONCE_LEN);
    if (rc < 0)
        return rc;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0;
    bool ok = c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, VAULT_NONCE_LEN, NULL) == 1 &&
              EVP_EncryptInit_ex(c, NULL, NULL, key, nonce) == 1 &&
              EVP_EncryptUpdate(c, NULL, &len, aad, (int)aadlen) == 1 &&
              EVP_EncryptUpdate(c, ct, &len, pt, (int)ptlen) == 1 &&
              EVP_EncryptFinal_ex(c, ct + len, &len) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, VAULT_TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : OPSC_ECRYPTO;
}

int vault_aead_open(const uint8_t key[VAULT_KEY_LEN], const void *aad, size_t aadlen,
                    const uint8_t *in, size_t inlen, uint8_t *pt, size_t *ptlen)
{
    if (inlen < VAULT_SEAL_OVERHEAD)
        return OPSC_ECORRUPT;
    size_t ctlen = inlen - VAULT_SEAL_OVERHEAD;
    if (ctlen > VAULT_FIELD_MAX || aadlen > INT32_MAX)
        return OPSC_E2BIG;
    const uint8_t *nonce = in, *ct = in + VAULT_NONCE_LEN, *tag = ct + ctlen;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0;
    bool ok = c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, VAULT_NONCE_LEN, NULL) == 1 &&
              EVP_DecryptInit_ex(c, NULL, NULL, key, nonce) == 1 &&
              EVP_DecryptUpdate(c, NULL, &len, aad, (int)aadlen) == 1 &&
              EVP_DecryptUpdate(c, pt, &len, ct, (int)ctlen) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, VAULT_TAG_LEN, (void *)tag) == 1;
    ok = ok && EVP_DecryptFinal_ex(c, pt + len, &fin) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        secure_zero(pt, ctlen);
        return OPSC_ECRYPTO;
    }
    *ptlen = ctlen;
    return 0;
}

/* ---- envelopes ------------------------------------------------------------------ */

/* "<label>\0<a>\0<b>": NUL-separated parts of NUL-free text cannot collide. */
static int build_aad(char *buf, size_t n, const char *label, const char *a, const char *b,
                     const char *c, size_t *len)
{
    const char *parts[4] = {label, a, b, c};
    size_t o = 0;
    for (int i = 0; i < 4 && parts[i]; i++) {
        size_t l = strlen(parts[i]) + 1;
        if (o + l > n)
            return OPSC_E2BIG;
        memcpy(buf + o, parts[i], l);
        o += l;
    }
    *len = o;
    return 0;
}

static int seal_b64(const uint8_t key[VAULT_KEY_LEN], const char *aad, size_t aadlen,
                    const void *pt, size_t ptlen, json_t **out)
{
    size_t blen = ptlen + VAULT_SEAL_OVERHEAD;
    uint8_t *blob = malloc(blen);
    char *text = malloc(B64_LEN(blen) + 1);
    int rc = blob && text ? vault_aead_seal(key, aad, aadlen, pt, ptlen, blob) : OPSC_ENOMEM;
    if (rc == 0) {
        b64_encode(blob, blen, text);
        *out = json_string(text);
        rc = *out ? 0 : OPSC_ENOMEM;
    }
    free(blob);
    free(text);
    return rc;
}

/* Decode and open a base64 blob into a new heap buffer (NUL-terminated). */
static int open_b64(const uint8_t key[VAULT_KEY_LEN], const char *aad, size_t aadlen, json_t *v,
                    uint8_t **pt, size_t *ptlen)
{
    if (!json_is_string(v) || json_string_length(v) > B64_LEN(VAULT_FIELD_MAX + 64))
        return OPSC_ECORRUPT;
    size_t tlen = json_string_length(v), blen = 0;
    uint8_t *blob = malloc(tlen / 4 * 3 + 3);
    if (!blob)
        return OPSC_ENOMEM;
    int rc = b64_decode(json_string_value(v), tlen, blob, &blen) < 0 ? OPSC_ECORRUPT : 0;
    if (rc == 0 && blen < VAULT_SEAL_OVERHEAD)
        rc = OPSC_ECORRUPT;
    uint8_t *out = rc == 0 ? malloc(blen - VAULT_SEAL_OVERHEAD + 1) : NULL;
    if (rc == 0 && !out)
        rc = OPSC_ENOMEM;
    if (rc == 0)
        rc = vault_aead_open(key, aad, aadlen, blob, blen, out, ptlen);
    free(blob);
    if (rc < 0) {
        free(out);
        return rc;
    }
    out[*ptlen] = '\0';
    *pt = out;
    return 0;
}

static int wrap_dek(const vault_key *master, const char *record_id, const uint8_t *dek,
                    json_t **out)
{
    char aad[AAD_MAX];
    size_t alen;
    int rc = build_aad(aad, sizeof(aad), "opsc-dek", record_id, master->id, NULL, &alen);
    return rc < 0 ? rc : seal_b64(master->bytes, aad, alen, dek, VAULT_KEY_LEN, out);
}

static int unwrap_dek(const vault_key *master, const char *record_id, json_t *sealed,
                      uint8_t dek[VAULT_KEY_LEN])
{
    const char *kid = vault_envelope_kid(sealed);
    if (!kid)
        return OPSC_ECORRUPT;
    if (strcmp(kid, master->id) != 0)
        return OPSC_ECRYPTO; /* sealed under another master key */
    char aad[AAD_MAX];
    size_t alen, n = 0;
    int rc = build_aad(aad, sizeof(aad), "opsc-dek", record_id, master->id, NULL, &alen);
    uint8_t *raw = NULL;
    if (rc == 0)
        rc = open_b64(master->bytes, aad, alen, json_object_get(sealed, "dek"), &raw, &n);
    if (rc == 0 && n != VAULT_KEY_LEN)
        rc = OPSC_ECORRUPT;
    if (rc == 0)
        memcpy(dek, raw, VAULT_KEY_LEN);
    if (raw) {
        secure_zero(raw, n);
        free(raw);
    }
    return rc;
}

static int seal_fields(const uint8_t dek[VAULT_KEY_LEN], const char *record_id, const char *dek_id,
                       json_t *plain, json_t *fields)
{
    const char *name;
    json_t *v;
    json_object_foreach(plain, name, v)
    {
        if (!json_is_string(v))
            return OPSC_EINVAL;
        char aad[AAD_MAX];
        size_t alen;
        json_t *blob = NULL;
        int rc = build_aad(aad, sizeof(aad), "opsc-field", record_id, name, dek_id, &alen);
        if (rc == 0)
            rc = seal_b64(dek, aad, alen, json_string_value(v), json_string_length(v), &blob);
        if (rc == 0)
            rc = json_object_set_new(fields, name, blob) == 0 ? 0 : OPSC_ENOMEM;
        if (rc < 0)
            return rc;
    }
    return 0;
}

int vault_envelope_seal(const vault_key *master, const char *record_id, json_t *plain, json_t **out)
{
    if (!json_is_object(plain) || !record_id)
        return OPSC_EINVAL;
    uint8_t dek[VAULT_KEY_LEN], dek_id_raw[DEK_ID_BYTES];
    char dek_id[2 * DEK_ID_BYTES + 1];
    int rc = rand_bytes(dek, sizeof(dek));
    if (rc == 0)
        rc = rand_bytes(dek_id_raw, sizeof(dek_id_raw));
    to_hex(dek_id_raw, sizeof(dek_id_raw), dek_id);
    json_t *fields = json_object(), *wrapped = NULL;
    if (rc == 0)
        rc = fields ? seal_fields(dek, record_id, dek_id, plain, fields) : OPSC_ENOMEM;
    if (rc == 0)
        rc = wrap_dek(master, record_id, dek, &wrapped);
    secure_zero(dek, sizeof(dek));
    json_t *env = NULL;
    if (rc == 0) {
        env = json_pack("{s:i, s:s, s:s, s:o, s:o}", "v", 1, "kid", master->id, "dek_id", dek_id,
                        "dek", wrapped, "fields", fields);
        wrapped = fields = NULL; /* stolen by json_pack, even when it fails */
        rc = env ? 0 : OPSC_ENOMEM;
    }
    json_decref(fields);
    json_decref(wrapped);
    if (rc == 0)
        *out = env;
    return rc;
}

int vault_envelope_open(const vault_key *master, const char *record_id, json_t *sealed,
                        const char *field, char **value)
{
    *value = NULL;
    json_t *fields = json_object_get(sealed, "fields");
    json_t *dek_id = json_object_get(sealed, "dek_id");
    if (!json_is_object(fields) || !json_is_string(dek_id))
        return OPSC_ECORRUPT;
    json_t *blob = json_object_get(fields, field);
    if (!blob)
        return 0;
    uint8_t dek[VAULT_KEY_LEN];
    int rc = unwrap_dek(master, record_id, sealed, dek);
    char aad[AAD_MAX];
    size_t alen, n;
    if (rc == 0)
        rc = build_aad(aad, sizeof(aad), "opsc-field", record_id, field, json_string_value(dek_id),
                       &alen);
    uint8_t *pt = NULL;
    if (rc == 0)
        rc = open_b64(dek, aad, alen, blob, &pt, &n);
    secure_zero(dek, sizeof(dek));
    if (rc == 0 && memchr(pt, '\0', n)) { /* we only ever seal C strings */
        secure_zero(pt, n);
        free(pt);
        return OPSC_ECORRUPT;
    }
    if (rc == 0)
        *value = (char *)pt;
    return rc;
}

int vault_envelope_rewrap(const vault_key *old, const vault_key *fresh, const char *record_id,
                          json_t *sealed)
{
    uint8_t dek[VAULT_KEY_LEN];
    int rc = unwrap_dek(old, record_id, sealed, dek);
    json_t *wrapped = NULL;
    if (rc == 0)
        rc = wrap_dek(fresh, record_id, dek, &wrapped);
    secure_zero(dek, sizeof(dek));
    if (rc == 0 && (json_object_set_new(sealed, "dek", wrapped) < 0 ||
                    json_object_set_new(sealed, "kid", json_string(fresh->id)) < 0))
        rc = OPSC_ENOMEM;
    return rc;
}

const char *vault_envelope_kid(json_t *sealed)
{
    return json_string_value(json_object_get(sealed, "kid"));
}

void vault_secret_free(char *s)
{
    if (!s)
        return;
    secure_zero(s, strlen(s));
    free(s);
}
