/* token.c - random opaque tokens and their SHA-256 digests. */
#include "token.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>

#include <opsc/errors.h>

#include "b64.h"
#include "util.h"

#define TOKEN_RANDOM_BYTES 32

int token_new(const char *prefix, char out[TOKEN_TEXT_MAX])
{
    size_t plen = strlen(prefix);
    if (plen > 16)
        return OPSC_EINVAL;
    uint8_t raw[TOKEN_RANDOM_BYTES];
    int rc = rand_bytes(raw, sizeof(raw));
    if (rc < 0)
        return rc;
    memcpy(out, prefix, plen);
    b64url_encode(raw, sizeof(raw), out + plen);
    secure_zero(raw, sizeof(raw));
    return 0;
}

void token_hash(const char *token, char out[TOKEN_HASH_HEX])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(token, strlen(token), md, &n, EVP_sha256(), NULL) != 1 || n != 32) {
        out[0] = '\0'; /* matches no stored hash */
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * n] = '\0';
}

bool token_is(const char *token, const char *prefix)
{
    size_t plen = strlen(prefix);
    return token && strncmp(token, prefix, plen) == 0 &&
           strlen(token) == plen + B64URL_LEN(TOKEN_RANDOM_BYTES);
}
