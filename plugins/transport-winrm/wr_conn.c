/* wr_conn.c - WinRM connections: connect (credential, channels, first shell), reuse checks, close.
 */
#include <stdlib.h>
#include <string.h>

#include <opsc/errors.h>

#include "wr_internal.h"

void wr_conn_hdr(opsc_conn *c, wr_hdr *hdr, const char *shell_id, unsigned timeout_s)
{
    *hdr = (wr_hdr){.to = c->url,
                    .shell_id = shell_id,
                    .timeout_s = timeout_s,
                    .max_envelope = (unsigned)c->pl->set.max_envelope};
}

static int parse_auth(const opsc_credential *cred, wr_auth *out, char *err, size_t errlen)
{
    const char *a = cred && cred->auth && cred->auth[0] ? cred->auth : "ntlm";
    if (!strcmp(a, "basic"))
        *out = WR_AUTH_BASIC;
    else if (!strcmp(a, "ntlm") || !strcmp(a, "negotiate"))
        *out = WR_AUTH_NTLM;
    else if (!strcmp(a, "kerberos"))
        *out = WR_AUTH_KERBEROS;
    else if (!strcmp(a, "certificate"))
        *out = WR_AUTH_CERT;
    else {
        wr_errf(err, errlen,
                "unknown WinRM auth method '%.32s' (basic, ntlm, kerberos, certificate)", a);
        return OPSC_EINVAL;
    }
    return 0;
}

static int check_auth(opsc_conn *c, const opsc_credential *cred, char *err, size_t errlen)
{
    if (!cred || !cred->type || strcmp(cred->type, "winrm")) {
        wr_errf(err, errlen, "the WinRM transport needs a credential of type winrm");
        return OPSC_EAUTH;
    }
    if (c->auth == WR_AUTH_CERT) {
        if (!c->opt.https || !cred->certificate || !strstr(cred->certificate, "PRIVATE KEY")) {
            wr_errf(err, errlen,
                    "certificate authentication needs HTTPS and a PEM client certificate with its "
                    "key in the credential");
            return OPSC_EAUTH;
        }
        return 0;
    }
    if (!cred->username || !cred->username[0] || !cred->password) {
        wr_errf(err, errlen, "the credential needs a username and a password");
        return OPSC_EAUTH;
    }
    if (c->auth == WR_AUTH_BASIC && !c->opt.https && !c->opt.allow_unencrypted) {
        wr_errf(err, errlen,
                "Basic authentication over plain HTTP would send the password in clear: use "
                "https, NTLM or Kerberos (or set transport_options.allow_unencrypted)");
        return OPSC_EAUTH;
    }
    return 0;
}

static int build_url(opsc_conn *c, const opsc_target *t)
{
    int port = t->port > 0 ? t->port : 0;
    if (!c->opt.scheme_set)
        c->opt.https = port ? port != 5985 : false;
    if (!port)
        port = c->opt.https ? 5986 : 5985;
    bool v6 = strchr(t->address, ':') != NULL;
    wr_copy(c->host, sizeof c->host, t->address);
    int n = snprintf(c->url, sizeof c->url, "%s://%s%s%s:%d%s", c->opt.https ? "https" : "http",
                     v6 ? "[" : "", t->address, v6 ? "]" : "", port, c->opt.path);
    return n > 0 && (size_t)n < sizeof c->url ? 0 : OPSC_EINVAL;
}

static int open_channels(opsc_conn *c, const opsc_credential *cred, char *err, size_t errlen)
{
    char user[512] = "";
    if (c->auth == WR_AUTH_BASIC)
        snprintf(user, sizeof user, "%s%s%s", cred->domain && cred->domain[0] ? cred->domain : "",
                 cred->domain && cred->domain[0] ? "\\" : "", cred->username);
    wr_http_opts ho = {
        .url = c->url,
        .connect_timeout_ms = c->connect_timeout_ms,
        .verify = c->opt.verify,
        .ca_bundle = c->opt.ca_bundle,
        .pin_sha256 = c->opt.fingerprint[0] ? c->opt.fingerprint : NULL,
        .client_pem = c->auth == WR_AUTH_CERT ? cred->certificate : NULL,
        .basic_user = c->auth == WR_AUTH_BASIC ? user : NULL,
        .basic_password = c->auth == WR_AUTH_BASIC ? cred->password : NULL,
    };
    for (int i = 0; i < 2; i++) {
        wr_chan_init(&c->ch[i], c, err, errlen);
        /* Both channels get their material now: the credential is gone after connect. */
        c->ch[i].http = wr_http_new(c->pl->api->loop(), &ho, err, errlen);
        if (!c->ch[i].http) {
            explicit_bzero(user, sizeof user);
            return OPSC_EINVAL;
        }
    }
    explicit_bzero(user, sizeof user);
    return 0;
}

