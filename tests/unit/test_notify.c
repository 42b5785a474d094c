/* test_notify.c - the notification service's parts on a real store: inbound signatures against
 * the published test vectors, replays, parameter mapping; rules compiled and matched (streaks,
 * filters, severity); deliveries written by the executor's hook, grouped within a window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "notify_internal.h"
#include "store.h"
#include "util.h"

/* ---- inbound signatures ------------------------------------------------------------------- */

/* The example of the Standard Webhooks specification (standard-webhooks.com). */
#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_ID     "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TS     "1614265330"
#define SW_BODY   "{\"test\": 2432232314}"
#define SW_SIG    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static hook_request standard(const char *sig, const char *body)
{
    hook_request r = {.webhook_id = SW_ID,
                      .webhook_timestamp = SW_TS,
                      .webhook_signature = sig,
                      .body = body,
                      .body_len = strlen(body)};
    return r;
}

static void standard_webhooks_spec_vector_verifies(void **state)
{
    (void)state;
    char id[256], why[256];
    hook_request r = standard(SW_SIG, SW_BODY);
    assert_int_equal(
        hook_verify(HOOK_STANDARD, SW_SECRET, &r, 1614265330, 300, id, why, sizeof(why)), 0);
    assert_string_equal(id, SW_ID);
    /* Several signatures (a key being rotated): one good one suffices. */
    r = standard("v1,AAAA v1,bm90IHRoaXM= " SW_SIG, SW_BODY);
    assert_int_equal(
        hook_verify(HOOK_STANDARD, SW_SECRET, &r, 1614265330, 300, id, why, sizeof(why)), 0);
}

