/* good.c - a well-behaved test plugin: binds its config, registers one of each kind. */
#include <stdbool.h>
#include <string.h>

#include <opsc/plugin.h>

static const opsc_host_api *host;

struct settings {
    const char *greeting;
    int64_t count;
    bool loud;
};

static const opsc_cfg_entry settings_map[] = {
    {"greeting", OPSC_CFG_STRING, "hello", 0, -1, NULL, 0, offsetof(struct settings, greeting),
     "what to say"},
    {"count", OPSC_CFG_INT, "1", 1, 10, NULL, 0, offsetof(struct settings, count), "how often"},
    {"loud", OPSC_CFG_BOOL, "false", 0, -1, NULL, 0, offsetof(struct settings, loud), "shout"},
    {NULL},
};

static struct settings settings;

static int echo_send(void *state, const opsc_notify_msg *msg, const char *settings_json,
                     const char *secret, opsc_notify_done_cb done, void *ud)
{
    (void)state, (void)msg, (void)settings_json, (void)secret, (void)done, (void)ud;
    return OPSC_ENOTSUP;
}

static const opsc_notifier echo_notifier = {
    .size = sizeof(opsc_notifier),
    .name = "test-echo",
    .summary = "test notifier that delivers nothing",
    .send = echo_send,
};

static int nobody_auth(void *state, const char *username, const char *password, opsc_identity *id,
                       char *err, size_t errlen)
{
    (void)state, (void)username, (void)password, (void)id, (void)err, (void)errlen;
    return OPSC_ENOENT;
}

static const opsc_auth_provider nobody_provider = {
    .size = sizeof(opsc_auth_provider),
    .name = "test-nobody",
    .summary = "knows no one",
    .authenticate = nobody_auth,
};

static const opsc_step_type hello_step = {
    .size = sizeof(opsc_step_type),
    .name = "hello",
    .summary = "echo a greeting",
    .params_schema = "{\"type\":\"object\",\"properties\":{\"who\":{\"type\":\"string\"}}}",
    .posix_template = "echo hello {{ params.who }}",
    .powershell_template = "Write-Output ('hello ' + {{ params.who }})",
};

static const opsc_step_type *const hello_types[] = {&hello_step, NULL};

static const opsc_steplib hello_lib = {
    .size = sizeof(opsc_steplib),
    .name = "testgood",
    .version = "1.2.3",
    .summary = "test step library",
    .types = hello_types,
};

static int good_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    char err[512];
    host = api;
    int rc = api->config_bind(cfg, settings_map, &settings, err, sizeof(err));
    if (rc < 0) {
        api->log("test-good", OPSC_LOG_ERROR, "%s", err);
        return rc;
    }
    if ((rc = api->register_notifier(&echo_notifier, NULL)) < 0 ||
        (rc = api->register_auth_provider(&nobody_provider, NULL)) < 0 ||
        (rc = api->register_steplib(&hello_lib, NULL)) < 0)
        return rc;
    api->log("test-good", OPSC_LOG_INFO, "%s x%d", settings.greeting, (int)settings.count);
    *state = &settings;
    return 0;
}

static void good_shutdown(void *state)
{
    (void)state;
    host->log("test-good", OPSC_LOG_INFO, "shutdown");
}

OPSC_PLUGIN_DEFINE("test-good", "1.0.0", OPSC_KIND_NOTIFIER | OPSC_KIND_AUTH | OPSC_KIND_STEPLIB,
                   "test plugin that does everything right", "Apache-2.0", good_init,
                   good_shutdown)
