/* spawner_host.c - opsc-spawner's step host mode: the only program it starts is opsc-stephost.
 *
 * A daemon started as root drops to its own user ([server] user) before it
 * starts any step host, so it can no longer start one as the step host user
 * ([steplibs] host_user): a second opsc-spawner, started before the drop
 * with `--stephost PATH --user NAME`, does it for it. Its attack surface is
 * kept small on purpose, since the daemon it serves may be the one attacked:
 * - the program is the one path given at its start (never one of the
 *   daemon's requests), and the user is the one named there, never root nor
 *   the daemon's (lookup_user in spawner.c);
 * - the arguments are one mode of the step host (--library, --manifest or
 *   --exec) with its path, then only --bundle, --scratch and --memory-limit
 *   with their values (the scratch folder only a step's own in /tmp: the
 *   host gives it to its user); it appends `--user NAME` itself, and refuses a
 *   request that names a user or passes an environment;
 * - it execs the step host with its own privileges (root, or the daemon's
 *   user with ambient CAP_SETUID + CAP_SETGID), as a daemon running as root
 *   does, so that the host opens its library (which its user may not read:
 *   the daemon's data directory) and switches to the user itself, its
 *   capabilities gone, before it loads anything (stephost/sandbox.c).
 * Everything else (process groups, signals, reaping, killing everything when
 * the daemon goes) is the local-steps helper's, unchanged. */
#include <stdlib.h>
#include <string.h>

#include "spawner_internal.h"

#define HOST_MAX_ARGS 9 /* program, mode, path, and three pairs */

static bool one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

/* A value: not empty, and not an option the step host would read as one. */
static bool value_ok(const char *v)
{
    return v[0] && v[0] != '-';
}

/* The step host run as root gives the scratch folder to its user: only a step's own, made by the
 * daemon with mkdtemp() directly in /tmp (the host opens it without following a link). */
static bool scratch_ok(const char *v)
{
    static const char prefix[] = "/tmp/opsc-step-";
    return strncmp(v, prefix, sizeof(prefix) - 1) == 0 && v[sizeof(prefix) - 1] &&
           !strchr(v + sizeof(prefix) - 1, '/') && !strstr(v, "..");
}

const char **sp_stephost_argv(const spawner *s, const char **vec, uint32_t argc, uint32_t envc)
{
    static const char *const modes[] = {"--library", "--manifest", "--exec", NULL};
    static const char *const options[] = {"--bundle", "--scratch", "--memory-limit", NULL};
    if (envc != 0 || argc < 3 || argc > HOST_MAX_ARGS || (argc - 3) % 2 != 0 ||
        strcmp(vec[0], s->stephost) != 0 || !one_of(vec[1], modes) || !value_ok(vec[2]))
        return NULL;
    for (uint32_t i = 3; i < argc; i += 2)
        if (!one_of(vec[i], options) || !value_ok(vec[i + 1]) ||
            (strcmp(vec[i], "--scratch") == 0 && !scratch_ok(vec[i + 1])))
            return NULL;
    const char **argv = calloc(argc + 3, sizeof(*argv));
    if (!argv)
        return NULL;
    memcpy(argv, vec, argc * sizeof(*argv));
    argv[argc] = "--user";
    argv[argc + 1] = s->user.name;
    return argv;
}
