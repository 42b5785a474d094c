/* exec_internal.h - the executor's state: runs, their targets and steps, commands, workers.
 *
 * Ownership: the executor owns its active runs (a FIFO list); a run owns
 * its targets (an array); a target owns what it is doing now (a command,
 * an imperative step, a pool wait or lease) and its step results. Records
 * are written to the store at the end of the loop turn in which they
 * changed (exec_persist.c), log chunks too (exec_log.c), in one
 * transaction.
 */
#ifndef OPSC_EXEC_INTERNAL_H
#define OPSC_EXEC_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <opsc/step.h>
#include <opsc/transport.h>

#include "exec.h"
#include "job.h"
#include "pool.h"
#include "strbuf.h"

struct opsc_core;
typedef struct events events;
typedef struct store store;
typedef struct plugin_host plugin_host;
typedef struct vault vault;
typedef struct steptype steptype;

/* States of runs, targets and steps (exec.h). SKIPPED: a step whose `when`
 * was false or that an earlier failure stopped; a target a failed batch
 * kept from starting. */
enum ex_state {
    EX_QUEUED,
    EX_RUNNING,
    EX_SUCCEEDED,
    EX_FAILED,
    EX_CANCELLED,
    EX_TIMED_OUT,
    EX_INTERRUPTED,
    EX_SKIPPED,
    EX_MISSED,
};
const char *ex_state_name(int state);
int ex_state_parse(const char *name); /* -1 when unknown */
static inline bool ex_terminal(int s)
{
    return s >= EX_SUCCEEDED;
}

typedef struct ex_run ex_run;
typedef struct ex_target ex_target;
typedef struct ex_cmd ex_cmd;
/* An imperative step on a worker IS the opsc_step_ctx the plugin gets. */
typedef struct opsc_step_ctx ex_imp;
typedef struct ex_req ex_req;

/* ---- one step's result on one target ------------------------------------------------ */

typedef struct ex_stepres {
    uint8_t state;
    bool has_exit;
    int exit_code;
    int attempts;
    json_t *outputs; /* NULL until set */
    char *error;
    int64_t started_ms, finished_ms;
} ex_stepres;

/* ---- a command running on a target (declarative step, or step_exec) --------------------- */

typedef struct ex_lines {
    strbuf part;      /* the unfinished line */
    uint64_t part_ms; /* when it started, to flush a prompt that never ends */
} ex_lines;

typedef void (*ex_cmd_done_fn)(ex_cmd *c, const opsc_exec_result *res);

struct ex_cmd {
    ex_target *t;
    opsc_exec *h; /* NULL once done */
    const opsc_transport *tp;
    opsc_output_rule rule; /* how outputs are read from stdout */
    bool log_output;       /* log lines (imperative exec may not) */
    bool capture_err;      /* keep stderr (imperative exec) */
    size_t capture_limit;
    ex_lines lines[2]; /* stdout, stderr */
    strbuf held[2];    /* the tail of each stream that may begin a secret (exec_redact.c) */
    strbuf out, err;   /* captured text (after OPSC_OUTPUT lines are taken out) */
    bool truncated;
    char *last_line; /* JSON_LAST_LINE */
    json_t *outputs; /* OPSC_OUTPUT lines */
    char *command;   /* declarative: rendered, waiting for the lease */
    ex_cmd_done_fn done;
    void *ud;
};

/* ---- imperative steps ----------------------------------------------------------------------- */

enum ex_req_kind { REQ_EXEC, REQ_PUT, REQ_GET, REQ_LOG };

struct ex_req {
    enum ex_req_kind kind;
    ex_imp *imp;
    ex_req *next;
    /* in */
    char *command;            /* REQ_EXEC */
    opsc_step_exec_opts opts; /* REQ_EXEC, stdin copied into `stdin_copy` */
    char *stdin_copy;
    char *local, *remote; /* REQ_PUT / REQ_GET */
    int mode;
    char *text; /* REQ_LOG */
    int level;
    /* out, written by the loop before `done` */
    int rc;
    opsc_step_exec_result *res;
    bool done;
};

