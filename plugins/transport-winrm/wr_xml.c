/* wr_xml.c - the XML reader behind wr_xml.h: one pass, in-place entity decoding, prefix scopes. */
#include "wr_xml.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wr_buf.h"

#define WX_MAX_DEPTH 64

typedef struct wx_ns {
    char *prefix; /* "" for the default namespace */
    char *uri;
    struct wx_ns *next;
    int depth;
} wx_ns;

typedef struct wx_parser {
    char *s; /* mutable copy of the document */
    size_t len, pos;
    wx_ns *scope;
    wx_node *root, *cur;
    int depth;
    char *err;
    size_t errlen;
} wx_parser;

static const char XML_NS[] = "http://www.w3.org/XML/1998/namespace";

static bool fail(wx_parser *p, const char *what)
{
    wr_errf(p->err, p->errlen, "XML: %s at byte %zu", what, p->pos);
    return false;
}

static void put_utf8(char **o, uint32_t cp)
{
    unsigned char *u = (unsigned char *)*o;
    if (cp < 0x80) {
        *u++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *u++ = (unsigned char)(0xC0 | cp >> 6);
        *u++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *u++ = (unsigned char)(0xE0 | cp >> 12);
        *u++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *u++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
        *u++ = (unsigned char)(0xF0 | cp >> 18);
        *u++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        *u++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *u++ = (unsigned char)(0x80 | (cp & 0x3F));
    }
    *o = (char *)u;
}

/* Decode entities of s[0..len) in place; returns the new length or -1. */
static long decode_entities(char *s, size_t len)
{
    char *o = s;
    for (size_t i = 0; i < len;) {
        if (s[i] != '&') {
            *o++ = s[i++];
            continue;
        }
        char *semi = memchr(s + i, ';', len - i);
        if (!semi || semi - (s + i) > 12)
            return -1;
        size_t n = (size_t)(semi - (s + i)) + 1;
        const char *e = s + i + 1;
        if (e[0] == '#') {
            char *end;
            unsigned long cp = e[1] == 'x' ? strtoul(e + 2, &end, 16) : strtoul(e + 1, &end, 10);
            if (end != semi || cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return -1;
            put_utf8(&o, (uint32_t)cp);
        } else if (n == 4 && !memcmp(e, "lt", 2)) {
            *o++ = '<';
        } else if (n == 4 && !memcmp(e, "gt", 2)) {
            *o++ = '>';
        } else if (n == 5 && !memcmp(e, "amp", 3)) {
            *o++ = '&';
        } else if (n == 6 && !memcmp(e, "quot", 4)) {
            *o++ = '"';
        } else if (n == 6 && !memcmp(e, "apos", 4)) {
            *o++ = '\'';
        } else {
            return -1;
        }
        i += n;
    }
    return o - s;
}

static bool is_name_char(char c)
{
    return !(c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '/' || c == '>' || c == '=' ||
             c == '<' || c == '"' || c == '\'' || c == '\0');
}

static void skip_ws(wx_parser *p)
{
    while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos])
        p->pos++;
}

/* Reads a name and NUL-terminates it later via the returned length. */
static char *read_name(wx_parser *p, size_t *n)
{
    size_t start = p->pos;
    while (p->pos < p->len && is_name_char(p->s[p->pos]))
        p->pos++;
    *n = p->pos - start;
    return *n ? p->s + start : NULL;
}

static const char *resolve(wx_parser *p, const char *prefix)
{
    if (!strcmp(prefix, "xml"))
        return XML_NS;
    for (wx_ns *ns = p->scope; ns; ns = ns->next)
        if (!strcmp(ns->prefix, prefix))
            return ns->uri;
    return prefix[0] ? NULL : "";
}

static void pop_scope(wx_parser *p)
{
    while (p->scope && p->scope->depth > p->depth) {
        wx_ns *ns = p->scope;
        p->scope = ns->next;
        free(ns);
    }
}

static bool skip_until(wx_parser *p, const char *end)
{
    size_t n = strlen(end);
    while (p->pos + n <= p->len) {
        if (!memcmp(p->s + p->pos, end, n)) {
            p->pos += n;
            return true;
        }
        p->pos++;
    }
    return fail(p, "unterminated markup");
}

static bool add_text(wx_parser *p, char *s, size_t len, bool decode)
{
    if (!p->cur) {
        for (size_t i = 0; i < len; i++)
            if (!strchr(" \t\r\n", s[i]))
                return fail(p, "text outside the root element");
        return true;
    }
    if (decode) {
        long n = decode_entities(s, len);
        if (n < 0)
            return fail(p, "bad entity");
        len = (size_t)n;
    }
    if (!len)
        return true;
    wx_node *c = p->cur;
    char *t = realloc(c->text_len ? c->text : NULL, c->text_len + len + 1);
    if (!t)
        return fail(p, "out of memory");
    memcpy(t + c->text_len, s, len);
    c->text_len += len;
    t[c->text_len] = '\0';
    c->text = t;
    return true;
}

