/* fuzz_stephost.c - libFuzzer target: the frames the daemon reads from an opsc-stephost, whose
 * step library may write anything on the socket (stephost/shproto.c). Checked: a decoded frame
 * lies inside the input with a known type and a bounded payload; its header encodes back to the
 * same bytes; a JSON payload parses to an object or to nothing; a string made from any payload
 * is valid UTF-8 that encodes and parses back to the same text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "shproto.h"

static void check_string(const shp_frame *f)
{
    json_t *s = shp_string((const char *)f->payload, f->len);
    if (!s)
        return;
    char *text = json_dumps(s, JSON_ENCODE_ANY);
    json_t *back = text ? json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
    if (!text || !back || !json_equal(s, back))
        __builtin_trap();
    json_decref(back);
    free(text);
    json_decref(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    shp_reader r = {(uint8_t *)data, size, size, 0};
    shp_frame f;
    int rc;
    while ((rc = shp_next(&r, &f)) == 1) {
        if (f.payload < data + SHP_HEADER || f.payload + f.len > data + size ||
            f.len > SHP_MAX_PAYLOAD || f.type < SHP_HELLO || f.type > SHP_DATA)
            __builtin_trap();
        uint8_t hdr[SHP_HEADER];
        shp_header(hdr, f.type, f.id, f.len);
        if (memcmp(hdr, f.payload - SHP_HEADER, SHP_HEADER) != 0)
            __builtin_trap();
        json_t *msg = shp_json(&f);
        if (msg && !json_is_object(msg))
            __builtin_trap();
        json_decref(msg);
        check_string(&f);
    }
    if (rc != 0 && rc != OPSC_EPROTO)
        __builtin_trap();
    return 0;
}
