/* test_jsonschema.c - compiling schemas, validating documents, errors with JSON paths, defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "jsonschema.h"

static jschema *compile(const char *text)
{
    jschema *s;
    char err[512];
    if (jschema_compile_text(&s, text, err, sizeof(err)) != 0)
        fail_msg("schema %s: %s", text, err);
    return s;
}

static json_t *doc(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    if (!j)
        fail_msg("bad test document %s", text);
    return j;
}

static void valid(const char *schema, const char *instance)
{
    jschema *s = compile(schema);
    json_t *j = doc(instance);
    jschema_err e;
    size_t n;
    if (jschema_validate(s, j, 0, NULL, &e, 1, &n) != 0)
        fail_msg("%s rejected by %s: %s %s", instance, schema, e.path, e.msg);
    json_decref(j);
    jschema_free(s);
}

/* The instance must fail with one error at `path` whose message contains `msg`. */
static void invalid(const char *schema, const char *instance, const char *path, const char *msg)
{
    jschema *s = compile(schema);
    json_t *j = doc(instance);
    jschema_err e[4];
    size_t n = 0;
    int rc = jschema_validate(s, j, 0, NULL, e, 4, &n);
    if (rc != OPSC_ESCHEMA)
        fail_msg("%s accepted by %s", instance, schema);
    if (strcmp(e[0].path, path) != 0 || !strstr(e[0].msg, msg))
        fail_msg("%s: got '%s' '%s', want '%s' '...%s...'", instance, e[0].path, e[0].msg, path,
                 msg);
    json_decref(j);
    jschema_free(s);
}

static void bad_schema(const char *schema, const char *msg)
{
    jschema *s;
    char err[512];
    int rc = jschema_compile_text(&s, schema, err, sizeof(err));
    assert_int_equal(rc, OPSC_ESCHEMA);
    if (!strstr(err, msg))
        fail_msg("schema %s: message '%s' lacks '%s'", schema, err, msg);
}

static void types_including_integer_and_lists(void **state)
{
    (void)state;
    valid("{\"type\":\"integer\"}", "3");
    valid("{\"type\":\"integer\"}", "3.0");
    invalid("{\"type\":\"integer\"}", "3.5", "", "must be an integer, not number");
    valid("{\"type\":\"number\"}", "3");
    invalid("{\"type\":\"string\"}", "3", "", "must be a string, not integer");
    valid("{\"type\":[\"string\",\"null\"]}", "null");
    invalid("{\"type\":[\"string\",\"null\"]}", "true", "", "must be a null or string");
    invalid("{\"type\":\"object\"}", "[]", "", "must be an object, not array");
    valid("true", "{\"anything\":1}");
    invalid("false", "1", "", "is not allowed");
}

static void objects_properties_required_and_additional(void **state)
{
    (void)state;
    const char *s =
        "{\"type\":\"object\",\"required\":[\"name\"],\"additionalProperties\":false,"
        "\"properties\":{\"name\":{\"type\":\"string\"},\"port\":{\"type\":\"integer\"}}}";
    valid(s, "{\"name\":\"x\",\"port\":22}");
    invalid(s, "{\"port\":22}", "/name", "is required");
    invalid(s, "{\"name\":\"x\",\"prot\":22}", "/prot", "is not an allowed property");
    invalid(s, "{\"name\":\"x\",\"port\":\"22\"}", "/port", "must be an integer");
    const char *env = "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"},"
                      "\"propertyNames\":{\"pattern\":\"^[A-Za-z_][A-Za-z0-9_]*$\"},"
                      "\"maxProperties\":2}";
    valid(env, "{\"PATH\":\"/bin\"}");
    invalid(env, "{\"A\":1}", "/A", "must be a string");
    invalid(env, "{\"BAD-NAME\":\"x\"}", "/BAD-NAME", "does not match the pattern");
    invalid(env, "{\"A\":\"1\",\"B\":\"2\",\"C\":\"3\"}", "", "at most 2 properties");
}

static void arrays_items_counts_and_uniqueness(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"array\",\"items\":{\"type\":\"string\",\"minLength\":1},"
                    "\"minItems\":1,\"maxItems\":3,\"uniqueItems\":true}";
    valid(s, "[\"a\",\"b\"]");
    invalid(s, "[]", "", "at least 1 items");
    invalid(s, "[\"a\",\"b\",\"c\",\"d\"]", "", "at most 3 items");
    invalid(s, "[\"a\",\"\"]", "/1", "at least 1 characters");
    invalid(s, "[\"a\",\"a\"]", "", "items 0 and 1 are equal");
}

