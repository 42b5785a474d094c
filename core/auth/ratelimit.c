/* ratelimit.c - per-key failure counters with exponential back-off in a bounded open-addressing
 * table. */
#include "ratelimit.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#define KEY_MAX 72 /* longer keys are truncated: usernames (64) and IPv6 text fit */

typedef struct rl_entry {
    char key[KEY_MAX]; /* "" marks a free slot */
    uint32_t failures;
    int64_t last_failure_ms;
    int64_t blocked_until_ms;
} rl_entry;

struct ratelimit {
    ratelimit_opts o;
    rl_entry *slots;
    size_t cap; /* power of two, >= 2 * max_entries */
    size_t n;
};

int ratelimit_new(ratelimit **out, const ratelimit_opts *opts)
{
    if (!opts || opts->max_entries == 0 || opts->base_delay_ms <= 0 ||
        opts->max_delay_ms < opts->base_delay_ms)
        return OPSC_EINVAL;
    ratelimit *rl = calloc(1, sizeof(*rl));
    if (!rl)
        return OPSC_ENOMEM;
    rl->o = *opts;
    rl->cap = 16;
    while (rl->cap < 2 * opts->max_entries)
        rl->cap *= 2;
    rl->slots = calloc(rl->cap, sizeof(*rl->slots));
    if (!rl->slots) {
        free(rl);
        return OPSC_ENOMEM;
    }
    *out = rl;
    return 0;
}

void ratelimit_free(ratelimit *rl)
{
    if (!rl)
        return;
    free(rl->slots);
    free(rl);
}

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void normalize(const char *key, char out[KEY_MAX])
{
    size_t n = strlen(key);
    if (n >= KEY_MAX)
        n = KEY_MAX - 1;
    memcpy(out, key, n);
    out[n] = '\0';
    if (n == 0) { /* "" marks free slots: map the empty key elsewhere */
        out[0] = '\x01';
        out[1] = '\0';
    }
}

/* Slot holding `key`, or the free slot where it would go. */
static rl_entry *probe(ratelimit *rl, const char *key)
{
    size_t i = (size_t)hash_key(key) & (rl->cap - 1);
    while (rl->slots[i].key[0] && strcmp(rl->slots[i].key, key) != 0)
        i = (i + 1) & (rl->cap - 1);
    return &rl->slots[i];
}

static bool forgettable(const ratelimit *rl, const rl_entry *e, int64_t now)
{
    return e->blocked_until_ms <= now && now - e->last_failure_ms >= rl->o.forget_after_ms;
}

/* Rebuild the table without forgotten keys; when that is not enough, also
 * without the keys that block nothing right now. When every key blocks, new
 * keys go untracked until some expire (the per-user limit still holds). */
static void compact(ratelimit *rl, int64_t now)
{
    rl_entry *old = rl->slots;
    rl_entry *fresh = calloc(rl->cap, sizeof(*fresh));
    if (!fresh)
        return;
    size_t live = 0;
    for (size_t i = 0; i < rl->cap; i++)
        live += old[i].key[0] && !forgettable(rl, &old[i], now);
    bool drop_idle = live >= rl->o.max_entries;
    rl->slots = fresh;
    rl->n = 0;
    for (size_t i = 0; i < rl->cap && rl->n < rl->o.max_entries; i++) {
        rl_entry *e = &old[i];
        if (!e->key[0] || forgettable(rl, e, now) || (drop_idle && e->blocked_until_ms <= now))
            continue;
        *probe(rl, e->key) = *e;
        rl->n++;
    }
    free(old);
}

int64_t ratelimit_check(ratelimit *rl, const char *key, int64_t now_ms)
{
    char k[KEY_MAX];
    normalize(key, k);
    rl_entry *e = probe(rl, k);
    if (!e->key[0] || e->blocked_until_ms <= now_ms)
        return 0;
    return e->blocked_until_ms - now_ms;
}

static int64_t delay_for(const ratelimit *rl, uint32_t failures)
{
    uint32_t over = failures - rl->o.free_failures; /* >= 1 */
    int64_t d = rl->o.base_delay_ms;
    for (uint32_t i = 1; i < over && d < rl->o.max_delay_ms; i++)
        d *= 2;
    return d < rl->o.max_delay_ms ? d : rl->o.max_delay_ms;
}

void ratelimit_failure(ratelimit *rl, const char *key, int64_t now_ms)
{
    char k[KEY_MAX];
    normalize(key, k);
    rl_entry *e = probe(rl, k);
    if (!e->key[0]) {
        if (rl->n >= rl->o.max_entries) {
            compact(rl, now_ms);
            e = probe(rl, k);
        }
        if (rl->n >= rl->o.max_entries) /* everything blocks: nothing to drop */
            return;
        memset(e, 0, sizeof(*e));
        memcpy(e->key, k, sizeof(k));
        rl->n++;
    } else if (now_ms - e->last_failure_ms >= rl->o.forget_after_ms) {
        e->failures = 0;
    }
    if (e->failures < UINT32_MAX)
        e->failures++;
    e->last_failure_ms = now_ms;
    if (e->failures > rl->o.free_failures)
        e->blocked_until_ms = now_ms + delay_for(rl, e->failures);
}

/* Backward-shift deletion keeps linear probing chains intact. */
void ratelimit_reset(ratelimit *rl, const char *key)
{
    char k[KEY_MAX];
    normalize(key, k);
    rl_entry *e = probe(rl, k);
    if (!e->key[0])
        return;
    size_t i = (size_t)(e - rl->slots);
    e->key[0] = '\0';
    rl->n--;
    for (size_t j = (i + 1) & (rl->cap - 1); rl->slots[j].key[0]; j = (j + 1) & (rl->cap - 1)) {
        size_t home = (size_t)hash_key(rl->slots[j].key) & (rl->cap - 1);
        /* Move j back into the hole i when its home is not in (i, j]. */
        bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            rl->slots[i] = rl->slots[j];
            rl->slots[j].key[0] = '\0';
            i = j;
        }
    }
}

size_t ratelimit_size(const ratelimit *rl)
{
    return rl->n;
}
