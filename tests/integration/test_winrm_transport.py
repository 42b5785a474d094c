"""transport-winrm against the WinRM test server: auth modes, encryption, shells, faults, output, cancel."""

import base64
import hashlib
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "transport" / "winrm"))
import drive  # noqa: E402
from drive import exec_step, one, run, target  # noqa: E402
from wsman_client import Client  # noqa: E402

PS_PREAMBLE = "$ProgressPreference = 'SilentlyContinue'\n"

pytestmark = pytest.mark.skipif(not drive.DRIVER.exists() or not drive.PLUGIN.exists(), reason="transport-winrm not built")


@pytest.fixture
def server(tmp_path):
    servers = drive.Servers(tmp_path)
    yield servers
    servers.stop_all()


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return drive.make_tls_material(str(tmp_path_factory.mktemp("tls")))


def actions(srv):
    return [r.get("action") for r in srv.requests() if r.get("action")]


# ---- authentication and encryption ---------------------------------------------------------


def test_ntlm_over_http_is_encrypted_on_a_default_host(server):
    srv = server(strict=True)  # AllowUnencrypted=false, Basic off: a default Windows host
    conn, steps = one(srv, [exec_step("echo hello")], auth="ntlm")
    assert conn["status"] == 0, conn
    assert steps[0]["status"] == 0 and steps[0]["exit_code"] == 0
    assert steps[0]["stdout"] == "hello\n"
    soap = [r for r in srv.requests() if r.get("action")]
    assert soap and all(r["encrypted"] for r in soap), soap
    assert all(r["auth_scheme"] == "Negotiate" for r in soap)
    assert all(r.get("protocol") == "application/HTTP-SPNEGO-session-encrypted" for r in soap)


def test_ntlm_scheme_when_the_host_offers_only_ntlm(server):
    srv = server(auth=["ntlm"])
    conn, steps = one(srv, [exec_step("echo raw")], auth="ntlm")
    assert conn["status"] == 0, conn
    assert steps[0]["stdout"] == "raw\n"
    soap = [r for r in srv.requests() if r.get("action")]
    assert all(r["auth_scheme"] == "NTLM" and r["encrypted"] for r in soap)


def test_ntlm_with_domain_name(server):
    srv = server(strict=True)
    conn, steps = one(srv, [exec_step("echo dom")], auth="ntlm", cred={"domain": "OPSC"})
    assert conn["status"] == 0, conn
    assert steps[0]["stdout"] == "dom\n"


def test_wrong_password_fails_connect_with_eauth(server):
    srv = server(strict=True)
    conn, steps = one(srv, [exec_step("echo x")], auth="ntlm", password="wrong")
    assert conn["status"] == -10003, conn  # OPSC_EAUTH
    assert "refused" in conn["error"] and "Negotiate" in conn["error"]
    assert "wrong" not in conn["error"]
    assert steps == []


def test_basic_over_https(server, tls):
    srv = server(auth=["basic"], tls={"cert": tls["server_pem"], "key": tls["server_key"]})
    opts = {"ca_bundle": tls["server_pem"]}
    conn, steps = one(srv, [exec_step("echo tls")], auth="basic", options=opts, address="localhost")
    assert conn["status"] == 0, conn
    assert steps[0]["stdout"] == "tls\n"
    assert all(r["auth_scheme"] == "Basic" for r in srv.requests() if r.get("action"))


def test_basic_over_plain_http_is_refused_by_the_client(server):
    srv = server(auth=["basic"], allow_unencrypted=True)
    conn, _ = one(srv, [], auth="basic")
    assert conn["status"] == -10003
    assert "in clear" in conn["error"]
    assert srv.requests() == []


def test_strict_host_refuses_basic_over_http(server):
    srv = server(strict=True, auth=["basic", "negotiate"])
    conn, _ = one(srv, [], auth="basic", options={"allow_unencrypted": True})
    assert conn["status"] == -10003, conn


