/* email.c - notifier "email": SMTP with STARTTLS (smtp://, required unless the channel says
 * otherwise) or implicit TLS (smtps://), AUTH with the channel's secret as the password, a MIME
 * message with a plain-text and an HTML part, Message-ID from the delivery id (the same on every
 * attempt). Certificates are verified (system store, a CA bundle or a pinned fingerprint). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <opsc/plugin.h>

#include "email_settings.h"
#include "nhttp.h"

static const opsc_host_api *host;

/* ---- addresses ---------------------------------------------------------------------------- */

/* The address in "Name <a@b>" or "a@b", copied into out; false when malformed. */
static bool address_of(const char *text, char *out, size_t n)
{
    const char *lt = strchr(text, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    const char *a = lt ? lt + 1 : text;
    size_t len = gt ? (size_t)(gt - a) : strlen(a);
    if (len < 3 || len >= n || strpbrk(text, "\r\n") || (lt && !gt))
        return false;
    memcpy(out, a, len);
    out[len] = '\0';
    const char *at = strchr(out, '@');
    return at && at != out && at[1] && !strpbrk(out, " <>,;\"");
}

static int check_addresses(const json_t *s, char *err, size_t errlen)
{
    char a[320];
    if (!address_of(nset_str(s, "from"), a, sizeof(a))) {
        snprintf(err, errlen, "settings.from: an address (\"OpsConductor <ops@example.com>\")");
        return OPSC_ESCHEMA;
    }
    size_t i;
    json_t *to;
    json_array_foreach(json_object_get(s, "to"), i, to)
    {
        if (!address_of(json_string_value(to), a, sizeof(a))) {
            snprintf(err, errlen, "settings.to[%zu]: not an email address", i);
            return OPSC_ESCHEMA;
        }
    }
    return 0;
}

static int validate(void *state, const char *settings_json, char *err, size_t errlen)
{
    (void)state;
    json_t *s = nset_parse(settings_json, err, errlen);
    int rc = s ? check_addresses(s, err, errlen) : OPSC_ESCHEMA;
    const char *url = nset_str(s, "url");
    if (rc == 0 && (!url || (strncmp(url, "smtp://", 7) && strncmp(url, "smtps://", 8)) ||
                    strpbrk(url, " \r\n"))) {
        snprintf(err, errlen, "settings.url: smtp://host:587 or smtps://host:465");
        rc = OPSC_ESCHEMA;
    }
    ntls t;
    if (rc == 0 && ntls_parse(s, &t, err, errlen) < 0)
        rc = OPSC_ESCHEMA;
    json_decref(s);
    return rc;
}

/* ---- the message ------------------------------------------------------------------------------
 */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* Base64 in lines of 76 characters (RFC 2045). */
static void put_b64(buf *b, const char *text)
{
    size_t len = strlen(text);
    unsigned char line[80];
    for (size_t i = 0; i < len; i += 57) {
        size_t n = len - i < 57 ? len - i : 57;
        int out = EVP_EncodeBlock(line, (const unsigned char *)text + i, (int)n);
        put(b, (const char *)line, (size_t)out);
        puts_(b, "\r\n");
    }
}

static bool ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s > 126 || (unsigned char)*s < 32)
            return false;
    return true;
}

/* A header value: as is when plain ASCII, else an RFC 2047 encoded word. */
static void put_header(buf *b, const char *name, const char *value)
{
    puts_(b, name);
    puts_(b, ": ");
    if (ascii(value)) {
        puts_(b, value);
    } else {
        size_t len = strlen(value);
        unsigned char *enc = malloc(len * 4 / 3 + 8);
        if (enc) {
            EVP_EncodeBlock(enc, (const unsigned char *)value, (int)len);
            puts_(b, "=?UTF-8?B?");
            puts_(b, (const char *)enc);
            puts_(b, "?=");
        }
        free(enc);
    }
    puts_(b, "\r\n");
}

static void put_html_escaped(buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            puts_(b, "&lt;");
            break;
        case '>':
            puts_(b, "&gt;");
            break;
        case '&':
            puts_(b, "&amp;");
            break;
        case '"':
            puts_(b, "&quot;");
            break;
        default:
            put(b, s, 1);
        }
    }
}

