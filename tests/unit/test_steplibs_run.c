/* test_steplibs_run.c - imperative steps run with the fake step host: files, HTTP, waits, reboots.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "steplib_test.h"
#include "util.h"

static opsc_step_ctx *ctx_for(const char *family, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static opsc_step_ctx *ctx_for(const char *family, const char *fmt, ...)
{
    char params[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(params, sizeof(params), fmt, ap);
    va_end(ap);
    opsc_step_ctx *ctx = fake_ctx_new(params, family);
    if (!ctx->params)
        fail_msg("bad params %s", params);
    return ctx;
}

static const char *out_str(opsc_step_ctx *ctx, const char *key)
{
    return json_string_value(json_object_get(ctx->outputs, key));
}

static bool out_true(opsc_step_ctx *ctx, const char *key)
{
    return json_is_true(json_object_get(ctx->outputs, key));
}

static void expect_failure(opsc_step_ctx *ctx, int rc, const char *want)
{
    assert_int_equal(rc, OPSC_EREMOTE);
    if (!strstr(ctx->failure, want))
        fail_msg("failure '%s' lacks '%s'", ctx->failure, want);
}

static char *slurp(const char *path)
{
    char *data = NULL;
    size_t len;
    assert_int_equal(fs_read_file(path, 1u << 20, &data, &len), 0);
    return data;
}

/* ---- files -------------------------------------------------------------------------------- */

