/* steplib_bundled.h - is a step library one of those built and shipped with the daemon?
 *
 * Those are trusted to parse in sh without asking sh at every start (steplib_compile_bundled):
 * the unit tests parse their templates instead. Every other library is checked when it loads.
 */
#ifndef OPSC_STEPLIB_BUNDLED_H
#define OPSC_STEPLIB_BUNDLED_H

#include <stdbool.h>

/* The library `lib_name` registered by the plugin `plugin_name` loaded from `path`: true only
 * for one of the bundled set (core, linux, windows) from its own file (steplib-<lib>.so, not
 * a link elsewhere) in the daemon's own step library directory: the installed one
 * (OPSC_STEPLIB_DIR) or, for a daemon run from its build tree, <build>/steplibs/<lib>/. */
bool steplib_bundled(const char *path, const char *plugin_name, const char *lib_name);
/* The same against the given directories (tests). */
bool steplib_bundled_in(const char *path, const char *plugin_name, const char *lib_name,
                        const char *installed_dir, const char *build_dir);

#endif
