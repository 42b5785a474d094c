/* wr_chan.c - one authenticated, optionally sealed WS-Man HTTP connection: handshake, call,
 * response. */
#include <string.h>

#include <opsc/errors.h>

#include "wr_crypt.h"
#include "wr_internal.h"

#define CERT_AUTH_HEADER "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"
#define AUTH_TIMEOUT_MS  60000

static void send_request(wr_chan *ch);
static void start_auth(wr_chan *ch);

static bool gss_auth(const opsc_conn *c)
{
    return c->auth == WR_AUTH_NTLM || c->auth == WR_AUTH_KERBEROS;
}

static void finish(wr_chan *ch, int status, wr_resp *resp, const char *error)
{
    ch->busy = false;
    ch->authing = false;
    wr_buf_wipe(&ch->soap);
    wr_buf_reset(&ch->wire);
    if (status < 0)
        ch->authed = false;
    if (ch->in_call) {
        /* Failed before anything went out: wr_chan_call returns the error itself. */
        ch->sync_status = status;
        wr_copy(ch->sync_err, sizeof ch->sync_err, error ? error : "");
        return;
    }
    ch->cb(ch->ud, status, resp, error);
}

static void failf(wr_chan *ch, int status, const char *fmt, const char *detail)
{
    char msg[600];
    wr_errf(msg, sizeof msg, fmt, detail ? detail : "");
    finish(ch, status, NULL, msg);
}

int wr_chan_init(wr_chan *ch, opsc_conn *c, char *err, size_t errlen)
{
    *ch = (wr_chan){.conn = c};
    ch->gss = (wr_gss_ctx){.ctx = GSS_C_NO_CONTEXT, .target = GSS_C_NO_NAME};
    wr_copy(ch->scheme, sizeof ch->scheme, "Negotiate");
    return 0;
    (void)err;
    (void)errlen;
}

void wr_chan_free(wr_chan *ch)
{
    if (ch->http)
        wr_http_free(ch->http, NULL, NULL);
    ch->http = NULL;
    wr_gss_ctx_free(&ch->gss);
    wr_buf_wipe(&ch->soap);
    wr_buf_wipe(&ch->wire);
    wr_buf_wipe(&ch->plain);
    wr_buf_free(&ch->tok);
}

void wr_chan_abort(wr_chan *ch)
{
    if (!ch->busy)
        return;
    if (ch->worker) {
        /* A worker step cannot be stopped: its result is dropped (or used by the
         * next call, see wr_chan_call). */
        ch->abandoned = true;
        wr_buf_wipe(&ch->soap);
        return;
    }
    wr_http_abort(ch->http);
    ch->busy = false;
    ch->authing = false;
    ch->authed = false; /* the TCP connection is gone with its security context */
    wr_buf_wipe(&ch->soap);
}

/* The peer's token for our scheme in WWW-Authenticate lines, decoded into out. */
static bool find_token(const char *www, const char *scheme, wr_buf *out)
{
    size_t sl = strlen(scheme);
    for (const char *line = www; *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len > sl + 1 && !strncasecmp(line, scheme, sl) && line[sl] == ' ') {
            wr_buf_reset(out);
            if (!wr_buf_reserve(out, len))
                return false;
            long n = wr_b64_decode(line + sl + 1, len - sl - 1, (uint8_t *)out->p);
            if (n <= 0)
                return false;
            out->len = (size_t)n;
            return true;
        }
        line += len + (eol ? 1 : 0);
    }
    return false;
}

static bool offers(const char *www, const char *scheme)
{
    size_t sl = strlen(scheme);
    for (const char *line = www; *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len >= sl && !strncasecmp(line, scheme, sl) && (len == sl || line[sl] == ' '))
            return true;
        line += len + (eol ? 1 : 0);
    }
    return false;
}

static void on_auth_resp(void *ud, const wr_http_resp *r);

