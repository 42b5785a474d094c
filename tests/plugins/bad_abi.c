/* bad_abi.c - descriptors with a wrong ABI: major from the future, or a newer minor.
 * Built twice, with BAD_MAJOR or BAD_MINOR defined. */
#include <opsc/plugin.h>

static int bad_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)api, (void)cfg, (void)state;
    return 0; /* never reached: the host refuses first */
}

/* The note says the same: an upload is refused from it before it is loaded. */
#ifdef BAD_MAJOR
__attribute__((used, section(OPSC_PLUGIN_NOTE_SECTION))) static const opsc_plugin_note note = {
    OPSC_PLUGIN_NOTE_MAGIC, OPSC_ABI_MAJOR + 1, 0, "test-bad-major", "1.0.0"};
#else
__attribute__((used, section(OPSC_PLUGIN_NOTE_SECTION))) static const opsc_plugin_note note = {
    OPSC_PLUGIN_NOTE_MAGIC, OPSC_ABI_MAJOR, OPSC_ABI_MINOR + 1, "test-newer-minor", "1.0.0"};
#endif

OPSC_EXPORT const opsc_plugin *opsc_plugin_entry(void);
const opsc_plugin *opsc_plugin_entry(void)
{
    static const opsc_plugin d = {
        .size = sizeof(opsc_plugin),
#ifdef BAD_MAJOR
        .abi_major = OPSC_ABI_MAJOR + 1,
        .abi_minor = 0,
        .name = "test-bad-major",
#else
        .abi_major = OPSC_ABI_MAJOR,
        .abi_minor = OPSC_ABI_MINOR + 1,
        .name = "test-newer-minor",
#endif
        .version = "1.0.0",
        .kinds = OPSC_KIND_NOTIFIER,
        .description = "ABI refusal test",
        .license = "Apache-2.0",
        .init = bad_init,
    };
    return &d;
}
