/* test_http.c - the HTTP server over real loopback sockets: protocol, limits, SSE, shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "http_fixture.h"
#include "log.h"

/* ---- protocol ------------------------------------------------------------------------ */

static void test_keep_alive_serves_many_requests_on_one_connection(void **state)
{
    (void)state;
    hx *x = fx_start(NULL);
    hc *c = hc_connect(x->port);
    for (int i = 0; i < 50; i++) {
        hc_sends(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
        hresp r;
        assert_int_equal(hc_read(c, &r, false), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "hello");
        char v[64];
        assert_true(hresp_header(&r, "X-Test", v, sizeof(v)));
        assert_false(hresp_header(&r, "Connection", v, sizeof(v)));
        assert_true(hresp_header(&r, "Date", v, sizeof(v)));
        hresp_free(&r);
    }
    assert_int_equal(hx_stats(x).connections_accepted, 1);
    hc_close(c);
    fx_stop(x);
}

static void test_http10_closes_unless_keep_alive_asked(void **state)
{
    (void)state;
    hx *x = fx_start(NULL);
    hc *c = hc_connect(x->port);
    hc_sends(c, "GET /hello HTTP/1.0\r\n\r\n");
    hresp r;
    assert_int_equal(hc_read(c, &r, false), 0);
    char v[64];
    assert_true(hresp_header(&r, "Connection", v, sizeof(v)));
    assert_string_equal(v, "close");
    hresp_free(&r);
    assert_true(hc_wait_eof(c));
    hc_close(c);

    c = hc_connect(x->port);
    hc_sends(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(hc_read(c, &r, false), 0);
    assert_true(hresp_header(&r, "Connection", v, sizeof(v)));
    assert_string_equal(v, "keep-alive");
    hresp_free(&r);
    hc_sends(c, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n");
    expect(c, 200, NULL);
    assert_true(hc_wait_eof(c));
    hc_close(c);
    fx_stop(x);
}

static void test_pipelined_answers_leave_in_request_order(void **state)
{
    (void)state;
    hx *x = fx_start(NULL);
    hc *c = hc_connect(x->port);
    hc_sends(c, "GET /async HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /items/7?q=a+b%21 HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    expect(c, -1, "async");
    expect(c, -1, "{\"id\":\"7\",\"q\":\"a b!\",\"path\":\"/items/7\"}");
    expect(c, -1, "hello");
    hc_close(c);
    fx_stop(x);
}

static void test_head_runs_get_route_without_body(void **state)
{
    (void)state;
    hx *x = fx_start(NULL);
    hc *c = hc_connect(x->port);
    hc_sends(c, "HEAD /hello HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    hresp r;
    assert_int_equal(hc_read(c, &r, true), 0);
    assert_int_equal(r.status, 200);
    char v[32];
    assert_true(hresp_header(&r, "Content-Length", v, sizeof(v)));
    assert_string_equal(v, "5");
    hresp_free(&r);
    assert_int_equal(hc_read(c, &r, false), 0); /* the next answer is intact */
    assert_string_equal(r.body, "hello");
    hresp_free(&r);
    hc_close(c);
    fx_stop(x);
}

static void test_router_404_405_options_and_params(void **state)
{
    (void)state;
    hx *x = fx_start(NULL);
    hresp r;
    assert_int_equal(hx_request(x->port, "GET /nope HTTP/1.1\r\n\r\n", &r), 404);
    assert_error_code(&r, "not_found");
    hresp_free(&r);

    assert_int_equal(hx_request(x->port, "PATCH /items/3 HTTP/1.1\r\n\r\n", &r), 405);
    assert_error_code(&r, "method_not_allowed");
    char v[128];
    assert_true(hresp_header(&r, "Allow", v, sizeof(v)));
    assert_string_equal(v, "GET, HEAD, DELETE, OPTIONS");
    hresp_free(&r);

    assert_int_equal(hx_request(x->port, "OPTIONS /items HTTP/1.1\r\n\r\n", &r), 204);
    assert_true(hresp_header(&r, "Allow", v, sizeof(v)));
    assert_string_equal(v, "POST, OPTIONS");
    hresp_free(&r);

    /* literal segment beats parameter; parameters are percent-decoded */
    assert_int_equal(hx_request(x->port, "GET /runs/stats HTTP/1.1\r\n\r\n", &r), 200);
    assert_string_equal(r.body, "stats");
    hresp_free(&r);
    assert_int_equal(hx_request(x->port, "GET /runs/a%2Fb%20c/ HTTP/1.1\r\n\r\n", &r), 200);
    assert_string_equal(r.body, "{\"id\":\"a/b c\",\"path\":\"/runs/a/b c\"}");
    hresp_free(&r);

    assert_int_equal(hx_request(x->port, "DELETE /items/9 HTTP/1.1\r\n\r\n", &r), 404);
    assert_error_code(&r, "not_found");
    assert_non_null(strstr(r.body, "no item 9"));
    hresp_free(&r);
    fx_stop(x);
}

static void test_bad_paths_are_refused_cleanly(void **state)
{
    (void)state;
    hx *x = fx_start(NULL);
    const char *bad[] = {
        "GET /items/..%2f HTTP/1.1\r\n\r\n",    "GET /items/%2e%2e HTTP/1.1\r\n\r\n",
        "GET /items/../hello HTTP/1.1\r\n\r\n", "GET /items/a%00b HTTP/1.1\r\n\r\n",
        "GET /items/%zz HTTP/1.1\r\n\r\n",      "GET /items/1?q=%0 HTTP/1.1\r\n\r\n",
        "GET /hello?x=%00 HTTP/1.1\r\n\r\n",    "GET /items/a%2f..%2fb HTTP/1.1\r\n\r\n",
        "GET /items/%2e HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hresp r;
        int st = hx_request(x->port, bad[i], &r);
        if (st != 400)
            fail_msg("%s answered %d", bad[i], st);
        assert_error_code(&r, "bad_request");
        hresp_free(&r);
    }
    assert_int_equal(status_of(x, "GET /hello HTTP/1.1\r\n\r\n"), 200);
    fx_stop(x);
}

static void test_handler_without_answer_gets_500(void **state)
{
    (void)state;
    hx *x = fx_start(NULL);
    hresp r;
    assert_int_equal(hx_request(x->port, "GET /silent HTTP/1.1\r\n\r\n", &r), 500);
    assert_error_code(&r, "internal");
    hresp_free(&r);
    fx_stop(x);
}

/* ---- bodies ----------------------------------------------------------------------------- */

static void post(hc *c, const char *ctype, const char *body, hresp *r)
{
    char head[256];
    snprintf(head, sizeof(head),
             "POST /items HTTP/1.1\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", ctype,
             strlen(body));
    hc_sends(c, head);
    hc_sends(c, body);
    assert_int_equal(hc_read(c, r, false), 0);
}

static void test_json_bodies_parsed_or_refused_with_400_415(void **state)
{
    (void)state;
    hx *x = fx_start(NULL);
    hc *c = hc_connect(x->port);
    hresp r;
    post(c, "application/json; charset=utf-8", "{\"name\": \"web\"}", &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "{\"name\":\"web\"}");
    hresp_free(&r);

    post(c, "application/json", "{\n  \"a\": 1,\n  \"b\": }", &r);
    assert_int_equal(r.status, 400);
    assert_error_code(&r, "invalid_json");
    assert_non_null(strstr(r.body, "line 3"));
    assert_non_null(strstr(r.body, "\"line\":3"));
    hresp_free(&r);

    post(c, "application/json", "[1, 2]", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "must be a JSON object"));
    hresp_free(&r);

    post(c, "application/json", "{\"a\": 1, \"a\": 2}", &r);
    assert_int_equal(r.status, 400);
    hresp_free(&r);

    post(c, "text/plain", "{\"a\": 1}", &r);
    assert_int_equal(r.status, 415);
    assert_error_code(&r, "unsupported_media_type");
    hresp_free(&r);

    /* the connection survived every refusal */
    hc_sends(c, "POST /items HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    expect(c, 400, NULL);
    hc_close(c);
    fx_stop(x);
}

static void test_chunked_body_and_its_limit(void **state)
{
    (void)state;
    hx *x = fx_start(NULL);
    hc *c = hc_connect(x->port);
    hc_sends(c, "POST /items HTTP/1.1\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
                "5\r\n{\"a\":\r\n3\r\n 42\r\n1\r\n}\r\n0\r\n\r\n");
    hresp r;
    assert_int_equal(hc_read(c, &r, false), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "{\"a\":42}");
    hresp_free(&r);

    hc_sends(c, "POST /items HTTP/1.1\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n");
    char chunk[1100];
    memset(chunk, ' ', sizeof(chunk));
    memcpy(chunk, "400\r\n", 5);
    memcpy(chunk + 5 + 1024, "\r\n", 2);
    for (int i = 0; i < 5; i++)
        hc_send(c, chunk, 5 + 1024 + 2);
    expect_error(c, 413, "payload_too_large");
    assert_true(hc_wait_eof(c));
    hc_close(c);
    fx_stop(x);
}

static void test_oversize_body_refused_413_before_it_is_sent(void **state)
{
    (void)state;
    hx *x = fx_start(NULL);
    hc *c = hc_connect(x->port);
    hc_sends(c, "POST /items HTTP/1.1\r\nContent-Type: application/json\r\n"
                "Content-Length: 100000000\r\n\r\n");
    hresp r;
    assert_int_equal(hc_read(c, &r, false), 0);
    assert_int_equal(r.status, 413);
    char v[32];
    assert_true(hresp_header(&r, "Connection", v, sizeof(v)));
    assert_string_equal(v, "close");
    hresp_free(&r);
    assert_true(hc_wait_eof(c));
    hc_close(c);

    /* raw-body routes take up to max_upload_bytes */
    c = hc_connect(x->port);
    size_t n = 200000;
    char head[128];
    snprintf(head, sizeof(head), "PUT /upload HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", n);
    hc_sends(c, head);
    char *body = calloc(1, n);
    hc_send(c, body, n);
    free(body);
    assert_int_equal(hc_read(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"bytes\":200000}");
    hresp_free(&r);
    hc_close(c);
    fx_stop(x);
}

/* Poll until `counter` reaches `want` (2 s at most): sinks close on the loop thread. */
static int wait_count(atomic_int *counter, int want)
{
    for (int i = 0; i < 200 && *counter < want; i++)
        usleep(10 * 1000);
    return *counter;
}

static void test_stream_body_goes_to_the_sink_and_is_closed_once(void **state)
{
    (void)state;
    memset(&stream_seen, 0, sizeof(stream_seen));
    hx *x = fx_start(NULL);
    /* in full, bigger than max_body_bytes, none of it held by the request */
    hc *c = hc_connect(x->port);
    size_t n = 300000;
    char head[160];
    snprintf(head, sizeof(head), "PUT /stream/a HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", n);
    hc_sends(c, head);
    char *body = malloc(n);
    memset(body, 7, n);
    hc_send(c, body, n);
    expect(c, 200, "{\"bytes\":300000,\"held\":0}");
    assert_int_equal(stream_seen.last_sum, 7LL * (long long)n);
    assert_int_equal(wait_count(&stream_seen.closed_whole, 1), 1);
    /* chunked, on the same connection */
    hc_sends(c, "PUT /stream/b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    expect(c, 200, "{\"bytes\":5,\"held\":0}");
    assert_int_equal(stream_seen.last_sum, 'a' + 'b' + 'c' + 'd' + 'e');
    hc_close(c);
    assert_int_equal(wait_count(&stream_seen.closed_whole, 2), 2);

    /* refused by body_start: answered before the body is sent; no sink */
    c = hc_connect(x->port);
    hc_sends(c, "PUT /stream/refuse HTTP/1.1\r\nContent-Length: 500000\r\n\r\n");
    expect_error(c, 400, "bad_request");
    hc_close(c);

    /* dropped mid-body: closed as cut, the handler never runs */
    c = hc_connect(x->port);
    hc_sends(c, "PUT /stream/c HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
    hc_send(c, body, 1000);
    for (int i = 0; i < 200 && stream_seen.bytes < (long long)n + 5 + 1000; i++)
        usleep(10 * 1000);
    hc_close(c);
    assert_int_equal(wait_count(&stream_seen.closed_cut, 1), 1);

    /* over max_upload_bytes while streaming (chunked: no length to refuse early) */
    c = hc_connect(x->port);
    hc_sends(c, "PUT /stream/d HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[32];
    snprintf(chunk, sizeof(chunk), "%zx\r\n", n);
    for (int i = 0; i < 4; i++) { /* 1.2 MB > 1 MiB */
        hc_sends(c, chunk);
        hc_send(c, body, n);
        hc_sends(c, "\r\n");
    }
    expect_error(c, 413, "payload_too_large");
    hc_close(c);
    assert_int_equal(wait_count(&stream_seen.closed_cut, 2), 2);
    free(body);
    fx_stop(x);
    assert_int_equal(stream_seen.started, 4);
    assert_int_equal(stream_seen.handled, 2);
    assert_int_equal(stream_seen.closed_whole, 2);
    assert_int_equal(stream_seen.closed_cut, 2);
}

static void test_expect_100_continue(void **state)
{
    (void)state;
    hx *x = fx_start(NULL);
    hc *c = hc_connect(x->port);
    hc_sends(c, "POST /items HTTP/1.1\r\nContent-Type: application/json\r\n"
                "Content-Length: 8\r\nExpect: 100-continue\r\n\r\n");
    expect(c, 100, NULL);
    hc_sends(c, "{\"a\":1}\n");
    expect(c, 201, NULL);

    /* refused before the body: final status, no 100 */
    hc_sends(c, "POST /items HTTP/1.1\r\nContent-Type: text/plain\r\n"
                "Content-Length: 8\r\nExpect: 100-continue\r\n\r\n");
    expect(c, 415, NULL);
    hc_close(c);

    c = hc_connect(x->port);
    hc_sends(c, "POST /items HTTP/1.1\r\nContent-Length: 2\r\nExpect: magic\r\n\r\n");
    expect(c, 417, NULL);
    hc_close(c);
    fx_stop(x);
}

/* ---- malformed input and limits --------------------------------------------------------- */

static void test_malformed_requests_answered_400_and_closed(void **state)
{
    (void)state;
    hx *x = fx_start(NULL);
    const char *bad[] = {
        "GARBAGE\r\n\r\n",
        "GET /hello HTTP/1.1\r\nBad Header Line\r\n\r\n",
        "GET /hello HTTP/1.1\r\nX: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "GET /hello HTTP/9.9\r\n\r\n",
        "GET /hello HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hc *c = hc_connect(x->port);
        hc_sends(c, bad[i]);
        hresp r;
        assert_int_equal(hc_read(c, &r, false), 0);
        if (r.status != 400 && r.status != 505)
            fail_msg("request %zu answered %d", i, r.status);
        assert_non_null(strstr(r.body, "\"error\""));
        hresp_free(&r);
        assert_true(hc_wait_eof(c));
        hc_close(c);
    }
    fx_stop(x);
}

static void test_oversize_headers_431(void **state)
{
    (void)state;
    hx *x = fx_start(NULL);
    hc *c = hc_connect(x->port);
    hc_sends(c, "GET /hello HTTP/1.1\r\nX-Big: ");
    char fill[3000];
    memset(fill, 'a', sizeof(fill));
    hc_send(c, fill, sizeof(fill));
    hc_sends(c, "\r\n\r\n");
    expect_error(c, 431, "headers_too_large");
    assert_true(hc_wait_eof(c));
    hc_close(c);
    fx_stop(x);
}

static void test_connections_over_limit_get_503(void **state)
{
    (void)state;
    http_opts o = small_limits;
    o.max_connections = 3;
    hx *x = fx_start(&o);
    hc *keep[3];
    for (int i = 0; i < 3; i++) {
        keep[i] = hc_connect(x->port);
        hc_sends(keep[i], "GET /hello HTTP/1.1\r\n\r\n");
        hresp r;
        assert_int_equal(hc_read(keep[i], &r, false), 0);
        hresp_free(&r);
    }
    hc *c = hc_connect(x->port);
    hc_sends(c, "GET /hello HTTP/1.1\r\n\r\n");
    expect_error(c, 503, "unavailable");
    assert_true(hc_wait_eof(c));
    hc_close(c);
    assert_int_equal(hx_stats(x).connections_refused, 1);
    hc_close(keep[0]);
    usleep(100 * 1000);
    assert_int_equal(status_of(x, "GET /hello HTTP/1.1\r\n\r\n"), 200);
    for (int i = 1; i < 3; i++)
        hc_close(keep[i]);
    fx_stop(x);
}

static void test_idle_keep_alive_connection_closed(void **state)
{
    (void)state;
    http_opts o = small_limits;
    o.idle_timeout_ms = 200;
    hx *x = fx_start(&o);
    hc *c = hc_connect(x->port);
    hc_sends(c, "GET /hello HTTP/1.1\r\n\r\n");
    hresp r;
    assert_int_equal(hc_read(c, &r, false), 0);
    hresp_free(&r);
    uint64_t t0 = uv_hrtime();
    assert_true(hc_wait_eof(c));
    double waited = (double)(uv_hrtime() - t0) / 1e6;
    assert_true(waited >= 150 && waited < 2000);
    hc_close(c);
    fx_stop(x);
}

static void test_slow_request_gets_408_while_others_are_served(void **state)
{
    (void)state;
    http_opts o = small_limits;
    o.request_timeout_ms = 400;
    hx *x = fx_start(&o);
    hc *slow = hc_connect(x->port);
    const char *req = "GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: 1\r\n\r\n";
    uint64_t t0 = uv_hrtime();
    bool answered = false;
    for (size_t i = 0; req[i] && !answered; i++) {
        hc_send(slow, req + i, 1);
        usleep(50 * 1000);
        assert_int_equal(status_of(x, "GET /hello HTTP/1.1\r\n\r\n"), 200);
        answered = (double)(uv_hrtime() - t0) / 1e6 > 600;
    }
    expect_error(slow, 408, "request_timeout");
    assert_true(hc_wait_eof(slow));
    hc_close(slow);
    fx_stop(x);
}

static void test_client_closing_mid_response_costs_only_its_connection(void **state)
{
    (void)state;
    hx *x = fx_start(NULL);
    for (int i = 0; i < 3; i++) {
        hc *c = hc_connect(x->port);
        hc_sends(c, "GET /big HTTP/1.1\r\n\r\n");
        assert_true(hc_read_until(c, "xxxx"));
        hc_close(c);
    }
    usleep(100 * 1000);
    assert_int_equal(status_of(x, "GET /hello HTTP/1.1\r\n\r\n"), 200);
    assert_int_equal(wait_open_connections(x, 0), 0);
    fx_stop(x);
}

static void test_thousand_idle_connections_while_serving(void **state)
{
    (void)state;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < 2200)
        skip();
    if (rl.rlim_cur < 2200) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    hx *x = fx_start(NULL);
    enum { N = 1000 };
    hc **idle = calloc(N, sizeof(*idle));
    for (int i = 0; i < N; i++)
        idle[i] = hc_connect(x->port);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(status_of(x, "GET /hello HTTP/1.1\r\n\r\n"), 200);
    }
    /* The kernel completes a connect before the loop accepts it: on a loaded machine the
     * requests above can be served while part of the thousand still waits in the backlog. */
    for (int waited_ms = 0; hx_stats(x).connections_open < N && waited_ms < 30000; waited_ms += 10)
        usleep(10 * 1000);
    assert_true(hx_stats(x).connections_open >= N);
    hx_close_async(x); /* idle connections are closed by a graceful close */
    for (int i = 0; i < N; i++) {
        assert_true(hc_wait_eof(idle[i]));
        hc_close(idle[i]);
    }
    free(idle);
    fx_stop(x);
}

/* ---- SSE ------------------------------------------------------------------------------------ */

static void sse_send_cmd(hx *x, void *arg)
{
    int64_t *rc = arg;
    struct sse_state *s = x->user;
    rc[0] = http_sse_comment(s->sse, "hello");
    rc[1] = http_sse_send(s->sse, "1", "log", "line one\nline two\r\nline three");
    rc[2] = http_sse_send(s->sse, NULL, NULL, "");
    rc[3] = http_sse_send(s->sse, "bad\nid", NULL, "x");
}

static void sse_end_cmd(hx *x, void *arg)
{
    (void)arg;
    struct sse_state *s = x->user;
    http_sse_end(s->sse);
    s->sse = NULL;
}

static void sse_flood_cmd(hx *x, void *arg)
{
    (void)arg;
    struct sse_state *s = x->user;
    char *data = malloc(8192);
    memset(data, 'e', 8191);
    data[8191] = '\0';
    for (int i = 0; i < 2000 && s->sse; i++) {
        int64_t pending = http_sse_send(s->sse, NULL, NULL, data);
        if (pending > s->max_pending)
            s->max_pending = pending;
    }
    free(data);
}

static hc *open_stream(hx *x, struct sse_state *s)
{
    x->user = s;
    hc *c = hc_connect(x->port);
    hc_sends(c, "GET /events HTTP/1.1\r\n\r\n");
    assert_true(hc_read_until(c, "\r\n\r\n"));
    assert_non_null(strstr(c->buf, "Content-Type: text/event-stream\r\n"));
    assert_non_null(strstr(c->buf, "Cache-Control: no-store\r\n"));
    assert_non_null(strstr(c->buf, "X-Content-Type-Options: nosniff\r\n"));
    const char *conn = strstr(c->buf, "Connection: keep-alive\r\n");
    assert_non_null(conn);
    assert_null(strstr(conn + 1, "Connection:")); /* said once */
    assert_null(strstr(c->buf, "Content-Length"));
    return c;
}

static void test_sse_frames_events_and_ends(void **state)
{
    (void)state;
    struct sse_state s = {0};
    hx *x = fx_start(NULL);
    hc *c = open_stream(x, &s);
    assert_int_equal(hx_stats(x).sse_open, 1);
    int64_t rc[4];
    hx_on_loop(x, sse_send_cmd, rc);
    assert_int_equal(rc[0], 0);
    assert_true(rc[1] >= 0 && rc[2] >= 0);
    assert_int_equal(rc[3], OPSC_EINVAL);
    const char *want = ": hello\n"
                       "id: 1\nevent: log\ndata: line one\ndata: line two\ndata: line three\n\n"
                       "data: \n\n";
    assert_true(hc_read_until(c, "data: \n\n"));
    assert_non_null(strstr(c->buf, want));
    hx_on_loop(x, sse_end_cmd, NULL);
    assert_true(hc_wait_eof(c));
    assert_int_equal(s.closed, 0); /* http_sse_end() does not call on_close */
    hc_close(c);
    fx_stop(x);
}

static void test_sse_connection_parses_nothing_after_the_stream(void **state)
{
    (void)state;
    struct sse_state s = {0};
    hx *x = fx_start(NULL);
    x->user = &s;
    hc *c = hc_connect(x->port);
    hc_sends(c, "GET /events HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    assert_true(hc_read_until(c, "\r\n\r\n"));
    hc_sends(c, "GET /hello HTTP/1.1\r\n\r\n");
    hx_on_loop(x, sse_end_cmd, NULL);
    assert_false(hc_read_until(c, "hello")); /* read to the end: no other answer */
    assert_non_null(memmem(c->buf, c->len, "no-store", 8));
    hc_close(c);
    fx_stop(x);
}

static void test_sse_back_pressure_and_on_close_when_client_leaves(void **state)
{
    (void)state;
    struct sse_state s = {0};
    hx *x = fx_start(NULL);
    hc *c = open_stream(x, &s);
    hx_on_loop(x, sse_flood_cmd, NULL); /* the client reads nothing */
    assert_true(s.max_pending > 1 << 20);
    hc_close(c);
    for (int i = 0; i < 100 && !s.closed; i++)
        usleep(10 * 1000);
    assert_int_equal(s.closed, 1);
    fx_stop(x);
}

/* ---- shutdown ----------------------------------------------------------------------------------
 */

static void test_graceful_close_finishes_inflight_and_closes_the_rest(void **state)
{
    (void)state;
    struct sse_state s = {0};
    hx *x = fx_start(NULL);
    hc *stream = open_stream(x, &s);
    hc *idle = hc_connect(x->port);
    hc *busy = hc_connect(x->port);
    hc *partial = hc_connect(x->port);
    hc_sends(busy, "GET /async HTTP/1.1\r\n\r\n");
    hc_sends(partial, "GET /hello HTTP/1.1\r\nHost: ");
    usleep(30 * 1000);
    hx_close_async(x);
    expect_error(partial, 503, "unavailable");
    assert_true(hc_wait_eof(partial));
    hc_close(partial);
    assert_true(hc_wait_eof(idle));
    assert_true(hc_wait_eof(stream));
    hresp r;
    assert_int_equal(hc_read(busy, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "async");
    char v[32];
    assert_true(hresp_header(&r, "Connection", v, sizeof(v)));
    assert_string_equal(v, "close");
    hresp_free(&r);
    assert_true(hc_wait_eof(busy));
    hc_close(idle);
    hc_close(stream);
    hc_close(busy);
    for (int i = 0; i < 100 && !x->closed; i++)
        usleep(10 * 1000);
    assert_true(x->closed);
    assert_int_equal(s.closed, 1);
    fx_stop(x);
}

static void abort_cmd(hx *x, void *arg)
{
    (void)arg;
    http_server_abort(x->srv);
}

static void test_abort_drops_inflight_requests(void **state)
{
    (void)state;
    hx *x = fx_start(NULL);
    hc *busy = hc_connect(x->port);
    hc_sends(busy, "GET /async HTTP/1.1\r\n\r\n");
    usleep(30 * 1000);
    hx_close_async(x);
    hx_on_loop(x, abort_cmd, NULL);
    assert_true(hc_wait_eof(busy));
    hc_close(busy);
    usleep(200 * 1000); /* the async answer arrives with its client gone */
    fx_stop(x);
}

/* ---- hooks and the route table -----------------------------------------------------------------
 */

struct hooks {
    int auth_calls, done_calls, last_status;
    const http_route *last_route;
};

static int auth_hook(http_req *req, const http_route *route, void *ud)
{
    struct hooks *h = ud;
    h->auth_calls++;
    if (route->role == ROLE_PUBLIC)
        return 0;
    const char *a = http_req_header(req, "Authorization");
    if (a && strcmp(a, "Bearer good") == 0)
        return 0;
    http_respond_error(req, 401, "unauthorized", NULL, "a bearer token is required");
    return -1;
}

static void done_hook(http_req *req, const http_route *route, int status, void *ud)
{
    (void)req;
    struct hooks *h = ud;
    h->done_calls++;
    h->last_status = status;
    h->last_route = route;
}

static void hooks_cmd(hx *x, void *arg)
{
    http_server_set_auth(x->srv, auth_hook, arg);
    http_server_set_done(x->srv, done_hook, arg);
}

static void test_auth_hook_refuses_before_the_body_and_done_hook_sees_all(void **state)
{
    (void)state;
    struct hooks h = {0};
    hx *x = fx_start(NULL);
    hx_on_loop(x, hooks_cmd, &h);
    hresp r;
    assert_int_equal(status_of(x, "GET /hello HTTP/1.1\r\n\r\n"), 200);
    assert_int_equal(hx_request(x->port, "GET /items/1 HTTP/1.1\r\n\r\n", &r), 401);
    assert_error_code(&r, "unauthorized");
    hresp_free(&r);
    assert_int_equal(
        hx_request(x->port, "GET /items/1 HTTP/1.1\r\nAuthorization: Bearer good\r\n\r\n", &r),
        200);
    hresp_free(&r);
    /* refused upload: answered without waiting for the 500 kB body */
    hc *c = hc_connect(x->port);
    hc_sends(c, "PUT /upload HTTP/1.1\r\nContent-Length: 500000\r\n\r\n");
    expect(c, 401, NULL);
    hc_close(c);
    assert_int_equal(status_of(x, "GET /nowhere HTTP/1.1\r\n\r\n"), 404);
    usleep(50 * 1000);
    assert_int_equal(h.auth_calls, 4);
    assert_int_equal(h.done_calls, 5);
    assert_int_equal(h.last_status, 404);
    assert_null(h.last_route);
    fx_stop(x);
}

static int h_noop(http_req *req)
{
    (void)req;
    return HTTP_DONE;
}

static void test_route_table_is_checked_when_added(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    http_server *srv;
    assert_int_equal(http_server_new(&srv, &loop, NULL), 0);
    const http_route bad[][1] = {
        {{"GET", "no-slash", 0, h_noop, 0, NULL, NULL, NULL, NULL}},
        {{"GET", "/a/{id", 0, h_noop, 0, NULL, NULL, NULL, NULL}},
        {{"GET", "/a/x{id}", 0, h_noop, 0, NULL, NULL, NULL, NULL}},
        {{"GET", "/a//b", 0, h_noop, 0, NULL, NULL, NULL, NULL}},
        {{"BREW", "/a", 0, h_noop, 0, NULL, NULL, NULL, NULL}},
        {{"GET", "/a", 0, NULL, 0, NULL, NULL, NULL, NULL}},
        {{"GET", "/a", 0, h_noop, 0, NULL, NULL, "{not json", NULL}},
        {{"GET", "/a", 9, h_noop, 0, NULL, NULL, NULL, NULL}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(http_add_routes(srv, bad[i], 1), OPSC_EINVAL);
    const http_route ok[] = {
        {"GET", "/a/{id}", 0, h_noop, 0, NULL, NULL, NULL, "{\"type\": \"object\"}"},
        {"GET", "/", 0, h_noop, 0, NULL, NULL, NULL, NULL},
    };
    assert_int_equal(http_add_routes(srv, ok, 2), 0);
    const http_route dup[] = {{"GET", "/a/{name}", 0, h_noop, 0, NULL, NULL, NULL, NULL}};
    assert_int_equal(http_add_routes(srv, dup, 1), OPSC_EEXIST);
    http_server_close(srv, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    http_server_free(srv);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A machine without IPv6 cannot bind [::1]: not a failure of the server. */
static void listen_on(const char *addr, int want_rc, const char *want_err)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    http_server *srv;
    http_opts o = {.listen = addr};
    assert_int_equal(http_server_new(&srv, &loop, &o), 0);
    char err[256] = "";
    int rc = http_server_listen(srv, err, sizeof(err));
    bool no_ipv6 = addr[0] == '[' && (rc == UV_EADDRNOTAVAIL || rc == UV_EAFNOSUPPORT);
    if (!no_ipv6) {
        assert_int_equal(rc, want_rc);
        if (want_err)
            assert_non_null(strstr(err, want_err));
        else
            assert_true(http_server_port(srv) > 0);
    }
    http_server_close(srv, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    http_server_free(srv);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_listen_address_forms(void **state)
{
    (void)state;
    listen_on("127.0.0.1:0", 0, NULL);
    listen_on("localhost:0", 0, NULL);
    listen_on("[::1]:0", 0, NULL);
    listen_on("example.org:80", OPSC_EINVAL, "cannot listen on example.org:80");
    listen_on("127.0.0.1", OPSC_EINVAL, "expected IPv4:port");
    listen_on("127.0.0.1:99999", OPSC_EINVAL, "expected IPv4:port");
}

int main(void)
{
    /* Quiet unless asked: some tests provoke logged errors on purpose. */
    log_init(getenv("HTTP_TEST_LOG") ? OPSC_LOG_DEBUG : OPSC_LOG_ERROR - 1, LOG_FORMAT_TEXT, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_alive_serves_many_requests_on_one_connection),
        cmocka_unit_test(test_http10_closes_unless_keep_alive_asked),
        cmocka_unit_test(test_pipelined_answers_leave_in_request_order),
        cmocka_unit_test(test_head_runs_get_route_without_body),
        cmocka_unit_test(test_router_404_405_options_and_params),
        cmocka_unit_test(test_bad_paths_are_refused_cleanly),
        cmocka_unit_test(test_handler_without_answer_gets_500),
        cmocka_unit_test(test_json_bodies_parsed_or_refused_with_400_415),
        cmocka_unit_test(test_chunked_body_and_its_limit),
        cmocka_unit_test(test_oversize_body_refused_413_before_it_is_sent),
        cmocka_unit_test(test_stream_body_goes_to_the_sink_and_is_closed_once),
        cmocka_unit_test(test_expect_100_continue),
        cmocka_unit_test(test_malformed_requests_answered_400_and_closed),
        cmocka_unit_test(test_oversize_headers_431),
        cmocka_unit_test(test_connections_over_limit_get_503),
        cmocka_unit_test(test_idle_keep_alive_connection_closed),
        cmocka_unit_test(test_slow_request_gets_408_while_others_are_served),
        cmocka_unit_test(test_client_closing_mid_response_costs_only_its_connection),
        cmocka_unit_test(test_thousand_idle_connections_while_serving),
        cmocka_unit_test(test_sse_frames_events_and_ends),
        cmocka_unit_test(test_sse_connection_parses_nothing_after_the_stream),
        cmocka_unit_test(test_sse_back_pressure_and_on_close_when_client_leaves),
        cmocka_unit_test(test_graceful_close_finishes_inflight_and_closes_the_rest),
        cmocka_unit_test(test_abort_drops_inflight_requests),
        cmocka_unit_test(test_auth_hook_refuses_before_the_body_and_done_hook_sees_all),
        cmocka_unit_test(test_route_table_is_checked_when_added),
        cmocka_unit_test(test_listen_address_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
