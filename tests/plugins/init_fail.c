/* init_fail.c - init() reports failure after registering: the host must undo it. */
#include <opsc/plugin.h>

static int never_send(void *state, const opsc_notify_msg *msg, const char *settings_json,
                      const char *secret, opsc_notify_done_cb done, void *ud)
{
    (void)state, (void)msg, (void)settings_json, (void)secret, (void)done, (void)ud;
    return OPSC_ENOTSUP;
}

static const opsc_notifier ghost = {
    .size = sizeof(opsc_notifier),
    .name = "test-ghost",
    .send = never_send,
};

static int fail_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)cfg, (void)state;
    api->register_notifier(&ghost, NULL);
    api->log("test-init-fail", OPSC_LOG_ERROR, "cannot reach the moon");
    return OPSC_EHOSTUNREACH;
}

OPSC_PLUGIN_DEFINE("test-init-fail", "1.0.0", OPSC_KIND_NOTIFIER, "init failure test",
                   "Apache-2.0", fail_init, NULL)
