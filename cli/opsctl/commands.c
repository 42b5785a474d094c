/* commands.c - every opsctl command: its words, arguments, options and help, in one table.
 * The man page opsctl(1) and the shell completions follow this table (a test checks them). */
#include "misc.h"

static const cmd_opt list_opts[] = {
    {"limit", 0, "N", "show at most N items (runs and audit: 20 and 50 unless told)"},
    {"all", 0, NULL, "every item, page after page"},
    {NULL, 0, NULL, NULL},
};
static const cmd_opt file_opts[] = {
    {"file", 'f', "FILE", "the body as a JSON file (- for stdin); FIELD=VALUE arguments add to it"},
    {NULL, 0, NULL, NULL},
};
static const cmd_opt force_opts[] = {
    {"force", 0, NULL, "delete even what others still use"},
    {NULL, 0, NULL, NULL},
};
static const cmd_opt login_opts[] = {
    {"username", 'u', "USER", "who logs in (asked when not given)"},
    {"password-stdin", 0, NULL, "read the password from the first line of standard input"},
    {NULL, 0, NULL, NULL},
};
static const cmd_opt run_opts[] = {
    {"param", 'p', "KEY=VALUE", "a parameter (repeatable); KEY:=JSON for typed values"},
    {"targets", 0, "SELECTOR", "run on the targets matching a label selector (role=web,env=prod)"},
    {"target", 0, "NAME", "run on this target (repeatable)"},
    {"group", 0, "NAME", "run on this group's targets (repeatable)"},
    {"job-version", 0, "N", "run version N of the job"},
    {"dry-run", 0, NULL, "render every command per target; run nothing"},
    {"follow", 'f', NULL, "stream the live log, then exit by the run's outcome"},
    {NULL, 0, NULL, NULL},
};
static const cmd_opt log_opts[] = {
    {"follow", 'f', NULL, "stream the log until the run ends, then exit by its outcome"},
    {"target", 0, "NAME", "only this target's log"},
    {NULL, 0, NULL, NULL},
};
static const cmd_opt retry_opts[] = {
    {"follow", 'f', NULL, "stream the new run's log, then exit by its outcome"},
    {NULL, 0, NULL, NULL},
};
static const cmd_opt apply_opts[] = {
    {"file", 'f', "FILE", "the job: a job body or an export (opsctl jobs export); - for stdin"},
    {NULL, 0, NULL, NULL},
};
static const cmd_opt preview_opts[] = {
    {"tz", 0, "ZONE", "IANA time zone (default UTC)"},
    {"from", 0, "TIME", "first instant considered, RFC 3339 (default now); included if it fires"},
    {"count", 'n', "N", "how many fires (default 10, at most 1000)"},
    {NULL, 0, NULL, NULL},
};
static const cmd_opt count_opts[] = {
    {"count", 'n', "N", "how many fires (default 10)"},
    {NULL, 0, NULL, NULL},
};
static const cmd_opt test_opts[] = {
    {"concurrency", 0, "N", "targets probed at once"},
    {NULL, 0, NULL, NULL},
};
static const cmd_opt save_opts[] = {
    {"output-file", 'O', "FILE", "save it there (- for standard output; default: ./NAME)"},
    {NULL, 0, NULL, NULL},
};
static const cmd_opt upload_opts[] = {
    {"sign", 0, "KEY.pem", "sign with this Ed25519 private key (PEM, openssl genpkey)"},
    {NULL, 0, NULL, NULL},
};

static const cmd_opt scan_opts[] = {
    {"port", 0, "N[,N]...", "ports to probe (repeatable; default 22, 5985, 5986)"},
    {"exclude", 0, "RANGE", "leave these addresses out (repeatable)"},
    {"rate", 0, "N", "connection attempts per second (default 100)"},
    {"scanner", 0, "NAME", "tcp (default) or nmap"},
    {"file", 'f', "FILE", "the scan request as a JSON file; FIELD=VALUE arguments add to it"},
    {"follow", 0, NULL, "show hosts as they are found, then exit by the scan's outcome"},
    {NULL, 0, NULL, NULL},
};
static const cmd_opt follow_opts[] = {
    {"follow", 0, NULL, "show hosts as they are found, then exit by the scan's outcome"},
    {NULL, 0, NULL, NULL},
};

