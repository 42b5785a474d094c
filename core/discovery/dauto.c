/* dauto.c - auto-onboard rules: which new hosts of a profile's scan each rule takes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "discovery_internal.h"

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static bool ports_open(const json_t *host, const json_t *want)
{
    size_t i;
    json_t *w;
    json_array_foreach((json_t *)want, i, w)
    {
        bool open = false;
        size_t j;
        json_t *p;
        json_array_foreach(json_object_get(host, "ports"), j, p)
        {
            open = open || (json_equal(json_object_get(p, "port"), w) &&
                            strcmp(str(p, "state") ? str(p, "state") : "", "open") == 0);
        }
        if (!open)
            return false;
    }
    return true;
}

/* Answering means the scan spoke the protocol: an SSH key read, a WinRM Identify answered. */
static bool rule_takes(const json_t *rule, const dspec_set *ranges, const json_t *host)
{
    const char *tr = str(rule, "transport") ? str(rule, "transport") : "ssh";
    if (strcmp(tr, "ssh") == 0 ? !str(json_object_get(host, "ssh"), "host_key_fingerprint")
                               : !json_is_object(json_object_get(host, "winrm")))
        return false;
    if (ranges->n && !dspec_set_has(ranges, str(host, "address")))
        return false;
    const char *os = str(rule, "os");
    if (os && (!str(host, "os_family") || strcmp(os, str(host, "os_family")) != 0))
        return false;
    return ports_open(host, json_object_get(rule, "ports"));
}

typedef struct select_ud {
    const json_t *rules;
    dspec_set *ranges;
    const char *scan_id;
    json_t *claims; /* one array of host ids per rule */
} select_ud;

static int select_txn(store_txn *txn, void *ud)
{
    select_ud *s = ud;
    json_t *ids = NULL;
    size_t nrules = json_array_size(s->rules);
    json_array_clear(s->claims);
    for (size_t r = 0; r < nrules; r++)
        json_array_append_new(s->claims, json_array());
    dfilter f = {.scan_id = s->scan_id, .state = "new"};
    int rc = dhosts_select_txn(txn, &f, SIZE_MAX, &ids);
    for (size_t i = 0; rc == 0 && i < json_array_size(ids); i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        json_t *host = NULL;
        if (store_get(txn, "discovery_hosts", id, &host) < 0)
            continue;
        for (size_t r = 0; r < nrules; r++)
            if (rule_takes(json_array_get(s->rules, r), &s->ranges[r], host)) {
                json_array_append_new(json_array_get(s->claims, r), json_string(id));
                break; /* the first rule that takes a host has it */
            }
        json_decref(host);
    }
    json_decref(ids);
    return rc;
}

int dprof_auto_select(discovery *d, const json_t *profile, const char *scan_id, json_t **claims)
{
    const json_t *rules = json_object_get(profile, "auto_onboard");
    size_t n = json_array_size(rules);
    dspec_set *ranges = calloc(n ? n : 1, sizeof(*ranges));
    *claims = json_array();
    if (!ranges || !*claims) {
        free(ranges);
        return OPSC_ENOMEM;
    }
    int rc = 0;
    for (size_t r = 0; rc == 0 && r < n; r++) {
        char why[200];
        rc = dspec_set_parse_json(json_object_get(json_array_get(rules, r), "ranges"), "ranges",
                                  &ranges[r], why, sizeof(why));
    }
    select_ud s = {rules, ranges, scan_id, *claims};
    if (rc == 0)
        rc = store_read(d->core->store, select_txn, &s);
    for (size_t r = 0; r < n; r++)
        dspec_set_free(&ranges[r]);
    free(ranges);
    return rc;
}
