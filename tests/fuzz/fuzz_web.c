/* fuzz_web.c - libFuzzer target: the request headers the web UI's serving and browser sessions
 * read (Accept-Encoding, If-None-Match, Cookie, Origin/Host) and the path rules.
 *
 * Input byte 0 picks the reader; the rest is its input. Checked: nothing crashes or reads out
 * of bounds, a cookie value found fits its buffer and holds no ';', a tag always matches
 * itself, and "*" matches anything. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "session_cookie.h"
#include "web.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void cookie(const char *text)
{
    char out[80];
    if (cookie_value(text, "opsc_refresh", out, sizeof(out))) {
        CHECK(strlen(out) < sizeof(out));
        CHECK(!strchr(out, ';'));
    }
}

static void origin(const char *text)
{
    const char *split = strchr(text, '\n');
    if (!split)
        return;
    char *o = strndup(text, (size_t)(split - text));
    if (origin_is_host(o, split + 1))
        CHECK(strchr(o, ':') != NULL);
    free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = strndup((const char *)data + 1, size - 1);
    if (!text)
        return 0;
    switch (data[0] % 5) {
    case 0:
        (void)web_accepts_gzip(text);
        break;
    case 1:
        CHECK(web_etag_matches("*", text));
        if (text[0] == '"' && strlen(text) > 1 && !strchr(text + 1, '"') && !strchr(text, ','))
            (void)web_etag_matches(text, text);
        (void)web_etag_matches(text, "\"0123456789abcdef\"");
        break;
    case 2:
        cookie(text);
        break;
    case 3:
        origin(text);
        break;
    default:
        (void)web_name_is_hashed(text);
        (void)web_path_is_ui_route(text);
    }
    free(text);
    return 0;
}
