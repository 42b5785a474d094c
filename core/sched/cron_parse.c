/* cron_parse.c - cron expression text to the bitset form of cron_t, with precise errors. */
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <opsc/errors.h>

#include "cron.h"

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_COUNT };

struct field_spec {
    const char *name;
    int min, max;
    int hmin, hmax; /* default range of H */
};

static const struct field_spec specs[F_COUNT] = {
    {"second", 0, 59, 0, 59},       {"minute", 0, 59, 0, 59}, {"hour", 0, 23, 0, 23},
    {"day-of-month", 1, 31, 1, 28}, {"month", 1, 12, 1, 12},  {"day-of-week", 0, 7, 0, 6},
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const dow_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static const struct {
    const char *name, *expansion;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

struct parser {
    const char *expr; /* whole expression, for columns */
    const char *p;    /* cursor */
    const char *end;  /* end of the current field */
    int field;
    uint64_t hash;
    cron_t *c;
    char *err;
    size_t errlen;
};

/* One parsed list item, before it becomes bits. */
struct term {
    int lo, hi, step;
    bool full; /* covers the field's whole range (a wildcard in the DST rule's sense) */
};

static int fail_at(struct parser *ps, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(struct parser *ps, const char *at, const char *fmt, ...)
{
    if (!ps->err || !ps->errlen)
        return OPSC_ESYNTAX;
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *what = ps->field < 0 ? "expression" : specs[ps->field].name;
    snprintf(ps->err, ps->errlen, "%s: %s at column %d", what, msg, (int)(at - ps->expr) + 1);
    return OPSC_ESYNTAX;
}

static int fail_char(struct parser *ps)
{
    const char *at = ps->p;
    if (at >= ps->end)
        return fail_at(ps, at, "unexpected end of field");
    if (isprint((unsigned char)*at))
        return fail_at(ps, at, "unexpected character '%c'", *at);
    return fail_at(ps, at, "unexpected byte 0x%02x", (unsigned char)*at);
}

static bool more(const struct parser *ps)
{
    return ps->p < ps->end;
}

static bool peek(const struct parser *ps, char ch)
{
    return ps->p < ps->end && toupper((unsigned char)*ps->p) == ch;
}

/* Stable forever: schedules rely on H giving the same value across versions. */
static uint64_t hash_seed(const char *seed)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const unsigned char *s = (const unsigned char *)seed; *s; s++)
        h = (h ^ *s) * 0x100000001b3ull;
    return h;
}

static uint64_t hash_field(uint64_t h, int field)
{
    uint64_t z = h + 0x9e3779b97f4a7c15ull * (uint64_t)(field + 1); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int parse_number(struct parser *ps, int *out)
{
    const char *start = ps->p;
    int v = 0;
    while (more(ps) && isdigit((unsigned char)*ps->p)) {
        if (ps->p - start >= 4)
            return fail_at(ps, start, "number too long");
        v = v * 10 + (*ps->p++ - '0');
    }
    if (ps->p == start)
        return fail_char(ps);
    *out = v;
    return 0;
}

static int lookup_name(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        if (strncasecmp(s, names[i], 3) == 0)
            return i;
    }
    return -1;
}

/* A number, or a month / weekday name, checked against the field's range. */
static int parse_value(struct parser *ps, int *out)
{
    const struct field_spec *f = &specs[ps->field];
    const char *start = ps->p;
    if (more(ps) && isalpha((unsigned char)*ps->p)) {
        int v = -1;
        if (ps->end - ps->p >= 3 && ps->field == F_MON)
            v = lookup_name(ps->p, month_names, 12) + 1;
        else if (ps->end - ps->p >= 3 && ps->field == F_DOW)
            v = lookup_name(ps->p, dow_names, 7);
        if (v < f->min) {
            int n = 0;
            while (n < 8 && start + n < ps->end && isalpha((unsigned char)start[n]))
                n++;
            return fail_at(ps, start, "unknown name '%.*s'", n, start);
        }
        ps->p += 3;
        *out = v;
        return 0;
    }
    if (parse_number(ps, out))
        return OPSC_ESYNTAX;
    if (*out < f->min || *out > f->max)
        return fail_at(ps, start, "value %d out of range %d-%d", *out, f->min, f->max);
    return 0;
}

static int parse_step(struct parser *ps, struct term *t)
{
    ps->p++; /* '/' */
    const char *at = ps->p;
    if (parse_number(ps, &t->step))
        return OPSC_ESYNTAX;
    /* A step beyond the field's span selects the range start only, as in
     * cronie and croniter: a step of 30 in the hour field fires at hour 0. */
    if (t->step < 1)
        return fail_at(ps, at, "step %d: a step must be 1 or more", t->step);
    return 0;
}

static bool covers_field(int field, int lo, int hi)
{
    return lo == specs[field].min && hi >= (field == F_DOW ? 6 : specs[field].max);
}

/* H, H(a-b), H/n, H(a-b)/n: a start hashed from the seed. */
static int parse_hash(struct parser *ps, struct term *t)
{
    const struct field_spec *f = &specs[ps->field];
    ps->p++; /* 'H' */
    t->lo = f->hmin;
    t->hi = f->hmax;
    if (peek(ps, '(')) {
        const char *at = ++ps->p;
        if (parse_value(ps, &t->lo))
            return OPSC_ESYNTAX;
        if (!peek(ps, '-'))
            return fail_char(ps);
        ps->p++;
        if (parse_value(ps, &t->hi))
            return OPSC_ESYNTAX;
        if (!peek(ps, ')'))
            return fail_char(ps);
        ps->p++;
        if (t->lo > t->hi)
            return fail_at(ps, at, "range start %d greater than end %d", t->lo, t->hi);
    }
    uint64_t h = hash_field(ps->hash, ps->field);
    int span = t->hi - t->lo + 1;
    if (peek(ps, '/')) {
        if (parse_step(ps, t))
            return OPSC_ESYNTAX;
        t->full = covers_field(ps->field, t->lo, t->hi);
        t->lo += (int)(h % (uint64_t)(t->step < span ? t->step : span));
        return 0;
    }
    t->lo += (int)(h % (uint64_t)span);
    t->hi = t->lo;
    t->step = 1;
    return 0;
}

/* L, L-n, LW in day-of-month. */
static int parse_dom_last(struct parser *ps)
{
    ps->p++; /* 'L' */
    if (peek(ps, 'W')) {
        ps->p++;
        ps->c->flags |= CRON_DOM_LW;
        return 0;
    }
    int n = 0;
    if (peek(ps, '-')) {
        const char *at = ++ps->p;
        if (parse_number(ps, &n))
            return OPSC_ESYNTAX;
        if (n > 30)
            return fail_at(ps, at, "L-%d out of range L-0 to L-30", n);
    }
    ps->c->dom_last |= 1u << n;
    return 0;
}

/* After a day-of-week value: d#n or dL. Returns 1 when one was consumed. */
static int parse_dow_suffix(struct parser *ps, int v)
{
    int d = v % 7;
    if (peek(ps, 'L')) {
        ps->p++;
        ps->c->dow_last |= (uint8_t)(1u << d);
        return 1;
    }
    if (!peek(ps, '#'))
        return 0;
    const char *at = ++ps->p;
    int n;
    if (parse_number(ps, &n))
        return -1;
    if (n < 1 || n > 5)
        return fail_at(ps, at, "#%d out of range #1-#5", n), -1;
    ps->c->dow_nth[d] |= (uint8_t)(1u << (n - 1));
    return 1;
}

/* value, value-value, value/step, value-value/step, nW, d#n, dL. Returns 1
 * when the item was a special form already stored in the cron. */
static int parse_range(struct parser *ps, struct term *t)
{
    const char *start = ps->p;
    if (parse_value(ps, &t->lo))
        return -1;
    t->hi = t->lo;
    t->step = 1;
    if (ps->field == F_DOM && peek(ps, 'W')) {
        ps->p++;
        ps->c->dom_near |= 1u << t->lo;
        return 1;
    }
    if (ps->field == F_DOW) {
        int r = parse_dow_suffix(ps, t->lo);
        if (r)
            return r;
    }
    if (peek(ps, '-')) {
        ps->p++;
        if (parse_value(ps, &t->hi))
            return -1;
        if (ps->field == F_DOW && t->hi == 0 && t->lo > 0)
            t->hi = 7; /* FRI-SUN; 0-0 and SUN-SUN stay Sunday only */
        if (t->lo > t->hi)
            return fail_at(ps, start, "range start %d greater than end %d", t->lo, t->hi), -1;
        t->full = covers_field(ps->field, t->lo, t->hi);
    }
    if (peek(ps, '/')) {
        if (t->hi == t->lo)
            t->hi = specs[ps->field].max; /* "5/10" means 5-max/10 */
        if (parse_step(ps, t))
            return -1;
    }
    return 0;
}

/* One list item; sets `bits` for plain values, the cron's special sets otherwise. */
static int parse_term(struct parser *ps, uint64_t *bits, bool *full)
{
    const struct field_spec *f = &specs[ps->field];
    struct term t = {f->min, f->max, 1, false};
    if (peek(ps, '*')) {
        ps->p++;
        t.full = true;
        if (peek(ps, '/') && parse_step(ps, &t))
            return OPSC_ESYNTAX;
    } else if (peek(ps, '?')) {
        if (ps->field != F_DOM && ps->field != F_DOW)
            return fail_at(ps, ps->p, "'?' is only allowed in day-of-month and day-of-week");
        ps->p++;
    } else if (peek(ps, 'H') && (ps->p + 1 >= ps->end || !isalpha((unsigned char)ps->p[1]))) {
        if (parse_hash(ps, &t))
            return OPSC_ESYNTAX;
    } else if (peek(ps, 'L') && ps->field == F_DOM) {
        return parse_dom_last(ps);
    } else if (peek(ps, 'L') && ps->field == F_DOW) {
        return fail_at(ps, ps->p, "'L' needs a weekday before it (5L = last Friday)");
    } else {
        int r = parse_range(ps, &t);
        if (r)
            return r < 0 ? OPSC_ESYNTAX : 0;
    }
    for (int v = t.lo; v <= t.hi; v += t.step)
        *bits |= 1ull << (ps->field == F_DOW ? v % 7 : v);
    *full = t.full;
    return 0;
}

static int parse_field(struct parser *ps, const char *start, const char *end, uint64_t *bits)
{
    ps->p = start;
    ps->end = end;
    bool first = true, full = false;
    *bits = 0;
    for (;;) {
        bool term_full = false;
        if (!more(ps) || *ps->p == ',')
            return fail_at(ps, ps->p, "empty list item");
        if (parse_term(ps, bits, &term_full))
            return OPSC_ESYNTAX;
        if (first) {
            full = term_full;
            first = false;
        }
        if (!more(ps))
            break;
        if (*ps->p != ',')
            return fail_char(ps);
        ps->p++;
    }
    bool star = *start == '*' || *start == '?';
    if (ps->field == F_DOM && star)
        ps->c->flags |= CRON_DOM_STAR;
    if (ps->field == F_DOW && star)
        ps->c->flags |= CRON_DOW_STAR;
    if (full && ps->field <= F_HOUR)
        ps->c->flags |= CRON_WILD;
    return 0;
}

static void store_bits(cron_t *c, int field, uint64_t bits)
{
    switch (field) {
    case F_SEC:
        c->sec = bits;
        break;
    case F_MIN:
        c->min = bits;
        break;
    case F_HOUR:
        c->hour = (uint32_t)bits;
        break;
    case F_DOM:
        c->dom = (uint32_t)bits;
        break;
    case F_MON:
        c->mon = (uint16_t)bits;
        break;
    default:
        c->dow = (uint8_t)bits;
        break;
    }
}

/* Split into fields; returns their count (up to 7 recorded). */
static int split_fields(const char *s, const char *starts[7], const char *ends[7])
{
    int n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            return n;
        const char *b = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        if (n < 7) {
            starts[n] = b;
            ends[n] = s;
        }
        n++;
    }
}