void file_put_copies_once_and_refuses_paths_outside_files_dir(void **state)
{
    (void)state;
    char dest[256];
    snprintf(dest, sizeof(dest), "%s/out/conf.d/tokens.conf", world.dir);
    for (int round = 0; round < 2; round++) {
        opsc_step_ctx *ctx = ctx_for("linux",
                                     "{\"content\": \"server_tokens off;\\n\", "
                                     "\"dest\": \"%s\", \"mode\": \"0640\"}",
                                     dest);
        assert_int_equal(run_imperative(LIB_CORE, "file.put", ctx), 0);
        assert_true(out_true(ctx, "changed") == (round == 0));
        assert_string_equal(out_str(ctx, "sha256"),
                            "419a00ec534a021e83b3f0206dcd3434253de4f5ef5cda28e4e4247f56a5ed3f");
        fake_ctx_free(ctx);
    }
    char *text = slurp(dest);
    assert_string_equal(text, "server_tokens off;\n");
    free(text);
    struct stat st;
    assert_int_equal(stat(dest, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);

    char src[256], link[256];
    snprintf(src, sizeof(src), "%s/nested", world.files_dir);
    assert_int_equal(mkdir(src, 0700), 0);
    snprintf(src, sizeof(src), "%s/nested/app.conf", world.files_dir);
    assert_int_equal(fs_write_file(src, "x=1\n", 4, 0600), 0);
    opsc_step_ctx *ctx = ctx_for("linux", "{\"src\": \"nested/app.conf\", \"dest\": \"%s\"}", dest);
    assert_int_equal(run_imperative(LIB_CORE, "file.put", ctx), 0);
    assert_true(out_true(ctx, "changed"));
    fake_ctx_free(ctx);
    ctx = ctx_for("linux", "{\"src\": \"nested/../../opsc.conf\", \"dest\": \"%s\"}", dest);
    expect_failure(ctx, run_imperative(LIB_CORE, "file.put", ctx), "without '..'");
    fake_ctx_free(ctx);
    snprintf(link, sizeof(link), "%s/passwd", world.files_dir);
    assert_int_equal(symlink("/etc/passwd", link), 0);
    ctx = ctx_for("linux", "{\"src\": \"passwd\", \"dest\": \"%s\"}", dest);
    expect_failure(ctx, run_imperative(LIB_CORE, "file.put", ctx), "leads outside files_dir");
    fake_ctx_free(ctx);
}

void file_template_renders_run_values_and_vars(void **state)
{
    (void)state;
    char tdir[256], dest[256];
    snprintf(tdir, sizeof(tdir), "%s/templates", world.files_dir);
    assert_int_equal(mkdir(tdir, 0700), 0);
    snprintf(tdir, sizeof(tdir), "%s/templates/motd.j2", world.files_dir);
    const char *t = "Welcome to {{ target.name }} ({{ target.labels.env }})\n"
                    "{% for k, v in vars %}{{ k }}: {{ v }}\n{% endfor %}"
                    "release {{ params.release }}, it's {{ vars.owner | upper }}\n";
    assert_int_equal(fs_write_file(tdir, t, strlen(t), 0600), 0);
    snprintf(dest, sizeof(dest), "%s/motd", world.dir);
    opsc_step_ctx *ctx = ctx_for("linux",
                                 "{\"src\": \"templates/motd.j2\", \"dest\": \"%s\", "
                                 "\"vars\": {\"owner\": \"ops team\"}}",
                                 dest);
    assert_int_equal(run_imperative(LIB_CORE, "file.template", ctx), 0);
    assert_true(out_true(ctx, "changed"));
    fake_ctx_free(ctx);
    char *text = slurp(dest);
    assert_string_equal(text, "Welcome to web-1 (test)\nowner: ops team\n"
                              "release 1.4.2, it's OPS TEAM\n");
    free(text);
    assert_int_equal(fs_write_file(tdir, "{{ nope }}", 10, 0600), 0);
    ctx = ctx_for("linux", "{\"src\": \"templates/motd.j2\", \"dest\": \"%s\"}", dest);
    expect_failure(ctx, run_imperative(LIB_CORE, "file.template", ctx),
                   "templates/motd.j2: 1:4: unknown variable 'nope'");
    fake_ctx_free(ctx);
}

void file_get_keeps_the_file_with_the_run(void **state)
{
    (void)state;
    char remote[256], run_dir[256], stored[512];
    snprintf(remote, sizeof(remote), "%s/error.log", world.dir);
    snprintf(run_dir, sizeof(run_dir), "%s/runs/r1/files/web-1", world.dir);
    assert_int_equal(fs_write_file(remote, "boom\n", 5, 0600), 0);
    for (int round = 0; round < 2; round++) { /* no dest: the source's name */
        opsc_step_ctx *ctx = ctx_for("linux", "{\"src\": \"%s\"}", remote);
        ctx->run_dir = run_dir;
        assert_int_equal(run_imperative(LIB_CORE, "file.get", ctx), 0);
        assert_string_equal(out_str(ctx, "path"), "web-1/error.log");
        assert_string_equal(out_str(ctx, "name"), "error.log");
        assert_string_equal(out_str(ctx, "sha256"), /* sha256sum of "boom\n" */
                            "8d7a531d714c4bd7121bf7d639c6191ff6495a4f1132c9ae3cdd672be0168954");
        assert_true(out_true(ctx, "changed") == (round == 0));
        assert_int_equal(json_integer_value(json_object_get(ctx->outputs, "size")), 5);
        fake_ctx_free(ctx);
    }
    snprintf(stored, sizeof(stored), "%s/error.log", run_dir);
    char *text = slurp(stored);
    assert_string_equal(text, "boom\n");
    free(text);
    snprintf(stored, sizeof(stored), "%s/.error.log.sha256", run_dir); /* hashed once, kept */
    text = slurp(stored);
    assert_non_null(
        strstr(text, "8d7a531d714c4bd7121bf7d639c6191ff6495a4f1132c9ae3cdd672be0168954"));
    free(text);
    opsc_step_ctx *ctx = ctx_for("linux", "{\"src\": \"%s\", \"dest\": \"logs/x\"}", remote);
    ctx->run_dir = run_dir;
    expect_failure(ctx, run_imperative(LIB_CORE, "file.get", ctx), "must be a file name");
    fake_ctx_free(ctx);
    ctx = ctx_for("linux", "{\"src\": \"%s\", \"dest\": \"..\"}", remote);
    ctx->run_dir = run_dir;
    expect_failure(ctx, run_imperative(LIB_CORE, "file.get", ctx), "cannot name a file of the run");
    fake_ctx_free(ctx);
}

/* ---- http ---------------------------------------------------------------------------------- */

struct http_server {
    int fd, port;
    volatile bool stop;
    char last[4096];
};

static void http_answer(int c, const char *req)
{
    char resp[1024], body[256];
    const char *status = "200 OK", *type = "application/json";
    if (strncmp(req, "GET /missing", 12) == 0) {
        status = "404 Not Found";
        snprintf(body, sizeof(body), "no such thing");
        type = "text/plain";
    } else if (strncmp(req, "GET /slow", 9) == 0) {
        sleep(2);
        snprintf(body, sizeof(body), "{}");
    } else {
        const char *cl = strstr(req, "Content-Length: ");
        snprintf(body, sizeof(body), "{\"ok\":true,\"method\":\"%.*s\",\"length\":%d}",
                 (int)strcspn(req, " "), req, cl ? atoi(cl + 16) : 0);
    }
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nX-Test: yes\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     status, type, strlen(body), body);
    assert_int_equal(write(c, resp, (size_t)n), n);
}

