/* tpl_shell.c - compile-time check that every quoted placeholder sits where a shell word can.
 *
 * A quoted value is one literal argument only in plain code. Inside "..."
 * its quotes are literal and $(...) in it would run; inside '...' it ends the
 * string; after a backslash (POSIX) or backtick (PowerShell) its opening
 * quote is escaped; after `$` bash reads $'...' escapes; in a comment or a
 * here-document a newline in the value starts a new command line. So the
 * checker follows the template text through the shell's quoting contexts,
 * as the shell would read it, and refuses placeholders in the wrong ones.
 * It is deliberately conservative: when unsure, it is an error the step
 * author fixes by moving the value into plain code (e.g. a variable:
 * `name={{ params.x }}` then "$name").
 */
#include <stdio.h>
#include <string.h>

#include <opsc/errors.h>

#include "tpl_internal.h"

enum sh_ctx {
    C_CODE,      /* plain code (top level) */
    C_SUB,       /* $( ... ): code, ends at the matching ) */
    C_BQ,        /* `...` (POSIX): code, ends at ` */
    C_SQ,        /* '...' */
    C_DQ,        /* "..." */
    C_PARAM,     /* ${...} */
    C_ARITH,     /* $((...)) or ((...)): bash expands $(...) in it even inside '...' */
    C_HERE_SQ,   /* PowerShell @' ... '@ */
    C_HERE_DQ,   /* PowerShell @" ... "@ */
    C_BLOCK_CMT, /* PowerShell <# ... #> */
};

#define SH_STACK 24
#define HD_MAX   4
#define HD_LEN   64

typedef struct shstate {
    unsigned char stack[SH_STACK];
    unsigned short parens[SH_STACK];
    int depth;
    bool escape;       /* the previous character escapes the next */
    bool dollar;       /* the previous character was an unescaped $ */
    bool word_start;   /* at the start of a word: '#' opens a comment */
    bool comment;      /* in a # comment */
    bool stop_parsing; /* PowerShell: after --% up to the end of the line */
    bool open_paren;   /* POSIX: the previous character opened a paren ($(( and (( ) */
    bool ansi_seen;    /* POSIX: the template uses $'...' */
    bool hd_continued; /* POSIX: the here-document line so far ends with an odd backslash */
    bool line_start;   /* right after a newline */
    int lt;            /* consecutive '<' seen (POSIX here-documents) */
    bool at;           /* previous character was '@' (PowerShell here-strings) */
    bool quote_end;    /* PowerShell: a quote inside '...'/"..." that may be doubled */
    bool here_end;     /* PowerShell: a line starting with the here-string's quote */
    bool want_delim;   /* POSIX: reading a here-document delimiter */
    bool delim_quoted;
    bool delim_strip; /* <<- */
    char delim[HD_LEN];
    int delim_len;
    int hd_pending; /* here-documents starting at the next newline */
    char hd[HD_MAX][HD_LEN];
    bool hd_strip[HD_MAX];
    bool hd_quoted[HD_MAX]; /* quoted delimiter: no expansion, no line continuation */
    bool in_heredoc;        /* in the body of hd[0] */
    char line[HD_LEN + 1];
    int line_len;
} shstate;

typedef struct shchk {
    const tpl *t;
    tpl_err *err;
    bool ps;
} shchk;

static int top(const shstate *s)
{
    return s->stack[s->depth - 1];
}

static void push(shstate *s, int ctx)
{
    if (s->depth < SH_STACK) {
        s->stack[s->depth] = (unsigned char)ctx;
        s->parens[s->depth++] = 0;
    }
}

static void pop(shstate *s)
{
    if (s->depth > 1)
        s->depth--;
}

/* Parentheses nest inside a frame; the ')' matching "$(" closes it (returns true). */
static bool paren(shstate *s, char c)
{
    unsigned short *open = &s->parens[s->depth - 1];
    if (c == '(')
        (*open)++;
    else if (*open)
        (*open)--;
    else if (top(s) == C_SUB || top(s) == C_ARITH)
        return pop(s), true;
    return false;
}

