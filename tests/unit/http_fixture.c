/* http_fixture.c - the routes under test (sync, async, big, SSE...) and answer assertions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "http_fixture.h"

/* ---- routes under test ----------------------------------------------------------- */

static int h_hello(http_req *req)
{
    http_set_header(req, "X-Test", "yes");
    http_respond_text(req, 200, "text/plain", "hello", 5);
    return HTTP_DONE;
}

static int h_item(http_req *req)
{
    const char *q = http_req_query(req, "q");
    http_respond_json(req, 200,
                      json_pack("{s:s, s:s*, s:s}", "id", http_req_param(req, "id"), "q", q, "path",
                                http_req_path(req)));
    return HTTP_DONE;
}

static int h_stats(http_req *req)
{
    http_respond_text(req, 200, "text/plain", "stats", 5);
    return HTTP_DONE;
}

static int h_create(http_req *req)
{
    json_t *body = json_deep_copy(http_req_json(req));
    http_respond_json(req, 201, body);
    return HTTP_DONE;
}

static int h_upload(http_req *req)
{
    size_t len;
    http_req_body(req, &len);
    http_respond_json(req, 200, json_pack("{s:I}", "bytes", (json_int_t)len));
    return HTTP_DONE;
}

static int h_missing(http_req *req)
{
    http_respond_opsc_error(req, OPSC_ENOENT, "no item %s", http_req_param(req, "id"));
    return HTTP_DONE;
}

static int h_silent(http_req *req)
{
    (void)req;
    return HTTP_DONE;
}

struct later {
    uv_timer_t t;
    http_req *req;
};

static void on_later_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_later(uv_timer_t *t)
{
    struct later *l = t->data;
    http_respond_text(l->req, 200, "text/plain", "async", 5);
    http_req_unref(l->req);
    uv_close((uv_handle_t *)t, on_later_closed);
}

/* Answers 100 ms later, from a timer. */
static int h_async(http_req *req)
{
    hx *x = http_req_app(req);
    struct later *l = calloc(1, sizeof(*l));
    l->req = req;
    http_req_ref(req);
    uv_timer_init(&x->loop, &l->t);
    l->t.data = l;
    uv_timer_start(&l->t, on_later, 100, 0);
    return HTTP_ASYNC;
}

static int h_big(http_req *req)
{
    char *buf = malloc(BIG_BYTES);
    memset(buf, 'x', BIG_BYTES);
    http_respond_text(req, 200, "text/plain", buf, BIG_BYTES);
    free(buf);
    return HTTP_DONE;
}

static void on_sse_close(void *ud)
{
    struct sse_state *s = ud;
    s->sse = NULL;
    s->closed++;
}

static int h_events(http_req *req)
{
    hx *x = http_req_app(req);
    struct sse_state *s = x->user;
    s->sse = http_sse_start(req, on_sse_close, s);
    return HTTP_DONE;
}

/* ---- a streaming route: the body goes to a sink, never to req->body ---- */

struct stream_seen stream_seen;

struct sink_state {
    long long bytes, sum;
};

static int sink_write(void *ud, const char *data, size_t len)
{
    struct sink_state *s = ud;
    for (size_t i = 0; i < len; i++)
        s->sum += (unsigned char)data[i];
    s->bytes += (long long)len;
    stream_seen.bytes += (long long)len;
    return 0;
}

static void sink_close(void *ud, bool whole)
{
    if (whole)
        stream_seen.closed_whole++;
    else
        stream_seen.closed_cut++;
    free(ud);
}

static int h_stream_start(http_req *req)
{
    if (strcmp(http_req_param(req, "name"), "refuse") == 0) {
        http_respond_error(req, 400, "bad_request", NULL, "refused by body_start");
        return HTTP_DONE;
    }
    http_body_sink sink = {sink_write, sink_close, calloc(1, sizeof(struct sink_state))};
    http_req_set_body_sink(req, &sink);
    stream_seen.started++;
    return HTTP_DONE;
}