def test_ntlm_over_https_sends_plain_soap_inside_tls(server, tls):
    srv = server(auth=["negotiate"], tls={"cert": tls["server_pem"], "key": tls["server_key"]})
    pem = pathlib.Path(tls["server_pem"]).read_text()
    conn, steps = one(srv, [exec_step("echo ntlm-tls")], auth="ntlm", options={"ca_bundle": pem}, address="localhost")
    assert conn["status"] == 0, conn
    assert steps[0]["stdout"] == "ntlm-tls\n"
    assert not any(r["encrypted"] for r in srv.requests() if r.get("action"))


def test_certificate_mismatch_is_refused(server, tls):
    srv = server(auth=["negotiate"], tls={"cert": tls["server_pem"], "key": tls["server_key"]})
    conn, _ = one(srv, [], auth="ntlm", options={"ca_bundle": tls["ca_pem"]}, address="localhost")
    assert conn["status"] == -10004, conn  # OPSC_EHOSTKEY: the certificate is not trusted
    conn, _ = one(srv, [], auth="ntlm", options={}, address="localhost")  # system store only
    assert conn["status"] == -10004, conn


def test_pinned_fingerprint(server, tls):
    import hashlib
    import ssl

    srv = server(auth=["negotiate"], tls={"cert": tls["server_pem"], "key": tls["server_key"]})
    der = ssl.PEM_cert_to_DER_cert(pathlib.Path(tls["server_pem"]).read_text())
    good = hashlib.sha256(der).hexdigest()
    conn, steps = one(srv, [exec_step("echo pinned")], auth="ntlm", options={"cert_fingerprint": good})
    assert conn["status"] == 0, conn
    assert steps[0]["stdout"] == "pinned\n"
    bad = "00" * 32
    conn, _ = one(srv, [], auth="ntlm", options={"cert_fingerprint": bad})
    assert conn["status"] == -10004, conn


def test_client_certificate_auth(server, tls):
    srv = server(
        auth=["certificate"],
        tls={"cert": tls["server_pem"], "key": tls["server_key"], "client_ca": tls["ca_pem"]},
        cert_mappings=[{"thumbprint": drive.cert_thumbprint(tls["client_pem"]), "user": "alice"}],
    )
    pem = pathlib.Path(tls["client_pem"]).read_text() + pathlib.Path(tls["client_key"]).read_text()
    conn, steps = one(
        srv, [exec_step("echo cert")], auth="certificate", options={"ca_bundle": tls["server_pem"]},
        address="localhost", cred={"certificate": pem, "password": None, "username": None},
    )
    assert conn["status"] == 0, conn
    assert steps[0]["stdout"] == "cert\n"
    assert all(r["auth_scheme"] == "Certificate" for r in srv.requests() if r.get("action"))


def test_kerberos_over_http_encrypted_and_https(server, tls, tmp_path):
    from kdc import TestKDC

    with TestKDC() as realm:
        env = {"KRB5_CONFIG": realm.krb5_conf, "KRB5CCNAME": "FILE:/nonexistent/opsc-test"}
        kerb = {"keytab": realm.keytab, "krb5_config": realm.krb5_conf}
        users = [{"name": "alice", "password": "x", "principal": realm.user_principal}]
        for tls_cfg, opts in ((None, {}), ({"cert": tls["server_pem"], "key": tls["server_key"]}, {"ca_bundle": tls["server_pem"]})):
            cfg = {"strict": True, "kerberos": kerb, "users": users}
            if tls_cfg:
                cfg["tls"] = tls_cfg
            srv = server(**cfg)
            scenario = {
                "config": {"operation_timeout": "5s"},
                "targets": [{"address": "localhost", "port": srv.port, "options": dict(opts, scheme="https" if tls_cfg else "http"),
                             "cred": {"auth": "kerberos", "username": "alice", "domain": realm.realm, "password": realm.password}}],
                "steps": [exec_step("echo kerberos")],
            }
            report = drive.run(scenario, env=env)
            t = report["targets"][0]
            assert t["connect"]["status"] == 0, (t["connect"], realm.log()[-2000:])
            assert t["steps"][0]["stdout"] == "kerberos\n"
            soap = [r for r in srv.requests() if r.get("action")]
            assert all(r["encrypted"] == (tls_cfg is None) for r in soap), soap
            if tls_cfg is None:
                # a host offering only the Kerberos scheme: Kerberos-session-encrypted framing
                srv_k = server(**dict(cfg, auth=["kerberos"]))
                scenario["targets"][0]["port"] = srv_k.port
                t = drive.run(scenario, env=env)["targets"][0]
                assert t["steps"][0]["stdout"] == "kerberos\n", t
                soap = [r for r in srv_k.requests() if r.get("action")]
                assert all(r["auth_scheme"] == "Kerberos" and r["protocol"] == "application/HTTP-Kerberos-session-encrypted" for r in soap)
                scenario["targets"][0]["port"] = srv.port
            # a wrong password fails at the KDC, as an authentication error
            scenario["targets"][0]["cred"]["password"] = "wrong"
            t = drive.run(scenario, env=env)["targets"][0]
            assert t["connect"]["status"] == -10003, t["connect"]


