/* oss_plugin.c - the transport-openssh plugin: entry point, settings, runtime directory, the
 * opsc_transport table. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oss_internal.h"
#include "tp_orphan.h"

#define SET(f) offsetof(oss_settings, f)
static const opsc_cfg_entry oss_map[] = {
    {"ssh", OPSC_CFG_STRING, "/usr/bin/ssh", 0, -1, NULL, 0, SET(ssh), "the OpenSSH client"},
    {"ssh_agent", OPSC_CFG_STRING, "/usr/bin/ssh-agent", 0, -1, NULL, 0, SET(ssh_agent),
     "the agent that holds a key during a connect"},
    {"ssh_add", OPSC_CFG_STRING, "/usr/bin/ssh-add", 0, -1, NULL, 0, SET(ssh_add),
     "loads the key into that agent (fed over a pipe)"},
    {"helper", OPSC_CFG_STRING, "", 0, -1, NULL, 0, SET(helper),
     "opsc-openssh-helper; empty: next to the plugin, or in ../libexec"},
    {"ssh_config", OPSC_CFG_STRING, "", 0, -1, NULL, 0, SET(ssh_config),
     "ssh_config file for every connection; empty: ssh's own (~/.ssh/config, "
     "/etc/ssh/ssh_config); none: no file"},
    {"runtime_dir", OPSC_CFG_STRING, "", 0, -1, NULL, 0, SET(runtime_dir),
     "private (0700) directory of control sockets; empty: <data_dir>/openssh"},
    {"keepalive", OPSC_CFG_DURATION, "30s", 0, 3600 * 1000, NULL, 0, SET(keepalive_ms),
     "ServerAliveInterval of masters; 0 disables it"},
    {"max_channels", OPSC_CFG_INT, "10", 2, 1000, NULL, 0, SET(max_channels),
     "sessions per connection (sshd MaxSessions); one is kept for cancelling"},
    {"connect_timeout", OPSC_CFG_DURATION, "15s", 100, 600 * 1000, NULL, 0, SET(connect_timeout_ms),
     "connect + handshake + auth deadline when the target sets none"},
    {"cancel_grace", OPSC_CFG_DURATION, "2s", 0, 60 * 1000, NULL, 0, SET(cancel_grace_ms),
     "time between SIGTERM and SIGKILL when a command is cancelled"},
    {NULL},
};

static int put_file(opsc_conn *c, const opsc_xfer_req *req, opsc_xfer_cb cb, void *ud,
                    opsc_xfer **out)
{
    return tp_put_file(&c->p->ops, c, req, cb, ud, out);
}

static int get_file(opsc_conn *c, const opsc_xfer_req *req, opsc_xfer_cb cb, void *ud,
                    opsc_xfer **out)
{
    return tp_get_file(&c->p->ops, c, req, cb, ud, out);
}

/* What a previous daemon's command left running, stopped as a cancel would. */
static int kill_orphan(opsc_conn *c, const char *handle, opsc_kill_cb cb, void *ud)
{
    if (!handle || strncmp(handle, "openssh:", 8) != 0)
        return OPSC_EINVAL;
    return tp_kill_orphan(&c->p->ops, c, handle, (unsigned)c->p->cfg.cancel_grace_ms, cb, ud);
}

static int validate_options(void *state, const char *json, char *err, size_t errlen)
{
    (void)state;
    oss_options *o = malloc(sizeof(*o));
    if (!o)
        return OPSC_ENOMEM;
    int rc = oss_options_parse(json, o, err, errlen);
    free(o);
    return rc;
}

