/* console.c - `opsconductord user ...` and `opsconductord rotate-key`: identity administration at
 * the console. */
#include "console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <opsc/errors.h>

#include "auth.h"
#include "config.h"
#include "core.h"
#include "store.h"
#include "util.h"
#include "vault.h"

static int open_store(struct config *cfg, store **s)
{
    char err[1024] = "";
    int rc = core_store_open(cfg, s, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "opsconductord: cannot open the store in %s: %s%s\n", cfg->store.data_dir,
                err[0] ? err : opsc_strerror(rc),
                rc == OPSC_EBUSY ? " (stop the daemon, or use the REST API)" : "");
    return rc;
}

/* One line from stdin, without echo when it is a terminal. */
static int read_password(const char *prompt, char *buf, size_t n, int min_score,
                         const char *const *words)
{
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *got = fgets(buf, (int)n, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (!got) {
        fprintf(stderr, "opsconductord: no password on standard input\n");
        return OPSC_EINVAL;
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    char err[320];
    if (password_policy_check(buf, min_score, words, err, sizeof(err)) < 0) {
        fprintf(stderr, "opsconductord: %s\n", err);
        return OPSC_EINVAL;
    }
    return 0;
}

struct user_cmd {
    const char *verb;
    char name[USERNAME_MAX + 1];
    int role;
    char hash[PASSWORD_HASH_MAX];
    const char *why;
};

static int apply(store_txn *txn, void *ud)
{
    struct user_cmd *u = ud;
    json_t *rec = NULL;
    int rc = users_find(txn, u->name, &rec);
    if (strcmp(u->verb, "add") == 0) {
        json_decref(rec);
        if (rc == 0)
            return OPSC_EEXIST;
        char now[RFC3339_LEN];
        rfc3339_format(clock_now_ms(), now);
        rec =
            json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s}", "username", u->name,
                      "display_name", u->name, "email", "", "role", role_name(u->role), "enabled",
                      1, "provider", "local", "password_hash", u->hash, "password_changed_at", now);
        rc = rec ? users_create(txn, rec) : OPSC_ENOMEM;
        json_decref(rec);
        return rc;
    }
    if (rc < 0)
        return rc;
    bool was = json_is_true(json_object_get(rec, "enabled"));
    if (strcmp(u->verb, "passwd") == 0) {
        const char *prov = json_string_value(json_object_get(rec, "provider"));
        if (!prov || strcmp(prov, "local") != 0) {
            u->why = "its password is managed by its provider";
            json_decref(rec);
            return OPSC_ESTATE;
        }
        char now[RFC3339_LEN];
        rfc3339_format(clock_now_ms(), now);
        json_object_set_new(rec, "password_hash", json_string(u->hash));
        json_object_set_new(rec, "password_changed_at", json_string(now));
    } else {
        json_object_set_new(rec, "enabled", json_boolean(strcmp(u->verb, "enable") == 0));
    }
    const char *id = json_string_value(json_object_get(rec, "id"));
    rc = users_update(txn, rec, 0);
    if (rc == 0 && strcmp(u->verb, "enable") != 0)
        rc = users_revoke_sessions(txn, id, NULL);
    if (rc == 0 && strcmp(u->verb, "disable") == 0 && was)
        rc = users_revoke_api_tokens(txn, id, "the user was disabled");
    json_decref(rec);
    return rc;
}

static int user_usage(void)
{
    fprintf(stderr, "usage: opsconductord [options] user add NAME --role admin|operator|viewer\n"
                    "       opsconductord [options] user passwd|disable|enable NAME\n"
                    "The password is read from standard input.\n");
    return 2;
}

