"""test_cluster_partition.py - a leader whose packets to PostgreSQL are dropped (docs/cluster.md 5).

Node b runs in a network namespace of its own, reaching PostgreSQL (which listens on the
veth's host address too) through a veth pair; node a runs on the host. b leads, then an
nftables rule in b's namespace drops every packet between b and PostgreSQL's port: no
answer, no refusal, as a cut cable or a firewall looks. With the default lease (15 s) b's
statements end by tcp_user_timeout (5 s) rather than hanging, it steps down at its local
deadline before its lease ends, a takes the lease when it ends, fires and runs what is made
meanwhile; b claims and fires nothing. Removing the rule heals b: it follows a, and no
planned fire exists twice nor any run ran twice.
"""
import base64
import os
import time
from datetime import datetime

import pytest

from fixtures import netfilter_ns, pgserver
from test_cluster_failover import each_fire_once, every_second
from test_cluster_queue import ended, job, start
from test_schedules_e2e import wait_for

LEASE_S = 15  # the default: a leader steps down at 10 s unrenewed, statements end within 5 s


@pytest.fixture
def ns():
    why = netfilter_ns.missing()
    if why:
        pytest.skip(why)
    n = netfilter_ns.NetNs()
    yield n
    n.close()


@pytest.fixture
def pg_on_veth(ns):
    server = pgserver.PgServer(also_listen=(ns.outside, ns.cidr)).start()
    yield server
    server.stop()


def leader_or_none(d):
    try:
        r = d.get("/api/v1/cluster", timeout=2)
        return (r.json().get("leader") or {}).get("node_id") if r.status_code == 200 else None
    except Exception:  # busy or waiting on the database
        return None


def planned(run):
    return datetime.fromisoformat(run["planned_at"].replace("Z", "+00:00")).timestamp()


def node_in(ns, daemon_factory, config, env):
    """A daemon in the namespace, its API on the veth address."""
    port = 20000 + int.from_bytes(os.urandom(2), "big") % 20000  # the namespace's ports are free
    cfg = dict(config, server={"listen": f"{ns.inside}:{port}"})
    d = daemon_factory(config=cfg, env=env, port=port, preexec_fn=ns.enter, wait_ready=False)
    d.base = f"http://{ns.inside}:{port}"
    d.wait_ready()
    d.login_admin()
    return d


def test_a_leader_whose_packets_are_dropped_steps_down_in_time_and_claims_nothing(
        ns, pg_on_veth, daemon_factory):
    pg = pg_on_veth
    db = pg.database()
    config = {"store": {"backend": "postgresql", "lease_ttl": f"{LEASE_S}s"},
              "auth": {"jwt_secret": base64.b64encode(os.urandom(32)).decode()},
              "scheduler": {"misfire_threshold": "1500ms"}}
    env = {"OPSC_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    b = node_in(ns, daemon_factory, dict(config, store=dict(
        config["store"], postgresql_url=pg.url(db, host=ns.outside))), env)
    b_id = b.get("/api/v1/cluster").json()["node_id"]
    assert wait_for(lambda: leader_or_none(b) == b_id, 10)
    a = daemon_factory(config=dict(config, store=dict(config["store"],
                                                      postgresql_url=pg.url(db))), env=env)
    a_id = a.get("/api/v1/cluster").json()["node_id"]
    assert leader_or_none(a) == b_id
    sid, runs = every_second(a)
    assert wait_for(lambda: len(runs()) >= 3, 10), runs()
    before = {r["id"] for r in runs()}
    assert {r.get("node_id") for r in ended(a, before, 20)} <= {a_id, b_id, None}  # None: missed

    ns.drop(pg.port)
    cut, cut_wall = time.monotonic(), time.time()
    stepped = led = None
    while time.monotonic() - cut < LEASE_S + 30 and not (stepped and led):
        now = time.monotonic() - cut
        if stepped is None and "stepped down as leader" in b.stderr():
            stepped = now
        if led is None and leader_or_none(a) == a_id:
            led = now
        time.sleep(0.05)
    assert stepped is not None, b.stderr()[-3000:]
    assert led is not None, a.stderr()[-3000:]
    # b's local deadline is 2/3 of the lease after it last sent a renewal; its blocked
    # statements end by tcp_user_timeout, so it gives up leading before a may take over
    assert stepped < led, (stepped, led, b.stderr()[-3000:])
    assert "the lease could not be renewed in time" in b.stderr()

    j = job(a, "true")
    during = [start(a, j) for _ in range(3)]
    assert {(r["state"], r["node_id"]) for r in ended(a, during, 30)} == {("succeeded", a_id)}
    n = len(runs())
    assert wait_for(lambda: len(runs()) >= n + 2, 10)  # a fires
    # b's loop does not wait for the database it cannot reach: it tries without waiting (a
    # non-blocking connect), where each store call once waited 5 s every ~10 s
    slowest, until = 0.0, time.monotonic() + 12
    while time.monotonic() < until:
        t0 = time.monotonic()
        b.http.get(b.url("/health"), timeout=15)
        slowest = max(slowest, time.monotonic() - t0)
        time.sleep(0.1)
    assert slowest < 2, slowest

    ns.undrop()
    healed, healed_wall = time.monotonic(), time.time()
    assert wait_for(lambda: leader_or_none(b) == a_id, 30), b.stderr()[-3000:]
    assert wait_for(lambda: {n["id"]: n["state"] for n in b.get("/api/v1/cluster").json()[
        "nodes"]} == {a_id: "alive", b_id: "alive"}, 10)  # b beats again
    rejoined = time.monotonic() - healed
    more = [start(b, j) for _ in range(4)]
    assert {r["state"] for r in ended(b, more, 30)} == {"succeeded"}
    assert a.request("POST", f"/api/v1/schedules/{sid}/pause").status_code == 200
    time.sleep(1.5)
    items = runs()
    each_fire_once(pg, db, sid, items, (a, b))
    # while cut b claimed nothing: every run of the schedule made after the cut ran on a,
    # each run once (one claim: attempt 1, nothing requeued)
    for r in ended(a, [r["id"] for r in items] + during + more, 30):
        assert r.get("attempt", 1) == 1 and not r.get("requeued"), r
    assert pg.psql("SELECT count(*) FROM opsc_runq", db=db) == "0"
    cut_off = [r for r in items if cut_wall + 1 < planned(r) < healed_wall]
    assert {r["node_id"] for r in cut_off if "node_id" in r} == {a_id}, cut_off  # or missed
    print(f"packet-dropping partition: b stepped down {stepped:.1f} s after the cut, a led "
          f"{led:.1f} s after it (lease {LEASE_S} s); healed, b followed {rejoined:.1f} s later; "
          f"{len(items)} fires, each once; while cut its /health answered within {slowest:.2f} s")
