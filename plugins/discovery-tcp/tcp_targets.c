/* tcp_targets.c - the spec: CIDR blocks walked address by address, ports, rate, options. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcp_internal.h"

static int bad(tscan *s, const char *fmt, const char *arg)
{
    snprintf(s->error, sizeof(s->error), fmt, arg);
    return OPSC_EINVAL;
}

static int parse_block(const char *text, tblock *b)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(text, '/');
    if (!slash || (size_t)(slash - text) >= sizeof(addr))
        return -1;
    memcpy(addr, text, (size_t)(slash - text));
    addr[slash - text] = '\0';
    char *end;
    long prefix = strtol(slash + 1, &end, 10);
    memset(b, 0, sizeof(*b));
    if (inet_pton(AF_INET, addr, b->base) == 1)
        b->family = AF_INET;
    else if (inet_pton(AF_INET6, addr, b->base) == 1)
        b->family = AF_INET6;
    int max = b->family == AF_INET ? 32 : 128;
    if (!b->family || *end || prefix < 0 || prefix > max || max - prefix > 63)
        return -1;
    b->count = (uint64_t)1 << (max - prefix);
    return 0;
}

static int parse_ports(tscan *s, const json_t *ports)
{
    s->nports = json_array_size(ports);
    s->ports = tcp_host->calloc(s->nports ? s->nports : 1, sizeof(*s->ports));
    if (!s->ports)
        return OPSC_ENOMEM;
    for (size_t i = 0; i < s->nports; i++) {
        json_int_t p = json_integer_value(json_array_get(ports, i));
        if (p < 1 || p > 65535)
            return bad(s, "%s", "ports must be 1-65535");
        s->ports[i] = (uint16_t)p;
    }
    return s->nports ? 0 : bad(s, "%s", "no ports to scan");
}

static json_t *port_list(const json_t *options, const char *key, int dflt)
{
    json_t *v = json_object_get(options, key);
    return json_is_array(v) ? json_incref(v) : json_pack("[i]", dflt);
}

int tscan_spec(tscan *s, const char *spec_json)
{
    json_error_t je;
    json_t *spec = json_loads(spec_json, 0, &je), *targets = json_object_get(spec, "targets");
    int rc = json_is_array(targets) ? 0 : bad(s, "%s", "the spec has no targets");
    s->nblocks = json_array_size(targets);
    if (rc == 0 && !(s->blocks = tcp_host->calloc(s->nblocks ? s->nblocks : 1, sizeof(tblock))))
        rc = OPSC_ENOMEM;
    for (size_t i = 0; rc == 0 && i < s->nblocks; i++) {
        const char *t = json_string_value(json_array_get(targets, i));
        if (!t || parse_block(t, &s->blocks[i]) < 0)
            rc = bad(s, "not a CIDR block the scanner can walk: %.60s", t ? t : "(not a string)");
        else
            s->total += s->blocks[i].count;
    }
    if (rc == 0)
        rc = parse_ports(s, json_object_get(spec, "ports"));
    json_t *opts = json_object_get(spec, "options");
    s->rate = (double)json_integer_value(json_object_get(spec, "rate"));
    s->concurrency = (int)json_integer_value(json_object_get(spec, "concurrency"));
    s->timeout_ms = (uint32_t)json_integer_value(json_object_get(spec, "timeout_ms"));
    s->icmp = json_is_true(json_object_get(spec, "icmp"));
    s->rdns = s->cfg->rdns && !json_is_false(json_object_get(opts, "rdns"));
    s->http_ports = port_list(opts, "winrm_http_ports", 5985);
    s->https_ports = port_list(opts, "winrm_https_ports", 5986);
    if (rc == 0 && (s->rate < 1 || s->concurrency < 1 || s->timeout_ms < 1))
        rc = bad(s, "%s", "rate, concurrency and timeout_ms must be at least 1");
    if (s->concurrency > s->cfg->max_concurrency)
        s->concurrency = (int)s->cfg->max_concurrency;
    json_decref(spec);
    return rc;
}

/* base + off, big-endian. */
static void add_offset(const tblock *b, uint64_t off, uint8_t *out)
{
    int len = b->family == AF_INET ? 4 : 16;
    memcpy(out, b->base, (size_t)len);
    unsigned carry = 0;
    for (int i = len - 1; i >= 0; i--) {
        unsigned sum = out[i] + (unsigned)(off & 0xff) + carry;
        out[i] = (uint8_t)sum;
        carry = sum >> 8;
        off >>= 8;
    }
}

bool tscan_next_addr(tscan *s, struct sockaddr_storage *sa, char *text, size_t n)
{
    while (s->bi < s->nblocks && s->off >= s->blocks[s->bi].count) {
        s->bi++;
        s->off = 0;
    }
    if (s->bi >= s->nblocks)
        return false;
    const tblock *b = &s->blocks[s->bi];
    memset(sa, 0, sizeof(*sa));
    if (b->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        in->sin_family = AF_INET;
        add_offset(b, s->off, (uint8_t *)&in->sin_addr);
        inet_ntop(AF_INET, &in->sin_addr, text, (socklen_t)n);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        in6->sin6_family = AF_INET6;
        add_offset(b, s->off, (uint8_t *)&in6->sin6_addr);
        inet_ntop(AF_INET6, &in6->sin6_addr, text, (socklen_t)n);
    }
    s->off++;
    return true;
}
