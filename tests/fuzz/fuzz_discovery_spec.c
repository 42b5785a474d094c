/* fuzz_discovery_spec.c - libFuzzer target: what a scan request says it covers.
 *
 * Input: a JSON scan request body (ranges, exclude, ports, rate...), checked as the API does
 * (schema, range items, exclusions, ports, limits) and turned into the scanner's spec; then
 * each line of the input alone as a range item and as an allowed_ranges list. Checked: nothing
 * crashes or hangs; a spec's total equals what its CIDR blocks hold; refusals carry a message;
 * a parsed CIDR block's text parses back to the same interval. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "discovery_internal.h"
#include "discovery_schemas.h"
#include "dspec.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static jschema *schema;
static dspec_set allowed;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char err[200];
    CHECK(jschema_compile_text(&schema, DSC_SCHEMA_scan_request, err, sizeof(err)) == 0);
    CHECK(dspec_set_parse_list("10.0.0.0/8, 192.168.0.0/16, fd00::/8", "allowed", &allowed, err,
                               sizeof(err)) == 0);
    return 0;
}

static uint64_t blocks_total(const json_t *targets)
{
    uint64_t total = 0;
    size_t i;
    json_t *t;
    json_array_foreach((json_t *)targets, i, t)
    {
        dspec_item it;
        char err[200];
        CHECK(dspec_item_parse(json_string_value(t), &it, err, sizeof(err)) == 0);
        CHECK(it.kind == DSPEC_CIDR);
        total += (uint64_t)(it.iv.hi - it.iv.lo) + 1;
    }
    return total;
}

static void request(const uint8_t *data, size_t size)
{
    json_t *body = json_loadb((const char *)data, size, 0, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        return;
    }
    dscan_req r;
    dsc_err e = {0};
    int rc = dscan_req_parse(schema, body, &r, &e);
    json_t *spec = NULL;
    dscan_limits lim = {65536, (size & 1) ? &allowed : NULL, json_array_size(r.names) > 0};
    if (rc == 0)
        rc = dscan_req_finish(&r, &lim, &spec, &e);
    if (rc == 0) {
        uint64_t total = (uint64_t)json_integer_value(json_object_get(spec, "total"));
        CHECK(total <= 65536);
        CHECK(blocks_total(json_object_get(spec, "targets")) == total);
    } else if (rc == OPSC_ESCHEMA) {
        CHECK(e.msg[0] && e.status == 400);
    }
    json_decref(spec);
    dsc_err_clear(&e);
    dscan_req_clear(&r);
    json_decref(body);
}

static void one_item(const char *line)
{
    dspec_item it;
    char err[200], text[100];
    if (dspec_item_parse(line, &it, err, sizeof(err)) < 0) {
        CHECK(err[0]);
        return;
    }
    if (it.kind == DSPEC_NAME)
        return;
    dspec_set s = {0};
    CHECK(dspec_set_add(&s, &it.iv) == 0);
    json_t *cidrs = dspec_set_cidrs(&s);
    CHECK(blocks_total(cidrs) == dspec_set_count(&s) || dspec_set_count(&s) == UINT64_MAX);
    json_decref(cidrs);
    dspec_iv_format(&it.iv, text, sizeof(text));
    dspec_item back;
    CHECK(dspec_item_parse(text, &back, err, sizeof(err)) == 0);
    CHECK(back.iv.lo == it.iv.lo && back.iv.hi == it.iv.hi && back.iv.family == it.iv.family);
    dspec_set_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    request(data, size);
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    dspec_set s;
    char err[300];
    if (dspec_set_parse_list(text, "list", &s, err, sizeof(err)) == 0)
        dspec_set_free(&s);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        one_item(line);
    free(text);
    return 0;
}
