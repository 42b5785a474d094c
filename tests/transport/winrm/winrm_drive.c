/* winrm_drive.c - loads transport-winrm.so through the SDK and runs a JSON scenario on its own
 * loop.
 *
 *   winrm_drive PLUGIN.so SCENARIO.json   -> one JSON report on stdout
 *
 * Scenario: {"config": {key: "value"}, "targets": [{"address", "port", "options": {},
 * "cred": {"auth", "username", "password", "domain", "certificate"}, "copies": N}],
 * "steps": [{"op": "exec"|"put"|"get"|"validate", ...}]}. Every target connects, runs the steps
 * in order, and closes; targets run at the same time. Used by the pytest suite and the bench.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include <opsc/plugin.h>

#include "harness.h"

static th_plugin plug;
static const opsc_transport *tp;
static void *tp_state;

/* ---- one target running the steps ------------------------------------------- */

typedef struct tgt {
    int index;
    json_t *spec;
    json_t *steps;
    size_t step;
    opsc_conn *conn;
    json_t *report; /* {"connect": {...}, "steps": [...]} */
    json_t *cur;    /* the step's report */
    uint64_t t0;
    opsc_exec *ex;
    opsc_xfer *xf;
    uv_timer_t timer;
    size_t out_keep;
    json_int_t out_len, err_len;
    char *out, *errb;
    size_t out_cap_used, err_used;
    size_t pause_after;
    bool paused;
    json_int_t pause_ms;
    const char *stdin_data;
    size_t stdin_len, stdin_off;
    json_int_t stdin_chunk;
    bool closing;
    opsc_target target; /* borrowed by the plugin until the connect callback */
    opsc_credential cred;
    char *opts;
} tgt;

static int targets_left;
static void next_step(tgt *t);

static double ms_since(uint64_t t0)
{
    return (double)(uv_hrtime() - t0) / 1e6;
}

static void on_closed(void *ud)
{
    tgt *t = ud;
    t->conn = NULL;
    uv_close((uv_handle_t *)&t->timer, NULL);
    targets_left--;
}

static void finish_target(tgt *t)
{
    if (t->conn)
        tp->close(t->conn, on_closed, t);
    else {
        uv_close((uv_handle_t *)&t->timer, NULL);
        targets_left--;
    }
}

#define KEEP (1u << 20)

static void on_output(void *ud, int stream, const char *data, size_t len)
{
    tgt *t = ud;
    char **buf = stream == OPSC_STDOUT ? &t->out : &t->errb;
    size_t *used = stream == OPSC_STDOUT ? &t->out_cap_used : &t->err_used;
    if (stream == OPSC_STDOUT)
        t->out_len += (json_int_t)len;
    else
        t->err_len += (json_int_t)len;
    size_t take = *used + len > KEEP ? KEEP - *used : len;
    if (take) {
        memcpy(*buf + *used, data, take);
        *used += take;
    }
    if (t->pause_after && !t->paused && (size_t)t->out_len >= t->pause_after) {
        t->paused = true;
        tp->exec_pause(t->ex);
        json_object_set_new(t->cur, "paused_at", json_integer(t->out_len));
    }
}

static void feed_stdin(tgt *t)
{
    while (t->stdin_off < t->stdin_len) {
        size_t n = t->stdin_len - t->stdin_off;
        if (t->stdin_chunk && n > (size_t)t->stdin_chunk)
            n = (size_t)t->stdin_chunk;
        if (tp->exec_write(t->ex, t->stdin_data + t->stdin_off, n))
            return;
        t->stdin_off += n;
    }
    tp->exec_write(t->ex, NULL, 0);
}

static void on_done(void *ud, const opsc_exec_result *res)
{
    tgt *t = ud;
    uv_timer_stop(&t->timer);
    t->ex = NULL;
    json_t *r = t->cur;
    json_object_set_new(r, "status", json_integer(res->status));
    json_object_set_new(r, "exit_code", json_integer(res->exit_code));
    json_object_set_new(r, "error", res->error ? json_string(res->error) : json_null());
    json_object_set_new(r, "stdout_len", json_integer(t->out_len));
    json_object_set_new(r, "stderr_len", json_integer(t->err_len));
    json_object_set_new(r, "stdout", json_stringn_nocheck(t->out, t->out_cap_used));
    json_object_set_new(r, "stderr", json_stringn_nocheck(t->errb, t->err_used));
    json_object_set_new(r, "ms", json_real(ms_since(t->t0)));
    json_object_set_new(r, "usable", json_boolean(t->conn && tp->conn_usable(t->conn)));
    next_step(t);
}

static void on_resume_timer(uv_timer_t *tm)
{
    tgt *t = tm->data;
    if (t->ex && t->paused) {
        t->paused = false;
        t->pause_after = 0;
        tp->exec_resume(t->ex);
    }
}

static void on_cancel_timer(uv_timer_t *tm)
{
    tgt *t = tm->data;
    if (t->ex)
        tp->exec_cancel(t->ex);
    if (t->xf)
        tp->xfer_cancel(t->xf);
}

