/* stephost_internal.h - opsc-stephost's state: the library it runs, the steps in flight. */
#ifndef OPSC_STEPHOST_INTERNAL_H
#define OPSC_STEPHOST_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <opsc/host.h>
#include <opsc/plugin.h>
#include <opsc/step.h>

#include "shproto.h"

#define SH_MANIFEST_LOG_MAX 64 /* log lines of init() kept for the manifest */
#define SH_READ_IDLE_MS     1  /* the main thread reads once no step did for this long; */
#define SH_READ_LOOK_MS     10 /* while a step reads, it looks again this often */
#define SH_IDLE_THREADS     4  /* step threads kept waiting for the next step */

/* A frame waiting for a step's thread: a "ret" (json) or the bytes after it. */
typedef struct hmsg {
    json_t *json; /* NULL for DATA */
    char *data;
    size_t len;
    struct hmsg *next;
} hmsg;

/* One step in flight: the opsc_step_ctx its run() gets. */
struct opsc_step_ctx {
    uint32_t id;
    const opsc_step_type *type;
    atomic_bool cancelled;
    pthread_cond_t cv; /* with sh.qmu */
    bool waiting;      /* for a frame while another thread reads the socket */
    shp_spin spin;
    hmsg *head, *tail; /* frames for it, under sh.qmu */
    char **pool;       /* strings handed to run(), freed when it returns */
    size_t npool, cappool;
    struct opsc_step_ctx *next;
    struct opsc_step_ctx *queued; /* waiting for an idle step thread (stephost.c) */
};
typedef struct opsc_step_ctx hstep;

typedef struct stephost {
    int fd;
    pthread_mutex_t wmu; /* one writer at a time */
    pthread_mutex_t smu; /* the steps list */
    hstep *steps;
    /* Who reads fd (leader/follower, as the daemon's end does): a step waiting
     * for an answer reads the socket itself; the main thread reads only when no
     * step has for SH_READ_IDLE_MS (a "start", a "cancel", a "ping"). */
    pthread_mutex_t qmu; /* the steps' queues and what follows (before smu) */
    pthread_cond_t rcv;  /* the main thread's naps */
    shp_reader rd;       /* whoever holds `reading` */
    bool reading;
    int waiters; /* steps waiting while another thread reads */
    uint64_t idle_since;
    const opsc_steplib *lib;
    void *lib_state;
    void *dl;
    const opsc_plugin *plugin;
    /* --manifest: no daemon on fd 3; init()'s log lines are kept for the manifest. */
    bool manifest;
    bool config_keys; /* init() bound a config section with keys: refused out of process */
    json_t *init_log; /* [{component, level, msg}] */
} stephost;

extern stephost sh; /* one per process: the host API carries no context */

/* host_table.c */
const opsc_host_api *sh_host_api(void);
/* Send a call of the step and, when `reply`, wait for its "ret" (new
 * reference; NULL when the daemon is gone). `data` rides as a DATA frame. */
json_t *sh_call(hstep *s, json_t *req, bool reply, const void *data, size_t len);

/* stephost.c */
int sh_send(uint32_t id, json_t *msg); /* steals msg */
/* The next frame for `s`, waiting. NULL once the daemon is gone. */
hmsg *sh_wait(hstep *s);
void sh_msg_free(hmsg *m);

/* manifest.c: --manifest: confine this process as for steps, load `library`, call its init()
 * and write what it declared as one JSON document on stdout (the daemon's pipe); never
 * returns. */
void sh_manifest(const char *library, const char *user, uint64_t memory_limit);

/* sandbox.c: confine this process before it loads `library` (as `user` when
 * started as root); `notes` gets what was applied (a JSON array), and
 * `load_path` what to dlopen(). 0, or -errno when a required layer failed. */
int sh_sandbox(const char *library, const char *user, uint64_t memory_limit, json_t *notes,
               char *load_path, size_t n, char *err, size_t errlen);

/* Pieces of the sandbox that sandbox_exec.c applies too. */
uint64_t sh_fs_rights(long abi); /* every file right Landlock's ABI `abi` can refuse */
/* A Landlock ruleset handling every file right of the kernel's ABI (*abi;
 * *handled: those rights), TCP and, from ABI 6, signals and abstract
 * sockets: an fd, 0 when the kernel has no Landlock (noted), or -errno. */
int sh_landlock_new(long *abi, uint64_t *handled, json_t *notes);
/* Allow `rights` beneath a folder, or its file rights on a file: 0 or -errno
 * (a path that does not exist is 0). */
int sh_landlock_allow_fd(int ruleset, int fd, uint64_t rights);
int sh_landlock_allow_path(int ruleset, const char *path, uint64_t rights);
/* Confine this process with the ruleset when `rc` is 0, close it: the result. */
int sh_landlock_apply(int ruleset, int rc, long abi, json_t *notes);
void sh_drop_bounding_set(void);
void sh_drop_capabilities(json_t *notes);
void sh_limit(int resource, uint64_t value);
/* Started as root: become `user` (1), nothing to switch from (0), or -errno with err. */
/* Root, or CAP_SETUID and CAP_SETGID: it can switch to the step host user. */
bool sh_may_switch(void);
int sh_switch_user(const char *user, json_t *notes, char *err, size_t errlen);

/* sandbox_exec.c: --exec: confine this process for a bundle's step executable
 * `exe` (relative to the folder `bundle`), working in `scratch`, and execve()
 * it. Returns only on failure, having said why on stderr. */
int sh_exec_step(const char *exe, const char *bundle, const char *scratch, const char *user,
                 uint64_t memory_limit);

#endif
