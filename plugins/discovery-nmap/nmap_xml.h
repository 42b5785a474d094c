/* nmap_xml.h - reading nmap's -oX output as it streams: each <host> element as soon as it is
 * whole, mapped to the host record discovery scanners report (opsc/discovery.h), and the
 * progress nmap prints with --stats-every.
 *
 * Input is nmap's stdout: trusted to be nmap's, still read defensively (lengths bounded, XML
 * through dx_xml). Thread: values; any thread.
 */
#ifndef NMAP_XML_H
#define NMAP_XML_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define NMAP_STREAM_MAX (8u << 20) /* one <host> element larger than this is an error */

typedef struct nmap_stream {
    char *buf;
    size_t len, cap;
    double percent; /* the last taskprogress, 0-100 */
} nmap_stream;

typedef void (*nmap_host_fn)(void *ud, const char *xml, size_t len);

/* Take stdout bytes; `fn` gets each complete <host>...</host>. 0, or -1 when
 * the output grows past NMAP_STREAM_MAX without a host ending. */
int nmap_stream_feed(nmap_stream *st, const char *data, size_t n, nmap_host_fn fn, void *ud);
void nmap_stream_free(nmap_stream *st);

/* One <host> element as {address, hostname, os_family, facts} (a new reference), facts in
 * the shape of opsc/discovery.h for the scan's `ports` (nmap leaves out ports it sums up in
 * <extraports>: those get that state). NULL when the host has no open port (err "") or
 * the element is malformed (err says why). */
json_t *nmap_host_parse(const char *xml, size_t len, const uint16_t *ports, size_t nports,
                        char *err, size_t errlen);

#endif
