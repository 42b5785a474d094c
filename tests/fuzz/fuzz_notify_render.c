/* fuzz_notify_render.c - libFuzzer target: notification messages, rendered.
 *
 * Input: a template, then a NUL byte and a JSON payload (the event as delivered). The template
 * is compiled with the message roots, as a rule's override is at save time, and rendered with
 * the payload; the built-in messages (subject, text, Slack, Teams) are rendered with the same
 * payload, since a payload is data from runs and targets. Besides crashes and leaks, output is
 * bounded by the engine's limits.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "notify_data.h"
#include "notify_internal.h"

static void render(const char *text, size_t len, const json_t *payload)
{
    tpl *t = NULL;
    tpl_err te;
    char *src = malloc(len + 1);
    memcpy(src, text, len);
    src[len] = '\0';
    if (!memchr(text, 0, len) && nt_tpl_compile(src, &t, &te) == 0) {
        strbuf out = STRBUF_INIT;
        if (tpl_render(t, payload, &out, &te) == 0 && out.len > TPL_MAX_OUTPUT)
            abort();
        sb_free(&out);
        tpl_free(t);
    }
    free(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    json_t *payload = nul ? json_loadb((const char *)nul + 1, size - tlen - 1, 0, NULL) : NULL;
    if (!json_is_object(payload)) {
        json_decref(payload);
        payload = json_pack("{s:{s:s, s:s, s:i}, s:{s:s, s:s}, s:[{s:s, s:{s:i}, s:[s]}], s:n}",
                            "event", "name", "run.failed", "summary", "x", "count", 2, "run", "id",
                            "r", "state", "failed", "failed_targets", "name", "web", "step",
                            "exit_code", 3, "output", "line", "link");
    }
    render((const char *)data, tlen, payload);
    static const char *const builtin[] = {T_subject_txt, T_text_txt, T_slack_txt, T_teams_txt};
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
        render(builtin[i], strlen(builtin[i]), payload);
    json_decref(payload);
    return 0;
}
