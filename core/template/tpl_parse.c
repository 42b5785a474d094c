/* tpl_parse.c - template text to compiled nodes: tags, expressions, statements, compile checks. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "tpl_internal.h"

/* ---- tokens inside a tag ---------------------------------------------------- */

static bool is_name_start(char c)
{
    return isalpha((unsigned char)c) || c == '_';
}

static bool is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* True when the tag ends at position i (optionally with '-'); sets *after. */
static bool at_tag_end(tpl_parser *p, size_t i, size_t *after, bool *trim)
{
    const char *s = p->t->src;
    char close = p->in_output ? '}' : '%';
    *trim = false;
    if (s[i] == '-' && s[i + 1] == close && s[i + 2] == '}') {
        *trim = true;
        *after = i + 3;
        return true;
    }
    if (s[i] == close && s[i + 1] == '}') {
        *after = i + 2;
        return true;
    }
    return false;
}

static int lex_string(tpl_parser *p, tpl_tok *tk)
{
    const char *s = p->t->src;
    char q = s[p->i];
    size_t end = p->i + 1;
    while (s[end] && s[end] != q)
        end += (s[end] == '\\' && s[end + 1]) ? 2 : 1;
    if (!s[end])
        return TPL_FAIL(p, tk->pos, "unterminated string");
    char *buf = tpl_alloc(p->t, end - p->i);
    if (!buf)
        return OPSC_ENOMEM;
    size_t n = 0;
    for (size_t j = p->i + 1; j < end; j++) {
        char c = s[j];
        if (c == '\\') {
            c = s[++j];
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
        }
        buf[n++] = c;
    }
    buf[n] = '\0';
    tk->type = T_STR;
    tk->s = buf;
    tk->len = n;
    p->i = end + 1;
    return 0;
}

static int lex_number(tpl_parser *p, tpl_tok *tk)
{
    const char *s = p->t->src + p->i;
    char *end;
    size_t k = s[0] == '-';
    while (isdigit((unsigned char)s[k]))
        k++;
    if (s[k] == '.' && isdigit((unsigned char)s[k + 1])) {
        tk->type = T_REAL;
        tk->rval = strtod(s, &end);
    } else {
        tk->type = T_INT;
        tk->ival = strtoll(s, &end, 10);
        if (end - s > 18)
            return TPL_FAIL(p, tk->pos, "number too large");
    }
    p->i += (size_t)(end - s);
    return 0;
}

static const char *const two_char_ops[] = {"==", "!=", "<=", ">=", NULL};

static int lex(tpl_parser *p, tpl_tok *tk)
{
    const char *s = p->t->src;
    while (s[p->i] == ' ' || s[p->i] == '\t' || s[p->i] == '\n' || s[p->i] == '\r')
        p->i++;
    memset(tk, 0, sizeof(*tk));
    tk->pos = (uint32_t)p->i;
    size_t after;
    bool trim;
    if (!s[p->i])
        return TPL_FAIL(p, p->tag_pos, "%s is not closed", p->in_output ? "{{" : "{%");
    if (at_tag_end(p, p->i, &after, &trim)) {
        tk->type = T_END;
        return 0;
    }
    char c = s[p->i];
    if (c == '\'' || c == '"')
        return lex_string(p, tk);
    if (isdigit((unsigned char)c) || (c == '-' && isdigit((unsigned char)s[p->i + 1])))
        return lex_number(p, tk);
    if (is_name_start(c)) {
        size_t j = p->i;
        while (is_name_char(s[j]))
            j++;
        tk->type = T_NAME;
        tk->s = s + p->i;
        tk->len = j - p->i;
        p->i = j;
        return 0;
    }
    for (int k = 0; two_char_ops[k]; k++)
        if (strncmp(s + p->i, two_char_ops[k], 2) == 0) {
            tk->type = T_OP, tk->s = s + p->i, tk->len = 2;
            p->i += 2;
            return 0;
        }
    if (strchr(".[](),|~<>", c)) {
        tk->type = T_OP, tk->s = s + p->i, tk->len = 1;
        p->i++;
        return 0;
    }
    return TPL_FAIL(p, tk->pos, "unexpected character '%c'", c);
}

