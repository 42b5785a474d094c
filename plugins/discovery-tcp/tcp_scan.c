/* tcp_scan.c - a scan's engine: the token bucket, connections in flight, deadlines, the end.
 *
 * Addresses are walked in order; each gets its ports connected one connection attempt at a
 * time, as tokens (rate per second, bursts of 100 ms) and free slots (concurrency) allow. All
 * waits of a scan last timeout_ms, so one FIFO ordered by deadline and one timer serve them
 * all. Nothing blocks: connects, reads, the Identify requests, ICMP and the reverse lookups
 * all complete on the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcp_internal.h"

/* ---- deadlines --------------------------------------------------------------------------------
 */

static void on_deadline(uv_timer_t *t);

static void arm_deadline(tscan *s)
{
    if (s->ending)
        return;
    if (!s->fifo_head) {
        uv_timer_stop(&s->deadline);
        return;
    }
    uint64_t now = uv_now(s->loop), due = s->fifo_head->deadline;
    uv_timer_start(&s->deadline, on_deadline, due > now ? due - now : 0, 0);
}

void twait_push(tscan *s, twait *w)
{
    w->deadline = uv_now(s->loop) + s->timeout_ms;
    w->next = NULL;
    w->prev = s->fifo_tail;
    if (s->fifo_tail)
        s->fifo_tail->next = w;
    else
        s->fifo_head = w;
    s->fifo_tail = w;
    w->queued = true;
    if (s->fifo_head == w)
        arm_deadline(s);
}

void twait_remove(tscan *s, twait *w)
{
    if (!w->queued)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        s->fifo_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        s->fifo_tail = w->prev;
    w->queued = false;
    w->prev = w->next = NULL;
}

static void on_deadline(uv_timer_t *t)
{
    tscan *s = t->data;
    uint64_t now = uv_now(s->loop);
    while (!s->ending && s->fifo_head && s->fifo_head->deadline <= now) {
        twait *w = s->fifo_head;
        twait_remove(s, w);
        if (w->is_conn) {
            tconn_timeout((tconn *)w);
        } else { /* no ICMP echo reply in time */
            thost *h = (thost *)w;
            h->pending--;
            thost_step(h);
        }
    }
    arm_deadline(s);
}

/* ---- the bucket and the pump ---------------------------------------------------------------- */

static void on_pump(uv_timer_t *t)
{
    tscan_pump(t->data);
}

static void refill(tscan *s)
{
    uint64_t now = uv_hrtime();
    double burst = s->rate / 10.0 < 1.0 ? 1.0 : s->rate / 10.0; /* 100 ms: loop stalls catch up */
    if (s->bucket_ns == 0)
        s->tokens = 1.0;
    else
        s->tokens += (double)(now - s->bucket_ns) * s->rate / 1e9;
    if (s->tokens > burst)
        s->tokens = burst;
    s->bucket_ns = now;
}

static bool exhausted(tscan *s)
{
    while (s->bi < s->nblocks && s->off >= s->blocks[s->bi].count) {
        s->bi++;
        s->off = 0;
    }
    return s->bi >= s->nblocks;
}

/* The host whose ports are started next, made from the next address. */
static thost *current(tscan *s)
{
    if (s->cur || exhausted(s))
        return s->cur;
    thost *h = thost_new(s);
    if (!h)
        return NULL;
    tscan_next_addr(s, &h->sa, h->addr, sizeof(h->addr));
    s->cur = h;
    if (s->icmp_sock && ticmp_send(s->icmp_sock, h) == 0) {
        h->pending++;
        twait_push(s, &h->icmp_wait);
    }
    return h;
}

static bool out_of_fds(int rc)
{
    return rc == UV_EMFILE || rc == UV_ENFILE || rc == UV_ENOBUFS;
}

void tscan_pump(tscan *s)
{
    if (s->ending)
        return;
    refill(s);
    while (s->inflight < s->concurrency && !s->fd_wait) {
        thost *h = current(s);
        if (!h)
            break;
        if (s->tokens < 1.0) {
            double ms = (1.0 - s->tokens) * 1000.0 / s->rate;
            uv_timer_start(&s->pump, on_pump, ms < 1.0 ? 1 : (uint64_t)ms, 0);
            return;
        }
        int pi = (int)h->next_port++;
        if (h->next_port == s->nports)
            s->cur = NULL;
        int rc = tconn_start(h, pi);
        if (rc < 0 && out_of_fds(rc)) {
            h->next_port--;
            s->cur = h;
            if (s->inflight <= 1) /* only the attempt that failed */
                tscan_end(s, OPSC_EIO, "out of file descriptors: lower the concurrency");
            s->fd_wait = true; /* a connection that closes frees one */
            return;
        }
        s->tokens -= 1.0;
        s->probes++;
    }
    if (!s->cur && !s->hosts && exhausted(s))
        tscan_end(s, 0, NULL);
}

/* ---- the end --------------------------------------------------------------------------------- */

/* The host may still ask for progress inside `done`: the scan goes after it. */
static void finish(tscan *s)
{
    while (s->hosts)
        thost_free(s->hosts);
    tcp_scan_over(s);
    if (s->done)
        s->done(s->ud, s->status, s->status && s->error[0] ? s->error : NULL);
    json_decref(s->http_ports);
    json_decref(s->https_ports);
    tcp_host->free(s->blocks);
    tcp_host->free(s->ports);
    tcp_host->free(s);
}

void tscan_maybe_finish(tscan *s)
{
    if (s->ending && s->handles == 0 && !s->icmp_sock)
        finish(s);
}

void tscan_handle_closed(uv_handle_t *h)
{
    tscan *s = h->data;
    if (h->type == UV_TIMER && h != (uv_handle_t *)&s->pump && h != (uv_handle_t *)&s->deadline)
        tcp_host->free(h); /* a host's name lookup timer */
    s->handles--;
    tscan_maybe_finish(s);
}

/* Everything outstanding stops; hosts not yet reported are dropped (a cancel). */
static void abort_hosts(tscan *s)
{
    for (thost *h = s->hosts; h; h = h->next) {
        twait_remove(s, &h->icmp_wait);
        if (h->wsman_req && s->wsman)
            twsman_abort(s->wsman, h->wsman_req);
        h->wsman_req = NULL;
        if (h->rdns)
            trdns_orphan(h->rdns);
        h->rdns = NULL;
        if (h->rdns_timer) {
            h->rdns_timer->data = s;
            uv_close((uv_handle_t *)h->rdns_timer, tscan_handle_closed);
        }
        h->rdns_timer = NULL;
    }
}

void tscan_end(tscan *s, int status, const char *error)
{
    if (s->ending)
        return;
    s->ending = true;
    s->status = status;
    if (error)
        snprintf(s->error, sizeof(s->error), "%s", error);
    uv_close((uv_handle_t *)&s->pump, tscan_handle_closed);
    uv_close((uv_handle_t *)&s->deadline, tscan_handle_closed);
    while (s->fifo_head) {
        twait *w = s->fifo_head;
        twait_remove(s, w);
        if (w->is_conn)
            tconn_abort((tconn *)w);
    }
    abort_hosts(s);
    if (s->icmp_sock)
        ticmp_close(s->icmp_sock); /* s->icmp_sock is cleared once its poll has closed */
    twsman_free(s->wsman);         /* its requests are the host's transfers: taken back at once */
    s->wsman = NULL;
}
