/* steptype_shcheck.c - a POSIX template rendered once with sample values and read by `sh -n`.
 *
 * The template compiler knows the template language, not the shell: an unbalanced `{` or a
 * missing `fi` would load fine and fail on the first target that runs it. Rendering one sample
 * (every parameter its default, first example or enum value, else a value of its type) and
 * asking the shell the steps run under to parse it refuses such a library when it loads,
 * naming the step, template and line. A template whose sample cannot render (it needs outputs
 * of earlier steps) is not checked: the run reports it then, as before. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "steptype.h"
#include "util.h"

#define SHELL       "/bin/sh"
#define SCRIPT_MAX  (100u << 10) /* one argv string stays under the kernel's 128 KiB */
#define MESSAGE_MAX 400

extern char **environ;

static json_t *sample_of(const json_t *prop)
{
    json_t *v = json_object_get(prop, "default");
    if (v || (v = json_array_get(json_object_get(prop, "examples"), 0)) ||
        (v = json_array_get(json_object_get(prop, "enum"), 0)))
        return json_incref(v);
    const char *type = json_string_value(json_object_get(prop, "type"));
    if (!type)
        type = json_string_value(json_array_get(json_object_get(prop, "type"), 0));
    if (!type || strcmp(type, "string") == 0)
        return json_string("sample");
    if (strcmp(type, "integer") == 0 || strcmp(type, "number") == 0)
        return json_integer(1);
    if (strcmp(type, "boolean") == 0)
        return json_true();
    return strcmp(type, "array") == 0 ? json_array() : json_object();
}

static json_t *sample_context(const steptype *st)
{
    json_t *schema = st->desc->params_schema ? json_loads(st->desc->params_schema, 0, NULL) : NULL;
    json_t *params = json_object(), *prop;
    const char *name;
    json_object_foreach(json_object_get(schema, "properties"), name, prop)
        json_object_set_new(params, name, sample_of(prop));
    json_decref(schema);
    return json_pack("{s:o, s:{s:s, s:s, s:s, s:i, s:s, s:{}, s:{}}, s:{}, s:{s:s}}", "params",
                     params, "target", "id", "sample", "name", "sample", "address", "192.0.2.1",
                     "port", 22, "os_family", "linux", "labels", "facts", "steps", "run", "id",
                     "sample");
}

/* `sh -n -c script`: 0 when it parses, else the shell's complaint in msg. */
static int shell_parses(const char *script, char *msg, size_t msglen)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return 0; /* cannot ask: no verdict */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    char *argv[] = {"sh", "-n", "-c", (char *)script, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, SHELL, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    size_t got = 0;
    ssize_t n;
    while (rc == 0 && got + 1 < msglen &&
           ((n = read(fds[0], msg + got, msglen - 1 - got)) > 0 || (n < 0 && errno == EINTR)))
        got += n > 0 ? (size_t)n : 0;
    msg[got] = '\0';
    close(fds[0]);
    int status = 0;
    while (rc == 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 2 ? -1 : 0;
}

int steptype_check_posix(const steptype *st, char *err, size_t errlen)
{
    json_t *ctx = sample_context(st);
    char *script = NULL;
    tpl_err te;
    int rendered = ctx ? tpl_render_str(st->posix, ctx, &script, &te) : -1;
    json_decref(ctx);
    char msg[MESSAGE_MAX];
    int rc = 0;
    if (rendered == 0 && strlen(script) < SCRIPT_MAX &&
        shell_parses(script, msg, sizeof(msg)) < 0) {
        msg[strcspn(msg, "\n")] = '\0';
        const char *why = strncmp(msg, "sh: ", 4) == 0 ? msg + 4 : msg; /* "3: Syntax error: ..." */
        snprintf(err, errlen,
                 "%s: posix_template: a sample rendering is not valid sh (dash, not bash): "
                 "line %s",
                 st->name, why);
        rc = OPSC_ESYNTAX;
    }
    free(script);
    return rc;
}