static char *html_of(const opsc_notify_msg *msg)
{
    buf h = {0};
    puts_(&h, "<!DOCTYPE html><html><body style=\"font-family:sans-serif\"><h2>");
    put_html_escaped(&h, msg->subject);
    puts_(&h, "</h2><pre style=\"font-family:monospace;white-space:pre-wrap\">");
    put_html_escaped(&h, msg->text ? msg->text : "");
    puts_(&h, "</pre>");
    if (msg->link) {
        puts_(&h, "<p><a href=\"");
        put_html_escaped(&h, msg->link);
        puts_(&h, "\">Open in OpsConductor</a></p>");
    }
    puts_(&h, "</body></html>");
    return h.p;
}

static void put_recipients(buf *b, const json_t *rcpt)
{
    puts_(b, "To: ");
    size_t i;
    json_t *a;
    json_array_foreach(rcpt, i, a)
    {
        if (i)
            puts_(b, ", ");
        puts_(b, json_string_value(a));
    }
    puts_(b, "\r\n");
}

static char *message_of(const opsc_notify_msg *msg, const json_t *s, const json_t *rcpt)
{
    char domain[256] = "opsconductor.invalid", from[320], date[64], line[400];
    if (address_of(nset_str(s, "from"), from, sizeof(from)))
        snprintf(domain, sizeof(domain), "%s", strchr(from, '@') + 1);
    time_t now = (time_t)(host->now_ms() / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    buf b = {0};
    put_header(&b, "From", nset_str(s, "from"));
    put_recipients(&b, rcpt);
    put_header(&b, "Subject", msg->subject);
    put_header(&b, "Date", date);
    snprintf(line, sizeof(line), "<%s@%s>", msg->id, domain);
    put_header(&b, "Message-ID", line);
    put_header(&b, "MIME-Version", "1.0");
    put_header(&b, "Auto-Submitted", "auto-generated");
    put_header(&b, "X-OpsConductor-Event", msg->event);
    snprintf(line, sizeof(line), "multipart/alternative; boundary=\"opsc-%s\"", msg->id);
    put_header(&b, "Content-Type", line);
    snprintf(line, sizeof(line),
             "\r\n--opsc-%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
             "Content-Transfer-Encoding: base64\r\n\r\n",
             msg->id);
    puts_(&b, line);
    put_b64(&b, msg->text ? msg->text : "");
    snprintf(line, sizeof(line),
             "--opsc-%s\r\nContent-Type: text/html; charset=utf-8\r\n"
             "Content-Transfer-Encoding: base64\r\n\r\n",
             msg->id);
    puts_(&b, line);
    char *html = html_of(msg);
    put_b64(&b, html ? html : "");
    free(html);
    snprintf(line, sizeof(line), "--opsc-%s--\r\n", msg->id);
    puts_(&b, line);
    return b.p;
}

/* ---- the transfer ------------------------------------------------------------------------------
 */

typedef struct mail {
    char *text;
    size_t len, off;
    struct curl_slist *rcpt;
    ntls tls;
    bool tls_required;
} mail;

static void mail_free(void *p)
{
    mail *m = p;
    free(m->text);
    curl_slist_free_all(m->rcpt);
    free(m);
}

static size_t on_read(char *dst, size_t size, size_t n, void *ud)
{
    mail *m = ud;
    size_t room = size * n, left = m->len - m->off;
    size_t take = left < room ? left : room;
    memcpy(dst, m->text + m->off, take);
    m->off += take;
    return take;
}

/* SMTP's answer: 4xx is worth another try, 5xx is not. */
static int on_end(CURL *easy, int result, void *extra, bool *retryable, char *err, size_t errlen)
{
    mail *m = extra;
    long code = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    if (result == CURLE_OK)
        return 0;
    if (result == CURLE_USE_SSL_FAILED) {
        snprintf(err, errlen,
                 "the SMTP server does not offer STARTTLS and the channel requires "
                 "TLS (settings.starttls)");
        *retryable = false;
        return OPSC_EPROTO;
    }
    if (result == CURLE_LOGIN_DENIED) {
        snprintf(err, errlen, "the SMTP server refused the login (SMTP %ld)", code);
        *retryable = false;
        return OPSC_EAUTH;
    }
    if (code >= 400 && code < 600) {
        size_t len = strlen(err);
        snprintf(err + len, errlen - len, " (SMTP %ld)", code);
        *retryable = code < 500;
        return OPSC_EREMOTE;
    }
    (void)m;
    return *retryable ? OPSC_EIO : OPSC_EPROTO;
}

static struct curl_slist *recipients(const opsc_notify_msg *msg, const json_t *s, json_t *all)
{
    struct curl_slist *list = NULL;
    json_t *extra = OPSC_NOTIFY_MSG_HAS(msg, recipients_json) && msg->recipients_json
                        ? json_loads(msg->recipients_json, 0, NULL)
                        : NULL;
    json_array_extend(all, json_object_get(s, "to"));
    if (json_is_array(extra))
        json_array_extend(all, extra);
    json_decref(extra);
    size_t i;
    json_t *a;
    json_array_foreach(all, i, a)
    {
        char addr[320], line[330];
        if (!json_string_value(a) || !address_of(json_string_value(a), addr, sizeof(addr)))
            continue;
        snprintf(line, sizeof(line), "<%s>", addr);
        list = curl_slist_append(list, line);
    }
    return list;
}

static void setup(CURL *easy, mail *m, const json_t *s, const char *secret, char *from)
{
    const char *url = nset_str(s, "url"), *tls = nset_str(s, "starttls");
    bool implicit = strncmp(url, "smtps://", 8) == 0;
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(easy, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, m->rcpt);
    curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(easy, CURLOPT_READDATA, m);
    curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)m->len);
    curl_easy_setopt(easy, CURLOPT_USE_SSL,
                     implicit || !tls || strcmp(tls, "required") == 0 ? (long)CURLUSESSL_ALL
                     : strcmp(tls, "optional") == 0                   ? (long)CURLUSESSL_TRY
                                                                      : (long)CURLUSESSL_NONE);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                     (long)json_integer_value(json_object_get(s, "timeout_s")) * 1000 ?: 30000L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    /* A session authenticated as one channel must never carry another's mail. */
    curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
    if (nset_str(s, "username") && secret) {
        curl_easy_setopt(easy, CURLOPT_USERNAME, nset_str(s, "username"));
        curl_easy_setopt(easy, CURLOPT_PASSWORD, secret); /* copied by libcurl */
    }
    ntls_apply(easy, &m->tls);
}

