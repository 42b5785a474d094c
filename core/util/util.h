/* util.h - small helpers every core module uses: ids, time, files, randomness.
 * Thread: all functions are thread-safe. */
#ifndef OPSC_UTIL_H
#define OPSC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#define UUID_STR_LEN 37 /* 36 characters + NUL */

/* ---- randomness (rand.c) --------------------------------------------- */
/* Fill buf from the kernel CSPRNG (getrandom); 0 or -errno. */
int rand_bytes(void *buf, size_t n);
/* n random bytes as lowercase hex into out (2n+1 bytes). */
int rand_hex(char *out, size_t nbytes);

/* ---- ids (uuid.c) ------------------------------------------------------ */
/* A new UUIDv7 (RFC 9562): 48-bit Unix ms, then random bits, with a counter
 * in rand_a so ids made in one millisecond by one process still sort. */
int uuid7_new(char out[UUID_STR_LEN]);
/* Generate for a given time (tests, backfills). */
int uuid7_new_at(char out[UUID_STR_LEN], int64_t unix_ms);
/* True for canonical lowercase or uppercase 8-4-4-4-12 hex text. */
bool uuid_valid(const char *s);
/* Milliseconds encoded in a UUIDv7, or -1. */
int64_t uuid7_time_ms(const char *s);

/* ---- time (timefmt.c) -------------------------------------------------- */
/* Wall clock, ms since epoch. Tests may replace it with clock_set_source(). */
int64_t clock_now_ms(void);
void clock_set_source(int64_t (*fn)(void));
/* Monotonic milliseconds (timeouts, latency). */
uint64_t clock_mono_ms(void);
/* A condition variable whose timed waits count on the monotonic clock (a wall-clock jump
 * neither cuts nor stretches them); deadlines come from clock_gettime(CLOCK_MONOTONIC). */
void cond_init_monotonic(pthread_cond_t *cv);
/* RFC 3339 UTC with milliseconds: "2026-11-27T22:44:22.123Z" (25 bytes + NUL). */
#define RFC3339_LEN 32
void rfc3339_format(int64_t unix_ms, char out[RFC3339_LEN]);
/* Parse RFC 3339 with any offset ("Z", "+05:45"), optional fraction. 0 or OPSC_EINVAL. */
int rfc3339_parse(const char *s, int64_t *unix_ms);

/* ---- files (fsutil.c) ---------------------------------------------------- */
/* mkdir -p with `mode` for created directories. 0 or -errno. */
int fs_mkdir_p(const char *path, mode_t mode);
/* Write `data` to `path` atomically (temp file, fsync, rename) with `mode`. */
int fs_write_file(const char *path, const void *data, size_t len, mode_t mode);
/* Read a whole small file (at most `max` bytes) into a NUL-terminated heap
 * buffer; *len excludes the NUL. OPSC_E2BIG when larger. Caller frees. */
int fs_read_file(const char *path, size_t max, char **out, size_t *len);
/* Join a directory and a name into buf; OPSC_E2BIG if it does not fit. */
int fs_join(char *buf, size_t n, const char *dir, const char *name);

/* ---- secrets in memory ------------------------------------------------------ */
/* Zero memory in a way the compiler cannot drop. */
void secure_zero(void *p, size_t n);
/* Constant-time comparison of equal-length buffers: true when equal. */
bool ct_equal(const void *a, const void *b, size_t n);

#endif
