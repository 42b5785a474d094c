/* probe.c - the connectivity test: a fresh connection, a fact probe, the facts stored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "events.h"
#include "fields.h"
#include "fleet.h"
#include "fleet_internal.h"
#include "pool.h"
#include "store.h"
#include "strbuf.h"
#include "util.h"

#define PROBE_TIMEOUT_MS 30000
#define PROBE_OUT_MAX    (64 * 1024)
#define PROBE_ERR_MAX    2048
#define FACT_MAX         256

/* One line "key=value" per fact on both families. */
static const char probe_posix[] =
    "echo \"uname=$(uname -srm)\"; echo \"hostname=$(hostname 2>/dev/null || uname -n)\"; "
    "sed 's/^/os_release./' /etc/os-release 2>/dev/null; true";
static const char probe_windows[] =
    "$ErrorActionPreference='SilentlyContinue'; $o=Get-CimInstance Win32_OperatingSystem; "
    "\"os_name=$($o.Caption)\"; \"os_version=$($o.Version)\"; "
    "\"kernel_name=Windows NT\"; \"kernel=$([Environment]::OSVersion.Version)\"; "
    "\"arch=$($env:PROCESSOR_ARCHITECTURE)\"; \"hostname=$env:COMPUTERNAME\"";

typedef struct probe {
    fleet *f;
    char id[UUID_STR_LEN];
    char name[160];
    fleet_test_cb cb;
    void *ud;
    uint64_t t0, connect_ms, t_exec;
    pool_lease *lease;
    opsc_exec *ex;
    strbuf out, err;
    char *warning;
    char *algorithms; /* JSON object text from the transport, when it says */
} probe;

static void probe_free(probe *p)
{
    sb_free(&p->out);
    sb_free(&p->err);
    free(p->warning);
    free(p->algorithms);
    free(p);
}

/* Remote text as a JSON string: valid UTF-8 kept, anything else reduced to
 * printable ASCII; at most FACT_MAX bytes. */
