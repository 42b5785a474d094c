/* main.c - opsconductord's command line: run the daemon, or one of its console commands. */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <opsc/errors.h>
#include <opsc/plugin.h>

#include "build_config.h"
#include "config.h"
#include "console.h"
#include "core.h"
#include "files.h"
#include "http.h"
#include "log.h"
#include "plugin_host.h"
#include "isolation.h"
#include "privsep.h"
#include "store.h"
#include "util.h"

#define DEFAULT_CONFIG OPSC_SYSCONF_DIR "/opsconductor.conf"

struct cli {
    const char *config_path;
    bool config_given;
    bool check_config;
    bool print_config;
    const char *reference; /* --dump-config-reference FORMAT */
    int argc; /* positional arguments left: the command and its operands */
    char **argv;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: opsconductord [options]                run the daemon\n"
            "       opsconductord [options] backup DEST    consistent compacted copy of the store\n"
            "       opsconductord [options] user add NAME --role R     create a local user\n"
            "       opsconductord [options] user passwd|disable|enable NAME\n"
            "                                              (passwords are read from stdin)\n"
            "       opsconductord [options] rotate-key     re-wrap credentials under a new master key\n"
            "\n"
            "options:\n"
            "  -c, --config FILE       config file (default " DEFAULT_CONFIG " if it exists)\n"
            "  -l, --listen ADDR:PORT  REST API address ([server] listen)\n"
            "  -d, --data-dir DIR      data directory ([store] data_dir)\n"
            "  -p, --plugin-dir DIR    plugin directory, repeatable ([plugins] dirs)\n"
            "  -L, --log-level LEVEL   error, warn, info or debug ([log] level)\n"
            "  -w, --web-dir DIR       the built web UI served at / ([web] dir)\n"
            "      --check-config      validate the configuration and plugins, then exit\n"
            "      --print-config      print each key's effective value and origin, then exit\n"
            "      --dump-config-reference conf|man\n"
            "                          print every key of the daemon and of the plugins in\n"
            "                          the --plugin-dir directories with its default (config\n"
            "                          file and environment ignored), then exit\n"
            "  -V, --version           print the version and exit\n"
            "  -h, --help              print this help and exit\n"
            "\n"
            "Precedence: built-in defaults < config file < options < environment.\n"
            "Every key can be set from the environment as OPSC_<SECTION>_<KEY>.\n"
            "\n"
            "configuration keys:\n");
    config_print_keys(out);
}

static int set_flag(cfg_file *f, int opt, const char *value)
{
    switch (opt) {
    case 'l':
        return cfg_file_set(f, "server", "listen", value, "--listen");
    case 'd':
        return cfg_file_set(f, "store", "data_dir", value, "--data-dir");
    case 'p':
        return cfg_file_append(f, "plugins", "dirs", value, "--plugin-dir");
    case 'L':
        return cfg_file_set(f, "log", "level", value, "--log-level");
    case 'w':
        return cfg_file_set(f, "web", "dir", value, "--web-dir");
    default:
        return OPSC_EINVAL;
    }
}

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},  {"listen", required_argument, NULL, 'l'},
    {"data-dir", required_argument, NULL, 'd'}, {"plugin-dir", required_argument, NULL, 'p'},
    {"log-level", required_argument, NULL, 'L'}, {"check-config", no_argument, NULL, 'C'},
    {"version", no_argument, NULL, 'V'},        {"help", no_argument, NULL, 'h'},
    {"web-dir", required_argument, NULL, 'w'},
    {"print-config", no_argument, NULL, 'P'},
    {"dump-config-reference", required_argument, NULL, 'R'},
    {NULL, 0, NULL, 0},
};

/* Flags are collected first so that --config may come after them. */
struct flag {
    int opt;
    const char *value;
};

