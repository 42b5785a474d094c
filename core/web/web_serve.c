/* web_serve.c - answering a GET or HEAD for the UI: file or SPA fallback, caching, gzip, headers.
 */
#include <string.h>

#include "web_internal.h"

const char web_ui_csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                          "img-src 'self'; connect-src 'self'; font-src 'self'; "
                          "object-src 'none'; base-uri 'none'; form-action 'self'; "
                          "frame-ancestors 'none'";

static void security_headers(http_req *req)
{
    http_set_header(req, "Content-Security-Policy", web_ui_csp);
    http_set_header(req, "X-Content-Type-Options", "nosniff");
    http_set_header(req, "Referrer-Policy", "no-referrer");
    http_set_header(req, "X-Frame-Options", "DENY");
    http_set_header(req, "Cross-Origin-Opener-Policy", "same-origin");
}

int web_ui_serve(web_ui *w, http_req *req)
{
    const char *path = http_req_path(req);
    const web_file *f = web_find(w, path);
    if (!f && web_path_is_ui_route(path))
        f = w->index;
    security_headers(req);
    if (!f) {
        http_respond_error(req, 404, "not_found", NULL, "no such file");
        return HTTP_DONE;
    }
    bool gz = f->gz && web_accepts_gzip(http_req_header(req, "Accept-Encoding"));
    const char *etag = gz ? f->gz_etag : f->etag;
    http_set_header(req, "Cache-Control",
                    f->immutable ? "public, max-age=31536000, immutable" : "no-cache");
    http_set_header(req, "ETag", etag);
    if (f->gz)
        http_set_header(req, "Vary", "Accept-Encoding");
    if (web_etag_matches(http_req_header(req, "If-None-Match"), etag)) {
        http_respond_empty(req, 304);
        return HTTP_DONE;
    }
    if (gz)
        http_set_header(req, "Content-Encoding", "gzip");
    http_respond_text(req, 200, f->ctype, gz ? f->gz : f->body, gz ? f->gz_len : f->len);
    return HTTP_DONE;
}
