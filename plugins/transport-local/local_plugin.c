/* local_plugin.c - the transport-local plugin: commands and file copies on the appliance itself. */
#include <stdio.h>
#include <string.h>

#include "local_internal.h"

#define SET(f) offsetof(local_settings, f)
static const opsc_cfg_entry local_map[] = {
    {"max_commands", OPSC_CFG_INT, "64", 1, 4096, NULL, 0, SET(max_commands),
     "commands one connection runs at once"},
    {"cancel_grace", OPSC_CFG_DURATION, "2s", 0, 60 * 1000, NULL, 0, SET(cancel_grace_ms),
     "time between SIGTERM and SIGKILL when a command is cancelled"},
    {"shell", OPSC_CFG_STRING, "/bin/sh", 0, -1, NULL, 0, SET(shell),
     "POSIX shell that runs the commands"},
    {NULL},
};

static void on_refused_closed(uv_handle_t *h)
{
    opsc_conn *c = h->data;
    c->p->api->free(c);
}

static void on_connected(uv_timer_t *t)
{
    opsc_conn *c = t->data;
    opsc_conn_info info = {sizeof(info)};
    opsc_connect_cb cb = c->connect_cb;
    c->connect_cb = NULL;
    if (c->fail) { /* the callback gets no connection: nothing else refers to it */
        cb(c->connect_ud, c->fail, NULL, NULL, c->why);
        uv_close((uv_handle_t *)&c->defer, on_refused_closed);
        return;
    }
    cb(c->connect_ud, 0, c, &info, NULL);
}

static int local_connect(void *state, const opsc_target *t, const opsc_credential *cred,
                         opsc_connect_cb cb, void *ud)
{
    (void)t, (void)cred; /* the appliance itself: no address, no credential */
    local_plugin *p = state;
    if (!cb)
        return OPSC_EINVAL;
    opsc_conn *c = p->api->calloc(1, sizeof(*c));
    if (!c)
        return OPSC_ENOMEM;
    c->p = p;
    c->connect_cb = cb;
    c->connect_ud = ud;
    /* Commands never run as the daemon's user: without the host's helper
     * (not root, no capabilities, no local-steps user) there is no local
     * target, and the reason says what to fix. */
    if (!p->has_local)
        snprintf(c->why, sizeof(c->why),
                 "this OpsConductor cannot start local processes as an "
                 "unprivileged user (host ABI < 1.1): local steps are refused");
    c->fail = p->has_local ? p->api->local_available(c->why, sizeof(c->why)) : OPSC_EPERM;
    uv_timer_init(p->api->loop(), &c->defer);
    c->defer.data = c;
    uv_timer_start(&c->defer, on_connected, 0, 0);
    return 0;
}

static void on_defer_closed(uv_handle_t *h)
{
    opsc_conn *c = h->data;
    opsc_close_cb cb = c->close_cb;
    void *ud = c->close_ud;
    c->p->api->free(c);
    if (cb)
        cb(ud);
}

void local_conn_closed(opsc_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->defer))
        uv_close((uv_handle_t *)&c->defer, on_defer_closed);
}

static void local_close(opsc_conn *c, opsc_close_cb cb, void *ud)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_cb = cb;
    c->close_ud = ud;
    local_exec_close_all(c);
    if (!c->execs)
        local_conn_closed(c);
}

static bool local_usable(opsc_conn *c)
{
    return c && !c->closing;
}

static int put_file(opsc_conn *c, const opsc_xfer_req *req, opsc_xfer_cb cb, void *ud,
                    opsc_xfer **out)
{
    return tp_put_file(&c->p->ops, c, req, cb, ud, out);
}

static int get_file(opsc_conn *c, const opsc_xfer_req *req, opsc_xfer_cb cb, void *ud,
                    opsc_xfer **out)
{
    return tp_get_file(&c->p->ops, c, req, cb, ud, out);
}

int local_kill_orphan(opsc_conn *c, const char *handle, opsc_kill_cb cb, void *ud)
{
    if (!c || !handle || strncmp(handle, "local:", 6) != 0)
        return OPSC_EINVAL;
    return c->p->api->local_kill_recorded(handle, cb, ud);
}

static const opsc_transport transport_template = {
    .size = sizeof(opsc_transport),
    .name = "local",
    .default_port = 0,
    .options_schema = "{\"type\":\"object\",\"additionalProperties\":false}",
    .connect = local_connect,
    .exec = local_exec,
    .exec_write = local_exec_write,
    .exec_pause = local_exec_pause,
    .exec_resume = local_exec_resume,
    .exec_cancel = local_exec_cancel,
    .put_file = put_file,
    .get_file = get_file,
    .xfer_cancel = tp_xfer_cancel,
    .conn_usable = local_usable,
    .close = local_close,
    .kill_orphan = local_kill_orphan,
};

static int local_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    char err[512];
    local_plugin *p = api->calloc(1, sizeof(*p));
    if (!p)
        return OPSC_ENOMEM;
    p->api = api;
    p->has_local = OPSC_HOST_HAS(api, local_kill_recorded);
    int rc = api->config_bind(cfg, local_map, &p->cfg, err, sizeof(err));
    if (rc < 0) {
        api->log(LOCAL_COMPONENT, OPSC_LOG_ERROR, "%s", err);
        api->free(p);
        return rc;
    }
    p->transport = transport_template;
    p->transport.max_sessions = (unsigned)p->cfg.max_commands;
    p->ops = (tp_exec_ops){api,
                           api->loop(),
                           local_exec,
                           local_exec_write,
                           local_exec_pause,
                           local_exec_resume,
                           local_exec_cancel};
    rc = api->register_transport(&p->transport, p);
    if (rc < 0) {
        api->free(p);
        return rc;
    }
    *state = p;
    return 0;
}

static void local_shutdown(void *state)
{
    local_plugin *p = state;
    if (p)
        p->api->free(p);
}

OPSC_PLUGIN_DEFINE("transport-local", "0.1.0", OPSC_KIND_TRANSPORT,
                   "Local transport (commands and files on the appliance itself)", "Apache-2.0",
                   local_init, local_shutdown)