static int parse_cli(int argc, char **argv, struct cli *cli, struct flag *flags, int *nflags)
{
    int opt;
    const char *env_cfg = getenv("OPSC_CONFIG");
    cli->config_path = env_cfg;
    cli->config_given = env_cfg != NULL;
    while ((opt = getopt_long(argc, argv, "+c:l:d:p:L:w:Vh", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            cli->config_path = optarg;
            cli->config_given = true;
            break;
        case 'C':
            cli->check_config = true;
            break;
        case 'P':
            cli->print_config = true;
            break;
        case 'R':
            if (strcmp(optarg, "conf") != 0 && strcmp(optarg, "man") != 0) {
                fprintf(stderr, "opsconductord: --dump-config-reference takes conf or man\n");
                return 2;
            }
            cli->reference = optarg;
            break;
        case 'V':
            printf("opsconductord %s (plugin ABI %d.%d)\n", OPSC_VERSION, OPSC_ABI_MAJOR,
                   OPSC_ABI_MINOR);
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        case 'l':
        case 'd':
        case 'p':
        case 'L':
        case 'w':
            flags[(*nflags)++] = (struct flag){opt, optarg};
            break;
        default:
            fprintf(stderr, "Try 'opsconductord --help'.\n");
            return 2;
        }
    }
    cli->argc = argc - optind;
    cli->argv = argv + optind;
    return 0;
}

static int load_config(struct cli *cli, struct flag *flags, int nflags, struct config *cfg)
{
    char err[1024] = "";
    const char *path = cli->config_path;
    if (cli->reference) /* the reference documents defaults: no file, only plugin dirs */
        path = NULL;
    else if (!cli->config_given && access(DEFAULT_CONFIG, R_OK) != 0)
        path = NULL; /* no file: built-in defaults */
    else if (!cli->config_given)
        path = DEFAULT_CONFIG;
    cli->config_path = path;
    cfg_file *f = NULL;
    int rc = cfg_file_load(&f, path, err, sizeof(err));
    for (int i = 0; rc == 0 && i < nflags; i++)
        if (!cli->reference || flags[i].opt == 'p')
            rc = set_flag(f, flags[i].opt, flags[i].value);
    if (rc == 0) {
        rc = config_bind_all(cfg, f, err, sizeof(err));
        f = NULL; /* owned by cfg now */
    }
    cfg_file_free(f);
    if (rc < 0) {
        fprintf(stderr, "opsconductord: configuration error: %s\n", err);
        return 1;
    }
    return 0;
}

/* Plugin sections for the reference and --print-config: "plugin.<name>" of
 * every table a plugin bound in init(). */
struct plugin_sections {
    cfg_section_ref *items;
    size_t n;
};

static void add_plugin_section(const char *name, const char *description,
                               const opsc_cfg_entry *map, void *ud)
{
    struct plugin_sections *ps = ud;
    char section[128];
    snprintf(section, sizeof(section), "plugin.%s", name);
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->items[i].name, section) == 0)
            return; /* another version of a step library */
    cfg_section_ref *v = realloc(ps->items, (ps->n + 1) * sizeof(*v));
    char *copy = strdup(section);
    if (!v || !copy) {
        free(copy);
        ps->items = v ? v : ps->items;
        return;
    }
    ps->items = v;
    ps->items[ps->n++] = (cfg_section_ref){copy, *description ? description : NULL, map};
}

enum plugin_action { CHECK_CONFIG, PRINT_CONFIG, DUMP_REFERENCE };

static int plugin_action(plugin_host *h, struct config *cfg, enum plugin_action action,
                         const char *format)
{
    if (action == CHECK_CONFIG) {
        int bad = plugin_host_refused(h) ? 1 : 0;
        printf("configuration %s: %zu plugins loaded, %zu refused\n", bad ? "has errors" : "OK",
               plugin_host_loaded(h), plugin_host_refused(h));
        return bad;
    }
    struct plugin_sections ps = {NULL, 0};
    plugin_host_foreach_config(h, add_plugin_section, &ps);
    if (action == PRINT_CONFIG)
        cfg_write_effective(stdout, cfg->file, ps.items, ps.n);
    else
        cfg_write_reference(stdout, strcmp(format, "man") == 0 ? CFG_REF_MAN : CFG_REF_CONF,
                            ps.items, ps.n);
    for (size_t i = 0; i < ps.n; i++)
        free((char *)ps.items[i].name);
    free(ps.items);
    return action == PRINT_CONFIG && plugin_host_refused(h) ? 1 : 0;
}

/* --check-config, --print-config, --dump-config-reference: the daemon's
 * sections were bound already; load the plugins too, since their sections
 * are validated by their own init() and their tables come from there. */
