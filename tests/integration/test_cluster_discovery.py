"""test_cluster_discovery.py - discovery scans in a cluster (docs/cluster.md 2.6): each running
scan names its node. A node that starts ends only its own unfinished scans, not those other
nodes are running; the leader's reaper ends a killed node's scans, the error naming it.
"""
from fixtures.discovery import get_scan, scan
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
