"""test_cluster_faults.py - the database's failures under two real daemons (docs/cluster.md 5).

A PostgreSQL restart (pg_ctl restart -m fast) while a schedule fires every second: the nodes
reconnect, a leader exists again, the fires go on with each planned fire once (what fell into
the outage is recorded missed) and runs made after the restart succeed on both nodes. A
partition of the leader from the database: a TCP proxy between it and PostgreSQL stops
forwarding (its sockets stay open, the bytes wait); the other node takes the lease within it
and fires, the partitioned node fires and claims nothing meanwhile, and after healing it
steps down; nothing was fired twice.
"""
import base64
import os
import socket
import subprocess
import threading
import time

from test_cluster_failover import LEASE_S, each_fire_once, every_second, pg, two_nodes  # noqa: F401
from test_cluster_queue import ended, job, start
from test_schedules_e2e import wait_for


def leader_or_none(d):
    try:
        r = d.get("/api/v1/cluster")
        return (r.json().get("leader") or {}).get("node_id") if r.status_code == 200 else None
    except Exception:  # the node's API is busy or down for the moment
        return None


def test_a_database_restart_leaves_a_leader_and_every_fire_once(pg, daemon_factory):
    db, a, b, a_id, b_id, view = two_nodes(pg, daemon_factory)
    sid, runs = every_second(b)
    assert wait_for(lambda: len(runs()) >= 3, 10), runs()
    pg.restart()
    back = time.monotonic()
    assert wait_for(lambda: leader_or_none(a) in (a_id, b_id) and
                    leader_or_none(a) == leader_or_none(b), 20)
    led = time.monotonic() - back
    n = len(runs())
    assert wait_for(lambda: len(runs()) >= n + 3, 15), "the fires did not go on"
    j = job(a, "true")
    after = [start(d, j) for d in (a, b, a, b)]
    assert {r["state"] for r in ended(b, after, 30)} == {"succeeded"}
    assert b.request("POST", f"/api/v1/schedules/{sid}/pause").status_code == 200
    time.sleep(1)
    items = runs()
    each_fire_once(pg, db, sid, items, (a, b))
    print(f"database restart: a leader {led:.1f} s after pg_ctl restart returned; "
          f"{len(items)} fires, each once")


class Proxy:
    """A TCP proxy to PostgreSQL that the test can pause: while paused nothing is forwarded
    either way and every socket stays open (the bytes wait in the buffers, sent on heal)."""

    def __init__(self, port):
        self.port_to = port
        self.flowing = threading.Event()
        self.flowing.set()
        self.ls = socket.create_server(("127.0.0.1", 0))
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.port_to))
            for src, dst in ((c, s), (s, c)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self.flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def pause(self):
        self.flowing.clear()

    def heal(self):
        self.flowing.set()

    def close(self):
        self.heal()
        self.ls.close()


def test_a_leader_cut_from_the_database_is_replaced_and_nothing_fires_twice(pg, daemon_factory):
    proxy = Proxy(pg.port)
    try:
        db, b, a, b_id, a_id, _ = two_nodes(pg, daemon_factory, url_of_first=lambda u: u.replace(
            f":{pg.port}/", f":{proxy.port}/"))
        sid, runs = every_second(a)
        assert wait_for(lambda: len(runs()) >= 3, 10), runs()
        proxy.pause()  # b (the leader) no longer reaches the database
        cut = time.monotonic()
        assert wait_for(lambda: leader_or_none(a) == a_id, LEASE_S + 4)
        took = time.monotonic() - cut
        j = job(a, "true")
        during = [start(a, j) for _ in range(3)]
        assert {r["node_id"] for r in ended(a, during, 20)} == {a_id}  # b claims nothing
        n = len(runs())
        assert wait_for(lambda: len(runs()) >= n + 2, 10)  # a fires
        proxy.heal()
        assert wait_for(lambda: "stepped down as leader" in b.stderr(), 15), b.stderr()[-3000:]
        assert wait_for(lambda: leader_or_none(b) == a_id, 15)
        time.sleep(2)
        assert a.request("POST", f"/api/v1/schedules/{sid}/pause").status_code == 200
        time.sleep(1)
        items = runs()
        each_fire_once(pg, db, sid, items, (a, b))
        fired = pg.psql(f"SELECT node_id, count(*) FROM opsc_fires WHERE schedule_id = '{sid}' "
                        f"GROUP BY node_id ORDER BY 1", db=db)
        print(f"partition: node a led {took:.1f} s after the cut; fires per node: {fired}")
    finally:
        proxy.close()


def test_a_node_starts_while_another_holds_a_write_lock_on_the_queue(pg, daemon_factory):
    """A node joining a busy cluster does not take table locks for tables that are as it
    wants them: it once ran ALTER TABLE ... ADD COLUMN IF NOT EXISTS (ACCESS EXCLUSIVE) at
    every start, and deadlocked with the writing nodes' transactions."""
    db = pg.database()
    config = {"store": {"backend": "postgresql", "postgresql_url": pg.url(db),
                        "lease_ttl": f"{LEASE_S}s"},
              "auth": {"jwt_secret": base64.b64encode(os.urandom(32)).decode()}}
    env = {"OPSC_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    daemon_factory(config=config, env=env)
    holder = subprocess.Popen(pg._as + ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                        "-d", pg.url(db)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PGPASSWORD=pg.password))
    try:  # a transaction of a writing node, as it stands between two statements
        holder.stdin.write("BEGIN; LOCK TABLE opsc_runq IN ROW EXCLUSIVE MODE; SELECT 'held';\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "held"
        b = daemon_factory(config=config, env=env)
        nodes = b.get("/api/v1/cluster").json()["nodes"]
        assert [n["state"] for n in nodes] == ["alive", "alive"], nodes
    finally:
        holder.stdin.write("COMMIT;\n")
        holder.stdin.close()
        holder.wait(10)