static void post_token(wr_chan *ch, const wr_buf *tok)
{
    wr_buf hdr = {0};
    wr_buf_addf(&hdr, "%s ", ch->scheme);
    wr_b64_encode(&hdr, tok->p, tok->len);
    int rc = hdr.oom
                 ? OPSC_ENOMEM
                 : wr_http_post(ch->http, hdr.p, NULL, "", 0, AUTH_TIMEOUT_MS, on_auth_resp, ch);
    wr_buf_free(&hdr);
    ch->rounds++;
    if (rc)
        failf(ch, rc, "could not send the authentication request%s", "");
}

/* After a step: send our token, or go on with the request once established. */
static void after_step(wr_chan *ch, int rc, const char *err)
{
    if (rc) {
        failf(ch, rc, "%s", err);
        return;
    }
    if (ch->tok.len) {
        post_token(ch, &ch->tok);
        return;
    }
    if (!ch->gss.complete) {
        failf(ch, OPSC_EAUTH, "authentication did not complete%s", "");
        return;
    }
    ch->authing = false;
    ch->authed = true;
    send_request(ch);
}

static void krb_work(void *ud)
{
    wr_chan *ch = ud;
    ch->wrc = wr_gss_step(&ch->gss, &ch->conn->cred, NULL, 0, NULL, 0, &ch->tok, ch->werr,
                          sizeof ch->werr);
}

static void krb_after(void *ud, int status)
{
    wr_chan *ch = ud;
    ch->worker = false;
    ch->conn->pending--;
    if (ch->conn->closing || ch->abandoned) {
        ch->busy = false;
        ch->authing = false;
        ch->abandoned = false;
        if (ch->conn->closing)
            wr_conn_op_done(ch->conn); /* lets a pending close finish */
        return;
    }
    after_step(ch, status ? status : ch->wrc, status ? "stopped" : ch->werr);
}

static void step(wr_chan *ch, const void *in, size_t inlen)
{
    opsc_conn *c = ch->conn;
    wr_buf_reset(&ch->tok);
    if (c->auth == WR_AUTH_KERBEROS && !in) {
        /* The first Kerberos step may ask the KDC for a service ticket. */
        ch->worker = true;
        c->pending++;
        int rc = c->pl->api->queue_work(krb_work, krb_after, ch);
        if (rc) {
            ch->worker = false;
            c->pending--;
            failf(ch, rc, "could not queue the Kerberos step%s", "");
        }
        return;
    }
    char err[400];
    uint8_t binding[64];
    size_t blen = wr_http_tls_binding(ch->http, binding, sizeof binding);
    int rc = wr_gss_step(&ch->gss, &c->cred, in, inlen, binding, blen, &ch->tok, err, sizeof err);
    after_step(ch, rc, err);
}

static void start_auth(wr_chan *ch)
{
    opsc_conn *c = ch->conn;
    char err[300];
    wr_gss_ctx_free(&ch->gss);
    /* Raw NTLMSSP or Kerberos tokens, under either scheme (see wr_gss.c). */
    int rc =
        wr_gss_ctx_start(&ch->gss, c->opt.spn_host[0] ? c->opt.spn_host : c->host, err, sizeof err);
    if (rc) {
        failf(ch, rc, "%s", err);
        return;
    }
    ch->authing = true;
    ch->authed = false;
    ch->rounds = 0;
    step(ch, NULL, 0);
}

