/* run_files.c - /api/v1/runs/{id}/files: what core.file.get (step_fetch_file) kept with a run, per
 * target, listed with the digests computed when each was stored, and downloaded streamed. */
#include <string.h>
#include <sys/stat.h>

#include <opsc/errors.h>

#include "auth.h"
#include "core.h"
#include "files.h"
#include "http.h"
#include "rest.h"
#include "run_read.h"
#include "runfiles.h"

static struct opsc_core *core_of(http_req *req)
{
    return http_req_app(req);
}

/* The {id} of a run that exists, or NULL after answering 404. */
static const char *run_param(http_req *req)
{
    const char *id = http_req_param(req, "id");
    int rc = runfiles_id_ok(id) ? run_exists(core_of(req)->store, id) : OPSC_ENOENT;
    if (rc == OPSC_ENOENT) {
        http_respond_error(req, 404, "not_found", NULL, "no run %s", id);
        return NULL;
    }
    if (rc < 0) {
        rest_error(req, rc, "run");
        return NULL;
    }
    auth_set_object(req, id);
    return id;
}

static int list_run_files(http_req *req)
{
    const char *id = run_param(req);
    json_t *list = NULL;
    if (!id)
        return HTTP_DONE;
    int rc = runfiles_list(core_of(req)->cfg.store.data_dir, id, &list);
    if (rc < 0)
        rest_error(req, rc, "run files");
    else
        http_respond_json(req, 200, list);
    return HTTP_DONE;
}

static int download_run_file(http_req *req)
{
    const char *id = run_param(req);
    if (!id)
        return HTTP_DONE;
    const char *target = http_req_param(req, "target_id"), *name = http_req_param(req, "name");
    if (!runfiles_id_ok(target) || files_name_check(name, strlen(name))) {
        http_respond_error(req, 400, "bad_name", NULL,
                           "a target id is letters, digits, '-' and '_'; %s",
                           files_name_check("", 0));
        return HTTP_DONE;
    }
    struct stat st;
    int fd = runfiles_open(core_of(req)->cfg.store.data_dir, id, target, name, &st);
    if (fd < 0) {
        http_respond_error(req, 404, "not_found", NULL, "run %s kept no file %s of target %s", id,
                           name, target);
        return HTTP_DONE;
    }
    files_respond_download(req, name, fd, (int64_t)st.st_size);
    return HTTP_DONE;
}

#define RUN_FILE_SCHEMA                                                                            \
    "{\"type\":\"object\",\"properties\":{\"target_id\":{\"type\":\"string\"},\"name\":{\"type\":" \
    "\"string\"},\"size\":{\"type\":\"integer\"},\"sha256\":{\"type\":\"string\"},\"stored_at\":"  \
    "{\"type\":\"string\",\"format\":\"date-time\"}}}"

static const http_route routes[] = {
    {"GET", "/api/v1/runs/{id}/files", ROLE_VIEWER, list_run_files, 0, "runs",
     "Files the run's steps fetched (core.file.get), per target, with the SHA-256 computed when "
     "each was stored; removed with the run's logs by the log retention",
     NULL,
     "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":" RUN_FILE_SCHEMA
     "},\"next_cursor\":{\"type\":\"null\"}}}"},
    {"GET", "/api/v1/runs/{id}/files/{target_id}/{name}", ROLE_VIEWER, download_run_file, 0, "runs",
     "Download a file the run kept (application/octet-stream, streamed)", NULL, NULL},
};

int api_run_files_register(struct opsc_core *c)
{
    return http_add_routes(c->http, routes, sizeof(routes) / sizeof(routes[0]));
}
