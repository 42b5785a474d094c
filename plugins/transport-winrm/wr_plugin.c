/* wr_plugin.c - the transport-winrm plugin: entry point, settings, options validation,
 * registration. */
#include <stddef.h>
#include <stdlib.h>

#include <opsc/plugin.h>

#include "wr_internal.h"

static const char options_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
    "\"scheme\":{\"enum\":[\"http\",\"https\"],\"description\":\"default: http on port 5985, "
    "https otherwise\"},"
    "\"path\":{\"type\":\"string\",\"pattern\":\"^/\",\"default\":\"/wsman\"},"
    "\"ca_bundle\":{\"type\":\"string\",\"description\":\"PEM text or an absolute path\"},"
    "\"cert_fingerprint\":{\"type\":\"string\",\"description\":\"SHA-256 of the server "
    "certificate, hex\"},"
    "\"verify\":{\"type\":\"boolean\",\"default\":true},"
    "\"allow_unencrypted\":{\"type\":\"boolean\",\"default\":false,\"description\":\"allow Basic "
    "over plain HTTP\"},"
    "\"shell\":{\"enum\":[\"powershell\",\"sh\"],\"default\":\"powershell\"},"
    "\"spn_host\":{\"type\":\"string\",\"description\":\"host name for the HTTP service "
    "principal (default: the address)\"}}}";

static const opsc_cfg_entry settings_map[] = {
    {"operation_timeout", OPSC_CFG_DURATION, "20s", 1000, 3600 * 1000, NULL, 0,
     offsetof(wr_settings, operation_timeout_ms), "Receive long-poll wait (OperationTimeout)"},
    {"max_envelope_size", OPSC_CFG_SIZE, "500k", 32 * 1024, 64 * 1024 * 1024, NULL, 0,
     offsetof(wr_settings, max_envelope), "MaxEnvelopeSize announced to hosts"},
    {"commands_per_shell", OPSC_CFG_INT, "50", 1, 100000, NULL, 0,
     offsetof(wr_settings, commands_per_shell),
     "commands run in one remote shell before a new one"},
    {"codepage", OPSC_CFG_INT, "65001", 1, 65535, NULL, 0, offsetof(wr_settings, codepage),
     "console code page of remote shells (65001: UTF-8)"},
    {NULL},
};

static int validate_options(void *state, const char *options_json, char *err, size_t errlen)
{
    (void)state;
    wr_options o;
    int rc = wr_options_parse(options_json, &o, err, errlen);
    if (!rc)
        wr_options_free(&o);
    return rc;
}

static int connect_cb_adapter(void *state, const opsc_target *target, const opsc_credential *cred,
                              opsc_connect_cb cb, void *ud)
{
    return wr_connect(state, target, cred, cb, ud);
}

static const opsc_transport winrm_transport = {
    .size = sizeof(opsc_transport),
    .name = "winrm",
    .default_port = 5985,
    .max_sessions = 1,
    .options_schema = options_schema,
    .validate_options = validate_options,
    .connect = connect_cb_adapter,
    .exec = wr_exec,
    .exec_write = wr_exec_write,
    .exec_pause = wr_exec_pause,
    .exec_resume = wr_exec_resume,
    .exec_cancel = wr_exec_cancel,
    .put_file = wr_put_file,
    .get_file = wr_get_file,
    .xfer_cancel = wr_xfer_cancel,
    .conn_usable = wr_conn_usable,
    .close = wr_conn_close,
    .kill_orphan = wr_kill_orphan,
};

static int winrm_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    wr_plugin *pl = calloc(1, sizeof *pl);
    if (!pl)
        return OPSC_ENOMEM;
    pl->api = api;
    char err[512];
    int rc = api->config_bind(cfg, settings_map, &pl->set, err, sizeof err);
    if (rc) {
        api->log(WR_COMPONENT, OPSC_LOG_ERROR, "%s", err);
        free(pl);
        return rc;
    }
    rc = wr_http_global_init();
    if (!rc)
        rc = api->register_transport(&winrm_transport, pl);
    if (rc) {
        api->log(WR_COMPONENT, OPSC_LOG_ERROR, "cannot register the winrm transport: %s",
                 opsc_strerror(rc));
        free(pl);
        return rc;
    }
    *state = pl;
    return 0;
}

static void winrm_shutdown(void *state)
{
    free(state);
}

OPSC_PLUGIN_DEFINE("transport-winrm", "1.0.0", OPSC_KIND_TRANSPORT,
                   "WinRM (WS-Management remote shell) transport: PowerShell, file copy, "
                   "NTLM/Kerberos with message encryption, HTTPS",
                   "Apache-2.0", winrm_init, winrm_shutdown)
