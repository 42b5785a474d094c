/* auth_ldap.c - auth provider that binds as the user against LDAP / Active Directory and maps
 * groups to roles.
 *
 * [plugin.auth-ldap] finds the user's DN either from a template
 * (user_dn_template = uid={username},ou=people,dc=example,dc=org) or by a
 * search with a service account (bind_dn, bind_password, user_base,
 * user_filter), then binds as that DN with the user's password. Groups
 * whose entries match group_filter (member={dn} by default) under
 * group_base are compared, by DN or by cn, with admin_groups,
 * operator_groups and viewer_groups; the highest role wins, default_role
 * applies to users in none (none: such users may not log in).
 *
 * Every authenticate() call runs on a host worker thread with its own
 * connection (libldap 2.5 is thread-safe per handle); TLS options are set
 * per handle, never globally. An empty password is refused before any bind:
 * LDAP treats a simple bind with a DN and no password as an anonymous
 * (unauthenticated) bind that succeeds.
 */
#include <ctype.h>
#include <ldap.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <opsc/plugin.h>

#define DN_MAX     1024
#define FILTER_MAX 1024
#define NAME_MAX_  64

static const opsc_host_api *host;

struct ldap_settings {
    const char *uri;
    bool starttls;
    const char *ca_file;
    int64_t timeout_ms;
    const char *user_dn_template;
    const char *bind_dn;
    const char *bind_password;
    const char *user_base;
    const char *user_filter;
    const char *group_base;
    const char *group_filter;
    const char *admin_groups;
    const char *operator_groups;
    const char *viewer_groups;
    int default_role; /* index in "none|viewer|operator|admin" */
    const char *display_name_attribute;
    const char *email_attribute;
};

#define S(f) offsetof(struct ldap_settings, f)
static const opsc_cfg_entry settings_map[] = {
    {"uri", OPSC_CFG_STRING, "", 0, -1, NULL, 0, S(uri),
     "server URI: ldap://host:389 or ldaps://host:636; empty: the plugin provides nothing"},
    {"starttls", OPSC_CFG_BOOL, "false", 0, -1, NULL, 0, S(starttls),
     "upgrade ldap:// connections with StartTLS (required to succeed)"},
    {"ca_file", OPSC_CFG_STRING, "", 0, -1, NULL, 0, S(ca_file),
     "PEM CA bundle for ldaps:// and StartTLS; empty: the system's"},
    {"timeout", OPSC_CFG_DURATION, "5s", 100, 120000, NULL, 0, S(timeout_ms),
     "network and operation timeout"},
    {"user_dn_template", OPSC_CFG_STRING, "", 0, -1, NULL, 0, S(user_dn_template),
     "DN of a user with {username}, e.g. uid={username},ou=people,dc=example,dc=org; "
     "empty: search with bind_dn"},
    {"bind_dn", OPSC_CFG_STRING, "", 0, -1, NULL, 0, S(bind_dn),
     "service account used to search for users and groups"},
    {"bind_password", OPSC_CFG_STRING, "", 0, -1, NULL, OPSC_CFG_SECRET, S(bind_password),
     "password of bind_dn"},
    {"user_base", OPSC_CFG_STRING, "", 0, -1, NULL, 0, S(user_base), "where users are searched"},
    {"user_filter", OPSC_CFG_STRING, "(uid={username})", 0, -1, NULL, 0, S(user_filter),
     "filter finding a user; AD: (sAMAccountName={username})"},
    {"group_base", OPSC_CFG_STRING, "", 0, -1, NULL, 0, S(group_base),
     "where groups are searched; empty: no group lookup"},
    {"group_filter", OPSC_CFG_STRING, "(member={dn})", 0, -1, NULL, 0, S(group_filter),
     "filter finding the user's groups ({dn}: the user's DN, {username})"},
    {"admin_groups", OPSC_CFG_STRING, "", 0, -1, NULL, 0, S(admin_groups),
     "';'-separated group DNs or cns whose members are admins"},
    {"operator_groups", OPSC_CFG_STRING, "", 0, -1, NULL, 0, S(operator_groups),
     "';'-separated group DNs or cns whose members are operators"},
    {"viewer_groups", OPSC_CFG_STRING, "", 0, -1, NULL, 0, S(viewer_groups),
     "';'-separated group DNs or cns whose members are viewers"},
    {"default_role", OPSC_CFG_ENUM, "none", 0, -1, "none|viewer|operator|admin", 0, S(default_role),
     "role of users in no mapped group; none: they may not log in"},
    {"display_name_attribute", OPSC_CFG_STRING, "cn", 0, -1, NULL, 0, S(display_name_attribute),
     "attribute copied into the user's display_name"},
    {"email_attribute", OPSC_CFG_STRING, "mail", 0, -1, NULL, 0, S(email_attribute),
     "attribute copied into the user's email"},
    {NULL},
};
#undef S