static void standard_webhooks_refusals_say_why(void **state)
{
    (void)state;
    char id[256], why[256];
    struct {
        hook_request r;
        int64_t now;
        const char *secret, *reason;
    } cases[] = {
        {standard(SW_SIG, "{\"test\": 2432232315}"), 1614265330, SW_SECRET, "does not match"},
        {standard(SW_SIG, SW_BODY), 1614265330 + 301, SW_SECRET, "tolerance"},
        {standard(SW_SIG, SW_BODY), 1614265330 - 301, SW_SECRET, "tolerance"},
        {standard(SW_SIG, SW_BODY), 1614265330, "whsec_AAAAAAAAAAAAAAAAAAAAAAAA", "match"},
        {standard("v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", SW_BODY), 1614265330,
         SW_SECRET, "does not match"},
        {standard(NULL, SW_BODY), 1614265330, SW_SECRET, "missing"},
        {standard(SW_SIG, SW_BODY), 1614265330, "", "no secret"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(hook_verify(HOOK_STANDARD, cases[i].secret, &cases[i].r, cases[i].now, 300,
                                     id, why, sizeof(why)),
                         OPSC_EAUTH);
        if (!strstr(why, cases[i].reason))
            fail_msg("case %zu: '%s' does not say '%s'", i, why, cases[i].reason);
    }
    hook_request r = standard(SW_SIG, SW_BODY);
    r.webhook_timestamp = "16142653x0";
    assert_int_equal(
        hook_verify(HOOK_STANDARD, SW_SECRET, &r, 1614265330, 300, id, why, sizeof(why)),
        OPSC_EAUTH);
}

/* GitHub's documented example ("Validating webhook deliveries"). */
static void github_documented_vector_verifies(void **state)
{
    (void)state;
    char id[256], why[256];
    const char *body = "Hello, World!";
    hook_request r = {.hub_signature_256 =
                          "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                      .github_delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958",
                      .body = body,
                      .body_len = strlen(body)};
    assert_int_equal(
        hook_verify(HOOK_GITHUB, "It's a Secret to Everybody", &r, 0, 300, id, why, sizeof(why)),
        0);
    assert_string_equal(id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    r.hub_signature_256 = "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17";
    assert_int_equal(
        hook_verify(HOOK_GITHUB, "It's a Secret to Everybody", &r, 0, 300, id, why, sizeof(why)),
        0);
    r.body_len--;
    assert_int_equal(
        hook_verify(HOOK_GITHUB, "It's a Secret to Everybody", &r, 0, 300, id, why, sizeof(why)),
        OPSC_EAUTH);
    r.hub_signature_256 = "sha1=0123";
    assert_int_equal(hook_verify(HOOK_GITHUB, "x", &r, 0, 300, id, why, sizeof(why)), OPSC_EAUTH);
    assert_non_null(strstr(why, "malformed"));
}

static void gitlab_and_bearer_tokens_compare_whole_secrets(void **state)
{
    (void)state;
    char id[256], why[256];
    hook_request r = {.gitlab_token = "tok-123", .gitlab_event_uuid = "e-1", .body = ""};
    assert_int_equal(hook_verify(HOOK_GITLAB, "tok-123", &r, 0, 300, id, why, sizeof(why)), 0);
    assert_string_equal(id, "e-1");
    r.gitlab_token = "tok-12";
    assert_int_equal(hook_verify(HOOK_GITLAB, "tok-123", &r, 0, 300, id, why, sizeof(why)),
                     OPSC_EAUTH);
    r.gitlab_token = "tok-1234";
    assert_int_equal(hook_verify(HOOK_GITLAB, "tok-123", &r, 0, 300, id, why, sizeof(why)),
                     OPSC_EAUTH);
    hook_request b = {.authorization = "bearer tok-123", .body = ""};
    assert_int_equal(hook_verify(HOOK_TOKEN, "tok-123", &b, 0, 300, id, why, sizeof(why)), 0);
    assert_string_equal(id, "");
    b.authorization = "Basic dG9rLTEyMw==";
    assert_int_equal(hook_verify(HOOK_TOKEN, "tok-123", &b, 0, 300, id, why, sizeof(why)),
                     OPSC_EAUTH);
    assert_int_equal(hook_scheme_parse("gitlab"), HOOK_GITLAB);
    assert_int_equal(hook_scheme_parse("hmac"), -1);
}

/* ---- parameters and filters ---------------------------------------------------------------- */

static const char *query(void *ud, const char *name)
{
    (void)ud;
    return strcmp(name, "env") == 0 ? "prod" : NULL;
}

static void params_come_from_body_paths_and_the_query(void **state)
{
    (void)state;
    json_t *body = json_loads("{\"ref\":\"refs/heads/main\",\"repository\":{\"full_name\":"
                              "\"acme/shop\"},\"commits\":[{\"id\":\"c1\"},{\"id\":\"c2\"}],"
                              "\"n\":3,\"gone\":null}",
                              0, NULL);
    json_t *map =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ref", "body.ref", "repo",
                  "body.repository.full_name", "second", "body.commits.1.id", "n", "body.n", "env",
                  "query.env", "missing", "body.nope.x", "gone", "body.gone");
    json_t *p = hook_params(map, body, query, NULL);
    json_t *want = json_pack("{s:s, s:s, s:s, s:i, s:s}", "ref", "refs/heads/main", "repo",
                             "acme/shop", "second", "c2", "n", 3, "env", "prod");
    assert_true(json_equal(p, want));
    json_t *f = json_pack("{s:s, s:s}", "path", "ref", "equals", "refs/heads/main");
    assert_true(hook_filter_ok(f, body));
    json_object_set_new(f, "equals", json_string("refs/heads/dev"));
    assert_false(hook_filter_ok(f, body));
    assert_true(hook_filter_ok(NULL, body));
    assert_null(hook_path_get(body, "commits.9.id"));
    assert_null(hook_path_get(body, "ref.x"));
    json_decref(f);
    json_decref(want);
    json_decref(p);
    json_decref(map);
    json_decref(body);
}

/* ---- a store for the rest ------------------------------------------------------------------ */

typedef struct fx {
    char dir[64];
    store *s;
    notify n;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    char err[256];
    snprintf(f->dir, sizeof(f->dir), "/tmp/opsc-test-notify-XXXXXX");
    store_opts o = {0};
    if (!f || !mkdtemp(f->dir) || store_open(&f->s, f->dir, &o, err, sizeof(err)) < 0)
        return -1;
    /* The service's state without its loop: it never sends here (closed). */
    f->n.store = f->s;
    f->n.closed = true;
    f->n.public_url = strdup("https://opsc.test");
    f->n.busy = json_object();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    nt_rules_free(&f->n);
    json_decref(f->n.busy);
    free(f->n.public_url);
    store_close(f->s);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static int seen_txn(store_txn *txn, void *ud)
{
    const char **ids = ud;
    return hook_seen_put(txn, ids[0], ids[1], clock_now_ms());
}

static int sweep_txn(store_txn *txn, void *ud)
{
    (void)ud;
    return nt_hooks_seen_sweep(txn, clock_now_ms() + 10000, 5000);
}

static void a_message_id_is_accepted_once_per_hook(void **state)
{
    fx *f = *state;
    const char *a[] = {"hook-a", "msg-1"}, *b[] = {"hook-b", "msg-1"};
    assert_int_equal(store_write(f->s, seen_txn, a), 0);
    assert_int_equal(store_write(f->s, seen_txn, a), OPSC_EEXIST);
    assert_int_equal(store_write(f->s, seen_txn, b), 0); /* another hook's id space */
    assert_int_equal(store_write(f->s, sweep_txn, NULL), 0);
    assert_int_equal(store_write(f->s, seen_txn, a), 0); /* forgotten after keep_ms */
}

/* ---- rules ---------------------------------------------------------------------------------- */

static void rules_compile_events_filters_and_templates(void **state)
{
    (void)state;
    nrule r;
    char err[512];
    const char *field = NULL;
    json_t *rec = json_pack("{s:s, s:[s, s], s:[s], s:b, s:{s:s, s:s}, s:{s:s}}", "id", "r1",
                            "events", "run.failed", "run.fixed", "channels", "c1", "enabled", 1,
                            "filter", "severity", "warning", "selector", "env=prod", "template",
                            "subject", "{{ job.name }} {{ event.name }}");
    assert_int_equal(nt_rule_compile(rec, &r, err, sizeof(err), &field), 0);
    assert_int_equal(r.events, (1u << EV_RUN_FAILED) | (1u << EV_RUN_FIXED));
    assert_int_equal(r.min_sev, SEV_WARNING);
    assert_int_equal(r.min_failures, 3);
    assert_non_null(r.sel);
    json_t *payload =
        json_pack("{s:{s:s}, s:{s:s}}", "job", "name", "deploy", "event", "name", "run.failed");
    char *out = NULL;
    assert_int_equal(tpl_render_str(r.subject, payload, &out, NULL), 0);
    assert_string_equal(out, "deploy run.failed");
    free(out);
    json_decref(payload);
    nt_rule_clear(&r);

    json_object_set_new(rec, "template", json_pack("{s:s}", "text", "ok\n  {% for %}"));
    assert_int_equal(nt_rule_compile(rec, &r, err, sizeof(err), &field), OPSC_ESCHEMA);
    assert_string_equal(field, "template.text");
    assert_non_null(strstr(err, "template.text: 2:"));
    json_object_del(rec, "template");
    json_object_set_new(rec, "events", json_pack("[s]", "run.long_running"));
    assert_int_equal(nt_rule_compile(rec, &r, err, sizeof(err), &field), OPSC_ESCHEMA);
    assert_string_equal(field, "long_running");
    json_object_set_new(rec, "events", json_pack("[s]", "run.failed"));
    json_object_set_new(rec, "filter", json_pack("{s:s}", "selector", "env in (a"));
    assert_int_equal(nt_rule_compile(rec, &r, err, sizeof(err), &field), OPSC_ESCHEMA);
    assert_string_equal(field, "filter.selector");
    json_decref(rec);
}

/* The rule's index: the array moves as it grows. */
static size_t add_rule(fx *f, json_t *rec)
{
    char err[512];
    const char *field = NULL;
    f->n.rules = realloc(f->n.rules, (f->n.nrules + 1) * sizeof(*f->n.rules));
    assert_int_equal(nt_rule_compile(rec, &f->n.rules[f->n.nrules], err, sizeof(err), &field), 0);
    json_decref(rec);
    f->n.events |= f->n.rules[f->n.nrules].events;
    return f->n.nrules++;
}

static void streaks_decide_failing_and_fixed_per_rule_scope(void **state)
{
    fx *f = *state;
    size_t a = add_rule(f, json_pack("{s:s, s:[s], s:b, s:i}", "id", "by-job", "events",
                                     "run.failing", "enabled", 1, "min_consecutive_failures", 2));
    size_t b = add_rule(f, json_pack("{s:s, s:[s], s:b, s:{s:[s]}}", "id", "by-sched", "events",
                                     "run.fixed", "enabled", 1, "filter", "schedule_ids", "s1"));
    const nrule *job = &f->n.rules[a], *sched = &f->n.rules[b];
    notice no = {.ev = EV_RUN_FAILING,
                 .sev = SEV_ERROR,
                 .job_id = "j1",
                 .schedule_id = "s1",
                 .cur_job = 2,
                 .cur_sched = 1};
    bool m = false;
    assert_int_equal(nt_rule_matches(&f->n, NULL, job, &no, &m), 0);
    assert_true(m);
    no.cur_job = 3; /* once: at exactly N */
    assert_int_equal(nt_rule_matches(&f->n, NULL, job, &no, &m), 0);
    assert_false(m);
    no = (notice){.ev = EV_RUN_FIXED,
                  .sev = SEV_INFO,
                  .job_id = "j1",
                  .schedule_id = "s1",
                  .prev_job = 4,
                  .prev_sched = 0};
    assert_int_equal(nt_rule_matches(&f->n, NULL, sched, &no, &m), 0);
    assert_false(m); /* the schedule's own runs did not fail */
    no.prev_sched = 1;
    assert_int_equal(nt_rule_matches(&f->n, NULL, sched, &no, &m), 0);
    assert_true(m);
    no.schedule_id = "s2";
    assert_int_equal(nt_rule_matches(&f->n, NULL, sched, &no, &m), 0);
    assert_false(m);
}

/* ---- the executor's hook and the outbox ----------------------------------------------------- */

static int put_channel_txn(store_txn *txn, void *ud)
{
    (void)ud;
    json_t *ch = json_pack("{s:s, s:s, s:s, s:b, s:{}}", "id", "c1", "name", "ops", "type",
                           "webhook", "enabled", 1, "settings");
    int rc = store_create(txn, "notify_channels", ch);
    json_decref(ch);
    return rc;
}

typedef struct persist {
    notify *n;
    const char *run_id, *state, *previous, *schedule_id;
} persist;

static int persist_txn(store_txn *txn, void *ud)
{
    persist *p = ud;
    json_t *run = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:i, s:s, s:s, s:b}", "id", p->run_id,
                            "job_id", "j1", "job_name", "deploy", "state", p->state, "schedule_id",
                            p->schedule_id, "target_count", 2, "started_at", "2026-01-01T00:00:00Z",
                            "finished_at", "2026-01-01T00:00:01Z", "dry_run", 0);
    int rc = notify_run_persisted(p->n, txn, run, p->previous);
    json_decref(run);
    return rc;
}