static void start_exec(tgt *t, json_t *s)
{
    const char *cmd = json_string_value(json_object_get(s, "command"));
    json_t *jin = json_object_get(s, "stdin");
    json_t *jenv = json_object_get(s, "env");
    const char *envv[32] = {0};
    size_t ne = 0;
    for (size_t i = 0; jenv && i < json_array_size(jenv) && ne < 31; i++)
        envv[ne++] = json_string_value(json_array_get(jenv, i));
    opsc_exec_req req = {
        .size = sizeof req,
        .command = cmd,
        .env = ne ? envv : NULL,
        .cwd = json_string_value(json_object_get(s, "cwd")),
        .stdin_open = jin != NULL,
        .timeout_ms = (uint32_t)json_integer_value(json_object_get(s, "timeout_ms")),
    };
    t->out_len = t->err_len = 0;
    t->out_cap_used = t->err_used = 0;
    t->pause_after = (size_t)json_integer_value(json_object_get(s, "pause_after"));
    t->pause_ms = json_integer_value(json_object_get(s, "pause_ms"));
    t->paused = false;
    opsc_exec_cb cb = {.size = sizeof cb, .on_output = on_output, .on_done = on_done};
    int rc = tp->exec(t->conn, &req, &cb, t, &t->ex);
    if (rc) {
        json_object_set_new(t->cur, "status", json_integer(rc));
        json_object_set_new(t->cur, "error", json_string("exec refused"));
        next_step(t);
        return;
    }
    if (jin) {
        t->stdin_data = json_string_value(jin);
        t->stdin_len = json_string_length(jin);
        t->stdin_off = 0;
        t->stdin_chunk = json_integer_value(json_object_get(s, "stdin_chunk"));
        feed_stdin(t);
    }
    json_int_t cancel = json_integer_value(json_object_get(s, "cancel_after_ms"));
    if (cancel)
        uv_timer_start(&t->timer, on_cancel_timer, (uint64_t)cancel, 0);
}

static void on_xfer(void *ud, const opsc_xfer_result *res)
{
    tgt *t = ud;
    uv_timer_stop(&t->timer);
    t->xf = NULL;
    json_t *r = t->cur;
    json_object_set_new(r, "status", json_integer(res->status));
    json_object_set_new(r, "bytes", json_integer((json_int_t)res->bytes));
    json_object_set_new(r, "sha256", res->sha256 ? json_string(res->sha256) : json_null());
    json_object_set_new(r, "error", res->error ? json_string(res->error) : json_null());
    json_object_set_new(r, "ms", json_real(ms_since(t->t0)));
    json_object_set_new(r, "usable", json_boolean(t->conn && tp->conn_usable(t->conn)));
    next_step(t);
}

static void start_xfer(tgt *t, json_t *s, bool put)
{
    opsc_xfer_req req = {
        .size = sizeof req,
        .local_path = json_string_value(json_object_get(s, "local")),
        .remote_path = json_string_value(json_object_get(s, "remote")),
        .mode =
            json_object_get(s, "mode") ? (int)json_integer_value(json_object_get(s, "mode")) : -1,
        .timeout_ms = (uint32_t)json_integer_value(json_object_get(s, "timeout_ms")),
    };
    int rc = (put ? tp->put_file : tp->get_file)(t->conn, &req, on_xfer, t, &t->xf);
    if (rc) {
        json_object_set_new(t->cur, "status", json_integer(rc));
        next_step(t);
        return;
    }
    json_int_t cancel = json_integer_value(json_object_get(s, "cancel_after_ms"));
    if (cancel)
        uv_timer_start(&t->timer, on_cancel_timer, (uint64_t)cancel, 0);
}

static void next_step(tgt *t)
{
    if (t->step >= json_array_size(t->steps)) {
        finish_target(t);
        return;
    }
    json_t *s = json_array_get(t->steps, t->step++);
    const char *op = json_string_value(json_object_get(s, "op"));
    t->cur = json_object();
    json_object_set_new(t->cur, "op", json_string(op));
    json_array_append_new(json_object_get(t->report, "steps"), t->cur);
    t->t0 = uv_hrtime();
    if (!strcmp(op, "exec"))
        start_exec(t, s);
    else if (!strcmp(op, "put") || !strcmp(op, "get"))
        start_xfer(t, s, !strcmp(op, "put"));
    else
        next_step(t);
}

