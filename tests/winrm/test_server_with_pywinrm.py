"""The WinRM test server driven by an independent client: Debian's python3-winrm (pywinrm 0.3.0)."""

import time

import pytest
import winrm
from winrm.exceptions import InvalidCredentialsError, WinRMTransportError

USER, PASSWORD = "alice", "Secr3t-Pa55!"
USERS = [{"name": USER, "password": PASSWORD, "domain": "OPSC"}]


def _session(url, transport, **kw):
    return winrm.Session(url, auth=(kw.pop("user", USER), kw.pop("password", PASSWORD)), transport=transport, **kw)


def _wsman(records):
    return [r for r in records if r.get("action")]


def test_basic_over_https_runs_a_command(winrm_server, tls_material):
    srv = winrm_server({"auth": ["basic"], "users": USERS, "tls": {"cert": tls_material["server_pem"], "key": tls_material["server_key"]}})
    url = f"https://localhost:{srv.port}/wsman"
    r = _session(url, "ssl", ca_trust_path=tls_material["server_pem"]).run_cmd("echo out; echo err >&2; exit 3")
    assert (r.std_out, r.std_err, r.status_code) == (b"out\n", b"err\n", 3)
    actions = [(x["action"], x["auth_scheme"], x["encrypted"]) for x in _wsman(srv.requests())]
    # pywinrm polls Receive until the command is done: one or more, by how fast it ends.
    actions = [a for i, a in enumerate(actions) if i == 0 or a != actions[i - 1]]
    assert actions == [(a, "Basic", False) for a in ("Create", "Command", "Receive", "Signal", "Delete")]


def test_basic_over_http_is_refused_unless_unencrypted_is_allowed(winrm_server):
    strict = winrm_server({"auth": ["basic", "negotiate"], "users": USERS})
    with pytest.raises(InvalidCredentialsError):
        _session(strict.url, "basic").run_cmd("true")
    assert strict.requests()[0]["status"] == 401
    assert 'Basic realm="WSMAN"' not in strict.requests()[0]["scheme_offered"]
    relaxed = winrm_server({"auth": ["basic"], "users": USERS, "allow_unencrypted": True})
    assert _session(relaxed.url, "basic").run_cmd("echo ok").std_out == b"ok\n"


def test_wrong_password_is_rejected_with_401(winrm_server):
    srv = winrm_server({"auth": ["negotiate"], "users": USERS})
    with pytest.raises(InvalidCredentialsError):
        _session(srv.url, "ntlm", password="wrong").run_cmd("true")
    assert "NTLMv2 response does not verify" in srv.requests()[-1]["reason"]


@pytest.mark.parametrize("schemes,expected", [(["negotiate"], "Negotiate"), (["negotiate", "ntlm"], "NTLM")])
def test_ntlm_over_http_encrypts_every_message(winrm_server, schemes, expected):
    srv = winrm_server({"auth": schemes, "users": USERS, "chunk_size": 64})
    r = _session(srv.url, "ntlm", user="OPSC\\alice").run_cmd("seq 1 200; echo done >&2; exit 5")
    assert r.std_out == b"".join(b"%d\n" % i for i in range(1, 201))
    assert (r.std_err, r.status_code) == (b"done\n", 5)
    soap = _wsman(srv.requests())
    assert soap and all(x["encrypted"] and x["protocol"] == "application/HTTP-SPNEGO-session-encrypted" for x in soap)
    assert {x["auth_scheme"] for x in soap} == {expected}
    receives = [x for x in soap if x["action"] == "Receive"]
    assert len(receives) >= 10 and max(x["bytes"].get("stdout", 0) for x in receives) <= 64


def test_ntlm_over_https_checks_channel_binding(winrm_server, tls_material):
    srv = winrm_server(
        {"auth": ["negotiate"], "users": USERS, "cbt_hardening": "strict", "tls": {"cert": tls_material["server_pem"], "key": tls_material["server_key"]}}
    )
    url = f"https://localhost:{srv.port}/wsman"
    r = _session(url, "ntlm", ca_trust_path=tls_material["server_pem"]).run_cmd("echo tls")
    assert (r.std_out, r.status_code) == (b"tls\n", 0)
    soap = _wsman(srv.requests())
    assert soap and not any(x["encrypted"] for x in soap)
    with pytest.raises(InvalidCredentialsError):
        _session(url, "ntlm", ca_trust_path=tls_material["server_pem"], send_cbt=False).run_cmd("true")
    assert srv.requests()[-1]["reason"].endswith("channel binding token required")


def test_strict_mode_refuses_plaintext_soap_over_http(winrm_server):
    srv = winrm_server({"strict": True, "auth": ["basic", "negotiate"], "users": USERS})
    with pytest.raises(WinRMTransportError):
        _session(srv.url, "ntlm", message_encryption="never").run_cmd("true")
    assert srv.requests()[-1]["reason"] == "unencrypted body refused (AllowUnencrypted=false)"
    assert _session(srv.url, "ntlm").run_cmd("echo sealed").std_out == b"sealed\n"