typedef struct listing {
    json_t *items;
    size_t due;
} listing;

static int list_one(const char *id, json_t *rec, void *ud)
{
    (void)id;
    json_array_append(((listing *)ud)->items, rec);
    return 0;
}

static int count_due(const void *k, size_t kl, const void *v, size_t vl, void *ud)
{
    (void)k, (void)kl, (void)v, (void)vl;
    ((listing *)ud)->due++;
    return 0;
}

static int list_txn(store_txn *txn, void *ud)
{
    listing *l = ud;
    l->due = 0;
    int rc = store_scan(txn, "outbox", NULL, false, list_one, l);
    return rc ? rc : store_kv_scan(txn, "outbox_due", NULL, 0, count_due, l);
}

static json_t *outbox(fx *f, size_t *due)
{
    listing l = {json_array(), 0};
    assert_int_equal(store_read(f->s, list_txn, &l), 0);
    if (due)
        *due = l.due;
    return l.items;
}

static void run(fx *f, const char *id, const char *state, const char *previous)
{
    persist p = {&f->n, id, state, previous, "s1"};
    assert_int_equal(store_write(f->s, persist_txn, &p), 0);
}

static void the_persist_hook_writes_one_delivery_per_event_and_channel(void **state)
{
    fx *f = *state;
    assert_int_equal(store_write(f->s, put_channel_txn, NULL), 0);
    add_rule(f, json_pack("{s:s, s:[s, s, s, s], s:[s], s:b, s:i}", "id", "r1", "events",
                          "run.started", "run.failed", "run.failing", "run.fixed", "channels", "c1",
                          "enabled", 1, "min_consecutive_failures", 2));
    run(f, "run-1", "running", "queued");
    run(f, "run-1", "failed", "running");
    run(f, "run-2", "failed", "queued"); /* started and failed within one write */
    run(f, "run-2", "failed", "failed"); /* no change: nothing */
    run(f, "run-3", "failed", "running");
    run(f, "run-4", "succeeded", "running");
    size_t due = 0;
    json_t *all = outbox(f, &due);
    const char *want[] = {"run.started", "run.failed", "run.started", "run.failed",
                          "run.failing", "run.failed", "run.fixed"};
    assert_int_equal(json_array_size(all), sizeof(want) / sizeof(want[0]));
    assert_int_equal(due, json_array_size(all));
    for (size_t i = 0; i < json_array_size(all); i++) {
        json_t *d = json_array_get(all, i);
        assert_string_equal(json_string_value(json_object_get(d, "event")), want[i]);
        assert_string_equal(json_string_value(json_object_get(d, "state")), "pending");
        assert_string_equal(json_string_value(json_object_get(d, "channel_id")), "c1");
    }
    json_t *fixed = json_object_get(json_array_get(all, 6), "payload");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(fixed, "event"), "streak")),
                     3);
    assert_string_equal(json_string_value(json_object_get(fixed, "link")),
                        "https://opsc.test/api/v1/runs/run-4");
    json_decref(all);
}

