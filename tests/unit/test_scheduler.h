/* test_scheduler.h - helpers and test lists shared by test_scheduler's files (one executable). */
#ifndef OPSC_TEST_SCHEDULER_H
#define OPSC_TEST_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched_fixture.h"

/* Started runs of schedule `id` planned in [from, to). */
size_t started_between(sfx *f, const char *id, int64_t from, int64_t to);
/* A run of `id` was started for the planned instant `rfc`. */
bool started_at(sfx *f, const char *id, const char *rfc);
/* Every run of `id` was created at its planned instant (virtual clock). */
void assert_on_time(sfx *f, const char *id);
/* Fails the test when `needle` is not in `text`. */
void assert_contains(const char *text, const char *needle);

extern const struct CMUnitTest sched_overlap_tests[]; /* test_scheduler_overlap.c */
extern const size_t sched_overlap_test_count;
extern const struct CMUnitTest sched_record_tests[]; /* test_scheduler_records.c */
extern const size_t sched_record_test_count;
extern const struct CMUnitTest sched_retry_tests[]; /* test_scheduler_retry.c */
extern const size_t sched_retry_test_count;
extern const struct CMUnitTest sched_api_tests[]; /* test_scheduler_api.c */
extern const size_t sched_api_test_count;

#endif