struct opsc_step_ctx {
    struct exec *ex;
    ex_target *t; /* NULL once the target gave up on it */
    const opsc_step_type *type;
    void *lib_state;
    struct iso_lib *isolated; /* run() goes out of process (isolation.h); NULL: in this one */
    ex_imp *next;             /* worker queue */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool cancelled;
    int rc; /* run()'s return */
    /* read-only copies for the worker */
    json_t *params; /* rendered and validated */
    char *params_text;
    json_t *target;
    json_t *render_ctx;     /* {params, target, steps, run} */
    json_t *secrets;        /* step parameter name -> secret value */
    json_t *secret_refs;    /* step parameter name -> reference shown by step_param */
    int tpl_mode;           /* quoting of step_quote */
    uint64_t deadline_mono; /* the step's end */
    char *run_dir;          /* step_run_dir: the run's files of this target (runfiles.h), on
                               first use, under `mu` */
    /* written by the worker under `mu` */
    json_t *outputs;
    char *failure;
    char **pool; /* strings handed to the step, freed at the end */
    size_t npool, cappool;
    char *last_out, *last_err, *last_sig; /* the last step_exec's result strings */
    /* loop side */
    ex_req *inflight; /* the request the loop is serving */
    ex_cmd *cmd;
    pool_wait *wait;
    opsc_xfer *xfer;
    const opsc_transport *xfer_tp;
};

/* ---- a target of a run ----------------------------------------------------------------------- */

enum ex_act { ACT_NONE, ACT_ACQUIRE, ACT_EXEC, ACT_IMP, ACT_DELAY };

struct ex_target {
    ex_run *run;
    uint32_t idx;
    uint8_t state;
    uint8_t abort;       /* EX_CANCELLED / EX_TIMED_OUT / EX_INTERRUPTED, or 0 */
    bool step_timed_out; /* the current step's own timeout fired */
    bool dirty;
    bool log_capped;
    bool busy_held; /* counted in the executor's per-target map */
    enum ex_act act;
    char id[40];
    json_t *rec; /* {id, name, address, port, os_family, transport, labels, facts} */
    const char *os_family;
    uint32_t step; /* index of the current step */
    ex_stepres *steps;
    json_t *steps_ctx; /* {"<id>": {outputs, state, exit_code}} for templates */
    char *error;
    int64_t started_ms, finished_ms;
    char *process; /* the transport's handle of the command running now (kill_orphan) */
    /* connection */
    pool_lease *lease;
    pool_wait *wait;
    bool warned; /* the connection's warning was logged */
    void (*on_lease)(ex_target *t, int status, const char *error);
    /* what it is doing */
    ex_cmd *cmd;
    ex_imp *imp;
    uv_timer_t *timer; /* step timeout */
    uv_timer_t *delay; /* retry back-off, abandon grace */
    /* log */
    strbuf log; /* pending records, JSON objects separated by ',' */
    uint64_t log_first_seq, log_last_seq;
    uint64_t log_bytes;
    ex_target *dirty_next;
};

/* ---- a run ------------------------------------------------------------------------------------
 */

struct ex_run {
    struct exec *ex;
    char id[UUID_STR_LEN];
    json_t *hdr; /* the header record as stored (without targets) */
    job_plan *plan;
    json_t *ctx_run;    /* {"id", "job_id", "job_name", "job_version", ...} */
    json_t *ctx_params; /* run parameters, secret values resolved */
    char **redact;      /* secret values (and their quoted forms), longest first */
    size_t nredact;
    ex_target *targets;
    uint32_t ntargets;
    json_t *route; /* cluster mode: {key: value} a claiming node's labels must have */
    uint32_t next;   /* first target not started */
    uint32_t active; /* started, not ended */
    uint32_t ended;
    uint32_t failed;    /* ended not succeeded */
    uint32_t batch_end; /* targets below may start */
    uint8_t state;
    uint8_t persisted_state; /* the state the store holds (exec_opts.on_run_persisted) */
    uint8_t abort;           /* cancel / timeout / shutdown of the whole run */
    bool dirty;
    bool listed;  /* in the executor's active list */
    bool lost;    /* cluster mode: another node's reaper took it; its writes are discarded */
    uint64_t seq; /* event sequence of this run (SSE ids) */
    uint64_t log_bytes;
    uint8_t trigger;         /* enum exec_trigger */
    uint64_t running_mono;   /* when it began running (metrics) */
    uv_timer_t *timer;       /* run timeout */
    ex_run *prev, *next_run; /* active list */
    ex_run *dirty_next;
};

