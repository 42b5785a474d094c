/* test_exec.h - the executor's tests: a partial daemon (store, vault, pool, transport-local, the
 * core and test step libraries, events) with an executor, and helpers to define and run jobs. */
#ifndef OPSC_TEST_EXEC_H
#define OPSC_TEST_EXEC_H

#include <jansson.h>
#include <stdbool.h>

#include "exec.h"
#include "fleet_fixture.h"

typedef struct exec_fx {
    fleet_fx *f;
    exec *ex;
    json_t *events; /* [{type, data}] of every "run." event */
    int64_t sub;
    bool closed;
} exec_fx;

/* cmocka set-up and tear-down of an executor with the defaults (*state is the exec_fx). */
int xfx_setup(void **state);
int xfx_teardown(void **state);
/* Fail the test unless `hay` holds `needle` / unless it does not. */
void xfx_contains(const char *hay, const char *needle);
void xfx_lacks(const char *hay, const char *needle);

/* Up with `opts` (NULL: defaults, with a short abandon grace). */
exec_fx *xfx_new(const exec_opts *opts);
/* exec_close, run the loop until it is closed, free it all. */
void xfx_free(exec_fx *x);

/* A local target; `labels_json` may be NULL. The id goes to `id`. */
void xfx_target(exec_fx *x, const char *name, const char *labels_json, char id[40]);
/* Store a job built from `fmt` (JSON, printf-style) and return its id in `id`. */
void xfx_job(exec_fx *x, char id[40], const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Run once on one target a job whose steps are `steps_fmt` (a JSON array,
 * printf-style); returns the ended run (new reference). */
json_t *xfx_once(exec_fx *x, const char *target_id, const char *steps_fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Start a run; fails the test with the error when refused. */
void xfx_run(exec_fx *x, const char *job_id, const char *params_json, const char *targets_json,
             char run_id[UUID_STR_LEN]);
/* Start a run expected to be refused with `rc`; returns the message (static). */
const char *xfx_refused(exec_fx *x, const char *job_id, const char *params_json, int rc);
/* Run the loop until the run has ended (fails after ms); returns the stored run (new ref). */
json_t *xfx_wait(exec_fx *x, const char *run_id, int ms);
/* Run the loop until an event of `type` with `key` == `value` has been seen for the run. */
void xfx_wait_event(exec_fx *x, const char *run_id, const char *type, const char *key,
                    const char *value, int ms);
/* The stored run (new reference). */
json_t *xfx_read(exec_fx *x, const char *run_id);
/* Every log record of the run, in target then sequence order (new array). */
json_t *xfx_log(exec_fx *x, const char *run_id);
/* All log text of the run joined (heap). */
char *xfx_log_text(exec_fx *x, const char *run_id);
/* A core.shell.command step as JSON text (a literal command without quotes). */
#define XSH(id, cmd)                                                                               \
    "{\"id\": \"" id "\", \"type\": \"core.shell.command\", \"params\": {\"command\": \"" cmd "\"" \
                                                                                              "}}"
/* Step `i` of target `t` in a run record (borrowed). */
json_t *xfx_step(json_t *run, size_t t, size_t i);
/* The state of target `t` in a run record. */
const char *xfx_tstate(json_t *run, size_t t);

#endif
