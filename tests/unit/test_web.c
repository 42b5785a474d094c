/* test_web.c - the web UI's static serving: loading a build, gzip, caching, CSP, SPA fallback,
 * traversal, and the header parsers; over real loopback sockets through the HTTP server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <opsc/errors.h>

#include "http_harness.h"
#include "util.h"
#include "web.h"

#define APP_JS                                                                                     \
    "export const answer = 42; // the app bundle, long enough to compress well: "                  \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
#define INDEX "<!doctype html><title>ui</title><script type=module src=/assets/app-5KXQ2M7A.js>"

static web_ui *served; /* the build the fallback route serves */

static int serve(http_req *req)
{
    return web_ui_serve(served, req);
}

static int hello(http_req *req)
{
    http_respond_text(req, 200, "text/plain", "hello", 5);
    return HTTP_DONE;
}

static int echo(http_req *req)
{
    http_respond_text(req, 200, "text/plain", "posted", 6);
    return HTTP_DONE;
}

static const http_route fallback = {"GET", "/", ROLE_PUBLIC, serve, 0, "web", "ui", NULL, NULL, 0};
static const http_route api[] = {
    {"GET", "/api/v1/hello", ROLE_PUBLIC, hello, 0, "t", "hello", NULL, NULL, 0},
    {"POST", "/api/v1/echo", ROLE_PUBLIC, echo, 0, "t", "echo", NULL, NULL, 0},
    {"GET", "/health", ROLE_PUBLIC, hello, 0, "t", "health", NULL, NULL, 0},
};

/* ---- a build on disk ------------------------------------------------------------------- */

static char dir[64];

static void put(const char *rel, const void *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    assert_int_equal(fs_write_file(path, data, len, 0644), 0);
}

static void put_gz(const char *rel, const char *text)
{
    unsigned char out[4096];
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (unsigned char *)text;
    z.avail_in = (unsigned)strlen(text);
    z.next_out = out;
    z.avail_out = sizeof(out);
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    put(rel, out, z.total_out);
    deflateEnd(&z);
}

