/* targets.c - target records: building one from a request body, and its field rules. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>
#include <opsc/transport.h>

#include "fields.h"
#include "fleet.h"
#include "fleet_internal.h"
#include "plugin_host.h"
#include "selector.h"
#include "strbuf.h"
#include "util.h"

#define DEFAULT_CONNECT_TIMEOUT_S 15

static const fld target_fields[] = {
    {"name", FLD_STRING, 1, 128, NULL, 0, NULL},
    {"address", FLD_STRING, 1, 255, NULL, 0, NULL},
    {"port", FLD_INT, 0, 65535, NULL, FLD_NULLABLE, NULL},
    {"os_family", FLD_STRING, 0, 16, "linux windows", FLD_NULLABLE, NULL},
    {"transport", FLD_STRING, 1, 32, NULL, 0, NULL},
    {"credential_id", FLD_STRING, 1, 39, NULL, FLD_NULL_VALUE, NULL},
    {"labels", FLD_OBJECT, 0, 0, NULL, FLD_NULLABLE, NULL},
    {"host_key_policy", FLD_STRING, 0, 16, "strict tofu off", FLD_NULLABLE, NULL},
    {"allow_insecure", FLD_BOOL, 0, 0, NULL, FLD_TRANSIENT, NULL},
    {"connect_timeout_s", FLD_INT, 1, 600, NULL, FLD_NULLABLE, NULL},
    {"command_timeout_s", FLD_INT, 0, 7 * 86400, NULL, FLD_NULLABLE, NULL},
    {"transport_options", FLD_OBJECT, 0, 0, NULL, FLD_NULLABLE, NULL},
    {"enabled", FLD_BOOL, 0, 0, NULL, FLD_NULLABLE, NULL},
    {"description", FLD_STRING, 0, 1024, NULL, FLD_NULLABLE | FLD_MULTILINE, NULL},
    {"host_keys", FLD_ARRAY, 0, 16, NULL, FLD_CREATE_ONLY,
     "use POST or DELETE /api/v1/targets/{id}/host-keys"},
    {"facts", FLD_OBJECT, 0, 0, NULL, FLD_READ_ONLY, "POST /api/v1/targets/{id}/test gathers them"},
    {"last_test", FLD_OBJECT, 0, 0, NULL, FLD_READ_ONLY, NULL},
    {"id", FLD_STRING, 0, 0, NULL, FLD_READ_ONLY, NULL},
    {"created_at", FLD_STRING, 0, 0, NULL, FLD_READ_ONLY, NULL},
    {"updated_at", FLD_STRING, 0, 0, NULL, FLD_READ_ONLY, NULL},
    {"version", FLD_INT, 0, 0, NULL, FLD_READ_ONLY, "send it as If-Match"},
    {NULL, 0, 0, 0, NULL, 0, NULL},
};

static const opsc_transport *transport_of(const plugin_reg *r)
{
    return r ? r->desc : NULL;
}

/* What null (or absence, on create) means for each member, given the transport. */
static json_t *target_defaults(const plugin_reg *tr, const char *trname)
{
    int port = tr ? transport_of(tr)->default_port : 0;
    return json_pack("{s:i, s:s, s:o, s:s, s:i, s:i, s:o, s:b, s:s, s:n}", "port", port,
                     "os_family", strcmp(trname, "winrm") == 0 ? "windows" : "linux", "labels",
                     json_object(), "host_key_policy", "strict", "connect_timeout_s",
                     DEFAULT_CONNECT_TIMEOUT_S, "command_timeout_s", 0, "transport_options",
                     json_object(), "enabled", 1, "description", "", "credential_id");
}

static int no_transport(plugin_host *h, const char *name, fleet_err *e)
{
    strbuf sb = STRBUF_INIT;
    size_t n = h ? plugin_host_count(h, REG_TRANSPORT) : 0;
    for (size_t i = 0; i < n; i++)
        sb_printf(&sb, "%s%s", i ? ", " : "",
                  transport_of(plugin_host_reg(h, REG_TRANSPORT, i))->name);
    char q[FLEET_QUOTE_LEN];
    fleet_quote(name, strlen(name), q);
    fleet_fail(e, "transport", "no transport '%s' is loaded (loaded: %s)", q,
               sb.buf ? sb.buf : "none");
    sb_free(&sb);
    return OPSC_ESCHEMA;
}

