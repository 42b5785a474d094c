/* follow.c - a run's live log and state changes on the terminal, and the exit code of its outcome.
 *
 * Lines read "TARGET | STEP | text": '|' for stdout, '!' for stderr, '*'
 * for what the daemon says (step and target states), so the streams stay
 * apart in a CI log without colours. Log records carry arbitrary pieces of
 * output: they are cut into whole lines per target and stream.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "follow.h"

static const char *const palette[] = {C_CYAN, C_BLUE, "35", C_YELLOW, "36;1", "34;1"};

void follower_init(follower *f, opsctl *c, const char *only_target)
{
    memset(f, 0, sizeof(*f));
    f->c = c;
    f->names = json_object();
    f->pending = json_object();
    f->seen = json_object();
    snprintf(f->only_target, sizeof(f->only_target), "%s", only_target ? only_target : "");
}

void follower_free(follower *f)
{
    json_decref(f->names);
    json_decref(f->pending);
    json_decref(f->seen);
}

int run_exit_code(const char *state)
{
    static const struct {
        const char *state;
        int code;
    } map[] = {{"succeeded", OPSCTL_OK},
               {"failed", OPSCTL_RUN_FAILED},
               {"cancelled", OPSCTL_RUN_CANCELLED},
               {"timed_out", OPSCTL_RUN_TIMED_OUT}};
    for (size_t i = 0; state && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].state, state) == 0)
            return map[i].code;
    return OPSCTL_RUN_OTHER;
}

/* Names and widths of the run's targets and steps, from a run record. */
void follower_learn(follower *f, json_t *run)
{
    json_t *t;
    size_t i;
    json_array_foreach(json_object_get(run, "targets"), i, t)
    {
        const char *id = json_string_value(json_object_get(t, "target_id"));
        const char *name = json_string_value(json_object_get(t, "name"));
        if (!id || !name || json_object_get(f->names, id))
            continue;
        json_object_set_new(f->names, id, json_string(name));
        f->name_width = strlen(name) > f->name_width ? strlen(name) : f->name_width;
        json_t *s;
        size_t j;
        json_array_foreach(json_object_get(t, "steps"), j, s)
        {
            const char *step = json_string_value(json_object_get(s, "id"));
            size_t w = step ? strlen(step) : 0;
            f->step_width = w > f->step_width ? w : f->step_width;
        }
    }
}

static const char *target_name(follower *f, const char *id, const char **code)
{
    json_t *name = json_object_get(f->names, id ? id : "");
    size_t idx = 0;
    const char *k;
    json_t *v;
    json_object_foreach(f->names, k, v)
    {
        if (v == name)
            break;
        idx++;
    }
    *code = palette[idx % (sizeof(palette) / sizeof(palette[0]))];
    return name ? json_string_value(name) : id ? id : "?";
}

/* "name | step | " (mark '|', '!' or '*'); without a step: "name * ". */
static void prefix(follower *f, const char *target_id, const char *step, char mark)
{
    opsctl *c = f->c;
    const char *code, *name = target_name(f, target_id, &code);
    printf("%s%-*s%s %c ", color(c, code), (int)f->name_width, name, color(c, C_RESET), mark);
    if (step)
        printf("%s%-*s%s %c ", color(c, C_DIM), (int)f->step_width, step, color(c, C_RESET), mark);
}

static void print_line(follower *f, const char *target_id, const char *step, const char *stream,
                       const char *text, size_t len)
{
    bool err = strcmp(stream, "stderr") == 0, sys = !err && strcmp(stream, "stdout") != 0;
    prefix(f, target_id, step, err ? '!' : sys ? '*' : '|');
    const char *code = err ? C_RED : sys ? C_DIM : NULL;
    printf("%s%.*s%s\n", code ? color(f->c, code) : "", (int)len, text,
           code ? color(f->c, C_RESET) : "");
}

/* Pending partial lines are kept per target and stream. */
static void pending_key(char *key, size_t n, const char *target_id, const char *stream)
{
    snprintf(key, n, "%s/%s", target_id ? target_id : "", stream ? stream : "");
}

/* Text after the last newline waits for the rest of its line; another step's
 * output on the same stream ends it. */
