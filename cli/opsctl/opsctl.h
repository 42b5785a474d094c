/* opsctl.h - the OpsConductor command-line client: what its files share.
 *
 * opsctl talks to the daemon's REST API only (libcurl, Jansson), one
 * blocking request at a time: a command line needs nothing more, and it
 * keeps the client a thin, predictable layer over the API. Errors go to
 * stderr as the API's code and message; results go to stdout as aligned
 * tables for people or JSON for scripts.
 *
 * Conventions: functions return 0 or an exit code (OPSCTL_E*) after printing
 * why; JSON handed out is owned by the caller (json_decref) unless said
 * otherwise.
 */
#ifndef OPSCTL_H
#define OPSCTL_H

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Exit codes: 0 success, then the command's own failures, then a run's
 * outcome (run --follow, runs log --follow, runs wait), so CI can tell a
 * failed deployment from an unreachable server. */
enum {
    OPSCTL_OK = 0,
    OPSCTL_ERROR = 1,      /* the API answered an error, or the server cannot be reached */
    OPSCTL_USAGE = 2,      /* bad command line */
    OPSCTL_RUN_FAILED = 3, /* the run ended failed */
    OPSCTL_RUN_CANCELLED = 4,
    OPSCTL_RUN_TIMED_OUT = 5,
    OPSCTL_RUN_OTHER = 6,    /* interrupted (the daemon stopped) or missed */
    OPSCTL_INTERRUPTED = 130 /* Ctrl-C while following: the run goes on */
};

enum output_format { OUT_TABLE, OUT_JSON };

typedef struct opsctl {
    char *url;          /* base URL, no trailing '/' */
    const char *cacert; /* --cacert / OPSC_CACERT: CA bundle for https */
    enum output_format output;
    const char *get; /* --get PATH: print only that field */
    bool color;      /* stdout is a terminal and colours are not disabled */
    int width;       /* terminal columns; 0: unlimited (not a terminal) */
    char *bearer;    /* the token requests carry */
    bool bearer_from_env;
    bool session_loaded;
} opsctl;

/* ---- command lines (args.c) ---- */

typedef struct cmd_opt {
    const char *name; /* long name, "follow" */
    char shortopt;    /* 0: none */
    const char *arg;  /* NULL: a flag; else the value's placeholder */
    const char *help;
} cmd_opt;

typedef struct args {
    int argc; /* positional arguments */
    char **argv;
    int nopts; /* options given, in order */
    const cmd_opt **opt;
    const char **val; /* "" for flags */
} args;

struct command;
typedef int (*command_fn)(opsctl *c, const struct command *cmd, args *a);

typedef struct command {
    const char *group; /* "targets", "notifications rules"; NULL for top-level commands */
    const char *name;  /* "list" */
    const char *usage; /* positional arguments: "NAME|ID [FIELD=VALUE]..." */
    const char *summary;
    const cmd_opt *opts; /* NULL-terminated; may be NULL */
    command_fn run;
    const void *data;       /* the resource, for the generic verbs */
    int min_args, max_args; /* -1: no maximum */
} command;

/* Parse the command's options (global ones were taken out already). */
int args_parse(const command *cmd, int argc, char **argv, args *out);
void args_free(args *a);
/* The last value of option `name`, or NULL when not given. */
const char *arg_value(const args *a, const char *name);
bool arg_flag(const args *a, const char *name);
/* Every value of a repeatable option, in order: count returned, values in out. */
size_t arg_values(const args *a, const char *name, const char **out, size_t max);
void command_help(FILE *out, const command *cmd);
/* How many words of argv spell `group` ("discovery hosts": 2); 0 when they
 * do not; -n when all argc words are the first n words of it. */
