/* tcp_facts.c - a host's report: ports, SSH, WinRM, ICMP, and the OS guess with its evidence. */
#include <stdio.h>
#include <string.h>

#include "dx_os.h"
#include "tcp_internal.h"

static const char *const states[] = {"filtered", "open", "closed", "filtered"};
static const char *const services[] = {NULL, "ssh", "winrm", "http"};

static json_t *ports_json(const thost *h, bool *p22, bool *winrm)
{
    json_t *out = json_array();
    for (size_t i = 0; i < h->s->nports; i++) {
        json_t *p = json_pack("{s:i, s:s}", "port", h->s->ports[i], "state", states[h->state[i]]);
        if (services[h->svc[i]])
            json_object_set_new(p, "service", json_string(services[h->svc[i]]));
        json_array_append_new(out, p);
        bool open = h->state[i] == TP_OPEN;
        *p22 = *p22 || (open && h->s->ports[i] == 22);
        *winrm = *winrm || (open && thost_wsman_kind(h->s, (int)i));
    }
    return out;
}

static json_t *ssh_json(const thost *h)
{
    if (!h->banner[0])
        return NULL;
    json_t *o = json_pack("{s:i, s:s}", "port", h->ssh_port, "banner", h->banner);
    if (h->fingerprint[0]) {
        json_object_set_new(o, "host_key_type", json_string(h->key_type));
        json_object_set_new(o, "host_key_fingerprint", json_string(h->fingerprint));
    }
    return o;
}

static json_t *winrm_json(const thost *h)
{
    if (!h->winrm)
        return NULL;
    json_t *o =
        json_pack("{s:i, s:s, s:s, s:s, s:s}", "port", h->winrm_port, "scheme",
                  h->https ? "https" : "http", "vendor", h->identify.vendor, "protocol_version",
                  h->identify.protocol_version, "product_version", h->identify.product_version);
    if (h->https && h->cert_sha256[0])
        json_object_set_new(o, "tls_cert_sha256", json_string(h->cert_sha256));
    return o;
}

void thost_report(thost *h)
{
    tscan *s = h->s;
    if (h->reported || !s->on_host)
        return;
    h->reported = true;
    bool p22 = false, winrm = false;
    json_t *facts = json_object(), *evidence = json_array();
    json_object_set_new(facts, "ports", ports_json(h, &p22, &winrm));
    json_t *ssh = ssh_json(h), *wr = winrm_json(h);
    if (ssh)
        json_object_set_new(facts, "ssh", ssh);
    if (wr)
        json_object_set_new(facts, "winrm", wr);
    if (h->icmp_reply)
        json_object_set_new(facts, "icmp", json_string("reply"));
    dx_os_input in = {h->banner[0] ? h->banner : NULL, h->winrm ? h->identify.vendor : NULL,
                      h->winrm ? h->identify.product_version : NULL, p22, winrm};
    const char *os = dx_os_guess(&in, evidence);
    json_object_set_new(facts, "os_evidence", evidence);
    char *text = json_dumps(facts, JSON_COMPACT);
    json_decref(facts);
    if (!text)
        return;
    opsc_found_host found = {sizeof(found), h->addr, h->hostname[0] ? h->hostname : NULL, os, text};
    s->on_host(s->ud, &found);
    free(text);
}