static void *http_serve(void *p)
{
    struct http_server *s = p;
    while (!s->stop) {
        struct pollfd pfd = {s->fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        char req[4096];
        size_t n = 0;
        ssize_t r;
        /* Headers, then a body if announced (small in these tests). */
        while (n < sizeof(req) - 1 && (r = read(c, req + n, sizeof(req) - 1 - n)) > 0) {
            n += (size_t)r;
            req[n] = '\0';
            char *end = strstr(req, "\r\n\r\n");
            const char *cl = strstr(req, "Content-Length: ");
            if (end && (!cl || (size_t)(end + 4 - req) + (size_t)atoi(cl + 16) <= n))
                break;
        }
        req[n] = '\0';
        snprintf(s->last, sizeof(s->last), "%s", req);
        http_answer(c, req);
        close(c);
    }
    return NULL;
}

static void http_start(struct http_server *s, pthread_t *th)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    getsockname(s->fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(th, NULL, http_serve, s), 0);
}

void http_request_reports_status_and_json_and_fails_on_unexpected_status(void **state)
{
    (void)state;
    struct http_server srv = {0};
    pthread_t th;
    http_start(&srv, &th);
    opsc_step_ctx *ctx = ctx_for("linux",
                                 "{\"url\": \"http://127.0.0.1:%d/deploys?token=abc\", \"method\": "
                                 "\"POST\", \"json\": {\"v\": \"1.4.2\"}, \"bearer_token\": "
                                 "\"tok\", \"headers\": {\"X-Request-Id\": \"42\"}}",
                                 srv.port);
    json_object_set_new(ctx->secrets, "bearer_token", json_string("s3cret-value"));
    assert_int_equal(run_imperative(LIB_CORE, "http.request", ctx), 0);
    assert_int_equal(json_integer_value(json_object_get(ctx->outputs, "status")), 200);
    json_t *body = json_object_get(ctx->outputs, "json");
    assert_true(json_is_true(json_object_get(body, "ok")));
    assert_string_equal(json_string_value(json_object_get(body, "method")), "POST");
    assert_int_equal(json_integer_value(json_object_get(body, "length")), 13);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ctx->outputs, "headers"), "x-test")),
        "yes");
    assert_non_null(strstr(srv.last, "Authorization: Bearer s3cret-value"));
    assert_non_null(strstr(srv.last, "X-Request-Id: 42"));
    assert_non_null(strstr(srv.last, "Content-Type: application/json"));
    assert_null(strstr(ctx->log.buf, "token=abc")); /* URLs are logged without the query */
    assert_null(strstr(ctx->log.buf, "s3cret"));
    fake_ctx_free(ctx);

    ctx = ctx_for("linux", "{\"url\": \"http://127.0.0.1:%d/missing\"}", srv.port);
    expect_failure(ctx, run_imperative(LIB_CORE, "http.request", ctx),
                   "/missing answered 404, which is not an expected status");
    assert_string_equal(out_str(ctx, "body"), "no such thing");
    fake_ctx_free(ctx);
    ctx = ctx_for("linux", "{\"url\": \"http://127.0.0.1:%d/missing\", \"expect_status\": [404]}",
                  srv.port);
    assert_int_equal(run_imperative(LIB_CORE, "http.request", ctx), 0);
    fake_ctx_free(ctx);
    ctx = ctx_for("linux", "{\"url\": \"http://127.0.0.1:%d/slow\", \"timeout_s\": 0.3}", srv.port);
    expect_failure(ctx, run_imperative(LIB_CORE, "http.request", ctx), "timed out");
    fake_ctx_free(ctx);
    ctx = ctx_for("linux", "{\"url\": \"http://127.0.0.1:%d/slow\"}", srv.port);
    ctx->cancel = true;
    assert_int_equal(run_imperative(LIB_CORE, "http.request", ctx), OPSC_ECANCELED);
    fake_ctx_free(ctx);
    srv.stop = true;
    pthread_join(th, NULL);
    close(srv.fd);
}

