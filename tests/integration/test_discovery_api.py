"""The discovery API's refusals (clear 400s that name the member and why), its limits
([discovery] max_addresses, allowed_ranges, max_rate), roles, metrics, the OpenAPI document,
and the nmap scanner refused at load when nmap is missing."""
from fixtures.discovery import check, scan, wait_scan


def refused(d, status=400, **body):
    r = d.http.post(d.url("/api/v1/discovery/scans"), json=body, timeout=30)
    assert r.status_code == status, r.text
    return r.json()["error"]


BAD = [
    ({"ranges": ["10.1.2.0/33"]}, "invalid_scan", "ranges[0]: prefix length '33' out of range 0-32"),
    ({"ranges": ["10.1.2/24"]}, "invalid_scan", "ranges[0]: '10.1.2' is not an IPv4 or IPv6 address"),
    ({"ranges": ["10.1.2.0/24", "10.1.2.50-10.1.2.10"]}, "invalid_scan",
     "ranges[1]: reversed range: 10.1.2.50 comes after 10.1.2.10"),
    ({"ranges": ["10.0.0.1-fd00::1"]}, "invalid_scan", "a range cannot go from IPv4 to IPv6"),
    ({"ranges": ["10.0.0.0/8"]}, "scan_too_large",
     "the scan covers 16777216 addresses, more than [discovery] max_addresses (65536)"),
    ({"ranges": ["2001:db8::/64"]}, "scan_too_large", "the scan covers more than 2^64"),
    ({"ranges": ["10.1.2.0/24"], "exclude": ["10.1.0.0/16"]}, "invalid_scan",
     "nothing left to scan: the exclusions cover every address of ranges"),
    ({"ranges": ["10.1.2.0/24"], "exclude": ["web.example"]}, "invalid_scan",
     "exclude[0]: host names are not accepted here"),
    ({"ranges": ["10.1.2.0/24"], "ports": [22, 70000]}, "invalid_scan", "ports[1]: out of range 1-65535"),
    ({"ranges": ["10.1.2.0/24"], "ports": ["90-80"]}, "invalid_scan", "ports[0]: out of range"),
    ({"ranges": ["10.1.2.0/24"], "ports": [0]}, "invalid_scan", "ports[0]: out of range"),
    ({"ranges": ["10.1.2.0/24"], "rate": 0}, "invalid_scan", "rate: must be at least 1"),
    ({"ranges": ["10.1.2.0/24"], "rate": 50000}, "invalid_scan",
     "rate 50000 is above [discovery] max_rate (20000)"),
    ({"ranges": ["10.1.2.0/24"], "scanner": "sonar"}, "unknown_scanner", "no scanner 'sonar' is loaded"),
    ({"ranges": []}, "invalid_scan", "ranges"),
    ({"ranges": ["10.1.2.0/24"], "speed": 3}, "invalid_scan", "speed"),
    ({"ranges": ["10.1.2.0/24"], "options": {"turbo": True}}, "invalid_scan", "options: "),
    ({"ranges": ["not a host!"]}, "invalid_scan", "ranges[0]: unexpected character"),
    ({"ranges": ["no-such-host.invalid"]}, "invalid_scan", "ranges[0]: cannot resolve 'no-such-host.invalid'"),
]


def test_bad_scan_requests_are_clear_400s(daemon):
    for body, code, words in BAD:  # one daemon for all: each request is refused before a scan
        err = refused(daemon, **body)
        assert err["code"] == code, (body, err)
        assert words in err["message"], (body, err)
    assert check(daemon.get("/api/v1/discovery/scans"), 200)["items"] == []


def test_scans_outside_allowed_ranges_are_refused_naming_them(daemon_factory):
    d = daemon_factory(config={"discovery": {"allowed_ranges": "127.0.0.0/8, ::1, 10.9.0.0/16",
                                             "max_addresses": "1024"}})
    err = refused(d, ranges=["10.9.1.0/24", "10.10.0.0/30"])
    assert err["code"] == "range_not_allowed"
    assert err["message"] == "10.10.0.0-10.10.0.3 is outside [discovery] allowed_ranges"
    assert refused(d, ranges=["10.9.0.0/21"])["code"] == "scan_too_large"
    # excluding what is outside makes it acceptable; localhost resolves inside
    s = scan(d, ranges=["127.0.0.1-127.0.0.3", "localhost"], exclude=["127.0.0.2"], ports=[1])
    # localhost is 127.0.0.1, and also ::1 where /etc/hosts says so (Debian's default)
    v6 = ["::1/128"] if "::1" in s["resolved"]["localhost"] else []
    assert sorted(s["targets"]) == sorted(["127.0.0.1/32", "127.0.0.3/32"] + v6)
    assert s["progress"]["total"] == 2 + len(v6)
    assert set(s["resolved"]["localhost"]) <= {"127.0.0.1", "::1"}
    wait_scan(d, s["id"])


def test_a_bad_allowed_ranges_setting_stops_the_daemon_with_the_key(run_daemon):
    r = run_daemon(config={"discovery": {"allowed_ranges": "10.0.0.0/40"}})
    assert r.returncode != 0
    assert ("opsconductor.conf:" in r.stderr and
            ": [discovery] allowed_ranges item 1: prefix length '40' out of range 0-32" in r.stderr), r.stderr


