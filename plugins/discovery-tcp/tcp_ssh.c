/* tcp_ssh.c - reading an SSH server's banner and host key (version exchange, KEXINIT, the
 * first key exchange reply), never completing the exchange. */
#include "tcp_ssh.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_ID   "SSH-2.0-OpsConductor_discovery"
#define MAX_SKIPPED 8192

enum {
    MSG_DISCONNECT = 1,
    MSG_IGNORE = 2,
    MSG_DEBUG = 4,
    MSG_KEXINIT = 20,
    MSG_KEX_INIT = 30,
    MSG_KEX_REPLY = 31
};

/* Ours, in order of preference; the server picks the first of ours it knows. */
static const char kex_algs[] = "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,"
                               "diffie-hellman-group14-sha256,diffie-hellman-group14-sha1,"
                               "diffie-hellman-group1-sha1";
/* The SSH transport's own preference, so the key read is the one it will see. */
static const char hostkey_algs[] = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,"
                                   "ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa,ssh-dss";
static const char ciphers[] = "aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,"
                              "aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-cbc,"
                              "aes256-cbc,3des-cbc";
static const char macs[] = "hmac-sha2-256,hmac-sha2-512,hmac-sha1,hmac-sha2-256-etm@openssh.com,"
                           "hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com";
static const char comps[] = "none,zlib@openssh.com,zlib";

/* P-256's base point G, uncompressed: a valid client value nobody holds a secret for. */
static const uint8_t p256_g[65] = {0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc,
                                   0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d,
                                   0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
                                   0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb,
                                   0x4a, 0x7c, 0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31,
                                   0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5};

typedef struct obuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} obuf;

static void put(obuf *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2 + 64;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_u32(obuf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, x, 4);
}

static void put_string(obuf *b, const void *s, size_t n)
{
    put_u32(b, (uint32_t)n);
    put(b, s, n);
}

/* The binary packet around `payload` (no cipher, no MAC yet): padded to 8. */
static void put_packet(obuf *b, const obuf *payload)
{
    size_t pad = 8 - ((5 + payload->len) % 8);
    if (pad < 4)
        pad += 8;
    static const uint8_t zeros[16];
    put_u32(b, (uint32_t)(1 + payload->len + pad));
    uint8_t p = (uint8_t)pad;
    put(b, &p, 1);
    put(b, payload->p, payload->len);
    put(b, zeros, pad);
}

static void kexinit_payload(obuf *b)
{
    static const uint8_t cookie[16] = "opsc-discovery!";
    uint8_t msg = MSG_KEXINIT;
    put(b, &msg, 1);
    put(b, cookie, 16);
    const char *lists[10] = {kex_algs, hostkey_algs, ciphers, ciphers, macs,
                             macs,     comps,        comps,   "",      ""};
    for (int i = 0; i < 10; i++)
        put_string(b, lists[i], strlen(lists[i]));
    uint8_t tail[5] = {0, 0, 0, 0, 0}; /* first_kex_packet_follows, reserved */
    put(b, tail, 5);
}

/* The client's key exchange value for `kex`. */
static void kex_init_payload(const char *kex, obuf *b)
{
    uint8_t msg = MSG_KEX_INIT, v[257];
    put(b, &msg, 1);
    if (strncmp(kex, "curve25519", 10) == 0) {
        memset(v, 0, 32);
        v[0] = 9; /* X25519's base point u = 9 */
        put_string(b, v, 32);
    } else if (strncmp(kex, "ecdh-sha2-nistp256", 18) == 0) {
        put_string(b, p256_g, sizeof(p256_g));
    } else { /* diffie-hellman-group*: e = 2^(bits-1) - 1, inside (1, p-1) */
        size_t n = strstr(kex, "group1-") ? 128 : 256;
        v[0] = 0x7f;
        memset(v + 1, 0xff, n - 1);
        put_string(b, v, n);
    }
}

void tssh_init(tssh *t)
{
    memset(t, 0, sizeof(*t));
}

int tssh_is_ssh(const tssh *t)
{
    return t->stage > TSSH_BANNER;
}

static int fail(tssh *t, const char *why)
{
    if (!t->err[0])
        snprintf(t->err, sizeof(t->err), "%s", why);
    t->stage = TSSH_END;
    return TSSH_FAIL;
}