static const char *const role_names[] = {"", "viewer", "operator", "admin"};

/* ---- escaping ----------------------------------------------------------------- */

/* RFC 4514 DN value: every byte but [A-Za-z0-9._@-] as \XX, which is
 * always valid and leaves nothing for an attacker to play with. */
static int escape_dn_value(const char *in, char *out, size_t n)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (o + 4 > n)
            return OPSC_E2BIG;
        if (isalnum(*p) || *p == '.' || *p == '_' || *p == '@' || *p == '-')
            out[o++] = (char)*p;
        else
            o += (size_t)snprintf(out + o, n - o, "\\%02x", *p);
    }
    out[o] = '\0';
    return 0;
}

/* RFC 4515 filter value: * ( ) \ NUL escaped by libldap. */
static int escape_filter_value(const char *in, char *out, size_t n)
{
    struct berval raw = {strlen(in), (char *)in}, esc = {0, NULL};
    if (ldap_bv2escaped_filter_value(&raw, &esc) != 0)
        return OPSC_ENOMEM;
    int rc = esc.bv_len < n ? 0 : OPSC_E2BIG;
    if (rc == 0)
        memcpy(out, esc.bv_val, esc.bv_len + 1);
    ldap_memfree(esc.bv_val);
    return rc;
}

/* Replace every {name} in `tpl` with `value` (already escaped). */
static int expand(const char *tpl, const char *name, const char *value, char *out, size_t n)
{
    char mark[32];
    snprintf(mark, sizeof(mark), "{%s}", name);
    size_t o = 0, mlen = strlen(mark), vlen = strlen(value);
    for (const char *p = tpl; *p;) {
        if (strncmp(p, mark, mlen) == 0) {
            if (o + vlen >= n)
                return OPSC_E2BIG;
            memcpy(out + o, value, vlen);
            o += vlen;
            p += mlen;
        } else {
            if (o + 1 >= n)
                return OPSC_E2BIG;
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return 0;
}

/* ---- connection ------------------------------------------------------------------ */

static int ldap_fail(LDAP *ld, int lrc, const char *what, char *err, size_t errlen)
{
    (void)ld;
    snprintf(err, errlen, "%s: %s", what, ldap_err2string(lrc));
    if (lrc == LDAP_SERVER_DOWN || lrc == LDAP_CONNECT_ERROR)
        return OPSC_ECONNREFUSED;
    if (lrc == LDAP_TIMEOUT)
        return OPSC_ETIMEDOUT;
    return OPSC_EREMOTE;
}

static int connect_ldap(const struct ldap_settings *s, LDAP **out, char *err, size_t errlen)
{
    LDAP *ld = NULL;
    int lrc = ldap_initialize(&ld, s->uri);
    if (lrc != LDAP_SUCCESS) {
        snprintf(err, errlen, "uri %s: %s", s->uri, ldap_err2string(lrc));
        return OPSC_EINVAL;
    }
    int version = LDAP_VERSION3, hard = LDAP_OPT_X_TLS_HARD, zero = 0;
    struct timeval tv = {(time_t)(s->timeout_ms / 1000),
                         (suseconds_t)(s->timeout_ms % 1000) * 1000};
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
    ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &hard);
    if (*s->ca_file)
        ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, s->ca_file);
    ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
    if (s->starttls) {
        lrc = ldap_start_tls_s(ld, NULL, NULL);
        if (lrc != LDAP_SUCCESS) {
            int rc = ldap_fail(ld, lrc, "StartTLS", err, errlen);
            ldap_unbind_ext_s(ld, NULL, NULL);
            return rc;
        }
    }
    *out = ld;
    return 0;
}

