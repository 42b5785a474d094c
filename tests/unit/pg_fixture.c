/* pg_fixture.c - a throw-away PostgreSQL server (initdb + pg_ctl on loopback) for unit tests. */
#include "pg_fixture.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define PG_BIN "/usr/lib/postgresql/15/bin"

static struct {
    char dir[64];
    char as[128]; /* "setpriv ... --" under root */
    char password[40];
    int port, databases;
    char url[512];
} pg;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &n) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int sh(const char *cmd)
{
    int rc = system(cmd);
    return rc == 0 ? 0 : -1;
}

static void print_log(const char *name)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "cat %s/%s >&2", pg.dir, name);
    (void)!system(cmd);
}

static int run_as(const char *fmt, const char *log)
{
    char cmd[1536];
    snprintf(cmd, sizeof(cmd), "cd %s && LC_ALL=C.UTF-8 %s %s >%s/%s 2>&1", pg.dir, pg.as, fmt,
             pg.dir, log);
    if (sh(cmd) == 0)
        return 0;
    fprintf(stderr, "pg_fixture: failed: %s\n", cmd);
    print_log(log);
    return -1;
}

int pg_fixture_start(void)
{
    snprintf(pg.dir, sizeof(pg.dir), "/tmp/opsc-pgunit-XXXXXX");
    if (!mkdtemp(pg.dir) || rand_hex(pg.password, 16) < 0 || (pg.port = free_port()) < 0)
        return -1;
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("nobody");
        if (!pw || chown(pg.dir, pw->pw_uid, pw->pw_gid) < 0)
            return -1;
        snprintf(pg.as, sizeof(pg.as), "setpriv --reuid=%u --regid=%u --clear-groups --",
                 (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
    }
    char path[128], cmd[1024];
    snprintf(path, sizeof(path), "%s/pw", pg.dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "%s\n", pg.password);
    fclose(f);
    chmod(path, 0644); /* the server's user reads it; the directory is 0700 */
    snprintf(cmd, sizeof(cmd),
             PG_BIN "/initdb -D %s/data -U opsc --auth=scram-sha-256 --pwfile=%s -E UTF8 "
                    "--no-sync",
             pg.dir, path);
    int rc = run_as(cmd, "initdb.log");
    unlink(path);
    if (rc)
        return rc;
    snprintf(cmd, sizeof(cmd),
             PG_BIN
             "/pg_ctl -D %s/data -l %s/server.log -w -t 60 -o '-c listen_addresses=127.0.0.1 "
             "-c port=%d -c unix_socket_directories=%s -c fsync=off' start",
             pg.dir, pg.dir, pg.port, pg.dir);
    if (run_as(cmd, "pg_ctl.log")) {
        print_log("server.log");
        return -1;
    }
    return 0;
}

void pg_fixture_stop(void)
{
    char cmd[512];
    if (!pg.dir[0])
        return;
    snprintf(cmd, sizeof(cmd), PG_BIN "/pg_ctl -D %s/data -w -t 30 -m immediate stop", pg.dir);
    run_as(cmd, "stop.log");
    snprintf(cmd, sizeof(cmd), "rm -rf %s", pg.dir);
    (void)!system(cmd);
}

const char *pg_fixture_password(void)
{
    return pg.password;
}

const char *pg_fixture_bad_url(void)
{
    snprintf(pg.url, sizeof(pg.url),
             "postgresql://opsc:not-%s@127.0.0.1:%d/postgres?gssencmode=disable", pg.password,
             pg.port);
    return pg.url;
}

static int create_database(const char *name)
{
    char url[256], sql[128];
    snprintf(url, sizeof(url), "postgresql://opsc:%s@127.0.0.1:%d/postgres?gssencmode=disable",
             pg.password, pg.port);
    PGconn *c = PQconnectdb(url);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int rc = r && PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc)
        fprintf(stderr, "pg_fixture: %s: %s\n", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return rc;
}

const char *pg_fixture_url_for(const char *dir)
{
    char path[PATH_MAX], name[32] = "";
    snprintf(path, sizeof(path), "%s/pg_database", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(name, sizeof(name), f))
            name[0] = '\0';
        fclose(f);
        name[strcspn(name, "\n")] = '\0';
    }
    if (!name[0]) {
        snprintf(name, sizeof(name), "store_%d", ++pg.databases);
        if (create_database(name) < 0 || !(f = fopen(path, "w")))
            return NULL;
        fprintf(f, "%s\n", name);
        fclose(f);
    }
    snprintf(pg.url, sizeof(pg.url), "postgresql://opsc:%s@127.0.0.1:%d/%s?gssencmode=disable",
             pg.password, pg.port, name);
    return pg.url;
}
