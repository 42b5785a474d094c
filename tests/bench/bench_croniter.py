"""The croniter side of bench_cron: get_next() per second for bench_cron's table.

Run by bench_cron, or alone: /usr/bin/python3 tests/bench/bench_croniter.py
Modes as in bench_cron: "random" re-points one iterator at random starts
(set_current + get_next), "chained" calls get_next repeatedly.
"""
import datetime as dt
import random
import time
from zoneinfo import ZoneInfo

from croniter import croniter

EXPRS = ["*/5 * * * *", "0 3 * * 1-5", "30 2 * * *", "0 0 L * *"]
ZONES = ["Europe/Berlin", "UTC"]
SECONDS = 1.0  # per measurement


def measure(step):
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < SECONDS:
        for _ in range(200):
            step()
        calls += 200
    return calls, time.perf_counter() - t0


def report(mode, expr, zone, calls, secs):
    print(f"croniter {mode:<8} {expr:<14} {zone:<14} {calls / secs / 1e6:8.4f} M/s "
          f"{secs * 1e9 / calls:9.0f} ns/call", flush=True)


def main():
    rng = random.Random(1)
    for zone in ZONES:
        tz = ZoneInfo(zone)
        starts = [dt.datetime.fromtimestamp(rng.randint(1577836800, 2050790400), tz)
                  for _ in range(4096)]
        for expr in EXPRS:
            it = croniter(expr, starts[0])
            pos = [0]

            def random_step():
                pos[0] = (pos[0] + 1) & 4095
                it.set_current(starts[pos[0]], force=True)
                it.get_next(float)

            report("random", expr, zone, *measure(random_step))
            it = croniter(expr, starts[0])
            report("chained", expr, zone, *measure(lambda: it.get_next(float)))


if __name__ == "__main__":
    main()
