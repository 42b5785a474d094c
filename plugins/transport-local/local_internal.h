/* local_internal.h - state of the local transport: the appliance's own shell, started as the
 * local-steps user by the host's privileged helper. */
#ifndef LOCAL_INTERNAL_H
#define LOCAL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <opsc/plugin.h>

#include "tp_shell.h"
#include "tp_stdin.h"
#include "tp_xfer.h"

#define LOCAL_COMPONENT "transport-local"

typedef struct local_settings {
    int64_t max_commands;    /* at once per connection */
    int64_t cancel_grace_ms; /* SIGTERM to SIGKILL */
    const char *shell;       /* the POSIX shell that runs commands */
} local_settings;

typedef struct local_plugin {
    const opsc_host_api *api;
    bool has_local; /* the host starts local processes (ABI >= 1.1) */
    local_settings cfg;
    opsc_transport transport;
    tp_exec_ops ops;
} local_plugin;

struct opsc_conn {
    local_plugin *p;
    uv_timer_t defer; /* connect and close answer on the next loop turn */
    opsc_connect_cb connect_cb;
    void *connect_ud;
    opsc_close_cb close_cb;
    void *close_ud;
    bool closing;
    int fail; /* connect refused: local processes are not available */
    char why[512];
    struct opsc_exec *execs;
    unsigned nexec;
};

struct opsc_exec {
    struct opsc_exec *next, *prev;
    opsc_conn *conn;
    opsc_local_proc *proc; /* the host's; released when the exec is freed */
    uv_pipe_t p_in, p_out, p_err;
    uv_timer_t timer; /* timeout, then the SIGKILL after a stop */
    tp_stdin in;
    int open_handles;
    bool exited, out_eof, err_eof;
    bool paused, reading;
    tp_marker marker;
    char *become_user, *become_pw;
    int stop_code, fail_code;
    bool killed_hard;
    int64_t exit_status;
    int term_signal;
    char err[256];
    opsc_exec_cb cb;
    void *ud;
    bool done; /* on_done ran */
};

int local_exec(opsc_conn *c, const opsc_exec_req *req, const opsc_exec_cb *cb, void *ud,
               opsc_exec **out);
int local_exec_write(opsc_exec *ex, const char *data, size_t len);
void local_exec_pause(opsc_exec *ex);
void local_exec_resume(opsc_exec *ex);
void local_exec_cancel(opsc_exec *ex);
void local_exec_close_all(opsc_conn *c);
int local_kill_orphan(opsc_conn *c, const char *handle, opsc_kill_cb cb, void *ud);
/* The last command of a closing connection is gone. */
void local_conn_closed(opsc_conn *c);

#endif
