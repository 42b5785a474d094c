/* test_selector.c - label selector parsing, matching, formatting, errors; label syntax. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <opsc/errors.h>

#include "selector.h"

static json_t *labels(const char *text)
{
    json_t *l = json_loads(text, 0, NULL);
    assert_non_null(l);
    return l;
}

static bool matches(const char *sel, const char *labels_json)
{
    selector *s = NULL;
    char err[256] = "";
    int rc = selector_parse(sel, &s, err, sizeof(err));
    if (rc != 0)
        fail_msg("parse '%s': %s", sel, err);
    json_t *l = labels(labels_json);
    bool m = selector_match(s, l);
    json_decref(l);
    selector_free(s);
    return m;
}

/* The error of a selector that must not parse, with its code. */
static int parse_error(const char *sel, char *err, size_t errlen)
{
    selector *s = NULL;
    int rc = selector_parse(sel, &s, err, errlen);
    assert_null(s);
    return rc;
}

static void test_equality_and_inequality(void **state)
{
    (void)state;
    assert_true(matches("env=prod", "{\"env\": \"prod\"}"));
    assert_true(matches("env==prod", "{\"env\": \"prod\"}"));
    assert_false(matches("env=prod", "{\"env\": \"dev\"}"));
    assert_false(matches("env=prod", "{}"));
    assert_true(matches("env!=prod", "{\"env\": \"dev\"}"));
    assert_true(matches("env!=prod", "{}")); /* absent counts as different */
    assert_false(matches("env!=prod", "{\"env\": \"prod\"}"));
    assert_true(matches("env=", "{\"env\": \"\"}"));
    assert_false(matches("env=", "{}"));
}

static void test_set_membership(void **state)
{
    (void)state;
    assert_true(matches("role in (web,db)", "{\"role\": \"db\"}"));
    assert_false(matches("role in (web,db)", "{\"role\": \"cache\"}"));
    assert_false(matches("role in (web,db)", "{}"));
    assert_true(matches("role notin (web,db)", "{\"role\": \"cache\"}"));
    assert_true(matches("role notin (web,db)", "{}"));
    assert_false(matches("role notin (web, db)", "{\"role\": \"web\"}"));
    assert_true(matches("role in(web)", "{\"role\": \"web\"}"));
}

static void test_existence(void **state)
{
    (void)state;
    assert_true(matches("legacy", "{\"legacy\": \"\"}"));
    assert_false(matches("legacy", "{}"));
    assert_true(matches("!legacy", "{}"));
    assert_false(matches("! legacy", "{\"legacy\": \"yes\"}"));
}

static void test_requirements_are_anded(void **state)
{
    (void)state;
    const char *sel = "env=prod,role in (web,db),!legacy";
    assert_true(matches(sel, "{\"env\": \"prod\", \"role\": \"web\"}"));
    assert_false(matches(sel, "{\"env\": \"prod\", \"role\": \"web\", \"legacy\": \"1\"}"));
    assert_false(matches(sel, "{\"env\": \"dev\", \"role\": \"web\"}"));
    assert_true(matches("  env = prod ,  tier  ", "{\"env\": \"prod\", \"tier\": \"x\"}"));
}

static void test_empty_selector_matches_everything(void **state)
{
    (void)state;
    selector *s = NULL;
    char err[128];
    assert_int_equal(selector_parse("   ", &s, err, sizeof(err)), 0);
    assert_true(selector_empty(s));
    assert_true(selector_match(s, NULL));
    selector_free(s);
}

static void test_prefixed_keys(void **state)
{
    (void)state;
    assert_true(matches("example.com/team=ops", "{\"example.com/team\": \"ops\"}"));
    char err[256];
    assert_true(label_key_valid("a.b-c/My_Key.1", err, sizeof(err)));
    assert_false(label_key_valid("Example.com/team", err, sizeof(err)));
    assert_non_null(strstr(err, "prefix"));
    assert_false(label_key_valid("a/b/c", err, sizeof(err)));
    assert_false(label_key_valid("-bad", err, sizeof(err)));
    assert_non_null(strstr(err, "start and end"));
}