static void conn_free(opsc_conn *c)
{
    for (int i = 0; i < 2; i++)
        wr_chan_free(&c->ch[i]);
    wr_gss_cred_release(&c->cred);
    wr_options_free(&c->opt);
    free(c->shell_id);
    free(c->shell_key);
    free(c);
}

static void defer_closed(uv_handle_t *h)
{
    opsc_conn *c = h->data;
    opsc_close_cb cb = c->close_cb;
    void *ud = c->close_ud;
    opsc_connect_cb failed_cb = c->connect_cb;
    void *connect_ud = c->connect_ud;
    int status = c->connect_status;
    char msg[sizeof c->connect_err];
    wr_copy(msg, sizeof msg, c->connect_err);
    conn_free(c);
    if (failed_cb)
        failed_cb(connect_ud, status, NULL, NULL, msg); /* a failed connect, now fully undone */
    else if (cb)
        cb(ud);
}

static void http_freed(void *ud)
{
    opsc_conn *c = ud;
    if (--c->http_open == 0)
        uv_close((uv_handle_t *)&c->defer, defer_closed);
}

/* Frees everything; the close callback runs only once libuv has closed every handle
 * of both HTTP connections (nothing of the plugin is left on the loop after it). */
static void conn_release(opsc_conn *c)
{
    if (c->released)
        return;
    c->released = true;
    c->http_open = 1; /* held until every channel is handed over */
    for (int i = 0; i < 2; i++) {
        if (!c->ch[i].http)
            continue;
        c->http_open++;
        wr_http_free(c->ch[i].http, http_freed, c);
        c->ch[i].http = NULL;
    }
    http_freed(c);
}

/* ---- connect ---------------------------------------------------------------- */

static void connect_done(opsc_conn *c, int status, const char *error)
{
    if (status < 0) {
        /* Reported once everything is freed (defer_closed): after a failed connect
         * nothing of the plugin is left on the loop. */
        char msg[sizeof c->connect_err];
        wr_copy(msg, sizeof msg, error ? error : opsc_strerror(status));
        wr_copy(c->connect_err, sizeof c->connect_err, msg);
        c->connect_status = status;
        c->close_cb = NULL;
        conn_release(c);
        return;
    }
    opsc_connect_cb cb = c->connect_cb;
    c->connect_cb = NULL;
    opsc_conn_info info = {.size = sizeof info, .server_banner = "WS-Management"};
    if (c->opt.https && !c->opt.verify && !c->opt.fingerprint[0])
        info.warning = "the WinRM host's certificate is not verified (transport_options.verify "
                       "is false)";
    else if (c->auth == WR_AUTH_BASIC && !c->opt.https)
        info.warning = "Basic authentication over plain HTTP: the password crosses the network "
                       "in clear (transport_options.allow_unencrypted)";
    cb(c->connect_ud, 0, c, &info, NULL);
}

static void on_first_shell(void *ud, int status, wr_resp *resp, const char *error)
{
    opsc_conn *c = ud;
    c->pending--;
    char msg[600];
    if (status == 0 && resp->fault) {
        wr_soap_fault_describe(resp, msg, sizeof msg);
        status = resp->fault_code == WR_FAULT_ACCESS_DENIED ? OPSC_EAUTH : OPSC_EREMOTE;
        error = msg;
    } else if (status == 0 && !resp->shell_id) {
        status = OPSC_EPROTO;
        error = "CreateResponse without a ShellId";
    }
    if (status == 0) {
        c->shell_id = strdup(resp->shell_id);
        c->shell_key = strdup("");
        if (!c->shell_id || !c->shell_key)
            status = OPSC_ENOMEM;
    }
    connect_done(c, status, error);
}

/* Creates the first shell: proves the endpoint, the authentication and (with
 * NTLM/Kerberos over HTTP) the message encryption in one round. */
