/* test_store.h - fixtures shared by the store's test files (one executable, test_store). */
#ifndef OPSC_TEST_STORE_H
#define OPSC_TEST_STORE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "store.h"

#define MIB (INT64_C(1) << 20)

/* Per-test fixture: *state is a fresh temporary directory, removed after. */
int tmp_setup(void **state);
int tmp_teardown(void **state);
void rm_rf(const char *path);
/* dir/name into buf (asserts it fits). */
void join(char *buf, size_t n, const char *dir, const char *name);
/* Open read-write with the given map sizes (0: defaults), asserting success. */
store *open_ok(const char *dir, int64_t map, int64_t max);

/* A write/read function that fails with OPSC_EIO. */
int txn_fail_eio(store_txn *t, void *ud);

/* A "targets" record named `name` (with `pad` filler bytes) and its
 * targets_by_name entry, in one transaction. */
int put_target(store_txn *t, const char *name, size_t pad);
/* Write `count` targets named "<prefix>-<n>" (n from `first`) in one txn. */
int put_targets(store *s, const char *prefix, int first, int count, size_t pad);
/* Every targets record parses and carries its bookkeeping fields, and
 * targets_by_name indexes exactly those records. Record count, or < 0 after
 * printing what is wrong. Uses no cmocka asserts: safe in forked children. */
long check_targets(store *s);

/* Child process: open `dir` read-write (map `map`), then write one target
 * per transaction, sending the count committed so far (uint32_t) on
 * `ackfd` after each durable commit. Stops after `limit` writes (0: never)
 * and exits 0; exits non-zero on any error. Never returns. */
void writer_child(const char *dir, int64_t map, int ackfd, uint32_t limit, size_t pad)
    __attribute__((noreturn));
/* The last count a writer acknowledged, reading until EOF; `seen` (the last
 * count already read) if nothing more arrived. */
long read_last_ack(int fd, long seen);
/* Block until the writer acknowledged at least `n` commits; the last count. */
long wait_ack(int fd, long n);

/* The other files' tests, each with the tmp_setup/tmp_teardown fixture. */
extern const struct CMUnitTest store_data_tests[];
extern const size_t store_data_test_count;
extern const struct CMUnitTest store_proc_tests[];
extern const size_t store_proc_test_count;

#define TMP_TEST(fn) cmocka_unit_test_setup_teardown(fn, tmp_setup, tmp_teardown)

#endif
