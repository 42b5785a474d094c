/* tp_shell.h - POSIX shell helpers shared by the SSH and local transports.
 *
 * Both transports run a command through a small sh wrapper that reports its
 * process group on a side channel (a marker line written before the command
 * starts), changes directory, exports the environment, and optionally
 * escalates with sudo reading the password from stdin. The marker lets a
 * cancel kill the whole process group, which OpenSSH's signal requests
 * cannot do. Everything here is pure string work: no I/O.
 */
#ifndef TP_SHELL_H
#define TP_SHELL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <opsc/errors.h>
#include <opsc/host.h>

/* The marker line: "\036OPSC <pgid> <start> <boot>\n" (\r\n on a pty): the
 * process group, its leader's start time (clock ticks after boot, field 22
 * of /proc/PID/stat) and the boot id, so that a later daemon can tell the
 * group from a recycled one (tp_orphan.c). Older wrappers said only <pgid>. */
#define TP_MARKER_PREFIX "\036OPSC "

/* A growing text buffer on the host's allocator. */
typedef struct tp_buf {
    const opsc_host_api *api;
    char *p;
    size_t len, cap;
    bool failed; /* allocation failed: the text is incomplete */
} tp_buf;

void tp_buf_add(tp_buf *b, const char *s, size_t n);
void tp_buf_adds(tp_buf *b, const char *s);
void tp_buf_quote(tp_buf *b, const char *s); /* append s single-quoted for sh */
/* Returns the text (transferred: free with api->free) or NULL when it failed. */
char *tp_buf_take(tp_buf *b);
void tp_buf_free(tp_buf *b);

/* The command line for `req`: the marker wrapper, cd, env and, with
 * become_user, sudo. NULL on allocation failure or an invalid env entry
 * (the message goes into err). Transferred: free with api->free. */
char *tp_wrap_command(const opsc_host_api *api, const char *command, const char *const *env,
                      const char *cwd, const char *become_user, bool become_password, char *err,
                      size_t errlen);

/* The command that stops process group `pgid`: TERM, up to `grace_ms` to
 * exit, then KILL; run through sudo when `become_user` is set. */
char *tp_kill_command(const opsc_host_api *api, long pgid, unsigned grace_ms,
                      const char *become_user, bool become_password);

/* Watches the stream that carries the marker. Feed it output until it says
 * the marker was seen; bytes before the marker are held back (sudo noise,
 * rc-file chatter) and released with the rest afterwards. */
typedef struct tp_marker {
    char held[4096];
    size_t nheld;
    bool seen;    /* the marker line was found and removed */
    bool gave_up; /* more than `held` bytes came first: passed through, no pgid */
    long pgid;
    char ident[64];     /* "<start> <boot>" after the pgid, or "" */
    bool sudo_rejected; /* sudo said the password was wrong */
} tp_marker;

/* Feed `len` bytes of the marker stream; `emit` receives, in order, every
 * byte that is not the marker line (maybe later, once the line is known). */
typedef void (*tp_emit_fn)(void *ud, const char *data, size_t len);
void tp_marker_feed(tp_marker *m, const char *data, size_t len, tp_emit_fn emit, void *ud);
/* The stream ended or the command ended: release anything held. */
void tp_marker_flush(tp_marker *m, tp_emit_fn emit, void *ud);

/* SHA-256 as lowercase hex; `hex` has 65 bytes. */
void tp_hex(const unsigned char *bin, size_t n, char *hex);

/* Validate an "NAME=value" env entry: NAME is [A-Za-z_][A-Za-z0-9_]*. */
bool tp_env_valid(const char *entry);

#endif
