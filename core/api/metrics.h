/* metrics.h - counters and histograms rendered in the Prometheus text format.
 *
 * Modules report what they measure; /metrics renders it. The HTTP server
 * observes every request (route pattern, method, status, latency); other
 * modules add a collector that appends their own families at render time.
 * Thread: loop thread only.
 */
#ifndef OPSC_METRICS_H
#define OPSC_METRICS_H

#include <stdint.h>

#include "strbuf.h"

typedef struct metrics metrics;

int metrics_new(metrics **out);
void metrics_free(metrics *m);

/* One finished HTTP request. `route` is the pattern ("/api/v1/users/{id}") or
 * "unmatched", so label cardinality stays bounded. */
void metrics_http_observe(metrics *m, const char *method, const char *route, int status,
                          double seconds);

/* A collector appends complete metric families (# HELP, # TYPE, samples). */
typedef void (*metrics_collect_fn)(strbuf *out, void *ud);
int metrics_add_collector(metrics *m, metrics_collect_fn fn, void *ud);

/* Render everything into `out`: build info, process RSS and open fds, the
 * HTTP families, then each collector's families in the order added. */
void metrics_render(metrics *m, strbuf *out);

/* For collectors: the "# HELP" and "# TYPE" lines of a family ... */
void metrics_family(strbuf *out, const char *name, const char *type, const char *help);
/* ... or a whole family with one unlabelled sample. */
void metrics_single(strbuf *out, const char *name, const char *type, const char *help,
                    double value);

/* A histogram a collector keeps: fixed upper bounds (+Inf implicit). */
#define METRICS_HIST_MAX 16
typedef struct metrics_hist {
    const double *bounds; /* static, increasing; at most METRICS_HIST_MAX */
    size_t nbounds;
    uint64_t le[METRICS_HIST_MAX]; /* non-cumulative; summed at render */
    uint64_t count;
    double sum;
} metrics_hist;

void metrics_hist_observe(metrics_hist *h, double value);
/* The _bucket, _sum and _count samples of `h` under `name`; `labels` is
 * "" or "k=\"v\"" already escaped (bounded values chosen by the caller). */
void metrics_hist_render(strbuf *out, const char *name, const char *labels, const metrics_hist *h);

#endif
