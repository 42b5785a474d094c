/* tpl_render.c - evaluating a compiled template against a context, with shell quoting. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "tpl_internal.h"

int tpl_rerr(struct tpl_rstate *rs, const tpl_expr *e, const char *fmt, ...)
{
    if (!rs->err)
        return OPSC_EINVAL;
    char msg[sizeof(rs->err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tpl_set_err(rs->t, e ? e->pos : 0, rs->err, "%s", msg);
    return OPSC_EINVAL;
}

const char *tpl_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

void tpl_val_drop(tpl_val *v)
{
    if (v->owned)
        json_decref(v->j);
    v->j = NULL;
    v->owned = false;
}

static void real_text(double d, strbuf *sb)
{
    char buf[40];
    snprintf(buf, sizeof(buf), "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, sizeof(buf), "%.17g", d);
    sb_puts(sb, buf);
}

int tpl_scalar_text(const json_t *j, strbuf *sb)
{
    switch (json_typeof(j)) {
    case JSON_STRING:
        sb_append(sb, json_string_value(j), json_string_length(j));
        return 0;
    case JSON_INTEGER:
        sb_printf(sb, "%lld", (long long)json_integer_value(j));
        return 0;
    case JSON_REAL:
        real_text(json_real_value(j), sb);
        return 0;
    case JSON_TRUE:
        sb_puts(sb, "true");
        return 0;
    case JSON_FALSE:
        sb_puts(sb, "false");
        return 0;
    case JSON_NULL:
        return 0;
    default:
        return OPSC_EINVAL;
    }
}

static bool truthy(const json_t *j)
{
    switch (j ? json_typeof(j) : JSON_NULL) {
    case JSON_OBJECT:
        return json_object_size(j) > 0;
    case JSON_ARRAY:
        return json_array_size(j) > 0;
    case JSON_STRING:
        return json_string_length(j) > 0;
    case JSON_INTEGER:
        return json_integer_value(j) != 0;
    case JSON_REAL:
        return json_real_value(j) != 0.0;
    case JSON_TRUE:
        return true;
    default:
        return false;
    }
}

/* ---- evaluation -------------------------------------------------------------------- */

static int eval(struct tpl_rstate *rs, const tpl_expr *e, tpl_val *out);

static int undefined(struct tpl_rstate *rs, const tpl_expr *e)
{
    if (e->kind == E_PATH)
        return tpl_rerr(rs, e, "'%.*s' is undefined", (int)e->srclen, rs->t->src + e->pos);
    return tpl_rerr(rs, e, "value is undefined");
}

static int loop_member(struct tpl_rstate *rs, const tpl_expr *e, tpl_val *out)
{
    int d = rs->loop_depth - 1;
    size_t i = rs->loop_index[d], n = rs->loop_len[d];
    const char *m = e->segs[0].key;
    json_t *j;
    if (strcmp(m, "index") == 0)
        j = json_integer((json_int_t)i + 1);
    else if (strcmp(m, "index0") == 0)
        j = json_integer((json_int_t)i);
    else if (strcmp(m, "length") == 0)
        j = json_integer((json_int_t)n);
    else
        j = json_boolean(strcmp(m, "first") == 0 ? i == 0 : i + 1 == n);
    if (!j)
        return OPSC_ENOMEM;
    *out = (tpl_val){j, true};
    return 0;
}

static int lookup(struct tpl_rstate *rs, const tpl_expr *e, tpl_val *out)
{
    if (e->root == TPL_ROOT_LOOP)
        return loop_member(rs, e, out);
    const json_t *j =
        e->root < TPL_MAX_ROOTS ? rs->roots[e->root] : rs->slots[e->root - TPL_ROOT_SLOT0].j;
    for (size_t i = 0; i < e->nsegs && j; i++) {
        const tpl_seg *s = &e->segs[i];
        if (s->key) {
            j = json_is_object(j) ? json_object_get(j, s->key) : NULL;
        } else if (json_is_array(j)) {
            long n = (long)json_array_size(j), k = s->index < 0 ? n + s->index : s->index;
            j = k >= 0 && k < n ? json_array_get(j, (size_t)k) : NULL;
        } else {
            j = NULL;
        }
    }
    /* Borrowed: the context and loop values outlive the expression. */
    *out = (tpl_val){(json_t *)j, false};
    return 0;
}

