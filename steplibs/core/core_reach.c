/* core_reach.c - what a job may make the appliance itself reach: the addresses http.request may
 * connect to, and the files it may read as a CA bundle.
 *
 * Jobs are written by operators; the appliance is not theirs. An HTTP request
 * from the appliance to itself would reach the daemon's API and every service
 * that trusts loopback (and a cloud's metadata service on a link-local
 * address, with the machine's credentials): refused unless [plugin.steplib-core]
 * http_allow_local says otherwise. The check runs on every connection curl
 * opens, with the address it resolved, so redirects and DNS tricks cannot
 * slip past it. A CA bundle is read by the daemon: only a file in files_dir,
 * or one every local user may read, can be named.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core_internal.h"

static bool v4_local(const struct in_addr *a)
{
    uint32_t h = ntohl(a->s_addr);
    return (h >> 24) == 127 || (h >> 24) == 0 || (h >> 16) == 0xa9fe; /* 127/8, 0/8, 169.254/16 */
}

static bool v6_local(const struct in6_addr *a)
{
    if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a))
        return true;
    if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a)) {
        struct in_addr v4;
        memcpy(&v4, &a->s6_addr[12], 4);
        return v4_local(&v4);
    }
    return false;
}

static bool same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
    if (!a || !b || a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return a->sa_family == AF_INET6 &&
           memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

/* An address of one of the appliance's own interfaces (its LAN address
 * reaches a daemon listening on 0.0.0.0 as well as loopback does). */
static bool own_address(const struct sockaddr *sa)
{
    struct ifaddrs *list = NULL;
    bool found = false;
    if (getifaddrs(&list) < 0)
        return true; /* cannot tell: refuse */
    for (struct ifaddrs *i = list; i && !found; i = i->ifa_next)
        found = same_addr(i->ifa_addr, sa);
    freeifaddrs(list);
    return found;
}

bool core_addr_refused(const core_settings *s, const struct sockaddr *sa, char *why, size_t n)
{
    if (s->http_allow_local)
        return false;
    char text[INET6_ADDRSTRLEN] = "?";
    bool local = false;
    if (sa->sa_family == AF_INET) {
        const struct in_addr *a = &((const struct sockaddr_in *)sa)->sin_addr;
        inet_ntop(AF_INET, a, text, sizeof(text));
        local = v4_local(a);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        inet_ntop(AF_INET6, a, text, sizeof(text));
        local = v6_local(a);
    } else {
        snprintf(why, n, "only IPv4 and IPv6 addresses may be reached");
        return true;
    }
    if (!local && !own_address(sa))
        return false;
    snprintf(why, n,
             "%s is the appliance itself or a link-local address: refused "
             "([plugin.steplib-core] http_allow_local)",
             text);
    return true;
}

/* Every directory on the way searchable by others, the file readable by them. */
static bool world_readable(const char *path)
{
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(path, real) || stat(real, &st) < 0 || !S_ISREG(st.st_mode) ||
        !(st.st_mode & S_IROTH))
        return false;
    for (char *slash = strrchr(real, '/'); slash && slash > real; slash = strrchr(real, '/')) {
        *slash = '\0';
        if (stat(real, &st) < 0 || !(st.st_mode & S_IXOTH))
            return false;
    }
    return true;
}

int core_ca_file(const core_settings *s, const char *name, char *out, size_t n, char *why,
                 size_t whylen)
{
    if (name[0] != '/') { /* relative: in files_dir */
        bool dots = strstr(name, "..") != NULL;
        if (dots || (size_t)snprintf(out, n, "%s/%s", s->files_dir, name) >= n) {
            snprintf(why, whylen, "ca_file '%s' must be inside files_dir, without '..'", name);
            return -1;
        }
        return 0;
    }
    if (!world_readable(name)) {
        snprintf(why, whylen,
                 "ca_file %s is not a file every local user may read (use files_dir "
                 "for a private bundle)",
                 name);
        return -1;
    }
    snprintf(out, n, "%s", name);
    return 0;
}
