"""test_http_system.py - the system routes of the real daemon and the HTTP contract they show."""
import re

from conftest import parse_response


def test_health_is_tiny_json(daemon):
    r = daemon.get("/health")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.text == '{"status":"ok"}'


def test_ready_when_store_open_and_plugins_loaded(daemon):
    r = daemon.get("/ready")
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}


def test_system_reports_version_uptime_and_counts(daemon):
    s = daemon.get("/api/v1/system").json()
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", s["version"])
    assert s["uptime_s"] >= 0
    assert s["ready"] is True
    for key in ("step_libraries", "transports", "notifiers", "scanners", "auth_providers"):
        assert isinstance(s[key], int)
    assert set(s["plugins"]) == {"loaded", "refused"}


def test_plugins_list(daemon):
    body = daemon.get("/api/v1/plugins").json()
    assert isinstance(body["items"], list)
    for p in body["items"]:
        assert {"name", "version", "state"} <= set(p)


def test_metrics_in_prometheus_text_format(daemon):
    daemon.get("/health")
    daemon.get("/nope")
    r = daemon.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = r.text
    for family in ("opsc_build_info", "opsc_uptime_seconds", "opsc_http_requests_total",
                   "opsc_http_request_duration_seconds", "process_resident_memory_bytes",
                   "process_open_fds", "opsc_store_map_size_bytes", "opsc_plugins_loaded"):
        assert f"# TYPE {family} " in text, family
    assert re.search(r'opsc_http_requests_total\{method="GET",route="/health",status="200"\} \d+',
                     text)
    assert re.search(r'opsc_http_requests_total\{method="GET",route="unmatched",status="404"\} \d+',
                     text)
    assert 'le="+Inf"' in text
    for line in text.splitlines():  # every sample line is "name{labels} value"
        if line and not line.startswith("#"):
            assert re.fullmatch(r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eE]+|.* (\+Inf|NaN)',
                                line), line


def test_openapi_describes_every_route(daemon):
    doc = daemon.get("/api/v1/openapi.json").json()
    assert doc["openapi"] == "3.0.3"
    paths = doc["paths"]
    for path, method in [("/health", "get"), ("/ready", "get"), ("/metrics", "get"),
                         ("/api/v1/system", "get"), ("/api/v1/plugins", "get"),
                         ("/api/v1/system/log", "put")]:
        assert method in paths[path], (path, method)
    assert "/api/v1/openapi.json" not in paths
    assert paths["/api/v1/system"]["get"]["security"] == [{"bearerAuth": []}]
    assert paths["/health"]["get"]["security"] == []
    assert "Error" in doc["components"]["schemas"]
    put = paths["/api/v1/system/log"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["required"] == ["level"]
    assert put["x-required-role"] == "admin"


def test_errors_share_one_json_shape(daemon):
    r = daemon.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = daemon.request("DELETE", "/health")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert set(r.json()["error"]) == {"code", "message", "details"}


def test_head_and_keep_alive(daemon):
    with daemon.connect() as s:
        for _ in range(3):
            s.sendall(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = parse_response(s.recv(4096))
            assert status == 200 and headers["content-length"] == "15" and body == b""


def test_daemon_writes_no_core_dumps(daemon):
    """Secrets live in the daemon's memory: it forbids core dumps of itself."""
    limits = open(f"/proc/{daemon.pid}/limits").read()
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"], core
