/* install.h - step libraries installed at run time: verified uploads, the install directory,
 * deletes.
 *
 * An upload is a step library .so sent by an admin. It is checked on a
 * worker thread (SHA-256 against the one the client claims, the ELF file:
 * a shared object for this machine whose plugin note gives a name, version
 * and ABI this host accepts and that exports the entry point, Ed25519
 * signature by a trusted publisher key as the policy asks), and a plugin of
 * that name and version already loaded refuses it, all before it is loaded:
 * loading runs its constructors. A library that runs out of process
 * (isolation.h) is then loaded only by a step host, in its sandbox, on a
 * worker, for its manifest: never in the daemon.
 * written as a hidden file in the install directory, then loaded on the
 * loop by the plugin host, which may refuse it (ABI, broken schema or
 * template, a name and version already loaded...). A loaded library is
 * renamed to <dir>/<name>-<version>-<sha256 prefix>.so (0644) and
 * recorded in the "steplibs" database (keyed by its SHA-256: signer, the
 * signature (kept even when no key could check it, so that keys configured
 * later can), who installed it and when); a refused one is removed. No
 * restart is needed, and at start the directory is loaded again (the
 * signature re-checked when signatures are required).
 *
 * Bundled libraries are those the daemon loaded from its plugin
 * directories ([plugins] dirs): they cannot be deleted, and an upload of
 * the same name and version is refused (a newer version installs beside).
 *
 * Signature policy ([steplibs] require_signature): "yes" refuses unsigned
 * uploads (and needs trusted_keys); "no" accepts them with a warning and
 * still verifies a signature when one is sent and keys are configured;
 * "auto" (default) is "yes" when trusted_keys is set, else "no".
 *
 * Deleting a version takes it out of the registries (nothing new resolves
 * to it) without dlclose(): runs that resolved it before keep calling it,
 * and it stays mapped until the daemon stops. The file and the record go.
 *
 * Thread: loop, except that uploads do their checking and writing on a
 * worker thread.
 */
#ifndef OPSC_INSTALL_H
#define OPSC_INSTALL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <opsc/step.h>

#include "plugin_host.h"
#include "store.h"

enum install_sig_policy { INSTALL_SIG_AUTO, INSTALL_SIG_YES, INSTALL_SIG_NO };

typedef struct install_opts {
    const char *dir;          /* the install directory (created 0755) */
    const char *trusted_keys; /* ':'-separated key files (trust.h); "" or NULL: none */
    int require_signature;    /* enum install_sig_policy */
} install_opts;

typedef struct plugin_install plugin_install;

/* Load the trusted keys, create the directory, note the bundled step
 * libraries already loaded in `h`, and load every installed file. Fails
 * (err says why) on unreadable or non-Ed25519 keys, require_signature =
 * yes without keys, or a directory that cannot be created; a bad installed
 * file only refuses that file. */
int install_open(plugin_install **out, uv_loop_t *loop, plugin_host *h, store *st,
                 const install_opts *o, char *err, size_t errlen);
/* Free now, or once the uploads in progress have answered (they answer
 * OPSC_ESTATE without touching the plugin host, which may be gone). */
void install_close(plugin_install *in);

/* One loaded step library version, as listed. Valid during the call or
 * until the next load, upload or delete. */
typedef struct install_lib {
    const opsc_steplib *desc;
    const steplib *compiled;
    const char *plugin; /* the .so's plugin name */
    const char *path;
    const char *sha256; /* lowercase hex, "" when the file could not be read */
    bool bundled;
    const json_t *record; /* uploads: {signer, installed_at, installed_by, ...}; else NULL */
} install_lib;

/* Every loaded version, in registration order. */
void install_foreach(plugin_install *in, void (*fn)(const install_lib *lib, void *ud), void *ud);
bool install_find(plugin_install *in, const char *name, const char *version, install_lib *out);
/* Installed files that were not loaded at start: [{path, sha256, reason}] (borrowed). */
const json_t *install_refused(plugin_install *in);
/* True when an unsigned upload is refused. */
bool install_requires_signature(const plugin_install *in);

typedef struct install_request {
    const void *data; /* the .so; borrowed until `done` has run */
    size_t len;
    char sha256[65];          /* claimed by the client, lowercase hex */
    const uint8_t *signature; /* NULL: unsigned */
    size_t signature_len;
    const char *actor; /* who uploads (copied) */
} install_request;

typedef struct install_result {
    int rc;              /* 0, or OPSC_EINVAL / OPSC_EAUTH / OPSC_EEXIST / OPSC_ESTATE / ... */
    bool unchanged;      /* 0 and these bytes were installed already */
    const char *code;    /* on error: checksum_mismatch, not_elf, bad_signature,
                            signature_required, refused, conflict, unavailable, internal */
    const char *message; /* on error: why (names the step and field of a broken library) */
    const char *name, *version; /* on success */
    json_t *warnings;           /* array of strings (borrowed during the callback) */
    bool verified;              /* its signature was checked with a trusted publisher key */
} install_result;

/* Start an upload; `done` runs once on the loop (never from inside this
 * call) unless this returns an error (OPSC_ESTATE while closing). */
typedef void (*install_done_fn)(const install_result *r, void *ud);
int install_upload(plugin_install *in, const install_request *rq, install_done_fn done, void *ud);

/* Delete a version (or an installed file refused at start, named
 * <name>-<version>-*.so). 0 also means done for the latter. OPSC_ENOENT:
 * not installed; OPSC_EPERM: bundled;
 * OPSC_EBUSY: jobs still need it, listed in *jobs (new array of {id, name,
 * steps}); store or file errors. err says why. */
int install_delete(plugin_install *in, const char *name, const char *version, json_t **jobs,
                   char *err, size_t errlen);

/* The pin rule: the jobs (current definitions in the "jobs" database) with
 * a step whose type ("lib.step" or "lib.step@major") resolves now to the
 * version `p` registered and would no longer resolve without it (no other
 * loaded version of that major, or the one it would fall to lacks the
 * step). A new array of {id, name, steps: [type...]}, empty when none. */
int install_pinning_jobs(plugin_host *h, store_txn *txn, const plugin *p, json_t **out);

#endif
