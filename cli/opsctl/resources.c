/* resources.c - the API's collections and their list, show, create, update and delete commands.
 *
 * A resource says where it lives, which field names it (so NAME|ID works
 * everywhere), how a name is looked up cheaply, its table columns, and
 * which body fields hold ids of other resources (those accept names too).
 */
#include <stdlib.h>
#include <string.h>

#include "resources.h"

/* ---- the collections ---------------------------------------------------------------------- */

static const column target_cols[] = {
    {"NAME", "name", COL_TEXT},
    {"ADDRESS", "address", COL_TEXT},
    {"TRANSPORT", "transport", COL_TEXT},
    {"OS", "os_family", COL_TEXT},
    {"LABELS", "labels", COL_LABELS},
    {"ENABLED", "enabled", COL_BOOL},
    {"ID", "id", COL_TEXT},
    {NULL, NULL, 0},
};
static const column group_cols[] = {
    {"NAME", "name", COL_TEXT},
    {"SELECTOR", "selector", COL_TEXT},
    {"MEMBERS", "members", COL_COUNT},
    {"GROUPS", "groups", COL_COUNT},
    {"DESCRIPTION", "description", COL_TEXT},
    {"ID", "id", COL_TEXT},
    {NULL, NULL, 0},
};
static const column credential_cols[] = {
    {"NAME", "name", COL_TEXT},
    {"TYPE", "type", COL_TEXT},
    {"USERNAME", "username", COL_TEXT},
    {"FINGERPRINT", "fingerprint", COL_TEXT},
    {"ID", "id", COL_TEXT},
    {NULL, NULL, 0},
};
static const column job_cols[] = {
    {"NAME", "name", COL_TEXT},
    {"VERSION", "version", COL_TEXT},
    {"STEPS", "steps", COL_COUNT},
    {"UPDATED", "updated_at", COL_TIME},
    {"DESCRIPTION", "description", COL_TEXT},
    {"ID", "id", COL_TEXT},
    {NULL, NULL, 0},
};
static const column schedule_cols[] = {
    {"ID", "id", COL_TEXT},
    {"CRON", "cron", COL_TEXT},
    {"TIMEZONE", "timezone", COL_TEXT},
    {"ENABLED", "enabled", COL_BOOL},
    {"NEXT FIRE", "status.next_fire_at", COL_TIME},
    {"DESCRIPTION", "description", COL_TEXT},
    {NULL, NULL, 0},
};
static const column run_cols[] = {
    {"ID", "id", COL_TEXT},
    {"JOB", "job_name", COL_TEXT},
    {"STATE", "state", COL_STATE},
    {"TARGETS", "target_count", COL_TEXT},
    {"BY", "triggered_by", COL_TEXT},
    {"CREATED", "created_at", COL_TIME},
    {NULL, NULL, 0},
};
static const column user_cols[] = {
    {"USERNAME", "username", COL_TEXT},
    {"ROLE", "role", COL_TEXT},
    {"ENABLED", "enabled", COL_BOOL},
    {"PROVIDER", "provider", COL_TEXT},
    {"DISPLAY NAME", "display_name", COL_TEXT},
    {"ID", "id", COL_TEXT},
    {NULL, NULL, 0},
};
static const column token_cols[] = {
    {"NAME", "name", COL_TEXT},
    {"USER", "username", COL_TEXT},
    {"ROLE", "role", COL_TEXT},
    {"PREFIX", "prefix", COL_TEXT},
    {"EXPIRES", "expires_at", COL_TIME},
    {"ID", "id", COL_TEXT},
    {NULL, NULL, 0},
};
static const column steplib_cols[] = {
    {"NAME", "name", COL_TEXT},
    {"LATEST", "latest", COL_TEXT},
    {"VERSIONS", "versions", COL_COUNT},
    {"ISOLATION", "isolation", COL_TEXT},
    {"SUMMARY", "versions.0.summary", COL_TEXT},
    {NULL, NULL, 0},
};
static const column audit_cols[] = {
    {"TIME", "created_at", COL_TIME},  {"ACTOR", "actor", COL_TEXT},
    {"ACTION", "action", COL_TEXT},    {"OBJECT", "object", COL_TEXT},
    {"OUTCOME", "outcome", COL_STATE}, {"STATUS", "status", COL_TEXT},
    {"CLIENT", "client", COL_TEXT},    {NULL, NULL, 0},
};

