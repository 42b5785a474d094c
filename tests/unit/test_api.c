/* test_api.c - core/api: Prometheus metrics rendering and the generated OpenAPI document. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "build_config.h"
#include "http.h"
#include "metrics.h"

static void assert_contains(const char *text, const char *needle)
{
    assert_non_null(text);
    if (!strstr(text, needle))
        fail_msg("missing \"%s\" in:\n%s", needle, text ? text : "");
}

static void collect_two(strbuf *out, void *ud)
{
    int *calls = ud;
    (*calls)++;
    metrics_single(out, "test_answer", "gauge", "The answer.", 42);
}

static void test_metrics_count_requests_by_method_route_status(void **state)
{
    (void)state;
    metrics *m;
    assert_int_equal(metrics_new(&m), 0);
    metrics_http_observe(m, "GET", "/api/v1/users/{id}", 200, 0.0002);
    metrics_http_observe(m, "GET", "/api/v1/users/{id}", 200, 0.003);
    metrics_http_observe(m, "GET", "/api/v1/users/{id}", 404, 20);
    metrics_http_observe(m, "POST", "unmatched", 405, 0.001);
    strbuf out = STRBUF_INIT;
    metrics_render(m, &out);
    const char *t = out.buf;
    assert_contains(t, "# TYPE opsc_http_requests_total counter\n");
    assert_contains(t, "opsc_http_requests_total{method=\"GET\",route=\"/api/v1/users/{id}\","
                       "status=\"200\"} 2\n");
    assert_contains(t, "opsc_http_requests_total{method=\"GET\",route=\"/api/v1/users/{id}\","
                       "status=\"404\"} 1\n");
    assert_contains(t, "opsc_http_requests_total{method=\"POST\",route=\"unmatched\","
                       "status=\"405\"} 1\n");
    assert_contains(t, "# TYPE opsc_http_request_duration_seconds histogram\n");
    /* cumulative buckets: 0.2 ms in le=0.0005, 3 ms by le=0.005, 20 s only in +Inf */
    assert_contains(t, "opsc_http_request_duration_seconds_bucket{method=\"GET\","
                       "route=\"/api/v1/users/{id}\",le=\"0.0005\"} 1\n");
    assert_contains(t, "opsc_http_request_duration_seconds_bucket{method=\"GET\","
                       "route=\"/api/v1/users/{id}\",le=\"0.005\"} 2\n");
    assert_contains(t, "opsc_http_request_duration_seconds_bucket{method=\"GET\","
                       "route=\"/api/v1/users/{id}\",le=\"10\"} 2\n");
    assert_contains(t, "opsc_http_request_duration_seconds_bucket{method=\"GET\","
                       "route=\"/api/v1/users/{id}\",le=\"+Inf\"} 3\n");
    assert_contains(t, "opsc_http_request_duration_seconds_count{method=\"GET\","
                       "route=\"/api/v1/users/{id}\"} 3\n");
    assert_contains(t, "opsc_build_info{version=\"" OPSC_VERSION "\"} 1\n");
    assert_contains(t, "process_resident_memory_bytes ");
    assert_contains(t, "process_open_fds ");
    sb_free(&out);
    metrics_free(m);
}

static void test_metrics_collectors_and_label_escaping(void **state)
{
    (void)state;
    metrics *m;
    assert_int_equal(metrics_new(&m), 0);
    int calls = 0;
    assert_int_equal(metrics_add_collector(m, collect_two, &calls), 0);
    metrics_http_observe(m, "GET", "/odd\"route\\\n", 200, 0.1);
    for (int i = 0; i < 500; i++) { /* the table grows */
        char route[32];
        snprintf(route, sizeof(route), "/r/%d", i);
        metrics_http_observe(m, "GET", route, 200, 0.01);
    }
    metrics_http_observe(m, "GET", "/r/7", 200, 0.01);
    strbuf out = STRBUF_INIT;
    metrics_render(m, &out);
    assert_int_equal(calls, 1);
    assert_contains(out.buf, "# HELP test_answer The answer.\n# TYPE test_answer gauge\n"
                             "test_answer 42\n");
    assert_contains(out.buf, "route=\"/odd\\\"route\\\\\\n\"");
    assert_contains(out.buf, "route=\"/r/7\",status=\"200\"} 2\n");
    assert_contains(out.buf, "route=\"/r/499\",status=\"200\"} 1\n");
    sb_free(&out);
    metrics_free(m);
}

