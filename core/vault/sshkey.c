/* sshkey.c - SSH private key checks through libssh's PKI functions. */
#include "sshkey.h"

#include <libssh/libssh.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "b64.h"

/* libssh calls this for an encrypted key when we gave no passphrase: note
 * it and refuse, so nothing ever prompts on a terminal. */
static int no_passphrase(const char *prompt, char *buf, size_t len, int echo, int verify, void *ud)
{
    (void)prompt, (void)buf, (void)len, (void)echo, (void)verify;
    *(bool *)ud = true;
    return -1;
}

static int import(const char *text, const char *passphrase, bool *asked, ssh_key *key)
{
    *asked = false;
    return ssh_pki_import_privkey_base64(text, passphrase, no_passphrase, asked, key);
}

/* Read one SSH wire-format string (uint32 length + bytes) at *p. */
static bool wire_string(const uint8_t **p, const uint8_t *end, const uint8_t **s, uint32_t *len)
{
    if (end - *p < 4)
        return false;
    uint32_t n =
        (uint32_t)(*p)[0] << 24 | (uint32_t)(*p)[1] << 16 | (uint32_t)(*p)[2] << 8 | (*p)[3];
    if ((size_t)(end - *p - 4) < n)
        return false;
    *s = *p + 4;
    *len = n;
    *p += 4 + n;
    return true;
}

/* libssh 0.10 has no public key-size call: read the RSA modulus length from
 * the public key blob (string "ssh-rsa", mpint e, mpint n). */
static int rsa_bits(ssh_key pub)
{
    char *b64 = NULL;
    if (ssh_pki_export_pubkey_base64(pub, &b64) != SSH_OK)
        return 0;
    size_t tlen = strlen(b64), n = 0;
    uint8_t *blob = malloc(tlen);
    int bits = 0;
    if (blob && b64_decode(b64, tlen, blob, &n) == 0) {
        const uint8_t *p = blob, *end = blob + n, *s;
        uint32_t len;
        if (wire_string(&p, end, &s, &len) && wire_string(&p, end, &s, &len) &&
            wire_string(&p, end, &s, &len)) {
            while (len > 0 && *s == 0) /* mpint sign byte */
                s++, len--;
            if (len > 0) {
                bits = (int)(len - 1) * 8;
                for (uint8_t top = *s; top; top >>= 1)
                    bits++;
            }
        }
    }
    free(blob);
    ssh_string_free_char(b64);
    return bits;
}

static int key_bits(enum ssh_keytypes_e t, ssh_key pub)
{
    switch (t) {
    case SSH_KEYTYPE_ED25519:
    case SSH_KEYTYPE_ECDSA_P256:
        return 256;
    case SSH_KEYTYPE_ECDSA_P384:
        return 384;
    case SSH_KEYTYPE_ECDSA_P521:
        return 521;
    default:
        return rsa_bits(pub);
    }
}

static int describe(ssh_key key, sshkey_info *info, char *err, size_t errlen)
{
    enum ssh_keytypes_e t = ssh_key_type(key);
    const char *name = ssh_key_type_to_char(t);
    if (t != SSH_KEYTYPE_ED25519 && t != SSH_KEYTYPE_RSA && t != SSH_KEYTYPE_ECDSA_P256 &&
        t != SSH_KEYTYPE_ECDSA_P384 && t != SSH_KEYTYPE_ECDSA_P521) {
        snprintf(err, errlen, "unsupported key type %s: use ed25519, ECDSA or RSA",
                 name ? name : "(unknown)");
        return OPSC_EINVAL;
    }
    ssh_key pub = NULL;
    if (ssh_pki_export_privkey_to_pubkey(key, &pub) != SSH_OK) {
        snprintf(err, errlen, "cannot derive the public key");
        return OPSC_EINVAL;
    }
    info->bits = key_bits(t, pub);
    if (t == SSH_KEYTYPE_RSA && info->bits < 2048) {
        snprintf(err, errlen, "RSA key of %d bits is too weak: use at least 2048 bits, or ed25519",
                 info->bits);
        ssh_key_free(pub);
        return OPSC_EINVAL;
    }
    snprintf(info->type, sizeof(info->type), "%s", name);
    if (t == SSH_KEYTYPE_RSA)
        snprintf(info->warning, sizeof(info->warning),
                 "RSA user keys fail against OpenSSH 8.8 and later over the ssh transport "
                 "(libssh2 1.10 signs with ssh-rsa, SHA-1, only): use transport \"openssh\" for "
                 "its targets, or an ed25519 or ECDSA key");
    char *pub_b64 = NULL;
    if (ssh_pki_export_pubkey_base64(pub, &pub_b64) == SSH_OK && pub_b64 &&
        strlen(pub_b64) < sizeof(info->pub_b64))
        memcpy(info->pub_b64, pub_b64, strlen(pub_b64) + 1);
    ssh_string_free_char(pub_b64);
    unsigned char *hash = NULL;
    size_t hlen = 0;
    char *fp = NULL;
    if (ssh_get_publickey_hash(pub, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) == 0)
        fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
    int rc = 0;
    if (fp && strlen(fp) < sizeof(info->fingerprint))
        memcpy(info->fingerprint, fp, strlen(fp) + 1);
    else {
        snprintf(err, errlen, "cannot compute the public key fingerprint");
        rc = OPSC_EINVAL;
    }
    ssh_string_free_char(fp);
    ssh_clean_pubkey_hash(&hash);
    ssh_key_free(pub);
    return rc;
}

