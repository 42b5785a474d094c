/* test_spawner_host.c - what opsc-spawner in step host mode agrees to start: opsc-stephost from
 * its own path, one mode, the few options, the user it was given; nothing else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "spawner_internal.h"

#define HOST "/usr/libexec/opsconductor/opsc-stephost"

static spawner helper(void)
{
    spawner s = {.stephost = HOST};
    strcpy(s.user.name, "opsconductor-steplib");
    return s;
}

static const char **argv_of(const spawner *s, const char **vec, uint32_t envc)
{
    uint32_t n = 0;
    while (vec[n])
        n++;
    return sp_stephost_argv(s, vec, n, envc);
}

static void test_a_host_start_gets_the_fixed_user_appended(void **state)
{
    (void)state;
    spawner s = helper();
    const char *vec[] = {HOST, "--exec", "step.sh", "--bundle", "/var/lib/b",
                         "--scratch", "/tmp/opsc-step-Ab12cd", "--memory-limit", "1024", NULL};
    const char **argv = argv_of(&s, vec, 0);
    assert_non_null(argv);
    assert_string_equal(argv[0], HOST);
    assert_string_equal(argv[8], "1024");
    assert_string_equal(argv[9], "--user");
    assert_string_equal(argv[10], "opsconductor-steplib");
    assert_null(argv[11]);
    free(argv);
    const char *lib[] = {HOST, "--library", "/x/steplib-a.so", NULL};
    assert_non_null((argv = argv_of(&s, lib, 0)));
    free(argv);
}

static void test_anything_else_is_refused(void **state)
{
    (void)state;
    spawner s = helper();
    const char *refused[][8] = {
        {"/bin/sh", "--library", "/x.so", NULL},                  /* another program */
        {HOST "x", "--library", "/x.so", NULL},                   /* a path beside it */
        {HOST, "--run", "/x.so", NULL},                           /* not a mode */
        {HOST, "--library", "/x.so", "--user", "root", NULL},     /* a user of its choice */
        {HOST, "--library", "--user", NULL},                      /* an option as the path */
        {HOST, "--library", "", NULL},                            /* no path */
        {HOST, "--library", NULL},                                /* no path at all */
        {HOST, "--library", "/x.so", "--bundle", NULL},           /* an option without value */
        {HOST, "--library", "/x.so", "--bundle", "-x", NULL},     /* an option as its value */
        {HOST, "--exec", "a", "--scratch", "/etc", NULL},         /* a scratch it would give away */
        {HOST, "--exec", "a", "--scratch", "/tmp/opsc-step-a/b", NULL},
        {HOST, "--exec", "a", "--scratch", "/tmp/opsc-step-..", NULL},
        {HOST, "--exec", "a", "--scratch", "/tmp/opsc-step-", NULL},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        assert_null(argv_of(&s, refused[i], 0));
    const char *lib[] = {HOST, "--library", "/x.so", NULL};
    assert_null(argv_of(&s, lib, 1)); /* an environment */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_host_start_gets_the_fixed_user_appended),
        cmocka_unit_test(test_anything_else_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
