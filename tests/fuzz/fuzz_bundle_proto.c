/* fuzz_bundle_proto.c - libFuzzer target: the lines a bundle's step executable writes on its
 * stdout (core/plugins/bundle_proto.c), fed in pieces whose sizes come from the input. Checked:
 * a line never holds a newline nor exceeds the limit; a decoded message is an object whose
 * "type" names its kind, with an id from 1 to 2^52 for a request; what the decoder accepts keeps
 * the members it promised with their types. */
#include <stdint.h>
#include <string.h>

#include <opsc/errors.h>

#include "bundle_proto.h"

static void check(const bp_msg *m)
{
    json_t *o = m->json;
    const char *type = json_string_value(json_object_get(o, "type"));
    if (!json_is_object(o) || !type)
        __builtin_trap();
    if (m->kind != BP_RESULT && (m->id < 1 || m->id > BP_MAX_ID))
        __builtin_trap();
    if (m->kind == BP_EXEC && !json_is_string(json_object_get(o, "command")))
        __builtin_trap();
    if (m->kind == BP_RESULT && !json_is_boolean(json_object_get(o, "ok")))
        __builtin_trap();
    if (m->kind == BP_SET_OUTPUT &&
        (!json_is_string(json_object_get(o, "key")) || !json_object_get(o, "value")))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bp_reader r = {0};
    size_t off = 0;
    while (off < size) {
        size_t piece = 1 + (data[off] % 64) * 17; /* the first byte of a piece says how long */
        piece = piece > size - off ? size - off : piece;
        if (bp_feed(&r, data + off, piece) < 0)
            break;
        off += piece;
        const char *line;
        size_t len;
        while (bp_next(&r, &line, &len) == 1) {
            if (len > BP_MAX_LINE || memchr(line, '\n', len))
                __builtin_trap();
            bp_msg m;
            char err[200];
            if (bp_decode(line, len, &m, err, sizeof(err)) == 0) {
                check(&m);
                bp_msg_clear(&m);
            } else if (!err[0]) {
                __builtin_trap();
            }
        }
    }
    bp_reader_free(&r);
    return 0;
}
