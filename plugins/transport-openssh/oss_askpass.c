/* oss_askpass.c - a one-shot unix socket that hands a secret to opsc-openssh-helper run as
 * SSH_ASKPASS: the secret goes from the daemon's memory to ssh's, never through a file or argv.
 * It serves one connection and closes; a second prompt (a wrong password or passphrase) finds
 * no socket and ssh gives up instead of asking again. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "oss_internal.h"

struct oss_askpass {
    oss_plugin *p;
    uv_pipe_t server, client;
    uv_write_t w;
    char name[64];
    char *secret;
    int handles;
    bool owner_gone, server_closed;
};

static void maybe_free(oss_askpass *a)
{
    if (a->handles > 0 || !a->owner_gone)
        return;
    oss_wipe_free(a->p, a->secret);
    a->p->api->free(a);
}

static void on_closed(uv_handle_t *h)
{
    oss_askpass *a = h->data;
    a->handles--;
    maybe_free(a);
}

static void close_server(oss_askpass *a)
{
    if (a->server_closed)
        return;
    a->server_closed = true;
    uv_close((uv_handle_t *)&a->server, on_closed);
    unlinkat(a->p->rundir_fd, a->name, 0);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    oss_askpass *a = w->data;
    oss_wipe_free(a->p, a->secret);
    a->secret = NULL;
    uv_close((uv_handle_t *)&a->client, on_closed);
}

static void on_conn(uv_stream_t *server, int status)
{
    oss_askpass *a = server->data;
    if (status < 0 || a->server_closed)
        return;
    uv_pipe_init(a->p->loop, &a->client, 0);
    a->client.data = a;
    a->handles++;
    int rc = uv_accept(server, (uv_stream_t *)&a->client);
    close_server(a); /* served once */
    if (rc < 0 || !a->secret) {
        uv_close((uv_handle_t *)&a->client, on_closed);
        return;
    }
    uv_buf_t b = uv_buf_init(a->secret, (unsigned)strlen(a->secret));
    a->w.data = a;
    if (uv_write(&a->w, (uv_stream_t *)&a->client, &b, 1, on_written) < 0)
        uv_close((uv_handle_t *)&a->client, on_closed);
}

int oss_askpass_open(oss_plugin *p, const char *name, const char *secret, oss_askpass **out)
{
    char path[128];
    int rc = oss_sockpath(p, name, path, sizeof(path));
    if (rc < 0)
        return rc;
    oss_askpass *a = p->api->calloc(1, sizeof(*a));
    if (!a)
        return OPSC_ENOMEM;
    a->p = p;
    snprintf(a->name, sizeof(a->name), "%s", name);
    a->secret = oss_strdup(p, secret);
    uv_pipe_init(p->loop, &a->server, 0);
    a->server.data = a;
    a->handles = 1;
    unlinkat(p->rundir_fd, name, 0);
    rc = a->secret ? uv_pipe_bind(&a->server, path) : UV_ENOMEM;
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&a->server, 4, on_conn);
    if (rc < 0) {
        oss_askpass_close(a);
        return OPSC_EIO;
    }
    *out = a;
    return 0;
}

void oss_askpass_close(oss_askpass *a)
{
    if (!a)
        return;
    a->owner_gone = true;
    close_server(a);
    maybe_free(a);
}
