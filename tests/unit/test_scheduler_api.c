/* test_scheduler_api.c - /api/v1/schedules and /api/v1/cron/preview over real HTTP, in process:
 * the routes, a store, the scheduler and the exec recorder on one loop thread (no auth hook). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "api.h"
#include "core.h"
#include "http_harness.h"
#include "test_scheduler.h"
#include "util.h"

typedef struct api_fx {
    hx *x;
    struct opsc_core core;
    char dir[64];
    char job_id[UUID_STR_LEN];
} api_fx;

static int put_job(store_txn *txn, void *ud)
{
    api_fx *a = ud;
    json_t *job = json_pack("{s:s, s:s}", "id", a->job_id, "name", "nightly");
    int rc = store_create(txn, "jobs", job);
    json_decref(job);
    return rc;
}

static void setup_on_loop(hx *x, void *arg)
{
    api_fx *a = arg;
    struct opsc_core *c = &a->core;
    char err[256] = "";
    c->loop = &x->loop;
    c->http = x->srv;
    assert_int_equal(store_open(&c->store, a->dir, NULL, err, sizeof(err)), 0);
    assert_int_equal(events_new(&c->events), 0);
    c->exec = exec_recorder_new(c->events);
    sched_opts o = {.loop = c->loop,
                    .store = c->store,
                    .events = c->events,
                    .exec = c->exec,
                    .exec_ops = sched_exec_linked()};
    assert_int_equal(sched_new(&c->sched, &o), 0);
    assert_int_equal(sched_start(c->sched, err, sizeof(err)), 0);
    assert_int_equal(api_schedules_register(c), 0);
    http_server_set_app(x->srv, c);
    assert_int_equal(uuid7_new(a->job_id), 0);
    assert_int_equal(store_write(c->store, put_job, a), 0);
}

static void close_on_loop(hx *x, void *arg)
{
    (void)x;
    api_fx *a = arg;
    sched_close(a->core.sched);
}

static int api_setup(void **state)
{
    api_fx *a = calloc(1, sizeof(*a));
    snprintf(a->dir, sizeof(a->dir), "%s/test_sched_api.XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    assert_non_null(mkdtemp(a->dir));
    a->x = hx_start(NULL, NULL, 0);
    hx_on_loop(a->x, setup_on_loop, a);
    *state = a;
    return 0;
}

static int api_teardown(void **state)
{
    api_fx *a = *state;
    hx_on_loop(a->x, close_on_loop, a);
    assert_int_equal(hx_stop(a->x), 0);
    exec_recorder_free(a->core.exec);
    events_free(a->core.events);
    store_close(a->core.store);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", a->dir);
    assert_int_equal(system(cmd), 0);
    free(a);
    return 0;
}

/* One request; the answer's JSON body (NULL for none) and status. */
static json_t *call(api_fx *a, const char *method, const char *path, const char *body,
                    const char *headers, int *status, hresp *out)
{
    char raw[8192];
    snprintf(raw, sizeof(raw),
             "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s%s%s"
             "Content-Length: %zu\r\n\r\n%s",
             method, path, headers ? headers : "", body ? "Content-Type: application/json\r\n" : "",
             "", body ? strlen(body) : 0, body ? body : "");
    hresp r;
    *status = hx_request(a->x->port, raw, &r);
    json_t *v = r.body_len ? json_loads(r.body, 0, NULL) : NULL;
    if (out)
        *out = r;
    else
        hresp_free(&r);
    return v;
}

static json_t *expect(api_fx *a, const char *method, const char *path, const char *body, int want)
{
    int status;
    json_t *v = call(a, method, path, body, NULL, &status, NULL);
    if (status != want) {
        char *t = v ? json_dumps(v, 0) : NULL;
        fail_msg("%s %s: %d, want %d: %s", method, path, status, want, t ? t : "");
    }
    return v;
}

static const char *str(json_t *v, const char *key)
{
    return json_string_value(json_object_get(v, key));
}

static const char *err_code(json_t *v)
{
    return str(json_object_get(v, "error"), "code");
}

static char *create(api_fx *a, const char *extra)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"job_id\": \"%s\", \"cron\": \"0 3 * * *\", \"timezone\": "
             "\"Europe/Berlin\"%s}",
             a->job_id, extra ? extra : "");
    json_t *v = expect(a, "POST", "/api/v1/schedules", body, 201);
    char *id = strdup(str(v, "id"));
    json_decref(v);
    return id;
}

