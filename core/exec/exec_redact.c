/* exec_redact.c - a run's secret values: the forms they may take, and their redaction from
 * strings, JSON and output streams (a secret split across reads or records is still found).
 *
 * Command output is redacted as a stream before it is cut into lines or
 * records: each stream keeps back the shortest tail that could still be the
 * beginning of a secret (never more than the longest secret of the run minus
 * one byte) until more output or the end of the stream decides it. A secret
 * printed in two halves with a pause between them, or across the 64 KiB cut
 * of a long line, or with multi-byte UTF-8 around the cut, is still one
 * match. Everything derived from the output (log records, the live stream,
 * OPSC_OUTPUT values, the JSON last line, captured text) is made from the
 * redacted stream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "exec_internal.h"
#include "template.h"
#include "util.h"

#define REDACTED "********"

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

/* A string member: its value redacted (a new string). */
static json_t *redacted_string(const ex_run *r, json_t *m)
{
    char *s = ex_redact(r, strdup(json_string_value(m)));
    json_t *v = json_string(s ? s : REDACTED);
    free(s);
    return v ? v : json_string(REDACTED);
}

/* Keys hold secrets too ({"<secret>": 1} on an OPSC_OUTPUT line): an
 * object whose keys need it is rebuilt with redacted keys. */
static void redact_keys(const ex_run *r, json_t *obj)
{
    const char *k;
    json_t *m;
    void *tmp;
    json_object_foreach_safe(obj, tmp, k, m)
    {
        char *rk = ex_redact(r, strdup(k));
        if (!rk || strcmp(rk, k) == 0) {
            free(rk);
            continue;
        }
        json_object_set(obj, rk, m);
        json_object_del(obj, k);
        free(rk);
    }
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
        redact_keys(r, v);
        json_object_foreach_safe(v, tmp, k, m)
        {
            if (json_is_string(m))
                json_object_set_new(v, k, redacted_string(r, m));
            else
                ex_redact_json(r, m);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, m)
        {
            if (json_is_string(m))
                json_array_set_new(v, i, redacted_string(r, m));
            else
                ex_redact_json(r, m);
        }
    }
}

/* ---- streams ------------------------------------------------------------------------------ */

/* The length of the secret of `r` that starts at `p` (with `left` bytes
 * available), longest first; 0 when none; -1 when `p` holds only the
 * beginning of one and more bytes may make it a match. */
static long match_at(char *const *secrets, size_t n, const char *p, size_t left, bool final)
{
    for (size_t k = 0; k < n; k++) {
        size_t len = strlen(secrets[k]);
        if (len <= left) {
            if (memcmp(p, secrets[k], len) == 0)
                return (long)len;
        } else if (!final && memcmp(p, secrets[k], left) == 0) {
            return -1;
        }
    }
    return 0;
}

void ex_redact_stream(char *const *secrets, size_t n, strbuf *held, const char *data, size_t len,
                      bool final, strbuf *out)
{
    if (n == 0) {
        sb_append(out, held->buf, held->len);
        sb_append(out, data, len);
        sb_reset(held);
        return;
    }
    bool first[256] = {false};
    for (size_t k = 0; k < n; k++)
        first[(unsigned char)secrets[k][0]] = true;
    sb_append(held, data, len); /* the kept tail and the new bytes, in a row */
    const char *w = held->buf;
    size_t total = held->len, i = 0, from = 0;
    while (i < total) {
        if (!first[(unsigned char)w[i]]) {
            i++;
            continue;
        }
        long m = match_at(secrets, n, w + i, total - i, final);
        if (m == 0) {
            i++;
            continue;
        }
        sb_append(out, w + from, i - from);
        if (m < 0) { /* maybe the start of a secret: keep it for the next bytes */
            memmove(held->buf, w + i, total - i);
            held->len = total - i;
            return;
        }
        sb_puts(out, REDACTED);
        i += (size_t)m;
        from = i;
    }
    sb_append(out, w + from, total - from);
    if (held->buf)
        secure_zero(held->buf, held->len);
    sb_reset(held);
}
