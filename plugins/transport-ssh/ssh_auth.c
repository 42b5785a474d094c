/* ssh_auth.c - host key verification (strict / tofu / off) and user authentication. */
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssh_internal.h"

/* ---- host keys ------------------------------------------------------------ */

static const char *hostkey_type_name(int type)
{
    switch (type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA:
        return "ssh-rsa";
    case LIBSSH2_HOSTKEY_TYPE_DSS:
        return "ssh-dss";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
        return "ecdsa-sha2-nistp256";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
        return "ecdsa-sha2-nistp384";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
        return "ecdsa-sha2-nistp521";
    case LIBSSH2_HOSTKEY_TYPE_ED25519:
        return "ssh-ed25519";
    default:
        return "unknown";
    }
}

/* Host key algorithms that verify a key of `type` ("ssh-rsa" keys sign with
 * rsa-sha2-*), or NULL when libssh2 has no such method. */
static const char *algs_for_type(const char *type, size_t n)
{
    static const char *const map[][2] = {
        {"ssh-ed25519", "ssh-ed25519"},
        {"ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"},
        {"ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384"},
        {"ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521"},
        {"ssh-rsa", "rsa-sha2-512,rsa-sha2-256,ssh-rsa"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strlen(map[i][0]) == n && memcmp(map[i][0], type, n) == 0)
            return map[i][1];
    return NULL;
}

#define DEFAULT_HOSTKEY_ALGS                                                                       \
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,"        \
    "rsa-sha2-256,ssh-rsa"

/* Append the names in `list` that libssh2 supports and `out` lacks. Only
 * supported names go in: libssh2 1.10 strips unknown ones with an
 * overlapping memcpy. */
static void add_algs(char *out, size_t cap, const char *list, const char **sup, int nsup)
{
    while (*list) {
        size_t n = strcspn(list, ",");
        bool ok = false;
        for (int i = 0; i < nsup && !ok; i++)
            ok = strlen(sup[i]) == n && memcmp(sup[i], list, n) == 0;
        for (const char *o = out; ok && *o;) {
            size_t m = strcspn(o, ",");
            if (m == n && memcmp(o, list, n) == 0)
                ok = false;
            o += m + (o[m] == ',');
        }
        size_t used = strlen(out);
        if (ok && used + n + 2 < cap)
            snprintf(out + used, cap - used, "%s%.*s", used ? "," : "", (int)n, list);
        list += n + (list[n] == ',');
    }
}

/* Ask the server for a key type we already know, so a host with several
 * keys is not reported as changed because it offered another type. */
int ssh_hostkey_prefs(opsc_conn *c)
{
    const char **sup = NULL;
    int nsup = libssh2_session_supported_algs(c->s, LIBSSH2_METHOD_HOSTKEY, &sup);
    if (nsup <= 0)
        return 0; /* keep libssh2's defaults */
    char prefs[512] = "";
    for (const char *l = c->known; *l;) {
        const char *algs = algs_for_type(l, strcspn(l, " \t\r\n"));
        if (algs)
            add_algs(prefs, sizeof(prefs), algs, sup, nsup);
        l += strcspn(l, "\n");
        l += *l == '\n';
    }
    add_algs(prefs, sizeof(prefs), DEFAULT_HOSTKEY_ALGS, sup, nsup);
    libssh2_free(c->s, sup);
    int rc = prefs[0] ? libssh2_session_method_pref(c->s, LIBSSH2_METHOD_HOSTKEY, prefs) : 0;
    return rc ? OPSC_EPROTO : 0;
}

static void fingerprint(opsc_conn *c)
{
    size_t len = 0;
    int type = 0;
    libssh2_session_hostkey(c->s, &len, &type);
    snprintf(c->key_type, sizeof(c->key_type), "%s", hostkey_type_name(type));
    const unsigned char *h =
        (const unsigned char *)libssh2_hostkey_hash(c->s, LIBSSH2_HOSTKEY_HASH_SHA256);
    unsigned char b64[64];
    int n = h ? EVP_EncodeBlock(b64, h, 32) : 0;
    while (n > 0 && b64[n - 1] == '=') /* OpenSSH prints it unpadded */
        n--;
    snprintf(c->key_fp, sizeof(c->key_fp), "SHA256:%.*s", n, (const char *)b64);
}

enum key_match { KEY_UNKNOWN, KEY_MATCH, KEY_CHANGED };

/* Compare with the recorded lines; on a change, `recorded` gets the old ones. */
static enum key_match match_known(opsc_conn *c, char *recorded, size_t rlen)
{
    enum key_match m = KEY_UNKNOWN;
    size_t used = 0;
    recorded[0] = '\0';
    for (const char *l = c->known; *l;) {
        size_t n = strcspn(l, "\n");
        char line[256];
        snprintf(line, sizeof(line), "%.*s", (int)n, l);
        l += n + (l[n] == '\n');
        char type[64], fp[128];
        if (sscanf(line, "%63s %127s", type, fp) != 2)
            continue;
        if (strcmp(fp, c->key_fp) == 0)
            return KEY_MATCH;
        m = KEY_CHANGED;
        if (used + strlen(line) + 3 < rlen)
            used += (size_t)snprintf(recorded + used, rlen - used, "%s%s %s", used ? ", " : "",
                                     type, fp);
    }
    return m;
}

int ssh_hostkey_check(opsc_conn *c)
{
    fingerprint(c);
    char recorded[256];
    enum key_match m = match_known(c, recorded, sizeof(recorded));
    if (m == KEY_MATCH)
        return 0;
    if (strcmp(c->policy, "off") == 0) {
        snprintf(c->warning, sizeof(c->warning),
                 "host key checking is off for %s: accepted %s %s without verification%s%.120s",
                 c->name, c->key_type, c->key_fp,
                 m == KEY_CHANGED ? "; it differs from the recorded " : "",
                 m == KEY_CHANGED ? recorded : "");
        return 0;
    }
    if (m == KEY_CHANGED) {
        snprintf(c->err, sizeof(c->err),
                 "host key of %s (%s:%d) has CHANGED: recorded %s, server offered %s %s. Someone "
                 "may be intercepting the connection; if the host was reinstalled, replace the "
                 "recorded key",
                 c->name, c->host, c->port, recorded, c->key_type, c->key_fp);
        return OPSC_EHOSTKEY;
    }
    if (strcmp(c->policy, "tofu") == 0) {
        c->key_learned = true;
        return 0;
    }
    snprintf(c->err, sizeof(c->err),
             "unknown host key for %s (%s:%d): server offered %s %s and host_key_policy is strict; "
             "record this key for the target after checking it, or use tofu",
             c->name, c->host, c->port, c->key_type, c->key_fp);
    return OPSC_EHOSTKEY;
}

/* ---- user authentication -------------------------------------------------- */

/* The key type of an OpenSSH private key: its public part is never
 * encrypted, so the type can be read without the passphrase. */
static bool openssh_key_is_rsa(const char *pem)
{
    const char *b = strstr(pem, "-----BEGIN OPENSSH PRIVATE KEY-----");
    if (!b)
        return false;
    b += strlen("-----BEGIN OPENSSH PRIVATE KEY-----");
    char b64[512];
    size_t n = 0;
    for (; *b && *b != '-' && n + 1 < sizeof(b64); b++)
        if (!isspace((unsigned char)*b))
            b64[n++] = *b;
    n -= n % 4;
    unsigned char raw[384];
    int len = EVP_DecodeBlock(raw, (unsigned char *)b64, (int)n);
    /* "openssh-key-v1\0" string cipher, string kdf, string kdfopts, u32 nkeys,
     * string pubkey { string type, ... } */
    size_t off = 15;
    for (int i = 0; i < 3; i++) {
        if (len < 0 || off + 4 > (size_t)len)
            return false;
        uint32_t l =
            (uint32_t)raw[off] << 24 | raw[off + 1] << 16 | raw[off + 2] << 8 | raw[off + 3];
        off += 4 + l;
    }
    off += 4 /* nkeys */ + 4 /* pubkey length */;
    if (off + 4 + 7 > (size_t)len)
        return false;
    return memcmp(raw + off + 4, "ssh-rsa", 7) == 0;
}

static bool key_is_rsa(const char *key)
{
    if (strstr(key, "BEGIN RSA PRIVATE KEY"))
        return true;
    if (strstr(key, "BEGIN OPENSSH PRIVATE KEY"))
        return openssh_key_is_rsa(key);
    if (strstr(key, "BEGIN PRIVATE KEY")) { /* PKCS#8, not encrypted */
        BIO *bio = BIO_new_mem_buf(key, -1);
        EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"") : NULL;
        bool rsa = pk && EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA;
        EVP_PKEY_free(pk);
        BIO_free(bio);
        return rsa;
    }
    return false;
}

