/* exec_output.c - a command's output: lines to the run log, outputs by the step's rule, and
 * secret values redacted from all of it. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "exec_internal.h"
#include "template.h"
#include "util.h"

#define OUTPUT_PREFIX "OPSC_OUTPUT "
#define PART_MAX      (64u << 10) /* a line longer than this is cut into pieces */
#define PART_STALE_MS 1000        /* a prompt without newline reaches the log after this */
#define REDACTED      "********"

/* ---- redaction -------------------------------------------------------------------------- */

static int add_one(ex_run *r, const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < r->nredact; i++)
        if (strlen(r->redact[i]) == len && memcmp(r->redact[i], s, len) == 0)
            return 0;
    char **v = realloc(r->redact, (r->nredact + 1) * sizeof(*v));
    if (!v)
        return OPSC_ENOMEM;
    r->redact = v;
    if (!(v[r->nredact] = strndup(s, len)))
        return OPSC_ENOMEM;
    r->nredact++;
    /* Longest first, so a secret containing another is replaced whole. */
    for (size_t i = r->nredact - 1; i > 0 && strlen(v[i]) > strlen(v[i - 1]); i--) {
        char *tmp = v[i];
        v[i] = v[i - 1];
        v[i - 1] = tmp;
    }
    return 0;
}

static int add_quoted(ex_run *r, const char *secret, tpl_mode mode)
{
    strbuf q = STRBUF_INIT;
    int rc = tpl_quote(mode, secret, strlen(secret), &q);
    if (rc == 0 && q.buf)
        rc = add_one(r, q.buf, q.len);
    if (q.buf)
        secure_zero(q.buf, q.len);
    sb_free(&q);
    return rc;
}

/* The value as it may appear: itself, quoted for either shell, JSON-escaped,
 * and each line of a multi-line value. */
int ex_redact_add(ex_run *r, const char *secret)
{
    int rc = add_one(r, secret, strlen(secret));
    if (rc == 0 && strpbrk(secret, "'\xe2"))
        rc = add_quoted(r, secret, TPL_POSIX);
    if (rc == 0 && strpbrk(secret, "'\xe2"))
        rc = add_quoted(r, secret, TPL_POWERSHELL);
    json_t *j = json_string(secret);
    char *dump = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    if (rc == 0 && dump && strlen(dump) > 2)
        rc = add_one(r, dump + 1, strlen(dump) - 2);
    if (dump) {
        secure_zero(dump, strlen(dump));
        free(dump);
    }
    json_decref(j);
    for (const char *p = secret; rc == 0 && strchr(p, '\n');) {
        const char *e = strchr(p, '\n');
        if (e - p >= 4)
            rc = add_one(r, p, (size_t)(e - p));
        p = e + 1;
        if (!strchr(p, '\n') && strlen(p) >= 4)
            rc = add_one(r, p, strlen(p));
    }
    return rc;
}

char *ex_redact(const ex_run *r, char *s)
{
    if (!s || r->nredact == 0)
        return s;
    for (size_t i = 0; i < r->nredact; i++) {
        const char *secret = r->redact[i];
        size_t n = strlen(secret);
        if (!strstr(s, secret))
            continue;
        strbuf b = STRBUF_INIT;
        const char *p = s, *hit;
        while ((hit = strstr(p, secret))) {
            sb_append(&b, p, (size_t)(hit - p));
            sb_puts(&b, REDACTED);
            p = hit + n;
        }
        sb_puts(&b, p);
        secure_zero(s, strlen(s));
        free(s);
        s = sb_steal(&b, NULL);
        if (!s)
            return strdup(REDACTED);
    }
    return s;
}

void ex_redact_inplace(const ex_run *r, char *buf)
{
    if (r->nredact == 0)
        return;
    char *copy = ex_redact(r, strdup(buf));
    size_t n = strlen(buf);
    if (copy) {
        size_t m = strlen(copy);
        memcpy(buf, copy, m < n ? m + 1 : n + 1);
        buf[m < n ? m : n] = '\0';
    }
    free(copy);
}

void ex_redact_json(const ex_run *r, json_t *v)
{
    if (r->nredact == 0)
        return;
    const char *k;
    json_t *m;
    size_t i;
    void *tmp;
    if (json_is_object(v)) {
        json_object_foreach_safe(v, tmp, k, m)
        {
            if (json_is_string(m)) {
                char *s = ex_redact(r, strdup(json_string_value(m)));
                json_object_set_new(v, k, json_string(s ? s : REDACTED));
                free(s);
            } else {
                ex_redact_json(r, m);
            }
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, m)
        {
            if (json_is_string(m)) {
                char *s = ex_redact(r, strdup(json_string_value(m)));
                json_array_set_new(v, i, json_string(s ? s : REDACTED));
                free(s);
            } else {
                ex_redact_json(r, m);
            }
        }
    }
}

/* ---- lines ------------------------------------------------------------------------------- */

static bool key_ok(const char *k, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)k[i]) && !isdigit((unsigned char)k[i]) && k[i] != '_')
            return false;
    return true;
}

static bool wants_kv(const ex_cmd *c)
{
    return c->rule == OPSC_OUTPUT_KEY_VALUE || c->rule == OPSC_OUTPUT_STDOUT_KEY_VALUE;
}

static bool wants_stdout(const ex_cmd *c)
{
    return c->rule == OPSC_OUTPUT_STDOUT || c->rule == OPSC_OUTPUT_STDOUT_KEY_VALUE ||
           c->capture_err; /* imperative exec captures both streams */
}

