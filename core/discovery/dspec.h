/* dspec.h - what a scan covers: address ranges, exclusions and ports, parsed, counted, checked.
 *
 * A range item is one of
 *   CIDR block     "10.1.2.0/24", "2001:db8::/120" (host bits are cleared: 10.1.2.5/24 is
 *                  10.1.2.0/24, as nmap reads it)
 *   range          "10.1.2.10-10.1.2.50", "10.1.2.10-50" (last octet), "2001:db8::1-2001:db8::ff"
 *   address        "10.1.2.3", "::1", "[::1]"
 *   host name      "web1.example.com": resolved by the caller, each address then added
 * Exclusions take the first three forms. A set is a sorted list of disjoint
 * intervals per family (IPv4 before IPv6); counts saturate at UINT64_MAX.
 *
 * Messages name the item and why ("ranges[2]: '10.1.2.0/33': prefix length 33 out of range
 * 0-32"), in a form fit for an API error (printable ASCII; user text truncated).
 *
 * Thread: pure functions on values the caller owns; any thread.
 */
#ifndef OPSC_DSPEC_H
#define OPSC_DSPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

__extension__ typedef unsigned __int128 dspec_u128;

#define DSPEC_ITEMS_MAX 1024 /* range, exclude or allowed items at most */
#define DSPEC_NAME_MAX  253  /* a host name's length */

typedef struct dspec_iv {
    int family; /* 4 or 6 */
    dspec_u128 lo, hi;
} dspec_iv;

typedef struct dspec_set {
    dspec_iv *v;
    size_t n, cap;
} dspec_set;

enum dspec_kind { DSPEC_CIDR, DSPEC_RANGE, DSPEC_ADDR, DSPEC_NAME };

typedef struct dspec_item {
    enum dspec_kind kind;
    dspec_iv iv;                   /* all but DSPEC_NAME */
    char name[DSPEC_NAME_MAX + 1]; /* DSPEC_NAME, without a trailing dot */
} dspec_item;

/* One item of text. OPSC_ESCHEMA with the reason in err (no item prefix). */
int dspec_item_parse(const char *text, dspec_item *out, char *err, size_t errlen);

void dspec_set_free(dspec_set *s);
/* Add an interval (merging happens in dspec_set_normalize). 0 or OPSC_ENOMEM. */
int dspec_set_add(dspec_set *s, const dspec_iv *iv);
/* Sort and merge overlapping and adjacent intervals. */
void dspec_set_normalize(dspec_set *s);
/* Remove every address of `cut` (normalized) from `s` (normalized). */
int dspec_set_subtract(dspec_set *s, const dspec_set *cut);
/* Addresses in a normalized set, saturating. */
uint64_t dspec_set_count(const dspec_set *s);
/* True when every address of `s` lies in `allowed` (both normalized); else
 * the first interval that does not, in *outside. */
bool dspec_set_within(const dspec_set *s, const dspec_set *allowed, dspec_iv *outside);
/* The set as CIDR blocks ["10.0.0.0/23", ...], ascending (new reference). */
json_t *dspec_set_cidrs(const dspec_set *s);
/* True when `addr` (an IP literal) lies in the normalized set. */
bool dspec_set_has(const dspec_set *s, const char *addr);

/* "10.1.2.0-10.1.2.255" or "10.1.2.3" into buf. */
void dspec_iv_format(const dspec_iv *iv, char *buf, size_t n);

/* A comma-separated list of items without names ([discovery] allowed_ranges,
 * profile rule ranges); "" is the empty set. `what` prefixes messages. */
int dspec_set_parse_list(const char *list, const char *what, dspec_set *out, char *err,
                         size_t errlen);
/* A JSON array of item strings without names, into a normalized set;
 * messages say "<what>[i]: ...". */
int dspec_set_parse_json(const json_t *arr, const char *what, dspec_set *out, char *err,
                         size_t errlen);

/* Ports: a JSON array of integers 1-65535 or "a-b" range strings, at most
 * `max` ports in all; sorted and unique into *out (heap, caller frees), their
 * number in *n. OPSC_ESCHEMA naming "ports[i]". */
int dspec_ports_parse(const json_t *arr, size_t max, uint16_t **out, size_t *n, char *err,
                      size_t errlen);

#endif