/* ---- waits and assertions -------------------------------------------------------------------- */

void wait_port_succeeds_when_open_and_times_out_when_closed(void **state)
{
    (void)state;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    int port = ntohs(a.sin_port);
    /* No host: the target's address (127.0.0.1 in the fake host). */
    opsc_step_ctx *ctx = ctx_for("linux", "{\"port\": %d, \"timeout_s\": 5}", port);
    assert_int_equal(run_imperative(LIB_CORE, "wait.port", ctx), 0);
    assert_int_equal(json_integer_value(json_object_get(ctx->outputs, "attempts")), 1);
    fake_ctx_free(ctx);
    close(fd); /* now closed */
    ctx = ctx_for("linux",
                  "{\"host\": \"127.0.0.1\", \"port\": %d, \"timeout_s\": 0.3, "
                  "\"interval_s\": 0.05}",
                  port);
    expect_failure(ctx, run_imperative(LIB_CORE, "wait.port", ctx), "is still closed after");
    fake_ctx_free(ctx);
    ctx = ctx_for("linux", "{\"port\": %d, \"state\": \"closed\", \"timeout_s\": 2}", port);
    assert_int_equal(run_imperative(LIB_CORE, "wait.port", ctx), 0);
    fake_ctx_free(ctx);
}

static void *cancel_soon(void *p)
{
    struct timespec ts = {0, 100 * 1000000};
    nanosleep(&ts, NULL);
    ((opsc_step_ctx *)p)->cancel = true;
    return NULL;
}

void wait_duration_sleeps_and_stops_on_cancel(void **state)
{
    (void)state;
    opsc_step_ctx *ctx = ctx_for("linux", "{\"seconds\": 0.2}");
    assert_int_equal(run_imperative(LIB_CORE, "wait.duration", ctx), 0);
    assert_true(json_real_value(json_object_get(ctx->outputs, "waited_s")) >= 0.19);
    fake_ctx_free(ctx);
    ctx = ctx_for("windows", "{\"seconds\": 30}");
    pthread_t th;
    uint64_t t0 = clock_mono_ms();
    assert_int_equal(pthread_create(&th, NULL, cancel_soon, ctx), 0);
    assert_int_equal(run_imperative(LIB_CORE, "wait.duration", ctx), OPSC_ECANCELED);
    pthread_join(th, NULL);
    assert_true(clock_mono_ms() - t0 < 2000);
    fake_ctx_free(ctx);
}

