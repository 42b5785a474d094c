/* test_opsctl.c - opsctl's pure parts: the event-stream parser, request bodies and query strings,
 * and the follower's cutting of log records into lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "follow.h"
#include "sse_parse.h"

/* Events as "name|id|data" lines. */
struct seen {
    char text[4096];
    int stop_at; /* stop after this many events; 0: never */
    int n;
};

static int record(const char *event, const char *id, const char *data, size_t len, void *ud)
{
    struct seen *s = ud;
    size_t o = strlen(s->text);
    snprintf(s->text + o, sizeof(s->text) - o, "%s|%s|%.*s\n", event, id ? id : "-", (int)len,
             data);
    s->n++;
    return s->stop_at && s->n >= s->stop_at;
}

static const char stream[] = ": keep-alive\n"
                             "id: 5\nevent: log\ndata: {\"text\": \"a\"}\n\n"
                             "event: run\r\ndata: line one\r\ndata:line two\r\n\r\n"
                             "data: no name\n\n"
                             "event: empty\n\n"
                             "id: 9\nevent: end\ndata: {}\n\n";
static const char events[] = "log|5|{\"text\": \"a\"}\n"
                             "run|-|line one\nline two\n"
                             "message|-|no name\n"
                             "end|9|{}\n";

static void events_arrive_whole_whatever_the_chunks(void **state)
{
    (void)state;
    for (size_t chunk = 1; chunk <= sizeof(stream); chunk += 7) {
        struct seen s = {0};
        sse_parser p;
        sse_parser_init(&p, record, &s);
        for (size_t i = 0; i < sizeof(stream) - 1; i += chunk) {
            size_t n = sizeof(stream) - 1 - i < chunk ? sizeof(stream) - 1 - i : chunk;
            assert_true(sse_feed(&p, stream + i, n));
        }
        if (strcmp(s.text, events) != 0)
            fail_msg("chunks of %zu: got\n%s\nwant\n%s", chunk, s.text, events);
        assert_string_equal(p.last_id, "9");
        sse_parser_free(&p);
    }
}

static void parsing_stops_when_asked_and_resumes_clean_after_reset(void **state)
{
    (void)state;
    struct seen s = {.stop_at = 1};
    sse_parser p;
    sse_parser_init(&p, record, &s);
    assert_false(sse_feed(&p, stream, sizeof(stream) - 1));
    assert_string_equal(s.text, "log|5|{\"text\": \"a\"}\n");
    assert_string_equal(p.last_id, "5");
    /* A new connection: a half event from the old one is forgotten. */
    struct seen t = {0};
    sse_parser_free(&p);
    sse_parser_init(&p, record, &t);
    sse_feed(&p, "event: x\ndata: half", 19);
    sse_parser_reset(&p);
    sse_feed(&p, "\n\nevent: y\ndata: 1\n\n", 20);
    assert_string_equal(t.text, "y|-|1\n");
    sse_parser_free(&p);
}

static void an_overlong_line_is_dropped_not_kept(void **state)
{
    (void)state;
    struct seen s = {0};
    sse_parser p;
    sse_parser_init(&p, record, &s);
    size_t n = SSE_MAX_LINE + 100;
    char *big = malloc(n);
    assert_non_null(big);
    memcpy(big, "data: ", 6);
    memset(big + 6, 'x', n - 6);
    sse_feed(&p, "event: big\n", 11);
    sse_feed(&p, big, n);
    assert_true(p.cap <= SSE_MAX_LINE * 2);
    sse_feed(&p, "\ndata: small\n\n", 14);
    assert_string_equal(s.text, "big|-|small\n");
    free(big);
    sse_parser_free(&p);
}

