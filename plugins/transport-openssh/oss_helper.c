/* oss_helper.c - opsc-openssh-helper: the small programs transport-openssh has ssh run.
 *
 *   opsc-openssh-helper exec PPID PROG [ARG...]
 *       Exec PROG with SIGTERM as its parent-death signal: ssh masters and
 *       agents die with the daemon, even when it is SIGKILLed (ControlPersist
 *       would keep them alive). Exits 127 when the daemon (PPID) is already gone.
 *   opsc-openssh-helper hostkey POLICY PINNED HOST REASON TYPE KEY FINGERPRINT
 *       ssh's KnownHostsCommand: print "HOST TYPE KEY" (a known_hosts line)
 *       when the offered key may be trusted, nothing otherwise. PINNED is
 *       "-" or the target's recorded fingerprints joined by ','; POLICY is
 *       strict (only those), tofu (those, or any key when none is recorded)
 *       or off (any key). The target's keys are stored as fingerprints, so
 *       no known_hosts file could be written ahead of the connection.
 *   opsc-openssh-helper PROMPT   (as SSH_ASKPASS, with OPSC_ASKPASS set)
 *       Connect to the unix socket named by $OPSC_ASKPASS, copy what the
 *       daemon sends (once) to stdout. The secret never touches a file or argv.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int run_exec(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    long ppid = strtol(argv[2], NULL, 10);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        return 126;
    /* The daemon may have died between fork and prctl: then no signal comes. */
    if ((long)getppid() != ppid)
        return 127;
    execv(argv[3], argv + 3);
    fprintf(stderr, "opsc-openssh-helper: cannot run %s: %s\n", argv[3], strerror(errno));
    return 127;
}

static int pinned(const char *list, const char *fp)
{
    size_t n = strlen(fp);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && memcmp(p, fp, n) == 0)
            return 1;
        p += len + (p[len] == ',');
    }
    return 0;
}

static int run_hostkey(int argc, char **argv)
{
    if (argc != 9)
        return 2;
    const char *policy = argv[2], *list = argv[3], *host = argv[4], *reason = argv[5];
    const char *type = argv[6], *key = argv[7], *fp = argv[8];
    if (strcmp(reason, "HOSTNAME") != 0 || strcmp(type, "NONE") == 0)
        return 0; /* ordering queries and address checks: nothing to add */
    int none = strcmp(list, "-") == 0;
    int ok = (!none && pinned(list, fp)) || strcmp(policy, "off") == 0 ||
             (strcmp(policy, "tofu") == 0 && none);
    if (ok)
        printf("%s %s %s\n", host, type, key);
    return 0;
}

static int run_askpass(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(a.sun_path))
        return 1;
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return 1; /* served once already: ssh sees a refusal, not a second try */
    char buf[4096];
    ssize_t n;
    int last = '\n';
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
            return 1;
        last = buf[n - 1];
    }
    if (last != '\n')
        putchar('\n');
    memset(buf, 0, sizeof(buf));
    close(fd);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "exec") == 0)
        return run_exec(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "hostkey") == 0)
        return run_hostkey(argc, argv);
    const char *sock = getenv("OPSC_ASKPASS");
    if (sock && *sock)
        return run_askpass(sock);
    fprintf(stderr, "usage: opsc-openssh-helper exec|hostkey ... (run by transport-openssh)\n");
    return 2;
}
