/* harness.h - a minimal plugin host for transport tests: load a transport .so the real way and
 * drive it.
 *
 * The harness dlopen()s a plugin, calls opsc_plugin_entry() and init() with
 * its own small opsc_host_api (allocator, log, loop, config_bind,
 * register_transport, register_scanner), and offers blocking helpers that run the harness's
 * libuv loop until a transport callback arrives. It links nothing of core/.
 * It also starts the sshd fixture (tests/integration/fixtures/sshd.py).
 */
#ifndef TH_HARNESS_H
#define TH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <opsc/plugin.h>

typedef struct th_plugin {
    void *dl;
    const opsc_plugin *desc;
    const opsc_transport *t; /* what init() registered */
    void *state;             /* handed to the transport's functions */
    void *pstate;            /* handed to shutdown() */
    char *cfg_text;          /* the config text its string settings point into */
    const opsc_scanner *scanner; /* a discovery plugin's registration, instead of `t` */
} th_plugin;

uv_loop_t *th_loop(void);
const opsc_host_api *th_api(void);
/* Load `path` with the [plugin.x] settings in `config` ("key = value" lines,
 * may be NULL). Returns init()'s result; the message of a config error is in
 * th_last_log(). */
int th_load(th_plugin *p, const char *path, const char *config);
void th_unload(th_plugin *p);
const char *th_last_log(void);
/* Bytes allocated through the host allocator and not freed. */
int64_t th_live_bytes(void);
/* For a group teardown: 0 when the plugin gave back everything, else -1 (and says so). */
int th_no_leaks(void);

/* Run the loop until *flag is true, at most `ms`. Returns false on timeout. */
bool th_run_until(volatile bool *flag, uint32_t ms);
/* Run the loop until nothing is left; true when it closed clean. */
bool th_loop_drain(void);

typedef struct th_conn {
    bool done;
    int status;
    opsc_conn *conn;
    char error[1024];
    char key_type[32], key_fp[64], warning[512];
    bool learned;
} th_conn;

int th_connect(th_plugin *p, const opsc_target *t, const opsc_credential *c, th_conn *out);
/* Start only; wait with th_run_until(&out->done, ms). */
int th_connect_start(th_plugin *p, const opsc_target *t, const opsc_credential *c, th_conn *out);
void th_close(th_plugin *p, opsc_conn *conn);

typedef struct th_exec {
    th_plugin *p;
    opsc_exec *ex;
    bool done;
    int status, exit_code;
    char exit_signal[32];
    char error[1024];
    char out[65536], err[65536]; /* the first bytes of each stream */
    size_t nout, nerr;
    uint64_t total_out, total_err;
    size_t pause_after; /* set after th_exec_start: pause once this many bytes came */
    bool paused;
    unsigned drained; /* on_stdin_drained calls */
} th_exec;

int th_exec_start(th_plugin *p, opsc_conn *conn, const opsc_exec_req *req, th_exec *e);
/* Start, wait for the end. Returns the start error or 0 (see e). */
int th_exec_run(th_plugin *p, opsc_conn *conn, const char *command, th_exec *e);
bool th_exec_wait(th_exec *e, uint32_t ms);

typedef struct th_xfer {
    bool done;
    int status;
    uint64_t bytes;
    char sha256[65];
    char error[1024];
} th_xfer;

int th_put(th_plugin *p, opsc_conn *conn, const char *local, const char *remote, int mode,
           th_xfer *x);
int th_get(th_plugin *p, opsc_conn *conn, const char *remote, const char *local, th_xfer *x);

/* The sshd fixture. */
typedef struct th_sshd {
    char dir[256];
    int port;
    long pid;
    char user[64], password[128], passphrase[64];
    char host_ed25519[64], host_rsa[64];
} th_sshd;

int th_sshd_start(th_sshd *s, const char *options);
void th_sshd_stop(th_sshd *s);
void th_sshd_kill_sessions(th_sshd *s);
/* CPU time (ms, user + system) of the sshd's exited connection processes so far. */
long th_sshd_children_cpu_ms(th_sshd *s);
/* Read a generated file of the fixture ("key_ed25519"...); free() it. */
char *th_sshd_file(th_sshd *s, const char *name);
char *th_read_file(const char *path);

/* RSS of this process in kB (VmRSS), and its high-water mark (VmHWM). */
long th_rss_kb(void);
long th_hwm_kb(void);

#endif