const resource res_credentials = {
    "credentials", "credential", "/api/v1/credentials", "name", NULL, credential_cols, 0,
    {{NULL, NULL}}};
const resource res_targets = {"targets",
                              "target",
                              "/api/v1/targets",
                              "name",
                              "name",
                              target_cols,
                              0,
                              {{"credential_id", &res_credentials}, {NULL, NULL}}};
const resource res_groups = {"groups",   "group", "/api/v1/groups", "name", "name_prefix",
                             group_cols, 0,       {{NULL, NULL}}};
const resource res_jobs = {"jobs",   "job", "/api/v1/jobs", "name", LOOKUP_DIRECT,
                           job_cols, 0,     {{NULL, NULL}}};
const resource res_schedules = {"schedules",
                                "schedule",
                                "/api/v1/schedules",
                                NULL,
                                NULL,
                                schedule_cols,
                                0,
                                {{"job_id", &res_jobs}, {NULL, NULL}}};
const resource res_runs = {"runs", "run", "/api/v1/runs", NULL, NULL, run_cols, 20, {{NULL, NULL}}};
const resource res_users = {"users",   "user", "/api/v1/users", "username", NULL,
                            user_cols, 0,      {{NULL, NULL}}};
const resource res_tokens = {"tokens",   "token", "/api/v1/tokens", "name", NULL,
                             token_cols, 0,       {{NULL, NULL}}};
const resource res_steplibs = {"steplibs", "step library", "/api/v1/steplibs",
                               "name",     LOOKUP_DIRECT,  steplib_cols,
                               0,          {{NULL, NULL}}};
const resource res_audit = {"audit", "audit record", "/api/v1/audit", NULL, NULL, audit_cols,
                            50,      {{NULL, NULL}}};

static const resource *const all_resources[] = {
    &res_targets,    &res_groups, &res_credentials, &res_jobs,  &res_schedules, &res_runs,
    &res_users,      &res_tokens, &res_steplibs,    &res_audit, &res_channels,  &res_rules,
    &res_deliveries, &res_hooks,  &res_scans,       &res_hosts, &res_profiles,
};

const resource *resource_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof(all_resources) / sizeof(all_resources[0]); i++)
        if (strcmp(all_resources[i]->name, name) == 0)
            return all_resources[i];
    return NULL;
}

/* ---- names and ids ------------------------------------------------------------------------ */

bool is_id(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    }
    return true;
}

static int found(const resource *r, const char *ref, json_t *item, char *id, size_t n)
{
    const char *v = json_string_value(json_object_get(item, "id"));
    if (!v) {
        fprintf(stderr, "opsctl: no %s named '%s'\n", r->singular, ref);
        return OPSCTL_ERROR;
    }
    snprintf(id, n, "%s", v);
    return 0;
}

/* The server finds it: GET path/NAME answers the record. */
static int lookup_direct(opsctl *c, const resource *r, const char *ref, char *id, size_t n)
{
    char *esc = url_escape(ref), path[512];
    snprintf(path, sizeof(path), "%s/%s", r->path, esc ? esc : "");
    free(esc);
    http_answer ans;
    int rc = http_request(c, "GET", path, NULL, &ans);
    if (rc == 0 && ans.status == 404)
        rc = found(r, ref, NULL, id, n);
    else if (rc == 0 && ans.status != 200)
        rc = api_error(&ans);
    else if (rc == 0)
        rc = found(r, ref, ans.json, id, n);
    http_answer_free(&ans);
    return rc;
}

int resource_id(opsctl *c, const resource *r, const char *ref, char *id, size_t n)
{
    if (is_id(ref) || !r->name_field) {
        snprintf(id, n, "%s", ref);
        return 0;
    }
    if (r->lookup == LOOKUP_DIRECT)
        return lookup_direct(c, r, ref, id, n);
    char *query = NULL;
    if (r->lookup) {
        char *esc = url_escape(ref);
        query = malloc(strlen(r->lookup) + strlen(esc ? esc : "") + 2);
        if (query)
            sprintf(query, "%s=%s", r->lookup, esc ? esc : "");
        free(esc);
    }
    json_t *items = NULL;
    bool more;
    int rc = api_list(c, r->path, query ? query : "", 0, &items, &more);
    free(query);
    json_t *match = NULL, *it;
    size_t i;
    json_array_foreach(items, i, it)
    {
        const char *name = json_string_value(json_object_get(it, r->name_field));
        if (name && strcmp(name, ref) == 0)
            match = it;
    }
    if (rc == 0)
        rc = found(r, ref, match, id, n);
    json_decref(items);
    return rc;
}

