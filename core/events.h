/* events.h - in-process publish/subscribe of state changes.
 *
 * The executor publishes run and step transitions and log lines, the
 * scheduler publishes fires and misses, the fleet publishes target changes.
 * SSE streams, notifications, metrics and the scheduler's queue policy
 * subscribe. Event types are dotted ("run.state", "run.log",
 * "schedule.missed"); a subscription matches a type prefix ("run." gets
 * every run event) and optionally one subject (a run id).
 *
 * Thread: loop only. Delivery is synchronous inside events_publish(), in
 * subscription order; a subscriber must not block, and may unsubscribe
 * itself or others (even during delivery). Every event gets a sequence
 * number, increasing for the life of the process (SSE ids build on it).
 */
#ifndef OPSC_EVENTS_H
#define OPSC_EVENTS_H

#include <jansson.h>
#include <stdint.h>

typedef struct events events;

typedef struct event {
    uint64_t seq;
    const char *type;    /* "run.state" */
    const char *subject; /* the object's id, or NULL */
    json_t *data;        /* borrowed for the callback */
} event;

typedef void (*event_fn)(const event *ev, void *ud);

int events_new(events **out);
void events_free(events *ev);

/* Subscribe to events whose type starts with `type_prefix` ("" for all) and,
 * when `subject` is not NULL, whose subject equals it (copied). Returns an id
 * > 0 for events_unsubscribe(), or a negative OPSC_E* code. */
int64_t events_subscribe(events *ev, const char *type_prefix, const char *subject, event_fn fn,
                         void *ud);
void events_unsubscribe(events *ev, int64_t id);

/* Deliver now to every matching subscriber. `data` is borrowed. Returns the
 * event's sequence number. */
uint64_t events_publish(events *ev, const char *type, const char *subject, json_t *data);

#endif
