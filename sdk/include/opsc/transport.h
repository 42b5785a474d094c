/* opsc/transport.h - transports: how the host reaches a target (SSH, WinRM, local).
 *
 * A transport plugin registers an opsc_transport with
 * opsc_host_api.register_transport(). The host owns the connection pool, the
 * credentials and the host-key records; the transport owns the wire. The
 * interface fits SSH (one session, many channels) and WinRM (one HTTP
 * connection pool, one remote shell, many commands) alike.
 *
 * Threads: every function in opsc_transport is called on the loop thread,
 * and every callback it is given must be invoked on the loop thread. Nothing
 * may block: drive sockets with the loop (opsc_host_api.loop()).
 *
 * Callbacks: as in libuv, if a function returns an error its callback never
 * runs; if it returns 0 its callback runs exactly once, never from inside
 * the call itself (defer with a zero timer or uv_async if the answer is
 * immediate), so callers never see re-entrancy.
 *
 * Errors: negative OPSC_E* codes (opsc/errors.h). Transports map their
 * failures to specific codes so the host can explain them: OPSC_EDNS,
 * OPSC_ECONNREFUSED, OPSC_ETIMEDOUT, OPSC_EAUTH, OPSC_EHOSTKEY, OPSC_EPROTO,
 * OPSC_ECONNRESET, OPSC_ECANCELED. The `error` text next to a code says the
 * specifics (offered auth methods, both fingerprints...). It must never
 * contain secret material.
 */
#ifndef OPSC_TRANSPORT_H
#define OPSC_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct opsc_conn opsc_conn; /* a connection, defined by the transport */
typedef struct opsc_exec opsc_exec; /* a running command, defined by the transport */
typedef struct opsc_xfer opsc_xfer; /* a file transfer, defined by the transport */
typedef struct opsc_credential opsc_credential;
typedef struct opsc_jump opsc_jump;

/* What the host knows of a target. Borrowed until the connect callback has
 * run; copy what you keep. */
typedef struct opsc_target {
    size_t size;                 /* sizeof(opsc_target) of the host that filled it */
    const char *id;              /* the target's id (UUID text) */
    const char *name;            /* unique display name */
    const char *address;         /* DNS name, IPv4 or IPv6 literal */
    int port;                    /* 0: the transport's default */
    const char *os_family;       /* "linux" or "windows" */
    const char *host_key_policy; /* "strict", "tofu" or "off" */
    const char *known_host_keys; /* lines "<key-type> SHA256:<base64>" trusted for this
                                    target; "" when none is recorded */
    uint32_t connect_timeout_ms; /* for the whole connect + authenticate phase */
    const char *options_json;    /* transport_options, already validated; "{}" when none */
    /* Appended (read them only when `size` covers them): the jump hosts
     * (bastions) that transport_options.jump names by target id, resolved by
     * the host, in the order of that list. NULL / 0 when there are none. */
    const struct opsc_jump *jumps;
    size_t njumps;
} opsc_target;

/* A jump host the host resolved for a connect: an entry of the target's
 * transport_options.jump that names another target by its id. Borrowed, with
 * everything it points to, until the connect callback has run; the
 * credential is wiped by the host after that, as the target's own. */
typedef struct opsc_jump {
    size_t size;
    size_t index;                      /* the entry's position in transport_options.jump */
    const opsc_target *target;         /* the bastion target: its address, port, host key
                                          policy and known keys (its own jumps are not set) */
    const opsc_credential *credential; /* the bastion target's credential; NULL when it has
                                          none */
} opsc_jump;

/* Credential material, decrypted by the host's vault for one connect.
 * Borrowed until the connect callback has run, then wiped by the host: a
 * transport must not keep any of it (the host hands it again on reconnect).
 * Fields that the credential does not have are NULL. */
struct opsc_credential {
    size_t size;
    const char *type;        /* "ssh_key", "ssh_password", "winrm" */
    const char *username;
    const char *password;    /* ssh_password, winrm */
    const char *private_key; /* ssh_key: OpenSSH or PEM text */
    const char *passphrase;  /* ssh_key, optional */
    const char *domain;      /* winrm, optional */
    const char *auth;        /* winrm: "basic", "ntlm", "kerberos", "certificate" */
    const char *certificate; /* winrm certificate auth: PEM cert + key; ssh_key: an OpenSSH
                                user certificate of the key (one line), optional */
};

/* Facts the transport learned while connecting. Borrowed until the connect
 * callback returns. */
