/* ssh_plugin.c - the transport-ssh plugin: entry point, settings, the opsc_transport table. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "ssh_internal.h"
#include "tp_orphan.h"
#include "tp_xfer.h"

int ssh_connect(void *state, const opsc_target *t, const opsc_credential *cred, opsc_connect_cb cb,
                void *ud);
void ssh_close(opsc_conn *c, opsc_close_cb cb, void *ud);
bool ssh_conn_usable(opsc_conn *c);

#define SET(f) offsetof(ssh_settings, f)
static const opsc_cfg_entry ssh_map[] = {
    {"keepalive", OPSC_CFG_DURATION, "30s", 0, 3600 * 1000, NULL, 0, SET(keepalive_ms),
     "interval of SSH keepalives on idle connections; 0 disables them"},
    {"max_channels", OPSC_CFG_INT, "10", 2, 1000, NULL, 0, SET(max_channels),
     "channels per connection (sshd MaxSessions); one is kept for cancelling"},
    {"connect_timeout", OPSC_CFG_DURATION, "15s", 100, 600 * 1000, NULL, 0, SET(connect_timeout_ms),
     "connect + handshake + auth deadline when the target sets none"},
    {"cancel_grace", OPSC_CFG_DURATION, "2s", 0, 60 * 1000, NULL, 0, SET(cancel_grace_ms),
     "time between SIGTERM and SIGKILL when a command is cancelled"},
    {"read_budget", OPSC_CFG_SIZE, "1M", 32768, 64 << 20, NULL, 0, SET(read_budget),
     "bytes read from one command per loop turn before others get theirs"},
    {NULL},
};

struct ssh_state {
    ssh_plugin p;
    opsc_transport transport; /* max_sessions comes from the settings */
    tp_exec_ops ops;
};

/* put/get run as commands on the connection (cat and sha256sum): faster than
 * libssh2's SFTP, see tests/bench/README.md. */
static int put_file(opsc_conn *c, const opsc_xfer_req *req, opsc_xfer_cb cb, void *ud,
                    opsc_xfer **out)
{
    struct ssh_state *st = (struct ssh_state *)c->p;
    return tp_put_file(&st->ops, c, req, cb, ud, out);
}

static int get_file(opsc_conn *c, const opsc_xfer_req *req, opsc_xfer_cb cb, void *ud,
                    opsc_xfer **out)
{
    struct ssh_state *st = (struct ssh_state *)c->p;
    return tp_get_file(&st->ops, c, req, cb, ud, out);
}

/* What a previous daemon's command left running, stopped as a cancel would. */
static int kill_orphan(opsc_conn *c, const char *handle, opsc_kill_cb cb, void *ud)
{
    struct ssh_state *st = (struct ssh_state *)c->p;
    if (!handle || strncmp(handle, "ssh:", 4) != 0)
        return OPSC_EINVAL;
    return tp_kill_orphan(&st->ops, c, handle, (unsigned)st->p.cfg.cancel_grace_ms, cb, ud);
}

static int validate_options(void *state, const char *json, char *err, size_t errlen)
{
    (void)state;
    const char *p = json ? json : "{}";
    while (isspace((unsigned char)*p))
        p++;
    if (*p++ != '{')
        goto bad;
    while (isspace((unsigned char)*p))
        p++;
    if (*p++ != '}')
        goto bad;
    while (isspace((unsigned char)*p))
        p++;
    if (!*p)
        return 0;
bad:
    snprintf(err, errlen, "the ssh transport takes no transport_options (expected {})");
    return OPSC_ESCHEMA;
}

static const opsc_transport transport_template = {
    .size = sizeof(opsc_transport),
    .name = "ssh",
    .default_port = 22,
    .options_schema = "{\"type\":\"object\",\"additionalProperties\":false}",
    .validate_options = validate_options,
    .connect = ssh_connect,
    .exec = ssh_exec_start,
    .exec_write = ssh_exec_write,
    .exec_pause = ssh_exec_pause,
    .exec_resume = ssh_exec_resume,
    .exec_cancel = ssh_exec_cancel,
    .put_file = put_file,
    .get_file = get_file,
    .xfer_cancel = tp_xfer_cancel,
    .conn_usable = ssh_conn_usable,
    .close = ssh_close,
    .kill_orphan = kill_orphan,
};

static int ssh_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    char err[512];
    struct ssh_state *st = api->calloc(1, sizeof(*st));
    if (!st)
        return OPSC_ENOMEM;
    st->p.api = api;
    int rc = api->config_bind(cfg, ssh_map, &st->p.cfg, err, sizeof(err));
    if (rc < 0) {
        api->log(SSH_COMPONENT, OPSC_LOG_ERROR, "%s", err);
        api->free(st);
        return rc;
    }
    rc = libssh2_init(0);
    if (rc) {
        api->log(SSH_COMPONENT, OPSC_LOG_ERROR, "libssh2_init failed (%d)", rc);
        api->free(st);
        return OPSC_EPLUGIN;
    }
    /* RSA user keys need rsa-sha2-256/512 signatures against OpenSSH >= 8.8;
     * libssh2 learned them in 1.11. */
    st->p.rsa_sha2 = libssh2_version(0x010b00) != NULL;
    st->transport = transport_template;
    st->transport.max_sessions = (unsigned)st->p.cfg.max_channels - 1;
    st->ops = (tp_exec_ops){api,
                            api->loop(),
                            ssh_exec_start,
                            ssh_exec_write,
                            ssh_exec_pause,
                            ssh_exec_resume,
                            ssh_exec_cancel};
    rc = api->register_transport(&st->transport, &st->p);
    if (rc < 0) {
        libssh2_exit();
        api->free(st);
        return rc;
    }
    api->log(SSH_COMPONENT, OPSC_LOG_INFO, "libssh2 %s%s", libssh2_version(0),
             st->p.rsa_sha2 ? "" : " (RSA user keys need libssh2 >= 1.11 against OpenSSH >= 8.8)");
    *state = st;
    return 0;
}

static void ssh_shutdown(void *state)
{
    struct ssh_state *st = state;
    if (!st)
        return;
    libssh2_exit();
    st->p.api->free(st);
}

OPSC_PLUGIN_DEFINE("transport-ssh", "0.1.0", OPSC_KIND_TRANSPORT,
                   "SSH transport (libssh2, non-blocking on the host loop)", "Apache-2.0", ssh_init,
                   ssh_shutdown)
