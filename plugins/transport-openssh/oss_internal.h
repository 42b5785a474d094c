/* oss_internal.h - transport-openssh's shared state: the plugin, ssh masters, connections and
 * commands.
 *
 * A connection is one ssh master (ControlMaster) per target, run by the
 * daemon as a child under uv_spawn; it reaches the target directly or
 * through the masters of its jump hosts (shared by every target behind the
 * same bastion). Commands do not spawn ssh: the plugin speaks OpenSSH's
 * multiplexing protocol (PROTOCOL.mux) on the master's control socket itself
 * and hands the master three pipes for stdin, stdout and stderr.
 */
#ifndef OSS_INTERNAL_H
#define OSS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <opsc/plugin.h>

#include "oss_options.h"
#include "oss_sshlog.h"
#include "oss_tail.h"
#include "tp_shell.h"
#include "tp_stdin.h"
#include "tp_xfer.h"

#define OSS_COMPONENT "transport-openssh"

/* [plugin.transport-openssh] */
typedef struct oss_settings {
    const char *ssh, *ssh_agent, *ssh_add; /* the OpenSSH programs */
    const char *helper;                    /* "": opsc-openssh-helper next to the plugin */
    const char *ssh_config;                /* "": ssh's own files; "none"; or a path */
    const char *runtime_dir;               /* "": <data_dir>/openssh */
    int64_t keepalive_ms;                  /* ServerAliveInterval; 0: none */
    int64_t max_channels;                  /* sessions per connection (sshd MaxSessions) */
    int64_t connect_timeout_ms;            /* when the target sets none */
    int64_t cancel_grace_ms;               /* TERM to KILL on the target */
} oss_settings;

typedef struct oss_master oss_master;

typedef struct oss_plugin {
    const opsc_host_api *api;
    uv_loop_t *loop;
    oss_settings cfg;
    opsc_transport transport;
    tp_exec_ops ops;
    char *rundir;      /* absolute, 0700: control, agent and askpass sockets */
    int rundir_fd;     /* for socket paths too long for sun_path */
    char *helper;      /* absolute path of opsc-openssh-helper */
    char **env;        /* environment of every ssh process (NULL-terminated) */
    char ppid[24];     /* our pid, for the helper's parent-death check */
    unsigned next_id;  /* names the files of each master and agent */
    uint64_t spawn_ms; /* loop time of the latest spawns, and how many in it */
    unsigned spawns;
    oss_master *masters;
    struct oss_agent *agents;
} oss_plugin;

/* ---- processes and files (oss_proc.c) ---------------------------------------------------------
 */

typedef struct oss_child oss_child;
typedef void (*oss_exit_cb)(oss_child *c, int64_t status, int term_signal);
struct oss_child {
    uv_poll_t poll; /* on the pidfd: readable once the child exited */
    int pidfd;
    int pid;
    bool spawned, exited, closed;
    int64_t status;
    int term_signal;
    oss_exit_cb exit_cb;
    void *data; /* the owner */
};

/* Start argv[0] in the runtime directory, in a session of its own. `stdio` entries are
 * UV_IGNORE (/dev/null) or UV_CREATE_PIPE with an initialised uv_pipe_t in .data.stream
 * (UV_READABLE_PIPE: the child reads it). On success the poll handle is open: count it. */
int oss_spawn(oss_plugin *p, oss_child *c, char **argv, char **env, uv_stdio_container_t *stdio,
              oss_exit_cb exit_cb);
/* From exit_cb: close the child's handle (`close_cb` runs once it is closed). */
void oss_child_exited(oss_child *c, int64_t status, int sig, uv_close_cb close_cb);
void oss_child_kill(oss_child *c, int sig);
void oss_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
/* The path of runtime-dir file `name` for connect()/bind() (sun_path is short). */
int oss_sockpath(oss_plugin *p, const char *name, char *buf, size_t len);

typedef void (*oss_ready_cb)(void *ud, oss_master *m);
typedef struct oss_waiter {
    struct oss_waiter *next;
    oss_ready_cb cb;
    void *ud;
} oss_waiter;
/* Forget the waiters of `ud` (it goes away before the thing it waits for settles). */
void oss_waiters_drop(oss_plugin *p, oss_waiter **list, void *ud);

/* ---- secrets for ssh (oss_askpass.c, oss_agent.c) ----------------------------------------------
 */

