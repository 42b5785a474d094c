/* fuzz_token.c - libFuzzer target: bearer token verification and the credential body parser.
 *
 * Input byte 0 picks the parser; the rest is its input. Checked: nothing
 * crashes or leaks, a token accepted under our key round-trips its claims
 * (iss ours, role valid, not expired), and a parsed credential body never
 * puts a secret field among the clear ones. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "access_token.h"
#include "vault.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key_bytes[32] = "fuzz-fuzz-fuzz-fuzz-fuzz-fuzz-32";

static void token(const char *text)
{
    access_key k = {key_bytes, sizeof(key_bytes), "opsconductor"};
    access_claims c;
    char why[96];
    if (access_token_verify(&k, text, 1800000000, &c, why, sizeof(why)) == 0) {
        CHECK(c.exp > 1800000000);
        CHECK(strcmp(c.role, "admin") == 0 || strcmp(c.role, "operator") == 0 ||
              strcmp(c.role, "viewer") == 0);
        CHECK(c.sub[0] && c.jti[0]);
    }
}

static void credential(const char *text, size_t len)
{
    json_t *body = json_loadb(text, len, 0, NULL);
    json_t *meta = NULL, *secrets = NULL;
    char err[256];
    if (body && credential_parse(body, true, NULL, &meta, &secrets, err, sizeof(err)) == 0) {
        static const char *const secret[] = {CREDENTIAL_SECRET_FIELDS};
        for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
            CHECK(!json_object_get(meta, secret[i]));
        json_decref(meta);
        vault_secrets_free(secrets);
    }
    json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (data[0] & 1)
        credential(text, size - 1);
    else
        token(text);
    free(text);
    return 0;
}
