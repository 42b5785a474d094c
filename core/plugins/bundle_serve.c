/* bundle_serve.c - answering a bundle step's requests with the daemon's own step API, and moving
 * its files through a folder of the daemon's so that a link the step plants never points the
 * daemon at a file of its own. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <opsc/errors.h>
#include <opsc/host.h>

#include "bundle_internal.h"
#include "log.h"
#include "shproto.h"

#define CHUNK          (48u << 10)        /* bytes of output per "output" line */
#define BUNDLE_FD_PATH "/proc/self/fd/3/" /* where the step sees its bundle (stephost) */

void brun_send(brun *r, json_t *msg)
{
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    size_t n = text ? strlen(text) : 0;
    if (text && r->wlen + n + 1 > r->wcap) {
        size_t cap = r->wcap ? r->wcap : 4096;
        while (cap < r->wlen + n + 1)
            cap *= 2;
        char *grown = realloc(r->wbuf, cap);
        if (grown) {
            r->wbuf = grown;
            r->wcap = cap;
        }
    }
    if (text && r->wlen + n + 1 <= r->wcap) {
        memcpy(r->wbuf + r->wlen, text, n);
        r->wbuf[r->wlen + n] = '\n';
        r->wlen += n + 1;
    }
    free(text);
}

static const char *member(const bp_msg *m, const char *key)
{
    return json_string_value(json_object_get(m->json, key));
}

static void ok(brun *r, const bp_msg *m, json_t *value)
{
    brun_send(r, json_pack("{s:s, s:I, s:b, s:o}", "type", "response", "id", (json_int_t)m->id,
                           "ok", 1, "value", value ? value : json_null()));
}

static void refuse(brun *r, const bp_msg *m, int rc, const char *msg)
{
    brun_send(r, json_pack("{s:s, s:I, s:b, s:{s:s, s:s}}", "type", "response", "id",
                           (json_int_t)m->id, "ok", 0, "error", "code", opsc_err_name(rc),
                           "message", msg ? msg : opsc_strerror(rc)));
}

static void answer_rc(brun *r, const bp_msg *m, int rc, const char *msg)
{
    if (rc < 0)
        refuse(r, m, rc, msg);
    else
        ok(r, m, NULL);
}

/* ---- requests -------------------------------------------------------------------------------- */

static bool serve_log(brun *r, const bp_msg *m)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    const char *level = member(m, "level"), *text = member(m, "message");
    int lv = OPSC_LOG_INFO;
    for (int i = 0; i < 4; i++)
        if (strcmp(levels[i], level) == 0)
            lv = i;
    r->logged += strlen(text);
    if (r->logged > BUNDLE_LOG_MAX) {
        snprintf(r->why, sizeof(r->why), "flooded the run log (more than %u MiB of log lines)",
                 BUNDLE_LOG_MAX >> 20);
        return false;
    }
    r->api->step_log(r->ctx, lv, "%s", text);
    ok(r, m, NULL);
    return true;
}

static void send_output(brun *r, const bp_msg *m, const char *stream, const char *s, size_t n)
{
    for (size_t off = 0; s && off < n; off += CHUNK) {
        size_t len = n - off < CHUNK ? n - off : CHUNK;
        brun_send(r, json_pack("{s:s, s:I, s:s, s:o}", "type", "output", "id", (json_int_t)m->id,
                               "stream", stream, "data", shp_string(s + off, len)));
    }
}

static void serve_exec(brun *r, const bp_msg *m)
{
    json_t *j = m->json;
    const char *in = member(m, "stdin");
    opsc_step_exec_opts o = {
        .size = sizeof(o),
        .timeout_ms = (uint32_t)json_integer_value(json_object_get(j, "timeout_ms")),
        .capture_limit = (size_t)json_integer_value(json_object_get(j, "capture_limit")),
        .stdin_data = in,
        .stdin_len = in ? strlen(in) : 0,
        .log_output = json_is_true(json_object_get(j, "log_output")),
        .sensitive = json_is_true(json_object_get(j, "sensitive")),
    };
    opsc_step_exec_result res = {.size = sizeof(res)};
    int rc = r->api->step_exec(r->ctx, member(m, "command"), &o, &res);
    if (rc < 0) {
        refuse(r, m, rc, NULL);
        return;
    }
    send_output(r, m, "stdout", res.out, res.out_len);
    send_output(r, m, "stderr", res.err, res.err_len);
    ok(r, m,
       json_pack("{s:i, s:o, s:b}", "exit_code", res.exit_code, "exit_signal",
                 res.exit_signal ? json_string(res.exit_signal) : json_null(), "truncated",
                 res.truncated));
}

/* ---- files ----------------------------------------------------------------------------------- */

/* `rel` beneath the folder `root`, never through a link. */
static int open_beneath(const char *root, const char *rel, int flags, mode_t mode)
{
    int dirfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return -errno;
    struct open_how how = {
        .flags = (uint64_t)flags | O_CLOEXEC | O_NOFOLLOW,
        .mode = (flags & O_CREAT) ? mode : 0,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    int fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
    int e = errno;
    close(dirfd);
    return fd < 0 ? -e : fd;
}

static int copy_fd(int from, int to)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(from, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : 0;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(to, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return -errno;
            off += w;
        }
    }
}

