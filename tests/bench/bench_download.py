#!/usr/bin/python3
"""bench_download.py - streamed downloads: throughput and the daemon's memory while it sends a
large file, from /api/v1/files (a sparse file: no disk needed) with N clients at once.

    tests/bench/bench_download.py [--build DIR] [MB] [CLIENTS]     default 1024 MB, 1 client

Starts its own daemon on loopback, prints MB/s, daemon CPU, and VmRSS before, at its peak
(sampled every 50 ms) and after; stops it. Not run by the test suite (test_run_files.py has a
200 MB version).
"""
import argparse
import pathlib
import sys
import threading
import time

import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_exec import Daemon, machine  # noqa: E402


def fetch(d, size, results):
    got = 0
    with d.session().get(d.base + "/api/v1/files/big.img", stream=True, timeout=600) as r:
        assert r.status_code == 200, r.text
        for chunk in r.iter_content(1 << 20):
            got += len(chunk)
    results.append(got == size)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default="build")
    p.add_argument("mb", nargs="?", type=int, default=1024)
    p.add_argument("clients", nargs="?", type=int, default=1)
    a = p.parse_args()
    d = Daemon(pathlib.Path(a.build).resolve())
    try:
        size = a.mb << 20
        with open(pathlib.Path(d.dir) / "data" / "files" / "big.img", "wb") as f:
            f.truncate(size)
        before, cpu0, peak = d.rss_kb(), d.cpu_s(), 0
        results = []
        threads = [threading.Thread(target=fetch, args=(d, size, results))
                   for _ in range(a.clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, d.rss_kb())
            time.sleep(0.05)
        took = time.monotonic() - t0
        cpu = d.cpu_s() - cpu0
        assert results == [True] * a.clients, results
        print(machine())
        print(f"{a.clients} x {a.mb} MB in {took:.2f} s: {a.clients * a.mb / took:.0f} MB/s, "
              f"daemon CPU {cpu:.2f} s ({cpu / (a.clients * a.mb) * 1000:.2f} ms per MB)")
        print(f"daemon VmRSS before {before} kB, peak {peak} kB (+{peak - before} kB), "
              f"after {d.rss_kb()} kB")
    finally:
        d.stop()


if __name__ == "__main__":
    main()