static void consume(tssh *t, size_t n)
{
    memmove(t->in, t->in + n, t->in_len - n);
    t->in_len -= n;
}

/* Printable ASCII of the banner, as RFC 4253 4.2 allows it. */
static bool printable(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
    return true;
}

static int banner(tssh *t, uint8_t **out, size_t *out_len)
{
    for (;;) {
        uint8_t *nl = memchr(t->in, '\n', t->in_len);
        if (!nl) {
            bool ssh = t->in_len >= 4 && memcmp(t->in, "SSH-", 4) == 0;
            if (ssh && t->in_len > 255)
                return fail(t, "SSH banner longer than 255 characters");
            if (t->skipped + t->in_len > MAX_SKIPPED)
                return fail(t, "no SSH banner in the first 8 KiB");
            return TSSH_MORE;
        }
        size_t n = (size_t)(nl - t->in) + 1, len = n - 1;
        if (len && t->in[len - 1] == '\r')
            len--;
        if (len >= 4 && memcmp(t->in, "SSH-", 4) == 0) {
            if (len > 255 || !printable(t->in, len))
                return fail(t, "malformed SSH banner");
            memcpy(t->banner, t->in, len);
            t->banner[len] = '\0';
            consume(t, n);
            if (strncmp(t->banner, "SSH-2.0-", 8) != 0 && strncmp(t->banner, "SSH-1.99-", 9) != 0)
                return fail(t, "the server speaks an SSH version other than 2.0");
            t->stage = TSSH_KEXINIT;
            obuf b = {0}, payload = {0};
            put(&b, CLIENT_ID "\r\n", strlen(CLIENT_ID) + 2);
            kexinit_payload(&payload);
            put_packet(&b, &payload);
            free(payload.p);
            if (b.oom || payload.oom) {
                free(b.p);
                return fail(t, "out of memory");
            }
            *out = b.p;
            *out_len = b.len;
            return TSSH_SEND;
        }
        t->skipped += n;
        consume(t, n);
        if (t->skipped > MAX_SKIPPED)
            return fail(t, "no SSH banner in the first 8 KiB");
    }
}

/* ---- packets ------------------------------------------------------------------------------- */

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A string at *p within [*p, end): its bytes and length; false when it does not fit. */
static bool get_string(const uint8_t **p, const uint8_t *end, const uint8_t **s, size_t *n)
{
    if (end - *p < 4)
        return false;
    uint32_t len = get_u32(*p);
    if ((size_t)(end - *p - 4) < len)
        return false;
    *s = *p + 4;
    *n = len;
    *p += 4 + len;
    return true;
}

/* The first name of `ours` that is in the server's comma list. */
static bool choose(const char *ours, const uint8_t *theirs, size_t tn, char *out, size_t n)
{
    for (const char *o = ours; *o;) {
        size_t len = strcspn(o, ",");
        for (size_t i = 0; i < tn;) {
            size_t j = i;
            while (j < tn && theirs[j] != ',')
                j++;
            if (j - i == len && memcmp(theirs + i, o, len) == 0 && len < n) {
                memcpy(out, o, len);
                out[len] = '\0';
                return true;
            }
            i = j + 1;
        }
        o += len + (o[len] == ',');
    }
    return false;
}

static int on_kexinit(tssh *t, const uint8_t *p, const uint8_t *end, uint8_t **out, size_t *out_len)
{
    const uint8_t *kex, *hk;
    size_t kn, hn;
    char hostkey[64];
    if (end - p < 17)
        return fail(t, "malformed KEXINIT from the server");
    p += 17; /* message number, cookie */
    if (!get_string(&p, end, &kex, &kn) || !get_string(&p, end, &hk, &hn))
        return fail(t, "malformed KEXINIT from the server");
    if (!choose(kex_algs, kex, kn, t->kex, sizeof(t->kex)))
        return fail(t, "no key exchange in common with the server");
    if (!choose(hostkey_algs, hk, hn, hostkey, sizeof(hostkey)))
        return fail(t, "no host key algorithm in common with the server");
    obuf b = {0}, payload = {0};
    kex_init_payload(t->kex, &payload);
    put_packet(&b, &payload);
    free(payload.p);
    if (b.oom || payload.oom) {
        free(b.p);
        return fail(t, "out of memory");
    }
    t->stage = TSSH_REPLY;
    *out = b.p;
    *out_len = b.len;
    return TSSH_SEND;
}