static bool arg_type_ok(enum tpl_argtype t, const json_t *j)
{
    return t == ARG_ANY || (t == ARG_STRING ? json_is_string(j) : json_is_boolean(j));
}

static int eval_filter(struct tpl_rstate *rs, const tpl_expr *e, tpl_val *out)
{
    const tpl_filter_def *f = e->fdef;
    tpl_val in, args[2] = {{0}};
    int rc = eval(rs, e->args[0], &in);
    if (rc < 0)
        return rc;
    if (!in.j && !f->takes_undefined)
        return undefined(rs, e->args[0]);
    for (size_t i = 1; i < e->nargs && rc == 0; i++) {
        rc = eval(rs, e->args[i], &args[i - 1]);
        if (rc == 0 && !args[i - 1].j)
            rc = undefined(rs, e->args[i]);
        else if (rc == 0 && !arg_type_ok(f->argtypes[i - 1], args[i - 1].j))
            rc = tpl_rerr(rs, e->args[i], "filter '%s': argument %zu must be a %s", f->name, i,
                          f->argtypes[i - 1] == ARG_STRING ? "string" : "boolean");
    }
    if (rc == 0)
        rc = f->fn(rs, e, in, args, out); /* takes `in` */
    else
        tpl_val_drop(&in);
    tpl_val_drop(&args[0]);
    tpl_val_drop(&args[1]);
    return rc;
}

static int eval_concat(struct tpl_rstate *rs, const tpl_expr *e, tpl_val *out)
{
    strbuf sb = STRBUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        tpl_val v;
        if ((rc = eval(rs, e->args[i], &v)) < 0)
            break;
        if (!v.j) {
            rc = undefined(rs, e->args[i]);
        } else if (tpl_scalar_text(v.j, &sb) < 0) {
            char *text = json_dumps(v.j, JSON_COMPACT | JSON_ENCODE_ANY);
            if (text)
                sb_puts(&sb, text);
            free(text);
        }
        tpl_val_drop(&v);
    }
    json_t *j = rc == 0 ? json_stringn(sb.buf ? sb.buf : "", sb.len) : NULL;
    sb_free(&sb);
    if (rc == 0 && !j)
        rc = tpl_rerr(rs, e, "concatenation is not valid UTF-8 text");
    *out = (tpl_val){j, true};
    return rc;
}

static int compare(struct tpl_rstate *rs, const tpl_expr *e, const json_t *a, const json_t *b,
                   bool *res)
{
    if (e->op == CMP_EQ || e->op == CMP_NE) {
        bool eq = a && b &&
                  (json_equal(a, b) || (json_is_number(a) && json_is_number(b) &&
                                        json_number_value(a) == json_number_value(b)));
        *res = e->op == CMP_EQ ? eq : !eq;
        return 0;
    }
    if (e->op == CMP_IN || e->op == CMP_NOT_IN) {
        bool in = false;
        if (json_is_string(b) && json_is_string(a))
            in = strstr(json_string_value(b), json_string_value(a)) != NULL;
        else if (json_is_object(b) && json_is_string(a))
            in = json_object_get(b, json_string_value(a)) != NULL;
        else if (json_is_array(b) && a)
            for (size_t i = 0; i < json_array_size(b) && !in; i++)
                in = json_equal(json_array_get(b, i), a);
        else
            return tpl_rerr(rs, e, "'in' needs a string, array or object on its right");
        *res = e->op == CMP_IN ? in : !in;
        return 0;
    }
    int c;
    if (json_is_number(a) && json_is_number(b))
        c = (json_number_value(a) > json_number_value(b)) -
            (json_number_value(a) < json_number_value(b));
    else if (json_is_string(a) && json_is_string(b))
        c = strcmp(json_string_value(a), json_string_value(b));
    else
        return tpl_rerr(rs, e, "cannot order %s and %s", a ? tpl_type_name(a) : "undefined",
                        b ? tpl_type_name(b) : "undefined");
    *res = e->op == CMP_LT ? c < 0 : e->op == CMP_LE ? c <= 0 : e->op == CMP_GT ? c > 0 : c >= 0;
    return 0;
}

