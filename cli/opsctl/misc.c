/* misc.c - commands beyond the generic verbs: status, whoami, cron preview, jobs apply and export,
 * connectivity tests, schedule actions. */
#include <stdlib.h>
#include <string.h>

#include "misc.h"

/* ---- status and whoami --------------------------------------------------------------------------
 */

static void status_table(opsctl *c, json_t *s, const void *ud)
{
    (void)ud;
    json_t *sys = json_object_get(s, "system"), *me = json_object_get(s, "me");
    const char *health = json_string_value(json_object_get(s, "health"));
    const char *ready = json_string_value(json_object_get(s, "ready"));
    printf("server   %s\n", c->url);
    printf("health   %s%s%s\n", color(c, state_color(strcmp(health, "ok") ? "failed" : "ok")),
           health, color(c, C_RESET));
    printf("ready    %s%s%s\n", color(c, state_color(strcmp(ready, "ready") ? "failed" : "ok")),
           ready, color(c, C_RESET));
    if (sys) {
        json_t *pl = json_object_get(sys, "plugins");
        printf("version  opsconductord %s (plugin ABI %s), up %.0f s\n",
               json_string_value(json_object_get(sys, "version")),
               json_string_value(json_object_get(sys, "plugin_abi")),
               json_number_value(json_object_get(sys, "uptime_s")));
        printf("plugins  %lld loaded, %lld refused; %lld step libraries, %lld transports\n",
               (long long)json_integer_value(json_object_get(pl, "loaded")),
               (long long)json_integer_value(json_object_get(pl, "refused")),
               (long long)json_integer_value(json_object_get(sys, "step_libraries")),
               (long long)json_integer_value(json_object_get(sys, "transports")));
    }
    if (me)
        printf("user     %s (%s, by %s)\n",
               json_string_value(json_object_get(json_object_get(me, "user"), "username")),
               json_string_value(json_object_get(me, "effective_role")),
               json_string_value(json_object_get(me, "authenticated_by")));
    else
        printf("user     not logged in (opsctl login, or OPSC_TOKEN)\n");
}

/* GET path as text: "ok", or the error's code. */
static char *probe(opsctl *c, const char *path, bool *ok)
{
    http_answer ans;
    *ok = false;
    if (http_request(c, "GET", path, NULL, &ans) != 0)
        return strdup("unreachable");
    *ok = ans.status == 200;
    const char *st = json_string_value(json_object_get(ans.json, "status"));
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", st ? st : *ok ? "ok" : "HTTP error");
    http_answer_free(&ans);
    return strdup(buf);
}

int cmd_status(opsctl *c, const command *cmd, args *a)
{
    (void)cmd, (void)a;
    bool healthy, ready;
    char *health = probe(c, "/health", &healthy);
    if (strcmp(health, "unreachable") == 0) {
        free(health);
        return OPSCTL_ERROR; /* the reason is printed already */
    }
    char *readiness = probe(c, "/ready", &ready);
    json_t *s = json_pack("{s:s, s:s, s:s}", "url", c->url, "health", health, "ready", readiness);
    free(health);
    free(readiness);
    json_t *sys = NULL;
    http_answer ans;
    if (session_bearer(c) && http_request(c, "GET", "/api/v1/auth/me", NULL, &ans) == 0) {
        if (ans.status == 200 && api_call(c, "GET", "/api/v1/system", NULL, &sys) == 0) {
            json_object_set(s, "me", ans.json);
            json_object_set_new(s, "system", sys);
        }
        http_answer_free(&ans);
    }
    int rc = print_result(c, s, status_table, NULL);
    json_decref(s);
    return rc ? rc : (healthy && ready ? 0 : OPSCTL_ERROR);
}

static void whoami_table(opsctl *c, json_t *me, const void *ud)
{
    (void)ud;
    json_t *u = json_object_get(me, "user");
    printf("%s%s%s (role %s, %s) on %s\n", color(c, C_BOLD),
           json_string_value(json_object_get(u, "username")), color(c, C_RESET),
           json_string_value(json_object_get(me, "effective_role")),
           json_string_value(json_object_get(me, "authenticated_by")), c->url);
}

int cmd_whoami(opsctl *c, const command *cmd, args *a)
{
    (void)cmd, (void)a;
    json_t *me = NULL;
    int rc = api_call(c, "GET", "/api/v1/auth/me", NULL, &me);
    if (rc == 0)
        rc = print_result(c, me, whoami_table, NULL);
    json_decref(me);
    return rc;
}

