/* runs.c - opsctl run, and the runs commands that are more than a list: show, log, cancel, retry.
 */
#include <stdlib.h>
#include <string.h>

#include "follow.h"
#include "misc.h"

/* -p values arrive as text; the job says which parameters are numbers or
 * booleans, so `-p count=3` works without JSON quoting (-p count:=3 too). */
static void coerce_params(json_t *params, json_t *job)
{
    json_t *p;
    size_t i;
    json_array_foreach(json_object_get(job, "parameters"), i, p)
    {
        const char *name = json_string_value(json_object_get(p, "name"));
        const char *type = json_string_value(json_object_get(p, "type"));
        const char *text = json_string_value(json_object_get(params, name ? name : ""));
        if (!text || !type)
            continue;
        char *end;
        long long v = strtoll(text, &end, 10);
        if (strcmp(type, "int") == 0 && *text && !*end)
            json_object_set_new(params, name, json_integer(v));
        else if (strcmp(type, "bool") == 0 && strchr("tTyY1", *text))
            json_object_set_new(params, name, json_true());
        else if (strcmp(type, "bool") == 0 && strchr("fFnN0", *text))
            json_object_set_new(params, name, json_false());
    }
}

/* --target and --group (names or ids) and --targets SELECTOR override the job's targets. */
static int target_override(opsctl *c, args *a, json_t *body)
{
    const char *vals[64];
    json_t *t = json_object();
    const char *sel = arg_value(a, "targets");
    if (sel)
        json_object_set_new(t, "selector", json_string(sel));
    const struct {
        const char *opt, *field;
        const resource *res;
    } lists[] = {{"target", "ids", &res_targets}, {"group", "groups", &res_groups}};
    for (size_t k = 0; k < 2; k++) {
        size_t n = arg_values(a, lists[k].opt, vals, 64);
        json_t *ids = n ? json_array() : NULL;
        for (size_t i = 0; i < n; i++) {
            char id[64];
            int rc = resource_id(c, lists[k].res, vals[i], id, sizeof(id));
            if (rc) {
                json_decref(ids);
                json_decref(t);
                return rc;
            }
            json_array_append_new(ids, json_string(id));
        }
        if (ids)
            json_object_set_new(t, lists[k].field, ids);
    }
    if (json_object_size(t))
        json_object_set(body, "targets", t);
    json_decref(t);
    return 0;
}

static int run_body(opsctl *c, args *a, json_t *job, json_t **out)
{
    const char *vals[256];
    size_t n = arg_values(a, "param", vals, 256);
    json_t *params = NULL;
    int rc = body_build(NULL, (int)n, (char **)vals, &params);
    if (rc)
        return rc;
    coerce_params(params, job);
    json_t *body = json_pack("{s:o}", "params", params);
    if (arg_flag(a, "dry-run"))
        json_object_set_new(body, "dry_run", json_true());
    const char *version = arg_value(a, "job-version");
    if (version)
        json_object_set_new(body, "job_version", json_integer(strtoll(version, NULL, 10)));
    rc = target_override(c, a, body);
    if (rc)
        json_decref(body);
    else
        *out = body;
    return rc;
}

static void dry_run_table(opsctl *c, json_t *v, const void *ud)
{
    (void)ud;
    json_t *t, *s;
    size_t i, j;
    json_array_foreach(json_object_get(v, "targets"), i, t)
    {
        printf("%s%s%s\n", color(c, C_BOLD), json_string_value(json_object_get(t, "name")),
               color(c, C_RESET));
        json_array_foreach(json_object_get(t, "steps"), j, s)
        {
            const char *cmd = json_string_value(json_object_get(s, "command"));
            printf("  %s%s%s (%s)\n%s%s", color(c, C_DIM),
                   json_string_value(json_object_get(s, "id")), color(c, C_RESET),
                   json_string_value(json_object_get(s, "type")), cmd ? cmd : "",
                   cmd && *cmd && cmd[strlen(cmd) - 1] != '\n' ? "\n" : "");
        }
    }
}

static void started_table(opsctl *c, json_t *run, const void *ud)
{
    (void)ud;
    printf("run %s%s%s started: job %s version %lld on %lld targets\n", color(c, C_BOLD),
           json_string_value(json_object_get(run, "id")), color(c, C_RESET),
           json_string_value(json_object_get(run, "job_name")),
           (long long)json_integer_value(json_object_get(run, "job_version")),
           (long long)json_integer_value(json_object_get(run, "target_count")));
}

/* A run just created: followed to its end, or said. */
static int started(opsctl *c, json_t *run, bool follow)
{
    const char *id = json_string_value(json_object_get(run, "id"));
    if (!follow || !id)
        return print_result(c, run, started_table, NULL);
    if (c->output == OUT_TABLE && !c->get)
        started_table(c, run, NULL);
    else if (c->get)
        print_result(c, run, NULL, NULL);
    fflush(stdout);
    return follow_run(c, id, NULL, c->get != NULL);
}