static void create_get_change_and_delete_a_schedule(void **state)
{
    api_fx *a = *state;
    char body[512], path[128];
    hresp r;
    int status;
    snprintf(body, sizeof(body),
             "{\"job_id\": \"%s\", \"cron\": \"0 3 * * *\", \"timezone\": "
             "\"Europe/Berlin\", \"params\": {\"x\": 1}, \"description\": "
             "\"nightly\"}",
             a->job_id);
    json_t *v = call(a, "POST", "/api/v1/schedules", body, NULL, &status, &r);
    assert_int_equal(status, 201);
    char loc[128], etag[32];
    assert_true(hresp_header(&r, "Location", loc, sizeof(loc)));
    assert_true(hresp_header(&r, "ETag", etag, sizeof(etag)));
    assert_string_equal(etag, "\"1\"");
    hresp_free(&r);
    const char *id = str(v, "id");
    snprintf(path, sizeof(path), "/api/v1/schedules/%s", id);
    assert_string_equal(loc, path);
    assert_string_equal(str(v, "misfire_policy"), "run_once");
    json_t *st = json_object_get(v, "status");
    assert_non_null(str(st, "next_fire_at"));
    assert_true(json_is_null(json_object_get(st, "last_fire_at")));
    json_decref(v);

    v = expect(a, "GET", path, NULL, 200);
    assert_string_equal(str(v, "description"), "nightly");
    json_decref(v);

    v = call(a, "PATCH", path, "{\"cron\": \"0 4 * * *\"}", "If-Match: \"1\"\r\n", &status, NULL);
    assert_int_equal(status, 200);
    assert_int_equal(json_integer_value(json_object_get(v, "version")), 2);
    assert_string_equal(str(v, "cron"), "0 4 * * *");
    json_decref(v);
    v = call(a, "PATCH", path, "{\"cron\": \"0 5 * * *\"}", "If-Match: \"1\"\r\n", &status, NULL);
    assert_int_equal(status, 412);
    assert_string_equal(err_code(v), "version_conflict");
    json_decref(v);

    json_decref(expect(a, "DELETE", path, NULL, 204));
    v = expect(a, "GET", path, NULL, 404);
    assert_string_equal(err_code(v), "not_found");
    json_decref(v);
}

static void bad_bodies_answer_400_naming_the_field(void **state)
{
    api_fx *a = *state;
    char body[512];
    snprintf(body, sizeof(body), "{\"job_id\": \"%s\", \"cron\": \"0 3 * 13 *\"}", a->job_id);
    json_t *v = expect(a, "POST", "/api/v1/schedules", body, 400);
    assert_string_equal(err_code(v), "invalid_cron");
    assert_string_equal(str(json_object_get(json_object_get(v, "error"), "details"), "field"),
                        "cron");
    assert_contains(str(json_object_get(v, "error"), "message"),
                    "cron: month: value 13 out of range 1-12 at column 7");
    json_decref(v);
    snprintf(body, sizeof(body),
             "{\"job_id\": \"%s\", \"cron\": \"0 3 * * *\", \"timezone\": "
             "\"Europe/Atlantis\"}",
             a->job_id);
    v = expect(a, "POST", "/api/v1/schedules", body, 400);
    assert_string_equal(err_code(v), "invalid_timezone");
    json_decref(v);
    v = expect(a, "POST", "/api/v1/schedules",
               "{\"job_id\": \"0190a0a0-0000-7000-8000-000000000000\", \"cron\": \"0 3 * * *\"}",
               400);
    assert_contains(str(json_object_get(v, "error"), "message"), "job_id: there is no job");
    json_decref(v);
}

static void pause_resume_and_next(void **state)
{
    api_fx *a = *state;
    char *id = create(a, NULL);
    char path[160];
    snprintf(path, sizeof(path), "/api/v1/schedules/%s/pause", id);
    json_t *v = expect(a, "POST", path, NULL, 200);
    assert_true(json_is_false(json_object_get(v, "enabled")));
    assert_true(json_is_null(json_object_get(json_object_get(v, "status"), "next_fire_at")));
    json_decref(v);
    snprintf(path, sizeof(path), "/api/v1/schedules/%s/next?count=2", id);
    v = expect(a, "GET", path, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(v, "times")), 0);
    json_decref(v);
    snprintf(path, sizeof(path), "/api/v1/schedules/%s/resume", id);
    json_decref(expect(a, "POST", path, NULL, 200));
    snprintf(path, sizeof(path), "/api/v1/schedules/%s/next?count=2", id);
    v = expect(a, "GET", path, NULL, 200);
    json_t *t = json_object_get(v, "times");
    assert_int_equal(json_array_size(t), 2);
    assert_contains(str(json_array_get(t, 0), "local"), "T03:00:00+0");
    json_decref(v);
    snprintf(path, sizeof(path), "/api/v1/schedules/%s/next?count=0", id);
    json_decref(expect(a, "GET", path, NULL, 400));
    json_decref(expect(a, "GET", "/api/v1/schedules/nope/next", NULL, 404));
    free(id);
}

