/* unresolved.c - needs a symbol nobody provides: dlopen(RTLD_NOW) must fail cleanly. */
#include <opsc/plugin.h>

extern int opsc_symbol_that_does_not_exist(void);

static int unresolved_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)api, (void)cfg, (void)state;
    return opsc_symbol_that_does_not_exist();
}

OPSC_PLUGIN_DEFINE("test-unresolved", "1.0.0", OPSC_KIND_NOTIFIER, "unresolved symbol test",
                   "Apache-2.0", unresolved_init, NULL)
