"""test_tls.py - HTTPS served by the daemon itself, with a throw-away CA made by the test (openssl
CLI): curl and Python clients, refused certificates, client-certificate authentication, reload on
SIGHUP under load, a handshake flood and a slowloris over TLS, plain HTTP on a TLS port and
redirect_http, the web UI's Secure cookie over TLS."""
import datetime
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest
import requests

from conftest import BUILD_DIR, free_port, parse_response, read_all
from fixtures.tls import CA

NOW = datetime.datetime.now(datetime.timezone.utc)


@pytest.fixture
def ca(tmp_path):
    return CA(tmp_path / "ca")


@pytest.fixture
def server_cert(ca):
    return ca.issue("server", "localhost")


def tls_config(cert, key, port, tls_port, **server):
    keys = {"listen": f"127.0.0.1:{port}, 127.0.0.1:{tls_port} tls",
            "tls_cert": str(cert), "tls_key": str(key), "request_timeout": "3s"}
    keys.update(server)
    return {"server": keys}


def start(daemon_factory, cert, key, login=True, **server):
    port, tls_port = free_port(), free_port()
    d = daemon_factory(config=tls_config(cert, key, port, tls_port, **server), port=port,
                       login=login)
    d.tls_port = tls_port
    d.tls_base = f"https://localhost:{tls_port}"
    return d


@pytest.fixture
def tls_daemon(daemon_factory, server_cert):
    return start(daemon_factory, *server_cert)


def context(ca, cert=None):
    ctx = ssl.create_default_context(cafile=str(ca.cert))
    if cert:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