/* Buckets render cumulatively; a value on a bound falls in that bucket (le is <=). */
static void test_metrics_histogram_buckets_are_cumulative(void **state)
{
    (void)state;
    static const double bounds[] = {1, 10};
    metrics_hist h = {.bounds = bounds, .nbounds = 2};
    metrics_hist_observe(&h, 0.5);
    metrics_hist_observe(&h, 1);
    metrics_hist_observe(&h, 7);
    metrics_hist_observe(&h, 100);
    strbuf out = {0};
    metrics_hist_render(&out, "t_seconds", "k=\"v\"", &h);
    assert_string_equal(out.buf, "t_seconds_bucket{k=\"v\",le=\"1\"} 2\n"
                                 "t_seconds_bucket{k=\"v\",le=\"10\"} 3\n"
                                 "t_seconds_bucket{k=\"v\",le=\"+Inf\"} 4\n"
                                 "t_seconds_sum{k=\"v\"} 108.5\n"
                                 "t_seconds_count{k=\"v\"} 4\n");
    sb_reset(&out);
    metrics_hist_render(&out, "t_seconds", "", &h);
    assert_contains(out.buf, "t_seconds_bucket{le=\"+Inf\"} 4\nt_seconds_sum 108.5\n");
    sb_free(&out);
}

/* ---- OpenAPI ---------------------------------------------------------------------- */

static int h_any(http_req *req)
{
    http_respond_empty(req, 204);
    return HTTP_DONE;
}

static const http_route routes[] = {
    {"GET", "/api/v1/things", ROLE_VIEWER, h_any, 0, "things", "List things", NULL,
     "{\"type\": \"object\", \"properties\": {\"items\": {\"type\": \"array\"}}}"},
    {"POST", "/api/v1/things", ROLE_OPERATOR, h_any, HTTP_ROUTE_JSON_BODY, "things",
     "Create a thing", "{\"type\": \"object\", \"required\": [\"name\"]}", "{\"type\": \"object\"}",
     201},
    {"GET", "/api/v1/things/{id}/parts/{part}", ROLE_VIEWER, h_any, 0, "things", "One part", NULL,
     NULL},
    {"DELETE", "/api/v1/things/{id}", ROLE_ADMIN, h_any, 0, "things", "Delete a thing", NULL, NULL,
     204},
    {"PUT", "/api/v1/blobs/{id}", ROLE_ADMIN, h_any, HTTP_ROUTE_RAW_BODY, "blobs", "Upload", NULL,
     NULL},
    {"GET", "/health", ROLE_PUBLIC, h_any, 0, "system", "Liveness", NULL, NULL},
    {"GET", "/api/v1/openapi.json", ROLE_PUBLIC, h_any, HTTP_ROUTE_HIDDEN, "system", "Doc", NULL,
     NULL},
};

static json_t *op(json_t *doc, const char *path, const char *method)
{
    json_t *o = json_object_get(json_object_get(json_object_get(doc, "paths"), path), method);
    if (!o)
        fail_msg("no %s %s in the document", method, path);
    return o;
}

static json_t *build_doc(uv_loop_t *loop, http_server **srv)
{
    uv_loop_init(loop);
    assert_int_equal(http_server_new(srv, loop, NULL), 0);
    assert_int_equal(http_add_routes(*srv, routes, sizeof(routes) / sizeof(routes[0])), 0);
    return openapi_document(*srv);
}

