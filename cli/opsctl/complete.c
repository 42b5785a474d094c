/* complete.c - `opsctl __complete WORD...`: the candidates for the last word, for shell completion.
 *
 * The bash and zsh scripts (completion/) only hand the words over and show
 * what comes back, so both shells complete the same way from the same
 * command table, including names read from the server (targets, jobs...).
 * One candidate per line; ":file" asks the shell to complete a file name.
 */
#include <stdlib.h>
#include <string.h>

#include "complete.h"
#include "resources.h"

static const char *const global_valued[] = {"--url", "-o", "--output", "--get", "--cacert", NULL};
static const char *const global_flags[] = {"--no-color", "--color", "--help", "--version", NULL};

static bool in(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static void offer(const char *cur, const char *word)
{
    if (word && strncmp(word, cur, strlen(cur)) == 0)
        printf("%s\n", word);
}

static const cmd_opt *command_option(const command *cmd, const char *word)
{
    for (const cmd_opt *o = cmd ? cmd->opts : NULL; o && o->name; o++) {
        if (word[0] == '-' && word[1] == '-' && strcmp(word + 2, o->name) == 0)
            return o;
        if (o->shortopt && word[0] == '-' && word[1] == o->shortopt && !word[2])
            return o;
    }
    return NULL;
}

/* The names (or ids) of a resource's records, as the server has them now. */
static void offer_names(opsctl *c, const resource *r, const char *cur)
{
    json_t *items = NULL, *it;
    bool more;
    size_t i;
    const char *field = r->name_field ? r->name_field : "id";
    if (api_list(c, r->path, "", r->default_limit ? r->default_limit : 500, &items, &more) != 0)
        return;
    json_array_foreach(items, i, it) offer(cur, json_string_value(json_object_get(it, field)));
    json_decref(items);
}

static void offer_option_value(opsctl *c, const char *opt, const char *cur)
{
    if (strcmp(opt, "-o") == 0 || strcmp(opt, "--output") == 0) {
        offer(cur, "table");
        offer(cur, "json");
    } else if (strcmp(opt, "--target") == 0) {
        offer_names(c, &res_targets, cur);
    } else if (strcmp(opt, "--group") == 0) {
        offer_names(c, &res_groups, cur);
    } else if (strcmp(opt, "--file") == 0 || strcmp(opt, "-f") == 0 || strcmp(opt, "--sign") == 0 ||
               strcmp(opt, "--cacert") == 0) {
        printf(":file\n");
    }
}

static void offer_options(const command *cmd, const char *cur)
{
    for (size_t i = 0; global_valued[i]; i++)
        offer(cur, global_valued[i]);
    for (size_t i = 0; global_flags[i]; i++)
        offer(cur, global_flags[i]);
    for (const cmd_opt *o = cmd ? cmd->opts : NULL; o && o->name; o++) {
        char name[64];
        snprintf(name, sizeof(name), "--%s", o->name);
        offer(cur, name);
    }
}

/* The word of cmd's words (its group's, then its name) after the typed ones,
 * or NULL when cmd does not continue them. Points into buf. */
static const char *next_word(const command *cmd, const char *const *typed, int n, char *buf,
                             size_t len)
{
    char *w[4], *save = NULL;
    int k = 0;
    snprintf(buf, len, "%s%s%s", cmd->group ? cmd->group : "", cmd->group ? " " : "", cmd->name);
    for (char *t = strtok_r(buf, " ", &save); t && k < 4; t = strtok_r(NULL, " ", &save))
        w[k++] = t;
    for (int i = 0; i < n && i < k; i++)
        if (strcmp(w[i], typed[i]) != 0)
            return NULL;
    return k > n ? w[n] : NULL;
}

/* The next word after the typed ones: commands and groups first, then a
 * group's sub-groups and verbs; each offered once. */
static void offer_commands(const char *const *typed, int n, const char *cur)
{
    for (const command *cmd = opsctl_commands; cmd->name; cmd++) {
        char buf[128], prev_buf[128];
        const char *word = next_word(cmd, typed, n, buf, sizeof(buf));
        bool seen = false;
        for (const command *p = opsctl_commands; word && p != cmd && !seen; p++) {
            const char *prev = next_word(p, typed, n, prev_buf, sizeof(prev_buf));
            seen = prev && strcmp(prev, word) == 0;
        }
        if (word && !seen)
            offer(cur, word);
    }
}

/* The command's first argument: a name or id of its resource, a job, a file. */
static void offer_argument(opsctl *c, const command *cmd, const char *cur)
{
    const char *u = cmd->usage;
    if (strncmp(u, "FILE", 4) == 0) {
        printf(":file\n");
        return;
    }
    const resource *r = strncmp(u, "JOB", 3) == 0 ? &res_jobs
                        : cmd->group              ? resource_by_name(cmd->group)
                                                  : NULL;
    if (r && (strncmp(u, "NAME", 4) == 0 || strncmp(u, "ID", 2) == 0 ||
              strncmp(u, "ADDRESS", 7) == 0 || r == &res_jobs))
        offer_names(c, r, cur);
}

typedef struct line {
    const char *words[4]; /* positional words before the current one */
    int n;
    const char *prev_option; /* the option the current word is the value of */
} line;

/* The command the typed words name, and how many words name it. */
static const command *find(const line *l, int *used)
{
    for (const command *cmd = opsctl_commands; l->n > 0 && cmd->name; cmd++) {
        int n = cmd->group ? group_words(cmd->group, l->n, (char **)l->words) : 0;
        if (!cmd->group && strcmp(cmd->name, l->words[0]) == 0) {
            *used = 1;
            return cmd;
        }
        if (n > 0 && l->n > n && strcmp(cmd->name, l->words[n]) == 0) {
            *used = n + 1;
            return cmd;
        }
    }
    return NULL;
}

static void scan(int argc, char **argv, line *l)
{
    memset(l, 0, sizeof(*l));
    for (int i = 0; i < argc - 1; i++) {
        const char *w = argv[i];
        int used;
        const command *cmd = find(l, &used);
        const cmd_opt *o = w[0] == '-' ? command_option(cmd, w) : NULL;
        if (in(global_valued, w) || (o && o->arg)) {
            if (i + 1 == argc - 1)
                l->prev_option = w;
            i++;
        } else if (w[0] != '-' && l->n < 4) {
            l->words[l->n++] = w;
        }
    }
}

int complete_words(opsctl *c, int argc, char **argv)
{
    if (argc < 1)
        return 0;
    const char *cur = argv[argc - 1];
    line l;
    scan(argc, argv, &l);
    int used = 0;
    const command *cmd = find(&l, &used);
    if (l.prev_option)
        offer_option_value(c, l.prev_option, cur);
    else if (cur[0] == '-')
        offer_options(cmd, cur);
    else if (!cmd)
        offer_commands(l.words, l.n, cur);
    else if (l.n == used)
        offer_argument(c, cmd, cur);
    return 0;
}
