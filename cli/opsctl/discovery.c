/* discovery.c - scans (started, followed live, exit code by outcome), the host inventory,
 * onboarding and scan profiles.
 *
 * A scan's ranges are plain words on the command line (`discovery scan
 * 10.1.2.0/24 db1 --port 22`): a range never holds '=', so FIELD=VALUE
 * arguments mix with them. Hosts are named by address wherever an id is asked.
 */
#include <stdlib.h>
#include <string.h>

#include "misc.h"

static const column scan_cols[] = {
    {"ID", "id", COL_TEXT},
    {"STATE", "state", COL_STATE},
    {"SCANNER", "scanner", COL_TEXT},
    {"RANGES", "ranges", COL_LIST},
    {"DONE", "progress.done", COL_TEXT},
    {"TOTAL", "progress.total", COL_TEXT},
    {"HOSTS", "hosts_found", COL_TEXT},
    {"STARTED", "started_at", COL_TIME},
    {NULL, NULL, 0},
};
static const column host_cols[] = {
    {"ADDRESS", "address", COL_TEXT},
    {"STATE", "state", COL_STATE},
    {"PORTS", "ports", COL_PORTS},
    {"NAMES", "hostnames", COL_LIST},
    {"OS", "os_family", COL_TEXT},
    {"SSH KEY", "ssh.host_key_fingerprint", COL_TEXT},
    {"LAST SEEN", "last_seen", COL_TIME},
    {"ID", "id", COL_TEXT},
    {NULL, NULL, 0},
};
static const column profile_cols[] = {
    {"NAME", "name", COL_TEXT},
    {"CRON", "cron", COL_TEXT},
    {"TIMEZONE", "timezone", COL_TEXT},
    {"ENABLED", "enabled", COL_BOOL},
    {"NEXT RUN", "next_run_at", COL_TIME},
    {"ID", "id", COL_TEXT},
    {NULL, NULL, 0},
};
static const column onboard_cols[] = {
    {"ADDRESS", "address", COL_TEXT},     {"STATUS", "status", COL_STATE},
    {"TARGET", "name", COL_TEXT},         {"TEST", "test_text", COL_STATE},
    {"ERROR", "error.message", COL_TEXT}, {NULL, NULL, 0},
};

const resource res_scans = {
    "discovery scans", "scan", "/api/v1/discovery/scans", NULL, NULL, scan_cols, 20,
    {{NULL, NULL}}};
const resource res_hosts = {
    "discovery hosts", "host", "/api/v1/discovery/hosts", "address", "range", host_cols, 0,
    {{NULL, NULL}}};
const resource res_profiles = {"discovery profiles",
                               "profile",
                               "/api/v1/discovery/profiles",
                               "name",
                               NULL,
                               profile_cols,
                               0,
                               {{"auto_onboard.*.credential_id", &res_credentials},
                                {"auto_onboard.*.group_id", &res_groups},
                                {NULL, NULL}}};
static const resource res_scan_request = {"discovery scan",
                                          "scan",
                                          "/api/v1/discovery/scans",
                                          NULL,
                                          NULL,
                                          scan_cols,
                                          0,
                                          {{"profile_id", &res_profiles}, {NULL, NULL}}};
static const resource res_onboard = {"discovery onboard",
                                     "host",
                                     "/api/v1/discovery/hosts/onboard",
                                     NULL,
                                     NULL,
                                     onboard_cols,
                                     0,
                                     {{"credential_id", &res_credentials},
                                      {"group_id", &res_groups},
                                      {"host_ids", &res_hosts},
                                      {NULL, NULL}}};

/* ---- following a scan ------------------------------------------------------------------------ */

typedef struct scan_watch {
    opsctl *c;
    int tenth; /* progress said up to this tenth, when not on a terminal */
    char state[16];
} scan_watch;

/* One line per host: address, open ports, names, SSH key, OS. */
static void host_line(opsctl *c, json_t *h)
{
    char *ports = open_ports_text(json_object_get(h, "ports"));
    json_t *names = json_object_get(h, "hostnames");
    const char *fp = json_string_value(json_path(h, "ssh.host_key_fingerprint"));
    const char *os = json_string_value(json_object_get(h, "os_family"));
    const char *state = json_string_value(json_object_get(h, "state"));
    printf("%shost%s %s%s%s  ports %s", color(c, C_GREEN), color(c, C_RESET), color(c, C_BOLD),
           json_string_value(json_object_get(h, "address")), color(c, C_RESET),
           ports && *ports ? ports : "-");
    if (json_array_size(names))
        printf("  names %s", json_string_value(json_array_get(names, 0)));
    if (fp)
        printf("  ssh %s", fp);
    if (os && strcmp(os, "unknown") != 0)
        printf("  os %s", os);
    if (state)
        printf("  (%s)", state);
    printf("\n");
    free(ports);
}

