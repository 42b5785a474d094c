"""Notifications of the host inventory's events through the real daemon: a scan of loopback
that finds a real sshd sends one discovery.host_found to a signed webhook; the same address
answering with new host keys (a reinstalled machine) sends discovery.host_changed with both
fingerprints, to the webhook and, as a warning, to a Slack channel that takes warnings only.
Rules filter by range and profile; their messages name the host, its ports, keys and link."""
import json

import pytest

from fixtures.discovery import Lab, scan, wait_scan
from fixtures.notify import FAST, channel, rule, wait_deliveries, whsec
from fixtures.receiver import Receiver, verify_standard
from fixtures.runs import check

EVENTS = ["discovery.host_found", "discovery.host_vanished", "discovery.host_changed"]


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path / "lab")
    yield lab
    lab.close()


def scanned(d, lab, address):
    s = scan(d, ranges=[f"{lab.addr(0, 1)}-20"], ports=[22], rate=2000, timeout_ms=1500)
    assert wait_scan(d, s["id"])["state"] == "finished"
    return s


def test_found_and_changed_hosts_reach_the_rules_that_take_them(daemon_factory, lab):
    d = daemon_factory(config=FAST)
    address = lab.addr(0, 10)
    before = lab.ssh(address)
    key = whsec()
    with Receiver(secret=key) as rx:
        hook = channel(d, "webhook", {"url": rx.url("/hook")}, secret_value=key)
        slack = channel(d, "slack", secret_value=rx.url("/slack"))
        other = channel(d, "webhook", {"url": rx.url("/other")}, secret_value=whsec())
        rule(d, EVENTS, [hook], filter={"ranges": [f"{lab.addr(0, 0)}/24"]})
        rule(d, EVENTS, [slack], filter={"severity": "warning"})
        rule(d, EVENTS, [other], filter={"ranges": ["10.0.0.0/8"]})  # not this lab's hosts
        bad = d.http.post(d.url("/api/v1/notifications/rules"), json={
            "name": "bad", "events": EVENTS, "channels": [hook["id"]],
            "filter": {"ranges": ["10.1.2.0/33"]}})
        assert bad.status_code == 400 and "filter.ranges[0]" in bad.text, bad.text

        first = scanned(d, lab, address)
        (found,) = wait_deliveries(d, 1, channel=hook["id"])
        assert found["event"] == "discovery.host_found" and found["severity"] == "info"
        (req,) = rx.wait_for(1, path="/hook")
        assert verify_standard(key, req)
        body = json.loads(req.body)
        assert body["event"]["name"] == "discovery.host_found"
        assert body["event"]["summary"] == f"New host {address} found: open ports 22"
        assert body["host"]["address"] == address and body["host"]["open_ports"] == [22]
        assert body["host"]["ssh"]["host_key_fingerprint"] == before["host_ed25519"]
        assert body["host"]["last_scan_id"] == first["id"]
        host_id = body["host"]["id"]
        assert body["link"] == f"https://opsc.example.test/api/v1/discovery/hosts/{host_id}"

        # A reinstalled machine: new host keys on the same address.
        lab.stop_ssh(address)
        after = lab.ssh(address)
        scanned(d, lab, address)
        changed = wait_deliveries(d, 1, channel=hook["id"], event="discovery.host_changed")
        assert changed[0]["severity"] == "warning"
        req = rx.wait_for(2, path="/hook")[1]
        body = json.loads(req.body)
        assert body["change"]["field"] == "ssh.host_key"
        assert body["change"]["before"]["fingerprint"] == before["host_ed25519"]
        assert body["change"]["after"]["fingerprint"] == after["host_ed25519"]
        assert before["host_ed25519"] in body["event"]["summary"]
        assert after["host_ed25519"] in body["event"]["summary"]
        # Slack takes warnings only: the change, not the finding; its text names both keys.
        (msg,) = rx.wait_for(1, path="/slack")
        text = json.dumps(json.loads(msg.body))
        assert f"Host {address} changed its SSH host key" in text
        assert before["host_ed25519"] in text and after["host_ed25519"] in text
        assert f"/api/v1/discovery/hosts/{host_id}" in text
        requests = rx.quiet_for(1.0)
    assert [r.path for r in requests].count("/hook") == 2
    assert [r.path for r in requests].count("/slack") == 1
    assert "/other" not in [r.path for r in requests]
    h = check(d.get(f"/api/v1/discovery/hosts/{host_id}"), 200)
    assert h["state"] == "changed"


def test_a_vanished_host_is_told_to_rules_of_its_profile(daemon_factory, lab):
    d = daemon_factory(config=FAST)
    address = lab.addr(0, 12)
    lab.ssh(address)
    with Receiver() as rx:
        hook = channel(d, "webhook", {"url": rx.url("/hook")}, secret_value=whsec())
        prof = check(d.http.post(d.url("/api/v1/discovery/profiles"), json={
            "name": "lab", "cron": "0 2 * * *", "timezone": "UTC", "vanish_after": 1,
            "spec": {"ranges": [address], "ports": [22], "timeout_ms": 1000}}), 201)
        rule(d, ["discovery.host_vanished"], [hook], filter={"profile_ids": [prof["id"]]})
        other = check(d.http.post(d.url("/api/v1/discovery/profiles"), json={
            "name": "other", "cron": "0 2 * * *", "timezone": "UTC",
            "spec": {"ranges": ["10.9.9.9"]}}), 201)
        rule(d, ["discovery.host_vanished"], [channel(d, "webhook", {"url": rx.url("/other")},
                                                      secret_value=whsec())],
             filter={"profile_ids": [other["id"]]})
        for expect in (1, 0):  # seen, then not: vanished after one missed scan
            if not expect:
                lab.stop_ssh(address)
            s = check(d.http.post(d.url(f"/api/v1/discovery/profiles/{prof['id']}/run")), 201)
            assert wait_scan(d, s["id"])["hosts_found"] == expect
        (req,) = rx.wait_for(1, path="/hook")
        body = json.loads(req.body)
        assert body["event"]["name"] == "discovery.host_vanished"
        assert body["event"]["summary"] == (f"Host {address} vanished: not seen by the last 1 "
                                            f"scans of profile \"lab\"")
        assert body["host"]["profile"] == {"id": prof["id"], "name": "lab"}
        assert body["host"]["missed_scans"] == 1
        assert "/other" not in [r.path for r in rx.quiet_for(0.5)]
