/* runs_sse.c - GET /api/v1/runs/{id}/events: a run's log and state changes as Server-Sent Events.
 *
 * Every event of a run has a sequence number (log records and state
 * changes share it); it is the SSE id. A client is first brought up to date
 * from the store: the log records after its Last-Event-ID (all of them
 * without one), in sequence order, then a "run" event with the whole run as
 * it is now (state changes it missed are summed up there). Then it gets
 * events live: "log", "state", "target", "step". A client that cannot keep
 * up goes back to reading the store, so it is never cut off nor allowed to
 * hold unbounded memory. When the run ends: an "end" event, then the
 * stream closes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "core.h"
#include "events.h"
#include "exec.h"
#include "jobs_routes.h"
#include "log.h"
#include "rest.h"
#include "store.h"
#include "run_read.h"
#include "util.h"

#define WINDOW_BYTES (256u << 10) /* store read per step of catching up */
#define QUEUE_HIGH   (4u << 20)   /* bytes queued to the client: pause catching up */
#define QUEUE_DROP   (16u << 20)  /* live and this far behind: back to the store */
#define KEEPALIVE_MS 15000
#define FOLLOW_MS    250 /* cluster mode: how often the store is read for a run on another node */

typedef struct sse_client {
    struct opsc_core *c;
    http_sse *sse;
    char run_id[UUID_STR_LEN];
    int64_t sub;
    uint64_t last; /* seq of the last event sent */
    bool live;
    char state[16];     /* following a run of another node: the state last sent */
    unsigned quiet;     /* ... and polls since anything was sent (keep-alive) */
    uv_timer_t timer;
} sse_client;

static void client_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void client_free(sse_client *cl)
{
    if (cl->sub > 0)
        events_unsubscribe(cl->c->events, cl->sub);
    cl->sub = 0;
    uv_close((uv_handle_t *)&cl->timer, client_close_cb);
}

static void on_sse_closed(void *ud)
{
    sse_client *cl = ud;
    cl->sse = NULL;
    client_free(cl);
}

static void end_stream(sse_client *cl)
{
    if (cl->sse)
        http_sse_end(cl->sse);
    cl->sse = NULL;
    client_free(cl);
}

static int64_t send_json(sse_client *cl, uint64_t seq, const char *name, json_t *data)
{
    char id[24], *text = json_dumps(data, JSON_COMPACT);
    if (seq)
        snprintf(id, sizeof(id), "%llu", (unsigned long long)seq);
    int64_t q = text ? http_sse_send(cl->sse, seq ? id : NULL, name, text) : OPSC_ENOMEM;
    free(text);
    if (seq > cl->last)
        cl->last = seq;
    return q;
}

/* ---- catching up from the store ------------------------------------------------------------ */

typedef struct window {
    const char *run_id;
    uint64_t after;
    json_t *run, *items;
    bool more;
} window;

static int window_txn(store_txn *txn, void *ud)
{
    window *w = ud;
    int rc = run_read(txn, w->run_id, &w->run);
    if (rc == 0)
        rc = run_log_window(txn, w->run_id, json_object_get(w->run, "targets"), w->after,
                            WINDOW_BYTES, &w->items, &w->more);
    return rc;
}

static void catch_up(uv_timer_t *t);

static bool terminal(const char *state)
{
    return state && strcmp(state, "queued") != 0 && strcmp(state, "running") != 0;
}

/* Caught up: the run as it is now, then live (or the end). */
static void go_live(sse_client *cl, json_t *run)
{
    send_json(cl, 0, "run", run);
    const char *state = json_string_value(json_object_get(run, "state"));
    if (terminal(state)) {
        json_t *d = json_pack("{s:s, s:s}", "run_id", cl->run_id, "state", state);
        send_json(cl, 0, "end", d);
        json_decref(d);
        end_stream(cl);
        return;
    }
    cl->live = true;
    uv_timer_start(&cl->timer, catch_up, KEEPALIVE_MS, KEEPALIVE_MS);
}

/* Cluster mode: the run is queued or runs on another node, whose events
 * never reach this node's bus. Its log records are in the shared store:
 * read what is after the cursor every FOLLOW_MS, and send its state when
 * it changed, until it ends or comes to run here (then live). */
static bool elsewhere(const sse_client *cl)
{
    return store_is_shared(cl->c->store) && !exec_runs_here(cl->c->exec, cl->run_id);
}

