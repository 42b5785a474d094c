#!/usr/bin/python3
"""bench_notify.py - notifications through the real daemon: outbox to receiver throughput, latency
from a run's end to the receiver, memory and API responsiveness with a large backlog.

    tests/bench/bench_notify.py [--build DIR] throughput [DELIVERIES=20000]
    tests/bench/bench_notify.py [--build DIR] latency [RUNS_PER_S=100] [SECONDS=10]
    tests/bench/bench_notify.py [--build DIR] backlog [DELIVERIES=100000]

throughput: deliveries are queued with [notifications] paused (runs of a one-step local job, a
rule to many webhook channels), then a daemon on the same store drains them to a loopback
receiver that answers 200 at once; deliveries/s and the daemon's CPU from /proc.
latency: runs at a fixed rate, each run.succeeded to one webhook channel; the receiver notes
arrival minus the run's finished_at (same clock): p50/p99.
backlog: the deliveries queued while paused, then a daemon with the receiver down (connection
refused): its RSS against an empty one, the store's size, and GET latencies meanwhile.
The receiver is tests/bench/bench_receiver (C, libuv): it answers at once, notes arrivals, and
costs little next to the daemon. Not run by the test suite.
"""
import argparse
import calendar
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
PASSWORD = "Bench-Admin-Pw-7731"
CHANNELS_PER_RULE = 50


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the daemon ------------------------------------------------------------------------------

