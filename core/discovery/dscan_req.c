/* dscan_req.c - checking a scan request: schema, ranges, exclusions, ports, limits; names
 * resolved on the loop. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "discovery_internal.h"

static const uint16_t default_ports[] = {22, 5985, 5986};

void dscan_req_clear(dscan_req *r)
{
    json_decref(r->body);
    json_decref(r->names);
    json_decref(r->resolved);
    dspec_set_free(&r->set);
    dspec_set_free(&r->exclude);
    free(r->ports);
    memset(r, 0, sizeof(*r));
}

static int parse_ranges(dscan_req *r, dsc_err *e)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r->body, "ranges"), i, v)
    {
        dspec_item it;
        char why[256];
        if (dspec_item_parse(json_string_value(v), &it, why, sizeof(why)) < 0)
            return dsc_fail(e, 400, "invalid_scan", "ranges", "ranges[%zu]: %s", i, why);
        if (it.kind != DSPEC_NAME) {
            if (dspec_set_add(&r->set, &it.iv) < 0)
                return OPSC_ENOMEM;
            continue;
        }
        if (json_array_size(r->names) >= DSC_NAMES_MAX)
            return dsc_fail(e, 400, "invalid_scan", "ranges", "ranges: more than %d host names",
                            DSC_NAMES_MAX);
        json_array_append_new(r->names,
                              json_pack("{s:s, s:I}", "name", it.name, "index", (json_int_t)i));
    }
    return 0;
}

static int parse_ports(dscan_req *r, dsc_err *e)
{
    json_t *ports = json_object_get(r->body, "ports");
    if (!ports) {
        r->nports = sizeof(default_ports) / sizeof(default_ports[0]);
        r->ports = malloc(sizeof(default_ports));
        if (!r->ports)
            return OPSC_ENOMEM;
        memcpy(r->ports, default_ports, sizeof(default_ports));
    } else {
        char why[256];
        int rc = dspec_ports_parse(ports, DSC_PORTS_MAX, &r->ports, &r->nports, why, sizeof(why));
        if (rc < 0)
            return rc == OPSC_ENOMEM ? rc : dsc_fail(e, 400, "invalid_scan", "ports", "%s", why);
    }
    json_t *list = json_array();
    for (size_t i = 0; i < r->nports; i++)
        json_array_append_new(list, json_integer(r->ports[i]));
    return json_object_set_new(r->body, "ports", list) == 0 ? 0 : OPSC_ENOMEM;
}

/* Members the schema leaves optional get their defaults here, so the stored
 * scan says what ran. */
static void defaults(json_t *b)
{
    static const struct {
        const char *key;
        json_int_t value;
    } ints[] = {{"rate", DSC_DEFAULT_RATE},
                {"concurrency", DSC_DEFAULT_CONCURRENCY},
                {"timeout_ms", DSC_DEFAULT_TIMEOUT_MS}};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        if (!json_object_get(b, ints[i].key))
            json_object_set_new(b, ints[i].key, json_integer(ints[i].value));
    if (!json_object_get(b, "scanner"))
        json_object_set_new(b, "scanner", json_string("tcp"));
    if (!json_object_get(b, "exclude"))
        json_object_set_new(b, "exclude", json_array());
    if (!json_object_get(b, "icmp"))
        json_object_set_new(b, "icmp", json_false());
    if (!json_object_get(b, "options"))
        json_object_set_new(b, "options", json_object());
}

int dscan_req_parse(const jschema *schema, const json_t *body, dscan_req *out, dsc_err *e)
{
    memset(out, 0, sizeof(*out));
    out->body = json_deep_copy(body);
    out->names = json_array();
    out->resolved = json_object();
    if (!out->body || !out->names || !out->resolved)
        return OPSC_ENOMEM;
    int rc = dsc_validate(schema, out->body, "invalid_scan", e);
    if (rc == 0) {
        defaults(out->body);
        rc = parse_ranges(out, e);
    }
    if (rc == 0) {
        char why[256];
        rc = dspec_set_parse_json(json_object_get(out->body, "exclude"), "exclude", &out->exclude,
                                  why, sizeof(why));
        if (rc == OPSC_ESCHEMA)
            rc = dsc_fail(e, 400, "invalid_scan", "exclude", "%s", why);
    }
    if (rc == 0)
        rc = parse_ports(out, e);
    return rc;
}

