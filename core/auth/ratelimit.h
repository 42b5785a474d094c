/* ratelimit.h - login throttling: exponential back-off per key (a username or a client address).
 *
 * Each key may fail `free_failures` times; every further failure blocks it
 * for base_delay * 2^(n-1), capped at max_delay. A key that has not failed
 * for `forget_after` is forgotten. Memory is bounded: beyond `max_entries`
 * the entries that block nothing are dropped first, then the oldest.
 *
 * Thread: loop thread only (no locking).
 */
#ifndef OPSC_RATELIMIT_H
#define OPSC_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct ratelimit ratelimit;

typedef struct ratelimit_opts {
    unsigned free_failures;  /* failures allowed before any delay */
    int64_t base_delay_ms;   /* first delay */
    int64_t max_delay_ms;    /* delays never exceed this */
    int64_t forget_after_ms; /* failures older than this are forgotten */
    size_t max_entries;      /* keys tracked at most */
} ratelimit_opts;

int ratelimit_new(ratelimit **out, const ratelimit_opts *opts);
void ratelimit_free(ratelimit *rl);

/* 0 when `key` may try now, else the milliseconds until it may. */
int64_t ratelimit_check(ratelimit *rl, const char *key, int64_t now_ms);
/* Record a failure of `key` at `now_ms`. */
void ratelimit_failure(ratelimit *rl, const char *key, int64_t now_ms);
/* Forget `key` (a successful login of that user). */
void ratelimit_reset(ratelimit *rl, const char *key);
/* Keys tracked now (tests, metrics). */
size_t ratelimit_size(const ratelimit *rl);

#endif
