/* test_discovery_wire.c - what the scanners read from hosts and from nmap, linked from the
 * plugins' sources: the SSH banner and host key exchange, WS-Management Identify answers, nmap's
 * XML stream, the OS guess. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dx_os.h"
#include "dx_wsman.h"
#include "dx_xml.h"
#include "nmap_xml.h"
#include "tcp_ssh.h"

/* ---- SSH ----------------------------------------------------------------------------------------
 */

/* An ed25519 host key blob; ssh-keygen -l prints SHA256:W/e248YZ31+... for it. */
static const uint8_t ed25519_blob[51] = {
    0x00, 0x00, 0x00, 0x0b, 0x73, 0x73, 0x68, 0x2d, 0x65, 0x64, 0x32, 0x35, 0x35,
    0x31, 0x39, 0x00, 0x00, 0x00, 0x20, 0xc1, 0xc3, 0x73, 0x57, 0xad, 0x34, 0xf3,
    0x92, 0x42, 0x58, 0xfa, 0xab, 0xc3, 0x2e, 0x96, 0x22, 0x7d, 0x25, 0x9b, 0x32,
    0x8f, 0x65, 0x81, 0xed, 0xeb, 0xb4, 0xfb, 0x1d, 0x6f, 0x2c, 0x3b, 0x6d};
#define ED25519_FP "SHA256:W/e248YZ31+lIheDsjs4HpKzSFNvHpn0Cgjlb/b4JgU"

typedef struct buf {
    uint8_t p[16384];
    size_t n;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_u32(buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, x, 4);
}

static void put_str(buf *b, const void *s, size_t n)
{
    put_u32(b, (uint32_t)n);
    put(b, s, n);
}

/* A packet (no padding beyond the 4 bytes the format wants). */
static void packet(buf *out, const buf *payload)
{
    put_u32(out, (uint32_t)(payload->n + 5));
    uint8_t pad = 4;
    put(out, &pad, 1);
    put(out, payload->p, payload->n);
    put(out, "\0\0\0\0", 4);
}

static void server_kexinit(buf *out, const char *kex, const char *hostkey)
{
    buf p = {0};
    uint8_t msg = 20;
    put(&p, &msg, 1);
    put(&p, "0123456789abcdef", 16);
    const char *lists[10] = {
        kex, hostkey, "aes128-ctr", "aes128-ctr", "hmac-sha2-256", "hmac-sha2-256", "none", "none",
        "",  ""};
    for (int i = 0; i < 10; i++)
        put_str(&p, lists[i], strlen(lists[i]));
    put(&p, "\0\0\0\0\0", 5);
    packet(out, &p);
}

static void server_reply(buf *out)
{
    buf p = {0};
    uint8_t msg = 31;
    put(&p, &msg, 1);
    put_str(&p, ed25519_blob, sizeof(ed25519_blob));
    put_str(&p, "q_s-32-bytes-of-server-value....", 32);
    put_str(&p, "signature", 9);
    packet(out, &p);
}

/* Feed `in` in pieces of `step` bytes; what the client sent, in `sent`. */
static int feed(tssh *t, const buf *in, size_t step, buf *sent)
{
    int r = TSSH_MORE;
    for (size_t o = 0; o < in->n && (r == TSSH_MORE || r == TSSH_SEND);) {
        size_t n = in->n - o < step ? in->n - o : step;
        uint8_t *out;
        size_t len;
        r = tssh_feed(t, in->p + o, n, &out, &len);
        o += n;
        while (r == TSSH_SEND) {
            put(sent, out, len);
            free(out);
            r = tssh_feed(t, NULL, 0, &out, &len);
        }
    }
    return r;
}