static void follow(sse_client *cl, json_t *run, bool sent)
{
    const char *state = json_string_value(json_object_get(run, "state"));
    if (!state || terminal(state)) {
        go_live(cl, run); /* the run as it ended, then the end */
        return;
    }
    if (!cl->state[0]) {
        send_json(cl, 0, "run", run);
        sent = true;
    } else if (strcmp(cl->state, state)) {
        json_t *d = json_pack("{s:s, s:s, s:s}", "run_id", cl->run_id, "state", state,
                              "previous", cl->state);
        send_json(cl, 0, "state", d);
        json_decref(d);
        sent = true;
    }
    snprintf(cl->state, sizeof(cl->state), "%s", state);
    cl->quiet = sent ? 0 : cl->quiet + 1;
    if (cl->quiet >= KEEPALIVE_MS / FOLLOW_MS) {
        cl->quiet = 0;
        if (http_sse_comment(cl->sse, "keep-alive") < 0) {
            end_stream(cl);
            return;
        }
    }
    uv_timer_start(&cl->timer, catch_up, FOLLOW_MS, 0);
}

static void catch_up(uv_timer_t *t)
{
    sse_client *cl = t->data;
    if (!cl->sse)
        return;
    if (cl->live) { /* the keep-alive tick */
        if (http_sse_comment(cl->sse, "keep-alive") < 0)
            end_stream(cl);
        return;
    }
    exec_flush(cl->c->exec); /* every record published so far is in the store */
    window w = {cl->run_id, cl->last, NULL, NULL, false};
    int rc = store_read(cl->c->store, window_txn, &w);
    int64_t queued = 0;
    size_t i;
    json_t *r;
    json_array_foreach(w.items, i, r)
    {
        queued = send_json(cl, (uint64_t)json_integer_value(json_object_get(r, "seq")), "log", r);
        if (queued < 0)
            break;
    }
    if (rc < 0 || queued < 0) {
        if (rc < 0)
            log_warn("api", "run %s events: reading the log failed: %s", cl->run_id,
                     opsc_strerror(rc));
        end_stream(cl);
    } else if (w.more) {
        uv_timer_start(&cl->timer, catch_up, queued > (int64_t)QUEUE_HIGH ? 50 : 0, 0);
    } else if (elsewhere(cl)) {
        follow(cl, w.run, json_array_size(w.items) > 0);
    } else {
        go_live(cl, w.run);
    }
    json_decref(w.run);
    json_decref(w.items);
}

/* ---- live ------------------------------------------------------------------------------------ */

static void on_event(const event *ev, void *ud)
{
    sse_client *cl = ud;
    if (!cl->live || !cl->sse)
        return; /* catching up: the store has it, the final "run" event sums it up */
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(ev->data, "seq"));
    if (seq && seq <= cl->last)
        return;
    const char *name = ev->type + 4; /* "run.log" -> "log" */
    int64_t q = send_json(cl, seq, name, ev->data);
    if (q < 0) {
        end_stream(cl);
        return;
    }
    const char *state = json_string_value(json_object_get(ev->data, "state"));
    if (strcmp(ev->type, "run.state") == 0 && terminal(state)) {
        json_t *d = json_pack("{s:s, s:s}", "run_id", cl->run_id, "state", state);
        send_json(cl, 0, "end", d);
        json_decref(d);
        end_stream(cl);
        return;
    }
    if (q > (int64_t)QUEUE_DROP) { /* too slow for live: read the store again, at its pace */
        cl->live = false;
        uv_timer_start(&cl->timer, catch_up, 100, 0);
    }
}

/* ---- the request ----------------------------------------------------------------------------- */

static bool last_event_id(http_req *req, uint64_t *after)
{
    const char *v = http_req_header(req, "Last-Event-ID");
    if (!v)
        v = http_req_query(req, "last_event_id");
    *after = 0;
    if (!v || !*v)
        return true;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end) {
        http_respond_error(req, 400, "bad_request", NULL,
                           "Last-Event-ID must be an event id this stream sent");
        return false;
    }
    *after = n;
    return true;
}

int runs_events(http_req *req)
{
    struct opsc_core *c = http_req_app(req);
    const char *id = http_req_param(req, "id");
    uint64_t after;
    if (!last_event_id(req, &after))
        return HTTP_DONE;
    int rc = run_exists(c->store, id);
    if (rc < 0) {
        rest_error(req, rc, "run");
        return HTTP_DONE;
    }
    sse_client *cl = calloc(1, sizeof(*cl));
    if (!cl) {
        http_respond_opsc_error(req, OPSC_ENOMEM, "out of memory");
        return HTTP_DONE;
    }
    cl->c = c;
    cl->last = after;
    snprintf(cl->run_id, sizeof(cl->run_id), "%s", id);
    uv_timer_init(c->loop, &cl->timer);
    cl->timer.data = cl;
    cl->sse = http_sse_start(req, on_sse_closed, cl);
    if (!cl->sse) {
        uv_close((uv_handle_t *)&cl->timer, client_close_cb);
        return HTTP_DONE;
    }
    cl->sub = events_subscribe(c->events, "run.", cl->run_id, on_event, cl);
    uv_timer_start(&cl->timer, catch_up, 0, 0);
    return HTTP_DONE;
}
