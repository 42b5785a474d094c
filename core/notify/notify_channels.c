/* notify_channels.c - channels: built and checked against their notifier, their secret opened
 * for one attempt, their rate limit, a test message on demand. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "notify_data.h"
#include "notify_internal.h"
#include "plugin_host.h"
#include "util.h"
#include "vault.h"

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* ---- building ---------------------------------------------------------------------------------
 */

static int unknown_type(notify *n, const char *type, const char **field, char *err, size_t errlen)
{
    plugin_host *h = n->core->plugins;
    size_t o = (size_t)snprintf(err, errlen, "type: unknown notifier '%s' (loaded:", type);
    size_t count = plugin_host_count(h, REG_NOTIFIER);
    for (size_t i = 0; i < count && o < errlen; i++) {
        const opsc_notifier *d = plugin_host_reg(h, REG_NOTIFIER, i)->desc;
        o += (size_t)snprintf(err + o, errlen - o, "%s %s", i ? "," : "", d->name);
    }
    if (o < errlen)
        snprintf(err + o, errlen - o, "%s)", count ? "" : " none");
    *field = "type";
    return OPSC_ESCHEMA;
}

/* The notifier's own checks: its settings schema (defaults added), then validate(). */
static int check_settings(const plugin_reg *reg, json_t *rec, const char **field, char *err,
                          size_t errlen)
{
    const opsc_notifier *d = reg->desc;
    json_t *settings = json_object_get(rec, "settings");
    int rc = 0;
    if (d->settings_schema) {
        json_t *wrap = json_pack("{s:O}", "settings", settings);
        char schema[64 + 65536];
        int len =
            snprintf(schema, sizeof(schema),
                     "{\"type\":\"object\",\"properties\":{\"settings\":%s}}", d->settings_schema);
        rc = wrap && len > 0 && (size_t)len < sizeof(schema)
                 ? nt_schema_apply(schema, wrap, field, err, errlen)
                 : OPSC_ENOMEM;
        if (rc == 0)
            json_object_set(rec, "settings", json_object_get(wrap, "settings"));
        json_decref(wrap);
    }
    if (rc == 0 && d->validate) {
        char *text = json_dumps(json_object_get(rec, "settings"), JSON_COMPACT);
        rc = text ? d->validate(reg->state, text, err, errlen) : OPSC_ENOMEM;
        free(text);
        if (rc < 0) {
            *field = "settings";
            rc = OPSC_ESCHEMA;
        }
    }
    return rc;
}

/* A notifier says in its schema whether channels need a secret:
 * "x-credential": "required" (Slack and Teams: the URL is the secret). */
static bool needs_credential(const opsc_notifier *d)
{
    json_t *s = d->settings_schema ? json_loads(d->settings_schema, 0, NULL) : NULL;
    bool need = strcmp(str(s, "x-credential") ?: "", "required") == 0;
    json_decref(s);
    return need;
}

int notify_channel_build(notify *n, const json_t *body, const json_t *existing, json_t **out,
                         const char **field, char *err, size_t errlen)
{
    *out = NULL;
    *field = NULL;
    json_t *rec = nt_merged(body, existing);
    int rc = rec ? nt_schema_apply(J_channel, rec, field, err, errlen) : OPSC_ENOMEM;
    static const char *const req[] = {"name", "type", NULL};
    for (const char *const *k = req; rc == 0 && *k; k++) {
        if (!json_object_get(rec, *k)) {
            *field = *k;
            snprintf(err, errlen, "%s is required", *k);
            rc = OPSC_ESCHEMA;
        }
    }
    const plugin_reg *reg =
        rc == 0 ? plugin_host_find(n->core->plugins, REG_NOTIFIER, str(rec, "type")) : NULL;
    if (rc == 0 && !reg)
        rc = unknown_type(n, str(rec, "type"), field, err, errlen);
    if (rc == 0)
        rc = check_settings(reg, rec, field, err, errlen);
    if (rc == 0 && needs_credential(reg->desc) && !str(rec, "credential_id")) {
        *field = "credential_id";
        snprintf(err, errlen, "credential_id: a %s channel needs a credential of type secret",
                 str(rec, "type"));
        rc = OPSC_ESCHEMA;
    }
    if (rc == 0 && existing && json_is_true(json_object_get(rec, "enabled")))
        json_object_del(rec, "disabled_reason"); /* enabled again by hand */
    if (rc == 0 && !json_object_get(rec, "rate_limit") && strcmp(str(rec, "type"), "slack") == 0)
        json_object_set_new(rec, "rate_limit", json_pack("{s:i, s:i}", "max", 1, "per_s", 1));
    if (rc < 0) {
        json_decref(rec);
        return rc;
    }
    *out = rec;
    return 0;
}

int notify_channel_check(store_txn *txn, const json_t *rec, const char **field, char *err,
                         size_t errlen)
{
    const char *cred = str(rec, "credential_id");
    json_t *c = NULL;
    int rc = cred ? store_get(txn, "credentials", cred, &c) : 0;
    if (rc == OPSC_ENOENT || (rc == 0 && cred && strcmp(str(c, "type") ?: "", "secret") != 0)) {
        *field = "credential_id";
        snprintf(err, errlen, "credential_id: %s is not a credential of type secret", cred);
        rc = OPSC_ESCHEMA;
    }
    json_decref(c);
    return rc;
}

/* ---- secrets ----------------------------------------------------------------------------------
 */

