/* hook_verify.c - is an inbound webhook authentic? Standard Webhooks, GitHub and GitLab
 * signatures and bearer tokens, compared in constant time, timestamps within a tolerance. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <opsc/errors.h>

#include "b64.h"
#include "notify.h"
#include "util.h"

#define HOOK_ID_MAX 255

int hook_scheme_parse(const char *name)
{
    static const char *const names[] = {"standard", "github", "gitlab", "token"};
    for (int i = 0; name && i < 4; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

static int refuse(char *why, size_t whylen, const char *reason)
{
    snprintf(why, whylen, "%s", reason);
    return OPSC_EAUTH;
}

/* Equal texts, without the time telling how much of them matched: both sides
 * are hashed first, so even their lengths stay out of the timing. */
static bool same_secret(const char *a, size_t alen, const char *b, size_t blen)
{
    uint8_t x[SHA256_DIGEST_LENGTH], y[SHA256_DIGEST_LENGTH];
    SHA256((const uint8_t *)a, alen, x);
    SHA256((const uint8_t *)b, blen, y);
    return ct_equal(x, y, sizeof(x));
}

/* "whsec_<base64>" is the Standard Webhooks form: the key is the decoded
 * bytes. Any other secret is used as it is. */
static int signing_key(const char *secret, uint8_t *key, size_t *keylen)
{
    size_t len = strlen(secret);
    if (strncmp(secret, "whsec_", 6) == 0)
        return len - 6 > 4 * 1024 ? OPSC_EINVAL : b64_decode(secret + 6, len - 6, key, keylen);
    if (len > 4096)
        return OPSC_EINVAL;
    memcpy(key, secret, len);
    *keylen = len;
    return 0;
}

static bool parse_ts(const char *s, int64_t *out)
{
    if (!s || !*s || strlen(s) > 18)
        return false;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    *out = strtoll(s, NULL, 10);
    return true;
}

static int verify_standard(const char *secret, const hook_request *r, int64_t now_s,
                           int64_t tolerance_s, char msg_id[256], char *why, size_t whylen)
{
    int64_t ts = 0;
    if (!r->webhook_id || !r->webhook_timestamp || !r->webhook_signature)
        return refuse(why, whylen, "webhook-id, webhook-timestamp or webhook-signature missing");
    size_t idlen = strlen(r->webhook_id);
    if (idlen == 0 || idlen > HOOK_ID_MAX)
        return refuse(why, whylen, "webhook-id empty or too long");
    if (!parse_ts(r->webhook_timestamp, &ts))
        return refuse(why, whylen, "webhook-timestamp is not a number of seconds");
    if (ts < now_s - tolerance_s || ts > now_s + tolerance_s)
        return refuse(why, whylen,
                      "webhook-timestamp outside the tolerance (a replay or a clock "
                      "off)");
    uint8_t key[4096];
    size_t keylen = 0;
    if (signing_key(secret, key, &keylen) < 0)
        return refuse(why, whylen, "the hook's secret is not a valid whsec_ key");
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t outl = 0;
    bool ok =
        ctx && EVP_MAC_init(ctx, key, keylen, params) &&
        EVP_MAC_update(ctx, (const uint8_t *)r->webhook_id, idlen) &&
        EVP_MAC_update(ctx, (const uint8_t *)".", 1) &&
        EVP_MAC_update(ctx, (const uint8_t *)r->webhook_timestamp, strlen(r->webhook_timestamp)) &&
        EVP_MAC_update(ctx, (const uint8_t *)".", 1) && EVP_MAC_update(ctx, r->body, r->body_len) &&
        EVP_MAC_final(ctx, mac, &outl, sizeof(mac));
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    secure_zero(key, sizeof(key));
    maclen = (unsigned)outl;
    if (!ok)
        return refuse(why, whylen, "computing the signature failed");
    char want[B64_LEN(EVP_MAX_MD_SIZE) + 1];
    size_t wlen = b64_encode(mac, maclen, want);
    /* Several signatures may be sent (key rotation): "v1,<b64> v1,<b64>". */
    bool match = false;
    for (const char *p = r->webhook_signature; *p;) {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == wlen + 3 && strncmp(p, "v1,", 3) == 0)
            match |= ct_equal(p + 3, want, wlen);
        p += len;
    }
    if (!match)
        return refuse(why, whylen, "webhook-signature does not match");
    memcpy(msg_id, r->webhook_id, idlen + 1);
    return 0;
}

static int verify_github(const char *secret, const hook_request *r, char msg_id[256], char *why,
                         size_t whylen)
{
    const char *sig = r->hub_signature_256;
    if (!sig || strncmp(sig, "sha256=", 7) != 0 || strlen(sig) != 7 + 64)
        return refuse(why, whylen, "X-Hub-Signature-256 missing or malformed");
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), r->body, r->body_len, mac, &maclen))
        return refuse(why, whylen, "computing the signature failed");
    char want[65], got[65];
    for (unsigned i = 0; i < maclen && i < 32; i++)
        snprintf(want + 2 * i, 3, "%02x", mac[i]);
    for (int i = 0; i < 64; i++)
        got[i] = (char)tolower((unsigned char)sig[7 + i]);
    got[64] = want[64] = '\0';
    if (!ct_equal(want, got, 64))
        return refuse(why, whylen, "X-Hub-Signature-256 does not match");
    snprintf(msg_id, 256, "%s",
             r->github_delivery && strlen(r->github_delivery) <= HOOK_ID_MAX ? r->github_delivery
                                                                             : "");
    return 0;
}

static int verify_token(const char *secret, const char *given, const char *extra_id,
                        char msg_id[256], char *why, size_t whylen)
{
    if (!given || !same_secret(given, strlen(given), secret, strlen(secret)))
        return refuse(why, whylen, given ? "the token does not match" : "no token sent");
    snprintf(msg_id, 256, "%s", extra_id && strlen(extra_id) <= HOOK_ID_MAX ? extra_id : "");
    return 0;
}

int hook_verify(int scheme, const char *secret, const hook_request *req, int64_t now_s,
                int64_t tolerance_s, char msg_id[256], char *why, size_t whylen)
{
    msg_id[0] = '\0';
    if (!secret || !*secret)
        return refuse(why, whylen, "the hook has no secret");
    switch (scheme) {
    case HOOK_STANDARD:
        return verify_standard(secret, req, now_s, tolerance_s, msg_id, why, whylen);
    case HOOK_GITHUB:
        return verify_github(secret, req, msg_id, why, whylen);
    case HOOK_GITLAB:
        return verify_token(secret, req->gitlab_token, req->gitlab_event_uuid, msg_id, why, whylen);
    case HOOK_TOKEN: {
        const char *a = req->authorization;
        if (a && strncasecmp(a, "Bearer ", 7) == 0)
            return verify_token(secret, a + 7, NULL, msg_id, why, whylen);
        return refuse(why, whylen, "no bearer token sent");
    }
    default:
        return refuse(why, whylen, "unknown verification scheme");
    }
}
