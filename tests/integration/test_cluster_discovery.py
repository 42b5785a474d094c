"""test_cluster_discovery.py - discovery scans in a cluster (docs/cluster.md 2.6): each running
scan names its node. A node that starts ends only its own unfinished scans, not those other
nodes are running; the leader's reaper ends a killed node's scans, the error naming it. A
profile's scheduled scans fire on the leader only, once per planned instant, and go on on the
next leader.
"""
import datetime
import os
import time

from fixtures.discovery import check, get_scan, scan
from test_cluster_failover import LEASE_S, leader_of, pg  # noqa: F401 (pg: a fixture)
from test_cluster_queue import cluster, kill9
from test_schedules_e2e import wait_for

SLOW = {"ports": [9], "rate": 1, "concurrency": 1, "timeout_ms": 200}  # 256 s for a /24


def test_scans_are_owned_by_their_node_and_a_dead_nodes_are_reaped(pg, daemon_factory):
    db, (a, b), (a_id, b_id) = cluster(pg, daemon_factory, 2)
    assert wait_for(lambda: leader_of(a) == a_id, LEASE_S + 2)
    on_a = scan(a, ranges=["127.3.1.0/24"], **SLOW)["id"]
    on_b = scan(b, ranges=["127.3.2.0/24"], **SLOW)["id"]
    pg_rows = pg.psql("SELECT count(*) FROM opsc_kv WHERE db = 'discovery_scans_active'", db=db)
    assert pg_rows == "2"
    # a third node joins: the scans running on a and b are not its to end
    c = daemon_factory(**a.join)
    assert c.get("/api/v1/cluster").json()["node_id"] not in (a_id, b_id)
    assert [get_scan(c, s)["state"] for s in (on_a, on_b)] == ["running", "running"]
    kill9(b)
    dead = wait_for(lambda: (lambda s: s["state"] != "running" and s)(get_scan(a, on_b)),
                    LEASE_S * 4)
    assert dead and dead["state"] == "failed", dead
    assert b_id in dead["error"] and "interrupted" in dead["error"], dead["error"]
    assert get_scan(c, on_a)["state"] == "running"  # the leader's own scan goes on
    assert a.request("POST", f"/api/v1/discovery/scans/{on_a}/cancel").status_code in (200, 202)


def started_s(scan_rec):
    return datetime.datetime.fromisoformat(scan_rec["started_at"].replace("Z", "+00:00")).timestamp()


def profile(d):
    return check(d.http.post(d.url("/api/v1/discovery/profiles"), json={
        "name": "every-2s-" + os.urandom(3).hex(), "cron": "*/2 * * * * *",
        "spec": {"ranges": ["127.3.9.1"], "ports": [9]}}), 201)["id"]


def test_a_profiles_scans_fire_on_the_leader_once_per_instant_and_go_on_after_it(pg,
                                                                                 daemon_factory):
    db, (a,), (a_id,) = cluster(pg, daemon_factory, 1)
    known = profile(a)  # before b starts: both nodes load it at their start
    b = daemon_factory(**a.join)
    b_id = b.get("/api/v1/cluster").json()["node_id"]
    assert wait_for(lambda: len(a.get("/api/v1/cluster").json()["nodes"]) == 2, 5)
    told = profile(b)  # made through the follower: the leader learns of it on its beat

    def scans(pid):
        items = check(b.get("/api/v1/discovery/scans", params={"limit": 200}), 200)["items"]
        return sorted((s for s in items if s["profile_id"] == pid), key=started_s)
    time.sleep(9)
    killed = time.time()
    kill9(a)
    assert wait_for(lambda: leader_of(b) == b_id, LEASE_S * 3)
    for pid in (known, told):
        assert wait_for(lambda: len([s for s in scans(pid) if started_s(s) > killed]) >= 2, 12)
    for pid in (known, told):
        got = scans(pid)
        assert {s["requested_by"] for s in got} == {"schedule"}
        before = [s for s in got if started_s(s) < killed]
        assert len(before) >= 3, got  # fired by a, the leader, also the one made on b
        # one scan per planned instant (every 2 s), not one per node
        slots = [int(started_s(s) // 2) for s in got]
        assert len(slots) == len(set(slots)), [s["started_at"] for s in got]
        fires = int(pg.psql("SELECT count(*) FROM opsc_fires WHERE schedule_id = "
                            f"'discovery_profile:{pid}'", db=db))
        # a fire whose profile's last scan still ran (a loaded machine) is skipped, logged;
        # +1: a killed between its fire and its scan, +1: a fire after `got` was read
        skipped = (a.stderr() + b.stderr()).count(f"profile {pid}: its last scan is still running")
        assert len(got) <= fires - skipped <= len(got) + 2, (fires, skipped, len(got))
        print(f"profile every 2 s: {len(before)} scans on the leader, "
              f"{len(got) - len(before)} on the next one after the kill, none twice")
