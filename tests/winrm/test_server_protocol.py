"""The WinRM test server's faults, limits, signals, fault injection and GSS-API wrap layouts, via wsman_client."""

import http.client
import os
import shutil
import socket
import time
import xml.etree.ElementTree as ET

import pytest
from wsman_client import NS, Client, Fault, envelope

USER, PASSWORD = "alice", "Secr3t-Pa55!"
PLAIN = {"auth": ["basic"], "allow_unencrypted": True, "users": [{"name": USER, "password": PASSWORD}]}


def _client(srv, **kw):
    return Client(srv.url, auth=("basic", USER, PASSWORD), **kw)


def _fault(call):
    with pytest.raises(Fault) as info:
        call()
    return info.value


def test_unknown_shell_answers_invalid_selectors_fault(winrm_server):
    srv = winrm_server(PLAIN)
    mid, xml = envelope(f"{NS['rsp']}/Command", "0000-NOT-A-SHELL", "<rsp:CommandLine><rsp:Command>x</rsp:Command></rsp:CommandLine>")
    fault = _fault(lambda: _client(srv).post(xml))
    assert (fault.status, fault.code, fault.subcode, fault.relates_to) == (500, 2150858843, "w:InvalidSelectors", mid)
    assert "ShellId 0000-NOT-A-SHELL failed because the shell was not found" in fault.root.findtext(".//f:Message", namespaces=NS)


def test_user_without_access_gets_access_denied(winrm_server):
    srv = winrm_server(dict(PLAIN, users=[{"name": USER, "password": PASSWORD, "allowed": False}]))
    fault = _fault(lambda: _client(srv).create_shell())
    assert (fault.code, fault.subcode) == (5, "w:AccessDenied")


def test_shell_quota_per_user(winrm_server):
    srv = winrm_server(dict(PLAIN, max_shells_per_user=2))
    client = _client(srv)
    first = client.create_shell()
    client.create_shell()
    fault = _fault(client.create_shell)
    assert (fault.code, fault.subcode) == (2150859173, "w:QuotaLimit")
    assert "maximum number of 2 concurrent shells" in fault.reason
    client.delete(first)
    assert client.create_shell()


def test_command_line_too_long_is_reported_like_cmd_exe(winrm_server):
    srv = winrm_server(PLAIN)
    out, err, code = _client(srv).run("echo " + "x" * 8200)
    assert (out, err, code) == (b"", b"The command line is too long.\r\n", 1)
    out, _err, code = _client(srv).run("echo " + "y" * 8180)
    assert (len(out), code) == (8181, 0)


def test_malformed_envelope_is_a_schema_validation_fault(winrm_server):
    srv = winrm_server(PLAIN)
    fault = _fault(lambda: _client(srv).post(b"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Header>"))
    assert (fault.code, fault.subcode, fault.relates_to) == (2150858817, "w:SchemaValidationError", None)
    fault = _fault(lambda: _client(srv).post(envelope(f"{NS['rsp']}/Receive", "S", timeout="sixty")[1]))
    assert (fault.code, fault.subcode) == (2150858767, "a:InvalidMessageInformationHeader")
    fault = _fault(lambda: _client(srv).post(envelope(f"{NS['x']}/Create", resource="http://example.invalid/r")[1]))
    assert (fault.code, fault.subcode) == (2150858752, "w:DestinationUnreachable")


