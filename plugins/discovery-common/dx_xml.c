/* dx_xml.c - a small pull reader for scanner XML: elements, attributes, text, entities. */
#include "dx_xml.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

void dx_xml_init(dx_xml *x, const char *data, size_t len)
{
    x->p = data;
    x->end = data + len;
    x->depth = 0;
    x->err[0] = '\0';
}

static dx_kind fail(dx_xml *x, dx_tok *t, const char *why)
{
    if (!x->err[0])
        snprintf(x->err, sizeof(x->err), "%s", why);
    x->p = x->end;
    x->depth = -1;
    t->kind = DX_ERROR;
    return DX_ERROR;
}

/* Where `needle` starts at or after p, or NULL. */
static const char *find(const char *p, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    for (; p && end - p >= (ptrdiff_t)n; p++)
        if (memcmp(p, needle, n) == 0)
            return p;
    return NULL;
}

static bool name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.' || c == ':' ||
           (unsigned char)c >= 0x80;
}

/* <!-- -->, <? ?>, <!DOCTYPE ...> (no internal subset), <![CDATA[ ]]> (as text). */
static int skip_special(dx_xml *x, dx_tok *t)
{
    static const struct {
        const char *open, *close;
    } forms[] = {{"<!--", "-->"}, {"<?", "?>"}, {"<![CDATA[", "]]>"}, {"<!DOCTYPE", ">"}};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        size_t n = strlen(forms[i].open);
        if (x->end - x->p < (ptrdiff_t)n || memcmp(x->p, forms[i].open, n) != 0)
            continue;
        const char *close = find(x->p + n, x->end, forms[i].close);
        if (!close)
            return fail(x, t, "unterminated markup"), -1;
        if (i == 3 && memchr(x->p, '[', (size_t)(close - x->p)))
            return fail(x, t, "a DOCTYPE with an internal subset is not accepted"), -1;
        if (i == 2) {
            t->kind = DX_TEXT;
            t->text = x->p + n;
            t->text_len = (size_t)(close - t->text);
        }
        x->p = close + strlen(forms[i].close);
        return i == 2 ? 1 : 0;
    }
    return 2; /* not special */
}

static dx_kind end_tag(dx_xml *x, dx_tok *t)
{
    const char *p = x->p + 2, *name = p;
    while (p < x->end && name_char(*p))
        p++;
    t->name = name;
    t->name_len = (size_t)(p - name);
    while (p < x->end && isspace((unsigned char)*p))
        p++;
    if (p >= x->end || *p != '>' || t->name_len == 0 || x->depth == 0)
        return fail(x, t, "malformed end tag");
    x->p = p + 1;
    x->depth--;
    t->kind = DX_END;
    return DX_END;
}

static dx_kind start_tag(dx_xml *x, dx_tok *t)
{
    const char *p = x->p + 1, *name = p;
    while (p < x->end && name_char(*p))
        p++;
    t->name = name;
    t->name_len = (size_t)(p - name);
    if (t->name_len == 0)
        return fail(x, t, "malformed start tag");
    const char *attrs = p;
    char quote = 0;
    for (; p < x->end; p++) {
        if (quote) {
            quote = *p == quote ? 0 : quote;
        } else if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (*p == '>' || *p == '<') {
            break;
        }
    }
    if (p >= x->end || *p != '>')
        return fail(x, t, "unterminated start tag");
    t->empty = p > attrs && p[-1] == '/';
    t->attrs = attrs;
    t->attrs_len = (size_t)(p - attrs) - (t->empty ? 1 : 0);
    x->p = p + 1;
    if (!t->empty && ++x->depth > DX_XML_DEPTH)
        return fail(x, t, "nested too deep");
    t->kind = DX_START;
    return DX_START;
}

dx_kind dx_next(dx_xml *x, dx_tok *t)
{
    memset(t, 0, sizeof(*t));
    for (;;) {
        if (x->depth < 0)
            return t->kind = DX_ERROR;
        if (x->p >= x->end)
            return x->depth ? fail(x, t, "truncated document") : (t->kind = DX_EOF);
        if (*x->p != '<') {
            const char *lt = memchr(x->p, '<', (size_t)(x->end - x->p));
            t->kind = DX_TEXT;
            t->text = x->p;
            t->text_len = (size_t)((lt ? lt : x->end) - x->p);
            x->p += t->text_len;
            return DX_TEXT;
        }
        int special = skip_special(x, t);
        if (special < 0)
            return DX_ERROR;
        if (special == 1)
            return DX_TEXT;
        if (special == 0)
            continue;
        return x->end - x->p >= 2 && x->p[1] == '/' ? end_tag(x, t) : start_tag(x, t);
    }
}

