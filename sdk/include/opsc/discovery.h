/* opsc/discovery.h - discovery scanners: find machines on the network.
 *
 * A scanner plugin registers an opsc_scanner with
 * opsc_host_api.register_scanner(). A scan takes a spec (JSON: address
 * ranges, ports, rate, timeouts: whatever the scanner's schema says) and
 * reports each host it finds; the host stores results and lets users onboard
 * them as targets.
 *
 * Threads: scan() and cancel() are called on the loop thread and must not
 * block; on_host and done are called on the loop thread, never from inside
 * scan().
 */
#ifndef OPSC_DISCOVERY_H
#define OPSC_DISCOVERY_H

#include <stddef.h>

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
    const char *facts_json; /* scanner-specific facts (open ports, banners): JSON object */
} opsc_found_host;

typedef void (*opsc_scan_host_cb)(void *ud, const opsc_found_host *host);
/* Called once, last. `error` borrowed until return. */
typedef void (*opsc_scan_done_cb)(void *ud, int status, const char *error);

typedef struct opsc_scanner {
    size_t size;
    const char *name;        /* "tcp", "mdns"... */
    const char *summary;
    const char *spec_schema; /* JSON Schema (text) of a scan spec */
    /* Start a scan. `spec_json` is borrowed until return. */
    int (*scan)(void *state, const char *spec_json, opsc_scan_host_cb on_host,
                opsc_scan_done_cb done, void *ud, opsc_scan **out);
    /* Stop a running scan; `done` still runs, with OPSC_ECANCELED. */
    void (*cancel)(opsc_scan *scan);
} opsc_scanner;

#ifdef __cplusplus
}
#endif
#endif /* OPSC_DISCOVERY_H */
