/* template.c - compiling templates: text and block structure, the arena, errors, quoting. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "tpl_internal.h"

#define TPL_MAX_SOURCE (1u << 20)

/* ---- arena ------------------------------------------------------------------------ */

struct tpl_chunk {
    tpl_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *tpl_alloc(tpl *t, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    tpl_chunk *c = t->arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 4096 ? n : 4096;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = t->arena;
        t->arena = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void tpl_free(tpl *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nlits; i++)
        json_decref(t->lits[i]);
    free(t->lits);
    while (t->arena) {
        tpl_chunk *next = t->arena->next;
        free(t->arena);
        t->arena = next;
    }
    free(t->src);
    free(t);
}

/* ---- errors ----------------------------------------------------------------------- */

void tpl_set_err(const tpl *t, uint32_t pos, tpl_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    int line = 1, col = 1;
    for (uint32_t i = 0; i < pos && i < t->srclen; i++) {
        unsigned char c = (unsigned char)t->src[i];
        if (c == '\n')
            line++, col = 1;
        else if ((c & 0xC0) != 0x80) /* count code points, not bytes */
            col++;
    }
    err->line = line;
    err->col = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

static int oom(tpl_err *err)
{
    if (err) {
        err->line = err->col = 0;
        snprintf(err->msg, sizeof(err->msg), "out of memory");
    }
    return OPSC_ENOMEM;
}

/* ---- node lists --------------------------------------------------------------------- */

typedef struct nvec {
    tpl_node *v;
    size_t n, cap;
} nvec;

static tpl_node *nvec_push(nvec *nv)
{
    if (nv->n == nv->cap) {
        size_t cap = nv->cap ? nv->cap * 2 : 8;
        tpl_node *v = realloc(nv->v, cap * sizeof(*v));
        if (!v)
            return NULL;
        nv->v = v;
        nv->cap = cap;
    }
    tpl_node *n = &nv->v[nv->n++];
    memset(n, 0, sizeof(*n));
    n->kslot = -1;
    return n;
}

/* Move the vector into the arena as a finished list. */
static int nvec_finish(tpl *t, nvec *nv, tpl_nodes *out)
{
    int rc = 0;
    out->n = nv->n;
    if (nv->n && !(out->items = tpl_alloc(t, nv->n * sizeof(tpl_node))))
        rc = OPSC_ENOMEM;
    else if (nv->n)
        memcpy(out->items, nv->v, nv->n * sizeof(tpl_node));
    free(nv->v);
    nv->v = NULL;
    return rc;
}

/* ---- text and tags -------------------------------------------------------------------- */

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Next "{{", "{%" or "{#" at or after i; srclen when none. */
static size_t next_tag(const tpl *t, size_t i)
{
    const char *s = t->src;
    for (const char *q = strchr(s + i, '{'); q; q = strchr(q + 1, '{'))
        if (q[1] == '{' || q[1] == '%' || q[1] == '#')
            return (size_t)(q - s);
    return t->srclen;
}

static int add_text(tpl_parser *p, nvec *nv, size_t start, size_t end, size_t tag)
{
    const char *s = p->t->src;
    if (p->trim_after) {
        while (start < end && is_ws(s[start]))
            start++;
        p->trim_after = false;
    }
    if (tag < p->t->srclen && s[tag + 2] == '-') {
        while (end > start && is_ws(s[end - 1]))
            end--;
    } else if (tag < p->t->srclen && s[tag + 1] != '{') { /* lstrip_blocks */
        size_t k = end;
        while (k > start && (s[k - 1] == ' ' || s[k - 1] == '\t'))
            k--;
        if (k == 0 || s[k - 1] == '\n')
            end = k;
    }
    if (end == start)
        return 0;
    tpl_node *n = nvec_push(nv);
    if (!n)
        return OPSC_ENOMEM;
    n->kind = N_TEXT;
    n->pos = (uint32_t)start;
    n->text = s + start;
    n->len = end - start;
    return 0;
}

/* trim_blocks: drop one newline right after a block tag or comment. */
static void skip_newline(tpl_parser *p)
{
    const char *s = p->t->src;
    if (s[p->i] == '\r' && s[p->i + 1] == '\n')
        p->i += 2;
    else if (s[p->i] == '\n')
        p->i++;
}

static int comment(tpl_parser *p, size_t tag)
{
    const char *end = strstr(p->t->src + tag + 2, "#}");
    if (!end)
        return TPL_FAIL(p, (uint32_t)tag, "{# is not closed");
    p->trim_after = end > p->t->src + tag + 2 && end[-1] == '-';
    p->i = (size_t)(end - p->t->src) + 2;
    skip_newline(p);
    return 0;
}

static int parse_block(tpl_parser *p, nvec *nv, const char *const *terms, int *which);

static int block_end(tpl_parser *p)
{
    int rc = tpl_p_end(p);
    if (rc == 0)
        skip_newline(p);
    return rc;
}

/* The body of a block up to one of `terms`, moved into `out`. */
static int sub_block(tpl_parser *p, uint32_t pos, const char *const *terms, tpl_nodes *out,
                     int *which)
{
    if (++p->depth > TPL_MAX_DEPTH)
        return TPL_FAIL(p, pos, "blocks nested too deeply");
    nvec nv = {0};
    int rc = parse_block(p, &nv, terms, which);
    p->depth--;
    if (rc == 0 && *which < 0)
        rc = TPL_FAIL(p, pos, "{%% %s %%} is not closed", terms[0][3] == 'i' ? "if" : "for");
    if (rc < 0) {
        free(nv.v);
        return rc;
    }
    return nvec_finish(p->t, &nv, out);
}

static int if_rest(tpl_parser *p, tpl_node *n)
{
    static const char *const terms[] = {"endif", "elif", "else", NULL};
    int which, rc = tpl_p_expr(p, &n->expr);
    if (rc < 0 || (rc = tpl_p_no_raw(p, n->expr)) < 0 || (rc = block_end(p)) < 0 ||
        (rc = sub_block(p, n->pos, terms, &n->body, &which)) < 0)
        return rc;
    if (which == 1) { /* elif: a nested if as the else branch */
        tpl_node *inner = tpl_alloc(p->t, sizeof(*inner));
        if (!inner)
            return OPSC_ENOMEM;
        inner->kind = N_IF;
        inner->pos = p->tag_pos;
        inner->kslot = -1;
        n->alt.items = inner;
        n->alt.n = 1;
        return if_rest(p, inner);
    }
    if (which == 2) {
        static const char *const end_only[] = {"endif", NULL};
        if ((rc = block_end(p)) < 0 || (rc = sub_block(p, n->pos, end_only, &n->alt, &which)) < 0)
            return rc;
    }
    return block_end(p);
}

static int loop_var(tpl_parser *p, tpl_tok *name)
{
    static const char *const reserved[] = {"params", "target", "steps", "run", "vars", "loop",
                                           "true",   "false",  "none",  "in",  "not",  NULL};
    for (int i = 0; reserved[i]; i++)
        if (tpl_p_is(name, T_NAME, reserved[i]))
            return TPL_FAIL(p, name->pos, "'%s' cannot be a loop variable", reserved[i]);
    if (p->nscope == TPL_MAX_SLOTS)
        return TPL_FAIL(p, name->pos, "too many loop variables");
    tpl_scope_var *v = &p->scope[p->nscope];
    v->name = name->s;
    v->len = name->len;
    v->slot = p->nscope++;
    if (p->nscope > p->t->nslots)
        p->t->nslots = p->nscope;
    return v->slot;
}

static int for_names(tpl_parser *p, tpl_tok *names, int *count)
{
    tpl_tok *tk;
    bool comma;
    *count = 0;
    for (int i = 0; i < 2; i++) {
        int rc = tpl_p_peek(p, &tk);
        if (rc < 0)
            return rc;
        if (tk->type != T_NAME)
            return TPL_FAIL(p, tk->pos, "expected a loop variable name");
        names[(*count)++] = *tk;
        tpl_p_consume(p);
        if ((rc = tpl_p_accept(p, T_OP, ",", &comma)) < 0)
            return rc;
        if (!comma)
            break;
    }
    bool in;
    int rc = tpl_p_accept(p, T_NAME, "in", &in);
    if (rc == 0 && !in)
        rc = TPL_FAIL(p, p->cur.pos, "expected 'in'");
    return rc;
}

static int for_block(tpl_parser *p, tpl_node *n)
{
    static const char *const terms[] = {"endfor", NULL};
    tpl_tok names[2];
    int count, which, rc = for_names(p, names, &count);
    if (rc < 0 || (rc = tpl_p_expr(p, &n->expr)) < 0 || (rc = tpl_p_no_raw(p, n->expr)) < 0 ||
        (rc = block_end(p)) < 0)
        return rc;
    int scope0 = p->nscope;
    bool raw_ok = tpl_p_raw_ok(p, n->expr);
    for (int i = 0; i < count && rc >= 0; i++) {
        rc = loop_var(p, &names[i]);
        if (rc >= 0)
            p->scope[p->nscope - 1].raw_ok = raw_ok;
    }
    if (rc < 0)
        return rc;
    n->vslot = p->nscope - 1;
    n->kslot = count == 2 ? scope0 : -1;
    p->loops++;
    rc = sub_block(p, n->pos, terms, &n->body, &which);
    p->loops--;
    p->nscope = scope0;
    return rc < 0 ? rc : block_end(p);
}

static int raw_block(tpl_parser *p, nvec *nv)
{
    int rc = block_end(p);
    if (rc < 0)
        return rc;
    const char *s = p->t->src;
    for (size_t j = next_tag(p->t, p->i); j < p->t->srclen; j = next_tag(p->t, j + 1)) {
        size_t k = j + 2 + (s[j + 2] == '-');
        if (s[j + 1] != '%')
            continue;
        while (is_ws(s[k]))
            k++;
        if (strncmp(s + k, "endraw", 6) != 0)
            continue;
        k += 6;
        while (is_ws(s[k]))
            k++;
        bool trim = s[k] == '-';
        if (strncmp(s + k + trim, "%}", 2) != 0)
            continue;
        if ((rc = add_text(p, nv, p->i, j, j)) < 0)
            return rc;
        p->i = k + trim + 2;
        p->trim_after = trim;
        skip_newline(p);
        return 0;
    }
    return TPL_FAIL(p, p->tag_pos, "{%% raw %%} is not closed");
}

/* One {% ... %} tag. Returns 1 with *which set when it is one of `terms`. */
static int statement(tpl_parser *p, nvec *nv, const char *const *terms, int *which)
{
    tpl_tok *tk;
    int rc = tpl_p_peek(p, &tk);
    if (rc < 0)
        return rc;
    if (tk->type != T_NAME)
        return TPL_FAIL(p, tk->pos, "expected a statement (if, for, raw...)");
    tpl_tok kw = *tk;
    tpl_p_consume(p);
    for (int i = 0; terms && terms[i]; i++)
        if (tpl_p_is(&kw, T_NAME, terms[i])) {
            *which = i;
            return 1;
        }
    bool is_if = tpl_p_is(&kw, T_NAME, "if"), is_for = tpl_p_is(&kw, T_NAME, "for");
    if (tpl_p_is(&kw, T_NAME, "raw"))
        return raw_block(p, nv);
    if (!is_if && !is_for) {
        static const char *const closers[] = {"elif", "else", "endif", "endfor", "endraw", NULL};
        for (int i = 0; closers[i]; i++)
            if (tpl_p_is(&kw, T_NAME, closers[i]))
                return TPL_FAIL(p, kw.pos, "unexpected {%% %s %%}", closers[i]);
        return TPL_FAIL(p, kw.pos, "unknown statement '%.*s'", (int)kw.len, kw.s);
    }
    tpl_node *n = nvec_push(nv);
    if (!n)
        return OPSC_ENOMEM;
    n->kind = is_if ? N_IF : N_FOR;
    n->pos = p->tag_pos;
    /* The node lives in a vector that may move while its body is parsed. */
    tpl_node tmp = *n;
    rc = is_if ? if_rest(p, &tmp) : for_block(p, &tmp);
    nv->v[nv->n - 1] = tmp;
    return rc;
}

static int tag(tpl_parser *p, nvec *nv, size_t at, const char *const *terms, int *which)
{
    const char *s = p->t->src;
    if (s[at + 1] == '#')
        return comment(p, at);
    p->tag_pos = (uint32_t)at;
    p->in_output = s[at + 1] == '{';
    p->i = at + 2 + (s[at + 2] == '-');
    p->have_cur = false;
    if (!p->in_output)
        return statement(p, nv, terms, which);
    tpl_node *n = nvec_push(nv);
    if (!n)
        return OPSC_ENOMEM;
    n->pos = (uint32_t)at;
    return tpl_p_output(p, n);
}

/* Parse nodes into nv until the end of text (*which = -1) or a statement in
 * `terms` (*which = its index; the parser is then inside that tag). */
static int parse_block(tpl_parser *p, nvec *nv, const char *const *terms, int *which)
{
    *which = -1;
    while (p->i < p->t->srclen) {
        size_t at = next_tag(p->t, p->i);
        int rc = add_text(p, nv, p->i, at, at);
        if (rc < 0)
            return rc;
        if (at == p->t->srclen)
            break;
        if ((rc = tag(p, nv, at, terms, which)) < 0)
            return rc;
        if (rc == 1)
            return 0;
    }
    return 0;
}

/* ---- public ------------------------------------------------------------------------- */

static bool nodes_constant(const tpl_nodes *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].kind != N_TEXT)
            return false;
    return true;
}

