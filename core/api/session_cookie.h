/* session_cookie.h - browser sessions: the refresh token in an HttpOnly cookie (cookie mode).
 *
 * A client asks for cookie mode with the header "X-OPSC-Session: cookie" on
 * login, refresh and logout (the web UI does). Then login and refresh put
 * the refresh token in a cookie instead of the body:
 *   opsc_refresh=<token>; Path=/api/v1/auth; Max-Age=<refresh ttl>; HttpOnly;
 *   SameSite=Strict, and Secure when the page is https (Origin, or
 *   X-Forwarded-Proto from a TLS proxy),
 * so script on the page never sees it (the access token stays in the page's
 * memory). Refresh and logout read the token from that cookie only when the
 * request carries the custom header (a cross-site form cannot send one, and
 * a cross-site fetch with one needs a CORS preflight we never grant) AND an
 * Origin naming this very host: together they are the CSRF defence. Without
 * the header, login, refresh and logout behave exactly as before.
 *
 * Thread: loop thread (the parsers: any).
 */
#ifndef OPSC_SESSION_COOKIE_H
#define OPSC_SESSION_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define SESSION_COOKIE_NAME   "opsc_refresh"
#define SESSION_COOKIE_PATH   "/api/v1/auth"
#define SESSION_COOKIE_HEADER "X-OPSC-Session"

/* The request asks for cookie mode. */
bool session_cookie_wanted(http_req *req);
/* Cookie mode with a same-origin Origin; false after answering 403. */
bool session_cookie_origin_ok(http_req *req);
/* Set (max_age_s > 0) or expire (0) the cookie on the answer. */
void session_cookie_set(http_req *req, const char *token, int64_t max_age_s);
/* The token from the request's Cookie header into out; false when absent or too long. */
bool session_cookie_token(http_req *req, char *out, size_t n);

/* ---- parsers (tests, fuzzing) -------------------------------------------------------------- */

/* The value of cookie `name` in a Cookie header ("a=1; b=2"); false when absent or when it
 * does not fit in n bytes with its NUL. */
bool cookie_value(const char *header, const char *name, char *out, size_t n);
/* Origin "scheme://host[:port]" names the same host[:port] as the Host header, over http or
 * https. NULL for either: false. */
bool origin_is_host(const char *origin, const char *host);

#endif
