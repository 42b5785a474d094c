/* steplib_bundled.c - telling the daemon's own step libraries from every other.
 *
 * Why a name and a place, and not more: the load-time `sh -n` of each posix template
 * (steptype_shcheck.c) is a convenience, not a guard. It refuses a broken template when its
 * library loads instead of on the first target that runs it; a template that parses can still
 * do anything its author wrote. The bundled libraries' templates are parsed by the unit tests
 * of the build that made them (test_steplibs), so asking sh again at each start only costs
 * (a fork and an exec per template: 13% of a sanitizer daemon's start). A library counts as
 * bundled only when all of these hold:
 * - its library and plugin names are of the bundled set, and its file is named for them: a
 *   third-party .so an operator drops into the same directory is another file;
 * - it is the file steplib-<lib>.so itself, resolved through links, in the daemon's own step
 *   library directory, where the package (or the build) puts it: a library of the same name
 *   loaded from any other [plugins] dir, or a link from that directory to elsewhere, is
 *   checked. Whoever can write that directory can replace the daemon's own files anyway.
 * The caller also keeps checking uploads and bundles, wherever their install directory is. */
#include "steplib_bundled.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build_config.h"

static const char *const bundled_libs[] = {"core", "linux", "windows"};

static bool bundled_name(const char *lib_name)
{
    for (size_t i = 0; i < sizeof(bundled_libs) / sizeof(*bundled_libs); i++)
        if (strcmp(lib_name, bundled_libs[i]) == 0)
            return true;
    return false;
}

/* Is the directory `dir` (resolved) the existing directory `want`? */
static bool same_dir(const char *dir, const char *want)
{
    char real[PATH_MAX];
    return want && *want && realpath(want, real) && strcmp(dir, real) == 0;
}

bool steplib_bundled_in(const char *path, const char *plugin_name, const char *lib_name,
                        const char *installed_dir, const char *build_dir)
{
    char want[64], real[PATH_MAX], lib_dir[PATH_MAX];
    if (!path || !plugin_name || !lib_name || !bundled_name(lib_name))
        return false;
    snprintf(want, sizeof(want), "steplib-%s", lib_name);
    if (strcmp(plugin_name, want) != 0 || !realpath(path, real))
        return false;
    char *base = strrchr(real, '/');
    size_t n = strlen(want);
    if (!base || strncmp(base + 1, want, n) != 0 || strcmp(base + 1 + n, ".so") != 0)
        return false;
    *base = '\0';
    if (same_dir(real, installed_dir))
        return true;
    return build_dir &&
           snprintf(lib_dir, sizeof(lib_dir), "%s/%s", build_dir, lib_name) <
               (int)sizeof(lib_dir) &&
           same_dir(real, lib_dir);
}

bool steplib_bundled(const char *path, const char *plugin_name, const char *lib_name)
{
    /* A build tree: <build>/core/opsconductord beside <build>/steplibs/<lib>/. */
    char exe[PATH_MAX - 32];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash = len > 0 ? memrchr(exe, '/', (size_t)len) : NULL;
    char build_dir[PATH_MAX];
    if (slash) {
        *slash = '\0';
        snprintf(build_dir, sizeof(build_dir), "%s/../steplibs", exe);
    }
    return steplib_bundled_in(path, plugin_name, lib_name, OPSC_STEPLIB_DIR,
                              slash ? build_dir : NULL);
}