int tpl_p_peek(tpl_parser *p, tpl_tok **out)
{
    if (!p->have_cur) {
        int rc = lex(p, &p->cur);
        if (rc < 0)
            return rc;
        p->have_cur = true;
    }
    *out = &p->cur;
    return 0;
}

void tpl_p_consume(tpl_parser *p)
{
    p->have_cur = false;
}

bool tpl_p_is(const tpl_tok *tk, enum tpl_ttype type, const char *text)
{
    return tk->type == type &&
           (!text || (tk->len == strlen(text) && !memcmp(tk->s, text, tk->len)));
}

/* Consume the next token when it is `text` (an operator or keyword). */
int tpl_p_accept(tpl_parser *p, enum tpl_ttype type, const char *text, bool *got)
{
    tpl_tok *tk;
    int rc = tpl_p_peek(p, &tk);
    if (rc < 0)
        return rc;
    *got = tpl_p_is(tk, type, text);
    if (*got)
        tpl_p_consume(p);
    return 0;
}

static int expect(tpl_parser *p, enum tpl_ttype type, const char *text)
{
    bool got;
    int rc = tpl_p_accept(p, type, text, &got);
    if (rc < 0)
        return rc;
    if (!got)
        return TPL_FAIL(p, p->cur.pos, "expected '%s'", text);
    return 0;
}

/* ---- expressions -------------------------------------------------------------- */

static tpl_expr *new_expr(tpl_parser *p, tpl_ekind kind, uint32_t pos)
{
    tpl_expr *e = tpl_alloc(p->t, sizeof(*e));
    if (e) {
        e->kind = kind;
        e->pos = pos;
    }
    return e;
}

static int keep_lit(tpl *t, json_t *j)
{
    if (!j)
        return OPSC_ENOMEM;
    if (t->nlits == t->litcap) {
        size_t cap = t->litcap ? t->litcap * 2 : 8;
        json_t **v = realloc(t->lits, cap * sizeof(*v));
        if (!v) {
            json_decref(j);
            return OPSC_ENOMEM;
        }
        t->lits = v;
        t->litcap = cap;
    }
    t->lits[t->nlits++] = j;
    return 0;
}

static int make_binary(tpl_parser *p, tpl_ekind kind, uint32_t pos, tpl_expr *a, tpl_expr *b,
                       tpl_expr **out)
{
    tpl_expr *e = new_expr(p, kind, pos);
    tpl_expr **args = tpl_alloc(p->t, 2 * sizeof(*args));
    if (!e || !args)
        return OPSC_ENOMEM;
    args[0] = a, args[1] = b;
    e->args = args;
    e->nargs = 2;
    *out = e;
    return 0;
}

static int parse_list(tpl_parser *p, uint32_t pos, tpl_expr **out)
{
    tpl_expr *items[64];
    size_t n = 0;
    bool got;
    int rc = tpl_p_accept(p, T_OP, "]", &got);
    while (rc == 0 && !got) {
        if (n == 64)
            return TPL_FAIL(p, pos, "list literal too long (at most 64 items)");
        if ((rc = tpl_p_expr(p, &items[n++])) < 0)
            return rc;
        if ((rc = tpl_p_accept(p, T_OP, "]", &got)) < 0 || got)
            break;
        rc = expect(p, T_OP, ",");
    }
    if (rc < 0)
        return rc;
    tpl_expr *e = new_expr(p, E_LIST, pos);
    if (!e || (n && !(e->args = tpl_alloc(p->t, n * sizeof(*items)))))
        return OPSC_ENOMEM;
    if (n)
        memcpy(e->args, items, n * sizeof(*items));
    e->nargs = n;
    *out = e;
    return 0;
}

