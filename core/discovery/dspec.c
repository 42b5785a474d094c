/* dspec.c - address range items, interval sets (exclusions, limits, CIDR blocks) and port lists. */
#include "dspec.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "fleet.h"

#define MAX_TEXT 128 /* longest range item: two IPv6 literals and a dash fit */

static dspec_u128 ones(int family)
{
    return family == 4 ? (dspec_u128)UINT32_MAX : ~(dspec_u128)0;
}

/* ---- addresses -------------------------------------------------------------------------- */

static bool parse_addr(const char *s, int *family, dspec_u128 *out)
{
    unsigned char b[16];
    char buf[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']' && n - 2 < sizeof(buf)) {
        memcpy(buf, s + 1, n - 2);
        buf[n - 2] = '\0';
        s = buf;
    }
    if (inet_pton(AF_INET, s, b) == 1) {
        *family = 4;
        *out = ((dspec_u128)b[0] << 24) | ((dspec_u128)b[1] << 16) | ((dspec_u128)b[2] << 8) | b[3];
        return true;
    }
    if (inet_pton(AF_INET6, s, b) != 1)
        return false;
    *family = 6;
    *out = 0;
    for (int i = 0; i < 16; i++)
        *out = (*out << 8) | b[i];
    return true;
}

static void format_addr(int family, dspec_u128 v, char *buf, size_t n)
{
    unsigned char b[16];
    int len = family == 4 ? 4 : 16;
    for (int i = len - 1; i >= 0; i--, v >>= 8)
        b[i] = (unsigned char)(v & 0xff);
    char text[INET6_ADDRSTRLEN];
    inet_ntop(family == 4 ? AF_INET : AF_INET6, b, text, sizeof(text));
    snprintf(buf, n, "%s", text);
}

void dspec_iv_format(const dspec_iv *iv, char *buf, size_t n)
{
    char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
    format_addr(iv->family, iv->lo, a, sizeof(a));
    if (iv->lo == iv->hi) {
        snprintf(buf, n, "%s", a);
        return;
    }
    format_addr(iv->family, iv->hi, b, sizeof(b));
    snprintf(buf, n, "%s-%s", a, b);
}

/* ---- one item ------------------------------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return OPSC_ESCHEMA;
}

static int parse_cidr(const char *text, const char *slash, dspec_item *out, char *err,
                      size_t errlen)
{
    char addr[MAX_TEXT];
    snprintf(addr, sizeof(addr), "%.*s", (int)(slash - text), text);
    int family;
    dspec_u128 v;
    if (!parse_addr(addr, &family, &v))
        return fail(err, errlen, "'%s' is not an IPv4 or IPv6 address", addr);
    int max = family == 4 ? 32 : 128;
    const char *p = slash + 1;
    if (!*p || strlen(p) > 3 || strspn(p, "0123456789") != strlen(p) || atoi(p) > max)
        return fail(err, errlen, "prefix length '%s' out of range 0-%d", p, max);
    int bits = atoi(p);
    dspec_u128 host = bits == max ? 0 : ones(family) >> bits;
    out->kind = DSPEC_CIDR;
    out->iv = (dspec_iv){family, v & ~host, (v & ~host) | host};
    return 0;
}

static int parse_range(const char *text, const char *dash, dspec_item *out, char *err,
                       size_t errlen)
{
    char a[MAX_TEXT], b[MAX_TEXT];
    snprintf(a, sizeof(a), "%.*s", (int)(dash - text), text);
    snprintf(b, sizeof(b), "%s", dash + 1);
    int fa, fb;
    dspec_u128 lo, hi;
    if (!parse_addr(a, &fa, &lo))
        return fail(err, errlen, "'%s' is not an IPv4 or IPv6 address", a);
    size_t nb = strlen(b);
    if (fa == 4 && nb && nb <= 3 && strspn(b, "0123456789") == nb) { /* 10.1.2.10-50 */
        if (atoi(b) > 255)
            return fail(err, errlen, "last octet %s out of range 0-255", b);
        fb = 4;
        hi = (lo & ~(dspec_u128)0xff) | (dspec_u128)atoi(b);
    } else if (!parse_addr(b, &fb, &hi)) {
        return fail(err, errlen, "'%s' is not an IPv4 or IPv6 address", b);
    }
    if (fa != fb)
        return fail(err, errlen, "a range cannot go from IPv%d to IPv%d", fa, fb);
    if (hi < lo)
        return fail(err, errlen, "reversed range: %s comes after %s", a, b);
    out->kind = DSPEC_RANGE;
    out->iv = (dspec_iv){fa, lo, hi};
    return 0;
}