int cmd_run(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    char *esc = url_escape(a->argv[0]), path[512];
    snprintf(path, sizeof(path), "/api/v1/jobs/%s", esc ? esc : "");
    free(esc);
    json_t *job = NULL, *body = NULL, *run = NULL;
    int rc = api_call(c, "GET", path, NULL, &job);
    if (rc == 0)
        rc = run_body(c, a, job, &body);
    if (rc == 0) {
        snprintf(path, sizeof(path), "/api/v1/jobs/%s/runs",
                 json_string_value(json_object_get(job, "id")));
        rc = api_call(c, "POST", path, body, &run);
    }
    if (rc == 0 && arg_flag(a, "dry-run"))
        rc = print_result(c, run, dry_run_table, NULL);
    else if (rc == 0)
        rc = started(c, run, arg_flag(a, "follow"));
    json_decref(job);
    json_decref(body);
    json_decref(run);
    return rc;
}

/* ---- runs show, log, cancel, retry --------------------------------------------------------------
 */

static const column step_cols[] = {
    {"TARGET", "target", COL_TEXT},     {"STEP", "id", COL_TEXT},
    {"STATE", "state", COL_STATE},      {"EXIT", "exit_code", COL_TEXT},
    {"ATTEMPTS", "attempts", COL_TEXT}, {"TOOK", "took", COL_TEXT},
    {"ERROR", "error", COL_TEXT},       {NULL, NULL, 0},
};

static void run_table(opsctl *c, json_t *run, const void *ud)
{
    (void)ud;
    char took[32];
    const char *state = json_string_value(json_object_get(run, "state"));
    const char *reason = json_string_value(json_object_get(run, "reason"));
    format_duration(json_string_value(json_object_get(run, "started_at")),
                    json_string_value(json_object_get(run, "finished_at")), took, sizeof(took));
    printf("run %s: job %s version %lld, %s%s%s%s%s%s%s\n",
           json_string_value(json_object_get(run, "id")),
           json_string_value(json_object_get(run, "job_name")),
           (long long)json_integer_value(json_object_get(run, "job_version")),
           color(c, state_color(state)), state ? state : "", color(c, C_RESET), *took ? " in " : "",
           took, reason ? ": " : "", reason ? reason : "");
    json_t *rows = json_array(), *t, *s;
    size_t i, j;
    json_array_foreach(json_object_get(run, "targets"), i, t)
    {
        json_array_foreach(json_object_get(t, "steps"), j, s)
        {
            json_t *row = json_deep_copy(s);
            format_duration(json_string_value(json_object_get(s, "started_at")),
                            json_string_value(json_object_get(s, "finished_at")), took,
                            sizeof(took));
            json_object_set(row, "target", json_object_get(t, "name"));
            json_object_set_new(row, "took", json_string(took));
            json_array_append_new(rows, row);
        }
    }
    print_table(c, step_cols, rows);
    json_decref(rows);
}

int cmd_runs_show(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    json_t *run = NULL;
    int rc = resource_call(c, &res_runs, a->argv[0], "GET", NULL, &run);
    if (rc == 0)
        rc = print_result(c, run, run_table, NULL);
    json_decref(run);
    return rc;
}

/* The stored log, page by page, printed as it would have been live. */
static int print_log(opsctl *c, const char *run_id, const char *target_id)
{
    char path[256], query[128] = "";
    snprintf(path, sizeof(path), "/api/v1/runs/%s", run_id);
    follower f;
    follower_init(&f, c, target_id);
    json_t *run = NULL, *items = NULL;
    bool more;
    int rc = api_call(c, "GET", path, NULL, &run);
    if (rc == 0) {
        follower_learn(&f, run);
        strcat(path, "/log");
        if (target_id)
            snprintf(query, sizeof(query), "target=%s", target_id);
        rc = api_list(c, path, query, 0, &items, &more);
    }
    if (rc == 0 && (c->output == OUT_JSON || c->get)) {
        rc = print_result(c, items, NULL, NULL);
    } else if (rc == 0) {
        json_t *rec;
        size_t i;
        json_array_foreach(items, i, rec) follower_log(&f, rec);
        follower_flush(&f);
    }
    json_decref(run);
    json_decref(items);
    follower_free(&f);
    return rc;
}

int cmd_runs_log(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    char id[64], target[64] = "";
    const char *t = arg_value(a, "target");
    int rc = t ? resource_id(c, &res_targets, t, target, sizeof(target)) : 0;
    if (rc == 0)
        rc = resource_id(c, &res_runs, a->argv[0], id, sizeof(id));
    if (rc)
        return rc;
    if (arg_flag(a, "follow"))
        return follow_run(c, id, t ? target : NULL, false);
    return print_log(c, id, t ? target : NULL);
}

int cmd_runs_cancel(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    json_t *run = NULL;
    int rc = resource_call(c, &res_runs, a->argv[0], "POST", "/cancel", &run);
    if (rc == 0)
        rc = print_done(c, &res_runs, "cancelling", run);
    json_decref(run);
    return rc;
}

int cmd_runs_retry(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    json_t *run = NULL;
    int rc = resource_call(c, &res_runs, a->argv[0], "POST", "/retry", &run);
    if (rc == 0)
        rc = started(c, run, arg_flag(a, "follow"));
    json_decref(run);
    return rc;
}