static int eval_binary(struct tpl_rstate *rs, const tpl_expr *e, tpl_val *out)
{
    tpl_val a, b = {0};
    bool res = false;
    int rc = eval(rs, e->args[0], &a);
    if (rc < 0)
        return rc;
    if (e->kind == E_AND && !truthy(a.j))
        res = false;
    else if (e->kind == E_OR && truthy(a.j))
        res = true;
    else if ((rc = eval(rs, e->args[1], &b)) == 0 && e->kind == E_CMP)
        rc = compare(rs, e, a.j, b.j, &res);
    else if (rc == 0)
        res = truthy(b.j);
    tpl_val_drop(&a);
    tpl_val_drop(&b);
    *out = (tpl_val){json_boolean(res), false}; /* true/false are static in jansson */
    return rc;
}

static int eval_list(struct tpl_rstate *rs, const tpl_expr *e, tpl_val *out)
{
    json_t *arr = json_array();
    int rc = arr ? 0 : OPSC_ENOMEM;
    for (size_t i = 0; i < e->nargs && rc == 0; i++) {
        tpl_val v;
        if ((rc = eval(rs, e->args[i], &v)) < 0)
            break;
        if (!v.j)
            rc = undefined(rs, e->args[i]);
        else if (json_array_append(arr, v.j) < 0)
            rc = OPSC_ENOMEM;
        tpl_val_drop(&v);
    }
    *out = (tpl_val){arr, true};
    if (rc < 0)
        tpl_val_drop(out);
    return rc;
}

static int eval(struct tpl_rstate *rs, const tpl_expr *e, tpl_val *out)
{
    *out = (tpl_val){0};
    if (++rs->steps > TPL_MAX_STEPS) {
        tpl_rerr(rs, e, "template takes more than %u evaluation steps", TPL_MAX_STEPS);
        return OPSC_E2BIG;
    }
    tpl_val v;
    int rc;
    switch (e->kind) {
    case E_LIT:
        *out = (tpl_val){e->lit, false};
        return 0;
    case E_PATH:
        return lookup(rs, e, out);
    case E_FILTER:
        return eval_filter(rs, e, out);
    case E_CONCAT:
        return eval_concat(rs, e, out);
    case E_LIST:
        return eval_list(rs, e, out);
    case E_NOT:
    case E_TEST:
        if ((rc = eval(rs, e->args[0], &v)) < 0)
            return rc;
        bool res = e->kind == E_NOT     ? !truthy(v.j)
                   : e->op == TEST_NONE ? (v.j && json_is_null(v.j)) != e->neg
                                        : (v.j != NULL) != e->neg;
        tpl_val_drop(&v);
        *out = (tpl_val){json_boolean(res), false};
        return 0;
    default:
        return eval_binary(rs, e, out);
    }
}

/* ---- output -------------------------------------------------------------------------- */

static int emit_json(const json_t *j, tpl_mode mode, strbuf *out)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return OPSC_ENOMEM;
    int rc = tpl_quote(mode, text, strlen(text), out);
    free(text);
    return rc;
}

