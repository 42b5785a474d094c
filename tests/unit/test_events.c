/* test_events.c - matching by prefix and subject, ordering, unsubscribing during delivery. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "events.h"

struct seen {
    int count;
    uint64_t last_seq;
    char last_type[32];
    events *bus;
    int64_t unsubscribe; /* id to drop when called */
};

static void record(const event *e, void *ud)
{
    struct seen *s = ud;
    s->count++;
    s->last_seq = e->seq;
    strncpy(s->last_type, e->type, sizeof(s->last_type) - 1);
    if (s->unsubscribe)
        events_unsubscribe(s->bus, s->unsubscribe);
}

static void prefix_and_subject_select_events(void **state)
{
    (void)state;
    events *bus;
    assert_int_equal(events_new(&bus), 0);
    struct seen all = {0}, runs = {0}, one = {0};
    assert_true(events_subscribe(bus, "", NULL, record, &all) > 0);
    assert_true(events_subscribe(bus, "run.", NULL, record, &runs) > 0);
    assert_true(events_subscribe(bus, "run.state", "r1", record, &one) > 0);
    events_publish(bus, "run.state", "r1", NULL);
    events_publish(bus, "run.state", "r2", NULL);
    events_publish(bus, "schedule.missed", "s1", NULL);
    assert_int_equal(all.count, 3);
    assert_int_equal(runs.count, 2);
    assert_int_equal(one.count, 1);
    assert_string_equal(all.last_type, "schedule.missed");
    assert_int_equal(all.last_seq, 3);
    events_free(bus);
}

static void a_subscriber_may_unsubscribe_itself_and_others_during_delivery(void **state)
{
    (void)state;
    events *bus;
    assert_int_equal(events_new(&bus), 0);
    struct seen first = {0}, second = {0};
    int64_t id2 = events_subscribe(bus, "x", NULL, record, &second);
    int64_t id1 = events_subscribe(bus, "x", NULL, record, &first);
    first.bus = bus;
    first.unsubscribe = id2; /* second was already called for this event */
    events_publish(bus, "x", NULL, NULL);
    assert_int_equal(first.count, 1);
    assert_int_equal(second.count, 1);
    events_publish(bus, "x", NULL, NULL);
    assert_int_equal(second.count, 1);
    assert_int_equal(first.count, 2);
    first.unsubscribe = id1;
    events_publish(bus, "x", NULL, NULL);
    events_publish(bus, "x", NULL, NULL);
    assert_int_equal(first.count, 3);
    events_free(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prefix_and_subject_select_events),
        cmocka_unit_test(a_subscriber_may_unsubscribe_itself_and_others_during_delivery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