static const char *const loop_members[] = {"index", "index0", "first", "last", "length", NULL};

static bool name_eq(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}

static int resolve_root(tpl_parser *p, const tpl_tok *tk, int *root)
{
    for (int i = p->nscope - 1; i >= 0; i--)
        if (p->scope[i].len == tk->len && memcmp(p->scope[i].name, tk->s, tk->len) == 0) {
            *root = TPL_ROOT_SLOT0 + p->scope[i].slot;
            return 0;
        }
    for (int i = 0; i < p->t->nroots; i++)
        if (name_eq(tk->s, tk->len, p->t->roots[i])) {
            *root = i;
            return 0;
        }
    if (name_eq(tk->s, tk->len, "loop")) {
        if (!p->loops)
            return TPL_FAIL(p, tk->pos, "'loop' is only defined inside {%% for %%}");
        *root = TPL_ROOT_LOOP;
        return 0;
    }
    char names[256] = "";
    size_t o = 0;
    for (int i = 0; i < p->t->nroots && o < sizeof(names); i++)
        o += (size_t)snprintf(names + o, sizeof(names) - o, "%s, ", p->t->roots[i]);
    return TPL_FAIL(p, tk->pos, "unknown variable '%.*s' (expected %sor a loop variable)",
                    (int)tk->len, tk->s, names);
}

/* One segment after '.': a name that may also contain '-' and start with a digit. */
static int lex_segment(tpl_parser *p, tpl_seg *seg)
{
    const char *s = p->t->src;
    size_t j = p->i;
    while (is_name_char(s[j]) || (s[j] == '-' && j > p->i && is_name_char(s[j + 1])))
        j++;
    if (j == p->i)
        return TPL_FAIL(p, (uint32_t)p->i, "expected a name after '.'");
    char *key = tpl_alloc(p->t, j - p->i + 1);
    if (!key)
        return OPSC_ENOMEM;
    memcpy(key, s + p->i, j - p->i);
    key[j - p->i] = '\0';
    seg->key = key;
    p->i = j;
    return 0;
}

static int parse_subscript(tpl_parser *p, tpl_seg *seg)
{
    tpl_tok *tk;
    int rc = tpl_p_peek(p, &tk);
    if (rc < 0)
        return rc;
    if (tk->type == T_STR)
        seg->key = tk->s;
    else if (tk->type == T_INT)
        seg->index = (long)tk->ival;
    else
        return TPL_FAIL(p, tk->pos, "expected a 'key' or an index inside [ ]");
    tpl_p_consume(p);
    return expect(p, T_OP, "]");
}

static int check_path(tpl_parser *p, const tpl_expr *e)
{
    if (e->root == TPL_ROOT_LOOP) {
        if (e->nsegs != 1 || !e->segs[0].key)
            return TPL_FAIL(p, e->pos,
                            "use loop.index, loop.index0, loop.first, loop.last or "
                            "loop.length");
        for (int i = 0; loop_members[i]; i++)
            if (strcmp(loop_members[i], e->segs[0].key) == 0)
                return 0;
        return TPL_FAIL(p, e->pos, "unknown loop member '%s'", e->segs[0].key);
    }
    const json_t *known = p->opts ? p->opts->known_params : NULL;
    if (e->root == TPL_ROOT_PARAMS && known && e->nsegs > 0 && e->segs[0].key &&
        !json_object_get(known, e->segs[0].key))
        return TPL_FAIL(p, e->pos, "unknown parameter '%s'", e->segs[0].key);
    return 0;
}