static int parse_fields(struct parser *ps, const char *text)
{
    const char *starts[7], *ends[7];
    int n = split_fields(text, starts, ends);
    ps->field = -1;
    if (n == 0)
        return fail_at(ps, text, "no fields");
    if (n != 5 && n != 6)
        return fail_at(ps, n > 6 ? starts[6] : text + strlen(text),
                       "expected 5 or 6 fields, found %d", n);
    int first = n == 5 ? F_MIN : F_SEC;
    if (n == 5)
        ps->c->sec = 1;
    for (int i = 0; i < n; i++) {
        uint64_t bits;
        ps->field = first + i;
        if (parse_field(ps, starts[i], ends[i], &bits))
            return OPSC_ESYNTAX;
        store_bits(ps->c, ps->field, bits);
    }
    return 0;
}

static int parse_macro(struct parser *ps, const char *at)
{
    size_t n = strcspn(at, " \t");
    ps->field = -1;
    for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
        if (strlen(macros[i].name) == n && strncasecmp(at, macros[i].name, n) == 0) {
            const char *rest = at + n + strspn(at + n, " \t");
            if (*rest)
                return fail_at(ps, rest, "unexpected text after %s", macros[i].name);
            const char *expr = ps->expr;
            ps->expr = macros[i].expansion; /* always valid: no column is reported */
            int rc = parse_fields(ps, macros[i].expansion);
            ps->expr = expr;
            return rc;
        }
    }
    return fail_at(ps, at, "unknown macro '%.*s'", (int)(n > 16 ? 16 : n), at);
}

int cron_parse(const char *expr, const char *seed, cron_t *out, char *err, size_t errlen)
{
    cron_t c;
    memset(&c, 0, sizeof(c));
    struct parser ps = {expr, expr, expr, -1, hash_seed(seed ? seed : ""), &c, err, errlen};
    size_t len = strnlen(expr, CRON_EXPR_MAX + 1);
    if (len > CRON_EXPR_MAX)
        return fail_at(&ps, expr + CRON_EXPR_MAX, "longer than %d characters", CRON_EXPR_MAX);
    const char *at = expr + strspn(expr, " \t");
    int rc = *at == '@' ? parse_macro(&ps, at) : parse_fields(&ps, expr);
    if (rc)
        return rc;
    *out = c;
    return 0;
}