static void a_group_window_merges_into_the_delivery_not_yet_sent(void **state)
{
    fx *f = *state;
    assert_int_equal(store_write(f->s, put_channel_txn, NULL), 0);
    add_rule(f, json_pack("{s:s, s:[s], s:[s], s:b, s:i}", "id", "r1", "events", "run.failed",
                          "channels", "c1", "enabled", 1, "group_window_s", 60));
    run(f, "run-1", "failed", "running"); /* the first goes at once */
    run(f, "run-2", "failed", "running"); /* merged into it: not tried yet */
    json_t *all = outbox(f, NULL);
    assert_int_equal(json_array_size(all), 1);
    json_t *first = json_array_get(all, 0);
    assert_int_equal(json_integer_value(json_object_get(first, "count")), 2);
    json_object_set_new(f->n.busy, json_string_value(json_object_get(first, "id")), json_true());
    json_decref(all);
    run(f, "run-3", "failed", "running"); /* the first is being sent: a new one, at window end */
    run(f, "run-4", "failed", "running");
    all = outbox(f, NULL);
    assert_int_equal(json_array_size(all), 2);
    json_t *second = json_array_get(all, 1);
    assert_int_equal(json_integer_value(json_object_get(second, "count")), 2);
    assert_true(json_integer_value(json_object_get(second, "due_ms")) >
                json_integer_value(json_object_get(json_array_get(all, 0), "due_ms")) + 59000);
    json_t *ids =
        json_object_get(json_object_get(json_object_get(second, "payload"), "grouped"), "run_ids");
    json_t *want = json_pack("[s, s]", "run-3", "run-4");
    assert_true(json_equal(ids, want));
    json_decref(want);
    json_decref(all);
}

