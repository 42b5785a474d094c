/* web_headers.c - reading the request headers static serving depends on, and naming rules. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web.h"

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* A qvalue ("0", "0.5", "1.000") in thousandths; -1 when malformed. */
static int parse_q(const char *p, size_t n)
{
    if (n == 0 || (p[0] != '0' && p[0] != '1'))
        return -1;
    int q = (p[0] - '0') * 1000;
    if (n == 1)
        return q;
    if (p[1] != '.' || n > 5)
        return -1;
    int scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (!isdigit((unsigned char)p[i]))
            return -1;
        q += (p[i] - '0') * scale;
    }
    return q > 1000 ? -1 : q;
}

/* The q of one element's parameters ("; q=0.5; x=y"); 1000 when absent, 0 when malformed
 * (an element we cannot read is not an acceptance). */
static int element_q(const char *p, const char *end)
{
    while (p < end) {
        p = skip_ws(p);
        if (*p == ';')
            p = skip_ws(p + 1);
        const char *name = p;
        while (p < end && *p != '=' && *p != ';')
            p++;
        size_t nlen = (size_t)(p - name);
        while (nlen && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
            nlen--;
        if (p < end && *p == '=') {
            const char *v = skip_ws(p + 1);
            p = v;
            while (p < end && *p != ';')
                p++;
            size_t vlen = (size_t)(p - v);
            while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            if (nlen == 1 && (name[0] == 'q' || name[0] == 'Q')) {
                int q = parse_q(v, vlen);
                return q < 0 ? 0 : q;
            }
        }
    }
    return 1000;
}

static bool token_is(const char *p, size_t n, const char *word)
{
    return n == strlen(word) && strncasecmp(p, word, n) == 0;
}

bool web_accepts_gzip(const char *ae)
{
    int gzip_q = -1, star_q = -1;
    for (const char *p = ae; p && *p;) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *tok = skip_ws(p);
        const char *t = tok;
        while (t < end && *t != ';' && *t != ' ' && *t != '\t')
            t++;
        size_t n = (size_t)(t - tok);
        if (token_is(tok, n, "gzip") || token_is(tok, n, "x-gzip"))
            gzip_q = element_q(t, end);
        else if (token_is(tok, n, "*"))
            star_q = element_q(t, end);
        p = *end ? end + 1 : end;
    }
    return gzip_q >= 0 ? gzip_q > 0 : star_q > 0;
}

bool web_etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return false;
    size_t elen = strlen(etag);
    for (const char *p = inm; *p;) {
        p = skip_ws(p);
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        const char *end = p;
        if (*end == '"') { /* a quoted tag may hold commas */
            end = strchr(end + 1, '"');
            end = end ? end + 1 : p + strlen(p);
        } else {
            end += strcspn(end, ", \t");
        }
        if ((size_t)(end - p) == elen && memcmp(p, etag, elen) == 0)
            return true;
        p = end + strcspn(end, ",");
        if (*p == ',')
            p++;
    }
    return false;
}

bool web_name_is_hashed(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strchr(base, '.');
    if (!dot)
        return false;
    size_t n = 0;
    const char *p = dot;
    while (p > base && isalnum((unsigned char)p[-1])) {
        p--;
        n++;
    }
    return n >= 8 && p > base && p[-1] == '-';
}

bool web_path_is_ui_route(const char *path)
{
    if (strncmp(path, "/assets/", 8) == 0 || strcmp(path, "/assets") == 0)
        return false;
    const char *last = strrchr(path, '/');
    return !strchr(last ? last : path, '.');
}
