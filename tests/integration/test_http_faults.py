"""test_http_faults.py - the real daemon under bad input, bad clients, bad config and signals."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import DAEMON, clean_env, free_port, parse_response, read_all


def error_of(body):
    err = json.loads(body)["error"]
    assert set(err) == {"code", "message", "details"}
    return err


# ---- malformed requests ------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b"THIS IS NOT HTTP\r\n\r\n",
    b"GET /health HTTP/1.1\r\nNo colon here\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET /he\x01alth HTTP/1.1\r\n\r\n",
])
def test_malformed_request_gets_400_and_close(daemon, raw):
    status, headers, body = parse_response(daemon.raw(raw))
    assert status == 400
    assert headers["connection"] == "close"
    assert error_of(body)["code"] == "bad_request"
    assert daemon.get("/health").status_code == 200


def test_path_with_dot_segments_or_nul_refused(daemon):
    for path in ["/api/v1/%2e%2e/health", "/api/v1/..%2fsystem", "/health%00"]:
        raw = f"GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n".encode()
        status, _, body = parse_response(daemon.raw(raw))
        assert status == 400, path
        assert error_of(body)["code"] == "bad_request"


def test_oversize_headers_get_431(daemon):
    raw = b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    status, _, body = parse_response(daemon.raw(raw))
    assert status == 431
    assert error_of(body)["code"] == "headers_too_large"


def test_oversize_body_refused_before_it_is_sent(daemon_factory):
    d = daemon_factory({"server": {"max_body_size": "4k"}})
    with d.connect() as s:
        s.sendall(b"PUT /api/v1/system/log HTTP/1.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000\r\n\r\n")
        status, headers, body = parse_response(read_all(s))
    assert status == 413
    assert headers["connection"] == "close"
    assert error_of(body)["code"] == "payload_too_large"


def test_invalid_json_names_line_and_column(daemon):
    r = daemon.request("PUT", "/api/v1/system/log", data='{\n  "level": \n}',
                       headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "invalid_json"
    assert "line 3" in err["message"]
    assert err["details"]["line"] == 3


def test_json_that_is_not_an_object_or_not_valid_for_the_route(daemon):
    r = daemon.request("PUT", "/api/v1/system/log", json=["debug"])
    assert r.status_code == 400
    assert "JSON object" in r.json()["error"]["message"]
    r = daemon.request("PUT", "/api/v1/system/log", json={"level": "loud"})
    assert r.status_code == 400
    assert r.json()["error"]["details"]["valid_levels"] == ["error", "warn", "info", "debug"]
    r = daemon.request("PUT", "/api/v1/system/log", json={"level": "debug"})
    assert r.status_code == 200 and r.json() == {"level": "debug"}


def test_wrong_content_type_gets_415(daemon):
    r = daemon.request("PUT", "/api/v1/system/log", data='{"level": "info"}',
                       headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_media_type"


# ---- bad clients ----------------------------------------------------------------------------

def test_slow_client_gets_408_while_others_are_served(daemon_factory):
    d = daemon_factory({"server": {"request_timeout": "2s"}})
    request = b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Pad: 0123456789\r\n\r\n"
    with d.connect(timeout=10) as s:
        start = time.monotonic()
        served = 0
        for i in range(len(request)):
            try:
                s.sendall(request[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            assert d.get("/health").status_code == 200
            served += 1
            time.sleep(1)
            if time.monotonic() - start > 4:
                break
        status, headers, body = parse_response(read_all(s))
    assert status == 408
    assert headers["connection"] == "close"
    assert error_of(body)["code"] == "request_timeout"
    assert served >= 2


def test_client_closing_mid_response(daemon):
    for i in range(50):
        s = daemon.connect()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        s.sendall(b"GET /api/v1/openapi.json HTTP/1.1\r\n\r\n" * 20)
        if i % 2:  # abort with RST
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        else:
            s.recv(100)
        s.close()
    assert daemon.get("/health").status_code == 200
    assert daemon.running()


def test_thousand_idle_connections_while_health_answers(daemon):
    idle = [daemon.connect() for _ in range(1000)]
    try:
        for _ in range(20):
            assert daemon.get("/health").status_code == 200
        metrics = daemon.get("/metrics").text
        line = next(l for l in metrics.splitlines() if l.startswith("opsc_http_connections_open "))
        assert float(line.split()[1]) >= 1000
    finally:
        for s in idle:
            s.close()


def test_pipelined_requests_answered_in_order(daemon):
    with daemon.connect() as s:
        s.sendall(b"GET /health HTTP/1.1\r\n\r\nGET /ready HTTP/1.1\r\n\r\n"
                  b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n")
        data = read_all(s)
    bodies = [b for b in data.split(b"\r\n\r\n")[1:]]
    assert bodies[0].startswith(b'{"status":"ok"}')
    assert bodies[1].startswith(b'{"status":"ready"}')
    assert b'"not_found"' in bodies[2]


# ---- configuration and start-up -------------------------------------------------------------

def test_corrupt_config_names_file_and_line(run_daemon):
    r = run_daemon(config="[server]\nlisten = 127.0.0.1:1\n[store\ndata_dir = /tmp\n")
    assert r.returncode != 0
    assert "opsconductor.conf:3" in r.stderr


def test_truncated_config_names_file_and_line(run_daemon):
    r = run_daemon(config="[server]\nlisten = 127.0.0.1:1\n[sto")
    assert r.returncode != 0
    assert "opsconductor.conf:3" in r.stderr


def test_bad_config_value_names_file_line_and_key(run_daemon):
    r = run_daemon(config="[server]\nmax_body_size = 12Q\n")
    assert r.returncode != 0
    assert "opsconductor.conf:2" in r.stderr and "max_body_size" in r.stderr


def test_unknown_key_names_file_line_key_and_valid_keys(run_daemon):
    r = run_daemon(config="[server]\nlisten = 127.0.0.1:1\nlisten_port = 80\n")
    assert r.returncode != 0
    assert "opsconductor.conf:3" in r.stderr
    assert "listen_port" in r.stderr
    assert "valid keys" in r.stderr and "max_connections" in r.stderr


def as_nobody():
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


def test_unwritable_data_dir_is_a_clear_error(tmp_path, run_daemon):
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0)
        data = locked / "data"
        r = run_daemon(config={"store": {"data_dir": str(data)}})
        locked.chmod(0o700)
    else:  # root ignores permissions: the daemon runs as nobody
        # nobody may not reach the build tree (a checkout under /root is 0700 on
        # Debian): it runs a copy of the daemon from a directory it can read.
        base = tempfile.mkdtemp(prefix="opsc-perm-")
        try:
            os.chmod(base, 0o755)
            daemon = os.path.join(base, "opsconductord")
            shutil.copy2(DAEMON, daemon)
            os.chmod(daemon, 0o755)
            locked = os.path.join(base, "locked")
            os.mkdir(locked, 0o700)
            data = os.path.join(locked, "data")
            cfg = os.path.join(base, "nobody.conf")
            with open(cfg, "w") as f:
                f.write(f"[server]\nlisten = 127.0.0.1:{free_port()}\n[store]\ndata_dir = {data}\n")
            os.chmod(cfg, 0o644)
            r = subprocess.run([daemon, "-c", cfg], capture_output=True, text=True, timeout=10,
                               env=clean_env(None), preexec_fn=as_nobody, cwd=base,
                               stdin=subprocess.DEVNULL)
        finally:
            shutil.rmtree(base)
    assert r.returncode != 0
    assert str(data) in r.stderr
    assert "ermission denied" in r.stderr


def test_second_daemon_on_same_data_dir_is_refused_naming_the_pid(daemon, run_daemon):
    r = run_daemon(config={"store": {"data_dir": str(daemon.data_dir)}})
    assert r.returncode != 0
    assert str(daemon.pid) in r.stderr
    assert daemon.get("/health").status_code == 200


# ---- signals --------------------------------------------------------------------------------

def test_sigterm_exits_zero_and_finishes_inflight(daemon):
    with daemon.connect() as s:
        s.sendall(b"GET /health HTTP/1.1\r\n\r\n")
        assert parse_response(s.recv(4096))[0] == 200
        assert daemon.stop(signal.SIGTERM) == 0
        assert s.recv(10) == b""  # the idle keep-alive connection was closed
    assert "stopping gracefully" in daemon.stderr()


def test_sighup_reopens_the_log_file(daemon_factory, tmp_path):
    log = tmp_path / "opsc.log"
    d = daemon_factory({"log": {"file": str(log)}})
    assert "ready" in log.read_text()
    rotated = tmp_path / "opsc.log.1"
    shutil.move(log, rotated)
    d.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while not (log.exists() and "SIGHUP" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "SIGHUP" in log.read_text()
    assert "SIGHUP" not in rotated.read_text()
    assert d.get("/health").status_code == 200
