/* test_runfiles.c - files kept with their digests: what runs fetched, their listing and removal. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "runfiles.h"
#include "util.h"

#define RUN    "01900000-0000-7000-8000-0000000000aa"
#define TARGET "01900000-0000-7000-8000-0000000000bb"
/* sha256sum of "boom\n" and of "BOOM\n" */
#define BOOM   "8d7a531d714c4bd7121bf7d639c6191ff6495a4f1132c9ae3cdd672be0168954"

static char data[64];

static int setup(void **state)
{
    (void)state;
    snprintf(data, sizeof(data), "/tmp/opsc-runfiles-XXXXXX");
    return mkdtemp(data) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", data);
    return system(cmd) == 0 ? 0 : -1;
}

/* A file of the run's target, as a step would have left it (digest recorded). */
static void store(const char *name, const char *text)
{
    char dir[512], path[600];
    assert_int_equal(runfiles_dir(data, RUN, TARGET, true, dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(fs_write_file(path, text, strlen(text), 0600), 0);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    runfiles_digest d;
    bool changed;
    assert_int_equal(runfiles_digest_record(fd, name, &d, &changed), 0);
    close(fd);
}

static void the_digest_is_computed_once_and_again_only_when_the_file_changed(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/app.log", data);
    assert_int_equal(fs_write_file(path, "boom\n", 5, 0600), 0);
    int dir = open(data, O_RDONLY | O_DIRECTORY), fd = open(path, O_RDONLY);
    struct stat st;
    runfiles_digest d;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(runfiles_digest_get(dir, "app.log", fd, &st, &d), 0);
    assert_string_equal(d.sha256, BOOM);
    assert_int_equal(d.size, 5);
    close(fd);
    /* Same size, inode and time: the kept digest answers, the file is not read. */
    fd = open(path, O_WRONLY);
    assert_int_equal(pwrite(fd, "BOOM\n", 5, 0), 5);
    close(fd);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    fd = open(path, O_RDONLY);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(runfiles_digest_get(dir, "app.log", fd, &st, &d), 0);
    assert_string_equal(d.sha256, BOOM);
    /* Another time: computed again, and kept. */
    times[1].tv_sec += 1;
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(runfiles_digest_get(dir, "app.log", fd, &st, &d), 0);
    assert_string_not_equal(d.sha256, BOOM);
    bool changed = false;
    assert_int_equal(runfiles_digest_record(dir, "app.log", &d, &changed), 0);
    assert_false(changed);
    runfiles_digest_drop(dir, "app.log");
    assert_int_equal(faccessat(dir, ".app.log.sha256", F_OK, 0), -1);
    close(fd);
    close(dir);
}

static void the_list_shows_stored_files_only_sorted_with_digests(void **state)
{
    (void)state;
    store("b.log", "boom\n");
    store("a.log", "a\n");
    char dir[512], path[600];
    runfiles_dir(data, RUN, TARGET, false, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/c.log.opsc-part", dir); /* a transfer in progress */
    assert_int_equal(fs_write_file(path, "x", 1, 0600), 0);
    snprintf(path, sizeof(path), "%s/passwd", dir); /* a symlink planted there */
    assert_int_equal(symlink("/etc/passwd", path), 0);
    snprintf(path, sizeof(path), "%s/.passwd.sha256", dir);
    assert_int_equal(fs_write_file(path, "{}", 2, 0600), 0);
    json_t *list = NULL;
    assert_int_equal(runfiles_list(data, RUN, &list), 0);
    json_t *items = json_object_get(list, "items");
    assert_int_equal(json_array_size(items), 2);
    json_t *b = json_array_get(items, 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "name")),
                        "a.log");
    assert_string_equal(json_string_value(json_object_get(b, "name")), "b.log");
    assert_string_equal(json_string_value(json_object_get(b, "target_id")), TARGET);
    assert_string_equal(json_string_value(json_object_get(b, "sha256")), BOOM);
    assert_int_equal(json_integer_value(json_object_get(b, "size")), 5);
    assert_true(json_is_null(json_object_get(list, "next_cursor")));
    json_decref(list);
    struct stat st;
    int fd = runfiles_open(data, RUN, TARGET, "b.log", &st);
    assert_true(fd >= 0);
    assert_int_equal(st.st_size, 5);
    close(fd);
    assert_int_equal(runfiles_open(data, RUN, TARGET, "passwd", &st), OPSC_ENOENT);
    assert_int_equal(runfiles_open(data, RUN, TARGET, ".b.log.sha256", &st), OPSC_ENOENT);
    assert_int_equal(runfiles_open(data, RUN, "..", "b.log", &st), OPSC_ENOENT);
    assert_int_equal(runfiles_list(data, "01900000-0000-7000-8000-0000000000cc", &list), 0);
    assert_int_equal(json_array_size(json_object_get(list, "items")), 0); /* kept nothing */
    json_decref(list);
}

static void removal_takes_the_run_and_follows_no_link(void **state)
{
    (void)state;
    char outside[128], dir[512], link[600];
    snprintf(outside, sizeof(outside), "%s/outside", data);
    assert_int_equal(mkdir(outside, 0700), 0);
    snprintf(link, sizeof(link), "%s/keep.txt", outside);
    assert_int_equal(fs_write_file(link, "keep", 4, 0600), 0);
    store("a.log", "a\n");
    runfiles_dir(data, RUN, TARGET, false, dir, sizeof(dir));
    snprintf(link, sizeof(link), "%s/elsewhere", dir);
    assert_int_equal(symlink(outside, link), 0);
    assert_int_equal(runfiles_remove(data, RUN), 0);
    runfiles_dir(data, RUN, NULL, false, dir, sizeof(dir));
    assert_int_equal(access(dir, F_OK), -1);
    snprintf(link, sizeof(link), "%s/keep.txt", outside);
    assert_int_equal(access(link, F_OK), 0);
    assert_int_equal(runfiles_remove(data, RUN), 0); /* nothing left: nothing to do */
}

static void ids_that_could_leave_the_folder_are_refused(void **state)
{
    (void)state;
    char dir[512];
    const char *bad[] = {"", "..", ".", "a/b", "a b", "x\n", "%2e%2e", NULL};
    for (int i = 0; bad[i]; i++) {
        assert_false(runfiles_id_ok(bad[i]));
        assert_int_equal(runfiles_dir(data, bad[i], TARGET, true, dir, sizeof(dir)), OPSC_EINVAL);
        assert_int_equal(runfiles_dir(data, RUN, bad[i], true, dir, sizeof(dir)), OPSC_EINVAL);
    }
    assert_true(runfiles_id_ok(RUN));
    assert_int_equal(runfiles_remove(data, "../.."), OPSC_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            the_digest_is_computed_once_and_again_only_when_the_file_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(the_list_shows_stored_files_only_sorted_with_digests, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(removal_takes_the_run_and_follows_no_link, setup, teardown),
        cmocka_unit_test_setup_teardown(ids_that_could_leave_the_folder_are_refused, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
