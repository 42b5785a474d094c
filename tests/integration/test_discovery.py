"""Network discovery end to end: a /22 of loopback addresses with real sshd (each with its own
host keys) on port 22, the WinRM test server on 5985 and 5986, a port that never accepts and
closed ports everywhere else; scanned by discovery-tcp while the scan's event stream is read;
then onboarding into targets and a job on them."""
import hashlib
import time

import pytest

from fixtures.discovery import Lab, by_address, check, events, hosts, open_fds, scan, wait_scan
from fixtures.fleet import credential, group
from fixtures.runs import job, shell_step, start, wait

pytestmark = pytest.mark.skipif(not Lab, reason="no lab")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("lab"))
    lab.facts = {}
    for third, fourth in ((0, 10), (1, 20), (3, 254)):
        a = lab.addr(third, fourth)
        lab.facts[a] = lab.ssh(a)
    lab.blackhole(lab.addr(1, 20), 5985)  # sshd's host: its 5985 never answers (filtered)
    lab.winrm_server(lab.addr(2, 30))
    lab.winrm_server(lab.addr(2, 31), https=True)
    yield lab
    lab.close()


def expected_ports(lab, address):
    ports = {22: "closed", 5985: "closed", 5986: "closed"}
    if address in lab.sshd:
        ports[22] = "open"
    if address == lab.addr(1, 20):
        ports[5985] = "filtered"
    if address in lab.winrm:
        ports[5986 if lab.winrm[address][1] == "https" else 5985] = "open"
    return ports


def test_a_22_block_of_loopback_is_scanned_and_every_host_found(daemon, lab):
    s = scan(daemon, ranges=[lab.cidr], rate=4000, concurrency=512, timeout_ms=1500)
    assert s["state"] == "running" and s["progress"]["total"] == 1024
    assert s["ports"] == [22, 5985, 5986] and s["targets"] == [lab.cidr]
    stream = events(daemon, f"/api/v1/discovery/scans/{s['id']}/events", timeout=60)
    names = [n for n, _ in stream]
    assert names[0] == "scan" and names[-1] == "end", names
    streamed = {d["address"]: d for n, d in stream if n == "host"}
    done = wait_scan(daemon, s["id"])
    assert done["state"] == "finished", done
    assert done["progress"]["done"] == done["progress"]["total"] == 1024
    assert done["progress"]["probes"] == 3072
    assert done["hosts_found"] == 5
    assert stream[-1][1]["state"] == "finished"

    found = by_address(hosts(daemon, scan_id=s["id"]))
    servers = set(lab.sshd) | set(lab.winrm)
    pages, cursor = [], None  # paged two at a time, in first-seen order, nothing twice
    while True:
        page = check(daemon.get("/api/v1/discovery/hosts", params=dict(
            limit=2, **({"cursor": cursor} if cursor else {}))), 200)
        pages.append([h["address"] for h in page["items"]])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(sum(pages, [])) == sorted(servers)
    assert {h["address"] for h in hosts(daemon, os="windows")} == set(lab.winrm)
    assert {h["address"] for h in hosts(daemon, port=5986)} == {lab.addr(2, 31)}
    assert {h["address"] for h in hosts(daemon, range=lab.addr(0, 0) + "/23")} == \
        {lab.addr(0, 10), lab.addr(1, 20)}
    assert set(found) == servers == set(streamed)
    for address, h in found.items():
        got = {p["port"]: p["state"] for p in h["ports"]}
        assert got == expected_ports(lab, address), address
        assert h["state"] == "new" and h["target_id"] is None
        assert h["last_scan_id"] == s["id"] and h["first_seen"] and h["last_seen"]
    for address, (_, facts) in lab.sshd.items():
        ssh = found[address]["ssh"]
        assert ssh["port"] == 22 and ssh["banner"].startswith("SSH-2.0-OpenSSH_")
        # the same key the SSH transport would be shown, as ssh-keygen -l prints it
        assert (ssh["host_key_type"], ssh["host_key_fingerprint"]) == ("ssh-ed25519",
                                                                       facts["host_ed25519"])
        assert found[address]["os_family"] == "linux"
        assert {"source": "ssh_banner", "suggests": "linux"}.items() <= \
            found[address]["os_evidence"][0].items()
    fps = [found[a]["ssh"]["host_key_fingerprint"] for a in lab.sshd]
    assert len(set(fps)) == 3  # three servers, three keys
    for address, (_, scheme, digest) in lab.winrm.items():
        w = found[address]["winrm"]
        assert (w["scheme"], w["vendor"]) == (scheme, "Microsoft Corporation")
        assert w["protocol_version"] == "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
        assert w["port"] == (5986 if scheme == "https" else 5985)
        assert w.get("tls_cert_sha256") == digest
        assert found[address]["os_family"] == "windows" and found[address]["ssh"] is None


def test_scan_answers_progress_and_is_listed(daemon, lab):
    s = scan(daemon, ranges=[lab.addr(0, 0) + "-" + lab.addr(0, 63)], ports=[22], rate=2000)
    done = wait_scan(daemon, s["id"])
    assert done["progress"]["done"] == 64 and done["progress"]["addresses_per_s"] > 0
    listed = check(daemon.get("/api/v1/discovery/scans", params={"state": "finished"}), 200)
    assert done["id"] in [x["id"] for x in listed["items"]]
    assert listed["items"][0]["id"] == done["id"]  # newest first


