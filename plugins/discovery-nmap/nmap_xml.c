/* nmap_xml.c - nmap's -oX stream: complete <host> elements, progress, and each host mapped to
 * a discovery host record (ports, SSH banner and host key from the banner and ssh-hostkey
 * scripts, the OS guess). */
#include "nmap_xml.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dx_os.h"
#include "dx_xml.h"

/* ---- the stream ---------------------------------------------------------------------------------
 */

static const char *find(const char *p, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    for (; end - p >= (ptrdiff_t)n; p++)
        if (memcmp(p, needle, n) == 0)
            return p;
    return NULL;
}

/* <taskprogress ... percent="12.34" .../> anywhere in [p, end). */
static void progress(nmap_stream *st, const char *p, const char *end)
{
    for (const char *t = find(p, end, "<taskprogress"); t; t = find(t + 1, end, "<taskprogress")) {
        const char *pc = find(t, end, "percent=\"");
        const char *close = find(t, end, ">");
        if (pc && close && pc < close) {
            double v = strtod(pc + 9, NULL);
            if (v >= 0 && v <= 100)
                st->percent = v;
        }
    }
}

/* Where a tag begins that has not ended yet, or `end`. */
static const char *unfinished_tag(const char *p, const char *end)
{
    for (const char *q = end; q > p; q--)
        if (q[-1] == '>')
            return end;
        else if (q[-1] == '<')
            return q - 1;
    return end;
}

int nmap_stream_feed(nmap_stream *st, const char *data, size_t n, nmap_host_fn fn, void *ud)
{
    if (st->len + n > NMAP_STREAM_MAX)
        return -1;
    if (st->len + n + 1 > st->cap) {
        size_t cap = (st->len + n + 1) * 2;
        char *b = realloc(st->buf, cap);
        if (!b)
            return -1;
        st->buf = b;
        st->cap = cap;
    }
    if (n)
        memcpy(st->buf + st->len, data, n);
    st->len += n;
    const char *p = st->buf, *end = st->buf + st->len;
    for (;;) {
        const char *start = find(p, end, "<host ");
        const char *stop = start ? find(start, end, "</host>") : NULL;
        if (!stop) {
            progress(st, p, start ? start : end);
            p = start ? start : unfinished_tag(p, end); /* keep what may still grow */
            break;
        }
        progress(st, p, start);
        stop += strlen("</host>");
        fn(ud, start, (size_t)(stop - start));
        p = stop;
    }
    st->len = (size_t)(end - p);
    memmove(st->buf, p, st->len);
    return 0;
}

void nmap_stream_free(nmap_stream *st)
{
    free(st->buf);
    memset(st, 0, sizeof(*st));
}

/* ---- one host
 * ------------------------------------------------------------------------------------ */

enum { PS_UNSEEN = 0, PS_OPEN, PS_CLOSED, PS_FILTERED };
static const char *const state_names[] = {"closed", "open", "closed", "filtered"};

typedef struct nhost {
    char address[64], hostname[256], banner[256];
    char key_type[64], fingerprint[64];
    int key_rank; /* lower is preferred, as the SSH transport prefers */
    int ssh_port;
    uint8_t state[1024]; /* per scan port */
    int extra;           /* the state of ports nmap summed up */
} nhost;

static int port_index(const uint16_t *ports, size_t n, const char *text)
{
    long v = strtol(text, NULL, 10);
    for (size_t i = 0; i < n; i++)
        if (ports[i] == v)
            return (int)i;
    return -1;
}

static int state_of(const char *s)
{
    return strcmp(s, "open") == 0 ? PS_OPEN : strcmp(s, "closed") == 0 ? PS_CLOSED : PS_FILTERED;
}

