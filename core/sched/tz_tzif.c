/* tz_tzif.c - TZif (RFC 8536) version 2+ decoding into a zone: transitions, types, footer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "tz_internal.h"

#define TZIF_HEADER 44

struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

static int tzif_fail(char *err, size_t errlen, int code, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "TZif: %s", what);
    return code;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static int tzif_header(const uint8_t *p, size_t len, struct tzif_counts *c)
{
    if (len < TZIF_HEADER || memcmp(p, "TZif", 4) != 0)
        return -1;
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    /* Bounds from RFC 8536 section 3.1, and small enough that sizes below cannot overflow. */
    if (c->type == 0 || c->type > 256 || c->chars == 0 || c->chars > 65536 || c->time > 100000 ||
        c->leap > 100000 || (c->isut != 0 && c->isut != c->type) ||
        (c->isstd != 0 && c->isstd != c->type))
        return -1;
    return 0;
}

static size_t tzif_block(const struct tzif_counts *c, size_t timesize)
{
    return c->time * timesize + c->time + c->type * 6 + c->chars + c->leap * (timesize + 4) +
           c->isstd + c->isut;
}

static int tzif_types(struct tz *z, const uint8_t *p, const struct tzif_counts *c)
{
    const uint8_t *chars = p + c->type * 6;
    if (chars[c->chars - 1] != '\0')
        return -1;
    for (uint32_t i = 0; i < c->type; i++) {
        const uint8_t *t = p + i * 6;
        int32_t utoff = (int32_t)be32(t);
        if (utoff < -TZ_UTOFF_LIMIT || utoff > TZ_UTOFF_LIMIT || t[4] > 1 || t[5] >= c->chars)
            return -1;
        z->types[i].utoff = utoff;
        z->types[i].is_dst = t[4];
        snprintf(z->types[i].abbr, TZ_ABBR_MAX, "%s", (const char *)chars + t[5]);
    }
    return 0;
}

static int tzif_footer(struct tz *z, const uint8_t *p, size_t len, char *err, size_t errlen)
{
    if (len < 2 || p[0] != '\n')
        return tzif_fail(err, errlen, OPSC_ECORRUPT, "missing footer");
    const uint8_t *nl = memchr(p + 1, '\n', len - 1);
    if (!nl)
        return tzif_fail(err, errlen, OPSC_ECORRUPT, "unterminated footer");
    size_t n = (size_t)(nl - p - 1);
    if (n == 0)
        return 0; /* no rule: the last type stays in force */
    char buf[128];
    if (n >= sizeof(buf) || memchr(p + 1, '\0', n))
        return tzif_fail(err, errlen, OPSC_ECORRUPT, "footer too long");
    memcpy(buf, p + 1, n);
    buf[n] = '\0';
    int rc = tz_rule_parse(buf, &z->rule, err, errlen);
    if (rc)
        return OPSC_ECORRUPT;
    z->has_rule = true;
    return 0;
}

static int tzif_body(struct tz *z, const uint8_t *p, const struct tzif_counts *c)
{
    z->ntrans = c->time;
    z->ntypes = c->type;
    z->trans = malloc(sizeof(int64_t) * (c->time ? c->time : 1));
    z->trans_ty = malloc(c->time ? c->time : 1);
    z->types = calloc(c->type, sizeof(struct tz_type));
    if (!z->trans || !z->trans_ty || !z->types)
        return OPSC_ENOMEM;
    for (uint32_t i = 0; i < c->time; i++) {
        z->trans[i] = be64(p + 8 * i);
        z->trans_ty[i] = p[8 * c->time + i];
        if (z->trans_ty[i] >= c->type || (i > 0 && z->trans[i] <= z->trans[i - 1]))
            return OPSC_ECORRUPT;
    }
    return tzif_types(z, p + 9 * c->time, c) ? OPSC_ECORRUPT : 0;
}

int tz_tzif_parse(const uint8_t *p, size_t len, struct tz *z, char *err, size_t errlen)
{
    struct tzif_counts c;
    if (tzif_header(p, len, &c))
        return tzif_fail(err, errlen, OPSC_ECORRUPT, "bad header");
    if (p[4] < '2')
        return tzif_fail(err, errlen, OPSC_ENOTSUP, "version 1 files are not supported");
    size_t skip = TZIF_HEADER + tzif_block(&c, 4);
    if (skip > len || tzif_header(p + skip, len - skip, &c))
        return tzif_fail(err, errlen, OPSC_ECORRUPT, "bad version 2 header");
    if (c.leap)
        return tzif_fail(err, errlen, OPSC_ENOTSUP, "leap-second zones are not supported");
    p += skip + TZIF_HEADER;
    len -= skip + TZIF_HEADER;
    size_t body = tzif_block(&c, 8);
    if (body > len)
        return tzif_fail(err, errlen, OPSC_ECORRUPT, "truncated data");
    int rc = tzif_body(z, p, &c);
    if (rc)
        return tzif_fail(err, errlen, rc, rc == OPSC_ENOMEM ? "out of memory" : "bad data block");
    rc = tzif_footer(z, p + body, len - body, err, errlen);
    if (rc)
        return rc;
    tz_compute_bounds(z);
    return 0;
}