def test_found_ssh_hosts_are_onboarded_and_run_a_job(daemon, lab):
    s = scan(daemon, ranges=[lab.cidr], rate=4000, concurrency=512, timeout_ms=1500)
    wait_scan(daemon, s["id"])
    facts = next(iter(lab.facts.values()))
    cred = credential(daemon, facts, kind="password")  # the test user's: every sshd takes it
    web = group(daemon, name="web")
    body = {"filter": {"scan_id": s["id"], "port": 22}, "credential_id": cred["id"],
            "group_id": web["id"], "labels": {"role": "web"}, "test": True,
            "name_template": "web-{{ address | replace('.', '-') }}"}
    r = check(daemon.http.post(daemon.url("/api/v1/discovery/hosts/onboard"), json=body,
                               timeout=120), 200)
    assert (r["created"], r["failed"], r["existing"]) == (3, 0, 0), r
    assert r["test"]["ok"] == 3, r["test"]
    for item in r["items"]:
        assert item["status"] == "created" and item["test"]["ok"] is True, item
        assert item["name"] == "web-" + item["address"].replace(".", "-")
        t = check(daemon.get(f"/api/v1/targets/{item['target_id']}"), 200)
        assert t["transport"] == "ssh" and t["port"] == 22 and t["host_key_policy"] == "strict"
        assert [k["fingerprint"] for k in t["host_keys"]] == [lab.facts[t["address"]]["host_ed25519"]]
        assert t["labels"] == {"role": "web"}
    g = check(daemon.get(f"/api/v1/groups/{web['id']}"), 200)
    assert sorted(g["members"]) == sorted(i["target_id"] for i in r["items"])

    known = hosts(daemon, state="known")
    assert set(h["address"] for h in known) == set(lab.sshd)
    again = check(daemon.http.post(daemon.url("/api/v1/discovery/hosts/onboard"), json=body,
                                   timeout=60), 200)
    assert (again["created"], again["existing"]) == (0, 3)  # reported, not duplicated
    assert {i["target_id"] for i in again["items"]} == {i["target_id"] for i in r["items"]}

    j = job(daemon, {"name": "hello-web", "targets": {"groups": [web["id"]]},
                     "steps": [shell_step("hi", "echo hi from $(hostname)")]})
    run = wait(daemon, start(daemon, j["id"])["id"], timeout=120)
    assert run["state"] == "succeeded", run
    assert len(run["targets"]) == 3


def test_onboarding_reports_which_hosts_the_credential_opens(daemon, lab):
    s = scan(daemon, ranges=list(lab.sshd), ports=[22])
    wait_scan(daemon, s["id"])
    first = sorted(lab.sshd)[0]
    cred = credential(daemon, lab.facts[first])  # the key only that server authorizes
    r = check(daemon.http.post(daemon.url("/api/v1/discovery/hosts/onboard"), json={
        "filter": {"scan_id": s["id"]}, "credential_id": cred["id"], "test": True}), 200)
    assert r["created"] == 3 and (r["test"]["ok"], r["test"]["failed"]) == (1, 2), r
    opened = {i["address"]: i["test"]["ok"] for i in r["items"]}
    assert opened == {a: a == first for a in lab.sshd}
    for i in r["items"]:
        assert i["name"] == i["address"]  # no reverse name: the default template's fallback
        if not i["test"]["ok"]:
            assert i["test"]["error"]["stage"] == "connect", i


def test_winrm_hosts_onboard_with_the_scanned_certificate_pinned(daemon, lab):
    s = scan(daemon, ranges=[lab.addr(2, 30), lab.addr(2, 31)], timeout_ms=2000)
    wait_scan(daemon, s["id"])
    cred = check(daemon.http.post(daemon.url("/api/v1/credentials"), json={
        "name": "win", "type": "winrm", "username": "alice", "password": "Winrm-Pass-1"}), 201)
    r = check(daemon.http.post(daemon.url("/api/v1/discovery/hosts/onboard"), json={
        "filter": {"scan_id": s["id"]}, "credential_id": cred["id"]}), 200)
    assert r["created"] == 2, r
    for item in r["items"]:
        t = check(daemon.get(f"/api/v1/targets/{item['target_id']}"), 200)
        _, scheme, digest = lab.winrm[t["address"]]
        assert (t["transport"], t["os_family"]) == ("winrm", "windows")
        assert t["transport_options"]["scheme"] == scheme
        assert t["transport_options"].get("cert_fingerprint") == digest
        assert t["port"] == (5986 if scheme == "https" else 5985)


def test_cancel_stops_within_a_second_and_leaves_no_socket_open(daemon, lab):
    holes = [lab.blackhole(lab.addr(3, i), 22) for i in range(1, 65)]
    wait_scan(daemon, scan(daemon, ranges=[lab.addr(0, 1)])["id"])  # what a first scan opens for good
    base = open_fds(daemon.pid)
    s = scan(daemon, ranges=[lab.addr(3, 1) + "-" + lab.addr(3, 64), lab.addr(0, 0) + "/23"],
             ports=[22], rate=10000, concurrency=128, timeout_ms=30000)
    # 64 connections hang on the never-accepting listeners (0.5 s here; longer under load)
    until = time.monotonic() + 15
    while (fds := open_fds(daemon.pid)) < base + 60 and time.monotonic() < until:
        time.sleep(0.1)
    assert fds >= base + 60, (base, fds)
    t0 = time.monotonic()
    r = check(daemon.http.post(daemon.url(f"/api/v1/discovery/scans/{s['id']}/cancel")), 202)
    assert r["cancelling"] is True
    done = wait_scan(daemon, s["id"], timeout=5)
    assert done["state"] == "cancelled" and time.monotonic() - t0 < 1.0
    assert done["progress"]["done"] < done["progress"]["total"]
    assert open_fds(daemon.pid) <= base
    r = daemon.http.post(daemon.url(f"/api/v1/discovery/scans/{s['id']}/cancel"))
    assert r.status_code == 409 and r.json()["error"]["details"]["state"] == "cancelled"
    for h in holes:
        h.close()
    lab.holes = [h for h in lab.holes if h not in holes]
