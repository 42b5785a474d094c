/* core_assert.c - assert.output: fail a run unless a value equals, contains or matches. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <string.h>

#include "core_internal.h"

/* Match `re` against value; groups (captures) go to *groups. -1: bad pattern (failed). */
static int regex_match(opsc_step_ctx *ctx, const char *re, const char *value, json_t *groups)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *pc =
        pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &off, NULL);
    if (!pc) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof(msg));
        core_host->step_fail(ctx, "regex at offset %zu: %s", (size_t)off, (const char *)msg);
        return -1;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(pc, NULL);
    int n = md ? pcre2_match(pc, (PCRE2_SPTR)value, strlen(value), 0, 0, md, NULL) : -1;
    PCRE2_SIZE *ov = n > 0 ? pcre2_get_ovector_pointer(md) : NULL;
    uint32_t count = 0;
    pcre2_pattern_info(pc, PCRE2_INFO_CAPTURECOUNT, &count);
    /* pcre2_match counts groups up to the last one set: unset ones after it are null too. */
    for (int i = 1; n > 0 && i <= (int)count; i++) {
        bool set = i < n && ov[2 * i] != PCRE2_UNSET;
        json_array_append_new(
            groups, set ? json_stringn(value + ov[2 * i], ov[2 * i + 1] - ov[2 * i]) : json_null());
    }
    pcre2_match_data_free(md);
    pcre2_code_free(pc);
    return n > 0;
}

/* Every condition given must hold. Returns 1 matched, 0 not, -1 error (failed). */
static int evaluate(opsc_step_ctx *ctx, const json_t *p, const char *value, json_t *groups,
                    char *why, size_t n)
{
    const char *equals = stepkit_str(p, "equals"), *contains = stepkit_str(p, "contains");
    const char *re = stepkit_str(p, "regex");
    if (equals && strcmp(value, equals) != 0) {
        snprintf(why, n, "does not equal '%.100s'", equals);
        return 0;
    }
    if (contains && !strstr(value, contains)) {
        snprintf(why, n, "does not contain '%.100s'", contains);
        return 0;
    }
    if (re) {
        int m = regex_match(ctx, re, value, groups);
        if (m <= 0)
            snprintf(why, n, "does not match /%.100s/", re);
        return m;
    }
    snprintf(why, n, "matches");
    return 1;
}

int core_assert_output_run(opsc_step_ctx *ctx, void *lib_state)
{
    (void)lib_state;
    const opsc_host_api *h = core_host;
    json_t *p = stepkit_params(h, ctx), *groups = json_array();
    const char *value = stepkit_str(p, "value"), *message = stepkit_str(p, "message");
    bool negate = stepkit_bool(p, "not", false);
    char why[256];
    int m = evaluate(ctx, p, value ? value : "", groups, why, sizeof(why)), rc;
    if (m < 0) {
        rc = OPSC_EINVAL;
    } else if ((m == 1) == negate) {
        if (message)
            rc = h->step_fail(ctx, "%s", message);
        else
            rc = h->step_fail(ctx, "assertion failed: value '%.120s%s' %s", value ? value : "",
                              value && strlen(value) > 120 ? "..." : "",
                              negate ? "matches, but must not" : why);
    } else {
        rc = stepkit_output(h, ctx, "matched", json_boolean(m == 1));
        if (rc == 0)
            rc = stepkit_output(h, ctx, "groups", json_incref(groups));
    }
    json_decref(groups);
    json_decref(p);
    return rc;
}