/* ---- addresses --------------------------------------------------------------------------- */

/* RFC 1123 host name: dot-separated labels of [A-Za-z0-9-_], no '-' at either
 * end, the last one not all digits (that would be a malformed IPv4). */
bool dns_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n && s[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return false;
    size_t start = 0;
    bool digits = true;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.') {
            if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
                return false;
            digits = digits && isdigit((unsigned char)s[i]);
            continue;
        }
        size_t len = i - start;
        if (len == 0 || len > 63 || s[start] == '-' || s[i - 1] == '-')
            return false;
        if (i == n && digits)
            return false;
        start = i + 1;
        digits = true;
    }
    return true;
}

static int check_address(json_t *rec, fleet_err *e)
{
    const char *a = fld_str(rec, "address");
    size_t n = strlen(a);
    unsigned char buf[sizeof(struct in6_addr)];
    if (n > 2 && a[0] == '[' && a[n - 1] == ']') { /* "[::1]": keep the bare literal */
        char inner[INET6_ADDRSTRLEN + 1];
        snprintf(inner, sizeof(inner), "%.*s", (int)(n - 2), a + 1);
        if (n - 2 < sizeof(inner) && inet_pton(AF_INET6, inner, buf) == 1) {
            json_object_set_new(rec, "address", json_string(inner));
            return 0;
        }
    }
    if (inet_pton(AF_INET, a, buf) == 1 || inet_pton(AF_INET6, a, buf) == 1 || dns_name_ok(a))
        return 0;
    char q[FLEET_QUOTE_LEN];
    fleet_quote(a, n, q);
    return fleet_fail(e, "address",
                      "address '%s' is neither a DNS name nor an IPv4 or IPv6 address", q);
}

/* ---- transport options ---------------------------------------------------------------------- */

static const char *json_type_name(const json_t *v)
{
    static const char *const names[] = {"object", "array",   "string",  "integer",
                                        "number", "boolean", "boolean", "null"};
    return names[json_typeof(v)];
}

/* The part of JSON Schema a transport without validate_options relies on:
 * additionalProperties false and the types of declared properties. */
static int schema_check(const char *schema_text, const json_t *opts, char *err, size_t errlen)
{
    json_t *schema = schema_text ? json_loads(schema_text, 0, NULL) : NULL;
    json_t *props = json_object_get(schema, "properties");
    bool closed = json_is_false(json_object_get(schema, "additionalProperties"));
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach((json_t *)opts, k, v)
    {
        json_t *p = json_object_get(props, k);
        const char *want = fld_str(p, "type");
        char q[FLEET_QUOTE_LEN];
        fleet_quote(k, strlen(k), q);
        if (!p && closed) {
            snprintf(err, errlen, "unknown option '%s'", q);
            rc = OPSC_ESCHEMA;
        } else if (want && strcmp(want, json_type_name(v)) != 0 &&
                   !(strcmp(want, "number") == 0 && json_is_number(v))) {
            snprintf(err, errlen, "option '%s' must be of type %s", q, want);
            rc = OPSC_ESCHEMA;
        }
        if (rc < 0)
            break;
    }
    json_decref(schema);
    return rc;
}

static int check_options(const plugin_reg *r, const json_t *opts, fleet_err *e)
{
    const opsc_transport *t = transport_of(r);
    char err[256] = "";
    int rc;
    if (t->validate_options) {
        char *text = json_dumps(opts, JSON_COMPACT);
        rc = text ? t->validate_options(r->state, text, err, sizeof(err)) : OPSC_ENOMEM;
        free(text);
    } else {
        rc = schema_check(t->options_schema, opts, err, sizeof(err));
    }
    if (rc == OPSC_ENOMEM)
        return rc;
    if (rc < 0)
        return fleet_fail(e, "transport_options", "transport_options for %s: %s", t->name,
                          err[0] ? err : "refused by the transport");
    return 0;
}

/* ---- host keys ---------------------------------------------------------------------------- */

bool host_key_fingerprint_valid(const char *fp)
{
    if (!fp || strncmp(fp, "SHA256:", 7) != 0 || strlen(fp) != 7 + 43)
        return false;
    for (const char *p = fp + 7; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '/')
            return false;
    return true;
}

