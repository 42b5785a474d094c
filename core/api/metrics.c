/* metrics.c - HTTP request counters and latency histograms, collectors, Prometheus text. */
#include "metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "build_config.h"

/* Upper bounds of the latency buckets, seconds (+Inf is implicit). */
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

/* One (method, route) pair: its histogram and, per status, a counter. */
typedef struct series {
    char *method, *route;
    uint64_t hash;
    uint64_t le[NBUCKETS]; /* non-cumulative; summed at render */
    uint64_t count;
    double sum;
    struct status_count {
        int status;
        uint64_t n;
    } * statuses;
    size_t nstatuses;
} series;

typedef struct collector {
    metrics_collect_fn fn;
    void *ud;
} collector;

struct metrics {
    series **table; /* open addressing on (method, route) */
    size_t cap, n;
    collector *collectors;
    size_t ncollectors;
};

int metrics_new(metrics **out)
{
    metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return OPSC_ENOMEM;
    m->cap = 64;
    m->table = calloc(m->cap, sizeof(*m->table));
    if (!m->table) {
        free(m);
        return OPSC_ENOMEM;
    }
    *out = m;
    return 0;
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++) {
        series *s = m->table[i];
        if (!s)
            continue;
        free(s->method);
        free(s->route);
        free(s->statuses);
        free(s);
    }
    free(m->table);
    free(m->collectors);
    free(m);
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (h ^ 0xff) * 1099511628211ull;
}

static series **slot(metrics *m, uint64_t hash, const char *method, const char *route)
{
    size_t i = hash & (m->cap - 1);
    for (;; i = (i + 1) & (m->cap - 1)) {
        series *s = m->table[i];
        if (!s ||
            (s->hash == hash && strcmp(s->method, method) == 0 && strcmp(s->route, route) == 0))
            return &m->table[i];
    }
}

static int grow(metrics *m)
{
    size_t cap = m->cap * 2;
    series **old = m->table, **t = calloc(cap, sizeof(*t));
    if (!t)
        return OPSC_ENOMEM;
    size_t oldcap = m->cap;
    m->table = t;
    m->cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i])
            *slot(m, old[i]->hash, old[i]->method, old[i]->route) = old[i];
    free(old);
    return 0;
}

static series *find_or_add(metrics *m, const char *method, const char *route)
{
    uint64_t hash = fnv(fnv(14695981039346656037ull, method), route);
    series **sp = slot(m, hash, method, route);
    if (*sp)
        return *sp;
    if ((m->n + 1) * 4 > m->cap * 3) {
        if (grow(m) < 0)
            return NULL;
        sp = slot(m, hash, method, route);
    }
    series *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->method = strdup(method);
    s->route = strdup(route);
    s->hash = hash;
    if (!s->method || !s->route) {
        free(s->method);
        free(s->route);
        free(s);
        return NULL;
    }
    *sp = s;
    m->n++;
    return s;
}

static void count_status(series *s, int status)
{
    for (size_t i = 0; i < s->nstatuses; i++) {
        if (s->statuses[i].status == status) {
            s->statuses[i].n++;
            return;
        }
    }
    struct status_count *v = realloc(s->statuses, (s->nstatuses + 1) * sizeof(*v));
    if (!v)
        return;
    s->statuses = v;
    s->statuses[s->nstatuses++] = (struct status_count){status, 1};
}

void metrics_http_observe(metrics *m, const char *method, const char *route, int status,
                          double seconds)
{
    series *s = find_or_add(m, method, route);
    if (!s)
        return;
    count_status(s, status);
    size_t b = 0;
    while (b < NBUCKETS && seconds > buckets[b])
        b++;
    if (b < NBUCKETS)
        s->le[b]++;
    s->count++;
    s->sum += seconds;
}

void metrics_hist_observe(metrics_hist *h, double value)
{
    size_t b = 0;
    while (b < h->nbounds && value > h->bounds[b])
        b++;
    if (b < h->nbounds)
        h->le[b]++;
    h->count++;
    h->sum += value;
}

void metrics_hist_render(strbuf *out, const char *name, const char *labels, const metrics_hist *h)
{
    const char *sep = *labels ? "," : "";
    uint64_t cum = 0;
    for (size_t b = 0; b < h->nbounds; b++) {
        cum += h->le[b];
        sb_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, h->bounds[b],
                  (unsigned long long)cum);
    }
    sb_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
              (unsigned long long)h->count);
    const char *open = *labels ? "{" : "", *close = *labels ? "}" : "";
    sb_printf(out, "%s_sum%s%s%s %.9g\n%s_count%s%s%s %llu\n", name, open, labels, close, h->sum,
              name, open, labels, close, (unsigned long long)h->count);
}