/* Progress goes to stderr: redrawn on a terminal, every tenth otherwise. */
static void progress_line(scan_watch *w, json_t *d)
{
    json_t *p = json_object_get(d, "progress") ? json_object_get(d, "progress") : d;
    long long done = json_integer_value(json_object_get(p, "done"));
    long long total = json_integer_value(json_object_get(p, "total"));
    int tenth = total > 0 ? (int)(done * 10 / total) : 0;
    if (!w->c->width && tenth <= w->tenth)
        return;
    w->tenth = tenth;
    fprintf(stderr, "%s%lld/%lld addresses, %.0f/s%s", w->c->width ? "\r" : "", done, total,
            json_number_value(json_object_get(p, "addresses_per_s")), w->c->width ? "" : "\n");
}

static void end_line(opsctl *c, json_t *scan)
{
    char took[32];
    const char *state = json_string_value(json_object_get(scan, "state"));
    const char *error = json_string_value(json_object_get(scan, "error"));
    format_duration(json_string_value(json_object_get(scan, "started_at")),
                    json_string_value(json_object_get(scan, "finished_at")), took, sizeof(took));
    if (c->width)
        fprintf(stderr, "\n");
    printf("scan %s %s%s%s%s%s: %lld addresses, %lld hosts found%s%s\n",
           json_string_value(json_object_get(scan, "id")), color(c, state_color(state)),
           state ? state : "?", color(c, C_RESET), *took ? " in " : "", took,
           (long long)json_integer_value(json_path(scan, "progress.done")),
           (long long)json_integer_value(json_object_get(scan, "hosts_found")), error ? ": " : "",
           error ? error : "");
}

static int scan_event(const char *event, const char *id, json_t *data, void *ud)
{
    scan_watch *w = ud;
    if (w->c->output == OUT_JSON) { /* one JSON object per line, for scripts */
        print_event_json(event, id, data);
    } else if (strcmp(event, "host") == 0) {
        host_line(w->c, data);
    } else if (strcmp(event, "progress") == 0) {
        progress_line(w, data);
    } else if (strcmp(event, "end") == 0) {
        end_line(w->c, data);
    }
    fflush(stdout);
    if (strcmp(event, "end") != 0)
        return 0;
    const char *state = json_string_value(json_object_get(data, "state"));
    snprintf(w->state, sizeof(w->state), "%s", state ? state : "");
    return 1;
}

/* Hosts as they are found until the scan ends; the exit code says how. */
static int follow_scan(opsctl *c, const char *id)
{
    char path[160];
    scan_watch w = {c, 0, ""};
    snprintf(path, sizeof(path), "/api/v1/discovery/scans/%s/events", id);
    int rc = http_sse(c, path, scan_event, &w);
    if (rc == OPSCTL_INTERRUPTED)
        fprintf(stderr,
                "\nopsctl: stopped following; scan %s goes on (opsctl discovery scans "
                "cancel %s stops it)\n",
                id, id);
    if (rc)
        return rc;
    return strcmp(w.state, "finished") == 0    ? OPSCTL_OK
           : strcmp(w.state, "cancelled") == 0 ? OPSCTL_RUN_CANCELLED
                                               : OPSCTL_RUN_FAILED;
}

static void started_table(opsctl *c, json_t *scan, const void *ud)
{
    (void)ud;
    printf("scan %s%s%s started: %lld addresses\n", color(c, C_BOLD),
           json_string_value(json_object_get(scan, "id")), color(c, C_RESET),
           (long long)json_integer_value(json_path(scan, "progress.total")));
}

/* A scan just started: followed to its end, or said. */
static int scan_started(opsctl *c, json_t *scan, bool follow)
{
    const char *id = json_string_value(json_object_get(scan, "id"));
    if (!follow || !id)
        return print_result(c, scan, started_table, NULL);
    if (c->get)
        return print_result(c, scan, NULL, NULL) ? OPSCTL_ERROR : follow_scan(c, id);
    if (c->output == OUT_TABLE)
        started_table(c, scan, NULL);
    fflush(stdout);
    return follow_scan(c, id);
}

/* ---- commands ------------------------------------------------------------------------------- */

/* Words without '=' go to the array `field`; the others build the body. */
static int body_with_words(opsctl *c, const resource *r, args *a, const char *field, json_t **out)
{
    char **fields = calloc((size_t)a->argc + 1, sizeof(char *));
    json_t *words = json_array(), *body = NULL;
    int n = 0;
    for (int i = 0; fields && i < a->argc; i++) {
        if (strchr(a->argv[i], '='))
            fields[n++] = a->argv[i];
        else
            json_array_append_new(words, json_string(a->argv[i]));
    }
    int rc = fields ? body_build(arg_value(a, "file"), n, fields, &body) : OPSCTL_ERROR;
    free(fields);
    if (rc == 0 && json_array_size(words))
        json_object_set(body, field, words);
    json_decref(words);
    if (rc == 0)
        rc = resolve_refs(c, r, body);
    if (rc)
        json_decref(body);
    else
        *out = body;
    return rc;
}

