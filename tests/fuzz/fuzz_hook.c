/* fuzz_hook.c - libFuzzer target: an inbound webhook's signature headers and body.
 *
 * Input: fields separated by NUL bytes: scheme (first byte % 4), secret, webhook-id,
 * webhook-timestamp, webhook-signature, X-Hub-Signature-256, X-Gitlab-Token, Authorization,
 * a filter path, then the body (the rest, NULs included). The body also goes through the
 * parameter mapping and the filter, as the trigger route does. Besides crashes and leaks it
 * checks that an accepted Standard Webhooks request always names its message id.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "notify.h"

#define FIELDS 8

static const char *query(void *ud, const char *name)
{
    (void)ud;
    return strcmp(name, "env") == 0 ? "prod" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int scheme = data[0] % 4;
    char *copy = malloc(size);
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';
    const char *f[FIELDS] = {0};
    size_t off = 0, n = size - 1;
    for (int i = 0; i < FIELDS; i++) {
        f[i] = copy + off;
        const char *nul = off < n ? memchr(copy + off, 0, n - off) : NULL;
        off = nul ? (size_t)(nul - copy) + 1 : n;
    }
    hook_request r = {.webhook_id = *f[1] ? f[1] : NULL,
                      .webhook_timestamp = *f[2] ? f[2] : NULL,
                      .webhook_signature = *f[3] ? f[3] : NULL,
                      .hub_signature_256 = *f[4] ? f[4] : NULL,
                      .gitlab_token = *f[5] ? f[5] : NULL,
                      .authorization = *f[6] ? f[6] : NULL,
                      .body = copy + off,
                      .body_len = n - off};
    char id[256], why[256];
    int rc = hook_verify(scheme, f[0], &r, 1700000000, 300, id, why, sizeof(why));
    if (rc == 0 && scheme == HOOK_STANDARD && !id[0])
        abort();
    json_t *body = json_loadb(r.body, r.body_len, JSON_ALLOW_NUL, NULL);
    json_t *map = json_pack("{s:s, s:s, s:s}", "a", "body.a.b.0", "b", f[7][0] ? "body." : "x",
                            "env", "query.env");
    if (*f[7]) {
        char path[300];
        snprintf(path, sizeof(path), "body.%s", f[7]);
        json_object_set_new(map, "c", json_string(path));
    }
    json_t *p = hook_params(map, body, query, NULL);
    json_t *filter = json_pack("{s:s, s:s}", "path", f[7], "equals", "x");
    (void)hook_filter_ok(filter, body);
    json_decref(filter);
    json_decref(p);
    json_decref(map);
    json_decref(body);
    free(copy);
    return 0;
}