static int with_plugins(struct config *cfg, enum plugin_action action, const char *format)
{
    if (core_tls_configured(cfg)) {
        http_tls *tls = NULL;
        char err[1536] = "";
        int trc = core_tls_load(cfg, &tls, err, sizeof(err));
        http_tls_free(tls);
        if (trc < 0) {
            fprintf(stderr, "opsconductord: configuration error: %s\n", err);
            return 1;
        }
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    plugin_host *h = NULL;
    int rc = plugin_host_new(&h, &loop, cfg->file);
    if (rc == 0) {
        plugin_host_load_dirs(h, cfg->plugins.dirs, cfg->plugins.disabled);
        if (action != DUMP_REFERENCE)
            plugin_host_check_sections(h);
        rc = plugin_action(h, cfg, action, format);
        fflush(stdout);
        plugin_host_free(h);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc ? 1 : 0;
}

static int cmd_backup(struct config *cfg, int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: opsconductord [--data-dir DIR] backup DEST\n");
        return 2;
    }
    char err[1024] = "";
    int rc = store_backup(cfg->store.data_dir, argv[1], err, sizeof(err));
    char files[4096], dest[4096];
    if (rc == 0 && (files_dir_resolve(cfg, files, sizeof(files)) < 0 ||
                    fs_join(dest, sizeof(dest), argv[1], "files") < 0)) {
        rc = OPSC_E2BIG;
        snprintf(err, sizeof(err), "the files directory's path is too long");
    }
    if (rc == 0) /* the files jobs read belong with the jobs */
        rc = files_backup(files, dest, err, sizeof(err));
    if (rc == 0 && (fs_join(files, sizeof(files), cfg->store.data_dir, "runs") < 0 ||
                    fs_join(dest, sizeof(dest), argv[1], "runs") < 0))
        rc = OPSC_E2BIG;
    if (rc == 0) /* what runs fetched belongs with their logs */
        rc = files_backup(files, dest, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "opsconductord: backup failed: %s\n", err[0] ? err : opsc_strerror(rc));
        return 1;
    }
    printf("backup of %s written to %s\n", cfg->store.data_dir, argv[1]);
    return 0;
}

/* The daemon holds decrypted credentials and signing keys in memory: a core
 * dump would write them to disk. OPSC_ALLOW_CORE_DUMPS=1 is for debugging. */