static int send_msg(void *state, const opsc_notify_msg *msg, const char *settings_json,
                    const char *secret, opsc_notify_done_cb done, void *ud)
{
    (void)state;
    char err[256], addr[320], from[330];
    json_t *s = nset_parse(settings_json, err, sizeof(err)), *all = json_array();
    mail *m = calloc(1, sizeof(*m));
    CURL *easy = curl_easy_init();
    int rc = s && m && easy && all ? 0 : OPSC_ENOMEM;
    if (rc == 0 && (!address_of(nset_str(s, "from"), addr, sizeof(addr)) ||
                    ntls_parse(s, &m->tls, err, sizeof(err)) < 0 || !nset_str(s, "url")))
        rc = OPSC_EINVAL;
    if (rc == 0 && !(m->rcpt = recipients(msg, s, all)))
        rc = OPSC_EINVAL; /* nobody to write to */
    if (rc == 0 && !(m->text = message_of(msg, s, all)))
        rc = OPSC_ENOMEM;
    if (rc == 0) {
        m->len = strlen(m->text);
        snprintf(from, sizeof(from), "<%s>", addr);
        setup(easy, m, s, secret, from);
        m->tls.ca_bundle = m->tls.fingerprint = NULL; /* applied: `s` goes now */
        rc = nhttp_run(host, easy, NULL, m, mail_free, on_end, done, ud);
        easy = NULL;
        m = NULL;
    }
    if (easy)
        curl_easy_cleanup(easy);
    if (m)
        mail_free(m);
    json_decref(all);
    json_decref(s);
    return rc;
}

static const opsc_notifier email = {
    .size = sizeof(opsc_notifier),
    .name = "email",
    .summary = "email over SMTP (STARTTLS or TLS, AUTH): plain text and HTML",
    .settings_schema = J_settings,
    .validate = validate,
    .send = send_msg,
};

static int init(const opsc_host_api *api, const opsc_config *cfg, void **state)
{
    (void)cfg;
    host = api;
    *state = NULL;
    return nplugin_init(api, "notify-email", &email);
}

OPSC_PLUGIN_DEFINE("notify-email", "1.0.0", OPSC_KIND_NOTIFIER,
                   "Email notifications over SMTP with STARTTLS or TLS", "Apache-2.0", init,
                   nplugin_shutdown)
