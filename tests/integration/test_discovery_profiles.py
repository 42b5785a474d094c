"""Scan profiles against real sshd on loopback addresses: recurring scans on a cron schedule, a
host whose key changed is `changed` (an event, never auto-onboarded), a stopped server becomes
`vanished` after N scans of the profile (an event), new hosts answering SSH are onboarded by the
profile's rule."""
import datetime
import time

import pytest

from fixtures.discovery import Lab, Stream, by_address, check, hosts, wait_scan
from fixtures.fleet import credential, group

PROFILES = "/api/v1/discovery/profiles"


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    yield lab
    lab.close()


def run(d, profile_id):
    s = check(d.http.post(d.url(f"{PROFILES}/{profile_id}/run"), timeout=30), 201)
    assert s["profile_id"] == profile_id
    done = wait_scan(d, s["id"])
    assert done["state"] == "finished", done
    return done


def test_changed_keys_vanished_hosts_and_auto_onboarding(daemon, lab):
    a, b, c = lab.addr(0, 1), lab.addr(0, 2), lab.addr(0, 3)
    for x in (a, b, c):
        lab.ssh(x)
    # timeout_ms covers the SSH key exchange: 500 ms was too short once, under ASan at -n 4
    spec = {"ranges": [lab.addr(0, 0) + "/29"], "ports": [22], "rate": 1000, "timeout_ms": 3000}
    p = check(daemon.http.post(daemon.url(PROFILES), json={
        "name": "lab", "spec": spec, "vanish_after": 2}), 201)
    first = run(daemon, p["id"])
    assert first["hosts_found"] == 3
    old_b = by_address(hosts(daemon))[b]["ssh"]["host_key_fingerprint"]

    # b is reinstalled (new host keys), c is switched off; the profile gets an onboarding rule
    lab.stop_ssh(b)
    new_b = lab.ssh(b)["host_ed25519"]
    lab.stop_ssh(c)
    cred = credential(daemon, lab.sshd[a][1], kind="password")
    web = group(daemon, name="web")
    rule = {"ranges": [lab.addr(0, 0) + "/24"], "transport": "ssh", "credential_id": cred["id"],
            "group_id": web["id"], "labels": {"via": "discovery"}}
    p = check(daemon.http.patch(daemon.url(f"{PROFILES}/{p['id']}"), json={"auto_onboard": [rule]},
                                headers={"If-Match": str(p["version"])}), 200)
    feed = Stream(daemon, "/api/v1/discovery/events")
    run(daemon, p["id"])

    changed = feed.wait_for(lambda n, d: n == "host_changed")[1]
    assert changed["host"]["address"] == b and changed["host"]["state"] == "changed"
    assert changed["change"]["before"]["fingerprint"] == old_b
    assert changed["change"]["after"]["fingerprint"] == new_b
    # auto-onboarding runs after the scan: a (new) joins, b (changed) never does
    end = time.monotonic() + 30
    while not check(daemon.get(f"/api/v1/groups/{web['id']}"), 200)["members"]:
        assert time.monotonic() < end
        time.sleep(0.1)
    targets = check(daemon.get("/api/v1/targets"), 200)["items"]
    assert [t["address"] for t in targets] == [a]
    assert targets[0]["labels"] == {"via": "discovery"} and targets[0]["host_key_policy"] == "strict"
    inv = by_address(hosts(daemon))
    assert (inv[a]["state"], inv[b]["state"], inv[c]["state"]) == ("known", "changed", "new")
    assert inv[b]["ssh"]["host_key_fingerprint"] == new_b
    assert [x["field"] for x in inv[b]["changes"]] == ["ssh.host_key"]

    run(daemon, p["id"])  # c missed a second scan of the profile: vanished
    vanished = feed.wait_for(lambda n, d: n == "host_vanished")[1]
    assert vanished["host"]["address"] == c and vanished["profile_id"] == p["id"]
    assert vanished["missed_scans"] == 2
    assert by_address(hosts(daemon, state="vanished")).keys() == {c}
    assert len([n for n, _ in feed.items if n == "host_vanished"]) == 1
    feed.close()

    # a changed host is onboarded only once someone accepted its new key
    hb = inv[b]
    r = check(daemon.http.post(daemon.url("/api/v1/discovery/hosts/onboard"), json={
        "host_ids": [hb["id"]], "credential_id": cred["id"]}), 200)
    assert r["items"][0]["error"]["code"] == "host_changed", r
    acc = check(daemon.http.post(daemon.url(f"/api/v1/discovery/hosts/{hb['id']}/accept")), 200)
    assert acc["state"] == "new" and acc["changes"][0]["accepted_at"]
    r = check(daemon.http.post(daemon.url("/api/v1/discovery/hosts/onboard"), json={
        "host_ids": [hb["id"]], "credential_id": cred["id"]}), 200)
    assert r["created"] == 1
    t = check(daemon.get(f"/api/v1/targets/{r['items'][0]['target_id']}"), 200)
    assert t["host_keys"][0]["fingerprint"] == new_b

    # c comes back, reinstalled (new host keys): found again, and changed
    lab.ssh(c)
    feed = Stream(daemon, "/api/v1/discovery/events")
    run(daemon, p["id"])
    back = feed.wait_for(lambda n, d: n == "host_found" and d["host"]["address"] == c)[1]
    assert back["reappeared"] is True and back["host"]["state"] == "changed"
    assert feed.wait_for(lambda n, d: n == "host_changed")[1]["host"]["address"] == c
    assert not check(daemon.get("/api/v1/targets", params={"name": c}), 200)["items"]
    feed.close()


def test_a_profile_on_a_cron_schedule_scans_by_itself(daemon, lab):
    lab.ssh(lab.addr(1, 1))
    p = check(daemon.http.post(daemon.url(PROFILES), json={
        "name": "every-second", "cron": "* * * * * *", "timezone": "Europe/Berlin",
        "spec": {"ranges": [lab.addr(1, 1)], "ports": [22]}}), 201)
    assert p["next_run_at"] and p["timezone"] == "Europe/Berlin"
    end = time.monotonic() + 10
    while True:
        scans = check(daemon.get("/api/v1/discovery/scans"), 200)["items"]
        mine = [s for s in scans if s["profile_id"] == p["id"] and s["state"] == "finished"]
        if mine:
            break
        assert time.monotonic() < end, scans
        time.sleep(0.1)
    assert mine[0]["requested_by"] == "schedule" and mine[0]["hosts_found"] == 1
    got = check(daemon.get(f"{PROFILES}/{p['id']}"), 200)
    assert got["last_scan_id"] in [s["id"] for s in mine]
    check(daemon.http.patch(daemon.url(f"{PROFILES}/{p['id']}"), json={"enabled": False}), 200)


def test_next_runs_follow_the_schedulers_dst_rule(daemon):
    p = check(daemon.http.post(daemon.url(PROFILES), json={
        "name": "nightly", "cron": "30 2 * * *", "timezone": "Europe/Berlin",
        "spec": {"ranges": ["127.0.0.1"]}}), 201)
    nxt = check(daemon.get(f"{PROFILES}/{p['id']}/next", params={"count": 3}), 200)
    assert len(nxt["times"]) == 3
    for t in nxt["times"]:
        assert t["local"][11:16] in ("02:30", "03:00")  # 03:00 on a spring-forward night
    first = datetime.datetime.fromisoformat(nxt["times"][0]["utc"].replace("Z", "+00:00"))
    armed = datetime.datetime.fromisoformat(p["next_run_at"].replace("Z", "+00:00"))
    assert first == armed  # the fire the profile is armed for is the preview's first
