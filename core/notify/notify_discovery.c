/* notify_discovery.c - notices of the host inventory's events: a host found (or back), a host
 * whose host key or OS changed, a host that vanished. Their messages name the host, its
 * address, names, open ports and keys, the change with both values, and link to the host. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "notify_internal.h"

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

int nt_discovery_event(const char *type)
{
    static const int evs[] = {EV_DISCOVERY_HOST_FOUND, EV_DISCOVERY_HOST_VANISHED,
                              EV_DISCOVERY_HOST_CHANGED};
    for (size_t i = 0; type && i < sizeof(evs) / sizeof(evs[0]); i++)
        if (strcmp(type, nt_event_name(evs[i])) == 0)
            return evs[i];
    return -1;
}

/* "SHA256:abc (ssh-ed25519)", or the value as text (an OS family). */
static json_t *value_text(const json_t *v)
{
    if (json_is_string(v))
        return json_string(json_string_value(v));
    const char *fp = str(v, "fingerprint"), *type = str(v, "type");
    char buf[256];
    snprintf(buf, sizeof(buf), "%s%s%s%s", fp ?: "none", type ? " (" : "", type ?: "",
             type ? ")" : "");
    return json_string(buf);
}

/* The host as messages show it: open ports as numbers, the SSH key as one string. */
static json_t *host_view(const json_t *h)
{
    json_t *ports = json_array(), *p;
    size_t i;
    json_array_foreach(json_object_get(h, "ports"), i, p)
    {
        if (strcmp(str(p, "state") ?: "", "open") == 0)
            json_array_append(ports, json_object_get(p, "port"));
    }
    const json_t *ssh = json_object_get(h, "ssh");
    json_t *k =
        json_pack("{s:O?, s:O?}", "fingerprint", json_object_get(ssh, "host_key_fingerprint"),
                  "type", json_object_get(ssh, "host_key_type"));
    json_t *key = str(ssh, "host_key_fingerprint") ? value_text(k) : json_null();
    json_decref(k);
    return json_pack("{s:O?, s:O?, s:O, s:o, s:o, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "id",
                     json_object_get(h, "id"), "address", json_object_get(h, "address"),
                     "hostnames", json_object_get(h, "hostnames") ?: json_array(), "open_ports",
                     ports, "ssh_key", key, "ssh", json_object_get(h, "ssh"), "winrm",
                     json_object_get(h, "winrm"), "os_family", json_object_get(h, "os_family"),
                     "first_seen", json_object_get(h, "first_seen"), "last_seen",
                     json_object_get(h, "last_seen"), "last_scan_id",
                     json_object_get(h, "last_scan_id"));
}

/* The profile of the scan that saw the host (vanishing names it itself). */
static json_t *profile_of(store_txn *txn, const json_t *d, const json_t *host)
{
    json_t *scan = NULL, *prof = NULL;
    const char *pid = str(d, "profile_id");
    const char *scan_id = str(host, "last_scan_id");
    if (!pid && scan_id && store_get(txn, "discovery_scans", scan_id, &scan) == 0)
        pid = str(scan, "profile_id");
    json_t *out = NULL;
    if (pid && store_get(txn, "discovery_profiles", pid, &prof) == 0)
        out = json_pack("{s:s, s:O?}", "id", pid, "name", json_object_get(prof, "name"));
    else if (pid)
        out = json_pack("{s:s, s:n}", "id", pid, "name");
    json_decref(scan);
    json_decref(prof);
    return out;
}

static json_t *change_view(const json_t *c)
{
    const char *field = str(c, "field") ?: "?";
    return json_pack("{s:s, s:s, s:O?, s:O?, s:o, s:o}", "field", field, "what",
                     strcmp(field, "ssh.host_key") == 0 ? "SSH host key"
                     : strcmp(field, "os_family") == 0  ? "OS"
                                                        : field,
                     "before", json_object_get(c, "before"), "after", json_object_get(c, "after"),
                     "before_text", value_text(json_object_get(c, "before")), "after_text",
                     value_text(json_object_get(c, "after")));
}

/* "10.1.2.5 (web1.example.com)" */
static void host_name(const json_t *view, char *buf, size_t n)
{
    const char *name = json_string_value(json_array_get(json_object_get(view, "hostnames"), 0));
    snprintf(buf, n, "%s%s%s%s", str(view, "address") ?: "?", name ? " (" : "", name ?: "",
             name ? ")" : "");
}

static void summary(int ev, const json_t *d, json_t *view, json_t *change, const json_t *prof,
                    char *text, size_t n)
{
    char who[300], ports[200] = "";
    host_name(view, who, sizeof(who));
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(view, "open_ports"), i, p)
        snprintf(ports + strlen(ports), sizeof(ports) - strlen(ports), "%s%lld", i ? ", " : "",
                 (long long)json_integer_value(p));
    if (ev == EV_DISCOVERY_HOST_CHANGED)
        snprintf(text, n, "Host %s changed its %s: %s -> %s", who, str(change, "what"),
                 str(change, "before_text"), str(change, "after_text"));
    else if (ev == EV_DISCOVERY_HOST_VANISHED)
        snprintf(text, n, "Host %s vanished: not seen by the last %lld scans of profile \"%s\"",
                 who, (long long)json_integer_value(json_object_get(d, "missed_scans")),
                 str(prof, "name") ?: str(prof, "id") ?: "?");
    else
        snprintf(text, n, "%s %s found: open ports %s",
                 json_is_true(json_object_get(d, "reappeared")) ? "Host" : "New host", who,
                 *ports ? ports : "none");
    if (ev == EV_DISCOVERY_HOST_FOUND && json_is_true(json_object_get(d, "reappeared")))
        strncat(text, " (back after vanishing)", n - strlen(text) - 1);
}

int nt_discovery_notice(notify *n, store_txn *txn, int ev, const json_t *d, notice *no,
                        json_t **hold)
{
    const json_t *host = json_object_get(d, "host");
    json_t *view = host_view(host), *prof = profile_of(txn, d, host);
    json_t *change =
        ev == EV_DISCOVERY_HOST_CHANGED ? change_view(json_object_get(d, "change")) : NULL;
    char text[1024], path[96];
    summary(ev, d, view, change, prof, text, sizeof(text));
    snprintf(path, sizeof(path), "/api/v1/discovery/hosts/%s", str(host, "id") ?: "");
    no->payload = nt_payload_base(n, ev, text, path);
    if (!no->payload || !view) {
        json_decref(view);
        json_decref(prof);
        json_decref(change);
        return OPSC_ENOMEM;
    }
    /* The template engine takes 12 roots: the profile and the missed scans go in the host. */
    json_object_set_new(view, "profile", prof ?: json_null());
    if (ev == EV_DISCOVERY_HOST_VANISHED)
        json_object_set(view, "missed_scans", json_object_get(d, "missed_scans"));
    json_object_set_new(no->payload, "host", view);
    if (change)
        json_object_set_new(no->payload, "change", change);
    *hold = json_incref(no->payload); /* address and profile id point into it */
    no->address = str(view, "address");
    no->profile_id = str(prof, "id");
    return 0;
}
