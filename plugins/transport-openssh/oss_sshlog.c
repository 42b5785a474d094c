/* oss_sshlog.c - reading ssh -v output: negotiated algorithms, host key, auth methods, failures. */
#include <stdio.h>
#include <string.h>

#include <opsc/errors.h>

#include "oss_sshlog.h"

static bool starts(const char *s, size_t n, const char *prefix)
{
    size_t m = strlen(prefix);
    return n >= m && memcmp(s, prefix, m) == 0;
}

static const char *find(const char *s, size_t n, const char *needle)
{
    return memmem(s, n, needle, strlen(needle));
}

/* Copy the word at `p` (up to a blank or `stop`) into dst. */
static void word(char *dst, size_t cap, const char *p, const char *end, const char *stop)
{
    size_t i = 0;
    while (p < end && *p != ' ' && !strchr(stop, *p) && i + 1 < cap)
        dst[i++] = *p++;
    dst[i] = '\0';
}

static void rest(char *dst, size_t cap, const char *p, const char *end)
{
    size_t i = 0;
    while (p < end && i + 1 < cap) {
        char c = *p++;
        dst[i++] = (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    dst[i] = '\0';
}

static void append(char *dst, size_t cap, const char *p, const char *end)
{
    size_t used = strlen(dst);
    if (used + 2 >= cap)
        return;
    if (used)
        dst[used++] = ',';
    word(dst + used, cap - used, p, end, ",");
}

static void kex_line(oss_sshlog *l, const char *s, const char *end)
{
    const char *p;
    if ((p = find(s, (size_t)(end - s), "kex: algorithm: ")))
        word(l->kex, sizeof(l->kex), p + 16, end, "");
    else if ((p = find(s, (size_t)(end - s), "kex: host key algorithm: ")))
        word(l->hostkey_alg, sizeof(l->hostkey_alg), p + 25, end, "");
    else if ((p = find(s, (size_t)(end - s), "cipher: "))) {
        bool in = find(s, (size_t)(end - s), "server->client") != NULL;
        word(in ? l->cipher_in : l->cipher, sizeof(l->cipher), p + 8, end, "");
        const char *m = find(p, (size_t)(end - p), "MAC: ");
        if (m)
            word(in ? l->mac_in : l->mac, sizeof(l->mac), m + 5, end, "");
        const char *z = find(p, (size_t)(end - p), "compression: ");
        if (z)
            word(l->compression, sizeof(l->compression), z + 13, end, "");
    }
}

/* The debug1 lines that carry facts. */
static void debug_line(oss_sshlog *l, const char *s, const char *end)
{
    size_t n = (size_t)(end - s);
    const char *p;
    if (starts(s, n, "Connecting to "))
        l->phase = PH_CONNECT;
    else if (starts(s, n, "Connection established"))
        l->phase = PH_HANDSHAKE;
    else if (starts(s, n, "SSH2_MSG_NEWKEYS received") || starts(s, n, "SSH2_MSG_SERVICE_ACCEPT"))
        l->phase = PH_AUTH;
    else if ((p = find(s, n, "remote software version ")))
        snprintf(l->banner, sizeof(l->banner), "SSH-2.0-%.*s", (int)(end - p - 24), p + 24);
    else if (starts(s, n, "kex: "))
        kex_line(l, s, end);
    else if (starts(s, n, "Server host key: ")) {
        word(l->key_type, sizeof(l->key_type), s + 17, end, "");
        const char *fp = s + 17 + strlen(l->key_type);
        if (fp < end && *fp == ' ')
            word(l->key_fp, sizeof(l->key_fp), fp + 1, end, "");
    } else if (starts(s, n, "Authentications that can continue: "))
        word(l->methods, sizeof(l->methods), s + 35, end, "");
    else if (starts(s, n, "Next authentication method: "))
        append(l->tried, sizeof(l->tried), s + 28, end);
    else if (starts(s, n, "Offering public key: ") && find(s, n, "-CERT"))
        l->cert_offered = true;
    else if (starts(s, n, "Entering interactive session"))
        l->ready = true;
}

static const struct {
    const char *text;
    int code;
} failures[] = {
    {"Could not resolve hostname", OPSC_EDNS},
    {"Name or service not known", OPSC_EDNS},
    {"Temporary failure in name resolution", OPSC_EDNS},
    {"Connection refused", OPSC_ECONNREFUSED},
    {"timed out", OPSC_ETIMEDOUT},
    {"No route to host", OPSC_EHOSTUNREACH},
    {"Network is unreachable", OPSC_EHOSTUNREACH},
    {"Host key verification failed", OPSC_EHOSTKEY},
    {"Permission denied", OPSC_EAUTH},
    {"Too many authentication failures", OPSC_EAUTH},
    {"Unable to negotiate", OPSC_EPROTO},
    {"administratively prohibited", OPSC_EPROTO},
    {"kex_exchange_identification", OPSC_ECONNRESET},
    {"Connection closed", OPSC_ECONNRESET},
    {"Connection reset", OPSC_ECONNRESET},
    {"Bad owner or permissions", OPSC_EINVAL},
    {"Bad configuration option", OPSC_EINVAL},
    {"Bad stdio forwarding", OPSC_EINVAL},
};

static void other_line(oss_sshlog *l, const char *s, const char *end)
{
    size_t n = (size_t)(end - s);
    if (starts(s, n, "Warning: Permanently added") || starts(s, n, "Transferred: ") ||
        starts(s, n, "Bytes per second") || starts(s, n, "OpenSSH_") || n == 0)
        return;
    const char *p = find(s, n, "Authenticated to ");
    if (p) {
        const char *u = find(s, n, "using \"");
        if (u)
            word(l->auth, sizeof(l->auth), u + 7, end, "\"");
        return;
    }
    if (!l->first_error[0])
        rest(l->first_error, sizeof(l->first_error), s, end);
    for (size_t i = 0; !l->code && i < sizeof(failures) / sizeof(failures[0]); i++) {
        if (find(s, n, failures[i].text)) {
            l->code = failures[i].code;
            rest(l->detail, sizeof(l->detail), s, end);
        }
    }
}

void oss_sshlog_line(oss_sshlog *l, const char *line, size_t n)
{
    if (n > 0 && line[n - 1] == '\r')
        n--;
    const char *end = line + n;
    if (starts(line, n, "debug1: ")) {
        debug_line(l, line + 8, end);
        return;
    }
    if (starts(line, n, "debug"))
        return;
    other_line(l, line, end);
}

/* Names ssh prints are [A-Za-z0-9@.+_<>-]: nothing to escape; others are dropped. */
static void member(char *out, size_t cap, const char *key, const char *value)
{
    if (!value[0])
        return;
    for (const char *p = value; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            return;
    size_t used = strlen(out);
    snprintf(out + used, cap - used, "%s\"%s\": \"%s\"", used > 1 ? ", " : "", key, value);
}

void oss_sshlog_algorithms(const oss_sshlog *l, char *out, size_t cap)
{
    snprintf(out, cap, "{");
    member(out, cap, "kex", l->kex);
    member(out, cap, "host_key", l->hostkey_alg);
    member(out, cap, "cipher", l->cipher);
    member(out, cap, "mac", l->mac);
    if (strcmp(l->cipher, l->cipher_in) != 0)
        member(out, cap, "cipher_in", l->cipher_in);
    if (strcmp(l->mac, l->mac_in) != 0)
        member(out, cap, "mac_in", l->mac_in);
    member(out, cap, "compression", l->compression);
    member(out, cap, "auth", l->auth);
    if (l->cert_offered && strcmp(l->auth, "publickey") == 0)
        member(out, cap, "auth_key", "certificate");
    size_t used = strlen(out);
    snprintf(out + used, cap - used, "}");
}
