/* exec_output.c - a command's output: redacted as a stream (exec_redact.c), then lines to the run
 * log and outputs by the step's rule. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "exec_internal.h"
#include "steptype.h"
#include "template.h"
#include "util.h"

#define OUTPUT_PREFIX "OPSC_OUTPUT "
#define PART_MAX      (64u << 10) /* a line longer than this is cut into pieces */
#define PART_STALE_MS 1000        /* a prompt without newline reaches the log after this */

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

/* The last bytes of `b` that are not a whole UTF-8 character: a long line
 * is cut before them, so the cut never splits a character. */
static size_t partial_utf8(const char *b, size_t len)
{
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char ch = (unsigned char)b[len - back];
        if ((ch & 0xc0) == 0x80)
            continue; /* a continuation byte: look further back */
        size_t need = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

/* Redacted bytes of one stream, cut into lines. */
static void lines_feed(ex_cmd *c, int idx, const char *data, size_t len)
{
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
        if (!nl && l->part.len < PART_MAX) { /* cut at PART_MAX, on a character boundary */
            take = PART_MAX - l->part.len;
            size_t keep = partial_utf8(data, take);
            take = take > keep ? take - keep : take;
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

static void redact_feed(ex_cmd *c, int idx, const char *data, size_t len, bool final)
{
    const ex_run *r = c->t ? c->t->run : NULL;
    if ((!r || r->nredact == 0) && c->held[idx].len == 0) {
        lines_feed(c, idx, data, len); /* no secret in this run: nothing to look for */
        return;
    }
    strbuf out = STRBUF_INIT;
    ex_redact_stream(r ? r->redact : NULL, r ? r->nredact : 0, &c->held[idx], data, len, final,
                     &out);
    if (out.len)
        lines_feed(c, idx, out.buf, out.len);
    if (out.buf)
        secure_zero(out.buf, out.len);
    sb_free(&out);
}

void ex_cmd_output(ex_cmd *c, int stream, const char *data, size_t len)
{
    redact_feed(c, stream == OPSC_STDERR ? 1 : 0, data, len, false);
}

void ex_cmd_end_streams(ex_cmd *c)
{
    for (int idx = 0; idx < 2; idx++)
        if (c->held[idx].len)
            redact_feed(c, idx, "", 0, true);
    ex_cmd_flush_lines(c, true);
}

void ex_cmd_flush_lines(ex_cmd *c, bool all)
{
    for (int idx = 0; idx < 2; idx++) {
        ex_lines *l = &c->lines[idx];
        if (l->part.len == 0 || (!all && clock_mono_ms() - l->part_ms < PART_STALE_MS))
            continue;
        if (!all && c->held[idx].len) /* the line goes on with what may be a secret: */
            continue;                 /* it is not stale, it waits for the next bytes */
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

/* A step type that describes its outputs must keep to it, declarative or imperative alike:
 * later steps and notifications read them as described, and a library that promises an
 * integer and sets text is a bug its author should see at once, not three steps later. */
int ex_outputs_check(const ex_target *t, json_t *outputs, char *err, size_t errlen)
{
    const job_step *s = &t->run->plan->steps[t->step];
    jschema_err je;
    size_t ne = 0;
    if (!outputs || !s->st->outputs ||
        jschema_validate(s->st->outputs, outputs, 0, "", &je, 1, &ne) >= 0 || ne == 0)
        return 0;
    snprintf(err, errlen, "the step's outputs do not match its type's outputs_schema: outputs%s %s",
             je.path, je.msg);
    return OPSC_ESCHEMA;
}
