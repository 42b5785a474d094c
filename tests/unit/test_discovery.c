/* test_discovery.c - the discovery module: range and port specs, scan requests against the
 * limits, and the inventory on a real store (merging, changes, vanishing, target matching,
 * filters). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "discovery_internal.h"
#include "discovery_schemas.h"
#include "dspec.h"
#include "store.h"

/* ---- range items and sets
 * ------------------------------------------------------------------------ */

static void item_ok(const char *text, enum dspec_kind kind, const char *formatted)
{
    dspec_item it;
    char err[200] = "", buf[100];
    if (dspec_item_parse(text, &it, err, sizeof(err)) < 0)
        fail_msg("'%s' refused: %s", text, err);
    assert_int_equal(it.kind, kind);
    if (kind == DSPEC_NAME) {
        assert_string_equal(it.name, formatted);
        return;
    }
    dspec_iv_format(&it.iv, buf, sizeof(buf));
    assert_string_equal(buf, formatted);
}

static void item_bad(const char *text, const char *why)
{
    dspec_item it;
    char err[200] = "";
    assert_int_equal(dspec_item_parse(text, &it, err, sizeof(err)), OPSC_ESCHEMA);
    if (!strstr(err, why))
        fail_msg("'%s': \"%s\" does not say \"%s\"", text, err, why);
}

static void range_items_parse_and_say_what_is_wrong(void **state)
{
    (void)state;
    item_ok("10.1.2.0/24", DSPEC_CIDR, "10.1.2.0-10.1.2.255");
    item_ok("10.1.2.77/24", DSPEC_CIDR, "10.1.2.0-10.1.2.255"); /* host bits cleared */
    item_ok("10.1.2.3/32", DSPEC_CIDR, "10.1.2.3");
    item_ok("0.0.0.0/0", DSPEC_CIDR, "0.0.0.0-255.255.255.255");
    item_ok("10.1.2.10-10.1.2.50", DSPEC_RANGE, "10.1.2.10-10.1.2.50");
    item_ok("10.1.2.10-50", DSPEC_RANGE, "10.1.2.10-10.1.2.50");
    item_ok("10.1.2.3", DSPEC_ADDR, "10.1.2.3");
    item_ok("[::1]", DSPEC_ADDR, "::1");
    item_ok("2001:db8::/126", DSPEC_CIDR, "2001:db8::-2001:db8::3");
    item_ok("2001:db8::1-2001:db8::ff", DSPEC_RANGE, "2001:db8::1-2001:db8::ff");
    item_ok("web-1.example.com.", DSPEC_NAME, "web-1.example.com");
    item_ok("localhost", DSPEC_NAME, "localhost");
    item_bad("10.1.2.0/33", "prefix length '33' out of range 0-32");
    item_bad("2001:db8::/129", "prefix length '129' out of range 0-128");
    item_bad("10.1.2/24", "'10.1.2' is not an IPv4 or IPv6 address");
    item_bad("10.1.2.0/", "prefix length '' out of range");
    item_bad("10.1.2.50-10.1.2.10", "reversed range: 10.1.2.50 comes after 10.1.2.10");
    item_bad("10.1.2.10-300", "last octet 300 out of range 0-255");
    item_bad("10.0.0.1-::1", "a range cannot go from IPv4 to IPv6");
    item_bad("300.1.2.3", "is not an address, range, CIDR block or host name");
    item_bad("a b", "unexpected character at position 2");
    item_bad("", "empty item");
    item_bad("-web.example", "is not an address");
    item_bad("web..example", "is not an address");
}

static dspec_set set_of(const char *list)
{
    dspec_set s;
    char err[200];
    if (dspec_set_parse_list(list, "test", &s, err, sizeof(err)) < 0)
        fail_msg("%s: %s", list, err);
    return s;
}

static void assert_cidrs(const dspec_set *s, const char *want)
{
    json_t *c = dspec_set_cidrs(s);
    char *text = json_dumps(c, JSON_COMPACT);
    if (strcmp(text, want) != 0)
        fail_msg("blocks %s, wanted %s", text, want);
    free(text);
    json_decref(c);
}

