/* tcp_icmp.c - ICMP echo through unprivileged ICMP sockets (SOCK_DGRAM, IPPROTO_ICMP), where
 * net.ipv4.ping_group_range lets the daemon's group use them. Never required: a scan that asks
 * for ICMP and may not send it says so and goes on with TCP. */
#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/ip_icmp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tcp_internal.h"

struct ticmp {
    tscan *s;
    int fd4, fd6;
    uv_poll_t poll4, poll6;
    int open; /* polls not yet closed */
    uint16_t seq;
};

static void on_reply(uv_poll_t *p, int status, int events);

static int open_one(ticmp *i, int family, uv_poll_t *poll, char *why, size_t n)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);
    if (fd < 0) {
        snprintf(why, n,
                 "unprivileged ICMP sockets are not allowed for the daemon's group "
                 "(net.ipv4.ping_group_range): %s",
                 strerror(errno));
        return -1;
    }
    if (uv_poll_init_socket(i->s->loop, poll, fd) < 0) {
        close(fd);
        snprintf(why, n, "cannot poll an ICMP socket");
        return -1;
    }
    poll->data = i;
    i->open++;
    uv_poll_start(poll, UV_READABLE, on_reply);
    return fd;
}

ticmp *ticmp_open(tscan *s, char *why, size_t n)
{
    ticmp *i = tcp_host->calloc(1, sizeof(*i));
    if (!i)
        return NULL;
    i->s = s;
    i->fd4 = open_one(i, AF_INET, &i->poll4, why, n);
    if (i->fd4 >= 0) {
        char ignore[8];
        i->fd6 = open_one(i, AF_INET6, &i->poll6, ignore, sizeof(ignore)); /* IPv6 may be off */
        return i;
    }
    tcp_host->free(i);
    return NULL;
}

int ticmp_send(ticmp *i, thost *h)
{
    bool v6 = h->sa.ss_family == AF_INET6;
    int fd = v6 ? i->fd6 : i->fd4;
    if (fd < 0)
        return -1;
    uint8_t pkt[16] = {0};
    pkt[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO; /* the kernel sets the id and checksum */
    i->seq++;
    pkt[6] = (uint8_t)(i->seq >> 8);
    pkt[7] = (uint8_t)i->seq;
    memcpy(pkt + 8, "opscdisc", 8);
    socklen_t len = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    return sendto(fd, pkt, sizeof(pkt), 0, (const struct sockaddr *)&h->sa, len) < 0 ? -1 : 0;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static void on_reply(uv_poll_t *p, int status, int events)
{
    ticmp *i = p->data;
    if (status < 0 || !(events & UV_READABLE))
        return;
    int fd = p == &i->poll4 ? i->fd4 : i->fd6;
    for (int k = 0; k < 64 && !i->s->ending; k++) {
        uint8_t buf[128];
        struct sockaddr_storage from;
        socklen_t flen = sizeof(from);
        if (recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen) < 1)
            return;
        bool echo = buf[0] == (p == &i->poll4 ? ICMP_ECHOREPLY : ICMP6_ECHO_REPLY);
        for (thost *h = i->s->hosts; echo && h; h = h->next) {
            if (!h->icmp_wait.queued || !same_addr(&h->sa, &from))
                continue;
            twait_remove(i->s, &h->icmp_wait);
            h->icmp_reply = true;
            h->pending--;
            thost_step(h);
            break;
        }
    }
}

static void on_closed(uv_handle_t *h)
{
    ticmp *i = h->data;
    if (--i->open > 0)
        return;
    tscan *s = i->s;
    close(i->fd4);
    if (i->fd6 >= 0)
        close(i->fd6);
    tcp_host->free(i);
    s->icmp_sock = NULL;
    tscan_maybe_finish(s);
}

void ticmp_close(ticmp *i)
{
    uv_close((uv_handle_t *)&i->poll4, on_closed);
    if (i->fd6 >= 0)
        uv_close((uv_handle_t *)&i->poll6, on_closed);
}