typedef struct raw_attr {
    char *name, *value;
} raw_attr;

static bool read_attrs(wx_parser *p, raw_attr *a, size_t *na, size_t max)
{
    *na = 0;
    for (;;) {
        skip_ws(p);
        if (p->pos >= p->len)
            return fail(p, "unterminated tag");
        char c = p->s[p->pos];
        if (c == '>' || c == '/')
            return true;
        size_t n;
        char *name = read_name(p, &n);
        if (!name)
            return fail(p, "bad attribute name");
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != '=')
            return fail(p, "attribute without value");
        name[n] = '\0';
        p->pos++;
        skip_ws(p);
        char q = p->pos < p->len ? p->s[p->pos] : 0;
        if (q != '"' && q != '\'')
            return fail(p, "unquoted attribute");
        char *v = p->s + ++p->pos;
        char *end = memchr(v, q, p->len - p->pos);
        if (!end)
            return fail(p, "unterminated attribute");
        long vl = decode_entities(v, (size_t)(end - v));
        if (vl < 0)
            return fail(p, "bad entity in attribute");
        v[vl] = '\0';
        p->pos = (size_t)(end - p->s) + 1;
        if (*na == max)
            return fail(p, "too many attributes");
        a[(*na)++] = (raw_attr){name, v};
    }
}

static bool push_ns(wx_parser *p, char *prefix, char *uri)
{
    wx_ns *ns = malloc(sizeof *ns);
    if (!ns)
        return fail(p, "out of memory");
    *ns = (wx_ns){prefix, uri, p->scope, p->depth + 1};
    p->scope = ns;
    return true;
}

static bool split_qname(wx_parser *p, char *qname, const char **ns, char **local, bool attr)
{
    char *colon = strchr(qname, ':');
    *local = colon ? colon + 1 : qname;
    if (attr && !colon) {
        *ns = "";
        return true;
    }
    if (colon)
        *colon = '\0';
    *ns = resolve(p, colon ? qname : "");
    if (colon)
        *colon = ':';
    return *ns ? true : fail(p, "undeclared namespace prefix");
}

static bool start_tag(wx_parser *p)
{
    size_t n;
    char *qname = read_name(p, &n);
    if (!qname)
        return fail(p, "bad element name");
    raw_attr attrs[32];
    size_t na;
    if (!read_attrs(p, attrs, &na, 32))
        return false;
    bool empty = p->s[p->pos] == '/';
    p->pos += empty ? 2 : 1;
    if (empty && p->s[p->pos - 1] != '>')
        return fail(p, "bad empty-element tag");
    qname[n] = '\0';
    if (p->depth >= WX_MAX_DEPTH)
        return fail(p, "too deep");
    for (size_t i = 0; i < na; i++) {
        if (!strcmp(attrs[i].name, "xmlns") && !push_ns(p, "", attrs[i].value))
            return false;
        if (!strncmp(attrs[i].name, "xmlns:", 6) && !push_ns(p, attrs[i].name + 6, attrs[i].value))
            return false;
    }
    wx_node *node = calloc(1, sizeof *node);
    if (!node)
        return fail(p, "out of memory");
    node->text = "";
    node->parent = p->cur;
    if (p->cur) {
        wx_node **tail = &p->cur->child;
        while (*tail)
            tail = &(*tail)->next;
        *tail = node;
    } else if (p->root) {
        free(node);
        return fail(p, "second root element");
    } else {
        p->root = node;
    }
    p->cur = node;
    p->depth++;
    if (!split_qname(p, qname, &node->ns, &node->name, false))
        return false;
    if (na) {
        node->attrs = calloc(na, sizeof *node->attrs);
        if (!node->attrs)
            return fail(p, "out of memory");
    }
    for (size_t i = 0; i < na; i++) {
        if (!strncmp(attrs[i].name, "xmlns", 5))
            continue;
        const char *ans;
        char *local;
        if (!split_qname(p, attrs[i].name, &ans, &local, true))
            return false;
        node->attrs[node->nattrs++] = (wx_attr){local, attrs[i].value};
    }
    if (empty) {
        p->depth--;
        pop_scope(p);
        p->cur = node->parent;
    }
    return true;
}

