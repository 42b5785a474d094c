"""test_cluster_failover.py - two daemons on one PostgreSQL (docs/cluster.md 2.1-2.3).

Two real daemons, each with its own data directory (node id), share one
throw-away PostgreSQL database, the vault's master key and the JWT secret.
Both register and beat; one holds the leader lease and only it fires
schedules; a schedule made through the follower's API is fired by the
leader; kill -9 of the leader hands the lease to the other node within the
lease (with a higher epoch) and the schedule carries on; the run the dead
leader was running is ended interrupted by the new leader's reaper; across both nodes
every planned fire exists once (runs by planned instant, and opsc_fires,
whose rows name the node and epoch that made them).
"""
import base64
import os
import signal
import threading
import time
from datetime import datetime

import pytest

from test_cluster import conform, published_schema
from test_cluster_queue import node_config, on_node
from test_schedules import make_job
from test_schedules_e2e import wait_for

LEASE_S = 3  # [store] lease_ttl: beats every 0.6 s, a leader steps down after 2 s unrenewed


@pytest.fixture(scope="module")
def pg(pg_server):
    return pg_server


def leader_of(d):
    return (d.get("/api/v1/cluster").json()["leader"] or {}).get("node_id")


def two_nodes(pg, daemon_factory, url_of_first=lambda url: url):
    """Node a, leading, then node b on the same database; their view as b gives it.
    `url_of_first`: the database URL node a is given (a proxy's)."""
    db = pg.database()
    config = {"store": {"backend": "postgresql", "postgresql_url": pg.url(db),
                        "lease_ttl": f"{LEASE_S}s"},
              "auth": {"jwt_secret": base64.b64encode(os.urandom(32)).decode()},
              "scheduler": {"misfire_threshold": "1500ms"}}
    env = {"OPSC_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    first = dict(config, store=dict(config["store"], postgresql_url=url_of_first(pg.url(db))))
    a = daemon_factory(config=first, env=env)
    a_id = a.get("/api/v1/cluster").json()["node_id"]
    assert wait_for(lambda: leader_of(a) == a_id, 5), a.get("/api/v1/cluster").text
    b = daemon_factory(config=config, env=env)
    b.join = dict(config=config, env=env)  # what another node needs
    view = b.get("/api/v1/cluster").json()
    b_id = view["node_id"]
    assert b_id != a_id
    assert conform(view, published_schema(b)) == []
    assert {n["id"]: n["state"] for n in view["nodes"]} == {a_id: "alive", b_id: "alive"}
    assert {n["address"] for n in view["nodes"]} == {f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"}
    assert view["leader"]["node_id"] == a_id and view["leader"]["address"] == f"127.0.0.1:{a.port}"
    return db, a, b, a_id, b_id, view


def every_second(d, extra=None):
    """A schedule firing `true` every second, made through `d` (with `extra` fields); its id and
    a lister of its runs."""
    job = make_job(d, "true")
    r = d.http.post(d.url("/api/v1/schedules"), timeout=10, json=dict(
        {"job_id": job, "cron": "* * * * * *", "overlap_policy": "allow"}, **(extra or {})))
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    return sid, lambda: d.get(f"/api/v1/runs?schedule_id={sid}&limit=500").json()["items"]


def sched_log(nodes):
    """The scheduler's and the cluster's log lines of `nodes`, for a failure's message."""
    return "\n".join(line for d in nodes for line in d.stderr().splitlines()
                     if " sched" in line or " cluster" in line)[-6000:]


def each_fire_once(pg, db, sid, items, nodes=()):
    planned = [r["planned_at"] for r in items]
    assert len(planned) == len(set(planned)), sorted(planned)  # no fire twice, across both nodes
    rows = pg.psql(f"SELECT count(*), count(DISTINCT planned_ms) FROM opsc_fires "
                   f"WHERE schedule_id = '{sid}'", db=db)
    assert rows == f"{len(items)}|{len(items)}", (rows, len(items))
    instants = sorted(datetime.fromisoformat(p.replace("Z", "+00:00")) for p in planned)
    gaps = {(y - x).total_seconds() for x, y in zip(instants, instants[1:])}
    holes = [f"{x.isoformat()} .. {y.isoformat()}" for x, y in zip(instants, instants[1:])
             if (y - x).total_seconds() != 1.0]
    # no hole either: what fell in the gap is recorded missed
    assert gaps == {1.0}, (holes, sched_log(nodes))


def test_one_leader_fires_a_follower_takes_over_and_every_fire_exists_once(pg, daemon_factory):
    db, a, b, a_id, b_id, view = two_nodes(pg, daemon_factory)
    epoch = view["leader"]["epoch"]
    # made through the follower: the leader sees the change and fires it
    sid, runs = every_second(b)
    assert wait_for(lambda: len(runs()) >= 3, 10), runs()
    fired_by = pg.psql(f"SELECT DISTINCT node_id FROM opsc_fires WHERE schedule_id = '{sid}'",
                       db=db)
    assert fired_by == a_id  # the follower fired nothing

    # a run on the leader when it dies: the next leader's reaper ends it interrupted
    # (any node claims a run: one that node a claimed)
    sleeper = make_job(b, "sleep 20")
    on_a = on_node(a, sleeper, a_id, {a_id: a, b_id: b})

    a.send_signal(signal.SIGKILL)
    a.proc.wait()
    killed = time.monotonic()
    assert wait_for(lambda: leader_of(b) == b_id, LEASE_S + 3), b.get("/api/v1/cluster").text
    took = time.monotonic() - killed
    assert took <= LEASE_S + 2, took  # lease + one beat + the API's view
    view = b.get("/api/v1/cluster").json()
    assert view["leader"]["epoch"] > epoch
    assert wait_for(lambda: int(pg.psql(f"SELECT count(*) FROM opsc_fires WHERE schedule_id = "
                                          f"'{sid}' AND node_id = '{b_id}'", db=db)) >= 3, 10)
    assert b.request("POST", f"/api/v1/schedules/{sid}/pause").status_code == 200
    assert wait_for(lambda: {n["id"]: n["state"] for n in
                               b.get("/api/v1/cluster").json()["nodes"]}[a_id] == "dead",
                      LEASE_S + 2)

    run = wait_for(lambda: (lambda r: r["state"] != "running" and r)(
        b.get(f"/api/v1/runs/{on_a}").json()), 5)
    assert run and run["state"] == "interrupted", run
    assert f"node {a_id} stopped" in run["reason"], run["reason"]
    assert "not run again" in run["reason"], run["reason"]
    assert run["targets"][0]["state"] == "interrupted", run["targets"]

    items = runs()
    each_fire_once(pg, db, sid, items, (a, b))
    print(f"failover: new leader {took:.1f} s after kill -9 (lease {LEASE_S} s); "
          f"{len(items)} fires, each once")


def test_schedules_changed_through_both_nodes_in_one_heartbeat_all_fire(pg, daemon_factory):
    """The leader counts schedule changes (opsc_versions), not a digest: one made through the
    follower in the same heartbeat as one made through the leader itself still reloads it."""
    db, a, b, a_id, b_id, _ = two_nodes(pg, daemon_factory)
    jobs = {a: make_job(a, "true"), b: make_job(b, "exit 0")}  # job names are unique
    made = {}

    def schedule(d):
        r = d.http.post(d.url("/api/v1/schedules"), timeout=10,
                        json={"job_id": jobs[d], "cron": "* * * * * *", "overlap_policy": "allow"})
        assert r.status_code == 201, r.text
        made[d] = r.json()["id"]
    for _ in range(3):  # the two POSTs land within one beat (0.6 s) nearly always
        both = [threading.Thread(target=schedule, args=(d,)) for d in (a, b)]
        [t.start() for t in both]
        [t.join() for t in both]
        fired = lambda sid: int(pg.psql(  # noqa: E731
            f"SELECT count(*) FROM opsc_fires WHERE schedule_id = '{sid}'", db=db))
        assert wait_for(lambda: all(fired(made[d]) >= 2 for d in (a, b)), 2 * LEASE_S), \
            {("leader" if d is a else "follower"): fired(made[d]) for d in (a, b)}
        for d in (a, b):
            assert a.request("POST", f"/api/v1/schedules/{made[d]}/pause").status_code == 200
    assert a.stderr().count("scheduler (re)started on the leader: schedules changed on another "
                            "node") >= 3


def test_a_node_with_another_master_key_does_not_join(pg, daemon_factory):
    db = pg.database()
    config = {"store": {"backend": "postgresql", "postgresql_url": pg.url(db)}}
    a = daemon_factory(config=config,
                       env={"OPSC_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()})
    r = a.http.post(a.url("/api/v1/credentials"), json={"name": "s", "type": "secret",
                                                        "value": "v-123"})
    assert r.status_code == 201, r.text
    b = daemon_factory(config=config, wait_ready=False,
                       env={"OPSC_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()})
    assert b.proc.wait(15) != 0
    assert "does not match" in b.stderr(), b.stderr()[-2000:]
    nodes = pg.psql("SELECT count(*) FROM opsc_nodes", db=db)
    assert nodes == "1"  # it never registered


def test_a_frozen_leader_is_fenced_and_steps_down_when_it_wakes(pg, daemon_factory):
    db, a, b, a_id, b_id, _ = two_nodes(pg, daemon_factory)
    sid, runs = every_second(b)
    assert wait_for(lambda: len(runs()) >= 2, 10), runs()

    def fires_by(node):
        return int(pg.psql(f"SELECT count(*) FROM opsc_fires WHERE schedule_id = '{sid}' "
                           f"AND node_id = '{node}'", db=db))
    a.send_signal(signal.SIGSTOP)  # a stalled loop, as a partition looks from the inside
    try:
        assert wait_for(lambda: leader_of(b) == b_id, LEASE_S + 3), b.get("/api/v1/cluster").text
        assert wait_for(lambda: fires_by(b_id) >= 2, 10)
    finally:
        a.send_signal(signal.SIGCONT)
    # a wakes with its scheduler's timer long due and its lease gone: whatever it tries to
    # fire first is refused by the epoch, and its next beat makes it step down
    assert wait_for(lambda: "stepped down as leader" in a.stderr(), 5), a.stderr()[-3000:]
    assert leader_of(a) == b_id
    time.sleep(1.5)
    assert b.request("POST", f"/api/v1/schedules/{sid}/pause").status_code == 200
    each_fire_once(pg, db, sid, runs(), (a, b))


@pytest.mark.parametrize("grace_s", [None, 1])
def test_a_fire_held_up_by_a_row_lock_is_tried_again_not_lost(pg, daemon_factory, grace_s):
    """The frozen-leader hole made reproducible: another connection's transaction (a node frozen
    inside its flush) holds the opsc_fires key of a coming instant for 6 s. The leader's fire
    waits for it (lock_timeout 2 s) and fails, and so would its missed record (2 s more): the
    instant was in no record. Now it is tried again once the lock is gone: a run, or, past a
    1 s misfire grace, a missed run (whose record, failing on the same lock, is tried again)."""
    db = pg.database()
    # a 15 s lease: each try waits up to lock_timeout on the loop, and a 3 s lease steps down
    # a leader whose loop stood still 2 s
    config, env = node_config(pg, db, lease_s=15, scheduler={"misfire_threshold": "1500ms"})
    a = daemon_factory(config=config, env=env)
    a_id = a.get("/api/v1/cluster").json()["node_id"]
    assert wait_for(lambda: leader_of(a) == a_id, 5)
    sid, runs = every_second(a, {} if grace_s is None else {"misfire_grace_s": grace_s})
    assert wait_for(lambda: len(runs()) >= 2, 10), runs()
    held_ms = (int(time.time()) + 3) * 1000
    hold = threading.Thread(target=pg.psql, kwargs=dict(db=db, sql=(
        f"BEGIN; INSERT INTO opsc_fires (schedule_id, planned_ms, run_id, node_id, epoch) "
        f"VALUES ('{sid}', {held_ms}, 'held', 'frozen', 0); "
        f"SELECT pg_sleep({held_ms / 1000 + 6 - time.time():.3f}); ROLLBACK;")))
    hold.start()
    held_at = datetime.fromtimestamp(held_ms / 1000).astimezone().isoformat()
    try:
        def held_run():
            return [r for r in runs() if datetime.fromisoformat(r["planned_at"].replace(
                "Z", "+00:00")).timestamp() * 1000 == held_ms]
        assert wait_for(lambda: held_run(), 30), (held_at, a.stderr()[-3000:])
        if grace_s is None:
            assert [r["state"] for r in held_run()] != ["missed"], held_run()
            assert "did not start on try" in a.stderr() and " on try " in a.stderr()
        else:
            assert [r["state"] for r in held_run()] == ["missed"], held_run()
            assert "past the grace period of 1 s" in held_run()[0]["reason"], held_run()
            assert "recording the missed fire at" in a.stderr(), a.stderr()[-3000:]
    finally:
        hold.join()
    assert a.request("POST", f"/api/v1/schedules/{sid}/pause").status_code == 200
    each_fire_once(pg, db, sid, runs(), (a,))


@pytest.mark.slow
def test_five_minutes_of_100_schedules_with_the_leader_killed_every_minute(pg, daemon_factory):
    """Issue 19's failover test: 3 nodes, 100 schedules firing every 2 s, kill -9 of whoever
    leads every minute (the dead node comes back as a follower). Each kill: a new leader within
    the lease; over 5 minutes every planned instant of every schedule exists exactly once as a
    fire (run or missed run: no hole, no duplicate), and every run ends."""
    db, a, b, _, _, _ = two_nodes(pg, daemon_factory)
    nodes = [a, b, daemon_factory(**b.join)]
    job = make_job(a, "true")
    sids = []
    for i in range(100):
        r = nodes[i % 3].http.post(nodes[i % 3].url("/api/v1/schedules"), timeout=10, json={
            "job_id": job, "cron": "*/2 * * * * *", "overlap_policy": "allow"})
        assert r.status_code == 201, r.text
        sids.append(r.json()["id"])
    began = time.monotonic()
    took = []
    for kill in range(1, 5):
        time.sleep(max(0, began + 60 * kill - 30 - time.monotonic()))
        ids = {d.get("/api/v1/cluster").json()["node_id"]: d for d in nodes}
        was = leader_of(nodes[0])
        leader, rest = ids[was], [d for i, d in ids.items() if i != was]
        leader.send_signal(signal.SIGKILL)
        leader.proc.wait()
        killed = time.monotonic()
        assert wait_for(lambda: leader_of(rest[0]) not in (None, was), LEASE_S + 3)
        took.append(time.monotonic() - killed)
        nodes = rest + [leader.restart()]
    time.sleep(max(0, began + 300 - time.monotonic()))
    for sid in sids:
        assert nodes[0].request("POST", f"/api/v1/schedules/{sid}/pause").status_code == 200
    rows = pg.psql("SELECT schedule_id, count(*), count(DISTINCT planned_ms), "
                   "(max(planned_ms) - min(planned_ms)) / 2000 + 1 FROM opsc_fires "
                   "GROUP BY schedule_id", db=db).splitlines()
    per = {r.split("|")[0]: [int(x) for x in r.split("|")[1:]] for r in rows}
    assert sorted(per) == sorted(sids)
    for sid, (fires, instants, span) in per.items():
        assert fires == instants == span, (sid, fires, instants, span)  # no duplicate, no hole
        assert span >= 140, (sid, span)  # about 150 instants in 5 minutes
    assert wait_for(lambda: pg.psql("SELECT count(*) FROM opsc_runq", db=db) == "0", 30)
    print("leader killed -> another leads, s:", " ".join(f"{t:.2f}" for t in took))
    # the lease, a follower's beat, the API's answer: 3.1-3.2 s here, once 5.3 s at load 13
    # with 50 runs/s on two nodes whose loops also wait for the database
    assert max(took) <= 2 * LEASE_S, took


def test_overlap_replace_cancels_the_run_another_node_runs(pg, daemon_factory):
    """overlap_policy replace across nodes: the leader fires, the runs can only run on the
    follower (routed by label), and each fire cancels the previous run there (NOTIFY)."""
    db = pg.database()
    config, env = node_config(pg, db, 4, LEASE_S, cluster={"route_by": "dc"},
                              scheduler={"misfire_threshold": "1500ms"})
    us = daemon_factory(config=config, env=dict(env, OPSC_CLUSTER_LABELS="dc=us"))
    us_id = us.get("/api/v1/cluster").json()["node_id"]
    assert wait_for(lambda: leader_of(us) == us_id, 5)
    eu = daemon_factory(config=config, env=dict(env, OPSC_CLUSTER_LABELS="dc=eu"))
    eu_id = eu.get("/api/v1/cluster").json()["node_id"]
    r = us.http.post(us.url("/api/v1/targets"), timeout=10, json={
        "name": "eu-local", "address": "localhost", "labels": {"dc": "eu"},
        "transport": "local", "os_family": "linux"})
    assert r.status_code == 201, r.text
    r = us.http.post(us.url("/api/v1/jobs"), timeout=10, json={
        "name": "replaced", "targets": {"ids": [r.json()["id"]]},
        "steps": [{"id": "s1", "name": "run", "type": "core.shell.command",
                   "params": {"command": "sleep 60"}}]})
    assert r.status_code == 201, r.text
    r = us.http.post(us.url("/api/v1/schedules"), timeout=10, json={
        "job_id": r.json()["id"], "cron": "*/2 * * * * *", "overlap_policy": "replace"})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]

    def runs():
        return us.get(f"/api/v1/runs?schedule_id={sid}&limit=100").json()["items"]
    assert wait_for(lambda: sum(r["state"] == "cancelled" for r in runs()) >= 3, 15), runs()
    assert us.request("POST", f"/api/v1/schedules/{sid}/pause").status_code == 200
    assert wait_for(lambda: sum(r["state"] in ("queued", "running") for r in runs()) <= 1, 5)
    done = runs()
    cancelled = [r for r in done if r["state"] == "cancelled"]
    assert {r.get("node_id") for r in cancelled} == {eu_id}, cancelled  # ran there, not on us
    assert not [r for r in done if r["state"] == "missed"], done
    fired_by = pg.psql(f"SELECT DISTINCT node_id FROM opsc_fires WHERE schedule_id = '{sid}'",
                       db=db)
    assert fired_by == us_id
    for r in done:
        if r["state"] in ("queued", "running"):
            assert us.request("POST", f"/api/v1/runs/{r['id']}/cancel").status_code in (200, 202)