static void sets_merge_subtract_count_and_become_cidr_blocks(void **state)
{
    (void)state;
    dspec_set s = set_of("10.0.0.5, 10.0.0.0/30, 10.0.0.4, ::1, 10.0.0.6-10.0.0.9");
    dspec_set_normalize(&s);
    assert_int_equal(s.n, 2); /* 10.0.0.0-10.0.0.9 and ::1: adjacent and overlapping merged */
    assert_int_equal(dspec_set_count(&s), 11);
    assert_cidrs(&s, "[\"10.0.0.0/29\",\"10.0.0.8/31\",\"::1/128\"]");
    dspec_set cut = set_of("10.0.0.3-10.0.0.4, ::/0");
    assert_int_equal(dspec_set_subtract(&s, &cut), 0);
    assert_int_equal(dspec_set_count(&s), 8);
    assert_cidrs(&s, "[\"10.0.0.0/31\",\"10.0.0.2/32\",\"10.0.0.5/32\",\"10.0.0.6/31\","
                     "\"10.0.0.8/31\"]");
    assert_true(dspec_set_has(&s, "10.0.0.9"));
    assert_false(dspec_set_has(&s, "10.0.0.4"));
    dspec_set allowed = set_of("10.0.0.0/30"), outside;
    dspec_iv iv;
    assert_false(dspec_set_within(&s, &allowed, &iv));
    char text[100];
    dspec_iv_format(&iv, text, sizeof(text));
    assert_string_equal(text, "10.0.0.5-10.0.0.9"); /* the first stretch outside, whole */
    dspec_set big = set_of("::/0, 0.0.0.0/0");
    dspec_set_normalize(&big);
    assert_int_equal(dspec_set_count(&big), UINT64_MAX); /* saturates */
    assert_cidrs(&big, "[\"0.0.0.0/0\",\"::/0\"]");
    dspec_set_free(&s);
    dspec_set_free(&cut);
    dspec_set_free(&allowed);
    dspec_set_free(&big);
    (void)outside;
    char err[200];
    dspec_set bad;
    assert_int_equal(
        dspec_set_parse_list("10.0.0.0/8, web.example", "allowed_ranges", &bad, err, sizeof(err)),
        OPSC_ESCHEMA);
    assert_string_equal(err, "allowed_ranges item 2: host names are not accepted here");
}