/* The names at `path` under v (a string, or an array of them) become ids
 * in place; "*" in the path stands for every item of an array. */
static int resolve_at(opsctl *c, const resource *res, json_t *v, const char *path)
{
    char key[64];
    size_t n = strcspn(path, ".");
    if (!*path) {
        json_t *item = v;
        size_t i = 0, count = json_is_array(v) ? json_array_size(v) : 1;
        for (; i < count; i++) {
            item = json_is_array(v) ? json_array_get(v, i) : v;
            const char *ref = json_string_value(item);
            char id[64];
            int rc = ref && !is_id(ref) ? resource_id(c, res, ref, id, sizeof(id)) : -1;
            if (rc > 0)
                return rc;
            if (rc == 0)
                json_string_set(item, id);
        }
        return 0;
    }
    snprintf(key, sizeof(key), "%.*s", (int)(n < sizeof(key) ? n : sizeof(key) - 1), path);
    const char *rest = path + n + (path[n] == '.');
    if (strcmp(key, "*") != 0)
        return json_is_object(v) ? resolve_at(c, res, json_object_get(v, key), rest) : 0;
    json_t *item;
    size_t i;
    json_array_foreach(v, i, item)
    {
        int rc = resolve_at(c, res, item, rest);
        if (rc)
            return rc;
    }
    return 0;
}

