/* tp_orphan.h - process handles and kill_orphan for transports that run a POSIX shell.
 *
 * A command's handle is "<transport>:<pgid>:<start>:<boot>" from its marker
 * line (tp_shell.h). tp_kill_orphan() runs a script on the connection that
 * does what a cancel does (TERM, up to `grace_ms`, then KILL) to the members
 * of that process group started no earlier than its leader, and only on the
 * same boot and while the group id is not another process's. Loop thread.
 */
#ifndef TP_ORPHAN_H
#define TP_ORPHAN_H

#include <opsc/transport.h>

#include "tp_shell.h"
#include "tp_xfer.h"

/* The handle of the command whose marker `m` saw, into out; -1 when the
 * marker gave no start time or boot id (an older or non-Linux shell). */
int tp_process_handle(const char *transport, const tp_marker *m, char *out, size_t n);

/* As opsc_transport.kill_orphan, through `ops`. */
int tp_kill_orphan(const tp_exec_ops *ops, opsc_conn *c, const char *handle, unsigned grace_ms,
                   opsc_kill_cb cb, void *ud);

#endif
