/* tp_shell.c - command wrapper, kill command, marker parsing and hex for the transports. */
#include <stdio.h>
#include <string.h>

#include "tp_shell.h"

void tp_buf_add(tp_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = b->api->realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void tp_buf_adds(tp_buf *b, const char *s)
{
    tp_buf_add(b, s, strlen(s));
}

/* 'it'\''s' : the only character that needs care inside single quotes is
 * the quote itself. */
void tp_buf_quote(tp_buf *b, const char *s)
{
    tp_buf_add(b, "'", 1);
    for (const char *q; (q = strchr(s, '\'')) != NULL; s = q + 1) {
        tp_buf_add(b, s, (size_t)(q - s));
        tp_buf_add(b, "'\\''", 4);
    }
    tp_buf_adds(b, s);
    tp_buf_add(b, "'", 1);
}

char *tp_buf_take(tp_buf *b)
{
    if (b->failed || !b->p) {
        tp_buf_free(b);
        return NULL;
    }
    char *p = b->p;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void tp_buf_free(tp_buf *b)
{
    b->api->free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

bool tp_env_valid(const char *entry)
{
    const char *eq = entry ? strchr(entry, '=') : NULL;
    if (!eq || eq == entry)
        return false;
    for (const char *c = entry; c < eq; c++) {
        bool alpha = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || *c == '_';
        if (!alpha && !(c > entry && *c >= '0' && *c <= '9'))
            return false;
    }
    return true;
}

/* The part that runs as the final user: report the process group (read from
 * /proc because under sudo the shell is not a group leader), then cd, env,
 * and the command through eval so that a syntax error in it happens after
 * the marker, like any other failure. */
static void add_inner(tp_buf *b, const char *command, const char *const *env, const char *cwd)
{
    /* The leader's start time and the boot id let a later daemon kill this
     * group and never a recycled one; a function keeps the command's own
     * positional parameters untouched. */
    tp_buf_adds(b, "{ read -r _ _ _ _ g _ </proc/$$/stat; } 2>/dev/null || g=$$; "
                   "__opsc_st() { s=${20}; }; { read -r l </proc/$g/stat && __opsc_st ${l##*) } "
                   "&& read -r k </proc/sys/kernel/random/boot_id; } 2>/dev/null; "
                   "unset -f __opsc_st; "
                   "printf '\\036OPSC %s %s %s\\n' \"$g\" \"$s\" \"$k\" >&2; "
                   "unset l s k; ");
    if (cwd && *cwd) {
        tp_buf_adds(b, "cd -- ");
        tp_buf_quote(b, cwd);
        tp_buf_adds(b, " || exit 126; ");
    }
    for (size_t i = 0; env && env[i]; i++) {
        tp_buf_adds(b, "export ");
        tp_buf_quote(b, env[i]);
        tp_buf_adds(b, "; ");
    }
    tp_buf_adds(b, "eval ");
    tp_buf_quote(b, command);
}

/* sudo -S reads the password from stdin only when it needs one. When it does
 * not (NOPASSWD, cached), the line we sent first would reach the command:
 * ask sudo -n first and swallow the line ourselves in that case. */
static void add_sudo(tp_buf *b, const char *user, bool password, const char *script)
{
    if (password) {
        tp_buf_adds(b, "if sudo -n -u ");
        tp_buf_quote(b, user);
        tp_buf_adds(b, " true 2>/dev/null; then IFS= read -r _; fi; exec sudo -S -p '' -u ");
    } else {
        tp_buf_adds(b, "exec sudo -n -u ");
    }
    tp_buf_quote(b, user);
    tp_buf_adds(b, " -- /bin/sh -c ");
    tp_buf_quote(b, script);
}

char *tp_wrap_command(const opsc_host_api *api, const char *command, const char *const *env,
                      const char *cwd, const char *become_user, bool become_password, char *err,
                      size_t errlen)
{
    for (size_t i = 0; env && env[i]; i++) {
        if (!tp_env_valid(env[i])) {
            snprintf(err, errlen, "environment entry %zu is not NAME=value", i);
            return NULL;
        }
    }
    tp_buf inner = {.api = api};
    add_inner(&inner, command, env, cwd);
    if (!become_user || !*become_user)
        return tp_buf_take(&inner);
    char *script = tp_buf_take(&inner);
    if (!script)
        return NULL;
    tp_buf outer = {.api = api};
    add_sudo(&outer, become_user, become_password, script);
    api->free(script);
    return tp_buf_take(&outer);
}

char *tp_kill_command(const opsc_host_api *api, long pgid, unsigned grace_ms,
                      const char *become_user, bool become_password)
{
    char script[512];
    snprintf(script, sizeof(script),
             "kill -TERM -%ld 2>/dev/null; i=0; while [ $i -lt %u ] && kill -0 -%ld 2>/dev/null; "
             "do sleep 0.1; i=$((i+1)); done; kill -KILL -%ld 2>/dev/null; exit 0",
             pgid, grace_ms / 100, pgid, pgid);
    tp_buf b = {.api = api};
    if (become_user && *become_user) {
        if (become_password)
            tp_buf_adds(&b, "exec sudo -S -p '' -u ");
        else
            tp_buf_adds(&b, "exec sudo -n -u ");
        tp_buf_quote(&b, become_user);
        tp_buf_adds(&b, " -- /bin/sh -c ");
        tp_buf_quote(&b, script);
    } else {
        tp_buf_adds(&b, script);
    }
    return tp_buf_take(&b);
}

static bool ident_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-' || c == ' ';
}

/* A marker line at `p` (inside held[0..n)): returns its length including the
 * newline, 0 when it is not one, -1 when it may be one but is incomplete. */
static long marker_line(const char *p, size_t n, long *pgid, char ident[64])
{
    size_t plen = strlen(TP_MARKER_PREFIX);
    if (n < plen)
        return memcmp(p, TP_MARKER_PREFIX, n) == 0 ? -1 : 0;
    if (memcmp(p, TP_MARKER_PREFIX, plen) != 0)
        return 0;
    long v = 0;
    size_t i = plen;
    for (; i < n && p[i] >= '0' && p[i] <= '9' && i < plen + 12; i++)
        v = v * 10 + (p[i] - '0');
    if (i == plen)
        return i < n ? 0 : -1;
    size_t from = i;
    for (; i < n && ident_char(p[i]) && i - from < 63; i++)
        ;
    size_t to = i;
    if (i < n && p[i] == '\r')
        i++;
    if (i >= n)
        return -1;
    if (p[i] != '\n')
        return 0;
    *pgid = v;
    size_t k = from < to && p[from] == ' ' ? from + 1 : from;
    memcpy(ident, p + k, to - k);
    ident[to - k] = '\0';
    return (long)(i + 1);
}

static void marker_scan(tp_marker *m, tp_emit_fn emit, void *ud)
{
    for (size_t at = 0; at < m->nheld; at++) {
        if (at > 0 && m->held[at - 1] != '\n')
            continue;
        long pg = 0;
        char ident[64] = "";
        long len = marker_line(m->held + at, m->nheld - at, &pg, ident);
        if (len < 0)
            return; /* wait for the rest of the line */
        if (len == 0)
            continue;
        if (memmem(m->held, at, "Sorry, try again.", 17))
            m->sudo_rejected = true;
        if (at)
            emit(ud, m->held, at);
        m->seen = true;
        m->pgid = pg;
        memcpy(m->ident, ident, sizeof(m->ident));
        size_t rest = m->nheld - at - (size_t)len;
        if (rest)
            emit(ud, m->held + at + len, rest);
        m->nheld = 0;
        return;
    }
    if (memmem(m->held, m->nheld, "Sorry, try again.", 17))
        m->sudo_rejected = true;
}

void tp_marker_feed(tp_marker *m, const char *data, size_t len, tp_emit_fn emit, void *ud)
{
    while (len > 0 && !m->seen && !m->gave_up) {
        size_t room = sizeof(m->held) - m->nheld;
        size_t n = len < room ? len : room;
        memcpy(m->held + m->nheld, data, n);
        m->nheld += n;
        data += n;
        len -= n;
        marker_scan(m, emit, ud);
        if (!m->seen && m->nheld == sizeof(m->held)) {
            m->gave_up = true;
            emit(ud, m->held, m->nheld);
            m->nheld = 0;
        }
    }
    if (len > 0)
        emit(ud, data, len);
}

void tp_marker_flush(tp_marker *m, tp_emit_fn emit, void *ud)
{
    if (m->nheld) {
        emit(ud, m->held, m->nheld);
        m->nheld = 0;
    }
}

void tp_hex(const unsigned char *bin, size_t n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[bin[i] >> 4];
        hex[2 * i + 1] = digits[bin[i] & 15];
    }
    hex[2 * n] = '\0';
}