static void ports_are_sorted_unique_and_bounded(void **state)
{
    (void)state;
    json_t *in = json_pack("[i, s, i, s]", 5986, "20-23", 22, "5985");
    uint16_t *ports;
    size_t n;
    char err[200];
    assert_int_equal(dspec_ports_parse(in, 100, &ports, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 6);
    uint16_t want[] = {20, 21, 22, 23, 5985, 5986};
    assert_memory_equal(ports, want, sizeof(want));
    free(ports);
    json_decref(in);
    const char *bad[][2] = {{"[0]", "ports[0]: out of range"},
                            {"[22, 65536]", "ports[1]: out of range"},
                            {"[\"9-1\"]", "reversed range"},
                            {"[\"x\"]", "ports[0]: must be a port number"},
                            {"[true]", "ports[0]: must be a port number"},
                            {"[\"1-65535\"]", "more than 100 ports"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        in = json_loads(bad[i][0], 0, NULL);
        assert_int_equal(dspec_ports_parse(in, 100, &ports, &n, err, sizeof(err)), OPSC_ESCHEMA);
        assert_non_null(strstr(err, bad[i][1]));
        assert_null(ports);
        json_decref(in);
    }
}

/* ---- scan requests ----------------------------------------------------------------------------
 */

static jschema *scan_schema(void)
{
    jschema *s = NULL;
    assert_int_equal(jschema_compile_text(&s, DSC_SCHEMA_scan_request, NULL, 0), 0);
    return s;
}

static int request(const char *body, const dscan_limits *lim, json_t **spec, dsc_err *e)
{
    jschema *schema = scan_schema();
    json_t *b = json_loads(body, 0, NULL);
    dscan_req r;
    memset(e, 0, sizeof(*e));
    int rc = dscan_req_parse(schema, b, &r, e);
    if (rc == 0)
        rc = dscan_req_finish(&r, lim, spec, e);
    dscan_req_clear(&r);
    json_decref(b);
    jschema_free(schema);
    return rc;
}

static void scan_requests_get_defaults_and_meet_the_limits(void **state)
{
    (void)state;
    dspec_set allowed = set_of("10.0.0.0/8");
    dscan_limits lim = {1024, &allowed, false};
    json_t *spec = NULL;
    dsc_err e;
    assert_int_equal(
        request("{\"ranges\": [\"10.1.0.0/22\"], \"exclude\": [\"10.1.3.0/24\"]}", &lim, &spec, &e),
        0);
    char *text = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"concurrency\":256,\"icmp\":false,\"options\":{},\"ports\":[22,"
                              "5985,5986],\"rate\":100,\"targets\":[\"10.1.0.0/23\","
                              "\"10.1.2.0/24\"],\"timeout_ms\":1000,\"total\":768}");
    free(text);
    json_decref(spec);
    struct {
        const char *body, *code, *msg;
    } bad[] = {
        {"{\"ranges\": [\"10.0.0.0/21\"]}", "scan_too_large",
         "the scan covers 2048 addresses, more than [discovery] max_addresses (1024)"},
        {"{\"ranges\": [\"192.168.1.0/30\"]}", "range_not_allowed",
         "192.168.1.0-192.168.1.3 is outside [discovery] allowed_ranges"},
        {"{\"ranges\": [\"10.0.0.0/30\"], \"exclude\": [\"10.0.0.0/24\"]}", "invalid_scan",
         "nothing left to scan"},
        {"{\"ranges\": [\"10.0.0.0/30\"], \"rate\": 0}", "invalid_scan",
         "rate: must be at least 1"},
        {"{\"ranges\": [\"10.0.0.0/30\"], \"bogus\": 1}", "invalid_scan", "bogus"},
        {"{\"ranges\": \"10.0.0.0/30\"}", "invalid_scan", "ranges"},
        {"{\"ranges\": [\"10.0.0.9-10.0.0.1\"]}", "invalid_scan", "ranges[0]: reversed range"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(request(bad[i].body, &lim, &spec, &e), OPSC_ESCHEMA);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.code, bad[i].code);
        if (!strstr(e.msg, bad[i].msg))
            fail_msg("%s: \"%s\" does not say \"%s\"", bad[i].body, e.msg, bad[i].msg);
        dsc_err_clear(&e);
    }
    dspec_set_free(&allowed);
}

/* ---- the inventory on a real store --------------------------------------------------------------
 */

typedef struct fx {
    char dir[64];
    store *st;
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/opsc-dsc-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char err[256];
    if (store_open(&f->st, f->dir, NULL, err, sizeof(err)) < 0)
        return -1;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    store_close(f->st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static json_t *found(const char *addr, const char *fp, const char *os)
{
    json_t *ssh =
        fp ? json_pack("{s:i, s:s, s:s, s:s}", "port", 22, "banner", "SSH-2.0-OpenSSH_9.2p1",
                       "host_key_type", "ssh-ed25519", "host_key_fingerprint", fp)
           : json_null();
    return json_pack("{s:s, s:n, s:s?, s:{s:[{s:i, s:s}], s:o}, s:[s]}", "address", addr,
                     "hostname", "os_family", os, "facts", "ports", "port", 22, "state", "open",
                     "ssh", ssh, "names", "db1.example");
}

typedef struct merge_ud {
    const char *scan, *profile;
    json_t *found, *rec, *events;
} merge_ud;

static int merge_txn(store_txn *txn, void *ud)
{
    merge_ud *m = ud;
    json_decref(m->rec);
    json_array_clear(m->events);
    return dhost_merge(txn, m->scan, m->profile, m->found, &m->rec, m->events);
}

/* Merge one host; the events it caused as a "type,type" string. */
static json_t *merge(fx *f, const char *scan, const char *profile, json_t *host, char *types,
                     size_t n)
{
    merge_ud m = {scan, profile, host, NULL, json_array()};
    assert_int_equal(store_write(f->st, merge_txn, &m), 0);
    size_t o = 0, i;
    json_t *ev;
    types[0] = '\0';
    json_array_foreach(m.events, i, ev) o += (size_t)snprintf(
        types + o, n - o, "%s%s", i ? "," : "", json_string_value(json_array_get(ev, 0)));
    json_decref(m.events);
    json_decref(host);
    return m.rec;
}

#define FP1 "SHA256:Rgsb9R1WcS9KfMJwDdRkH7yPYn3q5+B4aZH3o7L3jVQ"
#define FP2 "SHA256:/e0Z2wlWHVv6W0bLo0xm/UbZXj4Q4uL3+kcj6n9+0bc"

static void a_host_is_new_then_changed_and_said_so_once(void **state)
{
    fx *f = *state;
    char types[256];
    json_t *rec = merge(f, "scan-1", "", found("10.0.0.7", FP1, "linux"), types, sizeof(types));
    assert_string_equal(types, "discovery.host_found");
    assert_string_equal(dhost_state(rec, NULL), "new");
    assert_string_equal(json_string_value(json_array_get(json_object_get(rec, "hostnames"), 0)),
                        "db1.example");
    json_decref(rec);
    rec = merge(f, "scan-2", "", found("10.0.0.7", FP1, "linux"), types, sizeof(types));
    assert_string_equal(types, ""); /* the same again: nothing to say */
    assert_int_equal(json_integer_value(json_object_get(rec, "scans_seen")), 2);
    json_decref(rec);
    rec = merge(f, "scan-3", "", found("10.0.0.7", NULL, "linux"), types, sizeof(types));
    assert_string_equal(types, ""); /* no key read this time: the last one is kept */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec, "ssh"), "host_key_fingerprint")),
        FP1);
    json_decref(rec);
    rec = merge(f, "scan-4", "", found("10.0.0.7", FP2, "windows"), types, sizeof(types));
    assert_string_equal(types, "discovery.host_changed,discovery.host_changed");
    assert_string_equal(dhost_state(rec, NULL), "changed");
    json_t *changes = json_object_get(rec, "changes");
    assert_int_equal(json_array_size(changes), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(changes, 0), "before"), "fingerprint")),
                        FP1);
    json_decref(rec);
    rec = merge(f, "scan-5", "", found("10.0.0.7", FP2, "windows"), types, sizeof(types));
    assert_string_equal(types, ""); /* still changed, not announced twice */
    assert_string_equal(dhost_state(rec, NULL), "changed");
    json_decref(rec);
}