static bool end_tag(wx_parser *p)
{
    size_t n;
    char *qname = read_name(p, &n);
    skip_ws(p);
    if (!qname || !p->cur || p->pos >= p->len || p->s[p->pos] != '>')
        return fail(p, "bad end tag");
    p->pos++;
    char *colon = memchr(qname, ':', n);
    const char *local = colon ? colon + 1 : qname;
    size_t ln = n - (size_t)(local - qname);
    if (strlen(p->cur->name) != ln || memcmp(p->cur->name, local, ln))
        return fail(p, "mismatched end tag");
    p->depth--;
    pop_scope(p);
    p->cur = p->cur->parent;
    return true;
}

static bool markup(wx_parser *p)
{
    const char *s = p->s + p->pos;
    size_t left = p->len - p->pos;
    if (left >= 4 && !memcmp(s, "<!--", 4))
        return skip_until(p, "-->");
    if (left >= 2 && !memcmp(s, "<?", 2))
        return skip_until(p, "?>");
    if (left >= 9 && !memcmp(s, "<![CDATA[", 9)) {
        p->pos += 9;
        size_t start = p->pos;
        if (!skip_until(p, "]]>"))
            return false;
        return add_text(p, p->s + start, p->pos - 3 - start, false);
    }
    if (left >= 2 && s[1] == '!')
        return fail(p, "DOCTYPE and declarations are refused");
    if (left >= 2 && s[1] == '/') {
        p->pos += 2;
        return end_tag(p);
    }
    p->pos++;
    return start_tag(p);
}

static bool run(wx_parser *p)
{
    while (p->pos < p->len) {
        char *lt = memchr(p->s + p->pos, '<', p->len - p->pos);
        size_t end = lt ? (size_t)(lt - p->s) : p->len;
        if (end > p->pos && !add_text(p, p->s + p->pos, end - p->pos, true))
            return false;
        p->pos = end;
        if (lt && !markup(p))
            return false;
    }
    if (!p->root)
        return fail(p, "no root element");
    if (p->cur)
        return fail(p, "unclosed element");
    return true;
}

wx_node *wx_parse(const char *xml, size_t len, char *err, size_t errlen)
{
    wx_parser p = {.len = len, .err = err, .errlen = errlen};
    if (memchr(xml, '\0', len)) {
        fail(&p, "NUL byte");
        return NULL;
    }
    p.s = malloc(len + 1);
    if (!p.s) {
        fail(&p, "out of memory");
        return NULL;
    }
    memcpy(p.s, xml, len);
    p.s[len] = '\0';
    bool ok = run(&p);
    p.depth = -1;
    pop_scope(&p);
    if (!ok) {
        wx_free(p.root);
        free(p.s);
        return NULL;
    }
    /* The root keeps the document copy alive: names and values point into it. */
    p.root->parent = (wx_node *)(void *)p.s;
    return p.root;
}

static void free_node(wx_node *n)
{
    while (n) {
        wx_node *next = n->next;
        free_node(n->child);
        if (n->text_len)
            free(n->text);
        free(n->attrs);
        free(n);
        n = next;
    }
}

void wx_free(wx_node *root)
{
    if (!root)
        return;
    /* A parsed root's parent slot holds the document copy (see wx_parse). */
    char *doc = (char *)(void *)root->parent;
    root->next = NULL;
    free_node(root);
    free(doc);
}

static bool matches(const wx_node *n, const char *ns, const char *name)
{
    return !strcmp(n->name, name) && (!ns || !strcmp(n->ns, ns));
}

const wx_node *wx_child(const wx_node *n, const char *ns, const char *name)
{
    for (const wx_node *c = n ? n->child : NULL; c; c = c->next)
        if (matches(c, ns, name))
            return c;
    return NULL;
}

const wx_node *wx_next(const wx_node *n, const char *ns, const char *name)
{
    for (const wx_node *c = n ? n->next : NULL; c; c = c->next)
        if (matches(c, ns, name))
            return c;
    return NULL;
}

const wx_node *wx_find(const wx_node *n, const char *ns, const char *name)
{
    for (const wx_node *c = n ? n->child : NULL; c; c = c->next) {
        if (matches(c, ns, name))
            return c;
        const wx_node *d = wx_find(c, ns, name);
        if (d)
            return d;
    }
    return NULL;
}

const char *wx_attr_get(const wx_node *n, const char *name)
{
    for (size_t i = 0; n && i < n->nattrs; i++)
        if (!strcmp(n->attrs[i].name, name))
            return n->attrs[i].value;
    return NULL;
}

const char *wx_child_text(const wx_node *n, const char *ns, const char *name)
{
    const wx_node *c = wx_child(n, ns, name);
    return c ? c->text : NULL;
}