static int parse_path(tpl_parser *p, const tpl_tok *name, tpl_expr **out)
{
    tpl_seg segs[32];
    size_t n = 0;
    tpl_expr *e = new_expr(p, E_PATH, name->pos);
    if (!e)
        return OPSC_ENOMEM;
    int rc = resolve_root(p, name, &e->root);
    while (rc == 0) {
        const char *s = p->t->src;
        if (p->have_cur || (s[p->i] != '.' && s[p->i] != '['))
            break; /* segments follow without spaces */
        if (n == 32)
            return TPL_FAIL(p, name->pos, "path too long");
        memset(&segs[n], 0, sizeof(segs[n]));
        if (s[p->i++] == '.')
            rc = lex_segment(p, &segs[n++]);
        else
            rc = parse_subscript(p, &segs[n++]);
    }
    if (rc < 0)
        return rc;
    e->srclen = (uint32_t)(p->i - name->pos);
    if (n && !(e->segs = tpl_alloc(p->t, n * sizeof(*segs))))
        return OPSC_ENOMEM;
    if (n)
        memcpy(e->segs, segs, n * sizeof(*segs));
    e->nsegs = n;
    *out = e;
    return check_path(p, e);
}

static int literal(tpl_parser *p, tpl_expr **out, uint32_t pos, json_t *j)
{
    int rc = keep_lit(p->t, j);
    if (rc < 0)
        return rc;
    tpl_expr *e = new_expr(p, E_LIT, pos);
    if (!e)
        return OPSC_ENOMEM;
    e->lit = j;
    *out = e;
    return 0;
}

static int parse_primary(tpl_parser *p, tpl_expr **out)
{
    tpl_tok *tk;
    int rc = tpl_p_peek(p, &tk);
    if (rc < 0)
        return rc;
    tpl_tok t = *tk;
    tpl_p_consume(p);
    switch (t.type) {
    case T_STR:
        return literal(p, out, t.pos, json_stringn(t.s, t.len));
    case T_INT:
        return literal(p, out, t.pos, json_integer(t.ival));
    case T_REAL:
        return literal(p, out, t.pos, json_real(t.rval));
    case T_OP:
        if (tpl_p_is(&t, T_OP, "(")) {
            if ((rc = tpl_p_expr(p, out)) < 0)
                return rc;
            return expect(p, T_OP, ")");
        }
        if (tpl_p_is(&t, T_OP, "["))
            return parse_list(p, t.pos, out);
        break;
    case T_NAME:
        if (name_eq(t.s, t.len, "true") || name_eq(t.s, t.len, "True"))
            return literal(p, out, t.pos, json_true());
        if (name_eq(t.s, t.len, "false") || name_eq(t.s, t.len, "False"))
            return literal(p, out, t.pos, json_false());
        if (name_eq(t.s, t.len, "none") || name_eq(t.s, t.len, "None"))
            return literal(p, out, t.pos, json_null());
        return parse_path(p, &t, out);
    case T_END:
        return TPL_FAIL(p, t.pos, "expected a value");
    }
    return TPL_FAIL(p, t.pos, "unexpected '%.*s'", (int)t.len, t.s);
}

static int check_filter_args(tpl_parser *p, const tpl_filter_def *f, const tpl_tok *name,
                             tpl_expr **args, size_t n)
{
    if ((int)n < f->min_args || (int)n > f->max_args) {
        if (f->min_args == f->max_args)
            return TPL_FAIL(p, name->pos, "filter '%s' takes %d argument%s, got %zu", f->name,
                            f->min_args, f->min_args == 1 ? "" : "s", n);
        return TPL_FAIL(p, name->pos, "filter '%s' takes %d to %d arguments, got %zu", f->name,
                        f->min_args, f->max_args, n);
    }
    for (size_t i = 0; i < n; i++) {
        if (args[i]->kind != E_LIT || f->argtypes[i] == ARG_ANY)
            continue;
        bool ok = f->argtypes[i] == ARG_STRING ? json_is_string(args[i]->lit)
                                               : json_is_boolean(args[i]->lit);
        if (!ok)
            return TPL_FAIL(p, args[i]->pos, "filter '%s': argument %zu must be a %s", f->name,
                            i + 1, f->argtypes[i] == ARG_STRING ? "string" : "boolean");
    }
    return 0;
}

