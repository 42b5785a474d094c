/* oss_options.c - transport_options of an OpenSSH target: jump hosts, certificate, gssapi and an
 * allow-list of ssh -o options. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <opsc/errors.h>

#include "oss_options.h"
#include "transport_options.h"

const char *oss_options_schema(void)
{
    return S_transport_options_params;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return OPSC_ESCHEMA;
}

/* ---- ssh -o options ------------------------------------------------------------------------- */

/* What a target may tune: algorithms, keepalives, addresses, timeouts. Nothing that runs a
 * command, loads code, names a file or socket, forwards anything or touches host keys. */
static const char *const allowed[] = {
    "AddressFamily",
    "BindAddress",
    "BindInterface",
    "CASignatureAlgorithms",
    "Ciphers",
    "Compression",
    "ConnectionAttempts",
    "ConnectTimeout",
    "GSSAPIDelegateCredentials",
    "GSSAPIKeyExchange",
    "GSSAPIServerIdentity",
    "GSSAPITrustDns",
    "HostKeyAlgorithms",
    "IPQoS",
    "KexAlgorithms",
    "MACs",
    "PubkeyAcceptedAlgorithms",
    "PubkeyAcceptedKeyTypes",
    "RekeyLimit",
    "RequiredRSASize",
    "ServerAliveCountMax",
    "ServerAliveInterval",
    "TCPKeepAlive",
    NULL,
};

/* Refused with the reason, so a user sees why rather than "unknown". */
static const struct {
    const char *name, *why;
} refused[] = {
    {"ProxyCommand", "it runs a local command (use jump for bastions)"},
    {"ProxyJump", "use transport_options.jump, whose hosts have their own credentials and keys"},
    {"ProxyUseFdpass", "it belongs to ProxyCommand"},
    {"LocalCommand", "it runs a local command"},
    {"PermitLocalCommand", "it enables LocalCommand"},
    {"RemoteCommand", "the step decides the command"},
    {"KnownHostsCommand", "it runs a local command; host keys follow host_key_policy"},
    {"PKCS11Provider", "it loads a library into ssh"},
    {"SecurityKeyProvider", "it loads a library into ssh"},
    {"Include", "it reads local files"},
    {"Match", "it can run a local command (Match exec)"},
    {"IdentityFile", "keys come from the credential"},
    {"IdentityAgent", "keys come from the credential"},
    {"CertificateFile", "certificates come from the credential"},
    {"UserKnownHostsFile", "host keys follow host_key_policy"},
    {"GlobalKnownHostsFile", "host keys follow host_key_policy"},
    {"StrictHostKeyChecking", "host keys follow host_key_policy"},
    {"NoHostAuthenticationForLocalhost", "host keys follow host_key_policy"},
    {"VerifyHostKeyDNS", "host keys follow host_key_policy"},
    {"UpdateHostKeys", "host keys follow host_key_policy"},
    {"CheckHostIP", "host keys follow host_key_policy"},
    {"HostKeyAlias", "host keys follow host_key_policy"},
    {"ControlMaster", "the transport runs the master connection"},
    {"ControlPath", "the transport runs the master connection"},
    {"ControlPersist", "the master lives as long as the pooled connection"},
    {"LocalForward", "it forwards ports"},
    {"RemoteForward", "it forwards ports"},
    {"DynamicForward", "it forwards ports"},
    {"ForwardAgent", "it hands the credential to the target"},
    {"ForwardX11", "it forwards X11"},
    {"ForwardX11Trusted", "it forwards X11"},
    {"XAuthLocation", "it runs a local command"},
    {"Tunnel", "it creates network devices"},
    {"TunnelDevice", "it creates network devices"},
    {"User", "the user comes from the credential"},
    {"Port", "set the target's port"},
    {"Hostname", "set the target's address"},
    {"SendEnv", "it sends the daemon's environment"},
    {"SetEnv", "put variables in the step's env"},
    {"LogLevel", "the transport reads ssh's own log"},
    {"BatchMode", "the transport decides how secrets reach ssh"},
    {"EscapeChar", "the transport decides it"},
    {"RequestTTY", "the step decides it (pty)"},
    {"SessionType", "the transport decides it"},
    {"StdinNull", "the transport decides it"},
    {"ForkAfterAuthentication", "the transport decides it"},
    {"NumberOfPasswordPrompts", "the transport decides it"},
    {"PreferredAuthentications", "the credential decides it"},
    {"PasswordAuthentication", "the credential decides it"},
    {"PubkeyAuthentication", "the credential decides it"},
    {"KbdInteractiveAuthentication", "the credential decides it"},
    {"GSSAPIAuthentication", "use transport_options.gssapi"},
    {"IdentitiesOnly", "the credential decides it"},
    {"AddKeysToAgent", "the transport runs the agent"},
};