def test_profiles_refuse_bad_cron_zone_spec_and_rules(daemon):
    def bad(body, code, words):
        r = daemon.http.post(daemon.url("/api/v1/discovery/profiles"), json=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == code and words in r.json()["error"]["message"], r.text
    spec = {"ranges": ["127.0.0.1"]}
    bad({"name": "p", "spec": spec, "cron": "61 * * * *"}, "invalid_cron", "cron: minute")
    bad({"name": "p", "spec": spec, "cron": "0 3 * * *", "timezone": "Mars/Olympus"},
        "invalid_timezone", "unknown time zone 'Mars/Olympus'")
    bad({"name": "p", "spec": {"ranges": ["10.0.0.0/7"]}}, "scan_too_large", "spec: the scan covers")
    bad({"name": "p", "spec": {"ranges": ["10.0.0.0/24"], "rate": 0}}, "invalid_profile", "spec.rate")
    bad({"name": "p"}, "invalid_profile", "spec is required")
    bad({"spec": spec}, "invalid_profile", "name is required")
    bad({"name": "p", "spec": dict(spec, scanner="sonar")}, "unknown_scanner", "spec.scanner")
    bad({"name": "p", "spec": spec, "auto_onboard": [{"credential_id": "01a24dee-0000-7000-8000-000000000000"}]},
        "invalid_profile", "auto_onboard[0].credential_id: no credential")
    bad({"name": "p", "spec": spec, "auto_onboard": [{"credential_id": "x", "ranges": ["10.0.0.0/99"]}]},
        "invalid_profile", "auto_onboard[0].ranges[0]")
    ok = check(daemon.http.post(daemon.url("/api/v1/discovery/profiles"), json={"name": "p", "spec": spec}), 201)
    r = daemon.http.post(daemon.url("/api/v1/discovery/profiles"), json={"name": "p", "spec": spec})
    assert r.status_code == 409 and ok["id"] in r.json()["error"]["message"]
    r = daemon.http.patch(daemon.url(f"/api/v1/discovery/profiles/{ok['id']}"), json={"enabled": False},
                          headers={"If-Match": "99"})
    assert r.status_code == 412


def test_onboard_refusals(daemon):
    def bad(body, words, status=400):
        r = daemon.http.post(daemon.url("/api/v1/discovery/hosts/onboard"), json=body)
        assert r.status_code == status and words in r.text, r.text
    bad({"credential_id": "x"}, "give either host_ids or filter")
    bad({"credential_id": "x", "host_ids": ["a"], "filter": {}}, "give either host_ids or filter")
    bad({"credential_id": "x", "host_ids": ["a"]}, "no credential x")
    bad({"host_ids": ["a"]}, "credential_id")
    bad({"credential_id": "x", "filter": {"port": 0}}, "port")
    bad({"credential_id": "x", "filter": {"range": "web.example"}}, "range must be a CIDR block")
    r = daemon.get("/api/v1/discovery/hosts", params={"state": "lost"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_filter"


def test_viewers_read_and_operators_scan(daemon):
    check(daemon.http.post(daemon.url("/api/v1/users"), json={
        "username": "vera", "role": "viewer", "password": "vera-change-me-42"}), 201)
    tok = daemon.login("vera", "vera-change-me-42").json()["access_token"]
    viewer = daemon.session(tok)
    assert viewer.get(daemon.url("/api/v1/discovery/hosts")).status_code == 200
    assert viewer.get(daemon.url("/api/v1/discovery/scans")).status_code == 200
    r = viewer.post(daemon.url("/api/v1/discovery/scans"), json={"ranges": ["127.0.0.1"]})
    assert r.status_code == 403
    assert viewer.post(daemon.url("/api/v1/discovery/hosts/onboard"), json={}).status_code == 403


def test_openapi_metrics_and_the_system_count_of_scanners(daemon):
    doc = check(daemon.get("/api/v1/openapi.json"), 200)
    for path, method in (("/api/v1/discovery/scans", "post"), ("/api/v1/discovery/scans/{id}/events", "get"),
                         ("/api/v1/discovery/hosts", "get"), ("/api/v1/discovery/hosts/onboard", "post"),
                         ("/api/v1/discovery/profiles", "post"), ("/api/v1/discovery/profiles/{id}/next", "get")):
        assert method in doc["paths"][path], path
    body = doc["paths"]["/api/v1/discovery/scans"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["ranges"]["items"]["type"] == "string"
    assert check(daemon.get("/api/v1/system"), 200)["scanners"] >= 1
    s = scan(daemon, ranges=["127.0.0.1-127.0.0.4"], ports=[1, 2])
    wait_scan(daemon, s["id"])
    text = daemon.get("/metrics").text
    assert 'opsc_discovery_scans_total{state="started"} 1' in text
    assert 'opsc_discovery_scans_total{state="finished"} 1' in text
    assert "opsc_discovery_addresses_probed_total 4" in text
    assert "opsc_discovery_probes_total 8" in text
    assert "opsc_discovery_hosts_found_total 0" in text


def test_nmap_is_refused_at_load_when_it_is_not_installed(daemon_factory):
    d = daemon_factory(env={"PATH": "/nonexistent"})
    plugins = {p["name"]: p for p in check(d.get("/api/v1/plugins"), 200)["items"]}
    p = plugins["discovery-nmap"]
    assert p["state"] == "refused"
    assert "nmap is not installed: no executable 'nmap' in PATH" in p["reason"], p
    err = refused(d, ranges=["127.0.0.1"], scanner="nmap")
    assert err["code"] == "unknown_scanner" and "(tcp)" in err["message"]


def test_the_scanner_plugins_export_only_their_entry():
    import subprocess  # noqa: PLC0415

    from conftest import BUILD_DIR  # noqa: PLC0415
    for name in ("discovery-tcp", "discovery-nmap"):
        so = BUILD_DIR / "plugins" / name / f"{name}.so"
        out = subprocess.run(["nm", "-D", "--defined-only", str(so)], capture_output=True,
                             text=True, check=True).stdout.split("\n")
        symbols = [line.split()[-1] for line in out if line.strip() and " _" not in line]
        assert symbols == ["opsc_plugin_entry"], (name, symbols)
