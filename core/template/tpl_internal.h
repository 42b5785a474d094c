/* tpl_internal.h - the compiled form of a template, shared by parser, checker and renderer. */
#ifndef OPSC_TPL_INTERNAL_H
#define OPSC_TPL_INTERNAL_H

#include <stdint.h>

#include "template.h"

/* Variable roots. Loop variables are slots TPL_ROOT_SLOT0 + n. */
enum tpl_root {
    TPL_ROOT_PARAMS,
    TPL_ROOT_TARGET,
    TPL_ROOT_STEPS,
    TPL_ROOT_RUN,
    TPL_ROOT_VARS,
    TPL_ROOT_LOOP = TPL_MAX_ROOTS, /* loop.index etc. of the innermost for */
    TPL_ROOT_SLOT0,
};
#define TPL_CTX_ROOTS 5  /* the step roots: params, target, steps, run, vars */
#define TPL_MAX_SLOTS 32 /* loop variables alive at once */
#define TPL_MAX_DEPTH 48 /* nesting of expressions and blocks */

typedef enum tpl_ekind {
    E_LIT,    /* literal (json_t owned by the template) */
    E_PATH,   /* variable lookup */
    E_FILTER, /* args[0] | filter(args[1..]) */
    E_NOT,
    E_AND,
    E_OR,
    E_CONCAT,
    E_CMP,  /* op in `op` */
    E_TEST, /* `is [not] defined|none` */
    E_LIST, /* [a, b] */
} tpl_ekind;

enum tpl_cmp { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE, CMP_IN, CMP_NOT_IN };
enum tpl_test { TEST_DEFINED, TEST_NONE };

typedef struct tpl_seg {
    const char *key; /* NUL-terminated copy; NULL for an index */
    long index;
} tpl_seg;

struct tpl_filter_def;

typedef struct tpl_expr {
    tpl_ekind kind;
    uint32_t pos; /* byte offset in the template, for errors */
    int op;       /* E_CMP: enum tpl_cmp; E_TEST: enum tpl_test; E_TEST negation in `neg` */
    bool neg;
    json_t *lit;                       /* E_LIT */
    int root;                          /* E_PATH */
    uint32_t srclen;                   /* E_PATH: length of its text, for messages */
    tpl_seg *segs;                     /* E_PATH */
    size_t nsegs;                      /* E_PATH */
    const struct tpl_filter_def *fdef; /* E_FILTER */
    struct tpl_expr **args;            /* E_FILTER (args[0] is the input), binary ops, E_LIST */
    size_t nargs;
} tpl_expr;

typedef enum tpl_nkind { N_TEXT, N_OUT, N_IF, N_FOR } tpl_nkind;

typedef struct tpl_node tpl_node;
typedef struct tpl_nodes {
    tpl_node *items;
    size_t n;
} tpl_nodes;

struct tpl_node {
    tpl_nkind kind;
    uint32_t pos;
    const char *text; /* N_TEXT: points into the template's copy */
    size_t len;
    tpl_expr *expr; /* N_OUT value; N_IF condition; N_FOR iterable */
    bool raw;       /* N_OUT: `| raw`, inserted unquoted */
    bool args;      /* N_OUT: `| args`, a list inserted as several words / an array */
    int kslot;      /* N_FOR: slot of the key (objects) or -1 */
    int vslot;      /* N_FOR: slot of the value */
    tpl_nodes body; /* N_IF then; N_FOR body */
    tpl_nodes alt;  /* N_IF else (elif is a nested N_IF) */
};

/* Filters (tpl_filters.c). */
typedef struct tpl_val {
    json_t *j;  /* NULL: undefined */
    bool owned; /* j is a reference the holder must decref */
} tpl_val;

struct tpl_rstate;
typedef int (*tpl_filter_fn)(struct tpl_rstate *rs, const tpl_expr *e, tpl_val in,
                             const tpl_val *args, tpl_val *out);

enum tpl_argtype { ARG_ANY, ARG_STRING, ARG_BOOL };

typedef struct tpl_filter_def {
    const char *name;
    int min_args, max_args;
    enum tpl_argtype argtypes[2];
    bool takes_undefined; /* default: the input may be undefined */
    tpl_filter_fn fn;
} tpl_filter_def;