static void make_build(void)
{
    snprintf(dir, sizeof(dir), "/tmp/opsc-web-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/assets", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    put("index.html", INDEX, strlen(INDEX));
    put_gz("index.html.gz", INDEX);
    put("assets/app-5KXQ2M7A.js", APP_JS, strlen(APP_JS));
    put_gz("assets/app-5KXQ2M7A.js.gz", APP_JS);
    put("assets/app-5KXQ2M7A.css", "body{}", 6);
    put("favicon.svg", "<svg/>", 6);
    put("orphan.txt.gz", "gz", 2);
    put(".secret", "hidden", 6);
    char link[128];
    snprintf(link, sizeof(link), "%s/passwd.txt", dir);
    assert_int_equal(symlink("/etc/passwd", link), 0);
}

static void remove_build(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static hx *start_served(void)
{
    char err[256] = "";
    make_build();
    assert_int_equal(web_ui_open(&served, dir, err, sizeof(err)), 0);
    hx *x = hx_start(NULL, api, sizeof(api) / sizeof(api[0]));
    http_server_set_fallback(x->srv, &fallback); /* before any request: no race */
    return x;
}

static void stop_served(hx *x)
{
    assert_int_equal(hx_stop(x), 0);
    web_ui_free(served);
    served = NULL;
    remove_build();
}

static int get(hx *x, const char *path, const char *extra, hresp *r)
{
    char raw[1024];
    snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n", path, extra ? extra : "");
    return hx_request(x->port, raw, r);
}

static void assert_header(const hresp *r, const char *name, const char *want)
{
    char v[512];
    if (!hresp_header(r, name, v, sizeof(v)))
        fail_msg("no %s header in:\n%s", name, r->head);
    assert_string_equal(v, want);
}

static void assert_no_header(const hresp *r, const char *name)
{
    char v[512];
    if (hresp_header(r, name, v, sizeof(v)))
        fail_msg("unexpected %s: %s", name, v);
}

static void assert_security_headers(const hresp *r)
{
    assert_header(r, "Content-Security-Policy", web_ui_csp);
    assert_header(r, "X-Content-Type-Options", "nosniff");
    assert_header(r, "Referrer-Policy", "no-referrer");
    assert_header(r, "X-Frame-Options", "DENY");
}

/* ---- loading ---------------------------------------------------------------------------- */

static void open_loads_files_pairs_gzip_and_skips_dotfiles_and_links(void **state)
{
    (void)state;
    make_build();
    web_ui *w = NULL;
    char err[256] = "";
    assert_int_equal(web_ui_open(&w, dir, err, sizeof(err)), 0);
    web_ui_stats st;
    web_ui_stats_get(w, &st);
    /* index.html, app js, app css, favicon, orphan.txt.gz; not .secret, not the link */
    assert_int_equal(st.files, 5);
    assert_int_equal(st.gz_files, 2);
    assert_int_equal(st.bytes, strlen(INDEX) + strlen(APP_JS) + 6 + 6 + 2);
    web_ui_free(w);
    remove_build();
}

static void open_refuses_a_directory_without_index_html(void **state)
{
    (void)state;
    make_build();
    char path[128], err[256] = "";
    snprintf(path, sizeof(path), "%s/index.html", dir);
    assert_int_equal(unlink(path), 0);
    web_ui *w = NULL;
    assert_int_equal(web_ui_open(&w, dir, err, sizeof(err)), OPSC_ENOENT);
    assert_non_null(strstr(err, "index.html"));
    assert_null(w);
    assert_true(web_ui_open(&w, "/nonexistent/opsc-web", err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "/nonexistent/opsc-web"));
    remove_build();
}

/* ---- parsers ------------------------------------------------------------------------------ */

static void accept_encoding_allows_gzip_only_with_a_positive_q(void **state)
{
    (void)state;
    assert_true(web_accepts_gzip("gzip"));
    assert_true(web_accepts_gzip("br, gzip, deflate"));
    assert_true(web_accepts_gzip("deflate;q=1, GZIP ;q=0.5"));
    assert_true(web_accepts_gzip("x-gzip"));
    assert_true(web_accepts_gzip("*"));
    assert_true(web_accepts_gzip("gzip;q=0.001"));
    assert_false(web_accepts_gzip(NULL));
    assert_false(web_accepts_gzip(""));
    assert_false(web_accepts_gzip("identity"));
    assert_false(web_accepts_gzip("gzip;q=0"));
    assert_false(web_accepts_gzip("gzip;q=0.000"));
    assert_false(web_accepts_gzip("*, gzip;q=0"));
    assert_false(web_accepts_gzip("*;q=0"));
    assert_false(web_accepts_gzip("gzip;q=2")); /* malformed: not an acceptance */
    assert_false(web_accepts_gzip("gzip;q=abc"));
    assert_false(web_accepts_gzip("gzipper"));
}

static void if_none_match_compares_tags_weakly_and_knows_star(void **state)
{
    (void)state;
    const char *tag = "\"abc123\"";
    assert_true(web_etag_matches("\"abc123\"", tag));
    assert_true(web_etag_matches("W/\"abc123\"", tag));
    assert_true(web_etag_matches("\"x\", \"abc123\"", tag));
    assert_true(web_etag_matches("*", tag));
    assert_false(web_etag_matches(NULL, tag));
    assert_false(web_etag_matches("", tag));
    assert_false(web_etag_matches("\"abc12\"", tag));
    assert_false(web_etag_matches("\"abc123", tag));
    assert_false(web_etag_matches("\"a,b\", \"abc1234\"", tag));
}

static void hashed_names_and_ui_routes_follow_the_rules(void **state)
{
    (void)state;
    assert_true(web_name_is_hashed("/assets/app-5KXQ2M7A.js"));
    assert_true(web_name_is_hashed("/assets/app-5KXQ2M7A.js.LEGAL.txt"));
    assert_false(web_name_is_hashed("/index.html"));
    assert_false(web_name_is_hashed("/assets/app-5KXQ2M.js")); /* too short */
    assert_false(web_name_is_hashed("/assets/5KXQ2M7A.js"));   /* no '-' */
    assert_false(web_name_is_hashed("/a-b/favicon.svg"));
    assert_true(web_path_is_ui_route("/"));
    assert_true(web_path_is_ui_route("/runs/0193f6e2-7a4c-7000-8000-000000000000"));
    assert_true(web_path_is_ui_route("/jobs/new"));
    assert_false(web_path_is_ui_route("/favicon.ico"));
    assert_false(web_path_is_ui_route("/assets/app-ZZZZZZZZ.js"));
    assert_false(web_path_is_ui_route("/assets/chunk"));
    assert_false(web_path_is_ui_route("/assets"));
}

/* ---- serving -------------------------------------------------------------------------------- */

static void index_is_served_with_no_cache_etag_and_security_headers(void **state)
{
    (void)state;
    hx *x = start_served();
    hresp r;
    assert_int_equal(get(x, "/", NULL, &r), 200);
    assert_string_equal(r.body, INDEX);
    assert_header(&r, "Content-Type", "text/html; charset=utf-8");
    assert_header(&r, "Cache-Control", "no-cache");
    assert_header(&r, "Vary", "Accept-Encoding");
    assert_no_header(&r, "Content-Encoding");
    assert_security_headers(&r);
    char etag[64];
    assert_true(hresp_header(&r, "ETag", etag, sizeof(etag)));
    hresp_free(&r);

    char inm[128];
    snprintf(inm, sizeof(inm), "If-None-Match: %s\r\n", etag);
    assert_int_equal(get(x, "/index.html", inm, &r), 304);
    assert_int_equal(r.body_len, 0);
    assert_header(&r, "ETag", etag);
    assert_security_headers(&r);
    hresp_free(&r);
    assert_int_equal(get(x, "/", "If-None-Match: \"other\"\r\n", &r), 200);
    hresp_free(&r);
    stop_served(x);
}

static void gzip_copy_is_sent_to_clients_that_accept_it(void **state)
{
    (void)state;
    hx *x = start_served();
    hresp r;
    assert_int_equal(get(x, "/assets/app-5KXQ2M7A.js", "Accept-Encoding: gzip, br\r\n", &r), 200);
    assert_header(&r, "Content-Encoding", "gzip");
    assert_header(&r, "Content-Type", "text/javascript; charset=utf-8");
    assert_header(&r, "Cache-Control", "public, max-age=31536000, immutable");
    char gz_etag[64], plain_etag[64];
    assert_true(hresp_header(&r, "ETag", gz_etag, sizeof(gz_etag)));
    char plain[512];
    assert_true(r.body_len > 2 && (unsigned char)r.body[0] == 0x1f &&
                (unsigned char)r.body[1] == 0x8b);
    z_stream z = {0};
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (Bytef *)r.body;
    z.avail_in = (uInt)r.body_len;
    z.next_out = (Bytef *)plain;
    z.avail_out = sizeof(plain);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, strlen(APP_JS));
    assert_memory_equal(plain, APP_JS, strlen(APP_JS));
    inflateEnd(&z);
    hresp_free(&r);

    assert_int_equal(get(x, "/assets/app-5KXQ2M7A.js", "Accept-Encoding: gzip;q=0\r\n", &r), 200);
    assert_no_header(&r, "Content-Encoding");
    assert_string_equal(r.body, APP_JS);
    assert_true(hresp_header(&r, "ETag", plain_etag, sizeof(plain_etag)));
    assert_string_not_equal(gz_etag, plain_etag); /* two representations, two tags */
    hresp_free(&r);

    /* A file without a .gz never claims an encoding, nor varies. */
    assert_int_equal(get(x, "/assets/app-5KXQ2M7A.css", "Accept-Encoding: gzip\r\n", &r), 200);
    assert_no_header(&r, "Content-Encoding");
    assert_no_header(&r, "Vary");
    assert_header(&r, "Content-Type", "text/css; charset=utf-8");
    hresp_free(&r);
    stop_served(x);
}

static void spa_routes_get_index_and_unknown_files_404(void **state)
{
    (void)state;
    hx *x = start_served();
    hresp r;
    assert_int_equal(get(x, "/runs/0193f6e2-7a4c-7000-8000-000000000000?target=web-1", NULL, &r),
                     200);
    assert_string_equal(r.body, INDEX);
    assert_header(&r, "Cache-Control", "no-cache");
    hresp_free(&r);
    const char *missing[] = {"/assets/app-AAAAAAAA.js", "/assets/sub", "/robots.txt",
                             "/index.html.gz",          "/.secret",    "/passwd.txt"};
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        int st = get(x, missing[i], NULL, &r);
        if (st != 404)
            fail_msg("%s answered %d", missing[i], st);
        assert_security_headers(&r);
        assert_non_null(strstr(r.body, "\"not_found\""));
        hresp_free(&r);
    }
    /* A .gz without its original is a plain file. */
    assert_int_equal(get(x, "/orphan.txt.gz", NULL, &r), 200);
    hresp_free(&r);
    stop_served(x);
}