static void list_pages_and_filters_by_job(void **state)
{
    api_fx *a = *state;
    char *ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = create(a, NULL);
    json_t *v = expect(a, "GET", "/api/v1/schedules?limit=2", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(v, "items")), 2);
    assert_non_null(json_object_get(json_array_get(json_object_get(v, "items"), 0), "status"));
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/schedules?limit=2&cursor=%s", str(v, "next_cursor"));
    json_decref(v);
    v = expect(a, "GET", path, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(v, "items")), 1);
    assert_true(json_is_null(json_object_get(v, "next_cursor")));
    json_decref(v);
    v = expect(a, "GET", "/api/v1/schedules?job_id=other", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(v, "items")), 0);
    json_decref(v);
    for (int i = 0; i < 3; i++)
        free(ids[i]);
}

static void preview_answers_utc_and_local_times(void **state)
{
    api_fx *a = *state;
    json_t *v = expect(a, "POST", "/api/v1/cron/preview",
                       "{\"cron\": \"30 2 * * *\", \"timezone\": \"Europe/Berlin\", \"count\": 2, "
                       "\"from\": \"2025-03-30T00:00:00Z\"}",
                       200);
    json_t *t = json_object_get(v, "times");
    assert_int_equal(json_array_size(t), 2);
    assert_string_equal(str(json_array_get(t, 0), "utc"), "2025-03-30T01:00:00Z");
    assert_string_equal(str(json_array_get(t, 0), "local"), "2025-03-30T03:00:00+02:00");
    assert_string_equal(str(v, "timezone"), "Europe/Berlin");
    json_decref(v);
    v = expect(a, "POST", "/api/v1/cron/preview",
               "{\"cron\": \"0 0 * * *\", \"from\": \"2025-01-01T00:00:00Z\", \"count\": 1}", 200);
    assert_string_equal(str(json_array_get(json_object_get(v, "times"), 0), "utc"),
                        "2025-01-01T00:00:00Z"); /* from is inclusive; UTC by default */
    json_decref(v);
    v = expect(a, "POST", "/api/v1/cron/preview", "{\"cron\": \"* * *\"}", 400);
    assert_string_equal(err_code(v), "invalid_cron");
    json_decref(v);
    json_decref(expect(a, "POST", "/api/v1/cron/preview",
                       "{\"cron\": \"* * * * *\", \"count\": "
                       "1001}",
                       400));
    json_decref(
        expect(a, "POST", "/api/v1/cron/preview", "{\"cron\": \"* * * * *\", \"at\": 1}", 400));
    json_t *h1 = expect(a, "POST", "/api/v1/cron/preview",
                        "{\"cron\": \"H H * * *\", \"seed\": \"a\", \"count\": 1}", 200);
    json_t *h1b = expect(a, "POST", "/api/v1/cron/preview",
                         "{\"cron\": \"H H * * *\", \"seed\": \"a\", \"count\": 1}", 200);
    assert_true(json_equal(h1, h1b));
    json_decref(h1);
    json_decref(h1b);
}

const struct CMUnitTest sched_api_tests[] = {
    cmocka_unit_test_setup_teardown(create_get_change_and_delete_a_schedule, api_setup,
                                    api_teardown),
    cmocka_unit_test_setup_teardown(bad_bodies_answer_400_naming_the_field, api_setup,
                                    api_teardown),
    cmocka_unit_test_setup_teardown(pause_resume_and_next, api_setup, api_teardown),
    cmocka_unit_test_setup_teardown(list_pages_and_filters_by_job, api_setup, api_teardown),
    cmocka_unit_test_setup_teardown(preview_answers_utc_and_local_times, api_setup, api_teardown),
};
const size_t sched_api_test_count = sizeof(sched_api_tests) / sizeof(sched_api_tests[0]);