def tls_connect(d, ctx, timeout=10):
    raw = socket.create_connection(("127.0.0.1", d.tls_port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def tls_request(d, ctx, path, headers=None, method="GET", body=None):
    """(status, headers, body) of one request on a fresh TLS connection."""
    c = http.client.HTTPSConnection("localhost", d.tls_port, context=ctx, timeout=20)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True,
                          text=True, timeout=30)


def admin_token(d):
    return d.http.headers["Authorization"].split()[1]


def metric(d, name):
    line = next(l for l in d.get("/metrics").text.splitlines() if l.startswith(name + " "))
    return float(line.split()[1])


# ---- clients -------------------------------------------------------------------------------

def test_curl_and_python_clients_over_tls(tls_daemon, ca):
    d = tls_daemon
    r = curl("--cacert", str(ca.cert), "-D", "-", "-o", "/dev/null", "-w", "%{http_version}",
             d.tls_base + "/health")
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip().endswith("1.1")
    assert "strict-transport-security: max-age=31536000" in r.stdout.lower()
    r = curl("--cacert", str(ca.cert), "-v", "-o", "/dev/null", d.tls_base + "/health")
    assert "ALPN: server accepted http/1.1" in r.stderr
    # Python: requests with the CA, an authenticated read, keep-alive on one session.
    s = requests.Session()
    s.headers["Authorization"] = d.http.headers["Authorization"]
    for _ in range(5):  # verify= per request: REQUESTS_CA_BUNDLE would override Session.verify
        me = s.get(d.tls_base + "/api/v1/auth/me", verify=str(ca.cert), timeout=10)
        assert me.status_code == 200
        assert me.json()["user"]["username"] == "admin"
        assert me.headers["Strict-Transport-Security"] == "max-age=31536000"
    # The plain listener goes on, without HSTS (browsers ignore it there anyway).
    plain = d.get("/health")
    assert plain.status_code == 200 and "Strict-Transport-Security" not in plain.headers
    assert f"(port {d.port}, {d.tls_port} tls)" in d.stderr()
    assert metric(d, "opsc_tls_handshakes_total") >= 3


def test_wrong_ca_is_refused_by_clients(tls_daemon, tmp_path):
    other = CA(tmp_path / "other", "Some Other CA")
    r = curl("--cacert", str(other.cert), tls_daemon.tls_base + "/health")
    assert r.returncode == 60, r.stderr  # peer certificate cannot be authenticated
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(tls_daemon.tls_base + "/health", verify=str(other.cert), timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_connect(tls_daemon, context(other))
    assert tls_daemon.get("/health").status_code == 200


def test_session_resumption_and_tls_13_minimum(daemon_factory, server_cert, ca):
    d = start(daemon_factory, *server_cert, tls_min_version="1.3")
    ctx = context(ca)
    first = tls_connect(d, ctx)
    first.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    first.recv(4096)  # the TLS 1.3 tickets arrive with the answer
    assert first.version() == "TLSv1.3"
    session = first.session
    first.close()
    again = ctx.wrap_socket(socket.create_connection(("127.0.0.1", d.tls_port), timeout=10),
                            server_hostname="localhost", session=session)
    assert again.session_reused
    again.close()
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(str(ca.cert))
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        tls_connect(d, old)
    assert metric(d, "opsc_tls_resumed_total") == 1


# ---- certificates refused at start -------------------------------------------------------------

def test_expired_and_not_yet_valid_certificates_refuse_to_start(run_daemon, ca):
    cases = [
        (ca.issue("old", "localhost", start=NOW - datetime.timedelta(days=30),
                  end=NOW - datetime.timedelta(days=1)), "expired on"),
        (ca.issue("early", "localhost", start=NOW + datetime.timedelta(days=1),
                  end=NOW + datetime.timedelta(days=30)), "is not valid yet: valid from"),
    ]
    for (cert, key), why in cases:
        port, tls_port = free_port(), free_port()
        r = run_daemon(config=tls_config(cert, key, port, tls_port))
        assert r.returncode == 1
        assert "[server] tls_cert: " + str(cert) in r.stderr, r.stderr
        assert why in r.stderr and "/CN=localhost" in r.stderr
        assert "opsconductor.conf:" in r.stderr  # file and line of the key
        r = run_daemon(args=["--check-config"], config=tls_config(cert, key, port, tls_port))
        assert r.returncode == 1 and why in r.stderr


def test_key_readable_by_others_or_not_matching_refuses_to_start(run_daemon, ca, server_cert):
    cert, key = server_cert
    key.chmod(0o644)
    port, tls_port = free_port(), free_port()
    r = run_daemon(config=tls_config(cert, key, port, tls_port))
    assert r.returncode == 1
    assert f"[server] tls_key: {key}: the private key may be read by group or others " \
           "(mode 0644): chmod 600 it" in r.stderr, r.stderr
    key.chmod(0o600)
    _, other_key = ca.issue("other", "localhost")
    r = run_daemon(config=tls_config(cert, other_key, port, tls_port))
    assert r.returncode == 1 and "does not match the certificate" in r.stderr
    r = run_daemon(config=tls_config(cert, key, port, tls_port, tls_client_required="true"))
    assert r.returncode == 1
    assert "[server] tls_client_required: needs tls_client_ca" in r.stderr, r.stderr
    r = run_daemon(config={"server": {"listen": f"127.0.0.1:{port}, 127.0.0.1:{tls_port} tls"}})
    assert r.returncode == 1
    assert "[server] listen: cannot listen on 127.0.0.1:%d with TLS: no certificate" % tls_port \
        in r.stderr


# ---- client certificates -----------------------------------------------------------------------

def test_client_certificate_authenticates_as_the_user_its_cn_names(daemon_factory, ca,
                                                                   server_cert, tmp_path):
    d = start(daemon_factory, *server_cert, tls_client_ca=str(ca.cert))
    r = d.request("POST", "/api/v1/users", json={"username": "olga", "role": "operator",
                                                  "password": "olga-change-me-42-Xq"})
    assert r.status_code == 201, r.text
    olga = context(ca, ca.issue("olga", "olga", client=True))
    status, _, body = tls_request(d, olga, "/api/v1/auth/me")
    assert status == 200, body
    me = json.loads(body)
    assert me["user"]["username"] == "olga" and me["authenticated_by"] == "client_certificate"
    assert me["effective_role"] == "operator"
    assert tls_request(d, olga, "/api/v1/audit")[0] == 403  # her role, no more
    # An Authorization header, when sent, says who calls: the certificate does not.
    status, _, body = tls_request(d, olga, "/api/v1/auth/me",
                                  {"Authorization": "Bearer " + admin_token(d)})
    assert json.loads(body)["user"]["username"] == "admin"
    # A CN that names nobody, no certificate at all: public routes only.
    nobody = context(ca, ca.issue("nobody", "nobody", client=True))
    status, _, body = tls_request(d, nobody, "/api/v1/auth/me")
    assert status == 401 and "names no user" in json.loads(body)["error"]["message"]
    assert tls_request(d, nobody, "/health")[0] == 200
    assert tls_request(d, context(ca), "/api/v1/auth/me")[0] == 401
    # A certificate of another CA, or an expired one, fails the handshake.
    other = CA(tmp_path / "other", "Some Other CA")
    for bad in [other.issue("mallory", "admin", client=True),
                ca.issue("lapsed", "olga", client=True, start=NOW - datetime.timedelta(days=9),
                         end=NOW - datetime.timedelta(days=1))]:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            tls_request(d, context(ca, bad), "/api/v1/auth/me")
    # A disabled user's certificate opens nothing.
    uid = d.get("/api/v1/users").json()["items"]
    uid = next(u["id"] for u in uid if u["username"] == "olga")
    r = d.request("PATCH", f"/api/v1/users/{uid}", json={"enabled": False})
    assert r.status_code == 200, r.text
    assert tls_request(d, olga, "/api/v1/auth/me")[0] == 401


def test_required_client_certificate_gates_the_connection(daemon_factory, ca, server_cert):
    d = start(daemon_factory, *server_cert, tls_client_ca=str(ca.cert), tls_client_required="true")
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        tls_request(d, context(ca), "/health")
    admin = context(ca, ca.issue("admin", "admin", client=True))
    assert tls_request(d, admin, "/api/v1/users")[0] == 200
    assert d.get("/health").status_code == 200  # the plain loopback listener is not gated
    assert "client certificate required" in d.stderr()


# ---- reload -------------------------------------------------------------------------------------

def test_sighup_reloads_the_certificate_under_load_without_dropping_connections(
        daemon_factory, ca, server_cert):
    cert, key = server_cert
    d = start(daemon_factory, cert, key)
    ctx = context(ca)
    first_serial = CA.serial(cert)
    errors, done, stop = [], [0], threading.Event()
    conns = []

    def client():
        c = http.client.HTTPSConnection("localhost", d.tls_port, context=ctx, timeout=20)
        c.connect()
        conns.append(c)
        try:
            while not stop.is_set():
                c.request("GET", "/api/v1/auth/me", headers=dict(d.http.headers))
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    errors.append(r.status)
                done[0] += 1
        except Exception as e:  # noqa: BLE001 - any failure is the test's failure
            errors.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    before = done[0]
    ca.issue("server", "localhost", days=3)  # renewed in place, as certbot does
    assert CA.serial(cert) != first_serial
    d.send_signal(signal.SIGHUP)
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert done[0] > before + 20  # the load went on through the reload
    for c in conns:  # each connection kept the certificate it shook hands with
        peer = ssl.DER_cert_to_PEM_cert(c.sock.getpeercert(binary_form=True))
        assert first_serial.lower() in subprocess.run(
            ["openssl", "x509", "-noout", "-serial"], input=peer, capture_output=True,
            text=True).stdout.lower()
        c.close()
    fresh = tls_connect(d, ctx)
    pem = ssl.DER_cert_to_PEM_cert(fresh.getpeercert(binary_form=True))
    fresh.close()
    assert CA.serial(cert).lower() in subprocess.run(
        ["openssl", "x509", "-noout", "-serial"], input=pem, capture_output=True,
        text=True).stdout.lower()
    assert "SIGHUP: TLS certificate reloaded" in d.stderr()
    # A bad certificate at the next reload is refused; the one in use stays.
    good = cert.read_bytes()
    expired_cert, _ = ca.issue("expired", "localhost", start=NOW - datetime.timedelta(days=9),
                               end=NOW - datetime.timedelta(days=1))
    cert.write_bytes(expired_cert.read_bytes())
    d.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "TLS not reloaded" not in d.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "SIGHUP: TLS not reloaded, the certificate in use stays" in d.stderr()
    assert "expired on" in d.stderr()
    assert tls_request(d, ctx, "/health")[0] == 200
    cert.write_bytes(good)


# ---- abuse --------------------------------------------------------------------------------------

def test_handshake_flood_and_slowloris_over_tls_keep_health_answering(tls_daemon, ca):
    d = tls_daemon
    ctx = context(ca)
    stop = threading.Event()
    handshakes = [0]

    def flood():  # full handshakes, back to back, then dropped
        while not stop.is_set():
            try:
                tls_connect(d, ctx, timeout=5).close()
                handshakes[0] += 1
            except OSError:
                pass

    def stalled():  # TCP connections that start a handshake and never finish it
        return [socket.create_connection(("127.0.0.1", d.tls_port), timeout=10)
                for _ in range(50)]

    hello_starts = stalled()
    for s in hello_starts:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    slow = [tls_connect(d, ctx) for _ in range(30)]
    request = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Pad: 0123456789\r\n\r\n"
    threads = [threading.Thread(target=flood) for _ in range(3)]
    for t in threads:
        t.start()
    latencies, statuses = [], []
    health = http.client.HTTPSConnection("localhost", d.tls_port, context=ctx, timeout=10)
    began = time.monotonic()
    try:
        for i in range(40):
            # A byte at a time, each in its own record, until just before the 3 s timeout.
            for s in slow if time.monotonic() - began < 2.5 else []:
                s.sendall(request[i:i + 1])
            t0 = time.monotonic()
            health.request("GET", "/health")
            r = health.getresponse()
            r.read()
            latencies.append(time.monotonic() - t0)
            statuses.append(r.status)
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        health.close()
    assert statuses == [200] * 40
    assert max(latencies) < 2.0, sorted(latencies)[-5:]
    assert handshakes[0] > 20
    # The slowloris got 408 once request_timeout (3 s) ran out; the stalled handshakes were closed.
    for s in slow:
        status, headers, _ = parse_response(read_all(s))
        assert status == 408 and headers["connection"] == "close"
        s.close()
    for s in hello_starts:
        s.settimeout(10)
        assert read_all(s) == b""
        s.close()
    assert metric(d, "opsc_tls_handshake_failures_total") >= 50
    assert d.running()


# ---- plain HTTP where HTTPS is due ------------------------------------------------------------------

def test_plain_http_on_the_tls_port_gets_a_clear_error(tls_daemon):
    d = tls_daemon
    with socket.create_connection(("127.0.0.1", d.tls_port), timeout=10) as s:
        s.sendall(f"GET /api/v1/jobs HTTP/1.1\r\nHost: localhost:{d.tls_port}\r\n\r\n".encode())
        status, headers, body = parse_response(read_all(s))
    assert status == 400 and headers["connection"] == "close"
    err = json.loads(body)["error"]
    assert err["code"] == "https_required"
    assert f"use https://localhost:{d.tls_port}/api/v1/jobs" in err["message"]
    r = curl(f"http://localhost:{d.tls_port}/health")
    assert "https_required" in r.stdout


def test_redirect_http_sends_plain_clients_to_https(daemon_factory, server_cert, ca):
    d = start(daemon_factory, *server_cert, login=False, redirect_http="true")
    r = requests.post(d.tls_base + "/api/v1/auth/login", verify=str(ca.cert), timeout=30,
                      json={"username": "admin", "password": d.admin_password})
    token = r.json()["access_token"]
    r = requests.get(d.url("/api/v1/auth/me"), allow_redirects=False, timeout=10)
    assert r.status_code == 301
    assert r.headers["Location"] == f"https://127.0.0.1:{d.tls_port}/api/v1/auth/me"
    r = requests.post(d.url("/api/v1/auth/login"), json={}, allow_redirects=False, timeout=10)
    assert r.status_code == 308  # the method and body are kept
    assert d.get("/health").status_code == 200 and d.get("/ready").status_code == 200
    # --location-trusted: curl keeps Authorization only for the host and port it was given.
    r = curl("--location-trusted", "--cacert", str(ca.cert), "-H", "Authorization: Bearer " + token,
             f"http://localhost:{d.port}/api/v1/auth/me")
    assert r.returncode == 0 and json.loads(r.stdout)["user"]["username"] == "admin"


# ---- the web UI over TLS ----------------------------------------------------------------------------

def test_web_ui_over_tls_and_the_secure_cookie(daemon_factory, server_cert, ca, tmp_path):
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>ui</title>")
    port, tls_port = free_port(), free_port()
    cfg = tls_config(*server_cert, port, tls_port)
    cfg["web"] = {"dir": str(web)}
    d = daemon_factory(config=cfg, port=port)
    base = f"https://localhost:{tls_port}"
    r = requests.get(base + "/jobs/new", verify=str(ca.cert), timeout=10)  # the SPA fallback
    assert r.status_code == 200 and r.text.startswith("<!doctype html>")
    assert "Content-Security-Policy" in r.headers
    login = {"username": "admin", "password": d.admin_password}
    cookie = {"X-OPSC-Session": "cookie"}
    r = requests.post(base + "/api/v1/auth/login", json=login, headers=cookie,
                      verify=str(ca.cert), timeout=30)
    assert r.status_code == 200, r.text
    assert "; Secure" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]
    r = requests.post(d.url("/api/v1/auth/login"), json=login, headers=cookie, timeout=30)
    assert r.status_code == 200 and "Secure" not in r.headers["Set-Cookie"]


def test_ipv6_tls_listener(daemon_factory, server_cert, ca):
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    port, tls_port = free_port(), free_port()
    cfg = tls_config(*server_cert, port, tls_port)
    cfg["server"]["listen"] = f"127.0.0.1:{port}, [::1]:{tls_port} tls"
    daemon_factory(config=cfg, port=port)
    r = curl("--cacert", str(ca.cert), f"https://[::1]:{tls_port}/health")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "ok"


def test_opsctl_logs_in_and_works_over_https(tls_daemon, ca, tmp_path):
    opsctl = BUILD_DIR / "cli" / "opsctl" / "opsctl"
    if not opsctl.exists():
        pytest.skip("opsctl is not built")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSC_")}
    env.update({"XDG_CONFIG_HOME": str(tmp_path / "home"), "OPSC_URL": tls_daemon.tls_base,
                "LC_ALL": "C.UTF-8"})

    def run(*args, extra=None, input=None):
        return subprocess.run([str(opsctl), *args], capture_output=True, text=True, timeout=60,
                              input=input, env=dict(env, **(extra or {})))

    r = run("login", "-u", "admin", "--password-stdin", input=tls_daemon.admin_password + "\n")
    assert r.returncode != 0  # the system's CAs do not know the throw-away one
    trust = {"OPSC_CACERT": str(ca.cert)}
    r = run("login", "-u", "admin", "--password-stdin", extra=trust,
            input=tls_daemon.admin_password + "\n")
    assert r.returncode == 0, r.stderr
    r = run("whoami", "-o", "json", extra=trust)
    assert r.returncode == 0, r.stderr
    assert "admin" in r.stdout