bool host_key_type_valid(const char *type)
{
    size_t n = type ? strlen(type) : 0;
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)type[i]) && !strchr("-@.", type[i]))
            return false;
    return true;
}

json_t *host_key_entry(const char *type, const char *fp, const char *source)
{
    char now[RFC3339_LEN];
    rfc3339_format(clock_now_ms(), now);
    return json_pack("{s:s, s:s, s:s, s:s}", "type", type, "fingerprint", fp, "source", source,
                     "added_at", now);
}

/* Initial keys at creation: "type SHA256:..." strings or {type, fingerprint}. */
static int build_host_keys(json_t *rec, fleet_err *e)
{
    json_t *in = json_object_get(rec, "host_keys"), *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(in, i, v)
    {
        char type[72] = "", fp[72] = "";
        if (json_is_string(v)) {
            sscanf(json_string_value(v), "%71s %71s", type, fp);
        } else if (json_is_object(v) && fld_str(v, "type") && fld_str(v, "fingerprint")) {
            snprintf(type, sizeof(type), "%s", fld_str(v, "type"));
            snprintf(fp, sizeof(fp), "%s", fld_str(v, "fingerprint"));
        }
        if (!host_key_type_valid(type) || !host_key_fingerprint_valid(fp)) {
            json_decref(out);
            return fleet_fail(e, "host_keys",
                              "host_keys[%zu] must be \"<key type> SHA256:<base64>\" or {\"type\", "
                              "\"fingerprint\"}",
                              i);
        }
        json_array_append_new(out, host_key_entry(type, fp, "api"));
    }
    json_object_set_new(rec, "host_keys", out);
    return 0;
}

char *target_known_hosts(const json_t *rec)
{
    strbuf sb = STRBUF_INIT;
    sb_puts(&sb, "");
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(rec, "host_keys"), i, k)
        sb_printf(&sb, "%s %s\n", fld_str(k, "type"), fld_str(k, "fingerprint"));
    return sb_steal(&sb, NULL);
}

/* ---- building ------------------------------------------------------------------------------ */

/* Port: the transport's default when not given, and again when the transport
 * changes while the port was the old transport's default. */
static void settle_port(plugin_host *h, const json_t *body, const json_t *existing, json_t *rec,
                        const plugin_reg *tr)
{
    json_int_t def = transport_of(tr)->default_port;
    json_int_t port = json_integer_value(json_object_get(rec, "port"));
    if (port == 0) {
        json_object_set_new(rec, "port", json_integer(def));
        return;
    }
    const char *old = existing ? fld_str(existing, "transport") : NULL;
    if (!old || json_object_get(body, "port") || strcmp(old, fld_str(rec, "transport")) == 0)
        return;
    const plugin_reg *otr = plugin_host_find(h, REG_TRANSPORT, old);
    if (otr && transport_of(otr)->default_port == port)
        json_object_set_new(rec, "port", json_integer(def));
}

static int check_name(const json_t *rec, fleet_err *e)
{
    const char *name = fld_str(rec, "name");
    if (!name)
        return fleet_fail(e, "name", "name is required");
    size_t n = strlen(name);
    if (isspace((unsigned char)name[0]) || isspace((unsigned char)name[n - 1]))
        return fleet_fail(e, "name", "name must not start or end with a space");
    return 0;
}

static int check_endpoint(json_t *rec, bool local, fleet_err *e)
{
    if (local) {
        if (!fld_str(rec, "address"))
            json_object_set_new(rec, "address", json_string("localhost"));
        if (strcmp(fld_str(rec, "os_family"), "linux") != 0)
            return fleet_fail(e, "os_family",
                              "the local transport runs on this appliance: "
                              "os_family must be linux");
        if (fld_str(rec, "credential_id"))
            return fleet_fail(e, "credential_id",
                              "the local transport runs as the daemon's user and takes no "
                              "credential");
    } else if (!fld_str(rec, "credential_id")) {
        return fleet_fail(e, "credential_id", "credential_id is required for the %s transport",
                          fld_str(rec, "transport"));
    }
    if (!fld_str(rec, "address"))
        return fleet_fail(e, "address", "address is required");
    const char *cid = fld_str(rec, "credential_id");
    if (cid && !uuid_valid(cid))
        return fleet_fail(e, "credential_id", "credential_id must be a credential's id");
    return check_address(rec, e);
}

