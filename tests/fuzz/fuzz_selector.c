/* fuzz_selector.c - libFuzzer target: label selectors and label keys.
 *
 * Input: the selector text. Checked: nothing crashes or leaks; every error
 * message names a column and is printable ASCII (it goes into JSON); a
 * selector that parses formats to text that parses again to the same text;
 * matching never disagrees with itself between the two. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "selector.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *label_sets[4];

static void init_labels(void)
{
    if (label_sets[0])
        return;
    label_sets[0] = json_object();
    label_sets[1] = json_pack("{s:s, s:s}", "env", "prod", "role", "web");
    label_sets[2] = json_pack("{s:s, s:s, s:s}", "env", "dev", "legacy", "", "a.b/c", "d");
    label_sets[3] = json_pack("{s:s}", "k", "v");
}

static void check_message(const char *err)
{
    for (const char *p = err; *p; p++)
        CHECK(*p >= 0x20 && *p < 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_labels();
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char err[512] = "";
    selector *s = NULL;
    int rc = selector_parse(text, &s, err, sizeof(err));
    if (rc < 0) {
        CHECK(s == NULL && err[0]);
        check_message(err);
    } else {
        strbuf sb = STRBUF_INIT, sb2 = STRBUF_INIT;
        selector_format(s, &sb);
        selector *s2 = NULL;
        CHECK(!sb.oom && selector_parse(sb.buf, &s2, err, sizeof(err)) == 0);
        selector_format(s2, &sb2);
        CHECK(strcmp(sb.buf, sb2.buf) == 0);
        for (size_t i = 0; i < 4; i++)
            CHECK(selector_match(s, label_sets[i]) == selector_match(s2, label_sets[i]));
        sb_free(&sb);
        sb_free(&sb2);
        selector_free(s2);
        selector_free(s);
    }
    err[0] = '\0';
    if (!label_key_valid(text, err, sizeof(err)))
        check_message(err);
    free(text);
    return 0;
}