static int create_first_shell(opsc_conn *c)
{
    wr_hdr hdr;
    wr_buf soap = {0};
    wr_conn_hdr(c, &hdr, NULL, 60);
    wr_soap_create(&soap, &hdr, NULL, NULL, (unsigned)c->pl->set.codepage);
    uint32_t to = c->connect_timeout_ms ? c->connect_timeout_ms : 60000;
    int rc = wr_chan_call(&c->ch[0], &soap, hdr.message_id, to, on_first_shell, c);
    wr_buf_free(&soap);
    if (rc)
        wr_copy(c->connect_err, sizeof c->connect_err, c->ch[0].sync_err);
    else
        c->pending++;
    return rc;
}

/* The worker's own copy of the credential, wiped as soon as the ticket is in. */
typedef struct krb_acquire {
    opsc_conn *c;
    char user[256], domain[256], password[512];
    int rc;
    char err[400];
} krb_acquire;

static void krb_acquire_work(void *ud)
{
    krb_acquire *k = ud;
    k->rc = wr_gss_cred_acquire(&k->c->cred, WR_MECH_KERBEROS, k->user, k->domain, k->password,
                                k->err, sizeof k->err);
    explicit_bzero(k->password, sizeof k->password);
}

static void krb_acquire_after(void *ud, int status)
{
    krb_acquire *k = ud;
    opsc_conn *c = k->c;
    int rc = status ? status : k->rc;
    char err[400];
    wr_copy(err, sizeof err, status ? "stopped" : k->err);
    free(k);
    c->pending--;
    if (!rc && (rc = create_first_shell(c)))
        wr_copy(err, sizeof err, c->connect_err);
    if (rc)
        connect_done(c, rc, err);
}

static void on_defer(uv_timer_t *t)
{
    opsc_conn *c = t->data;
    connect_done(c, c->connect_status, c->connect_err);
}

static int start_auth(opsc_conn *c, const opsc_credential *cred, char *err, size_t errlen)
{
    if (c->auth == WR_AUTH_NTLM) {
        /* gss-ntlmssp derives the NT hash here, CPU only; the password is not kept. */
        int rc = wr_gss_cred_acquire(&c->cred, WR_MECH_NTLM, cred->username, cred->domain,
                                     cred->password, err, errlen);
        return rc ? rc : create_first_shell(c);
    }
    if (c->auth == WR_AUTH_KERBEROS) {
        krb_acquire *k = calloc(1, sizeof *k);
        if (!k)
            return OPSC_ENOMEM;
        k->c = c;
        if (strlen(cred->password) >= sizeof k->password) {
            free(k);
            wr_errf(err, errlen, "the password is too long");
            return OPSC_EINVAL;
        }
        wr_copy(k->user, sizeof k->user, cred->username);
        wr_copy(k->domain, sizeof k->domain, cred->domain);
        wr_copy(k->password, sizeof k->password, cred->password);
        int rc = c->pl->api->queue_work(krb_acquire_work, krb_acquire_after, k);
        if (rc) {
            explicit_bzero(k, sizeof *k);
            free(k);
        } else
            c->pending++;
        return rc;
    }
    return create_first_shell(c);
}

int wr_connect(void *state, const opsc_target *target, const opsc_credential *cred,
               opsc_connect_cb cb, void *ud)
{
    wr_plugin *pl = state;
    char err[600] = "";
    opsc_conn *c = calloc(1, sizeof *c);
    if (!c)
        return OPSC_ENOMEM;
    c->pl = pl;
    c->connect_cb = cb;
    c->connect_ud = ud;
    c->connect_timeout_ms = target->connect_timeout_ms;
    c->cred.cred = GSS_C_NO_CREDENTIAL;
    uv_timer_init(pl->api->loop(), &c->defer);
    c->defer.data = c;
    int rc = wr_options_parse(target->options_json, &c->opt, err, sizeof err);
    if (!rc)
        rc = parse_auth(cred, &c->auth, err, sizeof err);
    if (!rc && (rc = build_url(c, target)))
        snprintf(err, sizeof err, "target address too long");
    if (!rc)
        rc = check_auth(c, cred, err, sizeof err);
    c->encrypt = !c->opt.https && (c->auth == WR_AUTH_NTLM || c->auth == WR_AUTH_KERBEROS);
    if (!rc)
        rc = open_channels(c, cred, err, sizeof err);
    if (!rc)
        rc = start_auth(c, cred, err, sizeof err);
    if (rc && !err[0])
        wr_copy(err, sizeof err, c->connect_err[0] ? c->connect_err : opsc_strerror(rc));
    if (rc) {
        /* Report through the callback, as the failure can have a useful message. */
        c->connect_status = rc;
        wr_copy(c->connect_err, sizeof c->connect_err, err);
        uv_timer_start(&c->defer, on_defer, 0, 0);
    }
    pl->api->log(WR_COMPONENT, OPSC_LOG_DEBUG, "connect %s (%s) %s", c->url,
                 c->auth == WR_AUTH_BASIC  ? "basic"
                 : c->auth == WR_AUTH_NTLM ? "ntlm"
                 : c->auth == WR_AUTH_CERT ? "certificate"
                                           : "kerberos",
                 rc ? "failed" : "started");
    return 0;
}