/* ---- the executor ------------------------------------------------------------------------- */

typedef struct ex_workers ex_workers;

struct exec {
    struct opsc_core *core;
    uv_loop_t *loop;
    store *store;
    events *events;
    plugin_host *plugins;
    vault *vault;
    pool *pool;
    exec_opts opts;
    ex_run *head, *tail; /* active runs, FIFO */
    size_t nruns;
    json_t *orphans;          /* [{target_id, handle}] the previous process left running */
    uint32_t running_targets; /* global parallelism in use */
    json_t *busy;             /* target id -> holders: n shared, or -1 exclusive */
    ex_run *dirty_runs;
    ex_target *dirty_targets;
    struct ex_new_run *new_runs, *new_runs_tail; /* prepared runs the next flush stores */
    uv_check_t flush;     /* writes what changed at the end of the loop turn */
    uv_idle_t flush_idle; /* keeps the poll phase from blocking before that */
    uv_timer_t tick;      /* flushes stale partial lines; the log sweeper */
    uv_timer_t claim;     /* cluster mode: claim queued runs now, or poll (exec_queue.c) */
    uv_poll_t *listen;    /* cluster mode: the socket LISTENing for queued runs */
    bool listen_broken;   /* reopen it at the next poll */
    int claim_rc;         /* the last claim's result, to log a change once */
    json_t *remote;       /* run id -> schedule id: made here, queued or run elsewhere */
    json_t *by_schedule;  /* schedule id -> runs of it active here or in `remote`: the
                             scheduler asks at every fire, a walk of the runs grows with them */
    uint64_t next_sweep_mono;
    int64_t log_total; /* bytes of logs kept; -1 until the first sweep counted */
    bool pumping, pump_again;
    bool stopping, closing;
    bool force_close; /* close although workers are stuck in run() */
    bool wake_closed; /* under qmu: `wake` is closed, workers must not send */
    void (*close_cb)(void *ud);
    void *close_ud;
    int open_handles;
    ex_workers *workers;
    uv_async_t wake; /* workers' requests and results */
    pthread_mutex_t qmu;
    ex_req *reqs, *reqs_tail;
    ex_imp *finished; /* imperative steps whose run() returned */
    uint64_t stat_started, stat_finished;
    struct ex_plans *plans;   /* compiled plans of recent job versions (exec_plans.c); lazily */
    struct reccache *records; /* parsed job records (exec_start.c); NULL: parsed each time */
    uint64_t plans_compiled, plans_reused;
    exec_counters counters;
};

/* ---- exec.c ---------------------------------------------------------------------------------- */
void ex_pump(exec *ex);
void ex_mark_run(ex_run *r);
void ex_mark_target(ex_target *t);
/* Publish an event of the run (type "run.state"...), numbering it. Steals `data`. */
uint64_t ex_publish(ex_run *r, const char *type, json_t *data);
void ex_timer_start(exec *ex, uv_timer_t **slot, uint64_t ms, uv_timer_cb cb, void *data);
void ex_timer_stop(uv_timer_t **slot);
void ex_maybe_closed(exec *ex);
void ex_flush_done(exec *ex);
/* Write at the end of this loop turn (ex_flush). */
void ex_want_flush(exec *ex);
/* The target ended: its slot in the limits is free. */
void ex_target_released(ex_target *t);

/* Runs of the schedule (a JSON string; anything else counts nothing) that
 * are active here or made here and queued elsewhere: `delta` more. */
void ex_count_schedule(exec *ex, const json_t *schedule_id, int delta);

/* ---- exec_run.c ------------------------------------------------------------------------------ */
void ex_run_add(exec *ex, ex_run *r);
void ex_run_target_ended(ex_target *t);
void ex_run_abort(ex_run *r, int state, const char *reason);
void ex_run_free(ex_run *r);
bool ex_run_can_start(ex_run *r, uint32_t i);
void ex_run_set_state(ex_run *r, int state, const char *reason);

/* ---- exec_metrics.c -------------------------------------------------------------------------- */
void ex_metrics_init(exec *ex);
void ex_count_run_started(ex_run *r);
void ex_count_run_state(ex_run *r, int state);
void ex_count_target(ex_target *t);
void ex_count_step(ex_run *r, const ex_stepres *res);

