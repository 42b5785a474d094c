/* opsc/host.h - the function table the host hands every plugin at init.
 *
 * Plugins call the host only through this table, never through linked
 * symbols: that is what lets one .so load into any host of the same ABI
 * major. The table starts with its size. It only ever grows by appending
 * members, so a plugin built against a newer header checks that a member
 * exists before calling it:
 *
 *     if (OPSC_HOST_HAS(api, step_sleep))
 *         api->step_sleep(ctx, 500);
 *
 * Members present in ABI 1.0 need no check.
 *
 * Threads. Each member says where it may be called:
 *   any thread  - thread-safe;
 *   loop        - only on the loop thread (inside init(), or inside a
 *                 callback the host or the loop invoked);
 *   step worker - only from a step's run() function, on its worker thread.
 *
 * Ownership vocabulary used below: "borrowed until return" (the callee does
 * not keep the pointer), "copied by the host", "owned by the host until X"
 * (the caller may use it until X and must not free it), "transferred"
 * (the receiver frees it, with the function named).
 *
 * Errors: 0 or a negative OPSC_E* code (opsc/errors.h).
 */
#ifndef OPSC_HOST_H
#define OPSC_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <opsc/auth.h>
#include <opsc/config.h>
#include <opsc/discovery.h>
#include <opsc/notify.h>
#include <opsc/step.h>
#include <opsc/transport.h>

