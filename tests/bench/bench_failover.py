#!/usr/bin/python3
"""bench_failover.py - cluster failover: leader killed (kill -9) -> next fire created.

    tests/bench/bench_failover.py [--build DIR] [--lease TTL] [KILLS] [NODES]

Starts NODES daemons (default 3) sharing one throw-away PostgreSQL ([store] lease_ttl = TTL,
default 3s) and a schedule firing a one-step job (`true`) every second. KILLS times (default
5): kill -9 of the leader, then, from a surviving node's API, the seconds until another node
leads (GET /api/v1/cluster) and until the first run of the schedule created after the kill
exists; a new node joins in place of the dead one. Prints each kill and the p50 / max.
Not run by the test suite.
"""
import argparse
import datetime
import pathlib
import shutil
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_exec import Daemon, machine, one_step_job, pg_cluster  # noqa: E402


def ts(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def node_id(d):
    return d.get("/api/v1/cluster")["node_id"]


def leader(d):
    return (d.get("/api/v1/cluster")["leader"] or {}).get("node_id")


def kill9(d):
    d.proc.kill()
    d.proc.wait()
    shutil.rmtree(d.dir, ignore_errors=True)


def one_kill(nodes, sid):
    ids = {node_id(d): d for d in nodes}
    old = leader(nodes[0])
    dead = ids[old]
    alive = [d for d in nodes if d is not dead]
    killed = time.time()
    kill9(dead)
    led = fired = None
    while led is None or fired is None:
        if led is None and leader(alive[0]) not in (None, old):
            led = time.time() - killed
        runs = alive[0].get("/api/v1/runs", schedule_id=sid, limit=20)["items"]
        after = [ts(r["created_at"]) for r in runs if ts(r["created_at"]) > killed]
        if fired is None and after:
            fired = min(after) - killed
        assert time.time() - killed < 120, "no new leader or no fire in 2 minutes"
        time.sleep(0.02)
    return alive, led, fired


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(pathlib.Path(__file__).resolve().parents[2] / "build"))
    ap.add_argument("--lease", default="3s")
    ap.add_argument("kills", nargs="?", type=int, default=5)
    ap.add_argument("nodes", nargs="?", type=int, default=3)
    a = ap.parse_args()
    build = pathlib.Path(a.build).resolve()
    print(machine())
    pg, nodes = pg_cluster(build, a.nodes, lease_ttl=a.lease)
    try:
        job = one_step_job(nodes[0])
        sid = nodes[0].post("/api/v1/schedules", {"job_id": job["id"], "cron": "* * * * * *",
                                                  "overlap_policy": "allow"})["id"]
        time.sleep(3)
        leds, fires = [], []
        for i in range(a.kills):
            nodes, led, fired = one_kill(nodes, sid)
            leds.append(led)
            fires.append(fired)
            print(f"  kill {i + 1}: new leader after {led:.2f} s, next fire created after "
                  f"{fired:.2f} s")
            nodes.append(Daemon(build, env_extra=pg.node_env))
            time.sleep(2)
        leds.sort()
        fires.sort()
        print(f"{a.kills} kills of the leader, {a.nodes} nodes, lease_ttl {a.lease}: new leader "
              f"p50 {leds[len(leds) // 2]:.2f} s, max {leds[-1]:.2f} s; next fire created p50 "
              f"{fires[len(fires) // 2]:.2f} s, max {fires[-1]:.2f} s")
    finally:
        for d in nodes:
            if d.proc.poll() is None:
                d.stop()
        pg.stop()


if __name__ == "__main__":
    main()