typedef struct opsc_conn_info {
    size_t size;
    const char *host_key_type;   /* "ssh-ed25519"...; NULL when not applicable */
    const char *host_key_sha256; /* "SHA256:<base64>"; NULL when not applicable */
    bool host_key_learned;       /* TOFU: the key was not known and was accepted; the
                                    host records it for the target */
    const char *server_banner;   /* remote identification, may be NULL */
    const char *warning;         /* shown in run logs (e.g. host key policy off); may be NULL */
    /* Appended (read them only when `size` covers them). `algorithms`: what was negotiated,
     * as a JSON object text such as {"kex": "...", "host_key": "...", "cipher": "...",
     * "mac": "...", "auth": "publickey"}; NULL when the transport does not say. `hop_keys`:
     * host keys the connect verified on jump hosts that are targets (opsc_target.jumps);
     * NULL when none. */
    const char *algorithms;
    const struct opsc_hop_key *hop_keys;
    size_t nhop_keys;
} opsc_conn_info;

/* A jump host's key as the connect saw it. `learned`: the jump target's
 * policy is tofu, it had no key recorded, and this one was accepted: the host
 * records it for that target, as it does for the target's own key. */
typedef struct opsc_hop_key {
    size_t size;
    const char *target_id; /* the jump target (opsc_jump.target->id) */
    const char *host_key_type;
    const char *host_key_sha256;
    bool learned;
} opsc_hop_key;

/* `status` 0: `conn` is ready and owned by the host until it calls close().
 * `status` < 0: `conn` is NULL and `error` explains (borrowed until return). */
typedef void (*opsc_connect_cb)(void *ud, int status, opsc_conn *conn, const opsc_conn_info *info,
                                const char *error);

/* Output streams. */
#define OPSC_STDOUT 1
#define OPSC_STDERR 2

typedef struct opsc_exec_req {
    size_t size;
    const char *command;     /* one command line for the target's shell (POSIX sh on linux,
                                PowerShell on windows); borrowed until exec() returns */
    const char *const *env;  /* NULL-terminated "NAME=value" list, or NULL */
    const char *cwd;         /* working directory, or NULL */
    bool pty;                /* allocate a terminal; OPSC_ENOTSUP from exec() when the
                                transport has none (local) */
    bool stdin_open;         /* the host will write stdin with exec_write(); when false the
                                command sees end of file at once */
    uint32_t timeout_ms;     /* 0: none. On expiry the command is stopped as by
                                exec_cancel() and on_done reports OPSC_ETIMEDOUT */
    const char *become_user; /* run as this user (sudo on POSIX), or NULL */
    const char *become_password; /* fed to the escalation prompt on stdin, never on the
                                    command line; NULL for passwordless */
} opsc_exec_req;

typedef struct opsc_exec_result {
    size_t size;
    int status;              /* 0: the command ran and ended (see exit_code); < 0: it could not
                                run or was stopped: OPSC_ETIMEDOUT, OPSC_ECANCELED, ... */
    int exit_code;           /* valid when status == 0 and exit_signal == NULL */
    const char *exit_signal; /* "TERM", "KILL"... when the command died of a signal */
    const char *error;       /* human detail when status < 0; may be NULL */
} opsc_exec_result;

typedef struct opsc_exec_cb {
    size_t size;
    /* Called for each piece of output as it arrives. `data` is borrowed until
     * return. The host may call exec_pause() from here to apply back-pressure. */
    void (*on_output)(void *ud, int stream, const char *data, size_t len);
    /* Called once, last. `res` is borrowed until return; after it returns the
     * opsc_exec handle is gone. */
    void (*on_done)(void *ud, const opsc_exec_result *res);
    /* Flow control for stdin (may be NULL; check `size` before reading it):
     * called when everything passed to exec_write() so far has been handed to
     * the wire, so the host can write the next piece. A host that streams
     * stdin writes a bounded amount, then waits for this. Never called from
     * inside exec_write() itself. */
    void (*on_stdin_drained)(void *ud);
    /* (ABI 1.2; check `size`.) The command's processes are known: `handle`
     * (borrowed for the call) names them so that kill_orphan() can stop them
     * after a restart of the daemon, e.g. "local:<boot>:<pgid>:<start>" or
     * "ssh:<pgid>:<start>:<boot>". The host records it with the run. May be
     * NULL; called at most once, before on_done. */
    void (*on_started)(void *ud, const char *handle);
} opsc_exec_cb;

/* File transfer, streamed: the transport reads or writes `local_path` itself in
 * chunks and never holds the whole file in memory. */