#ifdef __cplusplus
extern "C" {
#endif

struct uv_loop_s;                     /* libuv's loop, for plugins that drive sockets */
typedef struct opsc_config opsc_config; /* a plugin's config section, owned by the host */

/* Log levels. */
#define OPSC_LOG_ERROR 0
#define OPSC_LOG_WARN  1
#define OPSC_LOG_INFO  2
#define OPSC_LOG_DEBUG 3

#if defined(__GNUC__)
#define OPSC_PRINTF(fmt_idx, args_idx) __attribute__((format(printf, fmt_idx, args_idx)))
#else
#define OPSC_PRINTF(fmt_idx, args_idx)
#endif

/* A transfer handed to opsc_host_api.curl_start() ended: `result` is its
 * CURLcode (0: CURLE_OK; CURLE_ABORTED_BY_CALLBACK, 42, when the daemon
 * stops first). Runs on the loop thread, never from inside curl_start(). */
typedef void (*opsc_curl_done_cb)(void *ud, int result);

/* True when `api` has member `m` (use before calling members newer than 1.0). */
#define OPSC_HOST_HAS(api, m)                                                                      \
    ((api)->size >= offsetof(opsc_host_api, m) + sizeof(((opsc_host_api *)0)->m))

/* ---- local processes (ABI 1.2) ------------------------------------------------------------
 *
 * Commands on the appliance itself never run as the daemon's user: the host
 * hands them to its privileged helper, which starts them as the unprivileged
 * local-steps user ([executor] local_user), each in a new session and process
 * group, with an empty environment but for what is asked, no descriptor of
 * the daemon's, default signal handling, and a view of the system that does
 * not show the daemon's data, keys or processes. When the daemon ends, even
 * by SIGKILL, the helper kills every group it started. */

typedef struct opsc_local_proc opsc_local_proc; /* owned by the host */

typedef struct opsc_local_spawn {
    size_t size;             /* sizeof(opsc_local_spawn) */
    const char *const *argv; /* NULL-terminated; argv[0] is the program's absolute path */
    const char *const *env;  /* "NAME=value" entries, NULL-terminated, or NULL: the process gets
                                HOME, USER, LOGNAME and a default PATH, then these */
    const char *cwd;         /* NULL: the local user's home (or /) */
    int stdio[3];            /* the process's stdin, stdout, stderr; borrowed until return (the
                                host passes copies: close yours after the call) */
} opsc_local_spawn;

typedef struct opsc_local_cb {
    size_t size; /* sizeof(opsc_local_cb) */
    /* The process runs (loop). `pgid` is its process group (= its pid);
     * `handle` (borrowed for the call) names it across a restart of the
     * daemon: keep it to pass to local_kill_recorded() later. May be NULL. */
    void (*on_started)(void *ud, long pgid, const char *handle);
    /* Runs once (loop): the group leader exited (status 0, `exit_code`, or
     * `term_signal` > 0), or it could not start or the helper died (status
     * a negative OPSC_E* code, `error` says why; borrowed for the call). */
    void (*on_exit)(void *ud, int status, int64_t exit_code, int term_signal, const char *error);
} opsc_local_cb;

typedef struct opsc_host_api {
    size_t size;            /* sizeof(opsc_host_api) of the host: check with OPSC_HOST_HAS */
    uint16_t abi_major;     /* the host's OPSC_ABI_MAJOR */
    uint16_t abi_minor;     /* the host's OPSC_ABI_MINOR */
    const char *host_version; /* the daemon's version text; static */

    /* ---- memory (any thread) ------------------------------------------- */
    /* The allocator for everything that crosses the boundary. alloc and
     * calloc return NULL on failure. free(NULL) does nothing. */
    void *(*alloc)(size_t n);
    void *(*calloc)(size_t count, size_t n);
    void *(*realloc)(void *p, size_t n);
    void (*free)(void *p);
    char *(*strdup)(const char *s); /* transferred: free with free() */

    /* ---- logging (any thread) ------------------------------------------ */
    /* One line in the daemon's log with the plugin's `component` name
     * (borrowed until return). Never pass secrets. */
    void (*log)(const char *component, int level, const char *fmt, ...) OPSC_PRINTF(3, 4);
    /* True when a message of `level` would be written (skip costly formatting). */
    bool (*log_enabled)(int level);

    /* ---- loop and time -------------------------------------------------- */
    /* The daemon's libuv loop (loop): plugins that do network I/O register
     * their uv_poll_t / uv_timer_t handles on it, and close them all before
     * shutdown() returns. */
    struct uv_loop_s *(*loop)(void);
    /* Wall-clock time in milliseconds since the Unix epoch (any thread).
     * Tests may inject a clock; use this rather than time(). */
    int64_t (*now_ms)(void);
    /* Run `work` on a worker thread, then `after` on the loop thread with
     * status 0, or OPSC_ECANCELED if the daemon stopped first (loop). `ud` is
     * borrowed until `after` returns. Work must not touch loop state. */
    int (*queue_work)(void (*work)(void *ud), void (*after)(void *ud, int status), void *ud);

    /* ---- config (loop, inside init) ------------------------------------- */
    /* Bind the plugin's section to `dst` following `map` (opsc/config.h).
     * Unknown keys, bad values and missing required keys fail with
     * OPSC_ESCHEMA and a message naming file, line, key and the valid keys in
     * `err` (NUL-terminated, truncated to errlen). Strings stored in `dst` are
     * owned by the host until the plugin's shutdown() returns. The host keeps a
     * copy of `map` (borrowed until return): call this from init(), even when
     * the plugin has no keys ({NULL} table), so that the daemon's config
     * reference (opsconductord.conf(5), --print-config) lists the keys. */
    int (*config_bind)(const opsc_config *cfg, const opsc_cfg_entry *map, void *dst, char *err,
                       size_t errlen);

    /* ---- registration (loop, inside init only) -------------------------- */
    /* The descriptor is borrowed until shutdown() returns (use static const
     * data); `state` is handed back as the first argument of its functions.
     * Fail with OPSC_EEXIST when the name is taken, OPSC_EINVAL when the
     * descriptor is malformed (message in the log), OPSC_ESTATE outside init. */
    int (*register_transport)(const opsc_transport *transport, void *state);
    int (*register_steplib)(const opsc_steplib *lib, void *state);
    int (*register_notifier)(const opsc_notifier *notifier, void *state);
    int (*register_scanner)(const opsc_scanner *scanner, void *state);
    int (*register_auth_provider)(const opsc_auth_provider *provider, void *state);

    /* ---- step API (step worker) ---------------------------------------- */
    /* These block the calling worker until the loop has done the work. Every
     * returned string is owned by the host until run() returns. Once the
     * step is cancelled or times out, calls that wait return OPSC_ECANCELED. */

    /* A parameter as text: strings as they are, numbers and booleans
     * formatted, arrays and objects as JSON. NULL when absent. Secret
     * parameters come back as their reference name: use step_secret(). */
    const char *(*step_param)(opsc_step_ctx *ctx, const char *name);
    /* All parameters as one JSON object (secrets as references). */
    const char *(*step_params_json)(opsc_step_ctx *ctx);
    /* A fact about the target: "id", "name", "address", "port", "os_family",
     * "labels.<key>", "facts.<key>". NULL when unknown. */
    const char *(*step_target)(opsc_step_ctx *ctx, const char *key);
    /* Decrypted value of the secret parameter `name`. The host redacts it from
     * every log line and output of the run. Never log it yourself. */
    const char *(*step_secret)(opsc_step_ctx *ctx, const char *name);
    /* Quote `value` for the target's shell (POSIX or PowerShell rules), so
     * it arrives as one literal argument. Owned by the host until run() returns. */
    const char *(*step_quote)(opsc_step_ctx *ctx, const char *value);
    /* Run `command` on the target and wait for it. Returns 0 when it ran
     * (whatever its exit code, in `res`), or the transport's error. `opts`
     * may be NULL for the defaults; `res` is filled by the host. */
    int (*step_exec)(opsc_step_ctx *ctx, const char *command, const opsc_step_exec_opts *opts,
                     opsc_step_exec_result *res);
    /* Copy a file from the appliance to the target / from the target to the
     * appliance, streamed and checksum-verified. mode -1: remote default. */
    int (*step_put_file)(opsc_step_ctx *ctx, const char *local_path, const char *remote_path,
                         int mode);
    int (*step_get_file)(opsc_step_ctx *ctx, const char *remote_path, const char *local_path);
    /* A line in the run log for this target (secrets redacted). */
    void (*step_log)(opsc_step_ctx *ctx, int level, const char *fmt, ...) OPSC_PRINTF(3, 4);
    /* Set output `key` ([a-z0-9_]+) to `json_value` (any JSON text: "\"x\"",
     * "42", "{...}"); copied by the host. OPSC_EINVAL for bad JSON or key; the step's
     * error then names them, unless run() calls step_fail() with its own reason. */
    int (*step_set_output)(opsc_step_ctx *ctx, const char *key, const char *json_value);
    /* Explain why the step fails (shown as the step's `error`); returns
     * OPSC_EREMOTE so that `return host->step_fail(ctx, "...")` reads well. */
    int (*step_fail)(opsc_step_ctx *ctx, const char *fmt, ...) OPSC_PRINTF(2, 3);
    /* True once the step is cancelled or out of time: stop soon. */
    bool (*step_cancelled)(opsc_step_ctx *ctx);
    /* Sleep up to `ms`; returns early with OPSC_ECANCELED on cancel. */
    int (*step_sleep)(opsc_step_ctx *ctx, uint32_t ms);

    /* ---- local users (any thread; blocking) -------------------------------- */
    /* Check `password` against the stored hash of the local user `username`
     * (both borrowed until return) and fill `id` with the user's name, display
     * name, email and role. This is a deliberately slow hash: call it from a
     * worker thread (an auth provider's authenticate() is one). Returns 0 when
     * the password is right; OPSC_EAUTH when the user is a local user and the
     * password wrong; OPSC_ENOENT when there is no local user of that name
     * (including users of another provider). An unknown user costs the same
     * time as a wrong password. A disabled user still gets 0 here: the host
     * refuses it after the provider chain, so the answer to the client is the
     * same as for a wrong password. Check with OPSC_HOST_HAS() first. */
    int (*local_user_verify)(const char *username, const char *password, opsc_identity *id,
                             char *err, size_t errlen);

    /* ---- step rendering (step worker) ------------------------------------ */
    /* Render `template_text` with the host's template language (opsc/step.h)
     * as plain text, without shell quoting: the result is content, such as a
     * configuration file, not a command. The context is the step's run
     * context: `params` (the job's run parameters), `target`, `steps`
     * (earlier outputs), `run`, and `vars`, the JSON object `vars_json`
     * (NULL: none). On success *out is the text, owned by the host until
     * run() returns. Errors: OPSC_ESYNTAX or OPSC_EINVAL with
     * "line:col: reason" in `err` (NUL-terminated, truncated to errlen). */
    int (*step_render)(opsc_step_ctx *ctx, const char *template_text, const char *vars_json,
                       const char **out, char *err, size_t errlen);

    /* ---- files (any thread) ------------------------------------------------ */
    /* The daemon's data directory (static text, owned by the host): a plugin
     * that keeps files of its own makes a folder named for it in there, 0700.
     * ABI 1.1: check with OPSC_HOST_HAS() first. */
    const char *(*data_dir)(void);

    /* ---- libcurl on the loop (loop; ABI 1.1: check with OPSC_HOST_HAS) ---- */
    /* Run a transfer on the host's libcurl multi handle, driven by the loop,
     * so a plugin needs no sockets or timers of its own. `easy` is a CURL *
     * the plugin made with curl_easy_init() and set up (URL, headers, body,
     * callbacks, TLS and timeouts): it stays the plugin's, borrowed by the
     * host until `done` runs or curl_cancel() returns. The host sets
     * CURLOPT_PRIVATE: do not set or read it. `done` runs once on the loop
     * with the CURLcode; the plugin then reads what it needs with
     * curl_easy_getinfo() and cleans the handle up. Write and header
     * callbacks run on the loop too and must not block. Connections are
     * kept alive across transfers to the same host. 0, or OPSC_EINVAL (a
     * NULL argument, or libcurl refused the handle), OPSC_ENOMEM,
     * OPSC_ESTATE (the daemon is stopping); `done` never runs then. */
    int (*curl_start)(void *easy, opsc_curl_done_cb done, void *ud);
    /* Abandon a transfer started with curl_start(): it is taken off the
     * loop and its `done` never runs. Unknown handles are ignored. */
    void (*curl_cancel)(void *easy);

    /* ---- notifiers (loop; ABI 1.1: check with OPSC_HOST_HAS) ---------------- */
    /* A notifier that spoke HTTP tells the host what the receiver answered,
     * before calling `done` for that send: `ud` is the one send() received,
     * `http_status` the response status (0: no response), `retry_after_ms`
     * the Retry-After header in milliseconds (0: none). The host's delivery
     * policy then replaces `retryable`: 2xx delivered; 408, 429 and 5xx
     * retried, not sooner than Retry-After; 410 Gone gives up and disables
     * the channel (audited); any other status gives up. Never call it after
     * `done`. */
    void (*notify_http_status)(void *ud, int http_status, int64_t retry_after_ms);

    /* ---- local processes (loop; ABI 1.2: check with OPSC_HOST_HAS) ------- */
    /* 0 when local processes can be started; otherwise a negative code with
     * the reason in `why` (NUL-terminated, truncated to whylen): the helper
     * cannot switch to the local-steps user, the user does not exist... */
    int (*local_available)(char *why, size_t whylen);
    /* Start `req` (borrowed until return) as the local-steps user. On 0,
     * *out is the process, owned by the host until local_release(); the
     * callbacks `cb` (copied by the host) run later, on the loop, with `ud`.
     * Errors (no callback runs): OPSC_EPERM (local processes refused: see
     * local_available), OPSC_E2BIG (argv and env too large), OPSC_EINVAL,
     * OPSC_ENOMEM; the reason in `err`. */
    int (*local_spawn)(const opsc_local_spawn *req, const opsc_local_cb *cb, void *ud,
                       opsc_local_proc **out, char *err, size_t errlen);
    /* Send `sig` to the process group (cancel, timeout). The daemon's own
     * user cannot signal the local user's processes: this goes through the
     * helper. OPSC_ESTATE once the group leader exited and was released. */
    int (*local_signal)(opsc_local_proc *p, int sig);
    /* The caller is done with `p`: no callback runs after this. A group
     * still running is killed (SIGKILL). `p` is freed by the host. */
    void (*local_release)(opsc_local_proc *p);
    /* Kill a process group that a previous run of the daemon started and
     * recorded (the `handle` of on_started), if it is still that group of
     * the local-steps user (same boot, same start time): never a recycled
     * pid. `done` (may be NULL) runs later on the loop with the number of
     * processes killed (>= 0) or a negative code, and a message (borrowed). */
    int (*local_kill_recorded)(const char *handle,
                               void (*done)(void *ud, int killed, const char *msg), void *ud);
    /* ---- files of the run (step worker; ABI 1.3: check with OPSC_HOST_HAS) -- */
    /* A run keeps what its steps fetched beside its logs, per target, and
     * the run-log retention removes it with them; GET /api/v1/runs/{id}/files
     * lists it and serves it.
     *
     * The folder of this step's run and target on the appliance
     * (<data dir>/runs/<run id>/files/<target id>), created 0700 on first
     * use. Owned by the host until run() returns; NULL when it cannot be
     * made (the reason is in the daemon's log). An out-of-process library
     * gets the same path but may not write there itself: fetch into it with
     * step_fetch_file(), which works alike in and out of process. */
    const char *(*step_run_dir)(opsc_step_ctx *ctx);
    /* Fetch `remote_path` (absolute, on the target) into the run's folder
     * as `name` (one segment of [A-Za-z0-9._-], not starting with '.', at
     * most 255 bytes; both borrowed until return), streamed and
     * checksum-verified like step_get_file(), replacing a file of that name
     * whole. The host computes the file's SHA-256 once, keeps it beside the
     * file for the API, and fills `info` (may be NULL; set its `size`
     * first). Errors: OPSC_EINVAL (a bad name or path), the transport's
     * error, OPSC_ECANCELED, or -errno of the appliance's file system
     * (-ENOSPC); nothing half-written stays under the name. */
    int (*step_fetch_file)(opsc_step_ctx *ctx, const char *remote_path, const char *name,
                           opsc_step_file *info);
} opsc_host_api;

#ifdef __cplusplus
}
#endif
#endif /* OPSC_HOST_H */