/* ---- cron preview and schedule actions ------------------------------------------------------- */

static const column time_cols[] = {
    {"UTC", "utc", COL_TEXT},
    {"LOCAL", "local", COL_TEXT},
    {"ZONE", "abbr", COL_TEXT},
    {"NOTE", "note", COL_TEXT},
    {NULL, NULL, 0},
};

static void times_table(opsctl *c, json_t *v, const void *ud)
{
    (void)ud;
    print_table(c, time_cols, json_object_get(v, "times"));
}

int cmd_cron_preview(opsctl *c, const command *cmd, args *a)
{
    const char *count = arg_value(a, "count"), *from = arg_value(a, "from");
    const char *tz = arg_value(a, "tz");
    json_t *body = json_pack("{s:s, s:s}", "cron", a->argv[0], "timezone", tz ? tz : "UTC");
    if (count) {
        char *end;
        long n = strtol(count, &end, 10);
        if (*end || n < 1) {
            json_decref(body);
            return usage_error(cmd, "--count takes a number from 1 to 1000");
        }
        json_object_set_new(body, "count", json_integer(n));
    }
    if (from)
        json_object_set_new(body, "from", json_string(from));
    json_t *ans = NULL;
    int rc = api_call(c, "POST", "/api/v1/cron/preview", body, &ans);
    if (rc == 0)
        rc = print_result(c, ans, times_table, NULL);
    json_decref(body);
    json_decref(ans);
    return rc;
}

/* POST (or GET) <schedule>/<action>, printed as the schedule or the times. */
int cmd_schedule_action(opsctl *c, const command *cmd, args *a)
{
    char suffix[64];
    const char *count = arg_value(a, "count");
    bool next = strcmp(cmd->name, "next") == 0;
    snprintf(suffix, sizeof(suffix), "/%s%s%s", cmd->name, count ? "?count=" : "",
             count ? count : "");
    json_t *ans = NULL;
    int rc = resource_call(c, &res_schedules, a->argv[0], next ? "GET" : "POST", suffix, &ans);
    if (rc == 0 && next)
        rc = print_result(c, ans, times_table, NULL);
    else if (rc == 0)
        rc = print_done(c, &res_schedules, strcmp(cmd->name, "pause") == 0 ? "paused" : "resumed",
                        ans);
    json_decref(ans);
    return rc;
}

/* ---- connectivity tests ---------------------------------------------------------------------- */

static const column test_cols[] = {
    {"NAME", "name", COL_TEXT},
    {"OK", "ok", COL_BOOL},
    {"CONNECT MS", "connect_ms", COL_TEXT},
    {"PROBE MS", "probe_ms", COL_TEXT},
    {"OS", "facts.os_pretty_name", COL_TEXT},
    {"ERROR", "error.message", COL_TEXT},
    {NULL, NULL, 0},
};

static void tests_table(opsctl *c, json_t *v, const void *ud)
{
    (void)ud;
    json_t *items = json_object_get(v, "items");
    json_t *one = items ? NULL : json_pack("[O]", v);
    print_table(c, test_cols, items ? items : one);
    json_decref(one);
    json_t *sum = json_object_get(v, "summary");
    if (sum)
        printf("%lld of %lld targets ok\n",
               (long long)json_integer_value(json_object_get(sum, "ok")),
               (long long)json_integer_value(json_object_get(sum, "total")));
}

/* Exit 1 when a target failed its test: scripts can gate on it. */
int cmd_test(opsctl *c, const command *cmd, args *a)
{
    char suffix[64] = "/test";
    const char *conc = arg_value(a, "concurrency");
    if (conc)
        snprintf(suffix, sizeof(suffix), "/test?concurrency=%s", conc);
    json_t *ans = NULL;
    int rc = resource_call(c, cmd->data, a->argv[0], "POST", suffix, &ans);
    if (rc == 0)
        rc = print_result(c, ans, tests_table, NULL);
    json_t *sum = json_object_get(ans, "summary");
    bool failed = sum ? json_integer_value(json_object_get(sum, "ok")) !=
                            json_integer_value(json_object_get(sum, "total"))
                      : ans && !json_is_true(json_object_get(ans, "ok"));
    json_decref(ans);
    return rc ? rc : failed ? OPSCTL_ERROR : 0;
}

int cmd_group_targets(opsctl *c, const command *cmd, args *a)
{
    char path[512];
    int rc = resource_path(c, &res_groups, a->argv[0], "/targets", path, sizeof(path));
    (void)cmd;
    return rc ? rc : list_items(c, &res_targets, a, path, "");
}