static int parse_filter(tpl_parser *p, tpl_expr *input, tpl_expr **out)
{
    tpl_tok *tk;
    int rc = tpl_p_peek(p, &tk);
    if (rc < 0)
        return rc;
    if (tk->type != T_NAME)
        return TPL_FAIL(p, tk->pos, "expected a filter name after '|'");
    tpl_tok name = *tk;
    tpl_p_consume(p);
    const tpl_filter_def *f = tpl_filter_find(name.s, name.len);
    if (!f)
        return TPL_FAIL(p, name.pos, "unknown filter '%.*s'", (int)name.len, name.s);
    tpl_expr *args[3] = {input, NULL, NULL};
    size_t n = 0;
    bool got;
    if ((rc = tpl_p_accept(p, T_OP, "(", &got)) < 0)
        return rc;
    if (got && (rc = tpl_p_accept(p, T_OP, ")", &got)) == 0 && !got) {
        do {
            if (n == 2)
                return TPL_FAIL(p, name.pos, "filter '%s' takes at most %d arguments", f->name,
                                f->max_args);
            if ((rc = tpl_p_expr(p, &args[1 + n++])) < 0 ||
                (rc = tpl_p_accept(p, T_OP, ",", &got)) < 0)
                return rc;
        } while (got);
        rc = expect(p, T_OP, ")");
    }
    if (rc < 0 || (rc = check_filter_args(p, f, &name, args + 1, n)) < 0)
        return rc;
    tpl_expr *e = new_expr(p, E_FILTER, name.pos);
    if (!e || !(e->args = tpl_alloc(p->t, (n + 1) * sizeof(*args))))
        return OPSC_ENOMEM;
    memcpy(e->args, args, (n + 1) * sizeof(*args));
    e->nargs = n + 1;
    e->fdef = f;
    *out = e;
    return 0;
}

static int parse_filtered(tpl_parser *p, tpl_expr **out)
{
    int rc = parse_primary(p, out);
    bool got;
    while (rc == 0 && (rc = tpl_p_accept(p, T_OP, "|", &got)) == 0 && got)
        rc = parse_filter(p, *out, out);
    return rc;
}

static int parse_concat(tpl_parser *p, tpl_expr **out)
{
    int rc = parse_filtered(p, out);
    bool got;
    while (rc == 0 && (rc = tpl_p_accept(p, T_OP, "~", &got)) == 0 && got) {
        tpl_expr *rhs;
        uint32_t pos = p->cur.pos;
        if ((rc = parse_filtered(p, &rhs)) == 0)
            rc = make_binary(p, E_CONCAT, pos, *out, rhs, out);
    }
    return rc;
}

static int parse_test(tpl_parser *p, tpl_expr *lhs, uint32_t pos, tpl_expr **out)
{
    bool neg;
    tpl_tok *tk;
    int rc = tpl_p_accept(p, T_NAME, "not", &neg);
    if (rc < 0 || (rc = tpl_p_peek(p, &tk)) < 0)
        return rc;
    int test;
    if (tpl_p_is(tk, T_NAME, "defined"))
        test = TEST_DEFINED;
    else if (tpl_p_is(tk, T_NAME, "undefined"))
        test = TEST_DEFINED, neg = !neg;
    else if (tpl_p_is(tk, T_NAME, "none"))
        test = TEST_NONE;
    else
        return TPL_FAIL(p, tk->pos, "unknown test (expected defined, undefined or none)");
    tpl_p_consume(p);
    tpl_expr *e = new_expr(p, E_TEST, pos);
    tpl_expr **args = tpl_alloc(p->t, sizeof(*args));
    if (!e || !args)
        return OPSC_ENOMEM;
    args[0] = lhs;
    e->args = args;
    e->nargs = 1;
    e->op = test;
    e->neg = neg;
    *out = e;
    return 0;
}

