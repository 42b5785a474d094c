#!/usr/bin/python3
"""bench_sched_exec.py - schedules firing through the real executor: lateness and API latency.

    tests/bench/bench_sched_exec.py [--build DIR] [--daemon PATH] spread|burst [SCHEDULES] [MINUTES]
    tests/bench/bench_sched_exec.py [--build DIR] --nodes K spread|burst [SCHEDULES] [MINUTES]
                                    the same on K daemons sharing a throw-away PostgreSQL

Starts a daemon (bench_exec.Daemon), one local target, a one-step job (`true`, allow_concurrent)
and SCHEDULES schedules (default 10,000) firing every minute: "H * * * * *" (spread over the
minute by the schedule's hash) or "0 * * * * *" (burst: all at second 0). For MINUTES whole
minutes (default 2; the issue's figure is 5) a prober sends an authenticated
GET /api/v1/targets/{id} every 5 ms. Then, from the runs the API lists:
  - fire -> run created lateness (created_at - planned_at): p50, p99, max;
  - fires expected vs runs created, duplicates (a schedule and instant twice), runs ended;
  - the prober's latency p50 / p99 / max, overall and in the first 10 s of each minute.
Not run by the test suite.
"""
import argparse
import collections
import datetime
import http.client
import pathlib
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_exec import Daemon, TERMINAL, machine, pg_cluster  # noqa: E402


def ts(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def setup(d, n, cron):
    t = d.post("/api/v1/targets", {"name": "self", "transport": "local"})
    job = d.post("/api/v1/jobs", {"name": "tick", "allow_concurrent": True,
                                  "targets": {"ids": [t["id"]]},
                                  "steps": [{"id": "s", "type": "core.shell.command",
                                             "params": {"command": "true"}}]})
    ids, lock = [], threading.Lock()

    def create(k):
        s = d.session()
        mine = [d.post("/api/v1/schedules", {"job_id": job["id"], "cron": cron,
                                             "overlap_policy": "allow"}, session=s)["id"]
                for _ in range(k)]
        with lock:
            ids.extend(mine)
    threads = [threading.Thread(target=create, args=(n // 8 + (i < n % 8),)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return t, job, ids


class Prober(threading.Thread):
    """GET one target every 5 ms on one keep-alive connection; (wall time, seconds) each."""
    def __init__(self, d, target_id):
        super().__init__(daemon=True)
        self.d, self.path, self.samples = d, f"/api/v1/targets/{target_id}", []
        self.stop = threading.Event()

    def run(self):
        c = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=30)
        hdr = {"Authorization": "Bearer " + self.d.token}
        while not self.stop.is_set():
            t0 = time.monotonic()
            c.request("GET", self.path, headers=hdr)
            r = c.getresponse()
            r.read()
            assert r.status == 200, r.status
            self.samples.append((time.time(), time.monotonic() - t0))
            time.sleep(max(0.0, 0.005 - (time.monotonic() - t0)))


def runs_of(d, job_id):
    out, cursor = [], None
    while True:
        params = {"job": job_id, "limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = d.get("/api/v1/runs", **params)
        out += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(pathlib.Path(__file__).resolve().parents[2] / "build"))
    ap.add_argument("--daemon", help="another opsconductord (e.g. main's) with this build's plugins; "
                    "in a build tree's layout (DIR/core/opsconductord next to "
                    "DIR/spawner/opsc-spawner), or its local steps are refused and every run fails")
    ap.add_argument("--nodes", type=int, default=0,
                    help="cluster mode: this many daemons on one throw-away PostgreSQL")
    ap.add_argument("mode", choices=["spread", "burst"])
    ap.add_argument("schedules", nargs="?", type=int, default=10000)
    ap.add_argument("minutes", nargs="?", type=int, default=2)
    a = ap.parse_args()
    cron = "H * * * * *" if a.mode == "spread" else "0 * * * * *"
    print(machine())
    build = pathlib.Path(a.build).resolve()
    pg = None
    if a.nodes:  # the schedules fire on the leader, the runs run on every node
        pg, nodes = pg_cluster(build, a.nodes)
        print(f"{a.nodes} node(s) on one PostgreSQL")
    else:
        nodes = [Daemon(build, daemon=a.daemon)]
    d = nodes[0]
    try:
        t0 = time.monotonic()
        target, job, ids = setup(d, a.schedules, cron)
        print(f"{len(ids)} schedules \"{cron}\" created in {time.monotonic() - t0:.1f} s")
        # Measure whole minutes, from the next minute boundary on.
        start = (int(time.time()) // 60 + 1) * 60
        end = start + 60 * a.minutes
        prober = Prober(d, target["id"])
        prober.start()
        cpu0 = None
        while time.time() < end + 5:  # the last minute's runs are created by then
            if cpu0 is None and time.time() >= start:
                cpu0 = sum(x.cpu_s() for x in nodes)
            time.sleep(0.5)
        cpu = sum(x.cpu_s() for x in nodes) - (cpu0 or 0)
        prober.stop.set()
        prober.join()
        deadline = time.monotonic() + 120
        while True:
            runs = [r for r in runs_of(d, job["id"])
                    if r.get("planned_at") and start <= ts(r["planned_at"]) < end]
            if all(r["state"] in TERMINAL for r in runs) or time.monotonic() > deadline:
                break
            time.sleep(1)
        late = [(ts(r["created_at"]) - ts(r["planned_at"])) * 1000 for r in runs]
        seen = collections.Counter((r["schedule_id"], r["planned_at"]) for r in runs)
        dups = sum(c - 1 for c in seen.values() if c > 1)
        ended = sum(r["state"] in TERMINAL for r in runs)
        ok = sum(r["state"] == "succeeded" for r in runs)
        want = len(ids) * a.minutes
        print(f"{a.minutes} minute(s): {len(runs)} runs of {want} fires "
              f"({want - len(seen)} fires without a run, {dups} duplicates); "
              f"{ended} ended, {ok} succeeded; daemon CPU {cpu:.1f} s "
              f"({cpu / max(len(runs), 1) * 1e6:.0f} µs per run)")
        print(f"  fire -> run created: p50 {pct(late, 50):.1f} ms, p99 {pct(late, 99):.1f} ms, "
              f"max {max(late, default=float('nan')):.1f} ms")
        lat = [s * 1000 for w, s in prober.samples if start <= w < end]
        burst = [s * 1000 for w, s in prober.samples if start <= w < end and w % 60 < 10]
        print(f"  authenticated GET every 5 ms: {len(lat)} requests, p50 {pct(lat, 50):.1f} ms, "
              f"p99 {pct(lat, 99):.1f} ms, max {max(lat, default=float('nan')):.1f} ms; "
              f"in seconds 0-10 of each minute: p99 {pct(burst, 99):.1f} ms, "
              f"max {max(burst, default=float('nan')):.1f} ms")
        print(f"  load average now: {open('/proc/loadavg').read().split()[0]}")
    finally:
        for x in nodes:
            x.stop()
        if pg:
            pg.stop()


if __name__ == "__main__":
    main()
