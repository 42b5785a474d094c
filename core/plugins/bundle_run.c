/* bundle_run.c - one imperative step of a bundle, on the executor's worker: its executable started
 * in the step host's sandbox (opsc-stephost --exec), its lines read and answered, its stderr
 * logged, and its whole process group ended on cancel, timeout, a broken rule or its result. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <opsc/errors.h>
#include <opsc/host.h>

#include "bundle_internal.h"
#include "isolation_internal.h"
#include "log.h"
#include "util.h"

#define TICK_MS       50
#define STDERR_MAX    (64u << 10) /* bytes of stderr that reach the run log */
#define STDIN_BACKLOG (8u << 20)  /* answers waiting for a step that does not read */

typedef struct proc {
    const isolation *iso;
    iso_child child;
    int in, out, err; /* our ends: its stdin, stdout, stderr */
    bp_reader rd, erd;
    size_t err_seen;
    int status;
    bool exited;
} proc;

/* ---- starting it ----------------------------------------------------------------------------- */

static int spawn(iso_lib *l, const char *exe, brun *r, proc *p, char *why, size_t whylen)
{
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
        int e = -errno;
        close(in[0]);
        close(in[1]);
        return e;
    }
    const char *args[] = {"--exec", exe, "--bundle", r->dir, "--scratch", r->scratch, NULL};
    const int stdio[3] = {in[0], out[1], err[1]};
    int rc = iso_spawn(l->iso, args, stdio, -1, &p->child, why, whylen);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (rc < 0) {
        close(in[1]);
        close(out[0]);
        close(err[0]);
        return rc;
    }
    p->in = in[1];
    p->out = out[0];
    p->err = err[0];
    fcntl(p->in, F_SETFL, O_NONBLOCK);
    fcntl(p->out, F_SETFL, O_NONBLOCK);
    fcntl(p->err, F_SETFL, O_NONBLOCK);
    return 0;
}

static json_t *parsed(const char *text)
{
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_null();
}

static json_t *run_message(brun *r, iso_lib *l, const opsc_step_type *type)
{
    const opsc_host_api *api = r->api;
    json_t *target = json_object();
    static const char *const keys[] = {"name", "address", "os_family", "transport"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = api->step_target(r->ctx, keys[i]);
        json_object_set_new(target, keys[i], v ? json_string(v) : json_null());
    }
    json_t *labels = parsed(api->step_target(r->ctx, "labels"));
    json_object_set_new(target, "labels", json_is_object(labels) ? labels : json_object());
    if (!json_is_object(labels))
        json_decref(labels);
    json_t *params = parsed(api->step_params_json(r->ctx));
    return json_pack("{s:s, s:i, s:s, s:{s:s, s:s}, s:o, s:o}", "type", "run", "protocol",
                     BP_VERSION, "step", type->name, "library", "name", l->name, "version",
                     l->version, "params", json_is_object(params) ? params : json_object(),
                     "target", target);
}

/* ---- its streams ----------------------------------------------------------------------------- */

static void flush_stdin(brun *r, proc *p)
{
    if (p->in < 0) /* it closed its stdin: answers have no one to go to */
        r->woff = r->wlen = 0;
    while (p->in >= 0 && r->woff < r->wlen) {
        ssize_t n = write(p->in, r->wbuf + r->woff, r->wlen - r->woff);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) { /* it closed its stdin: it reads nothing more */
            close(p->in);
            p->in = -1;
            return;
        }
        r->woff += (size_t)n;
    }
    if (r->woff == r->wlen)
        r->woff = r->wlen = 0;
}

