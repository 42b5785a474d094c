/* fuzz_steplib_manifest.c - libFuzzer target: the manifest an opsc-stephost writes of a library
 * that runs out of process (core/plugins/isolation_manifest.c, bundle_manifest.c), as a hostile
 * host might write it. Checked: it is refused or gives a descriptor whose init() registers step
 * libraries with a name, a version and NULL-terminated step types, each of which the daemon's
 * compiler (steplib_compile) then accepts or refuses with a reason. */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "isolation.h"
#include "steptype.h"

static void fz_log(const char *component, int level, const char *fmt, ...)
{
    (void)component, (void)level, (void)fmt;
}

static int fz_register(const opsc_steplib *lib, void *state)
{
    (void)state;
    if (!lib->name || !lib->version || !lib->types)
        __builtin_trap();
    size_t n = 0;
    while (lib->types[n])
        if (!lib->types[n++]->name)
            __builtin_trap();
    steplib *compiled = NULL;
    char err[1024] = "";
    int rc = steplib_compile(&compiled, lib, err, sizeof(err));
    if (rc < 0 && !err[0])
        __builtin_trap();
    steplib_free(compiled);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    iso_manifest *m = NULL;
    char err[512] = "";
    if (iso_manifest_parse((const char *)data, size, &m, err, sizeof(err)) < 0) {
        if (!err[0])
            __builtin_trap();
        return 0;
    }
    const opsc_plugin *d = iso_manifest_plugin(m);
    opsc_host_api api = {.size = sizeof(api), .log = fz_log, .register_steplib = fz_register};
    void *state = m;
    if (d->init)
        d->init(&api, NULL, &state);
    d->shutdown(m);
    return 0;
}