static void strings_count_code_points_and_match_ecma_patterns(void **state)
{
    (void)state;
    valid("{\"maxLength\":3}", "\"äöü\"");
    invalid("{\"minLength\":4}", "\"äöü\"", "", "at least 4 characters");
    valid("{\"pattern\":\"^\\\\d+$\"}", "\"2024\"");
    invalid("{\"pattern\":\"^\\\\d+$\"}", "\"ddd\"", "", "does not match the pattern ^\\d+$");
    valid("{\"pattern\":\"b+\"}", "\"abbbc\""); /* not anchored */
    valid("{\"pattern\":\"^(?:[a-z]+\\\\.)*[a-z]+$\"}", "\"linux.service.restart\"");
    valid("{\"pattern\":\"^\\\\w\\\\s\\\\S$\"}", "\"a x\"");
    valid("{\"pattern\":\"^.{3}$\"}", "\"äöü\"");           /* UTF mode: one dot per code point */
    /* $ is the end of the string as in ECMA-262, not "before a final newline" as in Perl:
     * a name with a newline appended must not pass ^[a-z]+$ into a command line. */
    invalid("{\"pattern\":\"^[a-z]+$\"}", "\"nginx\\n\"", "", "does not match the pattern");
    valid("{\"pattern\":\"^[a-z]+$\"}", "\"nginx\"");
    valid("{\"type\":\"integer\",\"pattern\":\"x\"}", "5"); /* pattern applies to strings only */
}

static void numbers_bounds_and_multiples(void **state)
{
    (void)state;
    const char *s = "{\"minimum\":1,\"maximum\":65535}";
    valid(s, "1");
    valid(s, "65535");
    invalid(s, "0", "", "at least 1");
    invalid(s, "65536", "", "at most 65535");
    invalid("{\"exclusiveMinimum\":0}", "0", "", "greater than 0");
    invalid("{\"exclusiveMaximum\":1.5}", "1.5", "", "less than 1.5");
    valid("{\"multipleOf\":0.5}", "2.5");
    invalid("{\"multipleOf\":2}", "3", "", "multiple of 2");
}

static void enum_and_const_compare_numbers_by_value(void **state)
{
    (void)state;
    valid("{\"enum\":[\"apt\",\"dnf\",1]}", "1.0");
    invalid("{\"enum\":[\"apt\",\"dnf\"]}", "\"yum\"", "", "must be one of [\"apt\",\"dnf\"]");
    valid("{\"const\":{\"a\":[1]}}", "{\"a\":[1.0]}");
    invalid("{\"const\":\"x\"}", "\"y\"", "", "must be \"x\"");
}

static void combinators_any_one_all_not(void **state)
{
    (void)state;
    const char *any = "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"integer\",\"minimum\":0}]}";
    valid(any, "\"x\"");
    valid(any, "3");
    invalid(any, "-1", "", "anyOf");
    const char *one = "{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"number\",\"minimum\":2}]}";
    valid(one, "1");
    valid(one, "2.5");
    invalid(one, "3", "", "exactly one of the allowed forms (oneOf), matches 2");
    valid("{\"allOf\":[{\"minimum\":1},{\"maximum\":2}]}", "2");
    invalid("{\"allOf\":[{\"minimum\":1},{\"maximum\":2}]}", "3", "", "at most 2");
    invalid("{\"not\":{\"const\":\"root\"}}", "\"root\"", "", "not allowed (not)");
    const char *either = "{\"type\":\"object\",\"oneOf\":[{\"required\":[\"src\"]},"
                         "{\"required\":[\"content\"]}]}";
    valid(either, "{\"src\":\"a\"}");
    invalid(either, "{\"src\":\"a\",\"content\":\"b\"}", "", "matches 2");
    invalid(either, "{}", "", "matches 0");
}

static void errors_carry_the_base_path_and_escape_pointer_characters(void **state)
{
    (void)state;
    jschema *s = compile("{\"type\":\"object\",\"properties\":{\"port\":{\"type\":\"integer\","
                         "\"maximum\":65535},\"a/b~c\":{\"type\":\"string\"}},"
                         "\"additionalProperties\":false}");
    json_t *j = doc("{\"port\":70000,\"a/b~c\":1,\"extra\":true}");
    jschema_err e[8];
    size_t n;
    assert_int_equal(jschema_validate(s, j, 0, "/steps/2/params", e, 8, &n), OPSC_ESCHEMA);
    assert_int_equal(n, 3);
    assert_string_equal(e[0].path, "/steps/2/params/port");
    assert_string_equal(e[0].msg, "must be at most 65535");
    assert_string_equal(e[1].path, "/steps/2/params/a~1b~0c");
    assert_string_equal(e[2].path, "/steps/2/params/extra");
    json_t *details = jschema_errors_json(e, n);
    assert_int_equal(json_array_size(details), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(details, 0), "path")),
                        "/steps/2/params/port");
    json_decref(details);
    /* More errors than room: the count is still exact. */
    assert_int_equal(jschema_validate(s, j, 0, NULL, e, 1, &n), OPSC_ESCHEMA);
    assert_int_equal(n, 3);
    assert_int_equal(jschema_validate(s, j, 0, NULL, NULL, 0, NULL), OPSC_ESCHEMA);
    json_decref(j);
    jschema_free(s);
}

