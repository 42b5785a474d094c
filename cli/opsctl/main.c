/* main.c - opsctl's command line: global options, finding the command, help. */
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "build_config.h"
#include "complete.h"
#include "opsctl.h"

#define DEFAULT_URL "http://127.0.0.1:8080"

static void usage(FILE *out)
{
    fprintf(out, "usage: opsctl [global options] COMMAND [arguments]\n\n"
                 "The command-line client of OpsConductor's REST API.\n\ncommands:\n");
    const char *group = NULL;
    for (const command *cmd = opsctl_commands; cmd->name; cmd++) {
        if (!cmd->group) {
            fprintf(out, "  %-30s %s\n", cmd->name, cmd->summary);
            continue;
        }
        if (group && strcmp(group, cmd->group) == 0)
            continue;
        group = cmd->group;
        char verbs[256] = "";
        for (const command *v = cmd; v->name && v->group && strcmp(v->group, group) == 0; v++)
            snprintf(verbs + strlen(verbs), sizeof(verbs) - strlen(verbs), "%s%s",
                     v == cmd ? "" : "|", v->name);
        bool one = !cmd[1].group || strcmp(cmd[1].group, group) != 0;
        if (one) {
            char both[128];
            snprintf(both, sizeof(both), "%s %s", group, cmd->name);
            fprintf(out, "  %-30s %s\n", both, cmd->summary);
        } else {
            fprintf(out, "  %s %s\n", group, verbs);
        }
    }
    fprintf(out,
            "\nglobal options (anywhere on the line):\n"
            "  --url URL             the server (default: OPSC_URL, else the session's, "
            "else " DEFAULT_URL ")\n"
            "  -o, --output FORMAT   table (default) or json\n"
            "  --get FIELD           print only this field of the answer, of each item of a list\n"
            "                        (a.b for nested fields)\n"
            "  --no-color            no colours (also NO_COLOR=1; never when not a terminal)\n"
            "  --color               colours even when not a terminal\n"
            "  --cacert FILE         CA certificates to trust for https:// (OPSC_CACERT)\n"
            "  -h, --help            help of opsctl, or of a command: opsctl run --help\n"
            "  -V, --version         print the version\n"
            "\nenvironment: OPSC_URL, OPSC_TOKEN (an API token or access token: no login "
            "needed),\n  OPSC_CACERT, NO_COLOR, XDG_CONFIG_HOME (where login keeps the "
            "session)\n"
            "\nexit status: 0 success; 1 error (the API's or the network's); 2 usage; a followed "
            "run:\n  3 failed, 4 cancelled, 5 timed out, 6 interrupted or missed; 130 stopped "
            "following (Ctrl-C)\n");
}

struct globals {
    const char *url, *output, *get, *cacert;
    int color; /* -1 auto, 0 never, 1 always */
    bool help, version;
};