static json_t *text_value(const char *s, size_t n)
{
    if (n > FACT_MAX)
        n = FACT_MAX;
    json_t *v = json_stringn(s, n);
    if (v)
        return v;
    char buf[FACT_MAX + 1];
    for (size_t i = 0; i < n; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    return json_stringn(buf, n);
}

/* os-release values may be quoted ("..." with \-escapes, or '...'). */
static json_t *unquote(const char *v, size_t n)
{
    if (n < 2 || (v[0] != '"' && v[0] != '\'') || v[n - 1] != v[0])
        return text_value(v, n);
    char buf[FACT_MAX + 1];
    size_t j = 0;
    for (size_t i = 1; i + 1 < n && j < FACT_MAX; i++) {
        if (v[0] == '"' && v[i] == '\\' && i + 2 < n)
            i++;
        buf[j++] = v[i];
    }
    return text_value(buf, j);
}

static void fact(json_t *facts, const char *key, json_t *v)
{
    if (v && json_string_length(v) > 0)
        json_object_set_new(facts, key, v);
    else
        json_decref(v);
}

static void parse_uname(json_t *facts, const char *v, size_t n)
{
    static const char *const keys[] = {"kernel_name", "kernel", "arch"};
    for (int i = 0; i < 3 && n > 0; i++) {
        size_t len = i < 2 ? strcspn(v, " ") : n;
        if (len > n)
            len = n;
        fact(facts, keys[i], text_value(v, len));
        v += len;
        n -= len;
        while (n > 0 && *v == ' ')
            v++, n--;
    }
}

static void parse_line(json_t *facts, const char *line, size_t n)
{
    static const char *const os_release[][2] = {{"NAME", "os_name"},
                                                {"VERSION_ID", "os_version"},
                                                {"ID", "os_id"},
                                                {"PRETTY_NAME", "os_pretty_name"}};
    static const char *const plain[] = {"hostname",    "os_name", "os_version",
                                        "kernel_name", "kernel",  "arch"};
    const char *eq = memchr(line, '=', n);
    if (!eq)
        return;
    size_t klen = (size_t)(eq - line), vlen = n - klen - 1;
    const char *v = eq + 1;
    if (klen == 5 && memcmp(line, "uname", 5) == 0) {
        parse_uname(facts, v, vlen);
        return;
    }
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        if (strlen(plain[i]) == klen && memcmp(line, plain[i], klen) == 0)
            fact(facts, plain[i], text_value(v, vlen));
    if (klen <= 11 || memcmp(line, "os_release.", 11) != 0)
        return;
    for (size_t i = 0; i < sizeof(os_release) / sizeof(os_release[0]); i++)
        if (strlen(os_release[i][0]) == klen - 11 &&
            memcmp(line + 11, os_release[i][0], klen - 11) == 0)
            fact(facts, os_release[i][1], unquote(v, vlen));
}

static json_t *parse_facts(const char *out, size_t len)
{
    json_t *facts = json_object();
    for (size_t off = 0; facts && off < len;) {
        size_t n = 0;
        while (off + n < len && out[off + n] != '\n')
            n++;
        size_t m = n;
        if (m > 0 && out[off + m - 1] == '\r')
            m--;
        parse_line(facts, out + off, m);
        off += n + 1;
    }
    return facts;
}

/* ---- reporting ------------------------------------------------------------------------------ */

static void finish(probe *p, int status, const char *stage, const char *msg, json_t *facts)
{
    uint64_t probe_ms = p->t_exec ? clock_mono_ms() - p->t_exec : 0;
    char now[RFC3339_LEN];
    rfc3339_format(clock_now_ms(), now);
    json_t *error = status < 0 ? json_pack("{s:s, s:s, s:o}", "code", opsc_err_name(status),
                                           "stage", stage, "message", text_value(msg, strlen(msg)))
                               : json_null();
    if (facts) {
        json_object_set_new(facts, "last_seen", json_string(now));
        json_object_set_new(facts, "latency_ms", json_integer((json_int_t)probe_ms));
        json_object_set_new(facts, "connect_ms", json_integer((json_int_t)p->connect_ms));
    }
    json_t *last =
        json_pack("{s:s, s:b, s:I, s:I, s:O}", "at", now, "ok", status == 0, "connect_ms",
                  (json_int_t)p->connect_ms, "probe_ms", (json_int_t)probe_ms, "error", error);
    json_t *res = json_pack("{s:s, s:s, s:b, s:I, s:I}", "target_id", p->id, "name", p->name, "ok",
                            status == 0, "connect_ms", (json_int_t)p->connect_ms, "probe_ms",
                            (json_int_t)probe_ms);
    json_object_set(res, status == 0 ? "facts" : "error", status == 0 ? facts : error);
    if (p->warning)
        json_object_set_new(res, "warning", json_string(p->warning));
    json_t *algs = p->algorithms ? json_loads(p->algorithms, 0, NULL) : NULL;
    if (json_is_object(algs) && status == 0) {
        json_object_set(res, "algorithms", algs);
        json_object_set(last, "algorithms", algs);
    }
    json_decref(algs);
    if (status != OPSC_ENOENT) /* nothing to store on a target that does not exist */
        fleet_record_test(p->f, p->id, status == 0 ? facts : NULL, last);
    struct opsc_core *core = fleet_core(p->f);
    if (core->events)
        events_publish(core->events, "target.tested", p->id, res);
    p->cb(p->ud, res);
    json_decref(res);
    json_decref(last);
    json_decref(error);
    json_decref(facts);
    probe_free(p);
}

/* ---- the probe command ---------------------------------------------------------------------- */

static void on_output(void *ud, int stream, const char *data, size_t len)
{
    probe *p = ud;
    strbuf *b = stream == OPSC_STDOUT ? &p->out : &p->err;
    size_t max = stream == OPSC_STDOUT ? PROBE_OUT_MAX : PROBE_ERR_MAX;
    if (b->len < max)
        sb_append(b, data, len < max - b->len ? len : max - b->len);
}

static void on_done(void *ud, const opsc_exec_result *res)
{
    probe *p = ud;
    /* A command that timed out was stopped by the transport; the connection
     * itself may still be good. Anything else below 0 is the connection. */
    bool broken = res->status < 0 && res->status != OPSC_ETIMEDOUT && res->status != OPSC_ECANCELED;
    pool_release(p->lease, broken);
    p->lease = NULL;
    p->ex = NULL;
    char msg[600];
    if (res->status < 0) {
        snprintf(msg, sizeof(msg), "the fact probe failed: %s",
                 res->error ? res->error : opsc_strerror(res->status));
        finish(p, res->status, "probe", msg, NULL);
        return;
    }
    json_t *facts = parse_facts(p->out.buf ? p->out.buf : "", p->out.len);
    if (res->exit_signal || res->exit_code != 0 || !json_object_get(facts, "kernel")) {
        const char *err = p->err.buf ? p->err.buf : "";
        if (res->exit_signal)
            snprintf(msg, sizeof(msg), "the fact probe died of signal %s%s%.300s", res->exit_signal,
                     *err ? ": " : "", err);
        else
            snprintf(msg, sizeof(msg), "the fact probe exited with %d%s%.300s", res->exit_code,
                     *err ? ": " : (res->exit_code ? "" : " and printed no kernel version"), err);
        json_decref(facts);
        finish(p, OPSC_EREMOTE, "probe", msg, NULL);
        return;
    }
    finish(p, 0, "probe", "", facts);
}

static void on_lease(void *ud, int status, pool_lease *lease, const opsc_conn_info *info,
                     const char *error)
{
    probe *p = ud;
    p->connect_ms = clock_mono_ms() - p->t0;
    if (status < 0) {
        finish(p, status, "connect", error ? error : opsc_strerror(status), NULL);
        return;
    }
    p->lease = lease;
    if (info && info->warning)
        p->warning = strdup(info->warning);
    if (info && info->size >= offsetof(opsc_conn_info, algorithms) + sizeof(info->algorithms) &&
        info->algorithms)
        p->algorithms = strdup(info->algorithms);
    json_t *target = pool_lease_target(lease);
    snprintf(p->name, sizeof(p->name), "%s", fld_str(target, "name"));
    const char *os = fld_str(target, "os_family");
    opsc_exec_req req = {
        .size = sizeof(req),
        .command = os && strcmp(os, "windows") == 0 ? probe_windows : probe_posix,
        .timeout_ms = PROBE_TIMEOUT_MS,
    };
    static const opsc_exec_cb cbs = {sizeof(opsc_exec_cb), on_output, on_done, NULL};
    const opsc_transport *tr = pool_lease_transport(lease);
    p->t_exec = clock_mono_ms();
    int rc = tr->exec(pool_lease_conn(lease), &req, &cbs, p, &p->ex);
    if (rc < 0) {
        pool_release(lease, rc != OPSC_EBUSY);
        p->lease = NULL;
        char msg[200];
        snprintf(msg, sizeof(msg), "cannot start the fact probe: %s", opsc_strerror(rc));
        finish(p, rc, "probe", msg, NULL);
    }
}

struct one_read {
    const char *id;
    json_t **rec;
};

static int read_target(store_txn *txn, void *ud)
{
    struct one_read *o = ud;
    return store_get(txn, "targets", o->id, o->rec);
}

int fleet_test_target(fleet *f, const char *target_id, fleet_test_cb cb, void *ud)
{
    struct opsc_core *core = fleet_core(f);
    if (strlen(target_id) >= UUID_STR_LEN)
        return OPSC_EINVAL;
    probe *p = calloc(1, sizeof(*p));
    if (!p)
        return OPSC_ENOMEM;
    p->f = f;
    snprintf(p->id, sizeof(p->id), "%s", target_id);
    snprintf(p->name, sizeof(p->name), "%s", target_id);
    p->cb = cb;
    p->ud = ud;
    p->t0 = clock_mono_ms();
    json_t *rec = NULL;
    if (store_read(core->store, read_target, &(struct one_read){target_id, &rec}) == 0)
        snprintf(p->name, sizeof(p->name), "%s", fld_str(rec, "name"));
    json_decref(rec);
    /* A test proves that a connection can be made now: not a pooled one. */
    pool_invalidate(core->pool, target_id);
    int rc = pool_acquire(core->pool, target_id, on_lease, p, NULL);
    if (rc < 0)
        probe_free(p);
    return rc;
}
