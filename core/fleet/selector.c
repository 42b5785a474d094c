/* selector.c - the label selector parser and matcher, and label key/value syntax. */
#include "selector.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "fields.h"

enum sel_op { SEL_EXISTS, SEL_NOT_EXISTS, SEL_EQ, SEL_NEQ, SEL_IN, SEL_NOTIN };

typedef struct sel_req {
    enum sel_op op;
    char *key;
    char **values;
    size_t nvalues;
} sel_req;

struct selector {
    sel_req *reqs;
    size_t n;
};

/* ---- label syntax --------------------------------------------------------------------- */

static bool name_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

/* A label name or non-empty value: 1-63 [A-Za-z0-9-_.], alphanumeric at both ends. */
static const char *name_problem(const char *s, size_t n)
{
    if (n == 0 || n > LABEL_NAME_MAX)
        return "must be 1 to 63 characters";
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]))
            return "may hold only letters, digits, '-', '_' and '.'";
    if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return "must start and end with a letter or digit";
    return NULL;
}

/* A DNS subdomain: dot-separated lowercase labels [a-z0-9-], alphanumeric ends. */
static const char *prefix_problem(const char *s, size_t n)
{
    if (n == 0 || n > LABEL_PREFIX_MAX)
        return "must be 1 to 253 characters";
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.') {
            if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
                return "must be a lowercase DNS name (letters, digits, '-', '.')";
            continue;
        }
        size_t len = i - start;
        if (len == 0 || len > 63 || s[start] == '-' || s[i - 1] == '-')
            return "must be a DNS name: dot-separated parts of 1 to 63 characters, no '-' at "
                   "either end";
        start = i + 1;
    }
    return NULL;
}

static bool key_check(const char *key, size_t n, char *err, size_t errlen)
{
    const char *slash = memchr(key, '/', n);
    const char *part = "name", *why;
    if (slash && memchr(slash + 1, '/', n - (size_t)(slash + 1 - key))) {
        part = NULL;
        why = "may have at most one '/' (prefix/name)";
    } else if (slash && (why = prefix_problem(key, (size_t)(slash - key))) != NULL) {
        part = "prefix";
    } else {
        why = slash ? name_problem(slash + 1, n - (size_t)(slash + 1 - key)) : name_problem(key, n);
    }
    if (!why)
        return true;
    char q[FLEET_QUOTE_LEN];
    fleet_quote(key, n, q);
    if (part)
        snprintf(err, errlen, "label key '%s': the %s %s", q, part, why);
    else
        snprintf(err, errlen, "label key '%s' %s", q, why);
    return false;
}

static bool value_check(const char *v, size_t n, char *err, size_t errlen)
{
    if (n == 0)
        return true;
    const char *why = name_problem(v, n);
    if (why) {
        char q[FLEET_QUOTE_LEN];
        fleet_quote(v, n, q);
        snprintf(err, errlen, "label value '%s' %s", q, why);
    }
    return why == NULL;
}

bool label_key_valid(const char *key, char *err, size_t errlen)
{
    return key_check(key, strlen(key), err, errlen);
}

bool label_value_valid(const char *value, char *err, size_t errlen)
{
    return value_check(value, strlen(value), err, errlen);
}

int labels_check(const json_t *labels, char *err, size_t errlen)
{
    if (!json_is_object(labels)) {
        snprintf(err, errlen, "labels must be an object of \"key\": \"value\" strings");
        return OPSC_ESCHEMA;
    }
    if (json_object_size(labels) > LABELS_MAX) {
        snprintf(err, errlen, "at most %d labels per target", LABELS_MAX);
        return OPSC_ESCHEMA;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)labels, k, v)
    {
        char q[FLEET_QUOTE_LEN];
        if (!label_key_valid(k, err, errlen))
            return OPSC_ESCHEMA;
        if (!json_is_string(v)) {
            fleet_quote(k, strlen(k), q);
            snprintf(err, errlen, "label '%s' must have a string value", q);
            return OPSC_ESCHEMA;
        }
        if (!label_value_valid(json_string_value(v), err, errlen))
            return OPSC_ESCHEMA;
    }
    return 0;
}

/* ---- parsing ------------------------------------------------------------------------- */