def test_max_envelope_size_is_enforced_both_ways(winrm_server):
    srv = winrm_server(dict(PLAIN, max_envelope_size=20000, chunk_size=1 << 20))
    client = _client(srv)
    fault = _fault(lambda: client.post(envelope(f"{NS['x']}/Create", max_env=4096)[1]))
    assert (fault.code, fault.subcode) == (2150858878, "w:EncodingLimit")
    status, _headers, _body = client.raw(envelope(f"{NS['x']}/Create", body="<rsp:Shell>" + " " * 20000 + "</rsp:Shell>")[1])
    assert status == 413
    shell = client.create_shell()
    cmd = client.command(shell, "head -c 100000 /dev/zero | tr '\\0' 'z'")
    out, _err, code, responses, _ = client.receive_all(shell, cmd, max_env=8192)
    assert (len(out), code) == (100000, 0) and responses >= 100000 // 8192
    sizes = [r for r in srv.requests() if r.get("action") == "Receive"]
    assert all(sum(r["bytes"].values()) <= (8192 - 2048) * 3 // 4 for r in sizes)


def test_receive_times_out_with_the_real_fault(winrm_server):
    srv = winrm_server(PLAIN)
    client = _client(srv)
    shell = client.create_shell()
    cmd = client.command(shell, "sleep 5")
    started = time.monotonic()
    fault = _fault(lambda: client.receive_once(shell, cmd, timeout="PT0.700S"))
    assert 0.6 < time.monotonic() - started < 3
    assert (fault.status, fault.code, fault.subcode) == (500, 2150858793, "w:TimedOut")
    assert fault.reason.startswith("The WS-Management service cannot complete the operation within the time specified")
    client.signal(shell, cmd, "terminate")
    client.delete(shell)


def test_operation_timeout_floor_and_cap(winrm_server):
    srv = winrm_server(dict(PLAIN, operation_timeout_floor=1.0, operation_timeout_cap=1.5))
    client = _client(srv)
    shell = client.create_shell()
    cmd = client.command(shell, "sleep 10")
    for asked, low, high in (("PT0.1S", 0.9, 1.4), ("PT30S", 1.4, 2.5)):
        started = time.monotonic()
        _fault(lambda: client.receive_once(shell, cmd, timeout=asked))
        assert low < time.monotonic() - started < high
    client.delete(shell)


def test_stdin_with_end_and_signals(winrm_server):
    srv = winrm_server(PLAIN)
    client = _client(srv)
    shell = client.create_shell()
    cmd = client.command(shell, "tr a-z A-Z")
    client.send(shell, cmd, b"hello ")
    client.send(shell, cmd, b"world\n", end=True)
    assert client.receive_all(shell, cmd)[:3] == (b"HELLO WORLD\n", b"", 0)
    client.signal(shell, cmd, "terminate")
    cmd = client.command(shell, "sleep 30")
    client.signal(shell, cmd, "ctrl_c")
    assert client.receive_all(shell, cmd)[2] == -1073741510
    cmd = client.command(shell, "sleep 30")
    client.signal(shell, cmd, "terminate")
    fault = _fault(lambda: client.receive_once(shell, cmd))
    assert (fault.code, fault.subcode) == (87, "w:InvalidParameter")
    client.delete(shell)
    assert srv.shells() == []
    sends = [r for r in srv.requests() if r.get("action") == "Send"]
    assert [(r["stdin"], r["end"]) for r in sends] == [("hello ", False), ("world\n", True)]


def test_dropped_connection_mid_run_keeps_the_command_running(winrm_server):
    srv = winrm_server(PLAIN)
    client = _client(srv)
    shell = client.create_shell()
    cmd = client.command(shell, "echo before; sleep 0.5; echo after")
    srv.arm_fault(kind="drop_connection", action="Receive", nth=1)
    with pytest.raises((http.client.HTTPException, ConnectionError, socket.error)):
        client.receive_once(shell, cmd)
    again = _client(srv)
    assert again.receive_all(shell, cmd)[:3] == (b"before\nafter\n", b"", 0)
    assert [r.get("injected") for r in srv.requests() if r.get("action") == "Receive"][0] == "drop_connection"


def test_headers_are_recorded_and_answered(winrm_server):
    srv = winrm_server(PLAIN)
    client = _client(srv)
    mid, xml = envelope(f"{NS['x']}/Create", body="<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams></rsp:Shell>")
    root = client.post(xml)
    assert root.findtext(".//a:RelatesTo", namespaces=NS) == mid
    assert root.findtext(".//a:Action", namespaces=NS) == NS["x"] + "/CreateResponse"
    assert root.findtext(".//a:MessageID", namespaces=NS).startswith("uuid:")
    rec = srv.requests()[-1]
    assert (rec["message_id"], rec["locale"], rec["data_locale"], rec["max_envelope_size"]) == (mid, "en-US", "en-GB", 153600)
    assert rec["resource_uri"] == "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"


def test_client_certificate_maps_to_a_user(winrm_server, tls_material):
    from fixture import cert_thumbprint  # noqa: PLC0415

    tls = {"cert": tls_material["server_pem"], "key": tls_material["server_key"], "client_ca": tls_material["ca_pem"]}
    mapping = [{"thumbprint": cert_thumbprint(tls_material["client_pem"]), "user": USER}]
    srv = winrm_server({"auth": ["certificate"], "users": [{"name": USER}], "tls": tls, "cert_mappings": mapping})
    url = f"https://localhost:{srv.port}/wsman"
    client = Client(url, ca_file=tls_material["server_pem"], cert=(tls_material["client_pem"], tls_material["client_key"]))
    shell_body = envelope(f"{NS['x']}/Create", body="<rsp:Shell/>")[1]
    mutual = {"Authorization": "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"}
    status, _headers, _data = client.raw(shell_body, mutual)
    assert status == 200
    anonymous = Client(url, ca_file=tls_material["server_pem"])
    assert anonymous.raw(shell_body, mutual)[0] == 401
    assert [r["auth_scheme"] for r in srv.requests()] == ["Certificate", None]


needs_gss_ntlmssp = pytest.mark.skipif(
    not os.path.exists("/usr/lib/x86_64-linux-gnu/gssntlmssp/gssntlmssp.so"), reason="gss-ntlmssp is not installed"
)


@needs_gss_ntlmssp
@pytest.mark.parametrize("mech_oid", ["1.3.6.1.4.1.311.2.2.10", "1.3.6.1.5.5.2"])
def test_gss_ntlmssp_client_seals_with_gss_wrap(winrm_server, tmp_path, monkeypatch, mech_oid):
    """MIT libgssapi + gss-ntlmssp, raw NTLM or SPNEGO: gss_wrap_iov is unavailable, gss_wrap's first 16 bytes are the header."""
    import gssapi  # noqa: PLC0415
    import gssapi.raw as gr  # noqa: PLC0415

    (tmp_path / "ntlm_users").write_text(f"OPSC:{USER}:{PASSWORD}\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(tmp_path / "ntlm_users"))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path}/no-ccache")  # SPNEGO must not find Kerberos creds
    srv = winrm_server({"auth": ["negotiate"], "users": [{"name": USER, "password": PASSWORD}], "strict": True})
    ntlm, mech = gssapi.OID.from_int_seq("1.3.6.1.4.1.311.2.2.10"), gssapi.OID.from_int_seq(mech_oid)
    user = gssapi.Name("OPSC\\" + USER, gssapi.NameType.user)
    creds = gssapi.Credentials(name=user, mechs=[mech], usage="initiate")
    if mech != ntlm:
        gr.set_neg_mechs(creds, [ntlm])
    flags = [gssapi.RequirementFlag.confidentiality, gssapi.RequirementFlag.integrity, gssapi.RequirementFlag.mutual_authentication]
    ctx = gssapi.SecurityContext(name=gssapi.Name("HTTP@localhost", gssapi.NameType.hostbased_service), mech=mech, creds=creds, flags=flags)
    client = Client(srv.url, auth=("gss", "Negotiate", ctx, False))
    assert client.run("printf sealed; exit 9") == (b"sealed", b"", 9)
    if mech != ntlm:  # SPNEGO: both sides' mechListMIC verified, then RC4 restarted, sequence numbers kept
        import spnego  # noqa: PLC0415

        assert spnego.parse_resp(client.final_token)["mic"] is not None
    with pytest.raises(gssapi.exceptions.GSSError):
        gr.wrap_iov(ctx, gr.IOV(gr.IOVBufferType.header, b"x", gr.IOVBufferType.padding, std_layout=False), confidential=True)
    assert len(gr.wrap(ctx, b"y" * 100, True).message) == 116
    assert all(r["encrypted"] for r in srv.requests() if r.get("action"))


@pytest.mark.parametrize(
    "scheme,mech_oid,protocol",
    [
        ("Kerberos", "1.2.840.113554.1.2.2", "application/HTTP-Kerberos-session-encrypted"),
        ("Negotiate", "1.3.6.1.5.5.2", "application/HTTP-SPNEGO-session-encrypted"),
    ],
)
def test_kerberos_message_encryption_with_gss_wrap_iov(winrm_server, kdc, scheme, mech_oid, protocol):
    import gssapi  # noqa: PLC0415

    srv = winrm_server(
        {
            "auth": ["negotiate", "kerberos"],
            "users": [{"name": USER, "principal": kdc.user_principal}],
            "kerberos": {"keytab": kdc.keytab, "krb5_config": kdc.krb5_conf},
            "chunk_size": 100,
        }
    )
    flags = [gssapi.RequirementFlag.confidentiality, gssapi.RequirementFlag.integrity, gssapi.RequirementFlag.mutual_authentication]
    target = gssapi.Name("HTTP@localhost", gssapi.NameType.hostbased_service)
    ctx = gssapi.SecurityContext(name=target, mech=gssapi.OID.from_int_seq(mech_oid), flags=flags)
    client = Client(f"http://localhost:{srv.port}/wsman", auth=("gss", scheme, ctx, True), protocol=protocol)
    out, err, code = client.run("seq 1 300")
    assert (out, err, code) == (b"".join(b"%d\n" % i for i in range(1, 301)), b"", 0)
    assert ctx.complete and client.final_token is not None  # mutual authentication: the AP-REP came back
    soap = [r for r in srv.requests() if r.get("action")]
    assert soap and all(r["encrypted"] and r["protocol"] == protocol and r["user"] == USER for r in soap)


def test_server_script_prints_its_port(tmp_path):
    import json  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(PLAIN))
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.Popen([sys.executable, os.path.join(here, "server.py"), "--config", str(cfg), "--port-file", str(tmp_path / "port")], stdout=subprocess.PIPE)
    try:
        info = json.loads(proc.stdout.readline())
        assert int((tmp_path / "port").read_text()) == info["port"] > 0
        assert info["url"] == f"http://127.0.0.1:{info['port']}/wsman"
        assert Client(info["url"], auth=("basic", USER, PASSWORD)).run("echo via-cli")[0] == b"via-cli\n"
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        proc.stdout.close()
    assert shutil.which("openssl")


IDENTIFY = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
            b'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">'
            b"<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>")


def _identify(srv, headers):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("POST", "/wsman", IDENTIFY, dict(headers, **{"Content-Type": "application/soap+xml;charset=UTF-8"}))
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


def test_unauthenticated_identify_is_answered_only_with_its_header(winrm_server):
    srv = winrm_server({"users": [{"name": USER, "password": PASSWORD}], "identify": {"product_version": "OS: 10.0.20348 SP: 0.0 Stack: 3.0"}})
    status, body = _identify(srv, {"WSMANIDENTIFY": "unauthenticated"})
    assert status == 200
    root = ET.fromstring(body)
    ns = {"wsmid": "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"}
    assert root.findtext(".//wsmid:ProductVendor", namespaces=ns) == "Microsoft Corporation"
    assert root.findtext(".//wsmid:ProductVersion", namespaces=ns) == "OS: 10.0.20348 SP: 0.0 Stack: 3.0"
    assert root.findtext(".//wsmid:ProtocolVersion", namespaces=ns) == "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
    status, _ = _identify(srv, {})
    assert status == 401  # without the header it is a request like any other: authenticate first