# ---- commands -------------------------------------------------------------------------------


def test_exit_codes_large_and_negative(server):
    srv = server(strict=True)
    steps = [exec_step(f'echo {code} > "$WINRM_TEST_EXIT_CODE_FILE"') for code in (0, 1, 255, 4294967295, 2147483648, -1073741510, 3221225786)]
    conn, res = one(srv, steps)
    assert conn["status"] == 0, conn
    assert [r["exit_code"] for r in res] == [0, 1, 255, -1, -2147483648, -1073741510, -1073741510]
    assert all(r["status"] == 0 for r in res)


def test_stdout_and_stderr_are_separate(server):
    srv = server(strict=True)
    _, res = one(srv, [exec_step("echo out; echo err >&2; echo out2")])
    assert res[0]["stdout"] == "out\nout2\n"
    assert res[0]["stderr"].endswith("err\n")


def test_powershell_text_is_sent_encoded_and_recorded(server):
    srv = server(strict=True)
    cmd = "Write-Output 'héllo ✓'; Get-Date"
    one(srv, [exec_step(cmd)])
    cmds = [r for r in srv.requests() if r.get("action") == "Command"]
    assert cmds[0]["powershell_script"] == PS_PREAMBLE + cmd + "\nexit $LASTEXITCODE\n"
    assert cmds[0]["command"] == "powershell.exe"
    args = cmds[0]["arguments"][0].split()
    assert args[:3] == ["-NoProfile", "-NonInteractive", "-EncodedCommand"]
    assert base64.b64decode(args[3]).decode("utf-16-le") == cmds[0]["powershell_script"]


def test_shell_has_utf8_codepage_cwd_and_env(server, tmp_path):
    srv = server(strict=True)
    _, res = one(srv, [exec_step("pwd; echo $OPSC_A", cwd=str(tmp_path), env=["OPSC_A=1 2"]), exec_step("echo again")])
    assert res[0]["stdout"] == f"{tmp_path}\n1 2\n"
    creates = [r for r in srv.requests() if r.get("action") == "Create"]
    assert all(c["codepage"] == 65001 for c in creates)
    # connect made a plain shell; the command with cwd/env got its own, the next a plain one again
    assert [c["cwd"] == str(tmp_path) for c in creates] == [False, True, False]
    assert creates[1]["env"] == {"OPSC_A": "1 2"}
    assert res[1]["stdout"] == "again\n"


def test_shell_is_reused_with_a_bounded_number_of_commands(server):
    srv = server(strict=True)
    conn, res = one(srv, [exec_step(f"echo {i}") for i in range(7)], config={"operation_timeout": "5s", "commands_per_shell": "3"})
    assert [r["stdout"] for r in res] == [f"{i}\n" for i in range(7)]
    acts = actions(srv)
    assert acts.count("Create") == 3 and acts.count("Command") == 7
    assert acts.count("Delete") == 3  # two rotations and the close
    # every command gets its final Signal after its output
    assert acts.count("Signal") == 7


