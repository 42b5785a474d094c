/* duplicate.c - takes the name of test-good; loads after it and must be refused. */
#include <opsc/plugin.h>

static int dup_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)api, (void)cfg, (void)state;
    return 0;
}

OPSC_PLUGIN_DEFINE("test-good", "9.9.9", OPSC_KIND_NOTIFIER, "name collision test", "Apache-2.0",
                   dup_init, NULL)