static int simple_bind(LDAP *ld, const char *dn, const char *password)
{
    struct berval cred = {strlen(password), (char *)password};
    return ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

/* ---- finding the user ------------------------------------------------------------- */

static int search_user_dn(const struct ldap_settings *s, LDAP *ld, const char *username, char *dn,
                          size_t dnlen, char *err, size_t errlen)
{
    if (*s->bind_dn) {
        int lrc = simple_bind(ld, s->bind_dn, s->bind_password);
        if (lrc != LDAP_SUCCESS)
            return ldap_fail(ld, lrc, "service account bind", err, errlen);
    }
    char esc[NAME_MAX_ * 3 + 1], filter[FILTER_MAX];
    int rc = escape_filter_value(username, esc, sizeof(esc));
    if (rc == 0)
        rc = expand(s->user_filter, "username", esc, filter, sizeof(filter));
    if (rc < 0) {
        snprintf(err, errlen, "user filter too long");
        return rc;
    }
    char *attrs[] = {LDAP_NO_ATTRS, NULL};
    LDAPMessage *res = NULL;
    int lrc = ldap_search_ext_s(ld, s->user_base, LDAP_SCOPE_SUBTREE, filter, attrs, 1, NULL, NULL,
                                NULL, 2, &res);
    int count =
        lrc == LDAP_SUCCESS || lrc == LDAP_SIZELIMIT_EXCEEDED ? ldap_count_entries(ld, res) : -1;
    if (count < 0)
        rc = ldap_fail(ld, lrc, "user search", err, errlen);
    else if (count == 0)
        rc = OPSC_ENOENT;
    else if (count > 1) {
        snprintf(err, errlen, "user filter matches several entries");
        rc = OPSC_EPERM;
    } else {
        char *found = ldap_get_dn(ld, ldap_first_entry(ld, res));
        rc = found && strlen(found) < dnlen ? 0 : OPSC_E2BIG;
        if (rc == 0)
            memcpy(dn, found, strlen(found) + 1);
        ldap_memfree(found);
    }
    ldap_msgfree(res);
    return rc;
}

static int user_dn(const struct ldap_settings *s, LDAP *ld, const char *username, char *dn,
                   size_t dnlen, char *err, size_t errlen)
{
    if (!*s->user_dn_template)
        return search_user_dn(s, ld, username, dn, dnlen, err, errlen);
    char esc[NAME_MAX_ * 3 + 1];
    int rc = escape_dn_value(username, esc, sizeof(esc));
    if (rc == 0)
        rc = expand(s->user_dn_template, "username", esc, dn, dnlen);
    if (rc < 0)
        snprintf(err, errlen, "user DN too long");
    return rc;
}

/* ---- attributes and groups ---------------------------------------------------------- */

static void first_value(LDAP *ld, LDAPMessage *e, const char *attr, char *out, size_t n)
{
    struct berval **v = ldap_get_values_len(ld, e, attr);
    if (v && v[0] && v[0]->bv_len < n && !memchr(v[0]->bv_val, '\0', v[0]->bv_len)) {
        memcpy(out, v[0]->bv_val, v[0]->bv_len);
        out[v[0]->bv_len] = '\0';
    }
    ldap_value_free_len(v);
}

static void read_profile(const struct ldap_settings *s, LDAP *ld, const char *dn, opsc_identity *id)
{
    char *attrs[] = {(char *)s->display_name_attribute, (char *)s->email_attribute, NULL};
    LDAPMessage *res = NULL;
    if (ldap_search_ext_s(ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL, NULL, 1,
                          &res) == LDAP_SUCCESS) {
        LDAPMessage *e = ldap_first_entry(ld, res);
        if (e) {
            first_value(ld, e, s->display_name_attribute, id->display_name,
                        sizeof(id->display_name));
            first_value(ld, e, s->email_attribute, id->email, sizeof(id->email));
        }
    }
    ldap_msgfree(res);
}

/* True when `list` (';'-separated) names the group by DN or by cn. */
static bool listed(const char *list, const char *group_dn, const char *cn)
{
    size_t dlen = strlen(group_dn), clen = strlen(cn);
    for (const char *p = list; *p;) {
        while (*p == ';' || *p == ' ')
            p++;
        size_t len = strcspn(p, ";");
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (len && ((len == dlen && strncasecmp(p, group_dn, len) == 0) ||
                    (clen && len == clen && strncasecmp(p, cn, len) == 0)))
            return true;
        p += strcspn(p, ";");
    }
    return false;
}

static int group_role(const struct ldap_settings *s, const char *group_dn, const char *cn)
{
    if (listed(s->admin_groups, group_dn, cn))
        return 3;
    if (listed(s->operator_groups, group_dn, cn))
        return 2;
    if (listed(s->viewer_groups, group_dn, cn))
        return 1;
    return 0;
}

/* Highest role among the user's groups; 0 when none maps; < 0 on failure. */
static int groups_role(const struct ldap_settings *s, LDAP *ld, const char *dn,
                       const char *username, char *err, size_t errlen)
{
    if (!*s->group_base)
        return 0;
    char edn[DN_MAX * 3], euser[NAME_MAX_ * 3 + 1], f1[FILTER_MAX], filter[FILTER_MAX];
    if (escape_filter_value(dn, edn, sizeof(edn)) < 0 ||
        escape_filter_value(username, euser, sizeof(euser)) < 0 ||
        expand(s->group_filter, "dn", edn, f1, sizeof(f1)) < 0 ||
        expand(f1, "username", euser, filter, sizeof(filter)) < 0) {
        snprintf(err, errlen, "group filter too long");
        return OPSC_E2BIG;
    }
    char *attrs[] = {"cn", NULL};
    LDAPMessage *res = NULL;
    int lrc = ldap_search_ext_s(ld, s->group_base, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL, NULL,
                                NULL, 1000, &res);
    if (lrc != LDAP_SUCCESS && lrc != LDAP_SIZELIMIT_EXCEEDED) {
        ldap_msgfree(res);
        return ldap_fail(ld, lrc, "group search", err, errlen);
    }
    int best = 0;
    for (LDAPMessage *e = ldap_first_entry(ld, res); e; e = ldap_next_entry(ld, e)) {
        char *gdn = ldap_get_dn(ld, e), cn[256] = "";
        first_value(ld, e, "cn", cn, sizeof(cn));
        int r = gdn ? group_role(s, gdn, cn) : 0;
        best = r > best ? r : best;
        ldap_memfree(gdn);
    }
    ldap_msgfree(res);
    return best;
}

/* ---- the provider ----------------------------------------------------------------- */

static bool username_ok(const char *u)
{
    size_t n = strlen(u);
    if (n == 0 || n > NAME_MAX_)
        return false;
    for (; *u; u++)
        if (iscntrl((unsigned char)*u))
            return false;
    return true;
}

static int finish_identity(const struct ldap_settings *s, LDAP *ld, const char *dn,
                           const char *username, opsc_identity *id, char *err, size_t errlen)
{
    int role = groups_role(s, ld, dn, username, err, errlen);
    if (role < 0)
        return role;
    if (role == 0)
        role = s->default_role;
    if (role == 0) {
        snprintf(err, errlen, "%s is in no group mapped to a role", username);
        return OPSC_EPERM;
    }
    read_profile(s, ld, dn, id);
    snprintf(id->username, sizeof(id->username), "%s", username);
    snprintf(id->role, sizeof(id->role), "%s", role_names[role]);
    return 0;
}

static int ldap_authenticate(void *state, const char *username, const char *password,
                             opsc_identity *id, char *err, size_t errlen)
{
    const struct ldap_settings *s = state;
    if (!username || !username_ok(username))
        return OPSC_ENOENT;
    if (!password || !*password)
        return OPSC_EAUTH; /* never an unauthenticated bind */
    LDAP *ld = NULL;
    int rc = connect_ldap(s, &ld, err, errlen);
    char dn[DN_MAX];
    if (rc == 0)
        rc = user_dn(s, ld, username, dn, sizeof(dn), err, errlen);
    if (rc == 0) {
        int lrc = simple_bind(ld, dn, password);
        if (lrc == LDAP_INVALID_CREDENTIALS)
            rc = OPSC_EAUTH;
        else if (lrc != LDAP_SUCCESS)
            rc = ldap_fail(ld, lrc, "user bind", err, errlen);
    }
    /* Group and profile lookups run as the service account when there is
     * one (users often may not read groups), else as the user. */
    if (rc == 0 && *s->bind_dn) {
        int lrc = simple_bind(ld, s->bind_dn, s->bind_password);
        if (lrc != LDAP_SUCCESS)
            rc = ldap_fail(ld, lrc, "service account bind", err, errlen);
    }
    if (rc == 0)
        rc = finish_identity(s, ld, dn, username, id, err, errlen);
    if (ld)
        ldap_unbind_ext_s(ld, NULL, NULL);
    return rc;
}

static const opsc_auth_provider ldap_provider = {
    .size = sizeof(opsc_auth_provider),
    .name = "ldap",
    .summary = "bind as the user against LDAP or Active Directory; groups map to roles",
    .authenticate = ldap_authenticate,
};

static struct ldap_settings settings;

static int check_settings(const struct ldap_settings *s, char *err, size_t errlen)
{
    if (!*s->user_dn_template && !*s->user_base) {
        snprintf(err, errlen, "set user_dn_template, or user_base (with bind_dn) to search");
        return OPSC_ESCHEMA;
    }
    if (*s->user_dn_template && !strstr(s->user_dn_template, "{username}")) {
        snprintf(err, errlen, "user_dn_template must contain {username}");
        return OPSC_ESCHEMA;
    }
    if (!*s->user_dn_template && !strstr(s->user_filter, "{username}")) {
        snprintf(err, errlen, "user_filter must contain {username}");
        return OPSC_ESCHEMA;
    }
    if (strncmp(s->uri, "ldap://", 7) != 0 && strncmp(s->uri, "ldaps://", 8) != 0) {
        snprintf(err, errlen, "uri must start with ldap:// or ldaps://");
        return OPSC_ESCHEMA;
    }
    return 0;
}

static int ldap_init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    host = api;
    char err[512] = "";
    int rc = api->config_bind(cfg, settings_map, &settings, err, sizeof(err));
    if (rc == 0 && !*settings.uri) {
        *state = NULL; /* installed but not configured: a normal state, not an error */
        api->log("auth-ldap", OPSC_LOG_INFO, "no [plugin.auth-ldap] uri: LDAP logins are off");
        return 0;
    }
    if (rc == 0)
        rc = check_settings(&settings, err, sizeof(err));
    if (rc < 0) {
        api->log("auth-ldap", OPSC_LOG_ERROR, "configuration: %s", err);
        return rc;
    }
    *state = &settings;
    return api->register_auth_provider(&ldap_provider, &settings);
}

OPSC_PLUGIN_DEFINE("auth-ldap", "1.0.0", OPSC_KIND_AUTH,
                   "Log in against LDAP or Active Directory; groups map to roles", "Apache-2.0",
                   ldap_init, NULL);