/* "SSH-2.0-OpenSSH_9.2p1 ..." -> 9.2 as 902; 0 when not OpenSSH. */
static int openssh_version(const char *banner)
{
    const char *v = strstr(banner, "OpenSSH_");
    int major = 0, minor = 0;
    if (!v || sscanf(v + 8, "%d.%d", &major, &minor) != 2)
        return 0;
    return major * 100 + minor;
}

static void rsa_sha1_message(opsc_conn *c)
{
    snprintf(c->err, sizeof(c->err),
             "authentication as '%s' on %s failed: the key is an RSA key, and libssh2 %s can sign "
             "only with ssh-rsa (SHA-1), which OpenSSH 8.8 and newer refuse (server: %s); "
             "rsa-sha2-256/512 signing needs libssh2 1.11. Set the target's transport to "
             "\"openssh\" (the OpenSSH client signs with rsa-sha2-256/512), or use an ed25519 or "
             "ECDSA key for this credential",
             c->user, c->name, libssh2_version(0), c->banner[0] ? c->banner : "unknown");
}

static void kbdint_cb(const char *name, int name_len, const char *instruction, int instruction_len,
                      int num_prompts, const LIBSSH2_USERAUTH_KBDINT_PROMPT *prompts,
                      LIBSSH2_USERAUTH_KBDINT_RESPONSE *responses, void **abstract)
{
    (void)name, (void)name_len, (void)instruction, (void)instruction_len;
    opsc_conn *c = *abstract;
    for (int i = 0; i < num_prompts; i++) {
        /* Answer password prompts; anything else (OTP...) gets nothing. */
        bool pw = prompts[i].text && prompts[i].length >= 8 &&
                  (memmem(prompts[i].text, prompts[i].length, "assword", 7) ||
                   memmem(prompts[i].text, prompts[i].length, "ASSWORD", 7));
        const char *answer = pw && c->password ? c->password : "";
        /* libssh2 frees responses with the session's allocator (ssh_mem.c). */
        size_t len = strlen(answer);
        responses[i].text = ssh_mem_alloc(len + 1, abstract);
        if (responses[i].text)
            memcpy(responses[i].text, answer, len + 1);
        responses[i].length = responses[i].text ? (unsigned)len : 0;
    }
}