typedef struct oss_askpass oss_askpass;
/* Serve `secret` once on runtime-dir socket `name` (for opsc-openssh-helper as SSH_ASKPASS). */
int oss_askpass_open(oss_plugin *p, const char *name, const char *secret, oss_askpass **out);
/* The owner is done with it (NULL is fine); it goes once its handles are closed. */
void oss_askpass_close(oss_askpass *a);

enum oss_astate { AG_STARTING, AG_LOADING, AG_READY, AG_FAILED, AG_CLOSING };

typedef struct oss_agent {
    oss_plugin *p;
    struct oss_agent *next, *prev;
    unsigned id;              /* socket a<id>.agent */
    unsigned char digest[32]; /* of the key and passphrase: which connects may share it */
    int refs;
    enum oss_astate st;
    oss_child agent, add;
    uv_pipe_t out, add_in, add_err;
    bool out_open, add_in_open, add_err_open;
    uv_write_t add_write;
    oss_askpass *ask;
    char *key, *passphrase; /* until the key is loaded */
    char add_text[512];
    int handles;
    oss_waiter *waiters; /* called with m == NULL */
    int code;
    char err[600];
} oss_agent;

/* An agent holding `key` (shared with connects that load the same key now), referenced. */
int oss_agent_get(oss_plugin *p, const char *key, const char *passphrase, oss_agent **out);
/* 0: `cb` runs once loaded or failed; 1: loaded; < 0: failed (a->err). */
int oss_agent_wait(oss_agent *a, oss_ready_cb cb, void *ud);
void oss_agent_unref(oss_agent *a);

/* ---- masters (oss_master.c) ---------------------------------------------------------------- */

/* What a master connects to; secrets are wiped once it is up (or failed). */
typedef struct oss_hop {
    char *name;      /* for messages: the target's name, or "jump host h:p" */
    char *target_id; /* the target behind it, when it is one (TOFU keys go there) */
    char *host, *user, *policy, *pinned;
    int port;
    uint32_t timeout_ms;
    char *key, *passphrase, *password, *cert; /* secrets (the certificate is public) */
    int certificate;                          /* oss_options.certificate */
    bool gssapi;
    char **extra; /* "Keyword=value" (NULL-terminated), or NULL */
} oss_hop;

enum oss_mstate { MS_WAIT_VIA, MS_AGENT, MS_SSH, MS_READY, MS_FAILED, MS_CLOSING };

struct oss_master {
    oss_plugin *p;
    oss_master *next, *prev; /* the plugin's list */
    unsigned id;             /* files: c<id>.ctl, c<id>.ask, c<id>-cert.pub */
    char *share;             /* jump hosts: what makes two the same; NULL: not shared */
    int refs;
    oss_master *via; /* the jump host before this one (a reference) */
    enum oss_mstate st;
    oss_hop hop;
    oss_agent *agent; /* during the connect, when the credential is a key */
    unsigned agent_id;
    oss_askpass *ask; /* during the connect, when it is a password */
    oss_child ssh;
    uv_pipe_t ssh_err;
    bool ssh_err_open;
    uv_timer_t timer; /* the connect deadline, then the kill after a close */
    uv_timer_t kick;  /* a spawn put off to a later loop turn */
    int handles;      /* open handles: freed at 0 once closing */
    char line[1024];  /* ssh's stderr, assembled into lines */
    size_t nline;
    oss_sshlog log;
    int code;
    char err[700];
    bool learned; /* the host key was accepted by tofu */
    oss_waiter *waiters;
    void (*close_cb)(void *ud);
    void *close_ud;
    bool via_released;
};

/* A master for `hop` (moved in: the caller's pointers are taken), through
 * `via` (a reference is taken). It starts at once. */
int oss_master_new(oss_plugin *p, oss_hop *hop, oss_master *via, const char *share,
                   oss_master **out);
/* 0: `cb` runs once the master is up or has failed; 1: up; < 0: failed. */
int oss_master_wait(oss_master *m, oss_ready_cb cb, void *ud);
void oss_master_ref(oss_master *m);
/* Drop a reference; at zero the master closes, and `cb` (may be NULL) runs
 * once it and the jump hosts it held have closed (at once when nothing closes). */
void oss_master_unref(oss_master *m, void (*cb)(void *ud), void *ud);
bool oss_master_up(const oss_master *m);
/* The control socket's path, for connect(). */
int oss_master_ctl(oss_master *m, char *buf, size_t len);
/* A shared jump host master that is up or starting, or NULL. */
oss_master *oss_master_find(oss_plugin *p, const char *share);
void oss_hop_free(oss_plugin *p, oss_hop *h);