static void api_paths_never_fall_back_to_the_ui(void **state)
{
    (void)state;
    hx *x = start_served();
    hresp r;
    const char *api_paths[] = {"/api/v1/nope", "/api", "/api/v2", "/health/x"};
    for (size_t i = 0; i < sizeof(api_paths) / sizeof(api_paths[0]); i++) {
        int st = get(x, api_paths[i], NULL, &r);
        if (st != 404)
            fail_msg("%s answered %d", api_paths[i], st);
        assert_header(&r, "Content-Type", "application/json");
        assert_no_header(&r, "Content-Security-Policy");
        hresp_free(&r);
    }
    assert_int_equal(get(x, "/api/v1/hello", NULL, &r), 200);
    assert_string_equal(r.body, "hello");
    hresp_free(&r);
    /* Other methods are not the UI's either. */
    assert_int_equal(hx_request(x->port, "POST /jobs HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r),
                     404);
    assert_no_header(&r, "Content-Security-Policy");
    hresp_free(&r);
    assert_int_equal(hx_request(x->port, "HEAD /jobs HTTP/1.1\r\n\r\n", &r), 200);
    hresp_free(&r);
    stop_served(x);
}

static void traversal_in_ui_paths_is_404_and_stays_400_in_the_api(void **state)
{
    (void)state;
    hx *x = start_served();
    const char *ui[] = {
        "/assets/../index.html",
        "/../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/assets/%2e%2e/index.html",
        "/x/..%2f..%2fetc%2fpasswd",
        "/assets/%2E/app-5KXQ2M7A.js",
        "/./index.html",
    };
    hresp r;
    for (size_t i = 0; i < sizeof(ui) / sizeof(ui[0]); i++) {
        int st = get(x, ui[i], NULL, &r);
        if (st != 404)
            fail_msg("%s answered %d", ui[i], st);
        assert_null(strstr(r.body, "<title>"));
        hresp_free(&r);
    }
    assert_int_equal(get(x, "/api/%2e%2e/index.html", NULL, &r), 400);
    hresp_free(&r);
    assert_int_equal(get(x, "/api/v1/../../index.html", NULL, &r), 400);
    hresp_free(&r);
    stop_served(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_loads_files_pairs_gzip_and_skips_dotfiles_and_links),
        cmocka_unit_test(open_refuses_a_directory_without_index_html),
        cmocka_unit_test(accept_encoding_allows_gzip_only_with_a_positive_q),
        cmocka_unit_test(if_none_match_compares_tags_weakly_and_knows_star),
        cmocka_unit_test(hashed_names_and_ui_routes_follow_the_rules),
        cmocka_unit_test(index_is_served_with_no_cache_etag_and_security_headers),
        cmocka_unit_test(gzip_copy_is_sent_to_clients_that_accept_it),
        cmocka_unit_test(spa_routes_get_index_and_unknown_files_404),
        cmocka_unit_test(api_paths_never_fall_back_to_the_ui),
        cmocka_unit_test(traversal_in_ui_paths_is_404_and_stays_400_in_the_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
