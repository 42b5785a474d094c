"""test_cluster_notify.py - the notification outbox in a cluster (docs/cluster.md 2.6), two real
daemons on one throw-away PostgreSQL and a loopback HTTP receiver.

Every node writes deliveries in its runs' transactions; only the leader sends them, so N
events are N requests, each received once, wherever the runs ran and whichever node the rule
was made on. kill -9 of the leader while its sends hang: the remaining node leads and sends
what was pending (the dead leader's attempts again: at least once), then whatever comes next.
A node whose listening connection broke while a rule changed applies the change within a few
heartbeats.
"""
import collections
import time

from fixtures.notify import channel, deliveries, rule, wait_deliveries
from fixtures.runs import check
from fixtures.receiver import Answer, Receiver
from test_cluster_failover import LEASE_S, leader_of, pg  # noqa: F401 (pg: a fixture)
from test_cluster_queue import ended, job, kill9, node_config, start
from test_schedules_e2e import wait_for


def two_nodes(pg, daemon_factory):
    """Nodes a (leading) and b; their ids."""
    db = pg.database()
    config, env = node_config(pg, db,
                              notifications={"retry_schedule": "0,300ms,300ms,300ms"})
    a = daemon_factory(config=config, env=env)
    a_id = a.get("/api/v1/cluster").json()["node_id"]
    assert wait_for(lambda: leader_of(a) == a_id, 5)
    b = daemon_factory(config=config, env=env)
    b_id = b.get("/api/v1/cluster").json()["node_id"]
    assert wait_for(lambda: len(a.get("/api/v1/cluster").json()["nodes"]) == 2, 5)
    a.db = db
    return a, b, a_id, b_id


def run_ids_received(requests):
    return collections.Counter(r.json()["run"]["id"] for r in requests)


def each_delivered_once(a, b, rx, job_id, n, node_ids):
    """n runs of job_id started through a and b in turn: all succeeded, on both nodes, and each
    was received once; their ids."""
    rids = [start(a if i % 2 else b, job_id) for i in range(n)]
    runs = ended(a, rids, 40)
    assert {r["state"] for r in runs} == {"succeeded"}
    assert {r["node_id"] for r in runs} == set(node_ids)  # events on both nodes
    rx.wait_for(len(rids), timeout=20)
    got = run_ids_received(rx.quiet_for(1.5))
    assert got == {rid: 1 for rid in rids}, got  # each once, none missing
    return rids


def test_n_events_on_either_node_are_n_deliveries_each_sent_once_by_the_leader(pg,
                                                                              daemon_factory):
    a, b, a_id, b_id = two_nodes(pg, daemon_factory)
    with Receiver() as rx:
        # made through the follower: the leader's rule cache learns of it too
        ch = channel(b, "webhook", {"url": rx.url("/h")})
        rule(b, ["run.succeeded"], [ch], group_window_s=0)
        rids = each_delivered_once(a, b, rx, job(a, "sleep 0.3"), 12, (a_id, b_id))
        done = wait_deliveries(b, len(rids), states=("delivered",))
        assert sorted(x["payload"]["run"]["id"] for x in done) == sorted(rids)
        assert all(len(x["attempts"]) == 1 for x in done), done
    assert "sending the cluster's notifications from this node" in a.stderr()
    assert "sending the cluster's notifications from this node" not in b.stderr()


def test_the_next_leader_sends_what_the_killed_one_left_pending(pg, daemon_factory):
    a, b, a_id, b_id = two_nodes(pg, daemon_factory)
    with Receiver() as rx:
        ch = channel(a, "webhook", {"url": rx.url("/h")})
        rule(a, ["run.succeeded"], [ch], group_window_s=0)
        rx.script([Answer(delay=30)] * 100)  # the leader's sends hang: it dies mid-send
        j = job(b, "true")
        rids = [start(b, j) for _ in range(5)]
        ended(b, rids, 30)
        rx.wait_for(len(rids), timeout=20)
        assert [x["state"] for x in deliveries(b)] == ["pending"] * len(rids)
        kill9(a)
        rx.script([])  # 200 from now on
        assert wait_for(lambda: leader_of(b) == b_id, LEASE_S + 5)
        done = wait_deliveries(b, len(rids), states=("delivered",))
        assert sorted(x["payload"]["run"]["id"] for x in done) == sorted(rids)
        got = run_ids_received(rx.requests)
        assert set(got) == set(rids) and set(got.values()) == {2}, got  # at least once
        after = [start(b, j) for _ in range(3)]
        ended(b, after, 20)
        wait_deliveries(b, len(rids) + 3, states=("delivered",))
        got = run_ids_received(rx.quiet_for(1.5))
        assert {rid: got[rid] for rid in after} == {rid: 1 for rid in after}, got
    assert "sending the cluster's notifications from this node" in b.stderr()


def test_a_rule_change_whose_notification_was_lost_is_applied_within_a_few_beats(pg,
                                                                               daemon_factory):
    a, b, a_id, b_id = two_nodes(pg, daemon_factory)
    with Receiver() as rx:
        ch = channel(a, "webhook", {"url": rx.url("/h")})
        r = rule(a, ["run.failed"], [ch], group_window_s=0)
        j = job(a, "sleep 0.3")
        # Both nodes' listening connections broken: the change's NOTIFY reaches neither (they
        # listen again at their next poll, up to 1.5 s later).
        cut = pg.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                      f"datname = '{a.db}' AND query LIKE 'LISTEN opsc_runq%'")
        assert cut == "2"
        check(a.http.patch(a.url(f"/api/v1/notifications/rules/{r['id']}"),
                           json={"events": ["run.succeeded"]}), 200)
        time.sleep(2)  # b's heartbeat every 0.6 s compares the rules' version
        each_delivered_once(a, b, rx, j, 8, (a_id, b_id))  # b matched with the new rule
