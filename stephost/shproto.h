/* shproto.h - the protocol between opsconductord and opsc-stephost, shared by both ends.
 *
 * opsc-stephost runs one step library out of the daemon's process (see
 * stephost.c). The two talk over a SOCK_STREAM socketpair, the host's fd 3,
 * in frames:
 *
 *   u32 length   big-endian, the bytes after this field (header rest + payload)
 *   u8  type     SHP_HELLO, SHP_JSON or SHP_DATA
 *   u8  pad[3]   zero
 *   u32 id       big-endian: the step the frame belongs to; 0 for the host itself
 *   ... payload  length - 8 bytes, at most SHP_MAX_PAYLOAD
 *
 * HELLO and JSON payloads are one JSON object (UTF-8); DATA payloads are raw
 * bytes that belong to the JSON frame of the same id just before them (a
 * command's stdin, stdout, stderr). Neither end trusts the other: every frame
 * is bounded and checked here before anything acts on it (the fuzz target
 * tests/fuzz/fuzz_stephost.c feeds these decoders).
 *
 * The conversation, id 0 unless said:
 *   host -> daemon  HELLO {"proto": "opsc-stephost", "versions": [1], "pid": n,
 *                          "library": "name", "version": "x.y.z", "sandbox": [...],
 *                          "error": "why the library did not load" (only then)}
 *   daemon -> host  HELLO {"version": 1}      (the version both speak), or closes
 *   daemon -> host  JSON  {"op": "start", "step": "<type name>"}        id = step
 *   host -> daemon  JSON  {"op": "call", "fn": "<api>", ...arguments}   id = step
 *   daemon -> host  JSON  {"op": "ret", "rc": n, "value": ...}          id = step
 *   host -> daemon  JSON  {"op": "done", "rc": n}                       id = step
 *   daemon -> host  JSON  {"op": "cancel"}                              id = step
 *   daemon -> host  JSON  {"op": "ping"}; host -> daemon {"op": "pong"}
 * Calls "log" and "fail" get no "ret": they are ordered with the step's
 * other calls and never wait. The daemon ends the host by closing the socket.
 *
 * The manifest (opsc-stephost --manifest LIBRARY): before the daemon lists a
 * library that runs out of process, a host in the same sandbox loads it,
 * calls its init() and writes on stdout one JSON document of at most
 * SHP_MANIFEST_MAX bytes, then exits; the library's own stdout goes to
 * /dev/null. No code of the library ever runs in the daemon:
 *   {"manifest": 1,
 *    "error": "why it did not load" (only then: the sandbox, dlopen, the entry),
 *    "unconfined": true (the sandbox failed: the library was never opened),
 *    "plugin": {"name", "version", "description", "license", "kinds": n,
 *               "abi_major": n, "abi_minor": n, "init": bool (it has one)},
 *    "init": {"rc": n, "config_keys": bool, "log": [{"component", "level", "msg"}]}
 *            (absent when init() was not called: an ABI, kinds or init the daemon refuses),
 *    "steplibs": [ a steplib.json document (bundle.h) per registered step library, its steps
 *                  with "imperative": bool and the schemas as JSON text ]}
 * A one-shot process rather than a request to a serving host: a host is
 * kept per library name and version, which are what the manifest tells.
 *
 * Threads: the functions here keep no state but the reader's buffer; one
 * writer at a time per socket (the callers hold a mutex).
 */
#ifndef OPSC_SHPROTO_H
#define OPSC_SHPROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHP_VERSION        1
#define SHP_HEADER         12
#define SHP_MAX_PAYLOAD    (16u << 20)
#define SHP_HOST_FD        3
#define SHP_MANIFEST_MAX   (4u << 20) /* bytes of a library's manifest */
#define SHP_MANIFEST_TYPES 1024       /* step types one manifest may list */
#define SHP_SPIN_US        50         /* shp_poll(): a step looks this long for its answer ... */
#define SHP_SPIN_SKIP      16         /* ... unless it did in vain within this many waits */

enum shp_type { SHP_HELLO = 1, SHP_JSON = 2, SHP_DATA = 3 };

typedef struct shp_frame {
    uint8_t type;
    uint32_t id;
    const uint8_t *payload; /* borrowed from the buffer it was decoded from */
    size_t len;
} shp_frame;

/* Decode the frame at the start of `buf`. Returns 1 with *f and *used (the
 * frame's whole size) set, 0 when `buf` holds only part of a frame, or
 * OPSC_EPROTO for a frame no peer may send (unknown type, non-zero padding,
 * a length below the header or above the maximum). */
int shp_decode(const uint8_t *buf, size_t len, shp_frame *f, size_t *used);

/* The header of a frame carrying `len` payload bytes. */
void shp_header(uint8_t hdr[SHP_HEADER], uint8_t type, uint32_t id, size_t len);

/* Blocking: write one whole frame (retrying short writes and EINTR).
 * 0, OPSC_E2BIG, or -errno (EPIPE once the peer is gone). */
int shp_send(int fd, uint8_t type, uint32_t id, const void *payload, size_t len);
/* The same with `msg` as the payload, compact. Does not steal `msg`. */
int shp_send_json(int fd, uint8_t type, uint32_t id, const json_t *msg);

/* Frames from a blocking stream. */
typedef struct shp_reader {
    uint8_t *buf;
    size_t len, cap, off;
} shp_reader;
/* Read the next frame, waiting for it: 1 (valid until the next call), 0 at
 * end of stream, OPSC_EPROTO for a malformed frame, -errno. */
int shp_read(shp_reader *r, int fd, shp_frame *f);
/* Read once what `fd` has (for a caller that polls): >0, 0 at end of
 * stream, -errno, OPSC_E2BIG when a frame would not fit. */
int shp_fill(shp_reader *r, int fd);
/* A frame that is already buffered, without reading: 1, 0 or OPSC_EPROTO. */
int shp_next(shp_reader *r, shp_frame *f);
void shp_reader_free(shp_reader *r);

/* poll() `fd` for input up to `ms` (-1: no limit). With `spin` (a waiting
 * step's), first look for it without sleeping for up to SHP_SPIN_US: an
 * answer that comes within microseconds is then read without a context switch
 * each way, which costs more than the wait on a virtual machine. Adaptive: a
 * spin that found nothing (the peer was not running: a busy machine) turns
 * spinning off for the next SHP_SPIN_SKIP waits, so it never takes the CPU
 * the peer needs. poll()'s result. */
typedef struct shp_spin {
    int skip; /* waits left without spinning */
} shp_spin;
int shp_poll(int fd, int ms, shp_spin *spin);

/* The payload of a HELLO or JSON frame as an object (new reference), or
 * NULL when it is not a JSON object or has no string "op" (HELLO needs
 * none). */
json_t *shp_json(const shp_frame *f);

/* A JSON string of `s` (`len` bytes), with bytes that are not UTF-8 replaced
 * by '?': text from a step library or a command may be anything. NULL
 * stays JSON null. */
json_t *shp_string(const char *s, size_t len);

#endif