static const opsc_transport transport_template = {
    .size = sizeof(opsc_transport),
    .name = "openssh",
    .default_port = 22,
    .validate_options = validate_options,
    .connect = oss_connect,
    .exec = oss_exec,
    .exec_write = oss_exec_write,
    .exec_pause = oss_exec_pause,
    .exec_resume = oss_exec_resume,
    .exec_cancel = oss_exec_cancel,
    .put_file = put_file,
    .get_file = get_file,
    .xfer_cancel = tp_xfer_cancel,
    .conn_usable = oss_conn_usable,
    .close = oss_close,
    .credential_types = "ssh_key ssh_password",
    .kill_orphan = kill_orphan,
};

/* ---- files ----------------------------------------------------------------------------------- */

static char *sibling(const char *so, const char *rel)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    snprintf(dir, sizeof(dir), "%s", so);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, rel) >= sizeof(path))
        return NULL;
    return access(path, X_OK) == 0 ? realpath(path, NULL) : NULL;
}

/* The helper ships next to the plugin (build tree) or in the appliance's libexec. */
static int find_helper(oss_plugin *p, char *err, size_t errlen)
{
    char *found = NULL;
    if (p->cfg.helper[0]) {
        found = access(p->cfg.helper, X_OK) == 0 ? realpath(p->cfg.helper, NULL) : NULL;
    } else {
        Dl_info info;
        if (dladdr((void *)find_helper, &info) && info.dli_fname) {
            found = sibling(info.dli_fname, "opsc-openssh-helper");
            if (!found)
                found = sibling(info.dli_fname, "../libexec/opsc-openssh-helper");
        }
    }
    if (!found) {
        snprintf(err, errlen,
                 "opsc-openssh-helper not found (set [plugin.transport-openssh] helper)");
        return OPSC_ENOENT;
    }
    p->helper = oss_strdup(p, found);
    free(found);
    return p->helper ? 0 : OPSC_ENOMEM;
}

/* Sockets of masters a killed daemon left behind (the masters died with it). */
static void sweep(int dirfd)
{
    DIR *d = fdopendir(dup(dirfd));
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] == 'c' && e->d_name[1] >= '0' && e->d_name[1] <= '9')
            unlinkat(dirfd, e->d_name, 0);
    closedir(d);
}