static void a_rate_limit_spaces_real_sends(void **state)
{
    fx *f = *state;
    json_t *ch =
        json_pack("{s:s, s:{s:i, s:i}}", "id", "slack-1", "rate_limit", "max", 2, "per_s", 1);
    int64_t next = 0;
    assert_true(nt_limit_take(&f->n, ch, false, 1000, &next));
    assert_false(nt_limit_take(&f->n, ch, false, 1000, &next));
    assert_int_equal(next, 1500); /* a slot of its own */
    assert_false(nt_limit_take(&f->n, ch, false, 1000, &next));
    assert_int_equal(next, 2000);
    assert_true(nt_limit_take(&f->n, ch, true, 1700, &next));  /* its slot came late */
    assert_false(nt_limit_take(&f->n, ch, true, 2000, &next)); /* so the next waits */
    assert_int_equal(next, 2200);
    assert_true(nt_limit_take(&f->n, ch, true, 2200, &next));
    assert_false(nt_limit_take(&f->n, ch, false, 2300, &next));
    assert_int_equal(next, 2700);
    json_t *free_ch = json_pack("{s:s}", "id", "webhook-1");
    for (int i = 0; i < 100; i++)
        assert_true(nt_limit_take(&f->n, free_ch, false, 1000, &next));
    json_decref(free_ch);
    json_decref(ch);
    nt_limiters_free(&f->n);
}