static void take_pending(follower *f, const char *key, const char *tid, const char *step,
                         const char *stream, char **before)
{
    json_t *p = json_object_get(f->pending, key);
    const char *pstep = json_string_value(json_object_get(p, "step"));
    const char *text = json_string_value(json_object_get(p, "text"));
    *before = NULL;
    if (text && pstep && step && strcmp(pstep, step) != 0)
        print_line(f, tid, pstep, stream, text, strlen(text));
    else if (text)
        *before = strdup(text);
    json_object_del(f->pending, key);
}

void follower_log(follower *f, json_t *rec)
{
    const char *tid = json_string_value(json_object_get(rec, "target_id"));
    const char *step = json_string_value(json_object_get(rec, "step_id"));
    const char *stream = json_string_value(json_object_get(rec, "stream"));
    const char *text = json_string_value(json_object_get(rec, "text"));
    if (!text || (f->only_target[0] && (!tid || strcmp(tid, f->only_target) != 0)))
        return;
    stream = stream ? stream : "stdout";
    step = step ? step : "";
    char key[128], *before;
    pending_key(key, sizeof(key), tid, stream);
    take_pending(f, key, tid, step, stream, &before);
    size_t blen = before ? strlen(before) : 0, tlen = strlen(text);
    char *all = malloc(blen + tlen + 1);
    if (all) {
        memcpy(all, before ? before : "", blen);
        memcpy(all + blen, text, tlen + 1);
        char *line = all, *nl;
        while ((nl = strchr(line, '\n'))) {
            print_line(f, tid, step, stream, line, (size_t)(nl - line));
            line = nl + 1;
        }
        if (*line)
            json_object_set_new(f->pending, key,
                                json_pack("{s:s, s:s}", "step", step, "text", line));
    }
    free(before);
    free(all);
}

/* A step or target ended, or the run: what was left without a newline. */
void follower_flush(follower *f)
{
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(f->pending, tmp, key, v)
    {
        char tid[64];
        const char *slash = strchr(key, '/');
        const char *text = json_string_value(json_object_get(v, "text"));
        snprintf(tid, sizeof(tid), "%.*s", (int)(slash ? slash - key : 0), key);
        print_line(f, tid, json_string_value(json_object_get(v, "step")),
                   slash ? slash + 1 : "stdout", text ? text : "", text ? strlen(text) : 0);
        json_object_del(f->pending, key);
    }
}

/* Each state of a step or target is said once, live or from the snapshot. */
static bool first_time(follower *f, const char *tid, const char *step, const char *state)
{
    char key[160];
    snprintf(key, sizeof(key), "%s/%s", tid ? tid : "", step ? step : "");
    const char *seen = json_string_value(json_object_get(f->seen, key));
    if (seen && strcmp(seen, state) == 0)
        return false;
    json_object_set_new(f->seen, key, json_string(state));
    return true;
}

static void step_event(follower *f, json_t *d)
{
    const char *state = json_string_value(json_object_get(d, "state"));
    const char *step = json_string_value(json_object_get(d, "step_id"));
    const char *tid = json_string_value(json_object_get(d, "target_id"));
    if (!state || (f->only_target[0] && (!tid || strcmp(tid, f->only_target) != 0)) ||
        !first_time(f, tid, step, state))
        return;
    follower_flush(f);
    prefix(f, tid, step, '*');
    printf("%s%s%s", color(f->c, state_color(state)), state, color(f->c, C_RESET));
    json_t *code = json_object_get(d, "exit_code");
    const char *error = json_string_value(json_object_get(d, "error"));
    if (json_is_integer(code))
        printf(" (exit %lld)", (long long)json_integer_value(code));
    if (error)
        printf(": %s", error);
    printf("\n");
}

static void target_event(follower *f, json_t *d)
{
    const char *state = json_string_value(json_object_get(d, "state"));
    const char *tid = json_string_value(json_object_get(d, "target_id"));
    if (!state || strcmp(state, "running") == 0 ||
        (f->only_target[0] && (!tid || strcmp(tid, f->only_target) != 0)) ||
        !first_time(f, tid, NULL, state))
        return;
    follower_flush(f);
    prefix(f, tid, NULL, '*');
    printf("target %s%s%s\n", color(f->c, state_color(state)), state, color(f->c, C_RESET));
}

static bool settled(const char *state)
{
    return state && strcmp(state, "queued") != 0 && strcmp(state, "running") != 0;
}