def test_messages_carry_the_ws_management_headers(server):
    srv = server(strict=True)
    one(srv, [exec_step("echo h")])
    for r in srv.requests():
        if r.get("action"):
            assert r["message_id"].startswith("uuid:")
            assert r["max_envelope_size"] == 512000
            assert r["locale"] == "en-US" and r["data_locale"] == "en-US"
            assert r["resource_uri"] == "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
            assert r["operation_timeout"] == ("PT5.000S" if r["action"] == "Receive" else r["operation_timeout"])


def test_stdin_is_streamed(server):
    srv = server(strict=True)
    data = "".join(f"line {i}\n" for i in range(20000))
    _, res = one(srv, [exec_step("tee /dev/stderr | md5sum", stdin=data, stdin_chunk=7000)])
    assert res[0]["status"] == 0
    assert res[0]["stdout"].split()[0] == hashlib.md5(data.encode()).hexdigest()
    assert res[0]["stderr"].endswith(data)


def test_fifty_megabytes_of_output_over_many_receives(server):
    srv = server(strict=True, chunk_size=262144)
    _, res = one(srv, [exec_step("head -c 52428800 /dev/zero | tr '\\0' 'x'; echo; echo done >&2")], timeout=900)
    assert res[0]["status"] == 0, res[0]
    assert res[0]["stdout_len"] == 52428801
    assert res[0]["stderr"].endswith("done\n")
    receives = [r for r in srv.requests() if r.get("action") == "Receive"]
    assert len(receives) > 100


def test_command_longer_than_several_operation_timeouts(server):
    srv = server(strict=True)
    _, res = one(srv, [exec_step("sleep 7; echo finally")], config={"operation_timeout": "2s"})
    assert res[0]["stdout"] == "finally\n" and res[0]["status"] == 0
    timeouts = [r for r in srv.requests() if r.get("fault_code") == 2150858793]
    assert len(timeouts) >= 3


def test_cancel_sends_signal_terminate(server):
    srv = server(strict=True)
    _, res = one(srv, [exec_step("sleep 60; echo never", cancel_after_ms=1500), exec_step("echo after")], config={"operation_timeout": "20s"})
    assert res[0]["status"] == -125, res[0]  # OPSC_ECANCELED
    assert res[0]["ms"] < 10000
    assert "never" not in res[0]["stdout"]
    assert res[1]["stdout"] == "after\n"
    sig = [r for r in srv.requests() if r.get("action") == "Signal"]
    assert sig[0]["signal"].endswith("/signal/terminate")


def test_timeout_stops_the_command(server):
    srv = server(strict=True)
    _, res = one(srv, [exec_step("sleep 60", timeout_ms=1500)], config={"operation_timeout": "20s"})
    assert res[0]["status"] == -110  # OPSC_ETIMEDOUT
    assert any(r.get("action") == "Signal" for r in srv.requests())


def test_pause_holds_the_next_receive(server):
    srv = server(strict=True, chunk_size=4096)
    _, res = one(srv, [exec_step("head -c 200000 /dev/zero | tr '\\0' 'y'", pause_after=4096, pause_ms=1500)])
    assert res[0]["stdout_len"] == 200000
    assert res[0]["ms"] >= 1500


def test_clixml_errors_are_decoded(server):
    srv = server(strict=True)
    clixml = ('#< CLIXML\\r\\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
              '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T></TN></Obj>'
              '<S S="Error">Cannot find path _x0027_C:\\\\nope_x0027_._x000D__x000A_</S>'
              '<S S="warning">careful</S></Objs>')
    _, res = one(srv, [exec_step(f"printf '{clixml}' >&2; exit 1")])
    assert "Cannot find path 'C:\\nope'.\r\n" in res[0]["stderr"], res[0]["stderr"]
    assert "WARNING: careful" in res[0]["stderr"]
    assert "<Objs" not in res[0]["stderr"]


