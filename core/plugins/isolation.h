/* isolation.h - step libraries out of the daemon's process: which library runs where, and the
 * daemon's end of opsc-stephost (stephost/shproto.h).
 *
 * A library that runs out of process is never loaded in the daemon: none of
 * its code (constructors, init(), run()) runs with the daemon's privileges
 * or memory (the master key, the JWT key). What it declares (descriptor,
 * step types, schemas, templates: the job API needs them) comes from its
 * manifest, which `opsc-stephost --manifest` writes after loading it and
 * calling its init() in the same sandbox as its steps (isolation_manifest.c),
 * with a time limit ([steplibs] host_load_timeout) and a size limit; a
 * crash there refuses the library with the signal named. The daemon checks
 * that manifest exactly as it checks a loaded descriptor (ABI, names,
 * duplicates, schemas, templates: the same refusals) and renders the
 * declarative steps itself; the run() functions of the imperative ones
 * execute in an opsc-stephost of that library version, started on first
 * use: sandboxed, and on the other side of a socket, so a crash, an abort,
 * an exit or an endless loop there fails the steps in flight with a reason
 * instead of ending the daemon. (Under `always`, a plugin of the daemon's
 * own directories that provides more than step libraries, or binds config
 * keys, which a host has no access to, or that no host could confine itself
 * to read (its steps then fail with that reason), is loaded in the daemon
 * after all, as the package's own code; its imperative steps still run in a
 * host. An uploaded library never is: it is refused.) The executor's worker
 * thread that would have called run() calls iso_run() instead: it sends the
 * step to the host and serves the host's step API calls with the daemon's
 * own step API (plugin_host_api()), so an out-of-process step sees exactly
 * what an in-process one does.
 *
 * Supervision: a host that dies is restarted by the next step after a
 * back-off (100 ms doubling to 5 s); 5 crashes in 60 s quarantine the
 * library version (its steps fail at once with the reason) until an admin
 * re-enables it. A cancelled or timed-out step gets CANCEL, then its host
 * SIGTERM after stop_grace, then SIGKILL after another. A host that leaves
 * three heartbeats unanswered is killed and counted as crashed.
 *
 * Threads: iso_run() on an executor worker; the rest on the loop, or any
 * thread (each library's state has its own mutex).
 */
#ifndef OPSC_ISOLATION_H
#define OPSC_ISOLATION_H

#include <jansson.h>
#include <stdint.h>

#include <opsc/step.h>

#include "plugin_host.h"

/* [steplibs] isolation, in the order of its choices. */
enum iso_mode { ISO_UNTRUSTED, ISO_ALWAYS, ISO_NEVER };

typedef struct iso_opts {
    int mode;                /* enum iso_mode */
    const char *install_dir; /* uploaded libraries live here (ISO_UNTRUSTED isolates them) */
    const char *stephost;    /* opsc-stephost; NULL or "": beside the daemon, or installed */
    const char *user;        /* a host started by a daemon running as root becomes this user */
    int64_t memory_limit;    /* bytes of address space of a host; 0: none */
    int64_t stop_grace_ms;   /* CANCEL -> SIGTERM -> SIGKILL, this long apart */
    int64_t heartbeat_ms;    /* a ping when the host was silent this long */
    int64_t load_timeout_ms; /* a manifest that takes longer refuses the library; 0: 10 s */
} iso_opts;

typedef struct iso_lib iso_lib;
typedef struct isolation isolation;

/* Loop, once, before any plugin loads (what it runs out of process is listed from its
 * manifest): the policy (copied). */
int plugin_host_set_isolation(plugin_host *h, const iso_opts *o);
/* Loop: `fn` runs on the loop (with `ud`, the strings borrowed until it
 * returns) each time a library version is quarantined, for the audit log;
 * NULL: nothing does. */
typedef void (*iso_quarantine_fn)(void *ud, const char *name, const char *version,
                                  const char *reason);
void plugin_host_set_quarantine_hook(plugin_host *h, iso_quarantine_fn fn, void *ud);
/* Any thread: does the library at `path` run out of process (and so is
 * listed from its manifest)? Is it an upload (in the install directory)? */
bool plugin_host_isolates(plugin_host *h, const char *path);
bool plugin_host_uploaded(plugin_host *h, const char *path);

