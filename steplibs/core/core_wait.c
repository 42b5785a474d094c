/* core_wait.c - wait.duration and wait.port: waiting on the appliance, cancellable at any time. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core_internal.h"

#define SLICE_MS 200 /* how often a blocked wait looks at cancellation */

int core_wait_duration_run(opsc_step_ctx *ctx, void *lib_state)
{
    (void)lib_state;
    const opsc_host_api *h = core_host;
    json_t *p = stepkit_params(h, ctx);
    double secs = stepkit_num(p, "seconds", 0);
    json_decref(p);
    int64_t t0 = h->now_ms();
    int rc = h->step_sleep(ctx, (uint32_t)(secs * 1000.0));
    if (rc < 0)
        return rc;
    return stepkit_output(h, ctx, "waited_s", json_real((double)(h->now_ms() - t0) / 1000.0));
}

/* Wait for a non-blocking connect to finish, in slices so a cancel is seen. */
static int connect_wait(opsc_step_ctx *ctx, int fd, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += SLICE_MS) {
        if (core_host->step_cancelled(ctx))
            return OPSC_ECANCELED;
        struct pollfd pfd = {fd, POLLOUT, 0};
        int n = poll(&pfd, 1, SLICE_MS);
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0) {
            int err = 0;
            socklen_t len = sizeof(err);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            return err ? -err : 0;
        }
    }
    return OPSC_ETIMEDOUT;
}

/* 0 when some address of host:port accepts a TCP connection. */
static int try_connect(opsc_step_ctx *ctx, const char *host, int port, int timeout_ms)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    char service[8];
    snprintf(service, sizeof(service), "%d", port);
    if (getaddrinfo(host, service, &hints, &res) != 0)
        return OPSC_EDNS;
    int rc = OPSC_ECONNREFUSED;
    for (ai = res; ai && rc != 0 && rc != OPSC_ECANCELED; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            rc = 0;
        else
            rc = errno == EINPROGRESS ? connect_wait(ctx, fd, timeout_ms) : -errno;
        close(fd);
    }
    freeaddrinfo(res);
    return rc;
}

int core_wait_port_run(opsc_step_ctx *ctx, void *lib_state)
{
    (void)lib_state;
    const opsc_host_api *h = core_host;
    json_t *p = stepkit_params(h, ctx);
    const char *host = stepkit_str(p, "host"), *state = stepkit_str(p, "state");
    if (!host)
        host = h->step_target(ctx, "address");
    int port = (int)stepkit_num(p, "port", 0);
    bool want_open = !state || strcmp(state, "open") == 0;
    int64_t t0 = h->now_ms(), deadline = t0 + (int64_t)(stepkit_num(p, "timeout_s", 300) * 1000);
    uint32_t interval = (uint32_t)(stepkit_num(p, "interval_s", 2) * 1000.0);
    int conn_ms = (int)(stepkit_num(p, "connect_timeout_s", 5) * 1000.0), rc, attempts = 0;
    for (;;) {
        attempts++;
        rc = host ? try_connect(ctx, host, port, conn_ms) : OPSC_EINVAL;
        if (rc == OPSC_ECANCELED || (rc == 0) == want_open || !host)
            break;
        if (h->now_ms() + interval > deadline) {
            rc = OPSC_ETIMEDOUT;
            break;
        }
        if ((rc = h->step_sleep(ctx, interval)) == OPSC_ECANCELED)
            break;
    }
    if (rc != OPSC_ECANCELED && rc != OPSC_ETIMEDOUT && host)
        rc = 0;
    if (rc == 0)
        rc = stepkit_output(h, ctx, "attempts", json_integer(attempts));
    if (rc == 0)
        rc = stepkit_output(h, ctx, "elapsed_s", json_real((double)(h->now_ms() - t0) / 1000.0));
    else if (rc == OPSC_ETIMEDOUT)
        rc = h->step_fail(ctx, "%s:%d is still %s after %d attempts", host, port,
                          want_open ? "closed" : "open", attempts);
    else if (!host)
        rc = h->step_fail(ctx, "no host given and the target has no address");
    json_decref(p);
    return rc;
}