def test_long_script_goes_through_stdin(server):
    srv = server(strict=True)
    script = "echo start\n" + "# " + "x" * 9000 + "\necho end"
    one(srv, [exec_step(script)])
    cmd = [r for r in srv.requests() if r.get("action") == "Command"][0]
    assert len(cmd["command_line"]) < 8191
    assert "[Console]::In.ReadLine()" in cmd["powershell_script"]
    sends = "".join(r.get("stdin", "") for r in srv.requests() if r.get("action") == "Send")
    assert base64.b64decode(sends.split("\r\n")[0]).decode() == script


def test_soap_faults_name_the_wsman_code(server):
    # An independent client holds the one shell the user may have, so our connect is the
    # second whatever the machine's load (two of our targets racing was timing-dependent).
    srv = server(auth=["basic", "negotiate"], allow_unencrypted=True, max_shells_per_user=1)
    holder = Client(srv.url, auth=("basic", drive.USER, drive.PASSWORD))
    shell_id = holder.create_shell()
    try:
        conn, _ = one(srv, [exec_step("echo never")])
    finally:
        holder.delete(shell_id)
        holder.close()
    assert conn["status"] != 0, conn
    assert "2150859173" in conn["error"] and "QuotaLimit" in conn["error"], conn
    conn, steps = one(srv, [exec_step("echo after")])
    assert conn["status"] == 0 and steps[0]["stdout"] == "after\n", (conn, steps)


def test_server_dropping_the_connection_mid_run(server):
    srv = server(strict=True, faults=[{"kind": "drop_connection", "action": "Receive", "nth": 2}])
    _, res = one(srv, [exec_step("sleep 3; echo late")], config={"operation_timeout": "1s"})
    assert res[0]["status"] == -104, res[0]  # OPSC_ECONNRESET
    assert res[0]["usable"] is False
    assert res[0]["error"]


def test_fifty_targets_at_once(server):
    srv = server(strict=True, max_shells_per_user=100)
    scenario = {"config": {"operation_timeout": "5s"}, "targets": [dict(target(srv), copies=50)], "steps": [exec_step("echo hi")]}
    report = run(scenario)
    assert all(t["connect"]["status"] == 0 for t in report["targets"])
    assert [t["steps"][0]["stdout"] for t in report["targets"]] == ["hi\n"] * 50
    print(f"50 targets: {report['wall_ms']:.0f} ms")


def test_validate_options_messages(server):
    cases = {
        '{"scheme": "ftp"}': "scheme",
        '{"cert_fingerprint": "abc"}': "64 hex",
        '{"bogus": 1}': "unknown key 'bogus'",
        '{"path": "wsman"}': "start with '/'",
        '{"ca_bundle": "relative.pem"}': "PEM text or an absolute",
        '[1]': "JSON object",
    }
    for opts, text in cases.items():
        report = run({"validate": opts, "targets": []})
        assert report["validate"]["status"] == -10006, opts
        assert text in report["validate"]["error"], (opts, report["validate"]["error"])
    ok = run({"validate": '{"scheme": "https", "verify": true, "path": "/wsman", "cert_fingerprint": "' + "ab" * 32 + '"}', "targets": []})
    assert ok["validate"]["status"] == 0


def test_plugin_exports_only_its_entry_point():
    import subprocess

    out = subprocess.run(["nm", "-D", "--defined-only", str(drive.PLUGIN)], capture_output=True, text=True, check=True).stdout
    symbols = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert symbols == ["opsc_plugin_entry"], symbols


def test_ntlm_over_https_binds_the_tls_channel(server, tls):
    # CbtHardeningLevel=Strict: NTLM over HTTPS must carry the tls-server-end-point binding
    srv = server(auth=["negotiate"], cbt_hardening="strict", tls={"cert": tls["server_pem"], "key": tls["server_key"]})
    conn, steps = one(srv, [exec_step("echo bound")], auth="ntlm", options={"ca_bundle": tls["server_pem"]}, address="localhost")
    assert conn["status"] == 0, conn
    assert steps[0]["stdout"] == "bound\n"