int sshkey_validate(const char *text, const char *passphrase, sshkey_info *info, char *err,
                    size_t errlen)
{
    memset(info, 0, sizeof(*info));
    if (!text || !*text || strlen(text) > SSHKEY_TEXT_MAX) {
        snprintf(err, errlen, "private key is empty or larger than %d bytes", SSHKEY_TEXT_MAX);
        return OPSC_EINVAL;
    }
    bool has_pass = passphrase && *passphrase, asked;
    ssh_key key = NULL;
    int rc = import(text, NULL, &asked, &key);
    if (rc == SSH_OK) {
        info->passphrase_unused = has_pass;
    } else if (!asked) {
        snprintf(err, errlen, "not a valid private key (expected OpenSSH or PEM format)");
        return OPSC_EINVAL;
    } else if (!has_pass) {
        snprintf(err, errlen, "the private key is encrypted: give its passphrase");
        return OPSC_EINVAL;
    } else if (import(text, passphrase, &asked, &key) != SSH_OK) {
        snprintf(err, errlen, "cannot decrypt the private key: wrong passphrase");
        return OPSC_EINVAL;
    } else {
        info->encrypted = true;
    }
    rc = describe(key, info, err, errlen);
    ssh_key_free(key);
    return rc;
}

/* ---- certificates ------------------------------------------------------------------------ */

static uint8_t *decode(const char *b64, size_t *n)
{
    size_t len = strlen(b64);
    uint8_t *blob = malloc(len + 1);
    if (blob && b64_decode(b64, len, blob, n) != 0) {
        free(blob);
        blob = NULL;
    }
    return blob;
}

/* The certificate signs the key: after its type and nonce come the key's public fields, the
 * same bytes as in the key's own blob after its type. */
static bool same_key(const uint8_t *cert, size_t clen, const uint8_t *pub, size_t plen)
{
    const uint8_t *c = cert, *cend = cert + clen, *p = pub, *pend = pub + plen, *s;
    uint32_t len;
    if (!wire_string(&c, cend, &s, &len) || !wire_string(&c, cend, &s, &len) ||
        !wire_string(&p, pend, &s, &len))
        return false;
    size_t fields = (size_t)(pend - p);
    return (size_t)(cend - c) >= fields && memcmp(c, p, fields) == 0;
}

int sshkey_cert_check(const char *line, const sshkey_info *info, char *err, size_t errlen)
{
    char type[80], b64[8200], want[96];
    snprintf(want, sizeof(want), "%s-cert-v01@openssh.com", info->type);
    if (!line || strlen(line) > 8190 || sscanf(line, "%79s %8199s", type, b64) != 2) {
        snprintf(err, errlen, "certificate must be one line \"%s <base64>\"", want);
        return OPSC_EINVAL;
    }
    if (strcmp(type, want) != 0) {
        snprintf(err, errlen, "certificate is of type %.79s; the key needs %s", type, want);
        return OPSC_EINVAL;
    }
    ssh_key cert = NULL;
    int ok = ssh_pki_import_cert_base64(b64, ssh_key_type_from_name(type), &cert) == SSH_OK;
    ssh_key_free(cert);
    size_t clen = 0, plen = 0;
    uint8_t *cblob = ok ? decode(b64, &clen) : NULL, *pblob = decode(info->pub_b64, &plen);
    int rc = 0;
    if (!cblob) {
        snprintf(err, errlen, "certificate is not a valid OpenSSH certificate");
        rc = OPSC_EINVAL;
    } else if (!pblob || !same_key(cblob, clen, pblob, plen)) {
        snprintf(err, errlen, "certificate was issued for another key than this private key");
        rc = OPSC_EINVAL;
    }
    free(cblob);
    free(pblob);
    return rc;
}