bool wr_conn_usable(opsc_conn *c)
{
    return !c->broken && !c->closing && !c->op;
}

/* ---- close ------------------------------------------------------------------ */

static void close_finish(opsc_conn *c)
{
    if (c->pending > 0 || c->op || c->ops_closing)
        return;
    for (int i = 0; i < 2; i++)
        if (c->ch[i].worker)
            return; /* krb_after comes back and calls wr_conn_op_done */
    conn_release(c);
}

static void on_delete(void *ud, int status, wr_resp *resp, const char *error)
{
    opsc_conn *c = ud;
    (void)status;
    (void)resp;
    (void)error;
    c->pending--;
    close_finish(c);
}

static void delete_shell(opsc_conn *c)
{
    if (!c->shell_id || c->broken || c->ch[0].busy)
        return;
    wr_hdr hdr;
    wr_buf soap = {0};
    wr_conn_hdr(c, &hdr, c->shell_id, 20);
    wr_soap_delete(&soap, &hdr);
    if (!wr_chan_call(&c->ch[0], &soap, hdr.message_id, 20000, on_delete, c))
        c->pending++;
    wr_buf_free(&soap);
}

/* ---- a previous daemon's shell ---------------------------------------------------- */

typedef struct orphan_call {
    opsc_conn *c;
    opsc_kill_cb cb;
    void *ud;
} orphan_call;

static void on_orphan_deleted(void *ud, int status, wr_resp *resp, const char *error)
{
    orphan_call *o = ud;
    o->c->pending--; /* a close waits for it, as for the delete of its own shell */
    if (status < 0)
        o->cb(o->ud, status, error ? error : "the shell could not be deleted");
    else if (resp->fault && resp->fault_code == WR_FAULT_UNKNOWN_SHELL)
        o->cb(o->ud, 0, "the shell is gone already");
    else if (resp->fault)
        o->cb(o->ud, OPSC_EREMOTE, "the host refused to delete the shell");
    else
        o->cb(o->ud, 1, "the shell was deleted");
    opsc_conn *c = o->c;
    free(o);
    if (c->closing)
        close_finish(c);
}

int wr_kill_orphan(opsc_conn *c, const char *handle, opsc_kill_cb cb, void *ud)
{
    if (!handle || strncmp(handle, "winrm:", 6) != 0 || !handle[6] || !cb)
        return OPSC_EINVAL;
    if (c->closing || c->broken || c->ch[0].busy)
        return OPSC_EBUSY;
    orphan_call *o = calloc(1, sizeof(*o));
    if (!o)
        return OPSC_ENOMEM;
    o->c = c;
    o->cb = cb;
    o->ud = ud;
    wr_hdr hdr;
    wr_buf soap = {0};
    wr_conn_hdr(c, &hdr, handle + 6, 20);
    wr_soap_delete(&soap, &hdr);
    int rc = wr_chan_call(&c->ch[0], &soap, hdr.message_id, 20000, on_orphan_deleted, o);
    wr_buf_free(&soap);
    if (rc) {
        free(o);
        return OPSC_EIO;
    }
    c->pending++;
    return 0;
}

void wr_conn_op_done(opsc_conn *c)
{
    if (!c->closing)
        return;
    if (c->shell_id && !c->pending) {
        delete_shell(c);
        free(c->shell_id);
        c->shell_id = NULL;
    }
    close_finish(c);
}

void wr_conn_close(opsc_conn *c, opsc_close_cb cb, void *ud)
{
    c->closing = true;
    c->close_cb = cb;
    c->close_ud = ud;
    if (c->op) {
        /* Its on_done runs with OPSC_ECANCELED; wr_conn_op_done continues the close. */
        wr_run_stop(c->op, OPSC_ECANCELED);
        return;
    }
    wr_conn_op_done(c);
}
