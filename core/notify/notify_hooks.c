/* notify_hooks.c - inbound hooks: records, parameters from the body and query, the filter, the
 * ids already seen (replays). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "notify_data.h"
#include "notify_internal.h"
#include "util.h"

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

int hook_build(const json_t *body, const json_t *existing, json_t **out, const char **field,
               char *err, size_t errlen)
{
    static const char *const req[] = {"name", "job_id", "credential_id", NULL};
    *out = NULL;
    *field = NULL;
    json_t *rec = nt_merged(body, existing);
    json_object_del(rec, "trigger_path");
    int rc = rec ? nt_schema_apply(J_hook, rec, field, err, errlen) : OPSC_ENOMEM;
    for (const char *const *k = req; rc == 0 && *k; k++) {
        if (!json_object_get(rec, *k)) {
            *field = *k;
            snprintf(err, errlen, "%s is required", *k);
            rc = OPSC_ESCHEMA;
        }
    }
    if (rc < 0) {
        json_decref(rec);
        return rc;
    }
    *out = rec;
    return 0;
}

int hook_check(store_txn *txn, const json_t *rec, const char **field, char *err, size_t errlen)
{
    json_t *job = NULL, *cred = NULL;
    int rc = store_get(txn, "jobs", str(rec, "job_id"), &job);
    if (rc == OPSC_ENOENT) {
        *field = "job_id";
        snprintf(err, errlen, "job_id: no job with id %s", str(rec, "job_id"));
        rc = OPSC_ESCHEMA;
    }
    if (rc == 0)
        rc = store_get(txn, "credentials", str(rec, "credential_id"), &cred);
    if (rc == OPSC_ENOENT || (rc == 0 && strcmp(str(cred, "type") ?: "", "secret") != 0)) {
        *field = "credential_id";
        snprintf(err, errlen, "credential_id: %s is not a credential of type secret",
                 str(rec, "credential_id"));
        rc = OPSC_ESCHEMA;
    }
    json_decref(job);
    json_decref(cred);
    return rc;
}

json_t *hook_path_get(json_t *root, const char *path)
{
    json_t *cur = root;
    const char *p = path;
    while (cur && p && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        bool digits = len > 0 && len < 10;
        for (size_t i = 0; i < len && digits; i++)
            digits = isdigit((unsigned char)p[i]);
        if (json_is_array(cur) && digits)
            cur = json_array_get(cur, strtoul(p, NULL, 10));
        else if (json_is_object(cur) && len > 0)
            cur = json_object_getn(cur, p, len);
        else
            cur = NULL;
        p = dot ? dot + 1 : NULL;
    }
    return cur;
}

json_t *hook_params(const json_t *mapping, json_t *body,
                    const char *(*query)(void *ud, const char *name), void *ud)
{
    json_t *out = json_object();
    const char *param;
    json_t *src;
    json_object_foreach((json_t *)mapping, param, src)
    {
        const char *s = json_string_value(src);
        json_t *v = NULL;
        if (s && strncmp(s, "body.", 5) == 0) {
            json_t *found = hook_path_get(body, s + 5);
            v = found && !json_is_null(found) ? json_deep_copy(found) : NULL;
        } else if (s && strncmp(s, "query.", 6) == 0 && query) {
            const char *q = query(ud, s + 6);
            v = q ? json_string(q) : NULL;
        }
        if (v)
            json_object_set_new(out, param, v);
    }
    return out;
}

bool hook_filter_ok(const json_t *filter, json_t *body)
{
    if (!json_is_object(filter))
        return true;
    json_t *v = hook_path_get(body, str(filter, "path"));
    return v && json_equal(v, json_object_get(filter, "equals"));
}

int hook_seen_put(store_txn *txn, const char *hook_id, const char *msg_id, int64_t now_ms)
{
    char key[320], val[24];
    snprintf(key, sizeof(key), "%s/%s", hook_id, msg_id);
    const void *v = NULL;
    size_t vlen = 0;
    int rc = store_kv_get(txn, "hooks_seen", key, strlen(key), &v, &vlen);
    if (rc == 0)
        return OPSC_EEXIST;
    if (rc != OPSC_ENOENT)
        return rc;
    snprintf(val, sizeof(val), "%lld", (long long)now_ms);
    return store_kv_put(txn, "hooks_seen", key, strlen(key), val, strlen(val));
}

static bool seen_before(const void *val, size_t vlen, int64_t cutoff)
{
    char num[24];
    size_t n = vlen < sizeof(num) - 1 ? vlen : sizeof(num) - 1;
    memcpy(num, val, n);
    num[n] = '\0';
    return strtoll(num, NULL, 10) < cutoff;
}

int nt_hooks_seen_sweep(store_txn *txn, int64_t now_ms, int64_t keep_ms)
{
    return nt_kv_prune(txn, "hooks_seen", seen_before, now_ms - keep_ms);
}

typedef struct hook_load {
    notify *n;
    const char *id;
    json_t *hook;
    char *secret;
} hook_load;

static int load_txn(store_txn *txn, void *ud)
{
    hook_load *h = ud;
    json_decref(h->hook);
    h->hook = NULL;
    int rc = store_get(txn, "hooks", h->id, &h->hook);
    const char *cred = str(h->hook, "credential_id");
    nt_secret_free(h->secret);
    h->secret = NULL;
    if (rc == 0 && cred && nt_secret_open(h->n, txn, cred, &h->secret) < 0)
        h->secret = NULL; /* a credential gone: nothing can be verified, the caller refuses */
    return rc;
}

int notify_hook_load(notify *n, const char *id, json_t **hook, char **secret)
{
    hook_load h = {n, id, NULL, NULL};
    int rc = store_read(n->store, load_txn, &h);
    if (rc < 0) {
        json_decref(h.hook);
        nt_secret_free(h.secret);
        h.hook = NULL;
        h.secret = NULL;
    }
    *hook = h.hook;
    *secret = h.secret;
    return rc;
}

void notify_secret_free(char *secret)
{
    nt_secret_free(secret);
}