def test_kerberos_over_https(winrm_server, tls_material, kdc):
    srv = winrm_server(
        {
            "auth": ["negotiate", "kerberos"],
            "users": [{"name": USER, "principal": kdc.user_principal}],
            "kerberos": {"keytab": kdc.keytab, "krb5_config": kdc.krb5_conf},
            "tls": {"cert": tls_material["server_pem"], "key": tls_material["server_key"]},
        }
    )
    url = f"https://localhost:{srv.port}/wsman"
    session = winrm.Session(url, auth=(kdc.user_principal, ""), transport="kerberos", ca_trust_path=tls_material["server_pem"])
    r = session.run_cmd("echo kerberos")
    assert (r.std_out, r.status_code) == (b"kerberos\n", 0)
    soap = _wsman(srv.requests())
    assert {(x["auth_scheme"], x["user"]) for x in soap} == {("Negotiate", USER)}


def test_kerberos_over_http_cannot_encrypt_with_debian_pykerberos(winrm_server, kdc):
    # pywinrm encrypts Kerberos only through pykerberos' authGSSWinRMEncryptMessage, which
    # Debian 12's python3-kerberos 1.1.14 lacks: it sends plaintext, which strict mode refuses.
    krb = {"keytab": kdc.keytab, "krb5_config": kdc.krb5_conf}
    users = [{"name": USER, "principal": kdc.user_principal}]
    strict = winrm_server({"auth": ["negotiate"], "users": users, "kerberos": krb})
    session = winrm.Session(f"http://localhost:{strict.port}/wsman", auth=(kdc.user_principal, ""), transport="kerberos")
    with pytest.raises(WinRMTransportError):
        session.run_cmd("true")
    assert session.protocol.transport.encryption is None
    assert strict.requests()[-1]["status"] == 500
    relaxed = winrm_server({"auth": ["negotiate"], "users": users, "kerberos": krb, "allow_unencrypted": True})
    url = f"http://localhost:{relaxed.port}/wsman"
    r = winrm.Session(url, auth=(kdc.user_principal, ""), transport="kerberos").run_cmd("echo plain")
    assert r.std_out == b"plain\n"


def test_long_command_spans_several_operation_timeouts(winrm_server):
    srv = winrm_server({"auth": ["negotiate"], "users": USERS})
    session = _session(srv.url, "ntlm", operation_timeout_sec=1, read_timeout_sec=3)
    started = time.monotonic()
    r = session.run_cmd("sleep 3.2; echo finally")
    assert (r.std_out, r.status_code) == (b"finally\n", 0)
    assert time.monotonic() - started >= 3.2
    receives = [x for x in _wsman(srv.requests()) if x["action"] == "Receive"]
    timed_out = [x for x in receives if x.get("fault_code") == 2150858793]
    assert len(timed_out) >= 2
    assert all(x["operation_timeout"] == "PT1S" and x["fault_subcode"] == "w:TimedOut" for x in timed_out)


def test_run_ps_records_the_decoded_script(winrm_server):
    srv = winrm_server({"auth": ["negotiate"], "users": USERS})
    # No stderr here: pywinrm 0.3.0's run_ps compares stderr bytes with a str and raises on Python 3.
    script = 'echo "ps stand-in: $((6*7))"; echo "zweite Zeile – ü"'
    r = _session(srv.url, "ntlm").run_ps(script)
    assert (r.std_out, r.std_err, r.status_code) == ("ps stand-in: 42\nzweite Zeile – ü\n".encode("cp437", "replace"), b"", 0)
    command = [x for x in srv.requests() if x.get("action") == "Command"][0]
    assert command["powershell_script"] == script
    assert command["command"].startswith("powershell -encodedcommand ")


def test_large_and_negative_exit_codes(winrm_server):
    srv = winrm_server({"auth": ["negotiate"], "users": USERS})
    session = _session(srv.url, "ntlm")
    for code in (-1073741510, 2147483647, -1):
        r = session.run_cmd(f'printf -- "{code}" > "$WINRM_TEST_EXIT_CODE_FILE"')
        assert r.status_code == code
    assert session.run_cmd('printf 4294967295 > "$WINRM_TEST_EXIT_CODE_FILE"').status_code == -1


def test_shell_honours_codepage_working_directory_and_environment(winrm_server, tmp_path):
    srv = winrm_server({"auth": ["negotiate"], "users": USERS})
    proto = _session(srv.url, "ntlm").protocol
    shell = proto.open_shell(working_directory=str(tmp_path), env_vars={"OPSC_VAR": "v1"}, codepage=1252)
    cmd = proto.run_command(shell, 'printf "%s|%s|caf\\303\\251" "$(pwd)" "$OPSC_VAR"')
    out, err, code = proto.get_command_output(shell, cmd)
    proto.cleanup_command(shell, cmd)
    proto.close_shell(shell)
    assert (out, err, code) == (f"{tmp_path}|v1|caf\xe9".encode("cp1252"), b"", 0)
    create = [x for x in srv.requests() if x.get("action") == "Create"][0]
    assert (create["codepage"], create["cwd"], create["env"]) == (1252, str(tmp_path), {"OPSC_VAR": "v1"})
