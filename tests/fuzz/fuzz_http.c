/* fuzz_http.c - libFuzzer: arbitrary bytes (pipelined, chunked, malformed) into one connection. */
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "fuzz_conn.h"

static int h_text(http_req *req)
{
    const char *q = http_req_query(req, "q");
    http_set_header(req, "X-Q", q ? q : "-");
    http_respond_text(req, 200, "text/plain", http_req_path(req), strlen(http_req_path(req)));
    return HTTP_DONE;
}

static int h_param(http_req *req)
{
    const char *h = http_req_header(req, "X-Any");
    http_respond_json(req, 200, json_pack("{s:s, s:s?}", "id", http_req_param(req, "id"), "h", h));
    return HTTP_DONE;
}

static int h_json(http_req *req)
{
    http_respond_json(req, 201, json_deep_copy(http_req_json(req)));
    return HTTP_DONE;
}

static int h_raw(http_req *req)
{
    size_t len;
    const char *body = http_req_body(req, &len);
    http_respond_text(req, 200, "application/octet-stream", body, len);
    return HTTP_DONE;
}

struct later {
    uv_timer_t t;
    http_req *req;
};

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_later(uv_timer_t *t)
{
    struct later *l = t->data;
    http_respond_opsc_error(l->req, -2, "later");
    http_req_unref(l->req);
    uv_close((uv_handle_t *)t, on_closed);
}

static int h_async(http_req *req)
{
    struct later *l = calloc(1, sizeof(*l));
    l->req = req;
    http_req_ref(req);
    uv_timer_init(fuzz_loop(), &l->t);
    l->t.data = l;
    uv_timer_start(&l->t, on_later, 0, 0);
    return HTTP_ASYNC;
}

/* The streaming body path, with the files API's name check deciding before the body. */
struct sink_sum {
    size_t bytes;
    unsigned sum;
};

static int sink_write(void *ud, const char *data, size_t len)
{
    struct sink_sum *s = ud;
    for (size_t i = 0; i < len; i++)
        s->sum += (unsigned char)data[i];
    s->bytes += len;
    return len && data[0] == '!' ? -1 : 0; /* a sink may refuse (disk full) */
}

static void sink_close(void *ud, bool whole)
{
    (void)whole;
    free(ud);
}

static int h_stream_start(http_req *req)
{
    const char *name = http_req_param(req, "name");
    const char *why = files_name_check(name, strlen(name));
    if (why) {
        http_respond_error(req, 400, "bad_name", NULL, "%s", why);
        return HTTP_DONE;
    }
    http_body_sink sink = {sink_write, sink_close, calloc(1, sizeof(struct sink_sum))};
    http_req_set_body_sink(req, &sink);
    return HTTP_DONE;
}

static int h_stream(http_req *req)
{
    struct sink_sum *s = http_req_body_sink_ud(req);
    http_respond_json(req, 201, json_pack("{s:I, s:I}", "bytes", (json_int_t)s->bytes, "sum",
                                          (json_int_t)s->sum));
    return HTTP_DONE;
}

static const http_route routes[] = {
    {"PUT", "/f/{name}", 0, h_stream, HTTP_ROUTE_STREAM_BODY, NULL, NULL, NULL, NULL, 0,
     h_stream_start},
    {"GET", "/a", 0, h_text, 0, NULL, NULL, NULL, NULL},
    {"GET", "/a/{id}", 0, h_param, 0, NULL, NULL, NULL, NULL},
    {"DELETE", "/a/{id}", 0, h_param, 0, NULL, NULL, NULL, NULL},
    {"GET", "/a/b", 0, h_text, 0, NULL, NULL, NULL, NULL},
    {"POST", "/j", 0, h_json, HTTP_ROUTE_JSON_BODY, NULL, NULL, NULL, NULL},
    {"PUT", "/r", 0, h_raw, HTTP_ROUTE_RAW_BODY, NULL, NULL, NULL, NULL},
    {"GET", "/async", 0, h_async, 0, NULL, NULL, NULL, NULL},
    {"GET", "/events", 0, fuzz_events, 0, NULL, NULL, NULL, NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_server *srv = fuzz_server(routes, sizeof(routes) / sizeof(routes[0]));
    fuzz_feed(srv, NULL, 0, data, size);
    return 0;
}