int dscan_req_add_name(dscan_req *r, const char *name, json_t *addresses)
{
    size_t i;
    json_t *a;
    json_array_foreach(addresses, i, a)
    {
        dspec_item it;
        char why[64];
        if (dspec_item_parse(json_string_value(a), &it, why, sizeof(why)) == 0 &&
            it.kind == DSPEC_ADDR && dspec_set_add(&r->set, &it.iv) < 0)
            return OPSC_ENOMEM;
    }
    return json_object_set(r->resolved, name, addresses) == 0 ? 0 : OPSC_ENOMEM;
}

static int check_limits(dscan_req *r, const dscan_limits *lim, uint64_t total, dsc_err *e)
{
    if (total == 0 && !lim->names_pending)
        return dsc_fail(e, 400, "invalid_scan", "exclude",
                        "nothing left to scan: the exclusions cover every address of ranges");
    if (total > lim->max_addresses) {
        char n[32];
        if (total == UINT64_MAX)
            snprintf(n, sizeof(n), "more than 2^64");
        else
            snprintf(n, sizeof(n), "%llu", (unsigned long long)total);
        return dsc_fail(e, 400, "scan_too_large", "ranges",
                        "the scan covers %s addresses, more than [discovery] max_addresses (%llu): "
                        "split it or narrow the ranges",
                        n, (unsigned long long)lim->max_addresses);
    }
    dspec_iv out;
    if (lim->allowed && lim->allowed->n && !dspec_set_within(&r->set, lim->allowed, &out)) {
        char text[100];
        dspec_iv_format(&out, text, sizeof(text));
        return dsc_fail(e, 400, "range_not_allowed", "ranges",
                        "%s is outside [discovery] allowed_ranges", text);
    }
    return 0;
}

int dscan_req_finish(dscan_req *r, const dscan_limits *lim, json_t **spec, dsc_err *e)
{
    *spec = NULL;
    dspec_set_normalize(&r->set);
    int rc = dspec_set_subtract(&r->set, &r->exclude);
    uint64_t total = dspec_set_count(&r->set);
    if (rc == 0)
        rc = check_limits(r, lim, total, e);
    if (rc < 0)
        return rc;
    json_t *b = r->body;
    *spec =
        json_pack("{s:o, s:I, s:O, s:O, s:O, s:O, s:O, s:O}", "targets", dspec_set_cidrs(&r->set),
                  "total", (json_int_t)total, "ports", json_object_get(b, "ports"), "rate",
                  json_object_get(b, "rate"), "concurrency", json_object_get(b, "concurrency"),
                  "timeout_ms", json_object_get(b, "timeout_ms"), "icmp",
                  json_object_get(b, "icmp"), "options", json_object_get(b, "options"));
    return *spec ? 0 : OPSC_ENOMEM;
}

/* ---- names ---------------------------------------------------------------------------------- */

typedef struct lookup lookup;

typedef struct resolve {
    uv_loop_t *loop;
    dscan_req *r;
    dscan_resolved_cb done;
    void *ud;
    uv_timer_t timer;
    lookup **lks; /* running lookups; NULL slots are done */
    size_t n, pending;
    int64_t timeout_ms;
    bool finished;
    dsc_err e;
} resolve;

/* One lookup; outlives the resolve when it times out (getaddrinfo cannot be stopped). */
struct lookup {
    uv_getaddrinfo_t req;
    resolve *rs; /* NULL once orphaned */
    size_t slot;
    char name[DSPEC_NAME_MAX + 1];
    size_t index;
};

static void on_timer_closed(uv_handle_t *h)
{
    resolve *rs = h->data;
    dsc_err_clear(&rs->e);
    free(rs->lks);
    free(rs);
}