static int rank(const char *type)
{
    static const char *const order[] = {"ssh-ed25519",
                                        "ecdsa-sha2-nistp256",
                                        "ecdsa-sha2-nistp384",
                                        "ecdsa-sha2-nistp521",
                                        "ssh-rsa",
                                        "ssh-dss"};
    for (int i = 0; i < 6; i++)
        if (strcmp(type, order[i]) == 0)
            return i;
    return 6;
}

/* SHA256:<base64> of a base64 key blob, as ssh-keygen -l prints it. */
static bool fingerprint(const char *b64, char *out, size_t n)
{
    size_t len = strlen(b64);
    if (len == 0 || len % 4 || len > 4096)
        return false;
    unsigned char *blob = malloc(len);
    int got = blob ? EVP_DecodeBlock(blob, (const unsigned char *)b64, (int)len) : -1;
    for (size_t i = len; got > 0 && i > 0 && b64[i - 1] == '='; i--)
        got--;
    unsigned char md[EVP_MAX_MD_SIZE], enc[64];
    unsigned int mdlen = 0;
    bool ok = got > 0 && EVP_Digest(blob, (size_t)got, md, &mdlen, EVP_sha256(), NULL) == 1;
    free(blob);
    if (!ok)
        return false;
    int k = EVP_EncodeBlock(enc, md, (int)mdlen);
    while (k > 0 && enc[k - 1] == '=')
        k--;
    snprintf(out, n, "SHA256:%.*s", k, (const char *)enc);
    return true;
}

/* A <table> of the ssh-hostkey script: one key. */
static bool key_table(dx_xml *x, nhost *h, int port)
{
    char key[4200] = "", type[64] = "";
    dx_tok t;
    for (;;) {
        dx_kind k = dx_next(x, &t);
        if (k == DX_ERROR || k == DX_EOF)
            return false;
        if (k == DX_END)
            break;
        if (k != DX_START)
            continue;
        char name[16] = "";
        dx_attr(&t, "key", name, sizeof(name));
        char *dst = strcmp(name, "key") == 0 ? key : strcmp(name, "type") == 0 ? type : NULL;
        char skip[64];
        if (!dx_text(x, &t, dst ? dst : skip, dst == key ? sizeof(key) : sizeof(skip)))
            return false;
    }
    int r = rank(type);
    if (type[0] && (!h->fingerprint[0] || r < h->key_rank) &&
        fingerprint(key, h->fingerprint, sizeof(h->fingerprint))) {
        snprintf(h->key_type, sizeof(h->key_type), "%s", type);
        h->key_rank = r;
        h->ssh_port = port;
    }
    return true;
}

static bool script(dx_xml *x, const dx_tok *t, nhost *h, uint16_t number)
{
    char id[32] = "", out[256] = "";
    dx_attr(t, "id", id, sizeof(id));
    if (strcmp(id, "banner") == 0 && dx_attr(t, "output", out, sizeof(out)) &&
        strncmp(out, "SSH-", 4) == 0 && !h->banner[0]) {
        snprintf(h->banner, sizeof(h->banner), "%s", out);
        if (!h->ssh_port)
            h->ssh_port = number;
    }
    if (t->empty)
        return true;
    dx_tok k;
    for (;;) {
        dx_kind kind = dx_next(x, &k);
        if (kind == DX_ERROR || kind == DX_EOF)
            return false;
        if (kind == DX_END)
            return true;
        if (kind != DX_START)
            continue;
        bool ok = strcmp(id, "ssh-hostkey") == 0 && dx_is(&k, "table")
                      ? key_table(x, h, number)
                      : dx_text(x, &k, out, sizeof(out));
        if (!ok)
            return false;
    }
}

