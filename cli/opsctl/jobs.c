/* jobs.c - jobs apply (create or update by name: a job kept in git), export and versions. */
#include <stdlib.h>
#include <string.h>

#include "misc.h"

/* What a job definition may hold; an applied file replaces each of them. */
static const char *const job_fields[] = {
    "name",         "description", "parameters", "targets",          "steps",
    "max_parallel", "batch_size",  "timeout_s",  "allow_concurrent", NULL};

static bool is_job_field(const char *k)
{
    for (int i = 0; job_fields[i]; i++)
        if (strcmp(job_fields[i], k) == 0)
            return true;
    return false;
}

/* The file is the whole definition: a field the stored job has and the file
 * does not is cleared (PATCH null), so removing a line in git removes it. */
static void clear_missing(json_t *body, json_t *existing)
{
    const char *k;
    json_t *v;
    json_object_foreach(existing, k, v)
    {
        if (is_job_field(k) && !json_object_get(body, k))
            json_object_set_new(body, k, json_null());
    }
}

/* An exported job ({"format": "opsconductor.job/1", ...}) names its targets,
 * groups and credentials: the server's import resolves them. */
static int apply_export(opsctl *c, json_t *doc, json_t **rec, const char **verb)
{
    *verb = "applied";
    return api_call(c, "POST", "/api/v1/jobs/import?replace=true", doc, rec);
}

static int apply_plain(opsctl *c, json_t *body, json_t **rec, const char **verb)
{
    const char *name = json_string_value(json_object_get(body, "name"));
    if (!name) {
        fprintf(stderr, "opsctl jobs apply: the file has no \"name\": jobs are applied by name\n");
        return OPSCTL_USAGE;
    }
    char *esc = url_escape(name), path[512];
    snprintf(path, sizeof(path), "/api/v1/jobs/%s", esc ? esc : "");
    free(esc);
    http_answer ans;
    int rc = http_request(c, "GET", path, NULL, &ans);
    if (rc)
        return rc;
    if (ans.status == 404) {
        *verb = "created";
        rc = api_call(c, "POST", "/api/v1/jobs", body, rec);
    } else if (ans.status == 200) {
        *verb = "updated";
        clear_missing(body, ans.json);
        snprintf(path, sizeof(path), "/api/v1/jobs/%s",
                 json_string_value(json_object_get(ans.json, "id")));
        rc = api_call(c, "PATCH", path, body, rec);
    } else {
        rc = api_error(&ans);
    }
    http_answer_free(&ans);
    return rc;
}

int cmd_jobs_apply(opsctl *c, const command *cmd, args *a)
{
    const char *file = arg_value(a, "file");
    if (!file)
        return usage_error(cmd, "give the job's file with -f FILE (- for stdin)");
    json_t *doc = NULL, *rec = NULL;
    const char *verb = "applied";
    int rc = body_build(file, a->argc, a->argv, &doc);
    if (rc == 0) {
        const char *format = json_string_value(json_object_get(doc, "format"));
        if (format && strncmp(format, "opsconductor.job/", 17) == 0)
            rc = apply_export(c, doc, &rec, &verb);
        else
            rc = apply_plain(c, doc, &rec, &verb);
    }
    if (rc == 0 && c->output == OUT_TABLE && !c->get)
        printf("%s job %s (version %lld, %s)\n", verb,
               json_string_value(json_object_get(rec, "name")),
               (long long)json_integer_value(json_object_get(rec, "version")),
               json_string_value(json_object_get(rec, "id")));
    else if (rc == 0)
        rc = print_result(c, rec, NULL, NULL);
    json_decref(doc);
    json_decref(rec);
    return rc;
}

/* Always JSON: the export is a file to keep (opsctl jobs export hello > hello.json). */
int cmd_jobs_export(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    json_t *doc = NULL;
    int rc = resource_call(c, &res_jobs, a->argv[0], "GET", "/export", &doc);
    if (rc == 0 && c->get)
        rc = print_result(c, doc, NULL, NULL);
    else if (rc == 0)
        print_json(doc);
    json_decref(doc);
    return rc;
}

static const column version_cols[] = {
    {"VERSION", "version", COL_TEXT},         {"UPDATED", "updated_at", COL_TIME},
    {"BY", "updated_by", COL_TEXT},           {"STEPS", "steps", COL_COUNT},
    {"DESCRIPTION", "description", COL_TEXT}, {NULL, NULL, 0},
};

static const resource res_job_versions = {"versions", "job version", "", NULL,
                                          NULL,       version_cols,  0,  {{NULL, NULL}}};

int cmd_jobs_versions(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    char path[512];
    int rc = resource_path(c, &res_jobs, a->argv[0], "/versions", path, sizeof(path));
    return rc ? rc : list_items(c, &res_job_versions, a, path, "");
}