/* Lookups still running are orphaned: their callbacks only free themselves. */
static void finish(resolve *rs)
{
    if (rs->finished)
        return;
    rs->finished = true;
    uv_timer_stop(&rs->timer);
    for (size_t i = 0; i < rs->n; i++)
        if (rs->lks[i]) {
            rs->lks[i]->rs = NULL;
            uv_cancel((uv_req_t *)&rs->lks[i]->req);
        }
    rs->done(rs->ud, rs->r, rs->e.status ? &rs->e : NULL);
    uv_close((uv_handle_t *)&rs->timer, on_timer_closed);
}

static json_t *addresses_of(const struct addrinfo *ai)
{
    json_t *out = json_array();
    for (; ai; ai = ai->ai_next) {
        char text[INET6_ADDRSTRLEN];
        if (uv_ip_name(ai->ai_addr, text, sizeof(text)) != 0)
            continue;
        bool dup = false;
        size_t i;
        json_t *v;
        json_array_foreach(out, i, v) dup = dup || strcmp(json_string_value(v), text) == 0;
        if (!dup)
            json_array_append_new(out, json_string(text));
    }
    return out;
}

static void on_lookup(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    lookup *lk = req->data;
    resolve *rs = lk->rs;
    if (rs && !rs->finished) {
        rs->lks[lk->slot] = NULL;
        json_t *addrs = status == 0 ? addresses_of(res) : NULL;
        if (status == 0 && json_array_size(addrs) > 0) {
            if (dscan_req_add_name(rs->r, lk->name, addrs) < 0 && !rs->e.status)
                dsc_fail(&rs->e, 500, "internal", NULL, "out of memory");
        } else if (!rs->e.status) {
            dsc_fail(&rs->e, 400, "invalid_scan", "ranges", "ranges[%zu]: cannot resolve '%s': %s",
                     lk->index, lk->name, status ? uv_strerror(status) : "no addresses");
        }
        json_decref(addrs);
        if (--rs->pending == 0)
            finish(rs);
    }
    uv_freeaddrinfo(res);
    free(lk);
}

static void on_timeout(uv_timer_t *t)
{
    resolve *rs = t->data;
    if (!rs->e.status && rs->pending)
        dsc_fail(&rs->e, 400, "invalid_scan", "ranges",
                 "ranges: host names did not resolve within %lld ms", (long long)rs->timeout_ms);
    finish(rs);
}

int dscan_resolve(uv_loop_t *loop, dscan_req *r, int64_t timeout_ms, dscan_resolved_cb done,
                  void *ud)
{
    size_t n = json_array_size(r->names);
    resolve *rs = calloc(1, sizeof(*rs));
    lookup **lks = calloc(n ? n : 1, sizeof(*lks));
    if (!rs || !lks) {
        free(rs);
        free(lks);
        return OPSC_ENOMEM;
    }
    *rs = (resolve){loop, r, done, ud, .lks = lks, .n = n, .pending = n, .timeout_ms = timeout_ms};
    uv_timer_init(loop, &rs->timer);
    rs->timer.data = rs;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    for (size_t i = 0; i < n && !rs->e.status; i++) {
        json_t *item = json_array_get(r->names, i);
        lookup *lk = calloc(1, sizeof(*lk));
        if (!lk) {
            dsc_fail(&rs->e, 500, "internal", NULL, "out of memory");
            break;
        }
        *lk = (lookup){.rs = rs, .slot = i};
        lk->req.data = lk;
        lk->index = (size_t)json_integer_value(json_object_get(item, "index"));
        snprintf(lk->name, sizeof(lk->name), "%s",
                 json_string_value(json_object_get(item, "name")));
        if (uv_getaddrinfo(loop, &lk->req, on_lookup, lk->name, NULL, &hints) != 0) {
            dsc_fail(&rs->e, 400, "invalid_scan", "ranges", "ranges[%zu]: cannot resolve '%s'",
                     lk->index, lk->name);
            free(lk);
            break;
        }
        lks[i] = lk;
    }
    /* Nothing to wait for, or a failure: answer on the next turn, never from inside this call. */
    bool now = rs->e.status || n == 0;
    uv_timer_start(&rs->timer, on_timeout, now ? 0 : (uint64_t)timeout_ms, 0);
    return 0;
}