static void forbid_core_dumps(void)
{
    const char *allow = getenv("OPSC_ALLOW_CORE_DUMPS");
    if (allow && strcmp(allow, "1") == 0)
        return;
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
#ifndef __SANITIZE_ADDRESS__
    /* Also keeps other processes of our user from reading our memory. Not
     * under ASan: LeakSanitizer ptraces the process to scan it. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
}

static void privsep_log(int level, const char *text)
{
    log_msg("spawner", level, "%s", text);
}

/* An absolute form of `path` for the helper to hide (it may not exist yet). */
static void add_hidden(char paths[][PATH_MAX], size_t *n, const char *path)
{
    if (!path || !*path || *n >= 8)
        return;
    if (path[0] == '/')
        snprintf(paths[*n], PATH_MAX, "%s", path);
    else if (!realpath(path, paths[*n]))
        return;
    (*n)++;
}

/* The data directory exists before the helper starts, so that it can hide
 * it from local steps; made as root for [server] user, it is that user's. */
static void make_data_dir(const struct config *cfg)
{
    const char *dir = cfg->store.data_dir, *user = cfg->server.user;
    struct stat st;
    bool existed = stat(dir, &st) == 0;
    struct passwd *pw = geteuid() == 0 && user && *user ? getpwnam(user) : NULL;
    if (fs_mkdir_p(dir, 0700) == 0 && !existed && pw && chown(dir, pw->pw_uid, pw->pw_gid) < 0)
        log_warn("core", "cannot give %s to %s: %s", dir, user, strerror(errno));
}

/* Not root, but CAP_SETUID and CAP_SETGID (systemd's AmbientCapabilities=)? */
static bool can_switch_users(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    unsigned need = (1u << CAP_SETUID) | (1u << CAP_SETGID);
    return syscall(SYS_capget, &h, d) == 0 && (d[0].effective & need) == need;
}

/* The helper for local steps starts before any key is read or the store
 * opened; then the daemon gives up what it does not need. */
static int separate_privileges(struct cli *cli, struct config *cfg, privsep **ps)
{
    char hidden[8][PATH_MAX];
    size_t nh = 0;
    make_data_dir(cfg);
    add_hidden(hidden, &nh, cfg->store.data_dir);
    add_hidden(hidden, &nh, cli->config_path);
    add_hidden(hidden, &nh, cfg->auth.jwt_key_file);
    add_hidden(hidden, &nh, cfg->vault.key_file);
    add_hidden(hidden, &nh, cfg->steplibs.dir);
    const char *hide[8];
    for (size_t i = 0; i < nh; i++)
        hide[i] = hidden[i];
    privsep_opts o = {cfg->executor.spawner, cfg->executor.local_user, hide, nh, 0, privsep_log};
    /* A daemon that drops from root, or gives up its capabilities to switch users (the packaged
     * unit's), cannot start step hosts as their own user afterwards: a second helper does
     * (privsep_hosts.c). */
    bool drops = geteuid() == 0 ? cfg->server.user && *cfg->server.user : can_switch_users();
    if (drops && cfg->steplibs.isolation != ISO_NEVER) {
        o.stephost = cfg->steplibs.stephost;
        o.host_user = cfg->steplibs.host_user;
    }
    if (privsep_start(ps, &o) < 0) {
        log_error("core", "cannot start: out of memory");
        return -1;
    }
    char err[512] = "", warn[256] = "";
    if (privsep_drop(cfg->server.user, err, sizeof(err), warn, sizeof(warn)) < 0) {
        log_error("core", "cannot start: %s", err);
        privsep_close(*ps);
        *ps = NULL;
        return -1;
    }
    if (warn[0])
        log_warn("core", "%s", warn);
    struct stat st;
    if (cli->config_path && stat(cli->config_path, &st) == 0 && (st.st_mode & S_IROTH))
        log_warn("core",
                 "the config file %s is readable by every user of this machine (local "
                 "steps included): make it 0640 root:<daemon group>; it may hold secrets "
                 "([auth] jwt_secret)",
                 cli->config_path);
    char why[640];
    if (privsep_available(*ps, why, sizeof(why)) < 0)
        log_warn("core", "%s", why);
    else
        log_info("core", "%s", privsep_summary(*ps));
    return 0;
}

static int run_daemon(struct cli *cli, struct config *cfg)
{
    forbid_core_dumps();
    int rc = log_init(cfg->log.level, (enum log_format)cfg->log.format, cfg->log.file);
    if (rc < 0)
        fprintf(stderr, "opsconductord: cannot open log file %s: %s (logging to stderr)\n",
                cfg->log.file, strerror(-rc));
    privsep *ps = NULL;
    if (separate_privileges(cli, cfg, &ps) < 0) {
        log_close();
        return 1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct opsc_core core;
    char err[1024] = "";
    rc = core_start(&core, &loop, cfg, cli->config_path, ps, err, sizeof(err));
    if (rc < 0) {
        log_error("core", "cannot start: %s", err[0] ? err : opsc_strerror(rc));
        core.exit_code = 1;
        core_stop(&core);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    int code = core.exit_code;
    core_free(&core);
    uv_loop_close(&loop);
    if (code == 0)
        log_info("core", "stopped");
    log_close();
    return code;
}

int main(int argc, char **argv)
{
    struct cli cli = {0};
    struct flag *flags = calloc((size_t)argc + 1, sizeof(*flags));
    int nflags = 0;
    int rc = parse_cli(argc, argv, &cli, flags, &nflags);
    struct config cfg = {0};
    if (rc == 0)
        rc = load_config(&cli, flags, nflags, &cfg);
    free(flags);
    if (rc != 0)
        return rc;
    log_init(cli.reference ? OPSC_LOG_WARN : cfg.log.level, LOG_FORMAT_TEXT, NULL);
    if (cli.reference)
        rc = with_plugins(&cfg, DUMP_REFERENCE, cli.reference);
    else if (cli.print_config)
        rc = with_plugins(&cfg, PRINT_CONFIG, NULL);
    else if (cli.check_config)
        rc = with_plugins(&cfg, CHECK_CONFIG, NULL);
    else if (cli.argc == 0)
        rc = run_daemon(&cli, &cfg);
    else if (strcmp(cli.argv[0], "backup") == 0)
        rc = cmd_backup(&cfg, cli.argc, cli.argv);
    else if (strcmp(cli.argv[0], "user") == 0)
        rc = console_user(&cfg, cli.argc, cli.argv);
    else if (strcmp(cli.argv[0], "rotate-key") == 0)
        rc = console_rotate_key(&cfg, cli.argc, cli.argv);
    else {
        fprintf(stderr, "opsconductord: unknown command '%s'. Try 'opsconductord --help'.\n",
                cli.argv[0]);
        rc = 2;
    }
    config_free(&cfg);
    return rc;
}
