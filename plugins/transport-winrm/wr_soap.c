/* wr_soap.c - building MS-WSMV shell requests and reading their responses and faults. */
#include "wr_soap.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <opsc/errors.h>
#include <opsc/transport.h>

static const char *const action_uri[] = {
    [WR_CREATE] = WR_NS_X "/Create",     [WR_COMMAND] = WR_NS_RSP "/Command",
    [WR_RECEIVE] = WR_NS_RSP "/Receive", [WR_SEND] = WR_NS_RSP "/Send",
    [WR_SIGNAL] = WR_NS_RSP "/Signal",   [WR_DELETE] = WR_NS_X "/Delete",
};

void wr_uuid(char out[48])
{
    uint8_t r[16];
    if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        /* Only before the kernel's pool is ready (early boot): never block the loop for
         * it; ids need to be unique, not secret. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uintptr_t here = (uintptr_t)&ts;
        memcpy(r, &ts, sizeof ts < 16 ? sizeof ts : 16);
        memcpy(r + 8, &here, sizeof here);
    }
    r[6] = (uint8_t)((r[6] & 0x0F) | 0x40);
    r[8] = (uint8_t)((r[8] & 0x3F) | 0x80);
    snprintf(out, 48, "uuid:%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

void wr_soap_begin(wr_buf *b, wr_hdr *hdr, wr_action action, const char *const *options)
{
    wr_uuid(hdr->message_id);
    wr_buf_adds(b, "<s:Envelope xmlns:s=\"" WR_NS_S "\" xmlns:a=\"" WR_NS_A "\" xmlns:w=\"" WR_NS_W
                   "\" xmlns:p=\"" WR_NS_P "\" xmlns:rsp=\"" WR_NS_RSP "\"><s:Header><a:To>");
    wr_buf_add_xml(b, hdr->to, strlen(hdr->to));
    wr_buf_addf(b,
                "</a:To><a:ReplyTo><a:Address s:mustUnderstand=\"true\">" WR_NS_A
                "/role/anonymous</a:Address></a:ReplyTo>"
                "<a:Action s:mustUnderstand=\"true\">%s</a:Action>"
                "<w:MaxEnvelopeSize s:mustUnderstand=\"true\">%u</w:MaxEnvelopeSize>"
                "<a:MessageID>%s</a:MessageID>"
                "<w:Locale xml:lang=\"en-US\" s:mustUnderstand=\"false\"/>"
                "<p:DataLocale xml:lang=\"en-US\" s:mustUnderstand=\"false\"/>"
                "<w:OperationTimeout>PT%u.000S</w:OperationTimeout>"
                "<w:ResourceURI s:mustUnderstand=\"true\">" WR_RESOURCE_CMD "</w:ResourceURI>",
                action_uri[action], hdr->max_envelope, hdr->message_id, hdr->timeout_s);
    if (hdr->shell_id) {
        wr_buf_adds(b, "<w:SelectorSet><w:Selector Name=\"ShellId\">");
        wr_buf_add_xml(b, hdr->shell_id, strlen(hdr->shell_id));
        wr_buf_adds(b, "</w:Selector></w:SelectorSet>");
    }
    if (options && options[0]) {
        wr_buf_adds(b, "<w:OptionSet>");
        for (size_t i = 0; options[i]; i += 2)
            wr_buf_addf(b, "<w:Option Name=\"%s\">%s</w:Option>", options[i], options[i + 1]);
        wr_buf_adds(b, "</w:OptionSet>");
    }
    wr_buf_adds(b, "</s:Header><s:Body>");
}

void wr_soap_end(wr_buf *b)
{
    wr_buf_adds(b, "</s:Body></s:Envelope>");
}

void wr_soap_create(wr_buf *b, wr_hdr *hdr, const char *cwd, const char *const *env,
                    unsigned codepage)
{
    char cp[16];
    snprintf(cp, sizeof cp, "%u", codepage);
    const char *opts[] = {"WINRS_NOPROFILE", "FALSE", "WINRS_CODEPAGE", cp, NULL};
    hdr->shell_id = NULL;
    wr_soap_begin(b, hdr, WR_CREATE, opts);
    wr_buf_adds(b, "<rsp:Shell>");
    if (cwd && cwd[0]) {
        wr_buf_adds(b, "<rsp:WorkingDirectory>");
        wr_buf_add_xml(b, cwd, strlen(cwd));
        wr_buf_adds(b, "</rsp:WorkingDirectory>");
    }
    if (env && env[0]) {
        wr_buf_adds(b, "<rsp:Environment>");
        for (size_t i = 0; env[i]; i++) {
            const char *eq = strchr(env[i], '=');
            size_t nl = eq ? (size_t)(eq - env[i]) : strlen(env[i]);
            wr_buf_adds(b, "<rsp:Variable Name=\"");
            wr_buf_add_xml(b, env[i], nl);
            wr_buf_adds(b, "\">");
            if (eq)
                wr_buf_add_xml(b, eq + 1, strlen(eq + 1));
            wr_buf_adds(b, "</rsp:Variable>");
        }
        wr_buf_adds(b, "</rsp:Environment>");
    }
    wr_buf_adds(b, "<rsp:InputStreams>stdin</rsp:InputStreams>"
                   "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>");
    wr_soap_end(b);
}

void wr_soap_command(wr_buf *b, wr_hdr *hdr, const char *command, const char *args,
                     bool skip_cmd_shell)
{
    const char *opts[] = {"WINRS_CONSOLEMODE_STDIN", "TRUE", "WINRS_SKIP_CMD_SHELL",
                          skip_cmd_shell ? "TRUE" : "FALSE", NULL};
    wr_soap_begin(b, hdr, WR_COMMAND, opts);
    wr_buf_adds(b, "<rsp:CommandLine><rsp:Command>");
    wr_buf_add_xml(b, command, strlen(command));
    wr_buf_adds(b, "</rsp:Command>");
    if (args && args[0]) {
        wr_buf_adds(b, "<rsp:Arguments>");
        wr_buf_add_xml(b, args, strlen(args));
        wr_buf_adds(b, "</rsp:Arguments>");
    }
    wr_buf_adds(b, "</rsp:CommandLine>");
    wr_soap_end(b);
}

void wr_soap_receive(wr_buf *b, wr_hdr *hdr, const char *command_id)
{
    const char *opts[] = {"WSMAN_CMDSHELL_OPTION_KEEPALIVE", "TRUE", NULL};
    wr_soap_begin(b, hdr, WR_RECEIVE, opts);
    wr_buf_addf(b,
                "<rsp:Receive><rsp:DesiredStream CommandId=\"%s\">stdout stderr"
                "</rsp:DesiredStream></rsp:Receive>",
                command_id);
    wr_soap_end(b);
}

void wr_soap_send(wr_buf *b, wr_hdr *hdr, const char *command_id, const void *data, size_t len,
                  bool end)
{
    wr_soap_begin(b, hdr, WR_SEND, NULL);
    wr_buf_addf(b, "<rsp:Send><rsp:Stream Name=\"stdin\" CommandId=\"%s\"%s>", command_id,
                end ? " End=\"true\"" : "");
    wr_b64_encode(b, data, len);
    wr_buf_adds(b, "</rsp:Stream></rsp:Send>");
    wr_soap_end(b);
}

void wr_soap_signal(wr_buf *b, wr_hdr *hdr, const char *command_id, const char *code)
{
    wr_soap_begin(b, hdr, WR_SIGNAL, NULL);
    wr_buf_addf(b, "<rsp:Signal CommandId=\"%s\"><rsp:Code>%s</rsp:Code></rsp:Signal>", command_id,
                code);
    wr_soap_end(b);
}

void wr_soap_delete(wr_buf *b, wr_hdr *hdr)
{
    wr_soap_begin(b, hdr, WR_DELETE, NULL);
    wr_soap_end(b);
}

/* Copies text into out with runs of whitespace folded to one space. */
static void add_folded(char *out, size_t outlen, size_t *used, const char *text)
{
    bool space = *used > 0;
    for (const char *t = text; t && *t && *used + 1 < outlen; t++) {
        if (isspace((unsigned char)*t)) {
            space = *used > 0;
            continue;
        }
        if (space && *used + 2 < outlen)
            out[(*used)++] = ' ';
        space = false;
        out[(*used)++] = *t;
    }
    out[*used] = '\0';
}

static void parse_fault(wr_resp *r, const wx_node *fault)
{
    r->fault = true;
    const wx_node *code = wx_child(fault, WR_NS_S, "Code");
    const wx_node *sub = wx_child(code, WR_NS_S, "Subcode");
    r->fault_subcode = wx_child_text(sub, WR_NS_S, "Value");
    if (!r->fault_subcode)
        r->fault_subcode = wx_child_text(code, WR_NS_S, "Value");
    const wx_node *wf = wx_find(fault, WR_NS_F, "WSManFault");
    const char *c = wx_attr_get(wf, "Code");
    r->fault_code = c ? (uint32_t)strtoul(c, NULL, 10) : 0;
    size_t used = 0;
    const char *msg = wx_child_text(wf, WR_NS_F, "Message");
    const wx_node *reason = wx_child(fault, WR_NS_S, "Reason");
    const char *reason_text = wx_child_text(reason, WR_NS_S, "Text");
    add_folded(r->fault_text, sizeof r->fault_text, &used, reason_text);
    if (msg && (!reason_text || strcmp(msg, reason_text)) && strlen(msg) > 0) {
        if (used)
            add_folded(r->fault_text, sizeof r->fault_text, &used, " -");
        add_folded(r->fault_text, sizeof r->fault_text, &used, msg);
    }
}

static int to_int32(const char *s, int *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    while (*end && isspace((unsigned char)*end))
        end++;
    if (end == s || *end || v < INT32_MIN || v > (long long)UINT32_MAX)
        return OPSC_EPROTO;
    /* Windows reports NTSTATUS-style codes either signed or as unsigned 32-bit. */
    *out = v > INT32_MAX ? (int)(int32_t)(uint32_t)v : (int)v;
    return 0;
}

static int parse_body(wr_resp *r, char *err, size_t errlen)
{
    const wx_node *fault = wx_child(r->body, WR_NS_S, "Fault");
    if (fault) {
        parse_fault(r, fault);
        return 0;
    }
    const wx_node *shell = wx_child(r->body, WR_NS_RSP, "Shell");
    r->shell_id = wx_child_text(shell, WR_NS_RSP, "ShellId");
    if (!r->shell_id) {
        const wx_node *sel = wx_find(r->body, WR_NS_W, "Selector");
        if (sel && wx_attr_get(sel, "Name") && !strcmp(wx_attr_get(sel, "Name"), "ShellId"))
            r->shell_id = sel->text;
    }
    const wx_node *cr = wx_child(r->body, WR_NS_RSP, "CommandResponse");
    r->command_id = wx_child_text(cr, WR_NS_RSP, "CommandId");
    const wx_node *rr = wx_child(r->body, WR_NS_RSP, "ReceiveResponse");
    const wx_node *state = wx_child(rr, WR_NS_RSP, "CommandState");
    const char *st = wx_attr_get(state, "State");
    if (st && strlen(st) >= 5 && !strcmp(st + strlen(st) - 5, "/Done")) {
        r->done = true;
        const char *ec = wx_child_text(state, WR_NS_RSP, "ExitCode");
        if (ec) {
            if (to_int32(ec, &r->exit_code)) {
                wr_errf(err, errlen, "ReceiveResponse: bad ExitCode '%.40s'", ec);
                return OPSC_EPROTO;
            }
            r->has_exit_code = true;
        }
    }
    return 0;
}

int wr_soap_parse(const char *xml, size_t len, const char *message_id, wr_resp *r, char *err,
                  size_t errlen)
{
    *r = (wr_resp){0};
    char xerr[128];
    r->doc = wx_parse(xml, len, xerr, sizeof xerr);
    if (!r->doc) {
        wr_errf(err, errlen, "malformed WS-Management response (%s)", xerr);
        return OPSC_EPROTO;
    }
    if (strcmp(r->doc->ns, WR_NS_S) || strcmp(r->doc->name, "Envelope")) {
        wr_errf(err, errlen, "response is not a SOAP 1.2 envelope");
        goto bad;
    }
    const wx_node *header = wx_child(r->doc, WR_NS_S, "Header");
    r->body = wx_child(r->doc, WR_NS_S, "Body");
    if (!r->body) {
        wr_errf(err, errlen, "SOAP envelope without Body");
        goto bad;
    }
    r->action = wx_child_text(header, WR_NS_A, "Action");
    r->relates_to = wx_child_text(header, WR_NS_A, "RelatesTo");
    if (message_id && (!r->relates_to || strcmp(r->relates_to, message_id))) {
        wr_errf(err, errlen, "response RelatesTo '%.60s' does not match MessageID %s",
                r->relates_to ? r->relates_to : "(none)", message_id);
        goto bad;
    }
    if (parse_body(r, err, errlen))
        goto bad;
    return 0;
bad:
    wr_resp_free(r);
    return OPSC_EPROTO;
}

void wr_resp_free(wr_resp *r)
{
    wx_free(r->doc);
    *r = (wr_resp){0};
}

int wr_soap_streams(wr_resp *r, const char *command_id, wr_stream_cb cb, void *ud)
{
    const wx_node *rr = wx_child(r->body, WR_NS_RSP, "ReceiveResponse");
    for (const wx_node *s = wx_child(rr, WR_NS_RSP, "Stream"); s;
         s = wx_next(s, WR_NS_RSP, "Stream")) {
        const char *cid = wx_attr_get(s, "CommandId");
        const char *name = wx_attr_get(s, "Name");
        if ((cid && command_id && strcasecmp(cid, command_id)) || !name)
            continue;
        int stream = !strcmp(name, "stdout")   ? OPSC_STDOUT
                     : !strcmp(name, "stderr") ? OPSC_STDERR
                                               : 0;
        if (!stream || !s->text_len)
            continue;
        long n = wr_b64_decode(s->text, s->text_len, (uint8_t *)s->text);
        if (n < 0)
            return OPSC_EPROTO;
        int rc = cb(ud, stream, (const uint8_t *)s->text, (size_t)n);
        if (rc)
            return rc;
    }
    return 0;
}

void wr_soap_fault_describe(const wr_resp *r, char *out, size_t outlen)
{
    const char *hint = "";
    switch (r->fault_code) {
    case WR_FAULT_UNKNOWN_SHELL:
        hint = "the remote shell no longer exists: ";
        break;
    case WR_FAULT_QUOTA:
        hint = "shell quota exceeded (MaxShellsPerUser): ";
        break;
    case WR_FAULT_ACCESS_DENIED:
        hint = "access denied: ";
        break;
    case WR_FAULT_TIMED_OUT:
        hint = "operation timed out: ";
        break;
    default:
        break;
    }
    snprintf(out, outlen, "WSManFault %u (%s): %s%s", r->fault_code,
             r->fault_subcode ? r->fault_subcode : "no subcode", hint, r->fault_text);
}
