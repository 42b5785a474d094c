/* trust.c - loading trusted Ed25519 publisher keys (PEM or OpenSSH) and verifying signatures. */
#include "trust.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <opsc/errors.h>

#include "b64.h"
#include "util.h"

#define KEY_FILE_MAX   (1 << 20)
#define ED25519_KEYLEN 32

struct trust_key {
    EVP_PKEY *pkey;
    char fingerprint[64]; /* "SHA256:" + 43 base64 characters */
    char name[128];
};

struct trust {
    trust_key *keys;
    size_t n, cap;
};

size_t trust_count(const trust *t)
{
    return t ? t->n : 0;
}

const char *trust_key_fingerprint(const trust_key *k)
{
    return k->fingerprint;
}

const char *trust_key_name(const trust_key *k)
{
    return k->name;
}

json_t *trust_key_json(const trust_key *k)
{
    return json_pack("{s:s, s:s}", "fingerprint", k->fingerprint, "name", k->name);
}

void trust_free(trust *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        EVP_PKEY_free(t->keys[i].pkey);
    free(t->keys);
    free(t);
}

/* The OpenSSH wire form: string "ssh-ed25519", string key (each with a 4-byte length). */
static size_t ssh_blob(const uint8_t raw[ED25519_KEYLEN], uint8_t out[51])
{
    static const uint8_t head[] = {0,   0,   0,   11,  's', 's', 'h', '-', 'e', 'd',
                                   '2', '5', '5', '1', '9', 0,   0,   0,   32};
    memcpy(out, head, sizeof(head));
    memcpy(out + sizeof(head), raw, ED25519_KEYLEN);
    return sizeof(head) + ED25519_KEYLEN;
}

static int add_key(trust *t, EVP_PKEY *pkey, const char *name)
{
    uint8_t raw[ED25519_KEYLEN], blob[51], digest[32];
    size_t rawlen = sizeof(raw);
    if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1 || rawlen != ED25519_KEYLEN)
        return OPSC_ECRYPTO;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4;
        trust_key *v = realloc(t->keys, cap * sizeof(*v));
        if (!v)
            return OPSC_ENOMEM;
        t->keys = v;
        t->cap = cap;
    }
    trust_key *k = &t->keys[t->n++];
    k->pkey = pkey;
    size_t bloblen = ssh_blob(raw, blob);
    EVP_Digest(blob, bloblen, digest, NULL, EVP_sha256(), NULL);
    char b64[B64_LEN(32) + 1];
    size_t len = b64_encode(digest, sizeof(digest), b64);
    while (len > 0 && b64[len - 1] == '=') /* OpenSSH prints it unpadded */
        b64[--len] = '\0';
    snprintf(k->fingerprint, sizeof(k->fingerprint), "SHA256:%s", b64);
    snprintf(k->name, sizeof(k->name), "%s", name);
    return 0;
}

static int load_pem(trust *t, const char *path, const char *text, size_t len, const char *name,
                    char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    if (!bio)
        return OPSC_ENOMEM;
    int rc = 0, found = 0;
    EVP_PKEY *pkey;
    while (rc == 0 && (pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL))) {
        if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519) {
            snprintf(err, errlen, "%s: public key %d is not an Ed25519 key", path, found + 1);
            EVP_PKEY_free(pkey);
            rc = OPSC_EINVAL;
        } else if ((rc = add_key(t, pkey, name)) < 0) {
            EVP_PKEY_free(pkey);
        }
        found++;
    }
    BIO_free(bio);
    ERR_clear_error(); /* the end of the text reads as an error */
    if (rc == 0 && !found) {
        snprintf(err, errlen, "%s: no PEM public key could be read", path);
        rc = OPSC_EINVAL;
    }
    return rc;
}

/* "ssh-ed25519 <base64 blob> [comment]": 0, or OPSC_EINVAL with the reason in why. */
static int load_ssh_line(trust *t, char *line, const char *file_name, const char **why)
{
    char *save = NULL;
    char *type = strtok_r(line, " \t", &save);
    char *b64 = strtok_r(NULL, " \t", &save);
    char *comment = strtok_r(NULL, "\r\n", &save);
    uint8_t blob[128], expect[51];
    size_t bloblen = 0;
    if (!type || strcmp(type, "ssh-ed25519") != 0) {
        *why = "only ssh-ed25519 keys can sign step libraries";
        return OPSC_EINVAL;
    }
    bool ok = b64 && strlen(b64) <= B64_LEN(sizeof(blob)) &&
              b64_decode(b64, strlen(b64), blob, &bloblen) == 0 && bloblen == sizeof(expect);
    if (ok) { /* the blob must be exactly the wire form of its own key */
        ssh_blob(blob + sizeof(expect) - ED25519_KEYLEN, expect);
        ok = memcmp(blob, expect, sizeof(expect)) == 0;
    }
    if (!ok) {
        *why = "malformed ssh-ed25519 key";
        return OPSC_EINVAL;
    }
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, NULL, blob + sizeof(expect) - ED25519_KEYLEN, ED25519_KEYLEN);
    if (!pkey) {
        *why = "OpenSSL refused the key";
        return OPSC_ECRYPTO;
    }
    while (comment && (*comment == ' ' || *comment == '\t'))
        comment++;
    int rc = add_key(t, pkey, comment && *comment ? comment : file_name);
    if (rc < 0)
        EVP_PKEY_free(pkey);
    return rc;
}

static int load_ssh(trust *t, const char *path, char *text, const char *name, char *err,
                    size_t errlen)
{
    int found = 0, lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        line += strspn(line, " \t\r");
        if (!*line || *line == '#')
            continue;
        const char *why = "out of memory";
        int rc = load_ssh_line(t, line, name, &why);
        if (rc < 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
            return rc;
        }
        found++;
    }
    if (!found) {
        snprintf(err, errlen, "%s: no public key in the file", path);
        return OPSC_EINVAL;
    }
    return 0;
}

static int load_file(trust *t, const char *path, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = fs_read_file(path, KEY_FILE_MAX, &text, &len);
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path,
                 rc == OPSC_E2BIG ? "too large for a key file" : strerror(-rc));
        return rc;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strstr(text, "-----BEGIN "))
        rc = load_pem(t, path, text, len, base, err, errlen);
    else
        rc = load_ssh(t, path, text, base, err, errlen);
    free(text);
    return rc;
}

int trust_load(trust **out, const char *paths, char *err, size_t errlen)
{
    trust *t = calloc(1, sizeof(*t));
    char *copy = strdup(paths ? paths : "");
    int rc = t && copy ? 0 : OPSC_ENOMEM;
    char *save = NULL;
    for (char *p = copy ? strtok_r(copy, ":", &save) : NULL; p && rc == 0;
         p = strtok_r(NULL, ":", &save))
        rc = load_file(t, p, err, errlen);
    free(copy);
    if (rc < 0) {
        trust_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int trust_verify(const trust *t, const void *data, size_t len, const uint8_t *sig, size_t siglen,
                 const trust_key **signer)
{
    if (siglen != TRUST_SIG_LEN)
        return OPSC_EINVAL;
    for (size_t i = 0; t && i < t->n; i++) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, t->keys[i].pkey) == 1 &&
                  EVP_DigestVerify(ctx, sig, siglen, data, len) == 1;
        EVP_MD_CTX_free(ctx);
        ERR_clear_error();
        if (ok) {
            *signer = &t->keys[i];
            return 0;
        }
    }
    return OPSC_EAUTH;
}