/* An escaped character is an ordinary one: what came before it no longer combines. */
static void forget_lookbehind(shstate *s)
{
    s->word_start = s->dollar = s->open_paren = s->at = false;
    s->lt = 0;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static bool is_operator(char c)
{
    return c == ';' || c == '&' || c == '|' || c == '(' || c == ')' || c == '<' || c == '>';
}

/* Length of a PowerShell single (1) or double (2) quote at s (ASCII or
 * U+2018..201B / U+201C..201E), in *len bytes; 0 when none. */
static int ps_quote(const char *s, size_t n, size_t *len)
{
    const unsigned char *u = (const unsigned char *)s;
    *len = 1;
    if (s[0] == '\'')
        return 1;
    if (s[0] == '"')
        return 2;
    if (n >= 3 && u[0] == 0xE2 && u[1] == 0x80 && u[2] >= 0x98 && u[2] <= 0x9E) {
        *len = 3;
        return u[2] <= 0x9B ? 1 : 2;
    }
    return 0;
}

/* ---- POSIX here-documents ------------------------------------------------------------ */

static void heredoc_line_end(shstate *s)
{
    const char *line = s->line;
    bool continued = s->hd_continued && !s->hd_quoted[0];
    s->hd_continued = false;
    if (continued) /* "line\<newline>": the next line joins this one, it cannot end the body */
        return;
    if (s->hd_strip[0])
        while (*line == '\t')
            line++;
    if (strcmp(line, s->hd[0]) == 0) {
        s->hd_pending--;
        memmove(s->hd, s->hd + 1, sizeof(s->hd[0]) * (size_t)s->hd_pending);
        memmove(s->hd_strip, s->hd_strip + 1, sizeof(s->hd_strip[0]) * (size_t)s->hd_pending);
        memmove(s->hd_quoted, s->hd_quoted + 1, sizeof(s->hd_quoted[0]) * (size_t)s->hd_pending);
        s->in_heredoc = s->hd_pending > 0;
    }
    s->line_len = 0;
    s->line[0] = '\0';
}

static void heredoc_char(shstate *s, char c)
{
    if (c == '\n') {
        heredoc_line_end(s);
        return;
    }
    s->hd_continued = c == '\\' && !s->hd_continued;
    if (s->line_len < HD_LEN) {
        s->line[s->line_len++] = c;
        s->line[s->line_len] = '\0';
    }
}

static void delim_end(shstate *s)
{
    s->want_delim = false;
    if (s->delim_len > 0 && s->hd_pending < HD_MAX) {
        memcpy(s->hd[s->hd_pending], s->delim, (size_t)s->delim_len);
        s->hd[s->hd_pending][s->delim_len] = '\0';
        s->hd_strip[s->hd_pending] = s->delim_strip;
        s->hd_quoted[s->hd_pending] = s->delim_quoted;
        s->hd_pending++;
    }
}

/* Returns true when c was part of the delimiter word. */
static bool delim_char(shstate *s, char c)
{
    if (s->delim_len == 0 && !s->delim_quoted && is_blank(c))
        return true;
    if (c == '\'' || c == '"' || c == '\\') {
        s->delim_quoted = true;
        return true;
    }
    if (c == '\n' || is_blank(c) || is_operator(c)) {
        delim_end(s);
        return false;
    }
    if (s->delim_len < HD_LEN - 1)
        s->delim[s->delim_len++] = c;
    return true;
}

/* ---- POSIX sh ---------------------------------------------------------------------------- */

static void posix_newline(shstate *s)
{
    s->comment = false;
    s->word_start = true; /* a '#' at the start of the next line is a comment too */
    if (s->want_delim)
        delim_end(s);
    if (s->hd_pending > 0 && (top(s) == C_CODE || top(s) == C_SUB || top(s) == C_BQ)) {
        s->in_heredoc = true;
        s->line_len = 0;
        s->line[0] = '\0';
    }
}

static void posix_code(shstate *s, char c)
{
    if (c == '\\') {
        s->escape = true;
        return; /* decided by the escaped character (nothing, for a continuation) */
    }
    bool dollar = s->dollar, open_paren = s->open_paren;
    int lt = s->lt;
    s->dollar = s->open_paren = false;
    s->lt = 0;
    if (open_paren && c == '(') { /* "$((" or "((": arithmetic up to the matching "))" */
        if (top(s) == C_SUB) {
            s->stack[s->depth - 1] = C_ARITH;
        } else {
            s->parens[s->depth - 1]--;
            push(s, C_ARITH);
        }
        s->parens[s->depth - 1]++;
        s->word_start = true;
        return;
    }
    if (dollar && c == '(') {
        push(s, C_SUB);
        s->open_paren = true;
    } else if (dollar && c == '{') {
        push(s, C_PARAM);
    } else if (c == '\'') {
        s->ansi_seen |= dollar; /* $'...': bash reads \' in it, dash does not */
        push(s, C_SQ);
    } else if (c == '"') {
        push(s, C_DQ);
    } else if (c == '`') {
        if (top(s) == C_BQ)
            pop(s);
        else
            push(s, C_BQ);
    } else if (c == '$') {
        s->dollar = !dollar; /* "$$" is a whole parameter: a "{" after it is literal */
    } else if (c == '#' && s->word_start) {
        s->comment = true;
    } else if (c == '(' || c == ')') {
        s->open_paren = c == '(' && s->word_start;
        if (paren(s, c)) { /* the end of $(...) is still inside its word: "$(x)#" */
            s->word_start = false;
            return;
        }
    } else if (c == '<' && top(s) != C_ARITH) { /* in arithmetic, << is a shift */
        s->lt = lt + 1;
        if (s->lt == 2) { /* "<<": a here-document, unless "<<<" (bash here-string) */
            s->want_delim = true;
            s->delim_len = 0;
            s->delim_quoted = s->delim_strip = false;
        }
    } else if (c == '\n') {
        posix_newline(s);
    }
    s->word_start = c == '\n' || is_blank(c) || is_operator(c);
}

/* The word after "<<": returns true when c was taken by it. */
static bool posix_delim(shstate *s, char c)
{
    bool just = s->lt == 2;
    s->lt = 0;
    if (just && c == '<') { /* "<<<" */
        s->want_delim = false;
        return true;
    }
    if (just && c == '-') {
        s->delim_strip = true;
        return true;
    }
    return delim_char(s, c);
}

static void posix_char(shstate *s, char c)
{
    if (s->in_heredoc) {
        heredoc_char(s, c);
        return;
    }
    if (s->escape) {
        s->escape = false;
        if (c != '\n') /* a line continuation vanishes: "$\<newline>(" is "$(" */
            forget_lookbehind(s);
        return;
    }
    if (s->comment) {
        if (c == '\n')
            posix_newline(s);
        return;
    }
    if (s->want_delim && posix_delim(s, c))
        return;
    switch (top(s)) {
    case C_SQ:
        if (c == '\'')
            pop(s);
        break;
    case C_DQ:
    case C_PARAM:
        if (c == '\\') {
            s->escape = true;
            return; /* decided by the escaped character */
        } else if ((top(s) == C_DQ && c == '"') || (top(s) == C_PARAM && c == '}')) {
            pop(s);
        } else if (c == '`') {
            push(s, C_BQ);
        } else if (s->dollar && (c == '(' || c == '{')) {
            push(s, c == '(' ? C_SUB : C_PARAM);
        } else if (top(s) == C_PARAM && (c == '\'' || c == '"')) {
            push(s, c == '\'' ? C_SQ : C_DQ);
        }
        s->dollar = c == '$' && !s->dollar;
        break;
    default:
        posix_code(s, c);
    }
}

/* ---- PowerShell ----------------------------------------------------------------------------- */

static void ps_code(shstate *s, const char *p, size_t n, size_t *used)
{
    char c = p[0];
    size_t ql;
    int q = ps_quote(p, n, &ql);
    if (c == '`') {
        *used = 1;
        s->escape = true;
        return; /* decided by the escaped character (nothing, for a continuation) */
    }
    bool dollar = s->dollar, at = s->at;
    *used = q ? ql : 1;
    s->dollar = s->at = false;
    if (q && at) {
        push(s, q == 1 ? C_HERE_SQ : C_HERE_DQ);
    } else if (q) {
        push(s, q == 1 ? C_SQ : C_DQ);
    } else if (dollar && c == '(') {
        push(s, C_SUB);
    } else if (dollar && c == '{') {
        push(s, C_PARAM); /* ${name}: the name runs to the first } */
    } else if (c == '$') {
        s->dollar = true;
    } else if (c == '@') {
        s->at = true;
    } else if (c == '#' && s->word_start) {
        s->comment = true;
    } else if (c == '-' && s->word_start && n > 2 && p[1] == '-' && p[2] == '%') {
        s->stop_parsing = true; /* the rest of the line goes to the program verbatim */
        *used = 3;
    } else if (c == '<' && n > 1 && p[1] == '#') {
        push(s, C_BLOCK_CMT);
        *used = 2;
    } else if (c == '(' || c == ')') {
        paren(s, c);
    }
    s->word_start = c == '\n' || is_blank(c) || c == ';' || c == '|' || c == '(' || c == ')' ||
                    c == '{' || c == '}' || c == '=';
}

/* Inside '...' or "...": a quote ends the string unless the next one doubles it. */
static bool ps_quoted(shstate *s, const char *p, size_t n, size_t *used)
{
    size_t ql;
    int q = ps_quote(p, n, &ql);
    int want = top(s) == C_SQ ? 1 : 2;
    *used = q ? ql : 1;
    if (s->quote_end) {
        s->quote_end = false;
        if (q == want)
            return true; /* doubled: still inside */
        pop(s);
        return false; /* reprocess this character outside */
    }
    if (q == want) {
        s->quote_end = true;
    } else if (want == 2 && p[0] == '`') {
        s->escape = true;
    } else if (want == 2 && s->dollar && p[0] == '(') {
        push(s, C_SUB);
    }
    s->dollar = want == 2 && p[0] == '$';
    return true;
}

static void ps_herestring(shstate *s, char c)
{
    char quote = top(s) == C_HERE_SQ ? '\'' : '"';
    if (s->here_end && c == '@') {
        pop(s);
    } else if (top(s) == C_HERE_DQ && s->dollar && c == '(') {
        push(s, C_SUB);
    }
    s->here_end = s->line_start && c == quote;
    s->dollar = top(s) == C_HERE_DQ && c == '$';
}

static size_t ps_char(shstate *s, const char *p, size_t n)
{
    size_t used = 1;
    char c = p[0];
    if (s->escape) {
        s->escape = false;
        if (c != '\n') /* a line continuation vanishes: "$`<newline>(" is "$(" */
            forget_lookbehind(s);
        size_t ql;
        return ps_quote(p, n, &ql) ? ql : 1;
    }
    if (s->comment) {
        s->comment = c != '\n';
    } else if (top(s) == C_BLOCK_CMT) {
        if (c == '#' && n > 1 && p[1] == '>') {
            pop(s);
            used = 2;
        }
    } else if (top(s) == C_SQ || top(s) == C_DQ) {
        if (!ps_quoted(s, p, n, &used))
            return ps_char(s, p, n);
    } else if (top(s) == C_HERE_SQ || top(s) == C_HERE_DQ) {
        ps_herestring(s, c);
    } else if (top(s) == C_PARAM) {
        if (c == '`')
            s->escape = true;
        else if (c == '}')
            pop(s);
    } else {
        ps_code(s, p, n, &used);
    }
    if (c == '\n')
        s->stop_parsing = false;
    s->line_start = c == '\n';
    return used;
}

/* ---- walking the template --------------------------------------------------------------- */

static void feed(const shchk *c, shstate *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (c->ps) {
            i += ps_char(s, p + i, n - i);
        } else {
            posix_char(s, p[i]);
            s->line_start = p[i] == '\n';
            i++;
        }
    }
}

