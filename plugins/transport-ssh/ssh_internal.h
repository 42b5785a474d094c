/* ssh_internal.h - state shared by the SSH transport's files: plugin, connection, command. */
#ifndef SSH_INTERNAL_H
#define SSH_INTERNAL_H

#include <libssh2.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <opsc/plugin.h>

#include "tp_shell.h"

#define SSH_COMPONENT "transport-ssh"

/* [plugin.transport-ssh] */
typedef struct ssh_settings {
    int64_t keepalive_ms;       /* 0: no keepalives */
    int64_t max_channels;       /* channels per connection, one kept for cancel */
    int64_t connect_timeout_ms; /* when the target says 0 */
    int64_t cancel_grace_ms;    /* TERM to KILL */
    int64_t read_budget;        /* bytes read per command per loop turn (fairness) */
} ssh_settings;

typedef struct ssh_plugin {
    const opsc_host_api *api;
    ssh_settings cfg;
    bool rsa_sha2; /* libssh2 >= 1.11 signs user keys with rsa-sha2-256/512 */
} ssh_plugin;

enum conn_state {
    C_RESOLVE,
    C_CONNECT,
    C_HANDSHAKE,
    C_AUTHLIST,
    C_AUTH,
    C_READY,
    C_BROKEN, /* the session died; commands fail; waiting for close() */
};

struct opsc_conn {
    ssh_plugin *p;
    const opsc_host_api *api;
    uv_loop_t *loop;
    enum conn_state state;
    int fd;
    uv_getaddrinfo_t gai;
    bool gai_pending;
    struct addrinfo *ai, *ai_next;
    uv_poll_t poll;
    uint64_t rx_bytes; /* read off the socket by libssh2, ever */
    bool poll_init;
    int poll_events;
    uv_timer_t timer; /* connect deadline, then keepalives */
    uv_timer_t kick;  /* run the pump on the next loop turn */
    int nhandles;     /* open handles, for close */
    LIBSSH2_SESSION *s;
    void *mem; /* every block of the session's memory (ssh_mem.c) */
    bool want_write; /* a call blocked on output: poll for writable */

    /* Copies of the target, kept for messages and reconnect-free use. */
    char *name, *host, *policy, *known;
    int port;
    uint32_t connect_timeout_ms;
    /* Credential copies, wiped as soon as authentication is over. */
    char *user, *password, *key, *passphrase;
    char *methods;   /* what the server offered */
    char tried[128]; /* what we tried */
    int auth_step;   /* index into the methods we try */

    opsc_connect_cb connect_cb;
    void *connect_ud;
    char key_type[32], key_fp[64];
    bool key_learned;
    char warning[320];
    char banner[128];

    struct opsc_exec *execs;      /* running commands (doubly linked) */
    struct opsc_exec *opener;     /* libssh2 keeps a channel open's state in the session:
                                     one open at a time */
    struct opsc_exec *send_owner; /* its call left a half-sent packet in the session:
                                     only the same call may go on (libssh2 rule) */
    unsigned nexec;               /* counts user commands, not cancel helpers */
    bool pumping, repump;
    bool closing;
    opsc_close_cb close_cb;
    void *close_ud;
    int err_code;
    char err[512];
};

enum exec_state {
    EX_OPEN,
    EX_PTY,
    EX_START,
    EX_RUN,
    EX_CLOSE,
    EX_WAIT_CLOSED,
    EX_FREE,
    EX_DONE,
};

typedef struct ex_chunk {
    struct ex_chunk *next;
    size_t len, off;
    char data[];
} ex_chunk;

struct opsc_exec {
    struct opsc_exec *next, *prev;
    opsc_conn *conn;
    LIBSSH2_CHANNEL *ch;
    enum exec_state st;
    char *cmd;
    bool pty;
    char *become_user, *become_pw; /* kept for the kill helper; wiped on free */
    int pending_call;              /* the call that returned EAGAIN with a packet half sent */
    /* stdin */
    ex_chunk *in_head, *in_tail;
    size_t in_queued;
    bool in_hold;   /* become: hold the user's stdin until sudo is done */
    bool pw_unsent; /* the first chunk is the sudo password line */
    bool in_eof_req, in_eof_sent, in_was_full;
    /* output */
    bool paused;
    tp_marker marker;
    /* stopping */
    uv_timer_t timer; /* command timeout, then the cancel deadline */
    bool timer_init;
    int stop_code; /* OPSC_ECANCELED / OPSC_ETIMEDOUT once stopping */
    bool killer_started;
    bool force_close; /* close the channel at the next call boundary */
    bool kill_pending; /* stopped before the process group was known: kill when it is */
    struct opsc_exec *killer, *victim;
    /* result */
    int exit_code;
    char exit_signal[32];
    int fail_code;
    char err[600];
    opsc_exec_cb cb;
    void *ud;
    bool internal; /* a kill helper: no user callbacks */
};

/* ssh_conn.c */
void ssh_conn_pump(opsc_conn *c);
void ssh_conn_kick(opsc_conn *c);
void ssh_conn_broken(opsc_conn *c, int code, const char *fmt, ...) OPSC_PRINTF(3, 4);
int ssh_map_error(opsc_conn *c, int rc, char *msg, size_t msglen);
void ssh_conn_note_eagain(opsc_conn *c);

/* ssh_auth.c */
/* ssh_mem.c: libssh2's allocator for a session whose abstract pointer is its connection. */
void *ssh_mem_alloc(size_t n, void **abstract);
void ssh_mem_free(void *p, void **abstract);
void *ssh_mem_realloc(void *p, size_t n, void **abstract);
/* After libssh2_session_free(): free what it left; returns how many blocks. */
size_t ssh_mem_release(opsc_conn *c);

int ssh_hostkey_prefs(opsc_conn *c);
int ssh_hostkey_check(opsc_conn *c);
int ssh_auth_step(opsc_conn *c); /* 0 done, 1 again, < 0 failed (c->err) */

/* ssh_exec.c */
int ssh_exec_start(opsc_conn *c, const opsc_exec_req *req, const opsc_exec_cb *cb, void *ud,
                   opsc_exec **out);
int ssh_exec_write(opsc_exec *ex, const char *data, size_t len);
void ssh_exec_pause(opsc_exec *ex);
void ssh_exec_resume(opsc_exec *ex);
void ssh_exec_cancel(opsc_exec *ex);
void ssh_exec_pump(opsc_exec *ex, bool *more, bool *progress);
bool ssh_exec_reads(const opsc_exec *ex);
void ssh_exec_fail(opsc_exec *ex, int code, const char *msg);
void ssh_exec_release(opsc_exec *ex);

/* ssh_xfer.c */
int ssh_put_file(opsc_conn *c, const opsc_xfer_req *req, opsc_xfer_cb cb, void *ud,
                 opsc_xfer **out);
int ssh_get_file(opsc_conn *c, const opsc_xfer_req *req, opsc_xfer_cb cb, void *ud,
                 opsc_xfer **out);
void ssh_xfer_cancel(opsc_xfer *x);

/* Helpers on the host allocator. */
char *ssh_strdup(const opsc_host_api *api, const char *s);
void ssh_wipe_free(const opsc_host_api *api, char *s);

#endif
