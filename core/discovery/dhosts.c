/* dhosts.c - the host inventory: merging what scans find, changes, vanishing, accepting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "discovery_internal.h"
#include "log.h"
#include "util.h"

#define CHANGES_MAX 32 /* change entries kept per host; the oldest accepted go first */

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

json_t *dhost_found(const opsc_found_host *h, const json_t *names)
{
    json_error_t je;
    json_t *facts = h->facts_json ? json_loads(h->facts_json, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!json_is_object(facts)) {
        json_decref(facts);
        facts = json_object();
    }
    return json_pack("{s:s, s:s?, s:s?, s:o, s:O?}", "address", h->address, "hostname", h->hostname,
                     "os_family", h->os_family, "facts", facts, "names", names);
}

/* ---- links ----------------------------------------------------------------------------------- */

static int add_link(store_txn *txn, const char *db, const char *parent, const char *child)
{
    char key[96];
    int n = snprintf(key, sizeof(key), "%s/%s", parent, child);
    return store_kv_put(txn, db, key, (size_t)n, child, strlen(child));
}

static int collect_child(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    (void)key, (void)klen;
    json_array_append_new(ud, json_stringn(val, vlen));
    return 0;
}

/* The children under "<parent>/" (new array). */
static int children(store_txn *txn, const char *db, const char *parent, json_t **out)
{
    char prefix[48];
    int n = snprintf(prefix, sizeof(prefix), "%s/", parent);
    *out = json_array();
    return store_kv_scan(txn, db, prefix, (size_t)n, collect_child, *out);
}

/* ---- merging -----------------------------------------------------------------------------------
 */

static void add_event(json_t *evs, const char *type, const json_t *rec, json_t *extra)
{
    json_t *data = json_pack("{s:O}", "host", rec);
    if (extra)
        json_object_update(data, extra);
    json_decref(extra);
    json_array_append_new(evs, json_pack("[s, s, o]", type, str(rec, "id"), data));
}

/* Names: the scanner's reverse name and the names the request used, newest first, unique. */
static json_t *merge_names(const json_t *old, const json_t *found)
{
    json_t *out = json_array();
    const char *rev = str(found, "hostname");
    if (rev)
        json_array_append_new(out, json_string(rev));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(found, "names"), i, v) json_array_append(out, v);
    json_array_foreach((json_t *)old, i, v) json_array_append(out, v);
    json_t *uniq = json_array();
    json_array_foreach(out, i, v)
    {
        bool dup = false;
        size_t j;
        json_t *u;
        json_array_foreach(uniq, j, u) dup = dup || json_equal(u, v);
        if (!dup && json_array_size(uniq) < DSC_HOSTNAMES_MAX)
            json_array_append(uniq, v);
    }
    json_decref(out);
    return uniq;
}

/* What this scan says about the host, over `rec`: the latest wins, what it
 * did not learn (no SSH this time) keeps the last value seen. */
static void apply_found(json_t *rec, const json_t *found, const char *scan_id, const char *now)
{
    const json_t *facts = json_object_get(found, "facts");
    json_object_set_new(rec, "hostnames", merge_names(json_object_get(rec, "hostnames"), found));
    json_t *ports = json_object_get(facts, "ports");
    json_object_set_new(rec, "ports", json_is_array(ports) ? json_incref(ports) : json_array());
    static const char *const kept[] = {"ssh", "winrm"};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(facts, kept[i]);
        if (json_is_object(v))
            json_object_set(rec, kept[i], v);
        else if (!json_object_get(rec, kept[i]))
            json_object_set_new(rec, kept[i], json_null());
    }
    json_t *icmp = json_object_get(facts, "icmp");
    json_object_set(rec, "icmp", json_is_string(icmp) ? icmp : json_null());
    const char *os = str(found, "os_family");
    if (os || !json_object_get(rec, "os_family"))
        json_object_set_new(rec, "os_family", os ? json_string(os) : json_null());
    json_t *ev = json_object_get(facts, "os_evidence");
    if (json_array_size(ev) || !json_object_get(rec, "os_evidence"))
        json_object_set_new(rec, "os_evidence", json_is_array(ev) ? json_incref(ev) : json_array());
    json_object_set_new(rec, "last_seen", json_string(now));
    json_object_set_new(rec, "last_scan_id", json_string(scan_id));
    json_int_t seen = json_integer_value(json_object_get(rec, "scans_seen"));
    json_object_set_new(rec, "scans_seen", json_integer(seen + 1));
}

