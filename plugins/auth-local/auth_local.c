/* auth_local.c - auth provider for the users kept in the daemon's store (the "local" provider).
 *
 * The store, the password hashes and the timing-equalising dummy hash stay
 * in the host: this provider only forwards to opsc_host_api.local_user_verify,
 * so a plugin never sees a password hash. It has no settings; its place in
 * the provider chain comes from [auth] providers.
 */
#include <stddef.h>

#include <opsc/plugin.h>

static const opsc_host_api *host;

static int local_authenticate(void *state, const char *username, const char *password,
                              opsc_identity *id, char *err, size_t errlen)
{
    (void)state;
    return host->local_user_verify(username, password, id, err, errlen);
}

static const opsc_auth_provider local_provider = {
    .size = sizeof(opsc_auth_provider),
    .name = "local",
    .summary = "users stored by OpsConductor, with yescrypt password hashes",
    .authenticate = local_authenticate,
};

static const opsc_cfg_entry no_settings[] = {{NULL}};

static int local_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    host = api;
    *state = NULL;
    if (!OPSC_HOST_HAS(api, local_user_verify)) {
        api->log("auth-local", OPSC_LOG_ERROR,
                 "the host (%s) has no local_user_verify: upgrade the daemon", api->host_version);
        return OPSC_ENOTSUP;
    }
    char err[512] = "";
    char dummy;
    int rc = api->config_bind(cfg, no_settings, &dummy, err, sizeof(err));
    if (rc < 0) {
        api->log("auth-local", OPSC_LOG_ERROR, "configuration: %s", err);
        return rc;
    }
    return api->register_auth_provider(&local_provider, NULL);
}

OPSC_PLUGIN_DEFINE("auth-local", "1.0.0", OPSC_KIND_AUTH,
                   "Log in with the users stored by OpsConductor", "Apache-2.0", local_init, NULL);