bool dx_is(const dx_tok *t, const char *local)
{
    const char *colon = memchr(t->name, ':', t->name_len);
    const char *l = colon ? colon + 1 : t->name;
    size_t n = t->name_len - (size_t)(l - t->name);
    return strlen(local) == n && memcmp(l, local, n) == 0;
}

bool dx_attr(const dx_tok *t, const char *name, char *out, size_t n)
{
    const char *p = t->attrs, *end = t->attrs + t->attrs_len;
    size_t want = strlen(name);
    while (p < end) {
        while (p < end && isspace((unsigned char)*p))
            p++;
        const char *key = p;
        while (p < end && name_char(*p))
            p++;
        size_t klen = (size_t)(p - key);
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (klen == 0 || p >= end || *p != '=')
            return false;
        p++;
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (p >= end || (*p != '"' && *p != '\''))
            return false;
        char q = *p++;
        const char *val = p, *close = memchr(p, q, (size_t)(end - p));
        if (!close)
            return false;
        if (klen == want && memcmp(key, name, want) == 0) {
            dx_decode(val, (size_t)(close - val), out, n);
            return true;
        }
        p = close + 1;
    }
    return false;
}

/* One UTF-8 encoded code point into out; bytes written. */
static size_t utf8(unsigned long cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* An entity at s (after '&', before ';'): its text into buf; 0 when unknown. */
static size_t entity(const char *s, size_t len, char *buf)
{
    static const char *const names[][2] = {
        {"lt", "<"}, {"gt", ">"}, {"amp", "&"}, {"quot", "\""}, {"apos", "'"}};
    for (size_t i = 0; i < 5; i++)
        if (strlen(names[i][0]) == len && memcmp(s, names[i][0], len) == 0) {
            buf[0] = names[i][1][0];
            return 1;
        }
    if (len < 2 || len > 9 || s[0] != '#')
        return 0;
    bool hex = s[1] == 'x' || s[1] == 'X';
    unsigned long cp = 0;
    for (size_t i = hex ? 2 : 1; i < len; i++) {
        int c = (unsigned char)s[i];
        int v = isdigit(c) ? c - '0' : hex && isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
        if (v < 0)
            return 0;
        cp = cp * (hex ? 16 : 10) + (unsigned long)v;
    }
    if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return utf8(cp, buf);
}

size_t dx_decode(const char *s, size_t len, char *out, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < len && n;) {
        char buf[4];
        size_t add = 1;
        const char *semi = s[i] == '&' ? memchr(s + i, ';', len - i < 12 ? len - i : 12) : NULL;
        size_t got = semi ? entity(s + i + 1, (size_t)(semi - s - i - 1), buf) : 0;
        if (got) {
            add = got;
            i = (size_t)(semi - s) + 1;
        } else {
            buf[0] = s[i++];
        }
        if (o + add >= n)
            break;
        memcpy(out + o, buf, add);
        o += add;
    }
    if (n)
        out[o < n ? o : n - 1] = '\0';
    return o;
}

bool dx_text(dx_xml *x, const dx_tok *t, char *out, size_t n)
{
    size_t o = 0;
    out[0] = '\0';
    if (t->empty)
        return true;
    int depth = 1;
    dx_tok k;
    while (depth > 0) {
        dx_kind kind = dx_next(x, &k);
        if (kind == DX_ERROR || kind == DX_EOF)
            return false;
        if (kind == DX_START && !k.empty)
            depth++;
        else if (kind == DX_END)
            depth--;
        else if (kind == DX_TEXT && depth == 1 && o + 1 < n)
            o += dx_decode(k.text, k.text_len, out + o, n - o);
    }
    size_t start = 0;
    while (start < o && isspace((unsigned char)out[start]))
        start++;
    while (o > start && isspace((unsigned char)out[o - 1]))
        o--;
    memmove(out, out + start, o - start);
    out[o - start] = '\0';
    return true;
}
