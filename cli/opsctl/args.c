/* args.c - a command's options and positional arguments, its --help and usage errors. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "opsctl.h"

static const cmd_opt *find_long(const command *cmd, const char *name, size_t len)
{
    for (const cmd_opt *o = cmd->opts; o && o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static const cmd_opt *find_short(const command *cmd, char ch)
{
    for (const cmd_opt *o = cmd->opts; o && o->name; o++)
        if (o->shortopt && o->shortopt == ch)
            return o;
    return NULL;
}

static int add_opt(args *out, const cmd_opt *o, const char *val)
{
    out->opt[out->nopts] = o;
    out->val[out->nopts++] = val ? val : "";
    return 0;
}

/* One option at argv[*i]; advances *i past its value. */
static int parse_option(const command *cmd, int argc, char **argv, int *i, args *out)
{
    const char *s = argv[*i], *inline_val = NULL;
    const cmd_opt *o;
    if (s[1] == '-') {
        const char *eq = strchr(s + 2, '=');
        size_t len = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
        o = find_long(cmd, s + 2, len);
        inline_val = eq ? eq + 1 : NULL;
    } else {
        o = find_short(cmd, s[1]);
        inline_val = s[2] ? s + 2 : NULL;
    }
    if (!o)
        return usage_error(cmd, "unknown option '%s'", s);
    if (!o->arg) {
        if (inline_val && s[1] == '-')
            return usage_error(cmd, "option '--%s' takes no value", o->name);
        if (inline_val) /* -fq: a group of flags is not supported; say so */
            return usage_error(cmd, "unknown option '%s'", s);
        return add_opt(out, o, NULL);
    }
    if (!inline_val) {
        if (*i + 1 >= argc)
            return usage_error(cmd, "option '--%s' needs a value (%s)", o->name, o->arg);
        inline_val = argv[++*i];
    }
    return add_opt(out, o, inline_val);
}

int args_parse(const command *cmd, int argc, char **argv, args *out)
{
    memset(out, 0, sizeof(*out));
    out->argv = calloc((size_t)argc + 1, sizeof(char *));
    out->opt = calloc((size_t)argc + 1, sizeof(*out->opt));
    out->val = calloc((size_t)argc + 1, sizeof(*out->val));
    if (!out->argv || !out->opt || !out->val) {
        args_free(out);
        return OPSCTL_ERROR;
    }
    bool options_end = false;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (!options_end && strcmp(s, "--") == 0) {
            options_end = true;
        } else if (!options_end && s[0] == '-' && s[1]) {
            int rc = parse_option(cmd, argc, argv, &i, out);
            if (rc) {
                args_free(out);
                return rc;
            }
        } else {
            out->argv[out->argc++] = argv[i];
        }
    }
    if (out->argc < cmd->min_args || (cmd->max_args >= 0 && out->argc > cmd->max_args)) {
        args_free(out);
        return usage_error(cmd,
                           out->argc < cmd->min_args ? "missing arguments" : "too many arguments");
    }
    return 0;
}

void args_free(args *a)
{
    free(a->argv);
    free(a->opt);
    free(a->val);
    memset(a, 0, sizeof(*a));
}

const char *arg_value(const args *a, const char *name)
{
    for (int i = a->nopts; i-- > 0;)
        if (strcmp(a->opt[i]->name, name) == 0)
            return a->val[i];
    return NULL;
}

bool arg_flag(const args *a, const char *name)
{
    return arg_value(a, name) != NULL;
}

size_t arg_values(const args *a, const char *name, const char **out, size_t max)
{
    size_t n = 0;
    for (int i = 0; i < a->nopts && n < max; i++)
        if (strcmp(a->opt[i]->name, name) == 0)
            out[n++] = a->val[i];
    return n;
}

int group_words(const char *group, int argc, char **argv)
{
    int n = 0;
    for (const char *w = group; *w; n++) {
        size_t len = strcspn(w, " ");
        if (n >= argc)
            return -n;
        if (strlen(argv[n]) != len || strncmp(argv[n], w, len) != 0)
            return 0;
        w += len + (w[len] == ' ');
    }
    return n;
}

static void command_name(FILE *out, const command *cmd)
{
    if (cmd->group)
        fprintf(out, "%s %s", cmd->group, cmd->name);
    else
        fprintf(out, "%s", cmd->name);
}

void command_help(FILE *out, const command *cmd)
{
    fprintf(out, "usage: opsctl ");
    command_name(out, cmd);
    fprintf(out, "%s%s%s\n\n%s\n", cmd->opts ? " [options]" : "", *cmd->usage ? " " : "",
            cmd->usage, cmd->summary);
    if (cmd->opts) {
        fprintf(out, "\noptions:\n");
        for (const cmd_opt *o = cmd->opts; o->name; o++) {
            char left[80], shortopt[8] = "    ";
            if (o->shortopt)
                snprintf(shortopt, sizeof(shortopt), "-%c, ", o->shortopt);
            snprintf(left, sizeof(left), "%s--%s%s%s", shortopt, o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
            fprintf(out, "  %-30s %s\n", left, o->help);
        }
    }
    fprintf(out, "\nglobal options: --url URL, -o table|json, --get FIELD, --no-color, "
                 "--cacert FILE (opsctl --help)\n");
}

int usage_error(const command *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "opsctl ");
    command_name(stderr, cmd);
    fprintf(stderr, ": ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'opsctl ");
    command_name(stderr, cmd);
    fprintf(stderr, " --help'.\n");
    return OPSCTL_USAGE;
}
