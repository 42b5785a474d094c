/* files.c - files on the appliance (/api/v1/files) and what runs kept (/api/v1/runs/{id}/files):
 * lists, and uploads and downloads streamed between a local file and the API. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "misc.h"

/* ---- streamed transfers ---------------------------------------------------------------------- */

/* A download writes to `out` only once the answer is a success; an error's
 * body is kept in `ans` for api_error(). */
typedef struct sink {
    CURL *h;
    FILE *out;
    http_answer *ans;
    int64_t bytes;
    bool failed; /* writing `out` failed */
} sink;

static size_t on_data(char *data, size_t size, size_t nmemb, void *ud)
{
    sink *s = ud;
    long status = 0;
    size_t n = size * nmemb;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300)
        return http_answer_append(s->ans, data, n);
    if (fwrite(data, 1, n, s->out) != n) {
        s->failed = true;
        return 0;
    }
    s->bytes += (int64_t)n;
    return n;
}

/* An upload's answer goes to ans->body: curl's default write function would print it. */
static size_t on_answer(char *data, size_t size, size_t nmemb, void *ud)
{
    return http_answer_append(ud, data, size * nmemb);
}

/* One transfer: GET into `out`, or PUT from `in` (`size` bytes). */
static int transfer(opsctl *c, const char *path, FILE *out, FILE *in, int64_t size,
                    http_answer *ans, int64_t *bytes)
{
    CURL *h = client_handle();
    if (!h)
        return OPSCTL_ERROR;
    memset(ans, 0, sizeof(*ans));
    const char *bearer = session_bearer(c);
    curl_easy_reset(h);
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: */*");
    if (in)
        headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
    client_setup(c, h, path, bearer, &headers);
    sink s = {h, out, ans, 0, false};
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, in ? on_answer : on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, in ? (void *)ans : (void *)&s);
    if (in) { /* curl reads the file as it sends: the whole file is never in memory */
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READDATA, in);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
    }
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ans->status);
    *bytes = s.bytes;
    if (s.failed) {
        fprintf(stderr, "opsctl: writing the download failed: %s\n", strerror(errno));
        return OPSCTL_ERROR;
    }
    if (rc != CURLE_OK) {
        http_answer_free(ans);
        return client_unreachable(c, rc);
    }
    if (ans->len)
        ans->json = json_loadb(ans->body, ans->len, 0, NULL);
    return 0;
}

static int upload_stream(opsctl *c, const char *path, FILE *in, int64_t size, http_answer *ans)
{
    int64_t sent;
    int rc = 0;
    for (int attempt = 0; rc == 0 && attempt < 2; attempt++) {
        rewind(in);
        rc = transfer(c, path, NULL, in, size, ans, &sent);
        if (rc || ans->status != 401 || attempt || c->bearer_from_env || session_refresh(c))
            break;
        http_answer_free(ans); /* an expired session: once more with the new token */
    }
    return rc;
}

/* GET `path` into the file `dest` ("-": stdout), removed again when the answer is an error. */
static int download(opsctl *c, const char *path, const char *dest)
{
    bool to_stdout = strcmp(dest, "-") == 0;
    FILE *out = to_stdout ? stdout : fopen(dest, "wb");
    if (!out) {
        fprintf(stderr, "opsctl: %s: %s\n", dest, strerror(errno));
        return OPSCTL_ERROR;
    }
    http_answer ans;
    int64_t bytes = 0;
    int rc = transfer(c, path, out, NULL, 0, &ans, &bytes);
    if (rc == 0 && ans.status == 401 && !c->bearer_from_env && session_refresh(c) == 0) {
        http_answer_free(&ans);
        rc = transfer(c, path, out, NULL, 0, &ans, &bytes);
    }
    if (rc == 0 && (ans.status < 200 || ans.status >= 300))
        rc = api_error(&ans);
    http_answer_free(&ans);
    if ((!to_stdout && fclose(out) != 0) || (to_stdout && fflush(out) != 0))
        rc = rc ? rc : OPSCTL_ERROR;
    if (rc && !to_stdout)
        remove(dest);
    else if (!to_stdout && c->output == OUT_TABLE && !c->get)
        fprintf(stderr, "%s: %lld bytes\n", dest, (long long)bytes);
    return rc;
}

/* The last segment of a path: the name a file is uploaded or saved under by default. */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* ---- /api/v1/files -----------------------------------------------------------------------------
 */

static const column file_cols[] = {
    {"NAME", "name", COL_TEXT},
    {"SIZE", "size", COL_TEXT},
    {"SHA256", "sha256", COL_TEXT},
    {"MODIFIED", "modified_at", COL_TIME},
    {NULL, NULL, 0},
};

static void files_table(opsctl *c, json_t *v, const void *ud)
{
    print_table(c, ud, json_object_get(v, "items"));
}

int cmd_files_list(opsctl *c, const command *cmd, args *a)
{
    (void)cmd, (void)a;
    json_t *list = NULL;
    int rc = api_call(c, "GET", "/api/v1/files", NULL, &list);
    if (rc == 0)
        rc = print_result(c, c->output == OUT_JSON ? json_object_get(list, "items") : list,
                          files_table, file_cols);
    json_decref(list);
    return rc;
}

