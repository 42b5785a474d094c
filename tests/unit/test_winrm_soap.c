/* test_winrm_soap.c - WS-Man envelopes the WinRM transport builds, and responses/faults it reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <opsc/errors.h>
#include <opsc/transport.h>

#include "wr_soap.h"
#include "wr_xml.h"

static wr_hdr hdr_for(const char *shell)
{
    return (wr_hdr){
        .to = "http://h:5985/wsman", .shell_id = shell, .timeout_s = 20, .max_envelope = 512000};
}

static void test_envelope_has_the_ws_management_headers(void **state)
{
    (void)state;
    wr_buf b = {0};
    wr_hdr h = hdr_for("SHELL-1");
    wr_soap_receive(&b, &h, "CMD-1");
    assert_non_null(strstr(b.p, "<a:To>http://h:5985/wsman</a:To>"));
    assert_non_null(
        strstr(b.p, "<a:Action s:mustUnderstand=\"true\">"
                    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive</a:Action>"));
    assert_non_null(
        strstr(b.p, "<w:MaxEnvelopeSize s:mustUnderstand=\"true\">512000</w:MaxEnvelopeSize>"));
    assert_non_null(strstr(b.p, "<w:OperationTimeout>PT20.000S</w:OperationTimeout>"));
    assert_non_null(strstr(b.p, "<w:Locale xml:lang=\"en-US\""));
    assert_non_null(strstr(b.p, "<w:Selector Name=\"ShellId\">SHELL-1</w:Selector>"));
    assert_non_null(
        strstr(b.p, "<rsp:DesiredStream CommandId=\"CMD-1\">stdout stderr</rsp:DesiredStream>"));
    assert_int_equal(strncmp(h.message_id, "uuid:", 5), 0);
    assert_int_equal(strlen(h.message_id), 41);
    char needle[80];
    snprintf(needle, sizeof needle, "<a:MessageID>%s</a:MessageID>", h.message_id);
    assert_non_null(strstr(b.p, needle));
    /* the envelope we build parses with our own reader */
    wx_node *doc = wx_parse(b.p, b.len, NULL, 0);
    assert_non_null(doc);
    wx_free(doc);
    wr_buf_free(&b);
}

static void test_message_ids_differ(void **state)
{
    (void)state;
    char a[48], b[48];
    wr_uuid(a);
    wr_uuid(b);
    assert_string_not_equal(a, b);
    assert_int_equal(a[5 + 14], '4'); /* version 4 */
}

static void test_create_carries_codepage_cwd_and_escaped_env(void **state)
{
    (void)state;
    wr_buf b = {0};
    wr_hdr h = hdr_for(NULL);
    const char *env[] = {"A=1 & <2>", "EMPTY=", NULL};
    wr_soap_create(&b, &h, "C:\\Temp", env, 65001);
    assert_non_null(strstr(b.p, "<w:Option Name=\"WINRS_CODEPAGE\">65001</w:Option>"));
    assert_non_null(strstr(b.p, "<rsp:WorkingDirectory>C:\\Temp</rsp:WorkingDirectory>"));
    assert_non_null(strstr(b.p, "<rsp:Variable Name=\"A\">1 &amp; &lt;2&gt;</rsp:Variable>"));
    assert_non_null(strstr(b.p, "<rsp:Variable Name=\"EMPTY\"></rsp:Variable>"));
    assert_null(strstr(b.p, "ShellId"));
    wr_buf_free(&b);
}

