/* run_logs_read.c - run log chunks read back: pages per target, windows in sequence order (SSE). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "run_read.h"

typedef struct chunk {
    uint32_t idx;
    uint64_t first, last;
    const char *json; /* into the map: valid in the transaction */
    size_t len;
} chunk;

/* Key "<run>/<idx>/<first>", value "<last>\n[...]". */
static bool chunk_parse(const void *key, size_t klen, const void *val, size_t vlen, chunk *c)
{
    char k[96], head[24];
    if (klen >= sizeof(k))
        return false;
    memcpy(k, key, klen);
    k[klen] = '\0';
    const char *slash = strchr(k, '/');
    if (!slash || sscanf(slash + 1, "%" SCNu32 "/%" SCNu64, &c->idx, &c->first) != 2)
        return false;
    const char *nl = memchr(val, '\n', vlen < sizeof(head) ? vlen : sizeof(head));
    if (!nl)
        return false;
    size_t hl = (size_t)(nl - (const char *)val);
    memcpy(head, val, hl);
    head[hl] = '\0';
    c->last = strtoull(head, NULL, 10);
    c->json = nl + 1;
    c->len = vlen - hl - 1;
    return true;
}

static const char *target_id_of(const json_t *targets, uint32_t idx)
{
    return json_string_value(json_object_get(json_array_get(targets, idx), "target_id"));
}

/* ---- pages ---------------------------------------------------------------------------------- */

typedef struct page_ud {
    const run_log_query *q;
    uint32_t c_idx;
    uint64_t c_seq;
    bool has_cursor;
    json_t *items;
    bool more;
    int rc;
} page_ud;

static bool wanted(const run_log_query *q, json_t *rec)
{
    const char *stream = json_string_value(json_object_get(rec, "stream"));
    const char *step = json_string_value(json_object_get(rec, "step_id"));
    if (q->stream && (!stream || strcmp(stream, q->stream) != 0))
        return false;
    return !q->step_id || (step && strcmp(step, q->step_id) == 0);
}

static int page_chunk(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    page_ud *u = ud;
    chunk c;
    if (!chunk_parse(key, klen, val, vlen, &c))
        return 0;
    if (u->has_cursor && (c.idx < u->c_idx || (c.idx == u->c_idx && c.last <= u->c_seq)))
        return 0;
    json_t *recs = json_loadb(c.json, c.len, 0, NULL);
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        uint64_t seq = (uint64_t)json_integer_value(json_object_get(r, "seq"));
        if (u->has_cursor && c.idx == u->c_idx && seq <= u->c_seq)
            continue;
        if (!wanted(u->q, r))
            continue;
        if (json_array_size(u->items) == u->q->limit) {
            u->more = true;
            break;
        }
        json_object_set_new(r, "target_id", json_string(target_id_of(u->q->targets, c.idx)));
        json_object_set_new(r, "target_index", json_integer(c.idx));
        json_array_append(u->items, r);
    }
    json_decref(recs);
    return u->more ? 1 : 0;
}

int run_log_page(store_txn *txn, const run_log_query *q, json_t **items, char next[48])
{
    page_ud u = {q, 0, 0, false, json_array(), false, 0};
    char prefix[64];
    next[0] = '\0';
    if (q->cursor && *q->cursor) {
        if (sscanf(q->cursor, "%" SCNu32 ".%" SCNu64, &u.c_idx, &u.c_seq) != 2) {
            json_decref(u.items);
            return OPSC_EINVAL;
        }
        u.has_cursor = true;
    }
    if (q->target >= 0)
        snprintf(prefix, sizeof(prefix), "%s/%06ld/", q->run_id, q->target);
    else
        snprintf(prefix, sizeof(prefix), "%s/", q->run_id);
    int rc = store_kv_scan(txn, "run_logs", prefix, strlen(prefix), page_chunk, &u);
    if (rc < 0) {
        json_decref(u.items);
        return rc;
    }
    json_t *last = json_array_get(u.items, json_array_size(u.items) - 1);
    if (u.more && last)
        snprintf(next, 48, "%" PRId64 ".%" PRId64,
                 (int64_t)json_integer_value(json_object_get(last, "target_index")),
                 (int64_t)json_integer_value(json_object_get(last, "seq")));
    *items = u.items;
    return 0;
}

/* ---- windows in sequence order -------------------------------------------------------------- */

typedef struct win_ud {
    uint64_t after;
    chunk *v;
    size_t n, cap;
} win_ud;

static int win_chunk(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    win_ud *w = ud;
    chunk c;
    if (!chunk_parse(key, klen, val, vlen, &c) || c.last <= w->after)
        return 0;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        chunk *v = realloc(w->v, cap * sizeof(*v));
        if (!v)
            return OPSC_ENOMEM;
        w->v = v;
        w->cap = cap;
    }
    w->v[w->n++] = c;
    return 0;
}

