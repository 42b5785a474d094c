/* test_bundle.c - step library bundles without a daemon: archives built here byte by byte
 * (ustar, pax and GNU names, links, devices, damage), gzip-compressed with zlib, checked and
 * unpacked by core/plugins/bundle_tar.c; manifests refused with the field at fault; the line
 * protocol's decoder and reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include <opsc/errors.h>

#include "bundle_internal.h"
#include "bundle_proto.h"

/* ---- archives ---------------------------------------------------------------------------- */

typedef struct tarbuf {
    uint8_t *p;
    size_t len;
} tarbuf;

static void tb_add(tarbuf *t, char type, const char *name, const char *data, size_t len,
                   unsigned mode)
{
    uint8_t h[512] = {0};
    snprintf((char *)h, 100, "%s", name);
    snprintf((char *)h + 100, 8, "%07o", mode);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011o", (unsigned)len);
    snprintf((char *)h + 136, 12, "%011o", 0);
    h[156] = (uint8_t)type;
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    size_t padded = (len + 511) / 512 * 512;
    t->p = realloc(t->p, t->len + 512 + padded);
    memcpy(t->p + t->len, h, 512);
    memset(t->p + t->len + 512, 0, padded);
    if (len)
        memcpy(t->p + t->len + 512, data, len);
    t->len += 512 + padded;
}

static void tb_file(tarbuf *t, const char *name, const char *text, unsigned mode)
{
    tb_add(t, '0', name, text, strlen(text), mode);
}

static uint8_t *tb_gzip(tarbuf *t, size_t *out_len)
{
    t->p = realloc(t->p, t->len + 1024);
    memset(t->p + t->len, 0, 1024);
    t->len += 1024;
    z_stream z = {0};
    deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    size_t cap = deflateBound(&z, t->len);
    uint8_t *out = malloc(cap);
    z.next_in = t->p;
    z.avail_in = (uInt)t->len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    free(t->p);
    t->p = NULL;
    t->len = 0;
    return out;
}

static const char *manifest_ok =
    "{\"name\": \"demo\", \"version\": \"1.2.3\", \"abi\": \"1.0\", \"executable\": \"bin/run\","
    " \"steps\": [{\"name\": \"go\", \"os_families\": [\"linux\"],"
    " \"params_schema\": {\"type\": \"object\"}},"
    " {\"name\": \"tpl\", \"posix_template_file\": \"t/go.sh\", \"output_rule\": \"key_value\"}]}";

/* Open (and unpack into dir when not NULL) the archive `t`; the error text in err. */
static int open_tar(tarbuf *t, const char *dir, bundle **b, char *err, size_t errlen)
{
    size_t len;
    uint8_t *gz = tb_gzip(t, &len);
    err[0] = '\0';
    int rc = bundle_open(gz, len, dir, b, err, errlen);
    free(gz);
    return rc;
}

static void refused(tarbuf *t, int code, const char *text)
{
    bundle *b = NULL;
    char err[512];
    int rc = open_tar(t, NULL, &b, err, sizeof(err));
    if (rc != code || !strstr(err, text))
        fail_msg("got %d '%s', want %d '%s'", rc, err, code, text);
    assert_null(b);
}

static void test_a_bundle_unpacks_with_safe_modes_and_its_manifest(void **state)
{
    (void)state;
    char dir[] = "/tmp/test-bundle-XXXXXX", out[600];
    assert_non_null(mkdtemp(dir));
    tarbuf t = {0};
    tb_add(&t, '5', "./", NULL, 0, 0755);
    tb_file(&t, "./steplib.json", manifest_ok, 0600);
    tb_file(&t, "bin/run", "#!/bin/sh\n", 04777); /* setuid and world-writable: not kept */
    tb_file(&t, "t/go.sh", "echo OPSC_OUTPUT x=1\n", 0644);
    bundle *b = NULL;
    char err[512];
    snprintf(out, sizeof(out), "%s/d", dir);
    assert_int_equal(open_tar(&t, out, &b, err, sizeof(err)), 0);
    assert_string_equal(bundle_name(b), "demo");
    assert_string_equal(bundle_version(b), "1.2.3");
    assert_string_equal(bundle_step_exec(b, &b->steps[0].type), "bin/run");
    assert_null(bundle_step_exec(b, &b->steps[1].type));
    assert_string_equal(b->steps[1].type.posix_template, "echo OPSC_OUTPUT x=1\n");
    assert_int_equal(b->steps[1].type.output_rule, OPSC_OUTPUT_KEY_VALUE);
    assert_string_equal(b->steps[0].type.os_families, "linux");
    struct stat st;
    snprintf(out, sizeof(out), "%s/d/bin/run", dir);
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    snprintf(out, sizeof(out), "%s/d/steplib.json", dir);
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    bundle_free(b);
    bundle_rmtree(dir);
    assert_int_not_equal(access(dir, F_OK), 0);
}