static void stored_line(opsctl *c, json_t *v, const void *ud)
{
    (void)c, (void)ud;
    printf("stored %s: %lld bytes, sha256 %s\n", json_string_value(json_object_get(v, "name")),
           (long long)json_integer_value(json_object_get(v, "size")),
           json_string_value(json_object_get(v, "sha256")));
}

int cmd_files_upload(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    const char *local = a->argv[0], *name = a->argc > 1 ? a->argv[1] : base_name(local);
    FILE *in = fopen(local, "rb");
    struct stat st;
    if (!in || fstat(fileno(in), &st) < 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "opsctl: %s: %s\n", local, in ? "not a regular file" : strerror(errno));
        if (in)
            fclose(in);
        return OPSCTL_ERROR;
    }
    char *esc = url_escape(name), path[600];
    snprintf(path, sizeof(path), "/api/v1/files/%s", esc ? esc : "");
    free(esc);
    http_answer ans;
    int rc = upload_stream(c, path, in, (int64_t)st.st_size, &ans);
    fclose(in);
    if (rc)
        return rc;
    rc = ans.status == 200 || ans.status == 201 ? print_result(c, ans.json, stored_line, NULL)
                                                : api_error(&ans);
    http_answer_free(&ans);
    return rc;
}

int cmd_files_download(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    const char *name = a->argv[0], *dest = arg_value(a, "output-file");
    char *esc = url_escape(name), path[600];
    snprintf(path, sizeof(path), "/api/v1/files/%s", esc ? esc : "");
    free(esc);
    return download(c, path, dest ? dest : base_name(name));
}

int cmd_files_delete(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    char *esc = url_escape(a->argv[0]), path[600];
    snprintf(path, sizeof(path), "/api/v1/files/%s", esc ? esc : "");
    free(esc);
    int rc = api_call(c, "DELETE", path, NULL, NULL);
    if (rc == 0 && c->output == OUT_TABLE && !c->get)
        printf("deleted file %s\n", a->argv[0]);
    return rc;
}

/* ---- what a run kept ----------------------------------------------------------------------------
 */

static const column run_file_cols[] = {
    {"TARGET", "target", COL_TEXT}, {"NAME", "name", COL_TEXT},        {"SIZE", "size", COL_TEXT},
    {"SHA256", "sha256", COL_TEXT}, {"STORED", "stored_at", COL_TIME}, {NULL, NULL, 0},
};

/* The run's target of name or id `ref`: its id into `id`. */
static int run_target(json_t *run, const char *ref, char *id, size_t n)
{
    json_t *t;
    size_t i;
    json_array_foreach(json_object_get(run, "targets"), i, t)
    {
        const char *tid = json_string_value(json_object_get(t, "target_id"));
        const char *name = json_string_value(json_object_get(t, "name"));
        if (tid && (strcmp(tid, ref) == 0 || (name && strcmp(name, ref) == 0))) {
            snprintf(id, n, "%s", tid);
            return 0;
        }
    }
    fprintf(stderr, "opsctl: run %s has no target %s\n",
            json_string_value(json_object_get(run, "id")), ref);
    return OPSCTL_ERROR;
}

/* Items with the name of their target beside its id, for people. */
static void name_targets(json_t *run, json_t *items)
{
    json_t *it;
    size_t i;
    json_array_foreach(items, i, it)
    {
        const char *tid = json_string_value(json_object_get(it, "target_id"));
        json_t *t;
        size_t j;
        json_object_set(it, "target", json_object_get(it, "target_id"));
        json_array_foreach(
            json_object_get(run, "targets"), j,
            t) if (tid &&
                   json_equal(json_object_get(t, "target_id"), json_object_get(it, "target_id")) &&
                   json_is_string(json_object_get(t, "name")))
            json_object_set(it, "target", json_object_get(t, "name"));
    }
}

int cmd_runs_files(opsctl *c, const command *cmd, args *a)
{
    if (a->argc != 1 && (a->argc != 4 || strcmp(a->argv[1], "download") != 0))
        return usage_error(cmd, "expected RUN, or RUN download TARGET NAME");
    json_t *run = NULL, *list = NULL;
    char path[700], tid[80];
    int rc = resource_call(c, &res_runs, a->argv[0], "GET", NULL, &run);
    const char *id = json_string_value(json_object_get(run, "id"));
    if (rc == 0 && a->argc == 4 && (rc = run_target(run, a->argv[2], tid, sizeof(tid))) == 0) {
        char *esc = url_escape(a->argv[3]);
        snprintf(path, sizeof(path), "/api/v1/runs/%s/files/%s/%s", id, tid, esc ? esc : "");
        free(esc);
        const char *dest = arg_value(a, "output-file");
        rc = download(c, path, dest ? dest : base_name(a->argv[3]));
    } else if (rc == 0 && a->argc == 1) {
        snprintf(path, sizeof(path), "/api/v1/runs/%s/files", id);
        rc = api_call(c, "GET", path, NULL, &list);
        json_t *items = json_object_get(list, "items");
        if (rc == 0 && c->output == OUT_TABLE && !c->get)
            name_targets(run, items);
        if (rc == 0)
            rc = print_result(c, c->output == OUT_JSON ? items : list, files_table, run_file_cols);
    }
    json_decref(list);
    json_decref(run);
    return rc;
}