static int h_stream(http_req *req)
{
    struct sink_state *s = http_req_body_sink_ud(req);
    size_t held;
    http_req_body(req, &held);
    stream_seen.last_sum = s->sum;
    stream_seen.handled++;
    http_respond_json(
        req, 200, json_pack("{s:I, s:I}", "bytes", (json_int_t)s->bytes, "held", (json_int_t)held));
    return HTTP_DONE;
}

static const http_route routes[] = {
    {"PUT", "/stream/{name}", ROLE_PUBLIC, h_stream, HTTP_ROUTE_STREAM_BODY, "test", "Stream", NULL,
     NULL, 0, h_stream_start},
    {"GET", "/hello", ROLE_PUBLIC, h_hello, 0, "test", "Hello", NULL, NULL},
    {"GET", "/items/{id}", ROLE_VIEWER, h_item, 0, "test", "One item", NULL, NULL},
    {"DELETE", "/items/{id}", ROLE_ADMIN, h_missing, 0, "test", "Delete", NULL, NULL},
    {"POST", "/items", ROLE_OPERATOR, h_create, HTTP_ROUTE_JSON_BODY, "test", "Create", NULL, NULL},
    {"PUT", "/upload", ROLE_ADMIN, h_upload, HTTP_ROUTE_RAW_BODY, "test", "Upload", NULL, NULL},
    {"GET", "/runs/{id}", ROLE_VIEWER, h_item, 0, "test", "Run", NULL, NULL},
    {"GET", "/runs/stats", ROLE_VIEWER, h_stats, 0, "test", "Stats", NULL, NULL},
    {"GET", "/async", ROLE_PUBLIC, h_async, 0, "test", "Async", NULL, NULL},
    {"GET", "/big", ROLE_PUBLIC, h_big, 0, "test", "Big", NULL, NULL},
    {"GET", "/silent", ROLE_PUBLIC, h_silent, 0, "test", "Silent", NULL, NULL},
    {"GET", "/events", ROLE_PUBLIC, h_events, 0, "test", "Events", NULL, NULL},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

const http_opts small_limits = {
    .max_connections = 2000,
    .max_header_bytes = 2048,
    .max_body_bytes = 4096,
    .max_upload_bytes = 1 << 20,
    .idle_timeout_ms = 5000,
    .request_timeout_ms = 5000,
};

hx *fx_start(const http_opts *o)
{
    return hx_start(o ? o : &small_limits, routes, NROUTES);
}

void fx_stop(hx *x)
{
    assert_int_equal(hx_stop(x), 0);
}

/* Connections close on the loop thread a little after the client's close. */
uint64_t wait_open_connections(hx *x, uint64_t want)
{
    uint64_t n = hx_stats(x).connections_open;
    for (int i = 0; i < 200 && n != want; i++) {
        usleep(10 * 1000);
        n = hx_stats(x).connections_open;
    }
    return n;
}

void expect(hc *c, int status, const char *body)
{
    hresp r;
    assert_int_equal(hc_read(c, &r, false), 0);
    if (status >= 0)
        assert_int_equal(r.status, status);
    if (body)
        assert_string_equal(r.body, body);
    hresp_free(&r);
}

void expect_error(hc *c, int status, const char *code)
{
    hresp r;
    assert_int_equal(hc_read(c, &r, false), 0);
    assert_int_equal(r.status, status);
    assert_error_code(&r, code);
    hresp_free(&r);
}

int status_of(hx *x, const char *raw)
{
    hresp r;
    int st = hx_request(x->port, raw, &r);
    hresp_free(&r);
    return st;
}

void assert_error_code(const hresp *r, const char *code)
{
    json_error_t e;
    json_t *j = json_loads(r->body, 0, &e);
    assert_non_null(j);
    json_t *err = json_object_get(j, "error");
    assert_non_null(err);
    assert_string_equal(json_string_value(json_object_get(err, "code")), code);
    assert_non_null(json_string_value(json_object_get(err, "message")));
    assert_non_null(json_object_get(err, "details"));
    json_decref(j);
}