const tpl_filter_def *tpl_filter_find(const char *name, size_t len);
extern const tpl_filter_def tpl_filter_raw;  /* markers, not callable: the last filter */
extern const tpl_filter_def tpl_filter_args; /* of a {{ }} says how to insert the value */

/* Arena: every piece of a compiled template lives in it, freed at once. */
typedef struct tpl_chunk tpl_chunk;

struct tpl {
    tpl_mode mode;
    const char *const *roots; /* names of the context's roots (tpl_opts.roots or the steps') */
    int nroots;
    char *src; /* the template text (NUL-terminated copy) */
    size_t srclen;
    tpl_nodes root;
    int nslots;
    bool constant;
    tpl_chunk *arena;
    json_t **lits; /* literals to decref */
    size_t nlits, litcap;
};

void *tpl_alloc(struct tpl *t, size_t n);
/* Fill err with the line and column of byte offset `pos` of `t`'s source. */
void tpl_set_err(const struct tpl *t, uint32_t pos, tpl_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- parser (tpl_parse.c for expressions, template.c for text and statements) ---- */
enum tpl_ttype { T_END, T_NAME, T_INT, T_REAL, T_STR, T_OP };

typedef struct tpl_tok {
    enum tpl_ttype type;
    uint32_t pos;
    const char *s; /* T_NAME, T_OP: into the source; T_STR: decoded copy in the arena */
    size_t len;
    long long ival;
    double rval;
} tpl_tok;

typedef struct tpl_scope_var {
    const char *name; /* into the source */
    size_t len;
    int slot;
    bool raw_ok; /* bound to a raw parameter: may be inserted with | raw */
} tpl_scope_var;

typedef struct tpl_parser {
    struct tpl *t;
    const tpl_opts *opts;
    tpl_err *err;
    size_t i;         /* cursor in t->src */
    bool in_output;   /* inside {{ }} (else {% %}) */
    uint32_t tag_pos; /* start of the current tag */
    bool trim_after;  /* the tag just closed with '-' */
    tpl_tok cur;      /* lookahead token */
    bool have_cur;
    tpl_scope_var scope[TPL_MAX_SLOTS];
    int nscope;
    int loops; /* enclosing for loops */
    int depth; /* recursion guard */
} tpl_parser;

#define TPL_FAIL(p, pos, ...) (tpl_set_err((p)->t, (pos), (p)->err, __VA_ARGS__), OPSC_ESYNTAX)

int tpl_p_peek(tpl_parser *p, tpl_tok **out);
void tpl_p_consume(tpl_parser *p);
bool tpl_p_is(const tpl_tok *tk, enum tpl_ttype type, const char *text);
int tpl_p_accept(tpl_parser *p, enum tpl_ttype type, const char *text, bool *got);
/* Expect the end of the current tag and move past it (sets trim_after). */
int tpl_p_end(tpl_parser *p);
int tpl_p_expr(tpl_parser *p, tpl_expr **out);
/* {{ expr }} into n (kind N_OUT), with the raw rules applied. */
int tpl_p_output(tpl_parser *p, tpl_node *n);
/* An if/for expression: no raw filter inside. */
int tpl_p_no_raw(tpl_parser *p, const tpl_expr *e);
/* True when every variable in e may be inserted raw. */
bool tpl_p_raw_ok(const tpl_parser *p, const tpl_expr *e);

/* Shell context check (tpl_shell.c): OPSC_ESYNTAX with err set when a quoted
 * placeholder sits where it would not be one literal word. */
int tpl_shell_check(const struct tpl *t, tpl_err *err);

/* Render state (tpl_render.c), used by filters to report errors. */
struct tpl_rstate {
    const struct tpl *t;
    tpl_err *err;
    const json_t *roots[TPL_MAX_ROOTS];
    tpl_val slots[TPL_MAX_SLOTS];
    size_t loop_index[TPL_MAX_DEPTH], loop_len[TPL_MAX_DEPTH];
    int loop_depth;
    size_t steps;
    size_t out_start; /* output length before this render */
};
int tpl_rerr(struct tpl_rstate *rs, const tpl_expr *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *tpl_type_name(const json_t *j);
/* Text form of a scalar (strings as is, numbers, true/false, "" for null) into sb;
 * OPSC_EINVAL for arrays and objects. */
int tpl_scalar_text(const json_t *j, strbuf *sb);
void tpl_val_drop(tpl_val *v);

#endif