/* Run at init, before the loop serves anyone: plain blocking calls are fine here. */
static int open_rundir(oss_plugin *p, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (p->cfg.runtime_dir[0])
        snprintf(path, sizeof(path), "%s", p->cfg.runtime_dir);
    else
        snprintf(path, sizeof(path), "%s/openssh",
                 OPSC_HOST_HAS(p->api, data_dir) ? p->api->data_dir() : ".");
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %.300s: %s", path, strerror(errno));
        return -errno;
    }
    char *real = realpath(path, NULL);
    struct stat st;
    if (!real || stat(real, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
        snprintf(err, errlen, "%.300s is not a directory of ours", path);
        free(real);
        return OPSC_EACCES;
    }
    chmod(real, 0700); /* private whatever umask made it */
    p->rundir = oss_strdup(p, real);
    free(real);
    if (!p->rundir)
        return OPSC_ENOMEM;
    p->rundir_fd = open(p->rundir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (p->rundir_fd < 0) {
        snprintf(err, errlen, "cannot open %.300s: %s", p->rundir, strerror(errno));
        return OPSC_EIO;
    }
    sweep(p->rundir_fd);
    return 0;
}

/* What ssh and its helpers see: a small, fixed environment in the C locale (their messages
 * are read), the askpass helper, and Kerberos' settings for gssapi. */
static int build_env(oss_plugin *p)
{
    static const char *const passed[] = {
        "HOME", "USER", "LOGNAME", "KRB5CCNAME", "KRB5_CONFIG", "KRB5_KTNAME", "KRB5_CLIENT_KTNAME",
        NULL};
    char buf[PATH_MAX + 64];
    size_t n = 0, cap = 16;
    p->env = p->api->calloc(cap, sizeof(char *));
    if (!p->env)
        return OPSC_ENOMEM;
    const char *fixed[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C", "SHELL=/bin/sh",
                           "SSH_ASKPASS_REQUIRE=force", NULL};
    for (size_t i = 0; fixed[i]; i++)
        p->env[n++] = oss_strdup(p, fixed[i]);
    snprintf(buf, sizeof(buf), "SSH_ASKPASS=%s", p->helper);
    p->env[n++] = oss_strdup(p, buf);
    for (size_t i = 0; passed[i]; i++) {
        const char *v = getenv(passed[i]);
        if (!v)
            continue;
        snprintf(buf, sizeof(buf), "%s=%s", passed[i], v);
        p->env[n++] = oss_strdup(p, buf);
    }
    for (size_t i = 0; i < n; i++)
        if (!p->env[i])
            return OPSC_ENOMEM;
    return 0;
}

/* ---- init / shutdown ------------------------------------------------------------------------- */

static void plugin_free(oss_plugin *p)
{
    oss_argv_free(p, p->env);
    if (p->rundir_fd > 0)
        close(p->rundir_fd);
    p->api->free(p->rundir);
    p->api->free(p->helper);
    p->api->free(p);
}

static int oss_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    char err[512] = "";
    oss_plugin *p = api->calloc(1, sizeof(*p));
    if (!p)
        return OPSC_ENOMEM;
    p->api = api;
    p->loop = api->loop();
    p->rundir_fd = -1;
    snprintf(p->ppid, sizeof(p->ppid), "%ld", (long)getpid());
    int rc = api->config_bind(cfg, oss_map, &p->cfg, err, sizeof(err));
    if (rc == 0 && access(p->cfg.ssh, X_OK) != 0) {
        snprintf(err, sizeof(err), "%s is not executable (install openssh-client)", p->cfg.ssh);
        rc = OPSC_ENOENT;
    }
    if (rc == 0)
        rc = find_helper(p, err, sizeof(err));
    if (rc == 0)
        rc = open_rundir(p, err, sizeof(err));
    if (rc == 0)
        rc = build_env(p);
    if (rc == 0) {
        p->transport = transport_template;
        p->transport.max_sessions = (unsigned)p->cfg.max_channels - 1;
        p->transport.options_schema = oss_options_schema();
        p->ops = (tp_exec_ops){api,
                               api->loop(),
                               oss_exec,
                               oss_exec_write,
                               oss_exec_pause,
                               oss_exec_resume,
                               oss_exec_cancel};
        rc = api->register_transport(&p->transport, p);
    }
    if (rc < 0) {
        if (err[0])
            api->log(OSS_COMPONENT, OPSC_LOG_ERROR, "%s", err);
        plugin_free(p);
        return rc;
    }
    api->log(OSS_COMPONENT, OPSC_LOG_INFO, "masters in %s, helper %s", p->rundir, p->helper);
    *state = p;
    return 0;
}

/* Connections are closed by the pool before this. A master still here (a jump host whose last
 * user is gone, mid-close) is stopped hard: the loop will not run its callbacks any more. */
static void oss_shutdown(void *state)
{
    oss_plugin *p = state;
    if (!p)
        return;
    for (oss_master *m = p->masters; m; m = m->next)
        oss_child_kill(&m->ssh, SIGKILL);
    for (oss_agent *a = p->agents; a; a = a->next)
        oss_child_kill(&a->agent, SIGKILL);
    for (oss_master *m = p->masters; m; m = m->next)
        p->api->log(OSS_COMPONENT, OPSC_LOG_WARN,
                    "ssh master of %s still open at shutdown (state %d, %d references)",
                    m->hop.name, (int)m->st, m->refs);
    sweep(p->rundir_fd);
    plugin_free(p);
}

OPSC_PLUGIN_DEFINE("transport-openssh", "0.1.0", OPSC_KIND_TRANSPORT,
                   "SSH transport driving the OpenSSH client (RSA keys, certificates, jump hosts, "
                   "ssh_config)",
                   "Apache-2.0", oss_init, oss_shutdown)
