/* opsc/plugin.h - what a plugin exports: one entry symbol returning its descriptor.
 *
 * A plugin is a shared object built against this SDK (pkg-config
 * opsconductor-sdk) with hidden visibility. It exports exactly one symbol,
 * opsc_plugin_entry, best defined with OPSC_PLUGIN_DEFINE:
 *
 *     #include <opsc/plugin.h>
 *
 *     static const opsc_host_api *host;
 *
 *     static int hello_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
 *     {
 *         host = api;
 *         ... bind config, register what the plugin provides ...
 *         return 0;
 *     }
 *
 *     static void hello_shutdown(void *state) { ... }
 *
 *     OPSC_PLUGIN_DEFINE("hello", "1.0.0", OPSC_KIND_NOTIFIER, "Says hello", "MIT",
 *                        hello_init, hello_shutdown);
 *
 * Loading. The host dlopen()s the file (RTLD_NOW | RTLD_LOCAL), calls
 * opsc_plugin_entry() and refuses the plugin, with a log line and an entry
 * in GET /api/v1/plugins, when: a symbol is unresolved; the entry is
 * missing; the descriptor's abi_major differs from the host's or its
 * abi_minor is newer; the name is taken; init() fails. A refused plugin
 * never stops the daemon. A step library that runs out of process (an
 * upload, by default) is loaded that way only by opsc-stephost, in its
 * sandbox: init() runs there, once per upload, daemon start and host, and
 * the daemon reads what it registered (the same checks and refusals). Its
 * shutdown() is not called then.
 *
 * Lifetime. init() runs once on the loop thread at start (or when an admin
 * installs the plugin at run time). The plugin registers what it provides
 * from inside init() only. shutdown() runs once on the loop thread when the
 * daemon stops, after everything the plugin registered has stopped being
 * called; the host never dlclose()s a plugin while anything it registered
 * can still be called.
 *
 * Memory. Plugins call the host only through the opsc_host_api table handed
 * to init() (never by linked symbols), and allocate memory that crosses the
 * boundary with its alloc/free.
 */
#ifndef OPSC_PLUGIN_H
#define OPSC_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <opsc/errors.h>
#include <opsc/host.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI this header describes. A host loads plugins built with the same
 * major and a minor no newer than its own. The minor grows when members are
 * appended to a table; the major only when something is removed or changed. */
#define OPSC_ABI_MAJOR 1
#define OPSC_ABI_MINOR 3

/* Kinds a plugin provides (bit set). Appended only. */
#define OPSC_KIND_TRANSPORT (1u << 0)
#define OPSC_KIND_STEPLIB   (1u << 1)
#define OPSC_KIND_NOTIFIER  (1u << 2)
#define OPSC_KIND_SCANNER   (1u << 3)
#define OPSC_KIND_AUTH      (1u << 4)

typedef struct opsc_plugin {
    size_t size;        /* sizeof(opsc_plugin) the plugin was built with */
    uint16_t abi_major; /* OPSC_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor; /* OPSC_ABI_MINOR the plugin was built with */
    const char *name;   /* unique, [a-z0-9-]+, e.g. "transport-ssh" */
    const char *version; /* semantic version of the plugin, e.g. "1.4.2" */
    unsigned kinds;     /* OPSC_KIND_* it registers */
    const char *description; /* one line */
    const char *license;     /* SPDX identifier */
    /* Called once on the loop thread. `api` stays valid until shutdown()
     * returns: keep the pointer. `cfg` is the plugin's config section, valid
     * during init() only: bind it with api->config_bind(). Set *state to
     * anything the plugin wants handed back (to shutdown and to the
     * functions it registers). Return 0, or a negative OPSC_E* code after
     * api->log()-ing why. */
    int (*init)(const opsc_host_api *api, const opsc_config *cfg, void **state);
    /* Called once on the loop thread; free everything. May be NULL. */
    void (*shutdown)(void *state);
} opsc_plugin;

/* What a plugin says about itself where the host can read it without
 * loading it: a section of its ELF file. A host validates an uploaded .so
 * against it (name, version, ABI) before dlopen() runs any of its code
 * (constructors run at load). OPSC_PLUGIN_DEFINE writes it; its name and
 * version must then be string literals. (ABI 1.2) */
#define OPSC_PLUGIN_NOTE_SECTION ".opsc_plugin"
#define OPSC_PLUGIN_NOTE_MAGIC   "OPSCPLG"
typedef struct opsc_plugin_note {
    char magic[8];      /* OPSC_PLUGIN_NOTE_MAGIC */
    uint16_t abi_major; /* as in the descriptor */
    uint16_t abi_minor;
    char name[64];    /* NUL-terminated */
    char version[32]; /* NUL-terminated */
} opsc_plugin_note;

/* The one exported symbol. Returns a descriptor with static storage. */
typedef const opsc_plugin *(*opsc_plugin_entry_fn)(void);
#define OPSC_PLUGIN_ENTRY_SYMBOL "opsc_plugin_entry"

#if defined(__GNUC__)
#define OPSC_EXPORT __attribute__((visibility("default")))
#else
#define OPSC_EXPORT
#endif

/* Defines opsc_plugin_entry() returning a descriptor filled with this
 * header's size and ABI version, so a plugin cannot get them wrong, and the
 * plugin's note (opsc_plugin_note). */
#define OPSC_PLUGIN_DEFINE(name_, version_, kinds_, description_, license_, init_, shutdown_)      \
    __attribute__((                                                                                \
        used,                                                                                      \
        section(OPSC_PLUGIN_NOTE_SECTION))) static const opsc_plugin_note opsc_plugin_note_ = {    \
        OPSC_PLUGIN_NOTE_MAGIC, OPSC_ABI_MAJOR, OPSC_ABI_MINOR, name_, version_};                  \
    OPSC_EXPORT const opsc_plugin *opsc_plugin_entry(void);                                        \
    const opsc_plugin *opsc_plugin_entry(void)                                                     \
    {                                                                                              \
        static const opsc_plugin descriptor = {                                                    \
            sizeof(opsc_plugin), OPSC_ABI_MAJOR, OPSC_ABI_MINOR, (name_),    (version_), (kinds_), \
            (description_),      (license_),     (init_),        (shutdown_)};                     \
        return &descriptor;                                                                        \
    }

#ifdef __cplusplus
}
#endif
#endif /* OPSC_PLUGIN_H */
