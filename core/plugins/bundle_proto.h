/* bundle_proto.h - the line protocol between the daemon and a bundle's step executable.
 *
 * One JSON object per line (UTF-8, '\n'-terminated, at most BP_MAX_LINE
 * bytes) over the executable's stdin (daemon -> step) and stdout (step ->
 * daemon); its stderr goes to the run log. Version 1:
 *
 *   daemon -> step  {"type":"run","protocol":1,"step":"<name>","library":{"name","version"},
 *                    "params":{...},"target":{"name","address","os_family","transport","labels"}}
 *   step -> daemon  requests, each with an "id" (a positive integer the step chooses):
 *     {"type":"log","id":n,"level":"debug|info|warn|error","message":"..."}
 *     {"type":"exec","id":n,"command":"...", "stdin":"...", "timeout_ms":n,
 *      "capture_limit":n, "log_output":bool, "sensitive":bool}
 *     {"type":"put_file","id":n,"local":"...","remote":"...","mode":n}
 *     {"type":"get_file","id":n,"remote":"...","local":"..."}
 *     {"type":"set_output","id":n,"key":"...","value":<any JSON>}
 *     {"type":"secret","id":n,"name":"..."}
 *     {"type":"cancelled","id":n}
 *     {"type":"target_facts","id":n}
 *   daemon -> step  for an exec, its output first, in chunks:
 *                    {"type":"output","id":n,"stream":"stdout|stderr","data":"..."}
 *                   then one answer per request, in order:
 *                    {"type":"response","id":n,"ok":true,"value":...}
 *                    {"type":"response","id":n,"ok":false,"error":{"code":"ECANCELED",
 *                     "message":"..."}}
 *   step -> daemon  last: {"type":"result","ok":true|false,"message":"...","outputs":{...}}
 *
 * Anything else (not JSON, not an object, an unknown type, a missing or
 * mistyped member, a line too long) fails the step with the reason this
 * decoder names. Fuzzed by tests/fuzz/fuzz_bundle_proto.c.
 *
 * Threads: no state but the reader's buffer.
 */
#ifndef OPSC_BUNDLE_PROTO_H
#define OPSC_BUNDLE_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BP_VERSION  1
#define BP_MAX_LINE (1u << 20)
#define BP_MAX_ID   ((int64_t)1 << 52)

enum bp_kind {
    BP_LOG,
    BP_EXEC,
    BP_PUT_FILE,
    BP_GET_FILE,
    BP_SET_OUTPUT,
    BP_SECRET,
    BP_CANCELLED,
    BP_TARGET_FACTS,
    BP_RESULT,
};

typedef struct bp_msg {
    enum bp_kind kind;
    int64_t id;   /* requests; 0 for a result */
    json_t *json; /* the whole line, owned: checked members are there with their types */
} bp_msg;

/* Decode one line (without its '\n'): 0 with *m (free with bp_msg_clear),
 * or OPSC_EPROTO with the reason in err ("not JSON (1:7: ...)",
 * "exec: \"command\" must be a string"). */
int bp_decode(const char *line, size_t len, bp_msg *m, char *err, size_t errlen);
void bp_msg_clear(bp_msg *m);

/* Lines from a byte stream. */
typedef struct bp_reader {
    char *buf;
    size_t len, cap, off;
} bp_reader;
/* Append bytes read. 0, or OPSC_E2BIG when a line grows past BP_MAX_LINE. */
int bp_feed(bp_reader *r, const void *data, size_t n);
/* The next whole line (without '\n', borrowed until the next call): 1, or 0. */
int bp_next(bp_reader *r, const char **line, size_t *len);
void bp_reader_free(bp_reader *r);

#endif
