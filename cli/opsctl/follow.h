/* follow.h - following a run: its live log and events on the terminal, its outcome as exit code. */
#ifndef OPSCTL_FOLLOW_H
#define OPSCTL_FOLLOW_H

#include "opsctl.h"

typedef struct follower {
    opsctl *c;
    json_t *names;   /* target id -> name */
    json_t *pending; /* "target/stream" -> {step, text after the last newline} */
    json_t *seen;    /* "target/step" -> the state last said */
    size_t name_width, step_width;
    char only_target[64]; /* "": every target */
    char state[32];       /* the run's end state, once "end" came */
} follower;

/* only_target: a target id, or NULL for all. */
void follower_init(follower *f, opsctl *c, const char *only_target);
void follower_free(follower *f);
/* The exit code of a run that ended in `state` (OPSCTL_RUN_*). */
int run_exit_code(const char *state);
void follower_learn(follower *f, json_t *run);
/* One log record (from the events or from GET /runs/{id}/log). */
void follower_log(follower *f, json_t *rec);
/* Print what is left of partial lines. */
void follower_flush(follower *f);
/* An sse_fn: prints the event; stops at "end". */
int follower_event(const char *event, const char *id, json_t *data, void *ud);
/* Follow the run until it ends (then a summary of its targets, unless
 * quiet_summary) and return run_exit_code() of its state; only_target: an
 * id or NULL. OPSCTL_INTERRUPTED after Ctrl-C. */
int follow_run(opsctl *c, const char *run_id, const char *only_target, bool quiet_summary);

#endif
