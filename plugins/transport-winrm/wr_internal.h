/* wr_internal.h - the WinRM transport's connection, channel and command types, shared by its files.
 */
#ifndef WR_INTERNAL_H
#define WR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include <opsc/plugin.h>

#include "wr_buf.h"
#include "wr_gss.h"
#include "wr_http.h"
#include "wr_script.h"
#include "wr_soap.h"

#define WR_COMPONENT "transport-winrm"

/* Plugin settings ([plugin.transport-winrm]). */
typedef struct wr_settings {
    int64_t operation_timeout_ms; /* Receive long-poll wait */
    int64_t max_envelope;         /* MaxEnvelopeSize we announce */
    int64_t commands_per_shell;   /* then the shell is deleted and a new one made */
    int64_t codepage;             /* shell code page */
} wr_settings;

typedef struct wr_plugin {
    const opsc_host_api *api;
    wr_settings set;
} wr_plugin;

typedef enum wr_auth {
    WR_AUTH_BASIC,
    WR_AUTH_NTLM,
    WR_AUTH_KERBEROS,
    WR_AUTH_CERT,
} wr_auth;

/* Per-target transport_options, validated. */
typedef struct wr_options {
    bool https;
    bool scheme_set; /* else: http on 5985, https otherwise */
    char path[256];
    char *ca_bundle; /* malloc'd or NULL */
    char fingerprint[96];
    bool verify;
    bool allow_unencrypted; /* Basic over plain HTTP */
    wr_dialect dialect;
    char spn_host[256]; /* Kerberos/NTLM service host, "" = the target address */
} wr_options;

int wr_options_parse(const char *json, wr_options *o, char *err, size_t errlen);
void wr_options_free(wr_options *o);

typedef struct wr_chan wr_chan;

/* The outcome of one WS-Man call. A SOAP fault is not a transport error:
 * status is 0 and resp->fault is set. `resp` is NULL when status < 0. */
typedef void (*wr_call_cb)(void *ud, int status, wr_resp *resp, const char *error);

/* One authenticated HTTP connection of an opsc_conn. */
struct wr_chan {
    opsc_conn *conn;
    wr_http *http;
    wr_gss_ctx gss;
    bool authed; /* the GSS context is established on the current TCP connection */
    bool authing;
    int rounds;
    char scheme[16]; /* "Negotiate", "NTLM" or "Kerberos" */
    bool tried_alt;  /* fell back to the other scheme once */
    bool reauthed;   /* the current call already re-authenticated once */
    wr_buf soap;     /* the request being sent (plaintext) */
    wr_buf wire;     /* what goes on the wire (sealed when encrypting) */
    wr_buf plain;    /* decrypted response */
    char message_id[48];
    uint32_t timeout_ms;
    wr_call_cb cb;
    void *ud;
    bool busy;
    bool worker;    /* a Kerberos step runs on a worker thread */
    bool abandoned; /* its call was aborted while the worker ran */
    wr_buf tok;     /* token produced by the worker */
    char werr[256];
    int wrc;
    bool in_call; /* inside wr_chan_call: failures are returned, not called back */
    int sync_status;
    char sync_err[400]; /* detail of a failure wr_chan_call returned */
};

typedef struct wr_op wr_op;

struct opsc_conn {
    wr_plugin *pl;
    wr_options opt;
    wr_auth auth;
    bool encrypt; /* seal every message (NTLM/Kerberos over HTTP) */
    char url[512];
    char host[256];
    wr_gss_cred cred;
    wr_chan ch[2]; /* 0: control (Create, Command, Send, Signal, Delete); 1: Receive */
    char *shell_id;
    char *shell_key; /* cwd and env the shell was created with */
    unsigned shell_commands;
    bool broken;
    bool closing;
    wr_op *op;       /* the command or transfer running (max_sessions is 1) */
    int ops_closing; /* ended ops whose handles libuv has not closed yet */
    opsc_close_cb close_cb;
    void *close_ud;
    int pending; /* calls in flight that hold the connection */
    /* connect */
    opsc_connect_cb connect_cb;
    void *connect_ud;
    uv_timer_t defer;
    bool defer_open;
    int connect_status;
    char connect_err[512];
    uint32_t connect_timeout_ms;
    bool released;
    int http_open; /* HTTP connections still closing */
};

/* Build the envelope header for a call on `c`. */
void wr_conn_hdr(opsc_conn *c, wr_hdr *hdr, const char *shell_id, unsigned timeout_s);

