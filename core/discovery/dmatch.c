/* dmatch.c - which hosts are targets already (address, name, host key, certificate); host views,
 * filters and listing. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "discovery_internal.h"

struct dmatch {
    json_t *by_key; /* "a:<address or name>", "k:<SHA256:...>", "c:<cert hex>" -> target id */
};

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* IP literals in canonical text ("0:0::1" is "::1"), names lowercased. */
static void canonical(const char *in, char *out, size_t n)
{
    unsigned char b[16];
    if (inet_pton(AF_INET, in, b) == 1) {
        inet_ntop(AF_INET, b, out, (socklen_t)n);
        return;
    }
    if (inet_pton(AF_INET6, in, b) == 1) {
        inet_ntop(AF_INET6, b, out, (socklen_t)n);
        return;
    }
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    if (i && out[i - 1] == '.')
        i--;
    out[i] = '\0';
}

/* Addresses and names canonical; fingerprints are case-sensitive base64: kept as they are. */
static void make_key(char kind, const char *value, char *key, size_t n)
{
    key[0] = kind;
    key[1] = ':';
    if (kind == 'k')
        snprintf(key + 2, n - 2, "%s", value);
    else
        canonical(value, key + 2, n - 2);
}

static void put(dmatch *m, char kind, const char *value, const char *id)
{
    char key[300];
    make_key(kind, value, key, sizeof(key));
    if (!json_object_get(m->by_key, key)) /* the oldest target wins */
        json_object_set_new(m->by_key, key, json_string(id));
}

static int load_one(const char *id, json_t *rec, void *ud)
{
    dmatch *m = ud;
    if (str(rec, "address"))
        put(m, 'a', str(rec, "address"), id);
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(rec, "host_keys"), i, k)
    {
        if (str(k, "fingerprint"))
            put(m, 'k', str(k, "fingerprint"), id);
    }
    const char *cert = str(json_object_get(rec, "transport_options"), "cert_fingerprint");
    if (cert)
        put(m, 'c', cert, id);
    return 0;
}

int dmatch_load(store_txn *txn, dmatch **out)
{
    dmatch *m = calloc(1, sizeof(*m));
    if (!m || !(m->by_key = json_object())) {
        free(m);
        return OPSC_ENOMEM;
    }
    int rc = store_scan(txn, "targets", NULL, false, load_one, m);
    if (rc < 0) {
        dmatch_free(m);
        m = NULL;
    }
    *out = m;
    return rc;
}

void dmatch_free(dmatch *m)
{
    if (!m)
        return;
    json_decref(m->by_key);
    free(m);
}

static const char *lookup(const dmatch *m, char kind, const char *value)
{
    if (!value)
        return NULL;
    char key[300];
    make_key(kind, value, key, sizeof(key));
    return str(m->by_key, key);
}

const char *dmatch_target(const dmatch *m, const json_t *host)
{
    if (!m)
        return NULL;
    const char *id = lookup(m, 'a', str(host, "address"));
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(host, "hostnames"), i, n)
    {
        if (!id)
            id = lookup(m, 'a', json_string_value(n));
    }
    if (!id)
        id = lookup(m, 'k', str(json_object_get(host, "ssh"), "host_key_fingerprint"));
    if (!id)
        id = lookup(m, 'c', str(json_object_get(host, "winrm"), "tls_cert_sha256"));
    return id;
}

const char *dhost_state(const json_t *rec, const dmatch *m)
{
    if (json_is_true(json_object_get(rec, "changed")))
        return "changed";
    if (json_is_true(json_object_get(rec, "vanished")))
        return "vanished";
    return dmatch_target(m, rec) ? "known" : "new";
}

json_t *dhost_view(const json_t *rec, const dmatch *m)
{
    json_t *v = json_deep_copy(rec);
    if (!v)
        return NULL;
    const char *tid = dmatch_target(m, rec);
    json_object_set_new(v, "state", json_string(dhost_state(rec, m)));
    json_object_set_new(v, "target_id", tid ? json_string(tid) : json_null());
    json_object_del(v, "changed");
    json_object_del(v, "vanished");
    json_object_del(v, "profiles");
    return v;
}

/* ---- filters ----------------------------------------------------------------------------------
 */

int dfilter_parse(discovery *d, json_t *obj, dfilter *f, dsc_err *e)
{
    memset(f, 0, sizeof(*f));
    int rc = dsc_validate(d->filter_schema, obj, "invalid_filter", e);
    if (rc < 0)
        return rc;
    f->state = str(obj, "state");
    f->os = str(obj, "os");
    f->scan_id = str(obj, "scan_id");
    f->profile_id = str(obj, "profile_id");
    f->port = (int)json_integer_value(json_object_get(obj, "port"));
    const char *range = str(obj, "range");
    if (range) {
        dspec_item it;
        char why[200];
        rc = dspec_item_parse(range, &it, why, sizeof(why));
        if (rc == 0 && it.kind == DSPEC_NAME)
            rc = dsc_fail(e, 400, "invalid_filter", "range",
                          "range must be a CIDR block, range or address");
        else if (rc < 0)
            rc = dsc_fail(e, 400, "invalid_filter", "range", "range: %s", why);
        f->has_range = rc == 0;
        f->range = it.iv;
    }
    return rc;
}