static int emit_scalar(const json_t *j, tpl_mode mode, strbuf *out)
{
    bool ps = mode == TPL_POWERSHELL;
    switch (json_typeof(j)) {
    case JSON_STRING:
        return tpl_quote(mode, json_string_value(j), json_string_length(j), out);
    case JSON_TRUE:
        sb_puts(out, ps ? "$true" : "true");
        return 0;
    case JSON_FALSE:
        sb_puts(out, ps ? "$false" : "false");
        return 0;
    case JSON_NULL:
        sb_puts(out, ps ? "$null" : "''");
        return 0;
    case JSON_INTEGER:
    case JSON_REAL:
        return tpl_scalar_text(j, out);
    default:
        return emit_json(j, mode, out);
    }
}

/* An array becomes one word per element ('a' 'b') or a PowerShell array @('a', 'b'). */
static int emit_array(const json_t *arr, tpl_mode mode, strbuf *out)
{
    bool ps = mode == TPL_POWERSHELL;
    int rc = 0;
    if (ps)
        sb_puts(out, "@(");
    for (size_t i = 0; i < json_array_size(arr) && rc == 0; i++) {
        if (i)
            sb_puts(out, ps ? ", " : " ");
        rc = emit_scalar(json_array_get(arr, i), mode, out);
    }
    if (ps)
        sb_puts(out, ")");
    return rc;
}

static int emit(struct tpl_rstate *rs, const tpl_node *n, const json_t *j, strbuf *out)
{
    tpl_mode mode = n->raw ? TPL_TEXT : rs->t->mode;
    int rc;
    if (mode == TPL_TEXT) {
        rc = tpl_scalar_text(j, out);
        if (rc < 0) /* arrays and objects as JSON */
            rc = emit_json(j, TPL_TEXT, out);
        else if (json_is_string(j) && memchr(json_string_value(j), 0, json_string_length(j)))
            rc = OPSC_EINVAL;
    } else if (json_is_array(j) && !n->args) {
        /* Several words where one was meant would shift arguments: sudo -u {{ x }} with
         * ["root", "sh", "-c", "..."]. Lists (e.g. from a remote step's outputs) need asking. */
        return tpl_rerr(rs, n->expr,
                        "'%.*s' is a list: insert it with | args (one quoted word "
                        "per element) or | join(...)",
                        n->expr->kind == E_PATH ? (int)n->expr->srclen : 5,
                        n->expr->kind == E_PATH ? rs->t->src + n->expr->pos : "value");
    } else {
        rc = json_is_array(j) ? emit_array(j, mode, out) : emit_scalar(j, mode, out);
    }
    if (rc == OPSC_EINVAL)
        return tpl_rerr(rs, n->expr, "value contains a NUL byte");
    return rc;
}

static int render_nodes(struct tpl_rstate *rs, const tpl_nodes *l, strbuf *out);

/* One pass of a loop body: `key` (owned) and `val` go to the loop's slots. */
static int render_iteration(struct tpl_rstate *rs, const tpl_node *n, tpl_val key, tpl_val val,
                            strbuf *out)
{
    if (n->kslot >= 0)
        rs->slots[n->kslot] = key;
    rs->slots[n->vslot] = val;
    int rc = render_nodes(rs, &n->body, out);
    if (n->kslot >= 0)
        tpl_val_drop(&rs->slots[n->kslot]);
    tpl_val_drop(&rs->slots[n->vslot]);
    rs->loop_index[rs->loop_depth - 1]++;
    return rc;
}

