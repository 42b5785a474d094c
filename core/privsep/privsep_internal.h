/* privsep_internal.h - what the two clients of opsc-spawner (local steps, step hosts) share. */
#ifndef OPSC_PRIVSEP_INTERNAL_H
#define OPSC_PRIVSEP_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

#include "privsep.h"

/* A helper program: `configured`, else in a build tree beside the daemon (<build>/core/) at
 * <build>/`rel`, else `installed`. */
void privsep_find_program(const char *configured, const char *rel, const char *installed,
                          char *out, size_t n);
/* Fork and exec the helper at `path` with `argv` and a SOCK_SEQPACKET socket as its fd 3: 0
 * with our end in *fd (blocking, close-on-exec) and its pid, or -errno. */
int privsep_fork_helper(const char *path, const char *const *argv, int *fd, pid_t *pid);
/* Wait up to `timeout_ms` for the HELLO of the helper at `path` on `fd` and decode it into *m
 * (its strings point into `rbuf`, SP_MAX_PACKET bytes): 0, or -1 with *reason saying why the
 * helper did not start ("no answer", why it cannot be run, "it exited"; static strings). */
struct sp_msg;
int privsep_read_hello(int fd, void *rbuf, int timeout_ms, const char *path, struct sp_msg *m,
                       const char **reason);

/* privsep_hosts.c: the step hosts' helper, started when o->host_user is set (the daemon is
 * about to drop the right to switch users), with the local helper's `path`; NULL otherwise. */
privsep_hosts *privsep_hosts_start(const privsep_opts *o, const char *path);
/* Close its socket (the helper kills what it started) and free it once no thread waits on it. */
void privsep_hosts_close(privsep_hosts *h);

#endif