static int by_first(const void *a, const void *b)
{
    uint64_t x = ((const chunk *)a)->first, y = ((const chunk *)b)->first;
    return x < y ? -1 : x > y;
}

static int by_seq(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "seq"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "seq"));
    return x < y ? -1 : x > y;
}

/* Records up to `upper` come only from the chunks taken: every chunk not
 * taken starts after it. So the window is complete and in order. */
int run_log_window(store_txn *txn, const char *run_id, const json_t *targets, uint64_t after,
                   size_t max_bytes, json_t **items, bool *more)
{
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "%s/", run_id);
    win_ud w = {after, NULL, 0, 0};
    int rc = store_kv_scan(txn, "run_logs", prefix, strlen(prefix), win_chunk, &w);
    *items = json_array();
    *more = false;
    if (rc < 0 || w.n == 0) {
        free(w.v);
        return rc;
    }
    qsort(w.v, w.n, sizeof(*w.v), by_first);
    size_t take = 0, bytes = 0;
    while (take < w.n && (take == 0 || bytes + w.v[take].len <= max_bytes))
        bytes += w.v[take++].len;
    uint64_t upper = take < w.n ? w.v[take].first - 1 : UINT64_MAX;
    *more = take < w.n;
    json_t *all = json_array();
    for (size_t i = 0; i < take; i++) {
        json_t *recs = json_loadb(w.v[i].json, w.v[i].len, 0, NULL);
        size_t k;
        json_t *r;
        json_array_foreach(recs, k, r)
        {
            uint64_t seq = (uint64_t)json_integer_value(json_object_get(r, "seq"));
            if (seq <= after)
                continue;
            if (seq > upper) {
                *more = true;
                continue;
            }
            json_object_set_new(r, "target_id", json_string(target_id_of(targets, w.v[i].idx)));
            json_array_append(all, r);
        }
        json_decref(recs);
    }
    size_t n = json_array_size(all);
    json_t **v = malloc((n ? n : 1) * sizeof(*v));
    for (size_t i = 0; v && i < n; i++)
        v[i] = json_array_get(all, i);
    if (v)
        qsort(v, n, sizeof(*v), by_seq);
    for (size_t i = 0; v && i < n; i++)
        json_array_append(*items, v[i]);
    free(v);
    json_decref(all);
    free(w.v);
    return 0;
}

/* ---- the end of one target's log (notifications) ----------------------------------------- */

#define TAIL_CHUNKS 8

typedef struct tail_ud {
    chunk ring[TAIL_CHUNKS]; /* the last chunks seen; values point into the map */
    size_t n;
} tail_ud;

static int tail_chunk(const void *key, size_t klen, const void *val, size_t vlen, void *ud)
{
    tail_ud *t = ud;
    chunk c;
    if (chunk_parse(key, klen, val, vlen, &c))
        t->ring[t->n++ % TAIL_CHUNKS] = c;
    return 0;
}

static void tail_take(json_t *recs, const char *step_id, size_t max_lines, json_t *rev)
{
    for (size_t k = json_array_size(recs); k-- > 0 && json_array_size(rev) < max_lines;) {
        json_t *r = json_array_get(recs, k);
        const char *stream = json_string_value(json_object_get(r, "stream"));
        const char *step = json_string_value(json_object_get(r, "step_id"));
        const char *text = json_string_value(json_object_get(r, "text"));
        if (!text || !stream || (strcmp(stream, "stdout") && strcmp(stream, "stderr")))
            continue;
        if (step_id && (!step || strcmp(step, step_id) != 0))
            continue;
        json_array_append_new(rev, json_string(text));
    }
}

/* Reads the last chunks only: a long log costs a key walk, not a parse. The
 * chunks' values stay valid because nothing is written meanwhile. */
int run_log_tail(store_txn *txn, const char *run_id, uint32_t idx, const char *step_id,
                 size_t max_lines, json_t **lines)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "%s/%06" PRIu32 "/", run_id, idx);
    tail_ud *t = calloc(1, sizeof(*t));
    json_t *rev = json_array();
    int rc = t && rev ? store_kv_scan(txn, "run_logs", prefix, strlen(prefix), tail_chunk, t)
                      : OPSC_ENOMEM;
    size_t have = t ? (t->n < TAIL_CHUNKS ? t->n : TAIL_CHUNKS) : 0;
    for (size_t i = 0; rc == 0 && i < have && json_array_size(rev) < max_lines; i++) {
        const chunk *c = &t->ring[(t->n - 1 - i) % TAIL_CHUNKS];
        json_t *recs = json_loadb(c->json, c->len, 0, NULL);
        tail_take(recs, step_id, max_lines, rev);
        json_decref(recs);
    }
    free(t);
    *lines = json_array();
    for (size_t i = json_array_size(rev); rc == 0 && i-- > 0;)
        json_array_append(*lines, json_array_get(rev, i));
    json_decref(rev);
    return rc;
}