static json_t *key_of(const json_t *ssh)
{
    return json_pack("{s:s?, s:s?}", "type", str(ssh, "host_key_type"), "fingerprint",
                     str(ssh, "host_key_fingerprint"));
}

/* Host key and OS changes between the record and what was found. */
static json_t *find_changes(const json_t *rec, const json_t *found, const char *scan_id,
                            const char *now)
{
    json_t *out = json_array();
    const json_t *old_ssh = json_object_get(rec, "ssh");
    const json_t *new_ssh = json_object_get(json_object_get(found, "facts"), "ssh");
    const char *a = str(old_ssh, "host_key_fingerprint"), *b = str(new_ssh, "host_key_fingerprint");
    if (a && b && strcmp(a, b) != 0)
        json_array_append_new(out,
                              json_pack("{s:s, s:o, s:o, s:s, s:s, s:n}", "field", "ssh.host_key",
                                        "before", key_of(old_ssh), "after", key_of(new_ssh),
                                        "scan_id", scan_id, "at", now, "accepted_at"));
    const char *os_a = str(rec, "os_family"), *os_b = str(found, "os_family");
    if (os_a && os_b && strcmp(os_a, os_b) != 0)
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s, s:s, s:n}", "field", "os_family",
                                             "before", os_a, "after", os_b, "scan_id", scan_id,
                                             "at", now, "accepted_at"));
    return out;
}

static void keep_changes(json_t *rec, json_t *fresh)
{
    json_t *all = json_object_get(rec, "changes");
    if (!json_is_array(all)) {
        all = json_array();
        json_object_set_new(rec, "changes", all);
    }
    json_array_extend(all, fresh);
    for (size_t i = 0; json_array_size(all) > CHANGES_MAX && i < json_array_size(all);) {
        if (json_is_null(json_object_get(json_array_get(all, i), "accepted_at")))
            i++;
        else
            json_array_remove(all, i);
    }
    while (json_array_size(all) > CHANGES_MAX)
        json_array_remove(all, 0);
}

static json_t *new_host(const json_t *found, const char *scan_id, const char *now)
{
    json_t *rec = json_pack("{s:O, s:[], s:o, s:b, s:b, s:[], s:s, s:i, s:{}}", "address",
                            json_object_get(found, "address"), "hostnames", "os_family",
                            json_null(), "changed", 0, "vanished", 0, "changes", "first_seen", now,
                            "scans_seen", 0, "profiles");
    if (rec)
        apply_found(rec, found, scan_id, now);
    return rec;
}

static int note_profile(store_txn *txn, json_t *rec, const char *pid, const char *scan_id)
{
    if (!pid || !*pid)
        return 0;
    json_t *profiles = json_object_get(rec, "profiles");
    if (!json_is_object(profiles)) {
        profiles = json_object();
        json_object_set_new(rec, "profiles", profiles);
    }
    json_object_set_new(profiles, pid,
                        json_pack("{s:s, s:i}", "last_scan_id", scan_id, "missed", 0));
    return add_link(txn, "discovery_profile_hosts", pid, str(rec, "id"));
}

static int update_host(json_t *rec, const json_t *found, const char *scan_id, const char *now,
                       json_t *evs)
{
    json_t *fresh = find_changes(rec, found, scan_id, now);
    bool reappeared = json_is_true(json_object_get(rec, "vanished"));
    apply_found(rec, found, scan_id, now);
    json_object_set_new(rec, "vanished", json_false());
    if (json_array_size(fresh)) {
        json_object_set_new(rec, "changed", json_true());
        keep_changes(rec, fresh);
    }
    for (size_t i = 0; i < json_array_size(fresh); i++)
        add_event(evs, "discovery.host_changed", rec,
                  json_pack("{s:O}", "change", json_array_get(fresh, i)));
    if (reappeared)
        add_event(evs, "discovery.host_found", rec, json_pack("{s:b}", "reappeared", 1));
    json_decref(fresh);
    return 0;
}