const char *oss_option_allowed(const char *keyword)
{
    for (size_t i = 0; allowed[i]; i++)
        if (strcasecmp(allowed[i], keyword) == 0)
            return allowed[i];
    return NULL;
}

static bool value_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > OSS_VALUE_MAX)
        return false;
    for (const char *p = v; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("@._,+:=/^-", *p))
            return false;
    return true;
}

static int add_option(oss_options *o, const char *key, json_t *v, char *err, size_t errlen)
{
    for (const char *p = key; *p; p++)
        if (!isalnum((unsigned char)*p))
            return fail(err, errlen, "transport_options.options: '%.60s' is not an ssh option name",
                        key);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (strcasecmp(refused[i].name, key) == 0)
            return fail(err, errlen, "transport_options.options: %s is refused: %s",
                        refused[i].name, refused[i].why);
    const char *name = oss_option_allowed(key);
    if (!name)
        return fail(err, errlen,
                    "transport_options.options: '%.60s' is not one of the ssh options a target may "
                    "set (Ciphers, KexAlgorithms, MACs, HostKeyAlgorithms, "
                    "PubkeyAcceptedAlgorithms, Compression, ServerAliveInterval, ConnectTimeout, "
                    "...)",
                    key);
    char value[OSS_VALUE_MAX + 1];
    if (json_is_string(v))
        snprintf(value, sizeof(value), "%s", json_string_value(v));
    else if (json_is_integer(v) && json_integer_value(v) >= 0)
        snprintf(value, sizeof(value), "%lld", (long long)json_integer_value(v));
    else if (json_is_boolean(v))
        snprintf(value, sizeof(value), "%s", json_is_true(v) ? "yes" : "no");
    else
        return fail(err, errlen,
                    "transport_options.options.%s must be a string, a number or a boolean", name);
    if ((json_is_string(v) && strlen(json_string_value(v)) >= sizeof(value)) || !value_ok(value))
        return fail(err, errlen,
                    "transport_options.options.%s: the value may hold letters, digits and "
                    "@._,+:=/^- only (no spaces, quotes or %%)",
                    name);
    if (o->nextra == OSS_MAX_EXTRA)
        return fail(err, errlen, "transport_options.options: at most %d options", OSS_MAX_EXTRA);
    snprintf(o->extra[o->nextra++], sizeof(o->extra[0]), "%s=%s", name, value);
    return 0;
}

