/* privsep_drop.c - the daemon gives up its privileges once its helper runs: user, capabilities
 * (but the one to listen on a port below 1024), no new privileges. */
#include "privsep.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <opsc/errors.h>

static int switch_user(const char *user, char *err, size_t errlen)
{
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        snprintf(err, errlen, "[server] user '%s' does not exist", user);
        return OPSC_ENOENT;
    }
    if (pw->pw_uid == 0) {
        snprintf(err, errlen, "[server] user '%s' is root: name an unprivileged user", user);
        return OPSC_EINVAL;
    }
    /* Keep the permitted set across setuid: drop_capabilities() then keeps
     * CAP_NET_BIND_SERVICE of it alone. */
    prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0) {
        snprintf(err, errlen, "cannot switch to [server] user '%s': %s", user, strerror(errno));
        return -errno;
    }
    if (getuid() != pw->pw_uid || geteuid() != pw->pw_uid || setuid(0) == 0) {
        snprintf(err, errlen, "switching to [server] user '%s' did not hold", user);
        return OPSC_EPERM;
    }
    return 0;
}

/* Empty every capability set we can, ambient ones given by systemd first (the
 * helper, started before, keeps its own), but CAP_NET_BIND_SERVICE when the
 * daemon had it: listening on 443 or 80, now or after a SIGHUP, is all it
 * allows, and no program the daemon runs inherits it (not inheritable). */
static void drop_capabilities(void)
{
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    if (geteuid() == 0)
        return; /* root's capabilities come back with its uid: [server] user is the cure */
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    bool bind =
        syscall(SYS_capget, &h, d) == 0 && (d[0].permitted & (1u << CAP_NET_BIND_SERVICE)) != 0;
    memset(d, 0, sizeof(d));
    if (bind)
        d[0].permitted = d[0].effective = 1u << CAP_NET_BIND_SERVICE;
    syscall(SYS_capset, &h, d);
}

int privsep_drop(const char *user, char *err, size_t errlen, char *warn, size_t warnlen)
{
    bool root = getuid() == 0 || geteuid() == 0;
    int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    if (warn && warnlen)
        warn[0] = '\0';
    if (root && user && *user) {
        int rc = switch_user(user, err, errlen);
        if (rc < 0)
            return rc;
    } else if (root && warn) {
        snprintf(warn, warnlen,
                 "the daemon runs as root: set [server] user (e.g. opsconductor) "
                 "so that it gives root up once its helper for local steps runs");
    } else if (user && *user) {
        struct passwd *pw = getpwnam(user);
        if (!pw || pw->pw_uid != getuid()) {
            snprintf(err, errlen,
                     "[server] user is '%s' but the daemon was started as uid %u, "
                     "not root: it cannot switch",
                     user, (unsigned)getuid());
            return OPSC_EPERM;
        }
    }
    drop_capabilities();
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    /* A change of uid resets dumpability to the system's default: keep the
     * daemon's own choice (main.c: never, but under ASan and on request). */
    if (dumpable >= 0)
        prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0);
    return 0;
}