static void the_host_key_is_read_from_the_first_exchange_reply(void **state)
{
    (void)state;
    static const size_t steps[] = {1, 7, 4096};
    for (size_t k = 0; k < 3; k++) {
        buf in = {0}, sent = {0};
        put(&in, "a line before the banner\r\n", 26);
        put(&in, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", 40);
        server_kexinit(&in, "sntrup761x25519-sha512@openssh.com,curve25519-sha256",
                       "rsa-sha2-512,ssh-ed25519");
        server_reply(&in);
        tssh *t = malloc(sizeof(*t));
        tssh_init(t);
        assert_int_equal(feed(t, &in, steps[k], &sent), TSSH_DONE);
        assert_string_equal(t->banner, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3");
        assert_string_equal(t->kex, "curve25519-sha256");
        assert_string_equal(t->key_type, "ssh-ed25519");
        assert_string_equal(t->fingerprint, ED25519_FP);
        /* what went out: our banner, our KEXINIT, then ECDH_INIT with X25519's base point */
        assert_memory_equal(sent.p, "SSH-2.0-OpsConductor_discovery\r\n", 32);
        const uint8_t *kexinit = sent.p + 32, *init;
        assert_int_equal(kexinit[5], 20);
        init = kexinit + 4 + ((size_t)kexinit[2] << 8 | kexinit[3]);
        assert_int_equal(init[5], 30);                          /* SSH_MSG_KEX_ECDH_INIT */
        assert_memory_equal(init + 6, "\0\0\0\x20\x09\0\0", 7); /* 32 bytes: u = 9 */
        assert_int_equal((size_t)(init - sent.p) + 4 + ((size_t)init[2] << 8 | init[3]), sent.n);
        free(t);
    }
}

static void ssh_refusals_say_why(void **state)
{
    (void)state;
    struct {
        const char *what;
        int kind;
    } cases[] = {{"SSH-1.5-ancient\r\n", 0},
                 {"no common kex", 1},
                 {"disconnect", 2},
                 {"huge packet", 3},
                 {"not ssh at all", 4}};
    const char *want[] = {"other than 2.0", "no key exchange in common",
                          "the server disconnected: go away", "malformed SSH packet",
                          "no SSH banner in the first 8 KiB"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf in = {0}, sent = {0};
        if (cases[i].kind == 0) {
            put(&in, cases[i].what, strlen(cases[i].what));
        } else if (cases[i].kind == 4) {
            for (int j = 0; j < 600; j++)
                put(&in, "HTTP/1.1 400 no\r\n", 17);
        } else {
            put(&in, "SSH-2.0-x\r\n", 11);
            if (cases[i].kind == 1) {
                server_kexinit(&in, "sntrup761x25519-sha512@openssh.com", "ssh-ed25519");
            } else if (cases[i].kind == 2) {
                buf p = {0};
                put(&p, "\x01\0\0\0\x0b", 5);
                put_str(&p, "go away", 7);
                put_str(&p, "", 0);
                packet(&in, &p);
            } else {
                put_u32(&in, 100000);
                put(&in, "\x04", 1);
            }
        }
        tssh *t = malloc(sizeof(*t));
        tssh_init(t);
        assert_int_equal(feed(t, &in, 64, &sent), TSSH_FAIL);
        if (!strstr(t->err, want[i]))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, t->err, want[i]);
        free(t);
    }
}

/* ---- WS-Management Identify
 * ------------------------------------------------------------------------- */

static void identify_answers_are_read_and_faults_reported(void **state)
{
    (void)state;
    static const char windows[] =
        "<?xml version=\"1.0\"?><s:Envelope xml:lang=\"en-US\" "
        "xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Header/><s:Body>"
        "<wsmid:IdentifyResponse xmlns:wsmid=\"http://schemas.dmtf.org/wbem/wsman/identity/1/"
        "wsmanidentity.xsd\"><wsmid:ProtocolVersion>http://schemas.dmtf.org/wbem/wsman/1/"
        "wsman.xsd</wsmid:ProtocolVersion><wsmid:ProductVendor>Microsoft Corporation"
        "</wsmid:ProductVendor><wsmid:ProductVersion>OS: 0.0.0 SP: 0.0 Stack: 3.0"
        "</wsmid:ProductVersion><wsmid:SecurityProfiles><wsmid:SecurityProfileName>x"
        "</wsmid:SecurityProfileName></wsmid:SecurityProfiles></wsmid:IdentifyResponse>"
        "</s:Body></s:Envelope>";
    dx_identify id;
    char err[200];
    assert_int_equal(dx_identify_parse(windows, strlen(windows), &id, err, sizeof(err)), 0);
    assert_string_equal(id.vendor, "Microsoft Corporation");
    assert_string_equal(id.product_version, "OS: 0.0.0 SP: 0.0 Stack: 3.0");
    assert_string_equal(id.protocol_version, "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd");
    static const char other[] = "<Envelope><Body><IdentifyResponse><ProductVendor> Openwsman "
                                "&amp; friends &#x263A; </ProductVendor></IdentifyResponse></Body>"
                                "</Envelope>";
    assert_int_equal(dx_identify_parse(other, strlen(other), &id, err, sizeof(err)), 0);
    assert_string_equal(id.vendor, "Openwsman & friends \xe2\x98\xba");
    static const char fault[] = "<s:Envelope><s:Body><s:Fault><s:Reason><s:Text xml:lang=\"en\">"
                                "Access is denied.</s:Text></s:Reason></s:Fault></s:Body>"
                                "</s:Envelope>";
    assert_int_equal(dx_identify_parse(fault, strlen(fault), &id, err, sizeof(err)), -1);
    assert_string_equal(err, "SOAP fault: Access is denied.");
    const char *bad[] = {"<a><b></a>", "<html><body>It works!</body></html>", "<a", "",
                         "<!DOCTYPE x [<!ENTITY e \"boom\">]><x>&e;</x>"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(dx_identify_parse(bad[i], strlen(bad[i]), &id, err, sizeof(err)), -1);
}

/* ---- nmap
 * ---------------------------------------------------------------------------------------- */

static const char nmap_out[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE nmaprun>\n<nmaprun scanner=\"nmap\">\n"
    "<taskprogress task=\"Connect Scan\" time=\"1\" percent=\"42.50\" remaining=\"3\"/>\n"
    "<host starttime=\"1\"><status state=\"up\"/>\n<address addr=\"127.77.0.4\" "
    "addrtype=\"ipv4\"/>\n"
    "<ports><extraports state=\"closed\" count=\"3\"/></ports></host>\n"
    "<host starttime=\"1\"><status state=\"up\"/>\n<address addr=\"127.77.0.5\" "
    "addrtype=\"ipv4\"/>\n"
    "<hostnames><hostname name=\"db5.lab\" type=\"PTR\"/></hostnames>\n"
    "<ports><port protocol=\"tcp\" portid=\"22\"><state state=\"open\" reason=\"syn-ack\"/>"
    "<service name=\"ssh\"/><script id=\"ssh-hostkey\" output=\"...\"><table>\n"
    "<elem key=\"key\">AAAAB3NzaC1yc2EAAAADAQABAAAAgQC9</elem>\n<elem key=\"type\">ssh-rsa</elem>\n"
    "</table>\n<table>\n<elem "
    "key=\"key\">AAAAC3NzaC1lZDI1NTE5AAAAIMHDc1etNPOSQlj6q8MuliJ9JZsyj2WB7eu0"
    "+x1vLDtt</elem>\n<elem key=\"fingerprint\">775d</elem>\n<elem "
    "key=\"type\">ssh-ed25519</elem>\n"
    "</table>\n</script><script id=\"banner\" output=\"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\"/>"
    "</port>\n<port protocol=\"tcp\" portid=\"5986\"><state state=\"filtered\"/></port>\n"
    "<extraports state=\"closed\" count=\"1\"/></ports>\n</host>\n<runstats/></nmaprun>\n";

static const uint16_t ports[] = {22, 5985, 5986};

typedef struct got {
    json_t *hosts;
} got;

static void on_host_xml(void *ud, const char *xml, size_t len)
{
    got *g = ud;
    char err[200];
    json_t *h = nmap_host_parse(xml, len, ports, 3, err, sizeof(err));
    if (h)
        json_array_append_new(g->hosts, h);
    else
        assert_string_equal(err, ""); /* no open port: not a host to report, not an error */
}

static void nmap_output_streams_into_host_records(void **state)
{
    (void)state;
    static const size_t steps[] = {1, 13, sizeof(nmap_out)};
    for (size_t k = 0; k < 3; k++) {
        nmap_stream st = {0};
        got g = {json_array()};
        size_t n = strlen(nmap_out);
        for (size_t o = 0; o < n; o += steps[k])
            assert_int_equal(nmap_stream_feed(&st, nmap_out + o,
                                              n - o < steps[k] ? n - o : steps[k], on_host_xml, &g),
                             0);
        assert_true(st.percent > 42.4 && st.percent < 42.6);
        assert_int_equal(json_array_size(g.hosts), 1);
        json_t *h = json_array_get(g.hosts, 0);
        char *text = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
        assert_string_equal(
            text,
            "{\"address\":\"127.77.0.5\",\"facts\":{\"os_evidence\":[{\"detail\":\"SSH-2.0-OpenSSH_"
            "9.2p1 Debian-2+deb12u10\",\"source\":\"ssh_banner\",\"suggests\":\"linux\",\"weight\":"
            "\"strong\"},{\"detail\":\"22 open, no WinRM port\",\"source\":\"open_ports\","
            "\"suggests\":\"linux\",\"weight\":\"weak\"}],\"ports\":[{\"port\":22,\"service\":"
            "\"ssh\",\"state\":\"open\"},{\"port\":5985,\"state\":\"closed\"},{\"port\":5986,"
            "\"state\":\"filtered\"}],\"ssh\":{\"banner\":\"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"
            "\",\"host_key_fingerprint\":\"" ED25519_FP "\",\"host_key_type\":\"ssh-ed25519\","
            "\"port\":22}},\"hostname\":\"db5.lab\",\"os_family\":\"linux\"}");
        free(text);
        json_decref(g.hosts);
        nmap_stream_free(&st);
    }
    char err[200];
    static const char broken[] = "<host><address addr=\"1.2.3.4\" addrtype=\"ipv4\"/><ports><port "
                                 "portid=\"22\"><state state=\"open\"/></port></host>";
    assert_null(nmap_host_parse(broken, strlen(broken), ports, 3, err, sizeof(err)));
    assert_non_null(strstr(err, "malformed <host>"));
}

/* ---- the OS guess
 * --------------------------------------------------------------------------------- */

static const char *guess(const char *banner, const char *vendor, bool p22, bool winrm)
{
    dx_os_input in = {banner, vendor, NULL, p22, winrm};
    json_t *ev = json_array();
    const char *os = dx_os_guess(&in, ev);
    assert_true(json_array_size(ev) > 0 || !os);
    json_decref(ev);
    return os ? os : "none";
}

static void the_os_guess_weighs_its_evidence(void **state)
{
    (void)state;
    assert_string_equal(guess("SSH-2.0-OpenSSH_for_Windows_8.1", NULL, true, false), "windows");
    assert_string_equal(guess("SSH-2.0-OpenSSH_9.2p1 Debian-2", NULL, true, true), "linux");
    assert_string_equal(guess(NULL, "Microsoft Corporation", false, true), "windows");
    assert_string_equal(guess("SSH-2.0-OpenSSH_8.0", "Microsoft Corporation", true, true),
                        "windows");
    assert_string_equal(guess(NULL, NULL, true, false), "linux");
    assert_string_equal(guess(NULL, NULL, true, true), "none");
    assert_string_equal(guess("SSH-2.0-Cisco-1.25", NULL, false, false), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_host_key_is_read_from_the_first_exchange_reply),
        cmocka_unit_test(ssh_refusals_say_why),
        cmocka_unit_test(identify_answers_are_read_and_faults_reported),
        cmocka_unit_test(nmap_output_streams_into_host_records),
        cmocka_unit_test(the_os_guess_weighs_its_evidence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