/* The generic verbs of a collection; *_IN for the groups of two words ("notifications rules"). */
#define LIST_IN(group, res, what)                                                                  \
    {                                                                                              \
        group, "list", "[FILTER=VALUE]...",                                                        \
            "List " what " (FILTER=VALUE: the API's query filters)", list_opts, cmd_list,          \
            &res_##res, 0, -1                                                                      \
    }
#define SHOW_IN(group, res, ref, what)                                                             \
    {                                                                                              \
        group, "show", ref, "Show " what " as JSON", NULL, cmd_show, &res_##res, 1, 1              \
    }
#define CREATE_IN(group, res, what)                                                                \
    {                                                                                              \
        group, "create", "[FIELD=VALUE]...",                                                       \
            "Create " what ": FIELD=text, FIELD:=JSON, FIELD=@FILE (the file's text), a.b=text",   \
            file_opts, cmd_create, &res_##res, 0, -1                                               \
    }
#define UPDATE_IN(group, res, ref, what)                                                           \
    {                                                                                              \
        group, "update", ref " [FIELD=VALUE]...",                                                  \
            "Change fields of " what " (null clears: FIELD:=null)", file_opts, cmd_update,         \
            &res_##res, 1, -1                                                                      \
    }
#define DELETE_IN(group, res, ref, what, opts)                                                     \
    {                                                                                              \
        group, "delete", ref, "Delete " what, opts, cmd_delete, &res_##res, 1, 1                   \
    }
#define LIST(res, what)              LIST_IN(#res, res, what)
#define SHOW(res, ref, what)         SHOW_IN(#res, res, ref, what)
#define CREATE(res, what)            CREATE_IN(#res, res, what)
#define UPDATE(res, ref, what)       UPDATE_IN(#res, res, ref, what)
#define DELETE(res, ref, what, opts) DELETE_IN(#res, res, ref, what, opts)
#define CRUD_IN(group, res, ref, plural, one)                                                      \
    LIST_IN(group, res, plural), SHOW_IN(group, res, ref, one), CREATE_IN(group, res, one),        \
        UPDATE_IN(group, res, ref, one), DELETE_IN(group, res, ref, one, NULL)

