/* teams.c - notifier "teams": a Microsoft Teams Workflows webhook carrying an Adaptive Card
 * (version 1.4); the retired Office 365 connector's MessageCard only when a channel asks for it.
 * The webhook URL is the channel's secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <opsc/plugin.h>

#include "nhttp.h"
#include "teams_settings.h"

#define TEXT_MAX 20000 /* a Teams message holds about 28 KB in all */

static const opsc_host_api *host;

static const char *color_of(const char *severity)
{
    if (severity && strcmp(severity, "error") == 0)
        return "Attention";
    return severity && strcmp(severity, "warning") == 0 ? "Warning" : "Good";
}

static void add_fact(json_t *facts, const char *title, const char *value)
{
    if (value && *value)
        json_array_append_new(facts, json_pack("{s:s, s:s}", "title", title, "value", value));
}

static json_t *facts_of(const opsc_notify_msg *msg, const json_t *payload)
{
    const json_t *run = json_object_get(payload, "run");
    json_t *facts = json_array();
    add_fact(facts, "Job", nset_str(json_object_get(payload, "job"), "name"));
    add_fact(facts, "State", nset_str(run, "state"));
    add_fact(facts, "Target", nset_str(json_object_get(payload, "target"), "name"));
    add_fact(facts, "Event", msg->event);
    add_fact(facts, "Delivery", msg->id);
    return facts;
}

static char *cut(const char *text)
{
    size_t keep = nset_utf8_cut(text ? text : "", TEXT_MAX);
    char *out = malloc(keep + 32);
    if (out)
        sprintf(out, "%.*s%s", (int)keep, text ? text : "",
                keep < strlen(text ? text : "") ? "\n\n…(cut to fit)" : "");
    return out;
}

static json_t *adaptive_card(const opsc_notify_msg *msg, const json_t *payload)
{
    char *text = cut(msg->text);
    json_t *card = json_pack(
        "{s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:s, s:b, s:s}, {s:s, s:o}, {s:s, s:s, s:b}]}",
        "$schema", "http://adaptivecards.io/schemas/adaptive-card.json", "type", "AdaptiveCard",
        "version", "1.4", "body", "type", "TextBlock", "text", msg->subject, "weight", "Bolder",
        "size", "Medium", "wrap", 1, "color", color_of(msg->severity), "type", "FactSet", "facts",
        facts_of(msg, payload), "type", "TextBlock", "text", text ? text : "", "wrap", 1);
    free(text);
    if (card && msg->link)
        json_object_set_new(card, "actions",
                            json_pack("[{s:s, s:s, s:s}]", "type", "Action.OpenUrl", "title",
                                      "Open run", "url", msg->link));
    return json_pack("{s:s, s:[{s:s, s:n, s:o}]}", "type", "message", "attachments", "contentType",
                     "application/vnd.microsoft.card.adaptive", "contentUrl", "content", card);
}

/* The retired connector format, kept for channels that still point at one. */
static json_t *message_card(const opsc_notify_msg *msg)
{
    char *text = cut(msg->text);
    json_t *card = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "@type", "MessageCard", "@context",
                             "https://schema.org/extensions", "summary", msg->subject, "themeColor",
                             strcmp(color_of(msg->severity), "Attention") == 0 ? "D13438"
                             : strcmp(color_of(msg->severity), "Warning") == 0 ? "FFB900"
                                                                               : "2EB886",
                             "title", msg->subject, "text", text ? text : "");
    free(text);
    if (card && msg->link)
        json_object_set_new(card, "potentialAction",
                            json_pack("[{s:s, s:s, s:[{s:s, s:s}]}]", "@type", "OpenUri", "name",
                                      "Open run", "targets", "os", "default", "uri", msg->link));
    return card;
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
    bool legacy = strcmp(nset_str(s, "format") ?: "", "message_card") == 0;
    json_t *body = legacy ? message_card(msg) : adaptive_card(msg, payload);
    int rc = nhttp_post_json(host, secret, body, s, done, ud);
    json_decref(payload);
    json_decref(s);
    return rc;
}

static const opsc_notifier teams = {
    .size = sizeof(opsc_notifier),
    .name = "teams",
    .summary = "Microsoft Teams Workflows webhook: an Adaptive Card (MessageCard on request)",
    .settings_schema = J_settings,
    .validate = nset_validate_object,
    .send = send_msg,
};

static int init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)cfg;
    host = api;
    *state = NULL;
    return nplugin_init(api, "notify-teams", &teams);
}

OPSC_PLUGIN_DEFINE("notify-teams", "1.0.0", OPSC_KIND_NOTIFIER,
                   "Microsoft Teams notifications through Workflows webhooks (Adaptive Cards)",
                   "Apache-2.0", init, nplugin_shutdown)