/* oss_argv.c: command lines and environments (NULL-terminated, host allocator; oss_argv_free). */
char **oss_argv_master(oss_master *m);
/* The base environment, with OPSC_ASKPASS=`ask` and SSH_AUTH_SOCK=`agent` when not NULL. */
char **oss_env(oss_plugin *p, const char *ask, const char *agent);
void oss_argv_free(oss_plugin *p, char **v);
/* HostKeyAlgorithms that make the server show a recorded key type first ("" when none). */
void oss_hostkey_algs(const char *pinned, char *out, size_t cap);

/* ---- connections (oss_conn.c) --------------------------------------------------------------- */

struct opsc_conn {
    oss_plugin *p;
    oss_master *m;
    opsc_connect_cb connect_cb;
    void *connect_ud;
    uv_timer_t defer; /* answers on the next loop turn; closes last */
    struct opsc_exec *execs;
    unsigned nexec;
    bool closing;
    opsc_close_cb close_cb;
    void *close_ud;
    bool finishing; /* every command is gone: the master is being released */
    char *name;
    int fail_code; /* refused before anything ran */
    char fail[700];
    /* conn info, kept for the connect callback */
    opsc_hop_key hops[OSS_MAX_JUMPS];
    char hop_ids[OSS_MAX_JUMPS][OSS_UUID_LEN];
    char hop_types[OSS_MAX_JUMPS][48], hop_fps[OSS_MAX_JUMPS][64];
    size_t nhops;
};

int oss_connect(void *state, const opsc_target *t, const opsc_credential *cred, opsc_connect_cb cb,
                void *ud);
void oss_close(opsc_conn *c, opsc_close_cb cb, void *ud);
bool oss_conn_usable(opsc_conn *c);
/* A command of a closing connection is gone. */
void oss_conn_exec_gone(opsc_conn *c);

/* ---- commands (oss_exec.c, oss_mux.c) ------------------------------------------------------- */

/* The master's side of one session: the control socket and what we send on it. */
typedef struct oss_mux {
    int fd;
    uv_poll_t poll;
    bool poll_open;
    int events;
    unsigned char *out;
    size_t out_len, out_off;
    int pass[3]; /* the master's ends of stdin, stdout, stderr: sent after `out` */
    int npassed;
    unsigned char in[2048];
    size_t in_len;
    bool hello, opened, exited, closed;
    uint32_t exit_value;
    int fail_code;
    char fail[256];
} oss_mux;

struct opsc_exec {
    struct opsc_exec *next, *prev;
    opsc_conn *conn;
    oss_mux mux;
    uv_pipe_t p_in, p_out, p_err;
    uv_timer_t timer; /* timeout, then the cancel deadline */
    tp_stdin in;
    int handles;
    bool in_open, out_eof, err_eof;
    bool paused;
    tp_marker marker;
    oss_tail tail;
    char *become_user, *become_pw;
    int stop_code, fail_code;
    char err[600];
    opsc_exec_cb cb;
    void *ud;
    bool done, finished, internal; /* done: on_done ran; finished: the session is over */
    bool kill_pending;             /* stopped before its process group was known */
    struct opsc_exec *killer, *victim;
};

int oss_exec(opsc_conn *c, const opsc_exec_req *req, const opsc_exec_cb *cb, void *ud,
             opsc_exec **out);
int oss_exec_write(opsc_exec *ex, const char *data, size_t len);
void oss_exec_pause(opsc_exec *ex);
void oss_exec_resume(opsc_exec *ex);
void oss_exec_cancel(opsc_exec *ex);
/* The connection closes: stop every command (kill helpers first, bounded). */
void oss_exec_close_all(opsc_conn *c);

/* oss_mux.c */
/* Connect to the master and send the request; x->fd and x->pass[] must be set up (-1 when
 * unused). Progress is reported through oss_exec_mux_event(). */
int oss_mux_start(oss_mux *x, opsc_exec *ex, const char *sockpath, const char *command);
/* Close what is left (after the poll handle was closed or never opened). */
void oss_mux_release(oss_mux *x, oss_plugin *p);
/* The exec learns of mux progress through this (oss_exec.c). */
void oss_exec_mux_event(opsc_exec *ex);

/* Helpers on the host allocator. */
char *oss_strdup(oss_plugin *p, const char *s);
void oss_wipe_free(oss_plugin *p, char *s);

#endif