/* A step's local path: relative to its working folder, or its bundle's as the step sees it. */
static int open_local(brun *r, const char *path, bool write, const char **why)
{
    const char *root = r->scratch, *rel = path;
    if (strncmp(path, BUNDLE_FD_PATH, strlen(BUNDLE_FD_PATH)) == 0 && !write) {
        root = r->dir;
        rel = path + strlen(BUNDLE_FD_PATH);
    } else if (strncmp(path, r->scratch, strlen(r->scratch)) == 0 &&
               path[strlen(r->scratch)] == '/') {
        rel = path + strlen(r->scratch) + 1;
    }
    if (rel[0] == '/') {
        *why = write ? "the local path must be in the step's working folder"
                     : "the local path must be in the step's working folder or its bundle";
        return OPSC_EACCES;
    }
    int fd = open_beneath(root, rel, write ? O_WRONLY | O_CREAT | O_TRUNC : O_RDONLY, 0644);
    if (fd == -EXDEV || fd == -ELOOP)
        *why = "the local path leaves its folder or goes through a link";
    struct stat st; /* the step's file, even when the daemon (root) wrote it; a daemon that is
                       not root shares its folder with the step by group (sandbox_exec.c) */
    if (fd >= 0 && write && geteuid() == 0 && stat(r->scratch, &st) == 0 &&
        fchown(fd, st.st_uid, st.st_gid) < 0)
        log_warn("steplibs", "cannot give %s to the step's user: %s", path, strerror(errno));
    return fd == -EXDEV || fd == -ELOOP ? OPSC_EACCES : fd;
}

static void staged_path(brun *r, const char *what, char *out, size_t n)
{
    static _Atomic unsigned counter;
    snprintf(out, n, "%s/%s-%u", r->stage, what, ++counter);
}

static void serve_put(brun *r, const bp_msg *m)
{
    const char *why = NULL;
    char staged[128];
    staged_path(r, "put", staged, sizeof(staged));
    int from = open_local(r, member(m, "local"), false, &why);
    int to = from >= 0 ? open(staged, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
    int rc = from < 0 ? from : to < 0 ? -errno : copy_fd(from, to);
    if (from >= 0)
        close(from);
    if (to >= 0)
        close(to);
    json_t *mode = json_object_get(m->json, "mode");
    if (rc == 0)
        rc = r->api->step_put_file(r->ctx, staged, member(m, "remote"),
                                   mode ? (int)json_integer_value(mode) : 0644);
    unlink(staged);
    answer_rc(r, m, rc, why);
}

static void serve_get(brun *r, const bp_msg *m)
{
    const char *why = NULL;
    char staged[128];
    staged_path(r, "get", staged, sizeof(staged));
    int rc = r->api->step_get_file(r->ctx, member(m, "remote"), staged);
    int from = rc == 0 ? open(staged, O_RDONLY | O_CLOEXEC) : -1;
    if (rc == 0 && from < 0)
        rc = -errno;
    int to = rc == 0 ? open_local(r, member(m, "local"), true, &why) : -1;
    if (rc == 0 && to < 0)
        rc = to;
    if (rc == 0)
        rc = copy_fd(from, to);
    if (from >= 0)
        close(from);
    if (to >= 0)
        close(to);
    unlink(staged);
    answer_rc(r, m, rc, why);
}

/* ---- the rest -------------------------------------------------------------------------------- */

static void serve_output(brun *r, const bp_msg *m)
{
    char *text = json_dumps(json_object_get(m->json, "value"), JSON_ENCODE_ANY | JSON_COMPACT);
    int rc = text ? r->api->step_set_output(r->ctx, member(m, "key"), text) : OPSC_ENOMEM;
    free(text);
    char why[160];
    snprintf(why, sizeof(why), "output key '%.64s' must be 1 to 64 of [a-z0-9_]", member(m, "key"));
    answer_rc(r, m, rc, rc == OPSC_EINVAL ? why : NULL);
}

static void serve_secret(brun *r, const bp_msg *m)
{
    const char *v = r->api->step_secret(r->ctx, member(m, "name"));
    if (v)
        ok(r, m, json_string(v));
    else
        refuse(r, m, OPSC_ENOENT, "no such secret for this step (a parameter of type secret)");
}

static void serve_facts(brun *r, const bp_msg *m)
{
    const char *text = r->api->step_target(r->ctx, "facts");
    json_t *facts = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    ok(r, m, json_is_object(facts) ? facts : (json_decref(facts), json_object()));
}

/* Outputs the result carries, then its verdict. */
static void take_result(brun *r, const bp_msg *m)
{
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(m->json, "outputs"), key, v)
    {
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        int rc = text ? r->api->step_set_output(r->ctx, key, text) : OPSC_ENOMEM;
        free(text);
        if (rc < 0 && !r->why[0])
            snprintf(r->why, sizeof(r->why), "result: output key '%.64s' %s", key,
                     rc == OPSC_EINVAL ? "must be 1 to 64 of [a-z0-9_]" : opsc_strerror(rc));
    }
    r->result = true;
    if (r->why[0])
        return;
    if (json_is_true(json_object_get(m->json, "ok"))) {
        r->rc = 0;
        return;
    }
    const char *msg = member(m, "message");
    r->rc = r->api->step_fail(r->ctx, "%s", msg && *msg ? msg : "the step reported a failure");
    if (r->rc >= 0)
        r->rc = OPSC_EREMOTE;
}

bool brun_serve(brun *r, const bp_msg *m)
{
    switch (m->kind) {
    case BP_LOG:
        return serve_log(r, m);
    case BP_EXEC:
        serve_exec(r, m);
        break;
    case BP_PUT_FILE:
        serve_put(r, m);
        break;
    case BP_GET_FILE:
        serve_get(r, m);
        break;
    case BP_SET_OUTPUT:
        serve_output(r, m);
        break;
    case BP_SECRET:
        serve_secret(r, m);
        break;
    case BP_CANCELLED:
        ok(r, m, json_boolean(r->api->step_cancelled(r->ctx)));
        break;
    case BP_TARGET_FACTS:
        serve_facts(r, m);
        break;
    case BP_RESULT:
        take_result(r, m);
        return false;
    }
    return true;
}
