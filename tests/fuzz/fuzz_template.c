/* fuzz_template.c - libFuzzer target: compile and render templates in every quoting mode.
 *
 * Input: a template, optionally followed by a NUL byte and a JSON object used
 * as the step parameters. The first byte picks the mode and whether a raw
 * parameter is declared. Besides crashes and leaks, it checks that an output
 * in a shell mode never contains a NUL byte.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

static json_t *context(const uint8_t *json, size_t len)
{
    json_t *params = len ? json_loadb((const char *)json, len, 0, NULL) : NULL;
    if (!json_is_object(params)) {
        json_decref(params);
        params = json_pack("{s:s, s:i, s:b, s:[s,s,i], s:{s:s, s:s}, s:n, s:f}", "name",
                           "it's $(id) `x` \xe2\x80\x98q\xe2\x80\x99", "port", 22, "on", 1, "list",
                           "a b", "'", 3, "env", "A", "1", "B", "x\ny", "none", "real", 1.5);
    }
    return json_pack("{s:o, s:{s:s, s:{s:s}, s:{}}, s:{s:{s:{s:s}}}, s:{s:s}, s:{s:s}}", "params",
                     params, "target", "address", "10.0.0.5", "labels", "env", "prod", "facts",
                     "steps", "build", "outputs", "url", "http://x", "run", "id", "r1", "vars", "v",
                     "w");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    tpl_opts opts = {(tpl_mode)(data[0] % 3), (data[0] & 4) ? "name,list" : NULL, NULL};
    data++, size--;
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    tpl *t;
    tpl_err err;
    if (tpl_compile(&t, (const char *)data, tlen, &opts, &err) != 0)
        return 0;
    json_t *ctx = nul ? context(nul + 1, size - tlen - 1) : context(NULL, 0);
    strbuf out = STRBUF_INIT;
    if (tpl_render(t, ctx, &out, &err) == 0 && opts.mode != TPL_TEXT && out.buf &&
        memchr(out.buf, 0, out.len))
        abort(); /* a NUL can never reach a shell */
    sb_free(&out);
    json_decref(ctx);
    tpl_free(t);
    return 0;
}