static void test_long_names_from_pax_and_gnu_headers(void **state)
{
    (void)state;
    char longname[160], pax[220];
    snprintf(longname, sizeof(longname), "%0150d/x", 0);
    snprintf(pax, sizeof(pax), "%zu path=%s\n", strlen(longname) + 10, longname);
    tarbuf t = {0};
    tb_file(&t, "steplib.json", manifest_ok, 0644);
    tb_file(&t, "t/go.sh", "true\n", 0644);
    tb_add(&t, 'x', "PaxHeader", pax, strlen(pax), 0644);
    tb_file(&t, "short-pax", "", 0644);
    tb_add(&t, 'L', "././@LongLink", "gnu/long/name/run", 18, 0644);
    tb_file(&t, "short-gnu", "", 0755);
    tb_file(&t, "bin/run", "", 0755);
    size_t len;
    uint8_t *gz = tb_gzip(&t, &len);
    tar_archive a;
    char err[256];
    assert_int_equal(tar_read(gz, len, BUNDLE_MAX_BYTES, &a, err, sizeof(err)), 0);
    assert_non_null(tar_find(&a, longname));
    assert_non_null(tar_find(&a, "gnu/long/name/run"));
    assert_null(tar_find(&a, "short-pax"));
    tar_free(&a);
    free(gz);
}