static void defaults_are_added_when_asked_and_not_from_failed_branches(void **state)
{
    (void)state;
    jschema *s = compile("{\"type\":\"object\",\"properties\":{"
                         "\"interpreter\":{\"type\":\"string\",\"default\":\"/bin/sh\"},"
                         "\"opts\":{\"type\":\"object\",\"default\":{},\"properties\":{"
                         "\"retries\":{\"type\":\"integer\",\"default\":3}}},"
                         "\"given\":{\"type\":\"integer\",\"default\":1}},"
                         "\"anyOf\":[{\"properties\":{\"ghost\":{\"default\":1}},"
                         "\"required\":[\"nope\"]},{}]}");
    json_t *j = doc("{\"given\":5}");
    assert_int_equal(jschema_validate(s, j, 0, NULL, NULL, 0, NULL), 0);
    assert_int_equal(json_object_size(j), 1); /* untouched without the flag */
    assert_int_equal(jschema_validate(s, j, JSCHEMA_DEFAULTS, NULL, NULL, 0, NULL), 0);
    char *text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(text, "{\"given\":5,\"interpreter\":\"/bin/sh\",\"opts\":{\"retries\":3}}");
    free(text);
    json_decref(j);
    jschema_free(s);
}

static void broken_schemas_are_refused_with_their_location(void **state)
{
    (void)state;
    bad_schema("{\"type\":\"object\",\"properties\":{\"port\":{\"type\":\"int\"}}}",
               "schema /properties/port: unknown type 'int'");
    bad_schema("{\"properties\":{\"x\":{\"requird\":[]}}}",
               "/properties/x: unknown or unsupported keyword 'requird'");
    bad_schema("{\"$ref\":\"#/defs/a\"}", "unsupported keyword '$ref'");
    bad_schema("{\"pattern\":\"(unclosed\"}", "bad pattern at offset 9");
    bad_schema("{\"items\":{\"minLength\":-1}}", "/items: 'minLength' must be a non-negative");
    bad_schema("{\"anyOf\":[]}", "'anyOf' must be a non-empty list");
    bad_schema("{\"properties\":{\"n\":{\"type\":\"integer\",\"default\":\"x\"}}}",
               "/properties/n: 'default' is not valid: must be an integer");
    bad_schema("{\"type\": ", "schema is not JSON: 1:");
    bad_schema("[1]", "a schema must be an object or a boolean");
    /* Annotations and extension keys are fine. */
    jschema *s = compile("{\"title\":\"t\",\"description\":\"d\",\"examples\":[1],"
                         "\"format\":\"hostname\",\"x-secret\":true,\"$comment\":\"c\"}");
    assert_non_null(jschema_source(s));
    assert_null(jschema_properties(s));
    jschema_free(s);
}

static void pathological_patterns_fail_fast_instead_of_hanging(void **state)
{
    (void)state;
    char text[128];
    memset(text, 'a', 40);
    strcpy(text + 40, "!");
    json_t *j = json_string(text);
    jschema *s = compile("{\"pattern\":\"^(a+)+$\"}");
    jschema_err e;
    clock_t t0 = clock();
    assert_int_equal(jschema_validate(s, j, 0, NULL, &e, 1, NULL), OPSC_ESCHEMA);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    if (secs > 2.0)
        fail_msg("pattern took %.1f s", secs);
    assert_non_null(strstr(e.msg, "too costly"));
    json_decref(j);
    jschema_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(types_including_integer_and_lists),
        cmocka_unit_test(objects_properties_required_and_additional),
        cmocka_unit_test(arrays_items_counts_and_uniqueness),
        cmocka_unit_test(strings_count_code_points_and_match_ecma_patterns),
        cmocka_unit_test(numbers_bounds_and_multiples),
        cmocka_unit_test(enum_and_const_compare_numbers_by_value),
        cmocka_unit_test(combinators_any_one_all_not),
        cmocka_unit_test(errors_carry_the_base_path_and_escape_pointer_characters),
        cmocka_unit_test(defaults_are_added_when_asked_and_not_from_failed_branches),
        cmocka_unit_test(broken_schemas_are_refused_with_their_location),
        cmocka_unit_test(pathological_patterns_fail_fast_instead_of_hanging),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