static int compile_body(tpl *t, const tpl_opts *opts, tpl_err *err)
{
    tpl_parser p = {.t = t, .opts = opts, .err = err};
    nvec nv = {0};
    int which;
    int rc = parse_block(&p, &nv, NULL, &which);
    if (rc < 0) {
        free(nv.v);
        return rc;
    }
    if ((rc = nvec_finish(t, &nv, &t->root)) < 0)
        return rc;
    t->constant = nodes_constant(&t->root);
    return t->mode == TPL_TEXT ? 0 : tpl_shell_check(t, err);
}

int tpl_compile(tpl **out, const char *text, size_t len, const tpl_opts *opts, tpl_err *err)
{
    *out = NULL;
    if (err)
        memset(err, 0, sizeof(*err));
    tpl *t = calloc(1, sizeof(*t));
    if (!t || !(t->src = malloc(len + 1))) {
        free(t);
        return oom(err);
    }
    memcpy(t->src, text, len);
    t->src[len] = '\0';
    t->srclen = len;
    t->mode = opts ? opts->mode : TPL_TEXT;
    static const char *const step_roots[] = {"params", "target", "steps", "run", "vars", NULL};
    t->roots = opts && opts->roots ? opts->roots : step_roots;
    while (t->nroots < TPL_MAX_ROOTS && t->roots[t->nroots])
        t->nroots++;
    int rc;
    const char *nul = memchr(text, '\0', len);
    if (t->roots[t->nroots]) {
        tpl_set_err(t, 0, err, "more than %d context roots", TPL_MAX_ROOTS);
        rc = OPSC_EINVAL;
    } else if (len > TPL_MAX_SOURCE) {
        tpl_set_err(t, 0, err, "template larger than %u bytes", TPL_MAX_SOURCE);
        rc = OPSC_ESYNTAX;
    } else if (nul) {
        tpl_set_err(t, (uint32_t)(nul - text), err, "template contains a NUL byte");
        rc = OPSC_ESYNTAX;
    } else {
        rc = compile_body(t, opts, err);
    }
    if (rc < 0) {
        if (rc == OPSC_ENOMEM)
            oom(err);
        tpl_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

tpl_mode tpl_get_mode(const tpl *t)
{
    return t->mode;
}

bool tpl_is_constant(const tpl *t)
{
    return t->constant;
}

/* ---- quoting ---------------------------------------------------------------------------- */

/* U+2018..U+201B in UTF-8: E2 80 98..9B. PowerShell ends a '...' string at
 * any of them, so each is doubled like the ASCII quote. */
static size_t ps_quote_len(const unsigned char *s, size_t i, size_t len)
{
    if (s[i] == '\'')
        return 1;
    if (s[i] == 0xE2 && i + 2 < len && s[i + 1] == 0x80 && s[i + 2] >= 0x98 && s[i + 2] <= 0x9B)
        return 3;
    return 0;
}

int tpl_quote(tpl_mode mode, const char *value, size_t len, strbuf *out)
{
    if (memchr(value, '\0', len))
        return OPSC_EINVAL;
    if (mode == TPL_TEXT) {
        sb_append(out, value, len);
        return 0;
    }
    const unsigned char *s = (const unsigned char *)value;
    size_t run = 0; /* start of the bytes not yet copied */
    sb_append(out, "'", 1);
    for (size_t i = 0; i < len; i++) {
        size_t q = mode == TPL_POSIX ? (s[i] == '\'') : ps_quote_len(s, i, len);
        if (!q)
            continue;
        sb_append(out, value + run, i + q - run);
        if (mode == TPL_POSIX)
            sb_append(out, "\\''", 3); /* ' closes, \' is a quote, ' reopens */
        else
            sb_append(out, value + i, q); /* doubled */
        i += q - 1;
        run = i + 1;
    }
    sb_append(out, value + run, len - run);
    sb_append(out, "'", 1);
    return 0;
}
