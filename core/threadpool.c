/* threadpool.c - blocking work on libuv's thread pool, leaving no OpenSSL state behind
 * (threadpool.h). */
#include "threadpool.h"

#include <stdlib.h>

#include <openssl/crypto.h>
#include <opsc/errors.h>

struct pool_work {
    uv_work_t req;
    void (*work)(void *ud);
    void (*after)(void *ud, int status);
    void *ud;
};

static void run(uv_work_t *req)
{
    struct pool_work *w = req->data;
    w->work(w->ud);
    OPENSSL_thread_stop();
}

static void done(uv_work_t *req, int status)
{
    struct pool_work *w = req->data;
    void (*after)(void *, int) = w->after;
    void *ud = w->ud;
    free(w); /* first: after() may queue the next piece of work */
    after(ud, status == UV_ECANCELED ? OPSC_ECANCELED : 0);
}

int threadpool_queue(uv_loop_t *loop, void (*work)(void *ud), void (*after)(void *ud, int status),
                     void *ud)
{
    struct pool_work *w = malloc(sizeof(*w));
    if (!w)
        return OPSC_ENOMEM;
    *w = (struct pool_work){.work = work, .after = after, .ud = ud};
    w->req.data = w;
    if (uv_queue_work(loop, &w->req, run, done) < 0) {
        free(w);
        return OPSC_EIO;
    }
    return 0;
}