/* ---- exec_target.c -------------------------------------------------------------------------- */
void ex_target_start(ex_target *t);
void ex_target_abort(ex_target *t, int state);
void ex_target_end_unstarted(ex_target *t, int state, const char *why);
int ex_target_lease(ex_target *t, void (*cb)(ex_target *t, int status, const char *error));
void ex_target_release(ex_target *t, bool broken);
void ex_step_finish(ex_target *t, int state, int exit_code, bool has_exit, json_t *outputs,
                    const char *error);
void ex_target_free(ex_target *t);
json_t *ex_target_ctx(ex_target *t);

/* ---- exec_decl.c ----------------------------------------------------------------------------- */
void ex_decl_start(ex_target *t, json_t *params);
/* A command on the target's lease. On 0, `done` runs once later. */
int ex_cmd_start(ex_target *t, const char *command, const opsc_exec_req *req, ex_cmd *c);
ex_cmd *ex_cmd_new(ex_target *t, opsc_output_rule rule, size_t capture_limit, bool log_output);
void ex_cmd_free(ex_cmd *c);
void ex_cmd_cancel(ex_cmd *c);

/* ---- exec_output.c --------------------------------------------------------------------------- */
/* Output of the command: redacted as a stream, then cut into lines. */
void ex_cmd_output(ex_cmd *c, int stream, const char *data, size_t len);
/* The command ended: what the streams kept back, then every unfinished line. */
void ex_cmd_end_streams(ex_cmd *c);
void ex_cmd_flush_lines(ex_cmd *c, bool all);
/* The outputs the rule gives after the command ended; new object. */
json_t *ex_cmd_outputs(ex_cmd *c, char *err, size_t errlen);
/* 0, or OPSC_ESCHEMA with the first mismatch against the step type's outputs_schema in err. */
int ex_outputs_check(const ex_target *t, json_t *outputs, char *err, size_t errlen);

/* ---- exec_redact.c --------------------------------------------------------------------------- */
/* Redact `data` as the next bytes of a stream whose kept-back tail is
 * `held`: append to `out` everything that can no longer be part of a secret
 * of `secrets` (longest first) with each secret replaced; keep in `held` the
 * tail from the first byte that may still begin one (shorter than the
 * longest secret). `final`: the stream ended, keep nothing. */
void ex_redact_stream(char *const *secrets, size_t n, strbuf *held, const char *data, size_t len,
                      bool final, strbuf *out);
/* Replace every secret of the run in `s` (heap, may be reallocated). */
char *ex_redact(const ex_run *r, char *s);
/* The same in a fixed buffer (the result is cut to its size). */
void ex_redact_inplace(const ex_run *r, char *buf);
/* Redact every string in `v` in place. */
void ex_redact_json(const ex_run *r, json_t *v);
int ex_redact_add(ex_run *r, const char *secret);

/* ---- exec_log.c -------------------------------------------------------------------------------
 */
