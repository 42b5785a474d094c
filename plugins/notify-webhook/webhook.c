/* webhook.c - notifier "webhook": the event JSON (or the rule's body template) to any URL, POST
 * or PUT, with custom headers, signed per Standard Webhooks (webhook-id, webhook-timestamp,
 * webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">), optionally also with
 * GitHub's X-Hub-Signature-256. The signing secret is the channel's credential. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <opsc/plugin.h>

#include "nhttp.h"
#include "webhook_settings.h"

static const opsc_host_api *host;

/* Headers the signature and the transfer own: a channel may not set them. */
static const char *const reserved[] = {
    "content-type",        "content-length",    "host",
    "webhook-id",          "webhook-timestamp", "webhook-signature",
    "x-hub-signature-256", "transfer-encoding", NULL};

static int validate(void *state, const char *settings_json, char *err, size_t errlen)
{
    (void)state;
    json_t *s = nset_parse(settings_json, err, errlen);
    int rc = s ? 0 : OPSC_ESCHEMA;
    if (rc == 0 && !nset_url_ok(nset_str(s, "url"), err, errlen, "settings.url"))
        rc = OPSC_ESCHEMA;
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(s, "headers"), name, v)
    {
        for (const char *const *r = reserved; rc == 0 && *r; r++) {
            if (strcasecmp(name, *r) == 0) {
                snprintf(err, errlen, "settings.headers: %s is set by the notifier", name);
                rc = OPSC_ESCHEMA;
            }
        }
    }
    ntls t;
    if (rc == 0 && ntls_parse(s, &t, err, errlen) < 0)
        rc = OPSC_ESCHEMA;
    json_decref(s);
    return rc;
}

/* "whsec_<base64>" keys are the decoded bytes (Standard Webhooks); others are used as they are. */
static size_t signing_key(const char *secret, unsigned char *key, size_t cap)
{
    size_t len = strlen(secret);
    if (strncmp(secret, "whsec_", 6) == 0 && (len - 6) % 4 == 0 && (len - 6) / 4 * 3 <= cap) {
        int n = EVP_DecodeBlock(key, (const unsigned char *)secret + 6, (int)(len - 6));
        if (n >= 0) {
            n -= (secret[len - 1] == '=') + (secret[len - 2] == '=');
            return (size_t)n;
        }
    }
    len = len < cap ? len : cap;
    memcpy(key, secret, len);
    return len;
}

static struct curl_slist *add_header(struct curl_slist *h, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (!line)
        return h;
    snprintf(line, n, "%s: %s", name, value);
    struct curl_slist *out = curl_slist_append(h, line);
    free(line);
    return out ? out : h;
}

static struct curl_slist *sign(struct curl_slist *h, const opsc_notify_msg *msg, const char *secret,
                               const char *body, size_t len, bool github)
{
    unsigned char key[1024], mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    size_t keylen = signing_key(secret, key, sizeof(key));
    char ts[24], sig[8 + 4 * EVP_MAX_MD_SIZE];
    snprintf(ts, sizeof(ts), "%lld", (long long)(host->now_ms() / 1000));
    size_t tlen = strlen(msg->id) + strlen(ts) + len + 2;
    char *signed_text = malloc(tlen + 1);
    if (signed_text) {
        snprintf(signed_text, tlen + 1, "%s.%s.", msg->id, ts);
        memcpy(signed_text + strlen(msg->id) + strlen(ts) + 2, body, len);
        HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)signed_text, tlen, mac, &maclen);
        free(signed_text);
        memcpy(sig, "v1,", 3);
        EVP_EncodeBlock((unsigned char *)sig + 3, mac, (int)maclen);
        h = add_header(h, "webhook-id", msg->id);
        h = add_header(h, "webhook-timestamp", ts);
        h = add_header(h, "webhook-signature", sig);
    }
    if (github) {
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, mac,
             &maclen);
        memcpy(sig, "sha256=", 7);
        for (unsigned i = 0; i < maclen; i++)
            snprintf(sig + 7 + 2 * i, 3, "%02x", mac[i]);
        h = add_header(h, "X-Hub-Signature-256", sig);
    }
    OPENSSL_cleanse(key, sizeof(key));
    return h;
}

static int send_msg(void *state, const opsc_notify_msg *msg, const char *settings_json,
                    const char *secret, opsc_notify_done_cb done, void *ud)
{
    (void)state;
    char err[256];
    json_t *s = nset_parse(settings_json, err, sizeof(err));
    const char *url = nset_str(s, "url");
    if (!s || !nset_url_ok(url, err, sizeof(err), "settings.url")) {
        json_decref(s);
        return OPSC_EINVAL;
    }
    const char *body = OPSC_NOTIFY_MSG_HAS(msg, body) && msg->body ? msg->body : msg->payload_json;
    nhttp_req r = {.url = url,
                   .method = nset_str(s, "method"),
                   .body = strdup(body ? body : "{}"),
                   .timeout_ms = (long)json_integer_value(json_object_get(s, "timeout_s")) * 1000,
                   .tls = s};
    r.len = r.body ? strlen(r.body) : 0;
    /* The webhook-id goes out even unsigned: receivers deduplicate by it. */
    if (!secret || !*secret)
        r.headers = add_header(NULL, "webhook-id", msg->id);
    else if (r.body)
        r.headers = sign(NULL, msg, secret, r.body, r.len,
                         json_is_true(json_object_get(s, "github_signature")));
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(s, "headers"), name, v)
    {
        r.headers = add_header(r.headers, name, json_string_value(v) ?: "");
    }
    int rc = r.body ? nhttp_send(host, &r, done, ud) : OPSC_ENOMEM;
    json_decref(s);
    return rc;
}

static const opsc_notifier webhook = {
    .size = sizeof(opsc_notifier),
    .name = "webhook",
    .summary = "any HTTP(S) endpoint: the event JSON, signed per Standard Webhooks",
    .settings_schema = J_settings,
    .validate = validate,
    .send = send_msg,
};

static int init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)cfg;
    host = api;
    *state = NULL;
    return nplugin_init(api, "notify-webhook", &webhook);
}

OPSC_PLUGIN_DEFINE("notify-webhook", "1.0.0", OPSC_KIND_NOTIFIER,
                   "Signed webhooks (Standard Webhooks, GitHub-style) to any HTTP endpoint",
                   "Apache-2.0", init, nplugin_shutdown)