typedef struct sweep_ud {
    const char *profile, *scan;
    json_t *events;
} sweep_ud;

static int sweep_txn(store_txn *txn, void *ud)
{
    sweep_ud *s = ud;
    json_array_clear(s->events);
    return dhost_profile_sweep(txn, s->profile, s->scan, 2, s->events);
}

static size_t sweep(fx *f, const char *scan)
{
    sweep_ud s = {"prof", scan, json_array()};
    assert_int_equal(store_write(f->st, sweep_txn, &s), 0);
    size_t n = json_array_size(s.events);
    json_decref(s.events);
    return n;
}

static void a_host_missing_from_n_profile_scans_vanishes_once(void **state)
{
    fx *f = *state;
    char types[256];
    json_decref(merge(f, "s1", "prof", found("10.0.0.1", FP1, NULL), types, sizeof(types)));
    json_decref(merge(f, "s1", "prof", found("10.0.0.2", FP2, NULL), types, sizeof(types)));
    assert_int_equal(sweep(f, "s1"), 0);
    json_decref(merge(f, "s2", "prof", found("10.0.0.1", FP1, NULL), types, sizeof(types)));
    assert_int_equal(sweep(f, "s2"), 0); /* 10.0.0.2 missed once */
    json_decref(merge(f, "s3", "prof", found("10.0.0.1", FP1, NULL), types, sizeof(types)));
    assert_int_equal(sweep(f, "s3"), 1); /* missed twice: vanished */
    json_decref(merge(f, "s4", "prof", found("10.0.0.1", FP1, NULL), types, sizeof(types)));
    assert_int_equal(sweep(f, "s4"), 0); /* already vanished: said once */
    json_t *rec = merge(f, "s5", "prof", found("10.0.0.2", FP2, NULL), types, sizeof(types));
    assert_string_equal(types, "discovery.host_found"); /* back */
    assert_string_equal(dhost_state(rec, NULL), "new");
    json_decref(rec);
}