typedef struct bus_op {
    notify *n;
    json_t *item;
} bus_op;

static int bus_txn(store_txn *txn, void *ud)
{
    bus_op *b = ud;
    return nt_bus_dispatch(b->n, txn, b->item);
}

/* The auth service publishes "user.locked" on the bus; the notice follows. */
static void a_locked_user_on_the_bus_is_a_notice(void **state)
{
    fx *f = *state;
    assert_int_equal(store_write(f->s, put_channel_txn, NULL), 0);
    add_rule(f, json_pack("{s:s, s:[s], s:[s], s:b, s:{s:s}}", "id", "r1", "events", "user.locked",
                          "channels", "c1", "enabled", 1, "filter", "severity", "warning"));
    bus_op b = {&f->n, json_pack("{s:s, s:s, s:{s:s, s:s}}", "type", "user.locked", "subject",
                                 "olga", "data", "username", "olga", "client", "10.0.0.9")};
    assert_int_equal(store_write(f->s, bus_txn, &b), 0);
    json_decref(b.item);
    json_t *all = outbox(f, NULL);
    assert_int_equal(json_array_size(all), 1);
    json_t *p = json_object_get(json_array_get(all, 0), "payload");
    assert_string_equal(json_string_value(json_object_get(json_object_get(p, "user"), "client")),
                        "10.0.0.9");
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(p, "event"), "summary")),
               "\"olga\" is locked out"));
    json_decref(all);
}

/* A discovered host's key changed: a warning that names both keys; rules by range and
 * severity take it, a rule for other addresses does not. */
