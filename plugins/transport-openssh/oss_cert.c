/* oss_cert.c - the fields of an OpenSSH certificate that explain a refusal (see PROTOCOL.certkeys).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "oss_cert.h"

typedef struct rd {
    const unsigned char *p, *end;
    bool bad;
} rd;

static uint32_t get_u32(rd *r)
{
    if (r->bad || r->end - r->p < 4) {
        r->bad = true;
        return 0;
    }
    uint32_t v =
        (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
    r->p += 4;
    return v;
}

static uint64_t get_u64(rd *r)
{
    uint64_t hi = get_u32(r);
    return hi << 32 | get_u32(r);
}

static const unsigned char *get_string(rd *r, uint32_t *len)
{
    *len = get_u32(r);
    if (r->bad || (size_t)(r->end - r->p) < *len) {
        r->bad = true;
        *len = 0;
        return NULL;
    }
    const unsigned char *s = r->p;
    r->p += *len;
    return s;
}

static void skip_strings(rd *r, int n)
{
    uint32_t len;
    for (int i = 0; i < n; i++)
        get_string(r, &len);
}

/* Public key fields between the nonce and the serial, per certificate type. */
static int key_fields(const char *type)
{
    if (strncmp(type, "ssh-rsa-cert", 12) == 0)
        return 2; /* e, n */
    if (strncmp(type, "ssh-dss-cert", 12) == 0)
        return 4; /* p, q, g, y */
    if (strncmp(type, "ecdsa-sha2-", 11) == 0)
        return 2; /* curve, point */
    if (strncmp(type, "ssh-ed25519-cert", 16) == 0)
        return 1; /* key */
    if (strncmp(type, "sk-ecdsa-sha2-", 14) == 0)
        return 3; /* curve, point, application */
    if (strncmp(type, "sk-ssh-ed25519-cert", 19) == 0)
        return 2; /* key, application */
    return -1;
}

static int decode(const char *line, unsigned char *blob, size_t cap, char *type, size_t tlen,
                  int *blen)
{
    char b64[8192];
    if (sscanf(line, "%63s %8191s", type, b64) != 2 || tlen < 64)
        return -1;
    size_t n = strlen(b64);
    if (n % 4 != 0 || n / 4 * 3 > cap)
        return -1;
    int len = EVP_DecodeBlock(blob, (const unsigned char *)b64, (int)n);
    if (len < 0)
        return -1;
    while (n > 0 && b64[--n] == '=')
        len--;
    *blen = len;
    return 0;
}

static void printable(char *dst, size_t cap, const unsigned char *s, uint32_t n)
{
    size_t j = 0;
    for (uint32_t i = 0; i < n && j + 1 < cap; i++)
        dst[j++] = isprint(s[i]) ? (char)s[i] : '?';
    dst[j] = '\0';
}

int oss_cert_parse(const char *line, oss_cert *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    unsigned char blob[6144];
    int blen = 0;
    if (!line || decode(line, blob, sizeof(blob), c->type, sizeof(c->type), &blen) < 0) {
        snprintf(err, errlen,
                 "the certificate is not an OpenSSH certificate line "
                 "(\"<type>-cert-v01@openssh.com <base64>\")");
        return -1;
    }
    rd r = {blob, blob + blen, false};
    uint32_t len;
    const unsigned char *t = get_string(&r, &len);
    int nkey = key_fields(c->type);
    if (!t || len != strlen(c->type) || memcmp(t, c->type, len) != 0 || nkey < 0 ||
        !strstr(c->type, "-cert-v01@openssh.com")) {
        snprintf(err, errlen, "the certificate's type '%.60s' is not an OpenSSH certificate type",
                 c->type);
        return -1;
    }
    skip_strings(&r, 1 + nkey); /* nonce, then the public key */
    c->serial = get_u64(&r);
    c->user = get_u32(&r) == 1;
    const unsigned char *id = get_string(&r, &len);
    if (id)
        printable(c->key_id, sizeof(c->key_id), id, len);
    skip_strings(&r, 1); /* principals */
    c->valid_after = get_u64(&r);
    c->valid_before = get_u64(&r);
    if (r.bad) {
        snprintf(err, errlen, "the certificate is truncated or malformed");
        return -1;
    }
    return 0;
}

static void fmt_time(uint64_t t, char *out, size_t n)
{
    time_t tt = t > (uint64_t)INT64_MAX ? (time_t)INT64_MAX : (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, n, "%llu", (unsigned long long)t);
}

bool oss_cert_valid_at(const oss_cert *c, uint64_t now, char *err, size_t errlen)
{
    char when[40];
    if (now >= c->valid_before) {
        fmt_time(c->valid_before, when, sizeof(when));
        snprintf(err, errlen, "the OpenSSH certificate (key id '%s', serial %llu) expired at %s",
                 c->key_id, (unsigned long long)c->serial, when);
        return false;
    }
    if (now < c->valid_after) {
        fmt_time(c->valid_after, when, sizeof(when));
        snprintf(err, errlen,
                 "the OpenSSH certificate (key id '%s', serial %llu) is not valid before %s",
                 c->key_id, (unsigned long long)c->serial, when);
        return false;
    }
    if (!c->user) {
        snprintf(err, errlen,
                 "the OpenSSH certificate (key id '%s') is a host certificate, not a "
                 "user certificate",
                 c->key_id);
        return false;
    }
    return true;
}
