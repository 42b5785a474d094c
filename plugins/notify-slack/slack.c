/* slack.c - notifier "slack": an incoming-webhook message with text and Block Kit blocks (a
 * header, the run's fields, the message, a button to the run). The webhook URL is the channel's
 * secret. A section's text is at most 3000 characters: the message is cut, never the structure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <opsc/plugin.h>

#include "nhttp.h"
#include "slack_settings.h"

#define SECTION_MAX 3000 /* Slack refuses a section text longer than this */
#define HEADER_MAX  150

static const opsc_host_api *host;

/* The message cut to fit one section: a code block cut open is closed again. */
static char *section_text(const char *mention, const char *text)
{
    static const char tail[] = "\n_…(cut to fit)_";
    size_t mlen = mention ? strlen(mention) + 1 : 0;
    size_t room = SECTION_MAX - mlen;
    size_t keep = nset_utf8_cut(text, room);
    bool cut = keep < strlen(text);
    if (cut)
        keep = nset_utf8_cut(text, room - sizeof(tail) - 5);
    int fences = 0;
    for (const char *p = text; (p = strstr(p, "```")) && p + 3 <= text + keep; p += 3)
        fences++;
    char *out = malloc(mlen + keep + sizeof(tail) + 8);
    if (!out)
        return NULL;
    int n = sprintf(out, "%s%s%.*s", mention ? mention : "", mention ? " " : "", (int)keep, text);
    if (cut)
        sprintf(out + n, "%s%s", fences % 2 ? "\n```" : "", tail);
    return out;
}

static void add_field(json_t *fields, const char *title, const char *value)
{
    if (!value || !*value || json_array_size(fields) >= 10)
        return;
    char buf[512];
    snprintf(buf, sizeof(buf), "*%s*\n%.*s", title, (int)nset_utf8_cut(value, 400), value);
    json_array_append_new(fields, json_pack("{s:s, s:s}", "type", "mrkdwn", "text", buf));
}

static json_t *fields_of(const json_t *payload)
{
    const json_t *run = json_object_get(payload, "run"),
                 *target = json_object_get(payload, "target");
    json_t *fields = json_array();
    char num[64];
    add_field(fields, "Job", nset_str(json_object_get(payload, "job"), "name"));
    add_field(fields, "State", nset_str(run, "state"));
    if (json_is_object(run)) {
        snprintf(num, sizeof(num), "%lld of %lld",
                 (long long)json_integer_value(json_object_get(payload, "failed_count")),
                 (long long)json_integer_value(json_object_get(run, "target_count")));
        add_field(fields, "Targets failed", num);
    }
    if (json_is_number(json_object_get(run, "duration_s"))) {
        snprintf(num, sizeof(num), "%.1f s", json_number_value(json_object_get(run, "duration_s")));
        add_field(fields, "Duration", num);
    }
    add_field(fields, "Target", nset_str(target, "name"));
    add_field(fields, "Triggered by", nset_str(run, "triggered_by"));
    return fields;
}

static json_t *blocks_of(const opsc_notify_msg *msg, const json_t *payload, const char *mention)
{
    char header[HEADER_MAX + 1], ctx[160];
    snprintf(header, sizeof(header), "%.*s", (int)nset_utf8_cut(msg->subject, HEADER_MAX),
             msg->subject);
    json_t *blocks = json_pack("[{s:s, s:{s:s, s:s, s:b}}]", "type", "header", "text", "type",
                               "plain_text", "text", header, "emoji", 1);
    json_t *fields = fields_of(payload);
    if (json_array_size(fields))
        json_array_append_new(blocks, json_pack("{s:s, s:O}", "type", "section", "fields", fields));
    json_decref(fields);
    char *text = section_text(mention, msg->text && *msg->text ? msg->text : msg->subject);
    if (text)
        json_array_append_new(blocks, json_pack("{s:s, s:{s:s, s:s}}", "type", "section", "text",
                                                "type", "mrkdwn", "text", text));
    free(text);
    if (msg->link)
        json_array_append_new(blocks,
                              json_pack("{s:s, s:[{s:s, s:{s:s, s:s}, s:s}]}", "type", "actions",
                                        "elements", "type", "button", "text", "type", "plain_text",
                                        "text", "Open run", "url", msg->link));
    snprintf(ctx, sizeof(ctx), "%s · delivery %s", msg->event, msg->id);
    json_array_append_new(blocks, json_pack("{s:s, s:[{s:s, s:s}]}", "type", "context", "elements",
                                            "type", "mrkdwn", "text", ctx));
    return blocks;
}

static int send_msg(void *state, const opsc_notify_msg *msg, const char *settings_json,
                    const char *secret, opsc_notify_done_cb done, void *ud)
{
    (void)state;
    char err[256];
    if (!secret || !nset_url_ok(secret, err, sizeof(err), "the credential's value"))
        return OPSC_EINVAL;
    json_t *s = nset_parse(settings_json, err, sizeof(err));
    json_t *payload = msg->payload_json ? json_loads(msg->payload_json, 0, NULL) : NULL;
    const char *mention = nset_str(s, "mention");
    bool loud = msg->severity && strcmp(msg->severity, "info") != 0;
    json_t *body = json_pack("{s:s, s:o}", "text", msg->subject, "blocks",
                             blocks_of(msg, payload, loud ? mention : NULL));
    int rc = nhttp_post_json(host, secret, body, s, done, ud);
    json_decref(payload);
    json_decref(s);
    return rc;
}

static const opsc_notifier slack = {
    .size = sizeof(opsc_notifier),
    .name = "slack",
    .summary = "Slack incoming webhook: Block Kit message with the run's fields and a link",
    .settings_schema = J_settings,
    .validate = nset_validate_object,
    .send = send_msg,
};

static int init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)cfg;
    host = api;
    *state = NULL;
    return nplugin_init(api, "notify-slack", &slack);
}

OPSC_PLUGIN_DEFINE("notify-slack", "1.0.0", OPSC_KIND_NOTIFIER,
                   "Slack notifications through incoming webhooks", "Apache-2.0", init,
                   nplugin_shutdown)