static void free_doc(uv_loop_t *loop, http_server *srv, json_t *doc)
{
    json_decref(doc);
    http_server_close(srv, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    http_server_free(srv);
    assert_int_equal(uv_loop_close(loop), 0);
}

struct walk {
    json_t *doc;
    int seen;
};

static void check_listed(const http_route *r, void *ud)
{
    struct walk *w = ud;
    char method[16];
    size_t i = 0;
    for (; r->method[i] && i + 1 < sizeof(method); i++)
        method[i] = (char)(r->method[i] | 0x20);
    method[i] = '\0';
    json_t *o =
        json_object_get(json_object_get(json_object_get(w->doc, "paths"), r->pattern), method);
    if ((o != NULL) == ((r->flags & HTTP_ROUTE_HIDDEN) != 0))
        fail_msg("%s %s listed wrongly", r->method, r->pattern);
    w->seen++;
}

static void test_openapi_lists_every_visible_route(void **state)
{
    (void)state;
    uv_loop_t loop;
    http_server *srv;
    json_t *doc = build_doc(&loop, &srv);
    assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.0.3");
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "info"), "version")),
                        OPSC_VERSION);
    struct walk w = {doc, 0};
    http_foreach_route(srv, check_listed, &w);
    assert_int_equal(w.seen, 7);
    assert_int_equal(json_array_size(json_object_get(doc, "tags")), 3);
    free_doc(&loop, srv, doc);
}

static void test_openapi_operations_carry_params_bodies_and_security(void **state)
{
    (void)state;
    uv_loop_t loop;
    http_server *srv;
    json_t *doc = build_doc(&loop, &srv);

    json_t *part = op(doc, "/api/v1/things/{id}/parts/{part}", "get");
    json_t *params = json_object_get(part, "parameters");
    assert_int_equal(json_array_size(params), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(params, 1), "name")),
                        "part");
    assert_string_equal(json_string_value(json_object_get(json_array_get(params, 0), "in")),
                        "path");
    assert_true(json_is_true(json_object_get(json_array_get(params, 0), "required")));

    json_t *create = op(doc, "/api/v1/things", "post");
    assert_string_equal(json_string_value(json_object_get(create, "x-required-role")), "operator");
    json_t *rb = json_object_get(create, "requestBody");
    assert_true(json_is_true(json_object_get(rb, "required")));
    json_t *schema = json_object_get(
        json_object_get(json_object_get(json_object_get(rb, "content"), "application/json"),
                        "schema"),
        "required");
    assert_string_equal(json_string_value(json_array_get(schema, 0)), "name");
    json_t *res = json_object_get(create, "responses");
    assert_non_null(json_object_get(res, "201"));
    assert_non_null(json_object_get(res, "401"));
    assert_non_null(json_object_get(res, "default"));
    assert_int_equal(json_array_size(json_object_get(create, "security")), 1);
    assert_non_null(
        json_object_get(json_array_get(json_object_get(create, "security"), 0), "bearerAuth"));

    json_t *del = op(doc, "/api/v1/things/{id}", "delete");
    assert_non_null(json_object_get(json_object_get(del, "responses"), "204"));
    json_t *blob = op(doc, "/api/v1/blobs/{id}", "put");
    assert_non_null(
        json_object_get(json_object_get(json_object_get(blob, "requestBody"), "content"),
                        "application/octet-stream"));
    json_t *health = op(doc, "/health", "get");
    assert_int_equal(json_array_size(json_object_get(health, "security")), 0);
    assert_null(json_object_get(json_object_get(health, "responses"), "401"));

    json_t *comp = json_object_get(doc, "components");
    assert_non_null(json_object_get(json_object_get(comp, "schemas"), "Error"));
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(comp, "securitySchemes"), "bearerAuth"), "scheme")),
        "bearer");
    free_doc(&loop, srv, doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_count_requests_by_method_route_status),
        cmocka_unit_test(test_metrics_collectors_and_label_escaping),
        cmocka_unit_test(test_metrics_histogram_buckets_are_cumulative),
        cmocka_unit_test(test_openapi_lists_every_visible_route),
        cmocka_unit_test(test_openapi_operations_carry_params_bodies_and_security),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