/* host_key_policy "off" needs "allow_insecure": true on the request that
 * turns it off, and is reported as a warning every time. */
static int check_policy(const json_t *existing, const json_t *rec, const json_t *transient,
                        json_t *warnings, fleet_err *e)
{
    if (strcmp(fld_str(rec, "host_key_policy"), "off") != 0)
        return 0;
    const char *was = existing ? fld_str(existing, "host_key_policy") : NULL;
    if ((!was || strcmp(was, "off") != 0) &&
        !json_is_true(json_object_get(transient, "allow_insecure")))
        return fleet_fail(e, "host_key_policy",
                          "host_key_policy \"off\" accepts any host key (anyone on the path can "
                          "impersonate the target): send \"allow_insecure\": true to confirm");
    if (warnings)
        json_array_append_new(warnings,
                              json_string("host key verification is off for this target: any "
                                          "host key is accepted and every run logs a warning"));
    return 0;
}

static int build_checks(plugin_host *h, const json_t *body, const json_t *existing, json_t *rec,
                        const json_t *transient, json_t *warnings, fleet_err *e)
{
    const char *trname = fld_str(rec, "transport");
    const plugin_reg *tr = plugin_host_find(h, REG_TRANSPORT, trname);
    if (!tr)
        return no_transport(h, trname, e);
    settle_port(h, body, existing, rec, tr);
    int rc = check_name(rec, e);
    if (rc == 0)
        rc = check_endpoint(rec, strcmp(trname, "local") == 0, e);
    if (rc == 0)
        rc = labels_check(json_object_get(rec, "labels"), e->msg, sizeof(e->msg));
    if (rc == OPSC_ESCHEMA && !e->field)
        e->field = "labels";
    if (rc == 0)
        rc = check_options(tr, json_object_get(rec, "transport_options"), e);
    if (rc == 0)
        rc = check_policy(existing, rec, transient, warnings, e);
    if (rc == 0 && !existing)
        rc = build_host_keys(rec, e);
    return rc;
}

int target_build(plugin_host *h, const json_t *body, const json_t *existing, json_t **out,
                 json_t *warnings, fleet_err *e)
{
    e->field = NULL;
    e->msg[0] = '\0';
    *out = NULL;
    const char *trname = fld_str(body, "transport");
    if (!trname)
        trname = existing ? fld_str(existing, "transport") : "ssh";
    json_t *defaults = target_defaults(plugin_host_find(h, REG_TRANSPORT, trname), trname);
    json_t *rec = existing ? json_deep_copy(existing) : json_deep_copy(defaults);
    json_t *transient = json_object();
    int rc = defaults && rec && transient ? 0 : OPSC_ENOMEM;
    if (rc == 0 && !existing)
        json_object_set_new(rec, "transport", json_string(trname));
    if (rc == 0)
        rc = fld_apply(target_fields, body, !existing, defaults, rec, transient, e);
    if (rc == 0 && !existing) { /* read-only members, present from the start */
        if (!json_object_get(rec, "host_keys"))
            json_object_set_new(rec, "host_keys", json_array());
        json_object_set_new(rec, "facts", json_object());
        json_object_set_new(rec, "last_test", json_null());
    }
    if (rc == 0)
        rc = build_checks(h, body, existing, rec, transient, warnings, e);
    json_decref(defaults);
    json_decref(transient);
    if (rc == 0) {
        *out = fld_ordered(target_fields, rec);
        rc = *out ? 0 : OPSC_ENOMEM;
    }
    json_decref(rec);
    return rc;
}

const char *target_credential_types(plugin_host *h, const json_t *rec)
{
    const opsc_transport *t =
        transport_of(plugin_host_find(h, REG_TRANSPORT, fld_str(rec, "transport")));
    if (!t || t->size < offsetof(opsc_transport, credential_types) + sizeof(t->credential_types))
        return NULL;
    return t->credential_types;
}

bool target_conn_changed(const json_t *before, const json_t *after)
{
    static const char *const keys[] = {"address",           "port",          "transport",
                                       "transport_options", "credential_id", "host_key_policy",
                                       "connect_timeout_s", "enabled",       "os_family"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!fleet_same(json_object_get(before, keys[i]), json_object_get(after, keys[i])))
            return true;
    return false;
}
