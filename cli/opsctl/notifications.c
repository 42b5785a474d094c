/* notifications.c - notification channels, rules and deliveries, inbound hooks: the collections,
 * and `notifications channels test`. */
#include <stdlib.h>
#include <string.h>

#include "misc.h"

static const column channel_cols[] = {
    {"NAME", "name", COL_TEXT},
    {"TYPE", "type", COL_TEXT},
    {"ENABLED", "enabled", COL_BOOL},
    {"DISABLED BECAUSE", "disabled_reason", COL_TEXT},
    {"DESCRIPTION", "description", COL_TEXT},
    {"ID", "id", COL_TEXT},
    {NULL, NULL, 0},
};
static const column rule_cols[] = {
    {"NAME", "name", COL_TEXT},
    {"EVENTS", "events", COL_LIST},
    {"CHANNELS", "channels", COL_COUNT},
    {"ENABLED", "enabled", COL_BOOL},
    {"DESCRIPTION", "description", COL_TEXT},
    {"ID", "id", COL_TEXT},
    {NULL, NULL, 0},
};
static const column delivery_cols[] = {
    {"CREATED", "created_at", COL_TIME},
    {"EVENT", "event", COL_TEXT},
    {"CHANNEL", "channel_type", COL_TEXT},
    {"STATE", "state", COL_STATE},
    {"ATTEMPTS", "attempts", COL_COUNT},
    {"ERROR", "error", COL_TEXT},
    {"ID", "id", COL_TEXT},
    {NULL, NULL, 0},
};
static const column hook_cols[] = {
    {"NAME", "name", COL_TEXT},       {"VERIFY", "verify", COL_TEXT},
    {"ENABLED", "enabled", COL_BOOL}, {"TRIGGER", "trigger_path", COL_TEXT},
    {"ID", "id", COL_TEXT},           {NULL, NULL, 0},
};

const resource res_channels = {"notifications channels",
                               "channel",
                               "/api/v1/notifications/channels",
                               "name",
                               NULL,
                               channel_cols,
                               0,
                               {{"credential_id", &res_credentials}, {NULL, NULL}}};
const resource res_rules = {"notifications rules",
                            "rule",
                            "/api/v1/notifications/rules",
                            "name",
                            NULL,
                            rule_cols,
                            0,
                            {{"channels", &res_channels},
                             {"filter.job_ids", &res_jobs},
                             {"filter.group_ids", &res_groups},
                             {"users", &res_users},
                             {NULL, NULL}}};
const resource res_deliveries = {"notifications deliveries",
                                 "delivery",
                                 "/api/v1/notifications/deliveries",
                                 NULL,
                                 NULL,
                                 delivery_cols,
                                 50,
                                 {{"channel", &res_channels}, {"rule", &res_rules}, {NULL, NULL}}};
const resource res_hooks = {
    "hooks",
    "hook",
    "/api/v1/hooks",
    "name",
    NULL,
    hook_cols,
    0,
    {{"job_id", &res_jobs}, {"credential_id", &res_credentials}, {NULL, NULL}}};

static void delivered_table(opsctl *c, json_t *v, const void *ud)
{
    const char *name = ud;
    json_t *d = json_object_get(v, "delivery");
    printf("test message %sdelivered%s to channel %s (delivery %s)\n", color(c, C_GREEN),
           color(c, C_RESET), name, json_string_value(json_object_get(d, "id")));
}

/* The test message's outcome: delivered, or the API's 422 with the receiver's answer. */
int cmd_channels_test(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    json_t *ans = NULL;
    int rc = resource_call(c, &res_channels, a->argv[0], "POST", "/test", &ans);
    if (rc == 0)
        rc = print_result(c, ans, delivered_table, a->argv[0]);
    json_decref(ans);
    return rc;
}
