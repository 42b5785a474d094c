/* password.h - slow salted password hashes (yescrypt via libxcrypt) and a bounded hashing queue.
 *
 * Hashing and verifying are deliberately slow (the cost is chosen so one
 * hash takes >= 50 ms and 2^(cost+...) memory): they block, so they run on
 * worker threads only, through a hash_queue that caps how many run at once
 * (each uses one core and tens of MiB) and how many may wait, so a flood of
 * logins costs at most the cores it is given and is refused beyond that.
 *
 * Thread: password_* functions are thread-safe and blocking (worker
 * threads). hash_queue_* run on the loop thread; the `work` function runs on
 * a worker thread, `after` on the loop thread.
 */
#ifndef OPSC_PASSWORD_H
#define OPSC_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define PASSWORD_HASH_MAX     256 /* a yescrypt hash is ~73 bytes; room for other schemes */
#define PASSWORD_MIN_LEN      8
#define PASSWORD_MAX_LEN      1024
#define PASSWORD_COST_DEFAULT 7 /* ~100 ms and 64 MiB on a 2020s x86 core */

/* Hash `password` with a fresh random salt and the yescrypt `cost` (1..11)
 * into `out`. 0, OPSC_EINVAL (cost), or OPSC_ECRYPTO. Blocking. */
int password_hash(const char *password, unsigned cost, char out[PASSWORD_HASH_MAX]);

/* True when `password` matches `hash` (compared in constant time). A
 * malformed `hash` never matches. Blocking, as slow as password_hash(). */
bool password_verify(const char *password, const char *hash);

/* A setting (salt + cost, no hash) for verifying against when the user does
 * not exist, so an unknown user costs the same time as a wrong password. */
int password_dummy_setting(unsigned cost, char out[PASSWORD_HASH_MAX]);

/* Policy for new passwords: PASSWORD_MIN_LEN..PASSWORD_MAX_LEN bytes, and
 * (min_score > 0) a strength of at least `min_score` on zxcvbn's scale of
 * 0 to 4 (guesses needed: < 10^3, < 10^6, < 10^8, < 10^10, more), where
 * `words` (NULL-terminated, may be NULL: the username, the display name...)
 * and "opsconductor" count as known to an attacker. 0 or OPSC_EINVAL with
 * the reason in err (never the password). Pure, any thread; up to ~10 ms
 * for the longest password. */
int password_policy_check(const char *password, int min_score, const char *const *words, char *err,
                          size_t errlen);
#define PASSWORD_MIN_SCORE_DEFAULT 3

/* ---- bounded hashing queue (loop thread) -------------------------------- */

typedef struct hash_queue hash_queue;

/* At most `max_running` jobs on worker threads at once, at most
 * `max_waiting` more queued. */
int hash_queue_new(hash_queue **out, uv_loop_t *loop, unsigned max_running, unsigned max_waiting);
/* Queue a job. OPSC_EBUSY when the queue is full (answer 503/429 with
 * Retry-After); otherwise `after` runs exactly once on the loop, with status
 * 0, or OPSC_ECANCELED when the queue closed before the job ran (`work`
 * then never ran). `ud` is borrowed until `after` returns. */
int hash_queue_submit(hash_queue *q, void (*work)(void *ud), void (*after)(void *ud, int status),
                      void *ud);
/* Jobs waiting + running (for metrics and tests). */
unsigned hash_queue_pending(const hash_queue *q);
/* Cancel the waiting jobs (their `after` runs with OPSC_ECANCELED before this
 * returns) and free the queue once the running ones are done (their `after`
 * still runs, on the loop, before the loop can close). */
void hash_queue_close(hash_queue *q);

#endif