static void auth_refused(wr_chan *ch, const wr_http_resp *r)
{
    opsc_conn *c = ch->conn;
    const char *alt = c->auth == WR_AUTH_NTLM ? "NTLM" : "Kerberos";
    if (ch->rounds == 1 && !ch->tried_alt && strcmp(ch->scheme, alt) && offers(r->www_auth, alt) &&
        !offers(r->www_auth, ch->scheme)) {
        /* The host does not offer Negotiate: use the mechanism's own scheme. */
        ch->tried_alt = true;
        wr_copy(ch->scheme, sizeof ch->scheme, alt);
        start_auth(ch);
        return;
    }
    char offered[200] = "";
    size_t n = 0;
    for (const char *p = r->www_auth; *p && n + 2 < sizeof offered; p++) {
        if (*p == ' ' && (p == r->www_auth || p[-1] != ','))
            while (p[1] && p[1] != '\n')
                p++; /* drop tokens and realms: keep scheme names */
        else
            offered[n++] = *p == '\n' ? ',' : *p;
    }
    while (n && offered[n - 1] == ',')
        n--;
    offered[n] = '\0';
    char msg[400];
    wr_errf(msg, sizeof msg, "%s authentication refused by the host (HTTP %ld; offered: %s)",
            c->auth == WR_AUTH_NTLM ? "NTLM" : "Kerberos", r->code, n ? offered : "nothing");
    finish(ch, OPSC_EAUTH, NULL, msg);
}

static void on_auth_resp(void *ud, const wr_http_resp *r)
{
    wr_chan *ch = ud;
    if (r->status < 0) {
        failf(ch, r->status, "%s", r->error);
        return;
    }
    wr_buf in = {0};
    bool has_token = find_token(r->www_auth, ch->scheme, &in);
    if (r->code == 200 || (r->code == 401 && has_token && !ch->gss.complete)) {
        if (has_token && !ch->gss.complete) {
            char err[400];
            wr_buf_reset(&ch->tok);
            uint8_t binding[64];
            size_t blen = wr_http_tls_binding(ch->http, binding, sizeof binding);
            int rc = wr_gss_step(&ch->gss, &ch->conn->cred, in.p, in.len, binding, blen, &ch->tok,
                                 err, sizeof err);
            wr_buf_free(&in);
            if (r->code == 200 && !rc && ch->tok.len == 0 && !ch->gss.complete)
                rc = OPSC_EAUTH;
            after_step(ch, rc, rc ? err : NULL);
            return;
        }
        wr_buf_free(&in);
        if (r->code == 200 && ch->gss.complete) {
            ch->authing = false;
            ch->authed = true;
            send_request(ch);
            return;
        }
        failf(ch, OPSC_EAUTH, "authentication ended without a security context%s", "");
        return;
    }
    wr_buf_free(&in);
    if (r->code == 401) {
        auth_refused(ch, r);
        return;
    }
    char msg[200];
    wr_errf(msg, sizeof msg, "unexpected HTTP %ld during authentication", r->code);
    finish(ch, OPSC_EPROTO, NULL, msg);
}

static void on_call_resp(void *ud, const wr_http_resp *r);

static void send_request(wr_chan *ch)
{
    opsc_conn *c = ch->conn;
    char err[400] = "";
    const char *ctype = NULL;
    wr_buf ct = {0};
    const wr_buf *body = &ch->soap;
    if (c->encrypt) {
        const char *proto = !strcmp(ch->scheme, "Kerberos") ? WR_PROTO_KERBEROS : WR_PROTO_SPNEGO;
        wr_buf_reset(&ch->wire);
        int rc =
            wr_gss_seal_body(&ch->gss, proto, ch->soap.p, ch->soap.len, &ch->wire, err, sizeof err);
        if (rc) {
            failf(ch, rc, "%s", err);
            return;
        }
        wr_crypt_content_type(&ct, proto);
        ctype = ct.p;
        body = &ch->wire;
    }
    const char *authz = c->auth == WR_AUTH_CERT ? CERT_AUTH_HEADER : NULL;
    int rc =
        wr_http_post(ch->http, authz, ctype, body->p, body->len, ch->timeout_ms, on_call_resp, ch);
    wr_buf_free(&ct);
    if (rc)
        failf(ch, rc, "could not send the request%s", "");
}