typedef struct parser {
    const char *s;
    size_t pos;
    char *err;
    size_t errlen;
    selector *sel;
} parser;

static int fail_at(parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(parser *p, size_t pos, const char *fmt, ...)
{
    int n = snprintf(p->err, p->errlen, "column %zu: ", pos + 1);
    if (n >= 0 && (size_t)n < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return OPSC_ESYNTAX;
}

/* What sits at `pos`, for messages: "'x'" or "the end". */
static const char *found(const parser *p, char buf[16])
{
    char c = p->s[p->pos];
    if (!c)
        return "the end";
    snprintf(buf, 16, (c >= 0x20 && c < 0x7f) ? "'%c'" : "a control or non-ASCII character", c);
    return buf;
}

static void skip_ws(parser *p)
{
    while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t')
        p->pos++;
}

/* A run of key characters (name characters and '/'). */
static size_t word(parser *p, bool slash)
{
    size_t n = 0;
    while (name_char(p->s[p->pos + n]) || (slash && p->s[p->pos + n] == '/'))
        n++;
    return n;
}

static int read_key(parser *p, sel_req *r)
{
    char f[16], why[200];
    size_t at = p->pos, n = word(p, true);
    if (n == 0)
        return fail_at(p, at, "expected a label key, found %s", found(p, f));
    if (!key_check(p->s + at, n, why, sizeof(why)))
        return fail_at(p, at, "%s", why);
    r->key = strndup(p->s + at, n);
    p->pos += n;
    return r->key ? 0 : OPSC_ENOMEM;
}

static int add_value(parser *p, sel_req *r, bool allow_empty)
{
    char f[16], why[200];
    size_t at = p->pos, n = word(p, false);
    if (n == 0 && !allow_empty)
        return fail_at(p, at, "expected a label value, found %s", found(p, f));
    if (!value_check(p->s + at, n, why, sizeof(why)))
        return fail_at(p, at, "%s", why);
    if (r->nvalues == SELECTOR_MAX_VALUES) {
        fail_at(p, at, "at most %d values in a set", SELECTOR_MAX_VALUES);
        return OPSC_E2BIG;
    }
    char **v = realloc(r->values, (r->nvalues + 1) * sizeof(*v));
    if (!v)
        return OPSC_ENOMEM;
    r->values = v;
    if (!(v[r->nvalues] = strndup(p->s + at, n)))
        return OPSC_ENOMEM;
    r->nvalues++;
    p->pos += n;
    return 0;
}

static int read_set(parser *p, sel_req *r, const char *opname)
{
    char f[16];
    skip_ws(p);
    if (p->s[p->pos] != '(')
        return fail_at(p, p->pos, "expected '(' after '%s', found %s", opname, found(p, f));
    p->pos++;
    for (;;) {
        skip_ws(p);
        int rc = add_value(p, r, false);
        if (rc < 0)
            return rc;
        skip_ws(p);
        char c = p->s[p->pos];
        if (c == ')') {
            p->pos++;
            return 0;
        }
        if (c != ',')
            return fail_at(p, p->pos, "expected ',' or ')' in the value list of '%s', found %s",
                           r->key, found(p, f));
        p->pos++;
    }
}

/* After the key: the operator and its operand, or nothing (exists). */
static int read_operator(parser *p, sel_req *r)
{
    char f[16];
    skip_ws(p);
    const char *s = p->s + p->pos;
    if (*s == '\0' || *s == ',') {
        r->op = SEL_EXISTS;
        return 0;
    }
    if (*s == '=' || (s[0] == '!' && s[1] == '=')) {
        r->op = *s == '=' ? SEL_EQ : SEL_NEQ;
        p->pos += (s[0] == '=' && s[1] == '=') || s[0] == '!' ? 2 : 1;
        skip_ws(p);
        return add_value(p, r, true);
    }
    size_t n = word(p, false);
    if ((n == 2 && strncmp(s, "in", 2) == 0) || (n == 5 && strncmp(s, "notin", 5) == 0)) {
        r->op = n == 2 ? SEL_IN : SEL_NOTIN;
        p->pos += n;
        return read_set(p, r, n == 2 ? "in" : "notin");
    }
    return fail_at(p, p->pos,
                   "expected '=', '!=', 'in', 'notin', ',' or the end after the key '%s', found %s",
                   r->key, found(p, f));
}

static int read_requirement(parser *p)
{
    selector *sel = p->sel;
    if (sel->n == SELECTOR_MAX_REQS) {
        fail_at(p, p->pos, "at most %d requirements in a selector", SELECTOR_MAX_REQS);
        return OPSC_E2BIG;
    }
    sel_req *v = realloc(sel->reqs, (sel->n + 1) * sizeof(*v));
    if (!v)
        return OPSC_ENOMEM;
    sel->reqs = v;
    sel_req *r = &v[sel->n++];
    memset(r, 0, sizeof(*r));
    skip_ws(p);
    if (p->s[p->pos] == '!') {
        p->pos++;
        skip_ws(p);
        r->op = SEL_NOT_EXISTS;
        return read_key(p, r);
    }
    int rc = read_key(p, r);
    return rc < 0 ? rc : read_operator(p, r);
}

int selector_parse(const char *text, selector **out, char *err, size_t errlen)
{
    *out = NULL;
    if (strlen(text) > SELECTOR_MAX_LEN) {
        snprintf(err, errlen, "a selector is at most %d bytes", SELECTOR_MAX_LEN);
        return OPSC_E2BIG;
    }
    parser p = {text, 0, err, errlen, calloc(1, sizeof(selector))};
    if (!p.sel)
        return OPSC_ENOMEM;
    int rc = 0;
    skip_ws(&p);
    while (rc == 0 && text[p.pos]) {
        rc = read_requirement(&p);
        skip_ws(&p);
        if (rc < 0 || !text[p.pos])
            break;
        char f[16];
        if (text[p.pos] != ',')
            rc = fail_at(&p, p.pos, "expected ',' between requirements, found %s", found(&p, f));
        else if (!text[++p.pos])
            rc = fail_at(&p, p.pos, "expected a requirement after ','");
    }
    if (rc < 0) {
        if (rc == OPSC_ENOMEM)
            snprintf(err, errlen, "out of memory");
        selector_free(p.sel);
        return rc;
    }
    *out = p.sel;
    return 0;
}

void selector_free(selector *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        for (size_t j = 0; j < s->reqs[i].nvalues; j++)
            free(s->reqs[i].values[j]);
        free(s->reqs[i].values);
        free(s->reqs[i].key);
    }
    free(s->reqs);
    free(s);
}

/* ---- matching and formatting ------------------------------------------------------- */

static bool in_set(const sel_req *r, const char *v)
{
    for (size_t i = 0; i < r->nvalues; i++)
        if (strcmp(r->values[i], v) == 0)
            return true;
    return false;
}

static bool req_match(const sel_req *r, const json_t *labels)
{
    const char *v = json_string_value(json_object_get(labels, r->key));
    switch (r->op) {
    case SEL_EXISTS:
        return v != NULL;
    case SEL_NOT_EXISTS:
        return v == NULL;
    case SEL_EQ:
        return v && strcmp(v, r->values[0]) == 0;
    case SEL_NEQ:
        return !v || strcmp(v, r->values[0]) != 0;
    case SEL_IN:
        return v && in_set(r, v);
    case SEL_NOTIN:
        return !v || !in_set(r, v);
    }
    return false;
}

bool selector_match(const selector *s, const json_t *labels)
{
    for (size_t i = 0; i < s->n; i++)
        if (!req_match(&s->reqs[i], json_is_object(labels) ? labels : NULL))
            return false;
    return true;
}

bool selector_empty(const selector *s)
{
    return s->n == 0;
}

void selector_format(const selector *s, strbuf *out)
{
    static const char *const ops[] = {"", "", "=", "!=", " in (", " notin ("};
    for (size_t i = 0; i < s->n; i++) {
        const sel_req *r = &s->reqs[i];
        sb_printf(out, "%s%s%s%s", i ? "," : "", r->op == SEL_NOT_EXISTS ? "!" : "", r->key,
                  ops[r->op]);
        for (size_t j = 0; j < r->nvalues; j++)
            sb_printf(out, "%s%s", j ? "," : "", r->values[j]);
        if (r->op == SEL_IN || r->op == SEL_NOTIN)
            sb_puts(out, ")");
    }
    if (!out->buf && !out->oom)
        sb_puts(out, "");
}
