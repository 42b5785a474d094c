/* events.c - subscriber list with safe removal during delivery. */
#include "events.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

typedef struct sub {
    int64_t id;
    char *prefix;
    size_t prefix_len;
    char *subject;
    event_fn fn;
    void *ud;
    bool dead; /* unsubscribed during delivery: removed when delivery ends */
} sub;

struct events {
    sub *subs;
    size_t n, cap;
    int64_t next_id;
    uint64_t seq;
    int delivering; /* nesting depth: publish may be called from a subscriber */
};

int events_new(events **out)
{
    events *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return OPSC_ENOMEM;
    ev->next_id = 1;
    *out = ev;
    return 0;
}

static void sub_free(sub *s)
{
    free(s->prefix);
    free(s->subject);
}

void events_free(events *ev)
{
    if (!ev)
        return;
    for (size_t i = 0; i < ev->n; i++)
        sub_free(&ev->subs[i]);
    free(ev->subs);
    free(ev);
}

int64_t events_subscribe(events *ev, const char *type_prefix, const char *subject, event_fn fn,
                         void *ud)
{
    if (ev->n == ev->cap) {
        size_t cap = ev->cap ? ev->cap * 2 : 16;
        sub *v = realloc(ev->subs, cap * sizeof(*v));
        if (!v)
            return OPSC_ENOMEM;
        ev->subs = v;
        ev->cap = cap;
    }
    sub s = {ev->next_id, strdup(type_prefix ? type_prefix : ""), 0,
             subject ? strdup(subject) : NULL, fn, ud, false};
    if (!s.prefix || (subject && !s.subject)) {
        sub_free(&s);
        return OPSC_ENOMEM;
    }
    s.prefix_len = strlen(s.prefix);
    ev->subs[ev->n++] = s;
    return ev->next_id++;
}

static void compact(events *ev)
{
    size_t o = 0;
    for (size_t i = 0; i < ev->n; i++) {
        if (ev->subs[i].dead)
            sub_free(&ev->subs[i]);
        else
            ev->subs[o++] = ev->subs[i];
    }
    ev->n = o;
}

void events_unsubscribe(events *ev, int64_t id)
{
    for (size_t i = 0; i < ev->n; i++)
        if (ev->subs[i].id == id)
            ev->subs[i].dead = true;
    if (!ev->delivering)
        compact(ev);
}

static bool matches(const sub *s, const char *type, const char *subject)
{
    if (s->dead || strncmp(type, s->prefix, s->prefix_len) != 0)
        return false;
    return !s->subject || (subject && strcmp(s->subject, subject) == 0);
}

uint64_t events_publish(events *ev, const char *type, const char *subject, json_t *data)
{
    event e = {++ev->seq, type, subject, data};
    ev->delivering++;
    /* Subscribers added during delivery are not called for this event: n is read once. */
    size_t n = ev->n;
    for (size_t i = 0; i < n; i++) {
        sub *s = &ev->subs[i];
        if (matches(s, type, subject))
            s->fn(&e, s->ud);
    }
    if (--ev->delivering == 0)
        compact(ev);
    return e.seq;
}