static int read_body(wr_chan *ch, const wr_http_resp *r, const char **xml, size_t *len, char *err,
                     size_t errlen)
{
    *xml = (const char *)r->body;
    *len = r->body_len;
    if (strncasecmp(r->content_type, "multipart/encrypted", 19))
        return 0;
    if (!ch->gss.complete) {
        wr_errf(err, errlen, "encrypted response on a connection without a security context");
        return OPSC_EPROTO;
    }
    wr_buf_reset(&ch->plain);
    int rc = wr_gss_unseal_body(&ch->gss, r->body, r->body_len, &ch->plain, err, errlen);
    *xml = ch->plain.p;
    *len = ch->plain.len;
    return rc;
}

static void on_call_resp(void *ud, const wr_http_resp *r)
{
    wr_chan *ch = ud;
    opsc_conn *c = ch->conn;
    if (r->status < 0) {
        failf(ch, r->status, "%s", r->error);
        return;
    }
    if (r->retried) {
        failf(ch, OPSC_ECONNRESET,
              "the connection to the host dropped while a request was in flight%s", "");
        return;
    }
    if (r->code == 401 && gss_auth(c) && !ch->reauthed) {
        /* The host closed the authenticated connection between requests and curl
         * opened a new one: authenticate it and send the request again. */
        ch->reauthed = true;
        start_auth(ch);
        return;
    }
    if (r->code == 401) {
        failf(ch, OPSC_EAUTH, "the host refused the credentials (HTTP 401)%s", "");
        return;
    }
    if (r->code == 413) {
        failf(ch, OPSC_E2BIG, "the request exceeds the host's MaxEnvelopeSize (HTTP 413)%s", "");
        return;
    }
    if (r->code == 500 && r->body_len == 0) {
        failf(ch, OPSC_EPROTO, "HTTP 500 without a body: the host refused the request%s",
              c->encrypt || c->opt.https ? ""
                                         : " (a host with AllowUnencrypted=false refuses "
                                           "unencrypted messages: use NTLM or Kerberos, or HTTPS)");
        return;
    }
    if (r->code != 200 && r->code != 400 && r->code != 500) {
        char msg[120];
        wr_errf(msg, sizeof msg, "unexpected HTTP %ld from the WinRM endpoint", r->code);
        finish(ch, r->code == 404 ? OPSC_ENOENT : OPSC_EPROTO, NULL, msg);
        return;
    }
    char err[400] = "";
    const char *xml;
    size_t len;
    int rc = read_body(ch, r, &xml, &len, err, sizeof err);
    wr_resp resp;
    if (!rc)
        rc = wr_soap_parse(xml, len, ch->message_id, &resp, err, sizeof err);
    if (rc) {
        failf(ch, rc, "%s", err);
        return;
    }
    if (r->code != 200 && !resp.fault) {
        wr_resp_free(&resp);
        char msg[120];
        wr_errf(msg, sizeof msg, "HTTP %ld without a SOAP fault", r->code);
        finish(ch, OPSC_EPROTO, NULL, msg);
        return;
    }
    finish(ch, 0, &resp, NULL);
    wr_resp_free(&resp);
}

int wr_chan_call(wr_chan *ch, wr_buf *soap, const char *message_id, uint32_t timeout_ms,
                 wr_call_cb cb, void *ud)
{
    bool adopt = ch->busy && ch->worker && ch->abandoned;
    if (ch->busy && !adopt)
        return OPSC_EBUSY;
    if (!ch->http)
        return OPSC_ESTATE;
    wr_buf tmp = ch->soap;
    ch->soap = *soap;
    *soap = tmp;
    wr_buf_reset(soap);
    wr_copy(ch->message_id, sizeof ch->message_id, message_id);
    ch->timeout_ms = timeout_ms;
    ch->cb = cb;
    ch->ud = ud;
    ch->busy = true;
    ch->reauthed = false;
    if (adopt) {
        /* The handshake still running on a worker serves this request. */
        ch->abandoned = false;
        return 0;
    }
    ch->in_call = true;
    ch->sync_status = 0;
    if (gss_auth(ch->conn) && !ch->authed)
        start_auth(ch);
    else
        send_request(ch);
    ch->in_call = false;
    return ch->sync_status;
}