int dspec_item_parse(const char *text, dspec_item *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    size_t n = text ? strlen(text) : 0;
    if (n == 0)
        return fail(err, errlen, "empty item");
    if (n >= MAX_TEXT)
        return fail(err, errlen, "longer than %d characters", MAX_TEXT - 1);
    for (size_t i = 0; i < n; i++)
        if (!isgraph((unsigned char)text[i]))
            return fail(err, errlen, "unexpected character at position %zu", i + 1);
    const char *slash = strchr(text, '/'), *dash = strchr(text, '-');
    if (slash)
        return parse_cidr(text, slash, out, err, errlen);
    int family;
    dspec_u128 v;
    if (parse_addr(text, &family, &v)) {
        out->kind = DSPEC_ADDR;
        out->iv = (dspec_iv){family, v, v};
        return 0;
    }
    /* A dash after an address is a range; in a name it is a name. */
    char head[MAX_TEXT];
    if (dash) {
        snprintf(head, sizeof(head), "%.*s", (int)(dash - text), text);
        if (parse_addr(head, &family, &v))
            return parse_range(text, dash, out, err, errlen);
    }
    size_t len = text[n - 1] == '.' ? n - 1 : n;
    if (strspn(text, "0123456789.") == n || strchr(text, ':') || !dns_name_ok(text))
        return fail(err, errlen, "'%.*s' is not an address, range, CIDR block or host name",
                    (int)(n > 64 ? 64 : n), text);
    out->kind = DSPEC_NAME;
    memcpy(out->name, text, len);
    out->name[len] = '\0';
    return 0;
}

/* ---- sets ------------------------------------------------------------------------------ */

void dspec_set_free(dspec_set *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

int dspec_set_add(dspec_set *s, const dspec_iv *iv)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        dspec_iv *v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return OPSC_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = *iv;
    return 0;
}

static int iv_cmp(const void *pa, const void *pb)
{
    const dspec_iv *a = pa, *b = pb;
    if (a->family != b->family)
        return a->family - b->family;
    return a->lo < b->lo ? -1 : a->lo > b->lo;
}

void dspec_set_normalize(dspec_set *s)
{
    if (s->n < 2)
        return;
    qsort(s->v, s->n, sizeof(*s->v), iv_cmp);
    size_t o = 0;
    for (size_t i = 1; i < s->n; i++) {
        dspec_iv *last = &s->v[o], *cur = &s->v[i];
        bool touches =
            cur->family == last->family &&
            (cur->lo <= last->hi || (last->hi != ones(last->family) && cur->lo == last->hi + 1));
        if (touches) {
            if (cur->hi > last->hi)
                last->hi = cur->hi;
        } else {
            s->v[++o] = *cur;
        }
    }
    s->n = o + 1;
}

/* `iv` minus the normalized `cut`, appended to `out`. */
static int cut_one(const dspec_iv *iv, const dspec_set *cut, dspec_set *out)
{
    dspec_u128 lo = iv->lo;
    for (size_t i = 0; i < cut->n; i++) {
        const dspec_iv *c = &cut->v[i];
        if (c->family != iv->family || c->hi < lo)
            continue;
        if (c->lo > iv->hi)
            break;
        if (c->lo > lo) {
            dspec_iv part = {iv->family, lo, c->lo - 1};
            if (dspec_set_add(out, &part) < 0)
                return OPSC_ENOMEM;
        }
        if (c->hi >= iv->hi)
            return 0;
        lo = c->hi + 1;
    }
    dspec_iv rest = {iv->family, lo, iv->hi};
    return dspec_set_add(out, &rest);
}

int dspec_set_subtract(dspec_set *s, const dspec_set *cut)
{
    dspec_set out = {0};
    for (size_t i = 0; i < s->n; i++) {
        if (cut_one(&s->v[i], cut, &out) < 0) {
            dspec_set_free(&out);
            return OPSC_ENOMEM;
        }
    }
    dspec_set_free(s);
    *s = out;
    return 0;
}

uint64_t dspec_set_count(const dspec_set *s)
{
    uint64_t total = 0;
    for (size_t i = 0; i < s->n; i++) {
        dspec_u128 n = s->v[i].hi - s->v[i].lo;
        if (n >= UINT64_MAX || total + (uint64_t)n + 1 < total)
            return UINT64_MAX;
        total += (uint64_t)n + 1;
    }
    return total;
}

bool dspec_set_within(const dspec_set *s, const dspec_set *allowed, dspec_iv *outside)
{
    for (size_t i = 0; i < s->n; i++) {
        dspec_set rest = {0};
        if (cut_one(&s->v[i], allowed, &rest) < 0 || rest.n > 0) {
            *outside = rest.n ? rest.v[0] : s->v[i];
            dspec_set_free(&rest);
            return false;
        }
        dspec_set_free(&rest);
    }
    return true;
}

bool dspec_set_has(const dspec_set *s, const char *addr)
{
    int family;
    dspec_u128 v;
    if (!parse_addr(addr, &family, &v))
        return false;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].family == family && s->v[i].lo <= v && v <= s->v[i].hi)
            return true;
    return false;
}

/* The largest aligned block starting at `lo` that ends by `hi`: its prefix length. */
static int block_bits(int family, dspec_u128 lo, dspec_u128 hi)
{
    int max = family == 4 ? 32 : 128, host = 0;
    while (host < max) {
        int next = host + 1;
        dspec_u128 mask = next == 128 ? ~(dspec_u128)0 : ((dspec_u128)1 << next) - 1;
        if ((lo & mask) != 0 || hi - lo < mask)
            break;
        host = next;
    }
    return max - host;
}