/* Its stderr, line by line into the run log as warnings, up to STDERR_MAX. */
static void drain_stderr(brun *r, proc *p, bool all)
{
    char buf[8192];
    ssize_t n;
    while (p->err >= 0 && (n = read(p->err, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        bool room = p->err_seen < STDERR_MAX;
        p->err_seen += (size_t)n;
        if (room && bp_feed(&p->erd, buf, (size_t)n) < 0)
            bp_feed(&p->erd, "\n", 1);
        if (room && p->err_seen >= STDERR_MAX)
            r->api->step_log(r->ctx, OPSC_LOG_WARN,
                             "stderr: (more than %u KiB: the rest is "
                             "not logged)",
                             STDERR_MAX >> 10);
    }
    if (all)
        bp_feed(&p->erd, "\n", 1); /* a last line without its newline */
    const char *line;
    size_t len;
    while (bp_next(&p->erd, &line, &len) == 1)
        if (len)
            r->api->step_log(r->ctx, OPSC_LOG_WARN, "stderr: %.*s", (int)len, line);
}

/* Lines on its stdout: false once the step is over. */
static bool read_stdout(brun *r, proc *p)
{
    char buf[65536];
    ssize_t n = read(p->out, buf, sizeof(buf));
    if (n < 0)
        return errno == EINTR || errno == EAGAIN;
    if (n == 0)
        return false;
    if (bp_feed(&p->rd, buf, (size_t)n) < 0) {
        snprintf(r->why, sizeof(r->why), "sent a line longer than %u MiB", BP_MAX_LINE >> 20);
        return false;
    }
    const char *line;
    size_t len;
    char err[200];
    while (bp_next(&p->rd, &line, &len) == 1) {
        bp_msg m;
        if (bp_decode(line, len, &m, err, sizeof(err)) < 0) {
            snprintf(r->why, sizeof(r->why), "sent a malformed line: %s", err);
            return false;
        }
        bool more = brun_serve(r, &m);
        bp_msg_clear(&m);
        if (!more)
            return false;
    }
    return true;
}

/* ---- ending it ------------------------------------------------------------------------------- */

static bool reaped(proc *p)
{
    if (!p->exited && iso_child_wait(p->iso, &p->child, false, &p->status))
        p->exited = true;
    return p->exited;
}

/* CANCEL is the step API's answer from now on; SIGTERM to the group after
 * stop_grace, SIGKILL after another. True once it is time to stop waiting. */
static bool escalate(iso_lib *l, proc *p, uint64_t *since)
{
    uint64_t now = clock_mono_ms(), grace = (uint64_t)l->iso->o.stop_grace_ms;
    if (!*since)
        *since = now;
    if (now - *since >= grace)
        iso_child_signal(l->iso, &p->child, now - *since < 2 * grace ? SIGTERM : SIGKILL);
    return now - *since >= 3 * grace;
}

static void converse(brun *r, iso_lib *l, proc *p)
{
    uint64_t cancel_since = 0;
    for (;;) {
        flush_stdin(r, p);
        bool backlog = r->wlen - r->woff > STDIN_BACKLOG;
        struct pollfd fds[3] = {{backlog ? -1 : p->out, POLLIN, 0},
                                {p->err, POLLIN, 0},
                                {r->wlen > r->woff ? p->in : -1, POLLOUT, 0}};
        int n = poll(fds, 3, TICK_MS);
        if (n < 0 && errno != EINTR)
            return;
        if (fds[1].revents)
            drain_stderr(r, p, false);
        if (fds[0].revents && !read_stdout(r, p))
            return;
        if ((cancel_since || r->api->step_cancelled(r->ctx)) && escalate(l, p, &cancel_since))
            return;
    }
}

/* Why a step that sent no result ended, from how its process did. */
static void describe_end(brun *r, proc *p, iso_lib *l)
{
    uint64_t until = clock_mono_ms() + (uint64_t)l->iso->o.stop_grace_ms;
    while (!reaped(p) && clock_mono_ms() < until)
        usleep(10000);
    if (!p->exited)
        snprintf(r->why, sizeof(r->why), "closed its output without a result");
    else if (WIFSIGNALED(p->status))
        snprintf(r->why, sizeof(r->why), "crashed (%s)", iso_signame(WTERMSIG(p->status)));
    else if (WEXITSTATUS(p->status) == 125) /* opsc-stephost: the sandbox did not start */
        snprintf(r->why, sizeof(r->why), "did not start in its sandbox (see the log above)");
    else
        snprintf(r->why, sizeof(r->why), "exited (status %d) without a result",
                 WEXITSTATUS(p->status));
}

static void finish(brun *r, proc *p)
{
    iso_child_signal(p->iso, &p->child, SIGKILL); /* whatever it left running */
    if (!p->exited)
        iso_child_wait(p->iso, &p->child, true, &p->status);
    iso_child_release(p->iso, &p->child);
    drain_stderr(r, p, true);
    if (p->in >= 0)
        close(p->in);
    close(p->out);
    close(p->err);
    bp_reader_free(&p->rd);
    bp_reader_free(&p->erd);
}

static int make_dirs(brun *r, char *why, size_t n)
{
    snprintf(r->scratch, sizeof(r->scratch), "/tmp/opsc-step-XXXXXX");
    snprintf(r->stage, sizeof(r->stage), "/tmp/opsc-stage-XXXXXX");
    bool made = mkdtemp(r->scratch) != NULL;
    if (made && mkdtemp(r->stage))
        return 0;
    int e = errno;
    if (made)
        rmdir(r->scratch);
    r->scratch[0] = r->stage[0] = '\0';
    snprintf(why, n, "cannot make the step's folders in /tmp: %s", strerror(e));
    return -e;
}

int bundle_run(iso_lib *l, const opsc_step_type *type, opsc_step_ctx *ctx)
{
    brun r = {.api = plugin_host_api(), .ctx = ctx, .dir = bundle_dir(l->bundle)};
    proc p = {.iso = l->iso, .in = -1, .out = -1, .err = -1};
    char why[400] = "";
    int rc = make_dirs(&r, why, sizeof(why));
    char bad[300] = "";
    if (rc == 0 && (rc = spawn(l, bundle_step_exec(l->bundle, type), &r, &p, bad, sizeof(bad))) < 0)
        snprintf(why, sizeof(why), "the step host %.150s did not start: %.200s",
                 l->iso->stephost, bad[0] ? bad : strerror(-rc));
    if (rc == 0) {
        brun_send(&r, run_message(&r, l, type));
        converse(&r, l, &p);
        bool cancelled = r.api->step_cancelled(ctx);
        if (!r.result && !r.why[0] && !cancelled)
            describe_end(&r, &p, l);
        finish(&r, &p);
        rc = cancelled && !r.result ? OPSC_ECANCELED : r.rc;
        if (r.why[0] && rc != OPSC_ECANCELED)
            snprintf(why, sizeof(why), "%.64s %.32s: step %.64s %.230s", l->name, l->version,
                     type->name, r.why);
    }
    if (r.scratch[0]) {
        bundle_rmtree(r.scratch);
        bundle_rmtree(r.stage);
    }
    free(r.wbuf);
    return why[0] ? r.api->step_fail(ctx, "%s", why) : rc;
}