static int parse_extra(json_t *opts, oss_options *o, char *err, size_t errlen)
{
    if (!json_is_object(opts))
        return fail(err, errlen, "transport_options.options must be an object of ssh options");
    const char *k;
    json_t *v;
    json_object_foreach(opts, k, v)
    {
        int rc = add_option(o, k, v, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- jump hosts --------------------------------------------------------------------------- */

static bool uuid_like(const char *s)
{
    static const char pattern[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    if (strlen(s) != sizeof(pattern) - 1)
        return false;
    for (size_t i = 0; pattern[i]; i++)
        if (pattern[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

bool oss_user_ok(const char *user)
{
    size_t n = user ? strlen(user) : 0;
    if (n == 0 || n > 64 || user[0] == '-')
        return false;
    for (const char *p = user; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-$\\", *p))
            return false;
    return true;
}

static bool dns_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253 || s[0] == '-' || s[0] == '.')
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
            return false;
    return true;
}

static int parse_port(const char *s, int *port)
{
    if (!*s || strlen(s) > 5)
        return -1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    long v = strtol(s, NULL, 10);
    if (v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

int oss_hostspec_parse(const char *s, oss_jump_spec *j, char *err, size_t errlen)
{
    char buf[400];
    if (strlen(s) >= sizeof(buf))
        return fail(err, errlen, "jump host '%.60s...' is too long", s);
    snprintf(buf, sizeof(buf), "%s", s);
    char *host = buf, *at = strrchr(buf, '@');
    if (at) {
        *at = '\0';
        if (!oss_user_ok(buf))
            return fail(err, errlen, "jump host '%.100s': the user name is not valid", s);
        snprintf(j->user, sizeof(j->user), "%.64s", buf);
        host = at + 1;
    }
    char *port = NULL;
    unsigned char addr[16];
    if (host[0] == '[') {
        char *end = strchr(host, ']');
        if (!end || (end[1] && end[1] != ':'))
            return fail(err, errlen, "jump host '%.100s': expected [IPv6 address]:port", s);
        *end = '\0';
        port = end[1] ? end + 2 : NULL;
        host++;
        if (inet_pton(AF_INET6, host, addr) != 1)
            return fail(err, errlen, "jump host '%.100s': not an IPv6 address in brackets", s);
    } else {
        char *colon = strchr(host, ':');
        if (colon && strchr(colon + 1, ':'))
            return fail(err, errlen, "jump host '%.100s': write an IPv6 address as [addr]:port", s);
        if (colon) {
            *colon = '\0';
            port = colon + 1;
        }
        if (inet_pton(AF_INET, host, addr) != 1 && !dns_name_ok(host))
            return fail(err, errlen,
                        "jump host '%.100s' is neither a target id nor [user@]host[:port]", s);
    }
    if (port && parse_port(port, &j->port) < 0)
        return fail(err, errlen, "jump host '%.100s': the port must be 1 to 65535", s);
    if (strlen(host) >= sizeof(j->host))
        return fail(err, errlen, "jump host '%.100s...': the host name is too long", s);
    snprintf(j->host, sizeof(j->host), "%.255s", host);
    return 0;
}

static bool fingerprint_ok(const char *fp)
{
    if (strncmp(fp, "SHA256:", 7) != 0 || strlen(fp) != 7 + 43)
        return false;
    for (const char *p = fp + 7; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '/')
            return false;
    return true;
}

static int parse_pinned(json_t *keys, oss_jump_spec *j, size_t i, char *err, size_t errlen)
{
    if (!json_is_array(keys) || json_array_size(keys) > OSS_MAX_PINNED)
        return fail(err, errlen,
                    "transport_options.jump[%zu].host_keys must be a list of at most "
                    "16 \"<key type> SHA256:<base64>\"",
                    i);
    size_t k;
    json_t *v;
    json_array_foreach(keys, k, v)
    {
        char type[72] = "", fp[72] = "", extra[8] = "";
        const char *s = json_string_value(v);
        bool ok = s && strlen(s) < 140 && sscanf(s, "%71s %71s %7s", type, fp, extra) == 2 &&
                  fingerprint_ok(fp);
        for (const char *p = type; ok && *p; p++)
            ok = isalnum((unsigned char)*p) || strchr("-@.", *p);
        if (!ok)
            return fail(err, errlen,
                        "transport_options.jump[%zu].host_keys[%zu] must be \"<key type> "
                        "SHA256:<base64>\"",
                        i, k);
        size_t used = strlen(j->pinned);
        snprintf(j->pinned + used, sizeof(j->pinned) - used, "%s %s\n", type, fp);
    }
    return 0;
}

static int parse_jump_object(json_t *e, oss_jump_spec *j, size_t i, char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    json_object_foreach(e, k, v)
    {
        if (strcmp(k, "host") && strcmp(k, "credential_id") && strcmp(k, "host_key_policy") &&
            strcmp(k, "host_keys"))
            return fail(err, errlen,
                        "transport_options.jump[%zu]: unknown member '%.40s' (valid: host, "
                        "credential_id, host_key_policy, host_keys)",
                        i, k);
    }
    const char *host = json_string_value(json_object_get(e, "host"));
    if (!host)
        return fail(err, errlen, "transport_options.jump[%zu].host is required", i);
    int rc = oss_hostspec_parse(host, j, err, errlen);
    if (rc)
        return rc;
    json_t *cid = json_object_get(e, "credential_id");
    if (cid && (!json_is_string(cid) || !uuid_like(json_string_value(cid))))
        return fail(err, errlen,
                    "transport_options.jump[%zu].credential_id must be a "
                    "credential's id",
                    i);
    j->credential = cid != NULL;
    json_t *pol = json_object_get(e, "host_key_policy");
    const char *ps = json_string_value(pol);
    if (pol && (!ps || (strcmp(ps, "strict") && strcmp(ps, "off"))))
        return fail(err, errlen,
                    "transport_options.jump[%zu].host_key_policy must be strict or off (a bastion "
                    "whose key should be learned on first use must be a target)",
                    i);
    snprintf(j->policy, sizeof(j->policy), "%s", ps ? ps : "strict");
    json_t *keys = json_object_get(e, "host_keys");
    return keys ? parse_pinned(keys, j, i, err, errlen) : 0;
}

static int parse_jump(json_t *e, oss_jump_spec *j, size_t i, char *err, size_t errlen)
{
    memset(j, 0, sizeof(*j));
    if (json_is_object(e))
        return parse_jump_object(e, j, i, err, errlen);
    const char *s = json_string_value(e);
    if (!s)
        return fail(err, errlen,
                    "transport_options.jump[%zu] must be a target id, "
                    "\"[user@]host[:port]\" or an object",
                    i);
    if (uuid_like(s)) {
        snprintf(j->target_id, sizeof(j->target_id), "%s", s);
        return 0;
    }
    snprintf(j->policy, sizeof(j->policy), "strict");
    return oss_hostspec_parse(s, j, err, errlen);
}

static int parse_jumps(json_t *v, oss_options *o, char *err, size_t errlen)
{
    if (json_is_string(v) || json_is_object(v)) {
        o->njumps = 1;
        return parse_jump(v, &o->jumps[0], 0, err, errlen);
    }
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > OSS_MAX_JUMPS)
        return fail(err, errlen, "transport_options.jump must be a jump host or a list of 1 to %d",
                    OSS_MAX_JUMPS);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        int rc = parse_jump(e, &o->jumps[i], i, err, errlen);
        if (rc)
            return rc;
    }
    o->njumps = json_array_size(v);
    return 0;
}

/* ---- the object ------------------------------------------------------------------------------ */

static int parse_bool(json_t *v, const char *name, bool *out, char *err, size_t errlen)
{
    if (!json_is_boolean(v))
        return fail(err, errlen, "transport_options.%s must be true or false", name);
    *out = json_is_true(v);
    return 0;
}

static int parse_member(const char *k, json_t *v, oss_options *o, char *err, size_t errlen)
{
    bool b = false;
    int rc;
    if (strcmp(k, "jump") == 0)
        return parse_jumps(v, o, err, errlen);
    if (strcmp(k, "options") == 0)
        return parse_extra(v, o, err, errlen);
    if (strcmp(k, "gssapi") == 0)
        return parse_bool(v, k, &o->gssapi, err, errlen);
    if (strcmp(k, "certificate") == 0) {
        rc = parse_bool(v, k, &b, err, errlen);
        o->certificate = b ? 1 : 0;
        return rc;
    }
    return fail(
        err, errlen,
        "transport_options: unknown key '%.60s' (valid: jump, certificate, gssapi, options)", k);
}

int oss_options_parse(const char *json, oss_options *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof(*o));
    o->certificate = -1;
    if (!json || !*json)
        return 0;
    json_error_t jerr;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return fail(err, errlen, "transport_options must be a JSON object");
    }
    int rc = 0;
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
    {
        if (rc == 0)
            rc = parse_member(k, v, o, err, errlen);
    }
    json_decref(root);
    return rc;
}
