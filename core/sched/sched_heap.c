/* sched_heap.c - the scheduler's min-heap of next fires and its map of schedules by id. */
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "sched_internal.h"

int sched_grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t want = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, want * size);
    if (!p)
        return OPSC_ENOMEM;
    *arr = p;
    *cap = want;
    return 0;
}

/* ---- heap ----------------------------------------------------------------------------------- */

/* Simultaneous fires go in the order they were armed: stable, and cheaper
 * than comparing ids in a burst of ten thousand. */
static bool before(const sched_entry *a, const sched_entry *b)
{
    if (a->next_ms != b->next_ms)
        return a->next_ms < b->next_ms;
    return a->heap_seq < b->heap_seq;
}

static void place(sched *s, size_t i, sched_entry *e)
{
    s->heap[i] = e;
    e->heap_idx = i;
}

static void sift_up(sched *s, size_t i)
{
    sched_entry *e = s->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(e, s->heap[p]))
            break;
        place(s, i, s->heap[p]);
        i = p;
    }
    place(s, i, e);
}

static void sift_down(sched *s, size_t i)
{
    sched_entry *e = s->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const sched_entry *best = e;
        if (l < s->heap_n && before(s->heap[l], best))
            m = l, best = s->heap[l];
        if (l + 1 < s->heap_n && before(s->heap[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        place(s, i, s->heap[m]);
        i = m;
    }
    place(s, i, e);
}

int sched_heap_push(sched *s, sched_entry *e)
{
    int rc = sched_grow((void **)&s->heap, &s->heap_cap, s->heap_n, sizeof(*s->heap));
    if (rc < 0)
        return rc;
    e->heap_seq = ++s->heap_seq;
    place(s, s->heap_n++, e);
    sift_up(s, e->heap_idx);
    return 0;
}

void sched_heap_remove(sched *s, sched_entry *e)
{
    size_t i = e->heap_idx;
    if (i == SCHED_NOT_ARMED)
        return;
    e->heap_idx = SCHED_NOT_ARMED;
    sched_entry *last = s->heap[--s->heap_n];
    if (i == s->heap_n)
        return;
    place(s, i, last);
    sift_up(s, i);
    sift_down(s, last->heap_idx);
}

void sched_heap_fix(sched *s, sched_entry *e)
{
    e->heap_seq = ++s->heap_seq;
    sift_up(s, e->heap_idx);
    sift_down(s, e->heap_idx);
}

sched_entry *sched_heap_top(sched *s)
{
    return s->heap_n ? s->heap[0] : NULL;
}

/* ---- map ------------------------------------------------------------------------------------ */

static size_t hash_id(const char *id)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return (size_t)h;
}

static int rehash(sched *s)
{
    size_t n = s->nbuckets ? s->nbuckets * 2 : 64;
    sched_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return OPSC_ENOMEM;
    for (size_t i = 0; i < s->nbuckets; i++) {
        sched_entry *e = s->buckets[i], *next;
        for (; e; e = next) {
            next = e->map_next;
            size_t h = hash_id(e->def.id) & (n - 1);
            e->map_next = b[h];
            b[h] = e;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
    return 0;
}

int sched_map_put(sched *s, sched_entry *e)
{
    if (s->count >= s->nbuckets) {
        int rc = rehash(s);
        if (rc < 0)
            return rc;
    }
    size_t h = hash_id(e->def.id) & (s->nbuckets - 1);
    e->map_next = s->buckets[h];
    s->buckets[h] = e;
    s->count++;
    return 0;
}

sched_entry *sched_map_get(sched *s, const char *id)
{
    if (!s->nbuckets || !id)
        return NULL;
    sched_entry *e = s->buckets[hash_id(id) & (s->nbuckets - 1)];
    while (e && strcmp(e->def.id, id) != 0)
        e = e->map_next;
    return e;
}

void sched_map_del(sched *s, sched_entry *e)
{
    sched_entry **p = &s->buckets[hash_id(e->def.id) & (s->nbuckets - 1)];
    while (*p && *p != e)
        p = &(*p)->map_next;
    if (*p) {
        *p = e->map_next;
        s->count--;
    }
}

void sched_entry_free(sched_entry *e)
{
    if (!e)
        return;
    sched_def_clear(&e->def);
    free(e->active);
    free(e->queue);
    free(e);
}