typedef struct opsc_xfer_req {
    size_t size;
    const char *local_path;  /* put: file to send; get: file to create (0600) */
    const char *remote_path; /* absolute path on the target */
    int mode;                /* put: permission bits, -1 for the remote default */
    const char *owner;       /* put: "user" or "user:group", or NULL */
    uint32_t timeout_ms;     /* 0: none */
} opsc_xfer_req;

typedef struct opsc_xfer_result {
    size_t size;
    int status;        /* 0, or OPSC_ECORRUPT when the checksums differ, or another code */
    uint64_t bytes;    /* bytes transferred */
    const char *sha256; /* hex digest of the content, verified on both ends */
    const char *error; /* detail when status < 0 */
} opsc_xfer_result;

typedef void (*opsc_xfer_cb)(void *ud, const opsc_xfer_result *res);
typedef void (*opsc_close_cb)(void *ud);
/* kill_orphan's answer: processes killed (>= 0) or a negative code; `msg` borrowed. */
typedef void (*opsc_kill_cb)(void *ud, int killed, const char *msg);

typedef struct opsc_transport {
    size_t size; /* sizeof(opsc_transport) the plugin was built with */
    const char *name;         /* "ssh", "winrm", "local": the targets' `transport` value */
    int default_port;         /* used when a target has port 0 */
    unsigned max_sessions;    /* commands one connection may run at once; 0: unlimited */
    const char *options_schema; /* JSON Schema (text) of transport_options */

    /* Check a target's transport_options before the host stores them.
     * `options_json` is borrowed. On error, write a message into err. May be NULL
     * when the schema says everything. */
    int (*validate_options)(void *state, const char *options_json, char *err, size_t errlen);

    /* Open and authenticate a connection. `target` and `cred` are borrowed
     * until `cb` has run. */
    int (*connect)(void *state, const opsc_target *target, const opsc_credential *cred,
                   opsc_connect_cb cb, void *ud);

    /* Start a command on `conn`. On success *out is the handle, valid until
     * on_done returns. `req` is borrowed until return, `cb` until on_done. */
    int (*exec)(opsc_conn *conn, const opsc_exec_req *req, const opsc_exec_cb *cb, void *ud,
                opsc_exec **out);
    /* Write to the command's stdin; `data` is copied (queued without limit:
     * use on_stdin_drained to bound it). len == 0 closes stdin once the queue
     * is written. OPSC_ESTATE when stdin was not opened or is closed. */
    int (*exec_write)(opsc_exec *ex, const char *data, size_t len);
    /* Stop and resume reading output (back-pressure). */
    void (*exec_pause)(opsc_exec *ex);
    void (*exec_resume)(opsc_exec *ex);
    /* Stop the remote process for real (signal, then kill, then close). on_done
     * still runs, with OPSC_ECANCELED. Calling it after on_done is a bug. */
    void (*exec_cancel)(opsc_exec *ex);

    /* Copy a file to / from the target. `req` is borrowed until return. */
    int (*put_file)(opsc_conn *conn, const opsc_xfer_req *req, opsc_xfer_cb cb, void *ud,
                    opsc_xfer **out);
    int (*get_file)(opsc_conn *conn, const opsc_xfer_req *req, opsc_xfer_cb cb, void *ud,
                    opsc_xfer **out);
    void (*xfer_cancel)(opsc_xfer *x);

    /* True when the connection can take another command (not broken, not
     * closing). The pool asks before reuse. */
    bool (*conn_usable)(opsc_conn *conn);

    /* Close the connection. Commands still running end with OPSC_ECANCELED
     * first. `cb` runs once everything is freed. */
    void (*close)(opsc_conn *conn, opsc_close_cb cb, void *ud);

    /* Appended (the host reads them only when `size` covers them): */
    /* Credential types the targets of this transport may use, separated by
     * spaces ("ssh_key ssh_password"); "" when it takes no credential; NULL
     * when it does not say (the host then applies its own rule). */
    const char *credential_types;

    /* (ABI 1.2; check `size`, may be NULL.) Stop, the way exec_cancel does,
     * the processes of a command that a previous run of the daemon started
     * (the `handle` its on_started gave, borrowed until return) if they are
     * still those processes: never a recycled process id. The host calls it
     * at start-up for runs it marks interrupted, on a fresh connection. */
    int (*kill_orphan)(opsc_conn *conn, const char *handle, opsc_kill_cb cb, void *ud);
} opsc_transport;

#ifdef __cplusplus
}
#endif
#endif /* OPSC_TRANSPORT_H */