int dhost_merge(store_txn *txn, const char *scan_id, const char *profile_id, json_t *found,
                json_t **out, json_t *evs)
{
    *out = NULL;
    const char *addr = str(found, "address");
    char now[32], id[40];
    dsc_now(now);
    json_t *rec = NULL;
    int rc = store_index_get(txn, "discovery_hosts_by_address", addr, id);
    if (rc == 0)
        rc = store_get(txn, "discovery_hosts", id, &rec);
    bool created = rc == OPSC_ENOENT;
    if (created) {
        rec = new_host(found, scan_id, now);
        rc = rec ? uuid7_new(id) : OPSC_ENOMEM;
        if (rc == 0)
            json_object_set_new(rec, "id", json_string(id));
    } else if (rc == 0) {
        rc = update_host(rec, found, scan_id, now, evs);
    }
    if (rc == 0)
        rc = note_profile(txn, rec, profile_id, scan_id);
    if (rc == 0 && created)
        rc = store_create(txn, "discovery_hosts", rec);
    else if (rc == 0)
        rc = store_update(txn, "discovery_hosts", rec, 0);
    if (rc == 0 && created)
        rc = store_index_put(txn, "discovery_hosts_by_address", addr, id);
    if (rc == 0)
        rc = add_link(txn, "discovery_scan_hosts", scan_id, id);
    if (rc == 0 && created)
        add_event(evs, "discovery.host_found", rec, json_pack("{s:b}", "reappeared", 0));
    if (rc == 0)
        *out = json_incref(rec);
    json_decref(rec);
    return rc;
}

/* ---- vanishing ------------------------------------------------------------------------------- */

static int sweep_one(store_txn *txn, const char *hid, const char *pid, const char *scan_id,
                     int64_t vanish_after, json_t *evs)
{
    json_t *rec = NULL;
    int rc = store_get(txn, "discovery_hosts", hid, &rec);
    if (rc == OPSC_ENOENT) { /* the host was deleted: forget the link */
        char key[96];
        int n = snprintf(key, sizeof(key), "%s/%s", pid, hid);
        return store_kv_del(txn, "discovery_profile_hosts", key, (size_t)n);
    }
    json_t *p = json_object_get(json_object_get(rec, "profiles"), pid);
    if (rc < 0 || !p ||
        strcmp(str(p, "last_scan_id") ? str(p, "last_scan_id") : "", scan_id) == 0) {
        json_decref(rec);
        return rc;
    }
    json_int_t missed = json_integer_value(json_object_get(p, "missed")) + 1;
    json_object_set_new(p, "missed", json_integer(missed));
    if (missed >= vanish_after && !json_is_true(json_object_get(rec, "vanished"))) {
        char now[32];
        dsc_now(now);
        json_object_set_new(rec, "vanished", json_true());
        json_object_set_new(rec, "vanished_at", json_string(now));
        add_event(evs, "discovery.host_vanished", rec,
                  json_pack("{s:s, s:I}", "profile_id", pid, "missed_scans", missed));
    }
    rc = store_update(txn, "discovery_hosts", rec, 0);
    json_decref(rec);
    return rc;
}

int dhost_profile_sweep(store_txn *txn, const char *profile_id, const char *scan_id,
                        int64_t vanish_after, json_t *evs)
{
    json_t *ids = NULL;
    int rc = children(txn, "discovery_profile_hosts", profile_id, &ids);
    for (size_t i = 0; rc == 0 && i < json_array_size(ids); i++)
        rc = sweep_one(txn, json_string_value(json_array_get(ids, i)), profile_id, scan_id,
                       vanish_after, evs);
    json_decref(ids);
    return rc;
}

int dhost_profile_forget(store_txn *txn, const char *profile_id)
{
    json_t *ids = NULL;
    int rc = children(txn, "discovery_profile_hosts", profile_id, &ids);
    for (size_t i = 0; rc == 0 && i < json_array_size(ids); i++) {
        const char *hid = json_string_value(json_array_get(ids, i));
        char key[96];
        int n = snprintf(key, sizeof(key), "%s/%s", profile_id, hid);
        rc = store_kv_del(txn, "discovery_profile_hosts", key, (size_t)n);
        json_t *rec = NULL;
        if (rc == 0 && store_get(txn, "discovery_hosts", hid, &rec) == 0) {
            json_object_del(json_object_get(rec, "profiles"), profile_id);
            rc = store_update(txn, "discovery_hosts", rec, 0);
        }
        json_decref(rec);
    }
    json_decref(ids);
    return rc;
}

/* ---- publishing -------------------------------------------------------------------------------
 */

typedef struct views_ud {
    json_t *evs;
} views_ud;

/* Every host in the events becomes its public view, with the state a reader would see. */
static int views_txn(store_txn *txn, void *ud)
{
    views_ud *v = ud;
    dmatch *m = NULL;
    int rc = dmatch_load(txn, &m);
    size_t i;
    json_t *ev;
    json_array_foreach(v->evs, i, ev)
    {
        json_t *data = json_array_get(ev, 2);
        json_t *host = json_object_get(data, "host");
        if (rc == 0 && host)
            json_object_set_new(data, "host", dhost_view(host, m));
    }
    dmatch_free(m);
    return rc;
}

