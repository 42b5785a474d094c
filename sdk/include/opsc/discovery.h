/* opsc/discovery.h - discovery scanners: find machines on the network.
 *
 * A scanner plugin registers an opsc_scanner with
 * opsc_host_api.register_scanner(). The host takes the user's scan request
 * (ranges, exclusions, ports, rate...), checks it against its own limits
 * ([discovery] max_addresses, allowed_ranges), resolves host names, and
 * hands the scanner a normalized spec; the scanner reports each host it
 * finds, and the host keeps the inventory and onboards hosts as targets.
 *
 * Threads: scan(), cancel() and progress() are called on the loop thread
 * and must not block; on_host and done are called by the scanner on the
 * loop thread, never from inside scan() or cancel().
 *
 * THE SPEC (spec_json, borrowed until scan() returns), one JSON object:
 *   "targets"     array of CIDR blocks ("192.0.2.0/24", "2001:db8::10/127"),
 *                 disjoint, IPv4 before IPv6, ascending; exclusions are
 *                 already removed, so a scanner scans exactly these
 *   "total"       integer: the number of addresses in "targets"
 *   "ports"       array of TCP ports 1-65535, ascending, unique
 *   "rate"        integer >= 1: connection attempts per second, at most
 *   "concurrency" integer >= 1: connections (or probes) in flight, at most
 *   "timeout_ms"  integer >= 1: the time one probe may take
 *   "icmp"        boolean: also send ICMP echo where the process may
 *   "options"     object: scanner-specific settings, already validated
 *                 against the scanner's spec_schema (may be empty)
 * Members may be added; a scanner ignores those it does not know.
 *
 * WHAT A HOST REPORTS (opsc_found_host.facts_json), one JSON object; every
 * member optional, unknown members kept as they are:
 *   "ports"       [{"port": 22, "state": "open"|"closed"|"filtered",
 *                   "service": "ssh"|"winrm"|...}]: every probed port of
 *                 the host
 *   "ssh"         {"port", "banner", "host_key_type" ("ssh-ed25519"...),
 *                  "host_key_fingerprint" ("SHA256:<base64>", unpadded, as
 *                  ssh-keygen -l prints it)}
 *   "winrm"       {"port", "scheme" ("http"|"https"), "vendor",
 *                  "protocol_version", "product_version",
 *                  "tls_cert_sha256" (hex, https only)}: WS-Management Identify
 *   "icmp"        "reply" when the host answered an echo request
 *   "os_evidence" [{"source", "detail", "suggests"}]: why os_family says what
 *                 it says
 * A host is reported once per scan, when everything about it is known.
 */
#ifndef OPSC_DISCOVERY_H
#define OPSC_DISCOVERY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct opsc_scan opsc_scan; /* a running scan, defined by the scanner */

/* A host found. Borrowed until the callback returns. */
typedef struct opsc_found_host {
    size_t size;
    const char *address;    /* IP literal */
    const char *hostname;   /* reverse name or NULL */
    const char *os_family;  /* best guess: "linux", "windows", or NULL */
    const char *facts_json; /* what the scan learned, as described above: JSON object */
} opsc_found_host;

/* How far a scan is (ABI 1.1). The host sets `size` to sizeof(opsc_scan_progress)
 * of its header; the scanner fills the members that fit. */
typedef struct opsc_scan_progress {
    size_t size;
    uint64_t done;    /* addresses finished (found or not) */
    uint64_t total;   /* addresses in the spec */
    uint64_t probes;  /* connection attempts (or packets) sent so far */
    const char *icmp; /* when the spec asked for ICMP: "sent", or why it could not be (the
                         process may not open ICMP sockets); else NULL. Owned by the scan
                         until done returns: the host copies it */
} opsc_scan_progress;

typedef void (*opsc_scan_host_cb)(void *ud, const opsc_found_host *host);
/* Called once, last: 0 when the scan went through, OPSC_ECANCELED after
 * cancel(), another negative code when it failed (`error` says why; NULL
 * otherwise; borrowed until return). After `done` returns the opsc_scan is
 * gone: the host calls nothing more on it. */
typedef void (*opsc_scan_done_cb)(void *ud, int status, const char *error);

typedef struct opsc_scanner {
    size_t size;
    const char *name; /* "tcp", "nmap"...: what scan requests name in "scanner" */
    const char *summary;
    const char *spec_schema; /* JSON Schema (text) of the spec's "options" object, or NULL */
    /* Start a scan. `spec_json` is borrowed until return; `ud` is handed
     * back to on_host and done. On success *out is the scan (owned by the
     * scanner until done returns) and on_host/done will run; on failure
     * (a negative code) neither runs. */
    int (*scan)(void *state, const char *spec_json, opsc_scan_host_cb on_host,
                opsc_scan_done_cb done, void *ud, opsc_scan **out);
    /* Stop a running scan within about a second: no more on_host, then
     * `done` with OPSC_ECANCELED once every socket and child process of the
     * scan is closed. Calling it twice is harmless. */
    void (*cancel)(opsc_scan *scan);

    /* ---- ABI 1.1 (check with OPSC_SCANNER_HAS) ---- */
    /* Fill `out` (see opsc_scan_progress). May be NULL: the host then shows
     * 0 done until the end. */
    void (*progress)(opsc_scan *scan, opsc_scan_progress *out);
} opsc_scanner;

/* True when the descriptor `s` has member `m` (the host checks this before
 * calling members newer than ABI 1.0). */
#define OPSC_SCANNER_HAS(s, m)                                                                     \
    ((s)->size >= offsetof(opsc_scanner, m) + sizeof(((opsc_scanner *)0)->m) && (s)->m)

#ifdef __cplusplus
}
#endif
#endif /* OPSC_DISCOVERY_H */
