/* spawner_internal.h - opsc-spawner's state: the local-steps user, the processes it started.
 *
 * opsc-spawner is the only part of OpsConductor that keeps the privilege to
 * switch users (root, or CAP_SETUID + CAP_SETGID). It is single-threaded:
 * one poll() loop over the daemon's socket, a signalfd for SIGCHLD and
 * SIGTERM, and the status pipes of processes being started.
 */
#ifndef OPSC_SPAWNER_INTERNAL_H
#define OPSC_SPAWNER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "spawn_proto.h"

#define SPAWNER_MAX_PROCS 65536 /* records kept at once; more spawns are refused */

typedef struct sp_user {
    char name[64];
    char home[256];
    uid_t uid;
    gid_t gid;
    gid_t groups[64];
    int ngroups;
} sp_user;

/* A process from fork to the daemon's SP_RELEASE. Until it is reaped, its
 * leader is our child, so its pid and group id cannot be reused. */
typedef struct sp_proc {
    uint64_t id; /* the daemon's number; 0 once released (dropped when reaped) */
    pid_t pid;   /* = its process group and session */
    uint64_t start;
    int status_fd; /* until exec: read end of the child's status pipe, else -1 */
    unsigned char status[16];
    size_t nstatus;
    bool started; /* STARTED was sent */
    bool reaped;
    int wait_status;
} sp_proc;

typedef struct spawner {
    int sock;  /* to the daemon (fd 3) */
    int sigfd; /* SIGCHLD, SIGTERM */
    pid_t self;
    sp_user user;
    bool can_switch;
    /* Step host mode (--stephost PATH): this helper starts that program only,
     * with its arguments checked and the user fixed (spawner_host.c). */
    const char *stephost;
    char boot_id[SP_BOOT_ID];
    sp_proc *procs;
    size_t nprocs, cap;
    unsigned char *buf; /* SP_MAX_PACKET */
} spawner;

/* spawner.c */
void sp_send(spawner *s, const void *pkt, size_t len);
void sp_log(spawner *s, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* spawner_proc.c */
/* Start `m` (an SP_SPAWN) with the three descriptors `fds` (closed here). */
void sp_spawn(spawner *s, const sp_msg *m, int fds[3]);
void sp_signal(spawner *s, uint64_t id, int sig);
void sp_release(spawner *s, uint64_t id);
void sp_reap(spawner *s);
/* A status pipe in the poll set is readable. */
void sp_status_ready(spawner *s, sp_proc *p);
/* A group a previous daemon recorded: killed if it is still that group. */
void sp_orphan(spawner *s, const sp_msg *m);
/* The daemon is gone: kill every group started and every descendant, then return. */
void sp_kill_everything(spawner *s);

/* spawner_host.c, step host mode: the argv to run for an SP_SPAWN's `vec`
 * (argc strings), or NULL when it is not a step host start this helper may
 * make. Freed by the caller (the strings stay borrowed). */
const char **sp_stephost_argv(const spawner *s, const char **vec, uint32_t argc, uint32_t envc);

/* In a child: become `u` for good (groups, gid, uid, no capability left),
 * checked; -1 with errno otherwise. */
int sp_drop_to(const sp_user *u);

/* Start time of `pid` in clock ticks after boot (field 22 of /proc/PID/stat), or 0. */
uint64_t sp_proc_start(pid_t pid);

#endif