/* Global options may come anywhere: take them out of argv. */
static int take_globals(int *argc, char **argv, struct globals *g)
{
    static const struct {
        const char *lng, *shrt;
        size_t off; /* of the value's member; 0: a flag handled below */
    } valued[] = {{"--url", NULL, offsetof(struct globals, url)},
                  {"--output", "-o", offsetof(struct globals, output)},
                  {"--get", NULL, offsetof(struct globals, get)},
                  {"--cacert", NULL, offsetof(struct globals, cacert)}};
    int out = 1;
    bool rest = false;
    for (int i = 1; i < *argc; i++) {
        const char *s = argv[i];
        bool taken = false;
        for (size_t k = 0; !rest && k < sizeof(valued) / sizeof(valued[0]) && !taken; k++) {
            size_t n = strlen(valued[k].lng);
            const char **dst = (const char **)((char *)g + valued[k].off);
            if (strcmp(s, valued[k].lng) == 0 ||
                (valued[k].shrt && strcmp(s, valued[k].shrt) == 0)) {
                if (i + 1 >= *argc) {
                    fprintf(stderr, "opsctl: %s needs a value\n", s);
                    return OPSCTL_USAGE;
                }
                *dst = argv[++i];
                taken = true;
            } else if (strncmp(s, valued[k].lng, n) == 0 && s[n] == '=') {
                *dst = s + n + 1;
                taken = true;
            } else if (valued[k].shrt && strncmp(s, valued[k].shrt, 2) == 0 && s[2]) {
                *dst = s + 2;
                taken = true;
            }
        }
        if (!rest && !taken) {
            taken = true;
            if (strcmp(s, "--no-color") == 0)
                g->color = 0;
            else if (strcmp(s, "--color") == 0)
                g->color = 1;
            else if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0)
                g->help = true;
            else if (strcmp(s, "-V") == 0 || strcmp(s, "--version") == 0)
                g->version = true;
            else
                taken = false;
        }
        rest = rest || strcmp(s, "--") == 0;
        if (!taken)
            argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

static char *normal_url(const char *url)
{
    bool scheme = strstr(url, "://") != NULL;
    char *u = malloc(strlen(url) + 8);
    if (!u)
        return NULL;
    sprintf(u, "%s%s", scheme ? "" : "http://", url);
    size_t n = strlen(u);
    while (n > 0 && u[n - 1] == '/')
        u[--n] = '\0';
    return u;
}

static int setup(opsctl *c, const struct globals *g)
{
    const char *env_url = getenv("OPSC_URL");
    char *stored = (g->url || (env_url && *env_url)) ? NULL : session_url();
    c->url = normal_url(g->url                ? g->url
                        : env_url && *env_url ? env_url
                        : stored              ? stored
                                              : DEFAULT_URL);
    free(stored);
    c->cacert = g->cacert ? g->cacert : getenv("OPSC_CACERT");
    c->get = g->get;
    if (g->output && strcmp(g->output, "json") == 0) {
        c->output = OUT_JSON;
    } else if (g->output && strcmp(g->output, "table") != 0) {
        fprintf(stderr, "opsctl: -o takes table or json, not '%s'\n", g->output);
        return OPSCTL_USAGE;
    }
    bool tty = isatty(STDOUT_FILENO);
    const char *term = getenv("TERM"), *no_color = getenv("NO_COLOR");
    c->color = g->color == 1 || (g->color == -1 && tty && !(no_color && *no_color) &&
                                 !(term && strcmp(term, "dumb") == 0));
    struct winsize ws;
    if (tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        c->width = ws.ws_col;
    return c->url ? 0 : OPSCTL_ERROR;
}

/* A group's commands, for "opsctl targets" and unknown verbs; "opsctl
 * notifications" lists its sub-groups' commands too. */
static void group_help(FILE *out, const char *group)
{
    fprintf(out, "usage: opsctl %s COMMAND\n\ncommands:\n", group);
    size_t n = strlen(group);
    for (const command *cmd = opsctl_commands; cmd->name; cmd++) {
        if (!cmd->group || strncmp(cmd->group, group, n) != 0 ||
            (cmd->group[n] && cmd->group[n] != ' '))
            continue;
        char verb[128];
        snprintf(verb, sizeof(verb), "%s%s%s %s", cmd->group[n] ? cmd->group + n + 1 : "",
                 cmd->group[n] ? " " : "", cmd->name, cmd->usage);
        fprintf(out, "  %-37s %s\n", verb, cmd->summary);
    }
}

static const command *find_command(int argc, char **argv, int *used, const char **group)
{
    *group = NULL;
    int best = 0;
    for (const command *cmd = opsctl_commands; argc > 0 && cmd->name; cmd++) {
        if (!cmd->group && strcmp(cmd->name, argv[0]) == 0) {
            *used = 1;
            return cmd;
        }
        int n = cmd->group ? group_words(cmd->group, argc, argv) : 0;
        if (n > best || (!*group && cmd->group && group_words(cmd->group, 1, argv) < 0)) {
            /* the longest group typed, else the first word of one ("notifications") */
            *group = n > best ? cmd->group : argv[0];
            best = n > best ? n : best;
        }
        if (n > 0 && argc > n && strcmp(cmd->name, argv[n]) == 0) {
            *used = n + 1;
            return cmd;
        }
    }
    return NULL;
}

static int dispatch(opsctl *c, const struct globals *g, int argc, char **argv)
{
    int used = 0;
    const char *group;
    const command *cmd = find_command(argc, argv, &used, &group);
    if (!cmd && group) {
        int words = group_words(group, argc, argv); /* "notifications channels": 2 */
        bool unknown = argc > words && !g->help;
        if (unknown)
            fprintf(stderr, "opsctl %s: unknown command '%s'\n\n", group, argv[words]);
        group_help(unknown ? stderr : stdout, group);
        return unknown ? OPSCTL_USAGE : 0;
    }
    if (!cmd) {
        if (argc > 0)
            fprintf(stderr, "opsctl: unknown command '%s'. Try 'opsctl --help'.\n", argv[0]);
        else
            usage(g->help ? stdout : stderr);
        return argc > 0 || !g->help ? OPSCTL_USAGE : 0;
    }
    if (g->help) {
        command_help(stdout, cmd);
        return 0;
    }
    args a;
    int rc = args_parse(cmd, argc - used, argv + used, &a);
    if (rc == 0)
        rc = setup(c, g);
    if (rc == 0)
        rc = cmd->run(c, cmd, &a);
    args_free(&a);
    return rc;
}

/* opsctl __complete WORD...: the shell scripts' back end. The words keep
 * their global options (--url tells where names come from). */
static int complete(int argc, char **argv)
{
    char **copy = calloc((size_t)argc + 1, sizeof(char *));
    struct globals g = {.color = 0};
    int n = argc;
    if (!copy)
        return OPSCTL_ERROR;
    memcpy(copy, argv, (size_t)argc * sizeof(char *));
    freopen("/dev/null", "w", stderr); /* a shell prompt has no room for errors */
    opsctl c = {0};
    int rc = take_globals(&n, copy, &g);
    g.output = NULL; /* half typed: "-o j" */
    if (rc == 0)
        rc = setup(&c, &g);
    if (rc == 0)
        rc = complete_words(&c, argc - 2, argv + 2);
    free(copy);
    free(c.url);
    free(c.bearer);
    return rc;
}

/* opsctl __commands: every command and its options, one per line
 * ("targets list\t--limit --all"), for the tests that hold the man page and
 * the help to the command table. */
static int list_commands(void)
{
    for (const command *cmd = opsctl_commands; cmd->name; cmd++) {
        printf("%s%s%s\t", cmd->group ? cmd->group : "", cmd->group ? " " : "", cmd->name);
        for (const cmd_opt *o = cmd->opts; o && o->name; o++)
            printf("%s--%s", o == cmd->opts ? "" : " ", o->name);
        printf("\n");
    }
    return 0;
}

int main(int argc, char **argv)
{
    setlocale(LC_CTYPE, "");
    struct globals g = {.color = -1};
    if (argc == 2 && strcmp(argv[1], "__commands") == 0)
        return list_commands();
    if (argc > 1 && strcmp(argv[1], "__complete") == 0) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int rc = complete(argc, argv);
        client_cleanup();
        curl_global_cleanup();
        return rc;
    }
    int rc = take_globals(&argc, argv, &g);
    if (rc)
        return rc;
    if (g.version) {
        printf("opsctl %s\n", OPSC_VERSION);
        return 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    opsctl c = {0};
    rc = dispatch(&c, &g, argc - 1, argv + 1);
    fflush(stdout);
    free(c.url);
    if (c.bearer)
        memset(c.bearer, 0, strlen(c.bearer));
    free(c.bearer);
    client_cleanup();
    curl_global_cleanup();
    return rc;
}