int metrics_add_collector(metrics *m, metrics_collect_fn fn, void *ud)
{
    collector *v = realloc(m->collectors, (m->ncollectors + 1) * sizeof(*v));
    if (!v)
        return OPSC_ENOMEM;
    m->collectors = v;
    m->collectors[m->ncollectors++] = (collector){fn, ud};
    return 0;
}

/* Label values escape backslash, double quote and newline. */
static void put_label(strbuf *out, const char *name, const char *value)
{
    sb_puts(out, name);
    sb_append(out, "=\"", 2);
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            sb_append(out, "\\", 1);
        if (*p == '\n')
            sb_append(out, "\\n", 2);
        else
            sb_append(out, p, 1);
    }
    sb_append(out, "\"", 1);
}

static void put_labels(strbuf *out, const series *s)
{
    put_label(out, "method", s->method);
    sb_append(out, ",", 1);
    put_label(out, "route", s->route);
}

void metrics_family(strbuf *out, const char *name, const char *type, const char *help)
{
    sb_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_single(strbuf *out, const char *name, const char *type, const char *help, double value)
{
    metrics_family(out, name, type, help);
    sb_printf(out, "%s %.12g\n", name, value);
}

static int cmp_series(const void *a, const void *b)
{
    const series *x = *(series *const *)a, *y = *(series *const *)b;
    int c = strcmp(x->route, y->route);
    return c ? c : strcmp(x->method, y->method);
}

/* Series in a stable order, so successive scrapes diff cleanly. */
static series **sorted(metrics *m)
{
    series **v = malloc((m->n + 1) * sizeof(*v));
    if (!v)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->table[i])
            v[k++] = m->table[i];
    qsort(v, k, sizeof(*v), cmp_series);
    return v;
}

static void render_requests(strbuf *out, series **v, size_t n)
{
    metrics_family(out, "opsc_http_requests_total", "counter",
                   "HTTP requests answered, by method, route pattern and status.");
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < v[i]->nstatuses; j++) {
            sb_puts(out, "opsc_http_requests_total{");
            put_labels(out, v[i]);
            sb_printf(out, ",status=\"%d\"} %llu\n", v[i]->statuses[j].status,
                      (unsigned long long)v[i]->statuses[j].n);
        }
    }
}

static void render_latency(strbuf *out, series **v, size_t n)
{
    const char *name = "opsc_http_request_duration_seconds";
    metrics_family(out, name, "histogram",
                   "Time from a request's first byte to its answer being queued.");
    for (size_t i = 0; i < n; i++) {
        const series *s = v[i];
        uint64_t cum = 0;
        for (size_t b = 0; b <= NBUCKETS; b++) {
            cum += b < NBUCKETS ? s->le[b] : 0;
            sb_printf(out, "%s_bucket{", name);
            put_labels(out, s);
            if (b < NBUCKETS)
                sb_printf(out, ",le=\"%g\"} %llu\n", buckets[b], (unsigned long long)cum);
            else
                sb_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)s->count);
        }
        sb_printf(out, "%s_sum{", name);
        put_labels(out, s);
        sb_printf(out, "} %.9g\n%s_count{", s->sum, name);
        put_labels(out, s);
        sb_printf(out, "} %llu\n", (unsigned long long)s->count);
    }
}

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

static long long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long long size = 0, resident = -1;
    if (fscanf(f, "%lld %lld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static void render_process(strbuf *out)
{
    metrics_family(out, "opsc_build_info", "gauge", "Version of the running daemon.");
    sb_puts(out, "opsc_build_info{");
    put_label(out, "version", OPSC_VERSION);
    sb_puts(out, "} 1\n");
    long long rss = rss_bytes();
    if (rss >= 0) {
        metrics_family(out, "process_resident_memory_bytes", "gauge", "Resident memory size.");
        sb_printf(out, "process_resident_memory_bytes %lld\n", rss);
    }
    long fds = count_fds();
    if (fds >= 0) {
        metrics_family(out, "process_open_fds", "gauge", "Open file descriptors.");
        sb_printf(out, "process_open_fds %ld\n", fds);
    }
}

void metrics_render(metrics *m, strbuf *out)
{
    render_process(out);
    series **v = sorted(m);
    if (v) {
        render_requests(out, v, m->n);
        render_latency(out, v, m->n);
        free(v);
    }
    for (size_t i = 0; i < m->ncollectors; i++)
        m->collectors[i].fn(out, m->collectors[i].ud);
}