/* Objects: `for k, v in obj` binds both; `for k in obj` binds the keys (as Jinja). */
static int render_object(struct tpl_rstate *rs, const tpl_node *n, json_t *obj, strbuf *out)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        json_t *key = json_string(k);
        if (!key)
            return OPSC_ENOMEM;
        tpl_val kv = {key, true}, vv = {v, false};
        int rc = n->kslot >= 0 ? render_iteration(rs, n, kv, vv, out)
                               : render_iteration(rs, n, (tpl_val){0}, kv, out);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int render_for(struct tpl_rstate *rs, const tpl_node *n, strbuf *out)
{
    tpl_val it;
    int rc = eval(rs, n->expr, &it);
    if (rc < 0 || !it.j || json_is_null(it.j)) /* undefined: no iterations, as in Jinja */
        return rc;
    bool arr = json_is_array(it.j);
    if (!arr && !json_is_object(it.j))
        rc = tpl_rerr(rs, n->expr, "cannot loop over a %s", tpl_type_name(it.j));
    else if (n->kslot >= 0 && arr)
        rc = tpl_rerr(rs, n->expr, "'for key, value' needs an object, not an array");
    if (rc < 0) {
        tpl_val_drop(&it);
        return rc;
    }
    int d = rs->loop_depth++;
    rs->loop_index[d] = 0;
    rs->loop_len[d] = arr ? json_array_size(it.j) : json_object_size(it.j);
    if (arr)
        for (size_t i = 0; i < json_array_size(it.j) && rc == 0; i++)
            rc = render_iteration(rs, n, (tpl_val){0}, (tpl_val){json_array_get(it.j, i), false},
                                  out);
    else
        rc = render_object(rs, n, it.j, out);
    rs->loop_depth--;
    tpl_val_drop(&it);
    return rc;
}

static int render_node(struct tpl_rstate *rs, const tpl_node *n, strbuf *out)
{
    tpl_val v;
    int rc;
    switch (n->kind) {
    case N_TEXT:
        sb_append(out, n->text, n->len);
        return 0;
    case N_OUT:
        if ((rc = eval(rs, n->expr, &v)) < 0)
            return rc;
        rc = v.j ? emit(rs, n, v.j, out) : undefined(rs, n->expr);
        tpl_val_drop(&v);
        return rc;
    case N_IF:
        if ((rc = eval(rs, n->expr, &v)) < 0)
            return rc;
        bool yes = truthy(v.j);
        tpl_val_drop(&v);
        return render_nodes(rs, yes ? &n->body : &n->alt, out);
    case N_FOR:
        return render_for(rs, n, out);
    }
    return 0;
}

static int render_nodes(struct tpl_rstate *rs, const tpl_nodes *l, strbuf *out)
{
    for (size_t i = 0; i < l->n; i++) {
        int rc = render_node(rs, &l->items[i], out);
        if (rc == 0 && out->len - rs->out_start > TPL_MAX_OUTPUT) {
            tpl_set_err(rs->t, l->items[i].pos, rs->err, "template output exceeds %u bytes",
                        TPL_MAX_OUTPUT);
            rc = OPSC_E2BIG;
        }
        if (rc == 0 && out->oom)
            rc = OPSC_ENOMEM;
        if (rc < 0)
            return rc;
    }
    return 0;
}

int tpl_render(const tpl *t, const json_t *ctx, strbuf *out, tpl_err *err)
{
    struct tpl_rstate rs = {.t = t, .err = err};
    if (err)
        memset(err, 0, sizeof(*err));
    for (int i = 0; i < t->nroots; i++)
        rs.roots[i] = json_is_object(ctx) ? json_object_get(ctx, t->roots[i]) : NULL;
    rs.out_start = out->len;
    int rc = render_nodes(&rs, &t->root, out);
    if (rc == OPSC_ENOMEM && err)
        snprintf(err->msg, sizeof(err->msg), "out of memory");
    return rc;
}

int tpl_render_str(const tpl *t, const json_t *ctx, char **out, tpl_err *err)
{
    strbuf sb = STRBUF_INIT;
    int rc = tpl_render(t, ctx, &sb, err);
    if (rc == 0 && !(*out = sb_steal(&sb, NULL)))
        rc = OPSC_ENOMEM;
    if (rc < 0) {
        *out = NULL;
        sb_free(&sb);
    }
    return rc;
}