static void on_connect(void *ud, int status, opsc_conn *conn, const opsc_conn_info *info,
                       const char *error)
{
    tgt *t = ud;
    (void)info;
    free(t->opts);
    t->opts = NULL;
    t->cred = (opsc_credential){0};
    json_t *c = json_object();
    json_object_set_new(c, "status", json_integer(status));
    json_object_set_new(c, "error", error ? json_string(error) : json_null());
    json_object_set_new(c, "ms", json_real(ms_since(t->t0)));
    json_object_set_new(t->report, "connect", c);
    t->conn = conn;
    if (status) {
        finish_target(t);
        return;
    }
    next_step(t);
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void start_target(tgt *t)
{
    json_t *cred = json_object_get(t->spec, "cred");
    t->opts = json_dumps(json_object_get(t->spec, "options") ? json_object_get(t->spec, "options")
                                                             : json_object(),
                         JSON_COMPACT);
    t->target = (opsc_target){
        .size = sizeof(opsc_target),
        .id = "00000000-0000-7000-8000-000000000000",
        .name = "winrm-test",
        .address = jstr(t->spec, "address"),
        .port = (int)json_integer_value(json_object_get(t->spec, "port")),
        .os_family = "windows",
        .host_key_policy = "strict",
        .known_host_keys = "",
        .connect_timeout_ms = 30000,
        .options_json = t->opts,
    };
    t->cred = (opsc_credential){
        .size = sizeof(opsc_credential),
        .type = "winrm",
        .username = jstr(cred, "username"),
        .password = jstr(cred, "password"),
        .domain = jstr(cred, "domain"),
        .auth = jstr(cred, "auth"),
        .certificate = jstr(cred, "certificate"),
    };
    uv_timer_init(th_loop(), &t->timer);
    t->timer.data = t;
    t->t0 = uv_hrtime();
    int rc = tp->connect(tp_state, &t->target, &t->cred, on_connect, t);
    if (rc) {
        free(t->opts);
        json_t *jc = json_object();
        json_object_set_new(jc, "status", json_integer(rc));
        json_object_set_new(t->report, "connect", jc);
        uv_close((uv_handle_t *)&t->timer, NULL);
        targets_left--;
    }
}

static void on_pause_timer(uv_timer_t *tm);

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PLUGIN.so SCENARIO.json\n", argv[0]);
        return 2;
    }
    json_error_t jerr;
    json_t *scn = json_load_file(argv[2], 0, &jerr);
    if (!scn) {
        fprintf(stderr, "scenario: %s\n", jerr.text);
        return 2;
    }
    /* The scenario's "config" object becomes the plugin's [section] lines. */
    char config[2048] = "";
    const char *key;
    json_t *value;
    json_object_foreach(json_object_get(scn, "config"), key, value)
    {
        size_t used = strlen(config);
        snprintf(config + used, sizeof config - used, "%s = %s\n", key, json_string_value(value));
    }
    if (th_load(&plug, argv[1], config)) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], th_last_log());
        return 2;
    }
    tp = plug.t;
    tp_state = plug.state;
    char err[512] = "";
    json_t *out = json_object();
    json_t *val = json_object_get(scn, "validate");
    if (val) {
        int rc = tp->validate_options(tp_state, json_string_value(val), err, sizeof err);
        json_object_set_new(out, "validate", json_pack("{s:i,s:s}", "status", rc, "error", err));
    }
    json_t *targets = json_object_get(scn, "targets");
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(targets); i++) {
        json_t *copies = json_object_get(json_array_get(targets, i), "copies");
        n += copies ? (size_t)json_integer_value(copies) : 1;
    }
    tgt *ts = calloc(n ? n : 1, sizeof *ts);
    json_t *reports = json_array();
    size_t k = 0;
    for (size_t i = 0; i < json_array_size(targets); i++) {
        json_t *spec = json_array_get(targets, i);
        json_t *copies = json_object_get(spec, "copies");
        size_t c = copies ? (size_t)json_integer_value(copies) : 1;
        for (size_t j = 0; j < c; j++, k++) {
            ts[k].index = (int)k;
            ts[k].spec = spec;
            ts[k].steps = json_object_get(spec, "steps") ? json_object_get(spec, "steps")
                                                         : json_object_get(scn, "steps");
            ts[k].report = json_pack("{s:[]}", "steps");
            ts[k].out = malloc(KEEP);
            ts[k].errb = malloc(KEEP);
            json_array_append(reports, ts[k].report);
        }
    }
    uint64_t t0 = uv_hrtime();
    targets_left = (int)n;
    for (size_t i = 0; i < n; i++)
        start_target(&ts[i]);
    while (targets_left > 0) {
        /* Pauses: resume paused commands after their pause_ms. */
        for (size_t i = 0; i < n; i++)
            if (ts[i].paused && ts[i].ex && !uv_is_active((uv_handle_t *)&ts[i].timer))
                uv_timer_start(&ts[i].timer, on_pause_timer, (uint64_t)ts[i].pause_ms, 0);
        uv_run(th_loop(), UV_RUN_ONCE);
    }
    json_object_set_new(out, "wall_ms", json_real(ms_since(t0)));
    json_object_set_new(out, "targets", reports);
    th_unload(&plug);
    json_object_set_new(out, "loop_clean", json_boolean(th_loop_drain()));
    char *text = json_dumps(out, JSON_COMPACT);
    puts(text);
    free(text);
    for (size_t i = 0; i < n; i++) {
        free(ts[i].out);
        free(ts[i].errb);
        json_decref(ts[i].report);
    }
    free(ts);
    json_decref(out);
    json_decref(scn);
    return 0;
}

static void on_pause_timer(uv_timer_t *tm)
{
    on_resume_timer(tm);
}
