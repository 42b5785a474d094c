#!/usr/bin/python3
"""bench_discovery.py - network discovery through the REST API, on loopback (every 127.x address
answers; closed ports answer at once with a reset).

    tests/bench/bench_discovery.py [--build DIR] rate [RATE] [PREFIX]   one port of a /PREFIX (default
                                                                    /18) at RATE (default 5000/s):
                                                                    addresses/s vs the rate, CPU
    tests/bench/bench_discovery.py [--build DIR] memory [PREFIX]      a /PREFIX (default /16) x 22,
                                                                    5985, 5986: RSS above idle
    tests/bench/bench_discovery.py [--build DIR] nmap [PREFIX]        the same range and ports with
                                                                    discovery-tcp and with nmap -sT
                                                                    -T4: wall time and CPU side by side

Each starts its own daemon on a /PREFIX of 127.0.0.0/8 nothing listens in, prints its figures and
stops. Not run by the test suite.
"""
import argparse
import os
import pathlib
import random
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


sys.path.insert(0, str(ROOT / "tests" / "bench"))
import bench_exec  # noqa: E402


class Daemon(bench_exec.Daemon):
    """bench_exec's daemon, with what a scan needs (no reverse lookups: loopback has no names)."""

    def __init__(self, build):
        super().__init__(build, "[plugin.discovery-tcp]\nrdns = false\n")

    def scan(self, body):
        return self.post("/api/v1/discovery/scans", body)["id"]

    def wait(self, scan_id):
        """The scan when it ended, and the daemon's highest RSS (kB) seen meanwhile."""
        peak = 0
        while True:
            s = self.get(f"/api/v1/discovery/scans/{scan_id}")
            peak = max(peak, self.rss_kb())
            if s["state"] != "running":
                return s, peak
            time.sleep(0.2)


def block(prefix):
    """A 127.a.0.0/prefix with nothing of ours in it (prefix >= 16)."""
    return f"127.{random.randint(100, 250)}.0.0/{prefix}"


def bench_rate(d, rate=5000, prefix=18):
    rng = block(prefix)
    cpu0, t0 = d.cpu_s(), time.monotonic()
    sid = d.scan({"ranges": [rng], "ports": [9], "rate": rate, "concurrency": 1024,
                  "timeout_ms": 1000})
    s, _ = d.wait(sid)
    wall, cpu = time.monotonic() - t0, d.cpu_s() - cpu0
    p = s["progress"]
    print(f"rate: {rng}, 1 closed port, asked {rate}/s: {p['done']} addresses in {wall:.2f} s wall "
          f"= {p['addresses_per_s']:.0f} addresses/s ({p['addresses_per_s'] / rate:.1%} of the rate), "
          f"{p['probes_per_s']:.0f} connects/s; daemon CPU {cpu:.2f} s "
          f"({cpu / wall:.0%} of one core, {cpu / max(p['done'], 1) * 1e6:.1f} us per address)")


def bench_memory(d, prefix=16):
    rng = block(prefix)
    idle = d.rss_kb()
    t0 = time.monotonic()
    sid = d.scan({"ranges": [rng], "ports": [22, 5985, 5986], "rate": 20000, "concurrency": 1024,
                  "timeout_ms": 1000})
    s, peak = d.wait(sid)
    wall = time.monotonic() - t0
    print(f"memory: {rng} x 3 ports ({s['progress']['probes']} connects) in {wall:.1f} s: RSS idle "
          f"{idle / 1024:.1f} MB, peak {peak / 1024:.1f} MB, +{(peak - idle) / 1024:.1f} MB above idle")


def bench_nmap(d, prefix=16):
    rng = block(prefix)
    cpu0, t0 = d.cpu_s(), time.monotonic()
    sid = d.scan({"ranges": [rng], "ports": [22, 5985, 5986], "rate": 20000, "concurrency": 1024,
                  "timeout_ms": 1000})
    s, _ = d.wait(sid)
    tcp_wall, tcp_cpu = time.monotonic() - t0, d.cpu_s() - cpu0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(["nmap", "-sT", "-p", "22,5985,5986", "-T4", "-n", "-Pn", "-oX", os.devnull, rng],
                   check=True, stdout=subprocess.DEVNULL)
    nmap_wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    nmap_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    n = s["progress"]["total"]
    print(f"{rng} ({n} addresses x 3 ports):")
    print(f"  discovery-tcp (rate 20000/s) {tcp_wall:7.1f} s wall, {tcp_cpu:6.2f} s CPU (daemon)")
    print(f"  nmap -sT -T4 -Pn            {nmap_wall:7.1f} s wall, {nmap_cpu:6.2f} s CPU")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("what", choices=["rate", "memory", "nmap"])
    ap.add_argument("args", nargs="*", type=int)
    a = ap.parse_args()
    build = pathlib.Path(a.build)
    if not build.is_absolute():
        build = (pathlib.Path.cwd() / build) if (pathlib.Path.cwd() / build).exists() else ROOT / build
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the daemon inherits it
    d = Daemon(build)
    try:
        if a.what == "rate":
            bench_rate(d, *(a.args or [5000]))
        elif a.what == "memory":
            bench_memory(d, *(a.args or [16]))
        else:
            bench_nmap(d, *(a.args or [16]))
    finally:
        d.stop()


if __name__ == "__main__":
    sys.exit(main())