/* A log record of target `t`: redacted, numbered, published, queued for the store. */
void ex_log(ex_target *t, const char *step_id, const char *stream, const char *text, size_t len);
void ex_logf(ex_target *t, const char *stream, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Write the target's pending records as one chunk. */
int ex_log_put(store_txn *txn, ex_target *t);
void ex_log_sweep(exec *ex);

/* ---- exec_persist.c ------------------------------------------------------------------------- */
void ex_flush(exec *ex);
json_t *ex_target_record(const ex_target *t);
int ex_recover(exec *ex);
/* After ex_recover, with the pool up: stop what the interrupted runs' commands left running. */
void ex_kill_orphans(exec *ex);
/* Store `r` with the next flush (this loop turn's end, or an earlier
 * ex_flush), then start it and call cb (exec_run_start_async's contract). */
int ex_queue_new_run(exec *ex, ex_run *r, exec_started_cb cb, void *ud);

/* Cluster mode: a run is written only by the node it runs on (runs_active names it). */
bool ex_queued(const exec *ex);
/* Cluster mode: cancel a run this node does not run: a queued one at once,
 * one running on another node by telling that node. OPSC_ESTATE: ended. */
int ex_cancel_elsewhere(exec *ex, const char *run_id, const char *why);
/* Mark stored run `run_id` interrupted with `why` (it cannot run here). */
int ex_interrupt_stored(exec *ex, const char *run_id, const char *why);

/* ---- exec_queue.c (cluster mode: docs/cluster.md 2.4) --------------------------------------- */
/* The owner runs_active names for a run queued and claimed by no node yet. */
#define EX_UNCLAIMED "*"
/* Claims of an idempotent run in all: a reaper queues it again fewer times (exec_persist.c). */
#define EX_MAX_ATTEMPTS 3
/* Start listening and polling (exec_new), when the store is shared. */
void ex_queue_start(exec *ex);
/* Claim at the start of the next loop turn (a run was queued, room was freed). */
void ex_claim_soon(exec *ex);
/* Close the queue's handles (counted in open_handles). */
void ex_queue_close(exec *ex);
/* A run made here and queued: announced as queued on this node's bus and
 * counted for its schedule until it ends, wherever it runs. */
void ex_remote_add(exec *ex, const json_t *hdr);
/* The run made here left `remote` (it ended, or this node claimed it). */
void ex_remote_del(exec *ex, const char *run_id);

/* ---- exec_imp.c ----------------------------------------------------------------------------- */
int ex_workers_start(exec *ex, int n);
/* Stop the threads that are idle; true when all have ended. */
bool ex_workers_stop(exec *ex);
/* Join the workers; false when one is stuck in a step (left running). */
bool ex_workers_free(exec *ex);
size_t ex_workers_busy(const exec *ex);
void ex_imp_start(ex_target *t, json_t *params);
void ex_imp_cancel(ex_imp *imp);
void ex_on_wake(uv_async_t *a);
/* Wake the loop from a worker (unless the handle is closed). Takes qmu. */
void ex_wake_locked(exec *ex);

/* ---- exec_stepapi.c ---------------------------------------------------------------------------
 */
const struct plugin_step_ops *ex_step_ops(void);
void ex_req_serve(exec *ex, ex_req *q);
void ex_req_complete(ex_req *q, int rc);
void ex_imp_free(ex_imp *imp);

/* ---- exec_plans.c ---------------------------------------------------------------------------- */
typedef struct ex_plans ex_plans;
/* The plan of the job version `rec` (a new reference: job_plan_free() it):
 * the one compiled before when the record and the loaded step libraries are
 * the same, else compiled now (job_plan_compile, *errors on failure). */
int ex_plan_get(exec *ex, const json_t *rec, job_plan **out, json_t **errors);
void ex_plans_free(exec *ex);
size_t ex_plans_count(const exec *ex);

/* ---- exec_start.c ---------------------------------------------------------------------------- */
/* Everything that can be checked before a run, up to the run ready to store. */
int ex_prepare(exec *ex, const exec_run_spec *spec, const char *retry_of, ex_run **out, char *err,
               size_t errlen);
int ex_start_run(exec *ex, const exec_run_spec *spec, const char *retry_of,
                 char run_id[UUID_STR_LEN], char *err, size_t errlen);
int ex_start_run_async(exec *ex, const exec_run_spec *spec, const char *retry_of,
                       char run_id[UUID_STR_LEN], char *err, size_t errlen, exec_started_cb cb,
                       void *ud);

/* ---- exec_ctx.c ------------------------------------------------------------------------------ */
/* Run context {params, target, steps, run} for `t` (new object). */
json_t *ex_ctx(ex_target *t);
/* The step's parameters rendered for `t` and validated (defaults added);
 * NULL with `err` on failure. */
json_t *ex_step_params(ex_target *t, const job_step *s, char *err, size_t errlen);
/* Secret parameters: values from the vault for the run. */
int ex_secrets_resolve(exec *ex, ex_run *r, json_t *params, char *err, size_t errlen);
/* Templated values a step wants as numbers or booleans, read as such. */
void ex_params_coerce(const steptype *st, const json_t *deferred, json_t *params);
/* Before the run: check a step's parameters for a target context `ctx`
 * (no earlier outputs); values that use steps.* are left to the step. */
int ex_precheck_step(const job_step *s, const char *family, json_t *ctx, char *err, size_t errlen);

#endif
