/* bad_steplib.c - a step library whose template names an undeclared parameter: refused at load. */
#include <opsc/plugin.h>

static const opsc_step_type typo_step = {
    .size = sizeof(opsc_step_type),
    .name = "typo",
    .summary = "template with a typo",
    .params_schema = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}}}",
    .posix_template = "systemctl restart {{ params.nmae }}",
};

static const opsc_step_type *const types[] = {&typo_step, NULL};

static const opsc_steplib lib = {
    .size = sizeof(opsc_steplib),
    .name = "broken",
    .version = "1.0.0",
    .summary = "broken step library",
    .types = types,
};

static int broken_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)cfg, (void)state;
    return api->register_steplib(&lib, NULL);
}

OPSC_PLUGIN_DEFINE("test-broken-steplib", "1.0.0", OPSC_KIND_STEPLIB, "refused step library test",
                   "Apache-2.0", broken_init, NULL)