static void test_send_signal_delete_bodies(void **state)
{
    (void)state;
    wr_buf b = {0};
    wr_hdr h = hdr_for("S");
    wr_soap_send(&b, &h, "C", "hi", 2, true);
    assert_non_null(
        strstr(b.p, "<rsp:Stream Name=\"stdin\" CommandId=\"C\" End=\"true\">aGk=</rsp:Stream>"));
    wr_buf_reset(&b);
    wr_soap_signal(&b, &h, "C", WR_SIGNAL_TERMINATE);
    assert_non_null(
        strstr(b.p, "<rsp:Signal CommandId=\"C\"><rsp:Code>"
                    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"));
    wr_buf_reset(&b);
    wr_soap_delete(&b, &h);
    assert_non_null(strstr(b.p, "transfer/Delete</a:Action>"));
    assert_non_null(strstr(b.p, "<s:Body></s:Body>"));
    wr_buf_free(&b);
}

#define ENV_HEAD                                                                                   \
    "<s:Envelope xml:lang=\"en-US\" xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" "          \
    "xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" "                                \
    "xmlns:rsp=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell\">"                       \
    "<s:Header><a:Action>x</a:Action><a:RelatesTo>uuid:1</a:RelatesTo></s:Header><s:Body>"
#define ENV_TAIL "</s:Body></s:Envelope>"

static const char receive_resp[] =
    ENV_HEAD "<rsp:ReceiveResponse>"
             "<rsp:Stream Name=\"stdout\" CommandId=\"C1\">aGVsbG8=</rsp:Stream>"
             "<rsp:Stream Name=\"stderr\" CommandId=\"C1\">b29wcw==</rsp:Stream>"
             "<rsp:Stream Name=\"stdout\" CommandId=\"C1\">IQ==</rsp:Stream>"
             "<rsp:Stream Name=\"stdout\" CommandId=\"OTHER\">eA==</rsp:Stream>"
             "<rsp:Stream Name=\"stdout\" CommandId=\"C1\" End=\"true\"></rsp:Stream>"
             "<rsp:CommandState CommandId=\"C1\" State=\"http://schemas.microsoft.com/wbem/wsman/1/"
             "windows/shell/CommandState/Done\"><rsp:ExitCode>3221225786</rsp:ExitCode>"
             "</rsp:CommandState></rsp:ReceiveResponse>" ENV_TAIL;

typedef struct collected {
    char out[64], err[64];
} collected;

static int collect(void *ud, int stream, const uint8_t *data, size_t len)
{
    collected *c = ud;
    strncat(stream == OPSC_STDOUT ? c->out : c->err, (const char *)data, len);
    return 0;
}

static void test_receive_response_streams_and_exit_code(void **state)
{
    (void)state;
    wr_resp r;
    char err[200];
    assert_int_equal(
        wr_soap_parse(receive_resp, strlen(receive_resp), "uuid:1", &r, err, sizeof err), 0);
    assert_true(r.done);
    assert_true(r.has_exit_code);
    assert_int_equal(r.exit_code, -1073741510); /* STATUS_CONTROL_C_EXIT, unsigned on the wire */
    collected c = {0};
    assert_int_equal(wr_soap_streams(&r, "C1", collect, &c), 0);
    assert_string_equal(c.out, "hello!");
    assert_string_equal(c.err, "oops");
    wr_resp_free(&r);
}

static void test_relates_to_mismatch_is_a_protocol_error(void **state)
{
    (void)state;
    wr_resp r;
    char err[200];
    assert_int_equal(
        wr_soap_parse(receive_resp, strlen(receive_resp), "uuid:2", &r, err, sizeof err),
        OPSC_EPROTO);
    assert_non_null(strstr(err, "RelatesTo"));
}

static const char fault_resp[] = ENV_HEAD
    "<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:TimedOut</s:Value>"
    "</s:Subcode></s:Code><s:Reason><s:Text xml:lang=\"en-US\">The WS-Management service "
    "cannot complete the operation within the time specified in OperationTimeout.  "
    "</s:Text></s:Reason><s:Detail><f:WSManFault "
    "xmlns:f=\"http://schemas.microsoft.com/wbem/wsman/1/wsmanfault\" Code=\"2150858793\" "
    "Machine=\"h\"><f:Message>details &amp; more</f:Message></f:WSManFault></s:Detail>"
    "</s:Fault>" ENV_TAIL;

static void test_fault_names_the_wsman_code(void **state)
{
    (void)state;
    wr_resp r;
    char err[200], text[600];
    assert_int_equal(wr_soap_parse(fault_resp, strlen(fault_resp), "uuid:1", &r, err, sizeof err),
                     0);
    assert_true(r.fault);
    assert_int_equal(r.fault_code, WR_FAULT_TIMED_OUT);
    assert_string_equal(r.fault_subcode, "w:TimedOut");
    wr_soap_fault_describe(&r, text, sizeof text);
    assert_non_null(strstr(text, "WSManFault 2150858793 (w:TimedOut)"));
    assert_non_null(strstr(text, "OperationTimeout. - details & more"));
    wr_resp_free(&r);
}

static void test_create_and_command_responses(void **state)
{
    (void)state;
    static const char create[] =
        ENV_HEAD "<x:ResourceCreated xmlns:x=\"http://schemas.xmlsoap.org/ws/2004/09/transfer\"/>"
                 "<rsp:Shell><rsp:ShellId>11-22</rsp:ShellId></rsp:Shell>" ENV_TAIL;
    static const char command[] = ENV_HEAD
        "<rsp:CommandResponse><rsp:CommandId>AA-BB</rsp:CommandId></rsp:CommandResponse>" ENV_TAIL;
    wr_resp r;
    assert_int_equal(wr_soap_parse(create, strlen(create), NULL, &r, NULL, 0), 0);
    assert_string_equal(r.shell_id, "11-22");
    wr_resp_free(&r);
    assert_int_equal(wr_soap_parse(command, strlen(command), NULL, &r, NULL, 0), 0);
    assert_string_equal(r.command_id, "AA-BB");
    wr_resp_free(&r);
}

static void test_malformed_responses_are_refused(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "<a>",
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"></s:Envelope>",
        "<x:Envelope xmlns:x=\"urn:other\"><x:Body/></x:Envelope>",
        "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>",
        "<a><b></a></b>",
        "<p:a/>",
        "<a>&bogus;</a>",
        "<a x=1/>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        wr_resp r;
        char err[200] = "";
        assert_int_equal(wr_soap_parse(bad[i], strlen(bad[i]), NULL, &r, err, sizeof err),
                         OPSC_EPROTO);
        assert_true(err[0] != '\0');
    }
}

static void test_xml_reader_namespaces_entities_cdata(void **state)
{
    (void)state;
    static const char doc[] =
        "<?xml version=\"1.0\"?><!-- c --><r xmlns=\"urn:d\" xmlns:p=\"urn:p\">"
        "<p:k a='1&amp;2'>x&#65;&#x42;<![CDATA[<raw>]]></p:k><k/></r>";
    wx_node *n = wx_parse(doc, strlen(doc), NULL, 0);
    assert_non_null(n);
    assert_string_equal(n->ns, "urn:d");
    const wx_node *k = wx_child(n, "urn:p", "k");
    assert_non_null(k);
    assert_string_equal(k->text, "xAB<raw>");
    assert_string_equal(wx_attr_get(k, "a"), "1&2");
    assert_non_null(wx_child(n, "urn:d", "k"));
    assert_null(wx_child(n, "urn:p", "missing"));
    wx_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_has_the_ws_management_headers),
        cmocka_unit_test(test_message_ids_differ),
        cmocka_unit_test(test_create_carries_codepage_cwd_and_escaped_env),
        cmocka_unit_test(test_send_signal_delete_bodies),
        cmocka_unit_test(test_receive_response_streams_and_exit_code),
        cmocka_unit_test(test_relates_to_mismatch_is_a_protocol_error),
        cmocka_unit_test(test_fault_names_the_wsman_code),
        cmocka_unit_test(test_create_and_command_responses),
        cmocka_unit_test(test_malformed_responses_are_refused),
        cmocka_unit_test(test_xml_reader_namespaces_entities_cdata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