typedef struct match_ud {
    dmatch *m;
} match_ud;

static int load_txn(store_txn *txn, void *ud)
{
    return dmatch_load(txn, &((match_ud *)ud)->m);
}

static int target_txn(store_txn *txn, void *ud)
{
    json_t *t = json_loads(ud, 0, NULL);
    int rc = store_create(txn, "targets", t);
    json_decref(t);
    return rc;
}

static void known_hosts_match_a_target_by_address_name_or_key(void **state)
{
    fx *f = *state;
    assert_int_equal(store_write(f->st, target_txn,
                                 "{\"name\": \"a\", \"address\": \"10.0.0.1\", \"host_keys\": []}"),
                     0);
    assert_int_equal(
        store_write(f->st, target_txn,
                    "{\"name\": \"b\", \"address\": \"DB1.Example.\", \"host_keys\": []}"),
        0);
    assert_int_equal(store_write(f->st, target_txn,
                                 "{\"name\": \"c\", \"address\": \"c.example\", \"host_keys\": "
                                 "[{\"type\": \"ssh-ed25519\", \"fingerprint\": \"" FP2 "\"}]}"),
                     0);
    match_ud u = {NULL};
    assert_int_equal(store_read(f->st, load_txn, &u), 0);
    json_t *by_addr = found("10.0.0.1", NULL, NULL), *by_name = found("10.0.0.9", NULL, NULL),
           *by_key = found("10.0.0.3", FP2, NULL), *none = found("10.0.0.4", FP1, NULL);
    json_object_set_new(by_addr, "hostnames", json_array());
    json_object_set(by_name, "hostnames", json_object_get(by_name, "names"));
    json_object_set(by_key, "ssh", json_object_get(json_object_get(by_key, "facts"), "ssh"));
    json_object_set(none, "ssh", json_object_get(json_object_get(none, "facts"), "ssh"));
    assert_string_equal(dhost_state(by_addr, u.m), "known");
    assert_string_equal(dhost_state(by_name, u.m), "known"); /* names compare lowercased */
    assert_string_equal(dhost_state(by_key, u.m), "known");
    assert_string_equal(dhost_state(none, u.m), "new");
    json_t *v = dhost_view(by_key, u.m);
    assert_non_null(json_string_value(json_object_get(v, "target_id")));
    assert_null(json_object_get(v, "profiles"));
    json_decref(v);
    json_decref(by_addr);
    json_decref(by_name);
    json_decref(by_key);
    json_decref(none);
    dmatch_free(u.m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(range_items_parse_and_say_what_is_wrong),
        cmocka_unit_test(sets_merge_subtract_count_and_become_cidr_blocks),
        cmocka_unit_test(ports_are_sorted_unique_and_bounded),
        cmocka_unit_test(scan_requests_get_defaults_and_meet_the_limits),
        cmocka_unit_test_setup_teardown(a_host_is_new_then_changed_and_said_so_once, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(a_host_missing_from_n_profile_scans_vanishes_once, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(known_hosts_match_a_target_by_address_name_or_key, fx_setup,
                                        fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
