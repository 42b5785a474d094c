/* test_winrm_text.c - WinRM text codecs: base64, UTF-16LE, PowerShell command lines, CLIXML,
 * framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <opsc/errors.h>

#include "wr_buf.h"
#include "wr_crypt.h"
#include "wr_script.h"

static void test_base64_round_trip_and_rejects(void **state)
{
    (void)state;
    const char *vec[][2] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < 5; i++) {
        wr_buf b = {0};
        wr_b64_encode(&b, vec[i][0], strlen(vec[i][0]));
        assert_string_equal(b.p ? b.p : "", vec[i][1]);
        uint8_t out[16];
        long n = wr_b64_decode(vec[i][1], strlen(vec[i][1]), out);
        assert_int_equal(n, (long)strlen(vec[i][0]));
        assert_memory_equal(out, vec[i][0], (size_t)n);
        wr_buf_free(&b);
    }
    uint8_t out[16];
    assert_int_equal(wr_b64_decode("Zm9v\r\nYmFy", 10, out), 6);
    assert_int_equal(wr_b64_decode("Zm9*", 4, out), -1);
    assert_int_equal(wr_b64_decode("Zg==Zg", 6, out), -1);
}

static void test_utf16le_of_utf8_incl_surrogates(void **state)
{
    (void)state;
    wr_buf b = {0};
    wr_utf16le_from_utf8(&b, "A\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80\xff", 11);
    static const uint8_t want[] = {'A', 0, 0xe9, 0, 0x13, 0x27, 0x3d, 0xd8, 0x00, 0xde, 0xfd, 0xff};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.p, want, sizeof want);
    wr_buf_free(&b);
}

static void test_powershell_command_line_is_encoded(void **state)
{
    (void)state;
    wr_cmdline c = {0};
    wr_script_powershell(&c, "Get-Date");
    assert_string_equal(c.exe.p, "powershell.exe");
    assert_int_equal(strncmp(c.args.p, "-NoProfile -NonInteractive -EncodedCommand ", 43), 0);
    const char *b64 = c.args.p + 43;
    uint8_t raw[512];
    long n = wr_b64_decode(b64, strlen(b64), raw);
    static const char want[] =
        "$ProgressPreference = 'SilentlyContinue'\nGet-Date\nexit $LASTEXITCODE\n";
    assert_int_equal(n, 2 * (long)strlen(want));
    for (size_t i = 0; i < strlen(want); i++) {
        assert_int_equal(raw[2 * i], (uint8_t)want[i]);
        assert_int_equal(raw[2 * i + 1], 0);
    }
    assert_int_equal(c.stdin_prefix.len, 0);
    wr_cmdline_free(&c);
}

static void test_long_script_travels_on_stdin(void **state)
{
    (void)state;
    char script[9000];
    memset(script, 'x', sizeof script - 1);
    script[sizeof script - 1] = '\0';
    wr_cmdline c = {0};
    wr_script_powershell(&c, script);
    assert_true(c.exe.len + 1 + c.args.len <= WR_CMD_LINE_LIMIT);
    assert_true(c.stdin_prefix.len > 12000);
    assert_memory_equal(c.stdin_prefix.p + c.stdin_prefix.len - 2, "\r\n", 2);
    wr_cmdline_free(&c);
}

static void test_quoting(void **state)
{
    (void)state;
    wr_buf b = {0};
    wr_quote(&b, WR_POWERSHELL, "C:\\it's");
    assert_string_equal(b.p, "'C:\\it''s'");
    wr_buf_reset(&b);
    wr_quote(&b, WR_POSIX_SH, "/a'b");
    assert_string_equal(b.p, "'/a'\\''b'");
    wr_buf_free(&b);
}

static void test_file_scripts_name_the_path_and_digest(void **state)
{
    (void)state;
    wr_buf b = {0};
    wr_script_put(&b, WR_POWERSHELL, "C:\\x y\\f.bin", -1, NULL);
    assert_non_null(strstr(b.p, "$path = 'C:\\x y\\f.bin'"));
    assert_non_null(strstr(b.p, "SHA256"));
    assert_non_null(strstr(b.p, "Move-Item -LiteralPath $tmp"));
    wr_buf_reset(&b);
    wr_script_get(&b, WR_POWERSHELL, "C:\\f.bin");
    assert_non_null(strstr(b.p, "[IO.File]::OpenRead($path)"));
    assert_non_null(strstr(b.p, "'#sha256 '"));
    wr_buf_reset(&b);
    wr_script_put(&b, WR_POSIX_SH, "/tmp/f", 0640, "root:adm");
    assert_non_null(strstr(b.p, "chmod 640"));
    assert_non_null(strstr(b.p, "chown 'root:adm'"));
    wr_buf_free(&b);
}

static const char clixml[] =
    "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" "
    "xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">"
    "<Obj S=\"progress\" RefId=\"0\"><TN RefId=\"0\"><T>System.Object</T></TN></Obj>"
    "<S S=\"Error\">Access _x0027_x_x0027_ denied_x000D__x000A_</S><S S=\"Error\">line 2_x000A_</S>"
    "<S S=\"warning\">slow</S></Objs>";

static void test_clixml_is_decoded_in_any_split(void **state)
{
    (void)state;
    const char want[] = "Access 'x' denied\r\nline 2\nWARNING: slow\r\n";
    for (size_t split = 1; split < sizeof clixml - 1; split += 7) {
        wr_clixml x = {0};
        wr_buf out = {0};
        wr_clixml_feed(&x, clixml, split, false, &out);
        wr_clixml_feed(&x, clixml + split, sizeof clixml - 1 - split, false, &out);
        wr_clixml_feed(&x, "", 0, true, &out);
        assert_string_equal(out.p, want);
        wr_buf_free(&out);
        wr_clixml_free(&x);
    }
}

static void test_plain_stderr_passes_through_around_clixml(void **state)
{
    (void)state;
    wr_clixml x = {0};
    wr_buf out = {0};
    wr_clixml_feed(&x, "native error\n#< CLIX", 20, false, &out);
    assert_string_equal(out.p, "native error\n");
    const char *rest = "ML\r\n<Objs><S S=\"Error\">e</S></Objs>tail # not a marker";
    wr_clixml_feed(&x, rest, strlen(rest), true, &out);
    assert_string_equal(out.p, "native error\netail # not a marker");
    wr_buf_free(&out);
    wr_clixml_free(&x);
}

static void test_encrypted_framing_round_trip(void **state)
{
    (void)state;
    wr_buf b = {0};
    static const uint8_t sig[16] = {1, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9, 5, 0, 0, 0};
    static const uint8_t sealed[] = "--Encrypted Boundary--\x00\xff sealed";
    wr_crypt_frame(&b, WR_PROTO_SPNEGO, 25, sig, 16, sealed, sizeof sealed);
    assert_non_null(strstr(b.p, "\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"));
    assert_non_null(
        strstr(b.p, "OriginalContent: type=application/soap+xml;charset=UTF-8;Length=25\r\n"));
    wr_crypt_parts p;
    assert_int_equal(wr_crypt_parse((const uint8_t *)b.p, b.len, &p, NULL, 0), 0);
    assert_int_equal(p.plain_len, 25);
    assert_int_equal(p.sig_len, 16);
    assert_memory_equal(p.sig, sig, 16);
    assert_int_equal(p.sealed_len, sizeof sealed);
    assert_memory_equal(p.sealed, sealed, sizeof sealed);
    wr_buf ct = {0};
    wr_crypt_content_type(&ct, WR_PROTO_KERBEROS);
    assert_string_equal(ct.p, "multipart/encrypted;protocol=\"application/HTTP-Kerberos-session-"
                              "encrypted\";boundary=\"Encrypted Boundary\"");
    char err[100];
    assert_int_equal(wr_crypt_parse((const uint8_t *)b.p, 60, &p, err, sizeof err), OPSC_EPROTO);
    wr_buf_free(&ct);
    wr_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_round_trip_and_rejects),
        cmocka_unit_test(test_utf16le_of_utf8_incl_surrogates),
        cmocka_unit_test(test_powershell_command_line_is_encoded),
        cmocka_unit_test(test_long_script_travels_on_stdin),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_file_scripts_name_the_path_and_digest),
        cmocka_unit_test(test_clixml_is_decoded_in_any_split),
        cmocka_unit_test(test_plain_stderr_passes_through_around_clixml),
        cmocka_unit_test(test_encrypted_framing_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