static int parse_user_args(int argc, char **argv, struct user_cmd *u)
{
    if (argc < 3)
        return user_usage();
    u->verb = argv[1];
    bool add = strcmp(u->verb, "add") == 0;
    if (!add && strcmp(u->verb, "passwd") && strcmp(u->verb, "disable") &&
        strcmp(u->verb, "enable"))
        return user_usage();
    if (users_fold(argv[2], u->name) < 0) {
        fprintf(stderr, "opsconductord: '%s' is not a valid username\n", argv[2]);
        return 2;
    }
    u->role = -1;
    for (int i = 3; i < argc; i++) {
        if (add && strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            u->role = role_parse(argv[++i]);
        else
            return user_usage();
    }
    if (add && u->role < 0)
        return user_usage();
    return 0;
}

struct found {
    const char *name;
    json_t **rec;
};

static int find_user(store_txn *txn, void *ud)
{
    struct found *f = ud;
    return users_find(txn, f->name, f->rec);
}

int console_user(struct config *cfg, int argc, char **argv)
{
    struct user_cmd u = {0};
    int rc = parse_user_args(argc, argv, &u);
    if (rc)
        return rc;
    store *s = NULL;
    if (open_store(cfg, &s) < 0) /* first: a running daemon holds it */
        return 1;
    if (strcmp(u.verb, "add") == 0 || strcmp(u.verb, "passwd") == 0) {
        char pw[PASSWORD_MAX_LEN + 2];
        json_t *rec = NULL; /* for passwd: its display name and email count against it too */
        if (strcmp(u.verb, "passwd") == 0)
            store_read(s, find_user, &(struct found){u.name, &rec});
        const char *words[] = {u.name, json_string_value(json_object_get(rec, "display_name")),
                               json_string_value(json_object_get(rec, "email")), NULL};
        if (!words[1])
            words[1] = words[2], words[2] = NULL;
        rc = read_password("Password: ", pw, sizeof(pw), (int)cfg->auth.password_min_score, words);
        json_decref(rec);
        if (rc == 0)
            rc = password_hash(pw, (unsigned)cfg->auth.password_cost, u.hash);
        secure_zero(pw, sizeof(pw));
    }
    if (rc == 0)
        rc = store_write(s, apply, &u);
    store_close(s);
    secure_zero(u.hash, sizeof(u.hash));
    if (rc == OPSC_EINVAL && !u.why)
        return 1; /* read_password said why */
    if (rc < 0) {
        fprintf(stderr, "opsconductord: user %s %s: %s\n", u.verb, u.name,
                u.why               ? u.why
                : rc == OPSC_EEXIST ? "a user of that name exists"
                : rc == OPSC_ENOENT ? "no such user"
                                    : opsc_strerror(rc));
        return 1;
    }
    printf("user %s: %s done\n", u.name, u.verb);
    return 0;
}

int console_rotate_key(struct config *cfg, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: opsconductord [options] rotate-key\n"
                        "With OPSC_MASTER_KEY set, give the new key in OPSC_MASTER_KEY_NEW.\n");
        return 2;
    }
    store *s = NULL;
    if (open_store(cfg, &s) < 0)
        return 1;
    char err[1024] = "";
    vault_opts o = {cfg->store.data_dir, cfg->vault.key_file, getenv("OPSC_MASTER_KEY")};
    vault *v = NULL;
    vault_key fresh, *pf = NULL;
    const char *next = getenv("OPSC_MASTER_KEY_NEW");
    int rc = next && vault_key_parse(next, &fresh) < 0 ? OPSC_EINVAL : 0;
    if (rc < 0)
        snprintf(err, sizeof(err), "OPSC_MASTER_KEY_NEW is not base64 of 32 bytes");
    else if (next)
        pf = &fresh;
    if (rc == 0)
        rc = vault_open(&v, s, &o, err, sizeof(err));
    size_t n = 0;
    char old[VAULT_KID_LEN] = "";
    if (rc == 0) {
        snprintf(old, sizeof(old), "%s", vault_key_id(v));
        rc = vault_rotate(v, pf, &n, err, sizeof(err));
    }
    if (rc == 0)
        printf("master key rotated from %s to %s: %zu credential data keys re-wrapped%s\n", old,
               vault_key_id(v), n,
               o.env_key ? "; now set OPSC_MASTER_KEY to the value of OPSC_MASTER_KEY_NEW" : "");
    else
        fprintf(stderr, "opsconductord: rotate-key: %s\n", err[0] ? err : opsc_strerror(rc));
    vault_key_wipe(&fresh);
    vault_close(v);
    store_close(s);
    return rc < 0 ? 1 : 0;
}
