"""test_fleet_ssh.py - targets on a real sshd: 200 targets tested as a group in seconds, host key
policies (strict, TOFU, a changed key, off), and the errors of a test that fails (wrong
password, connection refused, a blackholed address)."""
import os
import signal
import socket
import subprocess
import time

import pytest

from fixtures import sshd
from fixtures.fleet import (Blackhole, check, create, credential, free_port, group, probe,
                            ssh_target, stream_events)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sshd fixture needs root")


@pytest.fixture
def server(tmp_path):
    with sshd.SSHD(str(tmp_path / "sshd")) as facts:
        yield facts


def rekey(facts):
    """New host keys for the running sshd (as after a reinstall); returns the ed25519 one."""
    d = facts["dir"]
    for kind in ("ed25519", "rsa"):
        for suffix in ("", ".pub"):
            os.unlink(f"{d}/host_{kind}{suffix}")
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", f"{d}/host_{kind}"],
                       check=True)
    new = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", f"{d}/host_ed25519.pub"],
                         check=True, capture_output=True, text=True).stdout.split()[1]
    os.kill(facts["pid"], signal.SIGHUP)  # sshd re-executes itself and reads the new keys
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        scan = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(facts["port"]),
                               "127.0.0.1"], capture_output=True, text=True).stdout
        got = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", "-"], input=scan,
                             capture_output=True, text=True).stdout.split()
        if len(got) > 1 and got[1] == new:
            return new
        time.sleep(0.1)
    pytest.fail("sshd did not pick up its new host key")