/* Send a SOAP request on channel `ch` (authenticating it first when needed). The
 * request text is taken from `soap` (which is reset). On 0, cb runs once, later;
 * on an error (detail in ch->sync_err) it never runs. */
int wr_chan_call(wr_chan *ch, wr_buf *soap, const char *message_id, uint32_t timeout_ms,
                 wr_call_cb cb, void *ud);
/* opsc_transport.kill_orphan: "winrm:<shell id>" of a previous daemon's
 * command: that shell is deleted, which ends every process in it (wr_conn.c). */
int wr_kill_orphan(opsc_conn *c, const char *handle, opsc_kill_cb cb, void *ud);
/* Drop the call in flight on ch (its callback never runs) and the TCP connection. */
void wr_chan_abort(wr_chan *ch);
int wr_chan_init(wr_chan *ch, opsc_conn *c, char *err, size_t errlen);
void wr_chan_free(wr_chan *ch);

/* Connection entry points (wr_conn.c). */
int wr_connect(void *state, const opsc_target *target, const opsc_credential *cred,
               opsc_connect_cb cb, void *ud);
bool wr_conn_usable(opsc_conn *c);
void wr_conn_close(opsc_conn *c, opsc_close_cb cb, void *ud);
/* The op ended: clear it and finish a pending close. */
void wr_conn_op_done(opsc_conn *c);

/* Commands (wr_exec.c). */
int wr_exec(opsc_conn *conn, const opsc_exec_req *req, const opsc_exec_cb *cb, void *ud,
            opsc_exec **out);
int wr_exec_write(opsc_exec *ex, const char *data, size_t len);
void wr_exec_pause(opsc_exec *ex);
void wr_exec_resume(opsc_exec *ex);
void wr_exec_cancel(opsc_exec *ex);

/* Internal command runner used by exec and file transfers. */
typedef struct wr_run_cb {
    void (*on_output)(void *ud, int stream, const char *data, size_t len);
    void (*on_drained)(void *ud);
    void (*on_done)(void *ud, int status, int exit_code, const char *error);
    void (*on_started)(void *ud, const char *shell_id); /* the command runs in that shell */
} wr_run_cb;

typedef struct wr_run_req {
    const char *script; /* PowerShell (or sh) text */
    const char *const *env;
    const char *cwd;
    bool stdin_open;
    uint32_t timeout_ms;
    bool decode_clixml;
} wr_run_req;

struct wr_op {
    opsc_conn *c;
    wr_run_cb cb;
    void *ud;
    wr_cmdline cmd;
    char *shell_key;
    char **env; /* owned copies: the shell may be made after a Delete round trip */
    char *cwd;
    char command_id[64];
    int phase;
    wr_buf in_q;  /* stdin not yet sent */
    bool in_open; /* stdin may still get data */
    bool in_eof;  /* stdin was closed by the caller */
    bool in_sent_eof;
    bool send_busy;
    bool recv_busy;
    bool paused;
    bool done_seen;
    int exit_code;
    int stop_status; /* OPSC_ECANCELED / OPSC_ETIMEDOUT once stopping */
    bool signal_sent;
    bool finished;
    int fail_status;
    char fail_err[512];
    bool decode_clixml;
    wr_clixml clixml;
    bool shell_retried;
    uv_timer_t timer;
    bool timer_open;
    bool notify_drained;
    int holds; /* calls and handles that still reference the op */
};

int wr_run_start(opsc_conn *c, const wr_run_req *req, const wr_run_cb *cb, void *ud, wr_op **out);
int wr_run_write(wr_op *op, const char *data, size_t len);
/* Bytes of stdin queued and not yet sent. */
size_t wr_run_queued(const wr_op *op);
void wr_run_pause(wr_op *op);
void wr_run_resume(wr_op *op);
/* Stop with `status` (OPSC_ECANCELED, OPSC_ETIMEDOUT...). */
void wr_run_stop(wr_op *op, int status);

/* File transfers (wr_xfer.c). */
int wr_put_file(opsc_conn *conn, const opsc_xfer_req *req, opsc_xfer_cb cb, void *ud,
                opsc_xfer **out);
int wr_get_file(opsc_conn *conn, const opsc_xfer_req *req, opsc_xfer_cb cb, void *ud,
                opsc_xfer **out);
void wr_xfer_cancel(opsc_xfer *x);

#endif