static void a_changed_host_on_the_bus_is_a_notice_with_both_keys(void **state)
{
    fx *f = *state;
    assert_int_equal(store_write(f->s, put_channel_txn, NULL), 0);
    add_rule(f, json_pack("{s:s, s:[s], s:[s], s:b, s:{s:[s], s:s}}", "id", "r1", "events",
                          "discovery.host_changed", "channels", "c1", "enabled", 1, "filter",
                          "ranges", "10.1.2.0/24", "severity", "warning"));
    add_rule(f, json_pack("{s:s, s:[s], s:[s], s:b, s:{s:[s]}}", "id", "r2", "events",
                          "discovery.host_changed", "channels", "c1", "enabled", 1, "filter",
                          "ranges", "10.9.0.0-10.9.0.255"));
    json_t *host =
        json_pack("{s:s, s:s, s:[s], s:[{s:i, s:s}, {s:i, s:s}], s:{s:s, s:s}, s:s}", "id", "h1",
                  "address", "10.1.2.7", "hostnames", "web7.lan", "ports", "port", 22, "state",
                  "open", "port", 5985, "state", "closed", "ssh", "host_key_type", "ssh-ed25519",
                  "host_key_fingerprint", "SHA256:new", "os_family", "linux");
    bus_op b = {&f->n, json_pack("{s:s, s:s, s:{s:o, s:{s:s, s:{s:s, s:s}, s:{s:s, s:s}}}}", "type",
                                 "discovery.host_changed", "subject", "h1", "data", "host", host,
                                 "change", "field", "ssh.host_key", "before", "type", "ssh-ed25519",
                                 "fingerprint", "SHA256:old", "after", "type", "ssh-ed25519",
                                 "fingerprint", "SHA256:new")};
    assert_int_equal(store_write(f->s, bus_txn, &b), 0);
    json_decref(b.item);
    json_t *all = outbox(f, NULL);
    assert_int_equal(json_array_size(all), 1); /* r1 only: r2 watches other addresses */
    json_t *d = json_array_get(all, 0);
    assert_string_equal(json_string_value(json_object_get(d, "rule_id")), "r1");
    assert_string_equal(json_string_value(json_object_get(d, "severity")), "warning");
    json_t *p = json_object_get(d, "payload");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(p, "event"), "summary")),
        "Host 10.1.2.7 (web7.lan) changed its SSH host key: SHA256:old (ssh-ed25519) -> "
        "SHA256:new (ssh-ed25519)");
    json_t *h = json_object_get(p, "host");
    assert_int_equal(json_array_size(json_object_get(h, "open_ports")), 1);
    assert_string_equal(json_string_value(json_object_get(p, "link")),
                        "https://opsc.test/api/v1/discovery/hosts/h1");
    char *text = NULL;
    char err[256];
    assert_int_equal(nt_render_init(&f->n, err, sizeof(err)), 0);
    assert_int_equal(tpl_render_str(f->n.text_tpl, p, &text, NULL), 0);
    assert_non_null(strstr(text, "Ports:    22\n"));
    assert_non_null(strstr(text, "SSH host key before: SHA256:old (ssh-ed25519)\n"));
    assert_non_null(strstr(text, "SSH host key now:    SHA256:new (ssh-ed25519)\n"));
    free(text);
    nt_render_free(&f->n);
    json_decref(all);
}

static void discovery_filters_want_valid_ranges(void **state)
{
    (void)state;
    nrule r;
    char err[512];
    const char *field = NULL;
    json_t *rec = json_pack("{s:s, s:[s], s:[s], s:b, s:{s:[s]}}", "id", "r", "events",
                            "discovery.host_found", "channels", "c1", "enabled", 1, "filter",
                            "ranges", "10.1.2.0/33");
    assert_int_equal(nt_rule_compile(rec, &r, err, sizeof(err), &field), OPSC_ESCHEMA);
    assert_string_equal(field, "filter.ranges");
    assert_non_null(strstr(err, "filter.ranges[0]: "));
    json_decref(rec);
}

typedef struct aged {
    int64_t at;
    const char *state;
    char id[UUID_STR_LEN];
} aged;

static int put_aged_txn(store_txn *txn, void *ud)
{
    aged *a = ud;
    uuid7_new_at(a->id, a->at);
    json_t *rec = json_pack("{s:s, s:s}", "id", a->id, "state", a->state);
    int rc = store_create(txn, "outbox", rec);
    json_decref(rec);
    return rc;
}

typedef struct sweep_op {
    int64_t cutoff;
    bool more;
} sweep_op;

static int history_txn(store_txn *txn, void *ud)
{
    sweep_op *s = ud;
    return nt_history_sweep(txn, s->cutoff, 2, &s->more);
}

static void finished_deliveries_go_after_the_retention(void **state)
{
    fx *f = *state;
    /* Ids only grow in a process: the cutoff moves to the future instead. */
    int64_t now = clock_now_ms(), day = 86400000;
    aged a[] = {{now, "delivered"},
                {now, "pending"},
                {now, "gave_up"},
                {now, "delivered"},
                {now + day, "delivered"}};
    for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++)
        assert_int_equal(store_write(f->s, put_aged_txn, &a[i]), 0);
    sweep_op s = {now + day / 2, false};
    assert_int_equal(store_write(f->s, history_txn, &s), 0);
    assert_true(s.more); /* two at a time: more is left */
    assert_int_equal(store_write(f->s, history_txn, &s), 0);
    assert_false(s.more);
    json_t *all = outbox(f, NULL);
    assert_int_equal(json_array_size(all), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(all, 0), "id")), a[1].id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(all, 1), "id")), a[4].id);
    /* the pending one stays, however old; the young one too */
    json_decref(all);
}