void dhost_publish(discovery *d, json_t *evs)
{
    if (json_array_size(evs)) {
        views_ud v = {evs};
        store_read(d->core->store, views_txn, &v);
    }
    size_t i;
    json_t *ev;
    json_array_foreach(evs, i, ev)
    {
        const char *type = json_string_value(json_array_get(ev, 0));
        if (strcmp(type, "discovery.host_found") == 0 &&
            !json_is_true(json_object_get(json_array_get(ev, 2), "reappeared")))
            d->hosts_new++;
        dsc_publish(d, type, json_string_value(json_array_get(ev, 1)), json_array_get(ev, 2));
    }
    json_decref(evs);
}

/* ---- reading, accepting, forgetting --------------------------------------------------------- */

typedef struct host_op {
    const char *id;
    int64_t expect;
    json_t *view;
    int op; /* 0 get, 1 accept, 2 delete */
} host_op;

static int accept_changes(store_txn *txn, json_t *rec, int64_t expect)
{
    char now[32];
    dsc_now(now);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(rec, "changes"), i, c)
    {
        if (json_is_null(json_object_get(c, "accepted_at")))
            json_object_set_new(c, "accepted_at", json_string(now));
    }
    json_object_set_new(rec, "changed", json_false());
    return store_update(txn, "discovery_hosts", rec, expect);
}

static int forget_host(store_txn *txn, json_t *rec, int64_t expect)
{
    int rc = store_delete(txn, "discovery_hosts", str(rec, "id"), expect);
    if (rc == 0)
        rc = store_index_del(txn, "discovery_hosts_by_address", str(rec, "address"));
    return rc == OPSC_ENOENT ? 0 : rc;
}

static int host_txn(store_txn *txn, void *ud)
{
    host_op *h = ud;
    json_t *rec = NULL;
    dmatch *m = NULL;
    int rc = store_get(txn, "discovery_hosts", h->id, &rec);
    if (rc == 0 && h->op == 1)
        rc = accept_changes(txn, rec, h->expect);
    else if (rc == 0 && h->op == 2)
        rc = forget_host(txn, rec, h->expect);
    if (rc == 0 && h->op != 2)
        rc = dmatch_load(txn, &m);
    if (rc == 0 && h->op != 2) {
        json_decref(h->view);
        h->view = dhost_view(rec, m);
    }
    dmatch_free(m);
    json_decref(rec);
    return rc;
}

static int host_op_run(discovery *d, host_op *h)
{
    int rc = h->op == 0 ? store_read(d->core->store, host_txn, h)
                        : store_write(d->core->store, host_txn, h);
    if (rc < 0) {
        json_decref(h->view);
        h->view = NULL;
    }
    return rc;
}

int discovery_host_get(discovery *d, const char *id, json_t **host)
{
    host_op h = {id, 0, NULL, 0};
    int rc = host_op_run(d, &h);
    *host = h.view;
    return rc;
}

int discovery_host_accept(discovery *d, const char *id, int64_t expect, json_t **host)
{
    host_op h = {id, expect, NULL, 1};
    int rc = host_op_run(d, &h);
    *host = h.view;
    if (rc == 0)
        log_info("discovery", "host %s: changes accepted", id);
    return rc;
}

int discovery_host_delete(discovery *d, const char *id, int64_t expect)
{
    host_op h = {id, expect, NULL, 2};
    return host_op_run(d, &h);
}

typedef struct scan_hosts_ud {
    const char *scan_id;
    json_t *hosts;
} scan_hosts_ud;

static int scan_hosts_txn(store_txn *txn, void *ud)
{
    scan_hosts_ud *s = ud;
    json_t *ids = NULL;
    dmatch *m = NULL;
    json_array_clear(s->hosts);
    int rc = children(txn, "discovery_scan_hosts", s->scan_id, &ids);
    if (rc == 0)
        rc = dmatch_load(txn, &m);
    for (size_t i = 0; rc == 0 && i < json_array_size(ids); i++) {
        json_t *rec = NULL;
        if (store_get(txn, "discovery_hosts", json_string_value(json_array_get(ids, i)), &rec) == 0)
            json_array_append_new(s->hosts, dhost_view(rec, m));
        json_decref(rec);
    }
    dmatch_free(m);
    json_decref(ids);
    return rc;
}

int discovery_scan_hosts(discovery *d, const char *scan_id, json_t **hosts)
{
    scan_hosts_ud s = {scan_id, json_array()};
    int rc = store_read(d->core->store, scan_hosts_txn, &s);
    *hosts = s.hosts;
    return rc;
}