static bool element(dx_xml *x, const dx_tok *t, nhost *h, const uint16_t *ports, size_t n,
                    int *port)
{
    char v[256];
    if (dx_is(t, "address") && dx_attr(t, "addrtype", v, sizeof(v)) && strncmp(v, "ipv", 3) == 0)
        dx_attr(t, "addr", h->address, sizeof(h->address));
    else if (dx_is(t, "hostname") && !h->hostname[0])
        dx_attr(t, "name", h->hostname, sizeof(h->hostname));
    else if (dx_is(t, "port") && dx_attr(t, "portid", v, sizeof(v)))
        *port = port_index(ports, n, v);
    else if (dx_is(t, "state") && *port >= 0 && dx_attr(t, "state", v, sizeof(v)))
        h->state[*port] = (uint8_t)state_of(v);
    else if (dx_is(t, "extraports") && dx_attr(t, "state", v, sizeof(v)))
        h->extra = state_of(v);
    else if (dx_is(t, "script") && *port >= 0)
        return script(x, t, h, ports[*port]);
    return true;
}

static json_t *facts(const nhost *h, const uint16_t *ports, size_t n, const char **os)
{
    json_t *list = json_array(), *f = json_object(), *ev = json_array();
    bool p22 = false, winrm = false, any = false;
    for (size_t i = 0; i < n; i++) {
        int st = h->state[i] ? h->state[i] : h->extra;
        json_t *p = json_pack("{s:i, s:s}", "port", ports[i], "state", state_names[st]);
        if (st == PS_OPEN && h->ssh_port == ports[i] && h->banner[0])
            json_object_set_new(p, "service", json_string("ssh"));
        json_array_append_new(list, p);
        any = any || st == PS_OPEN;
        p22 = p22 || (st == PS_OPEN && ports[i] == 22);
        winrm = winrm || (st == PS_OPEN && (ports[i] == 5985 || ports[i] == 5986));
    }
    json_object_set_new(f, "ports", list);
    if (h->banner[0] || h->fingerprint[0]) {
        json_t *ssh = json_pack("{s:i}", "port", h->ssh_port);
        if (h->banner[0])
            json_object_set_new(ssh, "banner", json_string(h->banner));
        if (h->fingerprint[0]) {
            json_object_set_new(ssh, "host_key_type", json_string(h->key_type));
            json_object_set_new(ssh, "host_key_fingerprint", json_string(h->fingerprint));
        }
        json_object_set_new(f, "ssh", ssh);
    }
    dx_os_input in = {h->banner[0] ? h->banner : NULL, NULL, NULL, p22, winrm};
    *os = dx_os_guess(&in, ev);
    json_object_set_new(f, "os_evidence", ev);
    if (!any) {
        json_decref(f);
        return NULL;
    }
    return f;
}

json_t *nmap_host_parse(const char *xml, size_t len, const uint16_t *ports, size_t nports,
                        char *err, size_t errlen)
{
    err[0] = '\0';
    if (nports > sizeof(((nhost *)0)->state)) {
        snprintf(err, errlen, "more ports than the reader keeps");
        return NULL;
    }
    nhost *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->extra = PS_CLOSED;
    dx_xml x;
    dx_xml_init(&x, xml, len);
    dx_tok t;
    int port = -1;
    dx_kind k;
    while ((k = dx_next(&x, &t)) != DX_EOF && k != DX_ERROR) {
        if (k == DX_START && !element(&x, &t, h, ports, nports, &port))
            k = DX_ERROR;
        else if (k == DX_END && dx_is(&t, "port"))
            port = -1;
        if (k == DX_ERROR)
            break;
    }
    json_t *out = NULL;
    const char *os = NULL;
    if (k == DX_ERROR)
        snprintf(err, errlen, "malformed <host>: %s", x.err[0] ? x.err : "bad element");
    else if (!h->address[0])
        snprintf(err, errlen, "a <host> without an IP address");
    json_t *f = err[0] ? NULL : facts(h, ports, nports, &os);
    if (f)
        out = json_pack("{s:s, s:s?, s:s?, s:o}", "address", h->address, "hostname",
                        h->hostname[0] ? h->hostname : NULL, "os_family", os, "facts", f);
    free(h);
    return out;
}