/* "OPSC_OUTPUT key=value": JSON when the value parses as JSON, else text. */
static bool take_output(ex_cmd *c, const char *line, size_t len)
{
    size_t pl = sizeof(OUTPUT_PREFIX) - 1;
    if (len < pl || memcmp(line, OUTPUT_PREFIX, pl) != 0)
        return false;
    const char *kv = line + pl, *eq = memchr(kv, '=', len - pl);
    if (!eq || !key_ok(kv, (size_t)(eq - kv)))
        return false;
    size_t vlen = len - (size_t)(eq + 1 - line);
    while (vlen > 0 && (eq[vlen] == '\n' || eq[vlen] == '\r'))
        vlen--;
    char key[72];
    snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
    json_t *v = json_loadb(eq + 1, vlen, JSON_DECODE_ANY, NULL);
    if (!v)
        v = json_stringn_nocheck(eq + 1, vlen);
    if (!c->outputs)
        c->outputs = json_object();
    json_object_set_new(c->outputs, key, v);
    return true;
}

static void capture(ex_cmd *c, strbuf *b, const char *line, size_t len)
{
    if (b->len + len > (size_t)c->capture_limit) {
        c->truncated = true;
        len = b->len < (size_t)c->capture_limit ? (size_t)c->capture_limit - b->len : 0;
    }
    if (len)
        sb_append(b, line, len);
}

static void note_last_line(ex_cmd *c, const char *line, size_t len)
{
    size_t a = 0, e = len;
    while (a < e && isspace((unsigned char)line[a]))
        a++;
    while (e > a && isspace((unsigned char)line[e - 1]))
        e--;
    if (e == a || e - a > (size_t)c->capture_limit)
        return;
    free(c->last_line);
    c->last_line = strndup(line + a, e - a);
}

/* One whole line (with its newline, if it had one). Lines to log are
 * gathered in `logbuf` so that one read makes one log record. */
static void one_line(ex_cmd *c, int idx, const char *line, size_t len, strbuf *logbuf)
{
    if (idx == 0 && wants_kv(c) && take_output(c, line, len))
        return;
    if (idx == 0 && wants_stdout(c))
        capture(c, &c->out, line, len);
    if (idx == 1 && c->capture_err)
        capture(c, &c->err, line, len);
    if (idx == 0 && c->rule == OPSC_OUTPUT_JSON_LAST_LINE)
        note_last_line(c, line, len);
    if (c->log_output)
        sb_append(logbuf, line, len);
}

static void emit(ex_cmd *c, int idx, strbuf *logbuf)
{
    if (logbuf->len > 0 && c->t) {
        const job_step *s = &c->t->run->plan->steps[c->t->step];
        ex_log(c->t, s->id, idx == 0 ? "stdout" : "stderr", logbuf->buf, logbuf->len);
    }
    sb_reset(logbuf);
}

void ex_cmd_output(ex_cmd *c, int stream, const char *data, size_t len)
{
    int idx = stream == OPSC_STDERR ? 1 : 0;
    ex_lines *l = &c->lines[idx];
    strbuf logbuf = STRBUF_INIT;
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) + 1 : len;
        if (!nl && l->part.len + take < PART_MAX) { /* keep the unfinished line */
            if (l->part.len == 0)
                l->part_ms = clock_mono_ms();
            sb_append(&l->part, data, take);
            break;
        }
        if (l->part.len > 0) {
            sb_append(&l->part, data, take);
            one_line(c, idx, l->part.buf, l->part.len, &logbuf);
            sb_reset(&l->part);
        } else {
            one_line(c, idx, data, take, &logbuf);
        }
        data += take;
        len -= take;
    }
    emit(c, idx, &logbuf);
    sb_free(&logbuf);
}

void ex_cmd_flush_lines(ex_cmd *c, bool all)
{
    for (int idx = 0; idx < 2; idx++) {
        ex_lines *l = &c->lines[idx];
        if (l->part.len == 0 || (!all && clock_mono_ms() - l->part_ms < PART_STALE_MS))
            continue;
        strbuf logbuf = STRBUF_INIT;
        one_line(c, idx, l->part.buf, l->part.len, &logbuf);
        sb_reset(&l->part);
        emit(c, idx, &logbuf);
        sb_free(&logbuf);
    }
}

/* ---- outputs by rule ------------------------------------------------------------------- */

static json_t *trimmed(const strbuf *b)
{
    size_t a = 0, e = b->len;
    while (a < e && isspace((unsigned char)b->buf[a]))
        a++;
    while (e > a && isspace((unsigned char)b->buf[e - 1]))
        e--;
    json_t *s = json_stringn(e > a ? b->buf + a : "", e - a);
    return s ? s : json_string("(output is not valid UTF-8)");
}

json_t *ex_cmd_outputs(ex_cmd *c, char *err, size_t errlen)
{
    json_t *out = c->outputs ? json_incref(c->outputs) : json_object();
    if (c->rule == OPSC_OUTPUT_STDOUT || c->rule == OPSC_OUTPUT_STDOUT_KEY_VALUE) {
        json_object_set_new(out, "stdout", trimmed(&c->out));
        if (c->truncated)
            json_object_set_new(out, "stdout_truncated", json_true());
    }
    if (c->rule == OPSC_OUTPUT_JSON_LAST_LINE) {
        json_error_t je;
        json_t *obj = c->last_line ? json_loads(c->last_line, 0, &je) : NULL;
        if (!json_is_object(obj)) {
            snprintf(err, errlen, "the step's last line of output is not a JSON object%s%s",
                     c->last_line ? ": " : " (no output)", c->last_line ? je.text : "");
            json_decref(obj);
            json_decref(out);
            return NULL;
        }
        json_object_update(out, obj);
        json_decref(obj);
    }
    return out;
}