/* Repeatable options (--port 22 --port 5985, or --port 22,5985) as a body array. */
static void options_array(args *a, const char *opt, json_t *body, const char *field, bool ints)
{
    const char *vals[64];
    size_t n = arg_values(a, opt, vals, 64);
    json_t *arr = n ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        char *copy = strdup(vals[i]), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(arr, ints ? json_integer(strtoll(t, NULL, 10)) : json_string(t));
        free(copy);
    }
    if (arr)
        json_object_set_new(body, field, arr);
}

int cmd_discovery_scan(opsctl *c, const command *cmd, args *a)
{
    json_t *body = NULL, *scan = NULL;
    int rc = body_with_words(c, &res_scan_request, a, "ranges", &body);
    if (rc)
        return rc;
    options_array(a, "port", body, "ports", true);
    options_array(a, "exclude", body, "exclude", false);
    const char *rate = arg_value(a, "rate"), *scanner = arg_value(a, "scanner");
    if (rate)
        json_object_set_new(body, "rate", json_integer(strtoll(rate, NULL, 10)));
    if (scanner)
        json_object_set_new(body, "scanner", json_string(scanner));
    if (!json_object_get(body, "ranges"))
        rc = usage_error(cmd, "what to scan: RANGE... (CIDR, a-b, address or name)");
    if (rc == 0)
        rc = api_call(c, "POST", res_scans.path, body, &scan);
    if (rc == 0)
        rc = scan_started(c, scan, arg_flag(a, "follow"));
    json_decref(body);
    json_decref(scan);
    return rc;
}

/* discovery scans watch|cancel, profiles run: the scan's id first. */
int cmd_scan_action(opsctl *c, const command *cmd, args *a)
{
    json_t *scan = NULL;
    int rc;
    if (strcmp(cmd->name, "watch") == 0)
        return follow_scan(c, a->argv[0]);
    if (strcmp(cmd->name, "cancel") == 0) {
        rc = resource_call(c, &res_scans, a->argv[0], "POST", "/cancel", &scan);
        if (rc == 0)
            rc = print_done(c, &res_scans, "cancelling", scan);
    } else {
        rc = resource_call(c, &res_profiles, a->argv[0], "POST", "/run", &scan);
        if (rc == 0)
            rc = scan_started(c, scan, arg_flag(a, "follow"));
    }
    json_decref(scan);
    return rc;
}

/* discovery hosts accept: what the last scan saw becomes what is expected of the host. */
int cmd_hosts_accept(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    json_t *host = NULL;
    int rc = resource_call(c, &res_hosts, a->argv[0], "POST", "/accept", &host);
    if (rc == 0)
        rc = print_done(c, &res_hosts, "accepted", host);
    json_decref(host);
    return rc;
}

int cmd_profiles_next(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    char path[512], suffix[32];
    const char *n = arg_value(a, "count");
    snprintf(suffix, sizeof(suffix), "/next?count=%d", n ? atoi(n) : 10);
    json_t *next = NULL;
    int rc = resource_path(c, &res_profiles, a->argv[0], suffix, path, sizeof(path));
    if (rc == 0)
        rc = api_call(c, "GET", path, NULL, &next);
    if (rc == 0)
        rc = print_result(c, next, NULL, NULL);
    json_decref(next);
    return rc;
}

static void onboarded_table(opsctl *c, json_t *v, const void *ud)
{
    (void)ud;
    json_t *rows = json_array(), *it;
    size_t i;
    json_array_foreach(json_object_get(v, "items"), i, it)
    {
        json_t *row = json_copy(it);
        json_t *test = json_object_get(it, "test");
        if (test)
            json_object_set_new(
                row, "test_text",
                json_string(json_is_true(json_object_get(test, "ok")) ? "ok" : "failed"));
        json_array_append_new(rows, row);
    }
    print_table(c, onboard_cols, rows);
    json_decref(rows);
    printf("%lld created, %lld exist, %lld failed\n",
           (long long)json_integer_value(json_object_get(v, "created")),
           (long long)json_integer_value(json_object_get(v, "existing")),
           (long long)json_integer_value(json_object_get(v, "failed")));
}

/* Hosts by address or id (words) or a filter (filter.port:=22): exit 1 when one failed. */
int cmd_discovery_onboard(opsctl *c, const command *cmd, args *a)
{
    json_t *body = NULL, *result = NULL;
    int rc = body_with_words(c, &res_onboard, a, "host_ids", &body);
    if (rc == 0 && !json_object_get(body, "host_ids") && !json_object_get(body, "filter"))
        rc = usage_error(cmd, "which hosts: ADDRESS|ID... or filter.FIELD=VALUE");
    if (rc == 0)
        rc = api_call(c, "POST", res_onboard.path, body, &result);
    if (rc == 0)
        rc = print_result(c, result, onboarded_table, NULL);
    if (rc == 0 && json_integer_value(json_object_get(result, "failed")) > 0)
        rc = OPSCTL_ERROR;
    json_decref(body);
    json_decref(result);
    return rc;
}
