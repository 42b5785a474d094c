/* bundle.h - step libraries in any language: the .tar.gz bundle, its manifest, its steps.
 *
 * A bundle is a gzip-compressed tar archive holding `steplib.json` (the
 * manifest: name, version, abi, step types with the same JSON Schemas, OS
 * families and declarative command templates as a C library) and the
 * executables of its imperative steps. It is uploaded through the same
 * endpoint as a .so (install.h: checksummed, signed, versioned side by side,
 * pinned), kept as <dir>/<name>-<version>-<sha256 prefix>.tar.gz (the bytes
 * that were signed) and unpacked beside it into <same>.d/, again at every
 * start, so what runs is always what was signed.
 *
 * Unpacking trusts nothing in the archive: only regular files and folders
 * (no links, devices or fifos), relative names without "..", at most
 * BUNDLE_MAX_ENTRIES entries and BUNDLE_MAX_BYTES unpacked, files 0644 or
 * 0755 whatever the archive says.
 *
 * An imperative step of a bundle runs its executable in a sandbox (opsc-stephost
 * --exec) speaking the line protocol of bundle_proto.h; bundle_run() is its
 * daemon end, called by iso_run() on an executor worker.
 *
 * Threads: bundle_unpack() anywhere (uploads call it on a worker); loading
 * on the loop; bundle_run() on an executor worker.
 */
#ifndef OPSC_BUNDLE_H
#define OPSC_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <opsc/step.h>

#include "plugin_host.h"

#define BUNDLE_MAX_ENTRIES 512
#define BUNDLE_MAX_BYTES   (64u << 20) /* unpacked */
#define BUNDLE_MANIFEST    "steplib.json"
#define BUNDLE_SUFFIX      ".tar.gz"
#define BUNDLE_DIR_SUFFIX  ".d"

typedef struct bundle bundle;

/* True when `data` starts like a gzip stream (an upload that is a bundle). */
bool bundle_is_gzip(const void *data, size_t len);

/* Check the archive `gz` (`len` bytes) and its manifest and, when `dir` is
 * not NULL, unpack it there (created; it must not exist; a failure leaves
 * nothing behind). 0 with *out, or OPSC_EINVAL / OPSC_EABI / OPSC_E2BIG with
 * why in err ("steplib.json: steps[1].executable: ..."), or -errno writing. */
int bundle_open(const void *gz, size_t len, const char *dir, bundle **out, char *err,
                size_t errlen);
const char *bundle_name(const bundle *b);
const char *bundle_version(const bundle *b);
/* The folder moved (an install renames it into place). */
int bundle_set_dir(bundle *b, const char *dir);
/* Free a bundle that was not loaded. */
void bundle_free(bundle *b);

/* Load `b` (transferred, also on failure) into the plugin host, listed
 * under the archive's `path`, as plugin_host_load() does a .so: the same
 * refusals (ABI, a duplicate, a broken schema or template with the step and
 * field at fault). */
int bundle_load(plugin_host *h, const char *path, bundle *b, const plugin_load_opts *opts,
                plugin **out, char *err, size_t errlen);
/* True when the plugin `p` is a bundle (its state is the bundle). */
bool bundle_is(const plugin *p);

/* Remove `dir` and everything in it (a bundle's folder, a step's scratch
 * folder: whatever a step left there, read-only folders included). */
void bundle_rmtree(const char *dir);

/* The folder of the bundle whose plugin state is `b`. */
const char *bundle_dir(const bundle *b);

#endif
