/* bad_schema.c - a step library whose parameter schema is broken: the daemon refuses it at load. */
#include <opsc/plugin.h>

static int noop_run(opsc_step_ctx *ctx, void *state)
{
    (void)ctx, (void)state;
    return 0;
}

static const opsc_step_type typo = {
    .size = sizeof(opsc_step_type),
    .name = "typo",
    .summary = "a schema with a misspelt type",
    .params_schema = "{\"type\":\"object\",\"properties\":{\"port\":{\"type\":\"integr\"}}}",
    .run = noop_run,
};
static const opsc_step_type *const types[] = {&typo, NULL};

static const opsc_steplib lib = {
    .size = sizeof(opsc_steplib),
    .name = "badschema",
    .version = "1.0.0",
    .summary = "refused at load",
    .types = types,
};

static int bad_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)cfg, (void)state;
    return api->register_steplib(&lib, NULL);
}

OPSC_PLUGIN_DEFINE("steplib-badschema", "1.0.0", OPSC_KIND_STEPLIB,
                   "a step library with a bad schema", "Apache-2.0", bad_init, NULL)
