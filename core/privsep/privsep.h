/* privsep.h - privilege separation: the helper that starts local steps, and the daemon's drop.
 *
 * The daemon must never run a command of a job with its own privileges: its
 * data directory holds the JWT signing key and the vault's master key. So
 * at start-up, before it reads any key or opens the store, it starts
 * opsc-spawner (spawner/) over a socketpair; the helper keeps the power to
 * switch users (root, or CAP_SETUID + CAP_SETGID) and is the only process
 * that starts local steps, as [executor] local_user. Then the daemon drops
 * its own: to [server] user when started as root, every capability (but the
 * one to listen on a port below 1024), and no new privileges. Local steps are refused, with the
 * reason, when the helper cannot switch (not root, no capabilities, no such user); the daemon still
 * starts.
 *
 * Start order: privsep_start() (blocking, bounded: reads the helper's
 * HELLO), privsep_drop(), then the loop exists and privsep_attach() serves
 * spawns on it. Processes: privsep_spawn() sends the request (argv, env,
 * cwd and the three stdio descriptors) and the helper answers started /
 * failed / exited; signals and the release go the same way. When the
 * daemon's end of the socket closes (exit, crash, SIGKILL) the helper kills
 * every group it started and every descendant, and exits.
 *
 * The opsc_local_* types are the SDK's (opsc/host.h): the plugin host
 * forwards the host API's local_* members here.
 *
 * Thread: privsep_start/drop before the loop runs; everything else on the
 * loop thread.
 */
#ifndef OPSC_PRIVSEP_H
#define OPSC_PRIVSEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include <opsc/host.h>

typedef struct privsep privsep;

typedef struct privsep_opts {
    const char *spawner; /* opsc-spawner; NULL or "": next to the daemon's build, else installed */
    const char *local_user;  /* the user local steps run as */
    const char *const *hide; /* paths local steps must not see (data dir, key files, config) */
    size_t nhide;
    int hello_timeout_ms; /* 0: 10 s */
    /* The helper's log lines and the client's own (level OPSC_LOG_*); NULL:
     * standard error. Called on the loop thread (or in privsep_start). */
    void (*log)(int level, const char *text);
    /* Step hosts (privsep_hosts.c): a daemon about to drop the right to
     * switch users (root, or CAP_SETUID + CAP_SETGID) also starts a helper
     * that starts opsc-stephost (`stephost`, resolved as
     * privsep_find_stephost() does) as `host_user`, and nothing else. NULL:
     * none. */
    const char *stephost;
    const char *host_user;
} privsep_opts;

/* Start the helper and read its HELLO. Never fails the daemon: *out is set
 * whenever memory allows (OPSC_ENOMEM otherwise), and when the helper
 * cannot start or cannot switch, its local steps are refused with the
 * reason (privsep_available). The daemon's environment is not passed on. */
int privsep_start(privsep **out, const privsep_opts *o);
/* Serve spawns on `loop` from now on. */
int privsep_attach(privsep *ps, uv_loop_t *loop);
/* 0 when local processes can start, else a negative code and why. */
int privsep_available(const privsep *ps, char *why, size_t whylen);
/* What the helper could do to hide the daemon (for the start-up log line). */
const char *privsep_summary(const privsep *ps);
/* Close the socket (the helper then kills what it started and exits) and
 * free once the loop has closed the handle. Processes not yet released get
 * no more callbacks. NULL is a no-op. */
void privsep_close(privsep *ps);

int privsep_spawn(privsep *ps, const opsc_local_spawn *req, const opsc_local_cb *cb, void *ud,
                  opsc_local_proc **out, char *err, size_t errlen);
int privsep_signal(opsc_local_proc *p, int sig);
void privsep_release(opsc_local_proc *p);
int privsep_kill_recorded(privsep *ps, const char *handle,
                          void (*done)(void *ud, int killed, const char *msg), void *ud);

/* ---- step hosts (privsep_hosts.c) ----
 *
 * A daemon that drops from root to its own user can no longer start a step
 * host as [steplibs] host_user: a second opsc-spawner, in step host mode
 * (spawner/spawner_host.c), does, and reports its exit; signals go through
 * it too (the daemon may not signal another user's process). Unlike the
 * local-steps client these calls block and may be made on any thread: a
 * step host starts and is waited for on executor workers and on its reader
 * thread. */
typedef struct privsep_hosts privsep_hosts;

/* The step hosts' helper of `ps`, or NULL when there is none (the daemon could
 * not switch users at start, or no host user was named). */
privsep_hosts *privsep_hosts_of(const privsep *ps);
/* 0 when step hosts start through it, else OPSC_EPERM and why (the user does not exist, the
 * helper died). */
int privsep_hosts_available(const privsep_hosts *h, char *why, size_t whylen);
/* opsc-stephost: `configured`, else beside the daemon in a build tree, else installed. */
void privsep_find_stephost(const char *configured, char *out, size_t n);
/* Start `argv` (argv[0] the step host, see spawner_host.c for what the helper accepts) with
 * `fds` as its stdin, stdout and stderr (for --library the third is its socket, fd 3): 0 with
 * the helper's number of it in *id and its pid, or a negative code and why. Blocks until the
 * helper answers. */
int privsep_host_spawn(privsep_hosts *h, const char *const *argv, const int fds[3],
                       uint64_t *id, pid_t *pid, char *err, size_t errlen);
int privsep_host_signal(privsep_hosts *h, uint64_t id, int sig);
/* Wait up to `ms` (-1: for ever) for it to end: 1 with its waitpid() status, 0 when it has not.
 * A helper that died reports it killed (SIGKILL): it killed everything it started. */
int privsep_host_wait(privsep_hosts *h, uint64_t id, int ms, int *status);
/* Forget it (the helper kills its group if it still runs). */
void privsep_host_release(privsep_hosts *h, uint64_t id);

/* The daemon's own drop, after privsep_start(): when running as root and
 * `user` is set, switch to it (groups, gid, uid); then clear every
 * capability (ambient ones from systemd included) but CAP_NET_BIND_SERVICE
 * when the daemon has it (its listen ports below 1024), and set no_new_privs.
 * Fails (err says why) when `user` is set but cannot be taken: a daemon
 * asked to drop must not go on as root. `warn` (may be NULL) receives a
 * note when the daemon goes on as root. */
int privsep_drop(const char *user, char *err, size_t errlen, char *warn, size_t warnlen);

#endif