class Daemon:
    def __init__(self, build, data, extra=""):
        self.port = free_port()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="bench-notify-"))
        conf = self.dir / "opsconductor.conf"
        conf.write_text(f"[server]\nlisten = 127.0.0.1:{self.port}\nshutdown_timeout = 10s\n"
                        f"[store]\ndata_dir = {data}\n[log]\nlevel = warn\n{extra}\n")
        cmd = [str(build / "core" / "opsconductord"), "-c", str(conf),
               "-p", str(build / "plugins"), "-p", str(build / "steplibs")]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSC_")}
        env["OPSC_BOOTSTRAP_ADMIN_PASSWORD"] = PASSWORD
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "stderr.log", "wb"))
        self.base = f"http://127.0.0.1:{self.port}"
        self.s = requests.Session()
        while True:
            try:
                if requests.get(self.base + "/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert self.proc.poll() is None, (self.dir / "stderr.log").read_text()
            time.sleep(0.01)
        self.ready_at = time.monotonic()
        r = self.s.post(self.base + "/api/v1/auth/login",
                        json={"username": "admin", "password": PASSWORD})
        self.s.headers["Authorization"] = "Bearer " + r.json()["access_token"]

    def api(self, method, path, status=None, **kw):
        r = self.s.request(method, self.base + path, timeout=60, **kw)
        assert status is None or r.status_code == status, r.text
        return r.json() if r.content else None

    def cpu_s(self):
        fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kb(self, kind="VmRSS"):
        """VmRSS, or RssAnon (the heap) / RssFile (the store's mapped pages)."""
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith(kind + ":"):
                return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


def setup_fanout(d, url, deliveries_per_run, event="run.succeeded"):
    """Webhook channels to `url` and rules of CHANNELS_PER_RULE channels each; a local job."""
    ids = [d.api("POST", "/api/v1/notifications/channels", 201,
                 json={"name": f"rx-{i}", "type": "webhook", "settings": {"url": url}})["id"]
           for i in range(deliveries_per_run)]
    for i in range(0, len(ids), CHANNELS_PER_RULE):
        d.api("POST", "/api/v1/notifications/rules", 201,
              json={"name": f"fan-{i}", "events": [event], "channels": ids[i:i + CHANNELS_PER_RULE]})
    t = d.api("POST", "/api/v1/targets", 201, json={"name": "self", "transport": "local"})
    return d.api("POST", "/api/v1/jobs", 201, json={
        "name": "tick", "targets": {"ids": [t["id"]]}, "allow_concurrent": True,
        "steps": [{"id": "t", "type": "core.shell.command", "params": {"command": "true"}}]})


def start_runs(d, job_id, n, clients=4):
    token = d.s.headers["Authorization"]

    def client(k):
        s = requests.Session()
        s.headers["Authorization"] = token
        for _ in range(k):
            s.post(f"{d.base}/api/v1/jobs/{job_id}/runs", json={}, timeout=60)

    threads = [threading.Thread(target=client, args=(n // clients + (i < n % clients),))
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def wait_pending(d, n, timeout=600):
    end = time.monotonic() + timeout
    while True:
        text = requests.get(d.base + "/metrics", timeout=30).text
        made = next((float(line.split()[-1]) for line in text.splitlines()
                     if line.startswith("opsc_notify_created_total ")), 0)
        if made >= n:
            return
        assert time.monotonic() < end, f"{made} of {n} deliveries queued"
        time.sleep(0.2)


def queue_backlog(build, data, n, url):
    per_run = 200 if n >= 20000 else 20
    d = Daemon(build, data, "[notifications]\npaused = true\n")
    job = setup_fanout(d, url, per_run)
    runs = (n + per_run - 1) // per_run
    t0 = time.monotonic()
    start_runs(d, job["id"], runs)
    wait_pending(d, runs * per_run)
    print(f"queued {runs * per_run} deliveries ({runs} runs x {per_run} channels) in "
          f"{time.monotonic() - t0:.1f} s, paused")
    d.stop()
    return runs * per_run


# ---- the benchmarks ----------------------------------------------------------------------------

class FastReceiver:
    """tests/bench/bench_receiver (C, libuv): the count is at GET /count."""

    def __init__(self, build, port, stamps=None):
        self.url = f"http://127.0.0.1:{port}/count"
        self.proc = subprocess.Popen([str(build / "tests" / "bench" / "bench_receiver"),
                                      str(port)] + ([stamps] if stamps else []),
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def count(self):
        return int(requests.get(self.url, timeout=10).text)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def throughput(build, n):
    data = tempfile.mkdtemp(prefix="bench-notify-data-")
    port = free_port()
    total = queue_backlog(build, data, n, f"http://127.0.0.1:{port}/in")
    rx = FastReceiver(build, port)
    d = Daemon(build, data, "[notifications]\nmax_in_flight = 128\n")
    cpu0, t0 = d.cpu_s(), d.ready_at
    while rx.count() < total:
        assert time.monotonic() - t0 < 600, f"{rx.count()} of {total} after 600 s"
        time.sleep(0.02)
    took = time.monotonic() - t0
    cpu = d.cpu_s() - cpu0
    print(f"drained {total} deliveries in {took:.2f} s: {total / took:.0f} deliveries/s; daemon "
          f"CPU {cpu:.2f} s ({cpu / took * 100:.0f}% of a core, {cpu / total * 1e6:.0f} us per "
          f"delivery)")
    d.stop()
    rx.stop()


def latency(build, rate, seconds):
    data = tempfile.mkdtemp(prefix="bench-notify-data-")
    port = free_port()
    stamps = pathlib.Path(tempfile.mkdtemp()) / "stamps.txt"
    rx = FastReceiver(build, port, str(stamps))
    d = Daemon(build, data)
    job = setup_fanout(d, f"http://127.0.0.1:{port}/in", 1)
    n = rate * seconds
    s = requests.Session()
    s.headers["Authorization"] = d.s.headers["Authorization"]
    t0 = time.monotonic()
    for i in range(n):  # paced, one client: the run's start is not what is measured
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        s.post(f"{d.base}/api/v1/jobs/{job['id']}/runs", json={}, timeout=60)
    while rx.count() < n:
        assert time.monotonic() - t0 < seconds + 120
        time.sleep(0.05)
    d.stop()
    rx.stop()
    lat = []
    for line in stamps.read_text().splitlines():
        now, fin = line.split()
        t = calendar.timegm(time.strptime(fin[:19], "%Y-%m-%dT%H:%M:%S"))
        lat.append((float(now) - (t + float("0" + fin[19:-1]))) * 1000)
    lat.sort()
    print(f"{n} runs at {rate}/s: run end to receiver, p50 {lat[len(lat) // 2]:.1f} ms, "
          f"p99 {lat[int(len(lat) * 0.99)]:.1f} ms, max {lat[-1]:.1f} ms")


def get_latencies(d, seconds):
    """GET /notifications/deliveries?limit=50 every 50 ms: sorted latencies in ms."""
    lat = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        a = time.monotonic()
        r = d.s.get(d.base + "/api/v1/notifications/deliveries?limit=50", timeout=60)
        assert r.status_code == 200
        lat.append((time.monotonic() - a) * 1000)
        time.sleep(0.05)
    return sorted(lat)


def backlog(build, n):
    data = tempfile.mkdtemp(prefix="bench-notify-data-")
    port = free_port()  # nothing listens: every attempt is refused
    empty = Daemon(build, tempfile.mkdtemp(prefix="bench-notify-empty-"))
    base = get_latencies(empty, 5)  # the same machine, the same moment, nothing queued
    rss0, anon0 = empty.rss_kb(), empty.rss_kb("RssAnon")
    empty.stop()
    total = queue_backlog(build, data, n, f"http://127.0.0.1:{port}/in")
    size = os.path.getsize(pathlib.Path(data) / "data.mdb")
    d = Daemon(build, data)
    lat = get_latencies(d, 20)
    rss, anon, mapped = d.rss_kb(), d.rss_kb("RssAnon"), d.rss_kb("RssFile")
    text = requests.get(d.base + "/metrics", timeout=30).text
    retried = sum(float(line.split()[-1]) for line in text.splitlines()
                  if line.startswith("opsc_notify_deliveries_total") and "retried" in line)
    d.stop()
    print(f"backlog of {total} pending deliveries, receiver down: daemon RSS {rss / 1024:.1f} MB, "
          f"of which heap {anon / 1024:.1f} MB (empty store: {rss0 / 1024:.1f} MB, heap "
          f"{anon0 / 1024:.1f} MB: {(anon - anon0) * 1024 / total:.0f} heap bytes per pending "
          f"delivery) and store pages mapped {mapped / 1024:.1f} MB; data.mdb {size / 1e6:.0f} MB "
          f"({size / total:.0f} bytes each); {retried:.0f} attempts refused in 20 s; GET "
          f"deliveries meanwhile p50 {lat[len(lat) // 2]:.1f} ms, p99 "
          f"{lat[int(len(lat) * 0.99)]:.1f} ms (empty daemon: p50 {base[len(base) // 2]:.1f} ms, "
          f"p99 {base[int(len(base) * 0.99)]:.1f} ms)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("mode", choices=["throughput", "latency", "backlog"])
    ap.add_argument("args", nargs="*", type=int)
    a = ap.parse_args()
    build = pathlib.Path(a.build).resolve()
    if a.mode == "throughput":
        throughput(build, *(a.args or [20000]))
    elif a.mode == "latency":
        latency(build, *(a.args or [100, 10]))
    else:
        backlog(build, *(a.args or [100000]))


if __name__ == "__main__":
    sys.exit(main())
