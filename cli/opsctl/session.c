/* session.c - login, logout and the stored session: tokens kept 0600 under $XDG_CONFIG_HOME/opsctl.
 *
 * The refresh token rotates on every use and the daemon revokes the whole
 * session when a spent one is presented again, so two opsctl processes must
 * never refresh with the same token: the access token (15 minutes) is
 * cached with its expiry, and refreshing happens under an flock on
 * session.lock, re-reading the file first (another process may have
 * refreshed already).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "opsctl.h"

#define EXPIRY_MARGIN_S 30 /* refresh a little early: clocks and slow requests */

static bool in_auth; /* login and refresh requests carry no bearer token */

static int config_dir(char *buf, size_t n, bool create)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(buf, n, "%s/opsctl", xdg);
    else if (home && *home)
        snprintf(buf, n, "%s/.config/opsctl", home);
    else
        return -1;
    if (create) {
        char parent[4096];
        snprintf(parent, sizeof(parent), "%s", buf);
        *strrchr(parent, '/') = '\0';
        mkdir(parent, 0700); /* ~/.config may not exist yet */
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

static int session_path(char *buf, size_t n, const char *file, bool create)
{
    char dir[4000];
    if (config_dir(dir, sizeof(dir), create) < 0)
        return -1;
    snprintf(buf, n, "%s/%s", dir, file);
    return 0;
}

static json_t *load_session(void)
{
    char path[4096];
    if (session_path(path, sizeof(path), "session.json", false) < 0)
        return NULL;
    return json_load_file(path, 0, NULL);
}

/* Written to a temporary file created 0600 and renamed over the old one, so
 * a reader never sees half a file and the tokens are never readable by others. */
static int save_session(json_t *s)
{
    char path[4096], tmp[4200];
    if (session_path(path, sizeof(path), "session.json", true) < 0) {
        fprintf(stderr, "opsctl: cannot create the config directory (set HOME or "
                        "XDG_CONFIG_HOME)\n");
        return OPSCTL_ERROR;
    }
    snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || fchmod(fd, 0600) < 0 || json_dumpfd(s, fd, JSON_INDENT(2)) < 0 || fsync(fd) < 0) {
        fprintf(stderr, "opsctl: cannot write %s: %s\n", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        return OPSCTL_ERROR;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        fprintf(stderr, "opsctl: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return OPSCTL_ERROR;
    }
    return 0;
}

static int lock_session(void)
{
    char path[4096];
    if (session_path(path, sizeof(path), "session.lock", true) < 0)
        return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0 && flock(fd, LOCK_EX) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void unlock_session(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

char *session_url(void)
{
    json_t *s = load_session();
    const char *url = json_string_value(json_object_get(s, "url"));
    char *copy = url ? strdup(url) : NULL;
    json_decref(s);
    return copy;
}

static void set_bearer(opsctl *c, const char *token)
{
    free(c->bearer);
    c->bearer = token ? strdup(token) : NULL;
}

/* Store a login or refresh answer: both tokens and the access token's expiry. */
static int store_tokens(json_t *s, json_t *answer)
{
    json_int_t ttl = json_integer_value(json_object_get(answer, "expires_in"));
    json_object_set(s, "access_token", json_object_get(answer, "access_token"));
    json_object_set(s, "refresh_token", json_object_get(answer, "refresh_token"));
    json_object_set_new(s, "access_expires_at", json_integer((json_int_t)time(NULL) + ttl));
    return save_session(s);
}

static bool fresh(json_t *s)
{
    json_int_t exp = json_integer_value(json_object_get(s, "access_expires_at"));
    return json_string_value(json_object_get(s, "access_token")) &&
           exp > (json_int_t)time(NULL) + EXPIRY_MARGIN_S;
}

static int refresh_locked(opsctl *c, json_t *s)
{
    json_t *body = json_pack("{s:O}", "refresh_token", json_object_get(s, "refresh_token"));
    http_answer ans;
    in_auth = true;
    int rc = http_request(c, "POST", "/api/v1/auth/refresh", body, &ans);
    in_auth = false;
    json_decref(body);
    if (rc)
        return rc;
    if (ans.status == 200) {
        rc = store_tokens(s, ans.json);
        if (rc == 0)
            set_bearer(c, json_string_value(json_object_get(s, "access_token")));
    } else {
        api_error(&ans);
        fprintf(stderr, "The stored session has ended: log in again with 'opsctl login'.\n");
        rc = OPSCTL_ERROR;
    }
    http_answer_free(&ans);
    return rc;
}

/* Under the lock: another process may have refreshed since we read the
 * file; use its token rather than spending the rotated refresh token. */
static int refresh(opsctl *c, bool force)
{
    int fd = lock_session();
    json_t *s = load_session();
    int rc = OPSCTL_ERROR;
    const char *access = json_string_value(json_object_get(s, "access_token"));
    if (s && fresh(s) && (!force || !c->bearer || strcmp(access, c->bearer) != 0)) {
        set_bearer(c, access);
        rc = 0;
    } else if (s) {
        rc = refresh_locked(c, s);
    }
    json_decref(s);
    unlock_session(fd);
    return rc;
}

static bool same_server(const opsctl *c, json_t *s)
{
    const char *url = json_string_value(json_object_get(s, "url"));
    return url && strcmp(url, c->url) == 0;
}

const char *session_bearer(opsctl *c)
{
    if (in_auth)
        return NULL;
    if (c->bearer || c->session_loaded)
        return c->bearer;
    c->session_loaded = true;
    const char *env = getenv("OPSC_TOKEN");
    if (env && *env) {
        c->bearer_from_env = true;
        set_bearer(c, env);
        return c->bearer;
    }
    json_t *s = load_session();
    if (s && same_server(c, s)) {
        if (fresh(s))
            set_bearer(c, json_string_value(json_object_get(s, "access_token")));
        else
            refresh(c, false);
    }
    json_decref(s);
    return c->bearer;
}

int session_refresh(opsctl *c)
{
    if (c->bearer_from_env)
        return OPSCTL_ERROR;
    return refresh(c, true);
}

/* ---- login and logout ----------------------------------------------------------------------- */

/* One line from `in` without its newline; echo off when it is a terminal. */
static char *read_secret_line(FILE *in, const char *prompt, bool hide)
{
    struct termios old, quiet;
    bool tty = isatty(fileno(in));
    if (tty) {
        fprintf(stderr, "%s", prompt);
        fflush(stderr);
    }
    if (tty && hide && tcgetattr(fileno(in), &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fileno(in), TCSAFLUSH, &quiet);
    } else {
        hide = false;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, in);
    if (hide) {
        tcsetattr(fileno(in), TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (n < 0) {
        free(line);
        return NULL;
    }
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

static char *ask(const char *prompt, bool hide, bool from_stdin)
{
    if (from_stdin)
        return read_secret_line(stdin, prompt, hide);
    FILE *tty = fopen("/dev/tty", "r+");
    if (!tty) {
        fprintf(stderr, "opsctl login: no terminal to ask on: give --username and "
                        "--password-stdin\n");
        return NULL;
    }
    char *line = read_secret_line(tty, prompt, hide);
    fclose(tty);
    return line;
}

static int login_request(opsctl *c, const char *user, const char *password, json_t **session)
{
    json_t *body = json_pack("{s:s, s:s}", "username", user, "password", password);
    in_auth = true;
    json_t *answer = NULL;
    int rc = api_call(c, "POST", "/api/v1/auth/login", body, &answer);
    in_auth = false;
    json_decref(body);
    if (rc)
        return rc;
    *session = json_pack("{s:s, s:s}", "url", c->url, "username", user);
    rc = store_tokens(*session, answer);
    json_decref(answer);
    return rc;
}

int cmd_login(opsctl *c, const command *cmd, args *a)
{
    (void)cmd;
    bool from_stdin = arg_flag(a, "password-stdin");
    const char *given = arg_value(a, "username");
    char *user = given ? strdup(given) : ask("Username: ", false, false);
    char *password = user ? ask("Password: ", true, from_stdin) : NULL;
    if (!user || !password || !*user) {
        free(user);
        free(password);
        return OPSCTL_ERROR;
    }
    json_t *s = NULL;
    int rc = login_request(c, user, password, &s);
    memset(password, 0, strlen(password));
    free(password);
    if (rc == 0) {
        set_bearer(c, json_string_value(json_object_get(s, "access_token")));
        c->session_loaded = true;
        char path[4096] = "";
        session_path(path, sizeof(path), "session.json", false);
        fprintf(stderr, "Logged in to %s as %s (session kept in %s).\n", c->url, user, path);
    }
    json_decref(s);
    free(user);
    return rc;
}

int cmd_logout(opsctl *c, const command *cmd, args *a)
{
    (void)cmd, (void)a;
    json_t *s = load_session();
    char path[4096];
    if (!s || session_path(path, sizeof(path), "session.json", false) < 0) {
        fprintf(stderr, "opsctl: not logged in\n");
        json_decref(s);
        return 0;
    }
    int rc = 0;
    if (same_server(c, s) && session_bearer(c) && !c->bearer_from_env) {
        json_t *body = json_pack("{s:O}", "refresh_token", json_object_get(s, "refresh_token"));
        rc = api_call(c, "POST", "/api/v1/auth/logout", body, NULL);
        json_decref(body);
    }
    /* The tokens go even when the server cannot be told: they are revoked
     * there or will expire; kept here they would only be a liability. */
    unlink(path);
    fprintf(stderr, "Logged out of %s.\n", json_string_value(json_object_get(s, "url")));
    json_decref(s);
    return rc;
}
