/* wr_options.c - a WinRM target's transport_options: parsed and checked with clear messages. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <opsc/errors.h>

#include "wr_internal.h"

static const char *const known_keys[] = {"scheme", "path",  "ca_bundle",         "cert_fingerprint",
                                         "verify", "shell", "allow_unencrypted", "spn_host",
                                         NULL};

static int check_keys(json_t *root, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        bool ok = false;
        for (size_t i = 0; known_keys[i]; i++)
            ok |= !strcmp(key, known_keys[i]);
        if (!ok) {
            wr_errf(err, errlen,
                    "transport_options: unknown key '%.60s' (valid: scheme, path, ca_bundle, "
                    "cert_fingerprint, verify, shell, allow_unencrypted, spn_host)",
                    key);
            return OPSC_ESCHEMA;
        }
    }
    return 0;
}

static int get_string(json_t *root, const char *key, const char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(root, key);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v)) {
        wr_errf(err, errlen, "transport_options.%s must be a string", key);
        return OPSC_ESCHEMA;
    }
    *out = json_string_value(v);
    return 0;
}

static int get_bool(json_t *root, const char *key, bool *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(root, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v)) {
        wr_errf(err, errlen, "transport_options.%s must be true or false", key);
        return OPSC_ESCHEMA;
    }
    *out = json_is_true(v);
    return 0;
}

static int parse_fingerprint(const char *s, wr_options *o, char *err, size_t errlen)
{
    size_t hex = 0;
    for (const char *p = s; *p; p++) {
        if (*p == ':')
            continue;
        if (!isxdigit((unsigned char)*p)) {
            hex = 0;
            break;
        }
        hex++;
    }
    if (hex != 64 || strlen(s) >= sizeof o->fingerprint) {
        wr_errf(err, errlen,
                "transport_options.cert_fingerprint must be the SHA-256 of the server "
                "certificate: 64 hex digits (colons allowed)");
        return OPSC_ESCHEMA;
    }
    wr_copy(o->fingerprint, sizeof o->fingerprint, s);
    return 0;
}

static int parse_fields(json_t *root, wr_options *o, char *err, size_t errlen)
{
    const char *scheme, *path, *ca, *fp, *shell, *spn;
    int rc = check_keys(root, err, errlen);
    if (!rc)
        rc = get_string(root, "scheme", &scheme, err, errlen);
    if (!rc)
        rc = get_string(root, "path", &path, err, errlen);
    if (!rc)
        rc = get_string(root, "ca_bundle", &ca, err, errlen);
    if (!rc)
        rc = get_string(root, "cert_fingerprint", &fp, err, errlen);
    if (!rc)
        rc = get_string(root, "shell", &shell, err, errlen);
    if (!rc)
        rc = get_string(root, "spn_host", &spn, err, errlen);
    if (!rc)
        rc = get_bool(root, "verify", &o->verify, err, errlen);
    if (!rc)
        rc = get_bool(root, "allow_unencrypted", &o->allow_unencrypted, err, errlen);
    if (rc)
        return rc;
    if (scheme && strcmp(scheme, "http") && strcmp(scheme, "https")) {
        wr_errf(err, errlen, "transport_options.scheme must be \"http\" or \"https\"");
        return OPSC_ESCHEMA;
    }
    o->scheme_set = scheme != NULL;
    o->https = scheme && !strcmp(scheme, "https");
    if (path && (path[0] != '/' || strlen(path) >= sizeof o->path || strpbrk(path, " \r\n\t?#"))) {
        wr_errf(err, errlen, "transport_options.path must start with '/' (e.g. \"/wsman\")");
        return OPSC_ESCHEMA;
    }
    wr_copy(o->path, sizeof o->path, path ? path : "/wsman");
    if (shell && strcmp(shell, "powershell") && strcmp(shell, "sh")) {
        wr_errf(err, errlen, "transport_options.shell must be \"powershell\" or \"sh\"");
        return OPSC_ESCHEMA;
    }
    o->dialect = shell && !strcmp(shell, "sh") ? WR_POSIX_SH : WR_POWERSHELL;
    if (spn && (strlen(spn) >= sizeof o->spn_host || strpbrk(spn, "@/ "))) {
        wr_errf(err, errlen, "transport_options.spn_host must be a host name");
        return OPSC_ESCHEMA;
    }
    wr_copy(o->spn_host, sizeof o->spn_host, spn ? spn : "");
    if (fp && (rc = parse_fingerprint(fp, o, err, errlen)))
        return rc;
    if (ca && ca[0]) {
        if (!strstr(ca, "-----BEGIN CERTIFICATE-----") && ca[0] != '/') {
            wr_errf(err, errlen,
                    "transport_options.ca_bundle must be PEM text or an absolute file path");
            return OPSC_ESCHEMA;
        }
        o->ca_bundle = strdup(ca);
        if (!o->ca_bundle)
            return OPSC_ENOMEM;
    }
    return 0;
}

int wr_options_parse(const char *json, wr_options *o, char *err, size_t errlen)
{
    *o = (wr_options){.verify = true};
    snprintf(o->path, sizeof o->path, "/wsman");
    if (!json || !json[0])
        return 0;
    json_error_t jerr;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        wr_errf(err, errlen, "transport_options must be a JSON object%s%s", root ? "" : ": ",
                root ? "" : jerr.text);
        json_decref(root);
        return OPSC_ESCHEMA;
    }
    int rc = parse_fields(root, o, err, errlen);
    json_decref(root);
    if (rc)
        wr_options_free(o);
    return rc;
}

void wr_options_free(wr_options *o)
{
    free(o->ca_bundle);
    o->ca_bundle = NULL;
}