void assert_output_matches_values_and_regexes(void **state)
{
    (void)state;
    opsc_step_ctx *ctx = ctx_for("linux", "{\"value\": \"nginx version: nginx/1.22.1\", "
                                          "\"regex\": \"nginx/(\\\\d+)\\\\.(\\\\d+)(x)?\", "
                                          "\"contains\": \"version\"}");
    assert_int_equal(run_imperative(LIB_CORE, "assert.output", ctx), 0);
    json_t *groups = json_object_get(ctx->outputs, "groups");
    assert_int_equal(json_array_size(groups), 3);
    assert_string_equal(json_string_value(json_array_get(groups, 0)), "1");
    assert_string_equal(json_string_value(json_array_get(groups, 1)), "22");
    assert_true(json_is_null(json_array_get(groups, 2)));
    fake_ctx_free(ctx);
    ctx = ctx_for("linux", "{\"value\": \"active\", \"equals\": \"inactive\"}");
    expect_failure(ctx, run_imperative(LIB_CORE, "assert.output", ctx),
                   "assertion failed: value 'active' does not equal 'inactive'");
    fake_ctx_free(ctx);
    ctx = ctx_for("linux", "{\"value\": \"error: disk full\", \"contains\": \"error\", \"not\": "
                           "true, \"message\": \"the log shows errors\"}");
    expect_failure(ctx, run_imperative(LIB_CORE, "assert.output", ctx), "the log shows errors");
    fake_ctx_free(ctx);
    ctx = ctx_for("linux", "{\"value\": \"ok\", \"regex\": \"^fail\", \"not\": true}");
    assert_int_equal(run_imperative(LIB_CORE, "assert.output", ctx), 0);
    assert_false(out_true(ctx, "matched"));
    fake_ctx_free(ctx);
    ctx = ctx_for("linux", "{\"value\": \"ok\", \"regex\": \"(unclosed\"}");
    assert_int_equal(run_imperative(LIB_CORE, "assert.output", ctx), OPSC_EINVAL);
    assert_non_null(strstr(ctx->failure, "regex at offset 9"));
    fake_ctx_free(ctx);
}

/* ---- reboot ---------------------------------------------------------------------------------- */

struct fake_machine {
    const char *marker_cmd, *reboot_cmd;
    int polls_down; /* answers refused after the reboot */
    bool rebooted;
    int polls;
    bool cancel_on_poll;
};

static int machine_exec(opsc_step_ctx *ctx, const char *command, opsc_step_exec_result *res)
{
    struct fake_machine *m = ctx->hook_state;
    if (strstr(command, m->reboot_cmd)) {
        m->rebooted = true;
        return 0;
    }
    if (strstr(command, m->marker_cmd)) {
        if (m->rebooted && m->polls++ < m->polls_down) {
            if (m->cancel_on_poll && m->polls == 2)
                ctx->cancel = true;
            return OPSC_ECONNREFUSED;
        }
        res->out = m->rebooted ? "boot-B\n" : "boot-A\n";
        res->out_len = strlen(res->out);
        return 0;
    }
    return 0; /* the test command */
}

void reboot_waits_for_a_new_boot_id_on_linux_and_windows(void **state)
{
    (void)state;
    static const char *const families[] = {"linux", "windows"};
    static const char *const markers[] = {"boot_id", "LastBootUpTime"};
    static const char *const reboots[] = {"systemctl reboot", "shutdown.exe /r"};
    for (int i = 0; i < 2; i++) {
        struct fake_machine m = {markers[i], reboots[i], 3, false, 0, false};
        opsc_step_ctx *ctx = ctx_for(families[i], "{\"poll_interval_s\": 0.1}");
        ctx->exec_hook = machine_exec;
        ctx->hook_state = &m;
        assert_int_equal(run_imperative(i ? LIB_WINDOWS : LIB_LINUX, "system.reboot", ctx), 0);
        assert_string_equal(out_str(ctx, "boot_id"), "boot-B");
        assert_true(out_true(ctx, "changed"));
        assert_int_equal(m.polls, 4);
        assert_int_equal(ctx->exec_calls, 7); /* marker, reboot, 4 polls, test */
        fake_ctx_free(ctx);
    }
    struct fake_machine m = {markers[0], reboots[0], 100, false, 0, true};
    opsc_step_ctx *ctx = ctx_for("linux", "{\"poll_interval_s\": 0.1}");
    ctx->exec_hook = machine_exec;
    ctx->hook_state = &m;
    assert_int_equal(run_imperative(LIB_LINUX, "system.reboot", ctx), OPSC_ECANCELED);
    fake_ctx_free(ctx);
}
