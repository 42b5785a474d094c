/* tcp_host.c - one address of a scan: its ports, then its name, then its report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcp_internal.h"

thost *thost_new(tscan *s)
{
    thost *h = tcp_host->calloc(1, sizeof(*h));
    uint8_t *arrays = tcp_host->calloc(2, s->nports);
    if (!h || !arrays) {
        tcp_host->free(h);
        tcp_host->free(arrays);
        return NULL;
    }
    h->s = s;
    h->state = arrays;
    h->svc = arrays + s->nports;
    h->next = s->hosts;
    if (s->hosts)
        s->hosts->prev = h;
    s->hosts = h;
    return h;
}

void thost_free(thost *h)
{
    tscan *s = h->s;
    twait_remove(s, &h->icmp_wait);
    if (h->prev)
        h->prev->next = h->next;
    else
        s->hosts = h->next;
    if (h->next)
        h->next->prev = h->prev;
    if (s->cur == h)
        s->cur = NULL;
    tcp_host->free(h->state);
    tcp_host->free(h);
}

int thost_wsman_kind(const tscan *s, int port)
{
    size_t i;
    json_t *p;
    json_array_foreach(s->http_ports, i, p) if (json_integer_value(p) == s->ports[port]) return 1;
    json_array_foreach(s->https_ports, i, p) if (json_integer_value(p) == s->ports[port]) return 2;
    return 0;
}

static bool found(const thost *h)
{
    for (size_t i = 0; i < h->s->nports; i++)
        if (h->state[i] == TP_OPEN)
            return true;
    return h->icmp_reply;
}

static void rdns_over(thost *h)
{
    if (h->rdns_timer) {
        h->rdns_timer->data = h->s; /* closed handles are counted on the scan */
        uv_close((uv_handle_t *)h->rdns_timer, tscan_handle_closed);
    }
    h->rdns_timer = NULL;
    h->rdns = NULL;
    h->pending--;
    thost_step(h);
}

static void on_name(void *ud, const char *name)
{
    thost *h = ud;
    if (name)
        snprintf(h->hostname, sizeof(h->hostname), "%s", name);
    rdns_over(h);
}

static void on_rdns_timeout(uv_timer_t *t)
{
    thost *h = t->data;
    trdns_orphan(h->rdns); /* the resolver keeps going; its answer is dropped */
    rdns_over(h);
}

/* The host's reverse name, time-boxed. */
static bool start_rdns(thost *h)
{
    tscan *s = h->s;
    uv_timer_t *t = tcp_host->alloc(sizeof(*t));
    if (!t || trdns_start(s->loop, (const struct sockaddr *)&h->sa, on_name, h, &h->rdns) < 0) {
        tcp_host->free(t);
        return false;
    }
    uv_timer_init(s->loop, t);
    s->handles++;
    t->data = h;
    h->rdns_timer = t;
    uv_timer_start(t, on_rdns_timeout, (uint64_t)s->cfg->rdns_timeout_ms, 0);
    h->pending++;
    return true;
}

void thost_step(thost *h)
{
    tscan *s = h->s;
    if (s->ending || h->pending > 0 || h->next_port < s->nports)
        return;
    bool any = found(h);
    if (any && s->rdns && !h->resolving) {
        h->resolving = true;
        if (start_rdns(h))
            return;
    }
    if (any)
        thost_report(h);
    s->ndone++;
    thost_free(h);
    tscan_pump(s);
}