static void slack_text_escapes_the_data_not_the_markup(void **state)
{
    fx *f = *state;
    char err[256], *subject, *text, *body;
    assert_int_equal(nt_render_init(&f->n, err, sizeof(err)), 0);
    json_t *p =
        json_pack("{s:{s:s, s:s, s:s, s:i}, s:[{s:s, s:s, s:n, s:[s]}], s:n, s:n}", "event", "name",
                  "run.failed", "severity", "error", "summary", "Job \"a<b\" failed", "count", 1,
                  "failed_targets", "name", "web", "state", "failed", "step", "output",
                  "ping <!channel> & <@U1>", "run", "link");
    assert_int_equal(nt_render(&f->n, "slack", NULL, p, &subject, &text, &body, err, sizeof(err)),
                     0);
    assert_non_null(strstr(text, "ping &lt;!channel&gt; &amp; &lt;@U1&gt;"));
    assert_non_null(strstr(text, "*Job \"a&lt;b\" failed*"));
    assert_string_equal(subject, "[ERROR] Job \"a<b\" failed");
    assert_null(body);
    free(subject);
    free(text);
    assert_int_equal(nt_render(&f->n, "email", NULL, p, &subject, &text, &body, err, sizeof(err)),
                     0);
    assert_non_null(strstr(text, "  | ping <!channel> & <@U1>\n"));
    free(subject);
    free(text);
    json_decref(p);
    nt_render_free(&f->n);
}

static void message_templates_see_the_payload_roots(void **state)
{
    (void)state;
    tpl *t = NULL;
    tpl_err te = {0};
    assert_int_equal(nt_tpl_compile("{% for t in failed_targets %}{{ t.name }}:{{ "
                                    "t.step.exit_code }} {% endfor %}{{ link }}",
                                    &t, &te),
                     0);
    json_t *p = json_pack("{s:[{s:s, s:{s:i}}], s:s}", "failed_targets", "name", "web-1", "step",
                          "exit_code", 4, "link", "https://x");
    char *out = NULL;
    assert_int_equal(tpl_render_str(t, p, &out, &te), 0);
    assert_string_equal(out, "web-1:4 https://x");
    free(out);
    tpl_free(t);
    json_decref(p);
    assert_int_equal(nt_tpl_compile("{{ params.x }}", &t, &te), OPSC_ESYNTAX);
    assert_non_null(strstr(te.msg, "expected event, run, job"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(standard_webhooks_spec_vector_verifies),
        cmocka_unit_test(standard_webhooks_refusals_say_why),
        cmocka_unit_test(github_documented_vector_verifies),
        cmocka_unit_test(gitlab_and_bearer_tokens_compare_whole_secrets),
        cmocka_unit_test(params_come_from_body_paths_and_the_query),
        cmocka_unit_test_setup_teardown(a_message_id_is_accepted_once_per_hook, setup, teardown),
        cmocka_unit_test(rules_compile_events_filters_and_templates),
        cmocka_unit_test_setup_teardown(streaks_decide_failing_and_fixed_per_rule_scope, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(the_persist_hook_writes_one_delivery_per_event_and_channel,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_group_window_merges_into_the_delivery_not_yet_sent, setup,
                                        teardown),
        cmocka_unit_test(message_templates_see_the_payload_roots),
        cmocka_unit_test_setup_teardown(finished_deliveries_go_after_the_retention, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_locked_user_on_the_bus_is_a_notice, setup, teardown),
        cmocka_unit_test_setup_teardown(a_changed_host_on_the_bus_is_a_notice_with_both_keys, setup,
                                        teardown),
        cmocka_unit_test(discovery_filters_want_valid_ranges),
        cmocka_unit_test_setup_teardown(a_rate_limit_spaces_real_sends, setup, teardown),
        cmocka_unit_test_setup_teardown(slack_text_escapes_the_data_not_the_markup, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