/* The snapshot sums up what happened while the stream was catching up:
 * the step and target states that were not sent one by one. */
static void snapshot(follower *f, json_t *run)
{
    follower_learn(f, run);
    json_t *t, *st;
    size_t i, j;
    json_array_foreach(json_object_get(run, "targets"), i, t)
    {
        json_t *tid = json_object_get(t, "target_id");
        json_array_foreach(json_object_get(t, "steps"), j, st)
        {
            if (!settled(json_string_value(json_object_get(st, "state"))))
                continue;
            json_t *ev = json_deep_copy(st);
            json_object_set(ev, "target_id", tid);
            json_object_set(ev, "step_id", json_object_get(st, "id"));
            step_event(f, ev);
            json_decref(ev);
        }
        if (settled(json_string_value(json_object_get(t, "state"))))
            target_event(f, t);
    }
}

int follower_event(const char *event, const char *id, json_t *data, void *ud)
{
    follower *f = ud;
    if (f->c->output == OUT_JSON) { /* one JSON object per line, for scripts */
        print_event_json(event, id, data);
    } else if (strcmp(event, "log") == 0) {
        follower_log(f, data);
    } else if (strcmp(event, "step") == 0) {
        step_event(f, data);
    } else if (strcmp(event, "target") == 0) {
        target_event(f, data);
    } else if (strcmp(event, "run") == 0) {
        snapshot(f, data);
    }
    fflush(stdout);
    if (strcmp(event, "end") != 0)
        return 0;
    const char *state = json_string_value(json_object_get(data, "state"));
    snprintf(f->state, sizeof(f->state), "%s", state ? state : "");
    return 1;
}

/* The end: every target's outcome and what failed, then the run's. */
static void summary(follower *f, json_t *run)
{
    opsctl *c = f->c;
    follower_flush(f);
    json_t *t;
    size_t i;
    json_array_foreach(json_object_get(run, "targets"), i, t)
    {
        const char *state = json_string_value(json_object_get(t, "state"));
        const char *error = json_string_value(json_object_get(t, "error"));
        const char *code,
            *name = target_name(f, json_string_value(json_object_get(t, "target_id")), &code);
        printf("  %s%-*s%s  %s%s%s%s%s\n", color(c, code), (int)f->name_width, name,
               color(c, C_RESET), color(c, state_color(state)), state ? state : "",
               color(c, C_RESET), error ? ": " : "", error ? error : "");
    }
    char took[32];
    const char *state = json_string_value(json_object_get(run, "state"));
    const char *reason = json_string_value(json_object_get(run, "reason"));
    format_duration(json_string_value(json_object_get(run, "started_at")),
                    json_string_value(json_object_get(run, "finished_at")), took, sizeof(took));
    printf("run %s %s%s%s%s%s%s%s%s\n", json_string_value(json_object_get(run, "id")),
           color(c, C_BOLD), color(c, state_color(state)), state ? state : "?", color(c, C_RESET),
           *took ? " in " : "", took, reason ? ": " : "", reason ? reason : "");
}

static void on_sigint(int sig)
{
    (void)sig;
    opsctl_interrupted = 1;
}

int follow_run(opsctl *c, const char *run_id, const char *only_target, bool quiet_summary)
{
    /* Ctrl-C stops following, not the run: say how to stop the run too. */
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    follower f;
    follower_init(&f, c, only_target);
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/runs/%s", run_id);
    json_t *run = NULL;
    int rc = api_call(c, "GET", path, NULL, &run);
    if (rc == 0) {
        follower_learn(&f, run);
        strcat(path, "/events");
        rc = http_sse(c, path, follower_event, &f);
    }
    json_decref(run);
    run = NULL;
    if (rc == OPSCTL_INTERRUPTED) {
        follower_flush(&f);
        fprintf(stderr,
                "\nopsctl: stopped following; run %s goes on (opsctl runs cancel %s "
                "stops it)\n",
                run_id, run_id);
    } else if (rc == 0) {
        path[strlen(path) - strlen("/events")] = '\0';
        if (c->output == OUT_TABLE && !quiet_summary && api_call(c, "GET", path, NULL, &run) == 0)
            summary(&f, run);
        rc = run_exit_code(f.state);
    }
    fflush(stdout);
    sigaction(SIGINT, &old, NULL);
    json_decref(run);
    follower_free(&f);
    return rc;
}