const command opsctl_commands[] = {
    {NULL, "login", "", "Log in and keep the session (0600, $XDG_CONFIG_HOME/opsctl/session.json)",
     login_opts, cmd_login, NULL, 0, 0},
    {NULL, "logout", "", "Revoke the stored session and forget it", NULL, cmd_logout, NULL, 0, 0},
    {NULL, "whoami", "", "Who the session or OPSC_TOKEN is", NULL, cmd_whoami, NULL, 0, 0},
    {NULL, "status", "", "The server: health, readiness, version, plugins, who you are", NULL,
     cmd_status, NULL, 0, 0},
    {NULL, "run", "JOB", "Run a job (by name or id)", run_opts, cmd_run, NULL, 1, 1},
    {"cron", "preview", "EXPRESSION", "The next fires of a cron expression in a time zone",
     preview_opts, cmd_cron_preview, NULL, 1, 1},

    LIST(targets, "targets"),
    SHOW(targets, "NAME|ID", "a target"),
    CREATE(targets, "a target"),
    UPDATE(targets, "NAME|ID", "a target"),
    DELETE(targets, "NAME|ID", "a target", NULL),
    {"targets", "test", "NAME|ID", "Connect, authenticate and read facts; exit 1 if it fails", NULL,
     cmd_test, &res_targets, 1, 1},

    LIST(groups, "groups"),
    SHOW(groups, "NAME|ID", "a group"),
    CREATE(groups, "a group"),
    UPDATE(groups, "NAME|ID", "a group"),
    DELETE(groups, "NAME|ID", "a group", force_opts),
    {"groups", "test", "NAME|ID", "Test every target of a group; exit 1 if one fails", test_opts,
     cmd_test, &res_groups, 1, 1},
    {"groups", "targets", "NAME|ID", "The group's targets (members, selector, nested groups)",
     list_opts, cmd_group_targets, &res_groups, 1, 1},

    LIST(credentials, "credentials (metadata and fingerprints, never secrets)"),
    SHOW(credentials, "NAME|ID", "a credential's metadata"),
    CREATE(credentials, "a credential"),
    UPDATE(credentials, "NAME|ID", "a credential"),
    DELETE(credentials, "NAME|ID", "a credential", force_opts),

    LIST(jobs, "jobs"),
    SHOW(jobs, "NAME|ID", "a job"),
    CREATE(jobs, "a job"),
    UPDATE(jobs, "NAME|ID", "a job (a new version)"),
    DELETE(jobs, "NAME|ID", "a job and its versions (its runs stay)", NULL),
    {"jobs", "apply", "[FIELD=VALUE]...", "Create or update a job by its name, from a file",
     apply_opts, cmd_jobs_apply, NULL, 0, -1},
    {"jobs", "export", "NAME|ID", "A job as portable JSON (targets, groups, credentials by name)",
     NULL, cmd_jobs_export, NULL, 1, 1},
    {"jobs", "versions", "NAME|ID", "A job's versions, newest first", list_opts, cmd_jobs_versions,
     NULL, 1, 1},

    LIST(schedules, "schedules"),
    SHOW(schedules, "ID", "a schedule and its status"),
    CREATE(schedules, "a schedule (job_id may be the job's name)"),
    UPDATE(schedules, "ID", "a schedule"),
    DELETE(schedules, "ID", "a schedule", NULL),
    {"schedules", "pause", "ID", "No fire until resumed", NULL, cmd_schedule_action, NULL, 1, 1},
    {"schedules", "resume", "ID", "Fire again (the paused fires are not misfires)", NULL,
     cmd_schedule_action, NULL, 1, 1},
    {"schedules", "next", "ID", "The next fires in UTC and in the schedule's zone", count_opts,
     cmd_schedule_action, NULL, 1, 1},

    LIST(runs, "runs, newest first (filters: job, state, target, since, until)"),
    {"runs", "show", "ID", "A run: per target and step, state, exit code, time, error", NULL,
     cmd_runs_show, NULL, 1, 1},
    {"runs", "log", "ID", "A run's log; --follow streams it live", log_opts, cmd_runs_log, NULL, 1,
     1},
    {"runs", "cancel", "ID", "Cancel a run (remote processes are stopped)", NULL, cmd_runs_cancel,
     NULL, 1, 1},
    {"runs", "retry", "ID", "Run again on the targets that did not succeed", retry_opts,
     cmd_runs_retry, NULL, 1, 1},
    {"runs", "files", "ID [download TARGET NAME]",
     "What the run's steps fetched (core.file.get), per target; download saves one", save_opts,
     cmd_runs_files, NULL, 1, 4},

    {"files", "list", "", "Files on the appliance that core.file.put and file.template send", NULL,
     cmd_files_list, NULL, 0, 0},
    {"files", "upload", "FILE [NAME]", "Upload FILE (streamed) as NAME (default: its own name)",
     NULL, cmd_files_upload, NULL, 1, 2},
    {"files", "download", "NAME", "Download a file (streamed to disk)", save_opts,
     cmd_files_download, NULL, 1, 1},
    {"files", "delete", "NAME", "Delete a file no job reads", NULL, cmd_files_delete, NULL, 1, 1},

    LIST(users, "users"),
    SHOW(users, "NAME|ID", "a user"),
    CREATE(users, "a user (username, role, password)"),
    UPDATE(users, "NAME|ID", "a user"),
    DELETE(users, "NAME|ID", "a user with its tokens and sessions", NULL),

    LIST(tokens, "your API tokens (admins: all=true)"),
    SHOW(tokens, "NAME|ID", "an API token"),
    CREATE(tokens, "an API token (name, role, expires_in_days); the token is shown once"),
    DELETE(tokens, "NAME|ID", "an API token", NULL),

    LIST(steplibs, "step libraries"),
    {"steplibs", "show", "NAME", "A step library's versions", NULL, cmd_steplibs_show, NULL, 1, 1},
    {"steplibs", "upload", "FILE.so", "Install a step library (SHA-256 sent; --sign to sign it)",
     upload_opts, cmd_steplibs_upload, NULL, 1, 1},
    {"steplibs", "delete", "NAME VERSION", "Delete a version no job needs", NULL,
     cmd_steplibs_delete, NULL, 2, 2},
    {"steplibs", "isolation", "NAME process|in_process|default",
     "Where a library's imperative steps run (admins; in_process: the daemon's own libraries)",
     NULL, cmd_steplibs_isolation, NULL, 2, 2},

    LIST(audit, "the audit log, newest first (filters: actor, action, outcome, object, since)"),
    CRUD_IN("notifications channels", channels, "NAME|ID", "notification channels", "a channel"),
    {"notifications channels", "test", "NAME|ID",
     "Send a test message now; exit 1 with the receiver's answer if it is not delivered", NULL,
     cmd_channels_test, NULL, 1, 1},
    CRUD_IN("notifications rules", rules, "NAME|ID", "notification rules", "a rule"),
    LIST_IN("notifications deliveries", deliveries,
            "deliveries, newest first (filters: channel, rule, state, event)"),
    SHOW_IN("notifications deliveries", deliveries, "ID", "a delivery with every attempt"),

    CRUD_IN("hooks", hooks, "NAME|ID", "inbound hooks", "an inbound hook"),

    {"discovery", "scan", "RANGE... [FIELD=VALUE]...",
     "Scan ranges (CIDR, a-b, addresses, names); --follow shows the hosts live", scan_opts,
     cmd_discovery_scan, NULL, 0, -1},
    {"discovery", "onboard", "ADDRESS|ID... [FIELD=VALUE]...",
     "Make hosts targets (or filter.FIELD=VALUE); credential_id, group_id by name too", file_opts,
     cmd_discovery_onboard, NULL, 0, -1},
    LIST_IN("discovery scans", scans, "scans, newest first (filter: state)"),
    SHOW_IN("discovery scans", scans, "ID", "a scan and its progress"),
    {"discovery scans", "watch", "ID", "The scan's hosts live, then exit by its outcome", NULL,
     cmd_scan_action, NULL, 1, 1},
    {"discovery scans", "cancel", "ID", "Stop a running scan", NULL, cmd_scan_action, NULL, 1, 1},
    LIST_IN("discovery hosts", hosts,
            "the host inventory (filters: state, port, os, range, scan_id, profile_id)"),
    SHOW_IN("discovery hosts", hosts, "ADDRESS|ID", "a host, its ports, keys and changes"),
    {"discovery hosts", "accept", "ADDRESS|ID", "Accept a changed host's new key or OS", NULL,
     cmd_hosts_accept, NULL, 1, 1},
    DELETE_IN("discovery hosts", hosts, "ADDRESS|ID", "a host (a later scan finds it as new)",
              NULL),
    CRUD_IN("discovery profiles", profiles, "NAME|ID", "scan profiles", "a scan profile"),
    {"discovery profiles", "run", "NAME|ID", "Start the profile's scan now", follow_opts,
     cmd_scan_action, NULL, 1, 1},
    {"discovery profiles", "next", "NAME|ID", "The profile's next scans", count_opts,
     cmd_profiles_next, NULL, 1, 1},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0},
};