/* Fields that hold another resource's id accept its name. */
int resolve_refs(opsctl *c, const resource *r, json_t *body)
{
    for (const struct resource_ref *ref = r->refs; ref->field; ref++) {
        int rc = body ? resolve_at(c, ref->res, body, ref->field) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

/* "/api/v1/targets/<id><suffix>" for the NAME|ID argument. */
int resource_path(opsctl *c, const resource *r, const char *ref, const char *suffix, char *path,
                  size_t n)
{
    char id[64];
    int rc = resource_id(c, r, ref, id, sizeof(id));
    if (rc == 0)
        snprintf(path, n, "%s/%s%s", r->path, id, suffix ? suffix : "");
    return rc;
}

int resource_call(opsctl *c, const resource *r, const char *ref, const char *method,
                  const char *suffix, json_t **out)
{
    char path[512];
    int rc = resource_path(c, r, ref, suffix, path, sizeof(path));
    return rc ? rc : api_call(c, method, path, NULL, out);
}

/* ---- the generic verbs ---------------------------------------------------------------------- */

static void list_table(opsctl *c, json_t *items, const void *ud)
{
    const resource *r = ud;
    if (json_array_size(items) == 0)
        fprintf(stderr, "no %s\n", r->name);
    else
        print_table(c, r->columns, items);
}

int list_items(opsctl *c, const resource *r, args *a, const char *path, const char *query)
{
    size_t limit = r->default_limit;
    const char *l = arg_value(a, "limit");
    if (l)
        limit = (size_t)strtoul(l, NULL, 10);
    if (arg_flag(a, "all"))
        limit = 0;
    json_t *items = NULL;
    bool more = false;
    int rc = api_list(c, path, query, limit, &items, &more);
    if (rc == 0) {
        rc = print_result(c, items, list_table, r);
        if (more && !c->get && c->output == OUT_TABLE)
            fprintf(stderr, "(%zu shown, there are more: --limit N or --all)\n",
                    json_array_size(items));
    }
    json_decref(items);
    return rc;
}

/* A filter on a reference field (channel=ops-mail) takes a name: argv[i]
 * becomes "channel=<id>" (in held, freed by the caller). */
static int resolve_filter(opsctl *c, const resource *r, char **arg, char **held)
{
    const char *eq = strchr(*arg, '=');
    for (const struct resource_ref *ref = r->refs; eq && ref->field; ref++) {
        char id[64];
        if (strlen(ref->field) != (size_t)(eq - *arg) ||
            strncmp(ref->field, *arg, (size_t)(eq - *arg)) != 0 || is_id(eq + 1))
            continue;
        int rc = resource_id(c, ref->res, eq + 1, id, sizeof(id));
        if (rc)
            return rc;
        *held = malloc(strlen(ref->field) + strlen(id) + 2);
        if (!*held)
            return OPSCTL_ERROR;
        sprintf(*held, "%s=%s", ref->field, id);
        *arg = *held;
    }
    return 0;
}

int cmd_list(opsctl *c, const command *cmd, args *a)
{
    const resource *r = cmd->data;
    char **held = calloc((size_t)a->argc + 1, sizeof(char *));
    int rc = held ? 0 : OPSCTL_ERROR;
    for (int i = 0; rc == 0 && i < a->argc; i++)
        rc = resolve_filter(c, r, &a->argv[i], &held[i]);
    char *query = rc ? NULL : query_build(a->argc, a->argv);
    if (rc == 0 && !query)
        rc = usage_error(cmd, "filters are FILTER=VALUE");
    if (rc == 0)
        rc = list_items(c, r, a, r->path, query);
    free(query);
    for (int i = 0; held && i < a->argc; i++)
        free(held[i]);
    free(held);
    return rc;
}

int cmd_show(opsctl *c, const command *cmd, args *a)
{
    json_t *rec = NULL;
    int rc = resource_call(c, cmd->data, a->argv[0], "GET", NULL, &rec);
    if (rc == 0)
        rc = print_result(c, rec, NULL, NULL);
    json_decref(rec);
    return rc;
}

struct done {
    const resource *r;
    const char *verb;
};

/* "created target web-11 (01a2...)"; a token's secret is shown once, so it is printed. */
static void done_table(opsctl *c, json_t *rec, const void *ud)
{
    const struct done *d = ud;
    const resource *r = d->r;
    const char *name =
        r->name_field ? json_string_value(json_object_get(rec, r->name_field)) : NULL;
    const char *id = json_string_value(json_object_get(rec, "id"));
    printf("%s %s %s%s%s%s\n", d->verb, r->singular,
           name ? name
           : id ? id
                : "",
           name && id ? " (" : "", name && id ? id : "", name && id ? ")" : "");
    const char *trigger = json_string_value(json_object_get(rec, "trigger_path"));
    if (trigger) /* an inbound hook: where its sender posts */
        printf("trigger: %s%s\n", trigger[0] == '/' ? c->url : "", trigger);
    const char *token = json_string_value(json_object_get(rec, "token"));
    if (token)
        printf("%stoken: %s%s\n(shown once: keep it now; only its prefix is stored)\n",
               color(c, C_BOLD), token, color(c, C_RESET));
}

int print_done(opsctl *c, const resource *r, const char *verb, json_t *rec)
{
    struct done d = {r, verb};
    return print_result(c, rec, done_table, &d);
}

int cmd_create(opsctl *c, const command *cmd, args *a)
{
    const resource *r = cmd->data;
    json_t *body = NULL, *rec = NULL;
    int rc = body_build(arg_value(a, "file"), a->argc, a->argv, &body);
    if (rc == 0)
        rc = resolve_refs(c, r, body);
    if (rc == 0)
        rc = api_call(c, "POST", r->path, body, &rec);
    if (rc == 0)
        rc = print_done(c, r, "created", rec);
    json_decref(body);
    json_decref(rec);
    return rc;
}

int cmd_update(opsctl *c, const command *cmd, args *a)
{
    const resource *r = cmd->data;
    char path[512];
    json_t *body = NULL, *rec = NULL;
    int rc = body_build(arg_value(a, "file"), a->argc - 1, a->argv + 1, &body);
    if (rc == 0 && json_object_size(body) == 0)
        rc = usage_error(cmd, "nothing to change: give FIELD=VALUE or -f FILE");
    if (rc == 0)
        rc = resolve_refs(c, r, body);
    if (rc == 0)
        rc = resource_path(c, r, a->argv[0], NULL, path, sizeof(path));
    if (rc == 0)
        rc = api_call(c, "PATCH", path, body, &rec);
    if (rc == 0)
        rc = print_done(c, r, "updated", rec);
    json_decref(body);
    json_decref(rec);
    return rc;
}

int cmd_delete(opsctl *c, const command *cmd, args *a)
{
    const resource *r = cmd->data;
    char path[512];
    int rc = resource_path(c, r, a->argv[0], arg_flag(a, "force") ? "?force=true" : NULL, path,
                           sizeof(path));
    if (rc == 0)
        rc = api_call(c, "DELETE", path, NULL, NULL);
    if (rc == 0 && !c->get && c->output == OUT_TABLE)
        printf("deleted %s %s\n", r->singular, a->argv[0]);
    return rc;
}