static bool offered(const opsc_conn *c, const char *method)
{
    size_t n = strlen(method);
    for (const char *m = c->methods; m && *m;) {
        size_t len = strcspn(m, ",");
        if (len == n && memcmp(m, method, n) == 0)
            return true;
        m += len + (m[len] == ',');
    }
    return false;
}

static void note_tried(opsc_conn *c, const char *method)
{
    size_t used = strlen(c->tried);
    snprintf(c->tried + used, sizeof(c->tried) - used, "%s%s", used ? ", " : "", method);
}

static int auth_failed(opsc_conn *c, const char *extra)
{
    snprintf(c->err, sizeof(c->err),
             "authentication as '%s' on %s failed (tried: %s; the server offers: %s)%s", c->user,
             c->name, c->tried[0] ? c->tried : "nothing", c->methods ? c->methods : "none",
             extra ? extra : "");
    return OPSC_EAUTH;
}

/* The methods in the order we try them, given the credential. */
enum auth_method { AM_KEY, AM_PASSWORD, AM_KBDINT, AM_END };

static int auth_try(opsc_conn *c, enum auth_method m)
{
    size_t ulen = strlen(c->user);
    switch (m) {
    case AM_KEY:
        return libssh2_userauth_publickey_frommemory(c->s, c->user, ulen, NULL, 0, c->key,
                                                     strlen(c->key), c->passphrase);
    case AM_PASSWORD:
        return libssh2_userauth_password_ex(c->s, c->user, (unsigned)ulen, c->password,
                                            (unsigned)strlen(c->password), NULL);
    case AM_KBDINT:
        return libssh2_userauth_keyboard_interactive_ex(c->s, c->user, (unsigned)ulen, kbdint_cb);
    default:
        return LIBSSH2_ERROR_AUTHENTICATION_FAILED;
    }
}