/* What opsc-stephost --manifest wrote of a library (shproto.h). */
typedef struct iso_manifest iso_manifest;
/* Any thread (uploads fetch theirs on a worker): run the step host on the
 * library at `path` and read its manifest (a new string of *len bytes), or
 * OPSC_EPLUGIN / OPSC_ETIMEDOUT / OPSC_E2BIG with why in err ("the step host
 * crashed (SIGSEGV) while it loaded the library: in its constructors or
 * init()"), or OPSC_ESTATE when no host could start or confine itself (the
 * library was not touched); iso_manifest_parse() answers OPSC_ESTATE too
 * for a manifest that says so. */
int iso_manifest_fetch(plugin_host *h, const char *path, char **text, size_t *len, char *err,
                       size_t errlen);
/* Check a manifest (from a host that may be hostile: anything malformed is
 * refused with why in err, never trusted). 0 with *out, or OPSC_EPLUGIN /
 * OPSC_EINVAL. The descriptor's init() registers the step libraries it lists
 * (or fails as the library's did, with its logged reason); its shutdown()
 * frees it. */
int iso_manifest_parse(const char *text, size_t len, iso_manifest **out, char *err, size_t errlen);
const opsc_plugin *iso_manifest_plugin(const iso_manifest *m);
/* The daemon would have to load it itself: it provides more than step
 * libraries, or its init() bound config keys (refused out of process). */
bool iso_manifest_wants_process(const iso_manifest *m);
void iso_manifest_free(iso_manifest *m);

/* Loop: the out-of-process record of the library `reg` belongs to, or NULL
 * when it runs in the daemon. Lives until the host is freed. */
iso_lib *plugin_host_isolated(plugin_host *h, const plugin_reg *reg);
/* Worker thread: run `type` of `lib` for `ctx`, serving its calls. Returns
 * what run() returned, or OPSC_EREMOTE after step_fail() with the reason
 * ("testexec 1.0.0: step crash crashed (SIGSEGV)"), or OPSC_ECANCELED. */
int iso_run(iso_lib *lib, const opsc_step_type *type, opsc_step_ctx *ctx);

/* Where the library `name` `version` at `path` runs (GET /api/v1/steplibs):
 * {"runs": "process" | "in_process", "pid": n | null, "restarts": n,
 *  "crashes": n (in the last minute), "quarantined": bool, "reason": text | null,
 *  "override": "process" | "in_process" | null, "restart_needed": bool}. */
json_t *plugin_host_isolation_json(plugin_host *h, const char *name, const char *version,
                                   const char *path);
/* Lift a quarantine: OPSC_ENOENT when that version never ran out of process,
 * OPSC_ESTATE when it is not quarantined. */
int plugin_host_isolation_reenable(plugin_host *h, const char *name, const char *version);

/* An admin's choice for one step library, all its versions (PUT
 * /api/v1/steplibs/{name}/isolation), over the policy:
 * - ISO_OV_PROCESS: its imperative steps run in a step host from the next
 *   step on. A library the daemon loaded itself (one of its own, or any under
 *   `never`) stays loaded for its declarations; from the next start it is
 *   still loaded the same way (its name is known only once it is loaded).
 * - ISO_OV_IN_PROCESS: only for a library of the daemon's own directories
 *   (or any under `never`): an upload is never loaded in the daemon, and a
 *   bundle has no code to load. In the daemon from the next step when the
 *   daemon has it loaded, else from the next start (the JSON says
 *   "restart_needed"); a host it leaves idle is stopped.
 * Loop. The caller persists it (the store); it is set again at start, before
 * any plugin loads. */
enum iso_override { ISO_OV_DEFAULT, ISO_OV_PROCESS, ISO_OV_IN_PROCESS };
int plugin_host_isolation_override(plugin_host *h, const char *name, int ov);
int plugin_host_isolation_override_of(plugin_host *h, const char *name);
/* May the library at `path` be forced in process (see above)? */
bool plugin_host_isolation_may_run_here(plugin_host *h, const char *path);
/* Loading: an in_process override names a step library this manifest lists. */
bool iso_manifest_overridden(plugin_host *h, const iso_manifest *m);

/* plugin_host_free(): kill every host and wait for their threads. */
void iso_free(isolation *iso);

#endif
