/* fuzz_job.c - libFuzzer target: arbitrary JSON as the body of POST /jobs,
 * PATCH /jobs/{id} and POST /schedules, through the real validators with the
 * core, linux and windows step libraries loaded.
 *
 * Input: JSON. An object is built as a job (and, when that succeeds,
 * compiled into a run plan and given its own "run_params" member as the
 * parameters of a run, and used as a PATCH over itself), and validated as a
 * schedule body. Besides crashes and leaks it checks the contract the API
 * relies on: a refusal always comes with errors, a success never does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "job.h"
#include "plugin_host.h"
#include "schedule.h"

static plugin_host *host;
static uv_loop_t loop;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    static const char *libs[] = {"core", "linux", "windows"};
    char path[1024], err[512];
    uv_loop_init(&loop);
    if (plugin_host_new(&host, &loop, NULL) < 0)
        abort();
    for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s/steplib-%s.so", STEPLIB_BUILD_DIR, libs[i], libs[i]);
        if (plugin_host_load_file(host, path, err, sizeof(err)) < 0) {
            fprintf(stderr, "fuzz_job: %s: %s\n", path, err);
            abort();
        }
    }
    return 0;
}

static void expect(int rc, json_t *out, json_t *errors)
{
    if (rc == 0 ? out == NULL || errors != NULL : out != NULL || json_array_size(errors) == 0)
        abort();
}

static void as_run(const json_t *rec, const json_t *given)
{
    job_plan *plan = NULL;
    json_t *errors = NULL, *params = NULL;
    if (job_plan_compile(host, rec, &plan, &errors) == 0) {
        int rc = job_plan_params(plan, given, &params, &errors);
        expect(rc, params, errors);
        job_plan_free(plan);
    }
    json_decref(params);
    json_decref(errors);
}

static void as_job(const json_t *body)
{
    json_t *rec = NULL, *errors = NULL;
    int rc = job_build(host, body, NULL, &rec, &errors);
    expect(rc, rec, errors);
    json_decref(errors);
    if (rc != 0)
        return;
    as_run(rec, json_object_get(body, "run_params"));
    json_t *patched = NULL;
    errors = NULL;
    rc = job_build(host, body, rec, &patched, &errors);
    expect(rc, patched, errors);
    json_decref(patched);
    json_decref(errors);
    json_decref(rec);
}

static void as_schedule(const json_t *body)
{
    json_t *rec = NULL;
    sched_field_error e = {0};
    if (sched_record_merge(NULL, body, "01a22002-68ee-717a-9479-377f20a284cf", &rec, &e) == 0)
        json_decref(rec);
    else if (rec || !e.code || !e.msg[0])
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(body)) {
        as_job(body);
        as_schedule(body);
    }
    json_decref(body);
    return 0;
}