static const char *placement_problem(const shchk *c, shstate *s)
{
    if (c->ps && s->quote_end) /* 'a'{{ x }} would read as one string 'a''x' */
        return "right after a closing quote: PowerShell would join the two strings";
    if (s->in_heredoc)
        return "inside a here-document: a newline in the value would start a command";
    if (s->comment)
        return "inside a comment: a newline in the value would start a command";
    if (s->want_delim)
        return "as a here-document delimiter";
    if (s->escape)
        return c->ps ? "right after a backtick, which would escape its opening quote"
                     : "right after a backslash, which would escape its opening quote";
    if (s->dollar)
        return "right after '$'";
    if (s->ansi_seen)
        return "after a $'...' string, which dash and bash read differently";
    for (int i = 0; !c->ps && i < s->depth; i++) {
        if (s->stack[i] == C_BQ) /* the backquote scan ignores quotes: ` in a value ends it */
            return "inside `...`, which a backquote in the value would end: use $(...)";
        if (s->stack[i] == C_ARITH)
            return "inside arithmetic, where bash runs $(...) even from a quoted value: "
                   "pass integers through a variable";
        if (s->stack[i] == C_PARAM) /* the word of ${x:-word} is parsed again when expanded */
            return "inside ${...}";
    }
    if (s->stop_parsing)
        return "after --%, where PowerShell passes text on without quoting";
    switch (top(s)) {
    case C_SQ:
    case C_DQ:
        return "inside a quoted string: values are quoted for you, remove the quotes around it";
    case C_PARAM:
        return "inside ${...}";
    case C_HERE_SQ:
    case C_HERE_DQ:
        return "inside a here-string";
    case C_BLOCK_CMT:
        return "inside a comment";
    default:
        return NULL;
    }
}