static void test_links_devices_escapes_and_damage_are_refused_by_name(void **state)
{
    (void)state;
    static const struct {
        char type;
        const char *name, *why;
    } cases[] = {
        {'2', "link", "entry 'link' is a symbolic link"},
        {'1', "hard", "entry 'hard' is a hard link"},
        {'3', "tty", "entry 'tty' is a device"},
        {'6', "fifo", "entry 'fifo' is a fifo"},
        {'0', "../up", "entry '../up' has a '..', '.' or empty component"},
        {'0', "a/./b", "has a '..', '.' or empty component"},
        {'0', "a//b", "has a '..', '.' or empty component"},
        {'0', "/etc/passwd", "entry '/etc/passwd' is an absolute path"},
        {'0', "sp ace", "holds a byte that is not printable ASCII"},
        {'0', "steplib.json", "entry 'steplib.json' appears twice"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tarbuf t = {0};
        tb_file(&t, "steplib.json", manifest_ok, 0644);
        tb_add(&t, cases[i].type, cases[i].name, "", 0, 0644);
        refused(&t, OPSC_EINVAL, cases[i].why);
    }
    tarbuf t = {0};
    tb_file(&t, "steplib.json", manifest_ok, 0644);
    t.p[148] ^= 1; /* its checksum */
    refused(&t, OPSC_EINVAL, "not a tar archive (a damaged header at byte 0)");
    tb_file(&t, "steplib.json", manifest_ok, 0644);
    t.len = 700; /* cut inside the manifest's data */
    t.p = realloc(t.p, t.len);
    size_t len;
    uint8_t *gz = tb_gzip(&t, &len);
    tar_archive a;
    char err[256];
    assert_int_equal(tar_read(gz, len - 9, BUNDLE_MAX_BYTES, &a, err, sizeof(err)), OPSC_EINVAL);
    assert_non_null(strstr(err, "not a gzip-compressed tar archive: it is cut short"));
    free(gz);
}

static void test_size_and_entry_limits(void **state)
{
    (void)state;
    tarbuf t = {0};
    tb_file(&t, "steplib.json", manifest_ok, 0644);
    for (int i = 0; i < BUNDLE_MAX_ENTRIES; i++) {
        char name[32];
        snprintf(name, sizeof(name), "f%d", i);
        tb_file(&t, name, "", 0644);
    }
    refused(&t, OPSC_E2BIG, "the bundle has more than 512 entries");
    /* The bound on what an archive inflates to, here 1 MiB (64 MiB in bundle_open()). */
    char *zeros = calloc(1, (1 << 20) + 4096);
    tb_add(&t, '0', "big", zeros, (1 << 20) + 4096, 0644);
    free(zeros);
    size_t len;
    uint8_t *gz = tb_gzip(&t, &len);
    tar_archive a;
    char err[256];
    assert_int_equal(tar_read(gz, len, 1 << 20, &a, err, sizeof(err)), OPSC_E2BIG);
    assert_string_equal(err, "the bundle unpacks to more than 1 MiB");
    free(gz);
}

/* ---- manifests --------------------------------------------------------------------------- */

static void manifest_refused(const char *json, int code, const char *text)
{
    tarbuf t = {0};
    tb_file(&t, "steplib.json", json, 0644);
    tb_file(&t, "bin/run", "", 0755);
    tb_file(&t, "plain", "", 0644);
    refused(&t, code, text);
}

static void test_manifests_are_refused_naming_the_field(void **state)
{
    (void)state;
    manifest_refused("[1]", OPSC_EINVAL, "steplib.json: must be a JSON object");
    manifest_refused("{\"name\": \"x\",\n \"name\": 2}", OPSC_EINVAL, "steplib.json 2:");
    manifest_refused("{\"version\": \"1.0.0\", \"abi\": \"1.0\", \"steps\": []}", OPSC_EINVAL,
                     "steplib.json: name: is required");
    manifest_refused("{\"name\": \"x\", \"version\": \"1.0.0\", \"abi\": \"1.0\", \"steps\": [],"
                     " \"colour\": 1}",
                     OPSC_EINVAL, "steplib.json: colour: unknown key (valid: name, version, abi,");
    manifest_refused("{\"name\": \"x\", \"version\": \"1.0.0\", \"abi\": \"one\", \"steps\": []}",
                     OPSC_EINVAL, "steplib.json: abi: 'one' is not major.minor");
    manifest_refused("{\"name\": \"x\", \"version\": \"1.0.0\", \"abi\": \"1.99\", \"steps\": []}",
                     OPSC_EABI, "abi: written for 1.99, the daemon speaks 1.");
    manifest_refused("{\"name\": \"x\", \"version\": \"1.0.0\", \"abi\": \"1.0\", \"steps\": {}}",
                     OPSC_EINVAL, "steplib.json: steps: must be an array of step types");
    const char *head = "{\"name\": \"x\", \"version\": \"1.0.0\", \"abi\": \"1.0\", \"steps\": [";
    static const struct {
        const char *step, *why;
    } cases[] = {
        {"3", "steps[0]: must be an object"},
        {"{\"name\": 1}", "steps[0].name: must be a string"},
        {"{\"name\": \"a\", \"executable\": \"plain\"}",
         "steps[0].executable: 'plain' is not an executable file of the bundle"},
        {"{\"name\": \"a\", \"executable\": \"missing\"}", "steps[0].executable: 'missing' is not"},
        {"{\"name\": \"a\", \"params_schema\": \"{}\", \"executable\": \"bin/run\"}",
         "steps[0].params_schema: must be a JSON Schema object"},
        {"{\"name\": \"a\", \"os_families\": [1], \"executable\": \"bin/run\"}",
         "steps[0].os_families[0]: must be a string"},
        {"{\"name\": \"a\", \"posix_template\": \"x\", \"output_rule\": \"lines\"}",
         "steps[0].output_rule: 'lines' is none of"},
        {"{\"name\": \"a\", \"posix_template\": \"x\", \"posix_template_file\": \"plain\"}",
         "steps[0].posix_template_file: give posix_template or posix_template_file, not both"},
        {"{\"name\": \"a\", \"posix_template\": \"x\", \"executable\": \"bin/run\"}",
         "steps[0].executable: a step with a template runs no executable"},
        {"{\"name\": \"a\"}", "steps[0].: neither a template"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[512];
        snprintf(json, sizeof(json), "%s%s]}", head, cases[i].step);
        manifest_refused(json, OPSC_EINVAL, cases[i].why);
    }
}

/* ---- the line protocol ------------------------------------------------------------------- */

static void decode_refused(const char *line, const char *why)
{
    bp_msg m;
    char err[200] = "";
    int rc = bp_decode(line, strlen(line), &m, err, sizeof(err));
    if (rc != OPSC_EPROTO || strcmp(err, why) != 0)
        fail_msg("%s: got %d '%s', want '%s'", line, rc, err, why);
}

static void test_protocol_lines_are_checked_member_by_member(void **state)
{
    (void)state;
    bp_msg m;
    char err[200];
    const char *exec = "{\"type\":\"exec\",\"id\":7,\"command\":\"ls\",\"stdin\":null}";
    assert_int_equal(bp_decode(exec, strlen(exec), &m, err, sizeof(err)), 0);
    assert_int_equal(m.kind, BP_EXEC);
    assert_int_equal(m.id, 7);
    bp_msg_clear(&m);
    const char *result = "{\"type\":\"result\",\"ok\":true}";
    assert_int_equal(bp_decode(result, strlen(result), &m, err, sizeof(err)), 0);
    assert_int_equal(m.kind, BP_RESULT);
    bp_msg_clear(&m);
    decode_refused("[]", "not an object with a string \"type\"");
    decode_refused("{\"type\":\"walk\",\"id\":1}", "unknown type \"walk\"");
    decode_refused("{\"type\":\"cancelled\"}",
                   "cancelled: \"id\" must be an integer from 1 to 2^52");
    decode_refused("{\"type\":\"cancelled\",\"id\":-3}",
                   "cancelled: \"id\" must be an integer from 1 to 2^52");
    decode_refused("{\"type\":\"exec\",\"id\":1}", "exec: \"command\" must be a string");
    decode_refused("{\"type\":\"exec\",\"id\":1,\"command\":\"x\",\"timeout_ms\":-1}",
                   "exec: \"timeout_ms\" must be a non-negative integer");
    decode_refused("{\"type\":\"set_output\",\"id\":1,\"key\":\"k\"}",
                   "set_output: \"value\" must be present");
    decode_refused("{\"type\":\"result\",\"ok\":1}", "result: \"ok\" must be a boolean");
    decode_refused("{\"type\":\"log\",\"id\":1,\"id\":2}",
                   "not JSON (1:25: duplicate object key near '\"id\"')");
}

static void test_lines_are_read_in_pieces_and_bounded(void **state)
{
    (void)state;
    bp_reader r = {0};
    const char *line;
    size_t len;
    assert_int_equal(bp_feed(&r, "{\"a\":1}\n{\"b", 11), 0);
    assert_int_equal(bp_next(&r, &line, &len), 1);
    assert_int_equal(len, 7);
    assert_int_equal(bp_next(&r, &line, &len), 0);
    assert_int_equal(bp_feed(&r, "\":2}\n", 5), 0);
    assert_int_equal(bp_next(&r, &line, &len), 1);
    assert_memory_equal(line, "{\"b\":2}", 7);
    char *big = malloc(BP_MAX_LINE);
    memset(big, 'x', BP_MAX_LINE);
    assert_int_equal(bp_feed(&r, big, BP_MAX_LINE), 0); /* exactly the limit, still open */
    assert_int_equal(bp_feed(&r, "y", 1), OPSC_E2BIG);
    free(big);
    bp_reader_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_bundle_unpacks_with_safe_modes_and_its_manifest),
        cmocka_unit_test(test_long_names_from_pax_and_gnu_headers),
        cmocka_unit_test(test_links_devices_escapes_and_damage_are_refused_by_name),
        cmocka_unit_test(test_size_and_entry_limits),
        cmocka_unit_test(test_manifests_are_refused_naming_the_field),
        cmocka_unit_test(test_protocol_lines_are_checked_member_by_member),
        cmocka_unit_test(test_lines_are_read_in_pieces_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