static bool key_type_ok(const uint8_t *s, size_t n)
{
    if (n == 0 || n >= sizeof(((tssh *)0)->key_type))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= '0' && s[i] <= '9') && !strchr("-@.", s[i]))
            return false;
    return true;
}

static int on_reply(tssh *t, const uint8_t *p, const uint8_t *end)
{
    const uint8_t *blob, *type;
    size_t bn, tn;
    p += 1;
    if (!get_string(&p, end, &blob, &bn) || bn == 0)
        return fail(t, "malformed key exchange reply from the server");
    const uint8_t *q = blob;
    if (!get_string(&q, blob + bn, &type, &tn) || !key_type_ok(type, tn))
        return fail(t, "malformed host key in the server's reply");
    memcpy(t->key_type, type, tn);
    t->key_type[tn] = '\0';
    tssh_fingerprint(blob, bn, t->fingerprint, sizeof(t->fingerprint));
    t->stage = TSSH_END;
    return TSSH_DONE;
}

static int on_disconnect(tssh *t, const uint8_t *p, const uint8_t *end)
{
    const uint8_t *s;
    size_t n;
    char why[120] = "the server disconnected";
    if (end - p >= 5 && (p += 5, get_string(&p, end, &s, &n)))
        snprintf(why, sizeof(why), "the server disconnected: %.*s", (int)(n > 80 ? 80 : n),
                 printable(s, n) ? (const char *)s : "(unprintable)");
    return fail(t, why);
}

/* One whole packet of payload [p, end). */
static int packet(tssh *t, const uint8_t *p, const uint8_t *end, uint8_t **out, size_t *out_len)
{
    switch (p[0]) {
    case MSG_IGNORE:
    case MSG_DEBUG:
        return TSSH_MORE;
    case MSG_DISCONNECT:
        return on_disconnect(t, p, end);
    case MSG_KEXINIT:
        if (t->stage == TSSH_KEXINIT)
            return on_kexinit(t, p, end, out, out_len);
        break;
    case MSG_KEX_REPLY:
        if (t->stage == TSSH_REPLY)
            return on_reply(t, p, end);
        break;
    }
    char why[64];
    snprintf(why, sizeof(why), "unexpected SSH message %u from the server", p[0]);
    return fail(t, why);
}

static int packets(tssh *t, uint8_t **out, size_t *out_len)
{
    while (t->stage == TSSH_KEXINIT || t->stage == TSSH_REPLY) {
        if (t->in_len < 5)
            return TSSH_MORE;
        uint32_t len = get_u32(t->in);
        uint8_t pad = t->in[4];
        if (len < 2 || len > TSSH_MAX_PACKET || pad >= len - 1)
            return fail(t, "malformed SSH packet from the server");
        if (t->in_len < 4 + (size_t)len)
            return TSSH_MORE;
        const uint8_t *payload = t->in + 5, *end = t->in + 4 + len - pad;
        int r = packet(t, payload, end, out, out_len);
        consume(t, 4 + (size_t)len);
        if (r != TSSH_MORE)
            return r;
    }
    return t->stage == TSSH_END ? TSSH_FAIL : TSSH_MORE;
}

int tssh_feed(tssh *t, const uint8_t *data, size_t n, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (t->stage == TSSH_END)
        return fail(t, "already ended");
    if (n > sizeof(t->in) - t->in_len)
        return fail(t, "the server sent more than a key exchange needs");
    if (n)
        memcpy(t->in + t->in_len, data, n);
    t->in_len += n;
    if (t->stage == TSSH_BANNER) {
        int r = banner(t, out, out_len);
        if (r != TSSH_MORE || t->stage == TSSH_BANNER)
            return r;
    }
    return packets(t, out, out_len);
}

void tssh_fingerprint(const uint8_t *blob, size_t len, char *out, size_t n)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    unsigned char b64[64];
    EVP_Digest(blob, len, md, &mdlen, EVP_sha256(), NULL);
    int k = EVP_EncodeBlock(b64, md, (int)mdlen);
    while (k > 0 && b64[k - 1] == '=') /* OpenSSH prints it unpadded */
        k--;
    snprintf(out, n, "SHA256:%.*s", k, (const char *)b64);
}