static bool same(const shstate *a, const shstate *b)
{
    return a->depth == b->depth && !memcmp(a->stack, b->stack, (size_t)a->depth) &&
           a->in_heredoc == b->in_heredoc && a->hd_pending == b->hd_pending &&
           a->comment == b->comment && a->want_delim == b->want_delim;
}

static int walk(const shchk *c, const tpl_nodes *l, shstate *s)
{
    for (size_t i = 0; i < l->n; i++) {
        const tpl_node *n = &l->items[i];
        shstate a, b;
        int rc = 0;
        const char *why;
        switch (n->kind) {
        case N_TEXT:
            feed(c, s, n->text, n->len);
            break;
        case N_OUT:
            why = n->raw ? NULL : placement_problem(c, s);
            if (why) {
                tpl_set_err(c->t, n->pos, c->err, "value inserted %s", why);
                return OPSC_ESYNTAX;
            }
            s->word_start = s->dollar = s->at = s->escape = false;
            break;
        case N_IF:
            a = *s, b = *s;
            if ((rc = walk(c, &n->body, &a)) < 0 || (rc = walk(c, &n->alt, &b)) < 0)
                return rc;
            if (!same(&a, &b)) {
                tpl_set_err(c->t, n->pos, c->err,
                            "the branches of this {%% if %%} leave shell quoting in different "
                            "states");
                return OPSC_ESYNTAX;
            }
            *s = a;
            break;
        case N_FOR:
            a = *s;
            if ((rc = walk(c, &n->body, &a)) < 0)
                return rc;
            if (!same(&a, s)) {
                tpl_set_err(c->t, n->pos, c->err,
                            "the body of this {%% for %%} leaves a quote or block open");
                return OPSC_ESYNTAX;
            }
            *s = a;
            break;
        }
    }
    return 0;
}

int tpl_shell_check(const tpl *t, tpl_err *err)
{
    shchk c = {t, err, t->mode == TPL_POWERSHELL};
    shstate s;
    memset(&s, 0, sizeof(s));
    s.depth = 1;
    s.stack[0] = C_CODE;
    s.word_start = s.line_start = true;
    return walk(&c, &t->root, &s);
}
