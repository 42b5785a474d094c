/* tcp_rdns.c - a host's reverse name through uv_getnameinfo (the resolver runs on libuv's
 * threads), that can be given up on: the lookup itself cannot be stopped, so an orphaned one
 * frees itself when the resolver returns. */
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "tcp_internal.h"

struct trdns {
    uv_getnameinfo_t req;
    void (*cb)(void *ud, const char *name);
    void *ud; /* NULL once orphaned */
};

static void on_name(uv_getnameinfo_t *req, int status, const char *hostname, const char *service)
{
    (void)service;
    trdns *r = req->data;
    if (r->ud)
        r->cb(r->ud, status == 0 && hostname && *hostname ? hostname : NULL);
    tcp_host->free(r);
}

int trdns_start(uv_loop_t *loop, const struct sockaddr *sa, void (*cb)(void *ud, const char *name),
                void *ud, trdns **out)
{
    trdns *r = tcp_host->calloc(1, sizeof(*r));
    if (!r)
        return OPSC_ENOMEM;
    r->cb = cb;
    r->ud = ud;
    r->req.data = r;
    /* NI_NAMEREQD: no name is no name, not the address printed back. */
    if (uv_getnameinfo(loop, &r->req, on_name, sa, NI_NAMEREQD) < 0) {
        tcp_host->free(r);
        return OPSC_EIO;
    }
    *out = r;
    return 0;
}

void trdns_orphan(trdns *r)
{
    if (!r)
        return;
    r->ud = NULL;
    uv_cancel((uv_req_t *)&r->req); /* still queued: it ends at once, as cancelled */
}
