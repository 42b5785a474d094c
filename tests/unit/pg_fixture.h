/* pg_fixture.h - a throw-away PostgreSQL server for unit tests of the store's PostgreSQL backend.
 *
 * pg_fixture_start() runs Debian's postgresql-15 initdb and pg_ctl into a
 * fresh temporary directory, on a free loopback port, with a random
 * password (scram-sha-256); under root the server runs as `nobody`
 * (setpriv), since PostgreSQL refuses root. pg_fixture_stop() stops it and
 * removes the directory. One server per test executable.
 */
#ifndef OPSC_PG_FIXTURE_H
#define OPSC_PG_FIXTURE_H

#include <stddef.h>

/* 0, or -1 after printing why (the server's log included). */
int pg_fixture_start(void);
void pg_fixture_stop(void);
/* A libpq URL of a database of its own for the store directory `dir`: made
 * on the first call for `dir` (remembered in dir/pg_database), the same one
 * after. Static buffer, valid until the next call. NULL on failure. */
const char *pg_fixture_url_for(const char *dir);
/* The server's password (a test checks that messages never show it). */
const char *pg_fixture_password(void);
/* A URL of the server with a wrong password. Static buffer. */
const char *pg_fixture_bad_url(void);

#endif
