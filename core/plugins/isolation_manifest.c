/* isolation_manifest.c - a library that runs out of process, listed from the manifest
 * opsc-stephost --manifest wrote of it in the sandbox (shproto.h) instead of being loaded here:
 * fetching it (bounded in time and size, a crash named), checking it (the host may be hostile),
 * and the descriptor whose init() registers what the library's init() registered there. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "bundle_internal.h"
#include "isolation_internal.h"
#include "plugin_internal.h"
#include "util.h"

#define LOAD_TIMEOUT_MS 10000 /* iso_opts.load_timeout_ms when 0 */

struct iso_manifest {
    opsc_plugin plugin;
    json_t *doc; /* owns the descriptor's strings */
    bundle **libs;
    size_t nlibs;
    int init_rc;
    bool wants_process;
};

/* ---- fetching -------------------------------------------------------------------------------- */

/* Read the host's stdout until it ends, more than SHP_MANIFEST_MAX bytes came, or `until`
 * (monotonic ms). */
static int read_doc(int fd, uint64_t until, char **text, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = buf ? 0 : OPSC_ENOMEM;
    while (rc == 0) {
        uint64_t now = clock_mono_ms();
        struct pollfd pfd = {fd, POLLIN, 0};
        int ready = now < until ? poll(&pfd, 1, (int)(until - now)) : 0;
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0) {
            rc = OPSC_ETIMEDOUT;
            break;
        }
        if (n > SHP_MANIFEST_MAX) {
            rc = OPSC_E2BIG;
            break;
        }
        if (n == cap) {
            char *v = realloc(buf, cap *= 2);
            if (!v) {
                rc = OPSC_ENOMEM;
                break;
            }
            buf = v;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    *text = buf;
    *len = n;
    return rc;
}

/* Its exit status by `until`, killing it then. */
static int reap(const isolation *iso, iso_child *c, uint64_t until, bool kill_now)
{
    int status = 0;
    if (kill_now)
        iso_child_signal(iso, c, SIGKILL);
    while (!iso_child_wait(iso, c, false, &status)) {
        if (clock_mono_ms() >= until) {
            iso_child_signal(iso, c, SIGKILL);
            iso_child_wait(iso, c, true, &status);
            break;
        }
        usleep(1000);
    }
    iso_child_release(iso, c);
    return status;
}

int iso_manifest_fetch(plugin_host *h, const char *path, char **text, size_t *len, char *err,
                       size_t errlen)
{
    isolation *iso = h ? h->iso : NULL;
    *text = NULL;
    *len = 0;
    int fds[2];
    if (!iso || pipe2(fds, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot start the step host: %s",
                 iso ? strerror(errno) : "no policy");
        return OPSC_ESTATE;
    }
    iso_child child;
    const char *args[] = {"--manifest", path, NULL};
    const int stdio[3] = {-1, fds[1], -1};
    char why[400];
    int rc = iso_spawn(iso, args, stdio, -1, &child, why, sizeof(why));
    close(fds[1]);
    if (rc < 0) {
        close(fds[0]);
        snprintf(err, errlen, "the step host %s did not start: %s", iso->stephost, why);
        return OPSC_ESTATE;
    }
    int64_t limit = iso->o.load_timeout_ms > 0 ? iso->o.load_timeout_ms : LOAD_TIMEOUT_MS;
    uint64_t until = clock_mono_ms() + (uint64_t)limit;
    rc = read_doc(fds[0], until, text, len);
    close(fds[0]);
    int status = reap(iso, &child, until, rc < 0);
    if (rc == OPSC_ETIMEDOUT)
        snprintf(err, errlen,
                 "the step host did not finish loading it within %lld ms: its constructors or "
                 "init() hang ([steplibs] host_load_timeout)",
                 (long long)limit);
    else if (rc == OPSC_E2BIG)
        snprintf(err, errlen, "its manifest is larger than %u bytes", SHP_MANIFEST_MAX);
    else if (rc < 0)
        snprintf(err, errlen, "reading its manifest: %s", opsc_strerror(rc));
    else if (WIFSIGNALED(status))
        snprintf(err, errlen,
                 "the step host crashed (%s) while it loaded the library: in its constructors or "
                 "init()",
                 iso_signame(WTERMSIG(status)));
    else if (WEXITSTATUS(status) != 0 || *len == 0)
        snprintf(err, errlen, "the step host exited (status %d) while it loaded the library",
                 WEXITSTATUS(status));
    else
        return 0;
    free(*text);
    *text = NULL;
    return rc < 0 ? rc : OPSC_EPLUGIN;
}

/* ---- the descriptor -------------------------------------------------------------------------- */

/* The library's init() log, said again here: its last error is why it failed. */
static void replay_log(const opsc_host_api *api, json_t *log, bool failed)
{
    size_t i;
    json_t *line;
    json_array_foreach(log, i, line)
    {
        const char *component = json_string_value(json_object_get(line, "component"));
        const char *msg = json_string_value(json_object_get(line, "msg"));
        json_int_t level = json_integer_value(json_object_get(line, "level"));
        if (!msg)
            continue;
        /* Never above a warning unless it is why the library is refused. */
        int lvl = level <= OPSC_LOG_ERROR && failed ? OPSC_LOG_ERROR
                  : level <= OPSC_LOG_WARN          ? OPSC_LOG_WARN
                                                    : OPSC_LOG_INFO;
        api->log(component ? component : "plugin", lvl, "%s", msg);
    }
}

static int manifest_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)cfg;
    iso_manifest *m = *state;
    json_t *init = json_object_get(m->doc, "init");
    replay_log(api, json_object_get(init, "log"), m->init_rc != 0);
    if (m->init_rc != 0)
        return m->init_rc;
    for (size_t i = 0; i < m->nlibs; i++) {
        int rc = api->register_steplib(&m->libs[i]->lib, m->libs[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void manifest_shutdown(void *state)
{
    iso_manifest_free(state);
}

/* ---- checking -------------------------------------------------------------------------------- */

static int bad(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "the step host's manifest of it is malformed: %s", what);
    return OPSC_EPLUGIN;
}

static const char *text_of(json_t *o, const char *key, bool *ok)
{
    json_t *v = json_object_get(o, key);
    *ok = *ok && (!v || json_is_null(v) || json_is_string(v));
    return json_string_value(v);
}

static int number(json_t *o, const char *key, json_int_t lo, json_int_t hi, json_int_t *out)
{
    json_t *v = json_object_get(o, key);
    *out = json_integer_value(v);
    return json_is_integer(v) && *out >= lo && *out <= hi ? 0 : -1;
}

static int descriptor(iso_manifest *m, json_t *d, char *err, size_t errlen)
{
    json_int_t kinds, major, minor;
    bool ok = json_is_object(d);
    m->plugin.size = sizeof(m->plugin);
    m->plugin.name = text_of(d, "name", &ok);
    m->plugin.version = text_of(d, "version", &ok);
    m->plugin.description = text_of(d, "description", &ok);
    m->plugin.license = text_of(d, "license", &ok);
    if (!ok || number(d, "kinds", 0, UINT32_MAX, &kinds) < 0 ||
        number(d, "abi_major", 0, UINT16_MAX, &major) < 0 ||
        number(d, "abi_minor", 0, UINT16_MAX, &minor) < 0 ||
        !json_is_boolean(json_object_get(d, "init")))
        return bad(err, errlen, "plugin");
    m->plugin.kinds = (unsigned)kinds;
    m->plugin.abi_major = (uint16_t)major;
    m->plugin.abi_minor = (uint16_t)minor;
    m->plugin.init = json_is_true(json_object_get(d, "init")) ? manifest_init : NULL;
    m->plugin.shutdown = manifest_shutdown;
    m->wants_process = kinds != OPSC_KIND_STEPLIB;
    return 0;
}

static int init_result(iso_manifest *m, json_t *init, char *err, size_t errlen)
{
    json_int_t rc = 0;
    if (!init) /* not called: the daemon refuses the descriptor, or loads it itself */
        return 0;
    if (!json_is_object(init) || number(init, "rc", INT32_MIN, INT32_MAX, &rc) < 0 ||
        !json_is_array(json_object_get(init, "log")))
        return bad(err, errlen, "init");
    m->init_rc = (int)rc;
    m->wants_process |= json_is_true(json_object_get(init, "config_keys"));
    return 0;
}

static int steplibs(iso_manifest *m, json_t *libs, char *err, size_t errlen)
{
    if (!libs)
        return 0;
    if (!json_is_array(libs) || json_array_size(libs) > 16)
        return bad(err, errlen, "steplibs");
    m->libs = calloc(json_array_size(libs) + 1, sizeof(*m->libs));
    if (!m->libs)
        return OPSC_ENOMEM;
    size_t i;
    json_t *lib;
    json_array_foreach(libs, i, lib)
    {
        int rc = bundle_manifest_so(json_incref(lib), &m->libs[m->nlibs], err, errlen);
        if (rc < 0)
            return rc;
        m->nlibs++;
    }
    return 0;
}

int iso_manifest_parse(const char *text, size_t len, iso_manifest **out, char *err, size_t errlen)
{
    *out = NULL;
    iso_manifest *m = calloc(1, sizeof(*m));
    if (!m)
        return OPSC_ENOMEM;
    m->doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *error = json_object_get(m->doc, "error");
    int rc = 0;
    if (!json_is_object(m->doc) || json_integer_value(json_object_get(m->doc, "manifest")) != 1)
        rc = bad(err, errlen, "not a manifest");
    else if (error && !json_is_string(error))
        rc = bad(err, errlen, "error");
    else if (error) { /* it did not load: the host says why, in the daemon's words */
        snprintf(err, errlen, "%s", json_string_value(error));
        rc = json_is_true(json_object_get(m->doc, "unconfined")) ? OPSC_ESTATE : OPSC_EPLUGIN;
    }
    if (rc == 0)
        rc = descriptor(m, json_object_get(m->doc, "plugin"), err, errlen);
    if (rc == 0)
        rc = init_result(m, json_object_get(m->doc, "init"), err, errlen);
    if (rc == 0)
        rc = steplibs(m, json_object_get(m->doc, "steplibs"), err, errlen);
    if (rc < 0) {
        iso_manifest_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

const opsc_plugin *iso_manifest_plugin(const iso_manifest *m)
{
    return &m->plugin;
}

bool iso_manifest_wants_process(const iso_manifest *m)
{
    return m->wants_process;
}

bool iso_manifest_overridden(plugin_host *h, const iso_manifest *m)
{
    for (size_t i = 0; m && i < m->nlibs; i++)
        if (plugin_host_isolation_override_of(h, bundle_name(m->libs[i])) == ISO_OV_IN_PROCESS)
            return true;
    return false;
}

void iso_manifest_free(iso_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nlibs; i++)
        bundle_free(m->libs[i]);
    free(m->libs);
    json_decref(m->doc);
    free(m);
}