static int cmp_op(tpl_parser *p, const tpl_tok *tk, int *op)
{
    static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">="};
    static const int codes[] = {CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE};
    for (int i = 0; i < 6; i++)
        if (tpl_p_is(tk, T_OP, ops[i])) {
            *op = codes[i];
            return 1;
        }
    if (tpl_p_is(tk, T_NAME, "in")) {
        *op = CMP_IN;
        return 1;
    }
    if (tpl_p_is(tk, T_NAME, "not")) { /* `not in` */
        size_t save = p->i;
        tpl_tok next;
        if (lex(p, &next) == 0 && tpl_p_is(&next, T_NAME, "in")) {
            *op = CMP_NOT_IN;
            return 1;
        }
        p->i = save;
    }
    return 0;
}

static int parse_cmp(tpl_parser *p, tpl_expr **out)
{
    int rc = parse_concat(p, out);
    tpl_tok *tk;
    if (rc < 0 || (rc = tpl_p_peek(p, &tk)) < 0)
        return rc;
    uint32_t pos = tk->pos;
    if (tpl_p_is(tk, T_NAME, "is")) {
        tpl_p_consume(p);
        return parse_test(p, *out, pos, out);
    }
    int op;
    if (!cmp_op(p, tk, &op))
        return 0;
    tpl_p_consume(p);
    tpl_expr *rhs;
    if ((rc = parse_concat(p, &rhs)) < 0 || (rc = make_binary(p, E_CMP, pos, *out, rhs, out)) < 0)
        return rc;
    (*out)->op = op;
    return 0;
}

static int parse_not(tpl_parser *p, tpl_expr **out)
{
    bool got;
    uint32_t pos;
    tpl_tok *tk;
    int rc = tpl_p_peek(p, &tk);
    if (rc < 0)
        return rc;
    pos = tk->pos;
    if ((rc = tpl_p_accept(p, T_NAME, "not", &got)) < 0)
        return rc;
    if (!got)
        return parse_cmp(p, out);
    if (++p->depth > TPL_MAX_DEPTH)
        return TPL_FAIL(p, pos, "expression nested too deeply");
    tpl_expr *inner;
    rc = parse_not(p, &inner);
    p->depth--;
    if (rc < 0)
        return rc;
    tpl_expr *e = new_expr(p, E_NOT, pos);
    tpl_expr **args = tpl_alloc(p->t, sizeof(*args));
    if (!e || !args)
        return OPSC_ENOMEM;
    args[0] = inner;
    e->args = args;
    e->nargs = 1;
    *out = e;
    return 0;
}

static int parse_binary_chain(tpl_parser *p, tpl_expr **out, const char *word, tpl_ekind kind,
                              int (*sub)(tpl_parser *, tpl_expr **))
{
    int rc = sub(p, out);
    bool got;
    while (rc == 0 && (rc = tpl_p_accept(p, T_NAME, word, &got)) == 0 && got) {
        tpl_expr *rhs;
        uint32_t pos = (*out)->pos;
        if ((rc = sub(p, &rhs)) == 0)
            rc = make_binary(p, kind, pos, *out, rhs, out);
    }
    return rc;
}

static int parse_and(tpl_parser *p, tpl_expr **out)
{
    return parse_binary_chain(p, out, "and", E_AND, parse_not);
}

int tpl_p_expr(tpl_parser *p, tpl_expr **out)
{
    if (++p->depth > TPL_MAX_DEPTH)
        return TPL_FAIL(p, (uint32_t)p->i, "expression nested too deeply");
    int rc = parse_binary_chain(p, out, "or", E_OR, parse_and);
    p->depth--;
    return rc;
}

/* ---- raw checks ------------------------------------------------------------------ */