static void test_errors_name_the_column(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(parse_error("env=prod,,role", err, sizeof(err)), OPSC_ESYNTAX);
    assert_string_equal(err, "column 10: expected a label key, found ','");
    assert_int_equal(parse_error("env=prod,", err, sizeof(err)), OPSC_ESYNTAX);
    assert_string_equal(err, "column 10: expected a requirement after ','");
    assert_int_equal(parse_error("role in web", err, sizeof(err)), OPSC_ESYNTAX);
    assert_string_equal(err, "column 9: expected '(' after 'in', found 'w'");
    assert_int_equal(parse_error("role in (web db)", err, sizeof(err)), OPSC_ESYNTAX);
    assert_string_equal(err,
                        "column 14: expected ',' or ')' in the value list of 'role', found 'd'");
    assert_int_equal(parse_error("role in (web,", err, sizeof(err)), OPSC_ESYNTAX);
    assert_string_equal(err, "column 14: expected a label value, found the end");
    assert_int_equal(parse_error("env~prod", err, sizeof(err)), OPSC_ESYNTAX);
    assert_string_equal(err, "column 4: expected '=', '!=', 'in', 'notin', ',' or the end after "
                             "the key 'env', found '~'");
    assert_int_equal(parse_error("!env=prod", err, sizeof(err)), OPSC_ESYNTAX);
    assert_string_equal(err, "column 5: expected ',' between requirements, found '='");
    assert_int_equal(parse_error("env=pr@d", err, sizeof(err)), OPSC_ESYNTAX);
    assert_string_equal(err, "column 7: expected ',' between requirements, found '@'");
    assert_int_equal(parse_error("-env=prod", err, sizeof(err)), OPSC_ESYNTAX);
    assert_non_null(strstr(err, "column 1: label key '-env'"));
    assert_int_equal(parse_error("env=-x", err, sizeof(err)), OPSC_ESYNTAX);
    assert_non_null(strstr(err, "column 5: label value '-x'"));
    assert_int_equal(parse_error("!", err, sizeof(err)), OPSC_ESYNTAX);
    assert_string_equal(err, "column 2: expected a label key, found the end");
}

static void test_limits(void **state)
{
    (void)state;
    char err[256], big[SELECTOR_MAX_LEN + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(parse_error(big, err, sizeof(err)), OPSC_E2BIG);
    char many[SELECTOR_MAX_LEN] = "";
    for (int i = 0; i <= SELECTOR_MAX_REQS; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%sk%d", i ? "," : "", i);
    assert_int_equal(parse_error(many, err, sizeof(err)), OPSC_E2BIG);
    assert_non_null(strstr(err, "at most"));
}

static void test_format_round_trips(void **state)
{
    (void)state;
    static const char *const in[] = {"env = prod , role in ( web , db ),! legacy",
                                     "a!=b,c notin (d),e==f,g=", ""};
    static const char *const want[] = {"env=prod,role in (web,db),!legacy",
                                       "a!=b,c notin (d),e=f,g=", ""};
    for (size_t i = 0; i < 3; i++) {
        selector *s = NULL, *s2 = NULL;
        char err[128];
        assert_int_equal(selector_parse(in[i], &s, err, sizeof(err)), 0);
        strbuf sb = STRBUF_INIT, sb2 = STRBUF_INIT;
        selector_format(s, &sb);
        assert_string_equal(sb.buf, want[i]);
        assert_int_equal(selector_parse(sb.buf, &s2, err, sizeof(err)), 0);
        selector_format(s2, &sb2);
        assert_string_equal(sb2.buf, sb.buf);
        sb_free(&sb);
        sb_free(&sb2);
        selector_free(s);
        selector_free(s2);
    }
}

static void test_labels_check(void **state)
{
    (void)state;
    char err[256];
    json_t *l = labels("{\"env\": \"prod\", \"example.com/x\": \"\"}");
    assert_int_equal(labels_check(l, err, sizeof(err)), 0);
    json_decref(l);
    l = labels("{\"env\": 3}");
    assert_int_equal(labels_check(l, err, sizeof(err)), OPSC_ESCHEMA);
    assert_string_equal(err, "label 'env' must have a string value");
    json_decref(l);
    l = labels("{\"env\": \"a b\"}");
    assert_int_equal(labels_check(l, err, sizeof(err)), OPSC_ESCHEMA);
    assert_non_null(strstr(err, "label value 'a b'"));
    json_decref(l);
    l = labels("{\"bad key\": \"x\"}");
    assert_int_equal(labels_check(l, err, sizeof(err)), OPSC_ESCHEMA);
    assert_non_null(strstr(err, "label key 'bad key'"));
    json_decref(l);
    assert_int_equal(labels_check(NULL, err, sizeof(err)), OPSC_ESCHEMA);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equality_and_inequality),
        cmocka_unit_test(test_set_membership),
        cmocka_unit_test(test_existence),
        cmocka_unit_test(test_requirements_are_anded),
        cmocka_unit_test(test_empty_selector_matches_everything),
        cmocka_unit_test(test_prefixed_keys),
        cmocka_unit_test(test_errors_name_the_column),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_format_round_trips),
        cmocka_unit_test(test_labels_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
