/* wr_soap.h - WS-Management (MS-WSMV) remote shell envelopes: building requests, reading responses.
 */
#ifndef WR_SOAP_H
#define WR_SOAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wr_buf.h"
#include "wr_xml.h"

#define WR_NS_S             "http://www.w3.org/2003/05/soap-envelope"
#define WR_NS_A             "http://schemas.xmlsoap.org/ws/2004/08/addressing"
#define WR_NS_W             "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
#define WR_NS_P             "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
#define WR_NS_X             "http://schemas.xmlsoap.org/ws/2004/09/transfer"
#define WR_NS_RSP           "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
#define WR_NS_F             "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
#define WR_RESOURCE_CMD     WR_NS_RSP "/cmd"
#define WR_SIGNAL_TERMINATE WR_NS_RSP "/signal/terminate"
#define WR_SIGNAL_CTRL_C    WR_NS_RSP "/signal/ctrl_c"

/* WSManFault codes the transport reacts to. */
#define WR_FAULT_TIMED_OUT     2150858793u /* w:TimedOut: Receive had nothing yet */
#define WR_FAULT_UNKNOWN_SHELL 2150858843u /* w:InvalidSelectors */
#define WR_FAULT_QUOTA         2150859173u /* w:QuotaLimit */
#define WR_FAULT_ACCESS_DENIED 5u

typedef enum wr_action {
    WR_CREATE,
    WR_COMMAND,
    WR_RECEIVE,
    WR_SEND,
    WR_SIGNAL,
    WR_DELETE,
} wr_action;

/* What every request carries in its header. */
typedef struct wr_hdr {
    const char *to;        /* the endpoint URL */
    const char *shell_id;  /* selector; NULL for Create */
    unsigned timeout_s;    /* OperationTimeout */
    unsigned max_envelope; /* MaxEnvelopeSize */
    char message_id[48];   /* "uuid:..." filled by wr_soap_begin */
} wr_hdr;

/* Writes the envelope start through <s:Body>, with a fresh MessageID in hdr.
 * `options` is a NULL-terminated list of name, value pairs (or NULL). */
void wr_soap_begin(wr_buf *b, wr_hdr *hdr, wr_action action, const char *const *options);
void wr_soap_end(wr_buf *b);

/* Complete requests. `env` is a NULL-terminated "NAME=value" list or NULL. */
void wr_soap_create(wr_buf *b, wr_hdr *hdr, const char *cwd, const char *const *env,
                    unsigned codepage);
void wr_soap_command(wr_buf *b, wr_hdr *hdr, const char *command, const char *args,
                     bool skip_cmd_shell);
void wr_soap_receive(wr_buf *b, wr_hdr *hdr, const char *command_id);
void wr_soap_send(wr_buf *b, wr_hdr *hdr, const char *command_id, const void *data, size_t len,
                  bool end);
void wr_soap_signal(wr_buf *b, wr_hdr *hdr, const char *command_id, const char *code);
void wr_soap_delete(wr_buf *b, wr_hdr *hdr);

/* A parsed response. */
typedef struct wr_resp {
    wx_node *doc;
    const wx_node *body;
    const char *action;
    const char *relates_to;
    bool fault;
    uint32_t fault_code;       /* WSManFault Code, 0 when absent */
    const char *fault_subcode; /* "w:TimedOut"... */
    char fault_text[512];      /* reason and message, whitespace-trimmed */
    const char *shell_id;      /* CreateResponse */
    const char *command_id;    /* CommandResponse */
    bool done;                 /* ReceiveResponse: CommandState Done */
    bool has_exit_code;
    int exit_code; /* as a signed 32-bit value */
} wr_resp;

/* Parse `xml` and check RelatesTo == message_id (when message_id is not NULL).
 * OPSC_EPROTO with a message on malformed input or a RelatesTo mismatch. */
int wr_soap_parse(const char *xml, size_t len, const char *message_id, wr_resp *r, char *err,
                  size_t errlen);
void wr_resp_free(wr_resp *r);

/* Calls cb for each rsp:Stream of `command_id` in a ReceiveResponse, in order, with
 * the decoded bytes (decoded in place: the response's text is consumed).
 * Returns 0, cb's first non-zero return, or OPSC_EPROTO for bad base64. */
typedef int (*wr_stream_cb)(void *ud, int stream, const uint8_t *data, size_t len);
int wr_soap_streams(wr_resp *r, const char *command_id, wr_stream_cb cb, void *ud);

/* The human explanation of a fault: "WSManFault 2150859173 (w:QuotaLimit): <text>". */
void wr_soap_fault_describe(const wr_resp *r, char *out, size_t outlen);

/* A random "uuid:XXXXXXXX-..." (upper case). */
void wr_uuid(char out[48]);

#endif