static void bodies_from_fields_nest_type_and_read_files(void **state)
{
    (void)state;
    char path[] = "/tmp/opsctl-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "-----KEY-----\n", 14), 14);
    close(fd);
    char key_arg[64];
    snprintf(key_arg, sizeof(key_arg), "private_key=@%s", path);
    char *argv[] = {"name=web-1",     "port:=2222", "labels.role=web", "labels.env=prod",
                    "enabled:=false", key_arg,      "note=a=b"};
    json_t *body = NULL;
    assert_int_equal(body_build(NULL, 7, argv, &body), 0);
    char *text = json_dumps(body, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(text, "{\"enabled\":false,\"labels\":{\"env\":\"prod\",\"role\":\"web\"},"
                              "\"name\":\"web-1\",\"note\":\"a=b\",\"port\":2222,"
                              "\"private_key\":\"-----KEY-----\\n\"}");
    free(text);
    json_decref(body);
    unlink(path);
    char *bad[] = {"novalue"}, *badjson[] = {"n:={"}, *nofile[] = {"k=@/nonexistent/x"};
    assert_int_equal(body_build(NULL, 1, bad, &body), OPSCTL_USAGE);
    assert_int_equal(body_build(NULL, 1, badjson, &body), OPSCTL_USAGE);
    assert_int_equal(body_build(NULL, 1, nofile, &body), OPSCTL_USAGE);
    char *filters[] = {"label=role in (web,db)", "state=failed"};
    char *q = query_build(2, filters);
    assert_string_equal(q, "label=role%20in%20%28web%2Cdb%29&state=failed");
    free(q);
}

static void log_records_become_whole_lines_per_target_and_stream(void **state)
{
    (void)state;
    char out[] = "/tmp/opsctl-out-XXXXXX";
    int fd = mkstemp(out), saved = dup(STDOUT_FILENO);
    fflush(stdout);
    dup2(fd, STDOUT_FILENO);
    opsctl c = {.output = OUT_TABLE};
    follower f;
    follower_init(&f, &c, NULL);
    json_t *run = json_pack("{s:[{s:s, s:s, s:[{s:s}]}, {s:s, s:s, s:[]}]}", "targets", "target_id",
                            "t1", "name", "web-1", "steps", "id", "greet", "target_id", "t2",
                            "name", "db", "steps");
    follower_learn(&f, run);
    const char *recs[][4] = {
        {"t1", "greet", "stdout", "hel"},    {"t2", "greet", "stdout", "one\ntw"},
        {"t1", "greet", "stderr", "oops\n"}, {"t1", "greet", "stdout", "lo\nwor"},
        {"t2", "other", "stdout", "o\n"}, /* another step: the partial line ends first */
    };
    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
        json_t *r = json_pack("{s:s, s:s, s:s, s:s}", "target_id", recs[i][0], "step_id",
                              recs[i][1], "stream", recs[i][2], "text", recs[i][3]);
        follower_log(&f, r);
        json_decref(r);
    }
    follower_flush(&f);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    char got[1024] = "";
    FILE *in = fopen(out, "r");
    size_t n = fread(got, 1, sizeof(got) - 1, in);
    got[n] = '\0';
    fclose(in);
    close(fd);
    unlink(out);
    assert_string_equal(got, "db    | greet | one\n"
                             "web-1 ! greet ! oops\n"
                             "web-1 | greet | hello\n"
                             "db    | greet | tw\n"
                             "db    | other | o\n"
                             "web-1 | greet | wor\n");
    json_decref(run);
    follower_free(&f);
}

/* Groups of one or two words: how many words name one, and a prefix of a longer one. */
static void group_words_count_the_words_of_a_group(void **state)
{
    (void)state;
    char *line[] = {"notifications", "rules", "list"};
    assert_int_equal(group_words("notifications rules", 3, line), 2);
    assert_int_equal(group_words("notifications", 3, line), 1); /* its first word only */
    assert_int_equal(group_words("notification", 3, line), 0);
    assert_int_equal(group_words("notifications channels", 3, line), 0);
    assert_int_equal(group_words("notifications rules", 1, line), -1); /* only its first word */
    char *one[] = {"targets", "list"};
    assert_int_equal(group_words("targets", 2, one), 1);
    assert_int_equal(group_words("target", 2, one), 0);
    char *none[] = {"discovery"};
    assert_int_equal(group_words("discovery hosts", 0, none), 0);
}

/* Every command's words are unique: no two commands are typed the same. */
static void no_two_commands_share_their_words(void **state)
{
    (void)state;
    for (const command *a = opsctl_commands; a->name; a++)
        for (const command *b = a + 1; b->name; b++)
            assert_false(strcmp(a->name, b->name) == 0 &&
                         strcmp(a->group ? a->group : "", b->group ? b->group : "") == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(events_arrive_whole_whatever_the_chunks),
        cmocka_unit_test(parsing_stops_when_asked_and_resumes_clean_after_reset),
        cmocka_unit_test(an_overlong_line_is_dropped_not_kept),
        cmocka_unit_test(bodies_from_fields_nest_type_and_read_files),
        cmocka_unit_test(log_records_become_whole_lines_per_target_and_stream),
        cmocka_unit_test(group_words_count_the_words_of_a_group),
        cmocka_unit_test(no_two_commands_share_their_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