int group_words(const char *group, int argc, char **argv);
int usage_error(const command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- HTTP (client.c) ---- */

typedef struct http_answer {
    long status;
    json_t *json; /* parsed body, NULL when not JSON */
    char *body;
    size_t len;
} http_answer;

/* One request to the API: `path` starts with '/'; `body` is borrowed (NULL:
 * none). Sends the session's bearer token and refreshes it once on 401.
 * Returns 0 with the answer filled (any status), or OPSCTL_ERROR after
 * printing why the server could not be reached. */
int http_request(opsctl *c, const char *method, const char *path, json_t *body, http_answer *ans);
/* Raw body upload with extra headers ("Name: value", NULL-terminated). */
int http_upload(opsctl *c, const char *path, const void *data, size_t len,
                const char *const *headers, http_answer *ans);
void http_answer_free(http_answer *ans);
/* Add to the body (a curl write callback's work); 0 when out of memory or
 * beyond HTTP_ANSWER_MAX, which no answer of the API comes near. */
#define HTTP_ANSWER_MAX (1u << 30)
size_t http_answer_append(http_answer *ans, const char *data, size_t n);

/* Calls that expect `want` (0: any 2xx): on success *out gets the JSON
 * (may be NULL for 204); otherwise the API's error is printed. */
int api_call(opsctl *c, const char *method, const char *path, json_t *body, json_t **out);
/* Print an answer that is an error: "opsctl: CODE: message" and details. */
int api_error(const http_answer *ans);
/* GET every page of a list endpoint (`query` may be ""), up to `limit`
 * items (0: all). *more tells whether the server had more. */
int api_list(opsctl *c, const char *path, const char *query, size_t limit, json_t **items,
             bool *more);
/* A URL-encoded copy of s (free it). */
char *url_escape(const char *s);

/* Server-Sent Events: fn is called per event (data may be NULL when not
 * JSON) and returns non-zero when it has seen enough. Reconnects with
 * Last-Event-ID when the connection drops before that. Returns 0 once fn
 * stopped, OPSCTL_INTERRUPTED after SIGINT (opsctl_interrupted), or
 * OPSCTL_ERROR after printing why. */
typedef int (*sse_fn)(const char *event, const char *id, json_t *data, void *ud);
int http_sse(opsctl *c, const char *path, sse_fn fn, void *ud);
extern volatile sig_atomic_t opsctl_interrupted;

/* Shared by client.c and sse.c: the process's curl handle, the options
 * every request sets, and the message for a transfer that got no answer. */
CURL *client_handle(void);
void client_cleanup(void);
void client_setup(opsctl *c, CURL *h, const char *path, const char *bearer,
                  struct curl_slist **headers);
int client_unreachable(opsctl *c, CURLcode rc);

/* ---- the session (session.c) ---- */

/* The bearer token for requests: OPSC_TOKEN, else the stored session's
 * access token, refreshed when it expires. NULL when not logged in. */
const char *session_bearer(opsctl *c);
/* After a 401: refresh the stored session once; 0 when a new token is set. */
int session_refresh(opsctl *c);
/* The URL of the stored session, or NULL. */
char *session_url(void);
int cmd_login(opsctl *c, const command *cmd, args *a);
int cmd_logout(opsctl *c, const command *cmd, args *a);

/* ---- output (output.c) ---- */

/* COL_LIST: an array of strings, comma-separated; COL_PORTS: the open ones of
 * [{port, state}] (a discovered host's ports). */
typedef enum col_kind {
    COL_TEXT,
    COL_COUNT,
    COL_LABELS,
    COL_BOOL,
    COL_TIME,
    COL_STATE,
    COL_LIST,
    COL_PORTS
} col_kind;

typedef struct column {
    const char *header;
    const char *path; /* dotted path in the item */
    col_kind kind;
} column;

/* The item's value at a dotted path ("status.next_fire_at"), borrowed. */
json_t *json_path(json_t *item, const char *path);
/* Items as an aligned table, widths fitted to the terminal. */
void print_table(opsctl *c, const column *cols, json_t *items);
/* An answer as -o json, --get FIELD, or for people: fn(c, v, ud) (NULL: JSON too). */
typedef void (*table_fn)(opsctl *c, json_t *v, const void *ud);
void print_json(json_t *v);
/* A followed stream's event as one line of JSON ({"event","id","data"}), for -o json. */
void print_event_json(const char *event, const char *id, json_t *data);
int print_result(opsctl *c, json_t *v, table_fn fn, const void *ud);
/* The open ports of a discovered host's [{port, state}], "22,5985" (free it). */
char *open_ports_text(json_t *ports);
/* Colour codes when colours are on, else "". */
const char *color(opsctl *c, const char *code);
#define C_RESET  "0"
#define C_BOLD   "1"
#define C_DIM    "2"
#define C_RED    "31"
#define C_GREEN  "32"
#define C_YELLOW "33"
#define C_BLUE   "34"
#define C_CYAN   "36"
/* The colour of a run, target or step state. */
const char *state_color(const char *state);
/* "1.2s", "3m04s" between two RFC 3339 times ("" when either is missing). */
void format_duration(const char *from, const char *to, char *buf, size_t n);

/* ---- request bodies (body.c) ---- */

/* A body from -f FILE (JSON; "-" is stdin) and FIELD=VALUE arguments:
 * key=text, key:=json, key=@file (the file's text), a.b=text (nested).
 * Returns 0 with *out, or an exit code after printing why. */
int body_build(const char *file, int argc, char **argv, json_t **out);
/* FIELD=VALUE arguments as a query string ("a=1&b=x%20y"); free it. */
char *query_build(int argc, char **argv);
/* Read a whole file ("-": stdin). NULL after printing why. */
char *read_file(const char *path, size_t *len);

/* ---- resources and commands ---- */

typedef struct resource resource;
/* Resolve NAME|ID of a resource to its id (written into id, 64 bytes). */
int resource_id(opsctl *c, const resource *r, const char *ref, char *id, size_t n);
extern const resource res_jobs, res_runs, res_targets, res_groups;

/* Every command, NULL-terminated (commands.c). */
extern const command opsctl_commands[];

#endif
