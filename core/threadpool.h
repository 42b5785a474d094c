/* threadpool.h - blocking work on libuv's thread pool, leaving no OpenSSL state behind.
 *
 * libuv's pool threads never exit: they are still alive when OpenSSL's own cleanup runs at
 * exit, so what OpenSSL keeps per thread (the error queue, the thread's random generators),
 * which it frees when a thread exits, is lost there; LeakSanitizer reports it. Work reaches
 * OpenSSL through more than our own calls: libpq (SCRAM's nonce at connect, every read and
 * write over TLS), libssh, krb5, libcurl. So every piece of work queued here gives that
 * state back when it returns, and OpenSSL sets it up again on the next use. */
#ifndef OPSC_THREADPOOL_H
#define OPSC_THREADPOOL_H

#include <uv.h>

/* Run work(ud) on the pool, then after(ud, status) on the loop: status 0, or OPSC_ECANCELED
 * when the loop cancelled it. 0, or OPSC_ENOMEM / OPSC_EIO (nothing queued, after() not
 * called). */
int threadpool_queue(uv_loop_t *loop, void (*work)(void *ud), void (*after)(void *ud, int status),
                     void *ud);

#endif