static bool auth_applies(opsc_conn *c, enum auth_method m)
{
    static const char *const names[] = {"publickey", "password", "keyboard-interactive"};
    bool have = m == AM_KEY ? c->key != NULL : c->password != NULL;
    return have && offered(c, names[m]);
}

static int auth_list(opsc_conn *c)
{
    char *list = libssh2_userauth_list(c->s, c->user, (unsigned)strlen(c->user));
    if (!list) {
        if (libssh2_userauth_authenticated(c->s))
            return 0; /* "none" was accepted */
        int e = libssh2_session_last_errno(c->s);
        if (e == LIBSSH2_ERROR_EAGAIN)
            return 1;
        char msg[256];
        int code = ssh_map_error(c, e, msg, sizeof(msg));
        snprintf(c->err, sizeof(c->err), "%s: asking for auth methods failed: %s", c->name, msg);
        return code;
    }
    c->methods = ssh_strdup(c->api, list);
    if (!c->methods)
        return OPSC_ENOMEM;
    c->state = C_AUTH;
    c->auth_step = AM_KEY;
    return -1000; /* go on with the methods */
}

int ssh_auth_step(opsc_conn *c)
{
    if (c->state == C_AUTHLIST) {
        int rc = auth_list(c);
        if (rc != -1000)
            return rc;
        if (c->key && !c->p->rsa_sha2 && key_is_rsa(c->key) && openssh_version(c->banner) >= 808) {
            rsa_sha1_message(c);
            return OPSC_EAUTH;
        }
    }
    for (; c->auth_step < AM_END; c->auth_step++) {
        enum auth_method m = (enum auth_method)c->auth_step;
        if (!auth_applies(c, m))
            continue;
        int rc = auth_try(c, m);
        if (rc == LIBSSH2_ERROR_EAGAIN)
            return 1;
        note_tried(c, m == AM_KEY        ? "publickey"
                      : m == AM_PASSWORD ? "password"
                                         : "keyboard-interactive");
        if (rc == 0)
            return 0;
        if (m == AM_KEY && rc != LIBSSH2_ERROR_AUTHENTICATION_FAILED &&
            rc != LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED && rc != LIBSSH2_ERROR_SOCKET_RECV &&
            rc != LIBSSH2_ERROR_SOCKET_SEND && rc != LIBSSH2_ERROR_SOCKET_DISCONNECT) {
            char msg[200];
            ssh_map_error(c, rc, msg, sizeof(msg));
            snprintf(c->err, sizeof(c->err),
                     "the private key for '%s' cannot be used: %s (wrong passphrase, or a format "
                     "libssh2 %s cannot read)",
                     c->user, msg, libssh2_version(0));
            return OPSC_EAUTH;
        }
        if (rc != LIBSSH2_ERROR_AUTHENTICATION_FAILED && rc != LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) {
            char msg[256];
            int code = ssh_map_error(c, rc, msg, sizeof(msg));
            snprintf(c->err, sizeof(c->err), "authentication as '%s' on %s failed: %s", c->user,
                     c->name, msg);
            return code == OPSC_EPROTO ? OPSC_EAUTH : code;
        }
    }
    if (c->key && !c->p->rsa_sha2 && key_is_rsa(c->key)) {
        rsa_sha1_message(c);
        return OPSC_EAUTH;
    }
    return auth_failed(c, NULL);
}
