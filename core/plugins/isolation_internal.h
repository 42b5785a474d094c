/* isolation_internal.h - the state behind isolation.h: libraries, their host processes, the steps
 * in flight in each. Everything of one library is guarded by its `mu`. */
#ifndef OPSC_ISOLATION_INTERNAL_H
#define OPSC_ISOLATION_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

#include "bundle.h"
#include "isolation.h"
#include "privsep.h"
#include "shproto.h"

#define ISO_CRASHES      5     /* this many crashes ... */
#define ISO_CRASH_WINDOW 60000 /* ... in this many ms quarantine the library version */
#define ISO_READ_IDLE_MS 1     /* the reader thread reads once no step did for this long; */
#define ISO_READ_LOOK_MS 10    /* while a step reads, it looks again this often */

/* A frame for a step in flight: a "call" or "done" (json), or the DATA after a call. */
typedef struct iso_msg {
    json_t *json; /* NULL for DATA */
    char *data;
    size_t len;
    struct iso_msg *next;
} iso_msg;

typedef struct iso_proc iso_proc;

/* An opsc-stephost process: started by the daemon itself (sid 0), or through
 * the step hosts' helper (privsep_hosts.c: sid is its number there) when the
 * daemon dropped from root to its own user and cannot start, signal or reap
 * a process of the host user itself. */
typedef struct iso_child {
    pid_t pid;
    uint64_t sid;
} iso_child;

/* One step in flight in a host. */
typedef struct iso_call {
    uint32_t id;
    iso_proc *proc;
    pthread_cond_t cv;
    bool waiting; /* for a frame while another thread reads the socket */
    shp_spin spin;
    iso_msg *head, *tail;
    struct iso_call *next;
} iso_call;

/* One opsc-stephost process. Freed when its reader is done and no call uses it. */
struct iso_proc {
    iso_lib *lib;
    iso_child child;
    int fd;
    pthread_mutex_t wmu; /* one writer at a time on fd */
    /* Who reads fd (leader/follower): a step waiting for its next frame reads
     * the socket itself, so a call's answer wakes the thread that needs it and
     * not a reader thread that would wake it in turn. The reader thread reads
     * only when no step has for ISO_READ_IDLE_MS, to hear a host that talks
     * while its steps are busy (a cancel's "done", a pong, an end of stream). */
    shp_reader rd;       /* whoever holds `reading` (HELLO is read before) */
    bool reading;        /* a thread holds the socket's read side */
    bool eof;            /* the stream ended or broke: the reader thread buries the host */
    int waiters;         /* steps waiting for a frame while another thread reads */
    uint64_t idle_since; /* when a step last let go of the read side */
    uint64_t last_ping;
    pthread_cond_t rcv; /* the reader thread: the read side or eof changed */
    int refs;            /* the reader + calls */
    bool dead;           /* the process is gone */
    bool ours;           /* we stopped it (daemon stopping, a step that would not stop) */
    char why[240];       /* what ended it: "crashed (SIGSEGV)", "exited (status 3)" */
    iso_call *calls;
    uint32_t next_id;
    size_t queued; /* bytes waiting in calls' queues: a host may not flood the daemon */
    uint64_t last_heard;
};

struct iso_lib {
    isolation *iso;
    char *name, *version, *path;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a host's state changed */
    iso_proc *proc;    /* the live host, or NULL */
    int starts;
    int readers; /* reader threads still running */
    int users;   /* iso_run() calls in progress */
    uint64_t crash_ms[ISO_CRASHES];
    int ncrash;          /* crashes recorded, the last ISO_CRASHES of them in crash_ms */
    uint64_t not_before; /* back-off: no new host before this (monotonic ms) */
    bool quarantined;
    bool untold; /* quarantined, and the hook has not heard of it yet */
    bool retire; /* an override moved it into the daemon: stop the host once idle */
    char reason[320];
    pid_t last_pid;
    const bundle *bundle; /* a bundle's steps: a process per step (bundle_run), not a host */
    iso_lib *next;
};

struct isolation {
    iso_opts o;
    char *install_raw; /* iso_opts.install_dir, copied */
    char *install_dir; /* resolved, with a trailing '/'; NULL until the folder exists */
    char stephost[PATH_MAX];
    char *user;         /* iso_opts.user, copied */
    privsep_hosts *hosts; /* hosts start through the step hosts' helper, or NULL: directly */
    pthread_mutex_t mu; /* the list */
    iso_lib *libs;
    json_t *overrides; /* step library name -> "process" | "in_process" (isolation.h) */
    uv_async_t *wake;  /* a reader thread quarantined a library: tell the hook on the loop */
    iso_quarantine_fn hook;
    void *hook_ud;
};

/* isolation_proc.c: with lib->mu held. A live host for a step, started if
 * needed (waiting out a back-off); NULL with the reason in `why`. The caller
 * holds a reference (iso_proc_release). */
iso_proc *iso_proc_get(iso_lib *l, char *why, size_t whylen);
void iso_proc_release(iso_proc *p);
/* With lib->mu held (dropped while it reads): wait up to `ms` for a frame of
 * `c` in its queue, reading the socket itself when no other thread does. */
void iso_proc_wait(iso_call *c, int ms);
/* Any thread, lib->mu not held. */
int iso_proc_send(iso_proc *p, uint32_t id, json_t *msg, const void *data, size_t len);
/* With lib->mu held: stop the host (SIGTERM or SIGKILL), recording why when nothing else did. */
void iso_proc_kill(iso_proc *p, int sig, const char *why);
void iso_msg_free(iso_msg *m);
/* bundle_run.c: one step of the bundle `l->bundle`, on the worker that runs it. */
int bundle_run(iso_lib *l, const opsc_step_type *type, opsc_step_ctx *ctx);
/* Start opsc-stephost with `args` (its mode, path and options, NULL-ended;
 * the program, --user and --memory-limit are added) sandboxed as the policy
 * says, an empty environment, in a process group of its own, `stdio` as its
 * standard streams (-1: /dev/null; for stderr, the daemon's own) and for
 * --library `host` as its SHP_HOST_FD (else -1): 0 with *c, or a negative
 * code with why in err. Any thread. */
int iso_spawn(const isolation *iso, const char *const *args, const int stdio[3], int host,
              iso_child *c, char *err, size_t errlen);
/* Signal its process group. */
void iso_child_signal(const isolation *iso, const iso_child *c, int sig);
/* True with its waitpid() status once it ended; `block`: wait for that. */
bool iso_child_wait(const isolation *iso, const iso_child *c, bool block, int *status);
/* It ended and was waited for: forget it (the helper kills its group if not). */
void iso_child_release(const isolation *iso, iso_child *c);
/* A signal's name ("SIGSEGV"). */
const char *iso_signame(int sig);

#endif