int nt_secret_open(notify *n, store_txn *txn, const char *id, char **out)
{
    json_t *rec = NULL, *secrets = NULL;
    *out = NULL;
    int rc = store_get(txn, "credentials", id, &rec);
    if (rc == 0)
        rc = vault_secrets_open(n->core->vault, rec, &secrets);
    const char *v = rc == 0 ? str(secrets, "value") : NULL;
    if (rc == 0)
        rc = v ? ((*out = strdup(v)) ? 0 : OPSC_ENOMEM) : OPSC_ENOENT;
    vault_secrets_free(secrets);
    json_decref(rec);
    return rc;
}

void nt_secret_free(char *s)
{
    if (s) {
        secure_zero(s, strlen(s));
        free(s);
    }
}

/* ---- rate limits: evenly spaced slots per channel ------------------------------------------- */

/* At most `max` messages in any `per_s` seconds, spaced gap = per_s / max
 * apart. A message that must wait is given the next free slot and goes back
 * to the queue until then, so a storm is spread out rather than retried. A
 * message sent late (a busy loop) pushes the next one back: the spacing holds
 * for real sends, not only for the plan. */
bool nt_limit_take(notify *n, const json_t *ch, bool reserved, int64_t now_ms, int64_t *next_ms)
{
    const json_t *rl = json_object_get(ch, "rate_limit");
    json_int_t max = json_integer_value(json_object_get(rl, "max"));
    json_int_t per_s = json_integer_value(json_object_get(rl, "per_s"));
    const char *id = str(ch, "id");
    if (!json_is_object(rl) || max <= 0 || per_s <= 0 || !id)
        return true;
    nt_limiter *l = n->limiters;
    while (l && strcmp(l->channel_id, id) != 0)
        l = l->next;
    if (!l && (l = calloc(1, sizeof(*l)))) {
        snprintf(l->channel_id, sizeof(l->channel_id), "%s", id);
        l->next = n->limiters;
        n->limiters = l;
    }
    if (!l)
        return true;
    int64_t gap = (int64_t)ceil((double)per_s * 1000.0 / (double)max);
    int64_t earliest = l->sent_ms ? l->sent_ms + gap : now_ms;
    if (reserved) { /* its slot has come; the one before it may have gone late */
        if (now_ms < earliest) {
            *next_ms = earliest;
            return false;
        }
    } else {
        int64_t slot = l->next_ms > now_ms ? l->next_ms : now_ms;
        if (slot < earliest)
            slot = earliest;
        l->next_ms = slot + gap;
        if (slot > now_ms) {
            *next_ms = slot;
            return false;
        }
    }
    l->sent_ms = now_ms;
    if (l->next_ms < now_ms + gap)
        l->next_ms = now_ms + gap;
    return true;
}

void nt_limiters_free(notify *n)
{
    while (n->limiters) {
        nt_limiter *l = n->limiters;
        n->limiters = l->next;
        free(l);
    }
}

/* ---- a test message -----------------------------------------------------------------------------
 */

typedef struct test_op {
    notify *n;
    const char *channel_id;
    char id[40];
    nt_attempt *a;
    notify_test_cb cb;
    void *ud;
    char *err;
    size_t errlen;
} test_op;

static json_t *test_payload(notify *n, store_txn *txn, notice *no)
{
    (void)txn;
    char text[256];
    snprintf(text, sizeof(text), "Test message from OpsConductor");
    json_t *p = nt_payload_base(n, EV_TEST, text, NULL);
    (void)no;
    return p;
}

static int create_txn(store_txn *txn, void *ud)
{
    test_op *t = ud;
    json_t *ch = NULL;
    int rc = store_get(txn, "notify_channels", t->channel_id, &ch);
    notice no = {.ev = EV_TEST, .sev = SEV_INFO, .build = test_payload};
    if (rc == 0)
        rc = nt_outbox_add(t->n, txn, NULL, ch, &no, t->id);
    nt_notice_clear(&no);
    json_decref(ch);
    return rc;
}

static int gave_up_txn(store_txn *txn, void *ud)
{
    test_op *t = ud;
    json_t *rec = NULL;
    int rc = store_get(txn, "outbox", t->id, &rec);
    if (rc == 0) {
        json_object_set_new(rec, "state", json_string("gave_up"));
        json_object_set_new(rec, "error", json_string(t->err));
        rc = store_update(txn, "outbox", rec, 0);
    }
    json_decref(rec);
    return rc;
}

static int start_txn(store_txn *txn, void *ud)
{
    test_op *t = ud;
    json_t *rec = NULL, *ch = NULL;
    int rc = store_get(txn, "outbox", t->id, &rec);
    if (rc == 0)
        rc = store_get(txn, "notify_channels", t->channel_id, &ch);
    if (rc == 0)
        rc = nt_attempt_prepare(t->n, txn, rec, ch, t->cb, t->ud, &t->a, t->err, t->errlen);
    json_decref(rec);
    json_decref(ch);
    return rc;
}

int notify_channel_test(notify *n, const char *id, notify_test_cb cb, void *ud, char *err,
                        size_t errlen)
{
    test_op t = {n, id, "", NULL, cb, ud, err, errlen};
    *err = '\0';
    if (n->closed)
        return OPSC_ESTATE;
    int rc = store_write(n->store, create_txn, &t);
    if (rc == 0 && (rc = store_read(n->store, start_txn, &t)) < 0 && t.id[0]) {
        if (!*err)
            snprintf(err, errlen, "%s", opsc_strerror(rc));
        store_write(n->store, gave_up_txn, &t);
    }
    if (rc == 0)
        nt_attempt_launch(n, t.a);
    return rc;
}