static bool is_marker(const tpl_expr *e)
{
    return e->kind == E_FILTER && (e->fdef == &tpl_filter_raw || e->fdef == &tpl_filter_args);
}

static const tpl_expr *find_raw(const tpl_expr *e)
{
    if (is_marker(e))
        return e;
    for (size_t i = 0; i < e->nargs; i++) {
        const tpl_expr *r = find_raw(e->args[i]);
        if (r)
            return r;
    }
    return NULL;
}

static bool in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *s = list; s && *s;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        while (len && *s == ' ')
            s++, len--;
        while (len && s[len - 1] == ' ')
            len--;
        if (len == n && memcmp(s, name, n) == 0)
            return true;
        s = comma ? comma + 1 : NULL;
    }
    return false;
}

/* The first variable in `e` that may not be inserted raw, or NULL. */
static const tpl_expr *raw_offender(const tpl_parser *p, const tpl_expr *e)
{
    if (e->kind == E_PATH) {
        if (e->root >= TPL_ROOT_SLOT0) {
            for (int i = 0; i < p->nscope; i++)
                if (TPL_ROOT_SLOT0 + p->scope[i].slot == e->root)
                    return p->scope[i].raw_ok ? NULL : e;
        }
        if (e->root == TPL_ROOT_PARAMS && e->nsegs && e->segs[0].key &&
            in_list(p->opts ? p->opts->raw_params : NULL, e->segs[0].key))
            return NULL;
        return e;
    }
    for (size_t i = 0; i < e->nargs; i++) {
        const tpl_expr *r = raw_offender(p, e->args[i]);
        if (r)
            return r;
    }
    return NULL;
}

int tpl_p_no_raw(tpl_parser *p, const tpl_expr *e)
{
    const tpl_expr *r = find_raw(e);
    if (r)
        return TPL_FAIL(p, r->pos, "'%s' is only allowed as the last filter of {{ ... }}",
                        r->fdef->name);
    return 0;
}

bool tpl_p_raw_ok(const tpl_parser *p, const tpl_expr *e)
{
    return raw_offender(p, e) == NULL;
}

static int check_output_raw(tpl_parser *p, tpl_node *n)
{
    tpl_expr *e = n->expr;
    if (e->kind == E_FILTER && e->fdef == &tpl_filter_args) {
        n->args = true;
        n->expr = e->args[0];
    } else if (e->kind == E_FILTER && e->fdef == &tpl_filter_raw) {
        n->raw = true;
        n->expr = e->args[0];
        if (p->t->mode != TPL_TEXT) {
            const char *allowed = p->opts ? p->opts->raw_params : NULL;
            const tpl_expr *bad = raw_offender(p, n->expr);
            if (bad && !(allowed && *allowed))
                return TPL_FAIL(p, e->pos,
                                "'| raw' is not allowed here: this step type "
                                "declares no raw parameters");
            if (bad)
                return TPL_FAIL(p, bad->pos,
                                "'| raw' may only insert this step type's raw parameters (%s), "
                                "not '%.*s'",
                                allowed, (int)bad->srclen, p->t->src + bad->pos);
        }
    }
    return tpl_p_no_raw(p, n->expr);
}

int tpl_p_end(tpl_parser *p)
{
    tpl_tok *tk;
    int rc = tpl_p_peek(p, &tk);
    if (rc < 0)
        return rc;
    if (tk->type != T_END)
        return TPL_FAIL(p, tk->pos, "expected '%s'", p->in_output ? "}}" : "%}");
    size_t after;
    at_tag_end(p, tk->pos, &after, &p->trim_after);
    p->i = after;
    tpl_p_consume(p);
    return 0;
}

int tpl_p_output(tpl_parser *p, tpl_node *n)
{
    int rc = tpl_p_expr(p, &n->expr);
    if (rc < 0 || (rc = tpl_p_end(p)) < 0)
        return rc;
    n->kind = N_OUT;
    return check_output_raw(p, n);
}
