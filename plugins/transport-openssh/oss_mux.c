/* oss_mux.c - one session on a master's control socket, in OpenSSH's multiplexing protocol
 * (PROTOCOL.mux, version 4): hello, a new session with the command, then the three pipe ends the
 * master reads and writes, passed as SCM_RIGHTS; the master answers "session opened" and, at the
 * end, the exit status. No ssh process per command, and the command is never in an argv. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "oss_internal.h"

#define MUX_VERSION             4
#define MUX_MSG_HELLO           0x00000001u
#define MUX_C_NEW_SESSION       0x10000002u
#define MUX_S_OK                0x80000001u
#define MUX_S_PERMISSION_DENIED 0x80000002u
#define MUX_S_FAILURE           0x80000003u
#define MUX_S_EXIT_MESSAGE      0x80000004u
#define MUX_S_ALIVE             0x80000005u
#define MUX_S_SESSION_OPENED    0x80000006u
#define MUX_S_TTY_ALLOC_FAIL    0x80000008u
#define REQUEST_ID              1u

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* hello, then the session request: {len, type, id, reserved "", tty, x11, agent, subsystem,
 * escape char, term "", command}. */
static int build(oss_mux *x, oss_plugin *p, const char *command)
{
    size_t clen = strlen(command);
    size_t sess = 4 * 8 + 4 + 4 + clen; /* 8 u32 fields, two string lengths, the command */
    x->out_len = 4 + 8 + 4 + sess;
    x->out = p->api->alloc(x->out_len);
    if (!x->out)
        return OPSC_ENOMEM;
    unsigned char *o = x->out;
    put_u32(o, 8);
    put_u32(o + 4, MUX_MSG_HELLO);
    put_u32(o + 8, MUX_VERSION);
    o += 12;
    put_u32(o, (uint32_t)sess);
    uint32_t fields[] = {MUX_C_NEW_SESSION,
                         REQUEST_ID,
                         0 /* reserved "" */,
                         0,
                         0,
                         0,
                         0,
                         0xffffffffu /* no escape char */,
                         0 /* term "" */};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        put_u32(o + 4 + 4 * i, fields[i]);
    o += 4 + 4 * 9;
    put_u32(o, (uint32_t)clen);
    memcpy(o + 4, command, clen);
    return 0;
}

static int send_fd(int sock, int fd)
{
    char byte = 0;
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof(ctl.buf);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n == 1)
        return 0;
    return n < 0 && (errno == EAGAIN || errno == EINTR) ? 1 : -1;
}

static void lost(oss_mux *x, const char *why)
{
    x->closed = true;
    if (!x->fail[0] && why)
        snprintf(x->fail, sizeof(x->fail), "%s", why);
}

/* Returns false when the socket is done for. */
static bool flush_out(oss_mux *x)
{
    while (x->out_off < x->out_len) {
        ssize_t n = send(x->fd, x->out + x->out_off, x->out_len - x->out_off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return true;
        if (n <= 0) {
            lost(x, "the master's control socket closed");
            return false;
        }
        x->out_off += (size_t)n;
    }
    /* The master reads the request to its last byte, then takes the descriptors. */
    while (x->npassed < 3) {
        int rc = send_fd(x->fd, x->pass[x->npassed]);
        if (rc > 0)
            return true;
        if (rc < 0) {
            lost(x, "the master refused our descriptors");
            return false;
        }
        close(x->pass[x->npassed]);
        x->pass[x->npassed++] = -1;
    }
    return true;
}

static void message(oss_mux *x, const unsigned char *m, uint32_t len)
{
    if (len < 4)
        return;
    uint32_t type = get_u32(m);
    if (type == MUX_MSG_HELLO) {
        x->hello = true;
        if (len < 8 || get_u32(m + 4) != MUX_VERSION)
            lost(x, "the master speaks another multiplexing protocol version");
    } else if (type == MUX_S_SESSION_OPENED) {
        x->opened = true;
    } else if ((type == MUX_S_FAILURE || type == MUX_S_PERMISSION_DENIED) && len >= 12) {
        uint32_t slen = get_u32(m + 8);
        if (slen > len - 12)
            slen = len - 12;
        snprintf(x->fail, sizeof(x->fail), "%.*s", (int)slen, (const char *)m + 12);
        x->fail_code = OPSC_EPROTO;
    } else if (type == MUX_S_EXIT_MESSAGE && len >= 12) {
        x->exited = true;
        x->exit_value = get_u32(m + 8);
    }
}

static void read_in(oss_mux *x)
{
    for (;;) {
        ssize_t n = recv(x->fd, x->in + x->in_len, sizeof(x->in) - x->in_len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            x->closed = true;
            return;
        }
        x->in_len += (size_t)n;
        size_t off = 0;
        while (x->in_len - off >= 4) {
            uint32_t len = get_u32(x->in + off);
            if (len > sizeof(x->in) - 4) {
                lost(x, "the master sent an oversized message");
                return;
            }
            if (x->in_len - off - 4 < len)
                break;
            message(x, x->in + off + 4, len);
            off += 4 + len;
        }
        memmove(x->in, x->in + off, x->in_len - off);
        x->in_len -= off;
    }
}

static void on_poll(uv_poll_t *h, int status, int events);

static void update_poll(oss_mux *x)
{
    int ev = x->closed ? 0 : UV_READABLE;
    if (!x->closed && (x->out_off < x->out_len || x->npassed < 3))
        ev |= UV_WRITABLE;
    if (ev == x->events)
        return;
    x->events = ev;
    if (ev)
        uv_poll_start(&x->poll, ev, on_poll);
    else
        uv_poll_stop(&x->poll);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    opsc_exec *ex = h->data;
    oss_mux *x = &ex->mux;
    if (status < 0) {
        lost(x, uv_strerror(status));
    } else {
        if (events & UV_WRITABLE)
            flush_out(x);
        if (!x->closed && (events & UV_READABLE))
            read_in(x);
    }
    update_poll(x);
    oss_exec_mux_event(ex);
}

int oss_mux_start(oss_mux *x, opsc_exec *ex, const char *path, const char *command)
{
    oss_plugin *p = ex->conn->p;
    int rc = build(x, p, command);
    if (rc < 0)
        return rc;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(a.sun_path))
        return OPSC_ERANGE;
    memcpy(a.sun_path, path, strlen(path) + 1);
    x->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (x->fd < 0)
        return -errno;
    if (connect(x->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        rc = errno == EAGAIN ? OPSC_EBUSY : OPSC_ECONNRESET; /* a full backlog, or no master */
        return rc;
    }
    if (!flush_out(x))
        return OPSC_ECONNRESET;
    if (uv_poll_init(p->loop, &x->poll, x->fd) < 0)
        return OPSC_EIO;
    x->poll.data = ex;
    x->poll_open = true;
    ex->handles++; /* the exec closes it with its other handles */
    x->events = 0;
    update_poll(x);
    return 0;
}

/* The descriptors we did not get to pass, the request buffer and the socket. The poll handle is
 * the exec's to close (it counts it); the socket goes once polling has stopped. */
void oss_mux_release(oss_mux *x, oss_plugin *p)
{
    for (int i = 0; i < 3; i++) {
        if (x->pass[i] >= 0)
            close(x->pass[i]);
        x->pass[i] = -1;
    }
    p->api->free(x->out);
    x->out = NULL;
    if (x->fd >= 0)
        close(x->fd);
    x->fd = -1;
}