json_t *dspec_set_cidrs(const dspec_set *s)
{
    json_t *out = json_array();
    for (size_t i = 0; out && i < s->n; i++) {
        const dspec_iv *iv = &s->v[i];
        int max = iv->family == 4 ? 32 : 128;
        dspec_u128 lo = iv->lo;
        for (;;) {
            int bits = block_bits(iv->family, lo, iv->hi);
            char a[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + 8];
            format_addr(iv->family, lo, a, sizeof(a));
            snprintf(text, sizeof(text), "%s/%d", a, bits);
            json_array_append_new(out, json_string(text));
            int host = max - bits;
            dspec_u128 last = lo + (host == 128 ? ~(dspec_u128)0 : ((dspec_u128)1 << host) - 1);
            if (last >= iv->hi)
                break;
            lo = last + 1;
        }
    }
    return out;
}

int dspec_set_parse_list(const char *list, const char *what, dspec_set *out, char *err,
                         size_t errlen)
{
    memset(out, 0, sizeof(*out));
    size_t index = 0;
    for (const char *p = list ? list : ""; *p;) {
        p += strspn(p, " ,");
        size_t len = strcspn(p, " ,");
        if (!len)
            break;
        char item[MAX_TEXT];
        snprintf(item, sizeof(item), "%.*s", (int)(len < MAX_TEXT ? len : MAX_TEXT - 1), p);
        dspec_item it;
        char why[200];
        int rc = len >= MAX_TEXT ? fail(why, sizeof(why), "longer than %d characters", MAX_TEXT - 1)
                                 : dspec_item_parse(item, &it, why, sizeof(why));
        if (rc == 0 && it.kind == DSPEC_NAME)
            rc = fail(why, sizeof(why), "host names are not accepted here");
        if (rc == 0)
            rc = dspec_set_add(out, &it.iv);
        if (rc < 0 || ++index > DSPEC_ITEMS_MAX) {
            snprintf(err, errlen, "%s item %zu: %s", what, index + (rc < 0),
                     rc < 0 ? why : "too many items");
            dspec_set_free(out);
            return rc < 0 ? rc : OPSC_ESCHEMA;
        }
        p += len;
    }
    dspec_set_normalize(out);
    return 0;
}

int dspec_set_parse_json(const json_t *arr, const char *what, dspec_set *out, char *err,
                         size_t errlen)
{
    memset(out, 0, sizeof(*out));
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)arr, i, v)
    {
        dspec_item it;
        char why[200] = "must be a string";
        int rc = json_is_string(v) ? dspec_item_parse(json_string_value(v), &it, why, sizeof(why))
                                   : OPSC_ESCHEMA;
        if (rc == 0 && it.kind == DSPEC_NAME)
            rc = fail(why, sizeof(why), "host names are not accepted here");
        if (rc == 0)
            rc = dspec_set_add(out, &it.iv);
        if (rc < 0) {
            snprintf(err, errlen, "%s[%zu]: %s", what, i, why);
            dspec_set_free(out);
            return rc;
        }
    }
    dspec_set_normalize(out);
    return 0;
}

/* ---- ports ------------------------------------------------------------------------------- */

static int port_cmp(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* One element: an integer or "a-b". */
static int port_item(const json_t *v, long *lo, long *hi)
{
    if (json_is_integer(v)) {
        *lo = *hi = (long)json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        *lo = strtol(s, &end, 10);
        *hi = *lo;
        if (end != s && *end == '-')
            *hi = strtol(end + 1, &end, 10);
        if (!isdigit((unsigned char)*s) || *end)
            return OPSC_ESCHEMA;
    } else {
        return OPSC_ESCHEMA;
    }
    return *lo < 1 || *hi > 65535 || *lo > *hi ? OPSC_ERANGE : 0;
}

int dspec_ports_parse(const json_t *arr, size_t max, uint16_t **out, size_t *n, char *err,
                      size_t errlen)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0, i;
    json_t *v;
    json_array_foreach((json_t *)arr, i, v)
    {
        long lo, hi;
        int rc = port_item(v, &lo, &hi);
        if (rc < 0) {
            free(*out);
            *out = NULL;
            return rc == OPSC_ERANGE
                       ? fail(err, errlen, "ports[%zu]: out of range 1-65535 (or a reversed range)",
                              i)
                       : fail(err, errlen, "ports[%zu]: must be a port number or \"a-b\"", i);
        }
        for (long p = lo; p <= hi; p++) {
            if (*n == max) {
                free(*out);
                *out = NULL;
                return fail(err, errlen, "ports: more than %zu ports", max);
            }
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                uint16_t *grown = realloc(*out, cap * sizeof(**out));
                if (!grown) {
                    free(*out);
                    *out = NULL;
                    return OPSC_ENOMEM;
                }
                *out = grown;
            }
            (*out)[(*n)++] = (uint16_t)p;
        }
    }
    if (*n)
        qsort(*out, *n, sizeof(**out), port_cmp);
    size_t o = 0;
    for (size_t k = 0; k < *n; k++)
        if (o == 0 || (*out)[o - 1] != (*out)[k])
            (*out)[o++] = (*out)[k];
    *n = o;
    return 0;
}
