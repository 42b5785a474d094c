/* web.h - the web UI's files, served by the daemon itself from memory.
 *
 * At start-up the directory of the built UI ([web] dir) is read whole into
 * memory: a few hundred kilobytes, so serving never blocks the loop on
 * disk and no request path ever reaches the file system (a path either
 * names a loaded file exactly or it names nothing: traversal has nothing to
 * traverse). Dot files, symbolic links and anything but regular files and
 * directories are skipped.
 *
 * Serving (web_ui_serve), for the GET and HEAD requests no API route took:
 * - "x.gz" next to "x" is x precompressed: sent with Content-Encoding:
 *   gzip when the client accepts gzip, never served under its own name;
 * - every file has a strong ETag (a digest of its bytes; the gzip variant
 *   its own), and If-None-Match answers 304;
 * - hashed names ("app-5KXQ2M7A.js": a '-', 8 or more letters and digits,
 *   then the extension) are immutable for a year; everything else, above
 *   all index.html, is "no-cache" (revalidated by ETag);
 * - a path whose last segment has no '.' and that is not under /assets/ is
 *   a route of the single-page app: it gets index.html (the SPA fallback);
 *   any other unknown path is a 404. The HTTP server never hands over paths
 *   of the API (http_server_set_fallback), so /api/... keeps its JSON 404;
 * - every answer, 404s included, carries the security headers: a strict
 *   Content-Security-Policy (no inline script, no eval, frame-ancestors
 *   'none'), X-Content-Type-Options, Referrer-Policy, X-Frame-Options.
 *
 * Thread: web_ui_open/free at start-up and shutdown; web_ui_serve on the
 * loop thread. The parsers (web_accepts_gzip, web_etag_matches) take any
 * bytes and are fuzzed (tests/fuzz/fuzz_web.c).
 */
#ifndef OPSC_WEB_H
#define OPSC_WEB_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

typedef struct web_ui web_ui;

/* Read `dir` into memory. Errors (err says which file and why): the
 * directory cannot be read, OPSC_ENOENT when it holds no index.html,
 * OPSC_E2BIG when it holds more than 4096 files or 64 MiB. */
int web_ui_open(web_ui **out, const char *dir, char *err, size_t errlen);
void web_ui_free(web_ui *w);

typedef struct web_ui_stats {
    size_t files;    /* servable files (precompressed copies not counted) */
    size_t bytes;    /* their sizes */
    size_t gz_files; /* files with a precompressed copy */
    size_t gz_bytes; /* those copies' sizes */
} web_ui_stats;
void web_ui_stats_get(const web_ui *w, web_ui_stats *st);

/* Answer a GET or HEAD request for the UI. Returns HTTP_DONE. */
int web_ui_serve(web_ui *w, http_req *req);

/* The Content-Security-Policy every UI answer carries. */
extern const char web_ui_csp[];

/* ---- header parsers (exposed for tests and the fuzzer) ---------------------------------- */

/* Accept-Encoding allows gzip: "gzip" or "x-gzip" or "*" with a q above 0
 * (a later "gzip;q=0" refuses it even after "*"). NULL: no. */
bool web_accepts_gzip(const char *accept_encoding);
/* If-None-Match holds `etag` (a quoted strong tag) or is "*"; weak
 * comparison, so W/"x" matches "x". NULL: no. */
bool web_etag_matches(const char *if_none_match, const char *etag);
/* A hashed (immutable) file name, by the rule above. */
bool web_name_is_hashed(const char *path);
/* A path the single-page app routes (gets index.html when no file has it). */
bool web_path_is_ui_route(const char *path);

#endif
