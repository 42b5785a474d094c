/* spawn_proto.h - the messages between opsconductord and opsc-spawner, its privileged helper.
 *
 * The daemon starts opsc-spawner once, before it reads a key or opens the
 * store, with a SOCK_SEQPACKET socketpair as the helper's fd 3; one message
 * is one packet. The helper is the only process that can switch to the
 * local-steps user, so it trusts nothing it reads: every message is decoded
 * here, bounded and checked, before the helper acts on it (and the fuzz
 * target tests/fuzz/fuzz_spawn.c feeds these decoders).
 *
 * A packet starts with a header: type (u32), payload length (u32, must match
 * the packet), id (u64, the daemon's number for a process). Integers are in
 * the host's byte order (both ends run on one machine). Payloads:
 *
 * daemon -> helper
 *   SP_SPAWN    argc u32, envc u32, then argc + envc + 1 NUL-terminated
 *               strings: argv, env ("NAME=value"), cwd ("" for none).
 *               Exactly three file descriptors ride along (SCM_RIGHTS):
 *               the process's stdin, stdout and stderr.
 *   SP_SIGNAL   sig u32: signal the process group of `id`.
 *   SP_RELEASE  (empty): the daemon is done with `id`; the helper forgets it.
 *   SP_ORPHAN   pgid u64, start u64 (clock ticks after boot), boot id
 *               (NUL-terminated): kill a process group a previous daemon
 *               recorded, if it is still that group of the local user.
 * helper -> daemon
 *   SP_HELLO    ok u32, uid u32, gid u32, flags u32, then user name, boot
 *               id and a reason (why local steps are refused when !ok, or
 *               notes), NUL-terminated.
 *   SP_STARTED  pid u64, start u64: `id` runs, pid = its process group.
 *   SP_FAILED   err i32 (negative errno), message: `id` could not start.
 *   SP_EXITED   status i32 (as from waitpid): the group leader exited.
 *   SP_DONE     killed u32, message: the answer to SP_ORPHAN `id`.
 *   SP_LOG      level u32, message: a line for the daemon's log.
 */
#ifndef OPSC_SPAWN_PROTO_H
#define OPSC_SPAWN_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_MAX_PACKET (256u * 1024) /* larger than Linux's 128 KiB per exec argument */
#define SP_MAX_ARGS   4096
#define SP_MAX_ENV    4096
#define SP_TEXT_MAX   512 /* messages, names, boot ids */
#define SP_BOOT_ID    40

enum sp_type {
    SP_SPAWN = 1,
    SP_SIGNAL,
    SP_RELEASE,
    SP_ORPHAN,
    SP_HELLO = 64,
    SP_STARTED,
    SP_FAILED,
    SP_EXITED,
    SP_DONE,
    SP_LOG,
};

/* HELLO flags: what the helper could do to hide the daemon from local steps. */
#define SP_HELLO_PRIVATE_PROC 1u /* its /proc hides other users' processes */
#define SP_HELLO_HIDDEN_PATHS 2u /* the data directory and key files are covered */

typedef struct sp_hdr {
    uint32_t type;
    uint32_t len; /* payload bytes after the header */
    uint64_t id;
} sp_hdr;

/* A decoded message. Pointers point into the packet buffer. */
typedef struct sp_msg {
    uint32_t type;
    uint64_t id;
    /* SP_SPAWN */
    uint32_t argc, envc;
    const char *strings; /* argv, env, cwd: argc + envc + 1 strings in a row */
    size_t strings_len;
    /* SP_SIGNAL, SP_LOG (level), SP_DONE (killed), SP_HELLO (ok) */
    uint32_t u32;
    int32_t i32;              /* SP_FAILED err, SP_EXITED status */
    uint64_t a, b;            /* SP_ORPHAN pgid/start, SP_STARTED pid/start */
    uint32_t uid, gid, flags; /* SP_HELLO */
    const char *text;         /* SP_FAILED, SP_DONE, SP_LOG message; SP_ORPHAN boot id;
                                 SP_HELLO user */
    const char *text2;        /* SP_HELLO boot id */
    const char *text3;        /* SP_HELLO reason */
} sp_msg;

/* Decode one packet of `len` bytes. 0 and *m filled, or -1 when anything
 * is out of bounds, unterminated, unknown or inconsistent. */
int sp_decode(const void *packet, size_t len, sp_msg *m);

/* Walk the strings of a decoded SP_SPAWN: `vec` receives argc + envc + 1
 * pointers, then NULL (`vec` has room for argc + envc + 2). */
void sp_spawn_strings(const sp_msg *m, const char **vec);

/* Encoding into a caller's buffer (at least SP_MAX_PACKET for SPAWN, else
 * 1024 bytes). Returns the packet length, or 0 when it does not fit. */
size_t sp_encode_spawn(void *buf, size_t cap, uint64_t id, const char *const *argv,
                       const char *const *env, const char *cwd);
size_t sp_encode_u32(void *buf, size_t cap, uint32_t type, uint64_t id, uint32_t v);
size_t sp_encode_orphan(void *buf, size_t cap, uint64_t id, uint64_t pgid, uint64_t start,
                        const char *boot_id);
size_t sp_encode_hello(void *buf, size_t cap, bool ok, uint32_t uid, uint32_t gid, uint32_t flags,
                       const char *user, const char *boot_id, const char *reason);
size_t sp_encode_started(void *buf, size_t cap, uint64_t id, uint64_t pid, uint64_t start);
/* SP_FAILED (err), SP_EXITED (status, text NULL), SP_DONE and SP_LOG (u32 in `v`). */
size_t sp_encode_num_text(void *buf, size_t cap, uint32_t type, uint64_t id, int64_t v,
                          const char *text);

#endif