static bool port_open(const json_t *rec, int port)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(rec, "ports"), i, p)
    {
        if (json_integer_value(json_object_get(p, "port")) == port &&
            strcmp(str(p, "state") ? str(p, "state") : "", "open") == 0)
            return true;
    }
    return false;
}

bool dfilter_match(const dfilter *f, const json_t *rec, const dmatch *m)
{
    if (f->state && strcmp(f->state, dhost_state(rec, m)) != 0)
        return false;
    if (f->port && !port_open(rec, f->port))
        return false;
    if (f->os) {
        const char *os = str(rec, "os_family");
        if (strcmp(f->os, "unknown") == 0 ? os != NULL : !os || strcmp(os, f->os) != 0)
            return false;
    }
    if (f->has_range) {
        dspec_set one = {(dspec_iv *)&f->range, 1, 1};
        if (!dspec_set_has(&one, str(rec, "address")))
            return false;
    }
    return true;
}

/* ---- listing ------------------------------------------------------------------------------------
 */

typedef struct list_ud {
    const dfilter *f;
    dmatch *m;
    const char *cursor;
    size_t limit;
    json_t *items; /* views; or ids when `ids` */
    bool ids, more;
    char last[40];
} list_ud;

static int take(list_ud *l, const char *id, const json_t *rec)
{
    if (!dfilter_match(l->f, rec, l->m))
        return 0;
    if (json_array_size(l->items) == l->limit) {
        l->more = true;
        return 1;
    }
    json_array_append_new(l->items, l->ids ? json_string(id) : dhost_view(rec, l->m));
    snprintf(l->last, sizeof(l->last), "%s", id);
    return 0;
}

static int list_rec(const char *id, json_t *rec, void *ud)
{
    return take(ud, id, rec);
}

typedef struct link_ud {
    list_ud *l;
    store_txn *txn;
} link_ud;

/* "<scan or profile>/<host id>": host ids sort like the hosts themselves. */
static int list_link(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    (void)key, (void)klen;
    link_ud *k = ud;
    char id[40];
    snprintf(id, sizeof(id), "%.*s", (int)(vlen < 39 ? vlen : 39), (const char *)val);
    if (k->l->cursor && strcmp(id, k->l->cursor) <= 0)
        return 0;
    json_t *rec = NULL;
    if (store_get(k->txn, "discovery_hosts", id, &rec) < 0)
        return 0;
    int rc = take(k->l, id, rec);
    json_decref(rec);
    return rc;
}

static int list_txn(store_txn *txn, void *ud)
{
    list_ud *l = ud;
    json_array_clear(l->items);
    l->more = false;
    dmatch_free(l->m);
    int rc = dmatch_load(txn, &l->m);
    if (rc < 0)
        return rc;
    const char *parent = l->f->scan_id ? l->f->scan_id : l->f->profile_id;
    if (!parent)
        return store_scan(txn, "discovery_hosts", l->cursor, false, list_rec, l);
    char prefix[48];
    int n = snprintf(prefix, sizeof(prefix), "%s/", parent);
    link_ud k = {l, txn};
    return store_kv_scan(txn, l->f->scan_id ? "discovery_scan_hosts" : "discovery_profile_hosts",
                         prefix, (size_t)n, list_link, &k);
}

int discovery_hosts_list(discovery *d, const json_t *filter, size_t limit, const char *cursor,
                         json_t **items, char next[40], dsc_err *e)
{
    dfilter f;
    json_t *obj = filter ? json_deep_copy(filter) : json_object();
    int rc = obj ? dfilter_parse(d, obj, &f, e) : OPSC_ENOMEM;
    list_ud l = {&f, NULL, cursor, limit, json_array(), false, false, ""};
    if (rc == 0)
        rc = store_read(d->core->store, list_txn, &l);
    dmatch_free(l.m);
    json_decref(obj);
    *items = l.items;
    snprintf(next, 40, "%s", rc == 0 && l.more ? l.last : "");
    return rc;
}

int dhosts_select_txn(store_txn *txn, const dfilter *f, size_t max, json_t **ids)
{
    list_ud l = {f, NULL, NULL, max, json_array(), true, false, ""};
    int rc = list_txn(txn, &l);
    dmatch_free(l.m);
    *ids = l.items;
    return rc;
}

int dhosts_select(discovery *d, const dfilter *f, size_t max, json_t **ids)
{
    list_ud l = {f, NULL, NULL, max, json_array(), true, false, ""};
    int rc = store_read(d->core->store, list_txn, &l);
    dmatch_free(l.m);
    *ids = l.items;
    return rc;
}
