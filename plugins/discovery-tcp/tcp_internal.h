/* tcp_internal.h - what discovery-tcp's files share: a scan, its hosts and connections. */
#ifndef TCP_INTERNAL_H
#define TCP_INTERNAL_H

#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include <opsc/plugin.h>

#include "dx_wsman.h"
#include "tcp_ssh.h"

extern const opsc_host_api *tcp_host;

typedef struct tcp_settings {
    bool rdns;               /* reverse names of the hosts found */
    int64_t rdns_timeout_ms; /* each lookup at most */
    int64_t max_concurrency; /* a scan's concurrency is capped here (and by the fd limit) */
    const char *wsman_path;  /* "/wsman" */
} tcp_settings;

typedef struct tscan tscan;
typedef struct thost thost;
typedef struct twsman twsman;
typedef struct trdns trdns;
typedef struct ticmp ticmp;

enum tport { TP_UNKNOWN = 0, TP_OPEN, TP_CLOSED, TP_FILTERED };
enum tsvc { SVC_NONE = 0, SVC_SSH, SVC_WINRM, SVC_HTTP };

/* A deadline in the scan's FIFO (every entry waits timeout_ms: appending keeps it sorted). */
typedef struct twait {
    uint64_t deadline; /* uv_now() ms */
    struct twait *prev, *next;
    bool queued;
    bool is_conn; /* a tconn, else a thost's ICMP wait */
} twait;

typedef struct tconn {
    twait wait; /* first: a twait * is a tconn * when is_conn */
    uv_tcp_t tcp;
    uv_connect_t req;
    thost *h;
    int port; /* index into the scan's ports */
    enum { TC_CONNECTING, TC_READING, TC_CLOSING } phase;
    bool quiet; /* out of descriptors: its close leaves the host and the pump alone */
    int stalls; /* deadlines passed with news waiting (a busy loop): one more wait at most */
    tssh *ssh;  /* while reading a banner */
} tconn;

struct thost {
    twait icmp_wait; /* first: a twait * is a thost * when !is_conn */
    tscan *s;
    thost *prev, *next;
    struct sockaddr_storage sa;
    char addr[INET6_ADDRSTRLEN];
    uint8_t *state; /* enum tport per scan port */
    uint8_t *svc;   /* enum tsvc per scan port */
    size_t next_port;
    int pending; /* connections, Identify requests, ICMP and DNS waits outstanding */
    bool resolving, reported;
    struct tconn *ssh_reader; /* the connection reading the host key: one per host */
    char banner[256], key_type[64], fingerprint[64];
    int ssh_port;
    bool winrm, https, icmp_reply;
    int winrm_port;
    dx_identify identify;
    char cert_sha256[65];
    char hostname[256];
    void *wsman_req;
    trdns *rdns;
    uv_timer_t *rdns_timer;
};

typedef struct tblock {
    int family;
    uint8_t base[16];
    uint64_t count; /* addresses (the host bounds a spec's total) */
} tblock;

struct tscan {
    const tcp_settings *cfg;
    uv_loop_t *loop;
    opsc_scan_host_cb on_host;
    opsc_scan_done_cb done;
    void *ud;
    /* the spec */
    tblock *blocks;
    size_t nblocks;
    uint64_t total;
    uint16_t *ports;
    size_t nports;
    double rate;
    int concurrency;
    uint32_t timeout_ms;
    bool icmp;
    json_t *http_ports, *https_ports; /* WinRM Identify over HTTP / HTTPS on these */
    bool rdns;
    /* progress */
    size_t bi;
    uint64_t off;
    thost *cur; /* its ports are still being started */
    double tokens;
    uint64_t bucket_ns;
    int inflight;
    bool fd_wait; /* out of file descriptors: wait for a connection to close */
    twait *fifo_head, *fifo_tail;
    thost *hosts;
    uv_timer_t pump, deadline;
    int handles; /* uv handles of the scan not yet closed */
    uint64_t ndone, probes;
    bool ending;
    int status;
    char error[200];
    twsman *wsman;
    ticmp *icmp_sock;
    const char *icmp_note;
    char icmp_why[120];
    uint8_t rbuf[65536];
};

/* ---- tcp_plugin.c -----------------------------------------------------------------------------
 */
/* The scan is over and about to be freed: the plugin forgets it. */
void tcp_scan_over(tscan *s);

/* ---- tcp_targets.c -------------------------------------------------------------------------- */
/* Read the spec; OPSC_EINVAL with the reason in s->error. */
int tscan_spec(tscan *s, const char *spec_json);
/* The next address into sa/text; false when every block is done. */
bool tscan_next_addr(tscan *s, struct sockaddr_storage *sa, char *text, size_t n);

/* ---- tcp_scan.c ------------------------------------------------------------------------------ */
void tscan_pump(tscan *s);
void tscan_end(tscan *s, int status, const char *error);
void twait_push(tscan *s, twait *w);
void twait_remove(tscan *s, twait *w);
/* Once ending and everything is closed: done, and the scan is freed. */
void tscan_maybe_finish(tscan *s);
/* A handle of the scan closed (counted in s->handles). */
void tscan_handle_closed(uv_handle_t *h);

/* ---- tcp_host.c ------------------------------------------------------------------------------ */
thost *thost_new(tscan *s);
/* One outstanding thing of the host is over: go on to names, or report it. */
void thost_step(thost *h);
void thost_free(thost *h);
/* The scan port index is an Identify port: 0 no, 1 HTTP, 2 HTTPS. */
int thost_wsman_kind(const tscan *s, int port);

/* ---- tcp_conn.c ------------------------------------------------------------------------------ */
/* Connect to port index `pi` of `h`: 0, or a negative code (out of descriptors). */
int tconn_start(thost *h, int pi);
/* Its deadline passed. */
void tconn_timeout(tconn *c);
/* Close now (the scan ends). */
void tconn_abort(tconn *c);

/* ---- tcp_wsman.c ----------------------------------------------------------------------------- */
typedef void (*twsman_cb)(void *ud, int status, const dx_identify *id, const char *cert_sha256,
                          const char *error);
/* OPSC_ENOTSUP on a host without curl_start (ABI 1.0): the scan then asks nothing. */
int twsman_new(twsman **out);
/* POST an Identify to `url`; `cb` later, once, unless aborted. *req for twsman_abort. */
int twsman_identify(twsman *w, const char *url, uint32_t timeout_ms, twsman_cb cb, void *ud,
                    void **req);
void twsman_abort(twsman *w, void *req);
/* Abort what is in flight (no callbacks) and free. */
void twsman_free(twsman *w);

/* ---- tcp_rdns.c ------------------------------------------------------------------------------ */
int trdns_start(uv_loop_t *loop, const struct sockaddr *sa, void (*cb)(void *ud, const char *name),
                void *ud, trdns **out);
/* `cb` never runs; the request frees itself when the resolver returns. */
void trdns_orphan(trdns *r);

/* ---- tcp_icmp.c ------------------------------------------------------------------------------ */
/* NULL with a reason when the process may not use unprivileged ICMP. */
ticmp *ticmp_open(tscan *s, char *why, size_t n);
int ticmp_send(ticmp *i, thost *h);
void ticmp_close(ticmp *i);

/* ---- tcp_facts.c ----------------------------------------------------------------------------- */
/* Report `h` if the scan found anything on it. */
void thost_report(thost *h);

#endif