def test_200_targets_added_grouped_and_tested_in_seconds(daemon, server):
    """The issue's "Done when": a credential and 200 targets through the API, a group by label,
    the group tested, facts for all of them."""
    cred = credential(daemon, server)
    # 60 s to connect: 200 handshakes at once against one sshd, with the daemon under ASan and
    # three other test workers on 2 cores, went past 10 s in a fresh root (the wall time is
    # what the test measures, not the timeout).
    items = [ssh_target(f"node-{i:03}", server, cred, host_key_policy="tofu", connect_timeout_s=60,
                        labels={"fleet": "lab", "rack": f"r{i % 4}"}) for i in range(200)]
    r = daemon.http.post(daemon.url("/api/v1/targets/bulk"), json=items, timeout=30)
    assert check(r, 200)["created"] == 200
    g = group(daemon, name="lab", selector="fleet=lab")
    start = time.monotonic()
    events = list(stream_events(daemon, f"/api/v1/groups/{g['id']}/test?concurrency=200"))
    wall = time.monotonic() - start
    kinds = [e[0] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("result") == 200
    results = [e[1] for e in events if e[0] == "result"]
    failed = [x for x in results if not x["ok"]]
    assert failed == [], failed[:3]
    done = events[-1][1]
    assert done["ok"] == 200 and done["failed"] == 0
    # Results arrive as targets finish, not all at the end.
    arrivals = [e[2] for e in events if e[0] == "result"]
    assert arrivals[-1] - arrivals[0] > 0
    print(f"\n200 SSH targets tested in {wall:.2f} s (daemon wall {done['wall_ms']} ms)")
    assert wall < 60, f"the group test took {wall:.1f} s"
    listed = daemon.get(f"/api/v1/groups/{g['id']}/targets", params={"limit": 500}).json()
    assert listed["total"] == 200
    for t in listed["items"]:
        assert t["facts"]["kernel"] and t["facts"]["hostname"] and t["facts"]["last_seen"], t
    one = daemon.get(f"/api/v1/targets/{listed['items'][0]['id']}").json()
    keys = {k["type"]: k for k in one["host_keys"]}
    assert keys["ssh-ed25519"]["fingerprint"] == server["host_ed25519"]
    assert keys["ssh-ed25519"]["source"] == "tofu"
    audit = daemon.get("/api/v1/audit", params={"action": "target.host_key_learned",
                                                "limit": 500}).json()["items"]
    assert len(audit) == 200 and server["host_ed25519"] in audit[0]["detail"]


def test_strict_refuses_an_unknown_key_naming_it_until_it_is_pinned(daemon, server):
    cred = credential(daemon, server)
    t = create(daemon, ssh_target("strict", server, cred))
    res = probe(daemon, t["id"])
    assert res["ok"] is False and res["error"]["code"] == "EHOSTKEY"
    assert res["error"]["stage"] == "connect"
    assert server["host_ed25519"] in res["error"]["message"]
    assert "strict" in res["error"]["message"]
    stored = daemon.get(f"/api/v1/targets/{t['id']}").json()
    assert stored["host_keys"] == [] and stored["last_test"]["ok"] is False
    r = daemon.http.post(daemon.url(f"/api/v1/targets/{t['id']}/host-keys"),
                         json={"key": f"ssh-ed25519 {server['host_ed25519']}"})
    assert r.status_code == 201, r.text
    res = probe(daemon, t["id"])
    assert res["ok"] is True, res


def test_tofu_records_the_key_and_a_changed_key_is_an_error_naming_both(daemon, server):
    cred = credential(daemon, server)
    t = create(daemon, ssh_target("tofu", server, cred, host_key_policy="tofu"))
    assert probe(daemon, t["id"])["ok"] is True
    old = server["host_ed25519"]
    keys = daemon.get(f"/api/v1/targets/{t['id']}").json()["host_keys"]
    assert [(k["type"], k["fingerprint"], k["source"]) for k in keys] == \
        [("ssh-ed25519", old, "tofu")]
    new = rekey(server)
    res = probe(daemon, t["id"])
    assert res["ok"] is False and res["error"]["code"] == "EHOSTKEY"
    msg = res["error"]["message"]
    assert old in msg and new in msg and "CHANGED" in msg
    keys = daemon.get(f"/api/v1/targets/{t['id']}").json()["host_keys"]
    assert [k["fingerprint"] for k in keys] == [old]  # TOFU never replaces a key
    # After a legitimate rekey an operator resets the keys; the next test learns the new one.
    assert daemon.http.delete(daemon.url(f"/api/v1/targets/{t['id']}/host-keys")).status_code == 204
    assert probe(daemon, t["id"])["ok"] is True
    keys = daemon.get(f"/api/v1/targets/{t['id']}").json()["host_keys"]
    assert [k["fingerprint"] for k in keys] == [new]


def test_policy_off_connects_with_a_warning(daemon, server):
    cred = credential(daemon, server)
    t = create(daemon, ssh_target("off", server, cred, host_key_policy="off",
                                  allow_insecure=True))
    res = probe(daemon, t["id"])
    assert res["ok"] is True, res
    assert "host key checking is off" in res["warning"]
    assert daemon.get(f"/api/v1/targets/{t['id']}").json()["host_keys"] == []


def test_password_auth_and_a_wrong_password(daemon, server):
    good = credential(daemon, server, kind="password", name="pw")
    t = create(daemon, ssh_target("pw", server, good, host_key_policy="tofu"))
    assert probe(daemon, t["id"])["ok"] is True
    bad = check(daemon.http.post(daemon.url("/api/v1/credentials"), json={
        "name": "wrong", "type": "ssh_password", "username": server["user"],
        "password": "not-the-password"}), 201)
    r = daemon.http.patch(daemon.url(f"/api/v1/targets/{t['id']}"),
                          json={"credential_id": bad["id"]})
    assert r.status_code == 200
    res = probe(daemon, t["id"])
    assert res["ok"] is False and res["error"]["code"] == "EAUTH", res
    assert "authentication as 'opsctest'" in res["error"]["message"]
    assert "not-the-password" not in str(res)


def test_connection_refused(daemon, server):
    cred = credential(daemon, server)
    t = create(daemon, ssh_target("refused", server, cred, port=free_port()))
    res = probe(daemon, t["id"])
    assert res["ok"] is False and res["error"]["code"] == "ECONNREFUSED", res


def test_a_blackholed_address_times_out(daemon, server):
    cred = credential(daemon, server)
    with Blackhole() as hole:
        t = create(daemon, ssh_target("hole", server, cred, port=hole.port,
                                      connect_timeout_s=1))
        start = time.monotonic()
        res = probe(daemon, t["id"])
        took = time.monotonic() - start
    assert res["ok"] is False and res["error"]["code"] == "ETIMEDOUT", res
    assert 0.9 < took < 5, took


def test_a_group_test_without_streaming_reports_every_kind_of_result(daemon, server):
    cred = credential(daemon, server)
    ok = create(daemon, ssh_target("ok", server, cred, host_key_policy="tofu",
                                   labels={"g": "mixed"}))
    refused = create(daemon, ssh_target("refused", server, cred, port=free_port(),
                                        labels={"g": "mixed"}))
    off = create(daemon, ssh_target("disabled", server, cred, enabled=False,
                                    labels={"g": "mixed"}))
    local = create(daemon, {"name": "local", "transport": "local", "labels": {"g": "mixed"}})
    g = group(daemon, name="mixed", selector="g=mixed")
    r = daemon.http.post(daemon.url(f"/api/v1/groups/{g['id']}/test"), timeout=60)
    body = check(r, 200)
    by = {x["target_id"]: x for x in body["items"]}
    assert by[ok["id"]]["ok"] and by[local["id"]]["ok"]
    assert by[refused["id"]]["error"]["code"] == "ECONNREFUSED"
    assert by[off["id"]]["skipped"] is True
    assert body["summary"] == {**body["summary"], "total": 4, "ok": 2, "failed": 1, "skipped": 1}


def test_a_client_leaving_a_streamed_test_stops_it_cleanly(daemon, server):
    cred = credential(daemon, server)
    with Blackhole() as hole:
        items = [ssh_target(f"h{i}", server, cred, port=hole.port, connect_timeout_s=2,
                            labels={"g": "hole"}) for i in range(6)]
        check(daemon.http.post(daemon.url("/api/v1/targets/bulk"), json=items), 200)
        g = group(daemon, name="hole", selector="g=hole")
        s = socket.create_connection(("127.0.0.1", daemon.port))
        token = daemon.http.headers["Authorization"]
        s.sendall((f"POST /api/v1/groups/{g['id']}/test?concurrency=2 HTTP/1.1\r\n"
                   f"Host: x\r\nAuthorization: {token}\r\nAccept: text/event-stream\r\n"
                   "Content-Length: 0\r\n\r\n").encode())
        s.settimeout(10)
        head = b""
        while b"event: start" not in head:  # the head and the first event may come apart
            chunk = s.recv(4096)
            assert chunk, head
            head += chunk
        s.close()
        time.sleep(3)
        assert daemon.get("/health").status_code == 200
        stored = daemon.get("/api/v1/targets", params={"label": "g=hole"}).json()["items"]
        tested = [t for t in stored if t["last_test"]]
        assert 1 <= len(tested) < 6  # those started finished; no more were started
