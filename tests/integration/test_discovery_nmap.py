"""discovery-nmap (Debian's nmap as a child process) against the same real servers as
discovery-tcp: the two scanners agree on every open port, and on the SSH host keys."""
import os
import shutil

import pytest

from fixtures.discovery import Lab, by_address, hosts, scan, wait_scan

pytestmark = pytest.mark.skipif(not shutil.which("nmap"), reason="nmap is not installed")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("nmap-lab"))
    for fourth in (5, 6):
        lab.ssh(lab.addr(0, fourth))
    lab.winrm_server(lab.addr(0, 9))
    lab.blackhole(lab.addr(0, 6), 5985)
    yield lab
    lab.close()


def ports_of(h):
    return {p["port"]: p["state"] for p in h["ports"]}


def test_nmap_and_tcp_agree_on_open_ports_and_host_keys(daemon, lab):
    spec = {"ranges": [lab.addr(0, 0) + "/28"], "timeout_ms": 800}
    tcp = wait_scan(daemon, scan(daemon, **spec)["id"])
    by_tcp = by_address(hosts(daemon, scan_id=tcp["id"]))  # before nmap's scan updates them
    nmap = wait_scan(daemon, scan(daemon, scanner="nmap", **spec)["id"], timeout=120)
    assert (tcp["state"], nmap["state"]) == ("finished", "finished"), nmap
    assert nmap["progress"]["done"] == nmap["progress"]["total"] == 16
    by_nmap = by_address(hosts(daemon, scan_id=nmap["id"]))
    assert set(by_tcp) == set(by_nmap) == set(lab.sshd) | set(lab.winrm)
    for address in by_tcp:
        assert ports_of(by_tcp[address]) == ports_of(by_nmap[address]), address
        open_tcp = {p for p, s in ports_of(by_tcp[address]).items() if s == "open"}
        open_nmap = {p for p, s in ports_of(by_nmap[address]).items() if s == "open"}
        assert open_tcp == open_nmap, address
    for address, (_, facts) in lab.sshd.items():
        ssh = by_nmap[address]["ssh"]
        assert ssh["host_key_fingerprint"] == facts["host_ed25519"]
        assert ssh["banner"].startswith("SSH-2.0-OpenSSH_")
        assert by_nmap[address]["os_family"] == "linux"
    assert ports_of(by_nmap[lab.addr(0, 6)])[5985] == "filtered"
    assert by_nmap[lab.addr(0, 5)]["scans_seen"] == 2  # the same host records as tcp's
    assert by_nmap[lab.addr(0, 5)]["state"] == "new"  # no change: the same key, the same OS


def test_cancelling_an_nmap_scan_stops_the_child(daemon, tmp_path):
    empty = Lab(tmp_path)  # a /22 of our own, nothing in it
    s = scan(daemon, scanner="nmap", ranges=[empty.cidr], ports=["1-1000"], rate=50, concurrency=4)
    r = daemon.http.post(daemon.url(f"/api/v1/discovery/scans/{s['id']}/cancel"))
    assert r.status_code == 202
    done = wait_scan(daemon, s["id"], timeout=5)
    assert done["state"] == "cancelled"
    # The daemon's other child, opsc-spawner, is not the scan's.
    nmaps = [p for p in os.listdir("/proc") if p.isdigit() and _parent(p) == daemon.pid and
             _comm(p) == "nmap"]
    assert not nmaps
    empty.close()


def _parent(pid):
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _comm(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return None
